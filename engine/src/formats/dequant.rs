//! Exact dequantization of every supported ggml type to `f32`.
//!
//! The results are bit-identical to the `gguf` Python package's
//! `gguf.quants.dequantize` (numpy float32 arithmetic, checked by
//! `engine/tests/dequant_vectors.rs` against `golden/dequant/*.safetensors`).
//! Bit-exactness needs the same sequence of float32 roundings as numpy, so each
//! decoder below states its operation order. Every product and sum is a plain
//! `*` or `+`/`-` (each one rounding); Rust never contracts these into fused
//! multiply-adds, and `mul_add` is not used here.
//!
//! Integer quants are converted to `f32` exactly (they are small), and `f16`
//! scales are widened to `f32` exactly, so the only roundings are the float
//! products and sums spelled out per type.
//!
//! In fact every product is exact: an `f16` has an 11-bit significand and the
//! integers multiplied into it need at most 7 bits (sub-block scale) plus 5
//! bits (quant), so `d * sc * q` fits the 24-bit `f32` significand (and stays
//! far from under/overflow); `products_are_exact` below checks this for every
//! finite `f16`. Consequently each output is the exact value
//! `d*sc*q - dmin*m` (or `d*q + m`) rounded once to `f32`, and the types
//! without a min (Q4_0, Q5_0, Q8_0, Q3_K, Q6_K) involve no rounding at all.
//! A fused kernel may therefore use FMA (`dj.mul_add(q, -mj)`) or any
//! association of the products and still reproduce these bits (for finite
//! scales).
//!
//! Non-finite scales (an `f16` scale that is inf or NaN) give inf/NaN results
//! here as in numpy; when two different NaN payloads meet in one operation the
//! payload of the result is hardware- and operand-order-dependent, so only the
//! NaN-ness, not the NaN bits, is guaranteed for such blocks. The float types
//! (F32, F16, BF16) are pure bit conversions and are bit-exact for every input,
//! NaNs included.
//!
//! The per-block functions take fixed-size arrays (`&[u8; Q4_1_BYTES]`,
//! `&mut [f32; 32]`), so a caller can not pass a block of the wrong size; turn
//! slices into them with `try_into()`.

use crate::error::{Error, Result};
use crate::formats::ggml_type::{GgmlType, QK_K};

/// Elements in one block of the legacy quants (Q4_0 ... Q8_0).
pub const QK: usize = 32;

pub const Q4_0_BYTES: usize = 18;
pub const Q4_1_BYTES: usize = 20;
pub const Q5_0_BYTES: usize = 22;
pub const Q5_1_BYTES: usize = 24;
pub const Q8_0_BYTES: usize = 34;
pub const Q2_K_BYTES: usize = 84;
pub const Q3_K_BYTES: usize = 110;
pub const Q4_K_BYTES: usize = 144;
pub const Q5_K_BYTES: usize = 176;
pub const Q6_K_BYTES: usize = 210;

/// Decodes one row: `src` holds `dst.len()` elements of type `ty`.
///
/// Fails (without touching `dst`) when `dst.len()` is not a whole number of
/// blocks or when `src.len()` is not exactly the byte size of that many
/// elements.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    let expected = ty.row_bytes(dst.len()).ok_or_else(|| {
        Error::argument(
            "dst",
            format!(
                "{} elements is not a whole number of {ty} blocks of {}",
                dst.len(),
                ty.block_elems()
            ),
        )
    })?;
    if src.len() != expected {
        return Err(Error::argument(
            "src",
            format!(
                "{} bytes given for {} {ty} elements, which take {expected} bytes",
                src.len(),
                dst.len()
            ),
        ));
    }
    match ty {
        GgmlType::F32 => dequant_f32(src, dst),
        GgmlType::F16 => dequant_f16(src, dst),
        GgmlType::BF16 => dequant_bf16(src, dst),
        GgmlType::Q4_0 => for_each_block(src, dst, dequant_block_q4_0),
        GgmlType::Q4_1 => for_each_block(src, dst, dequant_block_q4_1),
        GgmlType::Q5_0 => for_each_block(src, dst, dequant_block_q5_0),
        GgmlType::Q5_1 => for_each_block(src, dst, dequant_block_q5_1),
        GgmlType::Q8_0 => for_each_block(src, dst, dequant_block_q8_0),
        GgmlType::Q2K => for_each_block(src, dst, dequant_block_q2_k),
        GgmlType::Q3K => for_each_block(src, dst, dequant_block_q3_k),
        GgmlType::Q4K => for_each_block(src, dst, dequant_block_q4_k),
        GgmlType::Q5K => for_each_block(src, dst, dequant_block_q5_k),
        GgmlType::Q6K => for_each_block(src, dst, dequant_block_q6_k),
    }
    Ok(())
}

