//! BPE merges: read from `tokenizer.ggml.merges` and checked against the
//! vocabulary, or recovered from a SentencePiece vocabulary that has none.

use std::collections::HashSet;

use tokenizers::models::bpe::Vocab;

use crate::error::Result;
use crate::text::vocab::tok_err;

/// The GGUF key merges are read from.
const MERGES_KEY: &str = "tokenizer.ggml.merges";

/// `tokenizer.ggml.merges` as (left, right) pairs, each checked against `vocab`.
pub(super) fn read_merges(merge_strs: &[&str], vocab: &Vocab) -> Result<Vec<(String, String)>> {
    let mut merges = Vec::with_capacity(merge_strs.len());
    for (i, m) in merge_strs.iter().enumerate() {
        let (a, b) = parse_merge(MERGES_KEY, i, m)?;
        check_merge(MERGES_KEY, i, a, b, vocab)?;
        merges.push((a.to_owned(), b.to_owned()));
    }
    Ok(merges)
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
pub(super) fn generate_merges<'a>(
    spelled: &[&'a str],
    vocab: &Vocab,
    rank: &[f64],
) -> Vec<(String, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
