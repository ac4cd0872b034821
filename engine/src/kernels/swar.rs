//! The scalar tiers' Q4_0, Q4_1 and Q8_0 row dots: four (4-bit) or two (8-bit) byte products per
//! 64-bit multiply against activations packed by `types::swar`, equal to the references bit for bit.
//!
//! Weight bytes are read as aligned 16-bit words (a misaligned load traps to firmware on many
//! RISC-V cores), so rows must start on an even address, as GGUF tensor data does; others take
//! the reference dot.

use crate::types::swar::{ByteBlock, NibbleBlock, SwarActivation, Words, byte_sum, nibble_sum};
use crate::types::{GgmlType, QK, f16_to_f32, q4_0, q4_1, q8_0};

/// Low nibbles of four bytes spread to 16-bit lanes.
const NIBBLES: u64 = 0x000f_000f_000f_000f;

/// Weight bytes 4g..4g+4 of a block (16-bit words `h[0]`, `h[1]`), one byte per 16-bit lane; each
/// lane's upper byte holds junk the nibble masks drop.
#[inline(always)]
fn spread4(h0: u16, h1: u16) -> u64 {
    let t = h0 as u64 | (h1 as u64) << 32;
    t | t << 8
}

/// `Σ (q - 8) y` of one block of 16 nibble bytes (eight 16-bit words) against its packed words.
#[inline(always)]
fn nibble_block_sum(h: &[u16], blk: &NibbleBlock) -> i32 {
    let mut acc = 0u64;
    for g in 0..4 {
        let t = spread4(h[2 * g], h[2 * g + 1]);
        acc = acc.wrapping_add((t & NIBBLES).wrapping_mul(blk.b[g]));
        acc = acc.wrapping_add((t >> 4 & NIBBLES).wrapping_mul(blk.b[4 + g]));
    }
    nibble_sum(acc, blk.c)
}

/// `Σ x y` of one block of 32 signed weight bytes against its packed words.
#[inline(always)]
fn byte_block_sum(qs: &[u8], blk: &ByteBlock) -> i32 {
    let mut acc = 0u64;
    for (g, &b) in blk.b.iter().enumerate() {
        let a = (qs[2 * g] as i8 as i64 as u64).wrapping_add((qs[2 * g + 1] as i8 as i64 as u64) << 32);
        acc = acc.wrapping_add(a.wrapping_mul(b));
    }
    byte_sum(acc)
}

/// One weight row of `ty` (raw block bytes) · `act`, where `ty` has a SWAR dot here.
pub fn dot(ty: GgmlType, row: &[u8], act: &SwarActivation) -> f32 {
    let words = bytemuck::try_cast_slice::<u8, u16>(row).ok();
    match (ty, &act.words, words) {
        (GgmlType::Q4_0, Words::Nibbles(y), Some(h)) => {
            // Block: d, then 16 nibble bytes (9 words). Reference order: (sumi * dx) * dy, summed.
            h.chunks_exact(9)
                .zip(y)
                .map(|(h, by)| nibble_block_sum(&h[1..], by) as f32 * f16_to_f32(h[0]) * by.d)
                .sum()
        }
        (GgmlType::Q4_1, Words::Nibbles(y), Some(h)) => {
            // Block: d, m, then 16 nibble bytes (10 words), as q8_1::dot_with_min.
            let mut sum = 0.0f32;
            for (h, by) in h.chunks_exact(10).zip(y) {
                let sumi = nibble_block_sum(&h[2..], by) + by.ysum8;
                sum += (f16_to_f32(h[0]) * by.d) * sumi as f32 + f16_to_f32(h[1]) * by.s;
            }
            sum
        }
        (GgmlType::Q8_0, Words::Bytes(y), _) => row
            .chunks_exact(2 + QK)
            .zip(y)
            .map(|(b, by)| {
                let dx = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                byte_block_sum(&b[2..], by) as f32 * (dx * by.d)
            })
            .sum(),
        _ => reference(ty, row, act),
    }
}

/// The type's reference dot on the activation under the packed words.
fn reference(ty: GgmlType, row: &[u8], act: &SwarActivation) -> f32 {
    match ty {
        GgmlType::Q4_0 => (q4_0::TRAITS.dot_reference)(row, &act.base),
        GgmlType::Q4_1 => (q4_1::TRAITS.dot_reference)(row, &act.base),
        GgmlType::Q8_0 => (q8_0::TRAITS.dot_reference)(row, &act.base),
        _ => panic!("no SWAR dot for {ty}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{Rng, random_quant_row};
    use crate::types::Activation;

    /// Each SWAR dot equals its type's reference bit for bit, on random rows, on the i16 and
    /// i32 extremes, and on a misaligned row (which takes the reference).
    #[test]
    fn swar_dots_equal_the_references() {
        let mut rng = Rng::new(21);
        for (ty, base, nibbles) in [
            (GgmlType::Q4_0, q8_0::activation_reference as fn(&[f32]) -> Activation, true),
            (GgmlType::Q4_1, crate::types::q8_1::activation_reference, true),
            (GgmlType::Q8_0, q8_0::activation_reference, false),
        ] {
            for nb in [0, 1, 2, 7, 64] {
                let x: Vec<f32> = (0..nb * QK).map(|i| if i % 5 == 0 { 1.0 } else { rng.f32() }).collect();
                let act = SwarActivation::new(base(&x), nibbles);
                let mut rows = vec![random_quant_row(ty, nb, &mut rng)];
                // Every quant at its extreme (nibble 15 or 0; byte -128), scales kept.
                let bb = ty.block_bytes();
                let mut extreme = rows[0].clone();
                for (k, b) in extreme.chunks_exact_mut(bb).enumerate() {
                    let first = if ty == GgmlType::Q4_1 { 4 } else { 2 };
                    let fill = match (ty, k % 2) {
                        (GgmlType::Q8_0, _) => 0x80,
                        (_, 0) => 0xff,
                        _ => 0x00,
                    };
                    b[first..].fill(fill);
                }
                rows.push(extreme);
                for row in &rows {
                    let want = reference(ty, row, &act);
                    assert_eq!(dot(ty, row, &act).to_bits(), want.to_bits(), "{ty} {nb} blocks");
                    let mut shifted = vec![0u8; row.len() + 1];
                    shifted[1..].copy_from_slice(row);
                    assert_eq!(dot(ty, &shifted[1..], &act).to_bits(), want.to_bits(), "{ty} misaligned");
                }
            }
        }
    }
}
