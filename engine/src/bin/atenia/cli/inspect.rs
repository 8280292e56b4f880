//! `atenia inspect`: what a checkpoint holds, and a family spec for it — the
//! built-in one when its architecture has one, else a draft made from its
//! tensor names and hyperparameters, with what needs a human check marked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use atenia_engine::family::roles::{TensorNames, TensorRole};
use atenia_engine::family::spec::{
    FamilySpec, HfFormat, HfLayerTypes, HfSliding, SlidingPattern, BUILTIN_SPEC_FILES,
    SCHEMA_VERSION,
};
use atenia_engine::formats::gguf::{self, GgufFile};
use atenia_engine::kernels::activation::Activation;
use atenia_engine::kernels::rope::RopeStyle;
use atenia_engine::{Error, Result};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    atenia inspect SmolLM2-135M-Instruct.Q4_1.gguf          # the built-in llama spec, annotated\n  \
    atenia inspect new-model.gguf > new-family.yaml          # a draft spec for an unknown architecture\n  \
    atenia inspect ./checkpoint-dir --json                   # a JSON summary\n\n\
    Lines of a draft marked CHECK are guesses the file cannot settle; read them,\n\
    then try the spec with `atenia load new-family.yaml -m MODEL -p TEXT`.")]
pub struct Args {
    /// A GGUF file or a Hugging Face checkpoint directory
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    // --json prints a JSON summary (architecture, tensors by type,
    // hyperparameters, matching spec) instead of a spec.
    #[command(flatten)]
    pub json: atenia_engine::cli::args::JsonArgs,
}

/// One tensor: name, stored type, shape (outermost first).
struct Tensor {
    name: String,
    dtype: String,
    shape: Vec<usize>,
}

/// What the checkpoint holds.
struct Found {
    format: &'static str,
    architecture: String,
    model_type: Option<String>,
    name: Option<String>,
    hyper: Map<String, Value>,
    tensors: Vec<Tensor>,
    /// config.json (HF only).
    config: Map<String, Value>,
}

