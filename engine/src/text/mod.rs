//! Text in and out: the tokenizer (from GGUF metadata or a Hugging Face
//! `tokenizer.json`), the chat template, and streaming detokenization. Uses
//! [`crate::formats`] (GGUF metadata) and [`crate::family`] (the spec's
//! SentencePiece shape).
//!
//! A GGUF vocabulary is encoded by our own compact BPE model (`compact.rs`:
//! a byte arena, an id-only hash index and a merge table: 17 MiB for Gemma
//! 3's 262k tokens, where `String` maps took about 57 MiB more) inside the
//! `tokenizers` crate's pipeline (normalizer, pre-tokenizer, special
//! tokens); a `tokenizer.json` runs on the `tokenizers` crate. The reference
//! for token ids is
//! the tokenizer Hugging Face `transformers` (5.x) assembles out of the same
//! GGUF metadata: every choice (merges, normalizer, pre-tokenizer, decoder,
//! which tokens are special) follows it, and where `transformers` has no
//! opinion, llama.cpp's `llama-vocab.cpp`.
//!
//! * `tokenizer.ggml.model = "gpt2"`: byte-level BPE with the file's merges,
//!   cut into chunks by the regex `tokenizer.ggml.pre` names ([`byte_level`]).
//! * `tokenizer.ggml.model = "llama"`: a SentencePiece vocabulary run as a
//!   BPE with byte fallback, in one of three shapes ([`SpmFlavor`]) that the
//!   family spec's `sentencepiece` field names (`sentencepiece.rs`).
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
//! * `tokenizer.ggml.add_space_prefix = false` is honoured for the Llama and
//!   Phi-3 shapes (transformers always adds the prefix space).
//! * the unknown token, when the file names one, replaces characters that
//!   have no byte-fallback token (transformers' Llama BPE drops them).
//!
//! The files, from the bottom up (each uses only those before it):
//! `vocab.rs` (token types, the byte alphabet), `compact.rs` (the compact
//! vocabulary, merge table and BPE model), `merges.rs`, `special.rs`
//! (special tokens, end of generation), `decode.rs` (what ids decode to),
//! `chat_template.rs`, `tokenizer.rs` (the [`Tokenizer`] type, encoding),
//! `stream.rs` (decoding, [`StreamDecoder`]), `gguf_vocab.rs` (the
//! `tokenizer.ggml.*` keys), `byte_level.rs` and `sentencepiece.rs` (the two
//! GGUF vocabularies), `gguf.rs` ([`Tokenizer::from_gguf`]) and
//! `tokenizer_json.rs` ([`Tokenizer::from_tokenizer_json`]).

pub mod byte_level;
pub mod chat_template;
mod compact;
mod decode;
mod gguf;
mod gguf_vocab;
mod merges;
mod sentencepiece;
pub mod special;
pub mod stream;
pub mod tokenizer;
mod tokenizer_json;
pub mod vocab;

#[cfg(test)]
mod tests;

pub use byte_level::{PreSplit, PreTokenizerSpec, PRE_TOKENIZERS};
pub use special::END_OF_TURN_MARKERS;
pub use stream::StreamDecoder;
pub use tokenizer::{SpmFlavor, Tokenizer, TokenizerKind};
pub use vocab::token_type;
