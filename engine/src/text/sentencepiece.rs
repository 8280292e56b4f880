//! SentencePiece from GGUF metadata (`tokenizer.ggml.model = "llama"`): the
//! vocabulary (tokens, scores, token types) run as a BPE with byte fallback.
//!
//! The merges are the file's when it has them; otherwise they are recovered
//! from the vocabulary: every split of a token into two tokens is a merge,
//! ordered by the token's score (Gemma's shape: by its position, because
//! Gemma's scores are mostly one placeholder value). The shape
//! ([`SpmFlavor`]) is the family spec's `sentencepiece` field:
//! * `llama`: a `Metaspace` pre-tokenizer that prepends `▁` to the start of
//!   the text only (none with `tokenizer.ggml.add_space_prefix = false`);
//! * `phi3`: the prefix `▁` comes from a normalizer, so it comes back after
//!   every special token too;
//! * `gemma`: no prefix space, spaces become `▁` in a normalizer and split
//!   the text, and runs of spaces in the vocabulary are respelled as `▁`.

use std::borrow::Cow;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::normalizers::{NormalizerWrapper, Prepend, Replace};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::SplitDelimiterBehavior;

use crate::error::Result;
use crate::family::spec::SpmFlavor;
use crate::text::compact::{BpeOptions, CompactBpe, MergeTable, VocabIndex};
use crate::text::decode::{DecodeScheme, Piece};
use crate::text::gguf_vocab::{Built, GgufVocab};
use crate::text::merges::{generate_merges, read_merges};
use crate::text::special::add_specials;
use crate::text::tokenizer::{CompactPipeline, Tokenizer, TokenizerKind};
use crate::text::vocab::{bpe_error, py_isspace, tok_err, SPIECE_UNDERLINE};

/// The SentencePiece tokenizer `v` describes, in the shape `flavor`.
pub(super) fn build(v: &GgufVocab<'_>, flavor: SpmFlavor) -> Result<Tokenizer> {
    let mut warnings = Vec::new();
    let respelled = respell(&v.tokens, flavor);
    let spelled: Vec<&str> = respelled.iter().map(|t| t.as_ref()).collect();
    let vocab = VocabIndex::build(spelled.len(), |i| spelled[i], &mut warnings)?;
    let merges = match &v.merges {
        Some(merge_strs) => read_merges(merge_strs, &vocab)?,
        None => generate_merges(&spelled, &vocab, &merge_ranks(v, flavor)?),
    };
    let merges = MergeTable::build(vocab.len(), &merges)?;
    let unk_token = match v.unk_id {
        Some(id) => Some(spelled[id as usize].to_owned()),
        None if flavor == SpmFlavor::Gemma && vocab.contains("<unk>") => Some("<unk>".to_owned()),
        None => None,
    };
    let special_texts: Vec<&str> = v.special_ids().into_iter().map(|i| spelled[i]).collect();
    let options = BpeOptions {
        byte_fallback: true,
        unk_token,
        fuse_unk: true,
        ignore_merges: false,
    };
    let mut pipeline = CompactPipeline::new(CompactBpe::new(vocab, merges, options)?);
    let strip = shape_input(&mut pipeline, v.add_space_prefix, flavor, &mut warnings)?;
    pipeline.with_decoder(Some(decoder(strip)?));
    let specials = add_specials(&mut pipeline, &special_texts);
    drop(special_texts);
    drop(spelled);
    drop(respelled);

    let pieces = v
        .tokens
        .iter()
        .map(|t| Some(Piece::sentencepiece(t)))
        .collect();
    v.finish(Built {
        pipeline,
        specials,
        pieces,
        scheme: DecodeScheme::Spm {
            strip_leading_space: strip,
        },
        add_bos_default: true,
        kind: TokenizerKind::SentencePiece { flavor },
        warnings,
    })
}

/// The tokens as the merges are derived from them: Gemma files write a run
/// of spaces as spaces, where the vocabulary holds it as a run of `▁`.
fn respell<'a>(tokens: &[&'a str], flavor: SpmFlavor) -> Vec<Cow<'a, str>> {
    tokens
        .iter()
        .map(|t| {
            if flavor == SpmFlavor::Gemma && t.contains(' ') && t.chars().all(py_isspace) {
                Cow::Owned(SPIECE_UNDERLINE.to_string().repeat(t.chars().count()))
            } else {
                Cow::Borrowed(*t)
            }
        })
        .collect()
}

/// Each token's rank, for merges recovered from the vocabulary.
fn merge_ranks(v: &GgufVocab<'_>, flavor: SpmFlavor) -> Result<Vec<f64>> {
    if flavor == SpmFlavor::Gemma {
        // Gemma's scores are mostly one placeholder; its vocabulary is in
        // merge order, so the position ranks the merges.
        return Ok((0..v.tokens.len()).map(|i| -(i as f64)).collect());
    }
    v.scores.clone().ok_or_else(|| {
        tok_err(
            "tokenizer.ggml.scores is missing: a SentencePiece vocabulary \
             without tokenizer.ggml.merges needs scores to order its merges",
        )
    })
}

/// Sets the normalizer or pre-tokenizer that places `▁` in the text, as
/// `flavor` does; returns whether decoding strips the prefix space again.
fn shape_input(
    inner: &mut CompactPipeline,
    add_space_prefix: Option<bool>,
    flavor: SpmFlavor,
    warnings: &mut Vec<String>,
) -> Result<bool> {
    let prefix = add_space_prefix.unwrap_or(true);
    let to_underline = || Replace::new(" ", SPIECE_UNDERLINE.to_string()).map_err(bpe_error);
    match flavor {
        SpmFlavor::Gemma => {
            if add_space_prefix == Some(true) {
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
            Ok(false)
        }
        SpmFlavor::Phi3 => {
            let mut seq: Vec<NormalizerWrapper> = Vec::new();
            if prefix {
                seq.push(Prepend::new(SPIECE_UNDERLINE.to_string()).into());
            }
            seq.push(to_underline()?.into());
            inner.with_normalizer(Some(tokenizers::normalizers::Sequence::new(seq)));
            Ok(prefix)
        }
        SpmFlavor::Llama => {
            let scheme = if prefix {
                PrependScheme::First
            } else {
                PrependScheme::Never
            };
            inner.with_pre_tokenizer(Some(Metaspace::new(SPIECE_UNDERLINE, scheme, false)));
            Ok(prefix)
        }
    }
}

/// `Replace(▁, " ")`, `ByteFallback`, `Fuse`, and with `strip_leading_space`
/// `Strip(" ", 1, 0)`: the decoder transformers uses.
fn decoder(strip_leading_space: bool) -> Result<DecoderWrapper> {
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
