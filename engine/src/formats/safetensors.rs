//! Safetensors files, memory-mapped: the header is parsed and validated by the
//! `safetensors` crate (offsets contiguous from zero, sizes equal to
//! dtype × shape, the data ending exactly at the end of the file), and tensors
//! are handed out as byte ranges of the map, never copied. Data offsets need
//! not be aligned: every reader works on bytes.
//!
//! A checkpoint is one `model.safetensors` or shards listed by
//! `model.safetensors.index.json` (`weight_map`: tensor name → shard file).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::tensor::{Dtype, SafeTensorError};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::formats::ggml_type::GgmlType;
use crate::formats::storage::{Bytes, Storage, TensorRef, TensorSource};

/// One tensor of a safetensors file.
#[derive(Clone, Debug)]
pub struct SafetensorsTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Absolute byte offset in the file and byte length.
    pub offset: usize,
    pub size: usize,
}

/// An opened, validated safetensors file.
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Arc<Mmap>,
    tensors: BTreeMap<String, SafetensorsTensor>,
    /// `__metadata__` of the header.
    pub metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// What went wrong, as `(field, reason)` for [`Error::safetensors`].
fn describe(e: SafeTensorError) -> (String, String) {
    match e {
        SafeTensorError::HeaderTooSmall => (
            "header".into(),
            "the file is shorter than the 8-byte header length".into(),
        ),
        SafeTensorError::HeaderTooLarge => (
            "header".into(),
            "the declared header length exceeds 100 MB".into(),
        ),
        SafeTensorError::InvalidHeaderLength => (
            "header".into(),
            "the declared header length runs past the end of the file".into(),
        ),
        SafeTensorError::InvalidHeader(e) => ("header".into(), format!("not UTF-8: {e}")),
        SafeTensorError::InvalidHeaderStart => ("header".into(), "does not start with '{'".into()),
        SafeTensorError::InvalidHeaderDeserialization(e) => {
            ("header".into(), format!("not a valid header: {e}"))
        }
        SafeTensorError::InvalidOffset(name) => (
            name,
            "its data_offsets do not continue where the previous tensor ends".into(),
        ),
        SafeTensorError::TensorInvalidInfo => (
            "data_offsets".into(),
            "a tensor's byte length differs from its dtype and shape".into(),
        ),
        SafeTensorError::MetadataIncompleteBuffer => (
            "data".into(),
            "the tensors' data does not end exactly at the end of the file".into(),
        ),
        SafeTensorError::ValidationOverflow => ("shape".into(), "a tensor's size overflows".into()),
        SafeTensorError::MisalignedSlice => (
            "shape".into(),
            "a tensor is not a whole number of bytes".into(),
        ),
        other => ("header".into(), other.to_string()),
    }
}

impl SafetensorsFile {
    pub fn open(path: impl AsRef<Path>) -> Result<SafetensorsFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < 8 {
            return Err(Error::safetensors(
                "header",
                format!(
                    "{}: {len} bytes, shorter than the 8-byte header length",
                    path.display()
                ),
            ));
        }
        // SAFETY: the map is read-only; as with every mmap-based reader, the
        // file must not be truncated while it is open.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let (n, meta) = SafeTensors::read_metadata(&mmap).map_err(|e| {
            let (field, reason) = describe(e);
            Error::safetensors(field, format!("{}: {reason}", path.display()))
        })?;
        let base = 8 + n;
        let mut tensors = BTreeMap::new();
        for (name, info) in meta.tensors() {
            let (s, e) = info.data_offsets;
            tensors.insert(
                name,
                SafetensorsTensor {
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    offset: base + s,
                    size: e - s,
                },
            );
        }
        let metadata = meta
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            mmap: Arc::new(mmap),
            tensors,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tensors(&self) -> &BTreeMap<String, SafetensorsTensor> {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&SafetensorsTensor> {
        self.tensors.get(name)
    }

    /// The mapped file, for weights that point into it.
    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(crate::formats::storage::FileMap {
            map: self.mmap.clone(),
            path: self.path.clone(),
        })
    }

    /// The bytes of a tensor (bounds were validated at open).
    pub fn data(&self, t: &SafetensorsTensor) -> &[u8] {
        &self.mmap[t.offset..t.offset + t.size]
    }
}

