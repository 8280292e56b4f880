//! GGUF reader (versions 2 and 3) over a memory map.
//!
//! Every count, length, dimension product and offset read from the file is
//! checked against the bytes that remain before it is used: a lying file
//! yields an [`Error::Gguf`] naming the field, never a panic and never an
//! allocation sized by an unchecked number.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::formats::ggml_type::GgmlType;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest nesting of arrays accepted (the spec allows nesting; real files use 1).
const MAX_ARRAY_DEPTH: usize = 8;
/// ggml tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;
/// Highest ggml type id known to exist; ids above it are not ggml types at all.
const MAX_KNOWN_GGML_TYPE_ID: u32 = 41;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    /// An array of arrays (the spec allows nesting; real files use none).
    Array(Vec<Value>),
    /// An array of strings, numbers or bools, stored packed: a tokenizer's
    /// 262k strings cost their bytes, not 262k `Value`s.
    Packed(PackedArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::Str(_) => "string",
            Value::Array(_) | Value::Packed(_) => "array",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of an array of arrays (a packed array has none to lend:
    /// see [`Value::packed`]).
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn packed(&self) -> Option<&PackedArray> {
        match self {
            Value::Packed(p) => Some(p),
            _ => None,
        }
    }

    /// The number of items, if the value is an array of any kind.
    pub fn array_len(&self) -> Option<usize> {
        match self {
            Value::Array(a) => Some(a.len()),
            Value::Packed(p) => Some(p.len()),
            _ => None,
        }
    }
}

/// An array of one scalar type (any but arrays), its items packed: scalars
/// as the file stores them (little-endian), strings back to back with their
/// end offsets.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedArray {
    /// The GGUF type id of the items.
    elem: u32,
    len: usize,
    data: Box<[u8]>,
    /// Strings only: where each ends in `data`.
    ends: Box<[u32]>,
}

impl PackedArray {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Item `i` of an array of strings; `None` for another type.
    pub fn str(&self, i: usize) -> Option<&str> {
        if self.elem != 8 || i >= self.len {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        // Checked to be UTF-8 when read.
        std::str::from_utf8(&self.data[start..self.ends[i] as usize]).ok()
    }

    /// Item `i` as a value.
    pub fn get(&self, i: usize) -> Option<Value> {
        if i >= self.len {
            return None;
        }
        if self.elem == 8 {
            return self.str(i).map(|s| Value::Str(s.to_owned()));
        }
        let size = min_value_bytes(self.elem);
        let mut c = Cursor {
            buf: &self.data[i * size..(i + 1) * size],
            pos: 0,
        };
        read_value(&mut c, self.elem, 1, &String::new).ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = Value> + '_ {
        (0..self.len).filter_map(|i| self.get(i))
    }
}

/// The key/value metadata of a GGUF file, with typed accessors that name the
/// key in their errors.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    map: BTreeMap<String, Value>,
}

impl Metadata {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.map.iter()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn wrong_type(key: &str, want: &str, got: &Value) -> Error {
        Error::config(
            key,
            format!("expected {want}, found a {} value", got.type_name()),
        )
    }

