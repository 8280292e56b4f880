//! Tokenizers built from GGUF metadata (`tokenizer.ggml.*`) or from a Hugging
//! Face `tokenizer.json`, on top of the `tokenizers` crate.
//!
//! The reference for token ids is the tokenizer Hugging Face `transformers`
//! (5.x) assembles out of the same GGUF metadata: every choice below (merges,
//! normalizer, pre-tokenizer, decoder, which tokens are special) follows it,
//! and where `transformers` has no opinion, llama.cpp's `llama-vocab.cpp`.
//!
//! * `tokenizer.ggml.model = "gpt2"`: byte-level BPE with the file's merges.
//!   `tokenizer.ggml.pre` picks the regex that cuts text into chunks before
//!   BPE ([`PRE_TOKENIZERS`]); an unknown value falls back to GPT-2's regex
//!   and says so in [`Tokenizer::warnings`].
//! * `tokenizer.ggml.model = "llama"`: a SentencePiece vocabulary (tokens,
//!   scores, token types) run as a BPE with byte fallback. The merges are
//!   recovered from the vocabulary: every split of a token into two tokens is
//!   a merge, ordered by the token's score (Gemma: by its position, because
//!   Gemma's scores are mostly one placeholder value). Three shapes, by
//!   `general.architecture`: Gemma (no prefix space, spaces become `▁` in a
//!   normalizer, runs of spaces in the vocabulary respelled as `▁`), Phi-3
//!   (the prefix `▁` comes from a normalizer) and plain Llama (a `Metaspace`
//!   pre-tokenizer that prepends `▁` to the start of the text only).
//!
//! Control tokens (token type 3) and the bos/eos/unk/pad tokens are special:
//! written literally in the text they become their single id, as in
//! `transformers`. User-defined tokens (type 4) are ordinary vocabulary
//! entries, again as in `transformers` (llama.cpp would match them literally).
//!
//! Where this deliberately differs from transformers' GGUF path (it follows
//! llama.cpp and the model's own `tokenizer.json` instead):
//! * `pre = smollm` (and llama.cpp's other digit-splitting values) splits
//!   every digit off before GPT-2's regex; transformers uses GPT-2's regex
//!   alone. Ids differ only where a run of spaces precedes a digit.
//! * `pre = llama3`/`llama-bpe`/`falcon3`/`tekken` take a chunk that is a
//!   whole vocabulary entry without merging (`ignore_merges`).
//! * `tokenizer.ggml.add_space_prefix = false` is honoured for Llama and
//!   Phi-3 vocabularies (transformers always adds the prefix space).
//! * the unknown token, when the file names one, replaces characters that
//!   have no byte-fallback token (transformers' Llama BPE drops them).
//!
//! Decoding is done here, not by the `tokenizers` decoder, so that
//! [`StreamDecoder`] can produce text incrementally with the guarantee that
//! the concatenation of its chunks equals [`Tokenizer::decode`]; the unit tests
//! check that both agree with the `tokenizers` decoder that `transformers` uses.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{NormalizerWrapper, Prepend, Replace};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::error::{Error, Result};
use crate::formats::gguf::Metadata;

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
pub mod token_type {
    pub const UNDEFINED: i64 = 0;
    pub const NORMAL: i64 = 1;
    pub const UNKNOWN: i64 = 2;
    pub const CONTROL: i64 = 3;
    pub const USER_DEFINED: i64 = 4;
    pub const UNUSED: i64 = 5;
    pub const BYTE: i64 = 6;
}

/// Token texts that end a turn or a generation (llama.cpp's list of
/// end-of-generation markers). A control token with one of these texts stops
/// generation.
pub const END_OF_TURN_MARKERS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
];

const SPIECE_UNDERLINE: char = '\u{2581}';

// The pre-tokenizer regexes, as the original `tokenizer.json` files state them.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a byte-level BPE cuts text into chunks before merging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreSplit {
    /// GPT-2's regex (the `ByteLevel` pre-tokenizer's own).
    Gpt2,
    /// Every digit alone, then GPT-2's regex (SmolLM, StarCoder, Command-R...).
    DigitsThenGpt2,
    /// A regex of its own, then byte-level mapping without a regex.
    Regex(&'static str),
}

/// One entry of [`PRE_TOKENIZERS`].
#[derive(Clone, Copy, Debug)]
pub struct PreTokenizerSpec {
    pub split: PreSplit,
    /// Take a chunk that is a whole vocabulary entry as is, without merging
    /// (what llama.cpp and the original tokenizers do for Llama 3 and Tekken).
    pub ignore_merges: bool,
    /// `add_bos` when the file has no `tokenizer.ggml.add_bos_token` (llama.cpp).
    pub add_bos_default: bool,
}

const fn pre(split: PreSplit, ignore_merges: bool, add_bos_default: bool) -> PreTokenizerSpec {
    PreTokenizerSpec {
        split,
        ignore_merges,
        add_bos_default,
    }
}

/// The `tokenizer.ggml.pre` values understood for byte-level vocabularies.
pub const PRE_TOKENIZERS: &[(&str, PreTokenizerSpec)] = &[
    ("default", pre(PreSplit::Gpt2, false, false)),
    ("gpt-2", pre(PreSplit::Gpt2, false, false)),
    ("gpt2", pre(PreSplit::Gpt2, false, false)),
    ("phi-2", pre(PreSplit::Gpt2, false, false)),
    ("roberta-bpe", pre(PreSplit::Gpt2, false, false)),
    ("mpt", pre(PreSplit::Gpt2, false, false)),
    ("olmo", pre(PreSplit::Gpt2, false, false)),
    ("jais", pre(PreSplit::Gpt2, false, false)),
    ("smollm", pre(PreSplit::DigitsThenGpt2, false, false)),
    ("starcoder", pre(PreSplit::DigitsThenGpt2, false, false)),
    ("refact", pre(PreSplit::DigitsThenGpt2, false, false)),
    ("command-r", pre(PreSplit::DigitsThenGpt2, false, false)),
    ("codeshell", pre(PreSplit::DigitsThenGpt2, false, false)),
    ("exaone", pre(PreSplit::DigitsThenGpt2, false, false)),
    ("minerva-7b", pre(PreSplit::DigitsThenGpt2, false, false)),
    ("llama3", pre(PreSplit::Regex(LLAMA3_SPLIT), true, true)),
    ("llama-v3", pre(PreSplit::Regex(LLAMA3_SPLIT), true, true)),
    ("llama-bpe", pre(PreSplit::Regex(LLAMA3_SPLIT), true, true)),
    ("falcon3", pre(PreSplit::Regex(LLAMA3_SPLIT), true, true)),
    (
        "falcon-h1",
        pre(PreSplit::Regex(LLAMA3_SPLIT), false, false),
    ),
    ("pixtral", pre(PreSplit::Regex(LLAMA3_SPLIT), false, false)),
    ("midm-2.0", pre(PreSplit::Regex(LLAMA3_SPLIT), false, false)),
    ("lfm2", pre(PreSplit::Regex(LLAMA3_SPLIT), false, false)),
    ("dbrx", pre(PreSplit::Regex(LLAMA3_SPLIT), false, false)),
    (
        "smaug-bpe",
        pre(PreSplit::Regex(LLAMA3_SPLIT), false, false),
    ),
    ("qwen2", pre(PreSplit::Regex(QWEN2_SPLIT), false, false)),
    (
        "deepseek-r1-qwen",
        pre(PreSplit::Regex(QWEN2_SPLIT), false, false),
    ),
    ("megrez", pre(PreSplit::Regex(QWEN2_SPLIT), false, false)),
    ("kormo", pre(PreSplit::Regex(QWEN2_SPLIT), false, false)),
    ("f2llmv2", pre(PreSplit::Regex(QWEN2_SPLIT), false, false)),
    ("qwen35", pre(PreSplit::Regex(QWEN35_SPLIT), false, false)),
    ("tekken", pre(PreSplit::Regex(TEKKEN_SPLIT), true, true)),
    ("gpt-4o", pre(PreSplit::Regex(GPT4O_SPLIT), false, false)),
    ("llama4", pre(PreSplit::Regex(GPT4O_SPLIT), false, false)),
    ("kanana2", pre(PreSplit::Regex(GPT4O_SPLIT), false, false)),
    (
        "minimax-m2",
        pre(PreSplit::Regex(GPT4O_SPLIT), false, false),
    ),
];

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

/// The shape of a SentencePiece tokenizer (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpmFlavor {
    Llama,
    Gemma,
    Phi3,
}

