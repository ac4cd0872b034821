//! x86-64 SIMD kernels (SSSE3 for x86-64-v2, AVX2+FMA v3, AVX-512F/BW v4): row dots and the word-panel
//! products of token generation; `#[target_feature]` functions on every x86-64 build, so host tests run them.

use core::arch::x86_64::*;

use super::pack::{ActivationAux, Layout, Packed, panel_dot_reference, words_column};
use crate::types::{Activation, BlockQ4_0, BlockQ8_0, BlockQ8_1, BlockQ8K, GgmlType, f16_to_f32};

#[inline]
#[target_feature(enable = "avx2")]
fn hsum256(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads 8 floats starting at i, with i + 8 <= n checked by the loops.
    unsafe {
        while i + 32 <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                let off = i + 8 * k;
                *acc = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(off)), _mm256_loadu_ps(pb.add(off)), *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
            i += 8;
        }
    }
    let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum256(v) + crate::types::float::dot_f32(&a[i..n], &b[i..n])
}

/// 32 signed bytes of `x` times 32 signed bytes of `y`, as eight i32 partial sums.
#[inline]
#[target_feature(enable = "avx2")]
fn mul_sum_i8_pairs(x: __m256i, y: __m256i) -> __m256i {
    // maddubs needs one unsigned operand: move x's sign onto y. |x| <= 128 and the pair sums
    // stay within i16 because Q8_0 values lie in [-127, 127].
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
}

/// The 32 nibbles of 16 packed bytes as unsigned bytes in [0, 15], in element order.
#[inline]
#[target_feature(enable = "avx2")]
fn nibbles(qs: &[u8; 16]) -> __m256i {
    // SAFETY: qs is exactly 16 bytes.
    let packed = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
    let mask = _mm_set1_epi8(0x0f);
    let lo = _mm_and_si128(packed, mask);
    let hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
    _mm256_set_m128i(hi, lo)
}

/// The 32 Q4_0 values of a block as signed bytes in [-8, 7], in element order.
#[inline]
#[target_feature(enable = "avx2")]
fn unpack_q4_0(b: &BlockQ4_0) -> __m256i {
    _mm256_sub_epi8(nibbles(&b.qs), _mm256_set1_epi8(8))
}

#[inline]
#[target_feature(enable = "avx2")]
fn load_q8_0(b: &BlockQ8_0) -> __m256i {
    // SAFETY: qs is exactly 32 bytes.
    unsafe { _mm256_loadu_si256(b.qs.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn hsum_i32_8(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    _mm_cvtsi128_si32(s)
}

// The quantized dots below compute each block's exact integer sum in SIMD and accumulate the
// scaled sums in block order, exactly as `scalar` does: every tier then produces bit-identical
// results (lane-wise float accumulation would flip llama.cpp-style activation roundings).

/// The f16 scales of four consecutive blocks as f32 lanes.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn scales_4(d: [u16; 4]) -> __m128 {
    _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, d[3] as i16, d[2] as i16, d[1] as i16, d[0] as i16))
}

/// Adds four lanes to `sum` one after another, in lane order (the scalar block order).
#[inline]
#[target_feature(enable = "avx2")]
fn add_lanes_in_order(sum: f32, t: __m128) -> f32 {
    let mut lanes = [0.0f32; 4];
    // SAFETY: `lanes` holds exactly four f32.
    unsafe { _mm_storeu_ps(lanes.as_mut_ptr(), t) };
    ((sum + lanes[0]) + lanes[1]) + lanes[2] + lanes[3]
}

// The single-row dots take four blocks per step: integer sums and scale products for the four
// are computed side by side, and only the final additions run one by one, in block order.

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_0_q8_0_avx2(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    let n = x.len().min(y.len());
    let mut sum = 0.0f32;
    let mut j = 0;
    while j + 4 <= n {
        let p = [0, 1, 2, 3].map(|k| mul_sum_i8_pairs(unpack_q4_0(&x[j + k]), load_q8_0(&y[j + k])));
        let sumf = _mm_cvtepi32_ps(hsum_i32_8_x4(p));
        let dx = scales_4([0, 1, 2, 3].map(|k| x[j + k].d));
        let dy = scales_4([0, 1, 2, 3].map(|k| y[j + k].d));
        // Scalar order: (sumi * dx) * dy.
        sum = add_lanes_in_order(sum, _mm_mul_ps(_mm_mul_ps(sumf, dx), dy));
        j += 4;
    }
    for (bx, by) in x[j..n].iter().zip(&y[j..n]) {
        let sumi = hsum_i32_8(mul_sum_i8_pairs(unpack_q4_0(bx), load_q8_0(by)));
        sum += sumi as f32 * f16_to_f32(bx.d) * f16_to_f32(by.d);
    }
    sum
}

