//! The tokenizer a GGUF file describes (`tokenizer.ggml.*`): byte-level BPE
//! for `tokenizer.ggml.model = "gpt2"`, SentencePiece for `"llama"`, in the
//! shape the family spec names.

use crate::error::Result;
use crate::family::spec::{FamilySpec, SpmFlavor};
use crate::formats::gguf::Metadata;
use crate::text::byte_level;
use crate::text::gguf_vocab::GgufVocab;
use crate::text::sentencepiece;
use crate::text::tokenizer::Tokenizer;

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`). A
    /// SentencePiece vocabulary takes its shape from the `sentencepiece`
    /// field of the built-in family spec for the file's
    /// `general.architecture` (`llama`'s shape when no spec names one).
    pub fn from_gguf(meta: &Metadata) -> Result<Tokenizer> {
        Self::from_gguf_vocab(meta, |arch| {
            arch.and_then(FamilySpec::for_gguf_architecture)
                .and_then(|spec| spec.sentencepiece)
        })
    }

    /// [`Tokenizer::from_gguf`] with the SentencePiece shape taken from
    /// `spec` (a spec file the model is loaded with).
    pub fn from_gguf_with_spec(meta: &Metadata, spec: &FamilySpec) -> Result<Tokenizer> {
        Self::from_gguf_vocab(meta, |_| spec.sentencepiece)
    }

    fn from_gguf_vocab(
        meta: &Metadata,
        flavor_for: impl FnOnce(Option<&str>) -> Option<SpmFlavor>,
    ) -> Result<Tokenizer> {
        let v = GgufVocab::read(meta)?;
        match v.model {
            "gpt2" => byte_level::build(&v),
            _ => sentencepiece::build(&v, flavor_for(v.architecture).unwrap_or_default()),
        }
    }
}
