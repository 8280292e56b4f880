//! Reference logits files (format of golden/FIXTURES.md) and argmax.

use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// A reference file of the fixtures' format.
pub struct Reference {
    pub input_ids: Vec<u32>,
    /// Rows of logits (f64), one per entry of `positions`.
    pub logits: Vec<Vec<f64>>,
    /// The positions the rows belong to (every position when the file has no
    /// `positions` tensor).
    pub positions: Vec<usize>,
    /// The reference's own argmax per row, when the file carries one.
    pub argmax: Option<Vec<usize>>,
}

fn ints(t: &TensorView<'_>) -> Vec<i64> {
    assert_eq!(t.dtype(), Dtype::I64);
    t.data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Reads a reference file; panics with the path on any problem.
pub fn read_reference(path: &Path) -> Reference {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let input_ids: Vec<u32> = ints(&st.tensor("input_ids").unwrap())
        .into_iter()
        .map(|v| v as u32)
        .collect();
    let l = st.tensor("logits").unwrap();
    assert_eq!(l.dtype(), Dtype::F64);
    let vocab = *l.shape().last().unwrap();
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

/// The index of the largest value (the first one on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// [`argmax`] of f64 values.
pub fn argmax64(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_largest() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -2.0]), 1);
        assert_eq!(argmax64(&[-1.0, -0.5, -7.0]), 1);
    }

    #[test]
    fn reads_a_fixture_reference() {
        let r = read_reference(&crate::golden().join("gguf/llama/llama-F32.reference.safetensors"));
        assert!(!r.input_ids.is_empty());
        assert_eq!(r.logits.len(), r.positions.len());
        assert!(r.logits.iter().all(|row| row.len() == r.logits[0].len()));
    }
}
