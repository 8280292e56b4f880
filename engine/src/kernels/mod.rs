//! Compute kernels with run-time SIMD dispatch. Every kernel has a portable
//! scalar path and, where it pays, AVX2+FMA and AVX-512 paths that produce
//! the same bits: they share one reduction order (see [`dot`]), so a result
//! never depends on which path, or how many threads, computed it.
//!
//! Also here: the thread pool ([`runtime`]). Uses [`crate::formats`] (tensor
//! types and storage) and nothing above it.

pub mod activation;
pub mod attention;
pub mod dot;
pub mod exp;
pub mod islice;
pub mod matmul;
pub mod norm;
pub mod qdot;
pub mod rope;
pub mod runtime;

use std::fmt;

/// An instruction-set path for the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust; fused multiply-adds through `f32::mul_add`.
    Scalar,
    /// x86-64 AVX2 with FMA3 and F16C.
    Avx2,
    /// x86-64 AVX-512 (F, BW, VL) with AVX2, FMA3 and F16C.
    Avx512,
}

impl Isa {
    /// The fastest path this CPU supports.
    pub fn detect() -> Isa {
        *Isa::available().last().unwrap_or(&Isa::Scalar)
    }

    /// Every path this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            // The fused kernels (qdot) widen f16 scales with F16C, and their
            // AVX-512 code is compiled with BW and VL enabled.
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            if avx2 {
                v.push(Isa::Avx2);
            }
            if avx2
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
            {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    pub fn from_name(s: &str) -> Option<Isa> {
        match s {
            "scalar" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        Isa::available().contains(&self)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Reproducible test inputs in [-1, 1], shared by the kernels' tests.
#[cfg(test)]
pub(crate) fn test_data(n: usize, seed: u32) -> Vec<f32> {
    let mut rng = atenia_testkit::Rng::new(seed.into());
    (0..n).map(|_| rng.range(-1.0, 1.0) as f32).collect()
}

/// Asks the CPU to bring every cache line of `rows` into L1 ahead of use: for
/// rows read a page or more apart, which the hardware prefetchers do not
/// follow. A hint only: no effect on any result, none off x86-64.
pub fn prefetch_rows<'a>(rows: impl Iterator<Item = &'a [f32]>) {
    #[cfg(target_arch = "x86_64")]
    for row in rows {
        for line in row.chunks(16) {
            // SAFETY: SSE is part of x86-64; the address lies in `row`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr().cast(),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    rows.for_each(drop);
}
