//! A tokenizer from a Hugging Face `tokenizer.json` (and its
//! `tokenizer_config.json`): the `tokenizers` crate builds it; this adds the
//! special-token facts, the bos/eos rule, and the per-id decoding table.

use std::path::Path;

use serde_json::Value;
use tokenizers::processors::PostProcessorWrapper;

use crate::error::{Error, Result};
use crate::text::decode::{decode_scheme_of, DecodeScheme, Piece};
use crate::text::special::{extra_end_of_generation, END_OF_TURN_MARKERS};
use crate::text::tokenizer::{Engine, Tokenizer, TokenizerKind};
use crate::text::vocab::{tok_err, ByteAlphabet};

impl Tokenizer {
    /// Builds a tokenizer from a Hugging Face `tokenizer.json`, with bos/eos,
    /// `add_bos_token`/`add_eos_token` and the chat template taken from
    /// `tokenizer_config.json` when given.
    ///
    /// The special tokens are added by the file's post-processor, unless
    /// `tokenizer_config.json` states `add_bos_token`/`add_eos_token`
    /// differently from what that post-processor does: then the config wins
    /// (as in transformers' Llama and Gemma tokenizers) and they are added here.
    pub fn from_tokenizer_json(path: &Path, tokenizer_config: Option<&Path>) -> Result<Tokenizer> {
        let mut inner = read_tokenizer(path)?;
        let mut warnings = Vec::new();
        let config = read_config(tokenizer_config)?;
        let mut id_of = |name: &str| config_token_id(&config, &inner, name, &mut warnings);
        let bos_id = id_of("bos_token");
        let eos_id = id_of("eos_token");
        let unk_id = id_of("unk_token");
        let pad_id = id_of("pad_token");
        let chat_template = config_chat_template(&config);
        let adding = special_adding(&inner, path, &config, bos_id, eos_id)?;
        if !adding.by_post_processor {
            inner.with_post_processor(None::<PostProcessorWrapper>);
        }
        let scheme = decode_scheme_of(inner.get_decoder());
        let pieces = decode_table(&inner, path, scheme)?;
        let extra_eog_ids = end_of_generation(&inner, eos_id);
        Ok(Tokenizer {
            inner: Engine::Hf(Box::new(inner)),
            bos_id,
            eos_id,
            extra_eog_ids,
            unk_id,
            pad_id,
            add_bos: adding.bos,
            add_eos: adding.eos,
            chat_template,
            warnings,
            kind: TokenizerKind::HuggingFace,
            vocab_size: pieces.len(),
            pieces: pieces.into_iter().collect(),
            scheme,
            specials_by_post_processor: adding.by_post_processor,
        })
    }
}

/// Reads and builds `tokenizer.json`.
fn read_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // tokenizers 0.22 panics (an `expect` in its decoder deserializer)
    // instead of returning an error when the JSON is malformed inside the
    // "decoder" object (found by fuzz/: golden/hostile/hf/tokenizer-decoder-*):
    // check the whole file first, every string decoded, nothing built.
    serde_json::from_slice::<JsonCheck>(&bytes)
        .map_err(|e| tok_err(format!("{}: not valid JSON: {e}", path.display())))?;
    tokenizers::Tokenizer::from_bytes(&bytes)
        .map_err(|e| tok_err(format!("{}: {e}", path.display())))
}

/// `tokenizer_config.json` when given, else `null`.
fn read_config(path: Option<&Path>) -> Result<Value> {
    match path {
        Some(p) => {
            let text = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            serde_json::from_slice(&text)
                .map_err(|e| tok_err(format!("{}: not valid JSON: {e}", p.display())))
        }
        None => Ok(Value::Null),
    }
}

/// The id of the token `tokenizer_config.json` names under `name` (a string,
/// or an object with `content`); a warning when it is not in the vocabulary.
fn config_token_id(
    config: &Value,
    inner: &tokenizers::Tokenizer,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<u32> {
    let text = match config.get(name)? {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("content")?.as_str()?.to_owned(),
        _ => return None,
    };
    let id = inner.token_to_id(&text);
    if id.is_none() {
        warnings.push(format!(
            "tokenizer_config.json names {name} {text:?}, which is not in the vocabulary"
        ));
    }
    id
}

/// The chat template: a string, or the one named `default` (else the first)
/// of a list of named templates.
fn config_chat_template(config: &Value) -> Option<String> {
    match config.get("chat_template") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .or_else(|| list.first())
            .and_then(|t| t.get("template"))
            .and_then(|t| t.as_str())
            .map(str::to_owned),
        _ => None,
    }
}

/// Whether bos and eos are added, and by whom.
struct SpecialAdding {
    bos: bool,
    eos: bool,
    /// The file's post-processor adds them; otherwise `encode` does, and the
    /// post-processor is dropped.
    by_post_processor: bool,
}

