//! GGUF (v2, v3) reader over a memory map: header, typed metadata, tensor table, alignment.
//! Every count, length and offset is checked against the file with overflow-checked arithmetic.
//!
//! Parsing builds an index of byte ranges; metadata strings, arrays and tensor data are read
//! from the mapping on access, never copied. Malformed input yields a [`GgufError`] naming the
//! problem and its byte offset; nothing is allocated in proportion to an untrusted count.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use crate::types::GgmlType;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path} is {kind}, not a model file; give the path of a .gguf file")]
    NotAFile { path: String, kind: &'static str },
    #[error("not a GGUF file: magic {found:02x?} at byte offset 0 (expected \"GGUF\")")]
    BadMagic { found: Vec<u8> },
    #[error("GGUF version {0} is not supported (2 and 3 are); re-convert the model with a recent llama.cpp")]
    Version(u32),
    #[error("truncated GGUF: {what} at byte offset {offset} needs {need} bytes but the file has {len}")]
    Truncated { what: String, offset: u64, need: u64, len: u64 },
    #[error("malformed GGUF: {what} at byte offset {offset}: {detail}")]
    Malformed { what: String, offset: u64, detail: String },
}

type Result<T> = std::result::Result<T, GgufError>;

/// Metadata value types (`enum gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes of a fixed-size value; None for strings and arrays.
    fn fixed_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

/// Where a metadata value lives in the file.
#[derive(Clone, Debug, PartialEq)]
enum ValueRef {
    Scalar(ValueType, Range<usize>),
    Str(Range<usize>),
    /// Element type, count, and the byte range holding all elements.
    Array(ValueType, u64, Range<usize>),
}

/// A metadata value borrowed from the file.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(&'a str),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(Array<'a>),
}

impl Value<'_> {
    /// Any integer value that fits in u64 (GGUF writers disagree on integer widths).
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

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

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
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
            Value::Array(_) => "array",
        }
    }
}

/// A metadata array borrowed from the file; elements are decoded on access.
#[derive(Clone, Debug, PartialEq)]
pub struct Array<'a> {
    pub elem: ValueType,
    pub len: u64,
    bytes: &'a [u8],
}

impl<'a> Array<'a> {
    /// The elements as strings (validated as UTF-8 when the file was opened).
    pub fn strings(&self) -> Option<impl Iterator<Item = &'a str> + 'a> {
        (self.elem == ValueType::String).then(|| {
            let mut rest = self.bytes;
            std::iter::from_fn(move || {
                let (len, tail) = rest.split_first_chunk::<8>()?;
                let len = u64::from_le_bytes(*len) as usize;
                let (s, tail) = tail.split_at_checked(len)?;
                rest = tail;
                std::str::from_utf8(s).ok()
            })
        })
    }

    fn fixed<const N: usize>(&self, elem: ValueType) -> Option<impl Iterator<Item = [u8; N]> + 'a> {
        (self.elem == elem).then(|| self.bytes.chunks_exact(N).map(|c| c.try_into().unwrap()))
    }

    pub fn f32s(&self) -> Option<impl Iterator<Item = f32> + 'a> {
        self.fixed::<4>(ValueType::F32).map(|it| it.map(f32::from_le_bytes))
    }

    /// Integer elements of any width that fit in i64.
    pub fn ints(&self) -> Option<Vec<i64>> {
        let b = self.bytes;
        Some(match self.elem {
            ValueType::U8 => b.iter().map(|&v| v as i64).collect(),
            ValueType::I8 => b.iter().map(|&v| v as i8 as i64).collect(),
            ValueType::U16 => b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as i64).collect(),
            ValueType::I16 => b.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as i64).collect(),
            ValueType::U32 => {
                b.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as i64).collect()
            }
            ValueType::I32 => {
                b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64).collect()
            }
            ValueType::U64 | ValueType::I64 => {
                b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
            }
            _ => return None,
        })
    }
}

/// One tensor's entry in the tensor table, validated against the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Absolute byte range of the data in the file.
    pub data: Range<usize>,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// The parsed index of a GGUF file: everything but the bytes.
#[derive(Clone, Debug)]
pub struct Index {
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    keys: Vec<(String, ValueRef)>,
    /// Byte range of each whole key/value entry, for copying metadata verbatim.
    key_entries: Vec<Range<usize>>,
    key_pos: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    tensor_pos: HashMap<String, usize>,
}

