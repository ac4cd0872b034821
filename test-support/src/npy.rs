//! Reads NumPy `.npy` float32 arrays (1-D or 2-D, little-endian `<f4`, C order): the reference
//! logits in ../shared/fixtures and what `hartlm logits` writes.

use std::path::Path;

/// Decodes a 1-D or 2-D little-endian float32 array; returns (data, shape).
pub fn decode_f32(bytes: &[u8]) -> Result<(Vec<f32>, Vec<usize>), String> {
    let rest = bytes.strip_prefix(b"\x93NUMPY").ok_or("not an .npy file")?;
    let (&[major, _], rest) = rest.split_first_chunk::<2>().ok_or("truncated .npy")?;
    let (hlen, rest) = match major {
        1 => rest.split_first_chunk::<2>().map(|(h, r)| (u16::from_le_bytes(*h) as usize, r)),
        _ => rest.split_first_chunk::<4>().map(|(h, r)| (u32::from_le_bytes(*h) as usize, r)),
    }
    .ok_or("truncated .npy header")?;
    let header =
        std::str::from_utf8(rest.get(..hlen).ok_or("truncated .npy header")?).map_err(|e| e.to_string())?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        return Err(format!("unsupported .npy header {header}"));
    }
    let shape_txt = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).ok_or("no shape")?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| "bad shape"))
        .collect::<Result<_, _>>()?;
    let data: Vec<f32> =
        rest[hlen..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!("{} values for shape {shape:?}", data.len()));
    }
    Ok((data, shape))
}

pub fn read_f32(path: &Path) -> Result<(Vec<f32>, Vec<usize>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    decode_f32(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
