//! The decoder: executes a [`ModelConfig`] over its [`Weights`], one layer at
//! a time, with a KV cache. It knows nothing of families or file formats.
//!
//! The residual stream is kept in f64; matrix products take and give f32.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::exec::kv_cache::KvCache;
use crate::family::roles::TensorRole;
use crate::formats::storage::Matrix;
use crate::kernels::activation::{gated, softcap};
use crate::kernels::attention::attention;
use crate::kernels::matmul::{matmul, matvec_many};
use crate::kernels::rope::Rope;
use crate::kernels::runtime::{Runtime, POOL_STACK_BYTES};
use crate::memory;
use crate::memory::control::StreamRead;
use crate::memory::placement::{self, Placement, PlanInput, TensorReq};
use crate::memory::stats::MemoryStats;
use crate::model::types::{LayerConfig, LayerWeights, Model, ModelConfig, Weights};

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
    /// Output of one streamed piece for a batch (scattered into the full output).
    piece: Vec<f32>,
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
    /// Where each weight matrix lives, when some are streamed.
    stream: Option<Stream>,
    /// The model's plan epoch this placement was made at.
    epoch: u64,
}

/// The matrices of each layer, in the order a pass reads them.
const LAYER_MATRICES: [TensorRole; 7] = [
    TensorRole::Q,
    TensorRole::K,
    TensorRole::V,
    TensorRole::O,
    TensorRole::Gate,
    TensorRole::Up,
    TensorRole::Down,
];

/// A weight matrix of a pass, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MatrixId {
    Embed,
    Layer(usize, TensorRole),
    Output,
}

impl MatrixId {
    /// Every matrix of a pass over `n_layers` layers, in access order: the
    /// embedding, each layer's [`LAYER_MATRICES`], the output projection.
    /// A matrix's position in this order indexes the session's placement.
    fn pass(n_layers: usize) -> impl Iterator<Item = MatrixId> {
        std::iter::once(MatrixId::Embed)
            .chain((0..n_layers).flat_map(|li| LAYER_MATRICES.map(|r| MatrixId::Layer(li, r))))
            .chain(std::iter::once(MatrixId::Output))
    }

    /// How many matrices a pass reads.
    fn count(n_layers: usize) -> usize {
        2 + LAYER_MATRICES.len() * n_layers
    }

    /// This matrix's position in [`MatrixId::pass`].
    fn index(self, n_layers: usize) -> usize {
        match self {
            MatrixId::Embed => 0,
            MatrixId::Layer(li, role) => {
                let j = LAYER_MATRICES
                    .iter()
                    .position(|&r| r == role)
                    .expect("a layer matrix role");
                1 + LAYER_MATRICES.len() * li + j
            }
            MatrixId::Output => 1 + LAYER_MATRICES.len() * n_layers,
        }
    }

    fn layer(self) -> Option<usize> {
        match self {
            MatrixId::Layer(li, _) => Some(li),
            _ => None,
        }
    }
}

fn matrix_of(w: &Weights, id: MatrixId) -> &Matrix {
    match id {
        MatrixId::Embed => &w.embed,
        MatrixId::Output => &w.output,
        MatrixId::Layer(li, role) => w.layers[li]
            .matrix(role)
            .expect("LAYER_MATRICES are matrix roles"),
    }
}

/// The session's placement of every matrix and, for each, the next streamed
/// matrix in access order (what read-ahead fetches while it computes).
struct Stream {
    /// The pass's matrices in access order ([`MatrixId::pass`]).
    ids: Vec<MatrixId>,
    place: Vec<Placement>,
    next_streamed: Vec<Option<usize>>,
    /// The streamed matrices' reader (see [`StreamRing`]); `None` when they
    /// are not all in one file: they are then mapped piece by piece.
    ring: Option<StreamRing>,
}

/// The streamed matrices read from the file into the engine's own buffers
/// ([`crate::formats::reader::Ring`]): the schedule is every streamed matrix
/// but the embedding (read by rows) in access order, cut in pieces of what a
/// slot holds.
struct StreamRing {
    ring: crate::formats::reader::Ring,
    /// Per matrix of the pass: its rows per piece and its first piece's
    /// position in the schedule (streamed matrices only).
    pieces: Vec<Option<(usize, usize)>>,
}

