//! Vocabulary facts shared by every way of building a tokenizer: GGUF token
//! types, GPT-2's byte alphabet, the SentencePiece `▁` and `<0xXX>` byte
//! tokens.

use std::collections::HashMap;

use crate::error::Error;

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

/// SentencePiece's word-boundary mark, `▁` (U+2581).
pub(super) const SPIECE_UNDERLINE: char = '\u{2581}';

pub(super) fn tok_err(msg: impl Into<String>) -> Error {
    Error::Tokenizer(msg.into())
}

pub(super) fn bpe_error(e: impl std::fmt::Display) -> Error {
    tok_err(format!("cannot build the BPE model: {e}"))
}

/// GPT-2's byte-to-character table: printable bytes stand for themselves,
/// the others are moved to U+0100 and up.
pub(super) fn bytes_to_unicode() -> [char; 256] {
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

/// GPT-2's byte alphabet, both ways.
pub(super) struct ByteAlphabet {
    table: [char; 256],
    byte_of: HashMap<char, u8>,
}

impl ByteAlphabet {
    pub(super) fn new() -> ByteAlphabet {
        let table = bytes_to_unicode();
        let byte_of = table
            .iter()
            .enumerate()
            .map(|(b, c)| (*c, b as u8))
            .collect();
        ByteAlphabet { table, byte_of }
    }

    /// Whether every character of `token` stands for a byte.
    pub(super) fn spells(&self, token: &str) -> bool {
        token.chars().all(|c| self.byte_of.contains_key(&c))
    }

    /// `raw`'s bytes written in the alphabet.
    pub(super) fn spell(&self, raw: &str) -> String {
        raw.bytes().map(|b| self.table[b as usize]).collect()
    }

    /// The bytes a token spelled in the alphabet stands for; `None` when a
    /// character is not in it.
    pub(super) fn bytes_of(&self, token: &str) -> Option<Box<[u8]>> {
        token
            .chars()
            .map(|c| self.byte_of.get(&c).copied())
            .collect()
    }
}

/// Python's `str.isspace` for one character.
pub(super) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `<0xXX>` → the byte, exactly as the `ByteFallback` decoder reads it.
pub(super) fn byte_token(token: &str) -> Option<u8> {
    if token.len() == 6 && token.starts_with("<0x") && token.ends_with('>') {
        u8::from_str_radix(&token[3..5], 16).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
}
