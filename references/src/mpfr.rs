//! MPFR references for every engine kernel (via `rug`).
//!
//! Each function computes the mathematically exact result of a kernel's
//! formula, from the same f32/f64 inputs the kernel takes, in multiple
//! precision: dot products and matrix rows exactly (every product of two f32
//! values and every partial sum fit in [`PREC_EXACT`] bits), everything else at
//! [`PREC`] = 256 bits, i.e. with a relative error near 2^-250, which is exact
//! for all purposes of a test that measures an f32 or f64 result. Constants
//! (pi, 0.044715, rope bases) are taken as their true mathematical values, not
//! their f64 roundings.
//!
//! Dequantization references decode the raw block bytes independently of the
//! engine (following llama.cpp's `dequantize_row_*` loops, which walk the bytes
//! in a different order than the engine's decoders) and compute each value
//! `d·q + m`, `d·sc·q − dmin·m`, ... exactly, so that the engine's f32 can be
//! compared with the exact value rounded once.
//!
//! Helpers at the end turn an error into ULPs of the exact result.

use atenia_engine::formats::ggml_type::GgmlType;
use rug::float::{Constant, Round};
use rug::ops::Pow;
pub use rug::Float;

/// Working precision of the references (bits).
pub const PREC: u32 = 256;

/// Precision of the exact dot products: a product of two f32 values has at
/// most 48 significant bits and lies in [2^-298, 2^256), so any sum of up to
/// 2^40 such products is an integer multiple of 2^-298 below 2^296 and fits
/// in 298 + 296 < 640 bits without rounding.
pub const PREC_EXACT: u32 = 640;

/// `x` as an MPFR value (exact).
pub fn fl(x: f64) -> Float {
    Float::with_val(PREC, x)
}

/// A decimal constant as an MPFR value (correctly rounded to [`PREC`] bits).
pub fn dec(s: &str) -> Float {
    Float::with_val(PREC, Float::parse(s).expect("decimal constant"))
}

// ---------------------------------------------------------------------------
// Dot products and matrix rows

/// `Σ a_i b_i` exactly (then rounded only by the caller).
pub fn dot(a: &[f32], b: &[f32]) -> Float {
    assert_eq!(a.len(), b.len());
    let mut s = Float::with_val(PREC_EXACT, 0);
    let mut p = Float::new(PREC_EXACT);
    for (&x, &y) in a.iter().zip(b) {
        product(&mut p, x, y);
        s += &p;
    }
    s
}

/// `Σ |a_i b_i|` exactly: the condition-aware scale of a dot product's error.
pub fn dot_abs(a: &[f32], b: &[f32]) -> Float {
    assert_eq!(a.len(), b.len());
    let mut s = Float::with_val(PREC_EXACT, 0);
    let mut p = Float::new(PREC_EXACT);
    for (&x, &y) in a.iter().zip(b) {
        product(&mut p, x, y);
        s += Float::with_val(PREC_EXACT, p.abs_ref());
    }
    s
}

/// `y[t][r] = Σ_k w[r][k] x[t][k]` exactly, for `w` (`rows × cols`) and `x`
/// (`n × cols`), both row-major; the result is `n × rows`.
pub fn matmul(w: &[f32], rows: usize, cols: usize, x: &[f32], n: usize) -> Vec<Float> {
    assert_eq!(w.len(), rows * cols);
    assert_eq!(x.len(), n * cols);
    let mut y = Vec::with_capacity(n * rows);
    for t in 0..n {
        for r in 0..rows {
            y.push(dot(
                &w[r * cols..(r + 1) * cols],
                &x[t * cols..(t + 1) * cols],
            ));
        }
    }
    y
}

/// Sets `p` to the exact product `x · y`.
fn product(p: &mut Float, x: f32, y: f32) {
    use rug::Assign;
    p.assign(x);
    *p *= y;
}

// ---------------------------------------------------------------------------
// Norms, softmax, rotary embeddings

