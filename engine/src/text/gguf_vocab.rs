//! The `tokenizer.ggml.*` metadata of a GGUF file, read and validated once,
//! and the steps every GGUF tokenizer shares: which tokens are special, and
//! the llama.cpp defaults for the ids and flags a file leaves out.

use crate::error::Result;
use crate::formats::gguf::Metadata;
use crate::text::decode::{DecodeScheme, Pieces};
use crate::text::special::{extra_end_of_generation, END_OF_TURN_MARKERS};
use crate::text::tokenizer::{Compact, CompactPipeline, Engine, Tokenizer, TokenizerKind};
use crate::text::vocab::{tok_err, token_type};

/// Everything read from `tokenizer.ggml.*`, validated.
pub(super) struct GgufVocab<'a> {
    pub(super) model: &'a str,
    pub(super) tokens: Vec<&'a str>,
    pub(super) token_types: Option<Vec<i64>>,
    pub(super) scores: Option<Vec<f64>>,
    pub(super) merges: Option<Vec<&'a str>>,
    pub(super) bos_id: Option<u32>,
    pub(super) eos_id: Option<u32>,
    pub(super) unk_id: Option<u32>,
    pub(super) pad_id: Option<u32>,
    pub(super) eot_id: Option<u32>,
    pub(super) eom_id: Option<u32>,
    pub(super) add_bos: Option<bool>,
    pub(super) add_eos: Option<bool>,
    pub(super) add_space_prefix: Option<bool>,
    pub(super) pre: Option<&'a str>,
    pub(super) chat_template: Option<&'a str>,
    pub(super) architecture: Option<&'a str>,
}

/// What a vocabulary's own builder (byte-level or SentencePiece) hands to
/// [`GgufVocab::finish`].
pub(super) struct Built {
    pub(super) pipeline: CompactPipeline,
    /// The special tokens' texts, as `add_specials` added them.
    pub(super) specials: Vec<String>,
    /// Per id, what it decodes to.
    pub(super) pieces: Pieces,
    pub(super) scheme: DecodeScheme,
    /// `add_bos` when the file has no `tokenizer.ggml.add_bos_token`.
    pub(super) add_bos_default: bool,
    pub(super) kind: TokenizerKind,
    pub(super) warnings: Vec<String>,
}

