//! x86-64 prompt tiles (see `tile`) on word panels (`pack::Layout::Words`, four of a panel's
//! eight rows per tile): each weight row's four-byte groups are broadcast across
//! vectors whose lanes are the 16 tokens (two 256-bit halves with AVX2, one 512-bit vector with
//! AVX-512), so sums build up per (row, token) lane with no horizontal reduction. Products use
//! `vpdpbusd` when the CPU has VNNI (probed at run time: neither x86-64-v3 nor v4 implies it),
//! else `vpmaddubsw`.

use core::arch::x86_64::*;

use super::pack::words_column;
use super::tile::{TOKENS, TokensBlock};
use crate::types::GgmlType;

const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q8_0: u8 = 2;

/// Runs the tile function `$f` (generic over the weight type) for `$ty`.
macro_rules! by_type {
    ($f:ident, $ty:expr, $panel:expr, $half:expr, $y:expr) => {
        match $ty {
            GgmlType::Q4_0 => $f::<Q4_0>($panel, $half, $y),
            GgmlType::Q4_1 => $f::<Q4_1>($panel, $half, $y),
            _ => $f::<Q8_0>($panel, $half, $y),
        }
    };
}

/// The AVX2 tile (x86-64-v3).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `panel` must be a word panel of `ty` (Q4_0, Q4_1
/// or Q8_0) holding `y.len()` block columns, and `half` 0 or 1.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn tile_avx2(ty: GgmlType, panel: &[u8], half: usize, y: &[TokensBlock]) -> [[f32; TOKENS]; 4] {
    // SAFETY: the caller guarantees the rows and the base features; the VNNI variants run only
    // where their extension was detected.
    unsafe {
        if std::arch::is_x86_feature_detected!("avxvnni") {
            by_type!(tile256_avx_vnni, ty, panel, half, y)
        } else if std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            by_type!(tile256_avx512_vnni, ty, panel, half, y)
        } else {
            by_type!(tile256_maddubs, ty, panel, half, y)
        }
    }
}

/// The AVX-512 tile (x86-64-v4).
///
/// # Safety
/// The CPU must support AVX-512F/BW, AVX2, FMA and F16C; `panel` and `half` as for
/// [`tile_avx2`].
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
pub unsafe fn tile_avx512(ty: GgmlType, panel: &[u8], half: usize, y: &[TokensBlock]) -> [[f32; TOKENS]; 4] {
    // SAFETY: the caller guarantees the rows and the base features; the VNNI variant runs only
    // where it was detected.
    unsafe {
        if std::arch::is_x86_feature_detected!("avx512vnni") {
            by_type!(tile512_vnni, ty, panel, half, y)
        } else {
            by_type!(tile512_maddubs, ty, panel, half, y)
        }
    }
}

/// The two 256-bit halves of each of a block's eight token groups: `y[2g + h]` holds tokens
/// `8h..8h + 8` of group g.
type Halves = [__m256i; 16];

/// `sum over g of x[g] * y[g]` per token lane, `x[g]` a row's four unsigned nibbles of group g,
/// `y[g]` the tokens' four signed bytes of group g; one vector per half. The row's four nibble
/// words (the first at `p`, see [`WORD_STRIDE`]) are broadcast from memory, each giving group
/// w (low nibbles) and group 4 + w (high ones): fewer operations than unpacking first.
///
/// # Safety
/// Four readable words at `p + WORD_STRIDE * w`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sum_u4_maddubs256(p: *const u8, y: &Halves) -> [__m256i; 2] {
    // Each i16 lane gathers 2 * 8 products of at most 15 * 128: below 2^15, so the adds are exact.
    let low = _mm256_set1_epi8(0x0f);
    let mut a = [_mm256_setzero_si256(); 2];
    for w in 0..4 {
        // SAFETY: word w of the caller's four.
        let v = _mm256_set1_epi32(unsafe { p.add(WORD_STRIDE * w).cast::<i32>().read_unaligned() });
        let (lo, hi) = (_mm256_and_si256(v, low), _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
        for (h, a) in a.iter_mut().enumerate() {
            *a = _mm256_add_epi16(*a, _mm256_maddubs_epi16(lo, y[2 * w + h]));
            *a = _mm256_add_epi16(*a, _mm256_maddubs_epi16(hi, y[2 * (4 + w) + h]));
        }
    }
    a.map(|a| _mm256_madd_epi16(a, _mm256_set1_epi16(1)))
}

