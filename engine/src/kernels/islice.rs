//! Exact quantized dot products on the integer units: the input vector is
//! cut into `S` signed 8-bit slices per block of 32 elements, and every
//! product of a stored quant with a slice is summed exactly in `i32`.
//!
//! # The arithmetic
//!
//! **Slicing** (once per input vector, [`Sliced::new`], in `f64`, so every
//! ISA slices identically): block `b` (32 elements) gets the power of two
//! `s_b = 2^e_b`, the smallest with `max|x_k| / s_b <= 127`. With
//! `t = x_k / s_b` (exact), `a_k = round(t)` (ties to even) and the residual
//! `r = t − a_k` (exact, `|r| <= 1/2`), each further slice is
//! `round(128·r)` (in `[−64, 64]`) with the new residual `128·r − slice`
//! (exact). So `x_k = s_b·(a_k + b_k 2⁻⁷ + c_k 2⁻¹⁴ [+ d_k 2⁻²¹]) + ε_k`
//! with `|ε_k| <= s_b·2^−(7(S−1)+1)`.
//!
//! **Integer sums.** Element `k` of a block goes to lane `j = (k % 16) / 4`
//! (lane `j` holds elements `4j..4j+4` and `16+4j..16+4j+4`). For a group
//! of stored quants `q_k` (unsigned, as stored) the lane sum
//! `P_j = Σ q_k·v_k`, with the combined slice `v_k = Σ_s slice_s·2^{7(S−1−s)}`,
//! is an exact integer (computed on AVX2 with `vpmaddubsw`, which cannot
//! saturate here, and `vpmaddwd`).
//!
//! **One `f64` order.** A weight of the group is `w_k = D·q_k + M` (`D`, `M`
//! exact `f32` values of the type's scales: Q4_1 `d`, `m`; Q4_K `d·sc`,
//! `−dmin·m`). Four `f64` lanes start at zero; for each block, in
//! increasing order, lane `j` takes `acc_j = fma(P_j, D·σ_b, acc_j)` and
//! then (types with `M`) `acc_j = fma(σ_b·L_j, M, acc_j)`, where
//! `σ_b = s_b·2^{−7(S−1)}` and `L_j = Σ v_k` over the lane (both products'
//! operands are exact). The lanes are summed `(0 + 2) + (1 + 3)` in `f64`
//! and rounded once to `f32`. Scalar and AVX2 follow exactly this order.
//! (The mins go to their own four lanes: group `g` into lane `g % 4`,
//! `min_l = fma(M_g, σ_g·T_g, min_l)` with `T_g = Σ v_k` over the block;
//! the lanes are `acc_l + min_l` before the tree.)
//!
//! # Error
//!
//! Against `Σ w_k x_k` with `w_k` the `f32` weights of `dequant.rs`:
//! `|x_k − x̃_k| <= s_b·2^{−7(S−1)−1}`, so the slicing costs at most
//! `Σ_b s_b 2^{−7(S−1)−1} Σ_{k∈b} |w_k|`; the exact `D q + M` differs from
//! the `f32` weight by at most `u₃₂|w_k|` (only types with a min round
//! there); the `f64` steps add `γ_{⌈nb/4⌉+4}(u₆₄)` times the sum of the
//! magnitudes of the terms; the final rounding `u₃₂·|result|`.
//! Since `s_b <= max_b|x|·2/127`, the slicing term is at most
//! `2^{−7(S−1)}/127 · max_b|x| · Σ|w|` per block: `≈ 2⁻²¹·max|x|·Σ|w|` for
//! three slices and `≈ 2⁻²⁸·max|x|·Σ|w|` for four. Today's `f32` runs charge
//! `γ₁₆(u₃₂)·Σ|w_k x_k| ≈ 2⁻²⁰·Σ|w_k x_k|`: three slices lose to it as soon
//! as a block's elements are much smaller than its largest (activation
//! outliers); four slices win unless a block's `Σ|w x|` is below `2⁻⁸` of
//! `max|x|·Σ|w|`.
//!
//! # Status: a measured prototype (not wired into matvec/matmul)
//!
//! `benches/benches/islice.rs` (one thread, 8192 × 2048 and 2048 × 8192,
//! the same synthetic rows for both routes). Error relative to `Σ|w x|`
//! over 512 rows, K = 2048, activations with a ×40 outlier every 97
//! elements: f32 runs max 3.6e-8 (Q4_1) / 4.7e-8 (Q4_K); three slices
//! 3.6e-7 / 8.1e-7 (10–17× worse); four slices 1.5e-8 / 1.3e-8. So only
//! four slices keep the drift. Instructions per 8192 × 2048 product
//! (callgrind, AVX2, 4 rows per call, slicing included): Q4_1 f32 runs
//! 18.6 M, three slices 13.7 M, four slices 16.9 M (−9%); Q4_K 23.6 M,
//! 14.2 M, 18.0 M (−24%). Wall time on the shared 2-core EPYC (load 10–12)
//! was within noise for Q4_1 and 5–20% faster for Q4_K. On AVX2 the
//! integer route with four slices pays little: `vpmaddubsw` + `vpmaddwd` +
//! the lane fold cost about what the `f32` decode and FMAs cost; AVX-512
//! VNNI's `vpdpbusd` (both steps and the add in one, 64 bytes wide) is
//! where it should pay.