impl<'a> GgufVocab<'a> {
    pub(super) fn read(meta: &'a Metadata) -> Result<GgufVocab<'a>> {
        let model = meta.str("tokenizer.ggml.model")?.ok_or_else(|| {
            tok_err("the file has no tokenizer (tokenizer.ggml.model is missing)")
        })?;
        if !matches!(model, "gpt2" | "llama") {
            return Err(tok_err(format!(
                "tokenizer model {model:?} (tokenizer.ggml.model) is not supported; \
                 supported: \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece)"
            )));
        }
        let tokens = read_tokens(meta)?;
        let n = tokens.len();
        let token_types = read_token_types(meta, n)?;
        let scores = read_scores(meta, n)?;
        let merges = meta.str_array("tokenizer.ggml.merges")?;
        let id = |key: &str| special_id(meta, key, n);
        Ok(GgufVocab {
            model,
            tokens,
            token_types,
            scores,
            merges,
            bos_id: id("tokenizer.ggml.bos_token_id")?,
            eos_id: id("tokenizer.ggml.eos_token_id")?,
            unk_id: id("tokenizer.ggml.unknown_token_id")?,
            pad_id: id("tokenizer.ggml.padding_token_id")?,
            eot_id: id("tokenizer.ggml.eot_token_id")?,
            eom_id: id("tokenizer.ggml.eom_token_id")?,
            add_bos: meta.bool("tokenizer.ggml.add_bos_token")?,
            add_eos: meta.bool("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: meta.bool("tokenizer.ggml.add_space_prefix")?,
            pre: meta.str("tokenizer.ggml.pre")?,
            chat_template: meta.str("tokenizer.chat_template")?,
            architecture: meta.str("general.architecture")?,
        })
    }

    pub(super) fn token_type(&self, i: usize) -> i64 {
        self.token_types
            .as_ref()
            .map_or(token_type::NORMAL, |t| t[i])
    }

    /// The ids that are special tokens: control tokens, then the bos, eos,
    /// unknown and padding tokens the file names (repeats possible).
    pub(super) fn special_ids(&self) -> Vec<usize> {
        let mut special: Vec<usize> = (0..self.tokens.len())
            .filter(|&i| self.token_type(i) == token_type::CONTROL)
            .collect();
        special.extend(
            [self.bos_id, self.eos_id, self.unk_id, self.pad_id]
                .into_iter()
                .flatten()
                .map(|i| i as usize),
        );
        special
    }

    /// The tokenizer, with the ids and flags the file leaves out filled in
    /// as llama.cpp does.
    pub(super) fn finish(&self, built: Built) -> Result<Tokenizer> {
        let Built {
            pipeline,
            specials,
            pieces,
            scheme,
            add_bos_default,
            kind,
            mut warnings,
        } = built;
        let n = self.tokens.len();
        // llama.cpp's defaults for a SentencePiece file without the keys.
        let spm = self.model == "llama";
        let default_id = |id: u32| (spm && (id as usize) < n).then_some(id);
        let bos_id = self.bos_id.or_else(|| default_id(1));
        let eos_id = self.eos_id.or_else(|| default_id(2));
        let unk_id = self.unk_id.or_else(|| default_id(0));

        let mut eog: Vec<u32> = [self.eot_id, self.eom_id].into_iter().flatten().collect();
        eog.extend((0..n).filter_map(|i| {
            (self.token_type(i) == token_type::CONTROL
                && END_OF_TURN_MARKERS.contains(&self.tokens[i]))
            .then_some(i as u32)
        }));
        let extra_eog_ids = extra_end_of_generation(eog, eos_id);

        let add_bos = self.add_bos.unwrap_or(add_bos_default);
        let add_eos = self.add_eos.unwrap_or(false);
        if add_bos && bos_id.is_none() {
            warnings.push("add_bos is set but the file names no bos token".to_owned());
        }
        if add_eos && eos_id.is_none() {
            warnings.push("add_eos is set but the file names no eos token".to_owned());
        }
        Ok(Tokenizer {
            inner: Engine::Compact(Box::new(Compact::new(pipeline, specials))),
            bos_id,
            eos_id,
            extra_eog_ids,
            unk_id,
            pad_id: self.pad_id,
            add_bos,
            add_eos,
            chat_template: self.chat_template.map(str::to_owned),
            warnings,
            kind,
            vocab_size: n,
            pieces,
            scheme,
            specials_by_post_processor: false,
        })
    }
}

/// `tokenizer.ggml.tokens`: present, not empty, and nameable by 32-bit ids.
fn read_tokens(meta: &Metadata) -> Result<Vec<&str>> {
    let tokens = meta
        .str_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| tok_err("tokenizer.ggml.tokens is missing"))?;
    let n = tokens.len();
    if n == 0 {
        return Err(tok_err("tokenizer.ggml.tokens is empty"));
    }
    if n > u32::MAX as usize {
        return Err(tok_err(format!(
            "tokenizer.ggml.tokens has {n} entries, more than 32-bit ids can name"
        )));
    }
    Ok(tokens)
}

/// `tokenizer.ggml.token_type`, when present: one known type per token.
fn read_token_types(meta: &Metadata, n: usize) -> Result<Option<Vec<i64>>> {
    let token_types = meta.i64_array("tokenizer.ggml.token_type")?;
    if let Some(tt) = &token_types {
        if tt.len() != n {
            return Err(tok_err(format!(
                "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {n}",
                tt.len()
            )));
        }
        if let Some((i, t)) = tt
            .iter()
            .enumerate()
            .find(|(_, t)| !(token_type::UNDEFINED..=token_type::BYTE).contains(*t))
        {
            return Err(tok_err(format!(
                "tokenizer.ggml.token_type[{i}] = {t} is not a token type (0..=6)"
            )));
        }
    }
    Ok(token_types)
}

/// `tokenizer.ggml.scores`, when present: one finite score per token.
fn read_scores(meta: &Metadata, n: usize) -> Result<Option<Vec<f64>>> {
    let scores = meta.f64_array("tokenizer.ggml.scores")?;
    if let Some(s) = &scores {
        if s.len() != n {
            return Err(tok_err(format!(
                "tokenizer.ggml.scores has {} entries but tokenizer.ggml.tokens has {n}",
                s.len()
            )));
        }
        if let Some((i, v)) = s.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(tok_err(format!(
                "tokenizer.ggml.scores[{i}] = {v} is not a finite number"
            )));
        }
    }
    Ok(scores)
}

/// Reads an optional token id and checks it against the vocabulary.
fn special_id(meta: &Metadata, key: &str, n_vocab: usize) -> Result<Option<u32>> {
    match meta.u64(key)? {
        None => Ok(None),
        Some(id) if (id as u128) < n_vocab as u128 => Ok(Some(id as u32)),
        Some(id) => Err(tok_err(format!(
            "{key} = {id} is out of range for a vocabulary of {n_vocab} tokens"
        ))),
    }
}
