//! Hugging Face checkpoint directories: `config.json` and safetensors weights
//! (one `model.safetensors`, or shards with `model.safetensors.index.json`).
//!
//! config.json is read the way transformers' config classes read it: the
//! family's [`HfFormat`] says which keys mean what and gives the class
//! defaults for keys a file lacks. Both rotary forms are read: the
//! long-standing `rope_theta` + `rope_scaling`, and the newer
//! `rope_parameters` (one dict, or one per layer type). Weights stay in
//! their stored type (F32, F16, BF16) inside the memory map.

use std::path::Path;

/// What a model directory must hold, for errors about one that does not.
pub const MODEL_DIR_NEEDS: &str =
    "a Hugging Face checkpoint directory holds config.json, the weights \
     (model.safetensors, or model.safetensors.index.json and its shards) and tokenizer.json; \
     a GGUF model is a single file: pass the .gguf file itself";

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::family::roles::TensorRole;
use crate::family::spec::{FamilySpec, HfFormat, HfLayerTypes, HfSliding};
use crate::formats::limits::{MAX_DIM, MAX_LAYERS, MAX_VOCAB};
use crate::formats::safetensors::SafetensorsSet;
use crate::kernels::activation::Activation;
use crate::kernels::attention::AttnShape;
use crate::kernels::rope::Rope;
use crate::model::binding::{bounded, Binder, Plan, Tie};
use crate::model::config_json::{positive, Cfg, FULL, SLIDING};
use crate::model::rope_scaling::{build_rope, rope_dicts, RopeDict};
use crate::model::types::{LayerConfig, LongContext, Model};

/// Reads config.json of a checkpoint directory as a JSON object.
pub fn read_config(dir: &Path) -> Result<Map<String, Value>> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() {
            // Still E-IO (a file is missing), but saying what a model needs.
            Error::io(
                &path,
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} is a directory without config.json, so not a model: {}",
                        dir.display(),
                        MODEL_DIR_NEEDS
                    ),
                ),
            )
        } else {
            Error::io(&path, e)
        }
    })?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::config("config.json", format!("not valid JSON: {e}")))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(Error::config("config.json", "is not a JSON object")),
    }
}

/// Loads a checkpoint directory with the built-in spec for its architecture.
pub fn load_dir(dir: &Path) -> Result<Model> {
    let config = read_config(dir)?;
    let spec = spec_for(&config)?;
    load_dir_with_spec(dir, &config, spec)
}

/// Loads a checkpoint directory whose config.json was read, with a given spec.
pub fn load_dir_with_spec(
    dir: &Path,
    config: &Map<String, Value>,
    spec: FamilySpec,
) -> Result<Model> {
    refuse_unsupported(config)?;
    let hf = spec.hf.clone().ok_or_else(|| {
        Error::unsupported(
            format!("family {}", spec.name),
            "its spec has no Hugging Face format",
        )
    })?;
    let architecture = declared_architecture(config, &hf);
    let plan = plan(config, &hf, architecture)?;
    let weights = open_weights(dir)?;
    let binder = Binder::new(&weights);
    let model = Model::bind(plan, &binder, &hf.tensors, spec)?;
    let mut unused: Vec<String> = binder
        .unused()
        .into_iter()
        .filter(|n| !n.ends_with(".rotary_emb.inv_freq"))
        .filter(|n| !(model.weights.tied && *n == hf.tensors.get(TensorRole::Output)))
        .collect();
    if !unused.is_empty() {
        let count = unused.len();
        unused.truncate(5);
        return Err(Error::unsupported(
            format!("tensor {}", unused[0]),
            format!(
                "the checkpoint holds {count} tensor(s) the {} spec does not read ({}); \
                 running without them would compute a different model",
                model.spec.name,
                unused.join(", ")
            ),
        ));
    }
    Ok(model)
}

/// The safetensors weights of a directory.
pub fn open_weights(dir: &Path) -> Result<SafetensorsSet> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return SafetensorsSet::from_index(&index);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return SafetensorsSet::single(&single);
    }
    for other in [
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "model.bin",
    ] {
        if dir.join(other).exists() {
            return Err(Error::unsupported(
                format!("{}", dir.join(other).display()),
                "only safetensors weights are read; re-save the checkpoint with safe_serialization",
            ));
        }
    }
    Err(Error::io(
        &single,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no model.safetensors nor model.safetensors.index.json in the directory ({})",
                MODEL_DIR_NEEDS
            ),
        ),
    ))
}