/// The tensors of one forward pass in access order, for the planner.
pub fn plan_tensors(model: &Model) -> Vec<TensorReq> {
    let w = &model.weights;
    let mut v: Vec<TensorReq> = MatrixId::pass(w.layers.len())
        .map(|id| {
            let m = matrix_of(w, id);
            TensorReq {
                name: m.name.clone(),
                layer: id.layer(),
                bytes: m.bytes().len() as u64,
                row_bytes: m.row_bytes() as u64,
                owned: !m.is_file_map(),
                // The output projection tied to the embedding: the same bytes.
                same_as: (w.tied && id == MatrixId::Output).then_some(0),
            }
        })
        .collect();
    let mut owned = 4 * w.final_norm.len() as u64;
    for l in &w.layers {
        for x in [&l.attn_norm, &l.ffn_norm] {
            owned += 4 * x.len() as u64;
        }
        for x in [
            &l.q_bias,
            &l.k_bias,
            &l.v_bias,
            &l.q_norm,
            &l.k_norm,
            &l.post_attn_norm,
            &l.post_ffn_norm,
        ]
        .into_iter()
        .flatten()
        {
            owned += 4 * x.len() as u64;
        }
    }
    v.push(TensorReq {
        name: "norms and biases".into(),
        layer: None,
        bytes: owned,
        row_bytes: owned,
        owned: true,
        same_as: None,
    });
    v
}

/// Bytes of the session's scratch for batches up to `capacity` positions,
/// the last position's logits, the sampler's working copy of them, and the
/// kernels' per-thread buffers.
pub fn scratch_bytes(model: &Model, capacity: usize, threads: usize) -> u64 {
    let c = &model.config;
    let per_token =
        8 * c.hidden + 4 * (2 * c.hidden + 2 * c.q_dim() + 2 * c.kv_dim() + 2 * c.ffn_hidden);
    let max_cols = c.hidden.max(c.ffn_hidden).max(c.q_dim());
    let rope: usize = c.ropes_for(capacity).iter().map(|r| 8 * r.rotary_dim).sum();
    (capacity * (per_token + rope)
        + 4 * c.hidden
        + 4 * c.vocab
        + 16 * c.vocab
        + threads * (16 * max_cols * 4 + 16 * capacity * c.n_heads.max(1))) as u64
}

/// Sets the memory budget of `model`'s sessions (`None`: no budget). With a
/// budget it also releases every weight page loading touched, records the
/// peak RSS of loading, resets the peak (where the OS allows) and records the
/// RSS left: the fixed overhead outside the budget (binary, tokenizer,
/// runtime, parsed metadata).
pub fn set_memory_budget(model: &Model, budget: Option<u64>) {
    let mem = &model.memory;
    mem.set_budget(budget);
    if budget.is_none() {
        return;
    }
    let w = &model.weights;
    w.embed.data().release_storage();
    w.output.data().release_storage();
    release_weights(model);
    let st = &mem.stats;
    MemoryStats::set(&st.start_budget, budget.unwrap_or(0));
    MemoryStats::set(&st.load_peak_rss, memory::os::peak_rss().unwrap_or(0));
    MemoryStats::set(&st.peak_reset, memory::os::reset_peak_rss() as u64);
    let allowance = RuntimeAllowance::measure();
    MemoryStats::set(&st.allowance_code, allowance.code);
    MemoryStats::set(&st.allowance_stacks, allowance.stacks);
    MemoryStats::set(&st.allowance_allocator, allowance.allocator);
    MemoryStats::set(
        &st.overhead_bytes,
        memory::os::rss().unwrap_or(0) + allowance.total(),
    );
}

/// Drops every weight matrix's pages from this process's page tables (they
/// stay in the page cache; the next use maps them again): what a guard's
/// eviction does. Owned copies (norms, biases) are untouched.
pub fn release_weights(model: &Model) {
    let w = &model.weights;
    for id in MatrixId::pass(w.layers.len()) {
        let m = matrix_of(w, id);
        m.release_rows(0, m.rows);
    }
}

/// The part of the fixed overhead that is not yet resident when the budget
/// is set, bounded from what this process is at that moment (nothing here is
/// tuned to a model or a machine):
/// - `code`: executable file maps (binary, shared libraries) not resident
///   yet, read from /proc/self/smaps: code a run can page in, at most;
/// - `stacks`: one [`POOL_STACK_BYTES`] stack per thread other than the main
///   one (the pool's workers; the main thread's stack has already been as
///   deep as loading took it, and the decode loop is shallower);
/// - `allocator`: per thread, the free memory glibc keeps at the top of a
///   thread's arena before trimming it (`M_TRIM_THRESHOLD`, 128 KiB by
///   default) and one page of arena header.
///
/// The kernels' per-thread buffers, the KV cache, the scratch and the
/// weights are the budget's (see [`scratch_bytes`] and the planner), not
/// the allowance's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeAllowance {
    pub code: u64,
    pub stacks: u64,
    pub allocator: u64,
}

