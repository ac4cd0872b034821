//! The compute kernels of this tier and the one mechanism that picks them: [`dispatch!`], keyed on
//! the kernel families the build compiled in, and [`ROW_KERNELS`], one row per weight type.
//!
//! A tier's families (`kernels` in variants/tiers.toml) reach the code as
//! `cfg(hartlm_kernels = "<family>")`, emitted by engine/build.rs, which refuses a table whose
//! tier lacks a CPU feature a family's kernels use. The launcher loads a tier only on CPUs with
//! all of its `requires`, so the choice is static. Each family has one module (`rvv`, `x86`)
//! whose functions carry the generic name plus, where an ISA has several widths, a suffix; the
//! scalar references live with their types (`crate::types`) or in `scalar`.

/// `dispatch!("rvv" => rvv::k(..), "avx2" => x86::k_avx2(..), scalar => scalar::k(..))`: the first
/// arm whose family this build compiled in runs; the scalar arm otherwise. It must be the whole
/// body of the function (an arm returns). List arms in [`ALL_FAMILIES`] order.
macro_rules! dispatch {
    ($($family:literal => $kernel:expr,)* scalar => $scalar:expr $(,)?) => {{
        $(
            #[cfg(hartlm_kernels = $family)]
            #[allow(unreachable_code, unused_unsafe)]
            {
                // SAFETY: engine/build.rs compiles a family in only for a tier whose tiers.toml
                // row requires every CPU feature the family's kernels use, and the launcher
                // loads a tier only on CPUs that have all of them.
                return unsafe { $kernel };
            }
        )*
        #[allow(unreachable_code)]
        $scalar
    }};
}

pub mod ime;
pub mod pack;
pub mod scalar;
pub mod swar;
pub mod tile;

#[cfg(target_arch = "riscv64")]
pub mod rvv;
#[cfg(target_arch = "x86_64")]
pub mod x86;
#[cfg(target_arch = "x86_64")]
pub mod x86_f32;
#[cfg(target_arch = "x86_64")]
pub mod x86_tile;

use crate::types::{
    Activation, BlockQ4_0, BlockQ8_0, BlockQ8_1, BlockQ8K, GgmlType, blocks, dot_on, float, q4_1, q5_0, q5_1,
    q8_0, q8_1, q8_k,
};
use pack::{ActivationAux, Packed};

pub use crate::build_info::{ALL_FAMILIES, compiled_families, families_without_target_features};

/// The implementation family the row kernels of this build run: the first compiled family.
pub fn backend() -> &'static str {
    compiled_families().into_iter().find(|f| !matches!(*f, "zvfh" | "ime")).unwrap_or("scalar")
}

/// The kernels of one weight type in this build, as ggml's `type_traits_cpu` row: the scalar
/// references are the type's own (`types::TYPES`).
pub struct RowKernels {
    pub ty: GgmlType,
    /// Quantizes an activation row into the format the type's dot takes.
    pub activation: fn(x: &[f32]) -> Activation,
    /// One weight row (raw block bytes, any alignment) · an activation from `activation`.
    pub dot: fn(row: &[u8], act: &Activation) -> f32,
}