    /// An optional string value.
    pub fn str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| Self::wrong_type(key, "a string", v)),
        }
    }

    /// An optional non-negative integer value.
    pub fn u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| Self::wrong_type(key, "a non-negative integer", v)),
        }
    }

    /// An optional count or size that must fit `usize`.
    pub fn usize(&self, key: &str) -> Result<Option<usize>> {
        match self.u64(key)? {
            None => Ok(None),
            Some(v) => usize::try_from(v)
                .map(Some)
                .map_err(|_| Error::config(key, format!("{v} does not fit this machine"))),
        }
    }

    /// An optional finite number.
    pub fn f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                Some(x) => Err(Error::config(key, format!("{x} is not a finite number"))),
                None => Err(Self::wrong_type(key, "a number", v)),
            },
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| Self::wrong_type(key, "a bool", v)),
        }
    }

    /// The number of items of an optional array value.
    pub fn array_len(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .array_len()
                .map(Some)
                .ok_or_else(|| Self::wrong_type(key, "an array", v)),
        }
    }

    /// An optional array of strings (borrowed from the packed array).
    pub fn str_array(&self, key: &str) -> Result<Option<Vec<&str>>> {
        let not_str = |i: usize, v: &Value| Self::wrong_type(&format!("{key}[{i}]"), "a string", v);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Packed(p)) => (0..p.len())
                .map(|i| {
                    p.str(i)
                        .ok_or_else(|| not_str(i, &p.get(i).unwrap_or(Value::Array(vec![]))))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_str().ok_or_else(|| not_str(i, v)))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(Self::wrong_type(key, "an array", v)),
        }
    }

    /// An optional array of numbers, as f64.
    pub fn f64_array(&self, key: &str) -> Result<Option<Vec<f64>>> {
        self.typed_array(key, "a number", Value::as_f64)
    }

    /// An optional array of integers, as i64.
    pub fn i64_array(&self, key: &str) -> Result<Option<Vec<i64>>> {
        self.typed_array(key, "an integer", Value::as_i64)
    }

    /// An optional array whose every item `item` reads; an item it cannot is
    /// an error naming `key[i]` and `what` was expected.
    fn typed_array<T>(
        &self,
        key: &str,
        what: &str,
        item: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>> {
        let read = |i: usize, v: &Value| {
            item(v).ok_or_else(|| Self::wrong_type(&format!("{key}[{i}]"), what, v))
        };
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| read(i, v))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(Value::Packed(p)) => p
                .iter()
                .enumerate()
                .map(|(i, v)| read(i, &v))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(Self::wrong_type(key, "an array", v)),
        }
    }

    fn insert(&mut self, key: String, value: Value) -> Result<()> {
        if self.map.contains_key(&key) {
            return Err(Error::gguf(
                format!("metadata key {key:?}"),
                "appears twice in the file",
            ));
        }
        self.map.insert(key, value);
        Ok(())
    }
}

/// Where one tensor lives in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: GgmlType,
    /// Dimensions in ggml order: `dims[0]` is the contiguous (innermost) one.
    pub dims: Vec<usize>,
    /// Offset of the data from the start of the file (already bounds-checked).
    pub offset: usize,
    /// Size of the data in bytes (already bounds-checked).
    pub size: usize,
}

impl TensorInfo {
    pub fn elements(&self) -> usize {
        // Checked when the info was read.
        self.dims.iter().product()
    }

    /// The shape outermost-first, as numpy, PyTorch and safetensors write it.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }
}

/// An opened GGUF file.
pub struct GgufFile {
    path: PathBuf,
    mmap: Arc<Mmap>,
    pub version: u32,
    pub alignment: u64,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
    /// File offset where the tensor data section begins.
    pub data_offset: usize,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and validates a GGUF file. Tensor data is not read until used.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; as with every mmap-based reader, the
        // caller must not truncate the file while it is open.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let parsed = parse(&mmap)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            mmap: Arc::new(mmap),
            version: parsed.version,
            alignment: parsed.alignment,
            metadata: parsed.metadata,
            by_name: parsed.by_name,
            tensors: parsed.tensors,
            data_offset: parsed.data_offset,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mapped file, for weights that point into it.
    pub fn storage(&self) -> Arc<dyn crate::formats::storage::Storage> {
        Arc::new(crate::formats::storage::FileMap {
            map: self.mmap.clone(),
            path: self.path.clone(),
        })
    }

    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of a tensor (bounds were checked at open).
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        &self.mmap[info.offset..info.offset + info.size]
    }

    /// `general.architecture`, required by every GGUF model.
    pub fn architecture(&self) -> Result<&str> {
        self.metadata
            .str("general.architecture")?
            .ok_or_else(|| Error::config("general.architecture", "missing"))
    }
}

#[derive(Debug)]
struct Parsed {
    version: u32,
    alignment: u64,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
    data_offset: usize,
}