/// glibc's default `M_TRIM_THRESHOLD`.
const MALLOC_TRIM_THRESHOLD: u64 = 128 << 10;

impl RuntimeAllowance {
    /// The allowance of this process now (zero where the OS cannot say).
    pub fn measure() -> RuntimeAllowance {
        let threads = memory::os::threads().unwrap_or(1).max(1);
        RuntimeAllowance {
            code: memory::os::code_not_resident().unwrap_or(0),
            stacks: (threads - 1) * POOL_STACK_BYTES as u64,
            allocator: threads
                * (MALLOC_TRIM_THRESHOLD + crate::formats::pages::page_size() as u64),
        }
    }

    pub fn total(&self) -> u64 {
        self.code + self.stacks + self.allocator
    }
}

impl<'m> Session<'m> {
    /// A session holding up to `capacity` positions.
    pub fn new(model: &'m Model, rt: &'m Runtime, capacity: usize) -> Result<Session<'m>> {
        let c = &model.config;
        if capacity == 0 {
            return Err(Error::argument("context size", "must be at least 1"));
        }
        let epoch = model.memory.epoch();
        let stream = Self::plan(model, rt, capacity)?;
        let cache = KvCache::new(c.n_layers, capacity, c.kv_dim())?;
        Ok(Session {
            model,
            rt,
            cache,
            pos: 0,
            s: Scratch::default(),
            stream,
            epoch,
        })
    }

    /// Plans the placement again when a guard asked for it (tightened the
    /// budget or evicted) since this session last planned; true if it did.
    pub fn replan_if_asked(&mut self) -> Result<bool> {
        let epoch = self.model.memory.epoch();
        if epoch == self.epoch {
            return Ok(false);
        }
        // The old ring's buffers go before the new plan allocates its own.
        self.stream = None;
        self.stream = Self::plan(self.model, self.rt, self.cache.capacity)?;
        self.epoch = epoch;
        MemoryStats::add(&self.model.memory.stats.replans, 1);
        Ok(true)
    }

    /// Whether matrix `idx` of the pass (in access order: 0 the embedding,
    /// then each layer's q, k, v, o, gate, up and down, the output last) is
    /// streamed under this session's current placement.
    pub fn is_streamed(&self, idx: usize) -> bool {
        self.stream
            .as_ref()
            .is_some_and(|s| matches!(s.place.get(idx), Some(Placement::Streamed { .. })))
    }

    /// Plans the placement under the model's budget; `None` when every
    /// matrix stays mapped. The KV cache (all `capacity` positions) and the
    /// scratch count as fixed bytes.
    fn plan(model: &Model, rt: &Runtime, capacity: usize) -> Result<Option<Stream>> {
        let c = &model.config;
        let budget = model.memory.budget();
        let kv = crate::exec::kv_cache::bytes_for(c.n_layers, capacity, c.kv_dim());
        let scratch = scratch_bytes(model, capacity, rt.threads());
        let tensors = plan_tensors(model);
        let input = PlanInput {
            tensors,
            budget,
            free: if budget.is_some() {
                memory::os::free_memory()
            } else {
                None
            },
            fixed: kv + scratch,
            stream_all: model.memory.stream_all(),
        };
        let p = placement::plan(&input)?;
        let st = &model.memory.stats;
        MemoryStats::set(&st.plan_fixed, p.fixed);
        MemoryStats::set(&st.plan_kv_cache, kv);
        MemoryStats::set(&st.plan_scratch, scratch);
        MemoryStats::set(&st.plan_resident, p.resident);
        MemoryStats::set(&st.plan_mapped, p.mapped);
        MemoryStats::set(&st.plan_streamed, p.streamed);
        MemoryStats::set(&st.plan_stream_buffer, p.stream_buffer);
        MemoryStats::set(&st.plan_limit, p.limit.unwrap_or(0));
        let n = MatrixId::count(c.n_layers);
        let place: Vec<Placement> = p.placements[..n].to_vec();
        let streamed = place
            .iter()
            .filter(|x| matches!(x, Placement::Streamed { .. }))
            .count();
        MemoryStats::set(&st.tensors_streamed, streamed as u64);
        MemoryStats::set(
            &st.tensors_mapped,
            place.iter().filter(|&&x| x == Placement::Mapped).count() as u64,
        );
        if streamed == 0 {
            return Ok(None);
        }
        // The next streamed matrix after each (wrapping to the next pass;
        // the embedding is read by rows and never prefetched whole).
        let mut next_streamed = vec![None; n];
        for (i, slot) in next_streamed.iter_mut().enumerate() {
            *slot = (1..n)
                .map(|d| (i + d) % n)
                .find(|&j| j != 0 && matches!(place[j], Placement::Streamed { .. }));
        }
        let ids: Vec<MatrixId> = MatrixId::pass(c.n_layers).collect();
        let read = model.memory.stream_read();
        let ring = stream_ring(&model.weights, &ids, &place, p.stream_buffer, read, st)?;
        Ok(Some(Stream {
            ids,
            place,
            next_streamed,
            ring,
        }))
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
        self.replan_if_asked()?;
        let rt = self.rt;
        rt.install(|| self.forward_in_pool(tokens, which, out, observer))
    }

    /// One forward pass, step by step as the model computes it. Shapes:
    /// `n` tokens in this call, `hidden` the model width, `q_dim` =
    /// `n_heads·head_dim`, `kv_dim` = `n_kv_heads·head_dim`, `ffn` the MLP width.
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
        self.check_tokens(tokens)?;
        let n = tokens.len();
        let started = Instant::now();
        let stats = &model.memory.stats;
        let pass = Pass {
            rt: self.rt,
            st: self.stream.as_ref().map(|x| (x, stats)),
            w,
            n,
            pos: self.pos,
            eps: c.norm_eps,
            off: c.norm_weight_offset,
        };
        let ropes = c.ropes_for(self.cache.capacity);
        let s = &mut self.s;
        s.grow_for(c, n);
        s.rope_tables(ropes, self.pos, n);

        // x: [n, hidden] (f64), the residual stream: the tokens' embeddings.
        let io_before = self
            .stream
            .as_ref()
            .and_then(|_| memory::os::io_read_bytes());
        pass.embed(c, tokens, s)?;
        for (li, (lc, lw)) in c.layers.iter().zip(&w.layers).enumerate() {
            // x += attention over the cache's pos + n positions; k, v appended to it.
            pass.attention_block(li, lc, lw, &ropes[lc.rope], &mut self.cache, s)?;
            // x += gated MLP.
            pass.mlp_block(li, c, lw, s)?;
            if let Some(obs) = observer.as_deref_mut() {
                obs(li, &s.x);
            }
        }
        self.pos += n;
        // out: [n, vocab] (Logits::All) or [1, vocab] (Logits::Last)
        pass.logits(c, which, s, out, observer)?;
        let elapsed = started.elapsed().as_nanos() as u64;
        MemoryStats::add(&stats.forward_ns, elapsed);
        MemoryStats::add(&stats.passes, 1);
        if let Some(stream) = &self.stream {
            let device = io_before
                .zip(memory::os::io_read_bytes())
                .map(|(a, b)| b.saturating_sub(a));
            let ring = stream.ring.as_ref().map(|r| r.ring.take_counters());
            stats.record_stream_pass(elapsed, device, ring);
        }
        Ok(())
    }

    /// Refuses a call the session cannot run: no tokens, more positions than
    /// the cache holds, an id outside the vocabulary.
    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let c = &self.model.config;
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
        Ok(())
    }
}

