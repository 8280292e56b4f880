//! What a checkpoint holds, as `atenia inspect` reads it: the architecture,
//! the hyperparameters, and the tensors grouped by name template
//! (`blk.{i}.attn_q.weight`), each matched to the spec field it fills. Reads
//! GGUF files itself; a Hugging Face checkpoint is given as its config.json
//! and its safetensors (see `crate::model::hf` for reading those).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::family::roles::TensorNames;
use crate::family::spec::FamilySpec;
use crate::formats::gguf::{self, GgufFile};
use crate::formats::safetensors::SafetensorsSet;

/// One tensor: name, stored type, shape (outermost first).
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
}

/// What a checkpoint holds.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// `gguf` or `hf`.
    pub format: &'static str,
    pub architecture: String,
    pub model_type: Option<String>,
    pub name: Option<String>,
    /// The hyperparameters: GGUF metadata of the architecture (and a few
    /// tokenizer keys), or config.json less `architectures`.
    pub hyper: Map<String, Value>,
    pub tensors: Vec<Tensor>,
    /// config.json (HF only).
    pub config: Map<String, Value>,
}

/// The name with its layer index (the first all-digit dot-separated part) made `{i}`.
pub fn template_of(name: &str) -> String {
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
        gguf::Value::Packed(p) if p.len() <= 16 => {
            Value::Array(p.iter().map(|v| gguf_value(&v)).collect())
        }
        gguf::Value::Packed(p) => json!({"array_of": p.len()}),
        other => other
            .as_i64()
            .map(|i| json!(i))
            .or_else(|| other.as_u64().map(|u| json!(u)))
            .unwrap_or(Value::Null),
    }
}

impl Inventory {
    /// What a GGUF file holds.
    pub fn from_gguf(file: &GgufFile) -> Result<Inventory> {
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
            .and_then(|v| v.array_len())
        {
            hyper.insert("tokenizer.ggml.tokens".into(), json!({"array_of": t}));
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
        Ok(Inventory {
            format: "gguf",
            name: file.metadata.str("general.name")?.map(str::to_string),
            architecture: arch,
            model_type: None,
            hyper,
            tensors,
            config: Map::new(),
        })
    }

    /// What a Hugging Face checkpoint holds: `name` (its directory's name), its
    /// config.json, and its weights, opened once the config names an architecture.
    pub fn from_hf(
        name: Option<String>,
        config: Map<String, Value>,
        open_weights: impl FnOnce() -> Result<SafetensorsSet>,
    ) -> Result<Inventory> {
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
        let set = open_weights()?;
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
        Ok(Inventory {
            format: "hf",
            architecture,
            model_type,
            name,
            hyper,
            tensors,
            config,
        })
    }
}

/// The spec field a GGUF tensor template fills, if any.
pub fn gguf_role(t: &str) -> Option<&'static str> {
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
pub fn hf_role(t: &str, sandwich: bool) -> Option<&'static str> {
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
pub fn ignorable(format: &str, template: &str) -> bool {
    format == "hf" && template.ends_with(".rotary_emb.inv_freq")
}

/// Tensors grouped by template: template → (count, dtypes, shape of the first).
pub fn by_template(f: &Inventory) -> BTreeMap<String, (usize, BTreeSet<String>, Vec<usize>)> {
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
pub fn matching(f: &Inventory) -> Option<FamilySpec> {
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
pub fn unread(f: &Inventory, names: &TensorNames) -> Vec<String> {
    let known: BTreeSet<&str> = names.entries().map(|(_, n)| n).collect();
    by_template(f)
        .into_keys()
        .filter(|t| !known.contains(t.as_str()) && !ignorable(f.format, t))
        .collect()
}

/// Roles found: field → template.
pub fn roles(f: &Inventory) -> (BTreeMap<&'static str, String>, Vec<String>) {
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

/// The JSON summary `atenia inspect --json` prints.
pub fn summary(path: &Path, f: &Inventory, spec: Option<&FamilySpec>) -> Value {
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
}
