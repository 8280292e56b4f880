//! Criterion benches of every kernel at the shapes of the real test models
//! (SmolLM2-135M-Instruct Q4_1, Gemma 3 270M Q4_K_M), on synthetic weights of
//! the same stored types (see `atenia_benches`).
//!
//!   cargo bench -p atenia-benches                       # everything (a few minutes)
//!   cargo bench -p atenia-benches -- matvec/gemma3      # a filter
//!   ATENIA_BENCH_THREADS=1 cargo bench -p atenia-benches
//!
//! Kernels that take the runtime (matvec, matmul, attention) are timed inside
//! its pool, as the decoder calls them (`Session::forward` runs the whole pass
//! there). Threads: `ATENIA_BENCH_THREADS` (default 0 = one per core).

use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};

use atenia_benches::{random_f32, synthetic_matrix, REAL_ATTENTION, REAL_WEIGHTS};
use atenia_engine::kernels::activation::{gated, Activation};
use atenia_engine::kernels::attention::{attention, AttnShape};
use atenia_engine::kernels::matmul::{matmul, matvec};
use atenia_engine::kernels::norm::{rms_norm, rms_norm_inplace};
use atenia_engine::kernels::rope::{Rope, RopeStyle};
use atenia_engine::kernels::runtime::Runtime;

/// Tokens of a prefill batch.
const PREFILL_TOKENS: usize = 128;
/// A long prompt's prefill (attention is quadratic in it).
const LONG_PREFILL_TOKENS: usize = 2048;
/// Layers of KV cache the memory-bound decode bench cycles through.
const CACHE_LAYERS: usize = 30;
/// Context depths for decode attention.
const DEPTHS: [usize; 2] = [512, 2048];