/// Refuses what the engine deliberately does not run: mixtures of experts,
/// vision or audio towers, encoder-decoders.
fn refuse_unsupported(config: &Map<String, Value>) -> Result<()> {
    for key in [
        "num_experts",
        "num_local_experts",
        "n_routed_experts",
        "moe_num_experts",
    ] {
        if let Some(n) = config.get(key).and_then(Value::as_u64) {
            if n > 1 {
                return Err(Error::unsupported(
                    format!("config.json {key} = {n}"),
                    "mixture-of-experts models are not supported; the engine runs dense decoder-only models",
                ));
            }
        }
    }
    for key in [
        "vision_config",
        "audio_config",
        "speech_config",
        "vision_tower",
        "text_config",
    ] {
        if config.get(key).is_some_and(|v| !v.is_null()) {
            return Err(Error::unsupported(
                format!("config.json {key}"),
                "multimodal checkpoints (a vision or audio tower around a text model) are not supported; \
                 use a text-only checkpoint",
            ));
        }
    }
    if config.get("is_encoder_decoder").and_then(Value::as_bool) == Some(true) {
        return Err(Error::unsupported(
            "config.json is_encoder_decoder = true",
            "encoder-decoder models are not supported; the engine runs decoder-only models",
        ));
    }
    if config
        .get("use_bidirectional_attention")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err(Error::unsupported(
            "config.json use_bidirectional_attention = true",
            "bidirectional (non-causal) attention is not supported",
        ));
    }
    Ok(())
}

fn architectures(config: &Map<String, Value>) -> Result<Option<Vec<String>>> {
    match config.get("architectures") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::config("architectures", "must be a list of strings"))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(Error::config("architectures", "must be a list of strings")),
    }
}

