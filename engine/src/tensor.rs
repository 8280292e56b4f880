//! Weight storage shared by every format: byte ranges of an owned buffer or a
//! memory map, and 2-D weight matrices that stay in their stored type.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ggml_type::GgmlType;

/// A read-only byte buffer that weights point into (a memory-mapped file or
/// bytes owned in memory).
pub trait Storage: Send + Sync {
    fn bytes(&self) -> &[u8];
}

impl Storage for memmap2::Mmap {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl Storage for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A cheap, clonable view of a byte range inside a [`Storage`].
#[derive(Clone)]
pub struct Bytes {
    owner: Arc<dyn Storage>,
    start: usize,
    len: usize,
}

impl Bytes {
    /// A view of `start..start + len`; fails when the range lies outside the storage.
    pub fn new(owner: Arc<dyn Storage>, start: usize, len: usize) -> Result<Bytes> {
        let end = start
            .checked_add(len)
            .filter(|&e| e <= owner.bytes().len())
            .ok_or_else(|| Error::Runtime(format!("byte range {start}+{len} outside storage")))?;
        let _ = end;
        Ok(Bytes { owner, start, len })
    }

    /// Bytes owned in memory.
    pub fn from_vec(v: Vec<u8>) -> Bytes {
        let len = v.len();
        Bytes {
            owner: Arc::new(v),
            start: 0,
            len,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.owner.bytes()[self.start..self.start + self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({}..+{})", self.start, self.len)
    }
}

/// A weight matrix of `rows` × `cols` in its stored type; row `r` is the
/// contiguous run of `cols` elements starting at `r * row_bytes`.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub name: String,
    pub dtype: GgmlType,
    pub rows: usize,
    pub cols: usize,
    row_bytes: usize,
    data: Bytes,
}

impl Matrix {
    pub fn new(name: impl Into<String>, dtype: GgmlType, rows: usize, cols: usize, data: Bytes) -> Result<Matrix> {
        let name = name.into();
        let row_bytes = dtype.row_bytes(cols).ok_or_else(|| {
            Error::weights(
                &name,
                format!("{cols} columns is not a whole number of {dtype} blocks"),
            )
        })?;
        let want = row_bytes
            .checked_mul(rows)
            .ok_or_else(|| Error::weights(&name, "size overflows"))?;
        if want != data.len() {
            return Err(Error::weights(
                &name,
                format!("{rows}x{cols} {dtype} needs {want} bytes, found {}", data.len()),
            ));
        }
        Ok(Matrix {
            name,
            dtype,
            rows,
            cols,
            row_bytes,
            data,
        })
    }

    /// The stored bytes of row `r`.
    #[inline]
    pub fn row(&self, r: usize) -> &[u8] {
        &self.data.as_slice()[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// The stored bytes of rows `r0..r1`.
    #[inline]
    pub fn rows_bytes(&self, r0: usize, r1: usize) -> &[u8] {
        &self.data.as_slice()[r0 * self.row_bytes..r1 * self.row_bytes]
    }

    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    pub fn bytes(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// Row `r` dequantized into `out` (length `cols`).
    pub fn dequantize_row_into(&self, r: usize, out: &mut [f32]) -> Result<()> {
        crate::dequant::dequantize_row(self.dtype, self.row(r), out)
    }

    /// Rows `r0..r1` as a new matrix sharing the storage (used to split fused weights).
    pub fn slice_rows(&self, name: impl Into<String>, r0: usize, r1: usize) -> Result<Matrix> {
        let name = name.into();
        if r0 > r1 || r1 > self.rows {
            return Err(Error::weights(
                &name,
                format!("rows {r0}..{r1} outside the {} rows of {}", self.rows, self.name),
            ));
        }
        let data = Bytes {
            owner: self.data.owner.clone(),
            start: self.data.start + r0 * self.row_bytes,
            len: (r1 - r0) * self.row_bytes,
        };
        Matrix::new(name, self.dtype, r1 - r0, self.cols, data)
    }
}