/// What one id contributes to decoded text.
#[derive(Clone, Debug)]
enum Piece {
    /// Bytes (byte-level: the token's bytes; SentencePiece: the token's text
    /// with `▁` turned into spaces).
    Text(Box<[u8]>),
    /// A `<0xXX>` byte-fallback token (SentencePiece only).
    Byte(u8),
}

/// How ids become text; mirrors the `tokenizers` decoder in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DecodeScheme {
    /// `ByteLevel` decoder: all bytes concatenated, invalid UTF-8 replaced.
    ByteLevel,
    /// `Replace(▁, " ")`, `ByteFallback`, `Fuse`, then optionally
    /// `Strip(" ", 1, 0)` (one leading space removed from the whole text).
    Spm { strip_leading_space: bool },
    /// Anything else (tokenizer.json only): the `tokenizers` decoder itself.
    Generic,
}

/// A tokenizer with the special-token facts generation needs.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
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
    vocab_size: usize,
    /// Per id, what it decodes to; `None` for ids that name no token.
    pieces: Vec<Option<Piece>>,
    scheme: DecodeScheme,
    /// tokenizer.json only: the post-processor adds the special tokens.
    specials_by_post_processor: bool,
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

fn tok_err(msg: impl Into<String>) -> Error {
    Error::Tokenizer(msg.into())
}

/// GPT-2's byte-to-character table: printable bytes stand for themselves,
/// the others are moved to U+0100 and up.
fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0u32;
    for b in 0..256u32 {
        let printable =
            (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let c = if printable {
            b
        } else {
            next += 1;
            255 + next
        };
        table[b as usize] = char::from_u32(c).expect("below the surrogate range");
    }
    table
}

/// Python's `str.isspace` for one character.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `<0xXX>` → the byte, exactly as the `ByteFallback` decoder reads it.
fn byte_token(token: &str) -> Option<u8> {
    if token.len() == 6 && token.starts_with("<0x") && token.ends_with('>') {
        u8::from_str_radix(&token[3..5], 16).ok()
    } else {
        None
    }
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

/// Splits a `tokenizer.ggml.merges` entry (`"left right"`).
fn parse_merge<'a>(key: &str, i: usize, merge: &'a str) -> Result<(&'a str, &'a str)> {
    match merge.split_once(' ') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => Ok((a, b)),
        _ => Err(tok_err(format!(
            "{key}[{i}] = {merge:?} is not two tokens separated by one space"
        ))),
    }
}

/// Checks that a merge names tokens of the vocabulary (the `tokenizers` BPE
/// refuses one that does not).
fn check_merge(key: &str, i: usize, a: &str, b: &str, vocab: &Vocab) -> Result<()> {
    for part in [a, b] {
        if !vocab.contains_key(part) {
            return Err(tok_err(format!(
                "{key}[{i}] = \"{a} {b}\": {part:?} is not in the vocabulary"
            )));
        }
    }
    let merged = format!("{a}{b}");
    if !vocab.contains_key(&merged) {
        return Err(tok_err(format!(
            "{key}[{i}] = \"{a} {b}\": the merged token {merged:?} is not in the vocabulary"
        )));
    }
    Ok(())
}

/// Recovers BPE merges from a SentencePiece vocabulary, exactly as
/// `transformers`' `generate_merges` does: every token that splits into two
/// tokens gives a merge per split point; within a token the splits are
/// ordered by (left id, right id); then all merges are ordered by the merged
/// token's rank, then the left and the right part's length in characters,
/// all descending, ties kept in vocabulary order (a stable sort).
///
/// `spelled[i]` is token `i` as the vocabulary holds it; `vocab` maps each
/// spelling to its (last) id; `rank[i]` is token `i`'s rank. For a spelling
/// that occurs more than once, the first occurrence gives its place and the
/// last its rank, as a Python dict built from the list would.
fn generate_merges<'a>(spelled: &[&'a str], vocab: &Vocab, rank: &[f64]) -> Vec<(String, String)> {
    use rayon::prelude::*;

    struct Candidate<'s> {
        rank: f64,
        len_left: usize,
        len_right: usize,
        left: &'s str,
        right: &'s str,
    }
    // Where a spelling occurs twice, only its first occurrence counts.
    let first: Option<Vec<bool>> = (vocab.len() != spelled.len()).then(|| {
        let mut seen = HashSet::with_capacity(spelled.len());
        spelled.iter().map(|t| seen.insert(*t)).collect()
    });
    let splits_of = |(i, token): (usize, &&'a str)| -> Vec<Candidate<'a>> {
        let token: &'a str = token;
        if first.as_ref().is_some_and(|f| !f[i]) {
            return Vec::new();
        }
        let Some(&id) = vocab.get(token) else {
            return Vec::new();
        };
        let mut local: Vec<(u32, u32, usize, &'a str, &'a str)> = Vec::new();
        for (n_left, (at, _)) in token.char_indices().enumerate().skip(1) {
            let (left, right) = token.split_at(at);
            // The right half is only looked up when the left one exists.
            if let Some(&l) = vocab.get(left) {
                if let Some(&r) = vocab.get(right) {
                    local.push((l, r, n_left, left, right));
                }
            }
        }
        if local.is_empty() {
            return Vec::new();
        }
        let n_chars = token.chars().count();
        local.sort_by_key(|&(l, r, ..)| (l, r));
        local
            .into_iter()
            .map(|(_, _, n_left, left, right)| Candidate {
                rank: rank[id as usize],
                len_left: n_left,
                len_right: n_chars - n_left,
                left,
                right,
            })
            .collect()
    };
    // In vocabulary order (the parallel collect keeps it).
    let mut merges: Vec<Candidate> = spelled
        .par_iter()
        .enumerate()
        .with_min_len(4096)
        .flat_map_iter(splits_of)
        .collect();
    // Ranks are finite (checked by the caller), so partial_cmp never fails;
    // -0.0 and 0.0 compare equal, as in Python. The sort is stable.
    merges.par_sort_by(|a, b| {
        b.rank
            .partial_cmp(&a.rank)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.len_left.cmp(&a.len_left))
            .then(b.len_right.cmp(&a.len_right))
    });
    merges
        .into_par_iter()
        .map(|m| (m.left.to_owned(), m.right.to_owned()))
        .collect()
}

/// Everything read from `tokenizer.ggml.*`, validated.
struct GgufVocab<'a> {
    model: &'a str,
    tokens: Vec<&'a str>,
    token_types: Option<Vec<i64>>,
    scores: Option<Vec<f64>>,
    merges: Option<Vec<&'a str>>,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
    unk_id: Option<u32>,
    pad_id: Option<u32>,
    eot_id: Option<u32>,
    eom_id: Option<u32>,
    add_bos: Option<bool>,
    add_eos: Option<bool>,
    add_space_prefix: Option<bool>,
    pre: Option<&'a str>,
    chat_template: Option<&'a str>,
    architecture: Option<&'a str>,
}

