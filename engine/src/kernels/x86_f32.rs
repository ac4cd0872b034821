//! x86-64 AVX2 kernels of the forward pass's f32 row work: softmax and SwiGLU's gate with ggml's
//! polynomial exp (as the RVV kernels), and attention's scores, one query against many key rows.

use core::arch::x86_64::*;

use crate::types::float;

/// `exp(x)` for `x` in [-87, 88] (callers clamp): ggml's `ggml_v_expf` polynomial, within 2 ulp
/// of expf, with the constants of the RVV kernels. In that range 2^n built from exponent bits is
/// a normal float, so ggml's path for large |n| is never needed.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp_clamped(x: __m256) -> __m256 {
    let c = |bits: u32| _mm256_set1_ps(f32::from_bits(bits));
    let r = c(0x4b40_0000);
    // z = r + x log2(e); n = z - r; b = x - n ln2 (in two parts)
    let z = _mm256_fmadd_ps(x, c(0x3fb8_aa3b), r);
    let n = _mm256_sub_ps(z, r);
    let b = _mm256_fnmadd_ps(n, c(0x35bf_be8e), _mm256_fnmadd_ps(n, c(0x3f31_7200), x));
    // k = 2^n from the integer bits of z
    let k = _mm256_castsi256_ps(_mm256_add_epi32(
        _mm256_slli_epi32(_mm256_castps_si256(z), 23),
        _mm256_set1_epi32(0x3f80_0000),
    ));
    let u = _mm256_mul_ps(b, b);
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(
            _mm256_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
            u,
            _mm256_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
        ),
        u,
        _mm256_mul_ps(c(0x3f7f_fff6), b),
    );
    _mm256_fmadd_ps(j, k, k)
}

/// Applies `f` to `x` eight floats at a time, with the index of the first; the last
/// `x.len() % 8` go through a zero-padded copy, so no load or store passes the end.
#[inline]
#[target_feature(enable = "avx2")]
fn map8(x: &mut [f32], mut f: impl FnMut(__m256, usize) -> __m256) {
    let mut chunks = x.chunks_exact_mut(8);
    let mut at = 0;
    for c in &mut chunks {
        // SAFETY: c is exactly 8 floats.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), f(_mm256_loadu_ps(c.as_ptr()), at)) };
        at += 8;
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut buf = [0.0; 8];
        buf[..tail.len()].copy_from_slice(tail);
        // SAFETY: buf is 8 floats.
        unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), f(_mm256_loadu_ps(buf.as_ptr()), at)) };
        tail.copy_from_slice(&buf[..tail.len()]);
    }
}

/// Softmax in place as `rvv::softmax`: the maximum, [`exp_clamped`] of `x - max` (clamped below
/// at -87, where exp is below 2^-125 of the largest term), the f64 sum, one scaling pass.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn softmax_avx2(x: &mut [f32]) {
    let n = x.len();
    let chunks = x.chunks_exact(8);
    let tail_max = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let top = chunks.fold(_mm256_set1_ps(f32::NEG_INFINITY), |m, c| {
        // SAFETY: each chunk is exactly 8 floats.
        _mm256_max_ps(m, unsafe { _mm256_loadu_ps(c.as_ptr()) })
    });
    let max = _mm256_set1_ps(lanes(top).iter().fold(tail_max, |m, &v| m.max(v)));
    let lo = _mm256_set1_ps(-87.0);
    let mut sum = [_mm256_setzero_pd(); 2];
    map8(x, |v, at| {
        let e = exp_clamped(_mm256_max_ps(_mm256_sub_ps(v, max), lo));
        // Padding lanes of the last eight are left out of the sum.
        let live = _mm256_cmpgt_epi32(
            _mm256_set1_epi32((n - at).min(8) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        let kept = _mm256_and_ps(e, _mm256_castsi256_ps(live));
        sum[0] = _mm256_add_pd(sum[0], _mm256_cvtps_pd(_mm256_castps256_ps128(kept)));
        sum[1] = _mm256_add_pd(sum[1], _mm256_cvtps_pd(_mm256_extractf128_ps(kept, 1)));
        e
    });
    let mut total = [0.0f64; 4];
    // SAFETY: total is 4 doubles.
    unsafe { _mm256_storeu_pd(total.as_mut_ptr(), _mm256_add_pd(sum[0], sum[1])) };
    let inv = _mm256_set1_ps((1.0 / total.iter().sum::<f64>()) as f32);
    map8(x, |v, _| _mm256_mul_ps(v, inv));
}

#[inline]
#[target_feature(enable = "avx")]
fn lanes(v: __m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    // SAFETY: out is 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
    out
}

/// `g[i] = silu(g[i]) * u[i]` as `rvv::silu_mul`: [`exp_clamped`] of `-g` clamped to [-87, 88],
/// where silu is already 0 or x to f32 precision.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn silu_mul_avx2(g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    let (lo, hi, one) = (_mm256_set1_ps(-87.0), _mm256_set1_ps(88.0), _mm256_set1_ps(1.0));
    map8(&mut g[..n], |x, at| {
        let uv = if at + 8 <= n {
            // SAFETY: at + 8 <= n <= u.len().
            unsafe { _mm256_loadu_ps(u.as_ptr().add(at)) }
        } else {
            let mut tail = [0.0f32; 8];
            tail[..n - at].copy_from_slice(&u[at..n]);
            // SAFETY: tail is 8 floats.
            unsafe { _mm256_loadu_ps(tail.as_ptr()) }
        };
        let e = exp_clamped(_mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), lo), hi));
        _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), uv)
    });
}