/// A bounds-checked little-endian cursor.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::gguf(
                field(),
                format!(
                    "needs {n} bytes at offset {} but the file has {} left (truncated?)",
                    self.pos,
                    self.remaining()
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &dyn Fn() -> String) -> Result<[u8; N]> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A count that must fit in what remains, each item taking at least `min_item_bytes`.
    fn count(&mut self, min_item_bytes: usize, field: &dyn Fn() -> String) -> Result<usize> {
        let n = self.u64(field)?;
        let max = (self.remaining() / min_item_bytes.max(1)) as u64;
        if n > max {
            return Err(Error::gguf(
                field(),
                format!(
                    "claims {n} items but only {} bytes remain (at most {max} items fit)",
                    self.remaining()
                ),
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self, field: &dyn Fn() -> String) -> Result<String> {
        let len = self.count(1, field)?;
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::gguf(field(), "string is not valid UTF-8"))
    }
}

/// Smallest encoded size of a value of type `t` (arrays: their header).
fn min_value_bytes(t: u32) -> usize {
    match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        _ => 8,
    }
}

fn read_value(
    c: &mut Cursor<'_>,
    t: u32,
    depth: usize,
    field: &dyn Fn() -> String,
) -> Result<Value> {
    Ok(match t {
        0 => Value::U8(c.array::<1>(field)?[0]),
        1 => Value::I8(c.array::<1>(field)?[0] as i8),
        2 => Value::U16(u16::from_le_bytes(c.array(field)?)),
        3 => Value::I16(i16::from_le_bytes(c.array(field)?)),
        4 => Value::U32(c.u32(field)?),
        5 => Value::I32(i32::from_le_bytes(c.array(field)?)),
        6 => Value::F32(f32::from_le_bytes(c.array(field)?)),
        7 => match c.array::<1>(field)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => {
                return Err(Error::gguf(
                    field(),
                    format!("bool byte is {b}, not 0 or 1"),
                ))
            }
        },
        8 => Value::Str(c.string(field)?),
        9 => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(Error::gguf(
                    field(),
                    format!("arrays nested deeper than {MAX_ARRAY_DEPTH} levels"),
                ));
            }
            let et = c.u32(field)?;
            if et > 12 {
                return Err(Error::gguf(
                    field(),
                    format!("unknown array element type {et}"),
                ));
            }
            let n = c.count(min_value_bytes(et), field)?;
            match et {
                8 => read_strings(c, n, field)?,
                9 => {
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(read_value(c, et, depth + 1, field)?);
                    }
                    Value::Array(items)
                }
                _ => read_scalars(c, et, n, field)?,
            }
        }
        10 => Value::U64(c.u64(field)?),
        11 => Value::I64(i64::from_le_bytes(c.array(field)?)),
        12 => Value::F64(f64::from_le_bytes(c.array(field)?)),
        _ => return Err(Error::gguf(field(), format!("unknown value type {t}"))),
    })
}

/// `n` strings, packed.
fn read_strings(c: &mut Cursor<'_>, n: usize, field: &dyn Fn() -> String) -> Result<Value> {
    let start = c.pos;
    let mut ends = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let len = c.count(1, field)?;
        let bytes = c.take(len, field)?;
        std::str::from_utf8(bytes)
            .map_err(|_| Error::gguf(field(), "string is not valid UTF-8"))?;
        total += len;
        ends.push(
            u32::try_from(total)
                .map_err(|_| Error::gguf(field(), "an array of strings of more than 4 GiB"))?,
        );
    }
    // Second pass over the checked bytes: the strings without their lengths.
    let mut data = Vec::with_capacity(total);
    let mut r = Cursor {
        buf: c.buf,
        pos: start,
    };
    for _ in 0..n {
        let len = r.u64(field)? as usize;
        data.extend_from_slice(r.take(len, field)?);
    }
    Ok(Value::Packed(PackedArray {
        elem: 8,
        len: n,
        data: data.into_boxed_slice(),
        ends: ends.into_boxed_slice(),
    }))
}

/// `n` scalars of type `et` (not strings or arrays), packed as stored.
fn read_scalars(
    c: &mut Cursor<'_>,
    et: u32,
    n: usize,
    field: &dyn Fn() -> String,
) -> Result<Value> {
    let size = min_value_bytes(et);
    // `count` checked that n items of this size fit in what remains.
    let data = c.take(n * size, field)?;
    if et == 7 {
        if let Some(b) = data.iter().find(|&&b| b > 1) {
            return Err(Error::gguf(
                field(),
                format!("bool byte is {b}, not 0 or 1"),
            ));
        }
    }
    Ok(Value::Packed(PackedArray {
        elem: et,
        len: n,
        data: data.into(),
        ends: Box::default(),
    }))
}

