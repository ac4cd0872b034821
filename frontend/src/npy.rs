//! NumPy `.npy` (format 1.0) for float32 matrices as `hartlm logits` writes them: little-endian
//! `<f4`, C order. The tests' reader is `hartlm_test_support::npy`.

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

#[cfg(test)]
mod tests {
    use super::*;
    use hartlm_test_support::npy::decode_f32;

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
