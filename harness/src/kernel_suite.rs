//! Error bounds of the engine's kernels against their MPFR references, and the
//! bookkeeping the kernel suite (`harness/tests/kernel_suite.rs`) reports.
//!
//! Notation: `u = 2^-24` is the unit roundoff of f32 and `u₆₄ = 2^-53` that of
//! f64; `ulp₃₂(y)` is the spacing of f32 values at the exact result `y`
//! (`2^(e−24)` for `2^(e−1) ≤ |y| < 2^e`, at least the subnormal spacing
//! 2^-149). A kernel whose f64 internals are followed by a final rounding to
//! f32 can not beat `ulp₃₂/2`; its bounds are that half ULP plus the f64
//! error, written condition-aware (relative to the sum of the magnitudes that
//! cancel, not to the result), so that they hold for cancelling inputs too.
//!
//! The attention softmax's exp is the engine's own (`kernels::exp`, bound
//! [`EXP_MAX_ULPS`]); every other elementary function (exp in the
//! activations, tanh, sin, cos, powf) comes from the platform's libm, and the
//! bounds assume its documented accuracy, [`LIBM_ULPS`].

use std::collections::BTreeMap;

use atenia_references::mpfr::{self, Float};

/// f32 unit roundoff.
pub const U32: f64 = 1.0 / (1u64 << 24) as f64;
/// f64 unit roundoff.
pub const U64: f64 = 1.0 / (1u64 << 53) as f64;
/// The smallest f32 subnormal, 2^-149: twice the largest absolute error of
/// one f32 rounding in the subnormal range.
pub const F32_TINY: f64 = 1.401_298_464_324_817e-45;

/// Condition scales (`u·Σ|terms|`) below this are dominated by underflow, so
/// the suite reports `err/(u·Σ|terms|)` only above it.
pub const NORMAL_SCALE: f64 = 7.888_609_052_210_118e-31; // 2^-100

/// Accuracy assumed of the platform libm's `exp`, `tanh`, `sin`, `cos` and
/// `powf` (double precision), in ULPs of their result: glibc documents at most
/// 2 ULPs for each of them on x86-64 (its `libm-test-ulps`); newer glibc `exp`
/// is below 1. In relative terms one call errs by at most `2·LIBM_ULPS·u₆₄`.
pub const LIBM_ULPS: f64 = 2.0;

/// Relative error of one libm call, `2·LIBM_ULPS·u₆₄` (an ULP is at most `2u₆₄` relative).
pub const LIBM_REL: f64 = 2.0 * LIBM_ULPS * U64;

/// `f64` roundings on any product's path through the dot product beyond the
/// adds of its lane's run totals: the lane's one tail add, the 4 levels of the
/// fixed reduction tree (`i + 8`, `+4`, `+2`, `+1`), plus 1 that absorbs the
/// second-order term of `γ_n`.
///
/// **Dot product / matmul bound** (`atenia_engine::kernels::dot`). In the main
/// part (the first `K − K mod 16` elements), element `k` enters the `f32` run
/// of lane `k % 16` by a fused multiply-add; a run holds at most 16 elements
/// of a lane, so each product passes through at most 16 `f32` roundings (the
/// first rounds the product itself), and the run sums, as long as nothing
/// exceeds `f32::MAX`, satisfy `|ŝ_run − s_run| ≤ γ₁₆(u)·Σ_run|a_k b_k|` plus
/// `2^-150` per rounding in the subnormal range (at most one per element:
/// `K·2^-150` in all). The runs are widened exactly and added to the lane's
/// `f64` total: `⌈K/256⌉` adds, then one tail add (the tail's products are
/// exact in f64) and the 4-level tree, so each run sum passes through at most
/// `⌈K/256⌉ + 5` f64 roundings, `γ ≤ (⌈K/256⌉ + 6)·u₆₄`. With
/// `δ = (γ₁₆(u) + (1 + γ₁₆(u))·(⌈K/256⌉ + 6)·u₆₄)·Σ|a_k b_k| + K·2^-150`,
/// `|ŝ − s| ≤ δ`; the one rounding of `ŝ` to f32 errs by at most `u·|ŝ|` or
/// `2^-150`, and `|ŝ| ≤ |s| + δ`, so
///
/// `|dot − exact| ≤ u·|exact| + (1 + u)·δ + 2^-150`.
///
/// The accumulation term is `γ₁₆(u) ≈ 16u ≈ 9.5e-7` relative to `Σ|a_k b_k|`
/// for any K, where plain f32 lanes charge `(⌈K/16⌉ + 5)·u` (2.4e-6 at
/// K = 576, 6e-6 at K = 1536) and the previous all-f64 order charged
/// `(⌈K/16⌉ + 4)·u₆₄` (about 1e-14) at twice the arithmetic. The bound is
/// independent of the ISA path, since all of them produce the same bits.
pub const DOT_EXTRA_ROUNDINGS: usize = 6;

