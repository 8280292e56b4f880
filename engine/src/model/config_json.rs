//! Reading config.json as transformers' config classes do: a key the file
//! lacks takes the family's default (`hf.defaults` of its spec), and every
//! value is checked for its type and range.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::binding::bounded;

/// The two attention types a layer can have (`layer_types` entries, and the
/// keys of a per-type `rope_parameters`).
pub(crate) const FULL: &str = "full_attention";
pub(crate) const SLIDING: &str = "sliding_attention";

/// config.json with the config class's defaults behind it.
pub(crate) struct Cfg<'a> {
    pub map: &'a Map<String, Value>,
    pub defaults: &'a BTreeMap<String, Value>,
}

impl Cfg<'_> {
    /// The value of `key` (a default when absent); `None` when absent or null.
    pub(crate) fn value(&self, key: &str) -> Option<&Value> {
        match self.map.get(key) {
            Some(v) => Some(v),
            None => self.defaults.get(key),
        }
        .filter(|v| !v.is_null())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.value(key).is_some()
    }

    pub(crate) fn usize(&self, key: &str) -> Result<Option<usize>> {
        self.value(key).map(|v| as_usize(v, key)).transpose()
    }

    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>> {
        self.value(key).map(|v| as_f64(v, key)).transpose()
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.value(key)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| Error::config(key, format!("{v} is not true or false")))
            })
            .transpose()
    }

    pub(crate) fn required(&self, key: &str, max: usize) -> Result<usize> {
        let v = self
            .usize(key)?
            .ok_or_else(|| Error::config(key, "missing"))?;
        if v == 0 {
            return Err(Error::config(key, "is zero"));
        }
        bounded(v, key, max)
    }
}

/// A non-negative integer (an integral JSON float is accepted as the integer it is).
pub(crate) fn as_usize(v: &Value, key: &str) -> Result<usize> {
    if let Some(u) = v.as_u64() {
        return usize::try_from(u).map_err(|_| Error::config(key, format!("{u} is too large")));
    }
    match v.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 => {
            if f >= 2f64.powi(53) {
                Err(Error::config(key, format!("{v} is too large")))
            } else {
                Ok(f as usize)
            }
        }
        _ => Err(Error::config(
            key,
            format!("{v} is not a non-negative integer"),
        )),
    }
}

pub(crate) fn as_f64(v: &Value, key: &str) -> Result<f64> {
    match v.as_f64() {
        Some(f) if f.is_finite() => Ok(f),
        _ => Err(Error::config(key, format!("{v} is not a finite number"))),
    }
}

pub(crate) fn positive(v: f64, key: &str) -> Result<f64> {
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(Error::config(
            key,
            format!("{v} must be a positive finite number"),
        ))
    }
}

pub(crate) fn object(v: &Value, key: &str) -> Result<Map<String, Value>> {
    v.as_object()
        .cloned()
        .ok_or_else(|| Error::config(key, "must be an object"))
}
