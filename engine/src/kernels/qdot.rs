//! Fused dequantize-and-dot kernels, SIMD dequantization and the register
//! tiles of the prefill product.
//!
//! # Bits
//!
//! Every kernel here reproduces, bit for bit, "dequantize the row with
//! [`crate::formats::dequant`], then take the dot product in the order of
//! [`super::dot`]":
//!
//! * The weights are decoded in registers, 16 consecutive elements
//!   `16i .. 16i + 16` of a row at a time (one 16-lane `f32` vector), and
//!   fused-multiply-added in `f32` into the row's 16-lane run with the
//!   matching 16 inputs; every [`RUN`] elements (after every 16th vector of a
//!   row) the run is widened to `f64` (exact: two `vcvtps2pd` on AVX-512, four
//!   on AVX2) and added to the row's 16 `f64` totals, and the run restarts at
//!   zero. Element `k` therefore lands in lane `k % 16`, each lane scans `k`
//!   upwards in runs of 256 elements, and the final reduction is the shared
//!   tree in `f64` followed by one rounding to `f32`: exactly the order of
//!   [`super::dot::accumulate`].
//! * Each decoded weight equals the `f32` that `dequant.rs` produces. The
//!   per-(sub-)block scales (`d * sc`, `dmin * m`) are computed with the same
//!   single `f32` products. The per-element values are either
//!   - looked up in a 16- or 32-entry table (AVX-512 `vpermps`/masked
//!     `vpermps`) whose entries are computed exactly as `dequant.rs` spells
//!     them (`(d * q) + m`, `(dl * q) - ml`, `d * (q - 8)`, ...), so the
//!     lookup returns the very same `f32`; or
//!   - computed per element, where `(d * q) + m` becomes `fma(d, q, m)`: the
//!     product of an `f16`-derived scale and a small integer is exact in
//!     `f32` (`dequant.rs`, `products_are_exact`), so both round once at the
//!     sum and agree, signed zeros included.
//! * `f16` scales are widened with F16C (`vcvtph2ps`), which is exact for
//!   every finite `f16` and for infinities. (A NaN scale gives NaN weights
//!   either way; F16C quiets a signaling NaN where `dequant.rs` keeps it, so
//!   only NaN-ness is promised for blocks with NaN scales, as `dequant.rs`
//!   itself promises. The SIMD dequantization of F16 *weights* keeps the
//!   NaN bits exactly; see `x86::Sink::EXACT`.)
//!
//! The tests below check all of this for every type, on the real and random
//! blocks of `golden/dequant/`, on every path the CPU runs.
//!
//! # Paths
//!
//! AVX-512 (F, BW, VL, with F16C) and AVX2 (with FMA and F16C) share the
//! per-type decoders through the `x86::Simd` trait (one `__m512`, or two
//! `__m256`, per 16 `f32` lanes; two `__m512d`, or four `__m256d`, per 16
//! `f64` lanes). AVX-512 runs four rows per pass (8 accumulator registers of
//! 32); AVX2 runs a group of four rows as two passes of two (8 accumulator
//! registers of 16), since four rows' 16 accumulators would fill the register
//! file. The scalar path has no fused kernels: callers dequantize with
//! `dequant.rs` and use [`super::dot`] (see [`has_simd`]).

use super::dot::{accumulate, accumulate_tail, reduce, Acc, LANES};
use super::Isa;
use crate::formats::dequant;
use crate::formats::ggml_type::GgmlType;

/// Whether `isa` has the fused kernels of this module (every [`GgmlType`]).
/// When it does not (the scalar path), [`dot_rows`] and [`dequant_row`]
/// fall back to `dequant.rs` and [`super::dot`], allocating.
#[inline]
pub fn has_simd(isa: Isa) -> bool {
    cfg!(target_arch = "x86_64") && matches!(isa, Isa::Avx2 | Isa::Avx512)
}

/// The `R` dot products `rows[i] · x`, where `rows[i]` is one stored row of
/// type `ty` holding `x.len()` elements. Bit-identical to
/// `reduce(accumulate(dequantize_row(rows[i]), x))` on every path.
///
/// A convenience for one call; callers running many rows of one width use
/// [`RowDots`].
///
/// # Panics
/// When a row's byte length is not that of `x.len()` elements of `ty`.
pub fn dot_rows<const R: usize>(isa: Isa, ty: GgmlType, rows: [&[u8]; R], x: &[f32]) -> [f32; R] {
    RowDots::new(isa, ty, x.len()).dot(rows, x, &[])
}

/// Fused dot products with rows of one type and width: the per-width
/// arithmetic (block counts, prefetch stride) done once, for a caller that
/// runs many rows.
#[derive(Clone, Copy, Debug)]
pub struct RowDots {
    isa: Isa,
    ty: GgmlType,
    /// Elements and stored bytes of a row.
    n: usize,
    row_bytes: usize,
    /// Whole SIMD blocks of a row, and the elements they cover (the rest is
    /// the float types' tail).
    nb: usize,
    main: usize,
    /// Bytes of `next` prefetched per block: four rows over one row's blocks.
    pf_step: usize,
}

impl RowDots {
    /// # Panics
    /// When `n` is not a whole number of `ty` blocks.
    pub fn new(isa: Isa, ty: GgmlType, n: usize) -> RowDots {
        let row_bytes = ty
            .row_bytes(n)
            .expect("row length is a whole number of blocks");
        let (nb, main) = simd_blocks(ty, n);
        RowDots {
            isa,
            ty,
            n,
            row_bytes,
            nb,
            main,
            pf_step: 64 * (4 * row_bytes).div_ceil(64 * nb.max(1)),
        }
    }

    /// [`dot_rows`], prefetching `next` (the bytes the caller
    /// reads next, up to four rows' worth) into the cache while it runs. Rows of a few
    /// hundred bytes read four at a time are too short for the hardware
    /// prefetcher to pick up the streams; without this, decode runs far below
    /// memory bandwidth.
    ///
    /// # Panics
    /// When `x` or a row does not have this width.
    pub fn dot<const R: usize>(&self, rows: [&[u8]; R], x: &[f32], next: &[u8]) -> [f32; R] {
        let (isa, ty, n) = (self.isa, self.ty, self.n);
        assert_eq!(x.len(), n, "{ty}: input width");
        for r in &rows {
            assert_eq!(r.len(), self.row_bytes, "{ty}: row bytes for {n} elements");
        }
        let mut acc = [[0f64; LANES]; R];
        if !has_simd(isa) {
            let mut w = vec![0f32; n];
            for (a, r) in acc.iter_mut().zip(rows) {
                dequant::dequantize_row(ty, r, &mut w).expect("row size checked above");
                accumulate(Isa::Scalar, a, &w, x);
            }
            return acc.map(|a| reduce(&a));
        }
        #[cfg(target_arch = "x86_64")]
        {
            let (nb, main) = (self.nb, self.main);
            // SAFETY: has_simd(isa) and Isa values are only constructed for
            // CPUs that support them (Isa::available); every row holds `nb`
            // whole SIMD blocks followed by the float tail (checked above),
            // and `x` holds `nb * elems` elements. Prefetches stay inside
            // `next`.
            unsafe {
                let ptrs = rows.map(|r| r.as_ptr());
                let pf = x86::Prefetch {
                    at: next.as_ptr(),
                    end: next.as_ptr_range().end,
                    step: self.pf_step,
                };
                let mut out = x86::Out::<R> {
                    lanes: main < n,
                    acc: &mut acc,
                    sums: [0.0; R],
                };
                match isa {
                    Isa::Avx512 => x86::dot_avx512::<R>(ty, ptrs, nb, x.as_ptr(), pf, &mut out),
                    _ => x86::dot_avx2::<R>(ty, ptrs, nb, x.as_ptr(), pf, &mut out),
                }
                if !out.lanes {
                    return out.sums;
                }
            }
            float_tail(ty, rows, x, main, &mut acc);
        }
        acc.map(|a| reduce(&a))
    }
}

/// SIMD dequantization of one row: bit-identical to
/// [`dequant::dequantize_row`] for every input (NaNs included).
///
/// # Panics
/// When `src` is not the byte size of `dst.len()` elements of `ty`.
pub fn dequant_row(isa: Isa, ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    let n = dst.len();
    assert_eq!(
        Some(src.len()),
        ty.row_bytes(n),
        "{ty}: row bytes for {n} elements"
    );
    if !has_simd(isa) {
        dequant::dequantize_row(ty, src, dst).expect("row size checked above");
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (nb, main) = simd_blocks(ty, n);
        // SAFETY: as in dot_rows; `dst` holds `nb * elems` elements.
        unsafe {
            match isa {
                Isa::Avx512 => x86::dequant_avx512(ty, src.as_ptr(), nb, dst.as_mut_ptr()),
                _ => x86::dequant_avx2(ty, src.as_ptr(), nb, dst.as_mut_ptr()),
            }
        }
        if main < n {
            let at = ty.row_bytes(main).expect("whole elements");
            dequant::dequantize_row(ty, &src[at..], &mut dst[main..]).expect("tail size");
        }
    }
}

