//! The decoder: executes a [`ModelConfig`] over its [`Weights`], one layer at
//! a time, with a KV cache. It knows nothing of families or file formats.
//!
//! The residual stream is kept in f64; matrix products take and give f32.

use crate::error::{Error, Result};
use crate::kernels::activation::{gated, softcap};
use crate::kernels::attention::attention;
use crate::kernels::matmul::matmul;
use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::runtime::Runtime;

/// Which positions' logits a forward call computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position (generation).
    Last,
    /// Every position of the call (validation, `logits`).
    All,
}

/// Receives the residual stream after each layer (`layer`, `n × hidden`, f64);
/// layer `n_layers` is the final norm's output.
pub type LayerObserver<'a> = dyn FnMut(usize, &[f64]) + Send + 'a;

/// Buffers reused across calls; they grow to the largest batch seen and are
/// never reallocated for single-token decode.
#[derive(Default)]
struct Scratch {
    x: Vec<f64>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    cs: Vec<Vec<f64>>,
    row: Vec<f32>,
}

fn grow<T: Clone + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.resize(n, T::default());
    }
}

/// A running sequence: the model, a KV cache and the current position.
pub struct Session<'m> {
    pub model: &'m Model,
    rt: &'m Runtime,
    cache: KvCache,
    pos: usize,
    s: Scratch,
}