/// As [`sum_u4_maddubs256`] for signed weight bytes (their sign moves onto the activations).
#[inline]
#[target_feature(enable = "avx2")]
fn sum_i8_maddubs256(x: &[i32; 8], y: &Halves) -> [__m256i; 2] {
    let mut a = [_mm256_setzero_si256(); 2];
    for (g, &x) in x.iter().enumerate() {
        let x = _mm256_set1_epi32(x);
        let ax = _mm256_sign_epi8(x, x);
        for (h, a) in a.iter_mut().enumerate() {
            // Pair sums stay within i16: |x| <= 128 and |y| <= 127.
            let p = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(y[2 * g + h], x));
            *a = _mm256_add_epi32(*a, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
        }
    }
    a
}

macro_rules! vnni_sums256 {
    ($u4:ident, $i8:ident, $features:literal, $dpbusd:ident) => {
        /// [`sum_u4_maddubs256`] with `vpdpbusd`: the high nibbles stay in place (sixteen-fold,
        /// shifted back once; exact, a multiple of 16).
        ///
        /// # Safety
        /// Four readable words at `p + WORD_STRIDE * w`.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $u4(p: *const u8, y: &Halves) -> [__m256i; 2] {
            let (low, high) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(0xf0u8 as i8));
            let (mut lo, mut hi) = ([_mm256_setzero_si256(); 2], [_mm256_setzero_si256(); 2]);
            for w in 0..4 {
                // SAFETY: word w of the caller's four.
                let v = _mm256_set1_epi32(unsafe { p.add(WORD_STRIDE * w).cast::<i32>().read_unaligned() });
                let (l, hv) = (_mm256_and_si256(v, low), _mm256_and_si256(v, high));
                for h in 0..2 {
                    lo[h] = $dpbusd(lo[h], l, y[2 * w + h]);
                    hi[h] = $dpbusd(hi[h], hv, y[2 * (4 + w) + h]);
                }
            }
            [0, 1].map(|h| _mm256_add_epi32(lo[h], _mm256_srai_epi32(hi[h], 4)))
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn $i8(x: &[i32; 8], y: &Halves) -> [__m256i; 2] {
            let mut a = [_mm256_setzero_si256(); 2];
            for (g, &x) in x.iter().enumerate() {
                let x = _mm256_set1_epi32(x);
                let ax = _mm256_sign_epi8(x, x);
                for (h, a) in a.iter_mut().enumerate() {
                    *a = $dpbusd(*a, ax, _mm256_sign_epi8(y[2 * g + h], x));
                }
            }
            a
        }
    };
}

vnni_sums256!(sum_u4_avx_vnni, sum_i8_avx_vnni, "avx2,avxvnni", _mm256_dpbusd_avx_epi32);
vnni_sums256!(sum_u4_avx512_vnni256, sum_i8_avx512_vnni256, "avx2,avx512vnni,avx512vl", _mm256_dpbusd_epi32);

/// The eight 64-byte token groups of a block, one 512-bit vector each.
type Groups = [__m512i; 8];

/// [`sum_i8_maddubs256`] on 512-bit vectors. AVX-512 has no `vpsignb`: `|x|` multiplies `y`
/// negated under the mask of x's negative bytes. `sum8` is unused (see [`sum_i8_vnni512`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn sum_i8_maddubs512(x: &[i32; 8], y: &Groups, _sum8: __m512i) -> __m512i {
    let mut a = _mm512_setzero_si512();
    for (&x, &y) in x.iter().zip(y) {
        let x = _mm512_set1_epi32(x);
        let sy = _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(x), _mm512_setzero_si512(), y);
        let p = _mm512_maddubs_epi16(_mm512_abs_epi8(x), sy);
        a = _mm512_add_epi32(a, _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
    }
    a
}

