//! model.safetensors, written by the `safetensors` crate one tensor at a time:
//! each tensor is dequantized exactly to f32, has what llama.cpp's converter
//! changed undone ([`Undo`]), and is encoded as the output type only when the
//! crate asks for its bytes, so that one tensor is in memory at a time.
//!
//! The crate orders the tensors by name and pads the header with spaces to a
//! multiple of 8 bytes; the header's `__metadata__` is `{"format": "pt"}`, the
//! one key PyTorch loaders look for (one key, so the file is the same bytes on
//! every run).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use safetensors::tensor::{Dtype, SafeTensorError, View};

use crate::convert::options::OutDtype;
use crate::convert::tensors::{Item, Undo};
use crate::error::{Error, Result};

/// What the tensors are written from and how, shared by every tensor's view.
struct Writer<'a> {
    /// The GGUF file's bytes.
    bytes: &'a [u8],
    undo: Undo,
    dtype: OutDtype,
    total: usize,
    /// Tensors written so far.
    done: Cell<usize>,
    progress: RefCell<&'a mut dyn FnMut(&str)>,
    /// The dequantized weights of the tensor being written (reused).
    buf: RefCell<Vec<f32>>,
    /// The first failure; later tensors are skipped once one is set.
    failed: RefCell<Option<Error>>,
}

/// One tensor as the `safetensors` crate sees it.
struct Tensor<'w, 'a> {
    it: &'w Item,
    row_bytes: usize,
    w: &'w Writer<'a>,
}

impl View for Tensor<'_, '_> {
    fn dtype(&self) -> Dtype {
        self.w.dtype.safetensors_dtype()
    }

    fn shape(&self) -> &[usize] {
        &self.it.shape
    }

    fn data_len(&self) -> usize {
        self.it.len() * self.w.dtype.bytes()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        if self.w.failed.borrow().is_some() {
            return Cow::Borrowed(&[]);
        }
        match self.w.encode(self.it, self.row_bytes) {
            Ok(b) => Cow::Owned(b),
            Err(e) => {
                *self.w.failed.borrow_mut() = Some(e);
                Cow::Borrowed(&[])
            }
        }
    }
}

impl Writer<'_> {
    /// The bytes of one tensor as written: dequantized, undone, encoded.
    fn encode(&self, it: &Item, row_bytes: usize) -> Result<Vec<u8>> {
        let n = it.len();
        let cols = it.rows_cols().1;
        let mut buf = self.buf.borrow_mut();
        buf.clear();
        buf.resize(n, 0.0);
        let data = &self.bytes[it.offset..it.offset + it.size];
        buf.par_chunks_mut(cols.max(1))
            .zip(data.par_chunks(row_bytes.max(1)))
            .try_for_each(|(dst, src)| crate::formats::dequant::dequantize_row(it.dtype, src, dst))
            .map_err(|e| Error::weights(&it.gguf, e.to_string()))?;
        let note = self.undo.apply(it, &mut buf)?;
        let mut out = Vec::with_capacity(n * self.dtype.bytes());
        match self.dtype {
            OutDtype::F32 => {
                for x in buf.iter() {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            OutDtype::Bf16 => {
                for x in buf.iter() {
                    out.extend_from_slice(&half::bf16::from_f32(*x).to_bits().to_le_bytes());
                }
            }
        }
        let k = self.done.get() + 1;
        self.done.set(k);
        (self.progress.borrow_mut())(&format!(
            "[{:>4}/{}] {} {:?} {} -> {}{note}",
            k,
            self.total,
            it.hf,
            it.shape,
            it.dtype,
            self.dtype.safetensors_name()
        ));
        Ok(out)
    }
}

/// Writes `items` of the GGUF file whose bytes are `bytes` to `path`;
/// `progress` receives one line per tensor, in the order written.
pub(crate) fn write_safetensors(
    path: &Path,
    bytes: &[u8],
    items: &[Item],
    undo: Undo,
    dtype: OutDtype,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    // Sizes are checked before a byte is written.
    let row_bytes = items
        .iter()
        .map(Item::row_bytes)
        .collect::<Result<Vec<usize>>>()?;
    let w = Writer {
        bytes,
        undo,
        dtype,
        total: items.len(),
        done: Cell::new(0),
        progress: RefCell::new(progress),
        buf: RefCell::new(vec![]),
        failed: RefCell::new(None),
    };
    let views = items.iter().zip(row_bytes).map(|(it, row_bytes)| {
        (
            it.hf.as_str(),
            Tensor {
                it,
                row_bytes,
                w: &w,
            },
        )
    });
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let written = safetensors::serialize_to_file(views, Some(meta), path);
    if let Some(e) = w.failed.into_inner() {
        return Err(e);
    }
    written.map_err(|e| match e {
        SafeTensorError::IoError(e) => Error::io(path, e),
        other => Error::Runtime(format!("cannot write {}: {other}", path.display())),
    })
}
