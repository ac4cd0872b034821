//! Hot compute kernels and their per-tier dispatch. Each kernel has a scalar reference in
//! `scalar`; SIMD versions live in one module per instruction set and are chosen at compile time.
//!
//! A tier library is only loaded on CPUs with the tier's features (the launcher guarantees it),
//! so the choice is static: `cfg(hartlm_feature = "v")` for RVV (stable rustc keeps `v` out of
//! `target_feature`), `cfg(target_feature = ...)` on x86-64.

pub mod pack;
pub mod scalar;
pub mod tile;

#[cfg(target_arch = "riscv64")]
pub mod rvv;
#[cfg(target_arch = "x86_64")]
pub mod x86;
#[cfg(target_arch = "x86_64")]
pub mod x86_tile;

use crate::quant::{BlockQ4_0, BlockQ8_0};
use crate::tensor::Activation;
use pack::{ActivationAux, Packed};

/// Which implementation family this build dispatches to.
pub const BACKEND: &str = backend_name();

const fn backend_name() -> &'static str {
    if cfg!(all(target_arch = "riscv64", hartlm_feature = "v")) {
        "rvv"
    } else if cfg!(all(target_arch = "x86_64", target_feature = "avx512bw", target_feature = "avx512f")) {
        "avx512"
    } else if cfg!(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")) {
        "avx2"
    } else if cfg!(all(target_arch = "x86_64", target_feature = "ssse3")) {
        "ssse3"
    } else {
        "scalar"
    }
}

// One `dispatch!` per kernel: the body after `rvv =>` etc. runs when that backend is compiled in
// (`ssse3 =>`, optional, on x86-64-v2 builds).
macro_rules! dispatch {
    (
        rvv => $rvv:expr,
        avx512 => $avx512:expr,
        avx2 => $avx2:expr,
        $(ssse3 => $ssse3:expr,)?
        scalar => $scalar:expr $(,)?
    ) => {{
        #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
        {
            // SAFETY: V tiers are only loaded on CPUs with kernel-enabled V (see module docs).
            return unsafe { $rvv };
        }
        #[cfg(all(target_arch = "x86_64", target_feature = "avx512bw", target_feature = "avx512f"))]
        {
            // SAFETY: this build requires AVX-512F/BW, present on every CPU that loads it.
            return unsafe { $avx512 };
        }
        #[cfg(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma",
            not(all(target_feature = "avx512bw", target_feature = "avx512f"))
        ))]
        {
            // SAFETY: this build requires AVX2 and FMA, present on every CPU that loads it.
            return unsafe { $avx2 };
        }
        $(
            #[cfg(all(target_arch = "x86_64", target_feature = "ssse3", not(target_feature = "avx2")))]
            {
                // SAFETY: this build requires SSSE3 (tier x86-64-v2), present on every CPU
                // that loads it.
                return unsafe { $ssse3 };
            }
        )?
        #[allow(unreachable_code)]
        $scalar
    }};
}

/// `sum(a[i] * b[i])` over the shorter length.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    dispatch!(
        rvv => rvv::dot_f32(a, b),
        avx512 => x86::dot_f32_avx512(a, b),
        avx2 => x86::dot_f32_avx2(a, b),
        scalar => scalar::dot_f32(a, b),
    )
}

/// Dot product of Q4_0 weights with Q8_0 activations, block by block.
pub fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    dispatch!(
        rvv => rvv::dot_q4_0_q8_0(x, y),
        // A 512-bit version ran 3% slower on this project's Zen 4 host (16 MiB Q4_0 matvec, one
        // thread), whose AVX-512 units are 256 bits wide: the AVX2 kernel serves v4 too.
        avx512 => x86::dot_q4_0_q8_0_avx2(x, y),
        avx2 => x86::dot_q4_0_q8_0_avx2(x, y),
        ssse3 => x86::dot_q4_0_q8_0_ssse3(x, y),
        scalar => scalar::dot_q4_0_q8_0(x, y),
    )
}

/// One Q4_0 weight row with four Q8_0 activation rows; equal to four [`dot_q4_0_q8_0`] calls.
pub fn dot_q4_0_q8_0_x4(x: &[BlockQ4_0], y: [&[BlockQ8_0]; 4]) -> [f32; 4] {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    {
        // SAFETY: this build requires AVX2 and F16C, present on every CPU that loads it.
        return unsafe { x86::dot_q4_0_q8_0_x4_avx2(x, y) };
    }
    #[allow(unreachable_code)]
    y.map(|y| dot_q4_0_q8_0(x, y))
}