/// `sum over g of x[g] * y[g]` per token lane (`x[g]` four unsigned bytes) with `vpdpbusd`, in two
/// independent chains.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn sum_u4_vnni512(x: &[i32; 8], y: &Groups) -> __m512i {
    let mut a = [_mm512_setzero_si512(); 2];
    for (g, (&x, &y)) in x.iter().zip(y).enumerate() {
        a[g % 2] = _mm512_dpbusd_epi32(a[g % 2], _mm512_set1_epi32(x), y);
    }
    _mm512_add_epi32(a[0], a[1])
}

/// [`sum_i8_maddubs512`] with `vpdpbusd`: the weights biased by 128 become unsigned, and
/// `128 sum(y) = 16 sum8` is taken off again (exact in i32).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn sum_i8_vnni512(x: &[i32; 8], y: &Groups, sum8: __m512i) -> __m512i {
    let biased = x.map(|x| x ^ 0x8080_8080u32 as i32);
    _mm512_sub_epi32(sum_u4_vnni512(&biased, y), _mm512_slli_epi32(sum8, 4))
}

/// [`sum_u4_maddubs256`] on 512-bit vectors.
///
/// # Safety
/// Four readable words at `p + WORD_STRIDE * w`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn sum_nibbles_maddubs512(p: *const u8, y: &Groups) -> __m512i {
    let low = _mm512_set1_epi8(0x0f);
    let mut a = _mm512_setzero_si512();
    for w in 0..4 {
        // SAFETY: word w of the caller's four.
        let v = _mm512_set1_epi32(unsafe { p.add(WORD_STRIDE * w).cast::<i32>().read_unaligned() });
        let (lo, hi) = (_mm512_and_si512(v, low), _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
        a = _mm512_add_epi16(a, _mm512_maddubs_epi16(lo, y[w]));
        a = _mm512_add_epi16(a, _mm512_maddubs_epi16(hi, y[4 + w]));
    }
    _mm512_madd_epi16(a, _mm512_set1_epi16(1))
}

/// [`sum_u4_vnni512`] straight from a row's four nibble words (the first at `p`, see
/// [`WORD_STRIDE`]): each word is broadcast from memory once for its low nibbles (group g)
/// and its high ones (group 4 + g). The high nibbles stay in place, so they count sixteen-fold,
/// and their sum is shifted back once (exact: a multiple of 16). Fewer vector operations than
/// unpacking first.
///
/// # Safety
/// Four readable words at `p + WORD_STRIDE * w`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn sum_nibbles_vnni512(p: *const u8, y: &Groups) -> __m512i {
    let (low, high) = (_mm512_set1_epi8(0x0f), _mm512_set1_epi8(0xf0u8 as i8));
    let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    for g in 0..4 {
        // SAFETY: word g of the caller's four.
        let w = _mm512_set1_epi32(unsafe { p.add(WORD_STRIDE * g).cast::<i32>().read_unaligned() });
        lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(w, low), y[g]);
        hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(w, high), y[4 + g]);
    }
    _mm512_add_epi32(lo, _mm512_srai_epi32(hi, 4))
}

/// Bytes between a row's consecutive quant words in a word panel (eight rows' words side by
/// side). A Q4 row's word w holds its nibble bytes 4w..4w + 4: low nibbles are group w
/// (elements 4w..4w + 4), high ones group 4 + w.
const WORD_STRIDE: usize = 32;

/// A row's 32 Q8_0 quants as eight four-byte groups, from its eight words (`WORD_STRIDE` apart).
///
/// # Safety
/// Eight readable words at `p + WORD_STRIDE * w`.
#[inline]
unsafe fn q8_groups(p: *const u8) -> [i32; 8] {
    // SAFETY: the caller's.
    std::array::from_fn(|w| unsafe { p.add(WORD_STRIDE * w).cast::<i32>().read_unaligned() })
}

