//! ggml's quantized block layouts (Q4_0, Q8_0) and their scalar quantize/dequantize, rounding
//! exactly as llama.cpp's x86 build does so that our activations match its bit for bit.

use half::f16;

/// Values per Q4_0 / Q8_0 block.
pub const QK: usize = 32;

/// 32 weights as 4-bit offsets from 8, one f16 scale: `w = d * (q - 8)`. 18 bytes, as in ggml.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// f16 bits of the scale.
    pub d: u16,
    /// Low nibbles hold elements 0..16, high nibbles 16..32.
    pub qs: [u8; QK / 2],
}

/// 32 values as i8 with one f16 scale: `x = d * q`. 34 bytes, as in ggml.
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

const _: () = assert!(size_of::<BlockQ4_0>() == 18 && size_of::<BlockQ8_0>() == 34);

#[inline]
pub fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
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

/// ggml's reference Q4_0 quantizer: the scale maps the value of largest magnitude to -8.
pub fn quantize_row_q4_0(x: &[f32], out: &mut [BlockQ4_0]) {
    for (chunk, block) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in chunk {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.d = f32_to_f16(d);
        for j in 0..QK / 2 {
            let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
            block.qs[j] = q(chunk[j]) | (q(chunk[j + QK / 2]) << 4);
        }
    }
}

pub fn dequantize_row_q4_0(blocks: &[BlockQ4_0], out: &mut [f32]) {
    for (b, chunk) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = f16_to_f32(b.d);
        for j in 0..QK / 2 {
            chunk[j] = d * ((b.qs[j] & 0x0f) as i32 - 8) as f32;
            chunk[j + QK / 2] = d * ((b.qs[j] >> 4) as i32 - 8) as f32;
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
    fn q4_0_round_trips_within_half_a_step_except_the_clamped_extreme() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 31.0) / 7.0).collect();
        let mut b = [BlockQ4_0::default(); 2];
        quantize_row_q4_0(&x, &mut b);
        let mut y = vec![0.0; 64];
        dequantize_row_q4_0(&b, &mut y);
        for (blk, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let step = f16_to_f32(b[blk].d).abs();
            let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, r) in xs.iter().zip(ys) {
                // The scale maps the first extreme to -8; the opposite sign only reaches +7. The f16
                // scale adds up to 2^-11 relative error.
                let bound = if a.abs() > 7.0 * step { step * 1.01 } else { step * 0.5 + a.abs() * 1e-3 };
                assert!((a - r).abs() <= bound, "{a} vs {r} step {step} amax {amax}");
            }
        }
    }

    #[test]
    fn zero_block_quantizes_to_zero() {
        let mut b = [BlockQ8_0::default()];
        quantize_row_q8_0(&[0.0; QK], &mut b);
        assert_eq!(b[0].qs, [0; QK]);
        assert_eq!(b[0].d, 0);
    }
}
