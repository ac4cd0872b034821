//! ggml's tensor element types: one module per type owns its block layout, constants, scalar
//! reference dot, quantizers and dequantizer, and [`TYPES`] has one row per type naming them.
//!
//! Nothing here depends on the rest of the engine: the kernels (`crate::kernels`) build on these
//! layouts and references, never the reverse. ggml's `type_traits` is the model; the per-ISA
//! half (`type_traits_cpu`) is `kernels::ROW_KERNELS`.

pub mod float;
pub mod k4;
pub mod q4_0;
pub mod q4_1;
pub mod q5_0;
pub mod q5_1;
pub mod q6_k;
pub mod q8_0;
pub mod q8_1;
pub mod q8_k;
pub mod swar;

use std::fmt;

pub use float::{f16_to_f32, f32_to_f16};
pub use q4_0::BlockQ4_0;
pub use q8_0::BlockQ8_0;
pub use q8_1::BlockQ8_1;
pub use q8_k::{BlockQ8K, QK_K};

/// Elements per block of the 32-element types (Q4_0 … Q8_1).
pub const QK: usize = 32;

/// The element types hartlm computes with, in the order of [`TYPES`]. Any other GGUF type id is
/// reported by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    BF16,
}

/// What the engine knows of one type apart from any ISA: ggml's id and name, the block layout,
/// the activation format its dot product takes, and the scalar functions every kernel of the
/// type is tested against.
pub struct TypeTraits {
    pub ty: GgmlType,
    /// The id in ggml's `enum ggml_type`.
    pub id: u32,
    pub name: &'static str,
    /// Elements per block.
    pub block_len: usize,
    /// Bytes per block.
    pub block_bytes: usize,
    /// `out[..]` = the elements of one row (whole blocks).
    pub dequantize: fn(row: &[u8], out: &mut [f32]),
    /// The activation this type's dot takes (ggml's `vec_dot_type` and `from_float`),
    /// quantized by the scalar reference.
    pub activation_reference: fn(x: &[f32]) -> Activation,
    /// The scalar reference of `row · activation`, in ggml's order of operations.
    pub dot_reference: fn(row: &[u8], act: &Activation) -> f32,
    /// ggml's reference weight quantizer (what llama-quantize writes), where `hartlm quantize`
    /// can produce the type.
    pub quantize: Option<Quantizer>,
}

/// A weight quantizer: one row of f32 values to the type's block bytes.
pub type Quantizer = fn(x: &[f32]) -> Vec<u8>;

/// One row per [`GgmlType`], in its declaration order.
pub static TYPES: [TypeTraits; 12] = [
    float::F32,
    float::F16,
    q4_0::TRAITS,
    q4_1::TRAITS,
    q5_0::TRAITS,
    q5_1::TRAITS,
    q8_0::TRAITS,
    k4::Q4_K,
    k4::Q5_K,
    q6_k::TRAITS,
    q8_k::TRAITS,
    float::BF16,
];

impl GgmlType {
    pub const ALL: [GgmlType; 12] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Q8K,
        GgmlType::BF16,
    ];

    pub fn traits(self) -> &'static TypeTraits {
        &TYPES[self as usize]
    }

    /// The id in ggml's `enum ggml_type`.
    pub fn id(self) -> u32 {
        self.traits().id
    }

    pub fn from_id(id: u32) -> Option<GgmlType> {
        TYPES.iter().find(|t| t.id == id).map(|t| t.ty)
    }

    /// Elements per block.
    pub fn block_len(self) -> usize {
        self.traits().block_len
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        self.traits().block_bytes
    }

    pub fn name(self) -> &'static str {
        self.traits().name
    }

    /// Bytes of `n` elements, or None if `n` is not whole blocks or overflows.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let bl = self.block_len() as u64;
        if !n.is_multiple_of(bl) {
            return None;
        }
        (n / bl).checked_mul(self.block_bytes() as u64)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Dequantizes one row (`out.len()` elements) of type `ty`.
pub fn dequantize(ty: GgmlType, row: &[u8], out: &mut [f32]) {
    (ty.traits().dequantize)(row, out)
}

/// An input vector in the format ggml multiplies a given weight type with. Built by
/// `kernels::activation` (this tier's quantizers) or a type's `activation_reference`.
pub enum Activation {
    F32(Vec<f32>),
    F16(Vec<u16>),
    Q8_0(Vec<BlockQ8_0>),
    Q8_1(Vec<BlockQ8_1>),
    Q8K(Vec<BlockQ8K>),
    /// A Q8_0 or Q8_1 activation with its words for the scalar tiers' SWAR dots (`swar`).
    Swar(swar::SwarActivation),
}

impl Activation {
    /// The Q8 blocks under a SWAR-packed activation; any other activation itself.
    pub fn plain(&self) -> &Activation {
        match self {
            Activation::Swar(s) => &s.base,
            a => a,
        }
    }

    /// The activation values as the dot products multiply them.
    pub fn dequantized(&self) -> Vec<f32> {
        match self {
            Activation::F32(x) => x.clone(),
            Activation::F16(x) => x.iter().map(|&v| f16_to_f32(v)).collect(),
            Activation::Q8_0(q) => {
                q.iter().flat_map(|b| b.qs.iter().map(move |&v| f16_to_f32(b.d) * v as f32)).collect()
            }
            Activation::Q8_1(q) => {
                q.iter().flat_map(|b| b.qs.iter().map(move |&v| v as f32 * f16_to_f32(b.d))).collect()
            }
            Activation::Q8K(q) => q.iter().flat_map(|b| b.qs.iter().map(move |&v| v as f32 * b.d)).collect(),
            Activation::Swar(s) => s.base.dequantized(),
        }
    }
}

/// The f16 at byte `at` of a block, as f32.
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// A row's bytes as blocks of `T`: borrowed when aligned, copied otherwise.
pub(crate) fn blocks<T: bytemuck::Pod>(row: &[u8]) -> std::borrow::Cow<'_, [T]> {
    match bytemuck::try_cast_slice(row) {
        Ok(b) => std::borrow::Cow::Borrowed(b),
        Err(_) => std::borrow::Cow::Owned(bytemuck::pod_collect_to_vec(row)),
    }
}

/// The reference dot of a type whose activation is `$variant`: a `dot_reference` entry.
macro_rules! dot_on {
    ($variant:ident, $f:expr) => {
        |row: &[u8], act: &$crate::types::Activation| match act.plain() {
            $crate::types::Activation::$variant(y) => $f(row, y),
            _ => panic!("activation built for another weight type"),
        }
    };
}
pub(crate) use dot_on;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_follow_the_enum_and_ggml_ids_are_unique() {
        for (i, t) in TYPES.iter().enumerate() {
            assert_eq!(t.ty as usize, i, "{} is out of place", t.name);
            assert_eq!(GgmlType::from_id(t.id), Some(t.ty));
        }
        assert_eq!(GgmlType::ALL.map(|t| t.traits().ty), GgmlType::ALL);
    }
}