/// A Q4_1 weight row (raw 20-byte blocks: d, m, 16 packed bytes) with Q8_1 activations:
/// `sum += (dx * dy) * sumi + mx * sy` per block, in block order, as `tensor`'s scalar dot.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_1_q8_1_avx2(row: &[u8], y: &[BlockQ8_1]) -> f32 {
    // Unsigned nibbles times signed bytes: pair sums of at most 2 * 15 * 128 fit in i16.
    let block = |b: &[u8], y: &BlockQ8_1| {
        let qs: &[u8; 16] = b[4..20].try_into().expect("a Q4_1 block is 20 bytes");
        // SAFETY: y.qs is exactly 32 bytes.
        let y = unsafe { _mm256_loadu_si256(y.qs.as_ptr().cast()) };
        _mm256_madd_epi16(_mm256_maddubs_epi16(nibbles(qs), y), _mm256_set1_epi16(1))
    };
    let f16 = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let n = (row.len() / 20).min(y.len());
    let x = |k: usize| &row[20 * k..20 * k + 20];
    let mut sum = 0.0f32;
    let mut j = 0;
    while j + 4 <= n {
        let sumf = _mm_cvtepi32_ps(hsum_i32_8_x4([0, 1, 2, 3].map(|k| block(x(j + k), &y[j + k]))));
        let (dx, mx) = ([0, 1, 2, 3].map(|k| f16(x(j + k), 0)), [0, 1, 2, 3].map(|k| f16(x(j + k), 2)));
        let (dy, sy) = ([0, 1, 2, 3].map(|k| y[j + k].d), [0, 1, 2, 3].map(|k| y[j + k].s));
        let (dx, mx, dy, sy) = (scales_4(dx), scales_4(mx), scales_4(dy), scales_4(sy));
        sum = add_lanes_in_order(sum, _mm_add_ps(_mm_mul_ps(_mm_mul_ps(dx, dy), sumf), _mm_mul_ps(mx, sy)));
        j += 4;
    }
    for (k, y) in y.iter().enumerate().take(n).skip(j) {
        let (b, sumi) = (x(k), hsum_i32_8(block(x(k), y)));
        sum +=
            (f16_to_f32(f16(b, 0)) * f16_to_f32(y.d)) * sumi as f32 + f16_to_f32(f16(b, 2)) * f16_to_f32(y.s);
    }
    sum
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q8_0_q8_0_avx2(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let n = x.len().min(y.len());
    let mut sum = 0.0f32;
    let mut j = 0;
    while j + 4 <= n {
        let p = [0, 1, 2, 3].map(|k| mul_sum_i8_pairs(load_q8_0(&x[j + k]), load_q8_0(&y[j + k])));
        let sumf = _mm_cvtepi32_ps(hsum_i32_8_x4(p));
        let dx = scales_4([0, 1, 2, 3].map(|k| x[j + k].d));
        let dy = scales_4([0, 1, 2, 3].map(|k| y[j + k].d));
        // Scalar order: sumi * (dx * dy).
        sum = add_lanes_in_order(sum, _mm_mul_ps(sumf, _mm_mul_ps(dx, dy)));
        j += 4;
    }
    for (bx, by) in x[j..n].iter().zip(&y[j..n]) {
        let sumi = hsum_i32_8(mul_sum_i8_pairs(load_q8_0(bx), load_q8_0(by)));
        sum += sumi as f32 * (f16_to_f32(bx.d) * f16_to_f32(by.d));
    }
    sum
}

/// 32 bytes at `p` as one vector.
///
/// # Safety
/// `p` points to 32 readable bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load32(p: *const u8) -> __m256i {
    // SAFETY: by this function's contract.
    unsafe { _mm256_loadu_si256(p.cast()) }
}

/// `sum_s mn[s] * (bsums[2s] + bsums[2s+1])`: the Q4_K / Q5_K mins term of one block.
#[inline]
#[target_feature(enable = "avx2")]
fn k4_mins_avx2(mn: [u8; 8], y: &BlockQ8K) -> i32 {
    // SAFETY: bsums is 16 i16 (32 bytes); mn is 8 bytes.
    let (b, m) =
        unsafe { (load32(y.bsums.as_ptr().cast()), _mm_cvtepu8_epi16(_mm_loadl_epi64(mn.as_ptr().cast()))) };
    // Pair sums fit i16 (|bsum| <= 16 * 128).
    let pairs = _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    let s = _mm_madd_epi16(m, pairs);
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)))
}

/// A Q4_K (`q5` false) or Q5_K row against Q8_K, bit-identical to `scalar::dot_k4_q8_k`: per
/// 64-element chunk the low and high nibbles (plus Q5_K's fifth bits) are unsigned bytes, so
/// `vpmaddubsw` takes them directly (pairs <= 2 * 31 * 128) and `vpmaddwd` applies the scale.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn dot_k4_q8_k_avx2(q5: bool, row: &[u8], y: &[BlockQ8K]) -> f32 {
    use crate::types::k4::{k4_block_bytes, k4_combine, k4_scales_mins};
    let bb = k4_block_bytes(q5);
    let (m4, one) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(1));
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(bb).zip(y) {
        let (sc, mn) = k4_scales_mins(b[4..16].try_into().unwrap());
        let qs = &b[bb - 128..];
        // SAFETY: a Q5_K block has 32 high-bit bytes at 16; the fallback is never read.
        let mut hb = if q5 { unsafe { load32(b[16..48].as_ptr()) } } else { _mm256_setzero_si256() };
        let mut acc = _mm256_setzero_si256();
        for c in 0..4 {
            // SAFETY: 32 bytes at qs[32c] and at by.qs[64c] and [64c + 32] (128 and 256 long).
            let (q, y0, y1) = unsafe {
                (
                    load32(qs[32 * c..].as_ptr()),
                    load32(by.qs[64 * c..].as_ptr().cast()),
                    load32(by.qs[64 * c + 32..].as_ptr().cast()),
                )
            };
            let mut lo = _mm256_and_si256(q, m4);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if q5 {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hi = _mm256_or_si256(
                    hi,
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4),
                );
                hb = _mm256_srli_epi16(hb, 2);
            }
            let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16(sc[2 * c] as i16));
            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16(sc[2 * c + 1] as i16));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
        }
        sum += k4_combine(b, by, hsum_i32_8(acc), k4_mins_avx2(mn, by));
    }
    sum
}

