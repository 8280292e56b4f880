//! The [`Tokenizer`]: a tokenizer with the special-token facts generation
//! needs (bos, eos, end-of-turn ids, whether bos/eos are added), encoding,
//! and the chat-template glue. It is built by `crate::text::gguf` (GGUF
//! metadata: the compact BPE model of `crate::text::compact` in the
//! `tokenizers` pipeline) or `crate::text::tokenizer_json` (a Hugging Face
//! `tokenizer.json`: a `tokenizers` tokenizer); decoding is
//! `crate::text::stream`'s.

use std::sync::OnceLock;

use tokenizers::decoders::DecoderWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;

use crate::error::{Error, Result};
use crate::text::compact::CompactBpe;
use crate::text::decode::{DecodeScheme, Pieces};
use crate::text::special::add_specials;
use crate::text::vocab::tok_err;

pub use crate::family::spec::SpmFlavor;

/// What kind of tokenizer this is (informational).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// GGUF `gpt2`: byte-level BPE; `pre` is `tokenizer.ggml.pre` as found.
    ByteLevelBpe { pre: Option<String> },
    /// GGUF `llama`: SentencePiece vocabulary run as BPE with byte fallback.
    SentencePiece { flavor: SpmFlavor },
    /// A Hugging Face `tokenizer.json`.
    HuggingFace,
}

/// The `tokenizers` pipeline (normalizer, pre-tokenizer, special tokens,
/// decoder) around the compact BPE model.
pub(super) type CompactPipeline = tokenizers::TokenizerImpl<
    CompactBpe,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// What encodes.
pub(super) enum Engine {
    /// A `tokenizers` tokenizer (tokenizer.json).
    Hf(Box<tokenizers::Tokenizer>),
    /// A GGUF vocabulary: the compact model in the `tokenizers` pipeline.
    Compact(Box<Compact>),
}

pub(super) struct Compact {
    pub(super) pipeline: CompactPipeline,
    /// The special tokens' texts, in the order they were added.
    pub(super) specials: Vec<String>,
    /// The same tokenizer as a plain `tokenizers` one, built when first
    /// asked for ([`Tokenizer::inner`]: serializing, comparing).
    pub(super) full: OnceLock<tokenizers::Tokenizer>,
}

impl Compact {
    pub(super) fn new(pipeline: CompactPipeline, specials: Vec<String>) -> Compact {
        Compact {
            pipeline,
            specials,
            full: OnceLock::new(),
        }
    }

    /// The `tokenizers` tokenizer with a `tokenizers` BPE model of the same
    /// vocabulary and merges and the same pipeline.
    fn full(&self) -> Result<tokenizers::Tokenizer> {
        let p = &self.pipeline;
        let mut t = tokenizers::Tokenizer::new(p.get_model().to_bpe()?);
        t.with_normalizer(p.get_normalizer().cloned());
        t.with_pre_tokenizer(p.get_pre_tokenizer().cloned());
        t.with_decoder(p.get_decoder().cloned());
        let texts: Vec<&str> = self.specials.iter().map(String::as_str).collect();
        add_specials(&mut *t, &texts);
        Ok(t)
    }
}