/// The `R × T` dot products `w[r] · x[t]` of `f32` rows and inputs (all the
/// same length), each in the order of [`super::dot`]: a register tile of the
/// prefill product.
/// Bit-identical to `R·T` calls of [`super::dot::dot`] on the `f32` values.
pub fn tile<const R: usize, const T: usize>(
    isa: Isa,
    w: [&[f32]; R],
    x: [&[f32]; T],
) -> [[f32; T]; R] {
    let n = x.first().map_or(0, |v| v.len());
    for v in &w {
        assert_eq!(v.len(), n, "tile rows of different lengths");
    }
    for v in &x {
        assert_eq!(v.len(), n, "tile rows of different lengths");
    }
    let mut acc = [[[0f64; LANES]; T]; R];
    let main = n - n % LANES;
    if has_simd(isa) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the path is supported (has_simd, Isa::available); all
        // slices hold `n >= main` elements.
        unsafe {
            let wp = w.map(|v| v.as_ptr());
            let xp = x.map(|v| v.as_ptr());
            let mut sums = [[0f32; T]; R];
            let lanes = (main < n).then_some(&mut acc);
            match isa {
                Isa::Avx512 => x86::tile_avx512::<R, T>(wp, xp, main, lanes, &mut sums),
                _ => x86::tile_avx2::<R, T>(wp, xp, main, lanes, &mut sums),
            }
            if main == n {
                return sums;
            }
        }
    } else {
        for (ar, wr) in acc.iter_mut().zip(w) {
            for (a, xt) in ar.iter_mut().zip(x) {
                accumulate(Isa::Scalar, a, &wr[..main], &xt[..main]);
            }
        }
    }
    for (ar, wr) in acc.iter_mut().zip(w) {
        for (a, xt) in ar.iter_mut().zip(x) {
            accumulate_tail(a, wr, xt, main);
        }
    }
    acc.map(|ar| ar.map(|a| reduce(&a)))
}

/// `(whole SIMD blocks, elements they cover)` of a row of `n` elements: the
/// quant types' own blocks, or 16-element runs of the float types (whose
/// remaining `n % 16` elements are the tail).
fn simd_blocks(ty: GgmlType, n: usize) -> (usize, usize) {
    let e = if ty.is_quantized() {
        ty.block_elems()
    } else {
        LANES
    };
    (n / e, n / e * e)
}

/// The last `n % 16` elements of float-type rows, as
/// [`super::dot::accumulate`] adds its tail: lane `k % 16`, one exact product
/// and one rounded add each.
#[cfg(target_arch = "x86_64")]
fn float_tail<const R: usize>(
    ty: GgmlType,
    rows: [&[u8]; R],
    x: &[f32],
    main: usize,
    acc: &mut [Acc; R],
) {
    let size = ty.block_bytes();
    let mut w = [0f32; LANES];
    for (a, r) in acc.iter_mut().zip(rows) {
        let tail = &mut w[..x.len() - main];
        dequant::dequantize_row(ty, &r[main * size..], tail).expect("tail size");
        for (i, &wk) in tail.iter().enumerate() {
            let k = main + i;
            a[k % LANES] += wk as f64 * x[k] as f64;
        }
    }
}