/// The four f16 at `p`, as f32.
///
/// # Safety
/// Eight readable bytes at `p`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn f16_x4(p: *const u8) -> [f32; 4] {
    // SAFETY: the caller's.
    let h = unsafe { _mm_loadl_epi64(p.cast()) };
    let mut o = [0.0f32; 4];
    // SAFETY: `o` holds exactly four f32.
    unsafe { _mm_storeu_ps(o.as_mut_ptr(), _mm_cvtph_ps(h)) };
    o
}

/// A word panel's block column bytes and quant-word offset for tile type `w`.
const fn column(w: u8) -> (usize, usize) {
    words_column(match w {
        Q4_0 => GgmlType::Q4_0,
        Q4_1 => GgmlType::Q4_1,
        _ => GgmlType::Q8_0,
    })
}

/// One block's contribution per token lane, in the row dot's order: `(sumi * dx) * dy` for
/// Q4_0 (whose `sumi` already has `sum8` taken off), `(dx * dy) * sumi + mx * sy` for Q4_1,
/// `sumi * (dx * dy)` for Q8_0.
macro_rules! block_term {
    ($w:expr, $mul:ident, $add:ident, $sumf:expr, $dx:expr, $dy:expr, $mx:expr, $sy:expr) => {
        match $w {
            Q4_0 => $mul($mul($sumf, $dx), $dy),
            Q4_1 => $add($mul($mul($dx, $dy), $sumf), $mul($mx, $sy)),
            _ => $mul($sumf, $mul($dx, $dy)),
        }
    };
}

macro_rules! tile256_fn {
    ($name:ident, $features:literal, $sum_u4:ident, $sum_i8:ident) => {
        /// # Safety
        /// The CPU must support the enabled features; `panel` is a word panel of type W
        /// holding `y.len()` block columns, and `half` 0 or 1.
        #[target_feature(enable = $features)]
        unsafe fn $name<const W: u8>(panel: &[u8], half: usize, y: &[TokensBlock]) -> [[f32; TOKENS]; 4] {
            let (col, qs_at) = column(W);
            let mut acc = [[_mm256_setzero_ps(); 2]; 4];
            for (j, yb) in y.iter().enumerate() {
                // SAFETY: TokensBlock is 64-byte aligned with its quants first (sixteen 32-byte
                // halves) and d/s/sum8 at 64-byte aligned offsets.
                let ys: Halves = std::array::from_fn(|k| unsafe {
                    _mm256_load_si256(yb.qs.as_ptr().cast::<__m256i>().add(k))
                });
                // SAFETY: h < 2 (the halves below): eight of the sixteen floats, 32-byte aligned.
                let lanes = |a: &[f32; TOKENS], h: usize| unsafe { _mm256_load_ps(a.as_ptr().add(8 * h)) };
                // SAFETY: the panel holds block column j (caller); its scales come first (d, then
                // m for Q4_1), eight f16 each, and this half's four rows are d[4 half..].
                let c = unsafe { panel.as_ptr().add(j * col) };
                // SAFETY: as above.
                let (dx, mx) = unsafe {
                    (f16_x4(c.add(8 * half)), if W == Q4_1 { f16_x4(c.add(16 + 8 * half)) } else { [0.0; 4] })
                };
                // Row i's first quant word.
                // SAFETY: as above.
                let x: [*const u8; 4] = std::array::from_fn(|i| unsafe { c.add(qs_at + 4 * (4 * half + i)) });
                for (i, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: each row's words lie in block column j (above).
                    let sumi = unsafe {
                        if W == Q8_0 { $sum_i8(&q8_groups(x[i]), &ys) } else { $sum_u4(x[i], &ys) }
                    };
                    for (h, acc) in acc.iter_mut().enumerate() {
                        let mut s = sumi[h];
                        if W == Q4_0 {
                            // SAFETY: as for `lanes`.
                            let sum8 = unsafe { _mm256_load_si256(yb.sum8.as_ptr().add(8 * h).cast()) };
                            s = _mm256_sub_epi32(s, sum8);
                        }
                        let t = block_term!(
                            W,
                            _mm256_mul_ps,
                            _mm256_add_ps,
                            _mm256_cvtepi32_ps(s),
                            _mm256_set1_ps(dx[i]),
                            lanes(&yb.d, h),
                            _mm256_set1_ps(mx[i]),
                            lanes(&yb.s, h)
                        );
                        *acc = _mm256_add_ps(*acc, t);
                    }
                }
            }
            acc.map(|a| {
                let mut o = [0.0f32; TOKENS];
                // SAFETY: `o` holds exactly two halves of eight f32.
                unsafe {
                    _mm256_storeu_ps(o.as_mut_ptr(), a[0]);
                    _mm256_storeu_ps(o.as_mut_ptr().add(8), a[1]);
                }
                o
            })
        }
    };
}

