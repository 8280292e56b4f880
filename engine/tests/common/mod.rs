//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};

mod process;
#[allow(unused_imports)]
pub use process::{json_of, run_bounded, text};

pub fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

/// A reference file of the fixtures' format.
pub struct Reference {
    pub input_ids: Vec<u32>,
    /// Rows of logits (f64), one per entry of `positions`.
    pub logits: Vec<Vec<f64>>,
    pub positions: Vec<usize>,
    pub argmax: Option<Vec<usize>>,
}

fn ints(t: &safetensors::tensor::TensorView<'_>) -> Vec<i64> {
    assert_eq!(t.dtype(), Dtype::I64);
    t.data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

pub fn read_reference(path: &std::path::Path) -> Reference {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let input_ids: Vec<u32> = ints(&st.tensor("input_ids").unwrap())
        .into_iter()
        .map(|v| v as u32)
        .collect();
    let l = st.tensor("logits").unwrap();
    assert_eq!(l.dtype(), Dtype::F64);
    let shape = l.shape().to_vec();
    let vocab = *shape.last().unwrap();
    let flat: Vec<f64> = l
        .data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let logits: Vec<Vec<f64>> = flat.chunks(vocab).map(|c| c.to_vec()).collect();
    let positions = match st.tensor("positions") {
        Ok(p) => ints(&p).into_iter().map(|v| v as usize).collect(),
        Err(_) => (0..logits.len()).collect(),
    };
    let argmax = st
        .tensor("argmax")
        .ok()
        .map(|a| ints(&a).into_iter().map(|v| v as usize).collect());
    Reference {
        input_ids,
        logits,
        positions,
        argmax,
    }
}

pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

pub fn argmax64(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The real SmolLM2-135M-Instruct Q4_1 file, as a command-line argument.
pub fn smollm2() -> String {
    model_path("SmolLM2-135M-Instruct.Q4_1.gguf")
        .display()
        .to_string()
}

/// Where the real models are: `$ATENIA_MODEL_DIR`, then `<workspace>/models`,
/// then `~/.cache/atenia/models`. Panics (never skips) when absent.
pub fn model_path(name: &str) -> PathBuf {
    let mut dirs = vec![];
    if let Ok(d) = std::env::var("ATENIA_MODEL_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"));
    if let Ok(h) = std::env::var("HOME") {
        dirs.push(PathBuf::from(h).join(".cache/atenia/models"));
    }
    for d in &dirs {
        let p = d.join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("model {name} not found in {dirs:?}: run scripts/fetch-models.sh first");
}