impl<'a> GgufVocab<'a> {
    fn read(meta: &'a Metadata) -> Result<GgufVocab<'a>> {
        let model = meta.str("tokenizer.ggml.model")?.ok_or_else(|| {
            tok_err("the file has no tokenizer (tokenizer.ggml.model is missing)")
        })?;
        if !matches!(model, "gpt2" | "llama") {
            return Err(tok_err(format!(
                "tokenizer model {model:?} (tokenizer.ggml.model) is not supported; \
                 supported: \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece)"
            )));
        }
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

    fn token_type(&self, i: usize) -> i64 {
        self.token_types
            .as_ref()
            .map_or(token_type::NORMAL, |t| t[i])
    }
}

/// A `HashMap` from spelling to id where a later duplicate wins, plus a
/// warning naming the duplicates.
fn vocab_map(spelled: &[&str], warnings: &mut Vec<String>) -> Vocab {
    let mut vocab = Vocab::with_capacity(spelled.len());
    let mut duplicates = Vec::new();
    for (i, t) in spelled.iter().enumerate() {
        if let Some(prev) = vocab.insert((*t).to_owned(), i as u32) {
            duplicates.push(format!("{t:?} ({prev} and {i})"));
        }
    }
    if !duplicates.is_empty() {
        let shown: Vec<_> = duplicates.iter().take(5).cloned().collect();
        warnings.push(format!(
            "{} duplicate token(s) in the vocabulary; the last id of each is the one encoding produces: {}{}",
            duplicates.len(),
            shown.join(", "),
            if duplicates.len() > 5 { ", ..." } else { "" }
        ));
    }
    vocab
}

fn bpe_error(e: impl std::fmt::Display) -> Error {
    tok_err(format!("cannot build the BPE model: {e}"))
}

fn decoder_spm(strip_leading_space: bool) -> Result<DecoderWrapper> {
    let mut seq: Vec<DecoderWrapper> = vec![
        Replace::new(SPIECE_UNDERLINE.to_string(), " ")
            .map_err(bpe_error)?
            .into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if strip_leading_space {
        seq.push(Strip::new(' ', 1, 0).into());
    }
    Ok(DecoderSequence::new(seq).into())
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`).
    pub fn from_gguf(meta: &Metadata) -> Result<Tokenizer> {
        let v = GgufVocab::read(meta)?;
        match v.model {
            "gpt2" => Self::byte_level_from_gguf(&v),
            _ => Self::sentencepiece_from_gguf(&v),
        }
    }

    fn byte_level_from_gguf(v: &GgufVocab<'_>) -> Result<Tokenizer> {
        let mut warnings = Vec::new();
        let table = bytes_to_unicode();
        let mut byte_of: HashMap<char, u8> = HashMap::with_capacity(256);
        for (b, c) in table.iter().enumerate() {
            byte_of.insert(*c, b as u8);
        }
        let in_alphabet = |t: &str| t.chars().all(|c| byte_of.contains_key(&c));

        // A token whose characters are not all byte-level ones is written raw
        // (llama.cpp did not encode it); key it by its byte-level spelling,
        // which is how the merges name it, and decode it from its raw bytes.
        let respelled: Vec<String> = v
            .tokens
            .iter()
            .map(|t| {
                if in_alphabet(t) {
                    (*t).to_owned()
                } else {
                    t.bytes().map(|b| table[b as usize]).collect()
                }
            })
            .collect();
        let spelled: Vec<&str> = respelled.iter().map(String::as_str).collect();
        let vocab = vocab_map(&spelled, &mut warnings);

        let key = "tokenizer.ggml.merges";
        let merge_strs = v.merges.as_ref().ok_or_else(|| {
            tok_err("tokenizer.ggml.merges is missing (required for a gpt2 tokenizer)")
        })?;
        let mut merges = Vec::with_capacity(merge_strs.len());
        for (i, m) in merge_strs.iter().enumerate() {
            let (a, b) = parse_merge(key, i, m)?;
            check_merge(key, i, a, b, &vocab)?;
            merges.push((a.to_owned(), b.to_owned()));
        }

        let spec = match v.pre {
            Some(p) => match PRE_TOKENIZERS.iter().find(|(name, _)| *name == p) {
                Some((_, spec)) => *spec,
                None => {
                    warnings.push(format!(
                        "unknown pre-tokenizer {p:?} (tokenizer.ggml.pre); using GPT-2's split, \
                         which may tokenize differently from the model's own tokenizer"
                    ));
                    pre(PreSplit::Gpt2, false, false)
                }
            },
            None => {
                warnings.push("no tokenizer.ggml.pre in the file; using GPT-2's split".to_owned());
                pre(PreSplit::Gpt2, false, false)
            }
        };

        let bpe = BPE::builder()
            .vocab_and_merges(
                vocab
                    .into_iter()
                    .collect::<tokenizers::models::bpe::Vocab>(),
                merges,
            )
            .ignore_merges(spec.ignore_merges)
            .build()
            .map_err(bpe_error)?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let pre_tokenizer: PreTokenizerWrapper = match spec.split {
            PreSplit::Gpt2 => ByteLevel::new(false, true, true).into(),
            PreSplit::DigitsThenGpt2 => PreSequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])
            .into(),
            PreSplit::Regex(re) => PreSequence::new(vec![
                Split::new(
                    SplitPattern::Regex(re.to_owned()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(|e| tok_err(format!("cannot compile the pre-tokenizer regex: {e}")))?
                .into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into(),
        };
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevel::default()));

        // Control tokens become special, except one not spelled byte-level
        // (a mislabelled byte sequence), as transformers does.
        let mut special: Vec<usize> = (0..v.tokens.len())
            .filter(|&i| v.token_type(i) == token_type::CONTROL)
            .collect();
        special.extend(
            [v.bos_id, v.eos_id, v.unk_id, v.pad_id]
                .into_iter()
                .flatten()
                .map(|i| i as usize),
        );
        let special_texts: Vec<&str> = special
            .iter()
            .map(|&i| v.tokens[i])
            .filter(|t| in_alphabet(t))
            .collect();
        add_specials(&mut inner, &special_texts);

        let pieces = respelled
            .iter()
            .map(|t| Some(Piece::Text(t.chars().map(|c| byte_of[&c]).collect())))
            .collect();

        let add_bos = v.add_bos.unwrap_or(spec.add_bos_default);
        let add_eos = v.add_eos.unwrap_or(false);
        Self::finish_gguf(
            v,
            inner,
            pieces,
            DecodeScheme::ByteLevel,
            add_bos,
            add_eos,
            TokenizerKind::ByteLevelBpe {
                pre: v.pre.map(str::to_owned),
            },
            warnings,
        )
    }

    fn sentencepiece_from_gguf(v: &GgufVocab<'_>) -> Result<Tokenizer> {
        let mut warnings = Vec::new();
        let arch = v.architecture.unwrap_or("");
        let flavor = if arch.starts_with("gemma") {
            SpmFlavor::Gemma
        } else if arch == "phi3" {
            SpmFlavor::Phi3
        } else {
            SpmFlavor::Llama
        };

        // Gemma files write a run of spaces as spaces; the vocabulary the
        // merges are derived from holds it as a run of `▁`.
        let respelled: Vec<Cow<'_, str>> = v
            .tokens
            .iter()
            .map(|t| {
                if flavor == SpmFlavor::Gemma && t.contains(' ') && t.chars().all(py_isspace) {
                    Cow::Owned(SPIECE_UNDERLINE.to_string().repeat(t.chars().count()))
                } else {
                    Cow::Borrowed(*t)
                }
            })
            .collect();
        let spelled: Vec<&str> = respelled.iter().map(|t| t.as_ref()).collect();
        let vocab = vocab_map(&spelled, &mut warnings);

        let merges: Vec<(String, String)> = match &v.merges {
            Some(merge_strs) => {
                let key = "tokenizer.ggml.merges";
                let mut merges = Vec::with_capacity(merge_strs.len());
                for (i, m) in merge_strs.iter().enumerate() {
                    let (a, b) = parse_merge(key, i, m)?;
                    check_merge(key, i, a, b, &vocab)?;
                    merges.push((a.to_owned(), b.to_owned()));
                }
                merges
            }
            None => {
                let rank: Vec<f64> = if flavor == SpmFlavor::Gemma {
                    // Gemma's scores are mostly one placeholder; its vocabulary
                    // is in merge order, so the position ranks the merges.
                    (0..v.tokens.len()).map(|i| -(i as f64)).collect()
                } else {
                    v.scores.clone().ok_or_else(|| {
                        tok_err(
                            "tokenizer.ggml.scores is missing: a SentencePiece vocabulary \
                             without tokenizer.ggml.merges needs scores to order its merges",
                        )
                    })?
                };
                generate_merges(&spelled, &vocab, &rank)
            }
        };

        let unk_token = match v.unk_id {
            Some(id) => Some(spelled[id as usize].to_owned()),
            None if flavor == SpmFlavor::Gemma && vocab.contains_key("<unk>") => {
                Some("<unk>".to_owned())
            }
            None => None,
        };
        let mut builder = BPE::builder()
            .vocab_and_merges(
                vocab
                    .into_iter()
                    .collect::<tokenizers::models::bpe::Vocab>(),
                merges,
            )
            .byte_fallback(true)
            .fuse_unk(true);
        if let Some(unk) = unk_token {
            builder = builder.unk_token(unk);
        }
        let bpe = builder.build().map_err(bpe_error)?;
        let mut inner = tokenizers::Tokenizer::new(bpe);

        let add_space_prefix = v.add_space_prefix.unwrap_or(true);
        let to_underline = || Replace::new(" ", SPIECE_UNDERLINE.to_string()).map_err(bpe_error);
        let strip = match flavor {
            SpmFlavor::Gemma => {
                if v.add_space_prefix == Some(true) {
                    warnings.push(
                        "tokenizer.ggml.add_space_prefix = true is ignored for Gemma, \
                         as transformers ignores it"
                            .to_owned(),
                    );
                }
                inner.with_normalizer(Some(to_underline()?));
                inner.with_pre_tokenizer(Some(
                    Split::new(
                        SplitPattern::String(" ".to_owned()),
                        SplitDelimiterBehavior::MergedWithPrevious,
                        false,
                    )
                    .map_err(bpe_error)?,
                ));
                false
            }
            SpmFlavor::Phi3 => {
                let mut seq: Vec<NormalizerWrapper> = Vec::new();
                if add_space_prefix {
                    seq.push(Prepend::new(SPIECE_UNDERLINE.to_string()).into());
                }
                seq.push(to_underline()?.into());
                inner.with_normalizer(Some(tokenizers::normalizers::Sequence::new(seq)));
                add_space_prefix
            }
            SpmFlavor::Llama => {
                let scheme = if add_space_prefix {
                    PrependScheme::First
                } else {
                    PrependScheme::Never
                };
                inner.with_pre_tokenizer(Some(Metaspace::new(SPIECE_UNDERLINE, scheme, false)));
                add_space_prefix
            }
        };
        inner.with_decoder(Some(decoder_spm(strip)?));

        let mut special: Vec<usize> = (0..v.tokens.len())
            .filter(|&i| v.token_type(i) == token_type::CONTROL)
            .collect();
        special.extend(
            [v.bos_id, v.eos_id, v.unk_id, v.pad_id]
                .into_iter()
                .flatten()
                .map(|i| i as usize),
        );
        let special_texts: Vec<&str> = special.iter().map(|&i| spelled[i]).collect();
        add_specials(&mut inner, &special_texts);

        let pieces = v
            .tokens
            .iter()
            .map(|t| {
                Some(match byte_token(t) {
                    Some(b) => Piece::Byte(b),
                    None => Piece::Text(t.replace(SPIECE_UNDERLINE, " ").into_bytes().into()),
                })
            })
            .collect();

        let add_bos = v.add_bos.unwrap_or(true);
        let add_eos = v.add_eos.unwrap_or(false);
        Self::finish_gguf(
            v,
            inner,
            pieces,
            DecodeScheme::Spm {
                strip_leading_space: strip,
            },
            add_bos,
            add_eos,
            TokenizerKind::SentencePiece { flavor },
            warnings,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_gguf(
        v: &GgufVocab<'_>,
        inner: tokenizers::Tokenizer,
        pieces: Vec<Option<Piece>>,
        scheme: DecodeScheme,
        add_bos: bool,
        add_eos: bool,
        kind: TokenizerKind,
        mut warnings: Vec<String>,
    ) -> Result<Tokenizer> {
        let n = v.tokens.len();
        // llama.cpp's defaults for a SentencePiece file without the keys.
        let spm = v.model == "llama";
        let default_id = |id: u32| (spm && (id as usize) < n).then_some(id);
        let bos_id = v.bos_id.or_else(|| default_id(1));
        let eos_id = v.eos_id.or_else(|| default_id(2));
        let unk_id = v.unk_id.or_else(|| default_id(0));

        let mut eog: Vec<u32> = [v.eot_id, v.eom_id].into_iter().flatten().collect();
        eog.extend((0..n).filter_map(|i| {
            (v.token_type(i) == token_type::CONTROL && END_OF_TURN_MARKERS.contains(&v.tokens[i]))
                .then_some(i as u32)
        }));
        eog.sort_unstable();
        eog.dedup();
        eog.retain(|&id| Some(id) != eos_id);

        if add_bos && bos_id.is_none() {
            warnings.push("add_bos is set but the file names no bos token".to_owned());
        }
        if add_eos && eos_id.is_none() {
            warnings.push("add_eos is set but the file names no eos token".to_owned());
        }
        Ok(Tokenizer {
            inner,
            bos_id,
            eos_id,
            extra_eog_ids: eog,
            unk_id,
            pad_id: v.pad_id,
            add_bos,
            add_eos,
            chat_template: v.chat_template.map(str::to_owned),
            warnings,
            kind,
            vocab_size: n,
            pieces,
            scheme,
            specials_by_post_processor: false,
        })
    }

    /// Builds a tokenizer from a Hugging Face `tokenizer.json`, with bos/eos,
    /// `add_bos_token`/`add_eos_token` and the chat template taken from
    /// `tokenizer_config.json` when given.
    ///
    /// The special tokens are added by the file's post-processor, unless
    /// `tokenizer_config.json` states `add_bos_token`/`add_eos_token`
    /// differently from what that post-processor does: then the config wins
    /// (as in transformers' Llama and Gemma tokenizers) and they are added here.
    pub fn from_tokenizer_json(path: &Path, tokenizer_config: Option<&Path>) -> Result<Tokenizer> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        // tokenizers 0.22 panics (an `expect` in its decoder deserializer)
        // instead of returning an error when the JSON is malformed inside the
        // "decoder" object (found by fuzz/: golden/hostile/hf/tokenizer-decoder-*):
        // check the whole file first, every string decoded, nothing built.
        serde_json::from_slice::<JsonCheck>(&bytes)
            .map_err(|e| tok_err(format!("{}: not valid JSON: {e}", path.display())))?;
        let mut inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| tok_err(format!("{}: {e}", path.display())))?;
        let mut warnings = Vec::new();

        let config: serde_json::Value = match tokenizer_config {
            Some(p) => {
                let text = std::fs::read(p).map_err(|e| Error::io(p, e))?;
                serde_json::from_slice(&text)
                    .map_err(|e| tok_err(format!("{}: not valid JSON: {e}", p.display())))?
            }
            None => serde_json::Value::Null,
        };
        let token_field = |name: &str| -> Option<String> {
            match config.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
                _ => None,
            }
        };
        let mut id_of = |name: &str| -> Option<u32> {
            let text = token_field(name)?;
            let id = inner.token_to_id(&text);
            if id.is_none() {
                warnings.push(format!(
                    "tokenizer_config.json names {name} {text:?}, which is not in the vocabulary"
                ));
            }
            id
        };
        let bos_id = id_of("bos_token");
        let eos_id = id_of("eos_token");
        let unk_id = id_of("unk_token");
        let pad_id = id_of("pad_token");
        let chat_template = match config.get("chat_template") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .or_else(|| list.first())
                .and_then(|t| t.get("template"))
                .and_then(|t| t.as_str())
                .map(str::to_owned),
            _ => None,
        };

        // What the post-processor adds around a sequence.
        let probe = |tk: &tokenizers::Tokenizer, special: bool| -> Result<Vec<u32>> {
            tk.encode("a", special)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| tok_err(format!("{}: {e}", path.display())))
        };
        let plain = probe(&inner, false)?;
        let with = probe(&inner, true)?;
        let (front, back) = match with
            .windows(plain.len().max(1))
            .position(|w| w == plain.as_slice())
        {
            Some(at) if !plain.is_empty() => (&with[..at], &with[at + plain.len()..]),
            _ => (&with[..0], &with[..0]),
        };
        let pp_bos = bos_id.is_some() && front == [bos_id.unwrap()];
        let pp_eos = eos_id.is_some() && back == [eos_id.unwrap()];
        let cfg_bos = config.get("add_bos_token").and_then(|b| b.as_bool());
        let cfg_eos = config.get("add_eos_token").and_then(|b| b.as_bool());
        let disagree = cfg_bos.is_some_and(|b| b != pp_bos) || cfg_eos.is_some_and(|b| b != pp_eos);
        let (add_bos, add_eos, by_post_processor) = if disagree {
            inner.with_post_processor(None::<PostProcessorWrapper>);
            (cfg_bos.unwrap_or(pp_bos), cfg_eos.unwrap_or(pp_eos), false)
        } else {
            (pp_bos, pp_eos, true)
        };

        let vocab = inner.get_vocab(true);
        let vocab_size = vocab.values().copied().max().map_or(0, |m| m as usize + 1);
        // The per-id table below is sized by the largest id: refuse an id no
        // embedding the engine accepts could have a row for, before a lying
        // file makes that table billions of entries long.
        if vocab_size > crate::formats::limits::MAX_VOCAB {
            return Err(tok_err(format!(
                "{}: token id {} exceeds the largest vocabulary the engine accepts ({} ids)",
                path.display(),
                vocab_size - 1,
                crate::formats::limits::MAX_VOCAB
            )));
        }
        let scheme = decode_scheme_of(inner.get_decoder());
        let table = bytes_to_unicode();
        let byte_of: HashMap<char, u8> = table
            .iter()
            .enumerate()
            .map(|(b, c)| (*c, b as u8))
            .collect();
        let mut pieces: Vec<Option<Piece>> = vec![None; vocab_size];
        for (text, &id) in &vocab {
            // Added tokens decode to their content.
            let text = inner.id_to_token(id).unwrap_or_else(|| text.clone());
            pieces[id as usize] = Some(match scheme {
                DecodeScheme::ByteLevel => {
                    if text.chars().all(|c| byte_of.contains_key(&c)) {
                        Piece::Text(text.chars().map(|c| byte_of[&c]).collect())
                    } else {
                        Piece::Text(text.into_bytes().into())
                    }
                }
                DecodeScheme::Spm { .. } => match byte_token(&text) {
                    Some(b) => Piece::Byte(b),
                    None => Piece::Text(text.replace(SPIECE_UNDERLINE, " ").into_bytes().into()),
                },
                DecodeScheme::Generic => Piece::Text(Box::default()),
            });
        }

        let special_eog: Vec<u32> = inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special && END_OF_TURN_MARKERS.contains(&t.content.as_str()))
            .map(|(id, _)| *id)
            .collect();
        let mut extra_eog_ids: Vec<u32> = special_eog
            .into_iter()
            .filter(|&id| Some(id) != eos_id)
            .collect();
        extra_eog_ids.sort_unstable();
        extra_eog_ids.dedup();

        Ok(Tokenizer {
            inner,
            bos_id,
            eos_id,
            extra_eog_ids,
            unk_id,
            pad_id,
            add_bos,
            add_eos,
            chat_template,
            warnings,
            kind: TokenizerKind::HuggingFace,
            vocab_size,
            pieces,
            scheme,
            specials_by_post_processor: by_post_processor,
        })
    }

    /// Number of ids (the embedding matrix must have at least this many rows).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The token's text as the vocabulary holds it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
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
        let encoding = self
            .inner
            .encode(text, add_special && self.specials_by_post_processor)
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

    /// The text of `ids`, special tokens included (transformers'
    /// `decode(ids, skip_special_tokens=False)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if self.scheme == DecodeScheme::Generic {
            self.check_ids(ids)?;
            return self
                .inner
                .decode(ids, false)
                .map_err(|e| tok_err(format!("cannot decode: {e}")));
        }
        let mut stream = self.stream_decoder();
        let mut out = String::new();
        for &id in ids {
            out.push_str(&stream.step(id)?);
        }
        out.push_str(&stream.finish());
        Ok(out)
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        for &id in ids {
            self.check_id(id)?;
        }
        Ok(())
    }

    fn check_id(&self, id: u32) -> Result<()> {
        match self.pieces.get(id as usize) {
            Some(Some(_)) => Ok(()),
            _ => Err(tok_err(format!(
                "id {id} names no token (vocabulary of {} ids)",
                self.vocab_size
            ))),
        }
    }

    /// A decoder that turns ids into text one at a time.
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder {
            tok: self,
            pending: Vec::new(),
            strip_pending: matches!(
                self.scheme,
                DecodeScheme::Spm {
                    strip_leading_space: true
                }
            ),
            window: Vec::new(),
            window_text: String::new(),
        }
    }

    /// Whether generating `id` ends the generation (eos, end-of-turn...).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        Some(id) == self.eos_id || self.extra_eog_ids.binary_search(&id).is_ok()
    }
}