const MAX_DIMS: u32 = 4;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<Range<usize>> {
        let len = self.bytes.len() as u64;
        let end = (self.pos as u64)
            .checked_add(n)
            .filter(|&e| e <= len)
            .ok_or_else(|| GgufError::Truncated { what: what(), offset: self.pos as u64, need: n, len })?;
        let r = self.pos..end as usize;
        self.pos = end as usize;
        Ok(r)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let r = self.take(N as u64, what)?;
        Ok(self.bytes[r].try_into().unwrap())
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        self.array::<8>(what).map(u64::from_le_bytes)
    }

    fn malformed(&self, at: usize, what: String, detail: impl Into<String>) -> GgufError {
        GgufError::Malformed { what, offset: at as u64, detail: detail.into() }
    }

    /// A length-prefixed UTF-8 string; returns the range of its bytes.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<Range<usize>> {
        let at = self.pos;
        let len = self.u64(&|| format!("length of {}", what()))?;
        let r = self.take(len, what)?;
        if std::str::from_utf8(&self.bytes[r.clone()]).is_err() {
            return Err(self.malformed(at, what(), "string is not valid UTF-8"));
        }
        Ok(r)
    }

    fn value(&mut self, ty: ValueType, what: &dyn Fn() -> String) -> Result<ValueRef> {
        match ty {
            ValueType::String => Ok(ValueRef::Str(self.string(what)?)),
            ValueType::Array => {
                let at = self.pos;
                let elem_id = self.u32(&|| format!("element type of {}", what()))?;
                let elem = ValueType::from_id(elem_id).ok_or_else(|| {
                    self.malformed(at, what(), format!("unknown array element type {elem_id}"))
                })?;
                let len = self.u64(&|| format!("length of {}", what()))?;
                let start = self.pos;
                match elem {
                    ValueType::Array => {
                        return Err(self.malformed(at, what(), "nested arrays are not supported"));
                    }
                    ValueType::String => {
                        for i in 0..len {
                            self.string(&|| format!("element {i} of {}", what()))?;
                        }
                    }
                    fixed => {
                        let size = fixed.fixed_size().unwrap();
                        let total = len.checked_mul(size).ok_or_else(|| {
                            self.malformed(at, what(), format!("{len} elements overflow the file size"))
                        })?;
                        self.take(total, what)?;
                    }
                }
                Ok(ValueRef::Array(elem, len, start..self.pos))
            }
            fixed => {
                let r = self.take(fixed.fixed_size().unwrap(), what)?;
                if fixed == ValueType::Bool && self.bytes[r.start] > 1 {
                    return Err(self.malformed(
                        r.start,
                        what(),
                        format!("bool value {}", self.bytes[r.start]),
                    ));
                }
                Ok(ValueRef::Scalar(fixed, r))
            }
        }
    }
}

fn decode<'a>(bytes: &'a [u8], v: &ValueRef) -> Value<'a> {
    match v {
        ValueRef::Str(r) => Value::Str(std::str::from_utf8(&bytes[r.clone()]).unwrap_or("")),
        ValueRef::Array(elem, len, r) => {
            Value::Array(Array { elem: *elem, len: *len, bytes: &bytes[r.clone()] })
        }
        ValueRef::Scalar(ty, r) => {
            let b = &bytes[r.clone()];
            let a = |n: usize| -> [u8; 8] {
                let mut x = [0u8; 8];
                x[..n].copy_from_slice(&b[..n]);
                x
            };
            match ty {
                ValueType::U8 => Value::U8(b[0]),
                ValueType::I8 => Value::I8(b[0] as i8),
                ValueType::Bool => Value::Bool(b[0] != 0),
                ValueType::U16 => Value::U16(u16::from_le_bytes([b[0], b[1]])),
                ValueType::I16 => Value::I16(i16::from_le_bytes([b[0], b[1]])),
                ValueType::U32 => Value::U32(u64::from_le_bytes(a(4)) as u32),
                ValueType::I32 => Value::I32(u64::from_le_bytes(a(4)) as u32 as i32),
                ValueType::F32 => Value::F32(f32::from_bits(u64::from_le_bytes(a(4)) as u32)),
                ValueType::U64 => Value::U64(u64::from_le_bytes(a(8))),
                ValueType::I64 => Value::I64(i64::from_le_bytes(a(8))),
                ValueType::F64 => Value::F64(f64::from_bits(u64::from_le_bytes(a(8)))),
                ValueType::String | ValueType::Array => unreachable!("not scalars"),
            }
        }
    }
}