impl Scratch {
    /// Sizes every buffer for a call of `n` tokens.
    fn grow_for(&mut self, c: &ModelConfig, n: usize) {
        let (hid, qd, kvd, ffn) = (c.hidden, c.q_dim(), c.kv_dim(), c.ffn_hidden);
        grow(&mut self.x, n * hid);
        grow(&mut self.h, n * hid);
        grow(&mut self.q, n * qd);
        grow(&mut self.k, n * kvd);
        grow(&mut self.v, n * kvd);
        grow(&mut self.att, n * qd);
        grow(&mut self.o, n * hid);
        grow(&mut self.gate, n * ffn);
        grow(&mut self.up, n * ffn);
        grow(&mut self.row, hid);
    }

    /// cs[r]: [n, rotary_dim of rope r], the cos/sin pairs of positions
    /// `pos..pos + n` for each rotation the layers use.
    fn rope_tables(&mut self, ropes: &[Rope], pos: usize, n: usize) {
        self.cs.resize(ropes.len(), Vec::new());
        for (r, cs) in ropes.iter().zip(self.cs.iter_mut()) {
            grow(cs, n * r.rotary_dim);
            for t in 0..n {
                r.cos_sin(pos + t, &mut cs[t * r.rotary_dim..(t + 1) * r.rotary_dim]);
            }
        }
    }
}

