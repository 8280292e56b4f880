//! The one reduction order every dot product in the engine uses.
//!
//! Sixteen lanes: element `k` of a dot product is added to lane `k % 16` with a
//! fused multiply-add, lanes scanning `k` in increasing order; at the end the
//! lanes are summed by a fixed tree (`lane i + lane i+8`, then `+4`, `+2`,
//! `+1`). The AVX-512 path holds the lanes in one register, the AVX2 path in
//! two, the scalar path in an array: all three give identical bits, and so do
//! the one-row (decode) and many-row (prefill) kernels built on them.

use super::Isa;

pub const LANES: usize = 16;

/// Running lane sums of one dot product.
pub type Acc = [f32; LANES];

/// Sums the lanes with the fixed tree.
#[inline]
pub fn reduce(acc: &Acc) -> f32 {
    let mut s8 = [0f32; 8];
    for i in 0..8 {
        s8[i] = acc[i] + acc[i + 8];
    }
    let s4 = [s8[0] + s8[4], s8[1] + s8[5], s8[2] + s8[6], s8[3] + s8[7]];
    let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
    s2[0] + s2[1]
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
        acc[k % LANES] = a[k].mul_add(b[k], acc[k % LANES]);
    }
}

/// Adds `a[i] · b` into `acc[i]` for four rows `a` sharing one vector `b`
/// (four independent chains, so the FMA latency is hidden). Same bits as four
/// calls of [`accumulate`].
#[inline]
pub fn accumulate4(isa: Isa, acc: &mut [Acc; 4], a: [&[f32]; 4], b: &[f32]) {
    for r in a {
        assert_eq!(r.len(), b.len());
    }
    let n = b.len();
    let main = n - n % LANES;
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::Avx512 only when supported; lengths checked above.
        Isa::Avx512 => unsafe { x86::acc4_avx512(acc, a, b, main) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::Avx2 only when supported; lengths checked above.
        Isa::Avx2 => unsafe { x86::acc4_avx2(acc, a, b, main) },
        _ => {
            for (acc, a) in acc.iter_mut().zip(a) {
                acc1_scalar(acc, &a[..main], &b[..main]);
            }
        }
    }
    for (acc, a) in acc.iter_mut().zip(a) {
        for k in main..n {
            acc[k % LANES] = a[k].mul_add(b[k], acc[k % LANES]);
        }
    }
}

/// A whole dot product in the engine's order.
#[inline]
pub fn dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    accumulate(isa, &mut acc, a, b);
    reduce(&acc)
}

