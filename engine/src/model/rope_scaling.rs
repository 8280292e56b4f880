//! Rotary position embeddings of a Hugging Face checkpoint: the rope
//! dictionaries of config.json (`rope_scaling`, `rope_parameters`) and the
//! rotations they describe (default, linear, llama3, LongRoPE).

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::family::spec::HfFormat;
use crate::kernels::rope::{Rope, RopeStyle};
use crate::model::config_json::{as_f64, as_usize, object, positive, Cfg, FULL, SLIDING};

/// Rotary parameters of one attention type, as transformers standardizes them.
pub(crate) struct RopeDict {
    /// Where the dict came from, for messages.
    field: String,
    map: Map<String, Value>,
}

impl RopeDict {
    pub(crate) fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.field)
    }

    fn get(&self, k: &str) -> Option<&Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    pub(crate) fn f64(&self, k: &str) -> Result<Option<f64>> {
        self.get(k).map(|v| as_f64(v, &self.key(k))).transpose()
    }

    fn rope_type(&self) -> Result<String> {
        match self.get("rope_type").or_else(|| self.get("type")) {
            None => Ok("default".into()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(Error::config(
                self.key("rope_type"),
                format!("{v} is not a string"),
            )),
        }
    }

    fn factors(&self, k: &str, len: usize) -> Result<Vec<f64>> {
        let key = self.key(k);
        let a = self
            .get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| Error::config(&key, "missing or not a list"))?;
        if a.len() != len {
            return Err(Error::config(
                &key,
                format!("has {} entries, expected {len}", a.len()),
            ));
        }
        a.iter()
            .map(|v| as_f64(v, &key).and_then(|f| positive(f, &key)))
            .collect()
    }
}

/// The rotary dicts of full-attention and sliding layers, standardized as
/// transformers does: `rope_scaling` (long-standing form) takes precedence over
/// `rope_parameters` (newer form); a family with a local rope base applies the
/// scaling to full-attention layers only.
pub(crate) fn rope_dicts(cfg: &Cfg<'_>, hf: &HfFormat) -> Result<(RopeDict, RopeDict, bool)> {
    let scaling = match cfg.map.get("rope_scaling") {
        None | Some(Value::Null) => None,
        Some(v) => Some(object(v, "rope_scaling")?).filter(|m| !m.is_empty()),
    };
    let params = match cfg.map.get("rope_parameters") {
        None | Some(Value::Null) => None,
        Some(v) => Some(object(v, "rope_parameters")?).filter(|m| !m.is_empty()),
    };
    let per_type = params
        .as_ref()
        .is_some_and(|p| p.keys().all(|k| k == FULL || k == SLIDING));
    let dict = |field: &str, map: Map<String, Value>| RopeDict {
        field: field.into(),
        map,
    };
    if per_type || hf.sliding_rope_theta_key.is_some() {
        let p = if per_type {
            params.unwrap_or_default()
        } else {
            Map::new()
        };
        let mut full = match p.get(FULL) {
            Some(v) if !v.is_null() => object(v, "rope_parameters.full_attention")?,
            _ => Map::new(),
        };
        let sliding = match p.get(SLIDING) {
            Some(v) if !v.is_null() => object(v, "rope_parameters.sliding_attention")?,
            _ => Map::new(),
        };
        let full_field = match scaling {
            Some(s) => {
                full.extend(s);
                "rope_scaling"
            }
            None => "rope_parameters.full_attention",
        };
        Ok((
            dict(full_field, full),
            dict("rope_parameters.sliding_attention", sliding),
            true,
        ))
    } else {
        let (field, m) = match (scaling, params) {
            (Some(s), _) => ("rope_scaling", s),
            (None, Some(p)) => ("rope_parameters", p),
            (None, None) => ("rope_scaling", Map::new()),
        };
        Ok((dict(field, m.clone()), dict(field, m), false))
    }
}

/// One attention type's rotation, and its long-context variant (LongRoPE):
/// `(rope, Some((original context, long rope)))`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_rope(
    cfg: &Cfg<'_>,
    d: &RopeDict,
    theta: f64,
    theta_key: &str,
    head_dim: usize,
    style: RopeStyle,
    per_type: bool,
    max_pos: usize,
) -> Result<(Rope, Option<(usize, Rope)>)> {
    if !(theta.is_finite() && theta > 1.0) {
        return Err(Error::config(
            theta_key,
            format!("{theta} must be a finite number above 1"),
        ));
    }
    let rotary_dim = rotary_dim(cfg, d, head_dim)?;
    let half = rotary_dim / 2;
    let base = |i: usize| theta.powf((2 * i) as f64 / rotary_dim as f64);
    let plain = |inv_freq: Vec<f64>, attention_factor: f64| Rope {
        style,
        rotary_dim,
        inv_freq,
        attention_factor,
    };
    let original = || original_context(cfg, d, per_type, max_pos);
    let rope_type = d.rope_type()?;
    match rope_type.as_str() {
        "default" => Ok((plain((0..half).map(|i| 1.0 / base(i)).collect(), 1.0), None)),
        "linear" => {
            let factor = required_positive(d, "factor")?;
            Ok((
                plain((0..half).map(|i| 1.0 / base(i) / factor).collect(), 1.0),
                None,
            ))
        }
        "llama3" => {
            let inv_freq = llama3_inv_freq(d, half, &base, &original)?;
            Ok((plain(inv_freq, 1.0), None))
        }
        "longrope" => {
            let original = original()?;
            let (short, long, attention_factor) = longrope(d, half, &base, original, max_pos)?;
            Ok((
                plain(short, attention_factor),
                Some((original, plain(long, attention_factor))),
            ))
        }
        other => Err(Error::unsupported(
            format!("{} {other:?}", d.key("rope_type")),
            "this rotary scaling is not implemented (default, linear, llama3 and longrope are)",
        )),
    }
}