/// A Q6_K row against Q8_K, bit-identical to `scalar::dot_q6_k_q8_k`. The 6-bit values are
/// multiplied unsigned (0..63, pairs <= 2 * 63 * 128 fit i16) and each group's scale applied by
/// `vpmaddwd`; the offset of 32 comes off once per block as `32 * sum_g sc_g * bsums[g]`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn dot_q6_k_q8_k_avx2(row: &[u8], y: &[BlockQ8K]) -> f32 {
    use crate::types::q6_k::Q6K_BYTES;
    let (m4, m30) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(0x30));
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(Q6K_BYTES).zip(y) {
        // SAFETY: a Q6_K block is 210 bytes: ql 0..128, qh 128..192, scales 192..208; by.qs is 256
        // bytes and by.bsums 32.
        let isum = unsafe {
            let sc = _mm_loadu_si128(b[192..].as_ptr().cast());
            let mut acc = _mm256_setzero_si256();
            for n in 0..2 {
                let (ql0, ql1, qh) = (
                    load32(b[64 * n..].as_ptr()),
                    load32(b[64 * n + 32..].as_ptr()),
                    load32(b[128 + 32 * n..].as_ptr()),
                );
                let q = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql0, m4),
                        _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql1, m4),
                        _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                        _mm256_and_si256(qh, m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                        _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30),
                    ),
                ];
                for (k, q) in q.into_iter().enumerate() {
                    let g = 8 * n + 2 * k;
                    // Scale g for the first 16 elements (low 128 bits), g + 1 for the rest.
                    let pick = _mm_set_epi64x(
                        0x0101_0101_0101_0101 * (g as i64 + 1),
                        0x0101_0101_0101_0101 * g as i64,
                    );
                    let s16 = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, pick));
                    let p = _mm256_maddubs_epi16(q, load32(by.qs[128 * n + 32 * k..].as_ptr().cast()));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, s16));
                }
            }
            let offset = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), load32(by.bsums.as_ptr().cast()));
            hsum_i32_8(_mm256_sub_epi32(acc, _mm256_slli_epi32(offset, 5)))
        };
        sum += f16_to_f32(u16::from_le_bytes([b[208], b[209]])) * by.d * isum as f32;
    }
    sum
}

/// 16 signed bytes of `x` times 16 of `y`, as four i32 partial sums ([`mul_sum_i8_pairs`] in
/// 128 bits).
#[inline]
#[target_feature(enable = "ssse3")]
fn mul_sum_i8_pairs_128(x: __m128i, y: __m128i) -> __m128i {
    let ax = _mm_sign_epi8(x, x);
    let sy = _mm_sign_epi8(y, x);
    _mm_madd_epi16(_mm_maddubs_epi16(ax, sy), _mm_set1_epi16(1))
}

#[inline]
#[target_feature(enable = "ssse3")]
fn hsum_i32_4(v: __m128i) -> i32 {
    let s = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)))
}

/// The two 16-byte halves of a Q8_0 block's quants.
#[inline]
#[target_feature(enable = "ssse3")]
fn load_q8_0_halves(b: &BlockQ8_0) -> [__m128i; 2] {
    // SAFETY: qs is exactly 32 bytes, read as two 16-byte halves.
    unsafe { [_mm_loadu_si128(b.qs.as_ptr().cast()), _mm_loadu_si128(b.qs.as_ptr().add(16).cast())] }
}

// The SSSE3 dots (x86-64-v2 has no F16C) take the integer sums from SIMD and do the scalar
// reference's float operations one block at a time: bit-identical to it.

/// # Safety
/// The CPU must support SSSE3.
#[target_feature(enable = "ssse3")]
pub unsafe fn dot_q4_0_q8_0_ssse3(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    let (mask, eight) = (_mm_set1_epi8(0x0f), _mm_set1_epi8(8));
    // -0.0, as the scalar reference's `sum()` starts: equal bits even for an empty row.
    let mut sum = -0.0f32;
    for (bx, by) in x.iter().zip(y) {
        // SAFETY: qs is exactly 16 bytes.
        let packed = unsafe { _mm_loadu_si128(bx.qs.as_ptr().cast()) };
        let lo = _mm_sub_epi8(_mm_and_si128(packed, mask), eight);
        let hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), eight);
        let [y0, y1] = load_q8_0_halves(by);
        let sumi = hsum_i32_4(_mm_add_epi32(mul_sum_i8_pairs_128(lo, y0), mul_sum_i8_pairs_128(hi, y1)));
        sum += sumi as f32 * f16_to_f32(bx.d) * f16_to_f32(by.d);
    }
    sum
}

/// # Safety
/// The CPU must support SSSE3.
#[target_feature(enable = "ssse3")]
pub unsafe fn dot_q8_0_q8_0_ssse3(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let mut sum = -0.0f32;
    for (bx, by) in x.iter().zip(y) {
        let ([x0, x1], [y0, y1]) = (load_q8_0_halves(bx), load_q8_0_halves(by));
        let sumi = hsum_i32_4(_mm_add_epi32(mul_sum_i8_pairs_128(x0, y0), mul_sum_i8_pairs_128(x1, y1)));
        sum += sumi as f32 * (f16_to_f32(bx.d) * f16_to_f32(by.d));
    }
    sum
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn dot_f32_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: full loads read 16 floats with i + 16 <= n; the tail load is masked to n - i.
    unsafe {
        while i + 64 <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                let off = i + 16 * k;
                *acc = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(off)), _mm512_loadu_ps(pb.add(off)), *acc);
            }
            i += 64;
        }
        while i + 16 <= n {
            acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc[0]);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u32 << (n - i)) as u16 - 1;
            let va = _mm512_maskz_loadu_ps(m, pa.add(i));
            let vb = _mm512_maskz_loadu_ps(m, pb.add(i));
            acc[1] = _mm512_fmadd_ps(va, vb, acc[1]);
        }
    }
    let v = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(v)
}