fn acc1_scalar(acc: &mut Acc, a: &[f32], b: &[f32]) {
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] = ca[l].mul_add(cb[l], acc[l]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Acc, LANES};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn acc1_avx512(acc: &mut Acc, a: &[f32], b: &[f32]) {
        let mut v = _mm512_loadu_ps(acc.as_ptr());
        let mut i = 0;
        while i < a.len() {
            v = _mm512_fmadd_ps(
                _mm512_loadu_ps(a.as_ptr().add(i)),
                _mm512_loadu_ps(b.as_ptr().add(i)),
                v,
            );
            i += LANES;
        }
        _mm512_storeu_ps(acc.as_mut_ptr(), v);
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn acc1_avx2(acc: &mut Acc, a: &[f32], b: &[f32]) {
        let mut lo = _mm256_loadu_ps(acc.as_ptr());
        let mut hi = _mm256_loadu_ps(acc.as_ptr().add(8));
        let mut i = 0;
        while i < a.len() {
            lo = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(i)),
                _mm256_loadu_ps(b.as_ptr().add(i)),
                lo,
            );
            hi = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(i + 8)),
                _mm256_loadu_ps(b.as_ptr().add(i + 8)),
                hi,
            );
            i += LANES;
        }
        _mm256_storeu_ps(acc.as_mut_ptr(), lo);
        _mm256_storeu_ps(acc.as_mut_ptr().add(8), hi);
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn acc4_avx512(acc: &mut [Acc; 4], a: [&[f32]; 4], b: &[f32], main: usize) {
        let mut v0 = _mm512_loadu_ps(acc[0].as_ptr());
        let mut v1 = _mm512_loadu_ps(acc[1].as_ptr());
        let mut v2 = _mm512_loadu_ps(acc[2].as_ptr());
        let mut v3 = _mm512_loadu_ps(acc[3].as_ptr());
        let mut i = 0;
        while i < main {
            let x = _mm512_loadu_ps(b.as_ptr().add(i));
            v0 = _mm512_fmadd_ps(_mm512_loadu_ps(a[0].as_ptr().add(i)), x, v0);
            v1 = _mm512_fmadd_ps(_mm512_loadu_ps(a[1].as_ptr().add(i)), x, v1);
            v2 = _mm512_fmadd_ps(_mm512_loadu_ps(a[2].as_ptr().add(i)), x, v2);
            v3 = _mm512_fmadd_ps(_mm512_loadu_ps(a[3].as_ptr().add(i)), x, v3);
            i += LANES;
        }
        _mm512_storeu_ps(acc[0].as_mut_ptr(), v0);
        _mm512_storeu_ps(acc[1].as_mut_ptr(), v1);
        _mm512_storeu_ps(acc[2].as_mut_ptr(), v2);
        _mm512_storeu_ps(acc[3].as_mut_ptr(), v3);
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn acc4_avx2(acc: &mut [Acc; 4], a: [&[f32]; 4], b: &[f32], main: usize) {
        let mut lo = [_mm256_setzero_ps(); 4];
        let mut hi = [_mm256_setzero_ps(); 4];
        for r in 0..4 {
            lo[r] = _mm256_loadu_ps(acc[r].as_ptr());
            hi[r] = _mm256_loadu_ps(acc[r].as_ptr().add(8));
        }
        let mut i = 0;
        while i < main {
            let xl = _mm256_loadu_ps(b.as_ptr().add(i));
            let xh = _mm256_loadu_ps(b.as_ptr().add(i + 8));
            for r in 0..4 {
                lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(a[r].as_ptr().add(i)), xl, lo[r]);
                hi[r] = _mm256_fmadd_ps(_mm256_loadu_ps(a[r].as_ptr().add(i + 8)), xh, hi[r]);
            }
            i += LANES;
        }
        for r in 0..4 {
            _mm256_storeu_ps(acc[r].as_mut_ptr(), lo[r]);
            _mm256_storeu_ps(acc[r].as_mut_ptr().add(8), hi[r]);
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

    #[test]
    fn every_path_gives_the_same_bits() {
        for n in [0, 1, 15, 16, 17, 64, 100, 576, 1537] {
            let a = data(n, 1);
            let b = data(n, 2);
            let want = dot(Isa::Scalar, &a, &b);
            for isa in Isa::available() {
                assert_eq!(dot(isa, &a, &b).to_bits(), want.to_bits(), "{isa} n={n}");
                let rows: Vec<Vec<f32>> = (0..4).map(|r| data(n, 10 + r)).collect();
                let mut acc = [[0f32; LANES]; 4];
                accumulate4(isa, &mut acc, [&rows[0], &rows[1], &rows[2], &rows[3]], &b);
                for r in 0..4 {
                    assert_eq!(reduce(&acc[r]).to_bits(), dot(Isa::Scalar, &rows[r], &b).to_bits());
                }
            }
        }
    }

    #[test]
    fn chunked_accumulation_matches_one_call() {
        let a = data(512, 3);
        let b = data(512, 4);
        for isa in Isa::available() {
            let mut acc = [0f32; LANES];
            for (ca, cb) in a.chunks(32).zip(b.chunks(32)) {
                accumulate(isa, &mut acc, ca, cb);
            }
            assert_eq!(reduce(&acc).to_bits(), dot(isa, &a, &b).to_bits());
        }
    }

    #[test]
    fn dot_is_close_to_exact() {
        let a = data(4096, 5);
        let b = data(4096, 6);
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let abs: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
        let got = dot(Isa::detect(), &a, &b) as f64;
        // Each lane sums 256 terms: the error is bounded by ~ (256 + 4) eps * sum|ab|.
        assert!((got - exact).abs() <= 260.0 * f32::EPSILON as f64 * abs, "{got} vs {exact}");
    }
}
