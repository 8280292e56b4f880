//! Atenia engine: formats, dequantization, kernels, the decoder, tokenizer,
//! sampling and generation for decoder-only language models.

pub mod decoder;
pub mod dequant;
pub mod error;
pub mod ggml_type;
pub mod gguf;
pub mod kernels;
pub mod kv_cache;
pub mod model;
pub mod runtime;
pub mod spec;
pub mod tensor;

pub use error::{Error, Result};
pub use ggml_type::GgmlType;
