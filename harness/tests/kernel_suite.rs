//! Every engine kernel against its MPFR reference over proptest-generated
//! shapes and values, adversarial ones included (long reductions, cancelling
//! sums, magnitudes near 1e30, subnormals, mixed signs). Each kernel must stay
//! within its documented bound (`atenia_harness::kernel_suite`); the dot
//! product, the matrix products and attention must also give identical bits on
//! every ISA path and thread count.
//!
//! Run with `--nocapture` to see each kernel's worst errors: ULPs of the
//! result, error over `u·Σ|terms|` (reductions), and error over the bound.

use std::cell::RefCell;
use std::sync::OnceLock;

use atenia_engine::formats::ggml_type::GgmlType;
use atenia_engine::formats::storage::{Bytes, Matrix};
use atenia_engine::kernels::activation::{self, Activation};
use atenia_engine::kernels::attention::{attention, AttnShape};
use atenia_engine::kernels::matmul::{matmul, matvec};
use atenia_engine::kernels::rope::{Rope, RopeStyle};
use atenia_engine::kernels::runtime::Runtime;
use atenia_engine::kernels::{dot, exp, norm, Isa};
use atenia_harness::kernel_suite::{self as ks, Report, U32, U64};
use atenia_references::mpfr::{self, Float};
use atenia_testkit::Rng;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Runs `cases` proptest cases of `check`, prints the kernel's worst errors
/// and fails with the first case over its bound (after shrinking).
fn run<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value, &mut Report) -> Result<(), String>,
) where
    S::Value: std::fmt::Debug,
{
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    config.max_shrink_iters = 200;
    let mut runner = TestRunner::new(config);
    let total = RefCell::new(Report::default());
    let t = std::time::Instant::now();
    let result = runner.run(&strategy, |v| {
        let mut local = Report::default();
        check(v, &mut local).map_err(TestCaseError::fail)?;
        total.borrow_mut().merge(&local);
        Ok(())
    });
    let mut text = format!(
        "== {name}: {cases} cases in {:.1?} (ISA paths {:?})\n",
        t.elapsed(),
        Isa::available()
    );
    for l in total.borrow().lines() {
        text += &l;
        text += "\n";
    }
    eprint!("{text}");
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// One runtime per (ISA, thread count), built once.
fn runtimes() -> &'static [(Isa, usize, Runtime)] {
    static RT: OnceLock<Vec<(Isa, usize, Runtime)>> = OnceLock::new();
    RT.get_or_init(|| {
        let mut v = vec![];
        for isa in Isa::available() {
            for threads in [1, 3] {
                v.push((isa, threads, Runtime::new(threads, Some(isa)).unwrap()));
            }
        }
        v
    })
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn f64_of(x: &Float) -> f64 {
    x.to_f64()
}

// ---------------------------------------------------------------------------
// Adversarial vectors

/// The kinds of dot-product inputs (see [`dot_inputs`]).
const DOT_KINDS: u8 = 7;
const DOT_KIND_NAMES: [&str; 7] = [
    "uniform",
    "magnitudes 2^±40",
    "large 1e30",
    "subnormal/underflow",
    "cancellation",
    "near-zero sum",
    "random bits",
];

/// Two vectors of length `k`, of kind `kind`:
/// 0 uniform in (-1, 1); 1 magnitudes 2^-40..2^40, mixed signs; 2 `a` near
/// 1e30 and `b` small (products up to ~1e31); 3 subnormals and products that
/// underflow; 4 exact cancellation (pairs `±a·b`, shuffled) with a few
/// perturbed terms; 5 mixed signs whose sum is driven near zero by the last
/// term; 6 random f32 bit patterns (exponents below 2^40, subnormals included).
fn dot_inputs(kind: u8, k: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut r = Rng::new(seed);
    let mut a = vec![0f32; k];
    let mut b = vec![0f32; k];
    match kind {
        0 => {
            for i in 0..k {
                a[i] = r.range(-1.0, 1.0) as f32;
                b[i] = r.range(-1.0, 1.0) as f32;
            }
        }
        1 => {
            for i in 0..k {
                a[i] = r.log_uniform_f32(-40, 40);
                b[i] = r.log_uniform_f32(-40, 40);
            }
        }
        2 => {
            for i in 0..k {
                a[i] = r.log_uniform_f32(96, 103); // ~1e29 .. 1e31
                b[i] = r.log_uniform_f32(-20, 1);
            }
        }
        3 => {
            for i in 0..k {
                match r.below(4) {
                    0 => {
                        a[i] = r.subnormal();
                        b[i] = r.log_uniform_f32(-4, 20);
                    }
                    1 => {
                        a[i] = r.log_uniform_f32(-90, -60);
                        b[i] = r.log_uniform_f32(-90, -60);
                    }
                    2 => {
                        a[i] = r.log_uniform_f32(-130, -110);
                        b[i] = r.log_uniform_f32(-30, 0);
                    }
                    _ => {
                        a[i] = r.subnormal();
                        b[i] = r.subnormal();
                    }
                }
            }
        }
        4 => {
            let half = k / 2;
            for i in 0..half {
                a[i] = r.log_uniform_f32(-10, 10);
                b[i] = r.range(-4.0, 4.0) as f32;
                a[half + i] = -a[i];
                b[half + i] = b[i];
            }
            if k % 2 == 1 {
                a[k - 1] = r.range(-1.0, 1.0) as f32;
                b[k - 1] = r.range(-1e-3, 1e-3) as f32;
            }
            // Perturb a few terms by a relative 2^-20.
            for _ in 0..(k / 64).max(1).min(k) {
                let i = r.below(k as u64) as usize;
                a[i] *= 1.0 + 2f32.powi(-20);
            }
            // Shuffle, so that the cancelling pairs land in different lanes.
            for i in (1..k).rev() {
                let j = r.below(i as u64 + 1) as usize;
                a.swap(i, j);
                b.swap(i, j);
            }
        }
        5 => {
            for i in 0..k {
                a[i] = r.log_uniform_f32(-8, 8);
                b[i] = r.log_uniform_f32(-8, 8);
            }
            if k > 1 {
                let s: f64 = (0..k - 1).map(|i| a[i] as f64 * b[i] as f64).sum();
                a[k - 1] = -s as f32;
                b[k - 1] = 1.0;
            }
        }
        _ => {
            let bits = |r: &mut Rng| {
                let e = r.below(167) as u32; // exponent field 0 (subnormal) ..= 166 (2^39)
                let m = r.below(1 << 23) as u32;
                let s = (r.below(2) as u32) << 31;
                f32::from_bits(s | (e << 23) | m)
            };
            for i in 0..k {
                a[i] = bits(&mut r);
                b[i] = bits(&mut r);
            }
        }
    }
    (a, b)
}

fn reduction_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..=48,
        4 => 49usize..=1100,
        2 => 1100usize..=16384,
        1 => prop_oneof![Just(16383usize), Just(16384usize), Just(4096usize), Just(576usize)],
    ]
}

