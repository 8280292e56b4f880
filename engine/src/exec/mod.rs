//! Execution: the decoder session that runs a model's spec (weight streaming
//! included), the KV cache, the sampler, generation, and what diagnose can
//! tell of a model without running it. Uses everything below it: formats,
//! kernels, family, text, model, memory.

pub mod decoder;
pub mod diagnose;
pub mod digest;
pub mod generate;
pub mod kv_cache;
pub mod sampler;
pub mod spec_check;