use super::Isa;
use crate::formats::dequant;

/// Elements per slicing block.
pub const BLOCK: usize = 32;

/// An input vector cut into `S` 8-bit slices per block of 32.
#[derive(Clone, Debug)]
pub struct Sliced<const S: usize> {
    pub n: usize,
    /// Every element finite (otherwise the slices are meaningless and callers
    /// take the float route).
    pub finite: bool,
    /// Per block, `S` runs of 32 slices (slice `s` of element `k` at
    /// `32·s + k`).
    pub q: Vec<i8>,
    /// Per block, `σ_b = s_b·2^{−7(S−1)}`.
    pub sigma: Vec<f64>,
    /// Per block, `σ_b·T_b` with `T_b = Σ_k v_k` (exact).
    pub tsum: Vec<f64>,
}

/// `2^e` as `f64` (`e` within the normal range).
fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

impl<const S: usize> Sliced<S> {
    /// Slices `x` (its length a multiple of 32).
    pub fn new(x: &[f32]) -> Self {
        assert!(x.len().is_multiple_of(BLOCK), "sliced length");
        let nb = x.len() / BLOCK;
        let mut out = Sliced {
            n: x.len(),
            finite: x.iter().all(|v| v.is_finite()),
            q: vec![0; nb * BLOCK * S],
            sigma: vec![0.0; nb],
            tsum: vec![0.0; nb],
        };
        if !out.finite {
            return out;
        }
        for (b, xb) in x.chunks_exact(BLOCK).enumerate() {
            let mx = xb.iter().fold(0f64, |m, v| m.max((*v as f64).abs()));
            // The smallest e with mx <= 127·2^e.
            let e = if mx == 0.0 {
                0
            } else {
                let e0 = ((mx.to_bits() >> 52) & 0x7FF) as i32 - 1023 - 6;
                if mx > 127.0 * pow2(e0) {
                    e0 + 1
                } else {
                    e0
                }
            };
            let inv = pow2(-e);
            let q = &mut out.q[b * BLOCK * S..(b + 1) * BLOCK * S];
            let mut t = 0i64;
            for (k, &xk) in xb.iter().enumerate() {
                let mut r = xk as f64 * inv;
                let mut v = 0i64;
                for s in 0..S {
                    let u = if s == 0 { r } else { r * 128.0 };
                    let a = u.round_ties_even();
                    r = u - a;
                    q[BLOCK * s + k] = a as i8;
                    v = v * 128 + a as i64;
                }
                t += v;
            }
            let sigma = pow2(e - 7 * (S as i32 - 1));
            out.sigma[b] = sigma;
            out.tsum[b] = t as f64 * sigma;
        }
        out
    }