/// `γ_n(u) = n·u/(1 − n·u)` for the f32 unit roundoff.
pub fn gamma32(n: usize) -> f64 {
    n as f64 * U32 / (1.0 - n as f64 * U32)
}

/// The dot-product bound above, for `k` terms with `Σ|a_k b_k| = sum_abs` and
/// exact value of magnitude `exact_abs`.
pub fn dot_bound(k: usize, sum_abs: f64, exact_abs: f64) -> f64 {
    let run = gamma32(k.div_ceil(16).min(atenia_engine::kernels::dot::RUN / 16));
    let wide = (k.div_ceil(atenia_engine::kernels::dot::RUN) + DOT_EXTRA_ROUNDINGS) as f64 * U64;
    let delta = (run + (1.0 + run) * wide) * sum_abs + k as f64 * F32_TINY / 2.0;
    U32 * exact_abs + (1.0 + U32) * delta + F32_TINY / 2.0
}

/// Slack on the final half-ULP rounding to f32: the f64 value being rounded
/// may lie in a higher binade than the exact one by a hair, where the half
/// ULP is larger; `(1 + 2^-20)` covers any f64 error below `2^-21` relative.
pub const HALF_ULP_SLACK: f64 = 1.0 + 1.0 / (1u64 << 20) as f64;

/// f64 roundings charged to an RMSNorm of `n` elements beyond the sum:
/// the mean (`/n`), `+ eps`, the square root (half a rounding, counted as
/// one), the reciprocal, `x·r`, `offset + w` and the product (6), plus 2 spare.
///
/// **RMSNorm bound** (`atenia_engine::kernels::norm::rms_norm`): the squares
/// of f32 values are exact in f64 and non-negative, so their `n`-term sum errs
/// by at most `(n − 1)·u₆₄` relative; every later step is one rounding, and
/// the square root halves the relative error of its argument. The f64 result
/// is rounded once to f32:
///
/// `|y − exact| ≤ ½·ulp₃₂(exact)·(1 + 2^-20) + (n + RMS_EXTRA_ROUNDINGS)·u₆₄·|exact|`
///
/// (in ULPs: `0.5 + n·2^-29`, i.e. correctly rounded up to an f64 hair).
pub const RMS_EXTRA_ROUNDINGS: usize = 8;

pub fn rms_norm_bound(n: usize, exact: &Float) -> f64 {
    0.5 * mpfr::ulp_f32(exact) * HALF_ULP_SLACK
        + (n + RMS_EXTRA_ROUNDINGS) as f64 * U64 * abs(exact)
}

/// Relative error of the engine's rotary angle `pos · inv_freq` per unit of
/// `ln θ` and beyond it (in u₆₄).
///
/// **RoPE bound** (`atenia_engine::kernels::rope`): `inv_freq = 1/θ^(2i/d)`,
/// with the exponent `2i/d` rounded (relative `u₆₄`, which `θ^e` turns into
/// `e·ln θ·u₆₄ ≤ ln θ·u₆₄`), `powf` ([`LIBM_REL`]) and the reciprocal (`u₆₄`);
/// the angle `a = pos·inv_freq` adds one more rounding. So the angle errs by
/// at most `|a|·(ln θ + ROPE_ANGLE_ROUNDINGS)·u₆₄` absolute with
/// `ROPE_ANGLE_ROUNDINGS = 2 + 2·LIBM_ULPS`. cos and sin of it err by that
/// plus [`LIBM_REL`], the attention factor multiplication by `u₆₄`, and the
/// rotation `x_a·c − x_b·s` (two products and a sum, all f64) by at most
/// `3u₆₄·(|x_a c| + |x_b s|)`. With the final rounding to f32:
///
/// `|y − exact| ≤ ½·ulp₃₂(exact)·(1 + 2^-20) + f·(|x_a| + |x_b|)·(|a|·(ln θ + 6) + 2·LIBM_ULPS + 6)·u₆₄`
///
/// where `f` is the attention factor (1 for plain RoPE). Near-cancelling
/// rotations (`exact ≈ 0`) are why the second term is not relative to `|exact|`.
pub const ROPE_ANGLE_ROUNDINGS: f64 = 2.0 + 2.0 * LIBM_ULPS;