/// What every step of one forward pass reads.
struct Pass<'a> {
    rt: &'a Runtime,
    /// The streaming placement, when some matrices are streamed.
    st: Option<(&'a Stream, &'a MemoryStats)>,
    w: &'a Weights,
    /// Tokens in this call.
    n: usize,
    /// Position of the first of them.
    pos: usize,
    eps: f64,
    off: f64,
}

impl Pass<'_> {
    /// `y = x · Wᵀ` for the matrix `id`, streamed or not.
    fn mm(
        &self,
        id: MatrixId,
        x: &[f32],
        n: usize,
        y: &mut [f32],
        piece: &mut Vec<f32>,
    ) -> Result<()> {
        mm(self.rt, self.st, self.w, id, x, n, y, piece)
    }

    /// x: [n, hidden] = embedding rows of the tokens (times sqrt(hidden) for Gemma).
    fn embed(&self, c: &ModelConfig, tokens: &[u32], s: &mut Scratch) -> Result<()> {
        let (w, hid) = (self.w, c.hidden);
        for (t, &tok) in tokens.iter().enumerate() {
            // row: [hidden]
            w.embed.dequantize_row_into(tok as usize, &mut s.row)?;
            let scale = c.embed_scale.unwrap_or(1.0);
            for (x, &e) in s.x[t * hid..(t + 1) * hid].iter_mut().zip(&s.row) {
                *x = e as f64 * scale;
            }
        }
        if let Some((stream, _)) = self.st {
            if matches!(stream.place[0], Placement::Streamed { .. }) {
                for &tok in tokens {
                    w.embed.release_rows(tok as usize, tok as usize + 1);
                }
            }
        }
        Ok(())
    }

    /// x += post_attn_norm(o(attention(rope(q), rope(k), v))) of norm(x).
    fn attention_block(
        &self,
        li: usize,
        lc: &LayerConfig,
        lw: &LayerWeights,
        rope: &Rope,
        cache: &mut KvCache,
        s: &mut Scratch,
    ) -> Result<()> {
        let (n, eps, off) = (self.n, self.eps, self.off);
        let hid = lw.attn_norm.len();
        // h: [n, hidden] = RMSNorm(x)
        norm_rows(&s.x, &lw.attn_norm, eps, off, &mut s.h);
        // q: [n, q_dim], k: [n, kv_dim], v: [n, kv_dim]
        if n == 1 && self.st.is_none() {
            // Decode from RAM: Q, K and V in one parallel region.
            let jobs = [
                (&lw.q, &mut s.q[..]),
                (&lw.k, &mut s.k[..]),
                (&lw.v, &mut s.v[..]),
            ];
            matvec_many(self.rt, jobs, &s.h);
        } else {
            for (role, y) in [
                (TensorRole::Q, &mut s.q),
                (TensorRole::K, &mut s.k),
                (TensorRole::V, &mut s.v),
            ] {
                self.mm(MatrixId::Layer(li, role), &s.h, n, y, &mut s.piece)?;
            }
        }
        add_bias(&mut s.q, lw.q_bias.as_deref());
        add_bias(&mut s.k, lw.k_bias.as_deref());
        add_bias(&mut s.v, lw.v_bias.as_deref());
        // Per-head norms, each head: [head_dim].
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
        // Rotate q and k by position; cs: [n, rotary_dim].
        let (qd, kvd) = (s.q.len() / n, s.k.len() / n);
        let cs = &s.cs[lc.rope];
        let rd = rope.rotary_dim;
        for t in 0..n {
            rope.apply(
                &mut s.q[t * qd..(t + 1) * qd],
                hd,
                &cs[t * rd..(t + 1) * rd],
            );
            rope.apply(
                &mut s.k[t * kvd..(t + 1) * kvd],
                hd,
                &cs[t * rd..(t + 1) * rd],
            );
        }
        // The cache's keys and values: [pos + n, kv_dim] each.
        cache.write(li, self.pos, &s.k, &s.v);
        let (keys, values) = cache.layer(li, self.pos + n);
        // att: [n, q_dim]
        attention(
            self.rt, &lc.attn, &s.q, n, self.pos, keys, values, &mut s.att,
        );
        // o: [n, hidden]
        self.mm(
            MatrixId::Layer(li, TensorRole::O),
            &s.att,
            n,
            &mut s.o,
            &mut s.piece,
        )?;
        if let Some(pn) = &lw.post_attn_norm {
            norm_rows_f32(&mut s.o, pn, eps, off, hid);
        }
        // x: [n, hidden] += o
        for (x, &o) in s.x.iter_mut().zip(&s.o) {
            *x += o as f64;
        }
        Ok(())
    }

    /// x += post_ffn_norm(down(act(gate(h)) · up(h))), h = norm(x).
    fn mlp_block(
        &self,
        li: usize,
        c: &ModelConfig,
        lw: &LayerWeights,
        s: &mut Scratch,
    ) -> Result<()> {
        let (n, eps, off, hid) = (self.n, self.eps, self.off, c.hidden);
        // h: [n, hidden] = RMSNorm(x)
        norm_rows(&s.x, &lw.ffn_norm, eps, off, &mut s.h);
        // gate: [n, ffn], up: [n, ffn]
        if n == 1 && self.st.is_none() {
            // Decode from RAM: gate and up in one parallel region.
            let jobs = [(&lw.gate, &mut s.gate[..]), (&lw.up, &mut s.up[..])];
            matvec_many(self.rt, jobs, &s.h);
        } else {
            for (role, y) in [(TensorRole::Gate, &mut s.gate), (TensorRole::Up, &mut s.up)] {
                self.mm(MatrixId::Layer(li, role), &s.h, n, y, &mut s.piece)?;
            }
        }
        // gate: [n, ffn] = act(gate) · up
        gated(c.activation, &mut s.gate, &s.up);
        // o: [n, hidden] = down(gate)
        let down = MatrixId::Layer(li, TensorRole::Down);
        self.mm(down, &s.gate, n, &mut s.o, &mut s.piece)?;
        if let Some(pn) = &lw.post_ffn_norm {
            norm_rows_f32(&mut s.o, pn, eps, off, hid);
        }
        // x: [n, hidden] += o
        for (x, &o) in s.x.iter_mut().zip(&s.o) {
            *x += o as f64;
        }
        Ok(())
    }

    /// out: [rows, vocab] = output(RMSNorm(x)) of the last position, or of
    /// every position, soft-capped when the family caps them.
    fn logits(
        &self,
        c: &ModelConfig,
        which: Logits,
        s: &mut Scratch,
        out: &mut Vec<f32>,
        observer: Option<&mut LayerObserver<'_>>,
    ) -> Result<()> {
        let (n, hid) = (self.n, c.hidden);
        let first = match which {
            Logits::All => 0,
            Logits::Last => n - 1,
        };
        let rows = n - first;
        // h: [rows, hidden] = RMSNorm(x[first..])
        norm_rows(
            &s.x[first * hid..],
            &self.w.final_norm,
            self.eps,
            self.off,
            &mut s.h[..rows * hid],
        );
        if let Some(obs) = observer {
            let normed: Vec<f64> = s.h[..rows * hid].iter().map(|&v| v as f64).collect();
            obs(c.n_layers, &normed);
        }
        // out: [rows, vocab]
        out.resize(rows * c.vocab, 0.0);
        self.mm(
            MatrixId::Output,
            &s.h[..rows * hid],
            rows,
            out,
            &mut s.piece,
        )?;
        if let Some(cap) = c.final_softcap {
            for l in out.iter_mut() {
                *l = softcap(*l as f64, cap) as f32;
            }
        }
        Ok(())
    }
}

