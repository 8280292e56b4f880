//! Atenia engine: formats, dequantization, kernels, the decoder, tokenizer,
//! sampling and generation for decoder-only language models.
//!
//! The folders, from the bottom up; each uses only those above it in this
//! list (a test, `module_graph`, keeps it so):
//!
//! | folder | holds |
//! | --- | --- |
//! | [`error`] | the error type and its exit codes |
//! | [`formats`] | ggml types, dequantization, mapped storage, GGUF, safetensors; knows no model |
//! | [`kernels`] | the numeric kernels, the thread pool and ISA dispatch |
//! | [`family`] | family adapter specs (the YAML tables) and tensor roles |
//! | [`text`] | tokenizer, chat template, streaming detokenization |
//! | [`memory`] | what the OS says, memory statistics and control, the placement planner |
//! | [`model`] | model types, binding weights, GGUF and HF config building, opening a path |
//! | [`exec`] | the decoder session, KV cache, sampler, generation, a model's diagnosis and spec check |
//! | [`guard`] | the memory guard: policy, wiring, traces |
//! | [`convert`] | GGUF → Hugging Face directory conversion |
//! | `cli` | shared command-line pieces (flags, logging, progress); only with the `cli` feature |

pub mod convert;
pub mod error;
pub mod exec;
pub mod family;
pub mod formats;
pub mod guard;
pub mod kernels;
pub mod memory;
pub mod model;
pub mod text;

#[cfg(feature = "cli")]
pub mod cli;

pub use error::{Error, Result};
pub use formats::ggml_type::GgmlType;