/// One row per [`GgmlType`], in its declaration order.
pub static ROW_KERNELS: [RowKernels; 12] = [
    RowKernels {
        ty: GgmlType::F32,
        activation: float::F32.activation_reference,
        dot: dot_on!(F32, |row: &[u8], x: &[f32]| match bytemuck::try_cast_slice(row) {
            Ok(w) => dot_f32(w, x),
            Err(_) => float::dot_f32_row(row, x),
        }),
    },
    RowKernels {
        ty: GgmlType::F16,
        activation: float::activation_f16,
        dot: dot_on!(F16, |row: &[u8], x: &[u16]| match bytemuck::try_cast_slice::<u8, u16>(row) {
            Ok(w) => dot_f16(w, x),
            Err(_) => dot_f16(&bytemuck::pod_collect_to_vec::<u8, u16>(row), x),
        }),
    },
    RowKernels {
        ty: GgmlType::Q4_0,
        activation: |x| swar_packed(activation_q8_0(x), SwarFor::Nibbles),
        dot: |row, act| match act {
            Activation::Swar(s) => swar::dot(GgmlType::Q4_0, row, s),
            _ => (dot_on!(Q8_0, |row: &[u8], y: &[BlockQ8_0]| dot_q4_0_q8_0(&blocks(row), y)))(row, act),
        },
    },
    RowKernels {
        ty: GgmlType::Q4_1,
        activation: |x| swar_packed(activation_q8_1(x), SwarFor::Q4_1),
        dot: |row, act| match act {
            Activation::Swar(s) => swar::dot(GgmlType::Q4_1, row, s),
            _ => (dot_on!(Q8_1, dot_q4_1_q8_1))(row, act),
        },
    },
    RowKernels { ty: GgmlType::Q5_0, activation: activation_q8_0, dot: dot_on!(Q8_0, q5_0::dot_q5_0_q8_0) },
    RowKernels { ty: GgmlType::Q5_1, activation: activation_q8_1, dot: dot_on!(Q8_1, q5_1::dot_q5_1_q8_1) },
    RowKernels {
        ty: GgmlType::Q8_0,
        activation: |x| swar_packed(activation_q8_0(x), SwarFor::Bytes),
        dot: |row, act| match act {
            Activation::Swar(s) => swar::dot(GgmlType::Q8_0, row, s),
            _ => (dot_on!(Q8_0, |row: &[u8], y: &[BlockQ8_0]| dot_q8_0_q8_0(&blocks(row), y)))(row, act),
        },
    },
    RowKernels {
        ty: GgmlType::Q4K,
        activation: activation_q8_k,
        dot: dot_on!(Q8K, |row: &[u8], y: &[BlockQ8K]| dot_k4_q8_k(false, row, y)),
    },
    RowKernels {
        ty: GgmlType::Q5K,
        activation: activation_q8_k,
        dot: dot_on!(Q8K, |row: &[u8], y: &[BlockQ8K]| dot_k4_q8_k(true, row, y)),
    },
    RowKernels { ty: GgmlType::Q6K, activation: activation_q8_k, dot: dot_on!(Q8K, dot_q6_k_q8_k) },
    RowKernels { ty: GgmlType::Q8K, activation: activation_q8_k, dot: dot_on!(Q8K, q8_k::dot_q8_k_q8_k) },
    RowKernels {
        ty: GgmlType::BF16,
        activation: float::activation_bf16,
        dot: dot_on!(F32, float::dot_bf16_row),
    },
];

/// `x` in the activation format of `ty` weights, quantized by this tier's kernels.
pub fn activation(ty: GgmlType, x: &[f32]) -> Activation {
    (ROW_KERNELS[ty as usize].activation)(x)
}

/// One weight row of type `ty` · `act` (which must come from [`activation`] for `ty`).
pub fn dot(ty: GgmlType, row: &[u8], act: &Activation) -> f32 {
    (ROW_KERNELS[ty as usize].dot)(row, act)
}

fn activation_q8_0(x: &[f32]) -> Activation {
    q8_0::activation_with(x, quantize_row_q8_0)
}

fn activation_q8_1(x: &[f32]) -> Activation {
    q8_1::activation_with(x, quantize_row_q8_0)
}

/// Which SWAR dot an activation is packed for.
#[derive(Clone, Copy)]
enum SwarFor {
    /// Q4_0 weights.
    Nibbles,
    /// Q4_1 weights: nibbles too, but the vector tiers' panels take the plain activation.
    Q4_1,
    /// Q8_0 weights.
    Bytes,
}

/// `act` packed for the SWAR dots ([`swar`]) where this build multiplies that weight type with
/// them: the tiers without a SIMD dot for it. Unchanged elsewhere.
fn swar_packed(act: Activation, #[allow(unused_variables)] what: SwarFor) -> Activation {
    dispatch!(
        // RVV multiplies every one of these from panels; AVX2 has row dots for all three;
        // SSSE3 for Q4_0 and Q8_0 only.
        "rvv" => act,
        "avx2" => act,
        "ssse3" => if matches!(what, SwarFor::Q4_1) { swar_activation(act, what) } else { act },
        scalar => swar_activation(act, what),
    )
}

fn swar_activation(act: Activation, what: SwarFor) -> Activation {
    Activation::Swar(crate::types::swar::SwarActivation::new(act, !matches!(what, SwarFor::Bytes)))
}

fn activation_q8_k(x: &[f32]) -> Activation {
    q8_k::activation_with(x, quantize_row_q8_k)
}