/// Parses and validates a whole GGUF file held in `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Index> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = c.array::<4>(&|| "magic".into())?;
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic { found: magic.to_vec() });
    }
    let version = c.u32(&|| "version".into())?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let n_tensors = c.u64(&|| "tensor count".into())?;
    let n_kv = c.u64(&|| "metadata count".into())?;

    let mut keys = Vec::new();
    let mut key_entries = Vec::new();
    let mut key_pos = HashMap::new();
    for i in 0..n_kv {
        let at = c.pos;
        let key_r = c.string(&|| format!("key of metadata entry {i}"))?;
        let key = std::str::from_utf8(&bytes[key_r]).unwrap().to_string();
        let ty_at = c.pos;
        let ty_id = c.u32(&|| format!("type of metadata `{key}`"))?;
        let ty = ValueType::from_id(ty_id).ok_or_else(|| {
            c.malformed(ty_at, format!("metadata `{key}`"), format!("unknown value type {ty_id}"))
        })?;
        let value = c.value(ty, &|| format!("metadata `{key}`"))?;
        if key_pos.insert(key.clone(), keys.len()).is_some() {
            return Err(c.malformed(at, format!("metadata `{key}`"), "key appears twice"));
        }
        keys.push((key, value));
        key_entries.push(at..c.pos);
    }

    let alignment = match key_pos.get("general.alignment").map(|&i| decode(bytes, &keys[i].1)) {
        None => 32,
        Some(Value::U32(a)) if a.is_power_of_two() => a as u64,
        Some(v) => {
            return Err(GgufError::Malformed {
                what: "metadata `general.alignment`".into(),
                offset: 0,
                detail: format!("must be a power-of-two u32, got {v:?}"),
            });
        }
    };

    struct Raw {
        name: String,
        dims: Vec<u64>,
        ty: GgmlType,
        offset: u64,
        at: usize,
    }
    let mut raws: Vec<Raw> = Vec::new();
    for i in 0..n_tensors {
        let at = c.pos;
        let name_r = c.string(&|| format!("name of tensor {i}"))?;
        let name = std::str::from_utf8(&bytes[name_r]).unwrap().to_string();
        let what = || format!("tensor `{name}`");
        let nd_at = c.pos;
        let n_dims = c.u32(&what)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(c.malformed(nd_at, what(), format!("{n_dims} dimensions (1 to {MAX_DIMS} allowed)")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d_at = c.pos;
            let d = c.u64(&what)?;
            if d == 0 || d > i64::MAX as u64 {
                return Err(c.malformed(d_at, what(), format!("dimension {d} out of range")));
            }
            dims.push(d);
        }
        let ty_at = c.pos;
        let ty_id = c.u32(&what)?;
        let ty = GgmlType::from_id(ty_id).ok_or_else(|| {
            c.malformed(ty_at, what(), format!("tensor type {ty_id} is not supported by hartlm"))
        })?;
        let offset = c.u64(&what)?;
        raws.push(Raw { name, dims, ty, offset, at });
    }

    let data_offset = (c.pos as u64).next_multiple_of(alignment);
    let file_len = bytes.len() as u64;
    let mut tensors = Vec::new();
    let mut tensor_pos = HashMap::new();
    for r in raws {
        let what = format!("tensor `{}`", r.name);
        let bad = |detail: String| GgufError::Malformed { what: what.clone(), offset: r.at as u64, detail };
        let n = r
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad("element count overflows".into()))?;
        if !r.dims[0].is_multiple_of(r.ty.block_len() as u64) {
            return Err(bad(format!(
                "row length {} is not a multiple of the {} block ({})",
                r.dims[0],
                r.ty,
                r.ty.block_len()
            )));
        }
        let size = r.ty.bytes_for(n).ok_or_else(|| bad("byte size overflows".into()))?;
        if !r.offset.is_multiple_of(alignment) {
            return Err(bad(format!(
                "data offset {} is not a multiple of the alignment {alignment}",
                r.offset
            )));
        }
        let start = data_offset.checked_add(r.offset).ok_or_else(|| bad("data offset overflows".into()))?;
        let end = start.checked_add(size).ok_or_else(|| bad("data end overflows".into()))?;
        if end > file_len {
            return Err(GgufError::Truncated {
                what: format!("data of {what}"),
                offset: start,
                need: size,
                len: file_len,
            });
        }
        if tensor_pos.insert(r.name.clone(), tensors.len()).is_some() {
            return Err(bad("tensor name appears twice".into()));
        }
        tensors.push(TensorInfo { name: r.name, dims: r.dims, ty: r.ty, data: start as usize..end as usize });
    }
    Ok(Index { version, alignment, data_offset, keys, key_entries, key_pos, tensors, tensor_pos })
}

