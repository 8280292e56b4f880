//! A bfloat16 forward pass: what PyTorch computes for the same model loaded
//! with `torch_dtype=torch.bfloat16` on the CPU (Hugging Face transformers,
//! eager attention), emulated in plain Rust so that the validate report can
//! say how far a bfloat16 computation lands from float64 on the same prompts.
//!
//! It is a comparison point, not a reference: the engine is never checked
//! against it. It mirrors [`crate::forward_f64`] (same model data, same
//! streaming of weight rows, no engine kernel) and changes only where numbers
//! are rounded. The roundings it models, each round-to-nearest-even to
//! bfloat16 ([`round_bf16`]):
//!
//! - **Weights**: every matrix row as dequantized to f32 by the engine's exact
//!   dequantizer, then rounded to bf16 (what `model.to(torch.bfloat16)` does to
//!   the dequantized GGUF tensors); biases and Llama-style norm weights too.
//!   Gemma-style norm weights are stored as `w` with `1 + w` applied in f32, so
//!   `w` (the file's `1 + w` minus one, for GGUF) is rounded and the `1 +` is not.
//! - **Every activation tensor between ops is bf16**: the embedding output (and
//!   its product with Gemma's `sqrt(hidden)`, itself rounded to bf16 first),
//!   each norm's output, q/k/v, the rotary products and their sums, the
//!   attention scores (after the q·k product, after the scaling, after each
//!   softcap step), the attention probabilities and output, the o/gate/up/down
//!   projections, the activation and its product with `up`, the residual stream
//!   after each add, and the logits (and each final softcap step).
//! - **Matrix and dot products** multiply bf16 values (exact in f32) and
//!   accumulate in f32 (16 partial sums, like a SIMD kernel), then round the
//!   result (plus the bias, if any) once to bf16.
//! - **Element-wise ops** (scaling, activation, products, adds) compute in f32
//!   from their bf16 inputs (PyTorch's "opmath" type) and round once to bf16.
//! - **RMSNorm**, Llama style (HF `LlamaRMSNorm`): the bf16 input widened to
//!   f32, mean of squares, `rsqrt(ms + eps)` and the product in f32, rounded to
//!   bf16, then times the bf16 weight, rounded again. Gemma style (families
//!   `gemma*`, HF `GemmaRMSNorm`): everything in f32, `x · r · (1 + w)`, rounded
//!   once at the end.
//! - **Rotary embeddings** (HF `LlamaRotaryEmbedding`): angles `pos · inv_freq`
//!   in f32, `cos`/`sin` (times the attention factor) in f32 then rounded to
//!   bf16; `q·cos` and `rotate_half(q)·sin` each rounded, their sum rounded.
//! - **Softmax** in f32 over the bf16 scores (`softmax(dtype=torch.float32)`),
//!   then the probabilities rounded to bf16.
//!
//! Transcendental functions (exp, tanh, cos, sin, sqrt) are evaluated in f64
//! on the f32 operand and rounded to f32, i.e. correctly rounded where
//! PyTorch's vectorized f32 versions are within an ulp or two: a difference far
//! below the bf16 roundings that follow. Not modelled: oneDNN's exact blocking
//! of the f32 accumulation, and SDPA's fused attention (which keeps the scores
//! in f32 and rounds only the unnormalized probabilities); so figures land near,
//! not exactly on, PyTorch's.

use atenia_engine::formats::storage::Matrix;
use atenia_engine::kernels::activation::Activation;
use atenia_engine::kernels::rope::{Rope, RopeStyle};
use atenia_engine::model::{LayerConfig, LayerWeights, Model, ModelConfig};

use crate::stream::{stream_rows, Streaming};

/// Rounds an f32 to the nearest bfloat16 (ties to even), returned as the f32
/// of the same value. NaN stays NaN; values beyond bf16's range become ±inf.
pub fn round_bf16(x: f32) -> f32 {
    if x.is_nan() {
        return f32::NAN;
    }
    let b = x.to_bits();
    let lsb = (b >> 16) & 1;
    f32::from_bits(b.wrapping_add(0x7fff + lsb) & 0xffff_0000)
}

/// f64 → f32 → bf16: a value computed in f32 arithmetic (evaluated in f64 and
/// rounded to f32), then stored as bf16.
fn bf(x: f64) -> f32 {
    round_bf16(x as f32)
}

/// How the family's RMSNorm applies its weight.
#[derive(Clone, Copy)]
enum NormStyle {
    /// `w · bf16(x · r)`, the weight bf16 (Llama, Qwen, Phi-3, Mistral, SmolLM2).
    Llama,
    /// `bf16(x · r · (1 + w))` in f32 (Gemma 1/2/3).
    Gemma,
}

