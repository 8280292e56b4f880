//! The compact BPE model GGUF tokenizers encode with: every token spelling
//! in one byte arena with `u32` ends, an open-addressing index from spelling
//! to id that stores ids only, and the merges as a table indexed by the left
//! token (per left token, its right partners sorted, with rank and merged
//! id). Gemma 3's tokenizer (262k tokens, 6k special ones) keeps about
//! 17 MiB of heap this way; with `tokenizers`' own BPE model and its `String`
//! maps it keeps about 57 MiB more.
//!
//! [`CompactBpe`] is a `tokenizers` [`Model`], so the normalizer,
//! pre-tokenizer and special-token splitting around it are the ones
//! `transformers` uses; its merging is the `tokenizers` BPE's step for step
//! (byte fallback, fused unknown tokens, `ignore_merges`, and a duplicate
//! spelling or merge resolved the way its maps resolve it: the last wins).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use tokenizers::models::bpe::{BpeTrainer, Vocab, BPE};
use tokenizers::{Model, Token};

use crate::error::Result;
use crate::text::vocab::{bpe_error, tok_err};

/// A 64-bit hash of a token's bytes (FNV-1a with a final mix).
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

/// Token spellings by id and ids by spelling.
pub(super) struct VocabIndex {
    /// Every spelling, back to back, in id order.
    arena: Vec<u8>,
    /// `ends[i]`: where token `i`'s spelling ends in `arena`.
    ends: Vec<u32>,
    /// Open addressing (linear probing): id + 1 of the spelling hashed
    /// there, 0 for an empty slot. A power of two, at most half full.
    slots: Vec<u32>,
    /// Distinct spellings.
    distinct: usize,
}

