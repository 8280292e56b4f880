//! File formats and the bytes in them: ggml tensor types and their
//! dequantization, memory-mapped storage and its pages, GGUF and safetensors
//! readers. Knows no model and no family; uses only [`crate::error`].

pub mod dequant;
pub mod ggml_type;
pub mod gguf;
pub mod limits;
pub mod pages;
pub mod safetensors;
pub mod storage;