/// One tensor info as the file states it, its offset relative to the data
/// section.
struct RawInfo {
    name: String,
    dtype: GgmlType,
    dims: Vec<usize>,
    rel_offset: u64,
    size: usize,
}

fn parse(buf: &[u8]) -> Result<Parsed> {
    let mut c = Cursor { buf, pos: 0 };
    let (version, tensor_count, kv_count) = read_header(&mut c)?;

    let mut metadata = Metadata::default();
    for i in 0..kv_count {
        let key = c.string(&|| format!("metadata key #{i}"))?;
        let t = c.u32(&|| format!("type of metadata key {key:?}"))?;
        let value = read_value(&mut c, t, 0, &|| format!("metadata value {key:?}"))?;
        metadata.insert(key, value)?;
    }
    let alignment = alignment_of(&metadata)?;

    let mut raw = Vec::with_capacity(tensor_count);
    let mut by_name = BTreeMap::new();
    for i in 0..tensor_count {
        let r = read_tensor_info(&mut c, i, alignment)?;
        if by_name.insert(r.name.clone(), i).is_some() {
            return Err(Error::gguf(
                format!("tensor {:?} name", r.name),
                "appears twice in the file",
            ));
        }
        raw.push(r);
    }

    let data_offset = (c.pos as u64)
        .checked_next_multiple_of(alignment)
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v <= buf.len() || raw.is_empty())
        .ok_or_else(|| {
            Error::gguf(
                "data section",
                "the file ends before its tensor data section begins (truncated?)",
            )
        })?;
    let tensors = place_tensors(raw, data_offset, buf.len().saturating_sub(data_offset))?;

    Ok(Parsed {
        version,
        alignment,
        metadata,
        tensors,
        by_name,
        data_offset,
    })
}

/// The magic, the version, and the tensor and key/value counts.
fn read_header(c: &mut Cursor) -> Result<(u32, usize, usize)> {
    let magic = c.array::<4>(&|| "magic".into())?;
    if &magic != MAGIC {
        return Err(Error::gguf(
            "magic",
            format!("expected \"GGUF\", found {magic:02x?}: this is not a GGUF file"),
        ));
    }
    let version = c.u32(&|| "version".into())?;
    if version != 2 && version != 3 {
        return Err(Error::gguf(
            "version",
            format!("version {version} is not supported (only GGUF v2 and v3)"),
        ));
    }
    // A tensor info takes at least 8 (name len) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
    let tensor_count = c.count(24, &|| "tensor_count".into())?;
    // A key/value takes at least 8 (key len) + 4 (type) + 1 byte.
    let kv_count = c.count(13, &|| "kv_count".into())?;
    Ok((version, tensor_count, kv_count))
}

/// `general.alignment`, or the default: a power of two up to 1 MiB.
fn alignment_of(metadata: &Metadata) -> Result<u64> {
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) => u64::from(*a),
        Some(v) => {
            return Err(Error::gguf(
                "general.alignment",
                format!("must be a u32, found a {} value", v.type_name()),
            ))
        }
    };
    if alignment == 0 || !alignment.is_power_of_two() || alignment > 1 << 20 {
        return Err(Error::gguf(
            "general.alignment",
            format!("{alignment} is not a power of two between 1 and 1 MiB"),
        ));
    }
    Ok(alignment)
}

