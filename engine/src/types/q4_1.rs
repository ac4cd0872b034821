//! Q4_1: 32 weights as 4-bit values with an f16 scale and min, `w = d * q + m`; multiplied with
//! Q8_1 activations. Layout constants, dequantizer and the scalar reference dot.

use super::{BlockQ8_1, GgmlType, QK, TypeTraits, dot_on, q4_0, q8_1};

/// Bytes per block: f16 d, f16 m, 16 nibble bytes.
pub const BLOCK_BYTES: usize = 20;

pub const TRAITS: TypeTraits = TypeTraits {
    ty: GgmlType::Q4_1,
    id: 3,
    name: "Q4_1",
    block_len: QK,
    block_bytes: BLOCK_BYTES,
    dequantize: |row, out| q4_0::dequantize_nibbles(row, out, BLOCK_BYTES, Some(2), 0),
    activation_reference: q8_1::activation_reference,
    dot_reference: dot_on!(Q8_1, dot_q4_1_q8_1),
    quantize: None,
};

/// A Q4_1 row (raw block bytes) against Q8_1 activations, block by block.
pub fn dot_q4_1_q8_1(row: &[u8], y: &[BlockQ8_1]) -> f32 {
    q8_1::dot_with_min(row, y, BLOCK_BYTES, |b, by| {
        let qs = &b[4..20];
        (0..QK / 2)
            .map(|j| (qs[j] & 0xf) as i32 * by.qs[j] as i32 + (qs[j] >> 4) as i32 * by.qs[j + QK / 2] as i32)
            .sum()
    })
}