impl VocabIndex {
    /// The index of `spelled` (token `i` is `spelled(i)`, `n` tokens); a
    /// spelling that occurs more than once maps to its last id, and a
    /// warning names the duplicates.
    pub(super) fn build<'a>(
        n: usize,
        spelled: impl Fn(usize) -> &'a str,
        warnings: &mut Vec<String>,
    ) -> Result<VocabIndex> {
        let bytes: usize = (0..n).map(|i| spelled(i).len()).sum();
        if bytes > u32::MAX as usize || n >= u32::MAX as usize {
            return Err(tok_err(format!(
                "the vocabulary's {n} tokens ({bytes} bytes) are more than 32-bit offsets can hold"
            )));
        }
        let mut arena = Vec::with_capacity(bytes);
        let mut ends = Vec::with_capacity(n);
        for i in 0..n {
            arena.extend_from_slice(spelled(i).as_bytes());
            ends.push(arena.len() as u32);
        }
        let mut index = VocabIndex {
            arena,
            ends,
            slots: vec![0; (2 * n).next_power_of_two().max(8)],
            distinct: 0,
        };
        let mut duplicates = Vec::new();
        for id in 0..n as u32 {
            if let Some(prev) = index.insert(id) {
                duplicates.push(format!("{:?} ({prev} and {id})", index.token(id)));
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
        Ok(index)
    }

    /// Puts `id` in the index; the id it replaces, if its spelling was there.
    fn insert(&mut self, id: u32) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let key = self.bytes(id);
        let mut at = hash(key) as usize & mask;
        loop {
            match self.slots[at] {
                0 => {
                    self.slots[at] = id + 1;
                    self.distinct += 1;
                    return None;
                }
                s if self.bytes(s - 1) == key => {
                    self.slots[at] = id + 1;
                    return Some(s - 1);
                }
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Number of ids.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Number of distinct spellings (what a map from spelling to id holds).
    pub(super) fn distinct(&self) -> usize {
        self.distinct
    }

    fn bytes(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    /// Token `id`'s spelling (`id` < [`VocabIndex::len`]).
    pub(super) fn token(&self, id: u32) -> &str {
        // Built from `&str`s, each ending on its own boundary.
        std::str::from_utf8(self.bytes(id)).expect("a token spelling is UTF-8")
    }

    /// The id of a spelling (the last one, for a duplicate).
    pub(super) fn get(&self, key: &str) -> Option<u32> {
        let key = key.as_bytes();
        let mask = self.slots.len() - 1;
        let mut at = hash(key) as usize & mask;
        loop {
            match self.slots[at] {
                0 => return None,
                s if self.bytes(s - 1) == key => return Some(s - 1),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Whether `key` has an id.
    pub(super) fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The id a spelling lookup gives for token `id`: `id` itself unless a
    /// later token has the same spelling.
    fn is_canonical(&self, id: u32) -> bool {
        (id as usize) < self.len() && self.get(self.token(id)) == Some(id)
    }

    /// Every distinct spelling with its id, as a `tokenizers` map.
    pub(super) fn to_map(&self) -> Vocab {
        (0..self.len() as u32)
            .filter(|&id| self.is_canonical(id))
            .map(|id| (self.token(id).to_owned(), id))
            .collect()
    }
}

/// One merge in [`MergeTable`]: the right token, the merge's rank (lower
/// merges first) and the merged token.
#[derive(Clone, Copy, Debug)]
struct MergeEntry {
    right: u32,
    rank: u32,
    merged: u32,
}

/// BPE merges by (left, right) token id.
pub(super) struct MergeTable {
    /// `rows[l]..rows[l + 1]`: the entries whose left token is `l`.
    rows: Vec<u32>,
    /// Sorted by right token within each row.
    entries: Vec<MergeEntry>,
}

impl MergeTable {
    /// The table of `merges` (left, right, merged), ranked in order, for a
    /// vocabulary of `n` ids. A pair listed twice keeps its last rank.
    pub(super) fn build(n: usize, merges: &[(u32, u32, u32)]) -> Result<MergeTable> {
        if merges.len() >= u32::MAX as usize {
            return Err(tok_err(format!(
                "{} merges are more than 32-bit ranks can order",
                merges.len()
            )));
        }
        let mut rows = vec![0u32; n + 1];
        for &(l, ..) in merges {
            rows[l as usize + 1] += 1;
        }
        for i in 0..n {
            rows[i + 1] += rows[i];
        }
        let empty = MergeEntry {
            right: 0,
            rank: 0,
            merged: 0,
        };
        let mut entries = vec![empty; merges.len()];
        let mut fill = rows.clone();
        for (rank, &(l, right, merged)) in merges.iter().enumerate() {
            let at = &mut fill[l as usize];
            entries[*at as usize] = MergeEntry {
                right,
                rank: rank as u32,
                merged,
            };
            *at += 1;
        }
        drop(fill);
        // Sort each row by right token (stable: repeats stay in rank order),
        // then keep the last of each repeated pair, compacting the rows.
        let mut kept = 0usize;
        let mut start = 0usize;
        for l in 0..n {
            let end = rows[l + 1] as usize;
            let row = &mut entries[start..end];
            row.sort_by_key(|e| e.right);
            let row_start = kept;
            for i in start..end {
                let e = entries[i];
                if kept > row_start && entries[kept - 1].right == e.right {
                    entries[kept - 1] = e;
                } else {
                    entries[kept] = e;
                    kept += 1;
                }
            }
            rows[l] = row_start as u32;
            start = end;
        }
        rows[n] = kept as u32;
        entries.truncate(kept);
        entries.shrink_to_fit();
        Ok(MergeTable { rows, entries })
    }

    /// (rank, merged id) of merging `left` with `right`.
    fn get(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        let l = left as usize;
        let (&start, &end) = (self.rows.get(l)?, self.rows.get(l + 1)?);
        let row = &self.entries[start as usize..end as usize];
        row.binary_search_by_key(&right, |e| e.right)
            .ok()
            .map(|i| (row[i].rank, row[i].merged))
    }

    /// The merges as (left, right) in rank order.
    fn pairs_by_rank(&self) -> Vec<(u32, u32)> {
        let mut all: Vec<(u32, u32, u32)> = Vec::with_capacity(self.entries.len());
        for l in 0..self.rows.len() - 1 {
            let row = &self.entries[self.rows[l] as usize..self.rows[l + 1] as usize];
            all.extend(row.iter().map(|e| (e.rank, l as u32, e.right)));
        }
        all.sort_unstable();
        all.into_iter().map(|(_, l, r)| (l, r)).collect()
    }
}

/// What a [`CompactBpe`] does besides merging.
#[derive(Clone, Debug, Default)]
pub(super) struct BpeOptions {
    /// A character without a token becomes its `<0xXX>` byte tokens.
    pub(super) byte_fallback: bool,
    /// The unknown token, for characters with neither.
    pub(super) unk_token: Option<String>,
    /// Consecutive unknown characters become one unknown token.
    pub(super) fuse_unk: bool,
    /// A chunk that is a whole token is taken as is.
    pub(super) ignore_merges: bool,
}

/// A BPE model over a [`VocabIndex`] and a [`MergeTable`].
pub struct CompactBpe {
    vocab: VocabIndex,
    merges: MergeTable,
    options: BpeOptions,
    unk_id: Option<u32>,
    /// The `<0xXX>` token of each byte (`u32::MAX`: none), for byte fallback.
    byte_ids: Box<[u32; 256]>,
    /// Words already merged, with their tokens (id, length in bytes): text
    /// repeats its words, and merging is most of encoding. Bounded: at most
    /// [`CACHE_WORDS`] words of at most [`CACHE_WORD_BYTES`] bytes (under
    /// 1 MiB); once full, new words are merged but not kept.
    cache: RwLock<WordCache>,
}

/// A merged word's tokens: (id, length in bytes) each.
type WordCache = HashMap<Box<str>, Box<[(u32, u32)]>>;

/// Words the merge cache holds at most.
const CACHE_WORDS: usize = 10_000;
/// The longest word the merge cache keeps, in bytes.
const CACHE_WORD_BYTES: usize = 48;

/// A symbol of a word being merged: a token, its neighbours (-1: none) and
/// its length in bytes (0: merged into the symbol before it).
#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: isize,
    next: isize,
    len: usize,
}

/// A merge waiting in the queue: lowest rank first, then leftmost.
#[derive(PartialEq, Eq)]
struct Pending {
    pos: usize,
    rank: u32,
    merged: u32,
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.pos.cmp(&self.pos))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl CompactBpe {
    pub(super) fn new(
        vocab: VocabIndex,
        merges: MergeTable,
        options: BpeOptions,
    ) -> Result<CompactBpe> {
        let unk_id = match &options.unk_token {
            Some(unk) => Some(vocab.get(unk).ok_or_else(|| {
                tok_err(format!(
                    "the unknown token {unk:?} is not in the vocabulary"
                ))
            })?),
            None => None,
        };
        let mut byte_ids = Box::new([u32::MAX; 256]);
        if options.byte_fallback {
            for (b, slot) in byte_ids.iter_mut().enumerate() {
                if let Some(id) = vocab.get(&format!("<0x{b:02X}>")) {
                    *slot = id;
                }
            }
        }
        Ok(CompactBpe {
            vocab,
            merges,
            options,
            unk_id,
            byte_ids,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The same model as a `tokenizers` BPE (for serializing it).
    pub(super) fn to_bpe(&self) -> Result<BPE> {
        let merges = self
            .merges
            .pairs_by_rank()
            .into_iter()
            .map(|(l, r)| {
                (
                    self.vocab.token(l).to_owned(),
                    self.vocab.token(r).to_owned(),
                )
            })
            .collect();
        let o = &self.options;
        let mut builder = BPE::builder()
            .vocab_and_merges(self.vocab.to_map(), merges)
            .byte_fallback(o.byte_fallback)
            .fuse_unk(o.fuse_unk)
            .ignore_merges(o.ignore_merges);
        if let Some(unk) = &o.unk_token {
            builder = builder.unk_token(unk.clone());
        }
        builder.build().map_err(bpe_error)
    }

    /// The word's first symbols: one per character, or its byte tokens, or
    /// the unknown token (fused over a run when asked).
    fn symbols(&self, word: &str) -> Vec<Symbol> {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(word.len());
        let mut add = |id: u32, len: usize| {
            let at = symbols.len() as isize;
            if let Some(last) = symbols.last_mut() {
                last.next = at;
            }
            symbols.push(Symbol {
                id,
                prev: at - 1,
                next: -1,
                len,
            });
        };
        let mut unk: Option<(u32, usize)> = None;
        for (i, c) in word.char_indices() {
            let s = &word[i..i + c.len_utf8()];
            if let Some(id) = self.vocab.get(s) {
                if let Some((unk_id, unk_len)) = unk.take() {
                    add(unk_id, unk_len);
                }
                add(id, s.len());
                continue;
            }
            if self.options.byte_fallback
                && s.bytes().all(|b| self.byte_ids[b as usize] != u32::MAX)
            {
                // As in `tokenizers`, a pending unknown token is not flushed first.
                for b in s.bytes() {
                    add(self.byte_ids[b as usize], 1);
                }
                continue;
            }
            if let Some(unk_id) = self.unk_id {
                unk = match unk {
                    Some((id, len)) if self.options.fuse_unk => Some((id, len + s.len())),
                    Some((id, len)) => {
                        add(id, len);
                        Some((unk_id, s.len()))
                    }
                    None => Some((unk_id, s.len())),
                };
            }
        }
        if let Some((unk_id, unk_len)) = unk {
            add(unk_id, unk_len);
        }
        symbols
    }

    /// Applies the merges to `symbols`, lowest rank first, leftmost first
    /// among equal ranks; returns the symbols left.
    fn merge(&self, mut symbols: Vec<Symbol>) -> Vec<Symbol> {
        let mut queue: BinaryHeap<Pending> = symbols
            .windows(2)
            .enumerate()
            .filter_map(|(pos, w)| {
                self.merges
                    .get(w[0].id, w[1].id)
                    .map(|(rank, merged)| Pending { pos, rank, merged })
            })
            .collect();
        while let Some(top) = queue.pop() {
            let cur = symbols[top.pos];
            if cur.len == 0 || cur.next == -1 {
                continue;
            }
            let next_pos = cur.next as usize;
            let right = symbols[next_pos];
            // A stale entry: the pair there has changed since it was queued.
            if self
                .merges
                .get(cur.id, right.id)
                .is_none_or(|(_, merged)| merged != top.merged)
            {
                continue;
            }
            let s = &mut symbols[top.pos];
            s.id = top.merged;
            s.len += right.len;
            s.next = right.next;
            symbols[next_pos].len = 0;
            if right.next > -1 && (right.next as usize) < symbols.len() {
                symbols[right.next as usize].prev = top.pos as isize;
            }
            let cur = symbols[top.pos];
            if cur.prev >= 0 {
                let prev = cur.prev as usize;
                if let Some((rank, merged)) = self.merges.get(symbols[prev].id, cur.id) {
                    queue.push(Pending {
                        pos: prev,
                        rank,
                        merged,
                    });
                }
            }
            let next = cur.next as usize;
            if next < symbols.len() {
                if let Some((rank, merged)) = self.merges.get(cur.id, symbols[next].id) {
                    queue.push(Pending {
                        pos: top.pos,
                        rank,
                        merged,
                    });
                }
            }
        }
        symbols.retain(|s| s.len != 0);
        symbols
    }
}

impl Model for CompactBpe {
    type Trainer = BpeTrainer;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        if sequence.is_empty() {
            return Ok(vec![]);
        }
        if self.options.ignore_merges {
            if let Some(id) = self.vocab.get(sequence) {
                return Ok(vec![Token::new(
                    id,
                    sequence.to_owned(),
                    (0, sequence.len()),
                )]);
            }
        }
        let tokens = |pieces: &[(u32, u32)]| {
            let mut pos = 0;
            pieces
                .iter()
                .map(|&(id, len)| {
                    let offsets = (pos, pos + len as usize);
                    pos += len as usize;
                    Token::new(id, self.vocab.token(id).to_owned(), offsets)
                })
                .collect()
        };
        let cacheable = sequence.len() <= CACHE_WORD_BYTES;
        if cacheable {
            // A poisoned lock only means another encode panicked; the map is whole.
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if let Some(pieces) = cache.get(sequence) {
                return Ok(tokens(pieces));
            }
        }
        let symbols = self.merge(self.symbols(sequence));
        if !cacheable {
            let mut pos = 0;
            return Ok(symbols
                .iter()
                .map(|s| {
                    let offsets = (pos, pos + s.len);
                    pos += s.len;
                    Token::new(s.id, self.vocab.token(s.id).to_owned(), offsets)
                })
                .collect());
        }
        // A cacheable word is at most CACHE_WORD_BYTES long: lengths fit u32.
        let pieces: Box<[(u32, u32)]> = symbols.iter().map(|s| (s.id, s.len as u32)).collect();
        let out = tokens(&pieces);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() < CACHE_WORDS {
            cache.insert(sequence.into(), pieces);
        }
        Ok(out)
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        // Like a map from id to spelling built from the spelling → id map:
        // an id whose spelling a later token repeats has none.
        self.vocab
            .is_canonical(id)
            .then(|| self.vocab.token(id).to_owned())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.vocab.to_map().into_iter().collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.vocab.distinct()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err("the compact BPE model is not saved; save the tokenizers BPE built from it".into())
    }

    fn get_trainer(&self) -> BpeTrainer {
        BpeTrainer::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(tokens: &[&str]) -> (VocabIndex, Vec<String>) {
        let mut warnings = Vec::new();
        let v = VocabIndex::build(tokens.len(), |i| tokens[i], &mut warnings).unwrap();
        (v, warnings)
    }

    #[test]
    fn index_finds_every_spelling_and_the_last_duplicate() {
        let tokens = ["a", "b", "ab", "", "a", "héllo"];
        let (v, warnings) = index(&tokens);
        assert_eq!(v.get("a"), Some(4));
        assert_eq!(v.get("ab"), Some(2));
        assert_eq!(v.get(""), Some(3));
        assert_eq!(v.get("héllo"), Some(5));
        assert_eq!(v.get("abc"), None);
        assert_eq!(v.token(5), "héllo");
        assert_eq!(v.distinct(), 5);
        assert!(!v.is_canonical(0) && v.is_canonical(4));
        assert!(warnings[0].contains("\"a\" (0 and 4)"), "{warnings:?}");
    }

    #[test]
    fn merge_table_keeps_the_last_rank_of_a_repeated_pair() {
        let t = MergeTable::build(4, &[(0, 1, 2), (1, 0, 3), (0, 1, 2), (0, 0, 3)]).unwrap();
        assert_eq!(t.get(0, 1), Some((2, 2)));
        assert_eq!(t.get(1, 0), Some((1, 3)));
        assert_eq!(t.get(0, 0), Some((3, 3)));
        assert_eq!(t.get(1, 1), None);
        assert_eq!(t.get(9, 1), None);
        assert_eq!(t.pairs_by_rank(), [(1, 0), (0, 1), (0, 0)]);
    }
}
