//! config.json for a converted checkpoint: every hyperparameter, rotation,
//! window and soft-cap of the GGUF model, under the keys the family's
//! Hugging Face format reads, so that the engine's Hugging Face reader builds
//! the very plan the GGUF file gave.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::convert::options::OutDtype;
use crate::error::{Error, Result};
use crate::family::spec::{FamilySpec, HfFormat, HfSliding, SlidingPattern};
use crate::formats::gguf::GgufFile;
use crate::kernels::activation::Activation;
use crate::model::types::{Model, ModelConfig};
use crate::text::tokenizer::Tokenizer;

/// A GGUF f32 value as config.json should hold it: the f64 it widens to, so
/// that the engine reads the very value the GGUF path uses.
fn num(v: f64) -> Value {
    json!(v)
}

fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::Silu => "silu",
        Activation::GeluTanh => "gelu_pytorch_tanh",
    }
}

/// Writes a JSON file as Hugging Face tools do: pretty, with a final newline.
pub(crate) fn write_json(path: &Path, v: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(v).expect("JSON values serialize");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// config.json for the model a GGUF file holds.
pub(crate) fn hf_config(
    file: &GgufFile,
    model: &Model,
    hf: &HfFormat,
    dtype: OutDtype,
    has_bias: bool,
    tok: Option<&Tokenizer>,
) -> Result<Map<String, Value>> {
    let c = &model.config;
    let spec = &model.spec;
    let theta = file
        .metadata
        .f64(&format!("{}.rope.freq_base", c.architecture))?
        .unwrap_or(10_000.0);
    let mut o = Map::new();
    shape(&mut o, model, hf, theta)?;
    o.insert("tie_word_embeddings".into(), json!(model.weights.tied));
    o.insert("attention_bias".into(), json!(has_bias));
    o.insert("torch_dtype".into(), json!(dtype.torch_name()));
    if hf.defaults.contains_key("original_max_position_embeddings") {
        o.insert(
            "original_max_position_embeddings".into(),
            json!(c.context_length),
        );
    }
    attention(&mut o, c, spec, hf)?;
    sliding(&mut o, c, spec, hf, theta)?;
    if let Some(t) = tok {
        let id = |v: Option<u32>| v.map_or(Value::Null, |i| json!(i));
        o.insert("bos_token_id".into(), id(t.bos_id));
        o.insert("eos_token_id".into(), id(t.eos_id));
        if t.pad_id.is_some() {
            o.insert("pad_token_id".into(), id(t.pad_id));
        }
    }
    Ok(o)
}

/// The architecture, the sizes, the norm epsilon, the rotation and the
/// activation.
fn shape(o: &mut Map<String, Value>, model: &Model, hf: &HfFormat, theta: f64) -> Result<()> {
    let c = &model.config;
    let spec = &model.spec;
    let hf_arch = hf.architectures.first().cloned().ok_or_else(|| {
        Error::unsupported(
            format!("family {}", spec.name),
            "its spec lists no hf.architectures to write",
        )
    })?;
    o.insert("architectures".into(), json!([hf_arch]));
    if let Some(mt) = hf.model_types.first() {
        o.insert("model_type".into(), json!(mt));
    }
    o.insert("vocab_size".into(), json!(c.vocab));
    o.insert("hidden_size".into(), json!(c.hidden));
    o.insert("intermediate_size".into(), json!(c.ffn_hidden));
    o.insert("num_hidden_layers".into(), json!(c.n_layers));
    o.insert("num_attention_heads".into(), json!(c.n_heads));
    o.insert("num_key_value_heads".into(), json!(c.n_kv_heads));
    o.insert("head_dim".into(), json!(c.head_dim));
    o.insert("max_position_embeddings".into(), json!(c.context_length));
    o.insert("rms_norm_eps".into(), num(c.norm_eps));
    o.insert("rope_theta".into(), num(theta));
    o.insert("rope_scaling".into(), Value::Null);
    let rotary_dim = c.ropes[0].rotary_dim;
    if rotary_dim != c.head_dim {
        o.insert(
            "partial_rotary_factor".into(),
            json!(rotary_dim as f64 / c.head_dim as f64),
        );
    }
    let act_key = hf.activation_keys.first().ok_or_else(|| {
        Error::unsupported(
            format!("family {}", spec.name),
            "its spec lists no hf.activation_keys",
        )
    })?;
    o.insert(act_key.clone(), json!(act_name(c.activation)));
    Ok(())
}

/// Attention: the scale and the soft-caps.
fn attention(
    o: &mut Map<String, Value>,
    c: &ModelConfig,
    spec: &FamilySpec,
    hf: &HfFormat,
) -> Result<()> {
    let scale = c.layers[0].attn.scale;
    if let Some(k) = &hf.attn_scale_key {
        // The GGUF path scales by 1/sqrt(head_dim); so does `k = head_dim`.
        o.insert(k.clone(), json!(c.head_dim));
        debug_assert_eq!(scale, 1.0 / (c.head_dim as f64).sqrt());
    }
    let attn_cap = c.layers[0].attn.softcap;
    for (what, key, cap, field) in [
        (
            "attention soft-capping",
            &hf.attn_softcap_key,
            attn_cap,
            "hf.attn_softcap_key",
        ),
        (
            "final soft-capping",
            &hf.final_softcap_key,
            c.final_softcap,
            "hf.final_softcap_key",
        ),
    ] {
        match (key, cap) {
            (Some(k), v) => {
                o.insert(k.clone(), v.map_or(Value::Null, num));
            }
            (None, Some(_)) => {
                return Err(Error::unsupported(
                    what,
                    format!("the {} spec has no {field} to write it to", spec.name),
                ))
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// Sliding windows and the rotations of sliding layers.
fn sliding(
    o: &mut Map<String, Value>,
    c: &ModelConfig,
    spec: &FamilySpec,
    hf: &HfFormat,
    theta: f64,
) -> Result<()> {
    let windows: Vec<Option<usize>> = c.layers.iter().map(|l| l.attn.window).collect();
    let window = windows.iter().flatten().next().copied();
    if windows.iter().flatten().any(|w| Some(*w) != window) {
        return Err(Error::unsupported(
            "sliding windows",
            "layers with different window sizes cannot be written to config.json",
        ));
    }
    let any = window.is_some();
    match &hf.sliding {
        HfSliding::None => {
            if any {
                return Err(Error::unsupported(
                    "sliding-window attention",
                    format!(
                        "the {} spec's Hugging Face format has no sliding window (hf.sliding: none)",
                        spec.name
                    ),
                ));
            }
        }
        HfSliding::All => {
            if any && windows.iter().any(Option::is_none) {
                return Err(Error::unsupported(
                    "sliding-window attention",
                    format!(
                        "some layers slide and some do not, but the {} spec's Hugging Face format \
                         slides every layer or none (hf.sliding: all)",
                        spec.name
                    ),
                ));
            }
            o.insert("sliding_window".into(), json!(window));
        }
        HfSliding::LayerTypes { enable_key, .. } => {
            layer_types(o, &windows, spec, enable_key.as_deref());
        }
    }
    if let Some(k) = &hf.sliding_rope_theta_key {
        // Sliding layers use plain RoPE with this base (the global one when none slides).
        let t = match spec.sliding_rope_theta {
            Some(t) if any => t,
            _ => theta,
        };
        o.insert(k.clone(), num(t));
    }
    Ok(())
}

/// `layer_types` (and the keys older transformers versions read) for the
/// per-layer windows `windows`, which are all one size or none.
fn layer_types(
    o: &mut Map<String, Value>,
    windows: &[Option<usize>],
    spec: &FamilySpec,
    enable_key: Option<&str>,
) {
    let window = windows.iter().flatten().next().copied();
    let any = window.is_some();
    let types: Vec<&str> = windows
        .iter()
        .map(|w| {
            if w.is_some() {
                "sliding_attention"
            } else {
                "full_attention"
            }
        })
        .collect();
    o.insert("layer_types".into(), json!(types));
    o.insert("sliding_window".into(), json!(window));
    if let Some(k) = enable_key {
        o.insert(k.into(), json!(any));
    }
    if let SlidingPattern::Periodic { .. } = spec.sliding {
        // Older transformers versions derive the types from the pattern.
        if let Some(first_full) = windows.iter().position(Option::is_none) {
            if any {
                o.insert("sliding_window_pattern".into(), json!(first_full + 1));
            }
        }
    }
}
