//! Q8_1: 32 activations as i8 with an f16 scale and `s = d * sum(q)`, the activation of the `_1`
//! weight types (Q4_1, Q5_1), whose offsets need the activation sum.

use super::{Activation, BlockQ8_0, QK, f16_at, f16_to_f32, f32_to_f16, q8_0};

/// 36 bytes, as in ggml's block_q8_1.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BlockQ8_1 {
    pub d: u16,
    pub s: u16,
    pub qs: [i8; QK],
}

const _: () = assert!(size_of::<BlockQ8_1>() == 36);

/// Quantizes `x` to Q8_1: the quants and scale of `quantize_q8_0` (a Q8_0 quantizer equal to
/// [`q8_0::quantize_row_q8_0`]), and `s` from the block's maximum and quant sum, as ggml does.
pub fn quantize_row_q8_1_with(x: &[f32], out: &mut [BlockQ8_1], quantize_q8_0: fn(&[f32], &mut [BlockQ8_0])) {
    let mut tmp = [BlockQ8_0::default()];
    for (chunk, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        quantize_q8_0(chunk, &mut tmp);
        let amax = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let sum: i32 = tmp[0].qs.iter().map(|&q| q as i32).sum();
        *b = BlockQ8_1 { d: tmp[0].d, s: f32_to_f16(amax / 127.0 * sum as f32), qs: tmp[0].qs };
    }
}

/// `x` as a Q8_1 activation, through `quantize_q8_0`.
pub fn activation_with(x: &[f32], quantize_q8_0: fn(&[f32], &mut [BlockQ8_0])) -> Activation {
    let mut q = vec![BlockQ8_1 { d: 0, s: 0, qs: [0; QK] }; x.len() / QK];
    quantize_row_q8_1_with(x, &mut q, quantize_q8_0);
    Activation::Q8_1(q)
}

pub fn activation_reference(x: &[f32]) -> Activation {
    activation_with(x, q8_0::quantize_row_q8_0)
}

/// A `_1` row (value = d*q + m, f16 `d` then `m` at the start of each `bb`-byte block) against
/// Q8_1: `d_x d_y sum(q_x q_y) + m_x s_y` per block, `block_sum` giving the integer sum.
pub fn dot_with_min(
    row: &[u8],
    y: &[BlockQ8_1],
    bb: usize,
    block_sum: impl Fn(&[u8], &BlockQ8_1) -> i32,
) -> f32 {
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(bb).zip(y) {
        let sumi = block_sum(b, by);
        sum += (f16_at(b, 0) * f16_to_f32(by.d)) * sumi as f32 + f16_at(b, 2) * f16_to_f32(by.s);
    }
    sum
}
