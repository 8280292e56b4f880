//! `atenia diagnose MODEL`: everything the engine can tell about a model
//! without running it — format, family, hyperparameters, tensors by type,
//! tokenizer, chat template, estimated memory — and whether it can run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atenia_engine::exec::kv_cache::checked_bytes;
use atenia_engine::family::spec::FamilySpec;
use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::model::open::{load, Loaded};
use atenia_engine::text::tokenizer::{Tokenizer, TokenizerKind};
use atenia_engine::{model::hf, Error, Result};
use serde_json::{json, Map, Value};

use super::doctor::gib;

/// `println!` / `print!` into a `String` (written out at once by
/// [`super::doctor::print_stdout`], which survives a closed pipe).
macro_rules! outln {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}
#[allow(unused_macros)]
macro_rules! out {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($o, $($t)*);
    }};
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    atenia diagnose SmolLM2-135M-Instruct.Q4_1.gguf\n  \
    atenia diagnose ./my-checkpoint-dir --json\n  \
    atenia diagnose model.gguf --json | jq '.memory'\n\n\
    Nothing is computed: the file is parsed and the weights are bound (the matrices stay\n\
    memory-mapped, unread). Exits 0 when the model can run; otherwise prints what it could learn,\n\
    then the error, and exits with that error's status (2 for a bad file).")]
pub struct Args {
    /// Model: a GGUF file or a Hugging Face checkpoint directory
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
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
fn inspect_format(path: &Path, out: &mut Map<String, Value>) -> Result<()> {
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    let mut by_type: BTreeMap<String, TypeStats> = BTreeMap::new();
    let mut add = |t: String, elements: u128, bytes: u128| {
        let s = by_type.entry(t).or_default();
        s.count += 1;
        s.elements += elements;
        s.bytes += bytes;
    };
    if path.is_dir() {
        out.insert("format".into(), json!("hf"));
        let config = hf::read_config(path)?;
        let archs = config.get("architectures").cloned().unwrap_or(Value::Null);
        out.insert("architecture".into(), archs);
        let spec = hf::spec_for(&config);
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
                    add(format!("{:?}", t.dtype), elements, t.size as u128);
                }
            }
            out.insert("shards".into(), json!(w.files().len()));
            out.insert("file_bytes".into(), json!(files));
        }
        out.insert("tensors".into(), types_json(&by_type));
        spec?;
        weights?;
        return Ok(());
    }
    let file_bytes = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    out.insert("file_bytes".into(), json!(file_bytes));
    let g = GgufFile::open(path)?;
    out.insert("format".into(), json!(format!("gguf v{}", g.version)));
    for t in &g.tensors {
        add(
            t.dtype.name().to_string(),
            t.elements() as u128,
            t.size as u128,
        );
    }
    out.insert("tensors".into(), types_json(&by_type));
    out.insert("metadata_keys".into(), json!(g.metadata.len()));
    let arch = g.architecture()?;
    out.insert("architecture".into(), json!(arch));
    match FamilySpec::for_gguf_architecture(arch) {
        Some(s) => {
            out.insert("family".into(), json!(s.name));
        }
        None => {
            return Err(Error::unsupported(
                format!("architecture {arch:?}"),
                "no built-in family spec reads it",
            ))
        }
    }
    if let Some(name) = g.metadata.str("general.name").ok().flatten() {
        out.insert("name".into(), json!(name));
    }
    Ok(())
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
            "available_bytes": super::doctor::meminfo("MemAvailable"),
            "fits_at_4096": match (total(at_4k), super::doctor::meminfo("MemAvailable")) {
                (Some(t), Some(a)) => Some(t <= a),
                _ => None,
            },
        }),
    );
    out.insert("tokenizer".into(), tokenizer_json(l.tokenizer()?));
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    a.json.check()?;
    let mut out = Map::new();
    out.insert("path".into(), json!(a.model.display().to_string()));
    let mut error = inspect_format(&a.model, &mut out).err();
    if error.is_none() {
        match load(&a.model) {
            Ok(l) => error = model_json(&l, &mut out).err(),
            Err(e) => error = Some(e),
        }
    }
    out.insert("can_run".into(), json!(error.is_none()));
    out.insert(
        "error".into(),
        error.as_ref().map_or(Value::Null, error_json),
    );
    let v = Value::Object(out);
    if !a.json.emit(&v)? {
        print_text(&v);
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn print_text(v: &Value) {
    let mut o = String::new();
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let bytes = |v: &Value| v.as_u64().map(gib).unwrap_or_else(|| "-".into());
    outln!(o, "Model:        {}", s(&v["path"]));
    outln!(o, "Format:       {}", s(&v["format"]));
    outln!(
        o,
        "Family:       {} (architecture {})",
        s(&v["family"]),
        s(&v["architecture"])
    );
    if let Some(h) = v["hyperparameters"].as_object() {
        outln!(
            o,
            "Shape:        {} layers, hidden {}, {} heads / {} kv heads of {}, ffn {}, vocab {}",
            h["layers"],
            h["hidden"],
            h["heads"],
            h["kv_heads"],
            h["head_dim"],
            h["ffn_hidden"],
            h["vocab"]
        );
        outln!(
            o,
            "              context {}, rms eps {}, {}, {} sliding layers{}",
            h["context_length"],
            h["norm_eps"],
            s(&h["activation"]),
            h["sliding_layers"],
            if h["tied_embeddings"] == true {
                ", tied embeddings"
            } else {
                ""
            }
        );
    }
    if let Some(ts) = v["tensors"].as_array() {
        outln!(o, "Tensors:");
        for t in ts {
            outln!(
                o,
                "  {:<6} {:>5} tensors  {:>10}",
                s(&t["type"]),
                s(&t["count"]),
                bytes(&t["bytes"])
            );
        }
    }
    if let Some(t) = v["tokenizer"].as_object() {
        let tok = |x: &Value| match x.as_object() {
            Some(o) => format!("{} {}", s(&o["id"]), s(&o["text"])),
            None => "-".into(),
        };
        let pre = match &t["kind"]["pre"] {
            Value::String(p) => format!(", pre-tokenizer {p}"),
            _ => String::new(),
        };
        outln!(
            o,
            "Tokenizer:    {} ({}{pre}), {} ids, bos {}, eos {}",
            s(&t["kind"]["model"]),
            s(&t["kind"]["what"]),
            t["vocab_size"],
            tok(&t["bos"]),
            tok(&t["eos"])
        );
        outln!(
            o,
            "Chat template: {}",
            if t["chat_template"] == true {
                "yes"
            } else {
                "no (generate --chat and chat will refuse)"
            }
        );
        for w in t["warnings"].as_array().into_iter().flatten() {
            outln!(o, "  warning: {}", s(w));
        }
    }
    if let Some(m) = v["memory"].as_object() {
        outln!(o,
            "Memory:       weights {} (mapped), KV cache {} at the model's context, {} at 4096 tokens",
            bytes(&m["weights_mapped_bytes"]),
            bytes(&m["kv_cache_bytes_at_context"]),
            bytes(&m["kv_cache_bytes_at_4096"])
        );
        if m["fits_at_4096"] == false {
            outln!(
                o,
                "              weights and a 4096-token cache need {} but {} is available",
                bytes(&m["total_bytes_at_4096"]),
                bytes(&m["available_bytes"])
            );
        }
    }
    if v["can_run"] == true {
        outln!(o, "Can run:      yes");
    } else {
        outln!(o, "Can run:      no ({})", s(&v["error"]["code"]));
    }
    super::doctor::print_stdout(&o);
}