/// The weight types the engine reads from safetensors.
pub fn ggml_type_of(dtype: Dtype) -> Option<GgmlType> {
    match dtype {
        Dtype::F32 => Some(GgmlType::F32),
        Dtype::F16 => Some(GgmlType::F16),
        Dtype::BF16 => Some(GgmlType::BF16),
        _ => None,
    }
}

/// The safetensors files of one checkpoint, read as one set of named tensors.
#[derive(Debug)]
pub struct SafetensorsSet {
    files: Vec<SafetensorsFile>,
    /// Tensor name → index into `files`.
    by_name: BTreeMap<String, usize>,
}

/// The largest number of shards an index may name.
const MAX_SHARDS: usize = 1 << 14;

impl SafetensorsSet {
    /// One file.
    pub fn single(path: impl AsRef<Path>) -> Result<SafetensorsSet> {
        let f = SafetensorsFile::open(path)?;
        let by_name = f.tensors.keys().map(|k| (k.clone(), 0)).collect();
        Ok(SafetensorsSet {
            files: vec![f],
            by_name,
        })
    }

    /// The shards named by a `model.safetensors.index.json`; every name in its
    /// `weight_map` must be in the shard it points to.
    pub fn from_index(index_path: impl AsRef<Path>) -> Result<SafetensorsSet> {
        let index_path = index_path.as_ref();
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let text = std::fs::read_to_string(index_path).map_err(|e| Error::io(index_path, e))?;
        let field = |f: &str| format!("{}: {f}", index_path.display());
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::safetensors(field("index"), format!("not valid JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::safetensors(field("weight_map"), "missing or not an object"))?;
        let mut shard_names: Vec<String> = Vec::new();
        let mut wanted: Vec<(String, usize)> = Vec::with_capacity(map.len());
        for (name, shard) in map {
            let shard = shard.as_str().ok_or_else(|| {
                Error::safetensors(
                    field("weight_map"),
                    format!("{name:?} does not map to a file name"),
                )
            })?;
            if shard.is_empty()
                || shard.contains('/')
                || shard.contains('\\')
                || shard == "."
                || shard == ".."
            {
                return Err(Error::safetensors(
                    field("weight_map"),
                    format!("{name:?} maps to {shard:?}, which is not a file name in the checkpoint directory"),
                ));
            }
            let i = match shard_names.iter().position(|s| s == shard) {
                Some(i) => i,
                None => {
                    if shard_names.len() == MAX_SHARDS {
                        return Err(Error::safetensors(
                            field("weight_map"),
                            "names too many shard files",
                        ));
                    }
                    shard_names.push(shard.to_string());
                    shard_names.len() - 1
                }
            };
            wanted.push((name.clone(), i));
        }
        if shard_names.is_empty() {
            return Err(Error::safetensors(field("weight_map"), "names no tensor"));
        }
        let files = shard_names
            .iter()
            .map(|s| SafetensorsFile::open(dir.join(s)))
            .collect::<Result<Vec<_>>>()?;
        let mut by_name = BTreeMap::new();
        for (name, i) in wanted {
            if files[i].tensor(&name).is_none() {
                return Err(Error::safetensors(
                    field("weight_map"),
                    format!("{name:?} is not in {}", shard_names[i]),
                ));
            }
            by_name.insert(name, i);
        }
        Ok(SafetensorsSet { files, by_name })
    }

    pub fn files(&self) -> &[SafetensorsFile] {
        &self.files
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<(&SafetensorsFile, &SafetensorsTensor)> {
        let &i = self.by_name.get(name)?;
        let f = &self.files[i];
        f.tensor(name).map(|t| (f, t))
    }
}

impl TensorSource for SafetensorsSet {
    fn tensor(&self, name: &str) -> Result<Option<TensorRef>> {
        let Some((f, t)) = self.get(name) else {
            return Ok(None);
        };
        let dtype = ggml_type_of(t.dtype).ok_or_else(|| {
            Error::weights(
                name,
                format!(
                    "stored as {:?}; the engine reads F32, F16 and BF16 weights",
                    t.dtype
                ),
            )
        })?;
        Ok(Some(TensorRef {
            dtype,
            shape: t.shape.clone(),
            data: Bytes::new(f.storage(), t.offset, t.size)?,
        }))
    }

    fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}
