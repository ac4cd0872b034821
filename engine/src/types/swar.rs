//! Activations packed for the scalar tiers' SWAR dots: several byte products per 64-bit
//! multiply. Owns the packed layout, the packer and the bounds that make the products exact.
//!
//! A 64-bit product of `A = Σ a_i 2^(w i)` and `B = Σ b_k 2^(w (n-1-k))` holds
//! `Σ_i a_i b_i` as its coefficient of `2^(w (n-1))`: one multiply, n products summed.
//!
//! | weights | lane width w | products per multiply | packed words per block |
//! |---|---|---|---|
//! | 4-bit (Q4_0, Q4_1) | 16 | 4 (`q - 8` in [-8, 7] by y in [-127, 127]) | 8: four low-nibble groups, four high |
//! | 8-bit (Q8_0) | 32 | 2 | 16 |
//!
//! Lower coefficients may be negative and borrow from the wanted one; a bias of half its unit,
//! added once per block, absorbs that (the bounds are in [`NIBBLE_BIAS`] and [`BYTE_BIAS`]).
//! The activation side is packed once per matrix product and used by every row.

use super::{Activation, QK, f16_to_f32};

/// `2^47`: with 4-bit weights the lower three coefficients of a block's eight products sum to at
/// most 8 (3·8·127·2^32 + 2·8·127·2^16 + 8·127) < 2^47 in magnitude, and the wanted one,
/// `Σ (q - 8) y` over 32 elements, to at most 32·8·127 = 32512 < 2^15: bits 48..64 hold it exactly.
pub const NIBBLE_BIAS: u64 = 1 << 47;
/// `2^31`: with 8-bit weights the lower coefficient of a block's sixteen products sums to at most
/// 16·128·127 < 2^31, and the wanted one to 32·128·127 < 2^31: bits 32..64 hold it exactly.
pub const BYTE_BIAS: u64 = 1 << 31;
/// One in each 16-bit lane.
pub const LANES16: u64 = 0x0001_0001_0001_0001;

/// One block of a 4-bit weights' activation.
#[derive(Clone, Copy, Debug)]
pub struct NibbleBlock {
    /// Words 0..4: elements 4g..4g+4 of the block (low nibbles of weight bytes 4g..4g+4), words
    /// 4..8: elements 16+4g..16+4g+4 (the high nibbles); element 4g+i in lane 3-i.
    pub b: [u64; 8],
    /// What the sum of unsigned-nibble products must lose to become `Σ (q - 8) y` plus the bias:
    /// `8 · LANES16 · Σ b - NIBBLE_BIAS` (wrapping).
    pub c: u64,
    /// `8 · Σ y`, which turns `Σ (q - 8) y` back into `Σ q y` (Q4_1).
    pub ysum8: i32,
    /// The block's scale, and for Q8_1 its `s`, as f32 (exact).
    pub d: f32,
    pub s: f32,
}

/// One block of an 8-bit weights' activation: pair 2g+{0,1} as `y1 + y0 · 2^32` in word g.
#[derive(Clone, Copy, Debug)]
pub struct ByteBlock {
    pub b: [u64; 16],
    pub d: f32,
}

/// The packed words, by weight width.
#[derive(Clone, Debug)]
pub enum Words {
    Nibbles(Vec<NibbleBlock>),
    Bytes(Vec<ByteBlock>),
}

/// A Q8_0 or Q8_1 activation together with its packed words.
pub struct SwarActivation {
    pub base: Box<Activation>,
    pub words: Words,
}

/// `y` as a 64-bit integer modulo 2^64, shifted to bit `at`.
fn lane(y: i8, at: u32) -> u64 {
    (y as i64 as u64).wrapping_shl(at)
}

/// The packed 4-bit words of one block of quants `qs`, scale `d` and (Q8_1) `s`.
pub fn nibble_block(qs: &[i8; QK], d: f32, s: f32) -> NibbleBlock {
    let mut b = [0u64; 8];
    for (g, w) in b.iter_mut().enumerate() {
        // Words 0..4 take elements 4g.., words 4..8 elements 16 + 4(g - 4)...
        let first = if g < 4 { 4 * g } else { 16 + 4 * (g - 4) };
        *w = (0..4).fold(0u64, |w, i| w.wrapping_add(lane(qs[first + i], 16 * (3 - i as u32))));
    }
    let sum_b = b.iter().fold(0u64, |s, &w| s.wrapping_add(w));
    NibbleBlock {
        b,
        c: (8 * LANES16).wrapping_mul(sum_b).wrapping_sub(NIBBLE_BIAS),
        ysum8: 8 * qs.iter().map(|&q| q as i32).sum::<i32>(),
        d,
        s,
    }
}

