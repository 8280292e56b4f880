//! Byte-level BPE from GGUF metadata (`tokenizer.ggml.model = "gpt2"`):
//! tokens spelled in GPT-2's byte alphabet, the file's merges, and the regex
//! `tokenizer.ggml.pre` names to cut text into chunks before merging
//! ([`PRE_TOKENIZERS`]; an unknown value falls back to GPT-2's regex and says
//! so in the tokenizer's warnings).

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

use crate::error::Result;
use crate::text::compact::{BpeOptions, CompactBpe, MergeTable, VocabIndex};
use crate::text::decode::{DecodeScheme, Piece};
use crate::text::gguf_vocab::{Built, GgufVocab};
use crate::text::merges::read_merges;
use crate::text::special::add_specials;
use crate::text::tokenizer::{CompactPipeline, Tokenizer, TokenizerKind};
use crate::text::vocab::{tok_err, ByteAlphabet};

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

/// The byte-level BPE tokenizer `v` describes.
pub(super) fn build(v: &GgufVocab<'_>) -> Result<Tokenizer> {
    let mut warnings = Vec::new();
    let alphabet = ByteAlphabet::new();
    // A token whose characters are not all byte-level ones is written raw
    // (llama.cpp did not encode it); key it by its byte-level spelling,
    // which is how the merges name it, and decode it from its raw bytes.
    let respelled: Vec<String> = v
        .tokens
        .iter()
        .map(|t| {
            if alphabet.spells(t) {
                (*t).to_owned()
            } else {
                alphabet.spell(t)
            }
        })
        .collect();
    let vocab = VocabIndex::build(respelled.len(), |i| &respelled[i], &mut warnings)?;
    let merge_strs = v.merges.as_ref().ok_or_else(|| {
        tok_err("tokenizer.ggml.merges is missing (required for a gpt2 tokenizer)")
    })?;
    let merges = MergeTable::build(vocab.len(), &read_merges(merge_strs, &vocab)?)?;
    let spec = pre_tokenizer_spec(v.pre, &mut warnings);
    let options = BpeOptions {
        ignore_merges: spec.ignore_merges,
        ..BpeOptions::default()
    };
    let mut pipeline = CompactPipeline::new(CompactBpe::new(vocab, merges, options)?);
    pipeline.with_pre_tokenizer(Some(pre_tokenizer(spec.split)?));
    pipeline.with_decoder(Some(ByteLevel::default()));

    // Control tokens become special, except one not spelled byte-level
    // (a mislabelled byte sequence), as transformers does.
    let special_texts: Vec<&str> = v
        .special_ids()
        .into_iter()
        .map(|i| v.tokens[i])
        .filter(|t| alphabet.spells(t))
        .collect();
    let specials = add_specials(&mut pipeline, &special_texts);

    let pieces = respelled
        .iter()
        .map(|t| Some(Piece::byte_level(&alphabet, t)))
        .collect();
    v.finish(Built {
        pipeline,
        specials,
        pieces,
        scheme: DecodeScheme::ByteLevel,
        add_bos_default: spec.add_bos_default,
        kind: TokenizerKind::ByteLevelBpe {
            pre: v.pre.map(str::to_owned),
        },
        warnings,
    })
}

/// The [`PRE_TOKENIZERS`] entry for `tokenizer.ggml.pre`; GPT-2's split,
/// with a warning, when the value is unknown or missing.
fn pre_tokenizer_spec(pre_name: Option<&str>, warnings: &mut Vec<String>) -> PreTokenizerSpec {
    match pre_name {
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
    }
}

/// The `tokenizers` pre-tokenizer for a split.
fn pre_tokenizer(split: PreSplit) -> Result<PreTokenizerWrapper> {
    Ok(match split {
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
    })
}