/// Adds special tokens (once each, skipping empty ones); they keep their
/// vocabulary ids because they all are in the vocabulary.
fn add_specials(inner: &mut tokenizers::Tokenizer, texts: &[&str]) {
    let mut seen = HashSet::new();
    let tokens: Vec<AddedToken> = texts
        .iter()
        .filter(|t| !t.is_empty() && seen.insert(**t))
        .map(|t| AddedToken::from((*t).to_owned(), true).normalized(false))
        .collect();
    if !tokens.is_empty() {
        inner.add_special_tokens(&tokens);
    }
}

/// Recognizes the two decoders whose incremental form is implemented here.
fn decode_scheme_of(decoder: Option<&DecoderWrapper>) -> DecodeScheme {
    let Some(decoder) = decoder else {
        return DecodeScheme::Generic;
    };
    let Ok(json) = serde_json::to_value(decoder) else {
        return DecodeScheme::Generic;
    };
    let ty = |v: &serde_json::Value| v.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    match ty(&json).as_deref() {
        Some("ByteLevel") => DecodeScheme::ByteLevel,
        Some("Sequence") => {
            let Some(items) = json.get("decoders").and_then(|d| d.as_array()) else {
                return DecodeScheme::Generic;
            };
            let is_replace = |v: &serde_json::Value| {
                ty(v).as_deref() == Some("Replace")
                    && v.pointer("/pattern/String").and_then(|p| p.as_str()) == Some("\u{2581}")
                    && v.get("content").and_then(|c| c.as_str()) == Some(" ")
            };
            let is = |v: &serde_json::Value, name: &str| ty(v).as_deref() == Some(name);
            let is_strip = |v: &serde_json::Value| {
                is(v, "Strip")
                    && v.get("content").and_then(|c| c.as_str()) == Some(" ")
                    && v.get("start").and_then(|c| c.as_u64()) == Some(1)
                    && v.get("stop").and_then(|c| c.as_u64()) == Some(0)
            };
            let base = items.len() >= 3
                && is_replace(&items[0])
                && is(&items[1], "ByteFallback")
                && is(&items[2], "Fuse");
            match items.len() {
                3 if base => DecodeScheme::Spm {
                    strip_leading_space: false,
                },
                4 if base && is_strip(&items[3]) => DecodeScheme::Spm {
                    strip_leading_space: true,
                },
                _ => DecodeScheme::Generic,
            }
        }
        _ => DecodeScheme::Generic,
    }
}