/// The built-in spec for a config.json (`architectures`, else `model_type`).
pub fn spec_for(config: &Map<String, Value>) -> Result<FamilySpec> {
    refuse_unsupported(config)?;
    let supported = || {
        FamilySpec::builtin()
            .iter()
            .flat_map(|s| s.hf.iter().flat_map(|h| h.architectures.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(archs) = architectures(config)? {
        if archs.is_empty() {
            return Err(Error::config("architectures", "is empty"));
        }
        for a in &archs {
            if let Some(s) = FamilySpec::for_hf_architecture(a) {
                return Ok(s);
            }
        }
        let moe = archs
            .iter()
            .any(|a| a.contains("Moe") || a.contains("MoE") || a.contains("Mixtral"));
        return Err(Error::unsupported(
            format!("architectures {archs:?}"),
            if moe {
                "mixture-of-experts models are not supported; the engine runs dense decoder-only models".to_string()
            } else {
                format!(
                    "no built-in family spec reads it (supported: {})",
                    supported()
                )
            },
        ));
    }
    match config.get("model_type").and_then(Value::as_str) {
        Some(mt) => FamilySpec::for_hf_model_type(mt).ok_or_else(|| {
            Error::unsupported(
                format!("model_type {mt:?}"),
                format!(
                    "no built-in family spec reads it (supported: {})",
                    supported()
                ),
            )
        }),
        None => Err(Error::config(
            "architectures",
            "missing, and no model_type either",
        )),
    }
}

fn declared_architecture(config: &Map<String, Value>, hf: &HfFormat) -> String {
    architectures(config)
        .ok()
        .flatten()
        .and_then(|a| a.into_iter().find(|a| hf.architectures.contains(a)))
        .or_else(|| hf.architectures.first().cloned())
        .unwrap_or_default()
}

/// transformers' `ACT2FN` names of the activations the engine has.
fn activation(name: &str, key: &str) -> Result<Activation> {
    match name {
        "silu" | "swish" => Ok(Activation::Silu),
        // The tanh approximation of GELU under its three names (same formula).
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Ok(Activation::GeluTanh),
        other => Err(Error::unsupported(
            format!("{key} {other:?}"),
            "the engine's gated MLPs use silu or the tanh approximation of GELU",
        )),
    }
}

/// Which layers are of the sliding type (their rope and their window).
fn layer_types(
    cfg: &Cfg<'_>,
    hf: &HfFormat,
    n_layers: usize,
    window: Option<usize>,
) -> Result<Vec<bool>> {
    match &hf.sliding {
        HfSliding::None => Ok(vec![false; n_layers]),
        HfSliding::All => Ok(vec![window.is_some(); n_layers]),
        HfSliding::LayerTypes { default, .. } => {
            if let Some(v) = cfg.value("layer_types") {
                let a = v
                    .as_array()
                    .ok_or_else(|| Error::config("layer_types", "must be a list of strings"))?;
                if a.len() != n_layers {
                    return Err(Error::config(
                        "layer_types",
                        format!("has {} entries for {n_layers} layers", a.len()),
                    ));
                }
                return a
                    .iter()
                    .map(|t| match t.as_str() {
                        Some(FULL) => Ok(false),
                        Some(SLIDING) => Ok(true),
                        _ => Err(Error::unsupported(
                            format!("layer_types entry {t}"),
                            "only full_attention and sliding_attention layers are supported",
                        )),
                    })
                    .collect();
            }
            match default {
                HfLayerTypes::Periodic {
                    period,
                    period_keys,
                } => {
                    let mut p = *period;
                    for k in period_keys {
                        if let Some(v) = cfg.usize(k)? {
                            p = v;
                            break;
                        }
                    }
                    if p == 0 {
                        return Err(Error::config("sliding_window_pattern", "is zero"));
                    }
                    Ok((0..n_layers).map(|i| (i + 1) % p != 0).collect())
                }
                HfLayerTypes::FromLayer { key } => {
                    let from = cfg.usize(key)?.unwrap_or(0);
                    Ok((0..n_layers)
                        .map(|i| window.is_some() && i >= from)
                        .collect())
                }
            }
        }
    }
}

/// The plan a config.json describes.
fn plan(config: &Map<String, Value>, hf: &HfFormat, architecture: String) -> Result<Plan> {
    let cfg = Cfg {
        map: config,
        defaults: &hf.defaults,
    };
    let sh = read_shape(&cfg)?;
    let norm_eps = cfg
        .f64("rms_norm_eps")?
        .ok_or_else(|| Error::config("rms_norm_eps", "missing"))?;
    if !(0.0..1.0).contains(&norm_eps) {
        return Err(Error::config(
            "rms_norm_eps",
            format!("{norm_eps} is not in [0, 1)"),
        ));
    }
    let context_length = cfg.usize("max_position_embeddings")?.unwrap_or(2048);
    if context_length == 0 {
        return Err(Error::config("max_position_embeddings", "is zero"));
    }
    let activation = read_activation(&cfg, hf)?;
    let scale = match &hf.attn_scale_key {
        Some(k) => {
            let s = cfg
                .f64(k)?
                .ok_or_else(|| Error::config(k.as_str(), "missing"))?;
            1.0 / positive(s, k)?.sqrt()
        }
        None => 1.0 / (sh.head_dim as f64).sqrt(),
    };
    let softcap = |k: &Option<String>| -> Result<Option<f64>> {
        match k {
            Some(k) => cfg.f64(k)?.map(|c| positive(c, k)).transpose(),
            None => Ok(None),
        }
    };
    let attn_softcap = softcap(&hf.attn_softcap_key)?;
    let final_softcap = softcap(&hf.final_softcap_key)?;
    let tie = match cfg.bool("tie_word_embeddings")? {
        Some(false) => Tie::Untied,
        // transformers' PretrainedConfig ties by default.
        _ => Tie::Tied,
    };
    let window = sliding_window(&cfg, hf)?;
    let sliding = layer_types(&cfg, hf, sh.n_layers, window)?;
    let (ropes, long_context, sliding_rope) =
        read_ropes(&cfg, hf, sh.head_dim, context_length, &sliding)?;
    let layers = sliding
        .iter()
        .map(|&s| LayerConfig {
            attn: AttnShape {
                n_heads: sh.n_heads,
                n_kv_heads: sh.n_kv_heads,
                head_dim: sh.head_dim,
                scale,
                softcap: attn_softcap,
                window: if s { window } else { None },
            },
            rope: if s { sliding_rope } else { 0 },
        })
        .collect();

    Ok(Plan {
        architecture,
        n_layers: sh.n_layers,
        hidden: sh.hidden,
        n_heads: sh.n_heads,
        n_kv_heads: sh.n_kv_heads,
        head_dim: sh.head_dim,
        ffn_hidden: sh.ffn_hidden,
        vocab: Some(sh.vocab),
        context_length,
        norm_eps,
        norm_weight_offset: hf.norm_weight_offset,
        activation,
        final_softcap,
        ropes,
        long_context,
        layers,
        tie,
    })
}

/// The sizes a config.json declares.
struct Shape {
    n_layers: usize,
    hidden: usize,
    ffn_hidden: usize,
    n_heads: usize,
    vocab: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

fn read_shape(cfg: &Cfg<'_>) -> Result<Shape> {
    let n_layers = cfg.required("num_hidden_layers", MAX_LAYERS)?;
    let hidden = cfg.required("hidden_size", MAX_DIM)?;
    let ffn_hidden = cfg.required("intermediate_size", MAX_DIM)?;
    let n_heads = cfg.required("num_attention_heads", MAX_DIM)?;
    let vocab = cfg.required("vocab_size", MAX_VOCAB)?;
    let n_kv_heads = match cfg.usize("num_key_value_heads")? {
        Some(0) => return Err(Error::config("num_key_value_heads", "is zero")),
        Some(v) => v,
        None => n_heads,
    };
    if n_kv_heads > n_heads || n_heads % n_kv_heads != 0 {
        return Err(Error::config(
            "num_key_value_heads",
            format!("{n_kv_heads} does not divide the {n_heads} query heads"),
        ));
    }
    let head_dim = match cfg.usize("head_dim")? {
        Some(0) => return Err(Error::config("head_dim", "is zero")),
        Some(v) => bounded(v, "head_dim", MAX_DIM)?,
        None => {
            if hidden % n_heads != 0 {
                return Err(Error::config(
                    "num_attention_heads",
                    format!("{n_heads} heads do not divide the hidden size {hidden}"),
                ));
            }
            hidden / n_heads
        }
    };
    bounded(
        n_heads * head_dim,
        "num_attention_heads × head_dim",
        MAX_DIM,
    )?;
    Ok(Shape {
        n_layers,
        hidden,
        ffn_hidden,
        n_heads,
        vocab,
        n_kv_heads,
        head_dim,
    })
}

/// The MLP activation: the first of the spec's keys set in config.json,
/// else the first the config class defaults.
fn read_activation(cfg: &Cfg<'_>, hf: &HfFormat) -> Result<Activation> {
    match hf
        .activation_keys
        .iter()
        .find_map(|k| cfg.value(k).map(|v| (k, v)))
        // All null: the config class's default.
        .or_else(|| {
            hf.activation_keys
                .iter()
                .find_map(|k| hf.defaults.get(k).filter(|v| !v.is_null()).map(|v| (k, v)))
        }) {
        Some((k, v)) => activation(
            v.as_str()
                .ok_or_else(|| Error::config(k.as_str(), format!("{v} is not a string")))?,
            k,
        ),
        None => Err(Error::config(hf.activation_keys.join(" / "), "missing")),
    }
}

/// The sliding window, when the family slides and config.json enables it.
fn sliding_window(cfg: &Cfg<'_>, hf: &HfFormat) -> Result<Option<usize>> {
    let mut window = match hf.sliding {
        HfSliding::None => None,
        _ => cfg.usize("sliding_window")?,
    };
    if window == Some(0) {
        return Err(Error::config("sliding_window", "is zero"));
    }
    if let HfSliding::LayerTypes {
        enable_key: Some(k),
        ..
    } = &hf.sliding
    {
        if cfg.bool(k)? != Some(true) {
            window = None;
        }
    }
    Ok(window)
}

/// The rotations: full-attention layers use `ropes[0]`, sliding layers
/// `ropes[1]` when it differs (the index returned); LongRoPE's long factors
/// as the long-context variant.
fn read_ropes(
    cfg: &Cfg<'_>,
    hf: &HfFormat,
    head_dim: usize,
    context_length: usize,
    sliding: &[bool],
) -> Result<(Vec<Rope>, Option<LongContext>, usize)> {
    let (full_d, sliding_d, per_type) = rope_dicts(cfg, hf)?;
    let theta_of = |d: &RopeDict, fallback: &str| -> Result<(f64, String)> {
        match d.f64("rope_theta")? {
            Some(t) => Ok((t, d.key("rope_theta"))),
            None => Ok((
                cfg.f64(fallback)?
                    .ok_or_else(|| Error::config(fallback, "missing"))?,
                fallback.to_string(),
            )),
        }
    };
    let (full_theta, full_key) = theta_of(&full_d, "rope_theta")?;
    let sliding_fallback = hf.sliding_rope_theta_key.as_deref().unwrap_or("rope_theta");
    let (sliding_theta, sliding_key) = theta_of(&sliding_d, sliding_fallback)?;
    let build = |d: &RopeDict, theta: f64, key: &str| {
        build_rope(
            cfg,
            d,
            theta,
            key,
            head_dim,
            hf.rope_style,
            per_type,
            context_length,
        )
    };
    let (full, full_long) = build(&full_d, full_theta, &full_key)?;
    let mut ropes = vec![full.clone()];
    let mut long_ropes = vec![full_long.as_ref().map_or(full, |(_, r)| r.clone())];
    let mut above = full_long.as_ref().map(|(a, _)| *a);
    let sliding_rope = if sliding.iter().any(|&s| s) {
        let (r, long) = build(&sliding_d, sliding_theta, &sliding_key)?;
        if let (Some((a, _)), Some(b)) = (&long, above) {
            if *a != b {
                return Err(Error::unsupported(
                    "rope_parameters",
                    "LongRoPE with different original contexts per layer type",
                ));
            }
        }
        let long_r = long.as_ref().map_or(r.clone(), |(_, l)| l.clone());
        above = above.or(long.map(|(a, _)| a));
        if r == ropes[0] && long_r == long_ropes[0] {
            0
        } else {
            ropes.push(r);
            long_ropes.push(long_r);
            1
        }
    } else {
        0
    };
    let long_context = above.map(|above| LongContext {
        above,
        ropes: long_ropes,
    });
    Ok((ropes, long_context, sliding_rope))
}

impl Model {
    /// Loads a Hugging Face checkpoint directory (config.json and
    /// model.safetensors or sharded safetensors with their index) with the
    /// built-in spec for its `architectures`.
    pub fn from_hf_dir(dir: &Path) -> Result<Model> {
        load_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn llama() -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 64, "intermediate_size": 176, "num_attention_heads": 4,
            "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 512,
            "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 256
        })
    }

    fn plan_of(v: Value) -> Result<Plan> {
        let m = obj(v);
        let spec = spec_for(&m)?;
        let hf = spec.hf.clone().unwrap();
        plan(&m, &hf, "x".into())
    }

    #[test]
    fn refuses_moe_vision_and_encoder_decoder() {
        for (patch, what) in [
            (json!({"num_local_experts": 8}), "num_local_experts"),
            (json!({"num_experts": 4}), "num_experts"),
            (json!({"architectures": ["MixtralForCausalLM"]}), "Mixtral"),
            (
                json!({"architectures": ["Qwen2MoeForCausalLM"]}),
                "Qwen2Moe",
            ),
            (json!({"vision_config": {}}), "vision_config"),
            (json!({"audio_config": {}}), "audio_config"),
            (json!({"is_encoder_decoder": true}), "is_encoder_decoder"),
            (
                json!({"architectures": ["FooForCausalLM"]}),
                "FooForCausalLM",
            ),
        ] {
            let mut c = obj(llama());
            c.extend(obj(patch));
            let e = spec_for(&c).unwrap_err();
            assert_eq!(e.code(), "E-UNSUPPORTED", "{what}: {e}");
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn refuses_absurd_or_inconsistent_sizes() {
        for patch in [
            json!({"hidden_size": 1_000_000_000_000u64}),
            json!({"hidden_size": 1e12}),
            json!({"num_hidden_layers": 100000}),
            json!({"vocab_size": 1u64 << 40}),
            json!({"num_key_value_heads": 3}),
            json!({"num_key_value_heads": 0}),
            json!({"head_dim": 0}),
            json!({"hidden_size": 66, "head_dim": null}),
            json!({"rms_norm_eps": -1.0}),
            json!({"rope_theta": 0.5}),
            json!({"hidden_size": "64"}),
            json!({"intermediate_size": null}),
            json!({"rope_scaling": {"rope_type": "linear"}}),
            json!({"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0}}),
        ] {
            let mut c = obj(llama());
            c.extend(obj(patch.clone()));
            let e = plan_of(Value::Object(c)).unwrap_err();
            assert_eq!(e.code(), "E-CONFIG", "{patch}: {e}");
        }
        let mut c = obj(llama());
        c.extend(obj(
            json!({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}),
        ));
        assert_eq!(
            plan_of(Value::Object(c)).unwrap_err().code(),
            "E-UNSUPPORTED"
        );
    }

    #[test]
    fn linear_scaling_divides_the_frequencies() {
        let mut c = obj(llama());
        c.extend(obj(
            json!({"rope_scaling": {"type": "linear", "factor": 4.0}}),
        ));
        let p = plan_of(Value::Object(c)).unwrap();
        let plain = plan_of(llama()).unwrap();
        for (a, b) in p.ropes[0].inv_freq.iter().zip(&plain.ropes[0].inv_freq) {
            assert_eq!(*a, b / 4.0);
        }
    }

    #[test]
    fn qwen2_slides_only_when_enabled_and_from_max_window_layers() {
        let base = json!({
            "architectures": ["Qwen2ForCausalLM"],
            "hidden_size": 64, "intermediate_size": 176, "num_attention_heads": 4,
            "num_hidden_layers": 4, "vocab_size": 512, "sliding_window": 8,
            "max_window_layers": 2
        });
        let p = plan_of(base.clone()).unwrap();
        assert!(p.layers.iter().all(|l| l.attn.window.is_none()));
        let mut c = obj(base);
        c.insert("use_sliding_window".into(), json!(true));
        let p = plan_of(Value::Object(c)).unwrap();
        let w: Vec<_> = p.layers.iter().map(|l| l.attn.window).collect();
        assert_eq!(w, [None, None, Some(8), Some(8)]);
    }

    #[test]
    fn gemma3_scales_global_layers_only_in_both_rope_forms() {
        let legacy = json!({
            "architectures": ["Gemma3ForCausalLM"],
            "hidden_size": 64, "intermediate_size": 176, "num_attention_heads": 4,
            "num_key_value_heads": 1, "num_hidden_layers": 6, "vocab_size": 512, "head_dim": 16,
            "sliding_window": 8, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
            "rope_scaling": {"rope_type": "linear", "factor": 8.0}, "sliding_window_pattern": 3
        });
        let mut newer = obj(legacy.clone());
        newer.remove("rope_scaling");
        newer.remove("rope_local_base_freq");
        newer.remove("rope_theta");
        newer.insert(
            "rope_parameters".into(),
            json!({
                "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}
            }),
        );
        let a = plan_of(legacy).unwrap();
        let b = plan_of(Value::Object(newer)).unwrap();
        for p in [&a, &b] {
            let kinds: Vec<_> = p.layers.iter().map(|l| (l.rope, l.attn.window)).collect();
            assert_eq!(
                kinds,
                [
                    (1, Some(8)),
                    (1, Some(8)),
                    (0, None),
                    (1, Some(8)),
                    (1, Some(8)),
                    (0, None)
                ]
            );
            assert_eq!(p.ropes[0].inv_freq[0], 1.0 / 8.0);
            assert_eq!(p.ropes[1].inv_freq[1], 1.0 / 10000f64.powf(2.0 / 16.0));
            assert_eq!(p.layers[0].attn.scale, 1.0 / 256f64.sqrt());
        }
        assert_eq!(a.ropes, b.ropes);
    }
}