/// The name with its layer index (the first all-digit dot-separated part) made `{i}`.
fn template_of(name: &str) -> String {
    let mut done = false;
    name.split('.')
        .map(|p| {
            if !done && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                done = true;
                "{i}".to_string()
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn gguf_value(v: &gguf::Value) -> Value {
    match v {
        gguf::Value::Str(s) => json!(s),
        gguf::Value::Bool(b) => json!(b),
        gguf::Value::F32(f) => json!(*f as f64),
        gguf::Value::F64(f) => json!(f),
        gguf::Value::Array(a) if a.len() <= 16 => Value::Array(a.iter().map(gguf_value).collect()),
        gguf::Value::Array(a) => json!({"array_of": a.len()}),
        other => other
            .as_i64()
            .map(|i| json!(i))
            .or_else(|| other.as_u64().map(|u| json!(u)))
            .unwrap_or(Value::Null),
    }
}

fn read_gguf(path: &Path) -> Result<Found> {
    let file = GgufFile::open(path)?;
    let arch = file.architecture()?.to_string();
    let prefix = format!("{arch}.");
    let mut hyper = Map::new();
    for (k, v) in file.metadata.iter() {
        if k.starts_with(&prefix) {
            hyper.insert(k.clone(), gguf_value(v));
        }
    }
    for k in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "general.file_type",
    ] {
        if let Some(v) = file.metadata.get(k) {
            hyper.insert(k.into(), gguf_value(v));
        }
    }
    if let Some(t) = file
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
    {
        hyper.insert("tokenizer.ggml.tokens".into(), json!({"array_of": t.len()}));
    }
    let tensors = file
        .tensors
        .iter()
        .map(|t| Tensor {
            name: t.name.clone(),
            dtype: t.dtype.to_string(),
            shape: t.shape(),
        })
        .collect();
    Ok(Found {
        format: "gguf",
        name: file.metadata.str("general.name")?.map(str::to_string),
        architecture: arch,
        model_type: None,
        hyper,
        tensors,
        config: Map::new(),
    })
}

fn read_hf(dir: &Path) -> Result<Found> {
    let config = atenia_engine::model::hf::read_config(dir)?;
    let archs: Vec<String> = config
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let model_type = config
        .get("model_type")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let architecture = archs
        .first()
        .cloned()
        .or_else(|| model_type.clone())
        .ok_or_else(|| Error::config("architectures", "missing, and no model_type either"))?;
    let set = atenia_engine::model::hf::open_weights(dir)?;
    let mut tensors = vec![];
    for f in set.files() {
        for (name, t) in f.tensors() {
            tensors.push(Tensor {
                name: name.clone(),
                dtype: format!("{:?}", t.dtype),
                shape: t.shape.clone(),
            });
        }
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let hyper = config
        .iter()
        .filter(|(k, _)| k.as_str() != "architectures")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Found {
        format: "hf",
        architecture,
        model_type,
        name: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        hyper,
        tensors,
        config,
    })
}

/// The spec field a GGUF tensor template fills, if any.
fn gguf_role(t: &str) -> Option<&'static str> {
    Some(match t {
        "token_embd.weight" => "embed",
        "output.weight" => "output",
        "output_norm.weight" => "final_norm",
        _ => match t.strip_prefix("blk.{i}.")? {
            "attn_norm.weight" => "attn_norm",
            "attn_q.weight" => "q",
            "attn_k.weight" => "k",
            "attn_v.weight" => "v",
            "attn_qkv.weight" => "qkv",
            "attn_output.weight" => "o",
            "attn_q.bias" => "q_bias",
            "attn_k.bias" => "k_bias",
            "attn_v.bias" => "v_bias",
            "attn_q_norm.weight" => "q_norm",
            "attn_k_norm.weight" => "k_norm",
            "post_attention_norm.weight" => "post_attn_norm",
            "ffn_norm.weight" => "ffn_norm",
            "ffn_gate.weight" => "gate",
            "ffn_up.weight" => "up",
            "ffn_down.weight" => "down",
            "post_ffw_norm.weight" => "post_ffn_norm",
            _ => return None,
        },
    })
}

/// The spec field a Hugging Face tensor template fills, if any. `sandwich`:
/// the checkpoint has `pre_feedforward_layernorm` (Gemma 2/3 layout).
fn hf_role(t: &str, sandwich: bool) -> Option<&'static str> {
    if !t.contains("{i}") {
        return Some(
            if t.ends_with("embed_tokens.weight") || t.ends_with("wte.weight") {
                "embed"
            } else if t.ends_with("lm_head.weight") {
                "output"
            } else if t.ends_with("norm.weight") {
                "final_norm"
            } else {
                return None;
            },
        );
    }
    let last2 = {
        let parts: Vec<&str> = t.rsplitn(3, '.').collect();
        if parts.len() < 2 {
            return None;
        }
        format!("{}.{}", parts[1], parts[0])
    };
    Some(match last2.as_str() {
        "input_layernorm.weight" => "attn_norm",
        "qkv_proj.weight" => "qkv",
        "q_proj.weight" => "q",
        "k_proj.weight" => "k",
        "v_proj.weight" => "v",
        "o_proj.weight" => "o",
        "q_proj.bias" => "q_bias",
        "k_proj.bias" => "k_bias",
        "v_proj.bias" => "v_bias",
        "q_norm.weight" | "q_layernorm.weight" => "q_norm",
        "k_norm.weight" | "k_layernorm.weight" => "k_norm",
        "post_attention_layernorm.weight" if sandwich => "post_attn_norm",
        "post_attention_layernorm.weight" => "ffn_norm",
        "pre_feedforward_layernorm.weight" => "ffn_norm",
        "post_feedforward_layernorm.weight" => "post_ffn_norm",
        "gate_proj.weight" => "gate",
        "gate_up_proj.weight" => "up",
        "up_proj.weight" => "up",
        "down_proj.weight" => "down",
        _ => return None,
    })
}

/// Tensors the engine ignores on purpose (not weights of the computation).
fn ignorable(format: &str, template: &str) -> bool {
    format == "hf" && template.ends_with(".rotary_emb.inv_freq")
}

