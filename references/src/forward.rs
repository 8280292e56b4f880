//! A plain float64 forward pass, written separately from the engine's kernels.
//!
//! It reads the engine's parsed model (its [`ModelConfig`] and the weights'
//! bytes), dequantizes each weight row with the engine's exact dequantizer
//! (`Matrix::dequantize_row_into`, whose f32 values are the file's values),
//! and computes everything else in f64 with the textbook formulas, llama2.c
//! style: no KV cache, every position attends to its visible keys directly.
//! It uses no engine kernel (no `kernels::*` function, no decoder); the only
//! engine items it names are the model's data types and enums.
//!
//! Weights are streamed ([`crate::stream`]): layer by layer, matrix by
//! matrix, chunk by chunk of rows, each weight row is dequantized once per
//! call (to f32, then widened exactly to f64) and used for every position, so
//! memory stays at one row per thread plus the activations (`positions ×
//! width` in f64), one chunk's outputs and the logits. The embedding is read
//! only at the rows of the given tokens, the output projection a chunk of
//! vocabulary rows at a time. With [`Pages::Release`](crate::stream::Pages::Release) the pages of the model
//! file are dropped after use, so that a model larger than memory costs only
//! the chunk in flight.

use atenia_engine::formats::storage::Matrix;
use atenia_engine::kernels::activation::Activation;
use atenia_engine::kernels::rope::{Rope, RopeStyle};
use atenia_engine::model::{LayerConfig, LayerWeights, Model, ModelConfig};

use crate::stream::{stream_rows, Streaming};

/// The observer of [`forward_f64`]: `(layer, rows)` where `rows` is `seq × hidden`.
pub type Observer<'a> = dyn FnMut(usize, &[f64]) + 'a;

/// Logits of every position (`[seq][vocab]`) for `tokens` at positions `0..seq`.
///
/// `observer` receives the residual stream after each layer (`layer`,
/// `seq × hidden`) and, as layer `n_layers`, the final norm's output, like the
/// engine's `Session::forward_observed` with `Logits::All`.
///
/// # Panics
/// When a token is outside the vocabulary or `tokens` is empty.
pub fn forward_f64(
    model: &Model,
    tokens: &[u32],
    observer: Option<&mut Observer<'_>>,
) -> Vec<Vec<f64>> {
    forward_f64_with(model, tokens, observer, &Streaming::default())
}

/// [`forward_f64`], streaming the weights as `how` says (the same bits
/// whatever it says).
///
/// # Panics
/// When a token is outside the vocabulary or `tokens` is empty.
pub fn forward_f64_with(
    model: &Model,
    tokens: &[u32],
    mut observer: Option<&mut Observer<'_>>,
    how: &Streaming,
) -> Vec<Vec<f64>> {
    let c = &model.config;
    let w = &model.weights;
    let n = tokens.len();
    assert!(n > 0, "no tokens");
    let hid = c.hidden;

    // Embeddings (scaled by sqrt(hidden) for Gemma).
    let scale = c.embed_scale.unwrap_or(1.0);
    let mut x = vec![0f64; n * hid];
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
            *xi = e as f64 * scale;
        }
    }

    // The rotations of a sequence of n positions (LongRoPE's long factors
    // when n exceeds the original context, as transformers and the engine do
    // for a session holding n positions).
    let ropes = c.ropes_for(n);
    for (li, (lc, lw)) in c.layers.iter().zip(&w.layers).enumerate() {
        layer(c, &ropes[lc.rope], lc, lw, &mut x, n, how);
        if let Some(obs) = observer.as_deref_mut() {
            obs(li, &x);
        }
    }

    let h = rms_norm(&x, &w.final_norm, c.norm_eps, c.norm_weight_offset);
    if let Some(obs) = observer {
        obs(c.n_layers, &h);
    }
    output(&w.output, c.final_softcap, &h, n, how)
}