/// A tokenizer with the special-token facts generation needs.
pub struct Tokenizer {
    pub(super) inner: Engine,
    /// Beginning-of-sequence token.
    pub bos_id: Option<u32>,
    /// End-of-sequence token.
    pub eos_id: Option<u32>,
    /// Further ids that end a generation besides `eos_id` (end-of-turn and
    /// end-of-message tokens), sorted.
    pub extra_eog_ids: Vec<u32>,
    pub unk_id: Option<u32>,
    pub pad_id: Option<u32>,
    /// Whether `encode(.., add_special = true)` puts `bos_id` first.
    pub add_bos: bool,
    /// Whether `encode(.., add_special = true)` puts `eos_id` last.
    pub add_eos: bool,
    /// The chat template stored with the model, if any.
    pub chat_template: Option<String>,
    /// Things that were tolerated while building (unknown pre-tokenizer,
    /// duplicate tokens...). Empty for a clean file.
    pub warnings: Vec<String>,
    pub kind: TokenizerKind,
    pub(super) vocab_size: usize,
    /// Per id, what it decodes to; `None` for ids that name no token.
    pub(super) pieces: Pieces,
    pub(super) scheme: DecodeScheme,
    /// tokenizer.json only: the post-processor adds the special tokens.
    pub(super) specials_by_post_processor: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("vocab_size", &self.vocab_size)
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("extra_eog_ids", &self.extra_eog_ids)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Number of ids (the embedding matrix must have at least this many rows).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The tokenizer as a `tokenizers` tokenizer that encodes and decodes
    /// the same (for a GGUF vocabulary it is built on the first call, with
    /// `tokenizers`' own BPE model, and kept).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        match &self.inner {
            Engine::Hf(t) => t,
            Engine::Compact(c) => c.full.get_or_init(|| {
                c.full()
                    .expect("a vocabulary and merges checked when the tokenizer was built")
            }),
        }
    }

    /// The token's text as the vocabulary holds it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match &self.inner {
            Engine::Hf(t) => t.id_to_token(id),
            Engine::Compact(c) => c.pipeline.id_to_token(id),
        }
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.inner {
            Engine::Hf(t) => t.token_to_id(token),
            Engine::Compact(c) => c.pipeline.token_to_id(token),
        }
    }

    /// The text of the bos token, or "" when there is none.
    pub fn bos_text(&self) -> String {
        self.bos_id
            .and_then(|id| self.id_to_token(id))
            .unwrap_or_default()
    }

    /// The text of the eos token, or "" when there is none.
    pub fn eos_text(&self) -> String {
        self.eos_id
            .and_then(|id| self.id_to_token(id))
            .unwrap_or_default()
    }

    /// Token ids of `text`. Special tokens written in the text (`<|im_start|>`,
    /// `<start_of_turn>`...) become their single id. With `add_special`, the
    /// bos/eos tokens are added as `add_bos`/`add_eos` say (what transformers
    /// calls `add_special_tokens=True`).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let with_specials = add_special && self.specials_by_post_processor;
        let encoding = match &self.inner {
            Engine::Hf(t) => t.encode(text, with_specials),
            Engine::Compact(c) => c.pipeline.encode(text, with_specials),
        }
        .map_err(|e| tok_err(format!("cannot encode the text: {e}")))?;
        let ids = encoding.get_ids();
        if !add_special || self.specials_by_post_processor {
            return Ok(ids.to_vec());
        }
        let mut out = Vec::with_capacity(ids.len() + 2);
        if self.add_bos {
            out.extend(self.bos_id);
        }
        out.extend_from_slice(ids);
        if self.add_eos {
            out.extend(self.eos_id);
        }
        Ok(out)
    }

    /// Token ids of a rendered chat template, as transformers'
    /// `apply_chat_template(tokenize=True)` produces them: the template already
    /// wrote whatever bos token it wants, so nothing is added.
    pub fn encode_chat(&self, rendered: &str) -> Result<Vec<u32>> {
        self.encode(rendered, false)
    }

    /// Renders the model's own chat template with its bos/eos texts and
    /// tokenizes the result like [`Tokenizer::encode_chat`].
    pub fn apply_chat_template(
        &self,
        messages: &[crate::text::chat_template::ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| Error::ChatTemplate("the model has no chat template".to_owned()))?;
        let rendered = crate::text::chat_template::render(
            template,
            messages,
            add_generation_prompt,
            &self.bos_text(),
            &self.eos_text(),
        )?;
        self.encode_chat(&rendered)
    }

    /// Every id names a token, or an error naming the first that does not.
    pub(super) fn check_ids(&self, ids: &[u32]) -> Result<()> {
        for &id in ids {
            self.check_id(id)?;
        }
        Ok(())
    }

    /// `id` names a token, or an error.
    pub(super) fn check_id(&self, id: u32) -> Result<()> {
        match self.pieces.get(id) {
            Some(_) => Ok(()),
            _ => Err(tok_err(format!(
                "id {id} names no token (vocabulary of {} ids)",
                self.vocab_size
            ))),
        }
    }

    /// Whether generating `id` ends the generation (eos, end-of-turn...).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        Some(id) == self.eos_id || self.extra_eog_ids.binary_search(&id).is_ok()
    }
}