/// The bf16 model constants shared by every layer.
struct Ctx<'a> {
    c: &'a ModelConfig,
    style: NormStyle,
    eps: f32,
    how: &'a Streaming,
}

impl Ctx<'_> {
    /// The f32 factor a norm multiplies by (per element of `w` as the engine holds it).
    fn norm_weight(&self, w: &[f32]) -> Vec<f32> {
        let off = self.c.norm_weight_offset as f32;
        match self.style {
            NormStyle::Llama => w.iter().map(|&v| round_bf16(off + v)).collect(),
            NormStyle::Gemma => {
                // HF holds the bf16 `w` and computes `1 + w.float()`; the engine
                // holds `w` (offset 1, HF files) or `1 + w` (offset 0, GGUF files).
                w.iter().map(|&v| 1.0 + round_bf16(v + off - 1.0)).collect()
            }
        }
    }

    /// RMSNorm of each `w.len()`-wide row of bf16 values.
    fn rms_norm(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        let w = self.norm_weight(w);
        let d = w.len();
        let mut out = vec![0f32; x.len()];
        for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let ms = dot_f32(xr, xr) / d as f32;
            let r = (1.0 / ((ms + self.eps) as f64).sqrt()) as f32;
            for ((o, &xi), &wi) in or.iter_mut().zip(xr).zip(&w) {
                *o = match self.style {
                    NormStyle::Llama => round_bf16(wi * round_bf16(xi * r)),
                    NormStyle::Gemma => round_bf16(xi * r * wi),
                };
            }
        }
        out
    }
}

/// Logits of every position (`[seq][vocab]`, bf16 values widened to f64) of a
/// bfloat16 computation of `model` over `tokens` at positions `0..seq`; see
/// the module documentation for which roundings it models.
///
/// # Panics
/// When a token is outside the vocabulary or `tokens` is empty.
pub fn forward_bf16(model: &Model, tokens: &[u32]) -> Vec<Vec<f64>> {
    forward_bf16_with(model, tokens, &Streaming::default())
}

/// [`forward_bf16`], streaming the weights as `how` says (the same bits
/// whatever it says; see [`crate::stream`]).
///
/// # Panics
/// When a token is outside the vocabulary or `tokens` is empty.
pub fn forward_bf16_with(model: &Model, tokens: &[u32], how: &Streaming) -> Vec<Vec<f64>> {
    let c = &model.config;
    let w = &model.weights;
    let n = tokens.len();
    assert!(n > 0, "no tokens");
    let hid = c.hidden;
    let ctx = Ctx {
        c,
        style: if c.family.starts_with("gemma") {
            NormStyle::Gemma
        } else {
            NormStyle::Llama
        },
        eps: c.norm_eps as f32,
        how,
    };

    // Embeddings; Gemma multiplies by sqrt(hidden) rounded to the weights' dtype.
    let scale = c.embed_scale.map(bf);
    let mut x = vec![0f32; n * hid];
    let mut row = vec![0f32; hid];
    for (t, &tok) in tokens.iter().enumerate() {
        assert!(
            (tok as usize) < c.vocab,
            "token {tok} outside the vocabulary of {}",
            c.vocab
        );
        w.embed
            .dequantize_row_into(tok as usize, &mut row)
            .expect("embedding row");
        how.done_with(&w.embed, tok as usize, tok as usize + 1);
        for (xi, &e) in x[t * hid..(t + 1) * hid].iter_mut().zip(&row) {
            let e = round_bf16(e);
            *xi = match scale {
                Some(s) => round_bf16(e * s),
                None => e,
            };
        }
    }

    let ropes = c.ropes_for(n);
    for (lc, lw) in c.layers.iter().zip(&w.layers) {
        layer(&ctx, &ropes[lc.rope], lc, lw, &mut x, n);
    }

    let h = ctx.rms_norm(&x, &w.final_norm);
    output(&w.output, c.final_softcap, &h, n, how)
}

/// The bf16 logits of the `n` rows of `h` (widened to f64, each position's
/// row of `vocab`), a chunk of vocabulary rows at a time, each value
/// soft-capped as it lands.
fn output(w: &Matrix, softcap: Option<f64>, h: &[f32], n: usize, how: &Streaming) -> Vec<Vec<f64>> {
    assert_eq!(h.len(), n * w.cols, "{}: input size", w.name);
    let cap = softcap.map(bf);
    let mut logits = vec![vec![0f64; w.rows]; n];
    stream_rows(
        w,
        n,
        how,
        f32_buffer(w),
        bf16_dot_row(h, w.cols, None),
        |r0, block| {
            for (i, out) in block.chunks_exact(n).enumerate() {
                for (t, &l) in out.iter().enumerate() {
                    let l = match cap {
                        Some(cap) => {
                            let th = round_bf16(l / cap);
                            let th = bf((th as f64).tanh());
                            round_bf16(th * cap)
                        }
                        None => l,
                    };
                    logits[t][r0 + i] = l as f64;
                }
            }
        },
    );
    logits
}