/// The logits of the `n` rows of `h` (each position's row of `vocab`), a
/// chunk of vocabulary rows at a time, each value soft-capped as it lands.
fn output(w: &Matrix, softcap: Option<f64>, h: &[f64], n: usize, how: &Streaming) -> Vec<Vec<f64>> {
    assert_eq!(h.len(), n * w.cols, "{}: input size", w.name);
    let mut logits = vec![vec![0f64; w.rows]; n];
    stream_rows(w, n, how, r64_buffer(w), dot_row(h, w.cols), |r0, block| {
        for (i, out) in block.chunks_exact(n).enumerate() {
            for (t, &l) in out.iter().enumerate() {
                logits[t][r0 + i] = match softcap {
                    Some(cap) => cap * (l / cap).tanh(),
                    None => l,
                };
            }
        }
    });
    logits
}

/// One decoder layer, updating the residual stream `x` (`n × hidden`) in place.
fn layer(
    c: &ModelConfig,
    rope: &Rope,
    lc: &LayerConfig,
    lw: &LayerWeights,
    x: &mut [f64],
    n: usize,
    how: &Streaming,
) {
    let (eps, off) = (c.norm_eps, c.norm_weight_offset);
    let linear = |w: &Matrix, x: &[f64], n: usize| linear(w, x, n, how);
    let a = &lc.attn;
    let hd = a.head_dim;

    // Attention block.
    let h = rms_norm(x, &lw.attn_norm, eps, off);
    let mut q = linear(&lw.q, &h, n);
    let mut k = linear(&lw.k, &h, n);
    let mut v = linear(&lw.v, &h, n);
    add_bias(&mut q, lw.q_bias.as_deref());
    add_bias(&mut k, lw.k_bias.as_deref());
    add_bias(&mut v, lw.v_bias.as_deref());
    if let Some(qn) = &lw.q_norm {
        q = rms_norm(&q, qn, eps, off);
    }
    if let Some(kn) = &lw.k_norm {
        k = rms_norm(&k, kn, eps, off);
    }
    let (qd, kvd) = (a.n_heads * hd, a.n_kv_heads * hd);
    for t in 0..n {
        rotate(rope, &mut q[t * qd..(t + 1) * qd], hd, t);
        rotate(rope, &mut k[t * kvd..(t + 1) * kvd], hd, t);
    }

    // Causal attention, each query head reading key/value head `head / group`.
    let group = a.n_heads / a.n_kv_heads;
    let mut att = vec![0f64; n * qd];
    let mut scores = Vec::with_capacity(n);
    for t in 0..n {
        let first = match a.window {
            Some(win) => (t + 1).saturating_sub(win), // key j visible iff t - j < window
            None => 0,
        };
        for head in 0..a.n_heads {
            let kvh = head / group;
            let qh = &q[t * qd + head * hd..t * qd + (head + 1) * hd];
            scores.clear();
            for j in first..=t {
                let kj = &k[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                let mut s = dot(qh, kj) * a.scale;
                if let Some(cap) = a.softcap {
                    s = cap * (s / cap).tanh();
                }
                scores.push(s);
            }
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let out = &mut att[t * qd + head * hd..t * qd + (head + 1) * hd];
            for (i, j) in (first..=t).enumerate() {
                let p = scores[i] / sum;
                let vj = &v[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                for (o, &vv) in out.iter_mut().zip(vj) {
                    *o += p * vv;
                }
            }
        }
    }
    let mut o = linear(&lw.o, &att, n);
    if let Some(pn) = &lw.post_attn_norm {
        o = rms_norm(&o, pn, eps, off);
    }
    for (xi, oi) in x.iter_mut().zip(&o) {
        *xi += oi;
    }

    // Gated MLP block.
    let h = rms_norm(x, &lw.ffn_norm, eps, off);
    let gate = linear(&lw.gate, &h, n);
    let up = linear(&lw.up, &h, n);
    let act: Vec<f64> = gate
        .iter()
        .zip(&up)
        .map(|(&g, &u)| {
            let a = match c.activation {
                Activation::Silu => g / (1.0 + (-g).exp()),
                Activation::GeluTanh => {
                    let s = (2.0 / std::f64::consts::PI).sqrt();
                    0.5 * g * (1.0 + (s * (g + 0.044715 * g * g * g)).tanh())
                }
            };
            a * u
        })
        .collect();
    let mut d = linear(&lw.down, &act, n);
    if let Some(pn) = &lw.post_ffn_norm {
        d = rms_norm(&d, pn, eps, off);
    }
    for (xi, di) in x.iter_mut().zip(&d) {
        *xi += di;
    }
}

/// RMSNorm of each `w.len()`-wide row: `x / sqrt(mean(x²) + eps) * (offset + w)`.
fn rms_norm(x: &[f64], w: &[f32], eps: f64, offset: f64) -> Vec<f64> {
    let d = w.len();
    let mut out = vec![0f64; x.len()];
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ms = xr.iter().map(|v| v * v).sum::<f64>() / d as f64;
        let r = 1.0 / (ms + eps).sqrt();
        for ((o, &xi), &wi) in or.iter_mut().zip(xr).zip(w) {
            *o = xi * r * (offset + wi as f64);
        }
    }
    out
}

/// Rotates each `head_dim`-wide head of `x` (one position `pos`) by the
/// angles `pos · inv_freq[i]`, over the first `rotary_dim` dimensions.
fn rotate(rope: &Rope, x: &mut [f64], head_dim: usize, pos: usize) {
    let half = rope.rotary_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &f) in rope.inv_freq.iter().enumerate().take(half) {
            let angle = pos as f64 * f;
            let c = angle.cos() * rope.attention_factor;
            let s = angle.sin() * rope.attention_factor;
            let (ia, ib) = match rope.style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::Half => (i, i + half),
            };
            let (a, b) = (head[ia], head[ib]);
            head[ia] = a * c - b * s;
            head[ib] = a * s + b * c;
        }
    }
}

