//! The integer (sliced-input) quantized dot products of
//! `atenia_engine::kernels::islice` against today's fused `f32` kernels
//! (`qdot::RowDots`) on the same data in the same run, one thread, at the
//! Llama-3.2-1B shapes: 8192 rows × K = 2048 (FFN gate/up) and 2048 rows ×
//! K = 8192 (FFN down).
//!
//!   cargo bench -p atenia-benches --bench islice

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use atenia_benches::{random_f32, synthetic_matrix};
use atenia_engine::kernels::islice::{self, Sliced};
use atenia_engine::kernels::qdot::RowDots;
use atenia_engine::kernels::Isa;
use atenia_engine::GgmlType;

fn rows4(bytes: &[u8], rb: usize, r: usize) -> [&[u8]; 4] {
    std::array::from_fn(|i| &bytes[(r + i) * rb..(r + i + 1) * rb])
}

/// Error of each route against the exact (f64) dot product of the dequantized
/// rows, over `rows` rows: (max |err| / Σ|w x|, root-mean-square of the same).
fn accuracy(ty: GgmlType, rows: usize, cols: usize, x: &[f32]) {
    let isa = Isa::detect();
    let m = synthetic_matrix("w", ty, rows, cols, 7);
    let (bytes, rb) = (m.bytes(), m.row_bytes());
    let xs3 = Sliced::<3>::new(x);
    let xs4 = Sliced::<4>::new(x);
    let k = RowDots::new(isa, ty, cols);
    let mut w = vec![0f32; cols];
    let mut stats = [(0f64, 0f64); 3];
    for r in 0..rows {
        let row = &bytes[r * rb..(r + 1) * rb];
        atenia_engine::formats::dequant::dequantize_row(ty, row, &mut w).unwrap();
        let exact: f64 = w.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum();
        let abs: f64 = w
            .iter()
            .zip(x)
            .map(|(a, b)| (*a as f64 * *b as f64).abs())
            .sum();
        let got = [
            k.dot([row], x, &[])[0],
            islice::dot_rows::<3, 1>(isa, ty, [row], &xs3)[0],
            islice::dot_rows::<4, 1>(isa, ty, [row], &xs4)[0],
        ];
        for (s, g) in stats.iter_mut().zip(got) {
            let e = (g as f64 - exact).abs() / abs;
            s.0 = s.0.max(e);
            s.1 += e * e / rows as f64;
        }
    }
    let f = |s: (f64, f64)| format!("max {:.2e} rms {:.2e}", s.0, s.1.sqrt());
    eprintln!(
        "accuracy {ty} K={cols}: f32-runs {} | 3 slices {} | 4 slices {}",
        f(stats[0]),
        f(stats[1]),
        f(stats[2])
    );
}

/// Activations with outliers: mostly N(0,1)-like, every 97th element ×40.
fn activations(n: usize) -> Vec<f32> {
    let mut x = random_f32(n, 1);
    for (i, v) in x.iter_mut().enumerate() {
        if i % 97 == 5 {
            *v *= 40.0;
        }
    }
    x
}

fn bench_gemv(c: &mut Criterion) {
    let isa = Isa::detect();
    for ty in [GgmlType::Q4_1, GgmlType::Q4K] {
        accuracy(ty, 512, 2048, &random_f32(2048, 1));
        accuracy(ty, 512, 2048, &activations(2048));
    }
    let mut g = c.benchmark_group("islice");
    for ty in [GgmlType::Q4_1, GgmlType::Q4K] {
        for (rows, cols) in [(8192, 2048), (2048, 8192)] {
            let m = synthetic_matrix("w", ty, rows, cols, 7);
            let x = random_f32(cols, 1);
            let bytes = m.bytes();
            let rb = m.row_bytes();
            let mut y = vec![0f32; rows];
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            let shape = format!("{ty} {rows}x{cols}");
            g.bench_function(BenchmarkId::new("f32-runs", &shape), |b| {
                b.iter(|| {
                    let k = RowDots::new(isa, ty, cols);
                    for r in (0..rows).step_by(4) {
                        let o = k.dot(rows4(bytes, rb, r), &x, &[]);
                        y[r..r + 4].copy_from_slice(&o);
                    }
                })
            });
            g.bench_function(BenchmarkId::new("int-3-slices", &shape), |b| {
                b.iter(|| {
                    let xs = Sliced::<3>::new(&x);
                    for r in (0..rows).step_by(4) {
                        let o = islice::dot_rows::<3, 4>(isa, ty, rows4(bytes, rb, r), &xs);
                        y[r..r + 4].copy_from_slice(&o);
                    }
                })
            });
            g.bench_function(BenchmarkId::new("int-4-slices", &shape), |b| {
                b.iter(|| {
                    let xs = Sliced::<4>::new(&x);
                    for r in (0..rows).step_by(4) {
                        let o = islice::dot_rows::<4, 4>(isa, ty, rows4(bytes, rb, r), &xs);
                        y[r..r + 4].copy_from_slice(&o);
                    }
                })
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! {
    name = islice;
    config = config();
    targets = bench_gemv
}
criterion_main!(islice);
