//! x86-64 prompt tiles (see `tile`): each weight row's four-byte groups are broadcast across
//! a vector whose lanes are eight tokens, so sums build up per (row, token) lane with no
//! horizontal reduction. Products use AVX-VNNI or AVX-512 VNNI `vpdpbusd` when the CPU has one
//! (probed at run time: neither x86-64-v3 nor v4 implies VNNI), else AVX2 `vpmaddubsw`.

use core::arch::x86_64::*;

use super::tile::{TOKENS, Tokens8Block};
use crate::ggml_type::GgmlType;

const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q8_0: u8 = 2;

/// # Safety
/// The CPU must support AVX2, FMA and F16C; every row must hold `y.len()` blocks of `ty`
/// (Q4_0, Q4_1 or Q8_0).
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn tile_4x8(ty: GgmlType, rows: [&[u8]; 4], y: &[Tokens8Block]) -> [[f32; TOKENS]; 4] {
    let w = match ty {
        GgmlType::Q4_0 => Q4_0,
        GgmlType::Q4_1 => Q4_1,
        _ => Q8_0,
    };
    macro_rules! by_type {
        ($f:ident) => {
            match w {
                Q4_0 => $f::<Q4_0>(rows, y),
                Q4_1 => $f::<Q4_1>(rows, y),
                _ => $f::<Q8_0>(rows, y),
            }
        };
    }
    // SAFETY: the caller guarantees the rows and the base features; the VNNI variants run only
    // where their extension was detected.
    unsafe {
        if std::arch::is_x86_feature_detected!("avxvnni") {
            by_type!(tile_avx_vnni)
        } else if std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            by_type!(tile_avx512_vnni)
        } else {
            by_type!(tile_avx2)
        }
    }
}

/// `sum over g of x[g] * y[g]` per token lane, `x[g]` four unsigned bytes (at most 15 each),
/// `y[g]` the tokens' four signed bytes of group g.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sum_u4_avx2(x: &[i32; 8], y: *const __m256i) -> __m256i {
    // Each i16 lane gathers 2 * 8 products of at most 15 * 128: below 2^15, so the adds are exact.
    let mut a = _mm256_setzero_si256();
    for (g, &x) in x.iter().enumerate() {
        // SAFETY: the caller guarantees eight aligned vectors at y.
        a = _mm256_add_epi16(
            a,
            _mm256_maddubs_epi16(_mm256_set1_epi32(x), unsafe { _mm256_load_si256(y.add(g)) }),
        );
    }
    _mm256_madd_epi16(a, _mm256_set1_epi16(1))
}

/// As [`sum_u4_avx2`] for signed weight bytes (their sign moves onto the activations).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sum_i8_avx2(x: &[i32; 8], y: *const __m256i) -> __m256i {
    let mut a = _mm256_setzero_si256();
    for (g, &x) in x.iter().enumerate() {
        let x = _mm256_set1_epi32(x);
        // SAFETY: the caller guarantees eight aligned vectors at y.
        let y = unsafe { _mm256_load_si256(y.add(g)) };
        // Pair sums stay within i16: |x| <= 128 and |y| <= 127.
        let p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        a = _mm256_add_epi32(a, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    }
    a
}

macro_rules! vnni_sums {
    ($u4:ident, $i8:ident, $features:literal, $dpbusd:ident) => {
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $u4(x: &[i32; 8], y: *const __m256i) -> __m256i {
            let mut a = _mm256_setzero_si256();
            for (g, &x) in x.iter().enumerate() {
                // SAFETY: the caller guarantees eight aligned vectors at y.
                a = $dpbusd(a, _mm256_set1_epi32(x), unsafe { _mm256_load_si256(y.add(g)) });
            }
            a
        }

        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $i8(x: &[i32; 8], y: *const __m256i) -> __m256i {
            let mut a = _mm256_setzero_si256();
            for (g, &x) in x.iter().enumerate() {
                let x = _mm256_set1_epi32(x);
                // SAFETY: the caller guarantees eight aligned vectors at y.
                let y = unsafe { _mm256_load_si256(y.add(g)) };
                a = $dpbusd(a, _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
            }
            a
        }
    };
}

vnni_sums!(sum_u4_avx_vnni, sum_i8_avx_vnni, "avx2,avxvnni", _mm256_dpbusd_avx_epi32);
vnni_sums!(sum_u4_avx512_vnni, sum_i8_avx512_vnni, "avx2,avx512vnni,avx512vl", _mm256_dpbusd_epi32);

/// The 32 nibbles of 16 packed bytes as unsigned bytes in element order (low nibbles first),
/// as eight four-byte groups.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn nibble_groups(p: *const u8) -> [i32; 8] {
    // SAFETY: the caller guarantees 16 readable bytes at p.
    let packed = unsafe { _mm_loadu_si128(p.cast()) };
    let m = _mm_set1_epi8(0x0f);
    let v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), m), _mm_and_si128(packed, m));
    let mut g = [0i32; 8];
    // SAFETY: `g` holds exactly 32 bytes.
    unsafe { _mm256_storeu_si256(g.as_mut_ptr().cast(), v) };
    g
}

/// The f16 at `p[k] + at` of each of four rows, as f32.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn f16_x4(p: [*const u8; 4], at: usize) -> [f32; 4] {
    // SAFETY: the caller guarantees two readable bytes at each p[k] + at.
    let h = p.map(|p| unsafe { p.add(at).cast::<i16>().read_unaligned() });
    let mut o = [0.0f32; 4];
    // SAFETY: `o` holds exactly four f32.
    unsafe { _mm_storeu_ps(o.as_mut_ptr(), _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, h[3], h[2], h[1], h[0]))) };
    o
}