// ---------------------------------------------------------------------------
// Dot product

#[test]
fn dot_every_isa_same_bits_and_within_bound() {
    let isas = Isa::available();
    run(
        "dot",
        1000,
        (0..DOT_KINDS, reduction_len(), any::<u64>()),
        |(kind, k, seed), st| {
            let (a, b) = dot_inputs(kind, k, seed);
            let got = dot::dot(Isa::Scalar, &a, &b);
            for &isa in &isas {
                let g = dot::dot(isa, &a, &b);
                if g.to_bits() != got.to_bits() {
                    return Err(format!(
                        "{isa} gives {g:e}, scalar {got:e} (kind {kind}, K {k})"
                    ));
                }
            }
            let exact = mpfr::dot(&a, &b);
            let sum_abs = f64_of(&mpfr::dot_abs(&a, &b));
            let err = mpfr::abs_err(got as f64, &exact);
            let bound = ks::dot_bound(k, sum_abs, ks::abs(&exact));
            let rel = (U32 * sum_abs > ks::NORMAL_SCALE).then(|| err / (U32 * sum_abs));
            st.cat(format!("dot/{}", DOT_KIND_NAMES[kind as usize]))
                .record(mpfr::ulps_f32(got, &exact), rel, err, bound, || {
                    format!(
                        "kind {kind} K {k} seed {seed}: got {got:e}, exact {:e}, Σ|ab| {sum_abs:e}",
                        f64_of(&exact)
                    )
                })
        },
    );
}

// ---------------------------------------------------------------------------
// Matrix products

/// Stored types exercised by the matrix products (the weights' exact values
/// come from the MPFR dequantization, rounded to f32 as the engine must).
const MATMUL_TYPES: [GgmlType; 8] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
];