    /// The combined slice `v_k` of element `k` of block `b`.
    #[inline]
    fn v(&self, b: usize, k: usize) -> i64 {
        let q = &self.q[b * BLOCK * S..];
        (0..S).fold(0i64, |acc, s| acc * 128 + q[BLOCK * s + k] as i64)
    }
}

/// Lane totals `acc[l] + min[l]`, summed `(0 + 2) + (1 + 3)` and rounded
/// to `f32`.
#[inline]
fn reduce4(acc: &[f64; 4], min: &[f64; 4]) -> f32 {
    let t: [f64; 4] = std::array::from_fn(|l| acc[l] + min[l]);
    ((t[0] + t[2]) + (t[1] + t[3])) as f32
}

/// One group `g` of 32 quants (`q`, unsigned) against block `g` of `x`,
/// scalar: `acc[j] = fma(P_j, D·σ, acc[j])`, `min[g % 4] = fma(M, σT, ..)`.
#[inline]
fn group_scalar<const S: usize>(
    acc: &mut [f64; 4],
    min: &mut [f64; 4],
    x: &Sliced<S>,
    g: usize,
    q: &[u8; BLOCK],
    d: f32,
    m: f32,
) {
    let ds = d as f64 * x.sigma[g];
    for (j, a) in acc.iter_mut().enumerate() {
        let p: i64 = (0..4)
            .map(|i| {
                let (k0, k1) = (4 * j + i, 16 + 4 * j + i);
                q[k0] as i64 * x.v(g, k0) + q[k1] as i64 * x.v(g, k1)
            })
            .sum();
        *a = (p as f64).mul_add(ds, *a);
    }
    min[g % 4] = (m as f64).mul_add(x.tsum[g], min[g % 4]);
}

fn f16(b: &[u8], at: usize) -> f32 {
    dequant::f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Q4_1 row · x, scalar.
pub fn q4_1_scalar<const S: usize>(row: &[u8], x: &Sliced<S>) -> f32 {
    let (mut acc, mut min) = ([0f64; 4], [0f64; 4]);
    for (b, blk) in row.chunks_exact(dequant::Q4_1_BYTES).enumerate() {
        let mut q = [0u8; BLOCK];
        for j in 0..16 {
            q[j] = blk[4 + j] & 15;
            q[16 + j] = blk[4 + j] >> 4;
        }
        group_scalar(&mut acc, &mut min, x, b, &q, f16(blk, 0), f16(blk, 2));
    }
    reduce4(&acc, &min)
}

/// The 6-bit scales (bytes 0..8) and mins (8..16) of a Q4_K/Q5_K block's
/// 12 scale bytes, as [`dequant::q4k_scale_min`] spells them, with 32-bit
/// word operations.
#[inline(always)]
fn q4k_scale_bytes(s: &[u8]) -> (u64, u64) {
    let w = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (w0, w1, w2) = (w(0), w(1), w(2));
    let (lo6, lo4, two) = (0x3F3F_3F3Fu32, 0x0F0F_0F0Fu32, 0x0303_0303u32);
    let sc_lo = w0 & lo6;
    let m_lo = w1 & lo6;
    let sc_hi = (w2 & lo4) | (((w0 >> 6) & two) << 4);
    let m_hi = ((w2 >> 4) & lo4) | (((w1 >> 6) & two) << 4);
    (
        sc_lo as u64 | (sc_hi as u64) << 32,
        m_lo as u64 | (m_hi as u64) << 32,
    )
}

/// The eight `(d·sc, −dmin·m)` of a Q4_K block (exact `f32` products).
fn q4k_dm(blk: &[u8]) -> [(f32, f32); 8] {
    let (d, dmin) = (f16(blk, 0), f16(blk, 2));
    let (sc, m) = q4k_scale_bytes(&blk[4..16]);
    std::array::from_fn(|j| {
        let (sc, m) = ((sc >> (8 * j)) as u8, (m >> (8 * j)) as u8);
        (d * f32::from(sc), -(dmin * f32::from(m)))
    })
}

/// Q4_K row · x, scalar.
pub fn q4k_scalar<const S: usize>(row: &[u8], x: &Sliced<S>) -> f32 {
    let (mut acc, mut min) = ([0f64; 4], [0f64; 4]);
    for (sb, blk) in row.chunks_exact(dequant::Q4_K_BYTES).enumerate() {
        let dm = q4k_dm(blk);
        for (j, &(d, m)) in dm.iter().enumerate() {
            let bytes = &blk[16 + 32 * (j / 2)..16 + 32 * (j / 2) + 32];
            let q: [u8; BLOCK] = std::array::from_fn(|l| (bytes[l] >> (4 * (j % 2))) & 15);
            group_scalar(&mut acc, &mut min, x, 8 * sb + j, &q, d, m);
        }
    }
    reduce4(&acc, &min)
}

/// `R` rows of Q4_1 or Q4_K (`ty`) · x on `isa`.
pub fn dot_rows<const S: usize, const R: usize>(
    isa: Isa,
    ty: crate::formats::ggml_type::GgmlType,
    rows: [&[u8]; R],
    x: &Sliced<S>,
) -> [f32; R] {
    use crate::formats::ggml_type::GgmlType as T;
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) {
        let p = rows.map(|r| r.as_ptr());
        // SAFETY: the CPU runs AVX2 (Isa::available); rows hold n elements.
        return unsafe {
            match ty {
                T::Q4_1 => x86::q4_1::<S, R>(p, x),
                T::Q4K => x86::q4k::<S, R>(p, x),
                _ => unimplemented!(),
            }
        };
    }
    rows.map(|r| match ty {
        T::Q4_1 => q4_1_scalar(r, x),
        T::Q4K => q4k_scalar(r, x),
        _ => unimplemented!(),
    })
}