/// Turns ids into text one at a time: each [`StreamDecoder::step`] returns the
/// text completed by that id (possibly empty, while a multi-byte character is
/// still incomplete), and [`StreamDecoder::finish`] whatever remains. The
/// concatenation of all chunks equals [`Tokenizer::decode`] of all the ids.
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    /// Byte-level: bytes not yet emitted (an incomplete UTF-8 sequence).
    /// SentencePiece: the current run of byte-fallback tokens.
    pending: Vec<u8>,
    /// SentencePiece with a prefix space: the first character of the whole
    /// text is still to come, and is dropped if it is a space.
    strip_pending: bool,
    /// Generic decoders: recent ids and their decoded text.
    window: Vec<u32>,
    window_text: String,
}

impl StreamDecoder<'_> {
    /// Feeds one id; returns the newly completed text.
    pub fn step(&mut self, id: u32) -> Result<String> {
        self.tok.check_id(id)?;
        let piece = self.tok.pieces[id as usize]
            .as_ref()
            .expect("checked by check_id");
        let mut out = String::new();
        match self.tok.scheme {
            DecodeScheme::ByteLevel => {
                if let Piece::Text(bytes) = piece {
                    self.pending.extend_from_slice(bytes);
                }
                drain_utf8(&mut self.pending, &mut out, false);
            }
            DecodeScheme::Spm { .. } => match piece {
                Piece::Byte(b) => self.pending.push(*b),
                Piece::Text(bytes) => {
                    self.flush_byte_run(&mut out);
                    // Text pieces are valid UTF-8 (token texts are strings).
                    out.push_str(&String::from_utf8_lossy(bytes));
                }
            },
            DecodeScheme::Generic => return self.step_generic(id),
        }
        Ok(self.apply_strip(out))
    }

    /// Ends the stream; returns the text still held back (an incomplete
    /// character at the very end decodes to U+FFFD, as in `decode`).
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        match self.tok.scheme {
            DecodeScheme::ByteLevel => drain_utf8(&mut self.pending, &mut out, true),
            DecodeScheme::Spm { .. } => self.flush_byte_run(&mut out),
            DecodeScheme::Generic => {
                self.window.clear();
                self.window_text.clear();
            }
        }
        self.apply_strip(out)
    }

    /// Ends a generation's stream that may have stopped inside a multi-byte
    /// character: returns the text still held back that forms whole
    /// characters, and the bytes of the incomplete character at the very end,
    /// held back instead of becoming U+FFFD as in [`StreamDecoder::finish`].
    /// For decoders handled only through the `tokenizers` crate (neither
    /// byte-level nor SentencePiece) the bytes are not known and come back empty;
    /// their incomplete tail is dropped, not printed as U+FFFD.
    pub fn finish_held(&mut self) -> (String, Vec<u8>) {
        let mut out = String::new();
        let held = match self.tok.scheme {
            DecodeScheme::ByteLevel => {
                drain_utf8(&mut self.pending, &mut out, false);
                std::mem::take(&mut self.pending)
            }
            DecodeScheme::Spm { .. } => {
                let tail = incomplete_tail_len(&self.pending);
                let held = self.pending.split_off(self.pending.len() - tail);
                self.flush_byte_run(&mut out);
                held
            }
            DecodeScheme::Generic => {
                self.window.clear();
                self.window_text.clear();
                Vec::new()
            }
        };
        (self.apply_strip(out), held)
    }

    /// A run of byte tokens becomes its UTF-8 text, or one U+FFFD per byte
    /// if the run as a whole is not valid UTF-8 (the `ByteFallback` rule).
    fn flush_byte_run(&mut self, out: &mut String) {
        if self.pending.is_empty() {
            return;
        }
        match std::str::from_utf8(&self.pending) {
            Ok(s) => out.push_str(s),
            Err(_) => out.extend(std::iter::repeat_n('\u{FFFD}', self.pending.len())),
        }
        self.pending.clear();
    }

    fn apply_strip(&mut self, mut out: String) -> String {
        if self.strip_pending && !out.is_empty() {
            self.strip_pending = false;
            if out.starts_with(' ') {
                out.remove(0);
            }
        }
        out
    }

    fn step_generic(&mut self, id: u32) -> Result<String> {
        let decode = |ids: &[u32]| {
            self.tok
                .inner
                .decode(ids, false)
                .map_err(|e| tok_err(format!("cannot decode: {e}")))
        };
        self.window.push(id);
        let text = decode(&self.window)?;
        if text.len() > self.window_text.len()
            && text.starts_with(self.window_text.as_str())
            && !text.ends_with('\u{FFFD}')
        {
            let new = text[self.window_text.len()..].to_owned();
            // Keep the last id as context for the next one.
            self.window = vec![id];
            self.window_text = decode(&self.window)?;
            Ok(new)
        } else {
            Ok(String::new())
        }
    }
}

