//! The one reduction order every dot product in the engine uses.
//!
//! Sixteen `f64` lanes: element `k` of a dot product contributes the product
//! `(a_k as f64) * (b_k as f64)` to lane `k % 16`, lanes scanning `k` in
//! increasing order; at the end the lanes are summed by a fixed tree
//! (`lane i + lane i+8`, then `+4`, `+2`, `+1`), in `f64`, and the sum is
//! rounded **once** to `f32`.
//!
//! The product of two `f32` is exact in `f64` (24 + 24 significant bits fit in
//! 53, and its exponent, between 2^-298 and 2^256, is far inside the `f64`
//! range), so a fused multiply-add `fma(a, b, lane)` and a product followed by
//! an add round at the same place, the add: the scalar path needs no
//! `mul_add`, and the SIMD paths may use either. Each lane then rounds once per
//! element after its first, the tree four times, and the final conversion to
//! `f32` once: the error is at most `u₃₂·|exact|` plus
//! `(1 + u₃₂)·(⌈K/16⌉ + 4)·u₆₄·Σ|a_k b_k|` (plus `2^-150` where the result is
//! subnormal; derived in `harness/src/kernel_suite.rs`), where `f32` lanes
//! gave `(⌈K/16⌉ + 5)·u₃₂·Σ|a_k b_k|`: the accumulation chains no longer
//! count. Partial sums can not overflow or underflow inexactly either.
//!
//! The AVX-512 path holds a row's lanes in two `__m512d`, the AVX2 path in four
//! `__m256d`, the scalar path in an array: all three give identical bits, and
//! so do the one-row (decode) and many-row (prefill) kernels built on them
//! (`qdot`, `matmul`), which widen the weights and the inputs to `f64` exactly
//! and follow the same order.

use super::Isa;

pub const LANES: usize = 16;

/// Running lane sums of one dot product.
pub type Acc = [f64; LANES];

/// Sums the lanes with the fixed tree (in `f64`) and rounds the sum to `f32`.
#[inline]
pub fn reduce(acc: &Acc) -> f32 {
    reduce_f64(acc) as f32
}

/// The tree of [`reduce`], without the final rounding.
#[inline]
pub fn reduce_f64(acc: &Acc) -> f64 {
    let mut s8 = [0f64; 8];
    for i in 0..8 {
        s8[i] = acc[i] + acc[i + 8];
    }
    let s4 = [s8[0] + s8[4], s8[1] + s8[5], s8[2] + s8[6], s8[3] + s8[7]];
    let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
    s2[0] + s2[1]
}

/// `dst[i] = src[i] as f64` (exact).
#[inline]
pub fn widen(src: &[f32], dst: &mut [f64]) {
    assert_eq!(src.len(), dst.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as f64;
    }
}

/// Adds `a · b` into `acc`. Callers that split one dot product over several
/// calls must pass chunks whose lengths are multiples of 16 (all but the last).
#[inline]
pub fn accumulate(isa: Isa, acc: &mut Acc, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let main = a.len() - a.len() % LANES;
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the Isa value is only Avx512 when the CPU supports it (Isa::available).
        Isa::Avx512 => unsafe { x86::acc1_avx512(acc, &a[..main], &b[..main]) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2 and FMA.
        Isa::Avx2 => unsafe { x86::acc1_avx2(acc, &a[..main], &b[..main]) },
        _ => acc1_scalar(acc, &a[..main], &b[..main]),
    }
    for k in main..a.len() {
        acc[k % LANES] += a[k] as f64 * b[k] as f64;
    }
}

/// [`accumulate`] with `b` already widened: `b[k]` must be the exact `f64` of
/// an `f32` (as [`widen`] makes it), so that every product stays exact and the
/// bits are those of [`accumulate`] on the `f32` values. Scalar; the SIMD
/// paths have their own kernels (`qdot`).
#[inline]
pub fn accumulate_wide(acc: &mut Acc, a: &[f32], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (k, (&ak, &bk)) in a.iter().zip(b).enumerate() {
        acc[k % LANES] += ak as f64 * bk;
    }
}

/// Adds `a[i] · b` into `acc[i]` for four rows `a` sharing one vector `b`.
/// Same bits as four calls of [`accumulate`].
#[inline]
pub fn accumulate4(isa: Isa, acc: &mut [Acc; 4], a: [&[f32]; 4], b: &[f32]) {
    for (acc, a) in acc.iter_mut().zip(a) {
        accumulate(isa, acc, a, b);
    }
}

/// A whole dot product in the engine's order.
#[inline]
pub fn dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f64; LANES];
    accumulate(isa, &mut acc, a, b);
    reduce(&acc)
}

