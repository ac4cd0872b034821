//! Q5_0: 32 weights as 5-bit offsets from 16 (32 high bits in one u32) with an f16 scale;
//! multiplied with Q8_0 activations. Layout, dequantizer and the scalar reference dot.

use super::{BlockQ8_0, GgmlType, QK, TypeTraits, dot_on, f16_at, f16_to_f32, q8_0};

/// Bytes per block: f16 d, u32 high bits, 16 nibble bytes.
pub const BLOCK_BYTES: usize = 22;

pub const TRAITS: TypeTraits = TypeTraits {
    ty: GgmlType::Q5_0,
    id: 6,
    name: "Q5_0",
    block_len: QK,
    block_bytes: BLOCK_BYTES,
    dequantize: |row, out| dequantize_5bit(row, out, BLOCK_BYTES, None, 16),
    activation_reference: q8_0::activation_reference,
    dot_reference: dot_on!(Q8_0, dot_q5_0_q8_0),
    quantize: None,
};

/// The 5-bit values of a Q5_0 or Q5_1 block whose high bits start at `qh_at` (the nibbles
/// follow them), minus `off`, in element order.
pub fn values(b: &[u8], qh_at: usize, off: i32) -> [i32; QK] {
    let qh = u32::from_le_bytes(b[qh_at..qh_at + 4].try_into().unwrap());
    let qs = &b[qh_at + 4..qh_at + 20];
    let mut v = [0; QK];
    for j in 0..QK / 2 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        v[j] = ((qs[j] & 0xf) as u32 | h0) as i32 - off;
        v[j + QK / 2] = ((qs[j] >> 4) as u32 | h1) as i32 - off;
    }
    v
}

/// Q5_0 (`m_at` None, `off` 16) or Q5_1 (`m_at` the f16 min, `off` 0) rows: `v * d + m`.
pub(super) fn dequantize_5bit(row: &[u8], out: &mut [f32], bb: usize, m_at: Option<usize>, off: i32) {
    for (b, y) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        let m = m_at.map_or(0.0, |at| f16_at(b, at));
        for (o, v) in y.iter_mut().zip(values(b, bb - 20, off)) {
            *o = v as f32 * d + m;
        }
    }
}

pub fn dot_q5_0_q8_0(row: &[u8], y: &[BlockQ8_0]) -> f32 {
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(BLOCK_BYTES).zip(y) {
        let v = values(b, 2, 16);
        let sumi: i32 = v.iter().zip(&by.qs).map(|(&a, &q)| a * q as i32).sum();
        sum += sumi as f32 * (f16_at(b, 0) * f16_to_f32(by.d));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::f32_to_f16;

    #[test]
    fn q5_0_known_block() {
        // d = 1, qh bit 0 set (element 0 gets +16), qs[0] = 0x21: element 0 = 1|16 - 16 = 1,
        // element 16 = 2 - 16 = -14.
        let mut b = vec![0u8; 22];
        b[0..2].copy_from_slice(&f32_to_f16(1.0).to_le_bytes());
        b[2] = 1;
        b[6] = 0x21;
        let mut out = [0.0; 32];
        (TRAITS.dequantize)(&b, &mut out);
        assert_eq!((out[0], out[16], out[1]), (1.0, -14.0, -16.0));
    }
}
