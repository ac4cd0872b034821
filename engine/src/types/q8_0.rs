//! Q8_0: 32 values as i8 with one f16 scale, `x = d * q`: a weight type and the activation of
//! Q4_0, Q5_0 and Q8_0 weights. Layout, both of ggml's quantizers and the reference dot.

use super::{Activation, GgmlType, QK, TypeTraits, dot_on, f16_to_f32, f32_to_f16};

/// 34 bytes, as in ggml.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    pub d: u16,
    pub qs: [i8; QK],
}

impl Default for BlockQ8_0 {
    fn default() -> Self {
        BlockQ8_0 { d: 0, qs: [0; QK] }
    }
}

const _: () = assert!(size_of::<BlockQ8_0>() == 34);

pub const TRAITS: TypeTraits = TypeTraits {
    ty: GgmlType::Q8_0,
    id: 8,
    name: "Q8_0",
    block_len: QK,
    block_bytes: size_of::<BlockQ8_0>(),
    dequantize: |row, out| dequantize_row_q8_0(&super::blocks(row), out),
    activation_reference,
    dot_reference: dot_on!(Q8_0, |row: &[u8], y: &[BlockQ8_0]| dot_q8_0_q8_0(&super::blocks(row), y)),
    quantize: Some(|x| {
        let mut b = vec![BlockQ8_0::default(); x.len() / QK];
        quantize_row_q8_0_reference(x, &mut b);
        bytemuck::cast_slice(&b).to_vec()
    }),
};

/// `x` as a Q8_0 activation, quantized by [`quantize_row_q8_0`].
pub fn activation_reference(x: &[f32]) -> Activation {
    activation_with(x, quantize_row_q8_0)
}

/// `x` as a Q8_0 activation, through `quantize` (a quantizer equal to [`quantize_row_q8_0`]).
pub fn activation_with(x: &[f32], quantize: fn(&[f32], &mut [BlockQ8_0])) -> Activation {
    let mut q = vec![BlockQ8_0::default(); x.len() / QK];
    quantize(x, &mut q);
    Activation::Q8_0(q)
}

/// Quantizes `x` (a multiple of 32 long) to Q8_0 as llama.cpp does before a quantized matmul:
/// `d = amax/127` stored as f16, `q = round_half_even(x * 127/amax)`.
pub fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    for (chunk, block) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        block.d = f32_to_f16(amax / 127.0);
        for (q, v) in block.qs.iter_mut().zip(chunk) {
            *q = (v * id).round_ties_even() as i8;
        }
    }
}

/// ggml's reference Q8_0 quantizer (what llama-quantize writes for weights): `q = roundf(x / d)`
/// with ties away from zero, unlike the activation path above.
pub fn quantize_row_q8_0_reference(x: &[f32], out: &mut [BlockQ8_0]) {
    for (chunk, block) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f32_to_f16(d);
        for (q, v) in block.qs.iter_mut().zip(chunk) {
            *q = (v * id).round() as i8;
        }
    }
}

pub fn dequantize_row_q8_0(blocks: &[BlockQ8_0], out: &mut [f32]) {
    for (b, chunk) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = f16_to_f32(b.d);
        for (o, &q) in chunk.iter_mut().zip(&b.qs) {
            *o = d * q as f32;
        }
    }
}

pub fn block_dot_q8_0_q8_0(x: &BlockQ8_0, y: &BlockQ8_0) -> i32 {
    x.qs.iter().zip(&y.qs).map(|(&a, &b)| a as i32 * b as i32).sum()
}

pub fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    x.iter()
        .zip(y)
        .map(|(bx, by)| block_dot_q8_0_q8_0(bx, by) as f32 * (f16_to_f32(bx.d) * f16_to_f32(by.d)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_rounds_half_to_even_and_keeps_scale() {
        // amax = 127 makes id = 1, so x.5 values expose the rounding rule.
        let mut x = [0.0f32; QK];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        x[3] = 0.5;
        let mut b = [BlockQ8_0::default()];
        quantize_row_q8_0(&x, &mut b);
        assert_eq!(&b[0].qs[..4], &[127, 2, -4, 0]);
        assert_eq!(f16_to_f32(b[0].d), 1.0);
    }

    #[test]
    fn zero_block_quantizes_to_zero() {
        let mut b = [BlockQ8_0::default()];
        quantize_row_q8_0(&[0.0; QK], &mut b);
        assert_eq!(b[0].qs, [0; QK]);
        assert_eq!(b[0].d, 0);
    }
}
