//! The one reduction order every dot product in the engine uses.
//!
//! Sixteen lanes, lane `l` taking the elements `k ≡ l (mod 16)` in increasing
//! order, in two levels:
//!
//! * **Runs of [`RUN`] (256) elements in `f32`.** The main part of the dot
//!   product (its first `K − K mod 16` elements) is cut into runs of 256
//!   elements from the start (the last run may be shorter). Within a run, lane
//!   `l` starts at `+0.0` and takes each of its (at most 16) elements with one
//!   fused multiply-add in `f32`, `s = fma(a_k, b_k, s)`: one rounding per
//!   element. At the end of the run the lane's `f32` sum is added (exactly
//!   widened) to the lane's **`f64`** total.
//! * **The tail** (the last `K mod 16` elements, only float-typed rows have
//!   one) adds the exact product `(a_k as f64)·(b_k as f64)` to lane `k % 16`'s
//!   `f64` total.
//!
//! At the end the 16 `f64` totals are summed by a fixed tree (`lane i +
//! lane i+8`, then `+4`, `+2`, `+1`), in `f64`, and the sum is rounded **once**
//! to `f32`.
//!
//! Each `f32` chain is at most 16 roundings long, the `f64` chains ⌈K/256⌉ + 1:
//! the error is at most `u₃₂·|exact|` plus
//! `(1 + u₃₂)·(γ₁₆(u₃₂) + (⌈K/256⌉ + 6)·u₆₄)·Σ|a_k b_k|` (plus `(K + 1)·2⁻¹⁵⁰`
//! for results and partial sums in the subnormal range; derived and checked
//! against MPFR in `harness/src/kernel_suite.rs`), where plain `f32` lanes give
//! `(⌈K/16⌉ + 5)·u₃₂·Σ|a_k b_k|` — for the real models' rows (K = 576 … 2048)
//! 2.6 to 8 times more — and all-`f64` lanes (an earlier order) cost twice
//! the arithmetic. Runs of 256 rather than 128 halve the widening work of the
//! prefill product's tiles (measured 8–10% faster on one core). A product or
//! run sum beyond the `f32` range overflows to infinity, as in any `f32`
//! engine.
//!
//! The AVX-512 path holds a row's run in one `__m512` and its totals in two
//! `__m512d`, the AVX2 path in two `__m256` and four `__m256d`, the scalar path
//! in arrays with `f32::mul_add` (a correctly rounded fma): all three give
//! identical bits, and so do the one-row (decode) and many-row (prefill)
//! kernels built on them (`qdot`, `matmul`), which follow the same order.

use super::Isa;

pub const LANES: usize = 16;

/// Elements per `f32` run (a multiple of [`LANES`]).
pub const RUN: usize = 256;

/// Running lane totals of one dot product.
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

/// Adds `a · b` into `acc`: the runs of the main part, then the tail. A
/// caller that splits one dot product over several calls must cut it at
/// multiples of [`RUN`] (every call but the last).
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
        _ => acc_runs_scalar(acc, &a[..main], &b[..main]),
    }
    accumulate_tail(acc, a, b, main);
}

