//! Matrix products against weights kept in their stored type.
//!
//! Every output `y[t][r] = W[r] · x[t]` is one dot product in the order of
//! [`super::dot`], whatever the batch size and thread count: the decode path
//! (`matvec`) and the prefill path (`matmul`) produce identical bits for the
//! same row and input.
//!
//! On the SIMD paths (see [`qdot::has_simd`]) the kernels accumulate in
//! `f32` runs flushed into `f64` lanes (see [`super::dot`]). Decode
//! runs the fused dequantize-and-dot kernels of [`qdot`] on the stored blocks,
//! four rows at a time, and prefill dequantizes a chunk of rows once (SIMD,
//! exact) into a per-thread scratch and runs register tiles of 4 rows ×
//! [`TILE_T`] tokens over it, token tile by token tile, so that a tile's
//! inputs are reused by every row of the chunk while they are in the cache.
//! The scalar path dequantizes with `dequant.rs` and uses [`super::dot`].
//! All of them give the same bits (see the tests here and in `qdot`).
//! Scratch buffers are allocated once per thread and reused: no allocation
//! per call after the first calls of a given size.

use std::cell::RefCell;

use rayon::prelude::*;

use super::dot::{accumulate, accumulate4, reduce, Acc, LANES};
use super::qdot;
use super::Isa;
use crate::formats::storage::Matrix;
use crate::kernels::runtime::Runtime;

/// Rows dequantized into the scratch at a time by prefill: 8 rows of 640
/// (Gemma 3) are 20 KiB, which stays in L1 beside a tile's inputs (measured,
/// 1 thread, 128 tokens: 3–6% faster than 16 or 32, 4 no better).
const ROW_CHUNK: usize = 8;

/// Tokens per register tile of the prefill product: 4 rows × 4 tokens of 16
/// `f32` lanes, 16 run registers of AVX-512's 32 (the `f64` totals live in
/// memory and are touched once per 256-element run). Measured on the 2-core
/// AVX-512 machine, 1 thread, 128 tokens, Q4_1 576×1536: 4 × 3, 4 × 4 and
/// 4 × 6 all run at 110–114 GFLOP/s; 4 × 4 leaves registers free.
const TILE_T: usize = 4;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < len {
            s.resize(len, 0.0);
        }
        f(&mut s[..len])
    })
}

/// Dequantizes rows `r0..r0+out.len()/cols` of `w` into `out`.
fn dequant_rows(isa: Isa, w: &Matrix, r0: usize, out: &mut [f32]) {
    let rb = w.row_bytes();
    let n = out.len() / w.cols;
    let src = w.rows_bytes(r0, r0 + n);
    for (row, bytes) in out
        .chunks_exact_mut(w.cols)
        .zip(src.chunks_exact(rb.max(1)))
    {
        qdot::dequant_row(isa, w.dtype, bytes, row);
    }
}

/// A raw pointer that may be shared across the pool's threads; each thread
/// writes a disjoint set of elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Decode products of at most this many weights run on the calling thread
/// when it is not one of the pool's workers: they take ~20 µs on one core,
/// about what handing work to the pool and waiting for it costs from outside
/// (measured on the 2-core machine: SmolLM2 decode 115 tok/s splitting every
/// product, 130 with this limit; Gemma 3 86 and 88).
const INLINE_ELEMS: usize = 1 << 19;

/// The same limit for a caller that is a pool worker (a decoder running its
/// forward pass inside `Runtime::install`), where splitting only costs a
/// steal: only tiny products stay on one thread.
const INLINE_ELEMS_IN_POOL: usize = 1 << 16;

/// Rows per decode task: about four tasks per thread (for balance), a
/// multiple of 4 (the fused kernels' row group), at least 16.
fn decode_chunk(rows: usize, threads: usize) -> usize {
    rows.div_ceil(4 * threads.max(1))
        .next_multiple_of(4)
        .max(16)
}