tile256_fn!(tile256_maddubs, "avx2,fma,f16c", sum_u4_maddubs256, sum_i8_maddubs256);
tile256_fn!(tile256_avx_vnni, "avx2,fma,f16c,avxvnni", sum_u4_avx_vnni, sum_i8_avx_vnni);
tile256_fn!(
    tile256_avx512_vnni,
    "avx2,fma,f16c,avx512vnni,avx512vl",
    sum_u4_avx512_vnni256,
    sum_i8_avx512_vnni256
);

macro_rules! tile512_fn {
    ($name:ident, $features:literal, $sum_nibbles:ident, $sum_i8:ident) => {
        /// # Safety
        /// As for the 256-bit tiles.
        #[target_feature(enable = $features)]
        unsafe fn $name<const W: u8>(panel: &[u8], half: usize, y: &[TokensBlock]) -> [[f32; TOKENS]; 4] {
            let (col, qs_at) = column(W);
            let mut acc = [_mm512_setzero_ps(); 4];
            for (j, yb) in y.iter().enumerate() {
                // The token groups stay in eight registers for all four rows.
                let ys: Groups = std::array::from_fn(|g| {
                    // SAFETY: TokensBlock is 64-byte aligned with its quants first (eight
                    // 64-byte groups) and d/s/sum8 at 64-byte aligned offsets.
                    unsafe { _mm512_load_si512(yb.qs[g].as_ptr().cast()) }
                });
                // SAFETY: as above.
                let (dy, sy, sum8) = unsafe {
                    (
                        _mm512_load_ps(yb.d.as_ptr()),
                        _mm512_load_ps(yb.s.as_ptr()),
                        _mm512_load_si512(yb.sum8.as_ptr().cast()),
                    )
                };
                // SAFETY: the panel holds block column j (caller); its scales come first (d, then
                // m for Q4_1), eight f16 each, and this half's four rows are d[4 half..].
                let c = unsafe { panel.as_ptr().add(j * col) };
                // SAFETY: as above.
                let (dx, mx) = unsafe {
                    (f16_x4(c.add(8 * half)), if W == Q4_1 { f16_x4(c.add(16 + 8 * half)) } else { [0.0; 4] })
                };
                // Row i's first quant word.
                // SAFETY: as above.
                let x: [*const u8; 4] = std::array::from_fn(|i| unsafe { c.add(qs_at + 4 * (4 * half + i)) });
                for (i, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: each row's words lie in block column j (above).
                    let mut s = unsafe {
                        if W == Q8_0 { $sum_i8(&q8_groups(x[i]), &ys, sum8) } else { $sum_nibbles(x[i], &ys) }
                    };
                    if W == Q4_0 {
                        s = _mm512_sub_epi32(s, sum8);
                    }
                    let t = block_term!(
                        W,
                        _mm512_mul_ps,
                        _mm512_add_ps,
                        _mm512_cvtepi32_ps(s),
                        _mm512_set1_ps(dx[i]),
                        dy,
                        _mm512_set1_ps(mx[i]),
                        sy
                    );
                    *acc = _mm512_add_ps(*acc, t);
                }
            }
            acc.map(|a| {
                let mut o = [0.0f32; TOKENS];
                // SAFETY: `o` holds exactly sixteen f32.
                unsafe { _mm512_storeu_ps(o.as_mut_ptr(), a) };
                o
            })
        }
    };
}

