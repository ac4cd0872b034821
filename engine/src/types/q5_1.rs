//! Q5_1: 32 weights as 5-bit values with an f16 scale and min, `w = d * q + m`; multiplied with
//! Q8_1 activations. Layout constants, dequantizer and the scalar reference dot.

use super::{BlockQ8_1, GgmlType, QK, TypeTraits, dot_on, q5_0, q8_1};

/// Bytes per block: f16 d, f16 m, u32 high bits, 16 nibble bytes.
pub const BLOCK_BYTES: usize = 24;

pub const TRAITS: TypeTraits = TypeTraits {
    ty: GgmlType::Q5_1,
    id: 7,
    name: "Q5_1",
    block_len: QK,
    block_bytes: BLOCK_BYTES,
    dequantize: |row, out| q5_0::dequantize_5bit(row, out, BLOCK_BYTES, Some(2), 0),
    activation_reference: q8_1::activation_reference,
    dot_reference: dot_on!(Q8_1, dot_q5_1_q8_1),
    quantize: None,
};

pub fn dot_q5_1_q8_1(row: &[u8], y: &[BlockQ8_1]) -> f32 {
    q8_1::dot_with_min(row, y, BLOCK_BYTES, |b, by| {
        q5_0::values(b, 4, 0).iter().zip(&by.qs).map(|(&a, &q)| a * q as i32).sum()
    })
}
