//! `atenia diagnose MODEL`: everything the engine can tell about a model
//! without running it — format, family, hyperparameters, tensors by type,
//! tokenizer, chat template, estimated memory — and whether it can run. The
//! findings come from [`atenia_engine::exec::diagnose`]; this prints them.

use std::path::PathBuf;

use atenia_engine::exec::diagnose::{diagnose, Diagnosis};
use atenia_engine::Result;
use serde_json::Value;

use super::doctor::gib;

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

pub fn run(a: Args) -> Result<()> {
    a.json.check()?;
    let Diagnosis { report, error } = diagnose(&a.model);
    if !a.json.emit(&report)? {
        print_text(&report);
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
