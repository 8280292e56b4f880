//! The engine's own `f64` exponential, used by the attention softmax. Every
//! path (scalar, AVX2+FMA; AVX-512 runs the AVX2 code) performs the same
//! sequence of correctly rounded `f64` operations, so `exp(x)` has the same
//! bits on every path, unlike the platform's libm, whose result is not tied to
//! any operation order and which has no vector form.
//!
//! The method, for `x` clamped to `[-746, 710]` (outside it the result is
//! `0` or `+inf` anyway):
//! 1. `n = round(x/ln 2)` to nearest, ties to even: `k = fma(x, 1/ln 2, 1.5·2^52)`,
//!    `n = k − 1.5·2^52` (exact; `|n| ≤ 1077`).
//! 2. `r = x − n·ln 2` with `ln 2 = LN2_HI + LN2_LO`: `LN2_HI` has 33 significant
//!    bits, so `n·LN2_HI` is exact and `r₁ = fma(−n, LN2_HI, x)` is exact (the
//!    difference is representable); `r = fma(−n, LN2_LO, r₁)` rounds once.
//!    `|r| ≤ ln 2/2` up to a hair.
//! 3. `p = e^r` by the degree-13 Taylor polynomial with coefficients `1/k!`
//!    rounded to f64, in Horner form, one fused multiply-add per degree; the
//!    last step is `fma(q₁, r, 1)`, so `x = 0` gives exactly 1.
//! 4. `y = (p·2^n₁)·2^n₂` with `n₁ = ⌊n/2⌋`, `n₂ = n − n₁`, each power of two
//!    built from its exponent bits. The first product is exact; the second is
//!    exact for normal results and rounds once, correctly, into the subnormal
//!    range (gradual underflow is kept: results below 2^-1022 are subnormal,
//!    and they round to +0 below 2^-1075, i.e. for `x < −745.13`), or
//!    overflows to `+inf`.
//!
//! NaN returns the input NaN; `−inf` gives `+0`, `+inf` gives `+inf`.
//!
//! **Bound**: at most 1 ULP of f64 for normal results (derived: ≤ 0.995 ULP:
//! 0.5 for the final rounding, ≤ 0.25 for the rounding of `r`, ≤ 0.18 for
//! Horner's rounding of `q₁` times `|r|`, ≤ 0.04 for the truncation after
//! `r^13`, ≤ 0.03 for the rest), and at most 1.5 times 2^-1074 absolute for
//! subnormal results (the ≤ 0.995 ULP above, then one more rounding into
//! the subnormal). The harness kernel suite checks it against MPFR.

use super::Isa;

/// 1/ln 2 rounded to f64.
const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// 1.5·2^52: adding it rounds a value below 2^51 in magnitude to an integer.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// ln 2 truncated to 33 significant bits (its bits end in 20 zeros).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fef0_0000);
/// ln 2 − LN2_HI rounded to f64 (the pair is within 1.4e-27 of ln 2).
const LN2_LO: f64 = f64::from_bits(0x3dd4_73de_6af2_78ed);
/// Clamp of the argument: e^-746 < 2^-1076 rounds to 0, e^710 overflows.
const LO: f64 = -746.0;
const HI: f64 = 710.0;
/// `1/k!` rounded to f64, `k = 13` down to `k = 1` (the `k = 0` term is the
/// literal 1 of the last Horner step).
const C: [f64; 13] = [
    1.605_904_383_682_161_3e-10,
    2.087_675_698_786_81e-9,
    2.505_210_838_544_172e-8,
    2.755_731_922_398_589e-7,
    2.755_731_922_398_589_3e-6,
    2.480_158_730_158_73e-5,
    1.984_126_984_126_984e-4,
    1.388_888_888_888_889e-3,
    8.333_333_333_333_333e-3,
    4.166_666_666_666_666_4e-2,
    1.666_666_666_666_666_6e-1,
    0.5,
    1.0,
];

/// `e^x`, the same bits as every vector path (see the module documentation).
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(LO, HI);
    let k = x.mul_add(INV_LN2, SHIFT);
    let n = k - SHIFT;
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    let mut q = C[0];
    for &c in &C[1..] {
        q = q.mul_add(r, c);
    }
    let p = q.mul_add(r, 1.0);
    let n1 = (n * 0.5).floor();
    let n2 = n - n1;
    p * pow2(n1) * pow2(n2)
}

/// `2^m` for an integer-valued `m` in `[-1022, 1023]`: the exponent field
/// `m + 1023` is the low bits of `m + 1023 + 1.5·2^52`.
fn pow2(m: f64) -> f64 {
    f64::from_bits((m + (SHIFT + 1023.0)).to_bits() << 52)
}

