//! Command-line pieces both binaries share: typed flags and their parsers
//! ([`args`]), logging, progress and stdout ([`ui`]). Compiled only with the
//! `cli` feature, so the library itself builds without clap, indicatif or
//! tracing-subscriber.

pub mod args;
pub mod ui;
