//! How the reference passes read a weight matrix: in chunks of rows, each
//! row dequantized (by the engine's exact dequantizer, from the file's
//! bytes) into a buffer of one row per thread, and used for every position
//! before the next row is read. Nothing of a matrix is held beyond a chunk,
//! so a pass needs memory for its activations (`positions × width`) and one
//! chunk, whatever the size of the model.
//!
//! With [`Pages::Release`] the chunk's pages of a memory-mapped file are
//! dropped from this process's page tables once its rows are used, and the
//! next chunk is read ahead while this one computes: a model larger than
//! memory then costs the reference only the chunk in flight, instead of
//! every page of the file it touched. What is computed does not depend on
//! either setting nor on the chunk size: each output value is the same f64
//! (or f32) operations on the same row and the same input.

use atenia_engine::formats::storage::Matrix;

/// What the reference passes do with the pages of a memory-mapped model file
/// once they have read them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pages {
    /// Leave them mapped (a model that fits in memory: the engine's next
    /// session finds them resident).
    #[default]
    Keep,
    /// Drop each chunk's pages from RSS after use (they stay in the page
    /// cache while memory allows) and read the next chunk ahead: for a
    /// model larger than memory, or than the engine's memory budget.
    Release,
}

/// How the reference passes stream the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streaming {
    pub pages: Pages,
    /// Stored bytes of one chunk of rows (at least one row per chunk).
    pub chunk_bytes: usize,
}

/// The default chunk: 8 MiB of stored weights.
pub const DEFAULT_CHUNK_BYTES: usize = 8 << 20;

impl Default for Streaming {
    fn default() -> Streaming {
        Streaming {
            pages: Pages::Keep,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

impl Streaming {
    /// The default chunk, pages released after use.
    pub fn release() -> Streaming {
        Streaming {
            pages: Pages::Release,
            ..Streaming::default()
        }
    }

    /// Rows of `w` per chunk.
    fn chunk_rows(&self, w: &Matrix) -> usize {
        (self.chunk_bytes / w.row_bytes().max(1)).clamp(1, w.rows.max(1))
    }

    /// Drops the pages of rows `r0..r1` of `w` when asked to.
    pub(crate) fn done_with(&self, w: &Matrix, r0: usize, r1: usize) {
        if self.pages == Pages::Release {
            w.release_rows(r0, r1);
        }
    }
}

/// Streams the rows of `w` for `n` positions. For every row `r`, `row` gets
/// a thread's state (made once per thread by `init`), `r`, the row
/// dequantized to f32 (the closure may overwrite it), and the `n` outputs of
/// that row to fill. After each chunk of rows
/// `r0..r1`, `sink(r0, block)` gets the chunk's outputs, `[r - r0][t]`
/// (row-major, `n` per row). Rows within a chunk are split over threads,
/// each filling its own rows.
pub(crate) fn stream_rows<T, S>(
    w: &Matrix,
    n: usize,
    how: &Streaming,
    init: impl Fn() -> S + Sync,
    row: impl Fn(&mut S, usize, &mut [f32], &mut [T]) + Sync,
    mut sink: impl FnMut(usize, &[T]),
) where
    T: Copy + Default + Send,
{
    assert!(n > 0, "{}: no positions", w.name);
    let (rows, cols) = (w.rows, w.cols);
    let step = how.chunk_rows(w);
    let cpus = std::thread::available_parallelism().map_or(1, |t| t.get());
    let mut block = vec![T::default(); step.min(rows) * n];
    let (init, row) = (&init, &row);
    for r0 in (0..rows).step_by(step) {
        let r1 = (r0 + step).min(rows);
        if how.pages == Pages::Release && r1 < rows {
            w.prefetch_rows(r1, (r1 + step).min(rows));
        }
        let out = &mut block[..(r1 - r0) * n];
        let threads = cpus.min((r1 - r0).div_ceil(64)).max(1);
        let per = (r1 - r0).div_ceil(threads);
        std::thread::scope(|s| {
            for (ci, part) in out.chunks_mut(per * n).enumerate() {
                s.spawn(move || {
                    let mut state = init();
                    let mut r32 = vec![0f32; cols];
                    for (i, o) in part.chunks_exact_mut(n).enumerate() {
                        let r = r0 + ci * per + i;
                        w.dequantize_row_into(r, &mut r32)
                            .expect("weight row size was validated at load");
                        row(&mut state, r, &mut r32, o);
                    }
                });
            }
        });
        how.done_with(w, r0, r1);
        sink(r0, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atenia_engine::formats::storage::Bytes;
    use atenia_engine::GgmlType;

    fn matrix(rows: usize, cols: usize) -> Matrix {
        let v: Vec<u8> = (0..rows * cols)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        Matrix::new("m", GgmlType::F32, rows, cols, Bytes::from_vec(v)).unwrap()
    }

    #[test]
    fn every_row_reaches_the_sink_once_in_order_whatever_the_chunk() {
        let (rows, cols, n) = (37, 3, 2);
        let w = matrix(rows, cols);
        for chunk_bytes in [1, 12, 13, 100, 1 << 20] {
            let how = Streaming {
                pages: Pages::Release,
                chunk_bytes,
            };
            let mut seen = vec![];
            stream_rows(
                &w,
                n,
                &how,
                || (),
                |_, i, r: &mut [f32], o: &mut [f32]| {
                    assert_eq!(r[0], (i * cols) as f32);
                    o[0] = r[0];
                    o[1] = r[cols - 1];
                },
                |r0, block: &[f32]| {
                    assert_eq!(r0, seen.len(), "chunk {chunk_bytes}");
                    for b in block.chunks_exact(n) {
                        seen.push((b[0], b[1]));
                    }
                },
            );
            let want: Vec<(f32, f32)> = (0..rows)
                .map(|r| ((r * cols) as f32, (r * cols + cols - 1) as f32))
                .collect();
            assert_eq!(seen, want, "chunk {chunk_bytes}");
        }
    }
}
