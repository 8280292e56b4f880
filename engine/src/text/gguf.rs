//! The tokenizer a GGUF file describes (`tokenizer.ggml.*`): byte-level BPE
//! for `tokenizer.ggml.model = "gpt2"`, SentencePiece for `"llama"`.

use crate::error::Result;
use crate::formats::gguf::Metadata;
use crate::text::byte_level;
use crate::text::gguf_vocab::GgufVocab;
use crate::text::sentencepiece;
use crate::text::tokenizer::{SpmFlavor, Tokenizer};

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`).
    pub fn from_gguf(meta: &Metadata) -> Result<Tokenizer> {
        let v = GgufVocab::read(meta)?;
        match v.model {
            "gpt2" => byte_level::build(&v),
            _ => {
                let arch = v.architecture.unwrap_or("");
                let flavor = if arch.starts_with("gemma") {
                    SpmFlavor::Gemma
                } else if arch == "phi3" {
                    SpmFlavor::Phi3
                } else {
                    SpmFlavor::Llama
                };
                sentencepiece::build(&v, flavor)
            }
        }
    }
}