/// One decoder layer, updating the bf16 residual stream `x` (`n × hidden`).
fn layer(ctx: &Ctx<'_>, rope: &Rope, lc: &LayerConfig, lw: &LayerWeights, x: &mut [f32], n: usize) {
    let c = ctx.c;
    let linear =
        |w: &Matrix, x: &[f32], n: usize, bias: Option<&[f32]>| linear(w, x, n, bias, ctx.how);
    let a = &lc.attn;
    let hd = a.head_dim;

    // Attention block.
    let h = ctx.rms_norm(x, &lw.attn_norm);
    let mut q = linear(&lw.q, &h, n, lw.q_bias.as_deref());
    let mut k = linear(&lw.k, &h, n, lw.k_bias.as_deref());
    let v = linear(&lw.v, &h, n, lw.v_bias.as_deref());
    if let Some(qn) = &lw.q_norm {
        q = ctx.rms_norm(&q, qn);
    }
    if let Some(kn) = &lw.k_norm {
        k = ctx.rms_norm(&k, kn);
    }
    let (qd, kvd) = (a.n_heads * hd, a.n_kv_heads * hd);
    for t in 0..n {
        let cs = cos_sin(rope, t);
        rotate(rope, &cs, &mut q[t * qd..(t + 1) * qd], hd);
        rotate(rope, &cs, &mut k[t * kvd..(t + 1) * kvd], hd);
    }

    // Eager attention: bf16 scores, f32 softmax, bf16 probabilities.
    let group = a.n_heads / a.n_kv_heads;
    let scale = a.scale as f32;
    let softcap = a.softcap.map(|s| s as f32);
    let mut att = vec![0f32; n * qd];
    let mut scores: Vec<f32> = Vec::with_capacity(n);
    let mut acc = vec![0f32; hd];
    for t in 0..n {
        let first = match a.window {
            Some(win) => (t + 1).saturating_sub(win),
            None => 0,
        };
        for head in 0..a.n_heads {
            let kvh = head / group;
            let qh = &q[t * qd + head * hd..t * qd + (head + 1) * hd];
            scores.clear();
            for j in first..=t {
                let kj = &k[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                let mut s = round_bf16(dot_f32(qh, kj));
                s = round_bf16(s * scale);
                if let Some(cap) = softcap {
                    s = round_bf16(s / cap);
                    s = bf((s as f64).tanh());
                    s = round_bf16(s * cap);
                }
                scores.push(s);
            }
            // softmax in f32 (exp evaluated in f64, rounded to f32), then bf16.
            let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for s in scores.iter_mut() {
                *s = (((*s - max) as f64).exp()) as f32;
                sum += *s;
            }
            acc.iter_mut().for_each(|o| *o = 0.0);
            for (i, j) in (first..=t).enumerate() {
                let p = round_bf16(scores[i] / sum);
                let vj = &v[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                for (o, &vv) in acc.iter_mut().zip(vj) {
                    *o += p * vv;
                }
            }
            let out = &mut att[t * qd + head * hd..t * qd + (head + 1) * hd];
            for (o, &s) in out.iter_mut().zip(&acc) {
                *o = round_bf16(s);
            }
        }
    }
    let mut o = linear(&lw.o, &att, n, None);
    if let Some(pn) = &lw.post_attn_norm {
        o = ctx.rms_norm(&o, pn);
    }
    for (xi, oi) in x.iter_mut().zip(&o) {
        *xi = round_bf16(*xi + oi);
    }

    // Gated MLP block: act(gate) and act(gate) · up each rounded to bf16.
    let h = ctx.rms_norm(x, &lw.ffn_norm);
    let gate = linear(&lw.gate, &h, n, None);
    let up = linear(&lw.up, &h, n, None);
    let act: Vec<f32> = gate
        .iter()
        .zip(&up)
        .map(|(&g, &u)| {
            let g64 = g as f64;
            let a = match c.activation {
                Activation::Silu => g64 / (1.0 + (-g64).exp()),
                Activation::GeluTanh => {
                    let s = (2.0 / std::f64::consts::PI).sqrt();
                    0.5 * g64 * (1.0 + (s * (g64 + 0.044715 * g64 * g64 * g64)).tanh())
                }
            };
            round_bf16(bf(a) * u)
        })
        .collect();
    let mut d = linear(&lw.down, &act, n, None);
    if let Some(pn) = &lw.post_ffn_norm {
        d = ctx.rms_norm(&d, pn);
    }
    for (xi, di) in x.iter_mut().zip(&d) {
        *xi = round_bf16(*xi + di);
    }
}

/// bf16 `(cos, sin)` of each rotated pair at position `pos`: the angle
/// `pos · inv_freq` in f32, cos/sin in f32 times the attention factor, rounded.
fn cos_sin(rope: &Rope, pos: usize) -> Vec<(f32, f32)> {
    let factor = rope.attention_factor as f32;
    rope.inv_freq
        .iter()
        .take(rope.rotary_dim / 2)
        .map(|&f| {
            let angle = (pos as f32 * f as f32) as f64;
            let c = angle.cos() as f32;
            let s = angle.sin() as f32;
            (round_bf16(c * factor), round_bf16(s * factor))
        })
        .collect()
}

/// `x·cos + rotate_half(x)·sin` on each `head_dim`-wide head, each product
/// and the sum rounded to bf16 (the three ops of HF's `apply_rotary_pos_emb`).
fn rotate(rope: &Rope, cs: &[(f32, f32)], x: &mut [f32], head_dim: usize) {
    let half = rope.rotary_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &(c, s)) in cs.iter().enumerate() {
            let (ia, ib) = match rope.style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::Half => (i, i + half),
            };
            let (a, b) = (head[ia], head[ib]);
            head[ia] = round_bf16(round_bf16(a * c) + round_bf16(-b * s));
            head[ib] = round_bf16(round_bf16(b * c) + round_bf16(a * s));
        }
    }
}