/// `xs[i] = e^(xs[i] − sub)` for every `i` (the subtraction rounds once, on
/// every path), the same bits as [`exp`] on each element.
pub fn exp_sub_in_place(isa: Isa, xs: &mut [f64], sub: f64) {
    let main = match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2 and Avx512 are only chosen when the CPU has AVX2 and
        // FMA (Isa::available); AVX-512 runs the AVX2 routine.
        Isa::Avx2 | Isa::Avx512 => unsafe { x86::exp_sub_avx2(xs, sub) },
        _ => 0,
    };
    for x in &mut xs[main..] {
        *x = exp(*x - sub);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    /// [`super::exp_sub_in_place`] on the first multiple of 4 elements, with
    /// the operations of [`super::exp`] in each lane; returns how many it did.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp_sub_avx2(xs: &mut [f64], sub: f64) -> usize {
        let main = xs.len() - xs.len() % 4;
        let s = _mm256_set1_pd(sub);
        let p = xs.as_mut_ptr();
        for i in (0..main).step_by(4) {
            let x = _mm256_sub_pd(_mm256_loadu_pd(p.add(i)), s);
            _mm256_storeu_pd(p.add(i), exp4(x));
        }
        main
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp4(x0: __m256d) -> __m256d {
        // max/min return their second operand for a NaN lane: a finite
        // value, replaced by the input NaN at the end.
        let x = _mm256_min_pd(_mm256_max_pd(x0, _mm256_set1_pd(LO)), _mm256_set1_pd(HI));
        let shift = _mm256_set1_pd(SHIFT);
        let k = _mm256_fmadd_pd(x, _mm256_set1_pd(INV_LN2), shift);
        let n = _mm256_sub_pd(k, shift);
        let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(LN2_HI), x);
        let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(LN2_LO), r);
        let mut q = _mm256_set1_pd(C[0]);
        for &c in &C[1..] {
            q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(c));
        }
        let pv = _mm256_fmadd_pd(q, r, _mm256_set1_pd(1.0));
        let n1 = _mm256_floor_pd(_mm256_mul_pd(n, _mm256_set1_pd(0.5)));
        let n2 = _mm256_sub_pd(n, n1);
        let y = _mm256_mul_pd(_mm256_mul_pd(pv, pow2(n1)), pow2(n2));
        let nan = _mm256_cmp_pd::<_CMP_UNORD_Q>(x0, x0);
        _mm256_blendv_pd(y, x0, nan)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pow2(m: __m256d) -> __m256d {
        let b = _mm256_add_pd(m, _mm256_set1_pd(SHIFT + 1023.0));
        _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_castpd_si256(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arguments that exercise every branch: zeros, NaNs, infinities, the
    /// clamps, the overflow and underflow edges, subnormal results, ties of
    /// `x/ln 2` near half-integers, and random values over the whole range.
    fn inputs() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            -745.0,
            -745.133_219_101_941_1,
            -745.2,
            -746.0,
            -800.0,
            -708.39,
            -708.4,
            -709.0,
            -744.44,
            709.78,
            709.79,
            710.0,
            1.0,
            -1.0,
            std::f64::consts::LN_2 / 2.0,
            -std::f64::consts::LN_2 / 2.0,
        ];
        for n in -1080i32..1030 {
            let c = n as f64 * std::f64::consts::LN_2;
            for d in [-1e-9, 0.0, 1e-9] {
                v.push(c + d);
                v.push(c + std::f64::consts::LN_2 / 2.0 + d);
            }
        }
        let mut rng = atenia_testkit::Rng::new(7);
        for _ in 0..20_000 {
            v.push(rng.range(-750.0, 10.0));
            v.push(rng.range(-1.0, 1.0));
            v.push(f64::from_bits(rng.next_u64()));
        }
        v
    }

    #[test]
    fn every_path_gives_the_same_bits() {
        let xs = inputs();
        // `x − 0` quiets a signalling NaN on every path, as `exp` sees it.
        let want: Vec<u64> = xs
            .iter()
            .map(|&x| exp(x - std::hint::black_box(0.0)).to_bits())
            .collect();
        for isa in Isa::available() {
            // Several offsets so that every input meets the vector body and
            // the scalar tail.
            for off in 0..4 {
                let mut got = xs[off..].to_vec();
                exp_sub_in_place(isa, &mut got, 0.0);
                for (i, g) in got.iter().enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        want[off + i],
                        "{isa}: exp({:e}) = {g:e}",
                        xs[off + i]
                    );
                }
            }
        }
    }

    #[test]
    fn edge_values() {
        assert_eq!(exp(0.0).to_bits(), 1f64.to_bits());
        assert_eq!(exp(-0.0).to_bits(), 1f64.to_bits());
        assert_eq!(exp(f64::NEG_INFINITY).to_bits(), 0);
        assert_eq!(exp(-745.2).to_bits(), 0);
        assert_eq!(exp(-745.0).to_bits(), 1, "e^-745 rounds to 2^-1074");
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(1.0), std::f64::consts::E);
        let a = exp(-708.0);
        assert!(a > 0.0 && a.is_normal());
        let s = exp(-720.0);
        assert!(s > 0.0 && !s.is_normal(), "subnormal results are kept");
    }

    /// Against libm over a wide range (libm is within 1 ULP on glibc; ours
    /// is too, so they differ by at most 2). The MPFR check is in the
    /// harness kernel suite.
    #[test]
    fn close_to_libm() {
        for x in inputs() {
            let (a, b) = (exp(x), x.exp());
            if b.is_nan() || b == 0.0 || b.is_infinite() || !b.is_normal() {
                continue;
            }
            let ulps = (a.to_bits() as i64 - b.to_bits() as i64).abs();
            assert!(ulps <= 2, "exp({x:e}) = {a:e}, libm {b:e}");
        }
    }
}