fn acc1_scalar(acc: &mut Acc, a: &[f32], b: &[f32]) {
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += ca[l] as f64 * cb[l] as f64;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Acc, LANES};
    use std::arch::x86_64::*;

    /// Lanes `0..8` and `8..16`, each widened from 8 `f32` and multiplied
    /// exactly, added with one rounding (FMA).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn acc1_avx512(acc: &mut Acc, a: &[f32], b: &[f32]) {
        let mut lo = _mm512_loadu_pd(acc.as_ptr());
        let mut hi = _mm512_loadu_pd(acc.as_ptr().add(8));
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        while i < a.len() {
            let w = |p: *const f32| _mm512_cvtps_pd(_mm256_loadu_ps(p));
            lo = _mm512_fmadd_pd(w(pa.add(i)), w(pb.add(i)), lo);
            hi = _mm512_fmadd_pd(w(pa.add(i + 8)), w(pb.add(i + 8)), hi);
            i += LANES;
        }
        _mm512_storeu_pd(acc.as_mut_ptr(), lo);
        _mm512_storeu_pd(acc.as_mut_ptr().add(8), hi);
    }

    /// Lanes in four registers of four.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn acc1_avx2(acc: &mut Acc, a: &[f32], b: &[f32]) {
        let mut v = [_mm256_setzero_pd(); 4];
        for (j, v) in v.iter_mut().enumerate() {
            *v = _mm256_loadu_pd(acc.as_ptr().add(4 * j));
        }
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        while i < a.len() {
            let w = |p: *const f32| _mm256_cvtps_pd(_mm_loadu_ps(p));
            for (j, v) in v.iter_mut().enumerate() {
                *v = _mm256_fmadd_pd(w(pa.add(i + 4 * j)), w(pb.add(i + 4 * j)), *v);
            }
            i += LANES;
        }
        for (j, v) in v.iter().enumerate() {
            _mm256_storeu_pd(acc.as_mut_ptr().add(4 * j), *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The order spelled out: f64 lanes, exact products, tree, one rounding.
    fn spelled_out(a: &[f32], b: &[f32]) -> f32 {
        let mut lane = [0f64; 16];
        for k in 0..a.len() {
            lane[k % 16] = (a[k] as f64).mul_add(b[k] as f64, lane[k % 16]);
        }
        let s8: Vec<f64> = (0..8).map(|i| lane[i] + lane[i + 8]).collect();
        let s4: Vec<f64> = (0..4).map(|i| s8[i] + s8[i + 4]).collect();
        let s2: Vec<f64> = (0..2).map(|i| s4[i] + s4[i + 2]).collect();
        (s2[0] + s2[1]) as f32
    }

    #[test]
    fn every_path_gives_the_same_bits() {
        for n in [0, 1, 15, 16, 17, 64, 100, 576, 1537] {
            let a = data(n, 1);
            let b = data(n, 2);
            let want = dot(Isa::Scalar, &a, &b);
            assert_eq!(want.to_bits(), spelled_out(&a, &b).to_bits(), "n={n}");
            let wide: Vec<f64> = b.iter().map(|&v| v as f64).collect();
            let mut acc = [0f64; LANES];
            accumulate_wide(&mut acc, &a, &wide);
            assert_eq!(reduce(&acc).to_bits(), want.to_bits(), "wide n={n}");
            for isa in Isa::available() {
                assert_eq!(dot(isa, &a, &b).to_bits(), want.to_bits(), "{isa} n={n}");
                let rows: Vec<Vec<f32>> = (0..4).map(|r| data(n, 10 + r)).collect();
                let mut acc = [[0f64; LANES]; 4];
                accumulate4(isa, &mut acc, [&rows[0], &rows[1], &rows[2], &rows[3]], &b);
                for r in 0..4 {
                    assert_eq!(
                        reduce(&acc[r]).to_bits(),
                        dot(Isa::Scalar, &rows[r], &b).to_bits()
                    );
                }
            }
        }
    }

    #[test]
    fn chunked_accumulation_matches_one_call() {
        let a = data(512, 3);
        let b = data(512, 4);
        for isa in Isa::available() {
            let mut acc = [0f64; LANES];
            for (ca, cb) in a.chunks(32).zip(b.chunks(32)) {
                accumulate(isa, &mut acc, ca, cb);
            }
            assert_eq!(reduce(&acc).to_bits(), dot(isa, &a, &b).to_bits());
        }
    }

    #[test]
    fn products_beyond_the_f32_range_cancel_exactly() {
        // 3e30 · 2e30 overflows f32 but is exact in f64; the two products meet
        // in lane 0 (elements 0 and 16) and cancel, leaving 2 · 0.5.
        let mut a = [0f32; 17];
        let mut b = [0f32; 17];
        (a[0], b[0]) = (3e30, 2e30);
        (a[16], b[16]) = (-3e30, 2e30);
        (a[1], b[1]) = (2.0, 0.5);
        for isa in Isa::available() {
            assert_eq!(dot(isa, &a, &b), 1.0, "{isa}");
        }
    }

    #[test]
    fn dot_is_close_to_exact() {
        let a = data(4096, 5);
        let b = data(4096, 6);
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let abs: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64 * *y as f64).abs())
            .sum();
        let got = dot(Isa::detect(), &a, &b) as f64;
        // u32·|result| for the final rounding, (256 + 4) u64·Σ|ab| for the lanes
        // and the tree (plus the naive f64 sum's own error, (4096 u64)·Σ|ab|).
        let bound =
            exact.abs() * f32::EPSILON as f64 / 2.0 + (260.0 + 4096.0) * f64::EPSILON / 2.0 * abs;
        assert!((got - exact).abs() <= bound, "{got} vs {exact}");
    }
}
