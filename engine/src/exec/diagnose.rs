//! `atenia diagnose`'s findings: everything the engine can tell about a
//! model without running it — format, family, hyperparameters, tensors by
//! type, tokenizer, chat template, estimated memory — and whether it can run.
//! The binary prints them; this module computes them, as JSON.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::exec::kv_cache::checked_bytes;
use crate::memory::os::mem_available;
use crate::model::hf;
use crate::model::open::{Loaded, Opened, Source, TokenizerLoad};
use crate::text::tokenizer::{Tokenizer, TokenizerKind};

/// What diagnose learned, and the error that stops the model from running.
pub struct Diagnosis {
    /// The findings as JSON: `path`, `format`, `family`, `architecture`,
    /// `tensors`, `hyperparameters`, `memory`, `tokenizer`, `can_run`, `error`
    /// (each present as far as the model could be read).
    pub report: Value,
    pub error: Option<Error>,
}

/// Reads the model at `path` as far as it can: the file is parsed and the
/// weights are bound (the matrices stay memory-mapped, unread); nothing is
/// computed. What could be learned before an error is kept in the report.
pub fn diagnose(path: &Path) -> Diagnosis {
    let mut out = Map::new();
    out.insert("path".into(), json!(path.display().to_string()));
    let error = read_format(path, &mut out)
        .and_then(|opened| opened.load(TokenizerLoad::Lazy))
        .and_then(|loaded| model_json(&loaded, &mut out))
        .err();
    out.insert("can_run".into(), json!(error.is_none()));
    out.insert(
        "error".into(),
        error.as_ref().map_or(Value::Null, error_json),
    );
    Diagnosis {
        report: Value::Object(out),
        error,
    }
}

#[derive(Default)]
struct TypeStats {
    count: usize,
    elements: u128,
    bytes: u128,
}

fn types_json(by_type: &BTreeMap<String, TypeStats>) -> Value {
    Value::Array(
        by_type
            .iter()
            .map(|(t, s)| {
                json!({
                    "type": t,
                    "count": s.count,
                    "elements": s.elements as f64,
                    "bytes": u64::try_from(s.bytes).ok(),
                })
            })
            .collect(),
    )
}

fn error_json(e: &Error) -> Value {
    json!({
        "code": e.code(),
        "message": e.to_string(),
        "hint": e.hint(),
        "exit_code": e.exit_code(),
    })
}

/// The format-level facts: what the file says before the model is built.
fn read_format(path: &Path, out: &mut Map<String, Value>) -> Result<Opened> {
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    let mut by_type: BTreeMap<String, TypeStats> = BTreeMap::new();
    if path.is_dir() {
        out.insert("format".into(), json!("hf"));
    } else {
        let file_bytes = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        out.insert("file_bytes".into(), json!(file_bytes));
    }
    let source = Source::read(path)?;
    match &source {
        Source::Hf { config, .. } => {
            let archs = config.get("architectures").cloned().unwrap_or(Value::Null);
            out.insert("architecture".into(), archs);
            let spec = source.builtin_spec(None);
            if let Ok(s) = &spec {
                out.insert("family".into(), json!(s.name));
            }
            let weights = hf::open_weights(path);
            if let Ok(w) = &weights {
                let mut files = 0u64;
                for f in w.files() {
                    files += std::fs::metadata(f.path()).map_or(0, |m| m.len());
                    for t in f.tensors().values() {
                        let elements = t.shape.iter().map(|&d| d as u128).product();
                        add(
                            &mut by_type,
                            format!("{:?}", t.dtype),
                            elements,
                            t.size as u128,
                        );
                    }
                }
                out.insert("shards".into(), json!(w.files().len()));
                out.insert("file_bytes".into(), json!(files));
            }
            out.insert("tensors".into(), types_json(&by_type));
            spec?;
            weights?;
        }
        Source::Gguf(g) => {
            out.insert("format".into(), json!(format!("gguf v{}", g.version)));
            for t in &g.tensors {
                let (elements, bytes) = (t.elements() as u128, t.size as u128);
                add(&mut by_type, t.dtype.name().to_string(), elements, bytes);
            }
            out.insert("tensors".into(), types_json(&by_type));
            out.insert("metadata_keys".into(), json!(g.metadata.len()));
            out.insert("architecture".into(), json!(g.architecture()?));
            let spec = source.builtin_spec(None)?;
            out.insert("family".into(), json!(spec.name));
            if let Some(name) = g.metadata.str("general.name").ok().flatten() {
                out.insert("name".into(), json!(name));
            }
        }
    }
    source.with_spec(path, None, None)
}

fn add(by_type: &mut BTreeMap<String, TypeStats>, t: String, elements: u128, bytes: u128) {
    let s = by_type.entry(t).or_default();
    s.count += 1;
    s.elements += elements;
    s.bytes += bytes;
}

fn tokenizer_json(t: &Tokenizer) -> Value {
    let kind = match &t.kind {
        TokenizerKind::ByteLevelBpe { pre } => {
            json!({"model": "gpt2", "what": "byte-level BPE", "pre": pre})
        }
        TokenizerKind::SentencePiece { flavor } => {
            json!({"model": "llama", "what": "SentencePiece (BPE with byte fallback)", "flavor": format!("{flavor:?}")})
        }
        TokenizerKind::HuggingFace => {
            json!({"model": "tokenizer.json", "what": "Hugging Face tokenizer"})
        }
    };
    let token = |id: Option<u32>| id.map(|i| json!({"id": i, "text": t.id_to_token(i)}));
    json!({
        "kind": kind,
        "vocab_size": t.vocab_size(),
        "bos": token(t.bos_id),
        "eos": token(t.eos_id),
        "end_of_generation_ids": t.extra_eog_ids,
        "add_bos": t.add_bos,
        "add_eos": t.add_eos,
        "chat_template": t.chat_template.is_some(),
        "chat_template_chars": t.chat_template.as_ref().map(|s| s.chars().count()),
        "warnings": t.warnings,
    })
}