/// One Q8_0 weight row with four Q8_0 activation rows; equal to four [`dot_q8_0_q8_0`] calls.
pub fn dot_q8_0_q8_0_x4(x: &[BlockQ8_0], y: [&[BlockQ8_0]; 4]) -> [f32; 4] {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    {
        // SAFETY: this build requires AVX2 and F16C, present on every CPU that loads it.
        return unsafe { x86::dot_q8_0_q8_0_x4_avx2(x, y) };
    }
    #[allow(unreachable_code)]
    y.map(|y| dot_q8_0_q8_0(x, y))
}

/// A Q4_1 weight row (raw block bytes) with Q8_1 activations, block by block; bit-identical
/// to the scalar dot on every tier.
pub fn dot_q4_1_q8_1(row: &[u8], y: &[crate::tensor::BlockQ8_1]) -> f32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    {
        // SAFETY: this build requires AVX2, FMA and F16C, present on every CPU that loads it.
        return unsafe { x86::dot_q4_1_q8_1_avx2(row, y) };
    }
    #[allow(unreachable_code)]
    crate::tensor::dot_x_1_q8_1(crate::ggml_type::GgmlType::Q4_1, row, y)
}

/// A Q6_K weight row (raw block bytes) with Q8_K activations, block by block; bit-identical to
/// the scalar dot on every tier.
pub fn dot_q6_k_q8_k(row: &[u8], y: &[crate::tensor::BlockQ8K]) -> f32 {
    dispatch!(
        rvv => rvv::dot_q6_k_q8_k(row, y),
        avx512 => x86::dot_q6_k_q8_k_avx2(row, y),
        avx2 => x86::dot_q6_k_q8_k_avx2(row, y),
        scalar => scalar::dot_q6_k_q8_k(row, y),
    )
}

/// A Q4_K (`q5` false) or Q5_K weight row (raw block bytes) with Q8_K activations;
/// bit-identical to the scalar dot on every tier.
pub fn dot_k4_q8_k(q5: bool, row: &[u8], y: &[crate::tensor::BlockQ8K]) -> f32 {
    dispatch!(
        rvv => rvv::dot_k4_q8_k(q5, row, y),
        avx512 => x86::dot_k4_q8_k_avx2(q5, row, y),
        avx2 => x86::dot_k4_q8_k_avx2(q5, row, y),
        scalar => scalar::dot_k4_q8_k(q5, row, y),
    )
}

/// Dot product of Q8_0 weights with Q8_0 activations, block by block.
pub fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    dispatch!(
        rvv => rvv::dot_q8_0_q8_0(x, y),
        // A 512-bit version ran 3% slower on this project's Zen 4 host (16 MiB Q4_0 matvec, one
        // thread), whose AVX-512 units are 256 bits wide: the AVX2 kernel serves v4 too.
        avx512 => x86::dot_q8_0_q8_0_avx2(x, y),
        avx2 => x86::dot_q8_0_q8_0_avx2(x, y),
        ssse3 => x86::dot_q8_0_q8_0_ssse3(x, y),
        scalar => scalar::dot_q8_0_q8_0(x, y),
    )
}

/// Q8_0 activation quantization, bit-identical to `quant::quantize_row_q8_0` on every tier.
pub fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers are only loaded on CPUs with kernel-enabled V.
        return unsafe { rvv::quantize_row_q8_0(x, out) };
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "f16c"))]
    {
        // SAFETY: this build requires AVX2 and F16C, present on every CPU that loads it.
        return unsafe { x86::quantize_row_q8_0_avx2(x, out) };
    }
    #[allow(unreachable_code)]
    crate::quant::quantize_row_q8_0(x, out)
}

/// Q8_K activation quantization, bit-identical to `tensor::quantize_row_q8_k` on every tier.
pub fn quantize_row_q8_k(x: &[f32], out: &mut [crate::tensor::BlockQ8K]) {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers are only loaded on CPUs with kernel-enabled V.
        return unsafe { rvv::quantize_row_q8_k(x, out) };
    }
    #[allow(unreachable_code)]
    crate::tensor::quantize_row_q8_k(x, out)
}

/// `g[i] = silu(g[i]) * u[i]`, SwiGLU's gate. Vector tiers use a polynomial exp (selftest bounds
/// its error); the others libm's.
pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers are only loaded on CPUs with kernel-enabled V.
        return unsafe { rvv::silu_mul(g, u) };
    }
    #[allow(unreachable_code)]
    scalar::silu_mul(g, u)
}

