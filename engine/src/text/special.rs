//! Special tokens: the texts that become their single id wherever they are
//! written, and the ids that end a generation.

use std::collections::HashSet;

use tokenizers::{AddedToken, Model, TokenizerImpl};

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

/// Adds special tokens (once each, skipping empty ones); they keep their
/// vocabulary ids because they all are in the vocabulary. Returns the texts
/// added, in order.
pub(super) fn add_specials<M: Model, N: tokenizers::Normalizer, PT, PP, D>(
    inner: &mut TokenizerImpl<M, N, PT, PP, D>,
    texts: &[&str],
) -> Vec<String> {
    let mut seen = HashSet::new();
    let tokens: Vec<AddedToken> = texts
        .iter()
        .filter(|t| !t.is_empty() && seen.insert(**t))
        .map(|t| AddedToken::from((*t).to_owned(), true).normalized(false))
        .collect();
    if !tokens.is_empty() {
        inner.add_special_tokens(&tokens);
    }
    tokens.into_iter().map(|t| t.content).collect()
}

/// The ids besides `eos_id` that end a generation: `candidates` sorted,
/// without repeats and without `eos_id`.
pub(super) fn extra_end_of_generation(mut candidates: Vec<u32>, eos_id: Option<u32>) -> Vec<u32> {
    candidates.sort_unstable();
    candidates.dedup();
    candidates.retain(|&id| Some(id) != eos_id);
    candidates
}