/// The system's page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// What a file that is not a regular one is, for messages.
/// An open GGUF file: the mapping plus its validated index.
pub struct GgufFile {
    bytes: Bytes,
    pub index: Index,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<GgufFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |error| GgufError::Io { path: path.display().to_string(), error };
        // Non-blocking, so a FIFO opens at once instead of waiting for a writer; it is refused
        // below with every other file that is not a regular one.
        let file =
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(io)?;
        let kind = file.metadata().map_err(io)?.file_type();
        if !kind.is_file() {
            return Err(GgufError::NotAFile {
                path: path.display().to_string(),
                kind: hartlm_abi::files::kind_name(kind),
            });
        }
        // SAFETY: the mapping is read-only and private to this process; like every mmap reader
        // we assume the file is not truncated by another process while mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let index = parse(&map)?;
        Ok(GgufFile { bytes: Bytes::Mapped(map), index })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        let index = parse(&bytes)?;
        Ok(GgufFile { bytes: Bytes::Owned(bytes), index })
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    pub fn get(&self, key: &str) -> Option<Value<'_>> {
        self.index.key_pos.get(key).map(|&i| decode(self.bytes(), &self.index.keys[i].1))
    }

    /// The raw bytes of each metadata entry (key, type and value), in file order.
    pub fn raw_entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.index
            .keys
            .iter()
            .zip(&self.index.key_entries)
            .map(|((k, _), r)| (k.as_str(), &self.bytes()[r.clone()]))
    }

    /// All metadata keys in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.index.keys.iter().map(|(k, _)| k.as_str())
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.tensor_pos.get(name).map(|&i| &self.index.tensors[i])
    }

    /// Drops this process's mapping of the whole pages inside tensor `t`'s bytes (a tensor
    /// the model keeps a packed copy of), so they stop counting in its resident set. The file's
    /// pages stay in the page cache; a later read of those bytes maps them again, unchanged.
    pub fn release(&self, t: &TensorInfo) {
        let Bytes::Mapped(map) = &self.bytes else { return };
        let page = page_size();
        let start = (map.as_ptr() as usize + t.data.start).next_multiple_of(page) - map.as_ptr() as usize;
        let end = (map.as_ptr() as usize + t.data.end) / page * page - map.as_ptr() as usize;
        if start < end {
            // SAFETY: the range lies inside the mapping, which is a read-only shared mapping of
            // a regular file: MADV_DONTNEED only drops page-table entries, and any later access
            // faults the same file bytes back in, so no reference ever sees different contents.
            // A failure only means the pages stay resident.
            let _ =
                unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
        }
    }

    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        &self.bytes()[t.data.clone()]
    }

    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds GGUF files for tests.
    #[derive(Default)]
    pub struct Writer {
        kv: Vec<u8>,
        n_kv: u64,
        tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    impl Writer {
        pub fn kv_raw(mut self, key: &str, ty: u32, value: &[u8]) -> Self {
            put_str(&mut self.kv, key);
            self.kv.extend(ty.to_le_bytes());
            self.kv.extend(value);
            self.n_kv += 1;
            self
        }
        pub fn kv_u32(self, key: &str, v: u32) -> Self {
            self.kv_raw(key, 4, &v.to_le_bytes())
        }
        pub fn kv_f32(self, key: &str, v: f32) -> Self {
            self.kv_raw(key, 6, &v.to_le_bytes())
        }
        pub fn kv_str(self, key: &str, v: &str) -> Self {
            let mut b = Vec::new();
            put_str(&mut b, v);
            self.kv_raw(key, 8, &b)
        }
        pub fn kv_strs(self, key: &str, v: &[&str]) -> Self {
            let mut b = 8u32.to_le_bytes().to_vec();
            b.extend((v.len() as u64).to_le_bytes());
            for s in v {
                put_str(&mut b, s);
            }
            self.kv_raw(key, 9, &b)
        }
        pub fn tensor(mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> Self {
            self.tensors.push((name.into(), dims.to_vec(), ty.id(), data));
            self
        }
        pub fn build(self) -> Vec<u8> {
            let mut out = b"GGUF".to_vec();
            out.extend(3u32.to_le_bytes());
            out.extend((self.tensors.len() as u64).to_le_bytes());
            out.extend(self.n_kv.to_le_bytes());
            out.extend(&self.kv);
            let mut offset = 0u64;
            let mut offsets = Vec::new();
            for (name, dims, ty, data) in &self.tensors {
                put_str(&mut out, name);
                out.extend((dims.len() as u32).to_le_bytes());
                for d in dims {
                    out.extend(d.to_le_bytes());
                }
                out.extend(ty.to_le_bytes());
                out.extend(offset.to_le_bytes());
                offsets.push(offset);
                offset = (offset + data.len() as u64).next_multiple_of(32);
            }
            out.resize(out.len().next_multiple_of(32), 0);
            let base = out.len();
            for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
                out.resize(base + off as usize, 0);
                out.extend(data);
            }
            out
        }
    }

    fn sample() -> Vec<u8> {
        Writer::default()
            .kv_str("general.architecture", "llama")
            .kv_u32("llama.context_length", 128)
            .kv_f32("llama.rope.freq_base", 10000.0)
            .kv_strs("tokenizer.ggml.tokens", &["<unk>", "a", "bé"])
            .tensor("w", &[32, 2], GgmlType::F32, vec![1; 256])
            .tensor("q", &[32], GgmlType::Q8_0, vec![2; 34])
            .build()
    }

    #[test]
    fn reads_metadata_and_tensors() {
        let f = GgufFile::from_bytes(sample()).unwrap();
        assert_eq!(f.index.version, 3);
        assert_eq!(f.get("general.architecture"), Some(Value::Str("llama")));
        assert_eq!(f.get("llama.context_length").and_then(|v| v.as_u64()), Some(128));
        let Some(Value::Array(a)) = f.get("tokenizer.ggml.tokens") else { panic!() };
        assert_eq!(a.strings().unwrap().collect::<Vec<_>>(), ["<unk>", "a", "bé"]);
        let w = f.tensor("w").unwrap();
        assert_eq!((w.dims.clone(), w.ty, w.n_elements()), (vec![32, 2], GgmlType::F32, 64));
        assert!(f.tensor_bytes(w).iter().all(|&b| b == 1));
        assert_eq!(f.tensor_bytes(f.tensor("q").unwrap()), &[2u8; 34][..]);
        assert_eq!(f.index.data_offset % 32, 0);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = sample();
        for cut in 0..full.len() {
            assert!(parse(&full[..cut]).is_err(), "prefix of {cut} bytes parsed");
        }
    }

    #[test]
    fn errors_name_the_problem_and_offset() {
        let e = parse(b"GGML\x03\0\0\0").unwrap_err().to_string();
        assert!(e.contains("not a GGUF file"), "{e}");
        let mut v1 = sample();
        v1[4] = 1;
        assert!(parse(&v1).unwrap_err().to_string().contains("version 1"));
        let e = parse(&sample()[..60]).unwrap_err().to_string();
        assert!(e.starts_with("truncated GGUF:") && e.contains("byte offset"), "{e}");
        // Huge array count: must fail on size, not try to allocate.
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        put_str(&mut b, "k");
        b.extend(9u32.to_le_bytes());
        b.extend(6u32.to_le_bytes());
        b.extend(u64::MAX.to_le_bytes());
        let e = parse(&b).unwrap_err().to_string();
        assert!(e.contains("metadata `k`"), "{e}");
    }

    #[test]
    fn tensor_table_is_validated() {
        let bad_row = Writer::default().tensor("t", &[33], GgmlType::Q8_0, vec![0; 34]).build();
        assert!(parse(&bad_row).unwrap_err().to_string().contains("not a multiple of the Q8_0 block"));
        let mut past_end = Writer::default().tensor("t", &[32, 4], GgmlType::F32, vec![0; 512]).build();
        past_end.truncate(past_end.len() - 1);
        assert!(matches!(parse(&past_end), Err(GgufError::Truncated { .. })));
        let dup = Writer::default()
            .tensor("t", &[1], GgmlType::F32, vec![0; 4])
            .tensor("t", &[1], GgmlType::F32, vec![0; 4])
            .build();
        assert!(parse(&dup).unwrap_err().to_string().contains("appears twice"));
        let mut w = Writer::default().tensor("t", &[1], GgmlType::F32, vec![0; 4]);
        w.tensors[0].2 = 99;
        let bad_type = w.build();
        assert!(parse(&bad_type).unwrap_err().to_string().contains("tensor type 99"));
    }

    #[test]
    fn invalid_utf8_and_bool_are_rejected() {
        let bad = Writer::default().kv_raw("k", 8, &[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]).build();
        assert!(parse(&bad).unwrap_err().to_string().contains("UTF-8"));
        let bad = Writer::default().kv_raw("b", 7, &[7]).build();
        assert!(parse(&bad).unwrap_err().to_string().contains("bool value 7"));
    }
}