/// An f32 dot product with 16 partial sums (a SIMD kernel's order).
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut s = [0f32; 16];
    let main = a.len() - a.len() % 16;
    for (ca, cb) in a[..main].chunks_exact(16).zip(b[..main].chunks_exact(16)) {
        for l in 0..16 {
            s[l] += ca[l] * cb[l];
        }
    }
    for k in main..a.len() {
        s[k - main] += a[k] * b[k];
    }
    let mut w = 16;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            s[l] += s[l + w];
        }
    }
    s[0]
}

/// `y[t][r] = bf16(bf16(W[r]) · x[t] + bf16(bias[r]))`, accumulated in f32.
/// Each row of `W` is dequantized once (exactly, to f32), rounded to bf16 and
/// used for all `n` inputs.
fn linear(w: &Matrix, x: &[f32], n: usize, bias: Option<&[f32]>, how: &Streaming) -> Vec<f32> {
    let rows = w.rows;
    assert_eq!(x.len(), n * w.cols, "{}: input size", w.name);
    let mut y = vec![0f32; n * rows];
    stream_rows(
        w,
        n,
        how,
        f32_buffer(w),
        bf16_dot_row(x, w.cols, bias),
        |r0, block| {
            for (i, out) in block.chunks_exact(n).enumerate() {
                for (t, &v) in out.iter().enumerate() {
                    y[t * rows + r0 + i] = v;
                }
            }
        },
    );
    y
}

/// No per-thread state beyond the streamed row itself.
fn f32_buffer(_w: &Matrix) -> impl Fn() + Sync {
    || ()
}

/// One weight row `r`, rounded to bf16 in place, dotted with each
/// `cols`-wide row of `x` (plus the bf16 bias), each result rounded to bf16.
fn bf16_dot_row<'a>(
    x: &'a [f32],
    cols: usize,
    bias: Option<&'a [f32]>,
) -> impl Fn(&mut (), usize, &mut [f32], &mut [f32]) + Sync + 'a {
    move |_, r, r32, out| {
        r32.iter_mut().for_each(|v| *v = round_bf16(*v));
        let b = bias.map_or(0.0, |b| round_bf16(b[r]));
        for (t, o) in out.iter_mut().enumerate() {
            *o = round_bf16(dot_f32(r32, &x[t * cols..(t + 1) * cols]) + b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_matches_half_and_ties_to_even() {
        for bits in (0u32..=u32::MAX).step_by(65_521) {
            let x = f32::from_bits(bits);
            let want = half::bf16::from_f32(x).to_f32();
            let got = round_bf16(x);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{x:e}: {got:e} vs {want:e}"
            );
        }
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
    }

    #[test]
    fn dot_sums_every_element() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b = vec![1f32; 37];
        assert_eq!(dot_f32(&a, &b), (0..37).sum::<i32>() as f32);
    }
}
