//! Just enough GGUF to damage one on purpose: parse a valid file into its parts (keeping each
//! value's raw bytes), change or drop metadata, and write it back with the data re-aligned.

use anyhow::{Context, Result, bail};

/// A metadata value as written: its GGUF type id and the bytes that follow the type.
#[derive(Clone, Debug)]
pub struct Raw {
    pub ty: u32,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: u32,
    /// Relative to the start of the data section.
    pub offset: u64,
}

/// A parsed GGUF file, plus where each part started in the original bytes.
#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    pub kvs: Vec<(String, Raw)>,
    pub tensors: Vec<TensorInfo>,
    pub data: Vec<u8>,
    /// Byte offset of each metadata entry (its key length), of each tensor info (its name
    /// length), and of the data section, in the file parsed.
    pub kv_at: Vec<usize>,
    pub tensor_at: Vec<usize>,
    pub data_at: usize,
}

pub const U32: u32 = 4;
pub const I32: u32 = 5;
pub const F32: u32 = 6;
pub const BOOL: u32 = 7;
pub const STRING: u32 = 8;
pub const ARRAY: u32 = 9;
pub const U64: u32 = 10;

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).context("truncated")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
    }
    fn string(&mut self) -> Result<String> {
        let n = usize::try_from(self.u64()?)?;
        Ok(String::from_utf8(self.take(n)?.to_vec())?)
    }
    /// Skips one value of type `ty`, returning its bytes.
    fn value(&mut self, ty: u32) -> Result<Vec<u8>> {
        let start = self.at;
        match ty {
            0 | 1 | 7 => drop(self.take(1)?),
            2 | 3 => drop(self.take(2)?),
            4..=6 => drop(self.take(4)?),
            10..=12 => drop(self.take(8)?),
            STRING => drop(self.string()?),
            ARRAY => {
                let elem = self.u32()?;
                let n = self.u64()?;
                for _ in 0..n {
                    self.value(elem)?;
                }
            }
            other => bail!("value type {other}"),
        }
        Ok(self.b[start..self.at].to_vec())
    }
}

fn alignment(kvs: &[(String, Raw)]) -> usize {
    kvs.iter()
        .find(|(k, r)| k == "general.alignment" && r.ty == U32)
        .map_or(32, |(_, r)| u32::from_le_bytes(r.bytes[..4].try_into().unwrap_or([32, 0, 0, 0])) as usize)
        .max(1)
}

impl Gguf {
    pub fn parse(bytes: &[u8]) -> Result<Gguf> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(4)? != b"GGUF" {
            bail!("not GGUF");
        }
        let version = r.u32()?;
        let (n_tensors, n_kv) = (r.u64()?, r.u64()?);
        let (mut kvs, mut kv_at) = (Vec::new(), Vec::new());
        for _ in 0..n_kv {
            kv_at.push(r.at);
            let key = r.string()?;
            let ty = r.u32()?;
            kvs.push((key, Raw { ty, bytes: r.value(ty)? }));
        }
        let (mut tensors, mut tensor_at) = (Vec::new(), Vec::new());
        for _ in 0..n_tensors {
            tensor_at.push(r.at);
            let name = r.string()?;
            let n_dims = r.u32()?;
            let dims = (0..n_dims).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
            tensors.push(TensorInfo { name, dims, ty: r.u32()?, offset: r.u64()? });
        }
        let data_at = r.at.next_multiple_of(alignment(&kvs));
        let data = bytes.get(data_at..).context("no data section")?.to_vec();
        Ok(Gguf { version, kvs, tensors, data, kv_at, tensor_at, data_at })
    }

    pub fn write(&self) -> Vec<u8> {
        let (mut out, data_at) = self.write_head();
        out.resize(data_at, 0);
        out.extend(&self.data);
        out
    }

    /// The header, metadata and tensor infos, and the offset of the data section after the
    /// alignment padding (which a 2^31 alignment makes 2 GiB of zeros).
    pub fn write_head(&self) -> (Vec<u8>, usize) {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kvs.len() as u64).to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        };
        for (k, v) in &self.kvs {
            string(&mut out, k);
            out.extend(v.ty.to_le_bytes());
            out.extend(&v.bytes);
        }
        for t in &self.tensors {
            string(&mut out, &t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.ty.to_le_bytes());
            out.extend(t.offset.to_le_bytes());
        }
        let data_at = out.len().next_multiple_of(alignment(&self.kvs));
        (out, data_at)
    }

    pub fn get(&self, key: &str) -> Option<&Raw> {
        self.kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` (replacing it in place, or appending it).
    pub fn set(&mut self, key: &str, value: Raw) -> &mut Self {
        match self.kvs.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value,
            None => self.kvs.push((key.to_string(), value)),
        }
        self
    }

    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.kvs.retain(|(k, _)| k != key);
        self
    }

    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut TensorInfo> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }
}

pub fn u32v(v: u32) -> Raw {
    Raw { ty: U32, bytes: v.to_le_bytes().to_vec() }
}
pub fn i32v(v: i32) -> Raw {
    Raw { ty: I32, bytes: v.to_le_bytes().to_vec() }
}
pub fn u64v(v: u64) -> Raw {
    Raw { ty: U64, bytes: v.to_le_bytes().to_vec() }
}
pub fn f32v(v: f32) -> Raw {
    Raw { ty: F32, bytes: v.to_le_bytes().to_vec() }
}
pub fn boolv(v: bool) -> Raw {
    Raw { ty: BOOL, bytes: vec![u8::from(v)] }
}
pub fn strv(s: &str) -> Raw {
    let mut bytes = (s.len() as u64).to_le_bytes().to_vec();
    bytes.extend(s.as_bytes());
    Raw { ty: STRING, bytes }
}
/// An array of `n` elements of type `elem` whose encoded elements are `body`.
pub fn arrayv(elem: u32, n: u64, body: &[u8]) -> Raw {
    let mut bytes = elem.to_le_bytes().to_vec();
    bytes.extend(n.to_le_bytes());
    bytes.extend(body);
    Raw { ty: ARRAY, bytes }
}