/// Tensors grouped by template: template → (count, dtypes, shape of the first).
fn by_template(f: &Found) -> BTreeMap<String, (usize, BTreeSet<String>, Vec<usize>)> {
    let mut m: BTreeMap<String, (usize, BTreeSet<String>, Vec<usize>)> = BTreeMap::new();
    for t in &f.tensors {
        let e = m
            .entry(template_of(&t.name))
            .or_insert_with(|| (0, BTreeSet::new(), t.shape.clone()));
        e.0 += 1;
        e.1.insert(t.dtype.clone());
    }
    m
}

/// The built-in spec for the checkpoint's architecture.
fn matching(f: &Found) -> Option<FamilySpec> {
    match f.format {
        "gguf" => FamilySpec::for_gguf_architecture(&f.architecture),
        _ => FamilySpec::for_hf_architecture(&f.architecture).or_else(|| {
            f.model_type
                .as_deref()
                .and_then(FamilySpec::for_hf_model_type)
        }),
    }
}

/// Templates of the checkpoint that no field of `names` matches.
fn unread(f: &Found, names: &TensorNames) -> Vec<String> {
    let known: BTreeSet<&str> = names.entries().map(|(_, n)| n).collect();
    by_template(f)
        .into_keys()
        .filter(|t| !known.contains(t.as_str()) && !ignorable(f.format, t))
        .collect()
}

/// Roles found: field → template.
fn roles(f: &Found) -> (BTreeMap<&'static str, String>, Vec<String>) {
    let templates = by_template(f);
    let sandwich = templates
        .keys()
        .any(|t| t.ends_with("pre_feedforward_layernorm.weight"));
    let mut found = BTreeMap::new();
    let mut unmapped = vec![];
    for t in templates.keys() {
        let role = match f.format {
            "gguf" => gguf_role(t),
            _ => hf_role(t, sandwich),
        };
        match role {
            Some(r) if !found.contains_key(r) => {
                found.insert(r, t.clone());
            }
            _ if ignorable(f.format, t) => {}
            _ => unmapped.push(t.clone()),
        }
    }
    (found, unmapped)
}

fn set_field(t: &mut TensorNames, field: &str, v: String) {
    if let Some(role) = TensorRole::from_key(field) {
        t.set(role, v);
    }
}

/// GGUF architectures whose rotary pairs are `(2i, 2i + 1)` in llama.cpp
/// (`LLAMA_ROPE_TYPE_NORM`), and some known to pair `(i, i + d/2)` (NEOX).
const ROPE_NORM: &[&str] = &[
    "llama",
    "llama4",
    "deci",
    "baichuan",
    "starcoder",
    "internlm2",
    "minicpm",
    "xverse",
    "command-r",
    "cohere2",
    "olmo",
    "arctic",
    "deepseek",
    "deepseek2",
    "plm",
    "chatglm",
    "glm4",
    "granite",
    "granitemoe",
    "chameleon",
    "bailingmoe",
    "smollm3",
    "arcee",
    "ernie4_5",
];
const ROPE_NEOX: &[&str] = &[
    "falcon",
    "grok",
    "dbrx",
    "stablelm",
    "bitnet",
    "qwen",
    "qwen2",
    "qwen2moe",
    "qwen3",
    "qwen3moe",
    "olmo2",
    "olmoe",
    "phi2",
    "phi3",
    "phimoe",
    "plamo",
    "gemma",
    "gemma2",
    "gemma3",
    "starcoder2",
    "openelm",
    "gptneox",
    "codeshell",
    "orion",
    "nemotron",
    "exaone",
    "minicpm3",
    "hunyuan-dense",
    "lfm2",
    "seed_oss",
];