/// The packed 8-bit words of one block.
pub fn byte_block(qs: &[i8; QK], d: f32) -> ByteBlock {
    ByteBlock { b: std::array::from_fn(|g| lane(qs[2 * g + 1], 0).wrapping_add(lane(qs[2 * g], 32))), d }
}

impl SwarActivation {
    /// Packs `base` (Q8_0 or Q8_1) for 4-bit weights (`nibbles`) or Q8_0 weights.
    pub fn new(base: Activation, nibbles: bool) -> SwarActivation {
        let words = match (&base, nibbles) {
            (Activation::Q8_0(y), true) => {
                Words::Nibbles(y.iter().map(|b| nibble_block(&b.qs, f16_to_f32(b.d), 0.0)).collect())
            }
            (Activation::Q8_1(y), true) => Words::Nibbles(
                y.iter().map(|b| nibble_block(&b.qs, f16_to_f32(b.d), f16_to_f32(b.s))).collect(),
            ),
            (Activation::Q8_0(y), false) => {
                Words::Bytes(y.iter().map(|b| byte_block(&b.qs, f16_to_f32(b.d))).collect())
            }
            _ => panic!("SWAR packs Q8_0 or Q8_1 activations (Q8_0 only for 8-bit weights)"),
        };
        SwarActivation { base: Box::new(base), words }
    }
}

/// The packed words' `Σ (q - 8) y` of a 4-bit block from the unsigned-nibble products `acc`.
#[inline(always)]
pub fn nibble_sum(acc: u64, c: u64) -> i32 {
    (acc.wrapping_sub(c) as i64 >> 48) as i32
}

/// The packed words' `Σ x y` of an 8-bit block from its sixteen products `acc`.
#[inline(always)]
pub fn byte_sum(acc: u64) -> i32 {
    (acc.wrapping_add(BYTE_BIAS) as i64 >> 32) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 16-bit-lane words of four unsigned values (< 16) times the block's words, as
    /// [`nibble_sum`] reads them: a plain implementation of the multiply the kernels do.
    fn nibble_products(q: &[[u8; 4]; 8], blk: &NibbleBlock) -> u64 {
        q.iter().zip(&blk.b).fold(0u64, |acc, (q, &b)| {
            let a = (0..4).fold(0u64, |a, i| a | (q[i] as u64) << (16 * i));
            acc.wrapping_add(a.wrapping_mul(b))
        })
    }

    /// At the extremes of both operands the packed sums still equal the integer dot products.
    #[test]
    fn packed_sums_are_exact_at_the_bounds() {
        let cases: [([u8; 32], [i8; 32]); 5] = [
            ([0; 32], [127; 32]),
            ([0; 32], [-127; 32]),
            ([15; 32], [-127; 32]),
            ([15; 32], [127; 32]),
            (
                std::array::from_fn(|i| if i % 2 == 0 { 0 } else { 15 }),
                std::array::from_fn(|i| if i % 3 == 0 { -127 } else { 127 }),
            ),
        ];
        for (q, y) in cases {
            let blk = nibble_block(&y, 1.0, 0.0);
            let groups: [[u8; 4]; 8] = std::array::from_fn(|g| {
                std::array::from_fn(|i| q[if g < 4 { 4 * g + i } else { 16 + 4 * (g - 4) + i }])
            });
            let want: i32 = q.iter().zip(&y).map(|(&q, &y)| (q as i32 - 8) * y as i32).sum();
            assert_eq!(nibble_sum(nibble_products(&groups, &blk), blk.c), want);
            assert_eq!(blk.ysum8, 8 * y.iter().map(|&y| y as i32).sum::<i32>());
        }
        for (x, y) in [([-128i8; 32], [127i8; 32]), ([-128; 32], [-127; 32]), ([127; 32], [-127; 32])] {
            let blk = byte_block(&y, 1.0);
            let acc = blk.b.iter().enumerate().fold(0u64, |acc, (g, &b)| {
                let a = lane(x[2 * g], 0).wrapping_add(lane(x[2 * g + 1], 32));
                acc.wrapping_add(a.wrapping_mul(b))
            });
            let want: i32 = x.iter().zip(&y).map(|(&x, &y)| x as i32 * y as i32).sum();
            assert_eq!(byte_sum(acc), want);
        }
    }
}