/// What the post-processor adds around a sequence, unless
/// `tokenizer_config.json` states `add_bos_token`/`add_eos_token`
/// differently: then the config wins.
fn special_adding(
    inner: &tokenizers::Tokenizer,
    path: &Path,
    config: &Value,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
) -> Result<SpecialAdding> {
    let probe = |special: bool| -> Result<Vec<u32>> {
        inner
            .encode("a", special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| tok_err(format!("{}: {e}", path.display())))
    };
    let plain = probe(false)?;
    let with = probe(true)?;
    let (front, back) = match with
        .windows(plain.len().max(1))
        .position(|w| w == plain.as_slice())
    {
        Some(at) if !plain.is_empty() => (&with[..at], &with[at + plain.len()..]),
        _ => (&with[..0], &with[..0]),
    };
    let pp_bos = bos_id.is_some() && front == [bos_id.unwrap()];
    let pp_eos = eos_id.is_some() && back == [eos_id.unwrap()];
    let cfg_bos = config.get("add_bos_token").and_then(|b| b.as_bool());
    let cfg_eos = config.get("add_eos_token").and_then(|b| b.as_bool());
    let disagree = cfg_bos.is_some_and(|b| b != pp_bos) || cfg_eos.is_some_and(|b| b != pp_eos);
    Ok(if disagree {
        SpecialAdding {
            bos: cfg_bos.unwrap_or(pp_bos),
            eos: cfg_eos.unwrap_or(pp_eos),
            by_post_processor: false,
        }
    } else {
        SpecialAdding {
            bos: pp_bos,
            eos: pp_eos,
            by_post_processor: true,
        }
    })
}

/// Per id, what it decodes to (`None` for ids that name no token); as long
/// as the largest id plus one.
fn decode_table(
    inner: &tokenizers::Tokenizer,
    path: &Path,
    scheme: DecodeScheme,
) -> Result<Vec<Option<Piece>>> {
    let vocab = inner.get_vocab(true);
    let vocab_size = vocab.values().copied().max().map_or(0, |m| m as usize + 1);
    // The per-id table below is sized by the largest id: refuse an id no
    // embedding the engine accepts could have a row for, before a lying
    // file makes that table billions of entries long.
    if vocab_size > crate::formats::limits::MAX_VOCAB {
        return Err(tok_err(format!(
            "{}: token id {} exceeds the largest vocabulary the engine accepts ({} ids)",
            path.display(),
            vocab_size - 1,
            crate::formats::limits::MAX_VOCAB
        )));
    }
    let alphabet = ByteAlphabet::new();
    let mut pieces: Vec<Option<Piece>> = vec![None; vocab_size];
    for (text, &id) in &vocab {
        // Added tokens decode to their content.
        let text = inner.id_to_token(id).unwrap_or_else(|| text.clone());
        pieces[id as usize] = Some(match scheme {
            DecodeScheme::ByteLevel => Piece::byte_level(&alphabet, &text),
            DecodeScheme::Spm { .. } => Piece::sentencepiece(&text),
            DecodeScheme::Generic => Piece::Text(Box::default()),
        });
    }
    Ok(pieces)
}

/// The special added tokens whose text marks an end of turn, besides `eos_id`.
fn end_of_generation(inner: &tokenizers::Tokenizer, eos_id: Option<u32>) -> Vec<u32> {
    let special_eog: Vec<u32> = inner
        .get_added_tokens_decoder()
        .iter()
        .filter(|(_, t)| t.special && END_OF_TURN_MARKERS.contains(&t.content.as_str()))
        .map(|(id, _)| *id)
        .collect();
    extra_end_of_generation(special_eog, eos_id)
}

/// Deserializes any JSON value and keeps nothing, but decodes every string
/// and number the way a real parse does (UTF-8, escapes, surrogates, range),
/// so that a file it accepts cannot make a later parse fail on its syntax.
/// `serde::de::IgnoredAny` is not enough: it skips strings without decoding
/// them. Nesting is bounded by serde_json's recursion limit.
struct JsonCheck;

impl<'de> serde::Deserialize<'de> for JsonCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(JsonCheckVisitor)
    }
}

struct JsonCheckVisitor;

impl<'de> serde::de::Visitor<'de> for JsonCheckVisitor {
    type Value = JsonCheck;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_unit<E>(self) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_none<E>(self) -> std::result::Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_some<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<JsonCheck, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<JsonCheck, A::Error> {
        while seq.next_element::<JsonCheck>()?.is_some() {}
        Ok(JsonCheck)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<JsonCheck, A::Error> {
        while map.next_entry::<JsonCheck, JsonCheck>()?.is_some() {}
        Ok(JsonCheck)
    }
}