/// A draft spec and its comments (dotted field path → what to check).
fn draft(f: &Found) -> (FamilySpec, BTreeMap<String, String>) {
    let (found, _) = roles(f);
    let mut notes: BTreeMap<String, String> = BTreeMap::new();
    let llama = FamilySpec::builtin_named("llama").expect("the llama spec is built in");
    let lower = f.architecture.to_ascii_lowercase();
    let gemma_like =
        lower.contains("gemma") || f.model_type.as_deref().is_some_and(|m| m.contains("gemma"));
    let mut spec = llama.clone();
    spec.schema = SCHEMA_VERSION;
    spec.sliding_rope_theta = None;
    spec.activation = if gemma_like {
        Activation::GeluTanh
    } else {
        Activation::Silu
    };
    notes.insert(
        "activation".into(),
        "CHECK: the MLP activation (silu or gelu_tanh) is not recorded in GGUF files".into(),
    );
    spec.embed_scale_sqrt_hidden = gemma_like;
    notes.insert(
        "embed_scale_sqrt_hidden".into(),
        "CHECK: true when the model multiplies embeddings by sqrt(hidden) (Gemma)".into(),
    );
    spec.qk_norm = found.contains_key("q_norm") && found.contains_key("k_norm");
    spec.post_norms = found.contains_key("post_attn_norm") && found.contains_key("post_ffn_norm");
    spec.fused_gate_up = !found.contains_key("gate") && found.contains_key("up");
    if spec.fused_gate_up {
        notes.insert(
            "fused_gate_up".into(),
            "no gate tensor found: up is taken as the fused gate|up matrix (2 x ffn rows); CHECK"
                .into(),
        );
    }
    match f.format {
        "gguf" => {
            let arch = &f.architecture;
            spec.name = arch.clone();
            spec.gguf_architectures = vec![arch.clone()];
            spec.hf = None;
            notes.insert(
                "hf".into(),
                "GGUF only; add an hf section (see engine/specs/README.md) to read checkpoints too"
                    .into(),
            );
            let key = |k: &str| format!("{arch}.{k}");
            let (style, note) = if ROPE_NORM.contains(&arch.as_str()) {
                (RopeStyle::Interleaved, "llama.cpp ropes this architecture with (2i, 2i+1) pairs (LLAMA_ROPE_TYPE_NORM)")
            } else if ROPE_NEOX.contains(&arch.as_str()) {
                (RopeStyle::Half, "llama.cpp ropes this architecture with (i, i+d/2) pairs (LLAMA_ROPE_TYPE_NEOX)")
            } else {
                (RopeStyle::Half, "CHECK: unknown architecture; llama.cpp's llama_model_rope_type() says: NORM -> interleaved, NEOX -> half")
            };
            spec.rope_style = style;
            notes.insert("rope_style".into(), note.into());
            spec.norm_weight_offset = 0.0;
            notes.insert(
                "norm_weight_offset".into(),
                "GGUF files store the norm weight the model multiplies by (Gemma's 1 + w included)"
                    .into(),
            );
            let has = |k: &str| f.hyper.contains_key(&key(k));
            spec.sliding = if has("attention.sliding_window") {
                if has("attention.sliding_window_pattern") {
                    let p = f.hyper[&key("attention.sliding_window_pattern")]
                        .as_u64()
                        .unwrap_or(2) as usize;
                    notes.insert(
                        "sliding".into(),
                        "the file has a sliding-window pattern: layer i is global when (i + 1) % period == 0; CHECK".into(),
                    );
                    SlidingPattern::Periodic {
                        period: p.max(1),
                        period_key: Some("{arch}.attention.sliding_window_pattern".into()),
                    }
                } else {
                    notes.insert(
                        "sliding".into(),
                        "CHECK: the file has a sliding window; `all` slides every layer, `{periodic: {period: N}}` all but every Nth".into(),
                    );
                    SlidingPattern::All
                }
            } else {
                SlidingPattern::None
            };
            if let Some(t) = f
                .hyper
                .get(&key("rope.freq_base_swa"))
                .and_then(Value::as_f64)
            {
                spec.sliding_rope_theta = Some(t);
                notes.insert(
                    "sliding_rope_theta".into(),
                    "from rope.freq_base_swa".into(),
                );
            }
            spec.attn_softcap_key =
                has("attn_logit_softcapping").then(|| "{arch}.attn_logit_softcapping".into());
            spec.final_softcap_key =
                has("final_logit_softcapping").then(|| "{arch}.final_logit_softcapping".into());
            let mut t = llama.tensors.clone();
            for (field, name) in &found {
                set_field(&mut t, field, name.clone());
            }
            for (role, _) in llama.tensors.entries() {
                let field = role.key();
                if !found.contains_key(field) {
                    notes.insert(
                        format!("tensors.{field}"),
                        "not in this file (the usual name)".into(),
                    );
                }
            }
            spec.tensors = t;
        }
        _ => {
            let mt = f
                .model_type
                .clone()
                .unwrap_or_else(|| f.architecture.to_ascii_lowercase());
            spec.name = mt.replace('_', "-");
            spec.gguf_architectures = vec![];
            notes.insert(
                "gguf_architectures".into(),
                "CHECK: add the general.architecture llama.cpp writes for this family to read its GGUF files".into(),
            );
            spec.rope_style = RopeStyle::Half;
            notes.insert(
                "rope_style".into(),
                "GGUF files only: CHECK against llama.cpp's rope type when adding gguf_architectures".into(),
            );
            let cfg = &f.config;
            let act_keys: Vec<String> = ["hidden_activation", "hidden_act"]
                .iter()
                .filter(|k| cfg.get(**k).is_some_and(|v| !v.is_null()))
                .map(|k| k.to_string())
                .collect();
            let act_name = act_keys
                .first()
                .and_then(|k| cfg.get(k))
                .and_then(Value::as_str)
                .unwrap_or("silu");
            let (act, note) = match act_name {
                "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => {
                    (Activation::GeluTanh, format!("config.json: {act_name}"))
                }
                "silu" | "swish" => (Activation::Silu, format!("config.json: {act_name}")),
                other => (
                    Activation::Silu,
                    format!("CHECK: config.json says {other:?}, which the engine does not have"),
                ),
            };
            spec.activation = act;
            notes.insert("activation".into(), note);
            let mut t = hf_conventional(&found);
            for (field, name) in &found {
                set_field(&mut t, field, name.clone());
            }
            for (role, _) in llama.hf.as_ref().unwrap().tensors.entries() {
                let field = role.key();
                if !found.contains_key(field) {
                    notes.insert(
                        format!("hf.tensors.{field}"),
                        "not in this checkpoint (the usual name)".into(),
                    );
                }
            }
            let has = |k: &str| cfg.contains_key(k);
            let mut hf = HfFormat {
                architectures: vec![f.architecture.clone()],
                model_types: f.model_type.iter().cloned().collect(),
                tensors: t,
                norm_weight_offset: if gemma_like { 1.0 } else { 0.0 },
                rope_style: RopeStyle::Half,
                activation_keys: if act_keys.is_empty() {
                    vec!["hidden_act".into()]
                } else {
                    act_keys
                },
                sliding: HfSliding::None,
                attn_scale_key: has("query_pre_attn_scalar")
                    .then(|| "query_pre_attn_scalar".into()),
                attn_softcap_key: has("attn_logit_softcapping")
                    .then(|| "attn_logit_softcapping".into()),
                final_softcap_key: has("final_logit_softcapping")
                    .then(|| "final_logit_softcapping".into()),
                sliding_rope_theta_key: has("rope_local_base_freq")
                    .then(|| "rope_local_base_freq".into()),
                defaults: BTreeMap::new(),
            };
            notes.insert(
                "hf.norm_weight_offset".into(),
                "CHECK: 1 when the model's RMSNorm multiplies by (1 + w) (Gemma), else 0".into(),
            );
            let window = cfg.get("sliding_window").is_some_and(|v| !v.is_null());
            if let Some(types) = cfg.get("layer_types").and_then(Value::as_array) {
                let period = types
                    .iter()
                    .position(|t| t.as_str() == Some("full_attention"))
                    .map_or(1, |p| p + 1);
                hf.sliding = HfSliding::LayerTypes {
                    default: HfLayerTypes::Periodic {
                        period: period.max(1),
                        period_keys: vec![],
                    },
                    enable_key: has("use_sliding_window").then(|| "use_sliding_window".into()),
                };
                notes.insert(
                    "hf.sliding".into(),
                    "from config.json layer_types; the period is the default for configs without the list: CHECK".into(),
                );
            } else if has("use_sliding_window") && has("max_window_layers") {
                hf.sliding = HfSliding::LayerTypes {
                    default: HfLayerTypes::FromLayer {
                        key: "max_window_layers".into(),
                    },
                    enable_key: Some("use_sliding_window".into()),
                };
                notes.insert("hf.sliding".into(), "Qwen2-style switch; CHECK".into());
            } else if window {
                hf.sliding = HfSliding::All;
                notes.insert(
                    "hf.sliding".into(),
                    "config.json has a sliding_window: CHECK that every layer slides".into(),
                );
            }
            let num = |k: &str, d: Value| cfg.get(k).cloned().filter(|v| !v.is_null()).unwrap_or(d);
            hf.defaults
                .insert("rope_theta".into(), num("rope_theta", json!(10000.0)));
            hf.defaults
                .insert("rms_norm_eps".into(), num("rms_norm_eps", json!(1e-6)));
            hf.defaults
                .insert("tie_word_embeddings".into(), json!(false));
            notes.insert(
                "hf.defaults".into(),
                "CHECK: the config class's defaults for keys a config.json may lack (transformers' configuration_<model_type>.py); these are this checkpoint's values".into(),
            );
            spec.hf = Some(hf);
            spec.norm_weight_offset = 0.0;
            spec.sliding = SlidingPattern::None;
            notes.insert(
                "tensors".into(),
                "GGUF names (llama.cpp's usual ones): used only with gguf_architectures".into(),
            );
        }
    }
    (spec, notes)
}

