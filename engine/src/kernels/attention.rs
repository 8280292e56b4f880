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
//!
//! How the work is cut only changes which thread computes what and how often
//! the cache is read, never an operation or its order:
//! * long batches (prefill): a task per tile of [`TILE`] query rows, keys and
//!   values read a block at a time for every head of the tile (once per tile
//!   instead of once per head and row; at 2048 tokens this halved SmolLM2's
//!   attention time in the criterion bench);
//! * decode at [`DECODE_MIN_KEYS`] keys or more: the scores of every head a
//!   chunk of keys per task, each head's softmax, then the weighted sums a
//!   block of output columns per task, so each key and value row is read
//!   from memory once a token;
//! * anything shorter: a task per query row and KV group (or single head).

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

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

/// Query rows a prefill task takes together: each block of keys and values
/// is then read once for all of their heads instead of once per head and row.
const TILE: usize = 8;

/// Bytes of `f32` key rows per block (the block stays in L1 while every
/// query of the task uses it).
const BLOCK_BYTES: usize = 16 << 10;

/// Keys from which decode takes [`decode`]'s three parallel sections (below,
/// their hand-overs cost more than they save).
const DECODE_MIN_KEYS: usize = 256;

#[derive(Default)]
struct Scratch {
    /// One row of scores (then probabilities) per query head of the task.
    scores: Vec<f64>,
    /// One `head_dim` accumulator per query head of the task.
    acc: Vec<f64>,
    /// The dot products of one query head with one block of keys.
    dots: Vec<f32>,
    /// One block of value rows, widened to `f64` (exactly).
    vals: Vec<f64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { scores: Vec::new(), acc: Vec::new(), dots: Vec::new(), vals: Vec::new() })
    };
}

/// Value rows for [`weighted_sum`]: `v_j` is `hd` elements from `j·stride`.
#[derive(Clone, Copy)]
enum Values<'a> {
    /// The cache's rows, widened as they are read.
    F32 { rows: &'a [f32], stride: usize },
    /// A block already widened to `f64`, rows packed (`stride = hd`).
    F64(&'a [f64]),
}

impl Values<'_> {
    fn stride(&self, hd: usize) -> usize {
        match *self {
            Values::F32 { stride, .. } => stride,
            Values::F64(_) => hd,
        }
    }

    fn get(&self, i: usize) -> f64 {
        match *self {
            Values::F32 { rows, .. } => rows[i] as f64,
            Values::F64(rows) => rows[i],
        }
    }

    fn len(&self) -> usize {
        match *self {
            Values::F32 { rows, .. } => rows.len(),
            Values::F64(rows) => rows.len(),
        }
    }
}