#[cfg(target_arch = "x86_64")]
// The kernels index parallel per-row arrays (`p[r]`, `ds[r]`, ...) by row.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use super::{Sliced, BLOCK};
    use crate::formats::dequant;
    use std::arch::x86_64::*;

    /// The four lane sums `P_j` (exact) of 32 unsigned quants `q` with the
    /// slices `sl`, as `f64`.
    #[inline(always)]
    unsafe fn lanes<const S: usize>(q: __m256i, sl: &[__m256i; S]) -> __m256d {
        let fold =
            |v: __m256i| _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let ones = _mm256_set1_epi16(1);
        let c7 = _mm256_set1_epi16(128);
        if S == 3 {
            let a = _mm256_madd_epi16(_mm256_maddubs_epi16(q, sl[0]), _mm256_set1_epi16(1 << 14));
            let b = _mm256_madd_epi16(_mm256_maddubs_epi16(q, sl[1]), c7);
            let c = _mm256_madd_epi16(_mm256_maddubs_epi16(q, sl[2]), ones);
            _mm256_cvtepi32_pd(fold(_mm256_add_epi32(_mm256_add_epi32(a, b), c)))
        } else {
            let a = _mm256_madd_epi16(_mm256_maddubs_epi16(q, sl[0]), c7);
            let b = _mm256_madd_epi16(_mm256_maddubs_epi16(q, sl[1]), ones);
            let c = _mm256_madd_epi16(_mm256_maddubs_epi16(q, sl[2]), c7);
            let d = _mm256_madd_epi16(_mm256_maddubs_epi16(q, sl[3]), ones);
            let hi = _mm256_cvtepi32_pd(fold(_mm256_add_epi32(a, b)));
            let lo = _mm256_cvtepi32_pd(fold(_mm256_add_epi32(c, d)));
            _mm256_fmadd_pd(hi, _mm256_set1_pd(16384.0), lo)
        }
    }

    #[inline(always)]
    unsafe fn slices<const S: usize>(x: &Sliced<S>, b: usize) -> [__m256i; S] {
        let p = x.q.as_ptr().add(b * BLOCK * S);
        std::array::from_fn(|s| _mm256_loadu_si256(p.add(BLOCK * s) as *const __m256i))
    }

    #[inline(always)]
    unsafe fn reduce(acc: __m256d, min: __m256d) -> f32 {
        let v = _mm256_add_pd(acc, min);
        let s2 = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
        let s1 = _mm_add_sd(s2, _mm_unpackhi_pd(s2, s2));
        _mm_cvtsd_f64(s1) as f32
    }

    /// One Q4_1 block's 32 quants.
    #[inline(always)]
    unsafe fn q4_1_quants(blk: *const u8) -> __m256i {
        let v = _mm_loadu_si128(blk.add(4) as *const __m128i);
        _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16::<4>(v), v),
            _mm256_set1_epi8(15),
        )
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q4_1<const S: usize, const R: usize>(
        p: [*const u8; R],
        x: &Sliced<S>,
    ) -> [f32; R] {
        const B: usize = dequant::Q4_1_BYTES;
        let nb = x.n / BLOCK;
        let mut acc = [_mm256_setzero_pd(); R];
        let mut min = [_mm256_setzero_pd(); R];
        let mut b = 0;
        // Four blocks at a time: their (d, m) widened together, the mins as
        // one fma into lanes 0..4.
        while b + 4 <= nb {
            let sig = _mm256_loadu_pd(x.sigma.as_ptr().add(b));
            let ts = _mm256_loadu_pd(x.tsum.as_ptr().add(b));
            let mut ds = [[0f64; 4]; R];
            for r in 0..R {
                let w = |i: usize| (p[r].add((b + i) * B) as *const i32).read_unaligned();
                let dm = _mm256_cvtph_ps(_mm_set_epi32(w(3), w(2), w(1), w(0)));
                let dm = _mm256_permutevar8x32_ps(dm, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
                let d = _mm256_cvtps_pd(_mm256_castps256_ps128(dm));
                let m = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(dm));
                _mm256_storeu_pd(ds[r].as_mut_ptr(), _mm256_mul_pd(d, sig));
                min[r] = _mm256_fmadd_pd(m, ts, min[r]);
            }
            for i in 0..4 {
                let sl = slices(x, b + i);
                for r in 0..R {
                    let pj = lanes::<S>(q4_1_quants(p[r].add((b + i) * B)), &sl);
                    acc[r] = _mm256_fmadd_pd(pj, _mm256_broadcast_sd(&ds[r][i]), acc[r]);
                }
            }
            b += 4;
        }
        let mut mins = [[0f64; 4]; R];
        for r in 0..R {
            _mm256_storeu_pd(mins[r].as_mut_ptr(), min[r]);
        }
        while b < nb {
            let sl = slices(x, b);
            for r in 0..R {
                let blk = p[r].add(b * B);
                let pj = lanes::<S>(q4_1_quants(blk), &sl);
                let s = std::slice::from_raw_parts(blk, 4);
                let ds = super::f16(s, 0) as f64 * x.sigma[b];
                acc[r] = _mm256_fmadd_pd(pj, _mm256_set1_pd(ds), acc[r]);
                mins[r][b % 4] = (super::f16(s, 2) as f64).mul_add(x.tsum[b], mins[r][b % 4]);
            }
            b += 1;
        }
        std::array::from_fn(|r| reduce(acc[r], _mm256_loadu_pd(mins[r].as_ptr())))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q4k<const S: usize, const R: usize>(
        p: [*const u8; R],
        x: &Sliced<S>,
    ) -> [f32; R] {
        const B: usize = dequant::Q4_K_BYTES;
        let nsb = x.n / 256;
        let mut acc = [_mm256_setzero_pd(); R];
        let mut min = [_mm256_setzero_pd(); R];
        for sb in 0..nsb {
            let g0 = 8 * sb;
            let sig = [
                _mm256_loadu_pd(x.sigma.as_ptr().add(g0)),
                _mm256_loadu_pd(x.sigma.as_ptr().add(g0 + 4)),
            ];
            let ts = [
                _mm256_loadu_pd(x.tsum.as_ptr().add(g0)),
                _mm256_loadu_pd(x.tsum.as_ptr().add(g0 + 4)),
            ];
            let mut ds = [[0f64; 8]; R];
            for r in 0..R {
                let blk = p[r].add(sb * B);
                let s = std::slice::from_raw_parts(blk, 16);
                let (sc, m) = super::q4k_scale_bytes(&s[4..16]);
                let dd = _mm_cvtph_ps(_mm_cvtsi32_si128((blk as *const i32).read_unaligned()));
                let d = _mm256_broadcastss_ps(dd);
                let dmin = _mm256_broadcastss_ps(_mm_shuffle_ps::<0x55>(dd, dd));
                let to_f =
                    |v: u64| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v as i64)));
                let dsc = _mm256_mul_ps(d, to_f(sc));
                let mm = _mm256_xor_ps(_mm256_set1_ps(-0.0), _mm256_mul_ps(dmin, to_f(m)));
                for h in 0..2 {
                    let (dh, mh) = if h == 0 {
                        (_mm256_castps256_ps128(dsc), _mm256_castps256_ps128(mm))
                    } else {
                        (
                            _mm256_extractf128_ps::<1>(dsc),
                            _mm256_extractf128_ps::<1>(mm),
                        )
                    };
                    let dh = _mm256_mul_pd(_mm256_cvtps_pd(dh), sig[h]);
                    _mm256_storeu_pd(ds[r].as_mut_ptr().add(4 * h), dh);
                    min[r] = _mm256_fmadd_pd(_mm256_cvtps_pd(mh), ts[h], min[r]);
                }
            }
            for i in 0..4 {
                let sl0 = slices(x, g0 + 2 * i);
                let sl1 = slices(x, g0 + 2 * i + 1);
                for r in 0..R {
                    let v = _mm256_loadu_si256(p[r].add(sb * B + 16 + 32 * i) as *const __m256i);
                    let m4 = _mm256_set1_epi8(15);
                    let q0 = _mm256_and_si256(v, m4);
                    let q1 = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
                    let p0 = lanes::<S>(q0, &sl0);
                    acc[r] = _mm256_fmadd_pd(p0, _mm256_broadcast_sd(&ds[r][2 * i]), acc[r]);
                    let p1 = lanes::<S>(q1, &sl1);
                    acc[r] = _mm256_fmadd_pd(p1, _mm256_broadcast_sd(&ds[r][2 * i + 1]), acc[r]);
                }
            }
        }
        std::array::from_fn(|r| reduce(acc[r], min[r]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::ggml_type::GgmlType;
    use crate::kernels::qdot::tests::random_blocks;

    fn check<const S: usize>(ty: GgmlType) {
        let n = 512;
        let x: Vec<f32> = crate::kernels::test_data(n, 3);
        let xs = Sliced::<S>::new(&x);
        let rb = ty.row_bytes(n).unwrap();
        let blocks = random_blocks(ty, 8 * n / ty.block_elems(), 11);
        let rows: Vec<&[u8]> = blocks.chunks_exact(rb).collect();
        let mut w = vec![0f32; n];
        for r in &rows {
            dequant::dequantize_row(ty, r, &mut w).unwrap();
            let exact: f64 = w.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum();
            let abs: f64 = w
                .iter()
                .zip(&x)
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            let want = dot_rows::<S, 1>(Isa::Scalar, ty, [r], &xs)[0];
            assert!(
                ((want as f64) - exact).abs() <= 1e-5 * abs + 1e-30,
                "{ty}: {want} vs {exact}"
            );
            for isa in Isa::available() {
                let got = dot_rows::<S, 1>(isa, ty, [r], &xs)[0];
                assert_eq!(got.to_bits(), want.to_bits(), "{ty} {isa}");
            }
        }
        for isa in Isa::available() {
            let got = dot_rows::<S, 4>(isa, ty, [rows[0], rows[1], rows[2], rows[3]], &xs);
            for i in 0..4 {
                let want = dot_rows::<S, 1>(Isa::Scalar, ty, [rows[i]], &xs)[0];
                assert_eq!(got[i].to_bits(), want.to_bits(), "{ty} {isa} row {i}");
            }
        }
    }

    #[test]
    fn sliced_dots_agree_on_every_path() {
        check::<3>(GgmlType::Q4_1);
        check::<4>(GgmlType::Q4_1);
        check::<3>(GgmlType::Q4K);
        check::<4>(GgmlType::Q4K);
    }
}