/// Runs `f` on each (block, output) pair; the lengths were checked by the caller.
fn for_each_block<const B: usize, const E: usize>(
    src: &[u8],
    dst: &mut [f32],
    f: fn(&[u8; B], &mut [f32; E]),
) {
    for (b, o) in src.chunks_exact(B).zip(dst.chunks_exact_mut(E)) {
        // chunks_exact yields slices of exactly B and E elements.
        let b: &[u8; B] = b.try_into().expect("chunks_exact gives B bytes");
        let o: &mut [f32; E] = o.try_into().expect("chunks_exact gives E floats");
        f(b, o);
    }
}

// ---------------------------------------------------------------------------
// Scalar conversions

/// An `f16` stored little-endian, widened exactly to `f32`.
///
/// Finite values and infinities go through the `half` crate. NaNs keep their
/// exact bit pattern (sign, payload, and a signaling NaN stays signaling),
/// which is what numpy's `float16 -> float32` cast does; `half` would set the
/// quiet bit instead.
#[inline]
pub fn f16_to_f32(bits: u16) -> f32 {
    if bits & 0x7C00 == 0x7C00 && bits & 0x03FF != 0 {
        let sign = u32::from(bits & 0x8000) << 16;
        let payload = u32::from(bits & 0x03FF) << 13;
        return f32::from_bits(sign | 0x7F80_0000 | payload);
    }
    half::f16::from_bits(bits).to_f32()
}