/// The integer sums of four i32x8 vectors, as four lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_i32_8_x4(p: [__m256i; 4]) -> __m128i {
    let s = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1))
}

// The word-panel kernels ([`Layout::Words`]) multiply a panel of eight weight rows with one
// activation (token generation). Word `w` of the eight rows arrives in one load, a 32-bit lane
// per row, and the activation's matching four bytes are broadcast to every lane: byte products
// sum straight into per-row lanes. Each lane then performs the scalar reference's f32
// operations in block order, so every row equals its row dot bit for bit.

/// Q4 words of one block column (`q`, four words of eight rows, 32 bytes apart) times the
/// activation quants `y`: per row, `sum(q * y)` over the block's 32 unsigned nibbles.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sum_q4_words_maddubs(q: *const u8, y: &[i8; 32]) -> __m256i {
    let low = _mm256_set1_epi8(0x0f);
    let mut a = _mm256_setzero_si256();
    for w in 0..4 {
        // SAFETY: the caller guarantees four 32-byte words at q; y holds 32 bytes.
        let (v, ylo, yhi) = unsafe {
            (
                _mm256_loadu_si256(q.add(32 * w).cast()),
                y.as_ptr().add(4 * w).cast::<i32>().read_unaligned(),
                y.as_ptr().add(16 + 4 * w).cast::<i32>().read_unaligned(),
            )
        };
        let lo = _mm256_and_si256(v, low);
        let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        // Each i16 lane gathers 8 pairs of at most 15 * 127: below 2^15, so the adds are exact.
        a = _mm256_add_epi16(a, _mm256_maddubs_epi16(lo, _mm256_set1_epi32(ylo)));
        a = _mm256_add_epi16(a, _mm256_maddubs_epi16(hi, _mm256_set1_epi32(yhi)));
    }
    _mm256_madd_epi16(a, _mm256_set1_epi16(1))
}

/// Q8_0 words of one block column (`q`, eight words of eight rows, 32 bytes apart) times `y`:
/// per row, `sum(q * y)` over the block's 32 signed bytes. `maddubs` needs an unsigned operand:
/// q's sign moves onto y (|q| <= 128 as unsigned, activations within [-127, 127]).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sum_q8_words_maddubs(q: *const u8, y: &[i8; 32]) -> __m256i {
    let mut a = _mm256_setzero_si256();
    for w in 0..8 {
        // SAFETY: the caller guarantees eight 32-byte words at q; y holds 32 bytes.
        let (v, yw) = unsafe {
            (_mm256_loadu_si256(q.add(32 * w).cast()), y.as_ptr().add(4 * w).cast::<i32>().read_unaligned())
        };
        a = _mm256_add_epi32(a, mul_sum_i8_pairs(v, _mm256_set1_epi32(yw)));
    }
    a
}

macro_rules! vnni_words {
    ($q4:ident, $q8:ident, $features:literal, $dpbusd:ident) => {
        /// As [`sum_q4_words_maddubs`] with `vpdpbusd`: the high nibbles stay in place (so they
        /// count sixteen-fold, a multiple of 16 shifted back once), saving the shift.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $q4(q: *const u8, y: &[i8; 32]) -> __m256i {
            let (low, high) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(0xf0u8 as i8));
            let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for w in 0..4 {
                // SAFETY: as in sum_q4_words_maddubs.
                let (v, ylo, yhi) = unsafe {
                    (
                        _mm256_loadu_si256(q.add(32 * w).cast()),
                        y.as_ptr().add(4 * w).cast::<i32>().read_unaligned(),
                        y.as_ptr().add(16 + 4 * w).cast::<i32>().read_unaligned(),
                    )
                };
                lo = $dpbusd(lo, _mm256_and_si256(v, low), _mm256_set1_epi32(ylo));
                hi = $dpbusd(hi, _mm256_and_si256(v, high), _mm256_set1_epi32(yhi));
            }
            _mm256_add_epi32(lo, _mm256_srai_epi32(hi, 4))
        }

        /// As [`sum_q8_words_maddubs`] with `vpdpbusd` (|q| as unsigned, q's sign on y).
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $q8(q: *const u8, y: &[i8; 32]) -> __m256i {
            let mut a = [_mm256_setzero_si256(); 2];
            for w in 0..8 {
                // SAFETY: as in sum_q8_words_maddubs.
                let (v, yw) = unsafe {
                    (
                        _mm256_loadu_si256(q.add(32 * w).cast()),
                        y.as_ptr().add(4 * w).cast::<i32>().read_unaligned(),
                    )
                };
                let yw = _mm256_set1_epi32(yw);
                a[w % 2] = $dpbusd(a[w % 2], _mm256_sign_epi8(v, v), _mm256_sign_epi8(yw, v));
            }
            _mm256_add_epi32(a[0], a[1])
        }
    };
}

