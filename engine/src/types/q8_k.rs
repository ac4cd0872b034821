//! Q8_K: 256 values as i8 with an f32 scale and the sums of each 16, the activation of the
//! K-quants (and a valid, if unused, weight type). Layout, ggml's quantizer and reference dot.

use super::{Activation, GgmlType, TypeTraits, dot_on};

/// Elements per K-quant super-block.
pub const QK_K: usize = 256;

/// 256 activations as i8 with an f32 scale and sums of each 16 (ggml's block_q8_K). The
/// K-quant kernels take the sums as exact: a block whose `bsums` disagree with `qs` is invalid.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BlockQ8K {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; QK_K / 16],
}

impl BlockQ8K {
    pub const ZERO: BlockQ8K = BlockQ8K { d: 0.0, qs: [0; QK_K], bsums: [0; QK_K / 16] };
}

pub const TRAITS: TypeTraits = TypeTraits {
    ty: GgmlType::Q8K,
    id: 15,
    name: "Q8_K",
    block_len: QK_K,
    block_bytes: 292,
    dequantize,
    activation_reference,
    dot_reference: dot_on!(Q8K, dot_q8_k_q8_k),
    quantize: None,
};

fn dequantize(row: &[u8], out: &mut [f32]) {
    for (b, y) in row.chunks_exact(292).zip(out.chunks_exact_mut(QK_K)) {
        let d = f32::from_le_bytes(b[0..4].try_into().unwrap());
        for (o, &q) in y.iter_mut().zip(&b[4..260]) {
            *o = d * (q as i8) as f32;
        }
    }
}

/// `x` as a Q8_K activation, quantized by [`quantize_row_q8_k`].
pub fn activation_reference(x: &[f32]) -> Activation {
    activation_with(x, quantize_row_q8_k)
}

/// `x` as a Q8_K activation, through `quantize` (a quantizer equal to [`quantize_row_q8_k`]).
pub fn activation_with(x: &[f32], quantize: fn(&[f32], &mut [BlockQ8K])) -> Activation {
    let mut q = vec![BlockQ8K::ZERO; x.len() / QK_K];
    quantize(x, &mut q);
    Activation::Q8K(q)
}

/// ggml's `nearest_int`: round half to even through the float mantissa.
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

pub fn quantize_row_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    for (chunk, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in chunk {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        b.bsums = [0; QK_K / 16];
        if amax == 0.0 {
            b.d = 0.0;
            b.qs = [0; QK_K];
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(chunk) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = g.iter().map(|&q| q as i16).sum();
        }
        b.d = 1.0 / iscale;
    }
}

/// Q8_K rows (never in model files, but a valid ggml type) against Q8_K activations.
pub fn dot_q8_k_q8_k(row: &[u8], y: &[BlockQ8K]) -> f32 {
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(292).zip(y) {
        let d = f32::from_le_bytes(b[0..4].try_into().unwrap());
        let s: i32 = b[4..260].iter().zip(&by.qs).map(|(&a, &q)| a as i8 as i32 * q as i32).sum();
        sum += d * by.d * s as f32;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_k_matches_ggml_reference_rules() {
        let mut x = vec![0.0f32; QK_K];
        x[0] = -2.0; // iscale = -127/max, so the value of largest magnitude always maps to -127
        x[1] = 1.0;
        x[2] = 0.5 * 2.0 / 127.0; // exactly half a step: rounds to even (0)
        let mut b = [BlockQ8K::ZERO];
        quantize_row_q8_k(&x, &mut b);
        assert_eq!(&b[0].qs[..3], &[-127, 64, 0]);
        assert!((b[0].d - 2.0 / 127.0).abs() < 1e-9);
        assert_eq!(b[0].bsums[0], -127 + 64);
    }
}