impl<'m> Session<'m> {
    /// A session holding up to `capacity` positions.
    pub fn new(model: &'m Model, rt: &'m Runtime, capacity: usize) -> Result<Session<'m>> {
        let c = &model.config;
        if capacity == 0 {
            return Err(Error::argument("context size", "must be at least 1"));
        }
        let cache = KvCache::new(c.n_layers, capacity, c.kv_dim())?;
        Ok(Session {
            model,
            rt,
            cache,
            pos: 0,
            s: Scratch::default(),
        })
    }

    /// Positions already in the cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn capacity(&self) -> usize {
        self.cache.capacity
    }

    /// Forgets the sequence (the cache is reused).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Rewinds to `pos` positions (for re-using a shared prefix).
    pub fn truncate(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    pub fn kv_cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Runs `tokens` at the next positions and writes their logits to `out`
    /// (`vocab` per position for [`Logits::All`], `vocab` for [`Logits::Last`]).
    pub fn forward(&mut self, tokens: &[u32], which: Logits, out: &mut Vec<f32>) -> Result<()> {
        self.forward_observed(tokens, which, out, None)
    }

    pub fn forward_observed(
        &mut self,
        tokens: &[u32],
        which: Logits,
        out: &mut Vec<f32>,
        observer: Option<&mut LayerObserver<'_>>,
    ) -> Result<()> {
        // The whole pass runs on a pool thread: each kernel's parallel section
        // then starts from inside the pool instead of handing work over from
        // the caller's thread (about 10 µs a call, ~200 calls a token).
        let rt = self.rt;
        rt.install(|| self.forward_in_pool(tokens, which, out, observer))
    }

    fn forward_in_pool(
        &mut self,
        tokens: &[u32],
        which: Logits,
        out: &mut Vec<f32>,
        mut observer: Option<&mut LayerObserver<'_>>,
    ) -> Result<()> {
        let model = self.model;
        let c = &model.config;
        let w = &model.weights;
        let rt = self.rt;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::argument("tokens", "nothing to run"));
        }
        if self.pos + n > self.cache.capacity {
            return Err(Error::argument(
                "context size",
                format!(
                    "{} positions needed but the context holds {}; raise --ctx-size",
                    self.pos + n,
                    self.cache.capacity
                ),
            ));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
            return Err(Error::argument(
                "token id",
                format!("{bad} is outside the vocabulary of {}", c.vocab),
            ));
        }
        let (hid, qd, kvd, ffn) = (c.hidden, c.q_dim(), c.kv_dim(), c.ffn_hidden);
        let s = &mut self.s;
        grow(&mut s.x, n * hid);
        grow(&mut s.h, n * hid);
        grow(&mut s.q, n * qd);
        grow(&mut s.k, n * kvd);
        grow(&mut s.v, n * kvd);
        grow(&mut s.att, n * qd);
        grow(&mut s.o, n * hid);
        grow(&mut s.gate, n * ffn);
        grow(&mut s.up, n * ffn);
        grow(&mut s.row, hid);
        let ropes = c.ropes_for(self.cache.capacity);
        s.cs.resize(ropes.len(), Vec::new());
        for (r, cs) in ropes.iter().zip(s.cs.iter_mut()) {
            grow(cs, n * r.rotary_dim);
            for t in 0..n {
                r.cos_sin(self.pos + t, &mut cs[t * r.rotary_dim..(t + 1) * r.rotary_dim]);
            }
        }

        // Embeddings.
        for (t, &tok) in tokens.iter().enumerate() {
            w.embed.dequantize_row_into(tok as usize, &mut s.row)?;
            let scale = c.embed_scale.unwrap_or(1.0);
            for (x, &e) in s.x[t * hid..(t + 1) * hid].iter_mut().zip(&s.row) {
                *x = e as f64 * scale;
            }
        }

        let eps = c.norm_eps;
        let off = c.norm_weight_offset;
        for (li, (lc, lw)) in c.layers.iter().zip(&w.layers).enumerate() {
            // Attention block.
            norm_rows(&s.x, &lw.attn_norm, eps, off, &mut s.h);
            matmul(rt, &lw.q, &s.h, n, &mut s.q);
            matmul(rt, &lw.k, &s.h, n, &mut s.k);
            matmul(rt, &lw.v, &s.h, n, &mut s.v);
            add_bias(&mut s.q, lw.q_bias.as_deref());
            add_bias(&mut s.k, lw.k_bias.as_deref());
            add_bias(&mut s.v, lw.v_bias.as_deref());
            let hd = lc.attn.head_dim;
            if let Some(qn) = &lw.q_norm {
                for head in s.q.chunks_exact_mut(hd) {
                    crate::kernels::norm::rms_norm_inplace(head, qn, eps, off);
                }
            }
            if let Some(kn) = &lw.k_norm {
                for head in s.k.chunks_exact_mut(hd) {
                    crate::kernels::norm::rms_norm_inplace(head, kn, eps, off);
                }
            }
            let rope = &ropes[lc.rope];
            let cs = &s.cs[lc.rope];
            let rd = rope.rotary_dim;
            for t in 0..n {
                rope.apply(&mut s.q[t * qd..(t + 1) * qd], hd, &cs[t * rd..(t + 1) * rd]);
                rope.apply(&mut s.k[t * kvd..(t + 1) * kvd], hd, &cs[t * rd..(t + 1) * rd]);
            }
            self.cache.write(li, self.pos, &s.k, &s.v);
            let (keys, values) = self.cache.layer(li, self.pos + n);
            attention(rt, &lc.attn, &s.q, n, self.pos, keys, values, &mut s.att);
            matmul(rt, &lw.o, &s.att, n, &mut s.o);
            if let Some(pn) = &lw.post_attn_norm {
                norm_rows_f32(&mut s.o, pn, eps, off, hid);
            }
            for (x, &o) in s.x.iter_mut().zip(&s.o) {
                *x += o as f64;
            }

            // MLP block.
            norm_rows(&s.x, &lw.ffn_norm, eps, off, &mut s.h);
            matmul(rt, &lw.gate, &s.h, n, &mut s.gate);
            matmul(rt, &lw.up, &s.h, n, &mut s.up);
            gated(c.activation, &mut s.gate, &s.up);
            matmul(rt, &lw.down, &s.gate, n, &mut s.o);
            if let Some(pn) = &lw.post_ffn_norm {
                norm_rows_f32(&mut s.o, pn, eps, off, hid);
            }
            for (x, &o) in s.x.iter_mut().zip(&s.o) {
                *x += o as f64;
            }
            if let Some(obs) = observer.as_deref_mut() {
                obs(li, &s.x);
            }
        }
        self.pos += n;

        // Final norm and logits.
        let first = match which {
            Logits::All => 0,
            Logits::Last => n - 1,
        };
        let rows = n - first;
        norm_rows(&s.x[first * hid..], &w.final_norm, eps, off, &mut s.h[..rows * hid]);
        if let Some(obs) = observer {
            let normed: Vec<f64> = s.h[..rows * hid].iter().map(|&v| v as f64).collect();
            obs(c.n_layers, &normed);
        }
        out.resize(rows * c.vocab, 0.0);
        matmul(rt, &w.output, &s.h[..rows * hid], rows, out);
        if let Some(cap) = c.final_softcap {
            for l in out.iter_mut() {
                *l = softcap(*l as f64, cap) as f32;
            }
        }
        Ok(())
    }
}

/// RMSNorm of each f64 residual row into f32.
fn norm_rows(x: &[f64], w: &[f32], eps: f64, offset: f64, out: &mut [f32]) {
    let hid = w.len();
    for (xr, or) in x.chunks_exact(hid).zip(out.chunks_exact_mut(hid)) {
        let ss: f64 = xr.iter().map(|v| v * v).sum();
        let r = 1.0 / (ss / hid as f64 + eps).sqrt();
        for ((o, &xi), &wi) in or.iter_mut().zip(xr).zip(w) {
            *o = (xi * r * (offset + wi as f64)) as f32;
        }
    }
}

fn norm_rows_f32(x: &mut [f32], w: &[f32], eps: f64, offset: f64, hid: usize) {
    for row in x.chunks_exact_mut(hid) {
        crate::kernels::norm::rms_norm_inplace(row, w, eps, offset);
    }
}

fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in x.chunks_exact_mut(b.len()) {
            for (v, &bb) in row.iter_mut().zip(b) {
                *v = (*v as f64 + bb as f64) as f32;
            }
        }
    }
}