/// `sum(a[i] * b[i])` over the shorter length.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    dispatch!(
        "rvv" => rvv::dot_f32(a, b),
        "avx512" => x86::dot_f32_avx512(a, b),
        "avx2" => x86::dot_f32_avx2(a, b),
        scalar => float::dot_f32(a, b),
    )
}

/// Dot product of Q4_0 weights with Q8_0 activations, block by block.
pub fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    // A 512-bit version ran 3% slower on this project's Zen 4 host (16 MiB Q4_0 matvec, one
    // thread), whose AVX-512 units are 256 bits wide: the AVX2 kernel serves v4 too.
    dispatch!(
        "rvv" => rvv::dot_q4_0_q8_0(x, y),
        "avx2" => x86::dot_q4_0_q8_0_avx2(x, y),
        "ssse3" => x86::dot_q4_0_q8_0_ssse3(x, y),
        scalar => crate::types::q4_0::dot_q4_0_q8_0(x, y),
    )
}

/// A Q4_1 weight row (raw block bytes) with Q8_1 activations, block by block; bit-identical
/// to the scalar dot on every tier.
pub fn dot_q4_1_q8_1(row: &[u8], y: &[BlockQ8_1]) -> f32 {
    dispatch!(
        "avx2" => x86::dot_q4_1_q8_1_avx2(row, y),
        scalar => q4_1::dot_q4_1_q8_1(row, y),
    )
}

/// A Q6_K weight row (raw block bytes) with Q8_K activations, block by block; bit-identical to
/// the scalar dot on every tier.
pub fn dot_q6_k_q8_k(row: &[u8], y: &[BlockQ8K]) -> f32 {
    dispatch!(
        "rvv" => rvv::dot_q6_k_q8_k(row, y),
        "avx2" => x86::dot_q6_k_q8_k_avx2(row, y),
        scalar => crate::types::q6_k::dot_q6_k_q8_k(row, y),
    )
}

/// A Q4_K (`q5` false) or Q5_K weight row (raw block bytes) with Q8_K activations;
/// bit-identical to the scalar dot on every tier.
pub fn dot_k4_q8_k(q5: bool, row: &[u8], y: &[BlockQ8K]) -> f32 {
    dispatch!(
        "rvv" => rvv::dot_k4_q8_k(q5, row, y),
        "avx2" => x86::dot_k4_q8_k_avx2(q5, row, y),
        scalar => crate::types::k4::dot_k4_q8_k(q5, row, y),
    )
}

/// Dot product of Q8_0 weights with Q8_0 activations, block by block.
pub fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    // The AVX2 kernel serves v4 too, as for Q4_0.
    dispatch!(
        "rvv" => rvv::dot_q8_0_q8_0(x, y),
        "avx2" => x86::dot_q8_0_q8_0_avx2(x, y),
        "ssse3" => x86::dot_q8_0_q8_0_ssse3(x, y),
        scalar => q8_0::dot_q8_0_q8_0(x, y),
    )
}

/// Q8_0 activation quantization, bit-identical to [`q8_0::quantize_row_q8_0`] on every tier.
pub fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    dispatch!(
        "rvv" => rvv::quantize_row_q8_0(x, out),
        "avx2" => x86::quantize_row_q8_0_avx2(x, out),
        scalar => q8_0::quantize_row_q8_0(x, out),
    )
}

/// Q8_K activation quantization, bit-identical to [`q8_k::quantize_row_q8_k`] on every tier.
pub fn quantize_row_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    dispatch!(
        "rvv" => rvv::quantize_row_q8_k(x, out),
        scalar => q8_k::quantize_row_q8_k(x, out),
    )
}

/// `g[i] = silu(g[i]) * u[i]`, SwiGLU's gate. Vector tiers use a polynomial exp (selftest bounds
/// its error); the others libm's.
pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    dispatch!(
        "rvv" => rvv::silu_mul(g, u),
        "avx2" => x86_f32::silu_mul_avx2(g, u),
        scalar => scalar::silu_mul(g, u),
    )
}