/// RMSNorm: `x_i / sqrt(mean(x²) + eps) · (offset + w_i)`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f64, offset: f64) -> Vec<Float> {
    assert_eq!(x.len(), w.len());
    let mut ss = Float::with_val(PREC_EXACT, 0);
    for &v in x {
        ss += Float::with_val(PREC, v).square();
    }
    let ms = Float::with_val(PREC, &ss / x.len() as u32);
    let r = (ms + eps).sqrt().recip();
    x.iter()
        .zip(w)
        .map(|(&xi, &wi)| {
            let scale = fl(offset) + wi;
            Float::with_val(PREC, xi) * &r * scale
        })
        .collect()
}

/// `softmax(x)_i = exp(x_i) / Σ exp(x_j)` (computed as `exp(x_i − max)` to stay in range).
pub fn softmax(x: &[f64]) -> Vec<Float> {
    let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<Float> = x.iter().map(|&v| (fl(v) - max).exp()).collect();
    let mut sum = fl(0.0);
    for v in &e {
        sum += v;
    }
    e.into_iter().map(|v| v / &sum).collect()
}

/// The rotary inverse frequency of pair `i`: `theta^(−2i/rotary_dim)`.
pub fn rope_inv_freq(theta: f64, i: usize, rotary_dim: usize) -> Float {
    let e = -Float::with_val(PREC, 2 * i as u32) / rotary_dim as u32;
    fl(theta).pow(e)
}

/// How a head's dimensions are paired (mirrors the engine's `RopeStyle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// `(2i, 2i+1)`.
    Interleaved,
    /// `(i, i + rotary_dim/2)`.
    Half,
}