/// How many dimensions of a head rotate: all, or `partial_rotary_factor` of
/// them (a top-level value overrides the dict's, as transformers standardizes).
fn rotary_dim(cfg: &Cfg<'_>, d: &RopeDict, head_dim: usize) -> Result<usize> {
    let partial = match cfg.f64("partial_rotary_factor")? {
        Some(p) => Some((p, "partial_rotary_factor".to_string())),
        None => d
            .f64("partial_rotary_factor")?
            .map(|p| (p, d.key("partial_rotary_factor"))),
    };
    let rotary_dim = match partial {
        None => head_dim,
        Some((p, key)) => {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::config(key, format!("{p} must be in (0, 1]")));
            }
            (head_dim as f64 * p) as usize
        }
    };
    if rotary_dim == 0 || rotary_dim % 2 != 0 {
        return Err(Error::config(
            "partial_rotary_factor",
            format!(
                "gives {rotary_dim} rotary dimensions of {head_dim}; must be even and positive"
            ),
        ));
    }
    Ok(rotary_dim)
}

/// The context the model was trained at before scaling
/// (`original_max_position_embeddings`; `max_pos` when absent).
fn original_context(cfg: &Cfg<'_>, d: &RopeDict, per_type: bool, max_pos: usize) -> Result<usize> {
    let key = "original_max_position_embeddings";
    let v = if !per_type && cfg.has(key) {
        cfg.usize(key)?
    } else {
        d.get(key).map(|v| as_usize(v, &d.key(key))).transpose()?
    };
    let v = v.unwrap_or(max_pos);
    if v == 0 {
        return Err(Error::config(key, "is zero"));
    }
    Ok(v)
}

/// A positive number the dict must hold.
fn required_positive(d: &RopeDict, k: &str) -> Result<f64> {
    let key = d.key(k);
    positive(
        d.f64(k)?.ok_or_else(|| Error::config(&key, "missing"))?,
        &key,
    )
}

/// Llama 3's frequencies: long wavelengths divided by `factor`, short ones
/// kept, a smooth blend between.
fn llama3_inv_freq(
    d: &RopeDict,
    half: usize,
    base: &dyn Fn(usize) -> f64,
    original: &dyn Fn() -> Result<usize>,
) -> Result<Vec<f64>> {
    let factor = required_positive(d, "factor")?;
    let low = required_positive(d, "low_freq_factor")?;
    let high = required_positive(d, "high_freq_factor")?;
    if high <= low {
        return Err(Error::config(
            d.key("high_freq_factor"),
            format!("{high} must exceed low_freq_factor {low}"),
        ));
    }
    let old = original()? as f64;
    let (low_wavelen, high_wavelen) = (old / low, old / high);
    Ok((0..half)
        .map(|i| {
            let f = 1.0 / base(i);
            let wavelen = 2.0 * std::f64::consts::PI / f;
            if wavelen < high_wavelen {
                f
            } else if wavelen > low_wavelen {
                f / factor
            } else {
                let smooth = (old / wavelen - low) / (high - low);
                (1.0 - smooth) * f / factor + smooth * f
            }
        })
        .collect())
}

/// LongRoPE: frequencies for short and for long contexts, and the attention
/// factor both use: `(short, long, attention_factor)`.
fn longrope(
    d: &RopeDict,
    half: usize,
    base: &dyn Fn(usize) -> f64,
    original: usize,
    max_pos: usize,
) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    if original < 2 {
        return Err(Error::config(
            "original_max_position_embeddings",
            format!("{original} must be at least 2 for LongRoPE"),
        ));
    }
    let short = d.factors("short_factor", half)?;
    let long = d.factors("long_factor", half)?;
    let factor = match d.f64("factor")? {
        Some(f) => positive(f, &d.key("factor"))?,
        None => max_pos as f64 / original as f64,
    };
    let attention_factor = match d.f64("attention_factor")? {
        Some(a) => positive(a, &d.key("attention_factor"))?,
        None if factor <= 1.0 => 1.0,
        None => (1.0 + factor.ln() / (original as f64).ln()).sqrt(),
    };
    let with = |ext: &[f64]| -> Vec<f64> { (0..half).map(|i| 1.0 / (ext[i] * base(i))).collect() };
    Ok((with(&short), with(&long), attention_factor))
}
