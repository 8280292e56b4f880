//! `atenia load`: checks a family spec on a real model file — validate the
//! spec, load the model with it, run one forward pass, show the next tokens.
//! The checking is [`atenia_engine::exec::spec_check`]'s; this reads the
//! flags and prints the report.

use atenia_engine::exec::digest::logits_sha256;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use atenia_engine::exec::spec_check::{
    last_logits, open_checked, sliding_layers, top_k, type_counts, Checked,
};
use atenia_engine::family::spec::{FamilySpec, SCHEMA_VERSION};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::{Error, Result};

#[derive(clap::Args)]
#[command(
    group(clap::ArgGroup::new("input").required(true).args(["prompt", "ids"])),
    after_help = "Examples:\n  \
    atenia load engine/specs/llama.yaml -m SmolLM2-135M-Instruct.Q4_1.gguf -p \"The capital of France is\"\n  \
    atenia load my-family.yaml -m ./checkpoint-dir --ids 1,15043,3186\n  \
    atenia inspect model.gguf > my-family.yaml   # draft a spec, check it, then:\n  \
    atenia load my-family.yaml -m model.gguf -p \"Hello\" --json\n\n\
    The spec's gguf_architectures (GGUF) or hf.architectures / hf.model_types\n\
    (checkpoint directory) must name the model's architecture. Warnings of the\n\
    spec are printed and do not stop the load; errors do."
)]
pub struct Args {
    /// The family spec (YAML, schema in engine/specs/README.md)
    #[arg(value_name = "SPEC.yaml")]
    pub spec: PathBuf,
    /// The model: a GGUF file or a Hugging Face checkpoint directory
    #[arg(short, long, value_name = "PATH")]
    pub model: PathBuf,
    /// Text to run (tokenized with the model's tokenizer; bos as the model says)
    #[arg(short, long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Token ids to run instead of a prompt, comma-separated
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1..)]
    pub ids: Option<Vec<u32>>,
    /// How many of the most likely next tokens to show
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top: usize,
    #[command(flatten)]
    pub threads: atenia_engine::cli::args::ThreadsArgs,
    #[command(flatten)]
    pub isa: atenia_engine::cli::args::IsaArgs,
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

/// The input ids (`--ids`, or the prompt tokenized) run through one forward pass.
struct Ran {
    ids: Vec<u32>,
    /// The logits of the last position.
    logits: Vec<f32>,
    /// How long the forward pass took.
    ms: f64,
}

fn run_input(a: &Args, opened: &Checked, rt: &Runtime) -> Result<Ran> {
    let c = &opened.model.config;
    let tok = opened.tokenizer.as_ref();
    let ids: Vec<u32> = match (&a.ids, &a.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(p)) => {
            let t = tok.ok_or_else(|| {
                Error::Tokenizer(format!(
                    "cannot tokenize --prompt: {}; pass --ids instead",
                    opened.tokenizer_error.clone().unwrap_or_default()
                ))
            })?;
            t.encode(p, true)?
        }
        (None, None) => unreachable!("clap requires --prompt or --ids"),
    };
    if ids.is_empty() {
        return Err(Error::argument("--prompt", "gives no tokens"));
    }
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= c.vocab) {
        return Err(Error::argument(
            "--ids",
            format!("id {bad} is outside the vocabulary of {} tokens", c.vocab),
        ));
    }
    let (logits, ms) = last_logits(&opened.model, rt, &ids)?;
    Ok(Ran { ids, logits, ms })
}

