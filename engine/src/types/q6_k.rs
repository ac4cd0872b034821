//! Q6_K: 256-element super-blocks of 6-bit values (low nibbles plus high bit pairs) with sixteen
//! i8 scales and an f16 `d`, `w = d * sc * (q - 32)`; multiplied with Q8_K activations.

use super::{BlockQ8K, GgmlType, QK_K, TypeTraits, dot_on, f16_at, f16_to_f32, q8_k};

/// Bytes of one Q6_K block: 128 low nibbles, 64 bytes of high bit pairs, 16 i8 scales, f16 d.
pub const Q6K_BYTES: usize = 210;

pub const TRAITS: TypeTraits = TypeTraits {
    ty: GgmlType::Q6K,
    id: 14,
    name: "Q6_K",
    block_len: QK_K,
    block_bytes: Q6K_BYTES,
    dequantize,
    activation_reference: q8_k::activation_reference,
    dot_reference: dot_on!(Q8K, dot_q6_k_q8_k),
    quantize: None,
};

fn dequantize(row: &[u8], out: &mut [f32]) {
    for (b, y) in row.chunks_exact(Q6K_BYTES).zip(out.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, 208);
        let vals = q6k_values(b);
        for (g, (ys, vs)) in y.chunks_exact_mut(16).zip(vals.chunks_exact(16)).enumerate() {
            let sc = b[192 + g] as i8 as f32;
            for (o, &v) in ys.iter_mut().zip(vs) {
                *o = d * sc * v as f32;
            }
        }
    }
}

/// The signed 6-bit values of a Q6_K block, in element order; group `g` of 16 uses scale
/// `b[192 + g]`.
pub fn q6k_values(b: &[u8]) -> [i32; QK_K] {
    let mut vals = [0; QK_K];
    for half in 0..2 {
        let ql = &b[half * 64..half * 64 + 64];
        let qh = &b[128 + half * 32..128 + half * 32 + 32];
        for l in 0..32 {
            let q = |low: u8, shift: u32| (low | (((qh[l] >> shift) & 3) << 4)) as i32 - 32;
            vals[half * 128 + l] = q(ql[l] & 0xf, 0);
            vals[half * 128 + l + 32] = q(ql[l + 32] & 0xf, 2);
            vals[half * 128 + l + 64] = q(ql[l] >> 4, 4);
            vals[half * 128 + l + 96] = q(ql[l + 32] >> 4, 6);
        }
    }
    vals
}

/// The integer sum of one Q6_K block with one Q8_K block: `sum_g scale_g * sum(q6 * q8)`.
pub fn block_dot_q6_k_q8_k(b: &[u8], y: &BlockQ8K) -> i32 {
    let vals = q6k_values(b);
    let mut sumi = 0i32;
    for g in 0..16 {
        let s: i32 = (0..16).map(|l| vals[g * 16 + l] * y.qs[g * 16 + l] as i32).sum();
        sumi += b[192 + g] as i8 as i32 * s;
    }
    sumi
}

/// A Q6_K row against Q8_K activations: each block's exact integer sum times `d_x d_y`, added
/// in block order as ggml's reference does.
pub fn dot_q6_k_q8_k(row: &[u8], y: &[BlockQ8K]) -> f32 {
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(Q6K_BYTES).zip(y) {
        sum += f16_to_f32(u16::from_le_bytes([b[208], b[209]])) * by.d * block_dot_q6_k_q8_k(b, by) as f32;
    }
    sum
}