/// The model's figures, and its tokenizer's when it has one. A model without
/// a tokenizer cannot generate, so that is the error diagnose reports (the
/// figures stay in the output).
fn model_json(l: &Loaded, out: &mut Map<String, Value>) -> Result<()> {
    let c = &l.model.config;
    let sliding = c.layers.iter().filter(|x| x.attn.window.is_some()).count();
    let window = c.layers.iter().find_map(|x| x.attn.window);
    let softcap = c.layers.iter().find_map(|x| x.attn.softcap);
    let ropes: Vec<Value> = c
        .ropes
        .iter()
        .map(|r| {
            json!({
                "style": r.style,
                "rotary_dim": r.rotary_dim,
                "inv_freq_first": r.inv_freq.first(),
                "inv_freq_last": r.inv_freq.last(),
                "attention_factor": r.attention_factor,
            })
        })
        .collect();
    out.insert("name".into(), json!(l.name));
    out.insert("family".into(), json!(c.family));
    out.insert("architecture".into(), json!(c.architecture));
    out.insert(
        "hyperparameters".into(),
        json!({
            "layers": c.n_layers,
            "hidden": c.hidden,
            "heads": c.n_heads,
            "kv_heads": c.n_kv_heads,
            "head_dim": c.head_dim,
            "ffn_hidden": c.ffn_hidden,
            "vocab": c.vocab,
            "context_length": c.context_length,
            "norm_eps": c.norm_eps,
            "norm_weight_offset": c.norm_weight_offset,
            "activation": format!("{:?}", c.activation),
            "embed_scale": c.embed_scale,
            "final_softcap": c.final_softcap,
            "attn_softcap": softcap,
            "sliding_window": window,
            "sliding_layers": sliding,
            "tied_embeddings": l.model.weights.tied,
            "ropes": ropes,
            "long_context_above": c.long_context.as_ref().map(|x| x.above),
        }),
    );
    let weights: u64 = out
        .get("tensors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| t["bytes"].as_u64()).sum())
        .unwrap_or(0);
    let at_ctx = checked_bytes(c.n_layers, c.context_length, c.kv_dim());
    let at_4k = checked_bytes(c.n_layers, 4096, c.kv_dim());
    let total = |kv: Option<u64>| kv.and_then(|k| k.checked_add(weights));
    out.insert(
        "memory".into(),
        json!({
            "weights_mapped_bytes": weights,
            "kv_cache_bytes_per_token": checked_bytes(c.n_layers, 1, c.kv_dim()),
            "kv_cache_bytes_at_context": at_ctx,
            "kv_cache_bytes_at_4096": at_4k,
            "total_bytes_at_context": total(at_ctx),
            "total_bytes_at_4096": total(at_4k),
            "available_bytes": mem_available(),
            "fits_at_4096": match (total(at_4k), mem_available()) {
                (Some(t), Some(a)) => Some(t <= a),
                _ => None,
            },
        }),
    );
    out.insert("tokenizer".into(), tokenizer_json(l.tokenizer()?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn golden(rel: &str) -> PathBuf {
        atenia_testkit::golden().join(rel)
    }

    #[test]
    fn a_gguf_fixture_is_read_in_full_and_can_run() {
        let d = diagnose(&golden("gguf/llama/llama-Q8_0.gguf"));
        assert!(d.error.is_none(), "{:?}", d.error.map(|e| e.to_string()));
        let r = &d.report;
        assert_eq!(r["can_run"], true);
        assert_eq!(r["family"], "llama");
        assert!(r["format"].as_str().unwrap().starts_with("gguf v"), "{r}");
        let loaded = crate::model::open::load(&golden("gguf/llama/llama-Q8_0.gguf")).unwrap();
        let c = &loaded.model.config;
        assert_eq!(r["hyperparameters"]["layers"], c.n_layers);
        assert_eq!(r["hyperparameters"]["vocab"], c.vocab);
        assert_eq!(
            r["memory"]["kv_cache_bytes_per_token"],
            checked_bytes(c.n_layers, 1, c.kv_dim()).unwrap()
        );
        assert_eq!(r["tokenizer"]["vocab_size"], c.vocab);
    }

    #[test]
    fn a_checkpoint_without_a_tokenizer_keeps_its_figures_and_says_why_it_cannot_run() {
        let d = diagnose(&golden("hf/llama-tied-f32"));
        let e = d.error.expect("no tokenizer.json: cannot generate");
        assert_eq!(e.code(), "E-TOKENIZER");
        let r = &d.report;
        assert_eq!(r["can_run"], false);
        assert_eq!(r["format"], "hf");
        assert_eq!(r["error"]["code"], "E-TOKENIZER");
        assert!(r["hyperparameters"]["layers"].as_u64().unwrap() > 0, "{r}");
        assert!(
            r["tensors"].as_array().is_some_and(|t| !t.is_empty()),
            "{r}"
        );
    }

    #[test]
    fn a_missing_path_is_an_io_error_with_the_path_kept() {
        let p = golden("no-such-model.gguf");
        let d = diagnose(&p);
        assert_eq!(d.error.map(|e| e.code()), Some("E-IO"));
        assert_eq!(d.report["path"], p.display().to_string());
        assert_eq!(d.report["can_run"], false);
        assert!(d.report.get("format").is_none());
    }
}