tile512_fn!(tile512_maddubs, "avx512f,avx512bw,avx2,fma,f16c", sum_nibbles_maddubs512, sum_i8_maddubs512);
tile512_fn!(tile512_vnni, "avx512f,avx512bw,avx512vnni,avx2,fma,f16c", sum_nibbles_vnni512, sum_i8_vnni512);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::pack::Packed;
    use crate::kernels::tile::tile_case;
    use crate::kernels::tile::{Tokens, tile_reference};
    use crate::testdata::{Rng, random_quant_row};
    use crate::types::QK;

    fn has(features: &[&str]) -> bool {
        features.iter().all(|f| match *f {
            "avx2" => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            "avxvnni" => is_x86_feature_detected!("avxvnni"),
            "avx512" => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw"),
            "avx512vnni" => is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl"),
            _ => panic!("unknown feature {f}"),
        })
    }

    /// Every instruction-set variant the host has equals the scalar reference exactly (the
    /// cases include an all-zero token and one with a large outlier).
    #[test]
    fn every_tile_variant_the_host_has_matches_the_reference() {
        type Tile = unsafe fn(&[u8], usize, &[TokensBlock]) -> [[f32; TOKENS]; 4];
        let variants: [(&str, &[&str], [Tile; 3]); 5] = [
            ("avx2", &["avx2"], [tile256_maddubs::<Q4_0>, tile256_maddubs::<Q4_1>, tile256_maddubs::<Q8_0>]),
            (
                "avx-vnni",
                &["avx2", "avxvnni"],
                [tile256_avx_vnni::<Q4_0>, tile256_avx_vnni::<Q4_1>, tile256_avx_vnni::<Q8_0>],
            ),
            (
                "avx512-vnni/256",
                &["avx2", "avx512vnni"],
                [tile256_avx512_vnni::<Q4_0>, tile256_avx512_vnni::<Q4_1>, tile256_avx512_vnni::<Q8_0>],
            ),
            (
                "avx512bw",
                &["avx2", "avx512"],
                [tile512_maddubs::<Q4_0>, tile512_maddubs::<Q4_1>, tile512_maddubs::<Q8_0>],
            ),
            (
                "avx512-vnni/512",
                &["avx2", "avx512", "avx512vnni"],
                [tile512_vnni::<Q4_0>, tile512_vnni::<Q4_1>, tile512_vnni::<Q8_0>],
            ),
        ];
        let mut rng = Rng::new(5);
        for (k, ty) in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0].into_iter().enumerate() {
            for (nb, tokens) in [(1, 16), (4, 9), (9, 16), (33, 3)] {
                // Seven rows: the second half's last row is the panel's zero padding.
                let (mut rows, acts) = tile_case(ty, nb, tokens, &mut rng);
                rows.extend((0..3).map(|_| random_quant_row(ty, nb, &mut rng)));
                let w = Packed::words(ty, 7, nb * QK, &rows.concat()).unwrap();
                rows.push(vec![0; nb * ty.block_bytes()]);
                let y = Tokens::new(&acts).unwrap();
                for half in 0..2 {
                    let r: [&[u8]; 4] = std::array::from_fn(|i| &rows[4 * half + i][..]);
                    let want = tile_reference(ty, r, &y);
                    for (name, needs, f) in &variants {
                        if has(needs) {
                            // SAFETY: the variant's features were detected just above; the
                            // panel holds nb columns of ty.
                            let got = unsafe { f[k](w.panel(0), half, &y.0) };
                            assert_eq!(got, want, "{name} {ty} {nb} blocks, half {half}");
                        }
                    }
                }
            }
        }
    }
}