/// ggml's RMSNorm, `out[i] = x[i] * scale * w[i]` with `scale = 1 / sqrt(mean(x^2) + eps)`,
/// the mean's squares rounded to f32 and summed in f64. Vector tiers sum in another order.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len().min(w.len()).min(out.len());
    let scale = rms_scale(&x[..n], eps);
    // rvv: n floats of x and w are read, n of out written.
    dispatch!(
        "rvv" => rvv::scale_mul(x.as_ptr(), scale, w.as_ptr(), out.as_mut_ptr(), n),
        scalar => scalar::scale_mul(x, scale, w, out),
    )
}

/// [`rms_norm`] with `x` as its own output.
pub fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    let n = x.len().min(w.len());
    let scale = rms_scale(&x[..n], eps);
    // rvv: element i is read before it is written.
    dispatch!(
        "rvv" => rvv::scale_mul(x.as_ptr(), scale, w.as_ptr(), x.as_mut_ptr(), n),
        scalar => scalar::scale_mul_in_place(x, scale, w),
    )
}

fn rms_scale(x: &[f32], eps: f32) -> f32 {
    1.0 / ((sum_squares_f64(x) / x.len() as f64) as f32 + eps).sqrt()
}

/// `sum(x[i] * x[i])`, each square rounded to f32, summed in f64.
fn sum_squares_f64(x: &[f32]) -> f64 {
    dispatch!(
        "rvv" => rvv::sum_squares_f64(x),
        scalar => scalar::sum_squares_f64(x),
    )
}

/// Softmax in place ([`scalar::softmax`]); vector tiers use the polynomial exp of [`silu_mul`]
/// and sum in another order.
pub fn softmax(x: &mut [f32]) {
    dispatch!(
        "rvv" => rvv::softmax(x),
        "avx2" => x86_f32::softmax_avx2(x),
        scalar => scalar::softmax(x),
    )
}

/// RoPE ([`scalar::rope`]), equal to the scalar reference bit for bit on every tier.
pub fn rope(x: &mut [f32], hd: usize, neox: bool, cos: &[f32], sin: &[f32]) {
    let half = cos.len().min(sin.len());
    assert!(2 * half <= hd, "rope: {half} pairs in a head of {hd}");
    // rvv: 2 half <= hd floats of each head are rewritten, half of cos and sin read.
    dispatch!(
        "rvv" => if half > 0 {
            for head in x.chunks_exact_mut(hd) {
                rvv::rope_head(head.as_mut_ptr(), neox, cos.as_ptr(), sin.as_ptr(), half)
            }
        },
        scalar => scalar::rope(x, hd, neox, &cos[..half], &sin[..half]),
    )
}

/// [`scalar::dot_rows`]: `out[t] = Σ_j q[j] * k[t * stride + j]` for rows `t < out.len()`, one
/// query against many key rows (attention's scores). Sums in another order than the scalar dot.
pub fn dot_rows(q: &[f32], k: &[f32], stride: usize, out: &mut [f32]) {
    assert!(
        out.is_empty() || k.len() >= (out.len() - 1) * stride + q.len(),
        "dot_rows: {} rows of {} at stride {stride} in {} floats",
        out.len(),
        q.len(),
        k.len()
    );
    dispatch!(
        "rvv" => out.iter_mut().enumerate().for_each(|(t, o)| *o = rvv::dot_f32(&k[t * stride..][..q.len()], q)),
        "avx2" => x86_f32::dot_rows_avx2(q, k.as_ptr(), stride, out),
        scalar => scalar::dot_rows(q, k, stride, out),
    )
}

/// `out[i] += a * v[i]`; vector tiers fuse the multiply-add (one rounding instead of two).
pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    dispatch!(
        "rvv" => rvv::axpy(out, a, v),
        scalar => scalar::axpy(out, a, v),
    )
}

/// [`scalar::axpy_rows`]: `out[j] += Σ_t p[t] * v[t * stride + j]` for rows `t < p.len()`. x86
/// keeps `out` in registers across the rows and equals the reference bit for bit; RVV runs
/// [`axpy`] per row (fused).
pub fn axpy_rows(out: &mut [f32], p: &[f32], v: &[f32], stride: usize) {
    let n = out.len();
    assert!(
        p.is_empty() || v.len() >= (p.len() - 1) * stride + n,
        "axpy_rows: {} rows of {n} at stride {stride} in {} floats",
        p.len(),
        v.len()
    );
    dispatch!(
        "rvv" => p.iter().enumerate().for_each(|(t, &a)| rvv::axpy(out, a, &v[t * stride..][..n])),
        "avx512" => x86::axpy_rows_avx512(out, p, v.as_ptr(), stride),
        "avx2" => x86::axpy_rows_avx2(out, p, v.as_ptr(), stride),
        scalar => scalar::axpy_rows(out, p, v, stride),
    )
}