/// `rows × cols` random weights of type `ty` (finite: float types from
/// random values, quant types from random bytes with finite f16 scales).
fn random_matrix(ty: GgmlType, rows: usize, cols: usize, r: &mut Rng) -> Matrix {
    let mut bytes = vec![];
    match ty {
        GgmlType::F32 => {
            for _ in 0..rows * cols {
                let v = if r.below(8) == 0 {
                    r.log_uniform_f32(-30, 30)
                } else {
                    r.range(-1.0, 1.0) as f32
                };
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for _ in 0..rows * cols {
                let v = half::f16::from_f64(r.range(-2.0, 2.0));
                bytes.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
        GgmlType::BF16 => {
            for _ in 0..rows * cols {
                let v = half::bf16::from_f32(r.log_uniform_f32(-20, 20));
                bytes.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
        _ => {
            let nb = rows * cols / ty.block_elems();
            for _ in 0..nb {
                let mut block: Vec<u8> =
                    (0..ty.block_bytes()).map(|_| r.next_u64() as u8).collect();
                for &at in ty.scale_offsets() {
                    let s = half::f16::from_f64(
                        r.sign() * 2f64.powi(-(r.below(14) as i32)) * r.range(0.5, 1.0),
                    );
                    block[at..at + 2].copy_from_slice(&s.to_bits().to_le_bytes());
                }
                bytes.extend_from_slice(&block);
            }
        }
    }
    Matrix::new("w", ty, rows, cols, Bytes::from_vec(bytes)).unwrap()
}

#[test]
fn matmul_every_isa_and_thread_count_same_bits_and_within_bound() {
    let strategy = (
        0..MATMUL_TYPES.len(),
        1usize..=37,
        1usize..=5,
        1usize..=3,
        0usize..=300,
        0..DOT_KINDS,
        any::<u64>(),
    );
    run(
        "matmul/matvec",
        400,
        strategy,
        |(ti, rows, n, blocks, extra, kind, seed), st| {
            let ty = MATMUL_TYPES[ti];
            // Quant types: whole blocks; float types: any width (tails of the 16 lanes).
            let cols = if ty.is_quantized() {
                blocks * ty.block_elems()
            } else {
                extra.max(1)
            };
            let mut r = Rng::new(seed);
            let w = random_matrix(ty, rows, cols, &mut r);
            let x: Vec<f32> = (0..n)
                .flat_map(|t| dot_inputs(kind, cols, seed ^ (t as u64 + 1)).1)
                .collect();
            // The exact weights, from the raw bytes (MPFR), rounded once to f32.
            let wf: Vec<f32> = (0..rows)
                .flat_map(|i| {
                    mpfr::dequantize(ty, w.row(i))
                        .iter()
                        .map(mpfr::round_f32)
                        .collect::<Vec<_>>()
                })
                .collect();
            if wf.iter().any(|v| !v.is_finite()) {
                return Ok(());
            }
            // Engine: every ISA and thread count, prefill and decode, must agree bit for bit.
            let mut want: Option<Vec<u32>> = None;
            for (isa, threads, rt) in runtimes() {
                let mut y = vec![0f32; n * rows];
                matmul(rt, &w, &x, n, &mut y);
                let mut yv = vec![0f32; n * rows];
                for t in 0..n {
                    matvec(
                        rt,
                        &w,
                        &x[t * cols..(t + 1) * cols],
                        &mut yv[t * rows..(t + 1) * rows],
                    );
                }
                if bits(&y) != bits(&yv) {
                    return Err(format!(
                        "{ty} {rows}x{cols} n={n}: matmul and matvec differ on {isa}/{threads}"
                    ));
                }
                match &want {
                    None => want = Some(bits(&y)),
                    Some(wb) if *wb != bits(&y) => {
                        return Err(format!(
                            "{ty} {rows}x{cols} n={n}: {isa}/{threads} threads differs"
                        ));
                    }
                    _ => {}
                }
            }
            let y: Vec<f32> = want.unwrap().into_iter().map(f32::from_bits).collect();
            let exact = mpfr::matmul(&wf, rows, cols, &x, n);
            for t in 0..n {
                let xt = &x[t * cols..(t + 1) * cols];
                for i in 0..rows {
                    let wr = &wf[i * cols..(i + 1) * cols];
                    let got = y[t * rows + i];
                    // Each output is one dot product in the engine's order.
                    let d = dot::dot(Isa::Scalar, wr, xt);
                    if d.to_bits() != got.to_bits() {
                        return Err(format!(
                            "{ty}: output ({t}, {i}) = {got:e} is not dot(row, x) = {d:e}"
                        ));
                    }
                    let e = &exact[t * rows + i];
                    let sum_abs = f64_of(&mpfr::dot_abs(wr, xt));
                    let err = mpfr::abs_err(got as f64, e);
                    let rel = (U32 * sum_abs > ks::NORMAL_SCALE).then(|| err / (U32 * sum_abs));
                    st.cat(format!("matmul/{ty}")).record(
                        mpfr::ulps_f32(got, e),
                        rel,
                        err,
                        ks::dot_bound(cols, sum_abs, ks::abs(e)),
                        || format!("{ty} {rows}x{cols} n={n} kind {kind} seed {seed} ({t}, {i})"),
                    )?;
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// RMSNorm

#[test]
fn rms_norm_within_bound() {
    let strategy = (
        prop_oneof![1usize..=64, 65usize..=4096, Just(16384usize)],
        0u8..5,
        0u8..3,
        any::<bool>(),
        any::<u64>(),
    );
    run(
        "rms_norm",
        300,
        strategy,
        |(n, kind, eps_kind, gemma, seed), st| {
            let mut r = Rng::new(seed);
            let x: Vec<f32> = (0..n)
                .map(|_| match kind {
                    0 => r.range(-3.0, 3.0) as f32,
                    1 => r.log_uniform_f32(-60, 60),
                    2 => r.log_uniform_f32(96, 100), // ~1e29..1e30
                    3 => {
                        if r.below(2) == 0 {
                            r.subnormal()
                        } else {
                            r.log_uniform_f32(-140, -120)
                        }
                    }
                    _ => {
                        let v = r.log_uniform_f32(-20, 20);
                        if r.below(3) == 0 {
                            r.subnormal()
                        } else {
                            v
                        }
                    }
                })
                .collect();
            let w: Vec<f32> = (0..n).map(|_| r.log_uniform_f32(-12, 3)).collect();
            let offset = if gemma { 1.0 } else { 0.0 };
            let mut eps = [0.0, 1e-6, 9.999_999_974_752_427e-7][eps_kind as usize];
            if eps == 0.0 && x.iter().all(|&v| v == 0.0) {
                eps = 1e-6;
            }
            let mut out = vec![0f32; n];
            norm::rms_norm(&x, &w, eps, offset, &mut out);
            let mut inplace = x.clone();
            norm::rms_norm_inplace(&mut inplace, &w, eps, offset);
            if bits(&out) != bits(&inplace) {
                return Err("rms_norm and rms_norm_inplace differ".into());
            }
            let exact = mpfr::rms_norm(&x, &w, eps, offset);
            for (i, (e, &got)) in exact.iter().zip(&out).enumerate() {
                let err = mpfr::abs_err(got as f64, e);
                st.cat(format!("rms_norm/{}", ["uniform", "magnitudes 2^±60", "large 1e30", "subnormal", "mixed"][kind as usize]))
                    .record(mpfr::ulps_f32(got, e), None, err, ks::rms_norm_bound(n, e), || {
                format!("n {n} kind {kind} eps {eps:e} offset {offset} seed {seed} i {i}: got {got:e} exact {:e}", f64_of(e))
            })?;
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Rotary embeddings

#[test]
fn rope_within_bound() {
    let strategy = (
        any::<bool>(),
        prop_oneof![
            Just(2usize),
            Just(8),
            Just(64),
            Just(80),
            Just(128),
            Just(256)
        ],
        0usize..=128,
        1usize..=3,
        prop_oneof![Just(1e4f64), Just(5e5), Just(1e6), 100.0f64..2e6],
        prop_oneof![0usize..=64, 0usize..=8192, Just(131_071usize)],
        prop_oneof![3 => Just(1.0f64), 1 => 0.5f64..2.0],
        0u8..3,
        any::<u64>(),
    );
    run(
        "rope",
        500,
        strategy,
        |(interleaved, hd, rot, heads, theta, pos, factor, kind, seed), st| {
            let rd = (rot.min(hd / 2) * 2).max(2);
            let style = if interleaved {
                RopeStyle::Interleaved
            } else {
                RopeStyle::Half
            };
            let mut rope = Rope::plain(style, rd, theta);
            rope.attention_factor = factor;
            let mut r = Rng::new(seed);
            let x: Vec<f32> = (0..heads * hd)
                .map(|_| match kind {
                    0 => r.range(-4.0, 4.0) as f32,
                    1 => r.log_uniform_f32(-30, 30),
                    _ => r.log_uniform_f32(90, 100),
                })
                .collect();
            let mut cs = vec![0f64; rd];
            rope.cos_sin(pos, &mut cs);
            let mut y = x.clone();
            rope.apply(&mut y, hd, &cs);
            let pairing = if interleaved {
                mpfr::Pairing::Interleaved
            } else {
                mpfr::Pairing::Half
            };
            let exact = mpfr::rope(&x, hd, rd, pairing, theta, factor, pos);
            let half = rd / 2;
            for h in 0..heads {
                for d in 0..hd {
                    let idx = h * hd + d;
                    // The pair this dimension belongs to and its angle (0 outside the rotary dims).
                    let (xa, xb, angle) = if d < rd {
                        let (i, partner) = match style {
                            RopeStyle::Interleaved => (d / 2, d ^ 1),
                            RopeStyle::Half => {
                                (d % half, if d < half { d + half } else { d - half })
                            }
                        };
                        (
                            x[idx],
                            x[h * hd + partner],
                            pos as f64 * theta.powf(-(2.0 * i as f64) / rd as f64),
                        )
                    } else {
                        (0.0, 0.0, 0.0)
                    };
                    let e = &exact[idx];
                    let got = y[idx];
                    let err = mpfr::abs_err(got as f64, e);
                    let bound = ks::rope_bound(e, xa, xb, angle, theta, factor);
                    let scale = (xa.abs() as f64 + xb.abs() as f64) * factor;
                    let rel = (scale > 0.0).then(|| err / (U32 * scale));
                    st.cat(format!("rope/{style:?}")).record(mpfr::ulps_f32(got, e), rel, err, bound, || {
                    format!("{style:?} hd {hd} rd {rd} θ {theta} pos {pos} f {factor} seed {seed} [{idx}]: got {got:e} exact {:e}", f64_of(e))
                })?;
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Gated activations (f32 in, f32 out; f64 inside)

fn gate_value(kind: u8, r: &mut Rng) -> f32 {
    match kind {
        0 => r.range(-10.0, 10.0) as f32,
        1 => r.range(-12.0, -3.0) as f32, // GELU's cancelling region
        2 => r.log_uniform_f32(-149, 127),
        3 => r.subnormal(),
        _ => r.log_uniform_f32(-20, 12),
    }
}

fn check_gated(
    act: Activation,
    kind: u8,
    len: usize,
    seed: u64,
    st: &mut Report,
) -> Result<(), String> {
    let mut r = Rng::new(seed);
    let g: Vec<f32> = (0..len).map(|_| gate_value(kind, &mut r)).collect();
    let u: Vec<f32> = (0..len)
        .map(|_| {
            if r.below(2) == 0 {
                r.range(-2.0, 2.0) as f32
            } else {
                r.log_uniform_f32(-40, 40)
            }
        })
        .collect();
    let mut y = g.clone();
    activation::gated(act, &mut y, &u);
    let a = match act {
        Activation::Silu => mpfr::Act::Silu,
        Activation::GeluTanh => mpfr::Act::GeluTanh,
    };
    let exact = mpfr::gated(a, &g, &u);
    for i in 0..len {
        let e = &exact[i];
        let got = y[i];
        let rounded = mpfr::round_f32(e);
        if rounded.is_infinite() {
            // The exact value overflows f32: the engine must overflow the same way.
            if got != rounded {
                return Err(format!(
                    "{act:?}({:e})·{:e}: got {got:e}, exact overflows to {rounded}",
                    g[i], u[i]
                ));
            }
            continue;
        }
        let err = mpfr::abs_err(got as f64, e);
        let bound = match act {
            Activation::Silu => ks::silu_gated_bound(e),
            Activation::GeluTanh => ks::gelu_gated_bound(e, g[i], u[i]),
        };
        let cat = match act {
            Activation::Silu => "silu(x)·up",
            Activation::GeluTanh if g[i] < -3.0 => "gelu_tanh(x)·up, x < -3 (cancels)",
            Activation::GeluTanh => "gelu_tanh(x)·up, x ≥ -3",
        };
        st.cat(cat)
            .record(mpfr::ulps_f32(got, e), None, err, bound, || {
                format!(
                    "{act:?} kind {kind} seed {seed}: g {:e} u {:e}: got {got:e} exact {:e}",
                    g[i],
                    u[i],
                    f64_of(e)
                )
            })?;
    }
    Ok(())
}

#[test]
fn silu_gated_within_bound() {
    run(
        "silu·up",
        400,
        (0u8..5, 1usize..=256, any::<u64>()),
        |(kind, len, seed), st| check_gated(Activation::Silu, kind, len, seed, st),
    );
}

#[test]
fn gelu_tanh_gated_within_bound() {
    run(
        "gelu_tanh·up",
        400,
        (0u8..5, 1usize..=256, any::<u64>()),
        |(kind, len, seed), st| check_gated(Activation::GeluTanh, kind, len, seed, st),
    );
}

// ---------------------------------------------------------------------------
// Scalar f64 functions: exp (the softmax's), soft-cap, silu, gelu

/// The softmax's exp (`kernels::exp`) against MPFR: proptest cases over its
/// whole range, then 10^6 evenly spaced points of [-745.2, 1] (the softmax's
/// arguments are `s − max ≤ 0`), every one through the widest ISA path too.
#[test]
fn exp_within_bound() {
    let x = prop_oneof![
        -745.2f64..0.0,
        -40.0f64..40.0,
        -745.2f64..709.7,
        -1e-6f64..1e-6,
        -745.2f64..-708.0
    ];
    run("exp (f64)", 2000, x, |x, st| {
        let e = mpfr::exp(x);
        let got = exp::exp(x);
        let err = mpfr::abs_err(got, &e);
        let ulps = mpfr::ulps_f64(got, &e);
        st.cat("exp (f64)")
            .record(ulps, None, err, ks::exp_bound(&e), || {
                format!("exp({x:e}) = {got:e}")
            })
    });
    let n = 1_000_000;
    let (lo, hi) = (-745.2f64, 1.0f64);
    let xs: Vec<f64> = (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect();
    let mut wide = xs.clone();
    exp::exp_sub_in_place(Isa::detect(), &mut wide, 0.0);
    let mut report = Report::default();
    for (&x, &w) in xs.iter().zip(&wide) {
        let got = exp::exp(x);
        assert_eq!(
            got.to_bits(),
            w.to_bits(),
            "exp({x:e}) on {}",
            Isa::detect()
        );
        let e = mpfr::exp(x);
        // Below 2^-1000 the measured error is itself rounded up to a
        // multiple of 2^-1074, so it reads as a whole ULP there.
        let cat = if got < f64::MIN_POSITIVE {
            "exp 10^6 grid, subnormal"
        } else if got < 1e-301 {
            "exp 10^6 grid, below 1e-301"
        } else {
            "exp 10^6 grid"
        };
        report
            .cat(cat)
            .record(
                mpfr::ulps_f64(got, &e),
                None,
                mpfr::abs_err(got, &e),
                ks::exp_bound(&e),
                || format!("exp({x:e}) = {got:e}"),
            )
            .unwrap();
    }
    eprintln!("== exp on {n} points of [{lo}, {hi}]");
    for l in report.lines() {
        eprintln!("{l}");
    }
}

#[test]
fn softcap_within_bound() {
    let strategy = (
        prop_oneof![
            -200.0f64..200.0,
            -1e6f64..1e6,
            -1e-3f64..1e-3,
            (-1000i32..1000).prop_map(|e| 2f64.powi(e))
        ],
        prop_oneof![Just(30.0f64), Just(50.0), 1.0f64..100.0],
    );
    run("softcap (f64)", 2000, strategy, |(x, cap), st| {
        let e = mpfr::softcap(x, cap);
        let got = activation::softcap(x, cap);
        let err = mpfr::abs_err(got, &e);
        st.cat("softcap (f64)").record(
            mpfr::ulps_f64(got, &e),
            None,
            err,
            ks::softcap_bound(&e),
            || format!("softcap({x:e}, {cap}) = {got:e}"),
        )
    });
}

#[test]
fn silu_and_gelu_f64_within_bound() {
    // The f64 functions themselves, before the product and the rounding to f32.
    run(
        "silu/gelu (f64)",
        2000,
        prop_oneof![-700.0f64..700.0, -12.0f64..12.0, -1e-30f64..1e-30],
        |x, st| {
            let e = mpfr::silu(x);
            let got = activation::silu(x);
            let err = mpfr::abs_err(got, &e);
            st.cat("silu (f64)").record(
                mpfr::ulps_f64(got, &e),
                None,
                err,
                ks::SILU_F64_ROUNDINGS * U64 * ks::abs(&e) + mpfr::pow2(-1074),
                || format!("silu({x:e}) = {got:e}"),
            )?;
            let e = mpfr::gelu_tanh(x);
            let got = activation::gelu_tanh(x);
            let err = mpfr::abs_err(got, &e);
            let bound =
                (4.0 * ks::abs(&e) + ks::GELU_ABS_ROUNDINGS * x.abs()) * U64 + mpfr::pow2(-1074);
            let cat = if x < -3.0 {
                "gelu_tanh (f64), x < -3 (cancels)"
            } else {
                "gelu_tanh (f64), x ≥ -3"
            };
            st.cat(cat)
                .record(mpfr::ulps_f64(got, &e), None, err, bound, || {
                    format!("gelu_tanh({x:e}) = {got:e}")
                })
        },
    );
}

// ---------------------------------------------------------------------------
// Attention (scores, softmax, weighted sum)

#[test]
fn attention_every_isa_same_bits_and_within_bound() {
    let strategy = (
        1usize..=2,
        1usize..=3,
        prop_oneof![Just(8usize), Just(16), Just(40), Just(64)],
        0usize..=20,
        1usize..=5,
        prop_oneof![Just(None), (1usize..=8).prop_map(Some)],
        prop_oneof![Just(None), Just(Some(50.0f64)), Just(Some(5.0f64))],
        0u8..3,
        any::<u64>(),
    );
    run(
        "attention",
        300,
        strategy,
        |(kvh, group, hd, pos0, n, window, cap, kind, seed), st| {
            let nh = kvh * group;
            let shape = AttnShape {
                n_heads: nh,
                n_kv_heads: kvh,
                head_dim: hd,
                scale: 1.0 / (hd as f64).sqrt(),
                softcap: cap,
                window,
            };
            let mut r = Rng::new(seed);
            let total = pos0 + n;
            let (qd, kvd) = (nh * hd, kvh * hd);
            // kind 0: unit-size scores; 1: scores spread over hundreds; 2: wide magnitudes.
            let val = |r: &mut Rng| match kind {
                0 => r.range(-1.0, 1.0) as f32,
                1 => r.range(-6.0, 6.0) as f32,
                _ => r.log_uniform_f32(-20, 3),
            };
            let q: Vec<f32> = (0..n * qd).map(|_| val(&mut r)).collect();
            let keys: Vec<f32> = (0..total * kvd).map(|_| val(&mut r)).collect();
            let values: Vec<f32> = (0..total * kvd)
                .map(|_| r.log_uniform_f32(-10, 4))
                .collect();
            let mut want: Option<Vec<u32>> = None;
            for (isa, threads, rt) in runtimes() {
                let mut out = vec![0f32; n * qd];
                attention(rt, &shape, &q, n, pos0, &keys, &values, &mut out);
                match &want {
                    None => want = Some(bits(&out)),
                    Some(w) if *w != bits(&out) => {
                        return Err(format!("{isa}/{threads} threads differs"))
                    }
                    _ => {}
                }
            }
            let out: Vec<f32> = want.unwrap().into_iter().map(f32::from_bits).collect();
            for t in 0..n {
                let pos = pos0 + t;
                let first = window.map_or(0, |w| (pos + 1).saturating_sub(w));
                for h in 0..nh {
                    let kv = h / group;
                    let qh = &q[t * qd + h * hd..t * qd + (h + 1) * hd];
                    let ks_: Vec<&[f32]> = (first..=pos)
                        .map(|j| &keys[j * kvd + kv * hd..j * kvd + (kv + 1) * hd])
                        .collect();
                    let vs: Vec<&[f32]> = (first..=pos)
                        .map(|j| &values[j * kvd + kv * hd..j * kvd + (kv + 1) * hd])
                        .collect();
                    let p = mpfr::attention_weights(qh, &ks_, shape.scale, cap);
                    let exact = mpfr::attend(qh, &ks_, &vs, shape.scale, cap);
                    // Δ: the largest score error.
                    let scores: Vec<f64> = ks_
                        .iter()
                        .map(|k| {
                            let s = f64_of(&mpfr::dot(qh, k)) * shape.scale;
                            cap.map_or(s, |c| c * (s / c).tanh())
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let delta = ks_
                        .iter()
                        .zip(&scores)
                        .map(|(k, &s)| {
                            ks::score_error(
                                hd,
                                f64_of(&mpfr::dot_abs(qh, k)),
                                ks::abs(&mpfr::dot(qh, k)),
                                shape.scale,
                                s,
                                cap,
                                max - s,
                            )
                        })
                        .fold(0.0, f64::max);
                    for i in 0..hd {
                        let e = &exact[i];
                        let got = out[t * qd + h * hd + i];
                        let spv: f64 = p
                            .iter()
                            .zip(&vs)
                            .map(|(p, v)| f64_of(p) * (v[i] as f64).abs())
                            .sum::<f64>()
                            * (1.0 + 1e-12);
                        let err = mpfr::abs_err(got as f64, e);
                        let bound = ks::attention_bound(e, delta, ks_.len(), spv);
                        let cat = format!(
                            "attention/{}",
                            ["unit scores", "wide scores", "wide magnitudes"][kind as usize]
                        );
                        st.cat(cat).record(mpfr::ulps_f32(got, e), None, err, bound, || {
                        format!("heads {nh}/{kvh} hd {hd} pos {pos} window {window:?} cap {cap:?} kind {kind} seed {seed} head {h} [{i}]: got {got:e} exact {:e}", f64_of(e))
                    })?;
                    }
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Dequantization: the engine's f32 is the exact value rounded once

#[test]
fn dequantization_is_the_exact_value_rounded_once() {
    let strategy = (0..GgmlType::ALL.len(), 1usize..=3, 0u8..3, any::<u64>());
    run(
        "dequantize",
        1500,
        strategy,
        |(ti, nblocks, scales, seed), st| {
            let ty = GgmlType::ALL[ti];
            let mut r = Rng::new(seed);
            let mut bytes: Vec<u8> = (0..nblocks * ty.block_bytes())
                .map(|_| r.next_u64() as u8)
                .collect();
            // scales: 0 any bits (NaN and inf included); 1 finite, any magnitude; 2 subnormal or tiny.
            if scales > 0 {
                for b in 0..nblocks {
                    for &at in ty.scale_offsets() {
                        let bits: u16 = if scales == 1 {
                            (r.next_u64() as u16) & 0xFBFF // exponent field never all ones
                        } else {
                            (r.next_u64() as u16) & 0x83FF // exponent 0: ±0 or subnormal
                        };
                        bytes[b * ty.block_bytes() + at..][..2]
                            .copy_from_slice(&bits.to_le_bytes());
                    }
                }
            }
            let n = nblocks * ty.block_elems();
            let mut got = vec![0f32; n];
            atenia_engine::formats::dequant::dequantize_row(ty, &bytes, &mut got).unwrap();
            let exact = mpfr::dequantize(ty, &bytes);
            for (i, (e, &g)) in exact.iter().zip(&got).enumerate() {
                let want = mpfr::round_f32(e);
                let same = if want.is_nan() {
                    g.is_nan()
                } else {
                    g.to_bits() == want.to_bits()
                };
                if !same {
                    return Err(format!("{ty} seed {seed} element {i}: engine {g:e} ({:#010x}), exact {e} rounds to {want:e} ({:#010x})", g.to_bits(), want.to_bits()));
                }
                let ulps = if e.is_finite() && g.is_finite() {
                    mpfr::ulps_f32(g, e)
                } else {
                    0.0
                };
                // Bound: half an ULP (one rounding of the exact value).
                let err = if e.is_finite() && g.is_finite() {
                    mpfr::abs_err(g as f64, e)
                } else {
                    0.0
                };
                // Types without a min (and the float types) involve no rounding at all.
                let has_min = matches!(
                    ty,
                    GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q2K | GgmlType::Q4K | GgmlType::Q5K
                );
                let bound = if e.is_finite() && has_min {
                    0.5 * mpfr::ulp_f32(e)
                } else {
                    0.0
                };
                st.cat(format!("dequantize/{ty}"))
                    .record(ulps, None, err, bound, || format!("{ty} seed {seed} [{i}]"))?;
            }
            Ok(())
        },
    );
}