/// The built-in llama HF names, under the checkpoint's own layer prefix.
fn hf_conventional(found: &BTreeMap<&'static str, String>) -> TensorNames {
    let llama = FamilySpec::builtin_named("llama").expect("the llama spec is built in");
    let mut t = llama.hf.expect("llama reads checkpoints").tensors;
    let prefix = found
        .values()
        .find_map(|n| n.find("{i}.").map(|p| n[..p + 4].to_string()));
    if let Some(p) = prefix {
        if p != "model.layers.{i}." {
            for role in TensorRole::ALL.into_iter().filter(|r| r.per_layer()) {
                let v = t.get(role).replace("model.layers.{i}.", &p);
                t.set(role, v);
            }
        }
    }
    t
}

/// Appends `# note` to the YAML lines whose dotted key path has one.
fn annotate(yaml: &str, notes: &BTreeMap<String, String>) -> String {
    let mut stack: Vec<(usize, String)> = vec![];
    let mut out = String::new();
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        let key = body
            .split_once(':')
            .map(|(k, _)| k)
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        out.push_str(line);
        if let Some(k) = key {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, k.to_string()));
            let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
            if let Some(n) = notes.get(&path.join(".")) {
                out.push_str("  # ");
                out.push_str(n);
            }
        }
        out.push('\n');
    }
    out
}

