//! BPE merges: read from `tokenizer.ggml.merges` and checked against the
//! vocabulary, or recovered from a SentencePiece vocabulary that has none.

use std::collections::HashSet;

use crate::error::Result;
use crate::text::compact::VocabIndex;
use crate::text::vocab::tok_err;

/// A merge as token ids: (left, right, merged).
pub(super) type MergeIds = (u32, u32, u32);

/// The GGUF key merges are read from.
const MERGES_KEY: &str = "tokenizer.ggml.merges";

/// `tokenizer.ggml.merges` as ids, in order, each checked against `vocab`.
pub(super) fn read_merges(merge_strs: &[&str], vocab: &VocabIndex) -> Result<Vec<MergeIds>> {
    let mut merges = Vec::with_capacity(merge_strs.len());
    let mut merged = String::new();
    for (i, m) in merge_strs.iter().enumerate() {
        let (a, b) = parse_merge(MERGES_KEY, i, m)?;
        merges.push(merge_ids(MERGES_KEY, i, a, b, vocab, &mut merged)?);
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

/// The ids of a merge's tokens, checked to be in the vocabulary (the
/// `tokenizers` BPE refuses a merge that names others); `merged` is scratch.
fn merge_ids(
    key: &str,
    i: usize,
    a: &str,
    b: &str,
    vocab: &VocabIndex,
    merged: &mut String,
) -> Result<MergeIds> {
    let id = |part: &str| {
        vocab.get(part).ok_or_else(|| {
            tok_err(format!(
                "{key}[{i}] = \"{a} {b}\": {part:?} is not in the vocabulary"
            ))
        })
    };
    let (l, r) = (id(a)?, id(b)?);
    merged.clear();
    merged.push_str(a);
    merged.push_str(b);
    let m = vocab.get(merged).ok_or_else(|| {
        tok_err(format!(
            "{key}[{i}] = \"{a} {b}\": the merged token {merged:?} is not in the vocabulary"
        ))
    })?;
    Ok((l, r, m))
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
/// last its rank, as a Python dict built from the list would. The merges
/// come as ids, in rank order.
pub(super) fn generate_merges(spelled: &[&str], vocab: &VocabIndex, rank: &[f64]) -> Vec<MergeIds> {
    use rayon::prelude::*;

    // 20 bytes each (a large vocabulary gives many): the merged token's rank is
    // looked up by its id when sorting; the output reuses the allocation.
    struct Candidate {
        ids: MergeIds,
        len_left: u32,
        len_right: u32,
    }
    // Where a spelling occurs twice, only its first occurrence counts.
    let first: Option<Vec<bool>> = (vocab.distinct() != spelled.len()).then(|| {
        let mut seen = HashSet::with_capacity(spelled.len());
        spelled.iter().map(|t| seen.insert(*t)).collect()
    });
    let splits_of = |(i, token): (usize, &&str)| -> Vec<Candidate> {
        if first.as_ref().is_some_and(|f| !f[i]) {
            return Vec::new();
        }
        let Some(id) = vocab.get(token) else {
            return Vec::new();
        };
        let mut local: Vec<(u32, u32, u32)> = Vec::new();
        for (n_left, (at, _)) in token.char_indices().enumerate().skip(1) {
            let (left, right) = token.split_at(at);
            // The right half is only looked up when the left one exists.
            if let Some(l) = vocab.get(left) {
                if let Some(r) = vocab.get(right) {
                    local.push((l, r, n_left as u32));
                }
            }
        }
        if local.is_empty() {
            return Vec::new();
        }
        let n_chars = token.chars().count() as u32;
        local.sort_by_key(|&(l, r, _)| (l, r));
        local
            .into_iter()
            .map(|(l, r, n_left)| Candidate {
                len_left: n_left,
                len_right: n_chars - n_left,
                ids: (l, r, id),
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
    let rank_of = |c: &Candidate| rank[c.ids.2 as usize];
    merges.par_sort_by(|a, b| {
        rank_of(b)
            .partial_cmp(&rank_of(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.len_left.cmp(&a.len_left))
            .then(b.len_right.cmp(&a.len_right))
    });
    merges.into_iter().map(|m| m.ids).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_merges_follow_rank_then_lengths() {
        let spelled = ["a", "b", "c", "ab", "bc", "abc"];
        let vocab = VocabIndex::build(spelled.len(), |i| spelled[i], &mut Vec::new()).unwrap();
        // "abc" ranks first and splits two ways: "ab"+"c" (longer left) first.
        let rank = [0.0, 0.0, 0.0, -2.0, -3.0, -1.0];
        let m = generate_merges(&spelled, &vocab, &rank);
        let m: Vec<(&str, &str)> = m
            .iter()
            .map(|&(a, b, _)| (vocab.token(a), vocab.token(b)))
            .collect();
        assert_eq!(m, [("ab", "c"), ("a", "bc"), ("a", "b"), ("b", "c")]);
    }
}
