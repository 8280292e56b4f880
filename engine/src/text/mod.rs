//! Text in and out: the tokenizer (from tokenizer.json or GGUF metadata), the
//! chat template, and streaming detokenization. Uses [`crate::formats`].

pub mod chat_template;
pub mod tokenizer;