/// A `bf16` widened to `f32`: its bits become the high half of the `f32`
/// bits, for every input including NaNs (gguf-py: `int16 << 16` reinterpreted;
/// `half::bf16::to_f32` would quiet signaling NaNs, so it is not used here).
#[inline]
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// The little-endian `f16` at `b[0..2]`, widened to `f32`.
#[inline]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// F32: the bytes reinterpreted (little-endian), bit for bit.
fn dequant_f32(src: &[u8], dst: &mut [f32]) {
    for (b, o) in src.chunks_exact(4).zip(dst.iter_mut()) {
        *o = f32::from_bits(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
}

/// F16: exact widening, see [`f16_to_f32`].
fn dequant_f16(src: &[u8], dst: &mut [f32]) {
    for (b, o) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *o = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// BF16: exact widening, see [`bf16_to_f32`].
fn dequant_bf16(src: &[u8], dst: &mut [f32]) {
    for (b, o) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *o = bf16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

// ---------------------------------------------------------------------------
// Legacy 32-element quants

/// Q4_0: `d: f16 | qs: [u8; 16]`.
/// `y[i] = d * (q[i] - 8)`: the integer `q - 8` is exact; one rounding (`d * q`).
pub fn dequant_block_q4_0(block: &[u8; Q4_0_BYTES], out: &mut [f32; QK]) {
    let d = f16_at(block, 0);
    let qs = &block[2..18];
    let (lo, hi) = out.split_at_mut(16);
    for j in 0..16 {
        lo[j] = d * (i32::from(qs[j] & 0x0F) - 8) as f32;
        hi[j] = d * (i32::from(qs[j] >> 4) - 8) as f32;
    }
}

/// Q4_1: `d: f16 | m: f16 | qs: [u8; 16]`.
/// `y[i] = (d * q[i]) + m`: two roundings, the product first (no FMA).
pub fn dequant_block_q4_1(block: &[u8; Q4_1_BYTES], out: &mut [f32; QK]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let qs = &block[4..20];
    let (lo, hi) = out.split_at_mut(16);
    for j in 0..16 {
        lo[j] = d * f32::from(qs[j] & 0x0F) + m;
        hi[j] = d * f32::from(qs[j] >> 4) + m;
    }
}

/// The fifth bit of element `i` of a Q5 block: bit `i` of the little-endian
/// `u32` `qh`.
#[inline]
fn q5_high_bit(qh: u32, i: usize) -> u8 {
    ((qh >> i) & 1) as u8
}

/// Q5_0: `d: f16 | qh: [u8; 4] (u32 LE) | qs: [u8; 16]`.
/// `q[i] = nibble(i) | (bit i of qh) << 4`; `y[i] = d * (q[i] - 16)`: one rounding.
pub fn dequant_block_q5_0(block: &[u8; Q5_0_BYTES], out: &mut [f32; QK]) {
    let d = f16_at(block, 0);
    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let qs = &block[6..22];
    let (lo, hi) = out.split_at_mut(16);
    for j in 0..16 {
        let ql = qs[j] & 0x0F | q5_high_bit(qh, j) << 4;
        let qh_ = qs[j] >> 4 | q5_high_bit(qh, j + 16) << 4;
        lo[j] = d * (i32::from(ql) - 16) as f32;
        hi[j] = d * (i32::from(qh_) - 16) as f32;
    }
}

/// Q5_1: `d: f16 | m: f16 | qh: [u8; 4] (u32 LE) | qs: [u8; 16]`.
/// `y[i] = (d * q[i]) + m`: two roundings, the product first (no FMA).
pub fn dequant_block_q5_1(block: &[u8; Q5_1_BYTES], out: &mut [f32; QK]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let qh = u32::from_le_bytes([block[4], block[5], block[6], block[7]]);
    let qs = &block[8..24];
    let (lo, hi) = out.split_at_mut(16);
    for j in 0..16 {
        let ql = qs[j] & 0x0F | q5_high_bit(qh, j) << 4;
        let qh_ = qs[j] >> 4 | q5_high_bit(qh, j + 16) << 4;
        lo[j] = d * f32::from(ql) + m;
        hi[j] = d * f32::from(qh_) + m;
    }
}

/// Q8_0: `d: f16 | qs: [i8; 32]`.
/// `y[i] = q[i] * d`: one rounding (multiplication is commutative, so the
/// operand order of numpy's `x * d` does not matter).
pub fn dequant_block_q8_0(block: &[u8; Q8_0_BYTES], out: &mut [f32; QK]) {
    let d = f16_at(block, 0);
    for (o, &q) in out.iter_mut().zip(&block[2..34]) {
        *o = f32::from(q as i8) * d;
    }
}

// ---------------------------------------------------------------------------
// K-quants (256-element super-blocks)

/// Q2_K: `scales: [u8; 16] | qs: [u8; 64] | d: f16 | dmin: f16`.
///
/// Element `k = 128*j + 32*s + l` (j < 2, s < 4, l < 32) has the 2-bit value
/// `q = (qs[32*j + l] >> 2*s) & 3` and belongs to group `g = k / 16`.
/// `dl = d * (scales[g] & 0xF)` and `ml = dmin * (scales[g] >> 4)` (one
/// rounding each), then `y = (dl * q) - ml` (two roundings, no FMA).
pub fn dequant_block_q2_k(block: &[u8; Q2_K_BYTES], out: &mut [f32; QK_K]) {
    let scales = &block[0..16];
    let qs = &block[16..80];
    let d = f16_at(block, 80);
    let dmin = f16_at(block, 82);
    for (g, chunk) in out.chunks_exact_mut(16).enumerate() {
        let dl = d * f32::from(scales[g] & 0x0F);
        let ml = dmin * f32::from(scales[g] >> 4);
        for (r, o) in chunk.iter_mut().enumerate() {
            let k = g * 16 + r;
            let (j, s, l) = (k / 128, (k / 32) % 4, k % 32);
            let q = f32::from((qs[32 * j + l] >> (2 * s)) & 3);
            *o = dl * q - ml;
        }
    }
}

/// The 16 signed 6-bit scales of a Q3_K block, already offset by -32.
///
/// Scale `g` has its low 4 bits in `scales[g % 8]` (low nibble for g < 8, high
/// nibble for g >= 8) and its high 2 bits at bit `2 * (g / 4)` of
/// `scales[8 + g % 4]`.
pub fn q3k_scales(scales: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (g, o) in out.iter_mut().enumerate() {
        let low = if g < 8 {
            scales[g] & 0x0F
        } else {
            scales[g - 8] >> 4
        };
        let high = (scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        *o = (low | (high << 4)) as i8 - 32;
    }
    out
}

/// Q3_K: `hmask: [u8; 32] | qs: [u8; 64] | scales: [u8; 12] | d: f16`.
///
/// Element `k = 128*j + 32*s + l` (j < 2, s < 4, l < 32) has the low 2 bits
/// `(qs[32*j + l] >> 2*s) & 3` and the high-mask bit `(hmask[l] >> (k / 32)) & 1`;
/// `q = low - 4` when that bit is 0 and `q = low` when it is 1 (exact integer).
/// Group `g = k / 16`: `dl = d * sc[g]` (one rounding, `sc` from
/// [`q3k_scales`]), then `y = dl * q` (one rounding).
pub fn dequant_block_q3_k(block: &[u8; Q3_K_BYTES], out: &mut [f32; QK_K]) {
    let hmask = &block[0..32];
    let qs = &block[32..96];
    let scales: &[u8; 12] = block[96..108].try_into().expect("12 bytes");
    let d = f16_at(block, 108);
    let sc = q3k_scales(scales);
    for (g, chunk) in out.chunks_exact_mut(16).enumerate() {
        let dl = d * f32::from(sc[g]);
        for (r, o) in chunk.iter_mut().enumerate() {
            let k = g * 16 + r;
            let (j, s, l) = (k / 128, (k / 32) % 4, k % 32);
            let low = ((qs[32 * j + l] >> (2 * s)) & 3) as i8;
            let high = (hmask[l] >> (k / 32)) & 1;
            let q = if high == 0 { low - 4 } else { low };
            *o = dl * f32::from(q);
        }
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K or Q5_K block
/// (llama.cpp's `get_scale_min_k4`).
///
/// For j < 4: `sc = scales[j] & 63`, `m = scales[j + 4] & 63`. For j >= 4:
/// `sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4)` and
/// `m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4)`.
///
/// # Panics
/// When `j >= 8` (a caller bug, not bad input).
#[inline]
pub fn q4k_scale_min(j: usize, scales: &[u8; 12]) -> (u8, u8) {
    assert!(j < 8, "Q4_K/Q5_K sub-block index {j} out of range 0..8");
    if j < 4 {
        (scales[j] & 0x3F, scales[j + 4] & 0x3F)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// The sub-block multipliers of a Q4_K/Q5_K block: for each of the 8
/// sub-blocks, `(d * sc, dmin * m)`, each one rounding.
#[inline]
fn q4k_multipliers(block: &[u8]) -> [(f32, f32); 8] {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let scales: &[u8; 12] = block[4..16].try_into().expect("12 bytes");
    let mut out = [(0.0, 0.0); 8];
    for (j, o) in out.iter_mut().enumerate() {
        let (sc, m) = q4k_scale_min(j, scales);
        *o = (d * f32::from(sc), dmin * f32::from(m));
    }
    out
}

/// Q4_K: `d: f16 | dmin: f16 | scales: [u8; 12] | qs: [u8; 128]`.
///
/// Sub-block `j` (32 elements, j < 8) reads nibble `j % 2` (low, then high) of
/// `qs[32 * (j / 2) ..][..32]`. With `(sc, m) = q4k_scale_min(j)`:
/// `dj = d * sc`, `mj = dmin * m` (one rounding each), `y = (dj * q) - mj`
/// (two roundings, no FMA).
pub fn dequant_block_q4_k(block: &[u8; Q4_K_BYTES], out: &mut [f32; QK_K]) {
    let mult = q4k_multipliers(block);
    let qs = &block[16..144];
    for (j, chunk) in out.chunks_exact_mut(32).enumerate() {
        let (dj, mj) = mult[j];
        let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
        let shift = 4 * (j % 2);
        for (o, &b) in chunk.iter_mut().zip(bytes) {
            let q = f32::from((b >> shift) & 0x0F);
            *o = dj * q - mj;
        }
    }
}

/// Q5_K: `d: f16 | dmin: f16 | scales: [u8; 12] | qh: [u8; 32] | qs: [u8; 128]`.
///
/// As Q4_K, with a fifth bit: element `l` of sub-block `j` adds
/// `((qh[l] >> j) & 1) << 4` to its nibble. `y = (dj * q) - mj` (two
/// roundings, no FMA).
pub fn dequant_block_q5_k(block: &[u8; Q5_K_BYTES], out: &mut [f32; QK_K]) {
    let mult = q4k_multipliers(block);
    let qh = &block[16..48];
    let qs = &block[48..176];
    for (j, chunk) in out.chunks_exact_mut(32).enumerate() {
        let (dj, mj) = mult[j];
        let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
        let shift = 4 * (j % 2);
        for (l, o) in chunk.iter_mut().enumerate() {
            let q = ((bytes[l] >> shift) & 0x0F) | (((qh[l] >> j) & 1) << 4);
            *o = dj * f32::from(q) - mj;
        }
    }
}

/// Q6_K: `ql: [u8; 128] | qh: [u8; 64] | scales: [i8; 16] | d: f16`.
///
/// Element `k = 128*h + r` (h < 2, r < 128) has the low nibble
/// `(ql[64*h + r % 64] >> 4*(r / 64)) & 0xF` and the high 2 bits
/// `(qh[32*h + r % 32] >> 2*(r / 32)) & 3`; `q = (low | high << 4) - 32`
/// (exact). Group `g = k / 16`: `dg = d * scales[g]` (one rounding), then
/// `y = dg * q` (one rounding).
pub fn dequant_block_q6_k(block: &[u8; Q6_K_BYTES], out: &mut [f32; QK_K]) {
    let ql = &block[0..128];
    let qh = &block[128..192];
    let scales = &block[192..208];
    let d = f16_at(block, 208);
    for (g, chunk) in out.chunks_exact_mut(16).enumerate() {
        let dg = d * f32::from(scales[g] as i8);
        for (i, o) in chunk.iter_mut().enumerate() {
            let k = 16 * g + i;
            let (h, r) = (k / 128, k % 128);
            let low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
            let high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
            let q = i32::from(low | (high << 4)) - 32;
            *o = dg * q as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(x: f32) -> [u8; 2] {
        half::f16::from_f32(x).to_bits().to_le_bytes()
    }

    fn decode(ty: GgmlType, src: &[u8]) -> Vec<f32> {
        let n = src.len() / ty.block_bytes() * ty.block_elems();
        let mut out = vec![f32::NAN; n];
        dequantize_row(ty, src, &mut out).expect("valid row");
        out
    }

    #[test]
    fn block_byte_constants_match_ggml_type() {
        let consts = [
            (GgmlType::Q4_0, Q4_0_BYTES),
            (GgmlType::Q4_1, Q4_1_BYTES),
            (GgmlType::Q5_0, Q5_0_BYTES),
            (GgmlType::Q5_1, Q5_1_BYTES),
            (GgmlType::Q8_0, Q8_0_BYTES),
            (GgmlType::Q2K, Q2_K_BYTES),
            (GgmlType::Q3K, Q3_K_BYTES),
            (GgmlType::Q4K, Q4_K_BYTES),
            (GgmlType::Q5K, Q5_K_BYTES),
            (GgmlType::Q6K, Q6_K_BYTES),
        ];
        for (ty, bytes) in consts {
            assert_eq!(ty.block_bytes(), bytes, "{ty}");
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        for ty in GgmlType::ALL {
            let n = ty.block_elems() * 2;
            let bytes = ty.block_bytes() * 2;
            let mut dst = vec![0.0f32; n];
            assert!(dequantize_row(ty, &vec![0u8; bytes], &mut dst).is_ok());
            for bad in [0, bytes - 1, bytes + 1] {
                let e = dequantize_row(ty, &vec![0u8; bad], &mut dst).unwrap_err();
                assert_eq!(e.code(), "E-ARG", "{ty}: {e}");
            }
            if ty.is_quantized() {
                let mut odd = vec![0.0f32; n + 1];
                let e = dequantize_row(ty, &vec![0u8; bytes], &mut odd).unwrap_err();
                assert_eq!(e.code(), "E-ARG", "{ty}: {e}");
            }
            // Empty rows are fine.
            assert!(dequantize_row(ty, &[], &mut []).is_ok());
        }
    }

    #[test]
    fn float_types() {
        let v = [1.5f32, -0.0, f32::MIN_POSITIVE / 4.0, f32::INFINITY];
        let src: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let out = decode(GgmlType::F32, &src);
        for (a, b) in out.iter().zip(&v) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        // f16: 1.0, -2.0, smallest subnormal, -0, inf, a signaling NaN (kept as is).
        let h: [u16; 6] = [0x3C00, 0xC000, 0x0001, 0x8000, 0x7C00, 0x7C01];
        let src: Vec<u8> = h.iter().flat_map(|x| x.to_le_bytes()).collect();
        let out: Vec<u32> = decode(GgmlType::F16, &src)
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(
            out,
            [
                0x3F80_0000,
                0xC000_0000,
                0x3380_0000,
                0x8000_0000,
                0x7F80_0000,
                0x7F80_2000
            ]
        );
        // bf16: high half of the f32 bits, NaNs included.
        let b: [u16; 4] = [0x3F80, 0xC049, 0x0001, 0xFF81];
        let src: Vec<u8> = b.iter().flat_map(|x| x.to_le_bytes()).collect();
        let out: Vec<u32> = decode(GgmlType::BF16, &src)
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(out, [0x3F80_0000, 0xC049_0000, 0x0001_0000, 0xFF81_0000]);
    }

    #[test]
    fn q4_0_and_q4_1() {
        let mut b = [0u8; Q4_0_BYTES];
        b[..2].copy_from_slice(&f16_bytes(0.5));
        // byte i: low nibble i (element i), high nibble 15 - i (element 16 + i).
        for i in 0..16 {
            b[2 + i] = (i as u8) | ((15 - i as u8) << 4);
        }
        let out = decode(GgmlType::Q4_0, &b);
        for i in 0..16 {
            assert_eq!(out[i], 0.5 * (i as f32 - 8.0));
            assert_eq!(out[16 + i], 0.5 * (7.0 - i as f32));
        }

        let mut b = [0u8; Q4_1_BYTES];
        b[..2].copy_from_slice(&f16_bytes(0.25));
        b[2..4].copy_from_slice(&f16_bytes(-1.0));
        for i in 0..16 {
            b[4 + i] = (i as u8) | ((15 - i as u8) << 4);
        }
        let out = decode(GgmlType::Q4_1, &b);
        for i in 0..16 {
            assert_eq!(out[i], 0.25 * i as f32 - 1.0);
            assert_eq!(out[16 + i], 0.25 * (15 - i) as f32 - 1.0);
        }
    }

    #[test]
    fn products_are_exact() {
        // The claim in the module docs: for every finite f16 scale d and the
        // integer ranges of every type, d * sc and (d * sc) * q are exact in
        // f32, so the only rounding is the final `+ m` / `- m`.
        let cases: [(i32, i32); 6] = [
            (1, 127),  // Q8_0: q in -128..=127
            (63, 31),  // Q4_K / Q5_K: sc, m <= 63, q <= 31
            (15, 3),   // Q2_K
            (-31, -4), // Q3_K: sc in -32..=31, q in -4..=3
            (127, 31), // Q6_K: sc is an i8, q in -32..=31
            (-127, -31),
        ];
        for bits in 0..=u16::MAX {
            let d = f16_to_f32(bits);
            if !d.is_finite() {
                continue;
            }
            for (sc, q) in cases {
                let ds = d * sc as f32;
                let y = ds * q as f32;
                assert_eq!(f64::from(ds), f64::from(d) * f64::from(sc), "{bits:#x}");
                assert_eq!(f64::from(y), f64::from(d) * f64::from(sc * q), "{bits:#x}");
            }
        }
    }

    #[test]
    fn q5_0_and_q5_1_high_bits() {
        let mut b = [0u8; Q5_0_BYTES];
        b[..2].copy_from_slice(&f16_bytes(1.0));
        // high bit set on odd elements; all nibbles 0xF.
        b[2..6].copy_from_slice(&0xAAAA_AAAAu32.to_le_bytes());
        b[6..].fill(0xFF);
        let out = decode(GgmlType::Q5_0, &b);
        for (i, &y) in out.iter().enumerate() {
            assert_eq!(y, if i % 2 == 1 { 15.0 } else { -1.0 }, "{i}");
        }

        let mut b = [0u8; Q5_1_BYTES];
        b[..2].copy_from_slice(&f16_bytes(2.0));
        b[2..4].copy_from_slice(&f16_bytes(0.5));
        b[4..8].copy_from_slice(&(1u32 << 31).to_le_bytes());
        let out = decode(GgmlType::Q5_1, &b);
        for (i, &y) in out.iter().enumerate() {
            assert_eq!(y, if i == 31 { 32.5 } else { 0.5 }, "{i}");
        }
    }

    #[test]
    fn q8_0() {
        let mut b = [0u8; Q8_0_BYTES];
        b[..2].copy_from_slice(&f16_bytes(-0.125));
        for i in 0..32 {
            b[2 + i] = (i as i32 * 8 - 128) as i8 as u8;
        }
        let out = decode(GgmlType::Q8_0, &b);
        for (i, &y) in out.iter().enumerate() {
            assert_eq!(y, (i as f32 * 8.0 - 128.0) * -0.125);
        }
    }

    #[test]
    fn q2_k() {
        let mut b = [0u8; Q2_K_BYTES];
        // group g: scale 1 + g % 15 (low nibble), min g (high nibble).
        for (g, s) in b[..16].iter_mut().enumerate() {
            *s = (1 + (g as u8) % 15) | ((g as u8) << 4);
        }
        // every 2-bit value = 3 except in the second 128 at shift 4 (=1).
        for j in 0..2 {
            for l in 0..32 {
                b[16 + 32 * j + l] = if j == 1 { 0b11_01_11_11 } else { 0xFF };
            }
        }
        b[80..82].copy_from_slice(&f16_bytes(0.5));
        b[82..84].copy_from_slice(&f16_bytes(0.25));
        let out = decode(GgmlType::Q2K, &b);
        for (k, &y) in out.iter().enumerate() {
            let g = k / 16;
            let q = if k / 32 == 6 { 1.0 } else { 3.0 };
            let want = 0.5 * (1 + g % 15) as f32 * q - 0.25 * g as f32;
            assert_eq!(y, want, "{k}");
        }
    }

    #[test]
    fn q3_k_scales_unpack() {
        // All 16 scales 0..16 as 6-bit values v = g + 33 (low 4 bits, high 2 bits).
        let mut s = [0u8; 12];
        for g in 0..16 {
            let v = g as u8 + 33;
            if g < 8 {
                s[g] |= v & 0xF;
            } else {
                s[g - 8] |= (v & 0xF) << 4;
            }
            s[8 + g % 4] |= (v >> 4) << (2 * (g / 4));
        }
        let sc = q3k_scales(&s);
        for (g, &v) in sc.iter().enumerate() {
            assert_eq!(v, g as i8 + 1);
        }
    }

    #[test]
    fn q3_k() {
        let mut b = [0u8; Q3_K_BYTES];
        // hmask: bit set only for element-column l even, in every 32-row.
        for (l, m) in b[..32].iter_mut().enumerate() {
            *m = if l % 2 == 0 { 0xFF } else { 0x00 };
        }
        // low 2 bits = 2 everywhere
        b[32..96].fill(0b10_10_10_10);
        // all scales = 32 + 2 -> sc = 2: low nibble 2, high bits 2.
        for i in 0..8 {
            b[96 + i] = 0x22;
        }
        for i in 8..12 {
            b[96 + i] = 0b10_10_10_10;
        }
        b[108..110].copy_from_slice(&f16_bytes(0.5));
        let out = decode(GgmlType::Q3K, &b);
        for (k, &y) in out.iter().enumerate() {
            let q = if k % 2 == 0 { 2.0 } else { -2.0 };
            assert_eq!(y, 1.0 * q, "{k}");
        }
    }

    #[test]
    fn q4_k_scale_min_unpack() {
        let mut s = [0u8; 12];
        // sub-block j: scale j + 40, min 63 - j (both 6 bits).
        for j in 0..8 {
            let (sc, m) = (j as u8 + 40, 63 - j as u8);
            if j < 4 {
                s[j] = sc;
                s[j + 4] = m;
            } else {
                s[j + 4] = (sc & 0xF) | ((m & 0xF) << 4);
                s[j - 4] |= (sc >> 4) << 6;
                s[j] |= (m >> 4) << 6;
            }
        }
        for j in 0..8 {
            assert_eq!(q4k_scale_min(j, &s), (j as u8 + 40, 63 - j as u8), "{j}");
        }
    }

    #[test]
    fn q4_k_and_q5_k() {
        let mut b = [0u8; Q4_K_BYTES];
        b[..2].copy_from_slice(&f16_bytes(0.5));
        b[2..4].copy_from_slice(&f16_bytes(0.25));
        // scales: sub-block j < 4 scale 2 min 4; j >= 4 scale 1 min 0.
        for j in 0..4 {
            b[4 + j] = 2;
            b[8 + j] = 4;
            b[12 + j] = 1;
        }
        // low nibble 3, high nibble 5.
        b[16..].fill(0x53);
        let out = decode(GgmlType::Q4K, &b);
        for (k, &y) in out.iter().enumerate() {
            let j = k / 32;
            let q = if j % 2 == 0 { 3.0 } else { 5.0 };
            let want = if j < 4 { 1.0 * q - 1.0 } else { 0.5 * q };
            assert_eq!(y, want, "{k}");
        }

        let mut b5 = [0u8; Q5_K_BYTES];
        b5[..16].copy_from_slice(&b[..16]);
        // fifth bit for sub-block 7 only, all columns.
        b5[16..48].fill(0x80);
        b5[48..].fill(0x53);
        let out = decode(GgmlType::Q5K, &b5);
        for (k, &y) in out.iter().enumerate() {
            let j = k / 32;
            let q = if j == 7 {
                21.0
            } else if j % 2 == 0 {
                3.0
            } else {
                5.0
            };
            let want = if j < 4 { 1.0 * q - 1.0 } else { 0.5 * q };
            assert_eq!(y, want, "{k}");
        }
    }

    #[test]
    fn q6_k() {
        let mut b = [0u8; Q6_K_BYTES];
        // element k = 128 h + r: low nibble from ql, high 2 bits from qh.
        // Set ql so that low = (r / 64) * 7 + 1 and qh so that high = r / 32.
        for h in 0..2 {
            for c in 0..64 {
                b[64 * h + c] = 1 | (8 << 4);
            }
            for c in 0..32 {
                b[128 + 32 * h + c] = 0b11_10_01_00;
            }
        }
        for g in 0..16 {
            b[192 + g] = (g as i8 - 8) as u8;
        }
        b[208..210].copy_from_slice(&f16_bytes(0.5));
        let out = decode(GgmlType::Q6K, &b);
        for (k, &y) in out.iter().enumerate() {
            let r = k % 128;
            let low = if r < 64 { 1 } else { 8 };
            let q = (low | ((r / 32) << 4)) as f32 - 32.0;
            let want = (0.5 * (k / 16) as f32 - 4.0) * q;
            assert_eq!(y, want, "{k}");
        }
    }
}