/// `y = W x` for one input vector.
pub fn matvec(rt: &Runtime, w: &Matrix, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), w.cols, "{}: input width", w.name);
    assert_eq!(y.len(), w.rows, "{}: output height", w.name);
    let isa = rt.isa;
    if !qdot::has_simd(isa) {
        return matvec_dequant(rt, w, x, y);
    }
    // Inside the pool, splitting costs a steal; from outside, a hand-off to
    // the pool and a wake-up of the blocked caller.
    let inline_elems = if rayon::current_thread_index().is_some() {
        INLINE_ELEMS_IN_POOL
    } else {
        INLINE_ELEMS
    };
    if w.rows * w.cols <= inline_elems {
        return fused_rows(isa, w, 0, x, y);
    }
    let chunk = decode_chunk(w.rows, rt.threads());
    rt.install(|| {
        y.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, ys)| fused_rows(isa, w, c * chunk, x, ys))
    });
}

/// `y_i = W_i x` for several matrices sharing one input vector (attention's
/// Q, K and V; the MLP's gate and up), in one parallel region instead of one
/// per matrix: each region costs a hand-off and a wake-up, and decode runs
/// hundreds of them per token. The same bits as [`matvec`] per matrix (every
/// row is one dot product, whichever task computes it).
pub fn matvec_many<const J: usize>(rt: &Runtime, jobs: [(&Matrix, &mut [f32]); J], x: &[f32]) {
    for (w, y) in jobs.iter() {
        assert_eq!(x.len(), w.cols, "{}: input width", w.name);
        assert_eq!(y.len(), w.rows, "{}: output height", w.name);
    }
    let isa = rt.isa;
    if !qdot::has_simd(isa) {
        for (w, y) in jobs {
            matvec_dequant(rt, w, x, y);
        }
        return;
    }
    // Task t is chunk t - (tasks of the matrices before) of the first matrix
    // whose chunks reach it: no allocation per call (decode calls this twice
    // a layer).
    let threads = rt.threads();
    let chunk: [usize; J] = std::array::from_fn(|j| decode_chunk(jobs[j].0.rows, threads));
    let count: [usize; J] = std::array::from_fn(|j| jobs[j].0.rows.div_ceil(chunk[j]));
    let mats: [&Matrix; J] = std::array::from_fn(|j| jobs[j].0);
    let outs = jobs.map(|(_, y)| SharedOut(y.as_mut_ptr()));
    rt.install(|| {
        (0..count.iter().sum()).into_par_iter().for_each(|mut t| {
            let mut j = 0;
            while t >= count[j] {
                t -= count[j];
                j += 1;
            }
            let (w, r0) = (mats[j], t * chunk[j]);
            let rows = chunk[j].min(w.rows - r0);
            #[allow(clippy::redundant_locals)]
            let out = outs[j];
            // SAFETY: the tasks of matrix j cover disjoint row ranges inside
            // its output (its row count, checked above).
            let ys = unsafe { std::slice::from_raw_parts_mut(out.0.add(r0), rows) };
            fused_rows(isa, w, r0, x, ys);
        })
    });
}

/// How far ahead of the rows being multiplied the decode kernels prefetch,
/// in bytes.
const PREFETCH_AHEAD: usize = 4096;

/// `ys[i] = W[r0 + i] · x` with the fused kernels, four rows at a time.
fn fused_rows(isa: Isa, w: &Matrix, r0: usize, x: &[f32], ys: &mut [f32]) {
    let (rb, all) = (w.row_bytes(), w.bytes());
    let k = qdot::RowDots::new(isa, w.dtype, w.cols);
    let row = |i: usize| &all[(r0 + i) * rb..(r0 + i + 1) * rb];
    // Four rows about PREFETCH_AHEAD bytes ahead, read into the cache during
    // these four.
    let ahead = PREFETCH_AHEAD.div_ceil(rb.max(1)).max(4);
    let next = |i: usize| {
        let a = ((r0 + i + ahead) * rb).min(all.len());
        &all[a..(a + 4 * rb).min(all.len())]
    };
    let mut r = 0;
    while r + 4 <= ys.len() {
        let rows = [row(r), row(r + 1), row(r + 2), row(r + 3)];
        let o = k.dot(rows, x, next(r));
        ys[r..r + 4].copy_from_slice(&o);
        r += 4;
    }
    while r < ys.len() {
        ys[r] = k.dot([row(r)], x, next(r))[0];
        r += 1;
    }
}

