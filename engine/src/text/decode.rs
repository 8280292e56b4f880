//! What ids decode to: each id's [`Piece`], the [`DecodeScheme`] that joins
//! pieces into text (recognized from the `tokenizers` decoder in use), and
//! the UTF-8 bookkeeping a stream of bytes needs.
//!
//! Decoding is done here, not by the `tokenizers` decoder, so that the
//! stream decoder (`crate::text::stream`) can produce text incrementally with
//! the guarantee that the concatenation of its chunks equals the whole
//! decode; the unit tests check that both agree with the `tokenizers`
//! decoder that `transformers` uses.

use tokenizers::decoders::DecoderWrapper;

use crate::text::vocab::{byte_token, ByteAlphabet, SPIECE_UNDERLINE};

/// What one id contributes to decoded text.
#[derive(Clone, Debug)]
pub(super) enum Piece {
    /// Bytes (byte-level: the token's bytes; SentencePiece: the token's text
    /// with `▁` turned into spaces).
    Text(Box<[u8]>),
    /// A `<0xXX>` byte-fallback token (SentencePiece only).
    Byte(u8),
}

impl Piece {
    /// A byte-level token: the bytes its characters stand for, or its own
    /// UTF-8 bytes when it is not spelled in the byte alphabet (an added
    /// token written raw).
    pub(super) fn byte_level(alphabet: &ByteAlphabet, token: &str) -> Piece {
        Piece::Text(
            alphabet
                .bytes_of(token)
                .unwrap_or_else(|| token.as_bytes().into()),
        )
    }

    /// A SentencePiece token: a `<0xXX>` byte, or its text with `▁` as spaces.
    pub(super) fn sentencepiece(token: &str) -> Piece {
        match byte_token(token) {
            Some(b) => Piece::Byte(b),
            None => Piece::Text(token.replace(SPIECE_UNDERLINE, " ").into_bytes().into()),
        }
    }
}

/// A [`Piece`] as the [`Pieces`] table gives it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PieceRef<'a> {
    Text(&'a [u8]),
    Byte(u8),
}

/// What each id decodes to, every piece's bytes in one arena (a boxed
/// slice per id would cost more in allocator overhead than in bytes).
#[derive(Clone, Debug, Default)]
pub(super) struct Pieces {
    bytes: Vec<u8>,
    /// `ends[i]`: where id `i`'s bytes end.
    ends: Vec<u32>,
    /// Per id: 0 names no token, 1 text, 2 a byte-fallback byte.
    kinds: Vec<u8>,
}

impl Pieces {
    fn push(&mut self, piece: Option<Piece>) {
        let kind = match piece {
            None => 0,
            Some(Piece::Text(b)) => {
                self.bytes.extend_from_slice(&b);
                1
            }
            Some(Piece::Byte(b)) => {
                self.bytes.push(b);
                2
            }
        };
        // A vocabulary's bytes are far below 4 GiB (its size is bounded).
        self.ends.push(self.bytes.len() as u32);
        self.kinds.push(kind);
    }

    /// What `id` decodes to; `None` when it names no token.
    pub(super) fn get(&self, id: u32) -> Option<PieceRef<'_>> {
        let i = id as usize;
        let kind = *self.kinds.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let bytes = &self.bytes[start..self.ends[i] as usize];
        match kind {
            1 => Some(PieceRef::Text(bytes)),
            2 => Some(PieceRef::Byte(bytes[0])),
            _ => None,
        }
    }
}

impl FromIterator<Option<Piece>> for Pieces {
    fn from_iter<I: IntoIterator<Item = Option<Piece>>>(iter: I) -> Pieces {
        let iter = iter.into_iter();
        let mut pieces = Pieces::default();
        pieces.ends.reserve(iter.size_hint().0);
        pieces.kinds.reserve(iter.size_hint().0);
        for p in iter {
            pieces.push(p);
        }
        pieces.bytes.shrink_to_fit();
        pieces
    }
}

/// How ids become text; mirrors the `tokenizers` decoder in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DecodeScheme {
    /// `ByteLevel` decoder: all bytes concatenated, invalid UTF-8 replaced.
    ByteLevel,
    /// `Replace(▁, " ")`, `ByteFallback`, `Fuse`, then optionally
    /// `Strip(" ", 1, 0)` (one leading space removed from the whole text).
    Spm { strip_leading_space: bool },
    /// Anything else (tokenizer.json only): the `tokenizers` decoder itself.
    Generic,
}

/// Recognizes the two decoders whose incremental form is implemented here.
pub(super) fn decode_scheme_of(decoder: Option<&DecoderWrapper>) -> DecodeScheme {
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

/// Length of the incomplete UTF-8 sequence that ends `bytes` (a lead byte
/// and fewer continuation bytes than it announces), 0 if there is none.
pub(super) fn incomplete_tail_len(bytes: &[u8]) -> usize {
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
pub(super) fn drain_utf8(pending: &mut Vec<u8>, out: &mut String, at_end: bool) {
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