/// `out[t] = Σ_j q[j] k[t stride + j]` for `t < out.len()`, `j < q.len()`: eight key rows at a
/// time, each with its own accumulator, so the eight horizontal sums share one reduction.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and `k` must hold `(out.len() - 1) * stride + q.len()`
/// floats when `out` is not empty.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_rows_avx2(q: &[f32], k: *const f32, stride: usize, out: &mut [f32]) {
    let hd = q.len();
    let full = hd - hd % 8;
    let mut t = 0;
    while t + 8 <= out.len() {
        let mut acc = [_mm256_setzero_ps(); 8];
        for j in (0..full).step_by(8) {
            // SAFETY: j + 8 <= hd, and rows t..t + 8 lie inside k by the caller's contract.
            unsafe {
                let qv = _mm256_loadu_ps(q.as_ptr().add(j));
                for (i, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(_mm256_loadu_ps(k.add((t + i) * stride + j)), qv, *acc);
                }
            }
        }
        // Pairwise adds leave lane i of the low half with row i's sums of its lanes 0-3 and
        // lane i of the high half with those of lanes 4-7.
        let s0123 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
        let s4567 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
        let sums = _mm256_add_ps(
            _mm256_permute2f128_ps(s0123, s4567, 0x20),
            _mm256_permute2f128_ps(s0123, s4567, 0x31),
        );
        // SAFETY: t + 8 <= out.len().
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(t), sums) };
        if full < hd {
            for (i, o) in out[t..t + 8].iter_mut().enumerate() {
                // SAFETY: row t + i's last hd - full floats lie inside k by the contract.
                let row = unsafe { std::slice::from_raw_parts(k.add((t + i) * stride + full), hd - full) };
                *o += float::dot_f32(row, &q[full..]);
            }
        }
        t += 8;
    }
    for (t, o) in out.iter_mut().enumerate().skip(t) {
        // SAFETY: row t lies inside k by the caller's contract.
        let row = unsafe { std::slice::from_raw_parts(k.add(t * stride), hd) };
        // SAFETY: AVX2 and FMA by this fn's contract.
        *o = unsafe { super::x86::dot_f32_avx2(row, q) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::scalar;
    use crate::testdata::Rng;

    /// Against the scalar references where the host has AVX2 and FMA (`selftest` checks every
    /// tier the same way, with its tolerances): lengths around the eight-float step.
    #[test]
    fn avx2_row_kernels_are_close_to_the_scalar_references() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        let mut rng = Rng::new(7);
        let close = |g: f32, w: f32, scale: f32| (g - w).abs() <= 1e-5 * scale.max(w.abs()) + 1e-37;
        for n in [1, 7, 8, 9, 64, 65, 200] {
            let x: Vec<f32> = rng.vec(n).iter().map(|v| v * 30.0).collect();
            let (mut got, mut want) = (x.clone(), x.clone());
            // SAFETY: AVX2 and FMA were detected at run time.
            unsafe { softmax_avx2(&mut got) };
            scalar::softmax(&mut want);
            assert!(got.iter().zip(&want).all(|(&g, &w)| close(g, w, w)), "softmax {n}: {got:?} vs {want:?}");

            let u = rng.vec(n);
            let (mut got, mut want) = (x.clone(), x.clone());
            // SAFETY: as above.
            unsafe { silu_mul_avx2(&mut got, &u) };
            scalar::silu_mul(&mut want, &u);
            assert!(
                got.iter().zip(&want).all(|(&g, &w)| close(g, w, w)),
                "silu_mul {n}: {got:?} vs {want:?}"
            );

            for rows in [1, 8, 11, 16] {
                let stride = n + 3;
                let (q, k) = (rng.vec(n), rng.vec((rows - 1) * stride + n));
                let (mut got, mut want) = (vec![f32::NAN; rows], vec![0.0; rows]);
                // SAFETY: as above; k holds (rows - 1) * stride + n floats.
                unsafe { dot_rows_avx2(&q, k.as_ptr(), stride, &mut got) };
                scalar::dot_rows(&q, &k, stride, &mut want);
                let scale = n as f32;
                assert!(
                    got.iter().zip(&want).all(|(&g, &w)| close(g, w, scale)),
                    "dot_rows {n}x{rows}: {got:?} vs {want:?}"
                );
            }
        }
    }
}
