//! `hartlm quantize`: rewrites a GGUF model with its weight matrices in Q4_0 or Q8_0, using
//! ggml's reference quantizers (so results match llama-quantize), streaming one tensor at a time.
//!
//! The mix follows llama-quantize: norms and biases stay as they are; `output.weight` becomes
//! Q8_0 where llama.cpp would pick Q6_K (hartlm has no K-quant quantizer yet) unless `pure`.

use std::io::Write;
use std::path::Path;

use crate::gguf::{GgufFile, TensorInfo};
use crate::types::GgmlType;
use crate::types::QK;

/// llama.cpp's `general.file_type` values.
fn file_type(t: GgmlType) -> u32 {
    match t {
        GgmlType::Q4_0 => 2,
        _ => 7, // MOSTLY_Q8_0
    }
}

/// The type a tensor is written as.
pub fn target_type(t: &TensorInfo, want: GgmlType, pure: bool) -> GgmlType {
    let is_matrix = t.dims.len() == 2 && !t.name.ends_with("_norm.weight") && !t.name.ends_with(".bias");
    if !is_matrix || !t.dims[0].is_multiple_of(QK as u64) {
        return t.ty;
    }
    if !pure && t.name == "output.weight" && want == GgmlType::Q4_0 {
        return GgmlType::Q8_0;
    }
    want
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// Converts one tensor's data to `to`, row by row.
fn convert(file: &GgufFile, t: &TensorInfo, to: GgmlType) -> Vec<u8> {
    let src = file.tensor_bytes(t);
    if to == t.ty {
        return src.to_vec();
    }
    let cols = t.dims[0] as usize;
    let rows = (t.n_elements() / t.dims[0]) as usize;
    let in_row = t.ty.bytes_for(cols as u64).unwrap() as usize;
    let quantizer = to.traits().quantize.unwrap_or_else(|| panic!("hartlm quantize cannot write {to}"));
    let mut f = vec![0.0f32; cols];
    let mut out = Vec::with_capacity(to.bytes_for(t.n_elements()).unwrap_or(0) as usize);
    for r in 0..rows {
        crate::types::dequantize(t.ty, &src[r * in_row..(r + 1) * in_row], &mut f);
        out.extend_from_slice(&quantizer(&f));
    }
    out
}

/// Writes `out` (through a temporary file, renamed at the end) from `file`.
pub fn quantize(
    file: &GgufFile,
    out: &Path,
    want: GgmlType,
    pure: bool,
    progress: impl Fn(usize, usize, &str),
) -> std::io::Result<()> {
    const ALIGN: u64 = 32;
    let mut header = b"GGUF".to_vec();
    header.extend(3u32.to_le_bytes());
    header.extend((file.index.tensors.len() as u64).to_le_bytes());
    let entries: Vec<(&str, &[u8])> =
        file.raw_entries().filter(|(k, _)| *k != "general.file_type" && *k != "general.alignment").collect();
    header.extend((entries.len() as u64 + 1).to_le_bytes());
    for (_, raw) in &entries {
        header.extend_from_slice(raw);
    }
    put_str(&mut header, "general.file_type");
    header.extend(4u32.to_le_bytes());
    header.extend(file_type(want).to_le_bytes());
    let mut offset = 0u64;
    let mut plan = Vec::new();
    for t in &file.index.tensors {
        let ty = target_type(t, want, pure);
        let size = ty.bytes_for(t.n_elements()).expect("validated when the file was opened");
        put_str(&mut header, &t.name);
        header.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            header.extend(d.to_le_bytes());
        }
        header.extend(ty.id().to_le_bytes());
        header.extend(offset.to_le_bytes());
        plan.push((t, ty, size));
        offset = (offset + size).next_multiple_of(ALIGN);
    }
    header.resize(header.len().next_multiple_of(ALIGN as usize), 0);

    hartlm_abi::atomic::write_atomic_with(out, |w| {
        w.write_all(&header)?;
        let mut written = 0u64;
        for (i, (t, ty, size)) in plan.iter().enumerate() {
            progress(i + 1, plan.len(), &t.name);
            let data = convert(file, t, *ty);
            debug_assert_eq!(data.len() as u64, *size);
            w.write_all(&data)?;
            written += data.len() as u64;
            let pad = written.next_multiple_of(ALIGN) - written;
            w.write_all(&vec![0u8; pad as usize])?;
            written += pad;
        }
        Ok(())
    })
}