fn runtime() -> Runtime {
    let threads = std::env::var("ATENIA_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Runtime::new(threads, None).expect("runtime")
}

/// `iters` calls of `f` inside the runtime's pool, timed there.
fn in_pool(rt: &Runtime, iters: u64, mut f: impl FnMut() + Send) -> Duration {
    rt.install(|| {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed()
    })
}

fn label(w: &atenia_benches::WeightShape) -> (String, String) {
    (
        format!("{}/{}", w.model, w.dtype),
        format!("{}x{} {}", w.rows, w.cols, w.role),
    )
}

/// Decode: `y = W x` for every weight type and shape of the two models.
fn bench_matvec(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("matvec");
    // Equal iteration counts per sample: the 262144-row output product takes
    // ~15 ms, too long for criterion's default linear ramp in 0.8 s.
    g.sampling_mode(SamplingMode::Flat);
    for (i, w) in REAL_WEIGHTS.iter().enumerate() {
        let m = synthetic_matrix(w.role, w.dtype, w.rows, w.cols, 100 + i as u64);
        let x = random_f32(w.cols, 1);
        let mut y = vec![0f32; w.rows];
        g.throughput(Throughput::Bytes(m.bytes().len() as u64));
        let (f, p) = label(w);
        g.bench_function(BenchmarkId::new(f, p), |b| {
            b.iter_custom(|iters| in_pool(&rt, iters, || matvec(&rt, &m, &x, &mut y)))
        });
    }
    g.finish();
}

/// Prefill: `Y = X Wᵀ` for 128 tokens, every layer matrix (the output
/// projection only ever sees the last position in generation).
fn bench_matmul(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group(format!("matmul{PREFILL_TOKENS}"));
    g.sampling_mode(SamplingMode::Flat);
    for (i, w) in REAL_WEIGHTS.iter().enumerate().filter(|(_, w)| w.in_layer) {
        let m = synthetic_matrix(w.role, w.dtype, w.rows, w.cols, 100 + i as u64);
        let x = random_f32(PREFILL_TOKENS * w.cols, 2);
        let mut y = vec![0f32; PREFILL_TOKENS * w.rows];
        // Multiply-adds per call.
        g.throughput(Throughput::Elements(
            (PREFILL_TOKENS * w.rows * w.cols) as u64,
        ));
        let (f, p) = label(w);
        g.bench_function(BenchmarkId::new(f, p), |b| {
            b.iter_custom(|iters| {
                in_pool(&rt, iters, || matmul(&rt, &m, &x, PREFILL_TOKENS, &mut y))
            })
        });
    }
    g.finish();
}

fn shape(heads: usize, kv_heads: usize, head_dim: usize) -> AttnShape {
    AttnShape {
        n_heads: heads,
        n_kv_heads: kv_heads,
        head_dim,
        scale: 1.0 / (head_dim as f64).sqrt(),
        softcap: None,
        window: None,
    }
}

/// Attention: one decode query over 512 and 2048 cached positions, and a
/// 128- and 2048-token prefill from an empty cache, with each model's head layout.
fn bench_attention(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("attention");
    for &(model, heads, kv_heads, hd) in &REAL_ATTENTION {
        let s = shape(heads, kv_heads, hd);
        let (q_dim, kv_dim) = (heads * hd, kv_heads * hd);
        let max = DEPTHS[DEPTHS.len() - 1].max(LONG_PREFILL_TOKENS);
        let keys = random_f32(max * kv_dim, 3);
        let values = random_f32(max * kv_dim, 4);
        for depth in DEPTHS {
            let q = random_f32(q_dim, 5);
            let mut out = vec![0f32; q_dim];
            // Key·query products per call.
            g.throughput(Throughput::Elements((depth * heads) as u64));
            g.bench_function(
                BenchmarkId::new(format!("{model}/decode"), format!("depth {depth}")),
                |b| {
                    b.iter_custom(|iters| {
                        in_pool(&rt, iters, || {
                            attention(
                                &rt,
                                &s,
                                &q,
                                1,
                                depth - 1,
                                &keys[..depth * kv_dim],
                                &values[..depth * kv_dim],
                                &mut out,
                            )
                        })
                    })
                },
            );
        }
        // Decode as a model runs it: each call reads another layer's cache,
        // so the keys and values come from memory, not from the L2/L3 the
        // benches above keep them in (30 layers at depth 2048: 94 MB for SmolLM2).
        let depth = DEPTHS[DEPTHS.len() - 1];
        let layers: Vec<(Vec<f32>, Vec<f32>)> = (0..CACHE_LAYERS as u64)
            .map(|l| {
                (
                    random_f32(depth * kv_dim, 100 + 2 * l),
                    random_f32(depth * kv_dim, 101 + 2 * l),
                )
            })
            .collect();
        let q = random_f32(q_dim, 5);
        let mut out = vec![0f32; q_dim];
        g.throughput(Throughput::Elements((depth * heads) as u64));
        g.bench_function(
            BenchmarkId::new(
                format!("{model}/decode"),
                format!("depth {depth}, {CACHE_LAYERS} layers"),
            ),
            |b| {
                b.iter_custom(|iters| {
                    let mut l = 0;
                    in_pool(&rt, iters, || {
                        let (keys, values) = &layers[l];
                        l = (l + 1) % layers.len();
                        attention(&rt, &s, &q, 1, depth - 1, keys, values, &mut out)
                    })
                })
            },
        );
        for n in [PREFILL_TOKENS, LONG_PREFILL_TOKENS] {
            let q = random_f32(n * q_dim, 6);
            let mut out = vec![0f32; n * q_dim];
            g.throughput(Throughput::Elements((n * (n + 1) / 2 * heads) as u64));
            g.bench_function(
                BenchmarkId::new(format!("{model}/prefill"), format!("{n} tokens")),
                |b| {
                    b.iter_custom(|iters| {
                        in_pool(&rt, iters, || {
                            attention(
                                &rt,
                                &s,
                                &q,
                                n,
                                0,
                                &keys[..n * kv_dim],
                                &values[..n * kv_dim],
                                &mut out,
                            )
                        })
                    })
                },
            );
        }
    }
    g.finish();
}

/// RMSNorm over the hidden state (576, 640) and Gemma's per-head q/k norm (256).
fn bench_rms_norm(c: &mut Criterion) {
    let mut g = c.benchmark_group("rms_norm");
    for (name, n, offset) in [("smollm2/hidden", 576, 0.0), ("gemma3/hidden", 640, 1.0)] {
        let x = random_f32(n, 7);
        let w = random_f32(n, 8);
        let mut out = vec![0f32; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| rms_norm(std::hint::black_box(&x), &w, 1e-6, offset, &mut out))
        });
    }
    // Gemma 3 normalizes each head of q (4) and k (1) on its own.
    let hd = 256;
    let w = random_f32(hd, 9);
    let heads = random_f32(5 * hd, 10);
    g.throughput(Throughput::Elements(heads.len() as u64));
    g.bench_function(BenchmarkId::new("gemma3/qk_heads", "5x256"), |b| {
        b.iter_batched_ref(
            || heads.clone(),
            |x| {
                for h in x.chunks_exact_mut(hd) {
                    rms_norm_inplace(h, &w, 1e-6, 1.0);
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// RoPE: the angles of one position and the rotation of one token's q and k.
fn bench_rope(c: &mut Criterion) {
    let mut g = c.benchmark_group("rope");
    // SmolLM2 (GGUF llama: interleaved pairs, theta 1e5) and Gemma 3 (halves, theta 1e6).
    for (model, style, theta, heads, kv_heads, hd) in [
        ("smollm2", RopeStyle::Interleaved, 100_000.0, 9, 3, 64),
        ("gemma3", RopeStyle::Half, 1_000_000.0, 4, 1, 256),
    ] {
        let rope = Rope::plain(style, hd, theta);
        let mut cs = vec![0f64; hd];
        g.throughput(Throughput::Elements((hd / 2) as u64));
        g.bench_function(BenchmarkId::new(format!("{model}/cos_sin"), hd), |b| {
            b.iter(|| rope.cos_sin(std::hint::black_box(1234), &mut cs))
        });
        rope.cos_sin(1234, &mut cs);
        let mut q = random_f32(heads * hd, 11);
        let mut k = random_f32(kv_heads * hd, 12);
        g.throughput(Throughput::Elements(((heads + kv_heads) * hd) as u64));
        g.bench_function(
            BenchmarkId::new(
                format!("{model}/apply_qk"),
                format!("{}x{hd}", heads + kv_heads),
            ),
            |b| {
                // A rotation keeps the norm: repeating it on the same buffer is safe.
                b.iter(|| {
                    rope.apply(&mut q, hd, &cs);
                    rope.apply(&mut k, hd, &cs);
                })
            },
        );
    }
    g.finish();
}

/// The gated activation of the MLP: SwiGLU (SmolLM2, 1536) and GeGLU (Gemma 3, 2048).
fn bench_activation(c: &mut Criterion) {
    let mut g = c.benchmark_group("gated");
    for (model, act, n) in [
        ("smollm2/silu", Activation::Silu, 1536),
        ("gemma3/gelu_tanh", Activation::GeluTanh, 2048),
    ] {
        let gate = random_f32(n, 13);
        let up = random_f32(n, 14);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new(model, n), |b| {
            b.iter_batched_ref(
                || gate.clone(),
                |x| gated(act, x, &up),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .without_plots()
}

criterion_group! {
    name = kernels;
    config = config();
    targets = bench_matvec, bench_matmul, bench_attention, bench_rms_norm, bench_rope, bench_activation
}
criterion_main!(kernels);