/// The scalar path of [`matvec`]: dequantize four rows, then dot them.
fn matvec_dequant(rt: &Runtime, w: &Matrix, x: &[f32], y: &mut [f32]) {
    let isa = rt.isa;
    rt.install(|| {
        y.par_chunks_mut(ROW_CHUNK).enumerate().for_each(|(c, ys)| {
            let r0 = c * ROW_CHUNK;
            with_scratch(4 * w.cols, |buf| {
                let mut r = 0;
                while r + 4 <= ys.len() {
                    dequant_rows(isa, w, r0 + r, buf);
                    let (a, rest) = buf.split_at(w.cols);
                    let (b, rest) = rest.split_at(w.cols);
                    let (c, d) = rest.split_at(w.cols);
                    let mut acc = [[0f64; LANES]; 4];
                    accumulate4(isa, &mut acc, [a, b, c, d], x);
                    for i in 0..4 {
                        ys[r + i] = reduce(&acc[i]);
                    }
                    r += 4;
                }
                while r < ys.len() {
                    let row = &mut buf[..w.cols];
                    dequant_rows(isa, w, r0 + r, row);
                    let mut acc: Acc = [0f64; LANES];
                    accumulate(isa, &mut acc, row, x);
                    ys[r] = reduce(&acc);
                    r += 1;
                }
            })
        })
    });
}

/// `Y = X Wᵀ` for `n` input rows: `x` is `n × cols`, `y` is `n × rows`, both row-major.
/// Each weight row is dequantized once and used for all `n` inputs.
pub fn matmul(rt: &Runtime, w: &Matrix, x: &[f32], n: usize, y: &mut [f32]) {
    assert_eq!(x.len(), n * w.cols, "{}: input size", w.name);
    assert_eq!(y.len(), n * w.rows, "{}: output size", w.name);
    if n == 1 {
        return matvec(rt, w, x, y);
    }
    let isa = rt.isa;
    if !qdot::has_simd(isa) {
        return matmul_dequant(rt, w, x, n, y);
    }
    let rows = w.rows;
    let cols = w.cols;
    let out = SharedOut(y.as_mut_ptr());
    let chunks = rows.div_ceil(ROW_CHUNK);
    let xw = x;
    {
        rt.install(|| {
            (0..chunks).into_par_iter().for_each(|c| {
                let r_begin = c * ROW_CHUNK;
                let r_end = (r_begin + ROW_CHUNK).min(rows);
                with_scratch(ROW_CHUNK * cols, |buf| {
                    let buf = &mut buf[..(r_end - r_begin) * cols];
                    dequant_rows(isa, w, r_begin, buf);
                    let emit = |r: usize, t: usize, v: f32| {
                        // Capture the whole SharedOut (Sync), not its raw pointer field.
                        #[allow(clippy::redundant_locals)]
                        let out = out;
                        // SAFETY: (t, r_begin + r) is written by this chunk only,
                        // and lies inside y (t < n, r_begin + r < r_end <= rows).
                        unsafe { *out.0.add(t * rows + r_begin + r) = v };
                    };
                    match isa {
                        Isa::Avx512 => chunk_products::<4, TILE_T>(isa, buf, cols, xw, n, emit),
                        _ => chunk_products::<1, 3>(isa, buf, cols, xw, n, emit),
                    }
                })
            })
        })
    }
}

