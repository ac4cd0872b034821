//! F32, F16 and BF16 weights: element conversions, dequantizers and scalar reference dots.
//! F16 rows multiply F16 activations and BF16 rows BF16-rounded ones, as in ggml.

use half::f16;

use super::{Activation, GgmlType, TypeTraits, dot_on};

pub const F32: TypeTraits = TypeTraits {
    ty: GgmlType::F32,
    id: 0,
    name: "F32",
    block_len: 1,
    block_bytes: 4,
    dequantize: dequantize_f32,
    activation_reference: |x| Activation::F32(x.to_vec()),
    dot_reference: dot_on!(F32, dot_f32_row),
    quantize: None,
};

pub const F16: TypeTraits = TypeTraits {
    ty: GgmlType::F16,
    id: 1,
    name: "F16",
    block_len: 1,
    block_bytes: 2,
    dequantize: dequantize_f16,
    activation_reference: activation_f16,
    dot_reference: dot_on!(F16, |row: &[u8], y: &[u16]| dot_f16(
        &bytemuck::pod_collect_to_vec::<u8, u16>(row),
        y
    )),
    quantize: None,
};

pub const BF16: TypeTraits = TypeTraits {
    ty: GgmlType::BF16,
    id: 30,
    name: "BF16",
    block_len: 1,
    block_bytes: 2,
    dequantize: dequantize_bf16,
    activation_reference: activation_bf16,
    dot_reference: dot_on!(F32, dot_bf16_row),
    quantize: None,
};

#[inline]
pub fn f16_to_f32(bits: u16) -> f32 {
    if cfg!(any(target_feature = "f16c", target_feature = "zfh")) {
        return f16::from_bits(bits).to_f32();
    }
    // Without a hardware conversion: the f16's exponent and mantissa moved into an f32's place
    // are its value times 2^-112 (subnormals included), so one exact multiply rebiases them.
    // `half`'s software path branches per case and was 17% of a scalar tier's token.
    let magnitude = (bits & 0x7fff) as u32;
    if magnitude >= 0x7c00 {
        return f16::from_bits(bits).to_f32();
    }
    let value = f32::from_bits(magnitude << 13) * f32::from_bits(0x7780_0000);
    f32::from_bits(value.to_bits() | ((bits as u32 & 0x8000) << 16))
}

#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

fn dequantize_f32(row: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(row.chunks_exact(4)) {
        *o = f32::from_le_bytes(c.try_into().unwrap());
    }
}

fn dequantize_f16(row: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
        *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

fn dequantize_bf16(row: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
        *o = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16);
    }
}

pub fn activation_f16(x: &[f32]) -> Activation {
    Activation::F16(x.iter().map(|&v| f32_to_f16(v)).collect())
}

/// ggml multiplies BF16 weights with BF16 activations: `x` rounded to BF16, kept as f32.
pub fn activation_bf16(x: &[f32]) -> Activation {
    Activation::F32(x.iter().map(|&v| bf16_round(v)).collect())
}

fn bf16_round(v: f32) -> f32 {
    let b = v.to_bits();
    // Round to nearest even on the upper 16 bits, as ggml's fp32->bf16 does (NaN kept quiet).
    if v.is_nan() {
        return f32::from_bits((b >> 16 | 64) << 16);
    }
    f32::from_bits(((b + (0x7fff + ((b >> 16) & 1))) >> 16) << 16)
}

pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| f16_to_f32(x) * f16_to_f32(y)).sum()
}

/// An F32 row (raw little-endian bytes, any alignment) · x.
pub fn dot_f32_row(row: &[u8], x: &[f32]) -> f32 {
    row.chunks_exact(4).zip(x).map(|(c, v)| f32::from_le_bytes(c.try_into().unwrap()) * v).sum()
}

/// A BF16 row · BF16-rounded x.
pub fn dot_bf16_row(row: &[u8], x: &[f32]) -> f32 {
    row.chunks_exact(2)
        .zip(x)
        .map(|(c, v)| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) * v)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f16 converts to the f32 `half` gives, bit for bit (NaN payloads included).
    #[test]
    fn f16_conversion_equals_half_for_every_value() {
        for bits in 0..=u16::MAX {
            assert_eq!(f16_to_f32(bits).to_bits(), f16::from_bits(bits).to_f32().to_bits(), "{bits:#06x}");
        }
    }
}
