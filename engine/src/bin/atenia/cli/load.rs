//! `atenia load`: checks a family spec on a real model file — validate the
//! spec, load the model with it, run one forward pass, show the next tokens.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use atenia_engine::exec::decoder::{Logits, Session};
use atenia_engine::family::spec::{FamilySpec, SCHEMA_VERSION};
use atenia_engine::formats::gguf::GgufFile;
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::model::Model;
use atenia_engine::text::tokenizer::Tokenizer;
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
    /// Worker threads (0 = one per core; at most 4 per core)
    #[arg(short, long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Kernel path: scalar, avx2 or avx512 (default: the fastest this CPU runs)
    #[arg(long, value_name = "ISA")]
    pub isa: Option<String>,
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

/// FNV-1a (64-bit) of the little-endian bytes of the logits: equal hashes mean
/// bit-identical logits.
pub fn logits_hash(logits: &[f32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in logits {
        for b in x.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("fnv1a64:{h:016x}")
}

/// The `k` largest logits, largest first (ties: the smaller id first).
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    idx.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    idx.into_iter()
        .take(k)
        .map(|i| (i, logits[i as usize]))
        .collect()
}

struct Opened {
    format: &'static str,
    model: Model,
    tokenizer: Option<Tokenizer>,
    tokenizer_error: Option<String>,
}

fn open_gguf(path: &Path, spec: FamilySpec) -> Result<Opened> {
    let file = GgufFile::open(path)?;
    let arch = file.architecture()?.to_string();
    if !spec.gguf_architectures.contains(&arch) {
        return Err(Error::argument(
            "SPEC",
            format!(
                "the {} spec reads general.architecture {:?}, but {} is {arch:?}; \
                 add {arch:?} to its gguf_architectures",
                spec.name,
                spec.gguf_architectures,
                path.display()
            ),
        ));
    }
    // The tokenizer takes its SentencePiece shape from the spec given.
    let model = Model::from_gguf_with_spec(&file, file.storage(), spec.clone())?;
    let (tokenizer, tokenizer_error) = match Tokenizer::from_gguf_with_spec(&file.metadata, &spec) {
        Ok(t) => (Some(t), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Opened {
        format: "gguf",
        model,
        tokenizer,
        tokenizer_error,
    })
}

fn open_hf(dir: &Path, spec: FamilySpec) -> Result<Opened> {
    let config = atenia_engine::model::hf::read_config(dir)?;
    let hf = spec.hf.as_ref().ok_or_else(|| {
        Error::argument(
            "SPEC",
            format!(
                "the {} spec has no `hf:` section, so it cannot read the checkpoint directory {}",
                spec.name,
                dir.display()
            ),
        )
    })?;
    let archs: Vec<String> = config
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let model_type = config.get("model_type").and_then(|v| v.as_str());
    let matches = if archs.is_empty() {
        model_type.is_some_and(|m| hf.model_types.iter().any(|t| t == m))
    } else {
        archs.iter().any(|a| hf.architectures.contains(a))
    };
    if !matches {
        return Err(Error::argument(
            "SPEC",
            format!(
                "the {} spec reads architectures {:?} (model types {:?}), but config.json declares {:?} (model_type {:?}); \
                 add the architecture to hf.architectures",
                spec.name, hf.architectures, hf.model_types, archs, model_type
            ),
        ));
    }
    let model = atenia_engine::model::hf::load_dir_with_spec(dir, &config, spec)?;
    let tj = dir.join("tokenizer.json");
    let tc = dir.join("tokenizer_config.json");
    let (tokenizer, tokenizer_error) = if tj.is_file() {
        match Tokenizer::from_tokenizer_json(&tj, tc.is_file().then_some(tc.as_path())) {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (
            None,
            Some(format!("{} has no tokenizer.json", dir.display())),
        )
    };
    Ok(Opened {
        format: "hf",
        model,
        tokenizer,
        tokenizer_error,
    })
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
    let rt = Runtime::new(a.threads, super::generate::parse_isa(a.isa.as_deref())?)?;
    let opened = if a.model.is_dir() {
        open_hf(&a.model, spec.clone())?
    } else {
        open_gguf(&a.model, spec.clone())?
    };
    let model = &opened.model;
    let c = &model.config;
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
    let mut session = Session::new(model, &rt, ids.len())?;
    let mut logits = Vec::new();
    let t0 = std::time::Instant::now();
    session.forward(&ids, Logits::Last, &mut logits)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if logits.iter().any(|x| !x.is_finite()) {
        return Err(Error::Runtime(
            "the forward pass gave NaN or infinite logits; the spec probably does not fit this model".into(),
        ));
    }
    let top = top_k(&logits, a.top);
    let text = |id: u32| tok.and_then(|t| t.decode(&[id]).ok());
    let sliding: Vec<usize> = c
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.attn.window.is_some())
        .map(|(i, _)| i)
        .collect();
    let types: Vec<String> = model
        .matrix_types()
        .iter()
        .map(|(t, n)| format!("{t} x{n}"))
        .collect();

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
            "logits_hash": logits_hash(&logits),
            "forward_ms": ms,
            "tokenizer_error": opened.tokenizer_error,
        });
        if a.json.emit(&v)? {
            return Ok(());
        }
    }
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
    let _ = writeln!(out, "logits   {}", logits_hash(&logits));
    emit(&out);
    Ok(())
}