macro_rules! tile_fn {
    ($name:ident, $features:literal, $sum_u4:ident, $sum_i8:ident) => {
        /// # Safety
        /// The CPU must support the enabled features; every row holds `y.len()` blocks.
        #[target_feature(enable = $features)]
        unsafe fn $name<const W: u8>(rows: [&[u8]; 4], y: &[Tokens8Block]) -> [[f32; TOKENS]; 4] {
            let bb = match W {
                Q4_0 => 18,
                Q4_1 => 20,
                _ => 34,
            };
            let mut acc = [_mm256_setzero_ps(); 4];
            for (j, yb) in y.iter().enumerate() {
                // SAFETY: Tokens8Block is 32-byte aligned with qs first (eight 32-byte groups)
                // and d/s/sum8 at 32-byte aligned offsets; each row holds block j (caller).
                unsafe {
                    let ys = yb.qs.as_ptr().cast::<__m256i>();
                    let dy = _mm256_load_ps(yb.d.as_ptr());
                    let x = rows.map(|r| r.as_ptr().add(j * bb));
                    let dx = f16_x4(x, 0);
                    let mx = if W == Q4_1 { f16_x4(x, 2) } else { dx };
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let mut sumi = if W == Q8_0 {
                            $sum_i8(&x[i].add(2).cast::<[i32; 8]>().read_unaligned(), ys)
                        } else {
                            $sum_u4(&nibble_groups(x[i].add(bb - 16)), ys)
                        };
                        if W == Q4_0 {
                            sumi = _mm256_sub_epi32(sumi, _mm256_load_si256(yb.sum8.as_ptr().cast()));
                        }
                        let sumf = _mm256_cvtepi32_ps(sumi);
                        let dxi = _mm256_set1_ps(dx[i]);
                        let t = match W {
                            Q4_0 => _mm256_mul_ps(_mm256_mul_ps(sumf, dxi), dy),
                            Q4_1 => _mm256_add_ps(
                                _mm256_mul_ps(_mm256_mul_ps(dxi, dy), sumf),
                                _mm256_mul_ps(_mm256_set1_ps(mx[i]), _mm256_load_ps(yb.s.as_ptr())),
                            ),
                            _ => _mm256_mul_ps(sumf, _mm256_mul_ps(dxi, dy)),
                        };
                        *acc = _mm256_add_ps(*acc, t);
                    }
                }
            }
            acc.map(|a| {
                let mut o = [0.0f32; TOKENS];
                // SAFETY: `o` holds exactly eight f32.
                unsafe { _mm256_storeu_ps(o.as_mut_ptr(), a) };
                o
            })
        }
    };
}

tile_fn!(tile_avx2, "avx2,fma,f16c", sum_u4_avx2, sum_i8_avx2);
tile_fn!(tile_avx_vnni, "avx2,fma,f16c,avxvnni", sum_u4_avx_vnni, sum_i8_avx_vnni);
tile_fn!(tile_avx512_vnni, "avx2,fma,f16c,avx512vnni,avx512vl", sum_u4_avx512_vnni, sum_i8_avx512_vnni);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tile::{Tokens8, tile_4x8_reference};
    use crate::selftest::{Rng, random_quant_row};
    use crate::tensor::Activation;

    /// Every instruction-set variant the host has equals the scalar reference exactly.
    #[test]
    fn every_tile_variant_the_host_has_matches_the_reference() {
        let has = |f: &[&str]| {
            f.iter().all(|f| match *f {
                "avx2" => {
                    is_x86_feature_detected!("avx2")
                        && is_x86_feature_detected!("fma")
                        && is_x86_feature_detected!("f16c")
                }
                "avxvnni" => is_x86_feature_detected!("avxvnni"),
                _ => is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl"),
            })
        };
        type Tile = unsafe fn([&[u8]; 4], &[Tokens8Block]) -> [[f32; TOKENS]; 4];
        let variants: [(&str, &[&str], [Tile; 3]); 3] = [
            ("avx2", &["avx2"], [tile_avx2::<Q4_0>, tile_avx2::<Q4_1>, tile_avx2::<Q8_0>]),
            (
                "avx-vnni",
                &["avx2", "avxvnni"],
                [tile_avx_vnni::<Q4_0>, tile_avx_vnni::<Q4_1>, tile_avx_vnni::<Q8_0>],
            ),
            (
                "avx512-vnni",
                &["avx2", "avx512vnni"],
                [tile_avx512_vnni::<Q4_0>, tile_avx512_vnni::<Q4_1>, tile_avx512_vnni::<Q8_0>],
            ),
        ];
        let mut rng = Rng::new(5);
        for (k, ty) in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0].into_iter().enumerate() {
            for nb in [1, 4, 9, 33] {
                let rows: Vec<Vec<u8>> = (0..4).map(|_| random_quant_row(ty, nb, &mut rng)).collect();
                let acts: Vec<Activation> =
                    (0..TOKENS).map(|_| Activation::new(ty, &rng.vec(nb * 32))).collect();
                let y = Tokens8::new(&acts).unwrap();
                let r = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
                let want = tile_4x8_reference(ty, r, &y);
                for (name, needs, f) in &variants {
                    if has(needs) {
                        // SAFETY: the variant's features were detected just above.
                        let got = unsafe { f[k](r, &y.0) };
                        assert_eq!(got, want, "{name} {ty} {nb} blocks");
                    }
                }
            }
        }
    }
}