/// `dst[i] = f16 src[i]` as f32 (exact on every tier).
pub fn f16_to_f32_row(src: &[u16], dst: &mut [f32]) {
    dispatch!(
        "rvv" => rvv::f16_to_f32_row(src, dst),
        scalar => scalar::f16_to_f32_row(src, dst),
    )
}

/// `sum(a[i] * b[i])` of two f16 vectors, in f32.
pub fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    dispatch!(
        "rvv" => rvv::dot_f16(a, b),
        scalar => float::dot_f16(a, b),
    )
}

/// The vector length in bits this code runs with (0 without vector kernels): read from the
/// hardware once per process.
pub fn vlen_bits() -> u32 {
    dispatch!(
        "rvv" => u32::try_from(rvv::vlenb() * 8).unwrap_or(u32::MAX),
        scalar => 0,
    )
}

/// Rows per [`pack::Layout::Bytes`] panel the RVV kernels want weights packed into (the vector
/// register's bytes), or None on other builds.
pub fn panel_rows() -> Option<usize> {
    dispatch!(
        "rvv" => Some(rvv::vlenb()),
        scalar => None,
    )
}

/// The `rows` x `cols` matrix of `ty` in `data` packed as this build's matmul kernels read it
/// ([`pack::Packed`]), or None where they multiply ggml's row layout directly.
pub fn pack_weight(ty: GgmlType, rows: usize, cols: usize, data: &[u8]) -> Option<Packed> {
    dispatch!(
        "rvv" => Packed::new(ty, rows, cols, data, rvv::vlenb()),
        "avx2" => Packed::words(ty, rows, cols, data),
        scalar => {
            let _ = (ty, rows, cols, data);
            None
        },
    )
}

/// `out[i] = row i of panel p · act` for the rows of panel `p` that exist (`out` holds at least
/// that many). `aux` must come from `act`, whose type must be the one ggml pairs with `w.ty`.
pub fn panel_dot(w: &Packed, p: usize, act: &Activation, aux: &ActivationAux, out: &mut [f32]) {
    let out = &mut out[..w.panel_rows(p)];
    if w.blocks() == 0 {
        out.fill(0.0);
        return;
    }
    dispatch!(
        "rvv" => rvv::panel_dot(w, p, act, aux, out),
        "avx2" => x86::panel_dot_avx2(w, p, act, aux, out),
        scalar => pack::panel_dot_reference(w, p, act, aux, out),
    )
}

/// Whether this build multiplies a batch of tokens by `ty` panels on a matrix unit
/// ([`panel_batch`]); the CPU's vector length must be the one its tiles are written for.
pub fn panel_batch_supported(#[allow(unused_variables)] ty: GgmlType) -> bool {
    dispatch!(
        "ime" => rvv::ime::active() && ime::supported(ty),
        scalar => false,
    )
}

/// `out[t * ld + i]` = row i of panel `p` · token t for every token of `tokens` and existing row
/// of the panel, on the IME unit where [`panel_batch_supported`], else by the scalar reference of
/// the same tiles. Bit-identical to [`panel_dot`] per token. `scratch` is reused between calls.
///
/// # Safety
/// As [`ime::panel_batch`]: `out` is writable at `t * ld + i` for those tokens and rows, and no
/// other thread touches them during the call.
pub unsafe fn panel_batch(
    w: &Packed,
    p: usize,
    tokens: &ime::ImeTokens,
    scratch: &mut Vec<u8>,
    out: *mut f32,
    ld: usize,
) {
    dispatch!(
        "ime" => if rvv::ime::active() {
            let records = |ty, panel: &[u8], r, nb, out: &mut [u8]| {
                // SAFETY: this arm runs on IME tiers at VLEN 256 only; ime::panel_batch sizes the records.
                unsafe { rvv::ime::row_records(ty, panel, r, nb, out) }
            };
            let tile = |ty, records: &[u8], groups, rg0, tokens: &[u8]| {
                // SAFETY: as above; ime::panel_batch sizes the tiles.
                unsafe { rvv::ime::tiles(ty, records, groups, rg0, tokens) }
            };
            ime::panel_batch(w, p, tokens, scratch, out, ld, &records, &tile)
        } else {
            ime::panel_batch(w, p, tokens, scratch, out, ld, &ime::row_records_reference, &ime::tiles_reference)
        },
        // SAFETY: `out` is the caller's, as this function's contract says.
        scalar => unsafe {
            ime::panel_batch(w, p, tokens, scratch, out, ld, &ime::row_records_reference, &ime::tiles_reference)
        },
    )
}

