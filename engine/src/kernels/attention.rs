//! Causal attention over the KV cache with the native number of KV heads
//! (grouped-query attention is never expanded), optional sliding window and
//! score soft-capping. Scores are dot products in the engine's order
//! ([`super::dot`]: f32 runs summed in f64 lanes, rounded once to f32); the
//! softmax and the weighted sum of values are computed in f64 (vectorized, a
//! product then a sum per element on every path; the exponential is the
//! engine's own, [`super::exp`], with the same bits on every path).
//!
//! One query row at one position is always computed the same way, whether it
//! arrives in a prefill batch or alone in decode, so both paths give the same bits.

use std::cell::RefCell;

use rayon::prelude::*;

use super::dot::dots_strided as dots;
use super::Isa;
use crate::kernels::runtime::Runtime;

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
    static SCRATCH: RefCell<(Vec<f64>, Vec<f64>, Vec<f32>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// `acc[d] += p[j] · v_j[d]` for the rows `v_j = values[j·stride ..
/// j·stride + acc.len()]`, `j` in order, in `f64` (a product, then a sum: two
/// roundings per element, the same on every path).
fn weighted_sum(isa: Isa, acc: &mut [f64], p: &[f64], values: &[f32], stride: usize) {
    let hd = acc.len();
    if let Some(last) = p.len().checked_sub(1) {
        assert!(
            values.len() >= last * stride + hd,
            "value rows out of range"
        );
    }
    let main = match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the Isa value is only Avx512 when the CPU supports it; the
        // rows lie inside `values` (checked above).
        Isa::Avx512 => unsafe { x86::weighted_sum_avx512(acc, p, values.as_ptr(), stride) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2.
        Isa::Avx2 => unsafe { x86::weighted_sum_avx2(acc, p, values.as_ptr(), stride) },
        _ => 0,
    };
    for (j, &pj) in p.iter().enumerate() {
        let v = &values[j * stride..j * stride + hd];
        for (a, &vv) in acc[main..].iter_mut().zip(&v[main..]) {
            *a += pj * vv as f64;
        }
    }
}

/// Heads `h0 .. h0 + q.len() / head_dim` of one query, all reading the same
/// KV head: `out_h = softmax(scale · q_h·K) V` over keys `first..=pos`. Each
/// key and value row is read once for the whole group; every head's numbers
/// are computed exactly as they would be alone.
#[allow(clippy::too_many_arguments)]
fn attend_heads(
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
    let g = q.len() / hd;
    let kv_dim = shape.n_kv_heads * hd;
    let first = match shape.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
    let len = pos + 1 - first;
    let at = |j: usize| j * kv_dim + kv_head * hd..j * kv_dim + (kv_head + 1) * hd;
    SCRATCH.with(|s| {
        let (scores, acc, dotbuf) = &mut *s.borrow_mut();
        scores.clear();
        scores.resize(g * len, 0.0);
        dotbuf.clear();
        dotbuf.resize(len, 0.0);
        let kbase = &keys[at(first).start..];
        for (qh, sh) in q.chunks_exact(hd).zip(scores.chunks_exact_mut(len)) {
            dots(isa, qh, kbase, kv_dim, dotbuf);
            for (sc, &d) in sh.iter_mut().zip(dotbuf.iter()) {
                *sc = d as f64 * shape.scale;
                if let Some(cap) = shape.softcap {
                    *sc = super::activation::softcap(*sc, cap);
                }
            }
        }
        for sh in scores.chunks_exact_mut(len) {
            let max = sh.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
            super::exp::exp_sub_in_place(isa, sh, max);
            let mut sum = 0.0;
            for sc in sh.iter() {
                sum += *sc;
            }
            for sc in sh.iter_mut() {
                *sc /= sum;
            }
        }
        acc.clear();
        acc.resize(g * hd, 0.0);
        let vbase = &values[at(first).start..];
        for (ah, sh) in acc.chunks_exact_mut(hd).zip(scores.chunks_exact(len)) {
            weighted_sum(isa, ah, sh, vbase, kv_dim);
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
    // A task runs `per` heads of one KV group: the whole group when there are
    // enough tasks for the threads (the keys and values are then read once
    // per group), single heads otherwise (decode of few KV heads). The bits
    // are the same either way.
    let per = if n * shape.n_kv_heads >= 4 * rt.threads() {
        group
    } else {
        1
    };
    let isa = rt.isa;
    rt.install(|| {
        out.par_chunks_mut(per * hd)
            .enumerate()
            .for_each(|(task, o)| {
                let h0 = task * per % shape.n_heads;
                let t = task * per / shape.n_heads;
                let qh = &q[t * q_dim + h0 * hd..t * q_dim + (h0 + per) * hd];
                attend_heads(isa, shape, qh, keys, values, h0 / group, pos0 + t, o);
            })
    });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::weighted_sum`] on the first multiple of 8 elements, 64 at a
    /// time in registers; returns how many it did.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn weighted_sum_avx512(
        acc: &mut [f64],
        p: &[f64],
        values: *const f32,
        stride: usize,
    ) -> usize {
        let main = acc.len() - acc.len() % 8;
        let a = acc.as_mut_ptr();
        let mut d0 = 0;
        while d0 < main {
            let w = (main - d0).min(64) / 8;
            let mut r = [_mm512_setzero_pd(); 8];
            for (c, r) in r.iter_mut().enumerate().take(w) {
                *r = _mm512_loadu_pd(a.add(d0 + 8 * c));
            }
            for (j, &pj) in p.iter().enumerate() {
                let pv = _mm512_set1_pd(pj);
                let v = values.add(j * stride + d0);
                for (c, r) in r.iter_mut().enumerate().take(w) {
                    let prod = _mm512_mul_pd(pv, _mm512_cvtps_pd(_mm256_loadu_ps(v.add(8 * c))));
                    *r = _mm512_add_pd(*r, prod);
                }
            }
            for (c, r) in r.iter().enumerate().take(w) {
                _mm512_storeu_pd(a.add(d0 + 8 * c), *r);
            }
            d0 += 8 * w;
        }
        main
    }

    /// [`super::weighted_sum`] on the first multiple of 4 elements, 32 at a
    /// time in registers; returns how many it did.
    #[target_feature(enable = "avx2")]
    pub unsafe fn weighted_sum_avx2(
        acc: &mut [f64],
        p: &[f64],
        values: *const f32,
        stride: usize,
    ) -> usize {
        let main = acc.len() - acc.len() % 4;
        let a = acc.as_mut_ptr();
        let mut d0 = 0;
        while d0 < main {
            let w = (main - d0).min(32) / 4;
            let mut r = [_mm256_setzero_pd(); 8];
            for (c, r) in r.iter_mut().enumerate().take(w) {
                *r = _mm256_loadu_pd(a.add(d0 + 4 * c));
            }
            for (j, &pj) in p.iter().enumerate() {
                let pv = _mm256_set1_pd(pj);
                let v = values.add(j * stride + d0);
                for (c, r) in r.iter_mut().enumerate().take(w) {
                    let prod = _mm256_mul_pd(pv, _mm256_cvtps_pd(_mm_loadu_ps(v.add(4 * c))));
                    *r = _mm256_add_pd(*r, prod);
                }
            }
            for (c, r) in r.iter().enumerate().take(w) {
                _mm256_storeu_pd(a.add(d0 + 4 * c), *r);
            }
            d0 += 4 * w;
        }
        main
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_data as data;

    /// A batch of positions (grouped tasks) and the same positions one at a
    /// time (single-head tasks) give the same bits, on every path and thread
    /// count, and match a plain f64 softmax closely.
    #[test]
    fn grouped_and_single_head_tasks_agree() {
        let shape = AttnShape {
            n_heads: 6,
            n_kv_heads: 2,
            head_dim: 40,
            scale: 40f64.powf(-0.5),
            softcap: Some(30.0),
            window: Some(7),
        };
        let (n, q_dim, kv_dim) = (12, 6 * 40, 2 * 40);
        let q = data(n * q_dim, 1);
        let keys = data(n * kv_dim, 2);
        let values = data(n * kv_dim, 3);
        let mut want = None;
        for isa in Isa::available() {
            for threads in [1, 2, 3] {
                let rt = Runtime::new(threads, Some(isa)).unwrap();
                let mut batch = vec![0f32; n * q_dim];
                attention(&rt, &shape, &q, n, 0, &keys, &values, &mut batch);
                let mut single = vec![0f32; n * q_dim];
                for t in 0..n {
                    let r = t * q_dim..(t + 1) * q_dim;
                    attention(
                        &rt,
                        &shape,
                        &q[r.clone()],
                        1,
                        t,
                        &keys,
                        &values,
                        &mut single[r],
                    );
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&batch), bits(&single), "{isa} {threads}");
                let want = want.get_or_insert_with(|| bits(&batch));
                assert_eq!(*want, bits(&batch), "{isa} {threads}");
            }
        }
        // One head checked against a plain f64 computation.
        let (t, h) = (9, 4);
        let kvh = h / 3;
        let qh = &q[t * q_dim + h * 40..t * q_dim + (h + 1) * 40];
        let first = t + 1 - 7;
        let sc: Vec<f64> = (first..=t)
            .map(|j| {
                let k = &keys[j * kv_dim + kvh * 40..j * kv_dim + (kvh + 1) * 40];
                let d: f64 = qh.iter().zip(k).map(|(a, b)| *a as f64 * *b as f64).sum();
                30.0 * (d * shape.scale / 30.0).tanh()
            })
            .collect();
        let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = sc.iter().map(|s| (s - m).exp()).collect();
        let z: f64 = e.iter().sum();
        let rt = Runtime::new(1, None).unwrap();
        let mut out = vec![0f32; n * q_dim];
        attention(&rt, &shape, &q, n, 0, &keys, &values, &mut out);
        for d in 0..40 {
            let want: f64 = (first..=t)
                .zip(&e)
                .map(|(j, w)| w / z * values[j * kv_dim + kvh * 40 + d] as f64)
                .sum();
            let got = out[t * q_dim + h * 40 + d] as f64;
            assert!((got - want).abs() < 1e-6, "d={d}: {got} vs {want}");
        }
    }
}