/// `y = x · Wᵀ` for matrix `idx` of the pass, as its placement says: a
/// mapped matrix directly; a streamed one from the session's ring
/// ([`mm_ring`]) or, when there is none (streamed matrices in several
/// files), piece by piece, each piece mapped (timed: the wait on I/O),
/// computed, then released, while read-ahead fetches the next piece. The kernel and the bytes are the same either way,
/// and every output element is one row's dot product, so the result is the
/// same bits.
#[allow(clippy::too_many_arguments)]
fn mm(
    rt: &Runtime,
    st: Option<(&Stream, &MemoryStats)>,
    w: &Weights,
    id: MatrixId,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    tmp: &mut Vec<f32>,
) -> Result<()> {
    let m = matrix_of(w, id);
    let idx = id.index(w.layers.len());
    let streamed = st.and_then(|(s, stats)| match s.place[idx] {
        Placement::Streamed { rows_per_piece } => Some((s, stats, rows_per_piece as usize)),
        _ => None,
    });
    let Some((stream, stats, rpp)) = streamed else {
        matmul(rt, m, x, n, y);
        return Ok(());
    };
    if let Some(ring) = &stream.ring {
        return mm_ring(rt, ring, stats, m, idx, x, n, y, tmp);
    }
    let rows = m.rows;
    let mut r0 = 0;
    while r0 < rows {
        let r1 = (r0 + rpp).min(rows);
        // Read-ahead: the next piece of this matrix, or the first of the next streamed one.
        if r1 < rows {
            m.prefetch_rows(r1, (r1 + rpp).min(rows));
        } else if let Some(j) = stream.next_streamed[idx] {
            let nm = matrix_of(w, stream.ids[j]);
            if let Placement::Streamed { rows_per_piece } = stream.place[j] {
                nm.prefetch_rows(0, (rows_per_piece as usize).min(nm.rows));
            }
        }
        let bytes = m.rows_bytes(r0, r1);
        let t0 = Instant::now();
        if let Some((ready, total)) = crate::formats::pages::cached_pages(bytes) {
            MemoryStats::add(&stats.readahead_ready_pages, ready);
            MemoryStats::add(&stats.readahead_pages, total);
        }
        std::hint::black_box(crate::formats::pages::touch(bytes));
        MemoryStats::add(&stats.io_wait_ns, t0.elapsed().as_nanos() as u64);
        if r0 == 0 && r1 == rows {
            matmul(rt, m, x, n, y);
        } else {
            piece_matmul(rt, &m.rows_view(r0, r1), x, n, y, rows, r0, tmp);
        }
        let t1 = Instant::now();
        m.release_rows(r0, r1);
        MemoryStats::add(&stats.io_wait_ns, t1.elapsed().as_nanos() as u64);
        MemoryStats::add(&stats.streamed_bytes, bytes.len() as u64);
        MemoryStats::add(&stats.pieces, 1);
        r0 = r1;
    }
    Ok(())
}