/// The products of the dequantized rows `w` (`cols` each) with all `n`
/// tokens of `x`: token tiles of `T` (then single tokens), and within
/// each, register tiles of `R` rows (then single rows). AVX-512 runs tiles of
/// 4 rows × [`TILE_T`] tokens; AVX2 (16 registers, two per output's run)
/// 1 row × 3 tokens (chosen when the lanes were `f64`, four registers per
/// output: as fast as 2 × 1, 25% faster than 1 × 1, 1 × 2 and 2 × 2).
fn chunk_products<const R: usize, const T: usize>(
    isa: Isa,
    w: &[f32],
    cols: usize,
    x: &[f32],
    n: usize,
    mut emit: impl FnMut(usize, usize, f32),
) {
    let nr = w.len() / cols;
    let row = |r: usize| &w[r * cols..(r + 1) * cols];
    let xt = |t: usize| &x[t * cols..(t + 1) * cols];
    let mut t = 0;
    while t < n {
        if t + T <= n {
            let xs: [&[f32]; T] = std::array::from_fn(|j| xt(t + j));
            rows_by::<R, T>(isa, nr, &row, xs, |r, j, v| emit(r, t + j, v));
            t += T;
        } else {
            rows_by::<R, 1>(isa, nr, &row, [xt(t)], |r, _, v| emit(r, t, v));
            t += 1;
        }
    }
}

/// The products of `nr` rows with the `T` tokens `x`: tiles of `R` rows, then
/// single rows.
fn rows_by<'a, const R: usize, const T: usize>(
    isa: Isa,
    nr: usize,
    row: &impl Fn(usize) -> &'a [f32],
    x: [&[f32]; T],
    mut emit: impl FnMut(usize, usize, f32),
) {
    let mut r = 0;
    while r + R <= nr {
        let o = qdot::tile::<R, T>(isa, std::array::from_fn(|i| row(r + i)), x);
        for (i, or) in o.iter().enumerate() {
            for (j, &v) in or.iter().enumerate() {
                emit(r + i, j, v);
            }
        }
        r += R;
    }
    while r < nr {
        let o = qdot::tile::<1, T>(isa, [row(r)], x);
        for (j, &v) in o[0].iter().enumerate() {
            emit(r, j, v);
        }
        r += 1;
    }
}