fn summary(path: &Path, f: &Found, spec: Option<&FamilySpec>) -> Value {
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for t in &f.tensors {
        *by_type.entry(t.dtype.clone()).or_default() += 1;
    }
    let (found, unmapped) = roles(f);
    let templates = by_template(f);
    let by_role: Map<String, Value> = found
        .iter()
        .map(|(r, t)| {
            let (n, types, shape) = &templates[t];
            (
                r.to_string(),
                json!({"name": t, "count": n, "types": types, "shape": shape}),
            )
        })
        .collect();
    let unread_by_spec = spec.map(|s| {
        let names = if f.format == "gguf" {
            &s.tensors
        } else {
            &s.hf.as_ref().expect("matched by its hf section").tensors
        };
        unread(f, names)
    });
    json!({
        "path": path.display().to_string(),
        "format": f.format,
        "architecture": f.architecture,
        "model_type": f.model_type,
        "name": f.name,
        "hyperparameters": f.hyper,
        "tensors": {
            "count": f.tensors.len(),
            "by_type": by_type,
            "by_role": by_role,
            "unmapped": unmapped,
        },
        "matching_spec": spec.map(|s| s.name.clone()),
        "unread_by_spec": unread_by_spec,
    })
}

pub fn run(a: Args) -> Result<()> {
    a.json.check()?;
    let f = if a.path.is_dir() {
        read_hf(&a.path)?
    } else {
        read_gguf(&a.path)?
    };
    let spec = matching(&f);
    if a.json.wanted() && a.json.emit(&summary(&a.path, &f, spec.as_ref()))? {
        return Ok(());
    }
    let what = if f.format == "gguf" {
        format!("GGUF file, general.architecture {:?}", f.architecture)
    } else {
        format!(
            "Hugging Face checkpoint, architectures {:?}, model_type {:?}",
            f.architecture,
            f.model_type.as_deref().unwrap_or("")
        )
    };
    let mut out = String::new();
    out.push_str(&format!("# atenia inspect {}\n", a.path.display()));
    out.push_str(&format!("# {what}, {} tensors.\n", f.tensors.len()));
    match &spec {
        Some(s) => {
            let names = if f.format == "gguf" {
                &s.tensors
            } else {
                &s.hf.as_ref().expect("matched by its hf section").tensors
            };
            let missing = unread(&f, names);
            out.push_str(&format!(
                "# Matches the built-in family `{}` (engine/specs/{}.yaml): no new spec is needed.\n\
                 # Below is that spec, to copy and adapt.\n",
                s.name, s.name
            ));
            if missing.is_empty() {
                out.push_str("# Every tensor of the checkpoint has a field in it.\n");
            } else {
                out.push_str(&format!(
                    "# CHECK: {} tensor name(s) of the checkpoint have no field in it: {}\n",
                    missing.len(),
                    missing.join(", ")
                ));
            }
            let text = BUILTIN_SPEC_FILES
                .iter()
                .find(|(file, _)| *file == format!("{}.yaml", s.name))
                .map(|(_, t)| t.to_string())
                .unwrap_or_else(|| s.to_yaml());
            out.push_str(&text);
        }
        None => {
            let (d, notes) = draft(&f);
            let (_, unmapped) = roles(&f);
            out.push_str(&format!(
                "# No built-in family reads it. This is a DRAFT drafted from the tensor names and\n\
                 # the {}; lines marked CHECK need a human (the file cannot settle them).\n\
                 # Save it, then try it: atenia load {}.yaml -m {} -p \"Hello\"\n",
                if f.format == "gguf" { "metadata" } else { "config.json" },
                d.name,
                a.path.display()
            ));
            let check = d.check();
            for e in &check.errors {
                out.push_str(&format!("# CHECK (error): {e}\n"));
            }
            for w in &check.warnings {
                out.push_str(&format!("# CHECK (warning): {w}\n"));
            }
            out.push_str(&annotate(&d.to_yaml(), &notes));
            if !unmapped.is_empty() {
                let templates = by_template(&f);
                out.push_str(
                    "# CHECK: tensors with no field in a spec. The engine has no slot for them, so a\n\
                     # model that needs them needs support in Rust, not only a spec:\n",
                );
                for t in &unmapped {
                    let (n, types, shape) = &templates[t];
                    out.push_str(&format!(
                        "#   {t}  ({n} x {} {shape:?})\n",
                        types.iter().cloned().collect::<Vec<_>>().join("/")
                    ));
                }
            }
        }
    }
    super::load::emit(&out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_roles() {
        assert_eq!(template_of("blk.12.attn_q.weight"), "blk.{i}.attn_q.weight");
        assert_eq!(
            template_of("model.layers.3.mlp.up_proj.weight"),
            "model.layers.{i}.mlp.up_proj.weight"
        );
        assert_eq!(template_of("token_embd.weight"), "token_embd.weight");
        assert_eq!(gguf_role("blk.{i}.attn_qkv.weight"), Some("qkv"));
        assert_eq!(
            hf_role("model.layers.{i}.self_attn.qkv_proj.weight", false),
            Some("qkv")
        );
        assert_eq!(
            hf_role("model.layers.{i}.self_attn.k_proj.weight", false),
            Some("k")
        );
        assert_eq!(
            hf_role("model.layers.{i}.post_attention_layernorm.weight", true),
            Some("post_attn_norm")
        );
        assert_eq!(hf_role("model.norm.weight", false), Some("final_norm"));
    }

    #[test]
    fn annotate_follows_nesting() {
        let mut n = BTreeMap::new();
        n.insert("a.b".to_string(), "note".to_string());
        n.insert("c".to_string(), "top".to_string());
        let y = "a:\n  b: 1\n  c: 2\nc: 3\n";
        assert_eq!(annotate(y, &n), "a:\n  b: 1  # note\n  c: 2\nc: 3  # top\n");
    }
}