/// Length of the incomplete UTF-8 sequence that ends `bytes` (a lead byte
/// and fewer continuation bytes than it announces), 0 if there is none.
fn incomplete_tail_len(bytes: &[u8]) -> usize {
    let Some(lead) = (bytes.len().saturating_sub(3)..bytes.len())
        .rev()
        .find(|&i| bytes[i] & 0xC0 != 0x80)
    else {
        return 0;
    };
    match std::str::from_utf8(&bytes[lead..]) {
        Err(e) if e.valid_up_to() == 0 && e.error_len().is_none() => bytes.len() - lead,
        _ => 0,
    }
}

/// Moves the decodable prefix of `pending` into `out` the way
/// `String::from_utf8_lossy` would decode it, keeping back a trailing
/// incomplete sequence unless `at_end`.
fn drain_utf8(pending: &mut Vec<u8>, out: &mut String, at_end: bool) {
    let mut start = 0;
    loop {
        match std::str::from_utf8(&pending[start..]) {
            Ok(s) => {
                out.push_str(s);
                start = pending.len();
                break;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(
                    std::str::from_utf8(&pending[start..start + valid]).expect("valid prefix"),
                );
                start += valid;
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        start += n;
                    }
                    None => {
                        if at_end {
                            out.push('\u{FFFD}');
                            start = pending.len();
                        }
                        break;
                    }
                }
            }
        }
    }
    pending.drain(..start);
}

/// Deserializes any JSON value and keeps nothing, but decodes every string
/// and number the way a real parse does (UTF-8, escapes, surrogates, range),
/// so that a file it accepts cannot make a later parse fail on its syntax.
/// `serde::de::IgnoredAny` is not enough: it skips strings without decoding
/// them. Nesting is bounded by serde_json's recursion limit.
struct JsonCheck;

impl<'de> serde::Deserialize<'de> for JsonCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(JsonCheckVisitor)
    }
}

struct JsonCheckVisitor;