pub fn rope_bound(exact: &Float, xa: f32, xb: f32, angle: f64, theta: f64, factor: f64) -> f64 {
    let per = angle.abs() * (theta.ln() + ROPE_ANGLE_ROUNDINGS) + 2.0 * LIBM_ULPS + 6.0;
    0.5 * mpfr::ulp_f32(exact) * HALF_ULP_SLACK
        + factor.abs() * (xa.abs() as f64 + xb.abs() as f64) * per * U64
}

/// **SiLU-gated bound** (`activation::gated(Silu, ..)`, `silu(g)·u` rounded to
/// f32): `silu(x) = x/(1 + e^-x)` errs by at most `LIBM_REL + 2u₆₄` relative
/// (exp, the `1 +`, the division; `e^-x/(1+e^-x) ≤ 1` keeps exp's error from
/// growing), the product with `u` by `u₆₄` more. When `e^-x` overflows
/// (`x < −709.7`) the engine returns ±0 where the exact value is below 2^-1000,
/// inside the half ULP of f32. So
///
/// `|y − exact| ≤ ½·ulp₃₂(exact)·(1 + 2^-20) + (2·LIBM_ULPS + 4)·u₆₄·|exact|`.
pub const SILU_F64_ROUNDINGS: f64 = 2.0 * LIBM_ULPS + 4.0;

/// **GELU(tanh)-gated bound** (`activation::gated(GeluTanh, ..)`): the engine
/// computes `0.5·x·(1 + tanh(z))`, `z = √(2/π)·(x + 0.044715·x³)`. For
/// `x ≲ −5`, `tanh(z)` is within `10⁻⁸` of −1 and the sum `1 + tanh(z)`
/// cancels: tanh's error (`LIBM_REL` of |tanh| ≤ 1), the error of `z`
/// (≤ 6 roundings, times `|z|·sech²z ≤ 0.45`) and the sum's rounding make
/// `1 + tanh(z)` err by up to `(2·LIBM_ULPS + 5)·u₆₄` *absolute*, and the result
/// by `½|x·u|` times that. This is not small relative to the result: at
/// `x = −8` the exact GELU is `−3·10⁻²¹` while the engine returns `−0`, so its
/// ULP error there is unbounded, but the absolute error stays far below the
/// f64 rounding of values of the size of `x`. The remaining roundings
/// (`0.5·x·(…)`, `·u`) are relative. So
///
/// `|y − exact| ≤ ½·ulp₃₂(exact)·(1 + 2^-20) + (4·|exact| + (LIBM_ULPS + 3)·|x·u|)·u₆₄`.
///
/// (`x·σ(2z)` = `x/(1 + e^{−2z})` is the same function without the
/// cancellation, should the engine want correctly rounded GELU for x < −5.)
pub const GELU_ABS_ROUNDINGS: f64 = LIBM_ULPS + 3.0;

pub fn silu_gated_bound(exact: &Float) -> f64 {
    0.5 * mpfr::ulp_f32(exact) * HALF_ULP_SLACK + SILU_F64_ROUNDINGS * U64 * abs(exact)
}

pub fn gelu_gated_bound(exact: &Float, g: f32, u: f32) -> f64 {
    0.5 * mpfr::ulp_f32(exact) * HALF_ULP_SLACK
        + (4.0 * abs(exact) + GELU_ABS_ROUNDINGS * (g as f64 * u as f64).abs()) * U64
}

