//! Q4_K and Q5_K, the 256-element super-blocks with eight 6-bit scales and mins: `w = d * sc * q
//! - dmin * m`, Q5_K adding a fifth bit per value; multiplied with Q8_K activations.

use super::{BlockQ8K, GgmlType, QK_K, TypeTraits, dot_on, f16_at, f16_to_f32, q8_k};

pub const Q4_K: TypeTraits = TypeTraits {
    ty: GgmlType::Q4K,
    id: 12,
    name: "Q4_K",
    block_len: QK_K,
    block_bytes: k4_block_bytes(false),
    dequantize: |row, out| dequantize(false, row, out),
    activation_reference: q8_k::activation_reference,
    dot_reference: dot_on!(Q8K, |row: &[u8], y: &[BlockQ8K]| dot_k4_q8_k(false, row, y)),
    quantize: None,
};

pub const Q5_K: TypeTraits = TypeTraits {
    ty: GgmlType::Q5K,
    id: 13,
    name: "Q5_K",
    block_len: QK_K,
    block_bytes: k4_block_bytes(true),
    dequantize: |row, out| dequantize(true, row, out),
    activation_reference: q8_k::activation_reference,
    dot_reference: dot_on!(Q8K, |row: &[u8], y: &[BlockQ8K]| dot_k4_q8_k(true, row, y)),
    quantize: None,
};

/// Bytes of one Q4_K block (d, dmin, 12 bytes of 6-bit scales and mins, 128 nibble bytes) and
/// of one Q5_K block (the same with 32 bytes of high bits before the nibbles).
pub const fn k4_block_bytes(q5: bool) -> usize {
    if q5 { 176 } else { 144 }
}

fn dequantize(q5: bool, row: &[u8], out: &mut [f32]) {
    for (b, y) in row.chunks_exact(k4_block_bytes(q5)).zip(out.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let vals = k4_values(q5, b);
        for (sub, (ys, vs)) in y.chunks_exact_mut(32).zip(vals.chunks_exact(32)).enumerate() {
            let (sc, m) = scale_min_k4(sub, &b[4..16]);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            for (o, &v) in ys.iter_mut().zip(vs) {
                *o = dl * v as f32 - ml;
            }
        }
    }
}

/// Q4_K/Q5_K 6-bit scale and min of sub-block `j` (ggml's `get_scale_min_k4`).
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// All eight scales and eight mins of a Q4_K/Q5_K block at once, as [`scale_min_k4`] gives
/// them one by one: ggml's 32-bit mask shuffle of the 12 packed bytes.
pub fn k4_scales_mins(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let w = |i: usize| u32::from_le_bytes(q[4 * i..4 * i + 4].try_into().unwrap());
    let (low6, low4, top2) = (0x3f3f_3f3f, 0x0f0f_0f0f, 0x0303_0303);
    let sc = [w(0) & low6, (w(2) & low4) | ((w(0) >> 6) & top2) << 4];
    let mn = [w(1) & low6, ((w(2) >> 4) & low4) | ((w(1) >> 6) & top2) << 4];
    let bytes = |v: [u32; 2]| {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&v[0].to_le_bytes());
        out[4..].copy_from_slice(&v[1].to_le_bytes());
        out
    };
    (bytes(sc), bytes(mn))
}

/// The unscaled 4-bit (Q4_K) or 5-bit (Q5_K) values of a block, in element order; sub-block
/// `s` of 32 uses scale and min `scale_min_k4(s)`.
pub fn k4_values(q5: bool, b: &[u8]) -> [i32; QK_K] {
    let (qh, ql) = if q5 { (&b[16..48], &b[48..176]) } else { (&[][..], &b[16..144]) };
    let mut vals = [0; QK_K];
    for chunk in 0..4 {
        let q = &ql[chunk * 32..chunk * 32 + 32];
        for l in 0..32 {
            let (mut lo, mut hi) = ((q[l] & 0xf) as i32, (q[l] >> 4) as i32);
            if q5 {
                lo += if qh[l] & (1 << (2 * chunk)) != 0 { 16 } else { 0 };
                hi += if qh[l] & (2 << (2 * chunk)) != 0 { 16 } else { 0 };
            }
            vals[chunk * 64 + l] = lo;
            vals[chunk * 64 + 32 + l] = hi;
        }
    }
    vals
}

/// `sum_s min_s * (bsums[2s] + bsums[2s + 1])` of one Q4_K/Q5_K block: the activation sums
/// its mins multiply.
pub fn k4_mins(b: &[u8], y: &BlockQ8K) -> i32 {
    (0..8)
        .map(|s| scale_min_k4(s, &b[4..16]).1 as i32 * (y.bsums[2 * s] as i32 + y.bsums[2 * s + 1] as i32))
        .sum()
}

/// A Q4_K (`q5` false) or Q5_K row against Q8_K activations: per block the exact integer sum
/// `sum_s scale_s * sum(q * q8)` and the mins term, combined in f32 in block order as ggml does.
pub fn dot_k4_q8_k(q5: bool, row: &[u8], y: &[BlockQ8K]) -> f32 {
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(k4_block_bytes(q5)).zip(y) {
        let vals = k4_values(q5, b);
        let sumi: i32 = (0..8)
            .map(|s| {
                let v: i32 = (0..32).map(|l| vals[s * 32 + l] * by.qs[s * 32 + l] as i32).sum();
                scale_min_k4(s, &b[4..16]).0 as i32 * v
            })
            .sum();
        sum += k4_combine(b, by, sumi, k4_mins(b, by));
    }
    sum
}

/// One Q4_K/Q5_K block's contribution from its integer sums, in ggml's f32 order.
pub fn k4_combine(b: &[u8], y: &BlockQ8K, sumi: i32, mins: i32) -> f32 {
    let f16 = |at: usize| f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]));
    f16(0) * y.d * sumi as f32 - f16(2) * y.d * mins as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k4_scales_mins_unpacks_as_scale_min_k4_does() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            let q: [u8; 12] = std::array::from_fn(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            });
            let (sc, mn) = k4_scales_mins(&q);
            for j in 0..8 {
                assert_eq!((sc[j], mn[j]), scale_min_k4(j, &q), "{q:?} sub-block {j}");
            }
        }
    }
}