/// A prompt tile (`tile`): `out[i][t]` = row `4 half + i` of panel `p` · token t, for the four
/// rows of one half of a [`pack::Layout::Words`] panel of `w` (Q4_0 and Q8_0 with Q8_0 tokens,
/// Q4_1 with Q8_1 ones). Rows past the matrix end come out zero.
pub fn prompt_tile(w: &Packed, p: usize, half: usize, y: &tile::Tokens) -> [[f32; tile::TOKENS]; 4] {
    assert!(
        w.layout == pack::Layout::Words && half < 2 && y.0.len() <= w.blocks(),
        "tile: {w:?} panel {p} half {half} with {} blocks of tokens",
        y.0.len()
    );
    // x86: VNNI is used only when detected; the panel's size was checked above.
    dispatch!(
        "avx512" => x86_tile::tile_avx512(w.ty, w.panel(p), half, &y.0),
        "avx2" => x86_tile::tile_avx2(w.ty, w.panel(p), half, &y.0),
        scalar => {
            let rows: [Vec<u8>; 4] = std::array::from_fn(|i| w.words_row(p, 4 * half + i));
            tile::tile_reference(w.ty, [&rows[0], &rows[1], &rows[2], &rows[3]], y)
        },
    )
}

/// LFM2's short convolution ([`scalar::ssm_conv`]): `x` is `k - 1 + t` time-major rows of `e`
/// channels (carried state, then the batch), `w` the `k` taps tap-major, `out` `t` rows.
/// Equal to the scalar reference on every tier.
pub fn ssm_conv(x: &[f32], w: &[f32], e: usize, out: &mut [f32]) {
    let (k, t) = (w.len() / e.max(1), out.len() / e.max(1));
    assert!(
        e > 0 && w.len() == k * e && out.len() == t * e && x.len() == (k + t).saturating_sub(1) * e,
        "ssm_conv: x {} / w {} / out {} floats for {e} channels",
        x.len(),
        w.len(),
        out.len()
    );
    if k == 0 || t == 0 {
        out.fill(0.0);
        return;
    }
    // rvv: the lengths were checked above.
    dispatch!(
        "rvv" => rvv::ssm_conv(x.as_ptr(), w.as_ptr(), e, k, t, out.as_mut_ptr()),
        scalar => scalar::ssm_conv(x, w, e, out),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{Rng, random_quant_row};
    use crate::types::dequantize;

    #[test]
    fn dot_equals_dequantized_dot_for_every_type() {
        let mut rng = Rng::new(11);
        for ty in GgmlType::ALL {
            let blocks = if ty.block_len() == 1 { 512 } else { 1024 / ty.block_len() };
            let n = blocks * ty.block_len();
            let row = random_quant_row(ty, blocks, &mut rng);
            let x = rng.vec(n);
            let act = activation(ty, &x);
            let mut w = vec![0.0; n];
            dequantize(ty, &row, &mut w);
            let xa = act.dequantized();
            let want: f64 = w.iter().zip(&xa).map(|(a, b)| *a as f64 * *b as f64).sum();
            let scale: f64 = w.iter().zip(&xa).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
            let got = dot(ty, &row, &act) as f64;
            // The `_1` types add m_x * s_y where ggml stores s_y = d_y * sum(q_y) as f16 (2^-11).
            let tol = if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) { 2e-3 } else { 1e-5 };
            assert!((got - want).abs() <= tol * scale.max(1e-6), "{ty}: {got} vs {want} (scale {scale})");
        }
    }

    #[test]
    fn the_kernel_table_follows_the_type_table() {
        for (k, t) in ROW_KERNELS.iter().zip(&crate::types::TYPES) {
            assert_eq!(k.ty, t.ty);
        }
    }
}
