//! Test helpers shared by every Atenia crate (engine, harness, references,
//! benches), so that each exists once:
//!
//! * [`golden`], [`model_path`]: where the committed golden files and the real
//!   models are (a missing model panics; tests never skip);
//! * [`read_reference`]: a reference logits file of the fixtures' format
//!   (golden/FIXTURES.md), and [`argmax`] / [`argmax64`];
//! * [`run_bounded`], [`json_of`], [`text`]: running a binary under test with
//!   a hang detector;
//! * [`Rng`]: the one seeded generator for test data.
//!
//! This crate must not depend on `atenia-engine` (see Cargo.toml).

mod paths;
mod process;
mod reference;
mod rng;

pub use paths::{gguf_fixtures, golden, model_path, smollm2};
pub use process::{json_of, run_bounded, text};
pub use reference::{argmax, argmax64, read_reference, Reference};
pub use rng::Rng;