/// `acc[d] += p[j] · v_j[d]` for every `j` in order, in `f64` (a product,
/// then a sum: two roundings per element, the same on every path and
/// whichever form the values come in: widening `f32` is exact).
fn weighted_sum(isa: Isa, acc: &mut [f64], p: &[f64], values: Values<'_>) {
    let hd = acc.len();
    let stride = values.stride(hd);
    if let Some(last) = p.len().checked_sub(1) {
        assert!(
            values.len() >= last * stride + hd,
            "value rows out of range"
        );
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the Isa value is only Avx512 (Avx2) when the CPU supports it;
    // the rows lie inside `values` (checked above).
    let main = unsafe {
        match (isa, values) {
            (Isa::Avx512, Values::F32 { rows, .. }) => {
                x86::weighted_sum_avx512::<true>(acc, p, rows.as_ptr().cast(), stride)
            }
            (Isa::Avx512, Values::F64(rows)) => {
                x86::weighted_sum_avx512::<false>(acc, p, rows.as_ptr().cast(), stride)
            }
            (Isa::Avx2, Values::F32 { rows, .. }) => {
                x86::weighted_sum_avx2::<true>(acc, p, rows.as_ptr().cast(), stride)
            }
            (Isa::Avx2, Values::F64(rows)) => {
                x86::weighted_sum_avx2::<false>(acc, p, rows.as_ptr().cast(), stride)
            }
            _ => 0,
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let main = 0;
    for (j, &pj) in p.iter().enumerate() {
        for (d, a) in acc.iter_mut().enumerate().skip(main) {
            *a += pj * values.get(j * stride + d);
        }
    }
}

/// `h[keys] = softmax(h[keys])` for each head `h` of `heads` (heads of
/// `len` scores each), in `f64`: the max, `e^(x − max)` ([`super::exp`]), the
/// sum in order, a division. Four heads' sums are independent chains
/// interleaved for speed; each is the same sequence of additions as alone.
fn softmax_heads(isa: Isa, heads: &mut [f64], len: usize, keys: Range<usize>) {
    for group in heads.chunks_mut(4 * len) {
        for h in group.chunks_exact_mut(len) {
            let r = &mut h[keys.clone()];
            let max = r.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
            super::exp::exp_sub_in_place(isa, r, max);
        }
        let mut s = [0f64; 4];
        let mut rows = group.chunks_exact(len).map(|h| &h[keys.clone()]);
        match (rows.next(), rows.next(), rows.next(), rows.next()) {
            (Some(a), Some(b), Some(c), Some(d)) => {
                for j in 0..a.len() {
                    s[0] += a[j];
                    s[1] += b[j];
                    s[2] += c[j];
                    s[3] += d[j];
                }
            }
            _ => {
                for (s, h) in s.iter_mut().zip(group.chunks_exact(len)) {
                    for &x in &h[keys.clone()] {
                        *s += x;
                    }
                }
            }
        }
        for (h, sum) in group.chunks_exact_mut(len).zip(s) {
            for x in &mut h[keys.clone()] {
                *x /= sum;
            }
        }
    }
}

/// One task: query rows at positions `pos .. pos + rows`, heads `0 .. gh`
/// of each row (consecutive query heads that all read KV head `kv_head`);
/// head `i` of row `r` is `q[r·stride + i·head_dim ..][..head_dim]`, and its
/// output goes to the same place in `out`. Computes
/// `softmax(scale · q_h·K) V` over the keys the row sees. Keys and values
/// are taken a block at a time for every head of the task; each head's
/// numbers are computed exactly as they would be alone (every score is the
/// same dot product, every sum runs over its keys in order).
#[allow(clippy::too_many_arguments)]
fn attend(
    isa: Isa,
    shape: &AttnShape,
    q: &[f32],
    out: &mut [f32],
    stride: usize,
    rows: usize,
    gh: usize,
    keys: &[f32],
    values: &[f32],
    kv_head: usize,
    pos: usize,
) {
    let hd = shape.head_dim;
    let kv_dim = shape.n_kv_heads * hd;
    let col = kv_head * hd;
    let first = |p: usize| match shape.window {
        Some(w) => (p + 1).saturating_sub(w),
        None => 0,
    };
    // Keys lo .. lo + len are seen by some row; row r sees `seen(r)` of them.
    let lo = first(pos);
    let len = pos + rows - lo;
    let seen = |r: usize| first(pos + r) - lo..pos + r + 1 - lo;
    let block = (BLOCK_BYTES / (4 * hd)).clamp(8, 256);
    SCRATCH.with(|s| {
        let Scratch {
            scores,
            acc,
            dots,
            vals,
        } = &mut *s.borrow_mut();
        scores.clear();
        scores.resize(rows * gh * len, 0.0);
        dots.resize(block, 0.0);
        // 1. Scores: scale · q·k (soft-capped), a block of keys at a time.
        for b0 in (0..len).step_by(block) {
            let b = b0..(b0 + block).min(len);
            for r in 0..rows {
                let ks = seen(r);
                let (j0, j1) = (b.start.max(ks.start), b.end.min(ks.end));
                if j0 >= j1 {
                    continue;
                }
                let kblock = &keys[(lo + j0) * kv_dim + col..];
                for i in 0..gh {
                    let qh = &q[r * stride + i * hd..][..hd];
                    let d = &mut dots[..j1 - j0];
                    super::dot::dots_strided(isa, qh, kblock, kv_dim, d);
                    let sc = &mut scores[(r * gh + i) * len..][j0..j1];
                    for (sc, &d) in sc.iter_mut().zip(d.iter()) {
                        *sc = d as f64 * shape.scale;
                        if let Some(cap) = shape.softcap {
                            *sc = super::activation::softcap(*sc, cap);
                        }
                    }
                }
            }
        }
        // 2. Probabilities, each row's heads together.
        for (r, row) in scores.chunks_exact_mut(gh * len).enumerate() {
            softmax_heads(isa, row, len, seen(r));
        }
        // 3. acc = Σ p_j v_j: with one or two heads, straight from the
        // cache; with more, a block of values (widened once) at a time.
        acc.clear();
        acc.resize(rows * gh * hd, 0.0);
        if rows * gh <= 2 {
            for (rh, a) in acc.chunks_exact_mut(hd).enumerate() {
                let ks = seen(rh / gh);
                let rows = &values[(lo + ks.start) * kv_dim + col..];
                let p = &scores[rh * len..][ks];
                weighted_sum(
                    isa,
                    a,
                    p,
                    Values::F32 {
                        rows,
                        stride: kv_dim,
                    },
                );
            }
        } else {
            vals.resize(block * hd, 0.0);
            for b0 in (0..len).step_by(block) {
                let b = b0..(b0 + block).min(len);
                for (j, v) in b.clone().zip(vals.chunks_exact_mut(hd)) {
                    let src = &values[(lo + j) * kv_dim + col..][..hd];
                    for (v, &x) in v.iter_mut().zip(src) {
                        *v = x as f64;
                    }
                }
                for r in 0..rows {
                    let ks = seen(r);
                    let (j0, j1) = (b.start.max(ks.start), b.end.min(ks.end));
                    if j0 >= j1 {
                        continue;
                    }
                    for i in 0..gh {
                        let rh = r * gh + i;
                        weighted_sum(
                            isa,
                            &mut acc[rh * hd..][..hd],
                            &scores[rh * len..][j0..j1],
                            Values::F64(&vals[(j0 - b.start) * hd..(j1 - b.start) * hd]),
                        );
                    }
                }
            }
        }
        for r in 0..rows {
            for i in 0..gh {
                let o = &mut out[r * stride + i * hd..][..hd];
                for (o, a) in o.iter_mut().zip(&acc[(r * gh + i) * hd..][..hd]) {
                    *o = *a as f32;
                }
            }
        }
    })
}

/// Buffers of one decode call ([`decode`]), kept by the calling thread.
#[derive(Default)]
struct DecodeScratch {
    /// Scores of one chunk of keys for every head: `[chunk][head][chunk_len]`.
    chunks: Vec<f64>,
    /// Every head's scores, then probabilities: `[head][len]`.
    probs: Vec<f64>,
    /// Each weighted-sum task's output: `[task][group][COLUMNS]`.
    sums: Vec<f64>,
}

thread_local! {
    static DECODE: RefCell<DecodeScratch> = RefCell::new(DecodeScratch::default());
}

/// Output columns (of one head) a decode weighted-sum task takes.
const COLUMNS: usize = 32;

/// Decode: one query row at position `pos` over `len` ≥ 1 keys. The keys and
/// values are read once for all heads (a task per chunk of keys for the
/// scores, then a task per KV head and [`COLUMNS`] output columns for the
/// weighted sum), instead of once per query head: at long contexts decode
/// reads the cache from memory, not from cache. Every number is computed as
/// in [`attend`]: the same dot products, the softmax of each head's whole
/// row in order, each output element summed over the keys in order.
fn decode(
    rt: &Runtime,
    shape: &AttnShape,
    q: &[f32],
    pos: usize,
    keys: &[f32],
    values: &[f32],
    out: &mut [f32],
) {
    let hd = shape.head_dim;
    let heads = shape.n_heads;
    let kv_dim = shape.n_kv_heads * hd;
    let group = heads / shape.n_kv_heads;
    let first = match shape.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
    let len = pos + 1 - first;
    let chunk = len.div_ceil(4 * rt.threads()).next_multiple_of(16).max(64);
    let isa = rt.isa;
    let cols = hd.div_ceil(COLUMNS);
    let mut fresh = DecodeScratch::default();
    DECODE.with(|cell| {
        // Another decode on this thread (a nested call) gets its own buffers.
        let mut held = cell.try_borrow_mut();
        let DecodeScratch {
            chunks,
            probs,
            sums,
        } = match held.as_deref_mut() {
            Ok(s) => s,
            Err(_) => &mut fresh,
        };
        // Every element of chunks and probs read below is written first.
        let n_chunks = len.div_ceil(chunk);
        if chunks.len() < n_chunks * heads * chunk {
            chunks.resize(n_chunks * heads * chunk, 0.0);
        }
        if probs.len() < heads * len {
            probs.resize(heads * len, 0.0);
        }
        sums.clear();
        sums.resize(shape.n_kv_heads * cols * group * COLUMNS, 0.0);
        // 1. Scores, a chunk of keys (every head) per task.
        chunks[..n_chunks * heads * chunk]
            .par_chunks_mut(heads * chunk)
            .enumerate()
            .for_each_init(Vec::new, |dots, (c, sc)| {
                let c0 = c * chunk;
                let c1 = (c0 + chunk).min(len);
                // A block of key rows at a time for every head, the next
                // block prefetched (rows a page apart defeat the hardware's).
                for b0 in (c0..c1).step_by(64) {
                    let b1 = (b0 + 64).min(c1);
                    let next =
                        (b1..(b1 + 64).min(c1)).map(|j| &keys[(first + j) * kv_dim..][..kv_dim]);
                    super::prefetch_rows(next);
                    dots.resize(b1 - b0, 0f32);
                    for h in 0..heads {
                        let kblock = &keys[(first + b0) * kv_dim + (h / group) * hd..];
                        super::dot::dots_strided(isa, &q[h * hd..][..hd], kblock, kv_dim, dots);
                        let sc = &mut sc[h * chunk + b0 - c0..][..b1 - b0];
                        for (sc, &d) in sc.iter_mut().zip(dots.iter()) {
                            *sc = d as f64 * shape.scale;
                            if let Some(cap) = shape.softcap {
                                *sc = super::activation::softcap(*sc, cap);
                            }
                        }
                    }
                }
            });
        // 2. Each head's row gathered in order, then its softmax.
        probs[..heads * len]
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(h, row)| {
                for (c, part) in row.chunks_mut(chunk).enumerate() {
                    part.copy_from_slice(&chunks[(c * heads + h) * chunk..][..part.len()]);
                }
                softmax_heads(isa, row, len, 0..len);
            });
        // 3. acc = Σ p_j v_j, a task per KV head and COLUMNS columns.
        sums.par_chunks_mut(group * COLUMNS)
            .enumerate()
            .for_each(|(t, acc)| {
                let (kvh, c0) = (t / cols, t % cols * COLUMNS);
                let w = COLUMNS.min(hd - c0);
                // A block of rows at a time for every head of the group.
                for j0 in (0..len).step_by(64) {
                    let j1 = (j0 + 64).min(len);
                    let rows = &values[(first + j0) * kv_dim + kvh * hd + c0..];
                    for (i, a) in acc.chunks_exact_mut(COLUMNS).enumerate() {
                        let p = &probs[(kvh * group + i) * len..][j0..j1];
                        weighted_sum(
                            isa,
                            &mut a[..w],
                            p,
                            Values::F32 {
                                rows,
                                stride: kv_dim,
                            },
                        );
                    }
                }
            });
        for (t, acc) in sums.chunks_exact(group * COLUMNS).enumerate() {
            let (kvh, c0) = (t / cols, t % cols * COLUMNS);
            let w = COLUMNS.min(hd - c0);
            for (i, a) in acc.chunks_exact(COLUMNS).enumerate() {
                let o = &mut out[(kvh * group + i) * hd + c0..][..w];
                for (o, &a) in o.iter_mut().zip(&a[..w]) {
                    *o = a as f32;
                }
            }
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
    // Long batches: a task is a tile of query rows, every head (keys and
    // values read once per tile and KV head). Short ones: a task is one row's
    // KV group when there are enough tasks for the threads, one head
    // otherwise (decode of few KV heads). The bits are the same either way.
    if n >= 2 * TILE * rt.threads() {
        rt.install(|| {
            out.par_chunks_mut(TILE * q_dim)
                .enumerate()
                .for_each(|(tile, o)| {
                    let t0 = tile * TILE;
                    let rows = o.len() / q_dim;
                    for kh in 0..shape.n_kv_heads {
                        let h0 = kh * group * hd;
                        attend(
                            isa,
                            shape,
                            &q[t0 * q_dim + h0..],
                            &mut o[h0..],
                            q_dim,
                            rows,
                            group,
                            keys,
                            values,
                            kh,
                            pos0 + t0,
                        );
                    }
                })
        });
        return;
    }
    if n == 1 && pos0 + 1 >= DECODE_MIN_KEYS {
        rt.install(|| decode(rt, shape, q, pos0, keys, values, out));
        return;
    }
    let per = if n * shape.n_kv_heads >= 4 * rt.threads() {
        group
    } else {
        1
    };
    rt.install(|| {
        out.par_chunks_mut(per * hd)
            .enumerate()
            .for_each(|(task, o)| {
                let h0 = task * per % shape.n_heads;
                let t = task * per / shape.n_heads;
                let qh = &q[t * q_dim + h0 * hd..(t * q_dim + (h0 + per) * hd)];
                attend(
                    isa,
                    shape,
                    qh,
                    o,
                    q_dim,
                    1,
                    per,
                    keys,
                    values,
                    h0 / group,
                    pos0 + t,
                );
            })
    });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// How many rows ahead the strided value reads are prefetched.
    const PREFETCH_ROWS: usize = 8;

    /// [`super::weighted_sum`] on the first multiple of 8 elements, 64 at a
    /// time in registers; returns how many it did. `values` points at `f32`
    /// rows when `F32`, `f64` rows otherwise; row `j` starts at `j·stride`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn weighted_sum_avx512<const F32: bool>(
        acc: &mut [f64],
        p: &[f64],
        values: *const u8,
        stride: usize,
    ) -> usize {
        let main = acc.len() - acc.len() % 8;
        let a = acc.as_mut_ptr();
        let mut d0 = 0;
        while d0 < main {
            let w = (main - d0).min(64) / 8;
            let (a, v) = (a.add(d0), values.wrapping_add(d0 * if F32 { 4 } else { 8 }));
            match w {
                8 => columns_avx512::<8, F32>(a, p, v, stride),
                7 => columns_avx512::<7, F32>(a, p, v, stride),
                6 => columns_avx512::<6, F32>(a, p, v, stride),
                5 => columns_avx512::<5, F32>(a, p, v, stride),
                4 => columns_avx512::<4, F32>(a, p, v, stride),
                3 => columns_avx512::<3, F32>(a, p, v, stride),
                2 => columns_avx512::<2, F32>(a, p, v, stride),
                _ => columns_avx512::<1, F32>(a, p, v, stride),
            }
            d0 += 8 * w;
        }
        main
    }

    /// `8·W` columns of the weighted sum with their totals in `W` registers
    /// (a constant `W`, so they stay there across the rows).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn columns_avx512<const W: usize, const F32: bool>(
        a: *mut f64,
        p: &[f64],
        values: *const u8,
        stride: usize,
    ) {
        let mut r = [_mm512_setzero_pd(); W];
        for (c, r) in r.iter_mut().enumerate() {
            *r = _mm512_loadu_pd(a.add(8 * c));
        }
        for (j, &pj) in p.iter().enumerate() {
            let pv = _mm512_set1_pd(pj);
            let v = j * stride;
            if F32 {
                prefetch_f32(values, v + PREFETCH_ROWS * stride, W * 8);
            }
            for (c, r) in r.iter_mut().enumerate() {
                let x = if F32 {
                    _mm512_cvtps_pd(_mm256_loadu_ps(values.cast::<f32>().add(v + 8 * c)))
                } else {
                    _mm512_loadu_pd(values.cast::<f64>().add(v + 8 * c))
                };
                *r = _mm512_add_pd(*r, _mm512_mul_pd(pv, x));
            }
        }
        for (c, r) in r.iter().enumerate() {
            _mm512_storeu_pd(a.add(8 * c), *r);
        }
    }

    /// [`super::weighted_sum`] on the first multiple of 4 elements, 32 at a
    /// time in registers; returns how many it did. `values` as for AVX-512.
    #[target_feature(enable = "avx2")]
    pub unsafe fn weighted_sum_avx2<const F32: bool>(
        acc: &mut [f64],
        p: &[f64],
        values: *const u8,
        stride: usize,
    ) -> usize {
        let main = acc.len() - acc.len() % 4;
        let a = acc.as_mut_ptr();
        let mut d0 = 0;
        while d0 < main {
            let w = (main - d0).min(32) / 4;
            let (a, v) = (a.add(d0), values.wrapping_add(d0 * if F32 { 4 } else { 8 }));
            match w {
                8 => columns_avx2::<8, F32>(a, p, v, stride),
                7 => columns_avx2::<7, F32>(a, p, v, stride),
                6 => columns_avx2::<6, F32>(a, p, v, stride),
                5 => columns_avx2::<5, F32>(a, p, v, stride),
                4 => columns_avx2::<4, F32>(a, p, v, stride),
                3 => columns_avx2::<3, F32>(a, p, v, stride),
                2 => columns_avx2::<2, F32>(a, p, v, stride),
                _ => columns_avx2::<1, F32>(a, p, v, stride),
            }
            d0 += 4 * w;
        }
        main
    }

    /// `4·W` columns with their totals in `W` registers.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn columns_avx2<const W: usize, const F32: bool>(
        a: *mut f64,
        p: &[f64],
        values: *const u8,
        stride: usize,
    ) {
        let mut r = [_mm256_setzero_pd(); W];
        for (c, r) in r.iter_mut().enumerate() {
            *r = _mm256_loadu_pd(a.add(4 * c));
        }
        for (j, &pj) in p.iter().enumerate() {
            let pv = _mm256_set1_pd(pj);
            let v = j * stride;
            if F32 {
                prefetch_f32(values, v + PREFETCH_ROWS * stride, W * 4);
            }
            for (c, r) in r.iter_mut().enumerate() {
                let x = if F32 {
                    _mm256_cvtps_pd(_mm_loadu_ps(values.cast::<f32>().add(v + 4 * c)))
                } else {
                    _mm256_loadu_pd(values.cast::<f64>().add(v + 4 * c))
                };
                *r = _mm256_add_pd(*r, _mm256_mul_pd(pv, x));
            }
        }
        for (c, r) in r.iter().enumerate() {
            _mm256_storeu_pd(a.add(4 * c), *r);
        }
    }

    /// Prefetches the cache lines of `n` `f32` from element `at` of `base`:
    /// value rows a few pages apart are not prefetched by the hardware. The
    /// address is never dereferenced (it may lie past the rows).
    #[inline(always)]
    unsafe fn prefetch_f32(base: *const u8, at: usize, n: usize) {
        let start = base.wrapping_add(4 * at);
        for line in (0..4 * n).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line).cast());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_data as data;

    /// A long batch (tiles of rows), a short one after a prefix (grouped
    /// tasks) and the positions one at a time (single-head tasks, and the
    /// decode path from position 256 on) give the
    /// same bits, on every path and thread count, for head sizes on and off
    /// the SIMD dot paths, with and without a window; one head matches a
    /// plain f64 softmax closely.
    #[test]
    fn tiles_grouped_and_single_head_tasks_agree() {
        let shapes = [
            (6, 2, 40, Some(30.0), Some(7)),
            (9, 3, 64, None, None),
            (4, 1, 256, Some(50.0), Some(19)),
        ];
        for (heads, kv_heads, hd, softcap, window) in shapes {
            let shape = AttnShape {
                n_heads: heads,
                n_kv_heads: kv_heads,
                head_dim: hd,
                scale: (hd as f64).powf(-0.5),
                softcap,
                window,
            };
            // 300 rows: decode from position DECODE_MIN_KEYS on takes its own path.
            let (n, q_dim, kv_dim) = (300, heads * hd, kv_heads * hd);
            let q = data(n * q_dim, 1);
            let keys = data(n * kv_dim, 2);
            let values = data(n * kv_dim, 3);
            let mut want = None;
            for isa in Isa::available() {
                for threads in [1, 2, 3] {
                    let rt = Runtime::new(threads, Some(isa)).unwrap();
                    let mut batch = vec![0f32; n * q_dim];
                    attention(&rt, &shape, &q, n, 0, &keys, &values, &mut batch);
                    let mut split = vec![0f32; n * q_dim];
                    for (t0, t1) in [(0, 10), (10, n)] {
                        let r = t0 * q_dim..t1 * q_dim;
                        let (q, o) = (&q[r.clone()], &mut split[r]);
                        attention(&rt, &shape, q, t1 - t0, t0, &keys, &values, o);
                    }
                    let mut single = vec![0f32; n * q_dim];
                    for t in 0..n {
                        let r = t * q_dim..(t + 1) * q_dim;
                        let (q, o) = (&q[r.clone()], &mut single[r]);
                        attention(&rt, &shape, q, 1, t, &keys, &values, o);
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&batch), bits(&split), "{isa} {threads} hd {hd}");
                    assert_eq!(bits(&batch), bits(&single), "{isa} {threads} hd {hd}");
                    let want = want.get_or_insert_with(|| bits(&batch));
                    assert_eq!(*want, bits(&batch), "{isa} {threads} hd {hd}");
                }
            }
            check_one_head(&shape, &q, &keys, &values, n);
        }
    }

    /// Head 1 of the last KV group at row 33 against a plain f64 softmax.
    fn check_one_head(shape: &AttnShape, q: &[f32], keys: &[f32], values: &[f32], n: usize) {
        let hd = shape.head_dim;
        let (q_dim, kv_dim) = (shape.n_heads * hd, shape.n_kv_heads * hd);
        let group = shape.n_heads / shape.n_kv_heads;
        let (t, h) = (33, shape.n_heads - group + 1);
        let kvh = h / group;
        let qh = &q[t * q_dim + h * hd..t * q_dim + (h + 1) * hd];
        let first = shape.window.map_or(0, |w| (t + 1).saturating_sub(w));
        let sc: Vec<f64> = (first..=t)
            .map(|j| {
                let k = &keys[j * kv_dim + kvh * hd..j * kv_dim + (kvh + 1) * hd];
                let d: f64 = qh.iter().zip(k).map(|(a, b)| *a as f64 * *b as f64).sum();
                match shape.softcap {
                    Some(c) => c * (d * shape.scale / c).tanh(),
                    None => d * shape.scale,
                }
            })
            .collect();
        let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = sc.iter().map(|s| (s - m).exp()).collect();
        let z: f64 = e.iter().sum();
        let rt = Runtime::new(1, None).unwrap();
        let mut out = vec![0f32; n * q_dim];
        attention(&rt, shape, q, n, 0, keys, values, &mut out);
        for d in 0..hd {
            let want: f64 = (first..=t)
                .zip(&e)
                .map(|(j, w)| w / z * values[j * kv_dim + kvh * hd + d] as f64)
                .sum();
            let got = out[t * q_dim + h * hd + d] as f64;
            assert!((got - want).abs() < 1e-6, "hd {hd} d={d}: {got} vs {want}");
        }
    }
}