/// **exp bound** (`atenia_engine::kernels::exp::exp`, the softmax's
/// exponential, the same bits on every ISA path): at most 1 ULP of f64 for
/// normal results. Derived in ULPs of the result: 0.5 for the final rounding
/// of the polynomial, at most 0.25 from the rounding of the reduced argument
/// `r` (`|r| ≤ ln 2/2`, its half ULP ≤ 2^-55, times `e^r`), 0.18 from
/// Horner's rounding of `q₁` carried by `|r|`, 0.04 from truncating the
/// Taylor series after `r^13`, 0.03 for the other Horner steps, the rounded
/// coefficients and the two-part ln 2: ≤ 0.995. The scaling by `2^n` is exact
/// for normal results.
pub const EXP_MAX_ULPS: f64 = 1.0;

/// Subnormal results (below 2^-1022) round once more, into the subnormal
/// grid: the error is at most the 0.995 ULP above, which is below 2^-1074
/// there, plus half of 2^-1074.
pub const EXP_SUBNORMAL_ULPS: f64 = 1.5;

/// The exp bound for the exact value `exact` (absolute).
pub fn exp_bound(exact: &Float) -> f64 {
    let ulp = mpfr::ulp_f64(exact);
    if abs(exact) < f64::MIN_POSITIVE {
        EXP_SUBNORMAL_ULPS * ulp
    } else {
        EXP_MAX_ULPS * ulp
    }
}

/// **Soft-cap bound** (`activation::softcap`, `cap·tanh(x/cap)` in f64):
/// the division and the final product round once each, tanh errs by
/// [`LIBM_REL`], and tanh's relative condition number `y·sech²y/tanh y` is at
/// most 1, so the division's error is not amplified:
/// `|y − exact| ≤ (2·LIBM_ULPS + 3)·u₆₄·|exact| + 2^-1070` (the last term for
/// underflow of tiny `x/cap`). In ULPs of f64: at most `2·(2·LIBM_ULPS + 3) = 14`.
pub const SOFTCAP_F64_ROUNDINGS: f64 = 2.0 * LIBM_ULPS + 3.0;

pub fn softcap_bound(exact: &Float) -> f64 {
    SOFTCAP_F64_ROUNDINGS * U64 * abs(exact) + mpfr::pow2(-1070)
}

/// **Attention bound** (`attention::attention`, one head of one query).
/// Scores are dot products in the engine's order, rounded to f32 (error:
/// [`dot_bound`] with `K = head_dim`), times `scale` in f64, then soft-capped in f64
/// (`|cap'| ≤ 1`, so the error does not grow; the cap itself adds
/// [`SOFTCAP_F64_ROUNDINGS`]`·u₆₄·|cap|`); `s − max` adds `u₆₄·|s − max|`. If every
/// score errs by at most `Δ`, every softmax weight `p_j` errs by at most a
/// factor `e^{2Δ} − 1` relative, so the output `o_i = Σ p_j v_ji` by
/// `(e^{2Δ} − 1)·Σ p_j |v_ji|`. The f64 softmax and weighted sum over `L`
/// keys add `(2L + 2·EXP_MAX_ULPS + 4)·u₆₄·Σ p_j|v_ji|` (exp per weight, the
/// sum of `L` weights, the division, the `L` products and sums; a subnormal
/// weight's absolute error, under 2^-1072, is far inside the f32 half ULP),
/// and the output is rounded to f32:
///
/// `|o − exact| ≤ ½·ulp₃₂(exact)·(1 + 2^-20) + (e^{2Δ} − 1 + (2L + 2·EXP_MAX_ULPS + 4)·u₆₄)·Σ_j p_j |v_ji|`.
pub const ATTN_F64_ROUNDINGS: f64 = 2.0 * EXP_MAX_ULPS + 4.0;

