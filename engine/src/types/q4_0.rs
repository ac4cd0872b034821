//! Q4_0: 32 weights as 4-bit offsets from 8 with one f16 scale, `w = d * (q - 8)`; multiplied
//! with Q8_0 activations. Layout, weight quantizer, dequantizer and the scalar reference dot.

use super::{BlockQ8_0, GgmlType, QK, TypeTraits, dot_on, f16_at, f16_to_f32, f32_to_f16, q8_0};

/// 18 bytes, as in ggml.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// f16 bits of the scale.
    pub d: u16,
    /// Low nibbles hold elements 0..16, high nibbles 16..32.
    pub qs: [u8; QK / 2],
}

const _: () = assert!(size_of::<BlockQ4_0>() == 18);

pub const TRAITS: TypeTraits = TypeTraits {
    ty: GgmlType::Q4_0,
    id: 2,
    name: "Q4_0",
    block_len: QK,
    block_bytes: size_of::<BlockQ4_0>(),
    dequantize: |row, out| dequantize_nibbles(row, out, 18, None, 8),
    activation_reference: q8_0::activation_reference,
    dot_reference: dot_on!(Q8_0, |row: &[u8], y: &[BlockQ8_0]| dot_q4_0_q8_0(&super::blocks(row), y)),
    quantize: Some(|x| {
        let mut b = vec![BlockQ4_0::default(); x.len() / QK];
        quantize_row_q4_0(x, &mut b);
        bytemuck::cast_slice(&b).to_vec()
    }),
};

/// Q4_0 (`m_at` None, `off` 8) or Q4_1 (`m_at` the f16 min, `off` 0) rows: `(q - off) * d + m`,
/// the nibbles being the block's last 16 bytes.
pub(super) fn dequantize_nibbles(row: &[u8], out: &mut [f32], bb: usize, m_at: Option<usize>, off: i32) {
    for (b, y) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        let m = m_at.map_or(0.0, |at| f16_at(b, at));
        let qs = &b[bb - QK / 2..];
        for j in 0..QK / 2 {
            y[j] = ((qs[j] & 0xf) as i32 - off) as f32 * d + m;
            y[j + QK / 2] = ((qs[j] >> 4) as i32 - off) as f32 * d + m;
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

/// The integer dot product of one Q4_0 block with one Q8_0 block.
pub fn block_dot_q4_0_q8_0(x: &BlockQ4_0, y: &BlockQ8_0) -> i32 {
    let mut sum = 0i32;
    for j in 0..QK / 2 {
        let lo = (x.qs[j] & 0x0f) as i32 - 8;
        let hi = (x.qs[j] >> 4) as i32 - 8;
        sum += lo * y.qs[j] as i32 + hi * y.qs[j + QK / 2] as i32;
    }
    sum
}

pub fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    x.iter()
        .zip(y)
        .map(|(bx, by)| block_dot_q4_0_q8_0(bx, by) as f32 * f16_to_f32(bx.d) * f16_to_f32(by.d))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
