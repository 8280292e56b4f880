//! File formats and the bytes in them: ggml tensor types and their
//! dequantization, memory-mapped storage and its pages, the streaming reader
//! (positioned reads into owned aligned buffers), GGUF and safetensors
//! readers. Knows no model and no family; uses only [`crate::error`].

pub mod dequant;
pub mod ggml_type;
pub mod gguf;
pub mod limits;
pub mod pages;
pub mod reader;
pub mod safetensors;
pub mod storage;
