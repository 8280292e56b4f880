//! Atenia engine: formats, dequantization, kernels, the decoder, tokenizer,
//! sampling and generation for decoder-only language models.

pub mod args;
pub mod chat_template;
pub mod convert;
pub mod decoder;
pub mod dequant;
pub mod error;
pub mod generate;
pub mod ggml_type;
pub mod gguf;
pub mod guard;
pub mod hf;
pub mod kernels;
pub mod kv_cache;
pub mod loader;
pub mod memory;
pub mod model;
pub mod placement;
pub mod run_guard;
pub mod runtime;
pub mod safetensors_file;
pub mod sampler;
pub mod spec;
pub mod telemetry;
pub mod tensor;
pub mod tokenizer;
pub mod trace;
pub mod ui;

pub use error::{Error, Result};
pub use ggml_type::GgmlType;