/// The scalar path of [`matmul`].
fn matmul_dequant(rt: &Runtime, w: &Matrix, x: &[f32], n: usize, y: &mut [f32]) {
    let isa = rt.isa;
    let rows = w.rows;
    let cols = w.cols;
    let out = SharedOut(y.as_mut_ptr());
    let chunks = rows.div_ceil(ROW_CHUNK);
    rt.install(|| {
        (0..chunks).into_par_iter().for_each(|c| {
            // Capture the whole SharedOut (Sync), not its raw pointer field.
            #[allow(clippy::redundant_locals)]
            let out = out;
            let r_begin = c * ROW_CHUNK;
            let r_end = (r_begin + ROW_CHUNK).min(rows);
            with_scratch(ROW_CHUNK * cols, |buf| {
                let buf = &mut buf[..(r_end - r_begin) * cols];
                dequant_rows(isa, w, r_begin, buf);
                let mut r = 0;
                let nr = r_end - r_begin;
                while r < nr {
                    let take = if r + 4 <= nr { 4 } else { 1 };
                    for t in 0..n {
                        let xt = &x[t * cols..(t + 1) * cols];
                        if take == 4 {
                            let base = r * cols;
                            let mut acc = [[0f64; LANES]; 4];
                            accumulate4(
                                isa,
                                &mut acc,
                                [
                                    &buf[base..base + cols],
                                    &buf[base + cols..base + 2 * cols],
                                    &buf[base + 2 * cols..base + 3 * cols],
                                    &buf[base + 3 * cols..base + 4 * cols],
                                ],
                                xt,
                            );
                            for (i, a) in acc.iter().enumerate() {
                                // SAFETY: (t, r_begin + r + i) is written by this chunk only,
                                // and lies inside y (t < n, row < rows).
                                unsafe { *out.0.add(t * rows + r_begin + r + i) = reduce(a) };
                            }
                        } else {
                            let mut acc: Acc = [0f64; LANES];
                            accumulate(isa, &mut acc, &buf[r * cols..(r + 1) * cols], xt);
                            // SAFETY: as above.
                            unsafe { *out.0.add(t * rows + r_begin + r) = reduce(&acc) };
                        }
                    }
                    r += take;
                }
            })
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::ggml_type::GgmlType;
    use crate::formats::storage::Bytes;
    use crate::kernels::dot::dot;
    use crate::kernels::Isa;

    fn f32_matrix(rows: usize, cols: usize, seed: u32) -> (Matrix, Vec<f32>) {
        let mut rng = atenia_testkit::Rng::new(seed.into());
        let vals: Vec<f32> = (0..rows * cols)
            .map(|_| rng.below(2001) as f32 / 1000.0 - 1.0)
            .collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let m = Matrix::new("w", GgmlType::F32, rows, cols, Bytes::from_vec(bytes)).unwrap();
        (m, vals)
    }

    #[test]
    fn prefill_and_decode_agree_bit_for_bit_at_any_thread_count() {
        let (w, _) = f32_matrix(37, 96, 7);
        let (_, x) = f32_matrix(5, 96, 9);
        for isa in Isa::available() {
            let mut want = vec![0f32; 5 * 37];
            let rt1 = Runtime::new(1, Some(isa)).unwrap();
            for t in 0..5 {
                matvec(
                    &rt1,
                    &w,
                    &x[t * 96..(t + 1) * 96],
                    &mut want[t * 37..(t + 1) * 37],
                );
            }
            for threads in [1, 2, 3] {
                let rt = Runtime::new(threads, Some(isa)).unwrap();
                let mut got = vec![0f32; 5 * 37];
                matmul(&rt, &w, &x, 5, &mut got);
                let a: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                let b: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
                assert_eq!(a, b, "{isa} threads={threads}");
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        // A NaN's payload is no part of the contract (see qdot's tests).
        v.iter()
            .map(|x| if x.is_nan() { 0x7FC0_0000 } else { x.to_bits() })
            .collect()
    }

    /// `n` rows of `x` times `w`, each row dequantized by dequant.rs and
    /// dotted by the scalar path of dot.rs: the reference every path must
    /// reproduce bit for bit.
    fn reference(w: &Matrix, x: &[f32], n: usize) -> Vec<f32> {
        let mut row = vec![0f32; w.cols];
        let mut y = vec![0f32; n * w.rows];
        for r in 0..w.rows {
            w.dequantize_row_into(r, &mut row).unwrap();
            for t in 0..n {
                y[t * w.rows + r] = dot(Isa::Scalar, &row, &x[t * w.cols..(t + 1) * w.cols]);
            }
        }
        y
    }

    /// matmul at 1, 2 and 3 threads and matvec token by token, on every
    /// path, against the reference.
    fn check_all_paths(w: &Matrix, ns: &[usize], seed: u32, what: &str) {
        for &n in ns {
            let (_, x) = f32_matrix(n, w.cols, seed + n as u32);
            let want = bits(&reference(w, &x, n));
            for isa in Isa::available() {
                for threads in [1, 2, 3] {
                    let rt = Runtime::new(threads, Some(isa)).unwrap();
                    let mut got = vec![f32::NAN; n * w.rows];
                    matmul(&rt, w, &x, n, &mut got);
                    assert!(
                        bits(&got) == want,
                        "{what} {isa} threads={threads} n={n}: matmul"
                    );
                    if threads == 2 {
                        for t in 0..n {
                            let xt = &x[t * w.cols..(t + 1) * w.cols];
                            let yt = &mut got[t * w.rows..(t + 1) * w.rows];
                            yt.fill(f32::NAN);
                            matvec(&rt, w, xt, yt);
                        }
                        assert!(bits(&got) == want, "{what} {isa} n={n}: matvec");
                    }
                }
            }
        }
    }

    fn quant_matrix(ty: GgmlType, rows: usize, cols: usize, seed: u32) -> Matrix {
        let blocks = rows * cols / ty.block_elems();
        let bytes = crate::kernels::qdot::tests::random_blocks(ty, blocks, seed);
        Matrix::new("w", ty, rows, cols, Bytes::from_vec(bytes)).unwrap()
    }

    #[test]
    fn every_type_path_and_thread_count_gives_the_reference_bits() {
        for ty in GgmlType::ALL {
            // Float types: a width that is not a multiple of 16 (a tail).
            let cols = match ty.block_elems() {
                1 => 100,
                32 => 96,
                _ => 512,
            };
            for rows in [1, 6, 37] {
                let w = quant_matrix(ty, rows, cols, 11 + rows as u32);
                check_all_paths(&w, &[1, 2, 5, 7], 3, &format!("{ty} {rows}x{cols}"));
            }
            // Big enough for decode to split the rows over the pool.
            let cols = 1024;
            let rows = INLINE_ELEMS / cols + 7;
            let w = quant_matrix(ty, rows, cols, 5);
            check_all_paths(&w, &[1, 3], 9, &format!("{ty} {rows}x{cols}"));
        }
    }

    #[test]
    fn golden_blocks_as_matrix_rows() {
        // The real and random blocks of golden/dequant, as a matrix.
        for ty in GgmlType::ALL.into_iter().filter(|t| t.is_quantized()) {
            let blocks = crate::kernels::qdot::tests::golden_blocks(ty);
            let cols = if ty.block_elems() == 32 { 128 } else { 512 };
            let rb = ty.row_bytes(cols).unwrap();
            let rows = blocks.len() / rb;
            let w = Matrix::new(
                "w",
                ty,
                rows,
                cols,
                Bytes::from_vec(blocks[..rows * rb].to_vec()),
            )
            .unwrap();
            check_all_paths(&w, &[1, 3], 21, &format!("{ty} golden"));
        }
    }

    /// The weights of the real models: the first rows of
    /// every 2-D tensor, one per (type, shape), on every path.
    #[test]
    fn real_model_weights_give_the_reference_bits() {
        for name in [
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "gemma-3-270m-q4_k_m.gguf",
        ] {
            let path = atenia_testkit::model_path(name);
            let g = crate::formats::gguf::GgufFile::open(&path).unwrap();
            let mut seen = std::collections::HashSet::new();
            for t in &g.tensors {
                if t.dims.len() != 2 || !seen.insert((t.dtype, t.dims.clone())) {
                    continue;
                }
                let (cols, rows) = (t.dims[0], t.dims[1].min(45));
                let rb = t.dtype.row_bytes(cols).unwrap();
                let data = g.tensor_data(t)[..rows * rb].to_vec();
                let w = Matrix::new(t.name.clone(), t.dtype, rows, cols, Bytes::from_vec(data))
                    .unwrap();
                check_all_paths(&w, &[1, 3], 4, &format!("{name} {} {}", t.name, t.dtype));
            }
        }
    }

    #[test]
    fn matvec_matches_f64() {
        let (w, wv) = f32_matrix(33, 200, 3);
        let (_, x) = f32_matrix(1, 200, 5);
        let rt = Runtime::new(2, None).unwrap();
        let mut y = vec![0f32; 33];
        matvec(&rt, &w, &x, &mut y);
        for r in 0..33 {
            let exact: f64 = (0..200).map(|k| wv[r * 200 + k] as f64 * x[k] as f64).sum();
            assert!(
                (y[r] as f64 - exact).abs() < 1e-5,
                "row {r}: {} vs {exact}",
                y[r]
            );
        }
    }
}

#[cfg(test)]
mod bench {
    //! Timings, not checks:
    //! `cargo test --release -p atenia-engine --lib bench_ -- --ignored --nocapture`
    //! (`ISA=avx2` picks the path of `bench_matvec` and `bench_matmul`).
    use super::*;
    use crate::formats::ggml_type::GgmlType;
    use crate::formats::storage::Bytes;
    use std::time::Instant;

    fn random_matrix(ty: GgmlType, rows: usize, cols: usize) -> Matrix {
        let mut v = vec![0u8; ty.row_bytes(cols).unwrap() * rows];
        atenia_testkit::Rng::new(12345).fill_bytes(&mut v);
        // Finite scales: clear the top exponent bit of every byte pair's high byte.
        for b in v.iter_mut().skip(1).step_by(2) {
            *b &= 0xBF;
        }
        Matrix::new("w", ty, rows, cols, Bytes::from_vec(v)).unwrap()
    }

    fn best(mut f: impl FnMut(), reps: usize) -> f64 {
        let mut b = f64::MAX;
        for _ in 0..reps {
            let t = Instant::now();
            f();
            b = b.min(t.elapsed().as_secs_f64());
        }
        b
    }

    /// CPU time of this thread (ns), from the scheduler's accounting: timing
    /// that ignores the time other processes hold the core.
    fn cpu_ns() -> u64 {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        s.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Seconds of CPU per call of `f`, over at least 0.3 s of CPU.
    fn cpu_per_call(mut f: impl FnMut()) -> f64 {
        f();
        let t0 = cpu_ns();
        let mut calls = 0;
        while cpu_ns() - t0 < 300_000_000 {
            f();
            calls += 1;
        }
        (cpu_ns() - t0) as f64 * 1e-9 / calls as f64
    }

    /// Single-thread kernel throughput in this thread's CPU time.
    #[test]
    fn matvec_many_matches_matvec() {
        let a = random_matrix(GgmlType::Q4_1, 200, 96);
        let b = random_matrix(GgmlType::Q8_0, 36, 96);
        let c = random_matrix(GgmlType::F16, 7, 96);
        let x: Vec<f32> = (0..96).map(|i| (i as f32 * 0.61).cos()).collect();
        for isa in Isa::available() {
            for threads in [1, 2, 3] {
                let rt = Runtime::new(threads, Some(isa)).unwrap();
                let (mut ya, mut yb, mut yc) = (vec![0f32; 200], vec![0f32; 36], vec![0f32; 7]);
                matvec_many(
                    &rt,
                    [(&a, &mut ya[..]), (&b, &mut yb[..]), (&c, &mut yc[..])],
                    &x,
                );
                for (w, y) in [(&a, &ya), (&b, &yb), (&c, &yc)] {
                    let mut want = vec![0f32; w.rows];
                    matvec(&rt, w, &x, &mut want);
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(y), bits(&want), "{isa} {threads} {}", w.name);
                }
            }
        }
    }

    #[test]
    #[ignore]
    fn bench_matvec() {
        let shapes = [
            (GgmlType::Q4_1, 1536, 576),
            (GgmlType::Q4_1, 576, 1536),
            (GgmlType::Q8_0, 1536, 576),
            (GgmlType::Q8_0, 49152, 576),
            (GgmlType::Q5_0, 2048, 640),
            (GgmlType::Q4K, 640, 1024),
            (GgmlType::Q6K, 640, 2048),
            (GgmlType::Q8_0, 262144, 640),
            (GgmlType::F32, 576, 576),
            (GgmlType::F16, 576, 576),
        ];
        let isa = std::env::var("ISA").map_or(Isa::detect(), |v| Isa::from_name(&v).unwrap());
        for &(ty, rows, cols) in &shapes {
            let w = random_matrix(ty, rows, cols);
            let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut y = vec![0f32; rows];
            let fused = cpu_per_call(|| fused_rows(isa, &w, 0, &x, &mut y));
            let mut buf = vec![0f32; 4 * cols];
            let old = cpu_per_call(|| {
                for r in (0..rows).step_by(4) {
                    for i in 0..4 {
                        w.dequantize_row_into(r + i, &mut buf[i * cols..(i + 1) * cols])
                            .unwrap();
                    }
                    let (a, rest) = buf.split_at(cols);
                    let (b, rest) = rest.split_at(cols);
                    let (c, d) = rest.split_at(cols);
                    let mut acc = [[0f64; LANES]; 4];
                    accumulate4(isa, &mut acc, [a, b, c, d], &x);
                    for i in 0..4 {
                        y[r + i] = reduce(&acc[i]);
                    }
                }
            });
            let gb = w.bytes().len() as f64 / 1e9;
            let ge = (rows * cols) as f64 / 1e9;
            eprintln!(
                "{isa} {ty} {rows}x{cols}: fused {:.1} us ({:.1} GB/s, {:.2} Gelem/s), dequant+dot {:.1} us ({:.1} GB/s)",
                fused * 1e6,
                gb / fused,
                ge / fused,
                old * 1e6,
                gb / old
            );
        }
    }

    #[test]
    #[ignore]
    fn bench_matmul() {
        let n = 128;
        let isa = std::env::var("ISA").map_or(Isa::detect(), |v| Isa::from_name(&v).unwrap());
        for threads in [1, 2] {
            let rt = Runtime::new(threads, Some(isa)).unwrap();
            for &(ty, rows, cols) in &[
                (GgmlType::Q4_1, 1536, 576),
                (GgmlType::Q4_1, 576, 1536),
                (GgmlType::Q5_0, 2048, 640),
            ] {
                let w = random_matrix(ty, rows, cols);
                let x: Vec<f32> = (0..n * cols).map(|i| (i as f32 * 0.37).sin()).collect();
                let mut y = vec![0f32; n * rows];
                let t_new = best(|| matmul(&rt, &w, &x, n, &mut y), 10);
                let t_old = best(|| matmul_dequant(&rt, &w, &x, n, &mut y), 5);
                let gf = 2.0 * (n * rows * cols) as f64 / 1e9;
                eprintln!(
                    "{threads}t {ty} {rows}x{cols} x {n}: tiled {:.2} ms ({:.1} GFLOP/s), old {:.2} ms ({:.1} GFLOP/s)",
                    t_new * 1e3,
                    gf / t_new,
                    t_old * 1e3,
                    gf / t_old
                );
            }
        }
    }

    #[test]
    #[ignore]
    fn bench_memory_read() {
        let n = 64 << 20; // 256 MB of u32
        let v: Vec<u32> = (0..n as u32).collect();
        for threads in [1usize, 2] {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                let s: u32 = std::thread::scope(|sc| {
                    let hs: Vec<_> = v
                        .chunks(n / threads)
                        .map(|c| sc.spawn(move || c.iter().fold(0u32, |a, &b| a ^ b)))
                        .collect();
                    hs.into_iter()
                        .map(|h| h.join().unwrap())
                        .fold(0, |a, b| a ^ b)
                });
                std::hint::black_box(s);
                best = best.min(t.elapsed().as_secs_f64());
            }
            eprintln!(
                "{threads} threads: {:.1} GB/s (wall)",
                (n * 4) as f64 / best / 1e9
            );
        }
    }

    #[test]
    #[ignore]
    fn bench_call_overhead() {
        for (rows, cols) in [(16, 64), (256, 640), (1024, 640)] {
            let w = Matrix::new(
                "w",
                GgmlType::F32,
                rows,
                cols,
                Bytes::from_vec(vec![0u8; rows * cols * 4]),
            )
            .unwrap();
            let x = vec![1f32; cols];
            let mut y = vec![0f32; rows];
            for threads in [1, 2] {
                let rt = Runtime::new(threads, None).unwrap();
                let mut times: Vec<f64> = (0..2000)
                    .map(|_| {
                        let t = Instant::now();
                        matvec(&rt, &w, &x, &mut y);
                        t.elapsed().as_secs_f64()
                    })
                    .collect();
                times.sort_by(|a, b| a.partial_cmp(b).unwrap());
                eprintln!(
                    "{rows}x{cols} {threads}t: min {:.1} us, median {:.1} us, p90 {:.1} us",
                    times[0] * 1e6,
                    times[1000] * 1e6,
                    times[1800] * 1e6
                );
            }
        }
    }
}