pub fn run(a: Args) -> Result<()> {
    a.json.check()?;
    let spec = FamilySpec::from_yaml_file(&a.spec)?;
    let warnings = spec.validate()?;
    if !a.json.json {
        for w in &warnings {
            tracing::warn!("{}: {w}", a.spec.display());
        }
    }
    let rt = a.isa.runtime(&a.threads)?;
    let opened = open_checked(&a.model, spec, "SPEC")?;
    let Ran { ids, logits, ms } = run_input(&a, &opened, &rt)?;
    let model = &opened.model;
    let c = &model.config;
    let tok = opened.tokenizer.as_ref();
    let top = top_k(&logits, a.top);
    let text = |id: u32| tok.and_then(|t| t.decode(&[id]).ok());
    let (sliding, types) = (sliding_layers(model), type_counts(model));

    if a.json.wanted() {
        let v = serde_json::json!({
            "spec": a.spec.display().to_string(),
            "schema": SCHEMA_VERSION,
            "family": c.family,
            "warnings": warnings,
            "model": a.model.display().to_string(),
            "format": opened.format,
            "architecture": c.architecture,
            "n_layers": c.n_layers,
            "hidden": c.hidden,
            "n_heads": c.n_heads,
            "n_kv_heads": c.n_kv_heads,
            "head_dim": c.head_dim,
            "ffn_hidden": c.ffn_hidden,
            "vocab": c.vocab,
            "context_length": c.context_length,
            "tied_embeddings": model.weights.tied,
            "sliding_layers": sliding,
            "matrix_types": types,
            "input_ids": ids,
            "top": top.iter().map(|(id, l)| serde_json::json!({
                "id": id, "logit": l, "token": text(*id),
            })).collect::<Vec<_>>(),
            "logits_hash": logits_sha256(&logits),
            "forward_ms": ms,
            "tokenizer_error": opened.tokenizer_error,
        });
        if a.json.emit(&v)? {
            return Ok(());
        }
    }
    emit(&text_report(
        &a, &warnings, &opened, &ids, &top, ms, &logits,
    ));
    Ok(())
}

/// The report `atenia load` prints without `--json`.
fn text_report(
    a: &Args,
    warnings: &[String],
    opened: &Checked,
    ids: &[u32],
    top: &[(u32, f32)],
    ms: f64,
    logits: &[f32],
) -> String {
    let model = &opened.model;
    let c = &model.config;
    let tok = opened.tokenizer.as_ref();
    let text = |id: u32| tok.and_then(|t| t.decode(&[id]).ok());
    let (sliding, types) = (sliding_layers(model), type_counts(model));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "spec     {}: family {} (schema {SCHEMA_VERSION}), {} warning(s)",
        a.spec.display(),
        c.family,
        warnings.len()
    );
    let _ = writeln!(
        out,
        "model    {} ({}, architecture {})",
        a.model.display(),
        if opened.format == "gguf" {
            "GGUF"
        } else {
            "Hugging Face checkpoint"
        },
        c.architecture
    );
    let _ = writeln!(out,
        "shapes   {} layers, hidden {}, {} heads / {} kv heads x {}, ffn {}, vocab {}, context {}, {} embeddings",
        c.n_layers,
        c.hidden,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim,
        c.ffn_hidden,
        c.vocab,
        c.context_length,
        if model.weights.tied { "tied" } else { "untied" }
    );
    let _ = writeln!(out, "weights  {}", types.join(", "));
    if sliding.is_empty() {
        let _ = writeln!(out, "sliding  none");
    } else {
        let w = c.layers[sliding[0]].attn.window.unwrap_or(0);
        let _ = writeln!(out, "sliding  layers {sliding:?} (window {w})");
    }
    if let Some(e) = &opened.tokenizer_error {
        let _ = writeln!(out, "tokens   no tokenizer: {e}");
    }
    let _ = writeln!(out, "input    {} token(s): {ids:?}", ids.len());
    let _ = writeln!(
        out,
        "top {} next tokens after position {} ({ms:.1} ms):",
        top.len(),
        ids.len() - 1
    );
    for (rank, (id, l)) in top.iter().enumerate() {
        let t = text(*id).map(|s| format!("{s:?}")).unwrap_or_default();
        let _ = writeln!(out, "  {:>2}. id {id:>7}  logit {l:>12.6}  {t}", rank + 1);
    }
    let _ = writeln!(out, "logits   {}", logits_sha256(logits));
    out
}
