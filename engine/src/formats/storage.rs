//! Weight storage shared by every format: byte ranges of an owned buffer or a
//! memory map, and 2-D weight matrices that stay in their stored type.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::formats::ggml_type::GgmlType;

/// A read-only byte buffer that weights point into (a memory-mapped file or
/// bytes owned in memory).
pub trait Storage: Send + Sync {
    fn bytes(&self) -> &[u8];
    /// Whether the bytes are a read-only map of a file, whose pages may be
    /// released and mapped again at will (see [`crate::formats::pages::release`]).
    fn is_file_map(&self) -> bool {
        false
    }
    /// The file the bytes are a map of, whole and from offset 0 (so a byte
    /// range of the storage is the same range of the file): what the streaming
    /// reader ([`crate::formats::reader`]) reads with positioned reads instead
    /// of the map. `None` for bytes owned in memory.
    fn file_path(&self) -> Option<&std::path::Path> {
        None
    }
}

/// A read-only map of a whole file, with the file's path.
pub struct FileMap {
    pub map: Arc<memmap2::Mmap>,
    pub path: std::path::PathBuf,
}

impl Storage for FileMap {
    fn bytes(&self) -> &[u8] {
        &self.map
    }
    fn is_file_map(&self) -> bool {
        true
    }
    fn file_path(&self) -> Option<&std::path::Path> {
        Some(&self.path)
    }
}

impl Storage for memmap2::Mmap {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn is_file_map(&self) -> bool {
        true
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

    /// Whether these bytes live in a file map (and can be released).
    pub fn is_file_map(&self) -> bool {
        self.owner.is_file_map()
    }

    /// The file these bytes are read from and their offset in it, when the
    /// storage is a map of a whole file.
    pub fn file_range(&self) -> Option<(&std::path::Path, u64)> {
        self.owner.file_path().map(|p| (p, self.start as u64))
    }

    /// Releases the pages of the whole storage these bytes point into (after
    /// loading: drops the metadata and weights loading touched); no-op for
    /// owned bytes.
    pub fn release_storage(&self) {
        if self.owner.is_file_map() {
            // SAFETY: a read-only file map (checked above).
            unsafe { crate::formats::pages::release(self.owner.bytes(), self.owner.bytes()) }
        }
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
    pub fn new(
        name: impl Into<String>,
        dtype: GgmlType,
        rows: usize,
        cols: usize,
        data: Bytes,
    ) -> Result<Matrix> {
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
                format!(
                    "{rows}x{cols} {dtype} needs {want} bytes, found {}",
                    data.len()
                ),
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

    /// Whether the weights live in a file map (their pages can be released).
    pub fn is_file_map(&self) -> bool {
        self.data.is_file_map()
    }

    /// Drops the pages of rows `r0..r1` from RSS (file maps only; no-op otherwise).
    pub fn release_rows(&self, r0: usize, r1: usize) {
        if self.is_file_map() {
            // SAFETY: a read-only file map (checked above).
            unsafe {
                crate::formats::pages::release(self.rows_bytes(r0, r1), self.data.owner.bytes())
            }
        }
    }

    /// Starts read-ahead of rows `r0..r1` into the page cache (file maps only).
    pub fn prefetch_rows(&self, r0: usize, r1: usize) {
        if self.is_file_map() {
            crate::formats::pages::prefetch(self.rows_bytes(r0, r1));
        }
    }

    /// A matrix of rows `r0..r1` sharing the storage, keeping the name
    /// (a streamed piece).
    pub fn rows_view(&self, r0: usize, r1: usize) -> Matrix {
        debug_assert!(r0 <= r1 && r1 <= self.rows);
        Matrix {
            name: self.name.clone(),
            dtype: self.dtype,
            rows: r1 - r0,
            cols: self.cols,
            row_bytes: self.row_bytes,
            data: Bytes {
                owner: self.data.owner.clone(),
                start: self.data.start + r0 * self.row_bytes,
                len: (r1 - r0) * self.row_bytes,
            },
        }
    }

    /// Rows `r0..r1` of this matrix held in other bytes (a streamed copy
    /// read from the file): same name, type and columns; fails when `data`
    /// is not exactly those rows' size.
    pub fn rows_in(&self, r0: usize, r1: usize, data: Bytes) -> Result<Matrix> {
        if r0 > r1 || r1 > self.rows {
            return Err(Error::weights(
                &self.name,
                format!("rows {r0}..{r1} outside its {} rows", self.rows),
            ));
        }
        Matrix::new(self.name.clone(), self.dtype, r1 - r0, self.cols, data)
    }

    /// The bytes the matrix points into.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Row `r` dequantized into `out` (length `cols`).
    pub fn dequantize_row_into(&self, r: usize, out: &mut [f32]) -> Result<()> {
        crate::formats::dequant::dequantize_row(self.dtype, self.row(r), out)
    }

    /// Rows `r0..r1` as a new matrix sharing the storage (used to split fused weights).
    pub fn slice_rows(&self, name: impl Into<String>, r0: usize, r1: usize) -> Result<Matrix> {
        let name = name.into();
        if r0 > r1 || r1 > self.rows {
            return Err(Error::weights(
                &name,
                format!(
                    "rows {r0}..{r1} outside the {} rows of {}",
                    self.rows, self.name
                ),
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

/// A tensor of a model file: its stored type, its shape (outermost
/// dimension first: a matrix is `[rows, cols]`) and its bytes.
#[derive(Clone, Debug)]
pub struct TensorRef {
    pub dtype: GgmlType,
    pub shape: Vec<usize>,
    pub data: Bytes,
}

impl TensorRef {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Named tensors of a model file: what the weight binding reads.
pub trait TensorSource {
    /// The tensor called `name`; `Ok(None)` when absent, an error when present
    /// in a type the engine cannot read.
    fn tensor(&self, name: &str) -> Result<Option<TensorRef>>;
    /// Every tensor name.
    fn names(&self) -> Vec<String>;
}