#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn dpbusd_avx_vnni(acc: __m256i, q: __m256i, y: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(acc, q, y)
}

#[inline]
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
fn dpbusd_avx512_vnni(acc: __m256i, q: __m256i, y: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(acc, q, y)
}

vnni_words!(sum_q4_words_avx_vnni, sum_q8_words_avx_vnni, "avx2,avxvnni", dpbusd_avx_vnni);
vnni_words!(
    sum_q4_words_avx512_vnni,
    sum_q8_words_avx512_vnni,
    "avx2,avx512vnni,avx512vl",
    dpbusd_avx512_vnni
);

/// How far ahead of the column being multiplied the word kernels prefetch, in bytes. The
/// panels are one sequential stream, yet the hardware prefetcher alone left the loads stalling:
/// on this project's AMD EPYC host (64 MiB Q4_0 matrix-vector product, three alternating
/// rounds) 4 KiB ahead took one thread from 7.7-8.3 to 9.6-12.2 GB/s and two threads from
/// 14.4-15.4 to 18.4-20.2 GB/s; 512 B-2 KiB gained less, 8-16 KiB no more.
const PREFETCH_AHEAD: usize = 4096;

/// Prefetches the `col` bytes at `c + at` (addresses past the matrix are harmless: a prefetch
/// never faults).
#[inline]
#[target_feature(enable = "avx2")]
fn prefetch_column(c: *const u8, at: usize, col: usize) {
    for k in (0..col).step_by(64) {
        _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(at + k).cast());
    }
}

/// The eight rows' f16 at `p`, as f32 lanes (F16C converts f16 exactly).
///
/// # Safety
/// 16 readable bytes at `p`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn f16x8(p: *const u8) -> __m256 {
    // SAFETY: the caller's.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p.cast()) })
}

/// A word panel of one type times one activation, on one way of summing byte products.
macro_rules! words_fn {
    ($name:ident, $features:literal, $sum_q4:ident, $sum_q8:ident) => {
        /// Rows of word panel `panel` (`nb` block columns of `ty`) · the activation `y` (Q8_0,
        /// or Q8_1 for Q4_1) with its aux values; lane i equals row i's row dot bit for bit.
        ///
        /// # Safety
        /// The CPU must support the enabled features; `panel` holds `y.len()` columns of `ty`.
        #[target_feature(enable = $features)]
        unsafe fn $name<B: Quants>(ty: GgmlType, panel: &[u8], y: &[B], aux: &ActivationAux) -> [f32; 8] {
            let (col, qs_at) = words_column(ty);
            let c = panel.as_ptr();
            match ty {
                GgmlType::Q4_0 => {
                    // -0.0: the reference's `Iterator::sum` starts there (an empty row is -0.0).
                    let mut acc = _mm256_set1_ps(-0.0);
                    for (j, y) in y.iter().map(Quants::quants).enumerate() {
                        prefetch_column(c, j * col + PREFETCH_AHEAD, col);
                        // SAFETY: column j lies inside the panel (caller).
                        let (s, dx) = unsafe { ($sum_q4(c.add(j * col + qs_at), y), f16x8(c.add(j * col))) };
                        // sum((q - 8) y) = sum(q y) - 8 sum(y); scalar order: (sumi * dx) * dy.
                        let s = _mm256_cvtepi32_ps(_mm256_add_epi32(s, _mm256_set1_epi32(aux.corr[j])));
                        acc =
                            _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(s, dx), _mm256_set1_ps(aux.d[j])));
                    }
                    lanes8(acc)
                }
                GgmlType::Q4_1 => {
                    let mut acc = _mm256_setzero_ps();
                    for (j, y) in y.iter().map(Quants::quants).enumerate() {
                        prefetch_column(c, j * col + PREFETCH_AHEAD, col);
                        // SAFETY: as above.
                        let (s, dx, mx) = unsafe {
                            (
                                $sum_q4(c.add(j * col + qs_at), y),
                                f16x8(c.add(j * col)),
                                f16x8(c.add(j * col + 16)),
                            )
                        };
                        let (dy, sy) = (_mm256_set1_ps(aux.d[j]), _mm256_set1_ps(aux.s[j]));
                        // Scalar order: (dx * dy) * sumi + mx * sy.
                        let t = _mm256_add_ps(
                            _mm256_mul_ps(_mm256_mul_ps(dx, dy), _mm256_cvtepi32_ps(s)),
                            _mm256_mul_ps(mx, sy),
                        );
                        acc = _mm256_add_ps(acc, t);
                    }
                    lanes8(acc)
                }
                _ => {
                    let mut acc = _mm256_set1_ps(-0.0);
                    for (j, y) in y.iter().map(Quants::quants).enumerate() {
                        prefetch_column(c, j * col + PREFETCH_AHEAD, col);
                        // SAFETY: as above.
                        let (s, dx) = unsafe { ($sum_q8(c.add(j * col + qs_at), y), f16x8(c.add(j * col))) };
                        // Scalar order: sumi * (dx * dy).
                        let d = _mm256_mul_ps(dx, _mm256_set1_ps(aux.d[j]));
                        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(s), d));
                    }
                    lanes8(acc)
                }
            }
        }
    };
}

words_fn!(words_maddubs, "avx2,f16c", sum_q4_words_maddubs, sum_q8_words_maddubs);
words_fn!(words_avx_vnni, "avx2,f16c,avxvnni", sum_q4_words_avx_vnni, sum_q8_words_avx_vnni);
words_fn!(
    words_avx512_vnni,
    "avx2,f16c,avx512vnni,avx512vl",
    sum_q4_words_avx512_vnni,
    sum_q8_words_avx512_vnni
);

