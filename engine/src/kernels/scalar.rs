//! Portable scalar kernels: the reference every SIMD kernel is tested against, and the code the
//! baseline tiers (rv64gc, x86-64) run. Written for clarity and ggml's order of operations.

use crate::quant::{BlockQ4_0, BlockQ8_0, QK, f16_to_f32};
use crate::tensor::{BlockQ8K, QK_K};

/// Bytes of one Q6_K block: 128 low nibbles, 64 bytes of high bit pairs, 16 i8 scales, f16 d.
pub const Q6K_BYTES: usize = 210;

pub fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| f16_to_f32(x) * f16_to_f32(y)).sum()
}

pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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

/// Bytes of one Q4_K block (d, dmin, 12 bytes of 6-bit scales and mins, 128 nibble bytes) and
/// of one Q5_K block (the same with 32 bytes of high bits before the nibbles).
pub const fn k4_block_bytes(q5: bool) -> usize {
    if q5 { 176 } else { 144 }
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

pub fn block_dot_q8_0_q8_0(x: &BlockQ8_0, y: &BlockQ8_0) -> i32 {
    x.qs.iter().zip(&y.qs).map(|(&a, &b)| a as i32 * b as i32).sum()
}

pub fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    x.iter()
        .zip(y)
        .map(|(bx, by)| block_dot_q4_0_q8_0(bx, by) as f32 * f16_to_f32(bx.d) * f16_to_f32(by.d))
        .sum()
}

pub fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    x.iter()
        .zip(y)
        .map(|(bx, by)| block_dot_q8_0_q8_0(bx, by) as f32 * (f16_to_f32(bx.d) * f16_to_f32(by.d)))
        .sum()
}

pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    for (g, &u) in g.iter_mut().zip(u) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `sum(x[i] * x[i])`, each square rounded to f32 and summed in f64 (ggml's RMSNorm).
pub fn sum_squares_f64(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v * v) as f64).sum()
}

/// `sum(x[i])` in f64.
pub fn sum_f64(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64).sum()
}

/// `out[i] = x[i] * s * w[i]`, RMSNorm's scaling (in that order).
pub fn scale_mul(x: &[f32], s: f32, w: &[f32], out: &mut [f32]) {
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * s * g;
    }
}

/// Softmax in place as ggml computes it: subtract the maximum, exp, divide by the f64 sum.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in x.iter_mut() {
        *v = (*v - max).exp();
    }
    let inv = (1.0 / sum_f64(x)) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Rotates the first `cos.len()` pairs of every `hd`-wide head of `x` by the angles whose
/// cosines and sines are given: pairs `(i, i + cos.len())` in NeoX order, `(2i, 2i + 1)`
/// otherwise.
pub fn rope(x: &mut [f32], hd: usize, neox: bool, cos: &[f32], sin: &[f32]) {
    let half = cos.len();
    for head in x.chunks_exact_mut(hd) {
        for (i, (&c, &s)) in cos.iter().zip(sin).enumerate() {
            let (a, b) = if neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * c - x1 * s;
            head[b] = x0 * s + x1 * c;
        }
    }
}

/// `out[i] += a * v[i]`, attention's value accumulation.
pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    for (o, &v) in out.iter_mut().zip(v) {
        *o += a * v;
    }
}

/// `out[j] += Σ_t p[t] * v[t * stride + j]`: one [`axpy`] per row t, in row order (attention's
/// probability-weighted sum of value rows).
pub fn axpy_rows(out: &mut [f32], p: &[f32], v: &[f32], stride: usize) {
    let n = out.len();
    for (t, &a) in p.iter().enumerate() {
        axpy(out, a, &v[t * stride..][..n]);
    }
}

/// ggml's `ssm_conv` (LFM2's depthwise causal convolution) in the time-major layout: `x` holds
/// `k - 1 + t` rows of `e` channels (the carried state, then the batch), `w` the `k` taps
/// tap-major (`w[j * e + c]`; the last tap multiplies the current token), and output row `i` is
/// `Σ_j w[j] ⊙ x[i + j]`, summed from the first tap with [`madd`].
pub fn ssm_conv(x: &[f32], w: &[f32], e: usize, out: &mut [f32]) {
    for (i, o) in out.chunks_exact_mut(e).enumerate() {
        for (j, wr) in w.chunks_exact(e).enumerate() {
            let xr = &x[(i + j) * e..][..e];
            if j == 0 {
                o.iter_mut().zip(wr.iter().zip(xr)).for_each(|(o, (w, x))| *o = w * x);
            } else {
                o.iter_mut().zip(wr.iter().zip(xr)).for_each(|(o, (w, x))| *o = madd(*w, *x, *o));
            }
        }
    }
}

/// `a * b + c`, fused where the ISA has a fused multiply-add (RV64GC's F/D, x86-64-v3 and up),
/// which the RVV kernels use too. x86-64 v1/v2 round twice instead: a fused result there is a
/// call to libm's `fmaf`, measured 3.5x slower than upstream's unfused loop.
#[inline(always)]
pub fn madd(a: f32, b: f32, c: f32) -> f32 {
    if cfg!(any(target_arch = "riscv64", target_feature = "fma")) { a.mul_add(b, c) } else { a * b + c }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selftest::Rng;

    #[test]
    fn k4_scales_mins_unpacks_as_scale_min_k4_does() {
        let mut rng = Rng::new(11);
        for _ in 0..200 {
            let q: [u8; 12] = std::array::from_fn(|_| rng.next_u64() as u8);
            let (sc, mn) = k4_scales_mins(&q);
            for j in 0..8 {
                assert_eq!((sc[j], mn[j]), scale_min_k4(j, &q), "{q:?} sub-block {j}");
            }
        }
    }
}
