//! The model: normalized hyperparameters (per layer) and the weights,
//! built from a file and a family spec. The decoder reads only this.
//!
//! - [`types`]: what a model is ([`ModelConfig`], [`Weights`], [`Model`]);
//! - [`binding`]: a format's configuration as a plan, and the weights bound
//!   to it by role, shared by both formats;
//! - [`gguf`] and [`hf`]: each format's configuration, side by side (GGUF
//!   metadata; Hugging Face config.json with its rope scaling in
//!   [`rope_scaling`]);
//! - [`open`]: opening a path, whichever format it holds.
//!
//! Uses [`crate::formats`], [`crate::kernels`], [`crate::family`],
//! [`crate::text`] (tokenizers) and [`crate::memory`].

pub mod binding;
pub mod config_json;
pub mod gguf;
pub mod hf;
pub mod open;
pub mod rope_scaling;
pub mod types;

pub use self::types::{LayerConfig, LayerWeights, LongContext, Model, ModelConfig, Weights};
