//! Reading and writing logits files in the fixtures' safetensors format:
//! `input_ids` (I64 [seq]), `logits` ([k, vocab], F32 or F64), optional
//! `positions` (I64 [k]: which positions the rows are; default all) and
//! optional `argmax` (I64 [seq]).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use atenia_engine::{Error, Result};

pub struct LogitsFile {
    pub input_ids: Vec<u32>,
    pub vocab: usize,
    /// One row per entry of `positions`, widened to f64.
    pub logits: Vec<Vec<f64>>,
    pub positions: Vec<usize>,
    pub argmax: Option<Vec<usize>>,
}

fn bad(field: &str, reason: impl Into<String>) -> Error {
    Error::safetensors(field, reason)
}

fn ints(st: &SafeTensors<'_>, name: &str) -> Result<Option<Vec<i64>>> {
    let t = match st.tensor(name) {
        Ok(t) => t,
        Err(_) => return Ok(None),
    };
    if t.dtype() != Dtype::I64 || t.shape().len() != 1 {
        return Err(bad(
            name,
            format!("expected I64 [n], found {:?} {:?}", t.dtype(), t.shape()),
        ));
    }
    Ok(Some(
        t.data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8-byte chunk")))
            .collect(),
    ))
}

impl LogitsFile {
    pub fn read(path: &Path) -> Result<LogitsFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad("header", e.to_string()))?;
        let ids = ints(&st, "input_ids")?.ok_or_else(|| bad("input_ids", "missing"))?;
        let input_ids = ids
            .iter()
            .map(|&v| {
                u32::try_from(v).map_err(|_| bad("input_ids", format!("{v} is not a token id")))
            })
            .collect::<Result<Vec<u32>>>()?;
        let l = st.tensor("logits").map_err(|_| bad("logits", "missing"))?;
        let shape = l.shape().to_vec();
        let (k, vocab) = match shape.as_slice() {
            [k, v] => (*k, *v),
            [v] => (1, *v),
            _ => return Err(bad("logits", format!("shape {shape:?} is not [k, vocab]"))),
        };
        let flat: Vec<f64> = match l.dtype() {
            Dtype::F64 => l
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")))
                .collect(),
            Dtype::F32 => l
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4-byte chunk")) as f64)
                .collect(),
            d => return Err(bad("logits", format!("dtype {d:?}; expected F32 or F64"))),
        };
        if vocab == 0 || flat.len() != k * vocab {
            return Err(bad("logits", "size does not match its shape"));
        }
        let logits = flat.chunks(vocab).map(|c| c.to_vec()).collect();
        let positions = match ints(&st, "positions")? {
            Some(p) => p
                .iter()
                .map(|&v| {
                    usize::try_from(v)
                        .ok()
                        .filter(|&p| p < input_ids.len())
                        .ok_or_else(|| {
                            bad(
                                "positions",
                                format!("{v} is outside the {} input ids", input_ids.len()),
                            )
                        })
                })
                .collect::<Result<Vec<usize>>>()?,
            None => (0..k).collect(),
        };
        if positions.len() != k {
            return Err(bad(
                "positions",
                format!("{} entries for {k} logit rows", positions.len()),
            ));
        }
        if k > input_ids.len() {
            return Err(bad(
                "logits",
                format!("{k} rows for {} input ids", input_ids.len()),
            ));
        }
        let argmax = ints(&st, "argmax")?
            .map(|a| a.into_iter().map(|v| v.max(0) as usize).collect::<Vec<_>>());
        if let Some(a) = &argmax {
            if a.len() != input_ids.len() {
                return Err(bad(
                    "argmax",
                    format!("{} entries for {} input ids", a.len(), input_ids.len()),
                ));
            }
        }
        Ok(LogitsFile {
            input_ids,
            vocab,
            logits,
            positions,
            argmax,
        })
    }
}

/// Writes `input_ids` (I64) and `logits` (F32, [seq, vocab]).
pub fn write_logits(path: &Path, ids: &[u32], logits: &[f32], vocab: usize) -> Result<()> {
    let id_bytes: Vec<u8> = ids.iter().flat_map(|&i| (i as i64).to_le_bytes()).collect();
    let logit_bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    fn view(dtype: Dtype, shape: Vec<usize>, data: &[u8]) -> Result<TensorView<'_>> {
        TensorView::new(dtype, shape, data).map_err(|e| Error::Runtime(e.to_string()))
    }
    let tensors = vec![
        ("input_ids", view(Dtype::I64, vec![ids.len()], &id_bytes)?),
        (
            "logits",
            view(Dtype::F32, vec![ids.len(), vocab], &logit_bytes)?,
        ),
    ];
    let mut meta = HashMap::new();
    meta.insert("writer".to_string(), "atenia-harness logits".to_string());
    safetensors::serialize_to_file(tensors, Some(meta), path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(e) => Error::io(path, e),
        e => Error::Runtime(e.to_string()),
    })
}
