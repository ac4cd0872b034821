//! Portable scalar row operations (activations, norms, softmax, RoPE, attention sums, ssm_conv):
//! the reference their SIMD kernels are tested against, and the code the baseline tiers run.
//! The quantized types' references live with the types (`crate::types`).

use crate::types::f16_to_f32;

pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    for (g, &u) in g.iter_mut().zip(u) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `sum(x[i] * x[i])`, each square rounded to f32 and summed in f64 (ggml's RMSNorm).
pub fn sum_squares_f64(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v * v) as f64).sum()
}

/// `x[i] = x[i] * s * w[i]`, [`scale_mul`] in place.
pub fn scale_mul_in_place(x: &mut [f32], s: f32, w: &[f32]) {
    for (v, &g) in x.iter_mut().zip(w) {
        *v = *v * s * g;
    }
}

/// `dst[i] = f16 src[i]` as f32.
pub fn f16_to_f32_row(src: &[u16], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16_to_f32(s);
    }
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

/// `out[t] = dot(q, k[t * stride..][..q.len()])` for every row `t < out.len()`.
pub fn dot_rows(q: &[f32], k: &[f32], stride: usize, out: &mut [f32]) {
    for (t, o) in out.iter_mut().enumerate() {
        *o = crate::types::float::dot_f32(&k[t * stride..][..q.len()], q);
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