/// Tensor info `#i`: its name, dimensions, type, size and aligned offset.
fn read_tensor_info(c: &mut Cursor, i: usize, alignment: u64) -> Result<RawInfo> {
    let name = c.string(&|| format!("tensor info #{i} name"))?;
    let f = |what: &str| format!("tensor {name:?} {what}");
    let n_dims = c.u32(&|| f("n_dims"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(Error::gguf(
            f("n_dims"),
            format!("{n_dims} dimensions; ggml tensors have 1 to {MAX_DIMS}"),
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        let v = c.u64(&|| f(&format!("dimension {d}")))?;
        if v == 0 {
            return Err(Error::gguf(f(&format!("dimension {d}")), "is zero"));
        }
        let v = usize::try_from(v)
            .map_err(|_| Error::gguf(f(&format!("dimension {d}")), format!("{v} is too large")))?;
        dims.push(v);
    }
    let type_id = c.u32(&|| f("type"))?;
    let dtype = match GgmlType::from_id(type_id) {
        Some(t) => t,
        None if type_id <= MAX_KNOWN_GGML_TYPE_ID => return Err(Error::unsupported(
            format!("tensor {name:?} of ggml type id {type_id}"),
            "this engine reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K..Q6_K tensors",
        )),
        None => {
            return Err(Error::gguf(
                f("type"),
                format!("unknown ggml type id {type_id}"),
            ))
        }
    };
    let rel_offset = c.u64(&|| f("offset"))?;
    let elems = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::gguf(f("dimensions"), format!("product of {dims:?} overflows")))?;
    if dims[0] % dtype.block_elems() != 0 {
        return Err(Error::gguf(
            f("dimension 0"),
            format!(
                "{} is not a multiple of the {} block size {}",
                dims[0],
                dtype,
                dtype.block_elems()
            ),
        ));
    }
    let size = (elems / dtype.block_elems())
        .checked_mul(dtype.block_bytes())
        .ok_or_else(|| Error::gguf(f("dimensions"), "byte size overflows"))?;
    if rel_offset % alignment != 0 {
        return Err(Error::gguf(
            f("offset"),
            format!("{rel_offset} is not a multiple of the alignment {alignment}"),
        ));
    }
    Ok(RawInfo {
        name,
        dtype,
        dims,
        rel_offset,
        size,
    })
}

/// The tensors at their absolute offsets; each must lie inside the
/// `data_len`-byte data section that starts at `data_offset`.
fn place_tensors(
    raw: Vec<RawInfo>,
    data_offset: usize,
    data_len: usize,
) -> Result<Vec<TensorInfo>> {
    let mut tensors = Vec::with_capacity(raw.len());
    for r in raw {
        let end = r.rel_offset.checked_add(r.size as u64);
        match end {
            Some(end) if end <= data_len as u64 => {}
            _ => {
                return Err(Error::gguf(
                    format!("tensor {:?} offset", r.name),
                    format!(
                        "data at {}..+{} lies past the end of the {data_len}-byte data section (truncated?)",
                        r.rel_offset, r.size
                    ),
                ))
            }
        }
        tensors.push(TensorInfo {
            name: r.name,
            dtype: r.dtype,
            dims: r.dims,
            offset: data_offset + r.rel_offset as usize,
            size: r.size,
        });
    }
    Ok(tensors)
}

/// Parses GGUF bytes already in memory (used by tests and tools that build files).
pub fn parse_bytes(buf: &[u8]) -> Result<(Metadata, Vec<TensorInfo>)> {
    let p = parse(buf)?;
    Ok((p.metadata, p.tensors))
}

/// The tensors of an opened GGUF file (GGUF dims, innermost first, are reversed).
pub struct GgufSource<'a> {
    pub file: &'a GgufFile,
    pub storage: Arc<dyn crate::formats::storage::Storage>,
}

impl crate::formats::storage::TensorSource for GgufSource<'_> {
    fn tensor(&self, name: &str) -> Result<Option<crate::formats::storage::TensorRef>> {
        let Some(info) = self.file.tensor(name) else {
            return Ok(None);
        };
        Ok(Some(crate::formats::storage::TensorRef {
            dtype: info.dtype,
            shape: info.dims.iter().rev().copied().collect(),
            data: crate::formats::storage::Bytes::new(
                self.storage.clone(),
                info.offset,
                info.size,
            )?,
        }))
    }

    fn names(&self) -> Vec<String> {
        self.file.tensors.iter().map(|t| t.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal GGUF writer for tests.
    pub(crate) struct Builder {
        pub kvs: Vec<u8>,
        pub n_kv: u64,
        pub infos: Vec<u8>,
        pub n_tensors: u64,
        pub data: Vec<u8>,
    }

    impl Builder {
        fn new() -> Self {
            Builder {
                kvs: vec![],
                n_kv: 0,
                infos: vec![],
                n_tensors: 0,
                data: vec![],
            }
        }
        fn str(buf: &mut Vec<u8>, s: &str) {
            buf.extend((s.len() as u64).to_le_bytes());
            buf.extend(s.as_bytes());
        }
        fn kv_u32(mut self, k: &str, v: u32) -> Self {
            Self::str(&mut self.kvs, k);
            self.kvs.extend(4u32.to_le_bytes());
            self.kvs.extend(v.to_le_bytes());
            self.n_kv += 1;
            self
        }
        fn kv_str(mut self, k: &str, v: &str) -> Self {
            Self::str(&mut self.kvs, k);
            self.kvs.extend(8u32.to_le_bytes());
            Self::str(&mut self.kvs, v);
            self.n_kv += 1;
            self
        }
        fn kv_str_array(mut self, k: &str, v: &[&str]) -> Self {
            Self::str(&mut self.kvs, k);
            self.kvs.extend(9u32.to_le_bytes());
            self.kvs.extend(8u32.to_le_bytes());
            self.kvs.extend((v.len() as u64).to_le_bytes());
            for s in v {
                Self::str(&mut self.kvs, s);
            }
            self.n_kv += 1;
            self
        }
        fn tensor_f32(mut self, name: &str, dims: &[u64], values: &[f32]) -> Self {
            while !self.data.len().is_multiple_of(32) {
                self.data.push(0);
            }
            Self::str(&mut self.infos, name);
            self.infos.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                self.infos.extend(d.to_le_bytes());
            }
            self.infos.extend(0u32.to_le_bytes());
            self.infos.extend((self.data.len() as u64).to_le_bytes());
            for v in values {
                self.data.extend(v.to_le_bytes());
            }
            self.n_tensors += 1;
            self
        }
        fn build(&self) -> Vec<u8> {
            let mut out = b"GGUF".to_vec();
            out.extend(3u32.to_le_bytes());
            out.extend(self.n_tensors.to_le_bytes());
            out.extend(self.n_kv.to_le_bytes());
            out.extend(&self.kvs);
            out.extend(&self.infos);
            while !out.len().is_multiple_of(32) {
                out.push(0);
            }
            out.extend(&self.data);
            out
        }
    }

    fn sample() -> Builder {
        Builder::new()
            .kv_str("general.architecture", "llama")
            .kv_u32("llama.block_count", 2)
            .kv_str_array("tokenizer.ggml.tokens", &["a", "b"])
            .tensor_f32("w", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
            .tensor_f32("v", &[4], &[7.0, 8.0, 9.0, 10.0])
    }

    #[test]
    fn parses_a_well_formed_file() {
        let bytes = sample().build();
        let p = parse(&bytes).unwrap();
        assert_eq!(p.version, 3);
        assert_eq!(
            p.metadata.str("general.architecture").unwrap(),
            Some("llama")
        );
        assert_eq!(p.metadata.u64("llama.block_count").unwrap(), Some(2));
        assert_eq!(
            p.metadata
                .str_array("tokenizer.ggml.tokens")
                .unwrap()
                .unwrap(),
            vec!["a", "b"]
        );
        assert_eq!(p.tensors.len(), 2);
        assert_eq!(p.tensors[0].dims, vec![2, 3]);
        assert_eq!(p.tensors[0].shape(), vec![3, 2]);
        assert_eq!(p.tensors[0].size, 24);
        let t = &p.tensors[1];
        let data = &bytes[t.offset..t.offset + t.size];
        assert_eq!(f32::from_le_bytes(data[0..4].try_into().unwrap()), 7.0);
    }

    /// A metadata-only file with one array of type `et` holding `items`
    /// (each item's bytes as stored).
    fn array_file(key: &str, et: u32, items: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Builder::new();
        Builder::str(&mut b.kvs, key);
        b.kvs.extend(9u32.to_le_bytes());
        b.kvs.extend(et.to_le_bytes());
        b.kvs.extend((items.len() as u64).to_le_bytes());
        for it in items {
            b.kvs.extend(it);
        }
        b.n_kv += 1;
        b.build()
    }

    #[test]
    fn arrays_are_packed_and_read_back_item_by_item() {
        let strs: Vec<Vec<u8>> = ["", "a", "héllo"]
            .iter()
            .map(|s| {
                let mut v = (s.len() as u64).to_le_bytes().to_vec();
                v.extend(s.as_bytes());
                v
            })
            .collect();
        let m = parse(&array_file("k", 8, &strs)).unwrap().metadata;
        assert_eq!(m.str_array("k").unwrap().unwrap(), ["", "a", "héllo"]);
        assert_eq!(m.array_len("k").unwrap(), Some(3));
        assert_eq!(m.get("k").unwrap().type_name(), "array");
        let err = m.f64_array("k").unwrap_err().to_string();
        assert!(err.contains("k[0]") && err.contains("string"), "{err}");

        let f32s: Vec<Vec<u8>> = [1.5f32, -2.0]
            .iter()
            .map(|x| x.to_le_bytes().to_vec())
            .collect();
        let m = parse(&array_file("k", 6, &f32s)).unwrap().metadata;
        assert_eq!(m.f64_array("k").unwrap().unwrap(), [1.5, -2.0]);
        assert!(m.i64_array("k").is_err());
        let err = m.str_array("k").unwrap_err().to_string();
        assert!(err.contains("k[0]") && err.contains("f32"), "{err}");

        let i32s: Vec<Vec<u8>> = [3i32, -4]
            .iter()
            .map(|x| x.to_le_bytes().to_vec())
            .collect();
        let m = parse(&array_file("k", 5, &i32s)).unwrap().metadata;
        assert_eq!(m.i64_array("k").unwrap().unwrap(), [3, -4]);
        assert_eq!(m.f64_array("k").unwrap().unwrap(), [3.0, -4.0]);
        assert_eq!(
            m.get("k").unwrap().packed().unwrap().get(1),
            Some(Value::I32(-4))
        );

        let m = parse(&array_file("k", 7, &[vec![1], vec![0]]))
            .unwrap()
            .metadata;
        let p = m.get("k").unwrap().packed().unwrap();
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [Value::Bool(true), Value::Bool(false)]
        );
        let err = parse(&array_file("k", 7, &[vec![2]]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bool byte is 2"), "{err}");
        let bad = [1u64.to_le_bytes().to_vec(), vec![0xff]].concat();
        let err = parse(&array_file("k", 8, &[bad])).unwrap_err().to_string();
        assert!(err.contains("not valid UTF-8"), "{err}");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().build();
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len]).is_err(), "truncated at {len} parsed");
        }
    }

    #[test]
    fn lying_counts_are_rejected_before_allocation() {
        let mut bytes = sample().build();
        // kv_count near 2^63
        bytes[16..24].copy_from_slice(&(1u64 << 62).to_le_bytes());
        let e = parse(&bytes).unwrap_err().to_string();
        assert!(e.contains("kv_count"), "{e}");

        let mut bytes = sample().build();
        bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = parse(&bytes).unwrap_err().to_string();
        assert!(e.contains("tensor_count"), "{e}");
    }

    #[test]
    fn overflowing_dimensions_are_rejected() {
        let b = Builder::new().tensor_f32("big", &[1 << 40, 1 << 40], &[]);
        let e = parse(&b.build()).unwrap_err().to_string();
        assert!(e.contains("overflows") || e.contains("past the end"), "{e}");
        let b = Builder::new().tensor_f32("zero", &[0, 4], &[]);
        let e = parse(&b.build()).unwrap_err().to_string();
        assert!(e.contains("zero"), "{e}");
    }

    #[test]
    fn duplicate_keys_and_names_are_rejected() {
        let b = Builder::new().kv_u32("a", 1).kv_u32("a", 2);
        assert!(parse(&b.build()).unwrap_err().to_string().contains("twice"));
        let b = Builder::new()
            .tensor_f32("t", &[1], &[1.0])
            .tensor_f32("t", &[1], &[1.0]);
        assert!(parse(&b.build()).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn bad_magic_and_version() {
        let mut bytes = sample().build();
        bytes[0] = b'X';
        assert!(parse(&bytes).unwrap_err().to_string().contains("magic"));
        let mut bytes = sample().build();
        bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(parse(&bytes).unwrap_err().to_string().contains("version"));
    }
}