#[cfg(target_arch = "x86_64")]
// Decoders index parallel per-row arrays (`p[r]`, `t[r]`, ...) by row.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use super::{Acc, GgmlType, LANES};
    use crate::formats::dequant;
    use crate::kernels::dot::RUN;
    use std::arch::x86_64::*;

    // -----------------------------------------------------------------------
    // 16 lanes on either path

    /// Sixteen `f32` (and `i32`) lanes: one `__m512` on AVX-512, two `__m256`
    /// (lanes 0..8, 8..16) on AVX2; and sixteen `f64` lanes, `D`: two
    /// `__m512d` or four `__m256d` (lanes in order). Every
    /// method is `#[inline(always)]` and is only called from the
    /// `#[target_feature]` entry points below.
    pub trait Simd {
        type F: Copy;
        type I: Copy;
        /// Sixteen `f64` lanes.
        type D: Copy;
        /// Rows a fused dot product runs per pass: as many as their `f64`
        /// accumulators (`D` each) leave registers for the decoders.
        const PASS: usize;
        /// Whether `lut16`/`lutsel` are cheap (single permutes).
        const LUT: bool;
        unsafe fn dzero() -> Self::D;
        /// The 16 lanes of `v` widened to `f64` (exact).
        unsafe fn widen(v: Self::F) -> Self::D;
        /// Lane-wise `a + b` in `f64`.
        unsafe fn dadd(a: Self::D, b: Self::D) -> Self::D;
        /// 16 `f64` at `p`.
        unsafe fn dload(p: *const f64) -> Self::D;
        unsafe fn dstore(p: *mut f64, v: Self::D);
        /// The 16 lanes summed by the tree of `dot::reduce` (in `f64`), bit
        /// for bit, and rounded once to `f32`.
        unsafe fn dhsum(v: Self::D) -> f32;
        unsafe fn zero() -> Self::F;
        unsafe fn splat(v: f32) -> Self::F;
        unsafe fn load(p: *const f32) -> Self::F;
        unsafe fn store(p: *mut f32, v: Self::F);
        /// `a * b + c`, rounded once.
        unsafe fn fma(a: Self::F, b: Self::F, c: Self::F) -> Self::F;
        unsafe fn mul(a: Self::F, b: Self::F) -> Self::F;
        unsafe fn add(a: Self::F, b: Self::F) -> Self::F;
        unsafe fn sub(a: Self::F, b: Self::F) -> Self::F;
        /// Every lane set to lane `i` of `v`.
        unsafe fn lane(v: Self::F, i: usize) -> Self::F;
        /// Exact `i32 -> f32` (the values here are small).
        unsafe fn cvt(v: Self::I) -> Self::F;
        /// The bits reinterpreted.
        unsafe fn cast(v: Self::I) -> Self::F;
        unsafe fn isplat(v: i32) -> Self::I;
        /// 16 bytes at `p`, zero-extended.
        unsafe fn u8x16(p: *const u8) -> Self::I;
        /// 16 bytes at `p`, sign-extended.
        unsafe fn i8x16(p: *const u8) -> Self::I;
        /// 16 little-endian `u16` at `p`, zero-extended.
        unsafe fn u16x16(p: *const u8) -> Self::I;
        /// 16 little-endian `f16` at `p`, widened (exact; NaNs come out quiet).
        unsafe fn f16x16(p: *const u8) -> Self::F;
        unsafe fn any_nan(v: Self::F) -> bool;
        /// The `f16` at `p` widened with F16C (exact; a signaling NaN comes
        /// out quiet) in every lane. (Broadcasting the 16 bits and converting
        /// 16 lanes avoids the false dependency of an insert into a register.)
        unsafe fn f16s(p: *const u8) -> Self::F;
        unsafe fn and(a: Self::I, b: Self::I) -> Self::I;
        unsafe fn or(a: Self::I, b: Self::I) -> Self::I;
        unsafe fn iadd(a: Self::I, b: Self::I) -> Self::I;
        unsafe fn isub(a: Self::I, b: Self::I) -> Self::I;
        unsafe fn srl(a: Self::I, n: u32) -> Self::I;
        /// `(a & ma) | (b & mb)` for disjoint bit masks `ma`, `mb`.
        unsafe fn bitsel(ma: i32, a: Self::I, b: Self::I, mb: i32) -> Self::I;
        unsafe fn sll(a: Self::I, n: u32) -> Self::I;
        /// Lane `l` is `v` where bit `l` of `mask` is set, else 0.
        unsafe fn bits(mask: u32, v: i32) -> Self::I;
        /// Lane `l` is `t[idx[l] & 15]` (only when `LUT`).
        unsafe fn lut16(idx: Self::I, t: Self::F) -> Self::F;
        /// Lane `l` is `t1[idx[l] & 15]` where bit `l` of `mask` is set, else
        /// `t0[idx[l] & 15]` (only when `LUT`).
        unsafe fn lutsel(idx: Self::I, mask: u32, t0: Self::F, t1: Self::F) -> Self::F;
    }

    /// The little-endian `f16` at `p`.
    #[inline(always)]
    unsafe fn rd16(p: *const u8) -> i16 {
        (p as *const i16).read_unaligned()
    }

    /// `s4` of [`Simd::dhsum`] summed on: `s2[i] = s4[i] + s4[i + 2]`,
    /// `s2[0] + s2[1]`, rounded to `f32`.
    #[inline(always)]
    unsafe fn hsum4d(s4: __m256d) -> f32 {
        let s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd::<1>(s4));
        let s1 = _mm_add_sd(s2, _mm_unpackhi_pd(s2, s2));
        _mm_cvtss_f32(_mm_cvtsd_ss(_mm_setzero_ps(), s1))
    }

    #[inline(always)]
    unsafe fn rd32(p: *const u8) -> u32 {
        (p as *const u32).read_unaligned()
    }

    /// Bit `bit` of each of the 16 bytes at `p`, as a 16-bit mask.
    #[inline(always)]
    unsafe fn bmask(p: *const u8, bit: u32) -> u32 {
        let v = _mm_loadu_si128(p as *const __m128i);
        let v = _mm_sll_epi16(v, _mm_cvtsi32_si128(7 - bit as i32));
        _mm_movemask_epi8(v) as u32
    }

    #[derive(Clone, Copy)]
    pub struct V512;

    impl Simd for V512 {
        type F = __m512;
        type I = __m512i;
        type D = [__m512d; 2];
        const PASS: usize = 4;
        const LUT: bool = true;
        #[inline(always)]
        unsafe fn dzero() -> Self::D {
            [_mm512_setzero_pd(); 2]
        }
        #[inline(always)]
        unsafe fn widen(v: __m512) -> Self::D {
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
            [
                _mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                _mm512_cvtps_pd(hi),
            ]
        }
        #[inline(always)]
        unsafe fn dadd(a: Self::D, b: Self::D) -> Self::D {
            [_mm512_add_pd(a[0], b[0]), _mm512_add_pd(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn dload(p: *const f64) -> Self::D {
            [_mm512_loadu_pd(p), _mm512_loadu_pd(p.add(8))]
        }
        #[inline(always)]
        unsafe fn dstore(p: *mut f64, v: Self::D) {
            _mm512_storeu_pd(p, v[0]);
            _mm512_storeu_pd(p.add(8), v[1]);
        }
        #[inline(always)]
        unsafe fn dhsum(v: Self::D) -> f32 {
            // s8[i] = v[i] + v[i + 8]; s4[i] = s8[i] + s8[i + 4].
            let s8 = _mm512_add_pd(v[0], v[1]);
            let s4 = _mm256_add_pd(_mm512_castpd512_pd256(s8), _mm512_extractf64x4_pd::<1>(s8));
            hsum4d(s4)
        }
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> __m512 {
            _mm512_set1_ps(v)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            _mm512_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn lane(v: __m512, i: usize) -> __m512 {
            _mm512_permutexvar_ps(_mm512_set1_epi32(i as i32), v)
        }
        #[inline(always)]
        unsafe fn cvt(v: __m512i) -> __m512 {
            _mm512_cvtepi32_ps(v)
        }
        #[inline(always)]
        unsafe fn cast(v: __m512i) -> __m512 {
            _mm512_castsi512_ps(v)
        }
        #[inline(always)]
        unsafe fn isplat(v: i32) -> __m512i {
            _mm512_set1_epi32(v)
        }
        #[inline(always)]
        unsafe fn u8x16(p: *const u8) -> __m512i {
            _mm512_cvtepu8_epi32(_mm_loadu_si128(p as *const __m128i))
        }
        #[inline(always)]
        unsafe fn i8x16(p: *const u8) -> __m512i {
            _mm512_cvtepi8_epi32(_mm_loadu_si128(p as *const __m128i))
        }
        #[inline(always)]
        unsafe fn u16x16(p: *const u8) -> __m512i {
            _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i))
        }
        #[inline(always)]
        unsafe fn f16x16(p: *const u8) -> __m512 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
        }
        #[inline(always)]
        unsafe fn any_nan(v: __m512) -> bool {
            _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v) != 0
        }
        #[inline(always)]
        unsafe fn f16s(p: *const u8) -> __m512 {
            // One scalar F16C conversion, then a broadcast (the 16-lane
            // conversion is two micro-ops on AMD's cores); same F16C result.
            _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(rd16(p) as u16 as i32)))
        }
        #[inline(always)]
        unsafe fn and(a: __m512i, b: __m512i) -> __m512i {
            _mm512_and_si512(a, b)
        }
        #[inline(always)]
        unsafe fn or(a: __m512i, b: __m512i) -> __m512i {
            _mm512_or_si512(a, b)
        }
        #[inline(always)]
        unsafe fn iadd(a: __m512i, b: __m512i) -> __m512i {
            _mm512_add_epi32(a, b)
        }
        #[inline(always)]
        unsafe fn isub(a: __m512i, b: __m512i) -> __m512i {
            _mm512_sub_epi32(a, b)
        }
        #[inline(always)]
        unsafe fn srl(a: __m512i, n: u32) -> __m512i {
            _mm512_srl_epi32(a, _mm_cvtsi32_si128(n as i32))
        }
        #[inline(always)]
        unsafe fn sll(a: __m512i, n: u32) -> __m512i {
            _mm512_sll_epi32(a, _mm_cvtsi32_si128(n as i32))
        }
        #[inline(always)]
        unsafe fn bitsel(ma: i32, a: __m512i, b: __m512i, mb: i32) -> __m512i {
            // (m & a) | (~m & b) with m = ma, then the bits outside ma | mb cleared.
            let m = _mm512_set1_epi32(ma);
            let sel = _mm512_ternarylogic_epi32::<0xAC>(m, b, a);
            _mm512_and_si512(sel, _mm512_set1_epi32(ma | mb))
        }
        #[inline(always)]
        unsafe fn bits(mask: u32, v: i32) -> __m512i {
            _mm512_maskz_set1_epi32(mask as __mmask16, v)
        }
        #[inline(always)]
        unsafe fn lut16(idx: __m512i, t: __m512) -> __m512 {
            _mm512_permutexvar_ps(idx, t)
        }
        #[inline(always)]
        unsafe fn lutsel(idx: __m512i, mask: u32, t0: __m512, t1: __m512) -> __m512 {
            let w = _mm512_permutexvar_ps(idx, t0);
            _mm512_mask_permutexvar_ps(w, mask as __mmask16, idx, t1)
        }
    }

    #[derive(Clone, Copy)]
    pub struct V256;

    impl Simd for V256 {
        type F = [__m256; 2];
        type I = [__m256i; 2];
        type D = [__m256d; 4];
        const PASS: usize = 2;
        const LUT: bool = false;
        #[inline(always)]
        unsafe fn dzero() -> Self::D {
            [_mm256_setzero_pd(); 4]
        }
        #[inline(always)]
        unsafe fn widen(v: Self::F) -> Self::D {
            [
                _mm256_cvtps_pd(_mm256_castps256_ps128(v[0])),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v[0])),
                _mm256_cvtps_pd(_mm256_castps256_ps128(v[1])),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v[1])),
            ]
        }
        #[inline(always)]
        unsafe fn dadd(a: Self::D, b: Self::D) -> Self::D {
            let f = |j: usize| _mm256_add_pd(a[j], b[j]);
            [f(0), f(1), f(2), f(3)]
        }
        #[inline(always)]
        unsafe fn dload(p: *const f64) -> Self::D {
            let f = |j: usize| _mm256_loadu_pd(p.add(4 * j));
            [f(0), f(1), f(2), f(3)]
        }
        #[inline(always)]
        unsafe fn dstore(p: *mut f64, v: Self::D) {
            for (j, v) in v.iter().enumerate() {
                _mm256_storeu_pd(p.add(4 * j), *v);
            }
        }
        #[inline(always)]
        unsafe fn dhsum(v: Self::D) -> f32 {
            // Lanes 0..4, 4..8, 8..12, 12..16: s8 = [v0 + v2, v1 + v3],
            // s4[i] = s8[i] + s8[i + 4].
            hsum4d(_mm256_add_pd(
                _mm256_add_pd(v[0], v[2]),
                _mm256_add_pd(v[1], v[3]),
            ))
        }
        #[inline(always)]
        unsafe fn zero() -> Self::F {
            [_mm256_setzero_ps(); 2]
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self::F {
            [_mm256_set1_ps(v); 2]
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self::F {
            [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self::F) {
            _mm256_storeu_ps(p, v[0]);
            _mm256_storeu_ps(p.add(8), v[1]);
        }
        #[inline(always)]
        unsafe fn fma(a: Self::F, b: Self::F, c: Self::F) -> Self::F {
            [
                _mm256_fmadd_ps(a[0], b[0], c[0]),
                _mm256_fmadd_ps(a[1], b[1], c[1]),
            ]
        }
        #[inline(always)]
        unsafe fn mul(a: Self::F, b: Self::F) -> Self::F {
            [_mm256_mul_ps(a[0], b[0]), _mm256_mul_ps(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn add(a: Self::F, b: Self::F) -> Self::F {
            [_mm256_add_ps(a[0], b[0]), _mm256_add_ps(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn sub(a: Self::F, b: Self::F) -> Self::F {
            [_mm256_sub_ps(a[0], b[0]), _mm256_sub_ps(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn lane(v: Self::F, i: usize) -> Self::F {
            let b = _mm256_permutevar8x32_ps(v[i / 8], _mm256_set1_epi32((i % 8) as i32));
            [b, b]
        }
        #[inline(always)]
        unsafe fn cvt(v: Self::I) -> Self::F {
            [_mm256_cvtepi32_ps(v[0]), _mm256_cvtepi32_ps(v[1])]
        }
        #[inline(always)]
        unsafe fn cast(v: Self::I) -> Self::F {
            [_mm256_castsi256_ps(v[0]), _mm256_castsi256_ps(v[1])]
        }
        #[inline(always)]
        unsafe fn isplat(v: i32) -> Self::I {
            [_mm256_set1_epi32(v); 2]
        }
        #[inline(always)]
        unsafe fn u8x16(p: *const u8) -> Self::I {
            [
                _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i)),
                _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(8) as *const __m128i)),
            ]
        }
        #[inline(always)]
        unsafe fn i8x16(p: *const u8) -> Self::I {
            [
                _mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i)),
                _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(8) as *const __m128i)),
            ]
        }
        #[inline(always)]
        unsafe fn u16x16(p: *const u8) -> Self::I {
            [
                _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i)),
                _mm256_cvtepu16_epi32(_mm_loadu_si128(p.add(16) as *const __m128i)),
            ]
        }
        #[inline(always)]
        unsafe fn f16x16(p: *const u8) -> Self::F {
            [
                _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(p.add(16) as *const __m128i)),
            ]
        }
        #[inline(always)]
        unsafe fn f16s(p: *const u8) -> Self::F {
            let v = _mm256_cvtph_ps(_mm_set1_epi16(rd16(p)));
            [v, v]
        }
        #[inline(always)]
        unsafe fn any_nan(v: Self::F) -> bool {
            let u = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_UNORD_Q>(v[0], v[0]),
                _mm256_cmp_ps::<_CMP_UNORD_Q>(v[1], v[1]),
            );
            _mm256_movemask_ps(u) != 0
        }
        #[inline(always)]
        unsafe fn and(a: Self::I, b: Self::I) -> Self::I {
            [_mm256_and_si256(a[0], b[0]), _mm256_and_si256(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn or(a: Self::I, b: Self::I) -> Self::I {
            [_mm256_or_si256(a[0], b[0]), _mm256_or_si256(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn iadd(a: Self::I, b: Self::I) -> Self::I {
            [_mm256_add_epi32(a[0], b[0]), _mm256_add_epi32(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn isub(a: Self::I, b: Self::I) -> Self::I {
            [_mm256_sub_epi32(a[0], b[0]), _mm256_sub_epi32(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn srl(a: Self::I, n: u32) -> Self::I {
            let c = _mm_cvtsi32_si128(n as i32);
            [_mm256_srl_epi32(a[0], c), _mm256_srl_epi32(a[1], c)]
        }
        #[inline(always)]
        unsafe fn sll(a: Self::I, n: u32) -> Self::I {
            let c = _mm_cvtsi32_si128(n as i32);
            [_mm256_sll_epi32(a[0], c), _mm256_sll_epi32(a[1], c)]
        }
        #[inline(always)]
        unsafe fn bitsel(ma: i32, a: Self::I, b: Self::I, mb: i32) -> Self::I {
            let (ma, mb) = (_mm256_set1_epi32(ma), _mm256_set1_epi32(mb));
            let f = |a, b| _mm256_or_si256(_mm256_and_si256(a, ma), _mm256_and_si256(b, mb));
            [f(a[0], b[0]), f(a[1], b[1])]
        }
        #[inline(always)]
        unsafe fn bits(mask: u32, v: i32) -> Self::I {
            let m = _mm256_set1_epi32(mask as i32);
            let lo = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
            let hi = _mm256_slli_epi32::<8>(lo);
            let v = _mm256_set1_epi32(v);
            [
                _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(m, lo), lo), v),
                _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(m, hi), hi), v),
            ]
        }
        #[inline(always)]
        unsafe fn lut16(_: Self::I, _: Self::F) -> Self::F {
            unreachable!("AVX2 decoders do not use tables")
        }
        #[inline(always)]
        unsafe fn lutsel(_: Self::I, _: u32, _: Self::F, _: Self::F) -> Self::F {
            unreachable!("AVX2 decoders do not use tables")
        }
    }

    // -----------------------------------------------------------------------
    // Consumers of decoded vectors

    /// Receives the decoded vectors of the current block: `put(r, i, w)` gets
    /// elements `16i .. 16i + 16` of the block of row `r`. Decoders call it
    /// with increasing `i` for each row.
    pub trait Sink<V: Simd> {
        /// Whether the values must keep NaN payloads bit for bit (a
        /// dequantized row must; a dot product only needs NaN-ness).
        const EXACT: bool;
        unsafe fn put(&mut self, r: usize, i: usize, w: V::F);
    }

    /// `run[r] = fma(w, x, run[r])` lane-wise in `f32`, `x` pointing at the
    /// block's inputs; a run is added to the row's `f64` totals `acc[r]`
    /// after every `RUN / 16`-th vector of the row (by `put` itself when a
    /// block holds whole runs, else by the caller between blocks).
    pub struct Dot<V: Simd, const R: usize> {
        x: *const f32,
        run: [V::F; R],
        acc: [V::D; R],
        /// Whether runs end inside blocks (blocks of `RUN` elements or more).
        inner: bool,
    }

    impl<V: Simd, const R: usize> Dot<V, R> {
        #[inline(always)]
        unsafe fn flush(&mut self, r: usize) {
            self.acc[r] = V::dadd(self.acc[r], V::widen(self.run[r]));
            self.run[r] = V::zero();
        }
    }

    impl<V: Simd, const R: usize> Sink<V> for Dot<V, R> {
        const EXACT: bool = false;
        #[inline(always)]
        unsafe fn put(&mut self, r: usize, i: usize, w: V::F) {
            self.run[r] = V::fma(w, V::load(self.x.add(16 * i)), self.run[r]);
            if self.inner && (i + 1).is_multiple_of(RUN / 16) {
                self.flush(r);
            }
        }
    }

    /// Stores the block's values at `out` (one row).
    pub struct Store {
        out: *mut f32,
    }

    impl<V: Simd> Sink<V> for Store {
        const EXACT: bool = true;
        #[inline(always)]
        unsafe fn put(&mut self, _: usize, i: usize, w: V::F) {
            V::store(self.out.add(16 * i), w);
        }
    }

    // -----------------------------------------------------------------------
    // Decoders: one block of R rows at a time, values exactly as dequant.rs

    pub trait Codec {
        /// Bytes and elements of one block (float types: a run of 16).
        const BYTES: usize;
        const ELEMS: usize;
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S);
    }

    #[repr(align(64))]
    struct C16([f32; 16]);

    static IOTA: C16 = C16([
        0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.,
    ]);
    static IOTA_16: C16 = C16([
        16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27., 28., 29., 30., 31.,
    ]);
    static IOTA_M8: C16 = C16([
        -8., -7., -6., -5., -4., -3., -2., -1., 0., 1., 2., 3., 4., 5., 6., 7.,
    ]);
    static IOTA_M16: C16 = C16([
        -16., -15., -14., -13., -12., -11., -10., -9., -8., -7., -6., -5., -4., -3., -2., -1.,
    ]);
    static MOD4: C16 = C16([
        0., 1., 2., 3., 0., 1., 2., 3., 0., 1., 2., 3., 0., 1., 2., 3.,
    ]);
    static MOD4_M4: C16 = C16([
        -4., -3., -2., -1., -4., -3., -2., -1., -4., -3., -2., -1., -4., -3., -2., -1.,
    ]);

    #[inline(always)]
    unsafe fn c<V: Simd>(v: &'static C16) -> V::F {
        V::load(v.0.as_ptr())
    }

    pub struct Q4_0;
    impl Codec for Q4_0 {
        const BYTES: usize = dequant::Q4_0_BYTES;
        const ELEMS: usize = 32;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // y = d * (q - 8); table: entry q is d * (q - 8).
            let mut t = [V::zero(); R];
            let mut q = [V::isplat(0); R];
            for r in 0..R {
                let d = V::f16s(p[r]);
                t[r] = if V::LUT {
                    V::mul(d, c::<V>(&IOTA_M8))
                } else {
                    d
                };
                q[r] = V::u8x16(p[r].add(2));
            }
            for half in 0..2u32 {
                for r in 0..R {
                    let q = V::srl(q[r], 4 * half);
                    let w = if V::LUT {
                        V::lut16(q, t[r])
                    } else {
                        let q = V::isub(V::and(q, V::isplat(15)), V::isplat(8));
                        V::mul(t[r], V::cvt(q))
                    };
                    s.put(r, half as usize, w);
                }
            }
        }
    }

    pub struct Q4_1;
    impl Codec for Q4_1 {
        const BYTES: usize = dequant::Q4_1_BYTES;
        const ELEMS: usize = 32;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // y = (d * q) + m; table: entry q is (d * q) + m.
            let mut d = [V::zero(); R];
            let mut m = [V::zero(); R];
            let mut q = [V::isplat(0); R];
            for r in 0..R {
                d[r] = V::f16s(p[r]);
                m[r] = V::f16s(p[r].add(2));
                if V::LUT {
                    // (d * q) + m with d * q exact: one fused op, same bits.
                    d[r] = V::fma(d[r], c::<V>(&IOTA), m[r]);
                }
                q[r] = V::u8x16(p[r].add(4));
            }
            for half in 0..2u32 {
                for r in 0..R {
                    let q = V::srl(q[r], 4 * half);
                    let w = if V::LUT {
                        V::lut16(q, d[r])
                    } else {
                        V::fma(d[r], V::cvt(V::and(q, V::isplat(15))), m[r])
                    };
                    s.put(r, half as usize, w);
                }
            }
        }
    }

    pub struct Q5_0;
    impl Codec for Q5_0 {
        const BYTES: usize = dequant::Q5_0_BYTES;
        const ELEMS: usize = 32;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // y = d * (q - 16), q = nibble | (bit k of qh) << 4; tables: entry
            // n is d * (n - 16) (fifth bit clear) and d * n (set).
            let mut t0 = [V::zero(); R];
            let mut t1 = [V::zero(); R];
            let mut qh = [0u32; R];
            let mut q = [V::isplat(0); R];
            for r in 0..R {
                let d = V::f16s(p[r]);
                if V::LUT {
                    t0[r] = V::mul(d, c::<V>(&IOTA_M16));
                    t1[r] = V::mul(d, c::<V>(&IOTA));
                } else {
                    t0[r] = d;
                }
                qh[r] = rd32(p[r].add(2));
                q[r] = V::u8x16(p[r].add(6));
            }
            for half in 0..2u32 {
                for r in 0..R {
                    let hb = (qh[r] >> (16 * half)) & 0xFFFF;
                    let q = V::srl(q[r], 4 * half);
                    let w = if V::LUT {
                        V::lutsel(q, hb, t0[r], t1[r])
                    } else {
                        let q = V::or(V::and(q, V::isplat(15)), V::bits(hb, 16));
                        V::mul(t0[r], V::cvt(V::isub(q, V::isplat(16))))
                    };
                    s.put(r, half as usize, w);
                }
            }
        }
    }

    pub struct Q5_1;
    impl Codec for Q5_1 {
        const BYTES: usize = dequant::Q5_1_BYTES;
        const ELEMS: usize = 32;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // y = (d * q) + m, q = nibble | (bit k of qh) << 4; tables: entry
            // n is (d * n) + m (fifth bit clear) and (d * (n + 16)) + m (set).
            let mut d = [V::zero(); R];
            let mut m = [V::zero(); R];
            let mut qh = [0u32; R];
            let mut q = [V::isplat(0); R];
            for r in 0..R {
                let dd = V::f16s(p[r]);
                let mm = V::f16s(p[r].add(2));
                if V::LUT {
                    d[r] = V::add(V::mul(dd, c::<V>(&IOTA)), mm);
                    m[r] = V::add(V::mul(dd, c::<V>(&IOTA_16)), mm);
                } else {
                    (d[r], m[r]) = (dd, mm);
                }
                qh[r] = rd32(p[r].add(4));
                q[r] = V::u8x16(p[r].add(8));
            }
            for half in 0..2u32 {
                for r in 0..R {
                    let hb = (qh[r] >> (16 * half)) & 0xFFFF;
                    let q = V::srl(q[r], 4 * half);
                    let w = if V::LUT {
                        V::lutsel(q, hb, d[r], m[r])
                    } else {
                        let q = V::or(V::and(q, V::isplat(15)), V::bits(hb, 16));
                        V::fma(d[r], V::cvt(q), m[r])
                    };
                    s.put(r, half as usize, w);
                }
            }
        }
    }

    pub struct Q8_0;
    impl Codec for Q8_0 {
        const BYTES: usize = dequant::Q8_0_BYTES;
        const ELEMS: usize = 32;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // y = q * d
            let mut d = [V::zero(); R];
            for r in 0..R {
                d[r] = V::f16s(p[r]);
            }
            for half in 0..2 {
                for r in 0..R {
                    let q = V::cvt(V::i8x16(p[r].add(2 + 16 * half)));
                    s.put(r, half, V::mul(q, d[r]));
                }
            }
        }
    }

    pub struct Q2K;
    impl Codec for Q2K {
        const BYTES: usize = dequant::Q2_K_BYTES;
        const ELEMS: usize = 256;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // Group g = vector i: dl = d * (sc & 15), ml = dmin * (sc >> 4),
            // y = (dl * q) - ml, q = (qs[32j + l] >> 2s) & 3 for i = 8j + 2s + l / 16.
            let mut dl = [V::zero(); R];
            let mut ml = [V::zero(); R];
            for r in 0..R {
                let sc = V::u8x16(p[r]);
                dl[r] = V::mul(V::f16s(p[r].add(80)), V::cvt(V::and(sc, V::isplat(15))));
                ml[r] = V::mul(V::f16s(p[r].add(82)), V::cvt(V::srl(sc, 4)));
            }
            for i in 0..16 {
                let (j, sh, half) = (i / 8, (i / 2) % 4, i % 2);
                for r in 0..R {
                    let q = V::srl(V::u8x16(p[r].add(16 + 32 * j + 16 * half)), 2 * sh as u32);
                    let (dg, mg) = (V::lane(dl[r], i), V::lane(ml[r], i));
                    let w = if V::LUT {
                        V::lut16(q, V::sub(V::mul(dg, c::<V>(&MOD4)), mg))
                    } else {
                        let q = V::cvt(V::and(q, V::isplat(3)));
                        V::fma(dg, q, V::sub(V::splat(-0.0), mg))
                    };
                    s.put(r, i, w);
                }
            }
        }
    }

    pub struct Q3K;
    impl Codec for Q3K {
        const BYTES: usize = dequant::Q3_K_BYTES;
        const ELEMS: usize = 256;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // Group g = vector i = 8j + 2s + l / 16: dl = d * sc[g],
            // y = dl * q, q = low - 4 * (1 - hmask bit (4j + s) of byte l).
            let mut dl = [V::zero(); R];
            for r in 0..R {
                let scales: &[u8; 12] = &*(p[r].add(96) as *const [u8; 12]);
                let sc = dequant::q3k_scales(scales);
                let sc = V::i8x16(sc.as_ptr() as *const u8);
                dl[r] = V::mul(V::f16s(p[r].add(108)), V::cvt(sc));
            }
            for i in 0..16 {
                let (j, sh, half) = (i / 8, (i / 2) % 4, i % 2);
                for r in 0..R {
                    let low = V::srl(V::u8x16(p[r].add(32 + 32 * j + 16 * half)), 2 * sh as u32);
                    let hb = bmask(p[r].add(16 * half), (4 * j + sh) as u32);
                    let dg = V::lane(dl[r], i);
                    let w = if V::LUT {
                        let t0 = V::mul(dg, c::<V>(&MOD4_M4));
                        let t1 = V::mul(dg, c::<V>(&MOD4));
                        V::lutsel(low, hb, t0, t1)
                    } else {
                        let q = V::iadd(V::and(low, V::isplat(3)), V::bits(hb, 4));
                        V::mul(dg, V::cvt(V::isub(q, V::isplat(4))))
                    };
                    s.put(r, i, w);
                }
            }
        }
    }

    /// `(d * sc, dmin * m)` of the 8 sub-blocks of a Q4_K/Q5_K block, in
    /// lanes 0..8 of two vectors (one rounding each, as dequant.rs).
    #[inline(always)]
    unsafe fn q4k_mult<V: Simd>(p: *const u8) -> (V::F, V::F) {
        let scales: &[u8; 12] = &*(p.add(4) as *const [u8; 12]);
        let mut sc = [0u8; 16];
        for j in 0..8 {
            let (s, m) = dequant::q4k_scale_min(j, scales);
            sc[j] = s;
            sc[8 + j] = m;
        }
        let v = V::u8x16(sc.as_ptr());
        let d = V::mul(V::f16s(p), V::cvt(v));
        let m = V::mul(V::f16s(p.add(2)), V::cvt(v));
        (d, m)
    }

    pub struct Q4K;
    impl Codec for Q4K {
        const BYTES: usize = dequant::Q4_K_BYTES;
        const ELEMS: usize = 256;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // Sub-block j = i / 2: y = (dj * q) - mj, q = nibble j % 2 of
            // qs[32 (j / 2) + l].
            let mut dv = [V::zero(); R];
            let mut mv = [V::zero(); R];
            for r in 0..R {
                (dv[r], mv[r]) = q4k_mult::<V>(p[r]);
            }
            for j in 0..8 {
                // The sub-block's table (or scale and negated min), once for
                // both of its halves.
                let mut t = [V::zero(); R];
                let mut dj = [V::zero(); R];
                for r in 0..R {
                    let (d, m) = (V::lane(dv[r], j), V::lane(mv[r], 8 + j));
                    if V::LUT {
                        t[r] = V::sub(V::mul(d, c::<V>(&IOTA)), m);
                    } else {
                        (dj[r], t[r]) = (d, V::sub(V::splat(-0.0), m));
                    }
                }
                for half in 0..2 {
                    for r in 0..R {
                        let q = V::u8x16(p[r].add(16 + 32 * (j / 2) + 16 * half));
                        let q = V::srl(q, 4 * (j % 2) as u32);
                        let w = if V::LUT {
                            V::lut16(q, t[r])
                        } else {
                            let q = V::cvt(V::and(q, V::isplat(15)));
                            V::fma(dj[r], q, t[r])
                        };
                        s.put(r, 2 * j + half, w);
                    }
                }
            }
        }
    }

    pub struct Q5K;
    impl Codec for Q5K {
        const BYTES: usize = dequant::Q5_K_BYTES;
        const ELEMS: usize = 256;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // As Q4_K, plus bit j of qh[l] as the fifth bit.
            let mut dv = [V::zero(); R];
            let mut mv = [V::zero(); R];
            for r in 0..R {
                (dv[r], mv[r]) = q4k_mult::<V>(p[r]);
            }
            for j in 0..8 {
                for half in 0..2 {
                    for r in 0..R {
                        let q = V::u8x16(p[r].add(48 + 32 * (j / 2) + 16 * half));
                        let q = V::srl(q, 4 * (j % 2) as u32);
                        let hb = bmask(p[r].add(16 + 16 * half), j as u32);
                        let (dj, mj) = (V::lane(dv[r], j), V::lane(mv[r], 8 + j));
                        let w = if V::LUT {
                            let t0 = V::sub(V::mul(dj, c::<V>(&IOTA)), mj);
                            let t1 = V::sub(V::mul(dj, c::<V>(&IOTA_16)), mj);
                            V::lutsel(q, hb, t0, t1)
                        } else {
                            let q = V::or(V::and(q, V::isplat(15)), V::bits(hb, 16));
                            V::fma(dj, V::cvt(q), V::sub(V::splat(-0.0), mj))
                        };
                        s.put(r, 2 * j + half, w);
                    }
                }
            }
        }
    }

    pub struct Q6K;
    impl Codec for Q6K {
        const BYTES: usize = dequant::Q6_K_BYTES;
        const ELEMS: usize = 256;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            // Group g = vector i = 8h + c: dg = d * scales[g], y = dg * q,
            // q = (low | high << 4) - 32 with low = nibble c / 4 of
            // ql[64h + 16 (c % 4) + l], high = bits 2 (c / 2) of qh[32h + 16 (c % 2) + l].
            let mut dv = [V::zero(); R];
            for r in 0..R {
                dv[r] = V::mul(V::f16s(p[r].add(208)), V::cvt(V::i8x16(p[r].add(192))));
            }
            for i in 0..16 {
                let (h, c) = (i / 8, i % 8);
                for r in 0..R {
                    let low = V::u8x16(p[r].add(64 * h + 16 * (c % 4)));
                    let low = V::srl(low, 4 * (c / 4) as u32);
                    // The two high bits moved to bits 4..6.
                    let high = V::u8x16(p[r].add(128 + 32 * h + 16 * (c % 2)));
                    let high = match c / 2 {
                        3 => V::srl(high, 2),
                        k => V::sll(high, 4 - 2 * k as u32),
                    };
                    let q = V::isub(V::bitsel(0x0F, low, high, 0x30), V::isplat(32));
                    s.put(r, i, V::mul(V::lane(dv[r], i), V::cvt(q)));
                }
            }
        }
    }

    pub struct F32;
    impl Codec for F32 {
        const BYTES: usize = 64;
        const ELEMS: usize = 16;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            for r in 0..R {
                s.put(r, 0, V::load(p[r] as *const f32));
            }
        }
    }

    pub struct F16;
    impl Codec for F16 {
        const BYTES: usize = 32;
        const ELEMS: usize = 16;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            for r in 0..R {
                let mut w = V::f16x16(p[r]);
                if S::EXACT && V::any_nan(w) {
                    // Keep signaling NaNs signaling, as dequant.rs does.
                    let mut t = [0f32; 16];
                    let src = std::slice::from_raw_parts(p[r], 32);
                    dequant::dequantize_row(GgmlType::F16, src, &mut t).expect("16 f16");
                    w = V::load(t.as_ptr());
                }
                s.put(r, 0, w);
            }
        }
    }

    pub struct BF16;
    impl Codec for BF16 {
        const BYTES: usize = 32;
        const ELEMS: usize = 16;
        #[inline(always)]
        unsafe fn block<V: Simd, const R: usize, S: Sink<V>>(p: &[*const u8; R], s: &mut S) {
            for r in 0..R {
                s.put(r, 0, V::cast(V::sll(V::u16x16(p[r]), 16)));
            }
        }
    }

    // -----------------------------------------------------------------------
    // Drivers

    /// Where a fused dot product goes: the 16 lane sums (when a float tail
    /// follows) or the reduced sums.
    pub struct Out<'a, const R: usize> {
        pub lanes: bool,
        pub acc: &'a mut [Acc; R],
        pub sums: [f32; R],
    }

    /// Bytes to prefetch: `step` bytes (whole lines) from `at` each block,
    /// up to `end`.
    #[derive(Clone, Copy)]
    pub struct Prefetch {
        pub at: *const u8,
        pub end: *const u8,
        pub step: usize,
    }

    /// One pass of `G` rows over `nb` blocks: their `f64` lanes.
    #[inline(always)]
    unsafe fn dot_pass<V: Simd, C: Codec, const G: usize>(
        mut p: [*const u8; G],
        nb: usize,
        x: *const f32,
        mut pf: Prefetch,
    ) -> [V::D; G] {
        const {
            assert!(C::ELEMS.is_multiple_of(RUN) || RUN.is_multiple_of(C::ELEMS));
        }
        let inner = C::ELEMS >= RUN;
        let per_run = (RUN / C::ELEMS).max(1);
        let mut s = Dot::<V, G> {
            x,
            run: [V::zero(); G],
            acc: [V::dzero(); G],
            inner,
        };
        for b in 0..nb {
            let mut i = 0;
            while i < pf.step && pf.at < pf.end {
                // Prefetches never fault; `at` stays inside `next` (< end).
                _mm_prefetch::<_MM_HINT_T0>(pf.at as *const i8);
                pf.at = pf.at.wrapping_add(64);
                i += 64;
            }
            C::block::<V, G, _>(&p, &mut s);
            for q in p.iter_mut() {
                *q = q.add(C::BYTES);
            }
            s.x = s.x.add(C::ELEMS);
            if !inner && ((b + 1) % per_run == 0 || b + 1 == nb) {
                for r in 0..G {
                    s.flush(r);
                }
            }
        }
        s.acc
    }

    #[inline(always)]
    unsafe fn dot_run<V: Simd, C: Codec, const R: usize>(
        p: [*const u8; R],
        nb: usize,
        x: *const f32,
        pf: Prefetch,
        out: &mut Out<R>,
    ) {
        let mut acc = [V::dzero(); R];
        if R == 4 && V::PASS == 2 {
            // Two passes of two rows; the first prefetches for both.
            let none = Prefetch {
                at: pf.end,
                end: pf.end,
                step: 0,
            };
            let a = dot_pass::<V, C, 2>([p[0], p[1]], nb, x, pf);
            let b = dot_pass::<V, C, 2>([p[2], p[3]], nb, x, none);
            acc[..2].copy_from_slice(&a);
            acc[2..].copy_from_slice(&b);
        } else {
            acc = dot_pass::<V, C, R>(p, nb, x, pf);
        }
        if out.lanes {
            for (o, a) in out.acc.iter_mut().zip(acc) {
                V::dstore(o.as_mut_ptr(), a);
            }
        } else {
            for (o, a) in out.sums.iter_mut().zip(acc) {
                *o = V::dhsum(a);
            }
        }
    }

    #[inline(always)]
    unsafe fn dequant_run<V: Simd, C: Codec>(mut p: *const u8, nb: usize, out: *mut f32) {
        let mut s = Store { out };
        for _ in 0..nb {
            C::block::<V, 1, _>(&[p], &mut s);
            p = p.add(C::BYTES);
            s.out = s.out.add(C::ELEMS);
        }
    }

    /// The `R × T` products over `n` elements (a multiple of 16): per run of
    /// up to 128 elements, one `f32` FMA per 16 lanes of each output (the
    /// rows' 16 `f32` against each token's 16), then the runs widened and
    /// added to the `f64` totals (kept in memory: they are touched once per
    /// run, the runs stay in registers).
    #[inline(always)]
    unsafe fn tile_run<V: Simd, const R: usize, const T: usize>(
        w: [*const f32; R],
        x: [*const f32; T],
        n: usize,
        lanes: Option<&mut [[Acc; T]; R]>,
        sums: &mut [[f32; T]; R],
    ) {
        let mut tot = [[[0f64; LANES]; T]; R];
        let mut k = 0;
        while k < n {
            let end = n.min(k + RUN);
            let mut run = [[V::zero(); T]; R];
            while k < end {
                let mut wv = [V::zero(); R];
                for r in 0..R {
                    wv[r] = V::load(w[r].add(k));
                }
                for t in 0..T {
                    let xv = V::load(x[t].add(k));
                    for r in 0..R {
                        run[r][t] = V::fma(wv[r], xv, run[r][t]);
                    }
                }
                k += LANES;
            }
            for r in 0..R {
                for t in 0..T {
                    let p = tot[r][t].as_mut_ptr();
                    V::dstore(p, V::dadd(V::dload(p), V::widen(run[r][t])));
                }
            }
        }
        match lanes {
            Some(out) => *out = tot,
            None => {
                for r in 0..R {
                    for t in 0..T {
                        sums[r][t] = V::dhsum(V::dload(tot[r][t].as_ptr()));
                    }
                }
            }
        }
    }

    macro_rules! entry_points {
        ($feat:literal, $V:ty, $dot:ident, $dot_ty:ident, $deq:ident, $deq_ty:ident, $tile:ident) => {
            #[target_feature(enable = $feat)]
            unsafe fn $dot_ty<C: Codec, const R: usize>(
                p: [*const u8; R],
                nb: usize,
                x: *const f32,
                pf: Prefetch,
                out: &mut Out<R>,
            ) {
                dot_run::<$V, C, R>(p, nb, x, pf, out)
            }

            /// `R` fused dot products over `nb` blocks: their lanes (to
            /// continue with a float tail) or their sums, as `out` asks.
            ///
            /// # Safety
            /// The CPU runs this path; each row holds `nb` blocks of `ty`
            /// (16-element runs for float types) and `x` their elements.
            pub unsafe fn $dot<const R: usize>(
                ty: GgmlType,
                p: [*const u8; R],
                nb: usize,
                x: *const f32,
                pf: Prefetch,
                out: &mut Out<R>,
            ) {
                match ty {
                    GgmlType::F32 => $dot_ty::<F32, R>(p, nb, x, pf, out),
                    GgmlType::F16 => $dot_ty::<F16, R>(p, nb, x, pf, out),
                    GgmlType::BF16 => $dot_ty::<BF16, R>(p, nb, x, pf, out),
                    GgmlType::Q4_0 => $dot_ty::<Q4_0, R>(p, nb, x, pf, out),
                    GgmlType::Q4_1 => $dot_ty::<Q4_1, R>(p, nb, x, pf, out),
                    GgmlType::Q5_0 => $dot_ty::<Q5_0, R>(p, nb, x, pf, out),
                    GgmlType::Q5_1 => $dot_ty::<Q5_1, R>(p, nb, x, pf, out),
                    GgmlType::Q8_0 => $dot_ty::<Q8_0, R>(p, nb, x, pf, out),
                    GgmlType::Q2K => $dot_ty::<Q2K, R>(p, nb, x, pf, out),
                    GgmlType::Q3K => $dot_ty::<Q3K, R>(p, nb, x, pf, out),
                    GgmlType::Q4K => $dot_ty::<Q4K, R>(p, nb, x, pf, out),
                    GgmlType::Q5K => $dot_ty::<Q5K, R>(p, nb, x, pf, out),
                    GgmlType::Q6K => $dot_ty::<Q6K, R>(p, nb, x, pf, out),
                }
            }

            #[target_feature(enable = $feat)]
            unsafe fn $deq_ty<C: Codec>(p: *const u8, nb: usize, out: *mut f32) {
                dequant_run::<$V, C>(p, nb, out)
            }

            /// Dequantizes `nb` blocks at `p` into `out`.
            ///
            /// # Safety
            /// As for the dot products; `out` holds the blocks' elements.
            pub unsafe fn $deq(ty: GgmlType, p: *const u8, nb: usize, out: *mut f32) {
                match ty {
                    GgmlType::F32 => $deq_ty::<F32>(p, nb, out),
                    GgmlType::F16 => $deq_ty::<F16>(p, nb, out),
                    GgmlType::BF16 => $deq_ty::<BF16>(p, nb, out),
                    GgmlType::Q4_0 => $deq_ty::<Q4_0>(p, nb, out),
                    GgmlType::Q4_1 => $deq_ty::<Q4_1>(p, nb, out),
                    GgmlType::Q5_0 => $deq_ty::<Q5_0>(p, nb, out),
                    GgmlType::Q5_1 => $deq_ty::<Q5_1>(p, nb, out),
                    GgmlType::Q8_0 => $deq_ty::<Q8_0>(p, nb, out),
                    GgmlType::Q2K => $deq_ty::<Q2K>(p, nb, out),
                    GgmlType::Q3K => $deq_ty::<Q3K>(p, nb, out),
                    GgmlType::Q4K => $deq_ty::<Q4K>(p, nb, out),
                    GgmlType::Q5K => $deq_ty::<Q5K>(p, nb, out),
                    GgmlType::Q6K => $deq_ty::<Q6K>(p, nb, out),
                }
            }

            /// The `R × T` products of `n` (a multiple of 16) elements: their
            /// lanes into `lanes` when given, else their sums into `sums`.
            ///
            /// # Safety
            /// The CPU runs this path; every pointer covers `n` floats.
            #[target_feature(enable = $feat)]
            pub unsafe fn $tile<const R: usize, const T: usize>(
                w: [*const f32; R],
                x: [*const f32; T],
                n: usize,
                lanes: Option<&mut [[Acc; T]; R]>,
                sums: &mut [[f32; T]; R],
            ) {
                tile_run::<$V, R, T>(w, x, n, lanes, sums)
            }
        };
    }

    entry_points!(
        "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
        V512,
        dot_avx512,
        dot_avx512_ty,
        dequant_avx512,
        dequant_avx512_ty,
        tile_avx512
    );
    entry_points!(
        "avx2,fma,f16c",
        V256,
        dot_avx2,
        dot_avx2_ty,
        dequant_avx2,
        dequant_avx2_ty,
        tile_avx2
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kernels::dot::dot;

    use atenia_testkit::Rng;

    /// Uniform in [-1, 1].
    fn unit(rng: &mut Rng) -> f32 {
        rng.range(-1.0, 1.0) as f32
    }

    /// A finite f16 of varied magnitude (2^-24 .. 2^15) and sign, or ±0.
    fn f16(rng: &mut Rng) -> u16 {
        loop {
            let h = rng.next_u32() as u16;
            if h & 0x7C00 != 0x7C00 {
                return h;
            }
        }
    }

    /// `n` random blocks with finite scales (float types: finite values).
    pub(crate) fn random_blocks(ty: GgmlType, n: usize, seed: u32) -> Vec<u8> {
        let mut rng = Rng::new(seed.into());
        let bb = ty.block_bytes();
        let mut v: Vec<u8> = (0..n * bb).map(|_| rng.next_u32() as u8).collect();
        for b in v.chunks_exact_mut(bb) {
            match ty {
                GgmlType::F32 => b.copy_from_slice(&(unit(&mut rng) * 4.0).to_le_bytes()),
                GgmlType::F16 => b.copy_from_slice(&f16(&mut rng).to_le_bytes()),
                GgmlType::BF16 => {
                    let f = unit(&mut rng) * 8.0;
                    b.copy_from_slice(&((f.to_bits() >> 16) as u16).to_le_bytes())
                }
                _ => {
                    for &at in ty.scale_offsets() {
                        // Mostly typical scales, sometimes any finite f16.
                        let h = if rng.next_u32().is_multiple_of(4) {
                            f16(&mut rng)
                        } else {
                            half::f16::from_f32(unit(&mut rng) * 0.05).to_bits()
                        };
                        b[at..at + 2].copy_from_slice(&h.to_le_bytes());
                    }
                }
            }
        }
        v
    }

    /// The blocks of `golden/dequant/<TYPE>.safetensors` (real and random).
    pub(crate) fn golden_blocks(ty: GgmlType) -> Vec<u8> {
        let path = atenia_testkit::golden()
            .join("dequant")
            .join(format!("{}.safetensors", ty.name()));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
        let t = st.tensor("blocks").expect("blocks");
        assert_eq!(t.shape()[1], ty.block_bytes(), "{ty}");
        t.data().to_vec()
    }

    fn inputs(n: usize, seed: u32) -> Vec<f32> {
        let mut rng = Rng::new(seed.into());
        (0..n)
            .map(|i| {
                let v = unit(&mut rng);
                // Some spread of magnitudes, exact zeros and negative zeros.
                match i % 11 {
                    3 => v * 1e-3,
                    7 => v * 300.0,
                    9 => 0.0,
                    10 => -0.0,
                    _ => v,
                }
            })
            .collect()
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits()
    }

    /// Bit-identical, or both NaN: a NaN result's payload depends on which
    /// operand of an `addss` the compiler puts first, even between two
    /// compilations of the same scalar code, so it is no part of the contract.
    fn same_dot(a: f32, b: f32) -> bool {
        same(a, b) || (a.is_nan() && b.is_nan())
    }

    /// Rows of `elems` elements cut from `blocks`; checks the fused dot
    /// products (4 rows at a time and one at a time) and the SIMD
    /// dequantization against dequant.rs + dot.rs, bit for bit.
    fn check_rows(ty: GgmlType, blocks: &[u8], elems: usize, what: &str) -> usize {
        let rb = ty.row_bytes(elems).unwrap();
        let rows: Vec<&[u8]> = blocks.chunks_exact(rb).collect();
        assert!(!rows.is_empty(), "{ty} {what}: no rows");
        let x = inputs(elems, 77);
        let mut want = Vec::new();
        let mut deq = vec![0f32; elems];
        let mut got_deq = vec![0f32; elems];
        for r in &rows {
            dequant::dequantize_row(ty, r, &mut deq).unwrap();
            want.push(dot(Isa::Scalar, &deq, &x));
            for isa in Isa::available() {
                got_deq.fill(f32::NAN);
                dequant_row(isa, ty, r, &mut got_deq);
                for (k, (a, b)) in got_deq.iter().zip(&deq).enumerate() {
                    assert!(
                        same(*a, *b),
                        "{ty} {what} {isa}: dequant element {k}: {a:e} vs {b:e}"
                    );
                }
            }
        }
        for isa in Isa::available() {
            for (i, r) in rows.iter().enumerate() {
                let got = dot_rows(isa, ty, [*r], &x)[0];
                assert!(
                    same_dot(got, want[i]),
                    "{ty} {what} {isa} row {i}: {got:e} vs {:e}",
                    want[i]
                );
            }
            for (g, rs) in rows.chunks_exact(4).enumerate() {
                let got = dot_rows(isa, ty, [rs[0], rs[1], rs[2], rs[3]], &x);
                for j in 0..4 {
                    let w = want[4 * g + j];
                    assert!(
                        same_dot(got[j], w),
                        "{ty} {what} {isa} row {}: {:e} vs {w:e}",
                        4 * g + j,
                        got[j]
                    );
                }
            }
        }
        rows.len()
    }

    /// Elements per test row: several blocks (float types: with a tail).
    fn row_elems(ty: GgmlType) -> usize {
        match ty.block_elems() {
            1 => 16 * 5 + 7,
            32 => 32 * 6,
            _ => 256 * 2,
        }
    }

    #[test]
    fn fused_matches_dequantize_then_dot_on_golden_blocks() {
        for ty in GgmlType::ALL {
            let blocks = golden_blocks(ty);
            let elems = row_elems(ty);
            let usable = blocks.clone();
            let n = check_rows(ty, &usable, elems, "golden");
            assert!(n >= 4, "{ty}: only {n} golden rows");
            // Every golden value through the SIMD dequantization, NaNs included.
            let be = ty.block_elems().max(16);
            let bbytes = ty.row_bytes(be).unwrap();
            let nb = blocks.len() / bbytes;
            let src = &blocks[..nb * bbytes];
            let mut want = vec![0f32; nb * be];
            dequant::dequantize_row(ty, src, &mut want).unwrap();
            for isa in Isa::available() {
                let mut got = vec![0f32; nb * be];
                dequant_row(isa, ty, src, &mut got);
                for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        same(*a, *b),
                        "{ty} {isa}: golden value {k}: {:#x} vs {:#x}",
                        a.to_bits(),
                        b.to_bits()
                    );
                }
            }
        }
    }

    #[test]
    fn fused_matches_dequantize_then_dot_on_random_blocks() {
        for ty in GgmlType::ALL {
            let elems = row_elems(ty);
            let nblocks = 24 * elems / ty.block_elems();
            let blocks = random_blocks(ty, nblocks, ty.id() + 5);
            check_rows(ty, &blocks, elems, "random");
        }
    }

    #[test]
    fn non_finite_scales_give_nan_either_way() {
        // inf and NaN scales: dequant.rs gives inf/NaN weights; the fused
        // product must be NaN exactly when the reference is.
        for ty in GgmlType::ALL.into_iter().filter(|t| t.is_quantized()) {
            let elems = ty.block_elems() * 2;
            let mut blocks = random_blocks(ty, 8, 3);
            for (i, b) in blocks.chunks_exact_mut(ty.block_bytes()).enumerate() {
                let at = ty.scale_offsets()[i % ty.scale_offsets().len()];
                let h: u16 = [0x7C00, 0xFC00, 0x7E01, 0x7C01][i % 4];
                b[at..at + 2].copy_from_slice(&h.to_le_bytes());
            }
            let x = inputs(elems, 5);
            let mut deq = vec![0f32; elems];
            for r in blocks.chunks_exact(ty.row_bytes(elems).unwrap()) {
                dequant::dequantize_row(ty, r, &mut deq).unwrap();
                let want = dot(Isa::Scalar, &deq, &x);
                for isa in Isa::available() {
                    let got = dot_rows(isa, ty, [r], &x)[0];
                    assert_eq!(got.is_nan(), want.is_nan(), "{ty} {isa}: {got} vs {want}");
                    if !want.is_nan() {
                        assert!(same(got, want), "{ty} {isa}: {got} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn tiles_match_dot() {
        let mut rng = Rng::new(9);
        for n in [0, 5, 16, 48, 100, 576] {
            let w: Vec<Vec<f32>> = (0..4)
                .map(|_| (0..n).map(|_| unit(&mut rng)).collect())
                .collect();
            let x: Vec<Vec<f32>> = (0..4)
                .map(|_| (0..n).map(|_| unit(&mut rng)).collect())
                .collect();
            let xw = &x;
            for isa in Isa::available() {
                let o = tile(
                    isa,
                    [&w[0][..], &w[1], &w[2], &w[3]],
                    [&xw[0][..], &xw[1], &xw[2], &xw[3]],
                );
                let o1 = tile(isa, [&w[2][..]], [&xw[1][..]]);
                assert!(same(o1[0][0], dot(Isa::Scalar, &w[2], &x[1])));
                // The shapes matmul runs: 4 × 3 (AVX-512) and 1 × 3 (AVX2).
                let o43 = tile(
                    isa,
                    [&w[0][..], &w[1], &w[2], &w[3]],
                    [&xw[1][..], &xw[2], &xw[3]],
                );
                let o13 = tile(isa, [&w[3][..]], [&xw[0][..], &xw[1], &xw[2]]);
                for r in 0..4 {
                    for t in 0..4 {
                        let want = dot(Isa::Scalar, &w[r], &x[t]);
                        assert!(same(o[r][t], want), "{isa} n={n} ({r},{t})");
                        if t > 0 {
                            assert!(same(o43[r][t - 1], want), "{isa} n={n} 4x3 ({r},{t})");
                        }
                        if r == 3 && t < 3 {
                            assert!(same(o13[0][t], want), "{isa} n={n} 1x3 ({t})");
                        }
                    }
                }
            }
        }
    }
}
