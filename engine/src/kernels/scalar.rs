//! Portable scalar kernels: the reference every SIMD kernel is tested against, and the code the
//! baseline tiers (rv64gc, x86-64) run. Written for clarity and ggml's order of operations.

use crate::quant::{BlockQ4_0, BlockQ8_0, QK, f16_to_f32};

pub fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| f16_to_f32(x) * f16_to_f32(y)).sum()
}

pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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