/// The tail of [`accumulate`]: elements `main..` as exact `f64` products into
/// lane `k % 16`.
#[inline]
pub fn accumulate_tail(acc: &mut Acc, a: &[f32], b: &[f32], main: usize) {
    for k in main..a.len() {
        acc[k % LANES] += a[k] as f64 * b[k] as f64;
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

/// `out[i] = dot(x, rows[i·stride .. i·stride + x.len()])` for `out.len()`
/// rows of a strided matrix (attention's keys): the same bits as [`dot`] per
/// row, without a call per row on the SIMD paths.
pub fn dots_strided(isa: Isa, x: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
    let n = x.len();
    if let Some(last) = out.len().checked_sub(1) {
        assert!(rows.len() >= last * stride + n, "strided rows out of range");
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && n.is_multiple_of(LANES) {
        // SAFETY: the CPU runs AVX-512 (Isa::available); every row lies
        // inside `rows` (checked above).
        unsafe { x86::dots_avx512(x, rows.as_ptr(), stride, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 && n.is_multiple_of(LANES) {
        // SAFETY: the CPU runs AVX2 and FMA (Isa::available); every row lies
        // inside `rows` (checked above).
        unsafe { x86::dots_avx2(x, rows.as_ptr(), stride, out) };
        return;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = dot(isa, x, &rows[i * stride..i * stride + n]);
    }
}

/// The runs of the main part (`a.len()` a multiple of 16), spelled out.
pub fn acc_runs_scalar(acc: &mut Acc, a: &[f32], b: &[f32]) {
    debug_assert_eq!(a.len() % LANES, 0);
    for (ra, rb) in a.chunks(RUN).zip(b.chunks(RUN)) {
        let mut s = [0f32; LANES];
        for (ca, cb) in ra.chunks_exact(LANES).zip(rb.chunks_exact(LANES)) {
            for l in 0..LANES {
                s[l] = ca[l].mul_add(cb[l], s[l]);
            }
        }
        for l in 0..LANES {
            acc[l] += s[l] as f64;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Acc, RUN};
    use std::arch::x86_64::*;

    /// Adds the runs of `a · b` (`n` elements, a multiple of 16) to the
    /// totals `lo` (lanes 0..8) and `hi` (8..16): each run in a `__m512`,
    /// widened exactly at its end.
    #[inline(always)]
    unsafe fn runs_avx512(
        pa: *const f32,
        pb: *const f32,
        n: usize,
        mut lo: __m512d,
        mut hi: __m512d,
    ) -> (__m512d, __m512d) {
        let mut i = 0;
        while i < n {
            let end = n.min(i + RUN);
            let mut s = _mm512_setzero_ps();
            while i < end {
                s = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s);
                i += 16;
            }
            let shi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s)));
            lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(s)));
            hi = _mm512_add_pd(hi, _mm512_cvtps_pd(shi));
        }
        (lo, hi)
    }

    /// The runs added to the totals in `acc`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn acc1_avx512(acc: &mut Acc, a: &[f32], b: &[f32]) {
        let lo = _mm512_loadu_pd(acc.as_ptr());
        let hi = _mm512_loadu_pd(acc.as_ptr().add(8));
        let (lo, hi) = runs_avx512(a.as_ptr(), b.as_ptr(), a.len(), lo, hi);
        _mm512_storeu_pd(acc.as_mut_ptr(), lo);
        _mm512_storeu_pd(acc.as_mut_ptr().add(8), hi);
    }

    /// Whole dot products (length a multiple of 16) in registers: the runs
    /// into zero totals, then the tree of `reduce`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dots_avx512(x: &[f32], rows: *const f32, stride: usize, out: &mut [f32]) {
        for (r, o) in out.iter_mut().enumerate() {
            let zero = _mm512_setzero_pd();
            let (lo, hi) = runs_avx512(x.as_ptr(), rows.add(r * stride), x.len(), zero, zero);
            // s8[i] = lane i + lane i+8; s4[i] = s8[i] + s8[i+4]; s2; s1.
            let s8 = _mm512_add_pd(lo, hi);
            let s4 = _mm256_add_pd(_mm512_castpd512_pd256(s8), _mm512_extractf64x4_pd::<1>(s8));
            let s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd::<1>(s4));
            let s1 = _mm_add_sd(s2, _mm_unpackhi_pd(s2, s2));
            *o = _mm_cvtsd_f64(s1) as f32;
        }
    }

    /// Whole dot products (length a multiple of 16) of `x` with four rows at
    /// a time: each row's runs in two `__m256`, its totals in four `__m256d`
    /// starting at zero, as [`acc1_avx2`] keeps them; then the tree of
    /// `reduce` for the four rows together (the same additions, lane for
    /// lane). Fewer than four rows left go through `dot`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dots_avx2(x: &[f32], rows: *const f32, stride: usize, out: &mut [f32]) {
        let n = x.len();
        let px = x.as_ptr();
        let full = out.len() - out.len() % 4;
        for r in (0..full).step_by(4) {
            let pr = [0, 1, 2, 3].map(|k| rows.add((r + k) * stride));
            let mut t = [[_mm256_setzero_pd(); 4]; 4];
            let mut i = 0;
            while i < n {
                let end = n.min(i + RUN);
                let mut s = [[_mm256_setzero_ps(); 2]; 4];
                while i < end {
                    let x0 = _mm256_loadu_ps(px.add(i));
                    let x1 = _mm256_loadu_ps(px.add(i + 8));
                    for (s, p) in s.iter_mut().zip(pr) {
                        s[0] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(p.add(i)), s[0]);
                        s[1] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(p.add(i + 8)), s[1]);
                    }
                    i += 16;
                }
                for (t, s) in t.iter_mut().zip(&s) {
                    for (h, s) in s.iter().enumerate() {
                        t[2 * h] =
                            _mm256_add_pd(t[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(*s)));
                        t[2 * h + 1] = _mm256_add_pd(
                            t[2 * h + 1],
                            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(*s)),
                        );
                    }
                }
            }
            // s4 = (lanes 0-3 + lanes 8-11) + (lanes 4-7 + lanes 12-15).
            let s4 = t.map(|t| _mm256_add_pd(_mm256_add_pd(t[0], t[2]), _mm256_add_pd(t[1], t[3])));
            // s2 = low half + high half, two rows to a register: [a0+a2, a1+a3, b0+b2, b1+b3].
            let s2 = |a: __m256d, b: __m256d| {
                _mm256_add_pd(
                    _mm256_permute2f128_pd::<0x20>(a, b),
                    _mm256_permute2f128_pd::<0x31>(a, b),
                )
            };
            // s1 = s2[0] + s2[1] for the rows in the order [0, 2, 1, 3].
            let s1 = _mm256_hadd_pd(s2(s4[0], s4[1]), s2(s4[2], s4[3]));
            let f = _mm256_cvtpd_ps(s1);
            _mm_storeu_ps(
                out.as_mut_ptr().add(r),
                _mm_shuffle_ps::<0b11_01_10_00>(f, f),
            );
        }
        for (r, o) in out.iter_mut().enumerate().skip(full) {
            let row = std::slice::from_raw_parts(rows.add(r * stride), n);
            *o = super::dot(super::Isa::Avx2, x, row);
        }
    }

    /// One run in two `__m256`, the totals in four `__m256d`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn acc1_avx2(acc: &mut Acc, a: &[f32], b: &[f32]) {
        let mut v = [_mm256_setzero_pd(); 4];
        for (j, v) in v.iter_mut().enumerate() {
            *v = _mm256_loadu_pd(acc.as_ptr().add(4 * j));
        }
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let n = a.len();
        let mut i = 0;
        while i < n {
            let end = n.min(i + RUN);
            let mut s = [_mm256_setzero_ps(); 2];
            while i < end {
                for (h, s) in s.iter_mut().enumerate() {
                    let k = i + 8 * h;
                    *s =
                        _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(k)), _mm256_loadu_ps(pb.add(k)), *s);
                }
                i += 16;
            }
            for (h, s) in s.iter().enumerate() {
                v[2 * h] = _mm256_add_pd(v[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(*s)));
                v[2 * h + 1] = _mm256_add_pd(
                    v[2 * h + 1],
                    _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(*s)),
                );
            }
        }
        for (j, v) in v.iter().enumerate() {
            _mm256_storeu_pd(acc.as_mut_ptr().add(4 * j), *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_data as data;

    /// The order spelled out element by element: f32 runs of 256 in lane
    /// `k % 16`, flushed into f64 totals, exact f64 products for the tail,
    /// the tree, one rounding.
    fn spelled_out(a: &[f32], b: &[f32]) -> f32 {
        let main = a.len() - a.len() % 16;
        let mut total = [0f64; 16];
        let mut run = [0f32; 16];
        for k in 0..main {
            run[k % 16] = a[k].mul_add(b[k], run[k % 16]);
            if (k + 1) % 256 == 0 || k + 1 == main {
                for l in 0..16 {
                    total[l] += run[l] as f64;
                    run[l] = 0.0;
                }
            }
        }
        for k in main..a.len() {
            total[k % 16] += a[k] as f64 * b[k] as f64;
        }
        let s8: Vec<f64> = (0..8).map(|i| total[i] + total[i + 8]).collect();
        let s4: Vec<f64> = (0..4).map(|i| s8[i] + s8[i + 4]).collect();
        let s2: Vec<f64> = (0..2).map(|i| s4[i] + s4[i + 2]).collect();
        (s2[0] + s2[1]) as f32
    }

    #[test]
    fn every_path_gives_the_same_bits() {
        for n in [
            0, 1, 15, 16, 17, 64, 100, 255, 256, 257, 272, 576, 1537, 2048, 2063,
        ] {
            let a = data(n, 1);
            let b = data(n, 2);
            let want = dot(Isa::Scalar, &a, &b);
            assert_eq!(want.to_bits(), spelled_out(&a, &b).to_bits(), "n={n}");
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
    fn strided_dots_match_dot() {
        for n in [16, 64, 100, 256, 272, 528] {
            let x = data(n, 7);
            let stride = n + 24;
            let mut rows = data(11 * stride, 8);
            // A row that sums to zero exactly (the sign of a zero result is
            // the tree's) and one with signed zeros only.
            rows[3 * stride..3 * stride + n]
                .copy_from_slice(&x.iter().map(|_| 0.0).collect::<Vec<_>>());
            rows[6 * stride..6 * stride + n]
                .copy_from_slice(&x.iter().map(|_| -0.0).collect::<Vec<_>>());
            for isa in Isa::available() {
                let mut out = [0f32; 11];
                dots_strided(isa, &x, &rows, stride, &mut out);
                for (i, o) in out.iter().enumerate() {
                    let want = dot(Isa::Scalar, &x, &rows[i * stride..i * stride + n]);
                    assert_eq!(o.to_bits(), want.to_bits(), "{isa} n={n} row {i}");
                }
            }
        }
    }

    #[test]
    fn accumulation_cut_at_runs_matches_one_call() {
        let a = data(1000, 3);
        let b = data(1000, 4);
        for isa in Isa::available() {
            let mut acc = [0f64; LANES];
            for (ca, cb) in a.chunks(2 * RUN).zip(b.chunks(2 * RUN)) {
                accumulate(isa, &mut acc, ca, cb);
            }
            assert_eq!(reduce(&acc).to_bits(), dot(isa, &a, &b).to_bits());
        }
    }

    #[test]
    fn the_tail_is_exact_and_runs_are_f32() {
        // In the tail (fewer than 16 elements) products beyond the f32 range
        // are exact in f64 and cancel in the tree (lanes 0 and 2 meet at its
        // third level), leaving 2 · 0.5.
        let a = [3e30f32, 2.0, -3e30];
        let b = [2e30f32, 0.5, 2e30];
        for isa in Isa::available() {
            assert_eq!(dot(isa, &a, &b), 1.0, "{isa}");
        }
        // In a run, the same product overflows f32, as in any f32 engine.
        let mut a = [0f32; 32];
        let mut b = [0f32; 32];
        (a[0], b[0]) = (3e30, 2e30);
        (a[16], b[16]) = (-3e30, 2e30);
        for isa in Isa::available() {
            assert!(!dot(isa, &a, &b).is_finite(), "{isa}");
        }
        // A run rounds in f32: 1 + 2^-30 in one lane of one run is 1.
        let mut a = [0f32; 32];
        let mut b = [0f32; 32];
        (a[0], b[0]) = (1.0, 1.0);
        (a[16], b[16]) = (2f32.powi(-30), 1.0);
        (a[1], b[1]) = (-1.0, 1.0);
        for isa in Isa::available() {
            assert_eq!(dot(isa, &a, &b), 0.0, "{isa}");
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
        // u32·|result| for the final rounding, γ16(u32)·Σ|ab| for the runs,
        // (16 + 6) u64·Σ|ab| for the totals and the tree (plus the naive f64
        // sum's own error, (4096 u64)·Σ|ab|).
        let u32_ = f32::EPSILON as f64 / 2.0;
        let bound = exact.abs() * u32_
            + (16.0 * u32_ / (1.0 - 16.0 * u32_) + (22.0 + 4096.0) * f64::EPSILON / 2.0) * abs;
        assert!((got - exact).abs() <= bound, "{got} vs {exact}");
    }
}
