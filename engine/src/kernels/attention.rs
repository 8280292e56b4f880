//! Causal attention over the KV cache with the native number of KV heads
//! (grouped-query attention is never expanded), optional sliding window and
//! score soft-capping. Scores are dot products in the engine's order
//! ([`super::dot`]: exact products summed in f64 lanes, rounded once to f32);
//! the softmax and the weighted sum of values are computed in f64.
//!
//! One query row at one position is always computed the same way, whether it
//! arrives in a prefill batch or alone in decode, so both paths give the same bits.

use std::cell::RefCell;

use rayon::prelude::*;

use super::dot::dot;
use super::Isa;
use crate::runtime::Runtime;

/// The shape and quirks of one layer's attention.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Multiplies q·k (1/sqrt(head_dim) unless the family says otherwise).
    pub scale: f64,
    /// `cap · tanh(score / cap)` before the softmax.
    pub softcap: Option<f64>,
    /// A key at position j is seen from position p when `p - j < window`.
    pub window: Option<usize>,
}

thread_local! {
    static SCRATCH: RefCell<(Vec<f64>, Vec<f64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// One head of one query: `out = softmax(scale · q·K) V` over keys `first..=pos`.
#[allow(clippy::too_many_arguments)]
fn attend_head(
    isa: Isa,
    shape: &AttnShape,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    kv_head: usize,
    pos: usize,
    out: &mut [f32],
) {
    let hd = shape.head_dim;
    let kv_dim = shape.n_kv_heads * hd;
    let first = match shape.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
    SCRATCH.with(|s| {
        let (scores, acc) = &mut *s.borrow_mut();
        scores.clear();
        let mut max = f64::NEG_INFINITY;
        for j in first..=pos {
            let k = &keys[j * kv_dim + kv_head * hd..j * kv_dim + (kv_head + 1) * hd];
            let mut sc = dot(isa, q, k) as f64 * shape.scale;
            if let Some(cap) = shape.softcap {
                sc = super::activation::softcap(sc, cap);
            }
            max = max.max(sc);
            scores.push(sc);
        }
        let mut sum = 0.0;
        for sc in scores.iter_mut() {
            *sc = (*sc - max).exp();
            sum += *sc;
        }
        acc.clear();
        acc.resize(hd, 0.0);
        for (i, j) in (first..=pos).enumerate() {
            let p = scores[i] / sum;
            let v = &values[j * kv_dim + kv_head * hd..j * kv_dim + (kv_head + 1) * hd];
            for (a, &vv) in acc.iter_mut().zip(v) {
                *a += p * vv as f64;
            }
        }
        for (o, a) in out.iter_mut().zip(acc.iter()) {
            *o = *a as f32;
        }
    })
}

/// Attention for `n` consecutive query rows at positions `pos0..pos0+n`.
/// `q` is `n × (n_heads·head_dim)`; `keys`/`values` hold the cache of this
/// layer (`≥ pos0+n` rows of `n_kv_heads·head_dim`), already containing the
/// new rows; `out` has the shape of `q`.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    rt: &Runtime,
    shape: &AttnShape,
    q: &[f32],
    n: usize,
    pos0: usize,
    keys: &[f32],
    values: &[f32],
    out: &mut [f32],
) {
    let hd = shape.head_dim;
    let q_dim = shape.n_heads * hd;
    let kv_dim = shape.n_kv_heads * hd;
    assert_eq!(q.len(), n * q_dim);
    assert_eq!(out.len(), n * q_dim);
    assert!(keys.len() >= (pos0 + n) * kv_dim && values.len() >= (pos0 + n) * kv_dim);
    assert!(shape.n_kv_heads > 0 && shape.n_heads.is_multiple_of(shape.n_kv_heads));
    let group = shape.n_heads / shape.n_kv_heads;
    let isa = rt.isa;
    rt.install(|| {
        out.par_chunks_mut(hd).enumerate().for_each(|(task, o)| {
            let t = task / shape.n_heads;
            let h = task % shape.n_heads;
            let qh = &q[t * q_dim + h * hd..t * q_dim + (h + 1) * hd];
            attend_head(isa, shape, qh, keys, values, h / group, pos0 + t, o);
        })
    });
}
