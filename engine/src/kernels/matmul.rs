//! Matrix products against weights kept in their stored type.
//!
//! Every output `y[t][r] = W[r] · x[t]` is one dot product in the order of
//! [`super::dot`], whatever the batch size and thread count: the decode path
//! (`matvec`) and the prefill path (`matmul`) produce identical bits for the
//! same row and input. Weights are dequantized exactly (see `dequant`) into a
//! per-thread scratch that is allocated once and reused.

use std::cell::RefCell;

use rayon::prelude::*;

use super::dot::{accumulate, accumulate4, reduce, Acc, LANES};
use crate::runtime::Runtime;
use crate::tensor::Matrix;

/// Rows handed to a thread at a time.
const ROW_CHUNK: usize = 16;

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
fn dequant_rows(w: &Matrix, r0: usize, out: &mut [f32]) {
    for (i, row) in out.chunks_exact_mut(w.cols).enumerate() {
        // Shapes were validated when the Matrix was built.
        w.dequantize_row_into(r0 + i, row)
            .expect("matrix row size was validated at load");
    }
}

/// A raw pointer that may be shared across the pool's threads; each thread
/// writes a disjoint set of elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// `y = W x` for one input vector.
pub fn matvec(rt: &Runtime, w: &Matrix, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), w.cols, "{}: input width", w.name);
    assert_eq!(y.len(), w.rows, "{}: output height", w.name);
    let isa = rt.isa;
    rt.install(|| {
        y.par_chunks_mut(ROW_CHUNK).enumerate().for_each(|(c, ys)| {
            let r0 = c * ROW_CHUNK;
            with_scratch(4 * w.cols, |buf| {
                let mut r = 0;
                while r + 4 <= ys.len() {
                    dequant_rows(w, r0 + r, buf);
                    let (a, rest) = buf.split_at(w.cols);
                    let (b, rest) = rest.split_at(w.cols);
                    let (c, d) = rest.split_at(w.cols);
                    let mut acc = [[0f32; LANES]; 4];
                    accumulate4(isa, &mut acc, [a, b, c, d], x);
                    for i in 0..4 {
                        ys[r + i] = reduce(&acc[i]);
                    }
                    r += 4;
                }
                while r < ys.len() {
                    let row = &mut buf[..w.cols];
                    dequant_rows(w, r0 + r, row);
                    let mut acc: Acc = [0f32; LANES];
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
    let rows = w.rows;
    let cols = w.cols;
    let out = SharedOut(y.as_mut_ptr());
    let chunks = rows.div_ceil(ROW_CHUNK);
    rt.install(|| {
        (0..chunks).into_par_iter().for_each(|c| {
            let out = out;
            let r_begin = c * ROW_CHUNK;
            let r_end = (r_begin + ROW_CHUNK).min(rows);
            with_scratch(ROW_CHUNK * cols, |buf| {
                let buf = &mut buf[..(r_end - r_begin) * cols];
                dequant_rows(w, r_begin, buf);
                let mut r = 0;
                let nr = r_end - r_begin;
                while r < nr {
                    let take = if r + 4 <= nr { 4 } else { 1 };
                    for t in 0..n {
                        let xt = &x[t * cols..(t + 1) * cols];
                        if take == 4 {
                            let base = r * cols;
                            let mut acc = [[0f32; LANES]; 4];
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
                            let mut acc: Acc = [0f32; LANES];
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
    use crate::ggml_type::GgmlType;
    use crate::kernels::Isa;
    use crate::tensor::Bytes;

    fn f32_matrix(rows: usize, cols: usize, seed: u32) -> (Matrix, Vec<f32>) {
        let mut s = seed | 1;
        let vals: Vec<f32> = (0..rows * cols)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
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
                matvec(&rt1, &w, &x[t * 96..(t + 1) * 96], &mut want[t * 37..(t + 1) * 37]);
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

    #[test]
    fn matvec_matches_f64() {
        let (w, wv) = f32_matrix(33, 200, 3);
        let (_, x) = f32_matrix(1, 200, 5);
        let rt = Runtime::new(2, None).unwrap();
        let mut y = vec![0f32; 33];
        matvec(&rt, &w, &x, &mut y);
        for r in 0..33 {
            let exact: f64 = (0..200).map(|k| wv[r * 200 + k] as f64 * x[k] as f64).sum();
            assert!((y[r] as f64 - exact).abs() < 1e-5, "row {r}: {} vs {exact}", y[r]);
        }
    }
}
