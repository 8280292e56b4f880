//! Streaming detokenization: [`StreamDecoder`] turns ids into text one at a
//! time, holding back an incomplete multi-byte character until it is whole;
//! [`Tokenizer::decode`] is the same decoder run over all the ids, so the
//! concatenation of a stream's chunks equals the whole decode.

use crate::error::Result;
use crate::text::decode::{drain_utf8, incomplete_tail_len, DecodeScheme, PieceRef};
use crate::text::tokenizer::Tokenizer;
use crate::text::vocab::tok_err;

impl Tokenizer {
    /// The text of `ids`, special tokens included (transformers'
    /// `decode(ids, skip_special_tokens=False)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if self.scheme == DecodeScheme::Generic {
            self.check_ids(ids)?;
            return self
                .inner()
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
        let piece = self.tok.pieces.get(id).expect("checked by check_id");
        let mut out = String::new();
        match self.tok.scheme {
            DecodeScheme::ByteLevel => {
                if let PieceRef::Text(bytes) = piece {
                    self.pending.extend_from_slice(bytes);
                }
                drain_utf8(&mut self.pending, &mut out, false);
            }
            DecodeScheme::Spm { .. } => match piece {
                PieceRef::Byte(b) => self.pending.push(b),
                PieceRef::Text(bytes) => {
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
                .inner()
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