/// `Δ` of the attention bound for one score: `scale·dot_bound + |s|·2u₆₄`
/// (+ the soft-cap's own f64 error) + `u₆₄·|s − max|`; `qk_abs` is the exact
/// `|q·k|` (before the scale).
#[allow(clippy::too_many_arguments)]
pub fn score_error(
    head_dim: usize,
    sum_abs_qk: f64,
    qk_abs: f64,
    scale: f64,
    score: f64,
    cap: Option<f64>,
    spread: f64,
) -> f64 {
    scale * dot_bound(head_dim, sum_abs_qk, qk_abs) * (1.0 + 4.0 * U64)
        + score.abs() * 2.0 * U64
        + cap.map_or(0.0, |c| SOFTCAP_F64_ROUNDINGS * U64 * c)
        + spread * U64
}

pub fn attention_bound(exact: &Float, delta: f64, keys: usize, sum_p_abs_v: f64) -> f64 {
    0.5 * mpfr::ulp_f32(exact) * HALF_ULP_SLACK
        + ((2.0 * delta).exp_m1() * (1.0 + 4.0 * U64)
            + (2.0 * keys as f64 + ATTN_F64_ROUNDINGS) * U64)
            * sum_p_abs_v
}

/// `|x|` rounded up to f64.
pub fn abs(x: &Float) -> f64 {
    mpfr::abs_up(x)
}

/// Worst cases seen by one kernel's check.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Results compared.
    pub count: u64,
    /// Largest `|got − exact| / ulp(exact)` (ULPs of the result's own type).
    pub max_ulps: f64,
    /// Largest `|got − exact| / (u·Σ|terms|)` for reductions (the
    /// condition-aware relative error in units of the result type's roundoff).
    pub max_rel_cond: f64,
    /// Largest `|got − exact| / bound`; the suite requires ≤ 1.
    pub max_bound_ratio: f64,
    /// The case that gave `max_bound_ratio`.
    pub worst: String,
}

impl Stats {
    /// Records one result: its error in ULPs, its error relative to the
    /// condition scale (`None` where not meaningful), and its error over the
    /// bound. Returns `Err` with a description when the bound is exceeded.
    pub fn record(
        &mut self,
        ulps: f64,
        rel_cond: Option<f64>,
        err: f64,
        bound: f64,
        what: impl FnOnce() -> String,
    ) -> Result<(), String> {
        self.count += 1;
        if ulps.is_finite() {
            self.max_ulps = self.max_ulps.max(ulps);
        }
        if let Some(r) = rel_cond {
            self.max_rel_cond = self.max_rel_cond.max(r);
        }
        let ratio = if err == 0.0 { 0.0 } else { err / bound };
        if ratio.is_nan() || ratio > 1.0 {
            return Err(format!(
                "error {err:e} exceeds the bound {bound:e} ({:.5}×): {}",
                ratio,
                what()
            ));
        }
        if ratio > self.max_bound_ratio {
            self.max_bound_ratio = ratio;
            self.worst = what();
        }
        Ok(())
    }

    pub fn merge(&mut self, o: &Stats) {
        self.count += o.count;
        self.max_ulps = self.max_ulps.max(o.max_ulps);
        self.max_rel_cond = self.max_rel_cond.max(o.max_rel_cond);
        if o.max_bound_ratio > self.max_bound_ratio {
            self.max_bound_ratio = o.max_bound_ratio;
            self.worst = o.worst.clone();
        }
    }

    /// One line for the suite's report.
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<34} n={:<8} max ULPs {:<12} max err/(u·Σ|·|) {:<9} max err/bound {:.3}",
            self.count,
            format!("{:.4}", self.max_ulps),
            if self.max_rel_cond > 0.0 {
                format!("{:.3}", self.max_rel_cond)
            } else {
                "-".into()
            },
            self.max_bound_ratio
        )
    }
}

/// Worst cases per category (a kernel split by input kind or type).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub cats: BTreeMap<String, Stats>,
}

impl Report {
    /// The statistics of category `name` (created empty).
    pub fn cat(&mut self, name: impl Into<String>) -> &mut Stats {
        self.cats.entry(name.into()).or_default()
    }

    pub fn merge(&mut self, o: &Report) {
        for (k, v) in &o.cats {
            self.cat(k.clone()).merge(v);
        }
    }

    /// One line per category, then its worst case.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![];
        for (k, v) in &self.cats {
            out.push(v.line(k));
            if !v.worst.is_empty() {
                out.push(format!("    worst vs bound: {}", v.worst));
            }
        }
        out
    }
}
