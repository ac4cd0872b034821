//! NumPy `.npy` (format 1.0) for float32 matrices: written by `hartlm logits`, read by tests
//! that compare against reference outputs. Little-endian `<f4`, C order only.

use std::path::Path;

/// Encodes a `[rows, cols]` float32 array.
pub fn encode_f32(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(data.len(), rows * cols, "npy shape does not match data");
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces and a newline to 64.
    let total = (10 + header.len() + 1).next_multiple_of(64);
    header.push_str(&" ".repeat(total - 10 - header.len() - 1));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in data {
        out.extend(v.to_le_bytes());
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        let data: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
        let bytes = encode_f32(&data, 2, 3);
        assert_eq!((bytes.len() - 24) % 64, 0, "header must pad the data start to 64 bytes");
        let (back, shape) = decode_f32(&bytes).unwrap();
        assert_eq!((back, shape), (data, vec![2, 3]));
        assert!(decode_f32(&bytes[..20]).is_err());
    }
}