/// `y = x · Wᵀ` for the rows `r0 .. r0 + piece.rows` of a matrix of `rows`
/// rows, given as the view `piece`: one token writes its slice of `y`
/// directly; several go through `tmp` and are scattered to each token's row
/// of `y` (token-major, `rows` wide).
#[allow(clippy::too_many_arguments)]
fn piece_matmul(
    rt: &Runtime,
    piece: &Matrix,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    rows: usize,
    r0: usize,
    tmp: &mut Vec<f32>,
) {
    let pr = piece.rows;
    let r1 = r0 + pr;
    if n == 1 {
        matmul(rt, piece, x, 1, &mut y[r0..r1]);
    } else {
        grow(tmp, n * pr);
        matmul(rt, piece, x, n, tmp);
        for t in 0..n {
            y[t * rows + r0..t * rows + r1].copy_from_slice(&tmp[t * pr..(t + 1) * pr]);
        }
    }
}

/// `y = x · Wᵀ` for the streamed matrix `m` (pass index `idx`) from the
/// ring: piece by piece as the ring delivers them (waiting only when a piece
/// has not arrived; the ring counts the wait), each a view of the same rows'
/// bytes read from the file, so the kernel computes the same bits as on the
/// map.
#[allow(clippy::too_many_arguments)]
fn mm_ring(
    rt: &Runtime,
    sr: &StreamRing,
    stats: &MemoryStats,
    m: &Matrix,
    idx: usize,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    tmp: &mut Vec<f32>,
) -> Result<()> {
    let (rpp, first) = sr.pieces[idx].ok_or_else(|| {
        Error::Runtime(format!(
            "{} is streamed but has no place in the ring",
            m.name
        ))
    })?;
    let rows = m.rows;
    let (mut r0, mut k) = (0, first);
    while r0 < rows {
        let r1 = (r0 + rpp).min(rows);
        let got = sr.ring.acquire(k)?;
        let piece = m.rows_in(r0, r1, got.data()?)?;
        let pr = r1 - r0;
        piece_matmul(rt, &piece, x, n, y, rows, r0, tmp);
        // The read-ahead hit rate of the ring: pages of pieces that had
        // arrived when compute reached them.
        let pages = (pr * m.row_bytes()).div_ceil(crate::formats::pages::page_size()) as u64;
        MemoryStats::add(&stats.readahead_pages, pages);
        if got.was_ready {
            MemoryStats::add(&stats.readahead_ready_pages, pages);
        }
        drop(piece);
        drop(got);
        MemoryStats::add(&stats.streamed_bytes, (pr * m.row_bytes()) as u64);
        MemoryStats::add(&stats.pieces, 1);
        r0 = r1;
        k += 1;
    }
    Ok(())
}