impl<'de> serde::de::Visitor<'de> for JsonCheckVisitor {
    type Value = JsonCheck;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_unit<E>(self) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_none<E>(self) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_some<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<JsonCheck, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<JsonCheck, A::Error> {
        while seq.next_element::<JsonCheck>()?.is_some() {}
        Ok(JsonCheck)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<JsonCheck, A::Error> {
        while map.next_entry::<JsonCheck, JsonCheck>()?.is_some() {}
        Ok(JsonCheck)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal GGUF writer for metadata-only files.
    #[derive(Default)]
    struct Kv {
        buf: Vec<u8>,
        n: u64,
    }

    impl Kv {
        fn key(&mut self, k: &str, ty: u32) {
            self.buf.extend((k.len() as u64).to_le_bytes());
            self.buf.extend(k.as_bytes());
            self.buf.extend(ty.to_le_bytes());
            self.n += 1;
        }
        fn s(mut self, k: &str, v: &str) -> Self {
            self.key(k, 8);
            self.buf.extend((v.len() as u64).to_le_bytes());
            self.buf.extend(v.as_bytes());
            self
        }
        fn u32(mut self, k: &str, v: u32) -> Self {
            self.key(k, 4);
            self.buf.extend(v.to_le_bytes());
            self
        }
        fn b(mut self, k: &str, v: bool) -> Self {
            self.key(k, 7);
            self.buf.push(v as u8);
            self
        }
        fn strs(mut self, k: &str, v: &[&str]) -> Self {
            self.key(k, 9);
            self.buf.extend(8u32.to_le_bytes());
            self.buf.extend((v.len() as u64).to_le_bytes());
            for s in v {
                self.buf.extend((s.len() as u64).to_le_bytes());
                self.buf.extend(s.as_bytes());
            }
            self
        }
        fn f32s(mut self, k: &str, v: &[f32]) -> Self {
            self.key(k, 9);
            self.buf.extend(6u32.to_le_bytes());
            self.buf.extend((v.len() as u64).to_le_bytes());
            for x in v {
                self.buf.extend(x.to_le_bytes());
            }
            self
        }
        fn i32s(mut self, k: &str, v: &[i32]) -> Self {
            self.key(k, 9);
            self.buf.extend(5u32.to_le_bytes());
            self.buf.extend((v.len() as u64).to_le_bytes());
            for x in v {
                self.buf.extend(x.to_le_bytes());
            }
            self
        }
        fn meta(&self) -> Metadata {
            let mut out = b"GGUF".to_vec();
            out.extend(3u32.to_le_bytes());
            out.extend(0u64.to_le_bytes());
            out.extend(self.n.to_le_bytes());
            out.extend(&self.buf);
            while out.len() & 31 != 0 {
                out.push(0);
            }
            crate::formats::gguf::parse_bytes(&out).unwrap().0
        }
    }

    /// A SentencePiece vocabulary: specials, all 256 byte tokens, then pieces
    /// in merge order (score = -rank).
    fn spm_vocab(pieces: &[&str]) -> (Vec<String>, Vec<f32>, Vec<i32>) {
        let mut tokens = vec!["<unk>".to_owned(), "<s>".to_owned(), "</s>".to_owned()];
        let mut scores = vec![0.0f32; 3];
        let mut types = vec![2, 3, 3];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            scores.push(0.0);
            types.push(6);
        }
        for (i, p) in pieces.iter().enumerate() {
            tokens.push((*p).to_owned());
            scores.push(-(i as f32));
            types.push(1);
        }
        (tokens, scores, types)
    }

    const PIECES: &[&str] = &[
        "▁", "h", "e", "l", "o", "w", "r", "d", "<", ">", "|", "t", "a", "▁t", "he", "ll", "▁the",
        "▁h", "▁hell", "hell", "▁w", "or", "▁wor", "ld", "▁world", "▁hello", "lo", "▁a",
    ];

    fn spm_meta(arch: &str, extra: impl FnOnce(Kv) -> Kv) -> Metadata {
        let (tokens, scores, types) = spm_vocab(PIECES);
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let kv = Kv::default()
            .s("general.architecture", arch)
            .s("tokenizer.ggml.model", "llama")
            .strs("tokenizer.ggml.tokens", &refs)
            .f32s("tokenizer.ggml.scores", &scores)
            .i32s("tokenizer.ggml.token_type", &types)
            .u32("tokenizer.ggml.bos_token_id", 1)
            .u32("tokenizer.ggml.eos_token_id", 2)
            .u32("tokenizer.ggml.unknown_token_id", 0);
        extra(kv).meta()
    }

    fn id(tok: &Tokenizer, s: &str) -> u32 {
        tok.token_to_id(s)
            .unwrap_or_else(|| panic!("{s:?} not in vocab"))
    }

    #[test]
    fn bytes_to_unicode_is_gpt2s() {
        let t = bytes_to_unicode();
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[0], 'Ā');
        let distinct: HashSet<char> = t.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn generated_merges_follow_rank_then_lengths() {
        let spelled = ["a", "b", "c", "ab", "bc", "abc"];
        let vocab: Vocab = spelled
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect();
        // "abc" ranks first and splits two ways: "ab"+"c" (longer left) first.
        let rank = [0.0, 0.0, 0.0, -2.0, -3.0, -1.0];
        let m = generate_merges(&spelled, &vocab, &rank);
        let m: Vec<(&str, &str)> = m.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(m, [("ab", "c"), ("a", "bc"), ("a", "b"), ("b", "c")]);
    }

    #[test]
    fn sentencepiece_llama_encodes_and_decodes() {
        let tok = Tokenizer::from_gguf(&spm_meta("llama", |k| k)).unwrap();
        assert!(tok.warnings.is_empty(), "{:?}", tok.warnings);
        assert_eq!(
            tok.kind,
            TokenizerKind::SentencePiece {
                flavor: SpmFlavor::Llama
            }
        );
        assert!(tok.add_bos && !tok.add_eos);
        let ids = tok.encode("hello world", true).unwrap();
        assert_eq!(ids, vec![1, id(&tok, "▁hello"), id(&tok, "▁world")]);
        assert_eq!(tok.decode(&ids[1..]).unwrap(), "hello world");
        // The special token is recognized in the text, and the text after it
        // gets no prefix space (Metaspace "first").
        let ids = tok.encode("<s>hello", false).unwrap();
        assert_eq!(ids, vec![1, id(&tok, "hell"), id(&tok, "o")]);
        // Unknown characters fall back to bytes.
        let ids = tok.encode("é", false).unwrap();
        assert_eq!(ids, vec![id(&tok, "▁"), 3 + 0xC3, 3 + 0xA9]);
        assert_eq!(tok.decode(&ids).unwrap(), " é".trim_start());
    }

    #[test]
    fn sentencepiece_without_space_prefix() {
        let tok = Tokenizer::from_gguf(&spm_meta("llama", |k| {
            k.b("tokenizer.ggml.add_space_prefix", false)
        }))
        .unwrap();
        let ids = tok.encode("hello", false).unwrap();
        assert_eq!(ids, vec![id(&tok, "hell"), id(&tok, "o")]);
        assert_eq!(
            tok.decode(&tok.encode(" hello", false).unwrap()).unwrap(),
            " hello"
        );
    }

    #[test]
    fn gemma_and_phi3_flavors() {
        let tok = Tokenizer::from_gguf(&spm_meta("gemma3", |k| k)).unwrap();
        assert_eq!(
            tok.kind,
            TokenizerKind::SentencePiece {
                flavor: SpmFlavor::Gemma
            }
        );
        // No prefix space for Gemma.
        assert_eq!(
            tok.encode("hello", false).unwrap(),
            vec![id(&tok, "hell"), id(&tok, "o")]
        );
        assert_eq!(tok.decode(&[id(&tok, "▁hello")]).unwrap(), " hello");

        let tok = Tokenizer::from_gguf(&spm_meta("phi3", |k| k)).unwrap();
        assert_eq!(
            tok.kind,
            TokenizerKind::SentencePiece {
                flavor: SpmFlavor::Phi3
            }
        );
        // The prefix `▁` comes back after a special token too (a normalizer).
        let ids = tok.encode("<s>hello", false).unwrap();
        assert_eq!(ids, vec![1, id(&tok, "▁hello")]);
    }

    #[test]
    fn byte_level_bpe_with_specials_and_pre() {
        let mut tokens: Vec<String> = vec![
            "<|endoftext|>".into(),
            "<|im_start|>".into(),
            "<|im_end|>".into(),
        ];
        let table = bytes_to_unicode();
        tokens.extend(table.iter().map(|c| c.to_string()));
        tokens.extend(["Ġh", "el", "lo", "hel", "hello", "Ġhello", "12"].map(String::from));
        let merges = ["Ġ h", "e l", "l o", "h el", "hel lo", "Ġh ello", "1 2"];
        // "ello" is needed by "Ġh ello": add it and its merge.
        tokens.push("ello".into());
        let merges: Vec<&str> = merges.iter().copied().chain(["el lo"]).collect();
        let mut types = vec![3i32; 3];
        types.extend(std::iter::repeat_n(1, tokens.len() - 3));
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let build = |pre: Option<&str>| {
            let mut kv = Kv::default()
                .s("general.architecture", "qwen2")
                .s("tokenizer.ggml.model", "gpt2")
                .strs("tokenizer.ggml.tokens", &refs)
                .i32s("tokenizer.ggml.token_type", &types)
                .strs("tokenizer.ggml.merges", &merges)
                .u32("tokenizer.ggml.eos_token_id", 2);
            if let Some(p) = pre {
                kv = kv.s("tokenizer.ggml.pre", p);
            }
            Tokenizer::from_gguf(&kv.meta()).unwrap()
        };
        let tok = build(Some("qwen2"));
        assert!(tok.warnings.is_empty(), "{:?}", tok.warnings);
        assert!(!tok.add_bos);
        let ids = tok
            .encode("<|im_start|>hello hello<|im_end|>", true)
            .unwrap();
        assert_eq!(ids, vec![1, id(&tok, "hello"), id(&tok, "Ġhello"), 2]);
        assert_eq!(
            tok.decode(&ids).unwrap(),
            "<|im_start|>hello hello<|im_end|>"
        );
        assert!(tok.is_end_of_generation(2));
        assert!(tok.is_end_of_generation(0), "<|endoftext|> ends generation");
        assert!(!tok.is_end_of_generation(1));
        // qwen2 splits digits one by one; gpt-2 keeps "12" together.
        assert_eq!(tok.encode("12", false).unwrap().len(), 2);
        let gpt2 = build(Some("gpt-2"));
        assert_eq!(gpt2.encode("12", false).unwrap(), vec![id(&gpt2, "12")]);
        let smol = build(Some("smollm"));
        assert_eq!(smol.encode("12", false).unwrap().len(), 2);
        // Unknown and missing pre values fall back to GPT-2 with a warning.
        let odd = build(Some("no-such-pre"));
        assert!(
            odd.warnings.iter().any(|w| w.contains("no-such-pre")),
            "{:?}",
            odd.warnings
        );
        assert_eq!(odd.encode("12", false).unwrap(), vec![id(&odd, "12")]);
        assert!(!build(None).warnings.is_empty());
    }

    #[test]
    fn stream_decoding_matches_decode_and_the_tokenizers_decoder() {
        // SentencePiece with byte fallback: multi-byte characters split over
        // byte tokens, invalid runs, the leading-space rule.
        for arch in ["llama", "gemma", "phi3"] {
            let tok = Tokenizer::from_gguf(&spm_meta(arch, |k| k)).unwrap();
            let e_acute = [3 + 0xC3, 3 + 0xA9];
            let euro = [3 + 0xE2, 3 + 0x82, 3 + 0xAC];
            let hello = id(&tok, "▁hello");
            let cases: Vec<Vec<u32>> = vec![
                vec![hello, hello],
                e_acute.to_vec(),
                [&e_acute[..], &[hello], &euro[..]].concat(),
                [&euro[..2], &[hello]].concat(),
                vec![3 + 0x20, hello],
                vec![1, hello, 2],
                [&euro[..], &euro[..1]].concat(),
                vec![],
            ];
            for ids in cases {
                let reference = tok.inner().decode(&ids, false).unwrap();
                assert_eq!(tok.decode(&ids).unwrap(), reference, "{arch} {ids:?}");
                let mut s = tok.stream_decoder();
                let mut chunks = String::new();
                for &i in &ids {
                    chunks.push_str(&s.step(i).unwrap());
                }
                chunks.push_str(&s.finish());
                assert_eq!(chunks, reference, "{arch} {ids:?}");
            }
        }
    }

    /// A byte-level (GPT-2) tokenizer with no merges: id 0 is
    /// `<|endoftext|>`, id `1 + b` is byte `b`.
    fn byte_level_tokenizer() -> Tokenizer {
        let mut tokens: Vec<String> = vec!["<|endoftext|>".into()];
        tokens.extend(bytes_to_unicode().iter().map(|c| c.to_string()));
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let meta = Kv::default()
            .s("tokenizer.ggml.model", "gpt2")
            .s("tokenizer.ggml.pre", "default")
            .strs("tokenizer.ggml.tokens", &refs)
            .strs("tokenizer.ggml.merges", &[])
            .meta();
        Tokenizer::from_gguf(&meta).unwrap()
    }

    #[test]
    fn byte_level_stream_holds_incomplete_characters() {
        let tok = byte_level_tokenizer();
        let ids = tok.encode("a€b", false).unwrap();
        assert_eq!(ids.len(), 5);
        let mut s = tok.stream_decoder();
        let chunks: Vec<String> = ids.iter().map(|&i| s.step(i).unwrap()).collect();
        assert_eq!(chunks, ["a", "", "", "€", "b"]);
        // A truncated character, an invalid byte and a valid one afterwards.
        let byte = |b: u8| 1 + b as u32;
        for ids in [
            vec![byte(0xE2), byte(0x82)],
            vec![byte(0xFF), byte(b'x')],
            vec![byte(0xE2), byte(b'x')],
        ] {
            let reference = tok.inner().decode(&ids, false).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), reference);
        }
    }

    #[test]
    fn finish_held_keeps_back_an_incomplete_last_character() {
        // Byte-level: 😀 is F0 9F 98 80, one byte token each.
        let tok = byte_level_tokenizer();
        let emoji = tok.encode("a😀", false).unwrap();
        assert_eq!(emoji.len(), 5);
        let run = |ids: &[u32]| {
            let mut s = tok.stream_decoder();
            let mut text: String = ids.iter().map(|&i| s.step(i).unwrap()).collect();
            let (tail, held) = s.finish_held();
            text.push_str(&tail);
            (text, held)
        };
        for cut in 2..5 {
            let (text, held) = run(&emoji[..cut]);
            assert_eq!(text, "a", "cut after {cut} ids");
            assert_eq!(held, &[0xF0, 0x9F, 0x98][..cut - 1]);
            // `finish` (and `decode`) still turn the tail into U+FFFD.
            assert!(tok.decode(&emoji[..cut]).unwrap().ends_with('\u{FFFD}'));
        }
        assert_eq!(run(&emoji), ("a😀".to_string(), vec![]));
        // An invalid byte is not "incomplete": it stays U+FFFD.
        let byte = |b: u8| 1 + b as u32;
        let (text, held) = run(&[emoji[0], byte(0xFF)]);
        assert!(
            held.is_empty() && text.ends_with('\u{FFFD}'),
            "{text:?} {held:?}"
        );

        // SentencePiece byte fallback: a run of byte tokens cut inside €.
        let tok = Tokenizer::from_gguf(&spm_meta("llama", |k| k)).unwrap();
        let hello = id(&tok, "▁hello");
        let euro = [3 + 0xE2, 3 + 0x82, 3 + 0xAC];
        let e_acute = [3 + 0xC3, 3 + 0xA9];
        let mut s = tok.stream_decoder();
        let mut text = String::new();
        for &i in [&[hello], &e_acute[..], &euro[..2]].concat().iter() {
            text.push_str(&s.step(i).unwrap());
        }
        let (tail, held) = s.finish_held();
        text.push_str(&tail);
        assert_eq!(
            (text.as_str(), held.as_slice()),
            ("hello\u{e9}", &[0xE2, 0x82][..])
        );
        assert_eq!(incomplete_tail_len(&[0xE2, 0x82, 0xAC]), 0);
        assert_eq!(incomplete_tail_len(&[b'x', 0xF0]), 1);
        assert_eq!(incomplete_tail_len(&[0x82, 0x82]), 0);
        assert_eq!(incomplete_tail_len(&[]), 0);
    }

    #[test]
    fn errors_are_clear() {
        let err = |meta: Metadata| Tokenizer::from_gguf(&meta).unwrap_err().to_string();
        let e = err(Kv::default()
            .s("tokenizer.ggml.model", "bert")
            .strs("tokenizer.ggml.tokens", &["a"])
            .meta());
        assert!(e.contains("\"bert\"") && e.contains("not supported"), "{e}");
        let e = err(Kv::default().s("tokenizer.ggml.model", "rwkv").meta());
        assert!(e.contains("rwkv"), "{e}");
        let e = err(Kv::default().meta());
        assert!(e.contains("tokenizer.ggml.model"), "{e}");
        let e = err(Kv::default().s("tokenizer.ggml.model", "llama").meta());
        assert!(e.contains("tokenizer.ggml.tokens"), "{e}");

        let base = || {
            Kv::default()
                .s("tokenizer.ggml.model", "llama")
                .strs("tokenizer.ggml.tokens", &["<unk>", "a", "b", "ab"])
        };
        let e = err(base().f32s("tokenizer.ggml.scores", &[0.0, 1.0]).meta());
        assert!(
            e.contains("scores has 2 entries") && e.contains("has 4"),
            "{e}"
        );
        let e = err(base()
            .f32s("tokenizer.ggml.scores", &[0.0; 4])
            .i32s("tokenizer.ggml.token_type", &[2, 1, 1])
            .meta());
        assert!(e.contains("token_type has 3 entries"), "{e}");
        let e = err(base()
            .f32s("tokenizer.ggml.scores", &[0.0; 4])
            .i32s("tokenizer.ggml.token_type", &[2, 1, 1, 9])
            .meta());
        assert!(e.contains("token_type[3] = 9"), "{e}");
        let e = err(base()
            .f32s("tokenizer.ggml.scores", &[0.0, f32::NAN, 0.0, 0.0])
            .meta());
        assert!(e.contains("scores[1]"), "{e}");
        let e = err(base()
            .f32s("tokenizer.ggml.scores", &[0.0; 4])
            .u32("tokenizer.ggml.eos_token_id", 4)
            .meta());
        assert!(
            e.contains("eos_token_id = 4") && e.contains("out of range"),
            "{e}"
        );
        let e = err(base().meta());
        assert!(e.contains("scores is missing"), "{e}");
        // Works once complete.
        let tok = Tokenizer::from_gguf(
            &base()
                .f32s("tokenizer.ggml.scores", &[0.0, -1.0, -2.0, -3.0])
                .meta(),
        )
        .unwrap();
        assert_eq!(tok.encode("ab", false).unwrap(), vec![3]);

        let bpe = |merges: &[&str]| {
            Kv::default()
                .s("tokenizer.ggml.model", "gpt2")
                .s("tokenizer.ggml.pre", "gpt-2")
                .strs("tokenizer.ggml.tokens", &["a", "b", "ab"])
                .strs("tokenizer.ggml.merges", merges)
                .meta()
        };
        let e = err(bpe(&["a b", "ab"]));
        assert!(
            e.contains("merges[1]") && e.contains("not two tokens"),
            "{e}"
        );
        let e = err(bpe(&["a  b"]));
        assert!(e.contains("merges[0]"), "{e}");
        let e = err(bpe(&["a c"]));
        assert!(e.contains("\"c\" is not in the vocabulary"), "{e}");
        let e = err(bpe(&["b a"]));
        assert!(e.contains("merged token \"ba\""), "{e}");
        let e = err(Kv::default()
            .s("tokenizer.ggml.model", "gpt2")
            .strs("tokenizer.ggml.tokens", &["a"])
            .meta());
        assert!(e.contains("merges is missing"), "{e}");
        assert!(Tokenizer::from_gguf(&bpe(&["a b"])).is_ok());

        // Decoding an id that names no token is an error, not a panic.
        let tok = Tokenizer::from_gguf(&bpe(&["a b"])).unwrap();
        assert!(tok.decode(&[3]).unwrap_err().to_string().contains("id 3"));
        assert!(tok.stream_decoder().step(u32::MAX).is_err());
    }

    #[test]
    fn duplicate_tokens_are_tolerated_with_a_warning() {
        let meta = Kv::default()
            .s("tokenizer.ggml.model", "llama")
            .strs("tokenizer.ggml.tokens", &["<unk>", "a", "b", "a"])
            .f32s("tokenizer.ggml.scores", &[0.0, -1.0, -2.0, -3.0])
            .meta();
        let tok = Tokenizer::from_gguf(&meta).unwrap();
        assert!(
            tok.warnings.iter().any(|w| w.contains("duplicate")),
            "{:?}",
            tok.warnings
        );
        assert_eq!(tok.decode(&[1, 3]).unwrap(), "aa");
    }

    #[test]
    fn tokenizer_json_round_trip() {
        // Serialize a GGUF-built tokenizer as tokenizer.json and load it back.
        let gguf = Tokenizer::from_gguf(&spm_meta("llama", |k| k)).unwrap();
        let dir = std::env::temp_dir().join(format!("atenia-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("tokenizer.json");
        gguf.inner().save(&json, false).unwrap();
        let config = dir.join("tokenizer_config.json");
        std::fs::write(
            &config,
            r#"{"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": true,
                "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"}"#,
        )
        .unwrap();
        let tok = Tokenizer::from_tokenizer_json(&json, Some(&config)).unwrap();
        assert_eq!(tok.bos_id, Some(1));
        assert_eq!(tok.eos_id, Some(2));
        assert!(tok.add_bos && !tok.add_eos);
        assert_eq!(
            tok.scheme,
            DecodeScheme::Spm {
                strip_leading_space: true
            }
        );
        let text = "hello world";
        assert_eq!(
            tok.encode(text, true).unwrap(),
            gguf.encode(text, true).unwrap()
        );
        let ids = gguf.encode(text, false).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), gguf.decode(&ids).unwrap());
        let msgs = [crate::text::chat_template::ChatMessage {
            role: "user".into(),
            content: "hello".into(),
        }];
        assert_eq!(
            tok.apply_chat_template(&msgs, false).unwrap(),
            vec![1, id(&tok, "hell"), id(&tok, "o")]
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
