//! GGUF to Hugging Face checkpoint conversion (`atenia convert`).
//!
//! Every tensor is dequantized exactly to f32 and written as f32 (exact) or
//! bf16 (round to nearest, ties to even), under the Hugging Face name the
//! family spec gives, with the inverse of what llama.cpp's converter did:
//!
//! * Q and K rows (and biases) of `llama`-architecture files were permuted so
//!   that rotary pairs are `(2i, 2i + 1)`; they are permuted back to the
//!   `(i, i + d/2)` pairing of every Hugging Face checkpoint. Generally: a
//!   spec whose GGUF `rope_style` is `interleaved` and whose `hf.rope_style`
//!   is `half` gets its Q/K rows un-permuted.
//! * Norm weights of Gemma, Gemma 2 and Gemma 3 files hold `1 + w` (every
//!   tensor whose name ends in `norm.weight`, q/k norms and the final norm
//!   included); `w` is written back. Generally: each norm weight is shifted by
//!   `spec.norm_weight_offset - hf.norm_weight_offset`.
//!
//! Nothing else is split or merged: a fused GGUF tensor (Phi-3's `attn_qkv`,
//! `ffn_up`) becomes the fused Hugging Face tensor the spec names.
//!
//! config.json is written so that the engine's Hugging Face reader builds the
//! very plan the GGUF file gave (every hyperparameter, rotation, window and
//! soft-cap; the converter checks this after writing), with the values the
//! GGUF file holds (f32 metadata is written as the f64 it widens to).

//!
//! The files, in the order a conversion runs them: [`options`] (what is asked
//! and reported), [`run`] (the steps), [`tensors`] (what is written and what
//! is undone in it), [`config`] (config.json), [`weights`] (model.safetensors,
//! through the `safetensors` crate), [`tokenizer`] (the tokenizer files),
//! [`check`] (the checkpoint loads back into the same plan). Uses every folder
//! below it.

pub mod check;
pub mod config;
pub mod options;
pub mod run;
pub mod tensors;
pub mod tokenizer;
pub mod weights;

pub use check::plan_differences;
pub use options::{Options, OutDtype, Report};
pub use run::convert_gguf;
pub use tokenizer::write_tokenizer;