/// Rotates each `head_dim`-wide head of `x` at position `pos`: pair `i` by the
/// angle `pos · theta^(−2i/rotary_dim)`, cos and sin multiplied by
/// `attention_factor`; dimensions past `rotary_dim` pass through.
pub fn rope(
    x: &[f32],
    head_dim: usize,
    rotary_dim: usize,
    pairing: Pairing,
    theta: f64,
    attention_factor: f64,
    pos: usize,
) -> Vec<Float> {
    let half = rotary_dim / 2;
    let cs: Vec<(Float, Float)> = (0..half)
        .map(|i| {
            let angle = rope_inv_freq(theta, i, rotary_dim) * pos as u64;
            let (s, c) = angle.sin_cos(Float::new(PREC));
            (c * attention_factor, s * attention_factor)
        })
        .collect();
    let mut out: Vec<Float> = x.iter().map(|&v| Float::with_val(PREC, v)).collect();
    for h in 0..x.len() / head_dim {
        let base = h * head_dim;
        for (i, (c, s)) in cs.iter().enumerate() {
            let (ia, ib) = match pairing {
                Pairing::Interleaved => (base + 2 * i, base + 2 * i + 1),
                Pairing::Half => (base + i, base + i + half),
            };
            let a = Float::with_val(PREC, x[ia]);
            let b = Float::with_val(PREC, x[ib]);
            out[ia] = Float::with_val(PREC, &a * c) - Float::with_val(PREC, &b * s);
            out[ib] = Float::with_val(PREC, &a * s) + Float::with_val(PREC, &b * c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Scalar functions

/// `e^x`.
pub fn exp(x: f64) -> Float {
    fl(x).exp()
}

/// `x · sigmoid(x) = x / (1 + e^−x)`.
pub fn silu(x: f64) -> Float {
    let e = fl(-x).exp();
    fl(x) / (e + 1u32)
}

/// The tanh approximation of GELU: `x/2 · (1 + tanh(sqrt(2/π) · (x + 0.044715 x³)))`,
/// with the true constants.
pub fn gelu_tanh(x: f64) -> Float {
    let pi = Float::with_val(PREC, Constant::Pi);
    let k = (Float::with_val(PREC, 2u32) / pi).sqrt();
    let xf = fl(x);
    let cube = Float::with_val(PREC, xf.clone().square()) * &xf;
    let z = k * (xf.clone() + dec("0.044715") * cube);
    xf * (z.tanh() + 1u32) / 2u32
}

/// `cap · tanh(x / cap)`.
pub fn softcap(x: f64, cap: f64) -> Float {
    (fl(x) / cap).tanh() * cap
}

/// Which gated activation (mirrors the engine's `Activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Silu,
    GeluTanh,
}

/// `act(gate_i) · up_i`.
pub fn gated(act: Act, gate: &[f32], up: &[f32]) -> Vec<Float> {
    assert_eq!(gate.len(), up.len());
    gate.iter()
        .zip(up)
        .map(|(&g, &u)| {
            let a = match act {
                Act::Silu => silu(g as f64),
                Act::GeluTanh => gelu_tanh(g as f64),
            };
            a * u
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Attention

/// The attention weights of one query head: `softmax_j(s_j)` with
/// `s_j = softcap(scale · q·k_j)` (or `scale · q·k_j` without a cap), over the
/// key rows given (each `q.len()` wide).
pub fn attention_weights(q: &[f32], keys: &[&[f32]], scale: f64, cap: Option<f64>) -> Vec<Float> {
    let scores: Vec<Float> = keys
        .iter()
        .map(|k| {
            let s = Float::with_val(PREC, dot(q, k) * scale);
            match cap {
                Some(c) => (s / c).tanh() * c,
                None => s,
            }
        })
        .collect();
    let mut max = scores[0].clone();
    for s in &scores {
        if *s > max {
            max = s.clone();
        }
    }
    let e: Vec<Float> = scores
        .iter()
        .map(|s| Float::with_val(PREC, s - &max).exp())
        .collect();
    let mut sum = fl(0.0);
    for v in &e {
        sum += v;
    }
    e.into_iter().map(|v| v / &sum).collect()
}

/// One head of one query: `Σ_j p_j v_j` with `p` from [`attention_weights`].
pub fn attend(
    q: &[f32],
    keys: &[&[f32]],
    values: &[&[f32]],
    scale: f64,
    cap: Option<f64>,
) -> Vec<Float> {
    let p = attention_weights(q, keys, scale, cap);
    let mut out: Vec<Float> = (0..q.len()).map(|_| fl(0.0)).collect();
    for (p, v) in p.iter().zip(values) {
        for (o, &vv) in out.iter_mut().zip(v.iter()) {
            *o += Float::with_val(PREC, p * vv);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Dequantization

/// The exact value of an IEEE binary number with `eb` exponent and `mb`
/// fraction bits, given its bits (NaN and infinities included).
fn ieee(bits: u64, eb: u32, mb: u32) -> Float {
    let sign = (bits >> (eb + mb)) & 1 == 1;
    let e = ((bits >> mb) & ((1 << eb) - 1)) as i32;
    let m = bits & ((1 << mb) - 1);
    let bias = (1i32 << (eb - 1)) - 1;
    let v = if e == (1 << eb) - 1 {
        if m != 0 {
            Float::with_val(PREC, rug::float::Special::Nan)
        } else {
            Float::with_val(PREC, rug::float::Special::Infinity)
        }
    } else if e == 0 {
        // Subnormal (or zero): m · 2^(1 − bias − mb).
        Float::with_val(PREC, m) << (1 - bias - mb as i32)
    } else {
        Float::with_val(PREC, m | (1 << mb)) << (e - bias - mb as i32)
    };
    if sign {
        -v
    } else {
        v
    }
}

/// An IEEE half (binary16), exactly.
pub fn f16_value(bits: u16) -> Float {
    ieee(bits as u64, 5, 10)
}

/// A bfloat16, exactly.
pub fn bf16_value(bits: u16) -> Float {
    ieee(bits as u64, 8, 7)
}

/// An IEEE single, exactly.
pub fn f32_value(bits: u32) -> Float {
    ieee(bits as u64, 8, 23)
}

fn h(b: &[u8], at: usize) -> Float {
    f16_value(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// `d · q` exactly.
fn dq(d: &Float, q: i32) -> Float {
    Float::with_val(PREC, d * q)
}

/// `d · q + m` exactly.
fn dqm(d: &Float, q: i32, m: &Float) -> Float {
    Float::with_val(PREC, d * q) + m
}

/// The exact values of a row of `ty` stored in `bytes` (a whole number of blocks).
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Vec<Float> {
    let bb = ty.block_bytes();
    assert_eq!(bytes.len() % bb, 0, "{ty}: not a whole number of blocks");
    let mut y = Vec::with_capacity(bytes.len() / bb * ty.block_elems());
    for x in bytes.chunks_exact(bb) {
        match ty {
            GgmlType::F32 => y.push(f32_value(u32::from_le_bytes([x[0], x[1], x[2], x[3]]))),
            GgmlType::F16 => y.push(f16_value(u16::from_le_bytes([x[0], x[1]]))),
            GgmlType::BF16 => y.push(bf16_value(u16::from_le_bytes([x[0], x[1]]))),
            GgmlType::Q4_0 => block_q4_0(x, &mut y),
            GgmlType::Q4_1 => block_q4_1(x, &mut y),
            GgmlType::Q5_0 => block_q5_0(x, &mut y),
            GgmlType::Q5_1 => block_q5_1(x, &mut y),
            GgmlType::Q8_0 => block_q8_0(x, &mut y),
            GgmlType::Q2K => block_q2_k(x, &mut y),
            GgmlType::Q3K => block_q3_k(x, &mut y),
            GgmlType::Q4K => block_q4_k(x, &mut y),
            GgmlType::Q5K => block_q5_k(x, &mut y),
            GgmlType::Q6K => block_q6_k(x, &mut y),
        }
    }
    y
}

/// Writes the 32 values of a legacy block given as `(low-nibble value, high-nibble value)`
/// for byte `j` into positions `j` and `j + 16`.
fn legacy(y: &mut Vec<Float>, vals: impl Fn(usize) -> (Float, Float)) {
    let start = y.len();
    y.resize(start + 32, fl(0.0));
    for j in 0..16 {
        let (a, b) = vals(j);
        y[start + j] = a;
        y[start + j + 16] = b;
    }
}

fn block_q4_0(x: &[u8], y: &mut Vec<Float>) {
    let d = h(x, 0);
    let qs = &x[2..18];
    legacy(y, |j| {
        let x0 = (qs[j] & 0x0F) as i32 - 8;
        let x1 = (qs[j] >> 4) as i32 - 8;
        (dq(&d, x0), dq(&d, x1))
    });
}

fn block_q4_1(x: &[u8], y: &mut Vec<Float>) {
    let (d, m) = (h(x, 0), h(x, 2));
    let qs = &x[4..20];
    legacy(y, |j| {
        let x0 = (qs[j] & 0x0F) as i32;
        let x1 = (qs[j] >> 4) as i32;
        (dqm(&d, x0, &m), dqm(&d, x1, &m))
    });
}

fn block_q5_0(x: &[u8], y: &mut Vec<Float>) {
    let d = h(x, 0);
    let qh = u32::from_le_bytes([x[2], x[3], x[4], x[5]]);
    let qs = &x[6..22];
    legacy(y, |j| {
        let xh0 = ((qh >> j) << 4) & 0x10;
        let xh1 = (qh >> (j + 12)) & 0x10;
        let x0 = ((qs[j] as u32 & 0x0F) | xh0) as i32 - 16;
        let x1 = ((qs[j] as u32 >> 4) | xh1) as i32 - 16;
        (dq(&d, x0), dq(&d, x1))
    });
}

fn block_q5_1(x: &[u8], y: &mut Vec<Float>) {
    let (d, m) = (h(x, 0), h(x, 2));
    let qh = u32::from_le_bytes([x[4], x[5], x[6], x[7]]);
    let qs = &x[8..24];
    legacy(y, |j| {
        let xh0 = ((qh >> j) << 4) & 0x10;
        let xh1 = (qh >> (j + 12)) & 0x10;
        let x0 = ((qs[j] as u32 & 0x0F) | xh0) as i32;
        let x1 = ((qs[j] as u32 >> 4) | xh1) as i32;
        (dqm(&d, x0, &m), dqm(&d, x1, &m))
    });
}

fn block_q8_0(x: &[u8], y: &mut Vec<Float>) {
    let d = h(x, 0);
    for &q in &x[2..34] {
        y.push(dq(&d, q as i8 as i32));
    }
}

fn block_q2_k(x: &[u8], y: &mut Vec<Float>) {
    let scales = &x[0..16];
    let (d, min) = (h(x, 80), h(x, 82));
    let mut q = &x[16..80];
    let mut is = 0;
    for _n in 0..2 {
        let mut shift = 0;
        for _j in 0..4 {
            for half in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = dq(&d, (sc & 0xF) as i32);
                let ml = -dq(&min, (sc >> 4) as i32);
                for l in 0..16 {
                    y.push(dqm(&dl, ((q[l + 16 * half] >> shift) & 3) as i32, &ml));
                }
            }
            shift += 2;
        }
        q = &q[32..];
    }
}

fn block_q3_k(x: &[u8], y: &mut Vec<Float>) {
    let hm = &x[0..32];
    let mut q = &x[32..96];
    let d_all = h(x, 108);
    // llama.cpp's unpacking of the 12 scale bytes into 16 6-bit scales.
    let mut aux = [0u32; 4];
    for (i, a) in aux.iter_mut().take(3).enumerate() {
        *a = u32::from_le_bytes([x[96 + 4 * i], x[97 + 4 * i], x[98 + 4 * i], x[99 + 4 * i]]);
    }
    let (kmask1, kmask2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
    let tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | ((tmp & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    let scales: Vec<i32> = aux
        .iter()
        .flat_map(|a| a.to_le_bytes())
        .map(|b| b as i8 as i32)
        .collect();
    let mut m = 1u8;
    let mut is = 0;
    for _n in 0..2 {
        let mut shift = 0;
        for _j in 0..4 {
            for half in 0..2 {
                let dl = dq(&d_all, scales[is] - 32);
                is += 1;
                for l in 0..16 {
                    let k = l + 16 * half;
                    let low = ((q[k] >> shift) & 3) as i32;
                    let v = low - if hm[k] & m != 0 { 0 } else { 4 };
                    y.push(dq(&dl, v));
                }
            }
            shift += 2;
            m <<= 1;
        }
        q = &q[32..];
    }
}

/// llama.cpp's `get_scale_min_k4`.
fn scale_min_k4(j: usize, q: &[u8]) -> (i32, i32) {
    if j < 4 {
        ((q[j] & 63) as i32, (q[j + 4] & 63) as i32)
    } else {
        (
            ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)) as i32,
            ((q[j + 4] >> 4) | ((q[j] >> 6) << 4)) as i32,
        )
    }
}

fn block_q4_k(x: &[u8], y: &mut Vec<Float>) {
    let (d, min) = (h(x, 0), h(x, 2));
    let scales = &x[4..16];
    let mut q = &x[16..144];
    let mut is = 0;
    for _j in 0..4 {
        let (sc, m) = scale_min_k4(is, scales);
        let (d1, m1) = (dq(&d, sc), -dq(&min, m));
        let (sc, m) = scale_min_k4(is + 1, scales);
        let (d2, m2) = (dq(&d, sc), -dq(&min, m));
        for &b in &q[..32] {
            y.push(dqm(&d1, (b & 0xF) as i32, &m1));
        }
        for &b in &q[..32] {
            y.push(dqm(&d2, (b >> 4) as i32, &m2));
        }
        q = &q[32..];
        is += 2;
    }
}

fn block_q5_k(x: &[u8], y: &mut Vec<Float>) {
    let (d, min) = (h(x, 0), h(x, 2));
    let scales = &x[4..16];
    let qh = &x[16..48];
    let mut ql = &x[48..176];
    let mut is = 0;
    let (mut u1, mut u2) = (1u8, 2u8);
    for _j in 0..4 {
        let (sc, m) = scale_min_k4(is, scales);
        let (d1, m1) = (dq(&d, sc), -dq(&min, m));
        let (sc, m) = scale_min_k4(is + 1, scales);
        let (d2, m2) = (dq(&d, sc), -dq(&min, m));
        for l in 0..32 {
            let v = (ql[l] & 0xF) as i32 + if qh[l] & u1 != 0 { 16 } else { 0 };
            y.push(dqm(&d1, v, &m1));
        }
        for l in 0..32 {
            let v = (ql[l] >> 4) as i32 + if qh[l] & u2 != 0 { 16 } else { 0 };
            y.push(dqm(&d2, v, &m2));
        }
        ql = &ql[32..];
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

fn block_q6_k(x: &[u8], y: &mut Vec<Float>) {
    let d = h(x, 208);
    let start = y.len();
    y.resize(start + 256, fl(0.0));
    for n in 0..2 {
        let ql = &x[64 * n..];
        let qh = &x[128 + 32 * n..];
        let sc = &x[192 + 8 * n..];
        let out = &mut y[start + 128 * n..start + 128 * (n + 1)];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            let s = |k: usize| dq(&d, sc[is + k] as i8 as i32);
            out[l] = dq(&s(0), q1);
            out[l + 32] = dq(&s(2), q2);
            out[l + 64] = dq(&s(4), q3);
            out[l + 96] = dq(&s(6), q4);
        }
    }
}

// ---------------------------------------------------------------------------
// Rounding and ULPs

/// `x` rounded to the nearest f32 (ties to even), subnormals and overflow to
/// ±inf included.
pub fn round_f32(x: &Float) -> f32 {
    let mut r = Float::with_val(24, 0);
    if x.is_nan() {
        return f32::NAN;
    }
    if x.is_infinite() || x.is_zero() {
        return x.to_f32();
    }
    // Round to 24 bits first, then handle the subnormal and overflow ranges
    // explicitly (rounding directly at the fixed exponent 2^-149 there).
    let e = x.get_exp().expect("finite nonzero");
    // x = m · 2^e with 0.5 ≤ |m| < 1; f32 normals need e ≥ -125.
    if e < -125 {
        let scaled = Float::with_val(PREC_EXACT, x << 149u32);
        let i = scaled.to_integer_round(Round::Nearest).expect("finite").0;
        let v = i.to_f64() as f32 * 2f32.powi(-75) * 2f32.powi(-74);
        return if v == 0.0 && x.is_sign_negative() {
            -0.0
        } else {
            v
        };
    }
    use rug::ops::AssignRound;
    r.assign_round(x, Round::Nearest);
    if r.clone().abs() > f32::MAX {
        return if x.is_sign_negative() {
            f32::NEG_INFINITY
        } else {
            f32::INFINITY
        };
    }
    r.to_f32()
}

/// `x` rounded to the nearest f64.
pub fn round_f64(x: &Float) -> f64 {
    x.to_f64()
}

/// The spacing of f32 values at `x`: `2^(e − 24)` for `2^(e−1) ≤ |x| < 2^e`,
/// at least the subnormal spacing 2^-149 (for `x = 0` too).
pub fn ulp_f32(x: &Float) -> f64 {
    match x.get_exp() {
        Some(e) => pow2((e - 24).clamp(-149, 1023)),
        None => pow2(-149),
    }
}

/// `2^e` for `-1074 ≤ e ≤ 1023`, exactly.
pub fn pow2(e: i32) -> f64 {
    assert!((-1074..=1023).contains(&e), "2^{e} is not an f64");
    if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (e + 1074))
    }
}

/// The spacing of f64 values at `x` (at least 2^-1074).
pub fn ulp_f64(x: &Float) -> f64 {
    match x.get_exp() {
        Some(e) => pow2((e - 53).clamp(-1074, 1023)),
        None => pow2(-1074),
    }
}

/// `|x|` rounded up to f64.
pub fn abs_up(x: &Float) -> f64 {
    x.clone().abs().to_f64_round(Round::Up)
}

/// `|got − exact|` (as f64, rounded up to within one part in 2^200).
pub fn abs_err(got: f64, exact: &Float) -> f64 {
    Float::with_val(PREC_EXACT, got - exact)
        .abs()
        .to_f64_round(Round::Up)
}

/// `|got − exact|` in f32 ULPs of `exact`.
pub fn ulps_f32(got: f32, exact: &Float) -> f64 {
    abs_err(got as f64, exact) / ulp_f32(exact)
}

/// `|got − exact|` in f64 ULPs of `exact`.
pub fn ulps_f64(got: f64, exact: &Float) -> f64 {
    abs_err(got, exact) / ulp_f64(exact)
}
