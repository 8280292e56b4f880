//! Execution: the decoder session that runs a model's spec (weight streaming
//! included), the KV cache, the sampler and generation. Uses everything
//! below it: formats, kernels, family, text, model, memory.

pub mod decoder;
pub mod generate;
pub mod kv_cache;
pub mod sampler;