/// The ring for the streamed matrices of a placement, cut from the plan's
/// stream buffer ([`placement::ring_layout`]); `None` when the streamed
/// matrices (the embedding aside) are not all maps of one file.
fn stream_ring(
    w: &Weights,
    ids: &[MatrixId],
    place: &[Placement],
    buffer: u64,
    read: StreamRead,
    st: &MemoryStats,
) -> Result<Option<StreamRing>> {
    use crate::formats::reader::{Ring, RingConfig, Segment};
    let streamed: Vec<(usize, &Matrix)> = ids
        .iter()
        .enumerate()
        .filter(|&(i, id)| *id != MatrixId::Embed && matches!(place[i], Placement::Streamed { .. }))
        .map(|(i, &id)| (i, matrix_of(w, id)))
        .collect();
    let Some(path) = streamed
        .first()
        .and_then(|(_, m)| m.data().file_range())
        .map(|(p, _)| p.to_path_buf())
    else {
        return Ok(None);
    };
    let same_file = |m: &Matrix| m.data().file_range().is_some_and(|(p, _)| p == path);
    if !streamed.iter().all(|(_, m)| same_file(m)) {
        return Ok(None);
    }
    let widest = streamed
        .iter()
        .map(|(_, m)| m.row_bytes() as u64)
        .max()
        .unwrap_or(0);
    let layout = placement::ring_layout(buffer, widest);
    let mut pieces = vec![None; ids.len()];
    let mut schedule = Vec::new();
    for &(i, m) in &streamed {
        let base = m.data().file_range().map_or(0, |(_, o)| o);
        let rpp = layout.rows_per_piece(m.row_bytes() as u64, m.rows as u64) as usize;
        pieces[i] = Some((rpp, schedule.len()));
        for r0 in (0..m.rows).step_by(rpp) {
            let r1 = (r0 + rpp).min(m.rows);
            schedule.push(Segment {
                offset: base + (r0 * m.row_bytes()) as u64,
                len: (r1 - r0) * m.row_bytes(),
            });
        }
    }
    // Auto: O_DIRECT unless a pass's streamed bytes fit in a quarter of the
    // memory left (a small model under a tiny budget): then the page cache
    // keeps them and serves every pass after the first. Same bytes either way.
    let per_pass: u64 = schedule.iter().map(|s| s.len as u64).sum();
    let direct = match read {
        StreamRead::Direct => true,
        StreamRead::Cached => false,
        StreamRead::Auto => memory::os::free_memory().is_none_or(|free| per_pass > free / 4),
    };
    let ring = Ring::new(
        &path,
        schedule,
        RingConfig {
            slots: layout.slots,
            slot_bytes: layout.slot_bytes as usize,
            io_threads: layout.io_threads,
            read_chunk: placement::RING_READ_CHUNK,
            direct,
        },
    )?;
    MemoryStats::set(&st.ring_slots, layout.slots as u64);
    MemoryStats::set(&st.ring_slot_bytes, layout.slot_bytes);
    MemoryStats::set(&st.ring_io_threads, layout.io_threads as u64);
    use crate::formats::reader::ReadMode;
    let mode = match ring.mode() {
        ReadMode::Buffered => 1,
        ReadMode::Direct => 2,
        ReadMode::Cached => 3,
    };
    MemoryStats::set(&st.ring_mode, mode);
    Ok(Some(StreamRing { ring, pieces }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_index_is_its_place_in_the_pass() {
        for n_layers in [0, 1, 3] {
            let ids: Vec<MatrixId> = MatrixId::pass(n_layers).collect();
            assert_eq!(ids.len(), MatrixId::count(n_layers));
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(id.index(n_layers), i, "{id:?}");
            }
            assert_eq!(ids.first(), Some(&MatrixId::Embed));
            assert_eq!(ids.last(), Some(&MatrixId::Output));
        }
        // Layer 1's down projection: after the embedding and layer 0's seven.
        assert_eq!(MatrixId::Layer(1, TensorRole::Down).index(3), 1 + 7 + 6);
        assert_eq!(MatrixId::Layer(2, TensorRole::Q).layer(), Some(2));
    }
}