/// ggml's RMSNorm, `out[i] = x[i] * scale * w[i]` with `scale = 1 / sqrt(mean(x^2) + eps)`,
/// the mean's squares rounded to f32 and summed in f64. Vector tiers sum in another order.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len().min(w.len()).min(out.len());
    let scale = rms_scale(&x[..n], eps);
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers run on CPUs with V; n floats of x and w are read, n of out written.
        return unsafe { rvv::scale_mul(x.as_ptr(), scale, w.as_ptr(), out.as_mut_ptr(), n) };
    }
    #[allow(unreachable_code)]
    scalar::scale_mul(x, scale, w, out)
}

/// [`rms_norm`] with `x` as its own output.
pub fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    let n = x.len().min(w.len());
    let scale = rms_scale(&x[..n], eps);
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers run on CPUs with V; element i is read before it is written.
        return unsafe { rvv::scale_mul(x.as_ptr(), scale, w.as_ptr(), x.as_mut_ptr(), n) };
    }
    #[allow(unreachable_code)]
    for (v, &g) in x.iter_mut().zip(w) {
        *v = *v * scale * g;
    }
}

fn rms_scale(x: &[f32], eps: f32) -> f32 {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    // SAFETY: V tiers run on CPUs with V.
    let sum = unsafe { rvv::sum_squares_f64(x) };
    #[cfg(not(all(target_arch = "riscv64", hartlm_feature = "v")))]
    let sum = scalar::sum_squares_f64(x);
    1.0 / ((sum / x.len() as f64) as f32 + eps).sqrt()
}

/// Softmax in place ([`scalar::softmax`]); vector tiers use the polynomial exp of [`silu_mul`]
/// and sum in another order.
pub fn softmax(x: &mut [f32]) {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers are only loaded on CPUs with kernel-enabled V.
        return unsafe { rvv::softmax(x) };
    }
    #[allow(unreachable_code)]
    scalar::softmax(x)
}

/// RoPE ([`scalar::rope`]), equal to the scalar reference bit for bit on every tier.
pub fn rope(x: &mut [f32], hd: usize, neox: bool, cos: &[f32], sin: &[f32]) {
    let half = cos.len().min(sin.len());
    assert!(2 * half <= hd, "rope: {half} pairs in a head of {hd}");
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        if half > 0 {
            for head in x.chunks_exact_mut(hd) {
                // SAFETY: V tiers run on CPUs with V; 2 half <= hd floats of the head are
                // rewritten, half of cos and sin read.
                unsafe { rvv::rope_head(head.as_mut_ptr(), neox, cos.as_ptr(), sin.as_ptr(), half) };
            }
        }
        return;
    }
    #[allow(unreachable_code)]
    scalar::rope(x, hd, neox, &cos[..half], &sin[..half])
}

/// `out[i] += a * v[i]`; vector tiers fuse the multiply-add (one rounding instead of two).
pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers are only loaded on CPUs with kernel-enabled V.
        return unsafe { rvv::axpy(out, a, v) };
    }
    #[allow(unreachable_code)]
    scalar::axpy(out, a, v)
}

/// [`scalar::axpy_rows`]: `out[j] += Σ_t p[t] * v[t * stride + j]` for rows `t < p.len()`. x86
/// keeps `out` in registers across the rows and equals the reference bit for bit; RVV runs
/// [`axpy`] per row (fused).
pub fn axpy_rows(out: &mut [f32], p: &[f32], v: &[f32], stride: usize) {
    let n = out.len();
    assert!(
        p.is_empty() || v.len() >= (p.len() - 1) * stride + n,
        "axpy_rows: {} rows of {n} at stride {stride} in {} floats",
        p.len(),
        v.len()
    );
    dispatch!(
        rvv => p.iter().enumerate().for_each(|(t, &a)| rvv::axpy(out, a, &v[t * stride..][..n])),
        avx512 => x86::axpy_rows_avx512(out, p, v.as_ptr(), stride),
        avx2 => x86::axpy_rows_avx2(out, p, v.as_ptr(), stride),
        scalar => scalar::axpy_rows(out, p, v, stride),
    )
}

/// `dst[i] = f16 src[i]` as f32 (exact on every tier).
pub fn f16_to_f32_row(src: &[u16], dst: &mut [f32]) {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers are only loaded on CPUs with kernel-enabled V (and zvfh ones with zvfh).
        return unsafe { rvv::f16_to_f32_row(src, dst) };
    }
    #[allow(unreachable_code)]
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = crate::quant::f16_to_f32(s);
    }
}

/// `sum(a[i] * b[i])` of two f16 vectors, in f32.
pub fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers are only loaded on CPUs with kernel-enabled V (and zvfh ones with zvfh).
        return unsafe { rvv::dot_f16(a, b) };
    }
    #[allow(unreachable_code)]
    scalar::dot_f16(a, b)
}