fn lanes8(v: __m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds exactly eight f32.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
    out
}

/// An activation block's 32 quants (Q8_0 and Q8_1 alike).
trait Quants {
    fn quants(&self) -> &[i8; 32];
}

impl Quants for BlockQ8_0 {
    fn quants(&self) -> &[i8; 32] {
        &self.qs
    }
}

impl Quants for BlockQ8_1 {
    fn quants(&self) -> &[i8; 32] {
        &self.qs
    }
}

/// `out[i]` = row i of panel `p` · `act` for the panel's existing rows: the word kernels (VNNI
/// where the CPU has it, probed at run time: neither x86-64-v3 nor v4 implies it) on
/// [`Layout::Words`] panels, the scalar reference on others.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn panel_dot_avx2(w: &Packed, p: usize, act: &Activation, aux: &ActivationAux, out: &mut [f32]) {
    // SAFETY: the caller guarantees AVX2 and F16C.
    let v = unsafe {
        match (w.layout, act.plain()) {
            (Layout::Words, Activation::Q8_0(y)) => words_by_cpu(w, p, y, aux),
            (Layout::Words, Activation::Q8_1(y)) => words_by_cpu(w, p, y, aux),
            _ => return panel_dot_reference(w, p, act, aux, out),
        }
    };
    out.copy_from_slice(&v[..out.len()]);
}

/// [`panel_dot_avx2`] on a word panel, by the best way of summing byte products the CPU has.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
unsafe fn words_by_cpu<B: Quants>(w: &Packed, p: usize, y: &[B], aux: &ActivationAux) -> [f32; 8] {
    let (panel, y) = (w.panel(p), &y[..w.blocks().min(y.len())]);
    // SAFETY: the caller guarantees AVX2 and F16C; the VNNI variants run only where detected;
    // the panel holds w.blocks() >= y.len() columns.
    unsafe {
        if std::arch::is_x86_feature_detected!("avxvnni") {
            words_avx_vnni(w.ty, panel, y, aux)
        } else if std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            words_avx512_vnni(w.ty, panel, y, aux)
        } else {
            words_maddubs(w.ty, panel, y, aux)
        }
    }
}

/// Q8_0 activation quantization, bit-identical to `quant::quantize_row_q8_0`: the same f32
/// `amax`, `127 / amax` and products, rounded half to even by `vroundps`.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn quantize_row_q8_0_avx2(x: &[f32], out: &mut [BlockQ8_0]) {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    for (chunk, block) in x.chunks_exact(32).zip(out.iter_mut()) {
        // SAFETY: the chunk holds exactly 32 floats, four 8-float loads.
        let v: [__m256; 4] = [0, 8, 16, 24].map(|k| unsafe { _mm256_loadu_ps(chunk.as_ptr().add(k)) });
        let m = v.iter().fold(_mm256_setzero_ps(), |m, &v| _mm256_max_ps(m, _mm256_and_ps(v, abs_mask)));
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        block.d = crate::types::f32_to_f16(amax / 127.0);
        let q = v.map(|v| {
            let r = _mm256_round_ps(
                _mm256_mul_ps(v, _mm256_set1_ps(id)),
                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
            );
            _mm256_cvtps_epi32(r)
        });
        // Packing interleaves 128-bit lanes; the permute puts the 32 bytes back in order.
        let w = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        let w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        // SAFETY: qs is exactly 32 bytes.
        unsafe { _mm256_storeu_si256(block.qs.as_mut_ptr().cast(), w) };
    }
}

/// [`super::scalar::axpy_rows`] with `out` held in four 512-bit registers per 64 elements
/// across all rows: each element still takes `o + p[t] * v` (two roundings) in row order.
///
/// # Safety
/// The CPU must support AVX-512F; `v` must hold `(p.len() - 1) * stride + out.len()` floats
/// when `p` is not empty.
#[target_feature(enable = "avx512f")]
pub unsafe fn axpy_rows_avx512(out: &mut [f32], p: &[f32], v: *const f32, stride: usize) {
    let n = out.len();
    for j in (0..n).step_by(64) {
        // Lanes past n are masked off: masked loads neither read nor fault there.
        let m: [__mmask16; 4] = std::array::from_fn(|k| {
            let lanes = n.saturating_sub(j + 16 * k).min(16);
            ((1u32 << lanes) - 1) as u16
        });
        let o = out[j..].as_mut_ptr();
        // SAFETY: lane l of vector k is read or written only when j + 16k + l < n, inside out
        // and inside row t of v (caller).
        unsafe {
            let mut acc: [__m512; 4] = std::array::from_fn(|k| _mm512_maskz_loadu_ps(m[k], o.add(16 * k)));
            for (t, &a) in p.iter().enumerate() {
                let (a, row) = (_mm512_set1_ps(a), v.add(t * stride + j));
                for (k, acc) in acc.iter_mut().enumerate() {
                    *acc =
                        _mm512_add_ps(*acc, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m[k], row.add(16 * k))));
                }
            }
            for (k, acc) in acc.into_iter().enumerate() {
                _mm512_mask_storeu_ps(o.add(16 * k), m[k], acc);
            }
        }
    }
}