fn add_bias(x: &mut [f64], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in x.chunks_exact_mut(b.len()) {
            for (v, &bb) in row.iter_mut().zip(b) {
                *v += bb as f64;
            }
        }
    }
}

/// An f64 dot product (four partial sums, only to shorten the dependency chain).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut s = [0f64; 4];
    let main = a.len() - a.len() % 4;
    for (ca, cb) in a[..main].chunks_exact(4).zip(b[..main].chunks_exact(4)) {
        for l in 0..4 {
            s[l] += ca[l] * cb[l];
        }
    }
    for k in main..a.len() {
        s[0] += a[k] * b[k];
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

/// `y[t][r] = W[r] · x[t]` for `n` rows of `x`; each row of `W` is dequantized
/// once (exactly, to f32, then widened to f64) and used for all `n` inputs.
fn linear(w: &Matrix, x: &[f64], n: usize, how: &Streaming) -> Vec<f64> {
    let rows = w.rows;
    assert_eq!(x.len(), n * w.cols, "{}: input size", w.name);
    let mut y = vec![0f64; n * rows];
    stream_rows(w, n, how, r64_buffer(w), dot_row(x, w.cols), |r0, block| {
        for (i, out) in block.chunks_exact(n).enumerate() {
            for (t, &v) in out.iter().enumerate() {
                y[t * rows + r0 + i] = v;
            }
        }
    });
    y
}

/// A thread's buffer for one row widened to f64.
fn r64_buffer(w: &Matrix) -> impl Fn() -> Vec<f64> + Sync {
    let cols = w.cols;
    move || vec![0f64; cols]
}

/// One weight row (f32, widened exactly into the thread's f64 buffer) dotted
/// with each `cols`-wide row of `x`.
fn dot_row(
    x: &[f64],
    cols: usize,
) -> impl Fn(&mut Vec<f64>, usize, &mut [f32], &mut [f64]) + Sync + '_ {
    move |r64, _r, r32, out| {
        for (d, &s) in r64.iter_mut().zip(r32.iter()) {
            *d = s as f64;
        }
        for (t, o) in out.iter_mut().enumerate() {
            *o = dot(r64, &x[t * cols..(t + 1) * cols]);
        }
    }
}
