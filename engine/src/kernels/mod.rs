//! Hot compute kernels and their per-tier dispatch. Each kernel has a scalar reference in
//! `scalar`; SIMD versions live in one module per instruction set and are chosen at compile time.
//!
//! A tier library is only loaded on CPUs with the tier's features (the launcher guarantees it),
//! so the choice is static: `cfg(hartlm_feature = "v")` for RVV (stable rustc keeps `v` out of
//! `target_feature`), `cfg(target_feature = ...)` on x86-64.

pub mod scalar;

#[cfg(target_arch = "riscv64")]
pub mod rvv;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use crate::quant::{BlockQ4_0, BlockQ8_0};

/// Which implementation family this build dispatches to.
pub const BACKEND: &str = backend_name();

const fn backend_name() -> &'static str {
    if cfg!(all(target_arch = "riscv64", hartlm_feature = "v")) {
        "rvv"
    } else if cfg!(all(target_arch = "x86_64", target_feature = "avx512bw", target_feature = "avx512f")) {
        "avx512"
    } else if cfg!(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")) {
        "avx2"
    } else {
        "scalar"
    }
}

// One `dispatch!` per kernel: the body after `rvv =>` etc. runs when that backend is compiled in.
macro_rules! dispatch {
    (rvv => $rvv:expr, avx512 => $avx512:expr, avx2 => $avx2:expr, scalar => $scalar:expr $(,)?) => {{
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
        avx512 => x86::dot_q4_0_q8_0_avx512(x, y),
        avx2 => x86::dot_q4_0_q8_0_avx2(x, y),
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

/// Dot product of Q8_0 weights with Q8_0 activations, block by block.
pub fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    dispatch!(
        rvv => rvv::dot_q8_0_q8_0(x, y),
        avx512 => x86::dot_q8_0_q8_0_avx512(x, y),
        avx2 => x86::dot_q8_0_q8_0_avx2(x, y),
        scalar => scalar::dot_q8_0_q8_0(x, y),
    )
}