/// [`axpy_rows_avx512`] with four 256-bit registers per 32 elements.
///
/// # Safety
/// The CPU must support AVX2; `v` as for [`axpy_rows_avx512`].
#[target_feature(enable = "avx2")]
pub unsafe fn axpy_rows_avx2(out: &mut [f32], p: &[f32], v: *const f32, stride: usize) {
    let n = out.len();
    for j in (0..n).step_by(32) {
        // Lane masks (all ones: lane in use); maskload neither reads nor faults past them.
        let m: [__m256i; 4] = std::array::from_fn(|k| {
            let lanes = n.saturating_sub(j + 8 * k).min(8) as i32;
            _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
        });
        let o = out[j..].as_mut_ptr();
        // SAFETY: as in axpy_rows_avx512, lanes at or past n are masked off.
        unsafe {
            let mut acc: [__m256; 4] = std::array::from_fn(|k| _mm256_maskload_ps(o.add(8 * k), m[k]));
            for (t, &a) in p.iter().enumerate() {
                let (a, row) = (_mm256_set1_ps(a), v.add(t * stride + j));
                for (k, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_add_ps(*acc, _mm256_mul_ps(a, _mm256_maskload_ps(row.add(8 * k), m[k])));
                }
            }
            for (k, acc) in acc.into_iter().enumerate() {
                _mm256_maskstore_ps(o.add(8 * k), m[k], acc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::Rng;
    use crate::types::q4_0::quantize_row_q4_0;
    use crate::types::q8_0::quantize_row_q8_0;

    /// The SSSE3 dots (tier x86-64-v2) equal the scalar reference bit for bit; AVX2 and AVX-512
    /// are checked by `selftest` on their own tiers.
    #[test]
    fn ssse3_dots_equal_the_scalar_reference() {
        let mut rng = Rng::new(3);
        for nb in [0, 1, 2, 5, 17, 64] {
            let x = rng.vec(nb * 32);
            let (mut q4, mut q8, mut y) = (
                vec![BlockQ4_0::default(); nb],
                vec![BlockQ8_0::default(); nb],
                vec![BlockQ8_0::default(); nb],
            );
            quantize_row_q4_0(&x, &mut q4);
            quantize_row_q8_0(&x, &mut q8);
            // Extremes: |q| = 127 in both operands, so the i16 pair sums are at their bound.
            quantize_row_q8_0(&x.iter().map(|v| v.signum()).collect::<Vec<_>>(), &mut y);
            for y in [y, q8.clone()] {
                // SAFETY: every x86-64 machine this test runs on has SSSE3 (x86-64-v2 and up).
                let (a, b) = unsafe { (dot_q4_0_q8_0_ssse3(&q4, &y), dot_q8_0_q8_0_ssse3(&q8, &y)) };
                assert_eq!(a.to_bits(), crate::types::q4_0::dot_q4_0_q8_0(&q4, &y).to_bits(), "q4_0 {nb}");
                assert_eq!(b.to_bits(), crate::types::q8_0::dot_q8_0_q8_0(&q8, &y).to_bits(), "q8_0 {nb}");
            }
        }
    }

    /// Every word-panel kernel the host can run equals the type's scalar dot in every lane,
    /// bit for bit, on random rows, on quants at their extremes and on a partial last panel
    /// (selftest checks only the variant the dispatcher picks).
    #[test]
    fn word_kernels_equal_the_scalar_references() {
        use crate::testdata::random_quant_row;
        use crate::types::{GgmlType, q8_1};
        let has = |f: &[bool]| f.iter().all(|&f| f);
        if !has(&[is_x86_feature_detected!("avx2"), is_x86_feature_detected!("f16c")]) {
            return;
        }
        type Kernel<B> = unsafe fn(GgmlType, &[u8], &[B], &ActivationAux) -> [f32; 8];
        let mut variants: Vec<(Kernel<BlockQ8_0>, Kernel<BlockQ8_1>)> =
            vec![(words_maddubs::<BlockQ8_0>, words_maddubs::<BlockQ8_1>)];
        if is_x86_feature_detected!("avxvnni") {
            variants.push((words_avx_vnni::<BlockQ8_0>, words_avx_vnni::<BlockQ8_1>));
        }
        if has(&[is_x86_feature_detected!("avx512vnni"), is_x86_feature_detected!("avx512vl")]) {
            variants.push((words_avx512_vnni::<BlockQ8_0>, words_avx512_vnni::<BlockQ8_1>));
        }
        let mut rng = Rng::new(8);
        for nb in [0, 1, 3, 64] {
            let x = rng.vec(nb * 32);
            let a0 = crate::types::q8_0::activation_reference(&x);
            let a1 = q8_1::activation_reference(&x);
            let (Activation::Q8_0(y0), Activation::Q8_1(y1)) = (&a0, &a1) else { unreachable!() };
            for (ty, first) in [(GgmlType::Q4_0, 2), (GgmlType::Q8_0, 2), (GgmlType::Q4_1, 4)] {
                let act = if ty == GgmlType::Q4_1 { &a1 } else { &a0 };
                let aux = ActivationAux::new(ty, act);
                for n in [8, 5] {
                    let mut rows: Vec<Vec<u8>> = (0..n).map(|_| random_quant_row(ty, nb, &mut rng)).collect();
                    // Rows 3 and 4 at the extremes: nibbles 15 / bytes -128, and nibbles 0 / bytes 127.
                    for (r, fill) in [
                        (3, if ty == GgmlType::Q8_0 { 0x80 } else { 0xff }),
                        (4, if ty == GgmlType::Q8_0 { 0x7f } else { 0 }),
                    ] {
                        for b in rows[r].chunks_exact_mut(ty.block_bytes()) {
                            b[first..].fill(fill);
                        }
                    }
                    let w = Packed::words(ty, n, nb * 32, &rows.concat()).unwrap();
                    for (k0, k1) in &variants {
                        // SAFETY: AVX2 and F16C were detected above, the VNNI variants only where
                        // detected; the panel holds nb columns.
                        let got = unsafe {
                            if ty == GgmlType::Q4_1 {
                                k1(ty, w.panel(0), y1, &aux)
                            } else {
                                k0(ty, w.panel(0), y0, &aux)
                            }
                        };
                        for (row, got) in rows.iter().zip(got) {
                            let want = (ty.traits().dot_reference)(row, act);
                            assert_eq!(got.to_bits(), want.to_bits(), "{ty} {nb} blocks, {n} rows");
                        }
                    }
                }
            }
        }
    }

    /// The AVX2 Q4_1 dot equals the scalar one bit for bit (block counts around its four-block
    /// step; selftest repeats this through the dispatcher on the v3 and v4 tiers).
    #[test]
    fn q4_1_dot_equals_the_scalar_reference() {
        if ![
            is_x86_feature_detected!("avx2"),
            is_x86_feature_detected!("fma"),
            is_x86_feature_detected!("f16c"),
        ]
        .iter()
        .all(|&f| f)
        {
            return;
        }
        let mut rng = Rng::new(4);
        for nb in [0, 1, 3, 4, 5, 8, 17, 64] {
            let row = crate::testdata::random_quant_row(crate::types::GgmlType::Q4_1, nb, &mut rng);
            let act = crate::kernels::activation(crate::types::GgmlType::Q4_1, &rng.vec(nb * 32));
            let crate::types::Activation::Q8_1(y) = act.plain() else { unreachable!("Q4_1 pairs with Q8_1") };
            let want = crate::types::q4_1::dot_q4_1_q8_1(&row, y);
            // SAFETY: AVX2, FMA and F16C were detected above.
            let got = unsafe { dot_q4_1_q8_1_avx2(&row, y) };
            assert_eq!(got.to_bits(), want.to_bits(), "{nb} blocks");
        }
    }

    /// The AVX2 K-quant dots equal the scalar ones bit for bit, on random blocks and on the
    /// extremes of the i16 pair sums (every 6-bit value 63 or 5-bit value 31 against -128).
    #[test]
    fn k_quant_dots_equal_the_scalar_reference() {
        use crate::testdata::random_quant_row;
        use crate::types::GgmlType;
        use crate::types::{Activation, QK_K};
        if !is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = Rng::new(12);
        for ty in [GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K] {
            for nb in [0, 1, 2, 7] {
                let mut row = random_quant_row(ty, nb, &mut rng);
                let Activation::Q8K(mut y) = crate::kernels::activation(ty, &rng.vec(nb * QK_K)) else {
                    unreachable!("K-quants pair with Q8_K")
                };
                for extreme in [false, true] {
                    if extreme {
                        let quants = if ty == GgmlType::Q6K { 0..192 } else { 16..ty.block_bytes() };
                        for b in row.chunks_exact_mut(ty.block_bytes()) {
                            b[quants.clone()].fill(0xff);
                        }
                        for b in &mut y {
                            b.qs = [-128; QK_K];
                            b.bsums = [-128 * 16; QK_K / 16];
                        }
                    }
                    // SAFETY: AVX2 was detected above.
                    let (got, want) = unsafe {
                        match ty {
                            GgmlType::Q6K => {
                                (dot_q6_k_q8_k_avx2(&row, &y), crate::types::q6_k::dot_q6_k_q8_k(&row, &y))
                            }
                            _ => {
                                let q5 = ty == GgmlType::Q5K;
                                (dot_k4_q8_k_avx2(q5, &row, &y), crate::types::k4::dot_k4_q8_k(q5, &row, &y))
                            }
                        }
                    };
                    assert_eq!(got.to_bits(), want.to_bits(), "{ty} {nb} blocks extreme {extreme}");
                }
            }
        }
    }

    /// The register-resident weighted row sums equal one scalar axpy per row, bit for bit, at
    /// lengths around the vector and register-block widths (the host has AVX2 and AVX-512).
    #[test]
    fn axpy_rows_equal_the_scalar_reference() {
        let mut rng = Rng::new(9);
        for n in [1, 7, 8, 9, 16, 31, 32, 33, 64, 65, 100, 128, 129] {
            for rows in [0, 1, 2, 5, 37] {
                let stride = n + 3;
                let v = rng.vec(rows.max(1) * stride);
                let p = rng.vec(rows);
                let start = rng.vec(n);
                let mut want = start.clone();
                super::super::scalar::axpy_rows(&mut want, &p, &v, stride);
                type Kernel = unsafe fn(&mut [f32], &[f32], *const f32, usize);
                let kernels: [(&str, bool, Kernel); 2] = [
                    ("avx2", is_x86_feature_detected!("avx2"), axpy_rows_avx2),
                    ("avx512", is_x86_feature_detected!("avx512f"), axpy_rows_avx512),
                ];
                for (name, has, f) in kernels {
                    if has {
                        let mut got = start.clone();
                        // SAFETY: the feature was detected; v holds rows * stride >= the floats read.
                        unsafe { f(&mut got, &p, v.as_ptr(), stride) };
                        assert_eq!(got, want, "{name} n {n} rows {rows}");
                    }
                }
            }
        }
    }
}
