//! Deterministic random inputs for the kernel checks (`selftest`, benchmarks, unit tests): a
//! dependency-free generator and well-formed random rows of every element type.

use crate::types::{GgmlType, f32_to_f16};

/// xorshift64*: deterministic, dependency-free inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

/// A random but well-formed row of `blocks` blocks of `ty`: random quants (every bit pattern,
/// so extremes such as Q8_0's -128 occur) with small positive f16 scales.
pub fn random_quant_row(ty: GgmlType, blocks: usize, rng: &mut Rng) -> Vec<u8> {
    let mut row: Vec<u8> = (0..blocks * ty.block_bytes()).map(|_| rng.next_u64() as u8).collect();
    let scale = |rng: &mut Rng| f32_to_f16(0.001 + (rng.f32().abs() * 0.05)).to_le_bytes();
    for b in row.chunks_exact_mut(ty.block_bytes()) {
        match ty {
            GgmlType::F32 => b.copy_from_slice(&rng.f32().to_le_bytes()),
            GgmlType::F16 => b.copy_from_slice(&f32_to_f16(rng.f32()).to_le_bytes()),
            GgmlType::BF16 => b.copy_from_slice(&((rng.f32().to_bits() >> 16) as u16).to_le_bytes()),
            GgmlType::Q6K => b[208..210].copy_from_slice(&scale(rng)),
            GgmlType::Q8K => b[0..4].copy_from_slice(&0.01f32.to_le_bytes()),
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => {
                b[0..2].copy_from_slice(&scale(rng));
                b[2..4].copy_from_slice(&scale(rng));
            }
            _ => b[0..2].copy_from_slice(&scale(rng)),
        }
    }
    row
}