/// Rows per panel the matmul kernels of this build want weights packed into
/// ([`pack::Packed`]), or None when they multiply ggml's row layout directly.
pub fn panel_rows() -> Option<usize> {
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        return Some(rvv::vlenb());
    }
    #[allow(unreachable_code)]
    None
}

/// `out[i] = row i of panel p · act` for the rows of panel `p` that exist (`out` holds at least
/// that many). `aux` must come from `act`, whose type must be the one ggml pairs with `w.ty`.
pub fn panel_dot(w: &Packed, p: usize, act: &Activation, aux: &ActivationAux, out: &mut [f32]) {
    let n_out = w.panel_rows(p);
    let out = &mut out[..n_out];
    let panel = w.panel(p);
    let nb = w.blocks();
    if nb == 0 {
        out.fill(0.0);
        return;
    }
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    if w.r == rvv::vlenb() {
        let (q, stride) = match act {
            Activation::Q8_0(y) => (y.as_ptr().cast::<u8>().wrapping_add(2), size_of::<BlockQ8_0>()),
            Activation::Q8_1(y) => {
                (y.as_ptr().cast::<u8>().wrapping_add(4), size_of::<crate::tensor::BlockQ8_1>())
            }
            Activation::Q8K(y) => (y[0].qs.as_ptr().cast::<u8>(), size_of::<crate::tensor::BlockQ8K>()),
            _ => panic!("panel_dot: {} weights need a Q8_0, Q8_1 or Q8_K activation", w.ty),
        };
        let y = rvv::PanelInput {
            q: q.cast(),
            stride,
            d: aux.d.as_ptr(),
            corr: aux.corr.as_ptr(),
            s: aux.s.as_ptr(),
        };
        // SAFETY: V tiers only run on CPUs with V; the panel has r = vlenb rows and nb >= 1
        // columns, the activation and aux hold nb blocks, out holds n_out <= r floats.
        unsafe {
            match w.ty {
                crate::ggml_type::GgmlType::Q4_0 => rvv::panel_q4_0(panel, nb, &y, out.as_mut_ptr(), n_out),
                crate::ggml_type::GgmlType::Q4_1 => rvv::panel_q4_1(panel, nb, &y, out.as_mut_ptr(), n_out),
                crate::ggml_type::GgmlType::Q5_0 => rvv::panel_q5_0(panel, nb, &y, out.as_mut_ptr(), n_out),
                crate::ggml_type::GgmlType::Q5_1 => rvv::panel_q5_1(panel, nb, &y, out.as_mut_ptr(), n_out),
                crate::ggml_type::GgmlType::Q4K => rvv::panel_q4_k(panel, nb, &y, out.as_mut_ptr(), n_out),
                crate::ggml_type::GgmlType::Q5K => rvv::panel_q5_k(panel, nb, &y, out.as_mut_ptr(), n_out),
                crate::ggml_type::GgmlType::Q6K => rvv::panel_q6_k(panel, nb, &y, out.as_mut_ptr(), n_out),
                _ => rvv::panel_q8_0(panel, nb, &y, out.as_mut_ptr(), n_out),
            }
        }
        return;
    }
    if let Activation::Q8K(y) = act {
        for (i, o) in out.iter_mut().enumerate() {
            *o = pack::panel_row_dot_reference_k(w.ty, w.r, panel, i, y);
        }
        return;
    }
    let yq = pack::activation_quants(act);
    for (i, o) in out.iter_mut().enumerate() {
        *o = pack::panel_row_dot_reference(w.ty, w.r, panel, i, &yq, aux);
    }
}

/// LFM2's short convolution ([`scalar::ssm_conv`]): `x` is `k - 1 + t` time-major rows of `e`
/// channels (carried state, then the batch), `w` the `k` taps tap-major, `out` `t` rows.
/// Equal to the scalar reference on every tier.
pub fn ssm_conv(x: &[f32], w: &[f32], e: usize, out: &mut [f32]) {
    let (k, t) = (w.len() / e.max(1), out.len() / e.max(1));
    assert!(
        e > 0 && w.len() == k * e && out.len() == t * e && x.len() == (k + t).saturating_sub(1) * e,
        "ssm_conv: x {} / w {} / out {} floats for {e} channels",
        x.len(),
        w.len(),
        out.len()
    );
    if k == 0 || t == 0 {
        out.fill(0.0);
        return;
    }
    #[cfg(all(target_arch = "riscv64", hartlm_feature = "v"))]
    {
        // SAFETY: V tiers are only loaded on CPUs with V; the lengths were checked above.
        return unsafe { rvv::ssm_conv(x.as_ptr(), w.as_ptr(), e, k, t, out.as_mut_ptr()) };
    }
    #[allow(unreachable_code)]
    scalar::ssm_conv(x, w, e, out)
}
