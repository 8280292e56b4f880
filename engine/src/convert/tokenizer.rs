//! The tokenizer files of a converted checkpoint: tokenizer.json,
//! tokenizer_config.json and generation_config.json.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::convert::config::write_json;
use crate::error::{Error, Result};
use crate::text::tokenizer::Tokenizer;

/// The tokenizer files of a converted checkpoint: tokenizer.json (the GGUF
/// tokenizer as `tokenizers` serializes it, with a post-processor adding bos/eos
/// as the file says) and tokenizer_config.json (special tokens, add_bos_token,
/// the chat template). Returns the files written.
pub fn write_tokenizer(
    tok: &Tokenizer,
    dir: &Path,
    model_max_length: usize,
) -> Result<Vec<PathBuf>> {
    let mut inner = tok.inner().clone();
    let text = |id: Option<u32>| id.and_then(|i| tok.id_to_token(i));
    let bos = text(tok.bos_id);
    let eos = text(tok.eos_id);
    let mut single: Vec<String> = vec![];
    let mut pair: Vec<String> = vec![];
    let mut specials: Vec<(String, u32)> = vec![];
    if let (true, Some(b), Some(id)) = (tok.add_bos, &bos, tok.bos_id) {
        single.push(format!("{b}:0"));
        pair.push(format!("{b}:0"));
        specials.push((b.clone(), id));
    }
    single.push("$A:0".into());
    pair.push("$A:0".into());
    if let (true, Some(e), Some(id)) = (tok.add_eos, &eos, tok.eos_id) {
        single.push(format!("{e}:0"));
        pair.push(format!("{e}:0"));
        if !specials.iter().any(|(t, _)| t == e) {
            specials.push((e.clone(), id));
        }
    }
    if let (true, Some(b)) = (tok.add_bos, &bos) {
        pair.push(format!("{b}:1"));
    }
    pair.push("$B:1".into());
    if let (true, Some(e)) = (tok.add_eos, &eos) {
        pair.push(format!("{e}:1"));
    }
    if !specials.is_empty() {
        let tp = tokenizers::processors::template::TemplateProcessing::builder()
            .try_single(single)
            .and_then(|b| b.try_pair(pair))
            .map_err(|e| Error::Tokenizer(format!("cannot build the bos/eos post-processor: {e}")))?
            .special_tokens(specials)
            .build()
            .map_err(|e| {
                Error::Tokenizer(format!("cannot build the bos/eos post-processor: {e}"))
            })?;
        inner.with_post_processor(Some(tp));
    }
    let tj = dir.join("tokenizer.json");
    inner
        .save(&tj, false)
        .map_err(|e| Error::Tokenizer(format!("cannot write {}: {e}", tj.display())))?;

    let mut cfg = Map::new();
    let tv = |t: Option<String>| t.map_or(Value::Null, Value::String);
    cfg.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    cfg.insert("bos_token".into(), tv(bos));
    cfg.insert("eos_token".into(), tv(eos));
    cfg.insert("unk_token".into(), tv(text(tok.unk_id)));
    cfg.insert("pad_token".into(), tv(text(tok.pad_id)));
    cfg.insert("add_bos_token".into(), json!(tok.add_bos));
    cfg.insert("add_eos_token".into(), json!(tok.add_eos));
    cfg.insert("clean_up_tokenization_spaces".into(), json!(false));
    cfg.insert("model_max_length".into(), json!(model_max_length));
    if let Some(t) = &tok.chat_template {
        cfg.insert("chat_template".into(), json!(t));
    }
    let tc = dir.join("tokenizer_config.json");
    write_json(&tc, &Value::Object(cfg))?;
    Ok(vec![tj, tc])
}

/// generation_config.json: the token ids generation starts and stops on.
fn generation_config(tok: &Tokenizer) -> Value {
    let mut o = Map::new();
    o.insert("_from_model_config".into(), json!(true));
    if let Some(b) = tok.bos_id {
        o.insert("bos_token_id".into(), json!(b));
    }
    let mut eos: Vec<u32> = tok.eos_id.into_iter().collect();
    eos.extend(tok.extra_eog_ids.iter().filter(|i| Some(**i) != tok.eos_id));
    match eos.len() {
        0 => {}
        1 => {
            o.insert("eos_token_id".into(), json!(eos[0]));
        }
        _ => {
            o.insert("eos_token_id".into(), json!(eos));
        }
    }
    if let Some(p) = tok.pad_id {
        o.insert("pad_token_id".into(), json!(p));
    }
    Value::Object(o)
}

/// Writes tokenizer.json, tokenizer_config.json and generation_config.json
/// into `dir`; returns the files written, in order.
pub(crate) fn write_all(
    tok: &Tokenizer,
    dir: &Path,
    model_max_length: usize,
) -> Result<Vec<PathBuf>> {
    let mut files = write_tokenizer(tok, dir, model_max_length)?;
    let gp = dir.join("generation_config.json");
    write_json(&gp, &generation_config(tok))?;
    files.push(gp);
    Ok(files)
}
