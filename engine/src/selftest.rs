//! `hartlm selftest`: runs every kernel this tier dispatches to against its scalar reference on
//! random inputs of awkward lengths and reports the worst error; non-zero exit on a mismatch.

use crate::kernels::tile::tile_case;
use crate::kernels::{self, pack::ActivationAux, pack::Packed, scalar};
use crate::testdata::{Rng, random_quant_row};
use crate::tier::{self, Launch};
use crate::types::{
    Activation, BlockQ4_0, BlockQ8_0, BlockQ8K, GgmlType, QK, QK_K, f16_to_f32, f32_to_f16, float, k4, q4_0,
    q4_1, q6_k, q8_0, q8_k,
};

const F32_LENGTHS: &[usize] =
    &[0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 255, 257, 1000, 1025, 4099];
const BLOCK_COUNTS: &[usize] = &[0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 65, 100, 129];

/// Outcome of one kernel over all its cases. Errors are relative to the sum of |terms|, the
/// natural scale of floating-point summation error.
#[derive(Debug)]
pub struct KernelReport {
    pub name: &'static str,
    pub cases: usize,
    /// Worst error divided by that case's tolerance: <= 1 passes.
    pub worst_ratio: f64,
    pub worst_error: f64,
}

impl KernelReport {
    pub fn passed(&self) -> bool {
        self.worst_ratio <= 1.0
    }
}

const U: f64 = f32::EPSILON as f64 / 2.0;

/// A tolerance of zero: any difference from the scalar reference fails.
const EXACT: f64 = 0.0;

/// Tolerance for summing `terms` products in a different order, each rounded `per_term` times.
fn tolerance(terms: usize, per_term: f64) -> f64 {
    (per_term + 8.0 * (terms.max(1) as f64).sqrt()) * U
}

struct Tracker(KernelReport);

impl Tracker {
    fn new(name: &'static str) -> Self {
        Tracker(KernelReport { name, cases: 0, worst_ratio: 0.0, worst_error: 0.0 })
    }
    fn check(&mut self, got: f32, want: f32, scale: f64, tol: f64) {
        let err =
            if got.is_finite() { (got as f64 - want as f64).abs() / scale.max(1e-30) } else { f64::INFINITY };
        let ratio = if err == 0.0 { 0.0 } else { err / tol };
        self.0.cases += 1;
        if ratio > self.0.worst_ratio || ratio.is_nan() {
            self.0.worst_ratio = if ratio.is_nan() { f64::INFINITY } else { ratio };
            self.0.worst_error = err;
        }
    }
}

fn q4_values(b: &BlockQ4_0) -> [i8; QK] {
    let mut v = [0i8; QK];
    for j in 0..QK / 2 {
        v[j] = (b.qs[j] & 0x0f) as i8 - 8;
        v[j + QK / 2] = (b.qs[j] >> 4) as i8 - 8;
    }
    v
}

/// `sum |dx dy x_i y_i|` over a block: SIMD kernels add per-lane partial products, so their
/// rounding error scales with the element terms, not with the (possibly cancelling) block sum.
fn abs_terms(x: &[i8; QK], dx: u16, y: &BlockQ8_0) -> f64 {
    let ints: i64 = x.iter().zip(&y.qs).map(|(&a, &b)| (a as i64 * b as i64).abs()).sum();
    ints as f64 * (f16_to_f32(dx) as f64 * f16_to_f32(y.d) as f64).abs()
}

fn q8_rows(rng: &mut Rng, blocks: usize) -> Vec<BlockQ8_0> {
    let mut out = vec![BlockQ8_0::default(); blocks];
    q8_0::quantize_row_q8_0(&rng.vec(blocks * QK), &mut out);
    out
}

fn q4_rows(rng: &mut Rng, blocks: usize) -> Vec<BlockQ4_0> {
    let mut out = vec![BlockQ4_0::default(); blocks];
    q4_0::quantize_row_q4_0(&rng.vec(blocks * QK), &mut out);
    out
}

/// `nb` blocks of random activations quantized to Q8_K.
fn q8_k_rows(rng: &mut Rng, nb: usize) -> Vec<BlockQ8K> {
    let mut y = vec![BlockQ8K::ZERO; nb];
    q8_k::quantize_row_q8_k(&rng.vec(nb * QK_K), &mut y);
    y
}

/// Q6_K rows against Q8_K activations: exact integer block sums, so bit-identical results.
fn q6_k_check(rng: &mut Rng) -> KernelReport {
    let mut t = Tracker::new("dot_q6_k_q8_k");
    for &nb in BLOCK_COUNTS.iter().filter(|&&n| n <= 40) {
        let row = random_quant_row(GgmlType::Q6K, nb, rng);
        let y = q8_k_rows(rng, nb);
        t.check(kernels::dot_q6_k_q8_k(&row, &y), q6_k::dot_q6_k_q8_k(&row, &y), 1.0, EXACT);
    }
    // Extremes: every value -32 (all bits clear) with scales -128 against +-127 activations.
    let nb = 9;
    let mut row = vec![0u8; nb * q6_k::Q6K_BYTES];
    for b in row.chunks_exact_mut(q6_k::Q6K_BYTES) {
        b[192..208].fill(0x80);
        b[208..210].copy_from_slice(&f32_to_f16(0.5).to_le_bytes());
    }
    let mut y = q8_k_rows(rng, nb);
    for (i, b) in y.iter_mut().enumerate() {
        b.qs = [if i % 2 == 0 { 127 } else { -127 }; QK_K];
        b.bsums = [16 * b.qs[0] as i16; QK_K / 16];
    }
    t.check(kernels::dot_q6_k_q8_k(&row, &y), q6_k::dot_q6_k_q8_k(&row, &y), 1.0, EXACT);
    t.0
}

/// Q4_K / Q5_K rows against Q8_K: exact (integer block sums, f32 in block order), on random
/// blocks and on the extremes (every value 15 or 31, scales and mins 63, +-127 activations).
fn k4_check(rng: &mut Rng, q5: bool) -> KernelReport {
    let ty = if q5 { GgmlType::Q5K } else { GgmlType::Q4K };
    let mut t = Tracker::new(if q5 { "dot_q5_k_q8_k" } else { "dot_q4_k_q8_k" });
    for &nb in BLOCK_COUNTS.iter().filter(|&&n| n <= 40) {
        let row = random_quant_row(ty, nb, rng);
        let y = q8_k_rows(rng, nb);
        t.check(kernels::dot_k4_q8_k(q5, &row, &y), k4::dot_k4_q8_k(q5, &row, &y), 1.0, EXACT);
    }
    let nb = 9;
    let mut row = vec![0xffu8; nb * ty.block_bytes()];
    for b in row.chunks_exact_mut(ty.block_bytes()) {
        b[0..2].copy_from_slice(&f32_to_f16(0.5).to_le_bytes());
        b[2..4].copy_from_slice(&f32_to_f16(0.25).to_le_bytes());
    }
    let mut y = q8_k_rows(rng, nb);
    for (i, b) in y.iter_mut().enumerate() {
        b.qs = [if i % 2 == 0 { 127 } else { -127 }; QK_K];
        b.bsums = [if i % 2 == 0 { 127 * 16 } else { -127 * 16 }; QK_K / 16];
    }
    t.check(kernels::dot_k4_q8_k(q5, &row, &y), k4::dot_k4_q8_k(q5, &row, &y), 1.0, EXACT);
    t.0
}

pub fn run(seed: u64) -> Vec<KernelReport> {
    let mut rng = Rng::new(seed);
    let mut dot = Tracker::new("dot_f32");
    for &n in F32_LENGTHS {
        for offset in [0, 1] {
            // An offset of one element makes every vector load misaligned.
            let a = rng.vec(n + offset);
            let b = rng.vec(n + offset);
            let (a, b) = (&a[offset..], &b[offset..]);
            let scale: f64 = a.iter().zip(b).map(|(x, y)| (x * y).abs() as f64).sum();
            dot.check(kernels::dot_f32(a, b), float::dot_f32(a, b), scale, tolerance(n, 1.0));
        }
    }
    let mut q4 = Tracker::new("dot_q4_0_q8_0");
    let mut q8 = Tracker::new("dot_q8_0_q8_0");
    for &nb in BLOCK_COUNTS {
        let x4 = q4_rows(&mut rng, nb);
        let x8 = q8_rows(&mut rng, nb);
        let y = q8_rows(&mut rng, nb);
        let scale4: f64 = x4.iter().zip(&y).map(|(a, b)| abs_terms(&q4_values(a), a.d, b)).sum();
        let scale8: f64 = x8.iter().zip(&y).map(|(a, b)| abs_terms(&a.qs, a.d, b)).sum();
        // Quantized dots accumulate exact integer block sums in block order on every tier: exact.
        q4.check(kernels::dot_q4_0_q8_0(&x4, &y), q4_0::dot_q4_0_q8_0(&x4, &y), scale4, EXACT);
        q8.check(kernels::dot_q8_0_q8_0(&x8, &y), q8_0::dot_q8_0_q8_0(&x8, &y), scale8, EXACT);
    }
    // Extremes: every value at +-127 (the largest products) and all-zero blocks.
    let mut extreme = vec![BlockQ8_0 { d: f32_to_f16(0.5), qs: [127; QK] }; 33];
    for (i, b) in extreme.iter_mut().enumerate() {
        if i % 2 == 1 {
            b.qs = [-127; QK];
        }
    }
    let zeros = vec![BlockQ8_0::default(); 33];
    let scale = 33.0 * 127.0 * 127.0 * 32.0 * 0.25;
    q8.check(
        kernels::dot_q8_0_q8_0(&extreme, &extreme),
        q8_0::dot_q8_0_q8_0(&extreme, &extreme),
        scale,
        tolerance(33, 3.0),
    );
    q8.check(kernels::dot_q8_0_q8_0(&zeros, &extreme), 0.0, 1.0, tolerance(33, 3.0));
    let q4_min = vec![BlockQ4_0 { d: f32_to_f16(1.0), qs: [0; QK / 2] }; 33];
    let scale = 33.0 * 8.0 * 127.0 * 32.0 * 0.5;
    q4.check(
        kernels::dot_q4_0_q8_0(&q4_min, &extreme),
        q4_0::dot_q4_0_q8_0(&q4_min, &extreme),
        scale,
        tolerance(33, 3.0),
    );
    let mut q4_1 = Tracker::new("dot_q4_1_q8_1");
    for &nb in BLOCK_COUNTS {
        let row = random_quant_row(GgmlType::Q4_1, nb, &mut rng);
        let act = kernels::activation(GgmlType::Q4_1, &rng.vec(nb * QK));
        let Activation::Q8_1(y) = act.plain() else { unreachable!("Q4_1 pairs with Q8_1") };
        let want = q4_1::dot_q4_1_q8_1(&row, y);
        q4_1.check(kernels::dot_q4_1_q8_1(&row, y), want, want.abs().max(1.0) as f64, EXACT);
    }
    let mut reports = vec![dot.0, q4.0, q8.0, q4_1.0, q6_k_check(&mut rng), row_dot_check(&mut rng)];
    reports.extend([false, true].map(|q5| k4_check(&mut rng, q5)));
    reports.extend(panel_checks(&mut rng));
    reports.extend(ime_checks(&mut rng));
    reports.extend(tile_checks(&mut rng));
    reports.extend(elementwise_checks(&mut rng));
    reports.extend(row_op_checks(&mut rng));
    reports.push(ssm_conv_checks(&mut rng));
    reports
}

/// Every type's row dot as this tier dispatches it (`kernels::ROW_KERNELS`) against the type's
/// own scalar reference (`types::TYPES`), on the same activation: quantized types exactly (exact
/// integer block sums, f32 in block order), F32 and F16 within a summation-order bound.
fn row_dot_check(rng: &mut Rng) -> KernelReport {
    let mut t = Tracker::new("row_dot");
    for ty in GgmlType::ALL {
        let traits = ty.traits();
        for &nb in BLOCK_COUNTS.iter().filter(|&&n| n * ty.block_len() <= 4096) {
            let blocks = if ty.block_len() == 1 { nb * 32 + 1 } else { nb };
            let row = random_quant_row(ty, blocks, rng);
            let act = kernels::activation(ty, &rng.vec(blocks * ty.block_len()));
            let (got, want) = (kernels::dot(ty, &row, &act), (traits.dot_reference)(&row, &act));
            if matches!(ty, GgmlType::F32 | GgmlType::F16) {
                let mut w = vec![0.0; blocks];
                (traits.dequantize)(&row, &mut w);
                let scale: f64 = w.iter().zip(act.dequantized()).map(|(a, b)| (a * b).abs() as f64).sum();
                t.check(got, want, scale, tolerance(blocks, 1.0));
            } else {
                t.check(got, want, want.abs().max(1.0) as f64, EXACT);
            }
        }
    }
    t.0
}

/// Activation quantization (exact: the same bytes) and SwiGLU's silu(g) * u, whose vector exp
/// may differ from libm's by a few ulp: tolerance 8 ulp relative, 1e-30 absolute (where the
/// clamped exp underflows/overflows silu is 0 or x to f32 precision anyway).
fn elementwise_checks(rng: &mut Rng) -> Vec<KernelReport> {
    let mut q = Tracker::new("quantize_q8_0");
    let mut qk = Tracker::new("quantize_q8_k");
    let mut silu = Tracker::new("silu_mul");
    for &nb in BLOCK_COUNTS {
        let mut x = rng.vec(nb * QK);
        // Large, tiny, zero and exactly-half-step values.
        for (i, v) in x.iter_mut().enumerate() {
            match i % 7 {
                0 => *v *= 1e4,
                1 => *v *= 1e-6,
                2 if i % 64 < 32 => *v = 0.0,
                _ => {}
            }
        }
        let mut got = vec![BlockQ8_0::default(); nb];
        let mut want = vec![BlockQ8_0::default(); nb];
        kernels::quantize_row_q8_0(&x, &mut got);
        q8_0::quantize_row_q8_0(&x, &mut want);
        for (g, w) in got.iter().zip(&want) {
            q.check(if g == w { 0.0 } else { 1.0 }, 0.0, 1.0, EXACT);
        }
        // Q8_K takes whole 256-value blocks; every fourth block has its largest magnitude twice
        // with both signs (the first must win), every fifth is all zero.
        let mut xk = x[..x.len() / QK_K * QK_K].to_vec();
        for (i, blk) in xk.chunks_exact_mut(QK_K).enumerate() {
            match i % 5 {
                3 => (blk[7], blk[200]) = (-3e4, 3e4),
                4 => blk.fill(0.0),
                _ => {}
            }
        }
        let blank = BlockQ8K { d: 1.0, qs: [1; QK_K], bsums: [1; QK_K / 16] };
        let (mut got, mut want) = (vec![blank; xk.len() / QK_K], vec![blank; xk.len() / QK_K]);
        kernels::quantize_row_q8_k(&xk, &mut got);
        q8_k::quantize_row_q8_k(&xk, &mut want);
        for (g, w) in got.iter().zip(&want) {
            let same = g.d.to_bits() == w.d.to_bits() && g.qs == w.qs && g.bsums == w.bsums;
            qk.check(if same { 0.0 } else { 1.0 }, 0.0, 1.0, EXACT);
        }
        let mut g: Vec<f32> = x.iter().map(|v| v * 0.02).collect();
        g.extend([-200.0, -88.5, -87.0, 0.0, -0.0, 88.5, 200.0, 1e-20]);
        let u: Vec<f32> = (0..g.len()).map(|_| rng.f32() * 4.0).collect();
        let mut want = g.clone();
        scalar::silu_mul(&mut want, &u);
        kernels::silu_mul(&mut g, &u);
        for (&got, &want) in g.iter().zip(&want) {
            let scale = want.abs().max(1e-30 / (8.0 * U as f32)) as f64;
            silu.check(got, want, scale, 8.0 * U);
        }
    }
    // Every f16 bit pattern converts exactly (NaNs only need to stay NaN).
    let mut conv = Tracker::new("f16_to_f32");
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let mut got = vec![0.0f32; all.len()];
    kernels::f16_to_f32_row(&all, &mut got);
    for (&h, &g) in all.iter().zip(&got) {
        let want = f16_to_f32(h);
        let same = g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan());
        conv.check(if same { 0.0 } else { 1.0 }, 0.0, 1.0, EXACT);
    }
    let mut dot16 = Tracker::new("dot_f16");
    for &n in F32_LENGTHS {
        let a: Vec<u16> = rng.vec(n).iter().map(|&v| f32_to_f16(v)).collect();
        let b: Vec<u16> = rng.vec(n).iter().map(|&v| f32_to_f16(v)).collect();
        let scale: f64 = a.iter().zip(&b).map(|(&x, &y)| (f16_to_f32(x) * f16_to_f32(y)).abs() as f64).sum();
        dot16.check(kernels::dot_f16(&a, &b), float::dot_f16(&a, &b), scale, tolerance(n, 1.0));
    }
    vec![q.0, qk.0, silu.0, conv.0, dot16.0]
}

/// The per-row operations of the forward pass against their scalar references:
/// - RMSNorm: the f64 sum of squares may be added in another order, moving the scale by at
///   most an ulp: 4 ulp of each output. In place must equal out of place exactly.
/// - softmax: polynomial exp (2 ulp), another summation order: 8 ulp of each output, 1e-37
///   absolute (the vector exp is clamped at -87, so vanishing terms may stay ~e^-87).
/// - RoPE: the same products and sums in the same order: exact.
/// - axpy: one fused rounding instead of two (results differ by at most 3 U (|o| + |a v|)):
///   4 ulp of |o| + |a v|.
/// - axpy_rows (attention's weighted sum of value rows): exact on x86, whose kernel keeps the
///   scalar roundings; RVV fuses each row's step, so each of the r rows may add the axpy
///   difference: 4 (r + 1) ulp of |o| + Σ |p v|.
/// - dot_rows (attention's scores): each row a dot in another summation order, as `dot_f32`.
fn row_op_checks(rng: &mut Rng) -> Vec<KernelReport> {
    let (mut norm, mut sm, mut rp, mut ax, mut axr, mut dr) = (
        Tracker::new("rms_norm"),
        Tracker::new("softmax"),
        Tracker::new("rope"),
        Tracker::new("axpy"),
        Tracker::new("axpy_rows"),
        Tracker::new("dot_rows"),
    );
    for &n in F32_LENGTHS.iter().filter(|&&n| n > 0) {
        let x: Vec<f32> = rng.vec(n).iter().enumerate().map(|(i, v)| v * [1.0, 30.0, 1e-3][i % 3]).collect();
        let w = rng.vec(n);
        let eps = 1e-6;
        let mut got = vec![f32::NAN; n];
        kernels::rms_norm(&x, &w, eps, &mut got);
        let scale = 1.0 / ((scalar::sum_squares_f64(&x) / n as f64) as f32 + eps).sqrt();
        let mut want = vec![0.0; n];
        scalar::scale_mul(&x, scale, &w, &mut want);
        for (&g, &wv) in got.iter().zip(&want) {
            norm.check(g, wv, wv.abs().max(1e-30) as f64, 4.0 * U);
        }
        let mut inplace = x.clone();
        kernels::rms_norm_in_place(&mut inplace, &w, eps);
        for (&a, &b) in inplace.iter().zip(&got) {
            norm.check(a, b, 1.0, EXACT);
        }

        for spread in [1.0f32, 20.0, 300.0] {
            let mut got: Vec<f32> = rng.vec(n).iter().map(|v| v * spread).collect();
            let mut want = got.clone();
            kernels::softmax(&mut got);
            scalar::softmax(&mut want);
            for (&g, &wv) in got.iter().zip(&want) {
                sm.check(g, wv, wv.abs().max(1e-37 / (8.0 * U as f32)) as f64, 8.0 * U);
            }
        }

        let a = rng.f32();
        let v = rng.vec(n);
        let o = rng.vec(n);
        let (mut got, mut want) = (o.clone(), o.clone());
        kernels::axpy(&mut got, a, &v);
        scalar::axpy(&mut want, a, &v);
        for ((&g, &wv), (&o, &vv)) in got.iter().zip(&want).zip(o.iter().zip(&v)) {
            ax.check(g, wv, o.abs() as f64 + (a * vv).abs() as f64, 4.0 * U);
        }

        for (rows, gap) in [(1, 0), (3, 5), (40, 1)] {
            let stride = n + gap;
            let (p, v) = (rng.vec(rows), rng.vec(rows * stride));
            let (mut got, mut want) = (o.clone(), o.clone());
            kernels::axpy_rows(&mut got, &p, &v, stride);
            scalar::axpy_rows(&mut want, &p, &v, stride);
            let tol = if kernels::backend() == "rvv" { 4.0 * (rows + 1) as f64 * U } else { EXACT };
            for (j, (&g, &wv)) in got.iter().zip(&want).enumerate() {
                let terms: f64 =
                    p.iter().enumerate().map(|(t, &a)| (a * v[t * stride + j]).abs() as f64).sum();
                axr.check(g, wv, o[j].abs() as f64 + terms, tol);
            }
        }

        // Row counts around the eight rows the x86 kernel takes at a time.
        for (rows, gap) in [(1, 0), (7, 3), (8, 0), (9, 1), (17, 64), (40, 5)] {
            let stride = n + gap;
            let (q, k) = (rng.vec(n), rng.vec((rows - 1) * stride + n));
            let (mut got, mut want) = (vec![f32::NAN; rows], vec![0.0; rows]);
            kernels::dot_rows(&q, &k, stride, &mut got);
            scalar::dot_rows(&q, &k, stride, &mut want);
            for (t, (&g, &wv)) in got.iter().zip(&want).enumerate() {
                let terms: f64 = q.iter().zip(&k[t * stride..]).map(|(a, b)| (a * b).abs() as f64).sum();
                dr.check(g, wv, terms, tolerance(n, 1.0));
            }
        }
    }
    for half in [1, 2, 3, 8, 17, 32, 64, 100] {
        for (hd, heads) in [(2 * half, 3), (2 * half + 6, 2)] {
            let cos = rng.vec(half);
            let sin = rng.vec(half);
            for neox in [false, true] {
                let mut got = rng.vec(hd * heads);
                let mut want = got.clone();
                kernels::rope(&mut got, hd, neox, &cos, &sin);
                scalar::rope(&mut want, hd, neox, &cos, &sin);
                for (&g, &wv) in got.iter().zip(&want) {
                    rp.check(g, wv, 1.0, EXACT);
                }
            }
        }
    }
    vec![norm.0, sm.0, rp.0, ax.0, axr.0, dr.0]
}

/// The short convolution against its scalar reference, which it must equal exactly (same
/// multiply, then fused multiply-adds in tap order): prompt lengths around the vector width,
/// odd channel counts, and LFM2-700M's 1536 channels.
fn ssm_conv_checks(rng: &mut Rng) -> KernelReport {
    let mut t = Tracker::new("ssm_conv");
    for (channels, taps) in [(1, 4), (3, 3), (33, 4), (67, 2), (129, 1), (1536, 4)] {
        for tokens in [1, 2, 3, 4, 5, 16, 64, 512] {
            if channels * tokens > 100_000 {
                continue;
            }
            let x = rng.vec((taps - 1 + tokens) * channels);
            let w = rng.vec(taps * channels);
            let (mut got, mut want) = (vec![f32::NAN; tokens * channels], vec![0.0; tokens * channels]);
            kernels::ssm_conv(&x, &w, channels, &mut got);
            scalar::ssm_conv(&x, &w, channels, &mut want);
            for (&g, &w) in got.iter().zip(&want) {
                t.check(g, w, w.abs().max(1.0) as f64, EXACT);
            }
        }
    }
    t.0
}

/// Panel (row-interleaved) matmul kernels against the unpacked dot product of each row, which
/// they must equal exactly: same integer sums, same float operations in the same order. Row
/// counts straddle panel boundaries so partial last panels are covered.
fn panel_checks(rng: &mut Rng) -> Vec<KernelReport> {
    let r = kernels::panel_rows().unwrap_or(16);
    let mut reports = Vec::new();
    for (ty, name) in [
        (GgmlType::Q4_0, "panel_q4_0"),
        (GgmlType::Q4_1, "panel_q4_1"),
        (GgmlType::Q5_0, "panel_q5_0"),
        (GgmlType::Q5_1, "panel_q5_1"),
        (GgmlType::Q8_0, "panel_q8_0"),
        (GgmlType::Q4K, "panel_q4_k"),
        (GgmlType::Q5K, "panel_q5_k"),
        (GgmlType::Q6K, "panel_q6_k"),
    ] {
        let mut t = Tracker::new(name);
        let blocks: &[usize] = if ty.block_len() == QK { &[1, 2, 3, 9, 17] } else { &[1, 2, 5] };
        for &nb in blocks {
            for rows in [1, r - 1, r + 1, 2 * r + 3] {
                let cols = nb * ty.block_len();
                let data: Vec<u8> = (0..rows).flat_map(|_| random_quant_row(ty, nb, rng)).collect();
                // This build's own layout where it packs this type, else byte panels.
                let packed = kernels::pack_weight(ty, rows, cols, &data)
                    .or_else(|| Packed::new(ty, rows, cols, &data, r))
                    .expect("packable type");
                let (r, row_bytes) = (packed.r, nb * ty.block_bytes());
                let act = kernels::activation(ty, &rng.vec(cols));
                let aux = ActivationAux::new(ty, &act);
                let mut out = vec![f32::NAN; r];
                for p in 0..packed.panels() {
                    kernels::panel_dot(&packed, p, &act, &aux, &mut out);
                    for (i, &got) in out[..packed.panel_rows(p)].iter().enumerate() {
                        let want = kernels::dot(ty, &data[(p * r + i) * row_bytes..][..row_bytes], &act);
                        t.check(got, want, want.abs().max(1.0) as f64, EXACT);
                    }
                }
            }
        }
        reports.push(t.0);
    }
    reports
}

/// Matrix-unit panel products (`kernels::panel_batch`: IME tiles on the IME tier, their scalar
/// reference elsewhere) against [`kernels::panel_dot`] per token: the same integer sums and float
/// operations, so exact. Token counts straddle tiles, row counts panels.
fn ime_checks(rng: &mut Rng) -> Vec<KernelReport> {
    let r = kernels::panel_rows().unwrap_or(16);
    let mut reports = Vec::new();
    for (ty, name) in
        [(GgmlType::Q4_0, "ime_q4_0"), (GgmlType::Q4_1, "ime_q4_1"), (GgmlType::Q8_0, "ime_q8_0")]
    {
        let mut t = Tracker::new(name);
        for &nb in &[1, 2, 3, 9] {
            for (rows, tokens) in [(1, 4), (r - 1, 5), (r + 1, 7), (2 * r + 3, 9)] {
                let cols = nb * ty.block_len();
                let data: Vec<u8> = (0..rows).flat_map(|_| random_quant_row(ty, nb, rng)).collect();
                let packed = Packed::new(ty, rows, cols, &data, r).expect("packable type");
                let acts: Vec<_> = (0..tokens).map(|_| kernels::activation(ty, &rng.vec(cols))).collect();
                let tiles = kernels::ime::ImeTokens::new(ty, &acts).expect("Q8_0 or Q8_1 activations");
                let mut got = vec![f32::NAN; tokens * r];
                let mut scratch = Vec::new();
                let mut want = vec![f32::NAN; r];
                for p in 0..packed.panels() {
                    got.fill(f32::NAN);
                    // SAFETY: `got` holds tokens × r floats, this thread's alone.
                    unsafe { kernels::panel_batch(&packed, p, &tiles, &mut scratch, got.as_mut_ptr(), r) };
                    for (tok, act) in acts.iter().enumerate() {
                        kernels::panel_dot(&packed, p, act, &ActivationAux::new(ty, act), &mut want);
                        for (i, &w) in want[..packed.panel_rows(p)].iter().enumerate() {
                            t.check(got[tok * r + i], w, w.abs().max(1.0) as f64, EXACT);
                        }
                    }
                }
            }
        }
        reports.push(t.0);
    }
    reports
}

/// Prompt tiles (`kernels::tile`, four rows times this build's token count) against the row
/// dots they replace: the same f32 operations in the same order, so exact.
fn tile_checks(rng: &mut Rng) -> Vec<KernelReport> {
    use kernels::prompt_tile;
    use kernels::tile::{TOKENS, Tokens};
    let mut reports = Vec::new();
    for (ty, name) in
        [(GgmlType::Q4_0, "tile_q4_0"), (GgmlType::Q4_1, "tile_q4_1"), (GgmlType::Q8_0, "tile_q8_0")]
    {
        let mut t = Tracker::new(name);
        for &nb in &[1, 2, 3, 9, 17] {
            for tokens in [1, TOKENS - 1, TOKENS] {
                let (rows, acts) = tile_case(ty, nb, tokens, rng);
                let y = Tokens::new(&acts).expect("Q8_0 or Q8_1 activations");
                let w = Packed::words(ty, 4, nb * QK, &rows.concat()).expect("a word-panel type");
                let got = prompt_tile(&w, 0, 0, &y);
                for (row, got) in rows.iter().zip(got) {
                    for (act, &got) in acts.iter().zip(&got) {
                        let want = kernels::dot(ty, row, act);
                        t.check(got, want, want.abs().max(1.0) as f64, EXACT);
                    }
                }
            }
        }
        reports.push(t.0);
    }
    reports
}

fn families(list: &[&str]) -> String {
    if list.is_empty() { "scalar".into() } else { list.join(", ") }
}

/// Prints the report; returns the process exit status.
pub fn command(seed: u64, launch: &Launch) -> i32 {
    let vlen = tier::vlen_bits();
    hartlm_abi::sayln!(
        "hartlm selftest: tier {} (backend {}), VLEN {}",
        tier::TIER_ID,
        kernels::backend(),
        if vlen == 0 { "n/a".to_string() } else { vlen.to_string() }
    );
    // `ok`: the installation's checks (tier, kernel families, VLEN); then every kernel's.
    let mut ok = true;
    if tier::TIER_ID != "host" && launch.tier_id != tier::TIER_ID {
        eprintln!(
            "hartlm: selftest: the launcher selected {} but this library was built as {}; \
             the installation is mixed up, reinstall the tarball",
            launch.tier_id,
            tier::TIER_ID
        );
        ok = false;
    }
    // The tag the launcher read from this file before loading it names the same tier.
    let tag = std::hint::black_box(&crate::build_info::TIER_TAG[..]);
    if tag.strip_prefix(hartlm_abi::TIER_TAG_PREFIX.as_bytes()) != Some(tier::TIER_ID.as_bytes()) {
        eprintln!(
            "hartlm: selftest: the library's {} section does not name {}",
            hartlm_abi::TIER_SECTION,
            tier::TIER_ID
        );
        ok = false;
    }
    // The kernel families compiled in must be the ones tiers.toml gives the tier the launcher
    // chose, and rustc must have been told to assume each family's x86 features.
    let compiled = kernels::compiled_families();
    let expected = tier::kernels_of(&launch.tier_id).unwrap_or(tier::KERNEL_FAMILIES);
    let same_set = compiled.len() == expected.len() && expected.iter().all(|k| compiled.contains(k));
    hartlm_abi::sayln!(
        "kernel families: {} (tiers.toml for {}: {})",
        families(&compiled),
        launch.tier_id,
        families(expected)
    );
    if !same_set {
        eprintln!(
            "hartlm: selftest: this library runs the {} kernels, but tier {} has {}; the installation is mixed up, reinstall the tarball",
            families(&compiled),
            launch.tier_id,
            families(expected)
        );
        ok = false;
    }
    let unassumed = kernels::families_without_target_features();
    if !unassumed.is_empty() {
        eprintln!(
            "hartlm: selftest: kernel families {} were built without their target features",
            families(&unassumed)
        );
        ok = false;
    }
    // Only vector tiers read vlenb; a scalar tier forced onto a V machine legitimately sees 0.
    if vlen != 0 && launch.vlen_bits != vlen {
        eprintln!("hartlm: selftest: launcher probed VLEN {} but kernels see {vlen}", launch.vlen_bits);
        ok = false;
    }
    hartlm_abi::sayln!("{:<16} {:>6} {:>14} {:>12}  result", "kernel", "cases", "max_rel_err", "err/tol");
    let mut kernels_ok = true;
    for r in run(seed) {
        hartlm_abi::sayln!(
            "{:<16} {:>6} {:>14.3e} {:>12.3}  {}",
            r.name,
            r.cases,
            r.worst_error,
            r.worst_ratio,
            if r.passed() { "ok" } else { "MISMATCH" }
        );
        kernels_ok &= r.passed();
    }
    if !ok {
        eprintln!("hartlm: selftest failed: this library does not belong where the launcher found it");
    }
    if !kernels_ok {
        eprintln!("hartlm: selftest failed: a kernel disagrees with its scalar reference");
    }
    if ok && kernels_ok {
        hartlm_abi::sayln!("selftest passed");
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_kernels_pass() {
        for r in run(7) {
            assert!(r.passed(), "{r:?}");
            assert!(r.cases > 10);
        }
    }

    #[test]
    fn tracker_flags_a_wrong_result() {
        let mut t = Tracker::new("x");
        t.check(1.0, 1.001, 1.0, tolerance(10, 1.0));
        assert!(!t.0.passed());
        let mut t = Tracker::new("x");
        t.check(f32::NAN, 1.0, 1.0, tolerance(10, 1.0));
        assert!(!t.0.passed());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_simd_kernels_match_scalar_where_the_host_has_them() {
        use crate::kernels::x86;
        let mut rng = Rng::new(3);
        for &nb in BLOCK_COUNTS {
            let x4 = q4_rows(&mut rng, nb);
            let x8 = q8_rows(&mut rng, nb);
            let y = q8_rows(&mut rng, nb);
            let a = rng.vec(nb * 7 + 1);
            let b = rng.vec(nb * 7 + 1);
            let want = [float::dot_f32(&a, &b), q4_0::dot_q4_0_q8_0(&x4, &y), q8_0::dot_q8_0_q8_0(&x8, &y)];
            // f32 dots add lane-wise (1e-3 relative); the quantized ones add block sums in the
            // scalar order, so they must be bit-identical.
            let close =
                |g: [f32; 3]| (g[0] - want[0]).abs() <= 1e-3 * (1.0 + want[0].abs()) && g[1..] == want[1..];
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            if avx2 {
                // SAFETY: AVX2, FMA and F16C were detected at run time.
                let got = unsafe {
                    [
                        x86::dot_f32_avx2(&a, &b),
                        x86::dot_q4_0_q8_0_avx2(&x4, &y),
                        x86::dot_q8_0_q8_0_avx2(&x8, &y),
                    ]
                };
                assert!(close(got), "avx2 {got:?} vs {want:?} at {nb} blocks");
                // Activation quantization: the same bytes, including exact .5 ties and zeros.
                let mut x = rng.vec(nb * QK);
                let mut blocks = x.chunks_exact_mut(QK);
                if let Some(b) = blocks.next() {
                    b.fill(0.0);
                }
                // amax 127 makes the scale exactly 1, so the x.5 values are ties.
                if let Some(b) = blocks.next() {
                    b.iter_mut().enumerate().for_each(|(i, v)| *v = i as f32 - 15.5);
                    b[31] = 127.0;
                }
                let (mut got, mut want) = (vec![BlockQ8_0::default(); nb], vec![BlockQ8_0::default(); nb]);
                // SAFETY: AVX2 and F16C were detected at run time.
                unsafe { x86::quantize_row_q8_0_avx2(&x, &mut got) };
                q8_0::quantize_row_q8_0(&x, &mut want);
                assert_eq!(got, want, "avx2 quantize_row_q8_0 at {nb} blocks");
            }
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F was detected at run time.
                let got = unsafe { x86::dot_f32_avx512(&a, &b) };
                assert!(close([got, want[1], want[2]]), "avx512 {got} vs {} at {nb} blocks", want[0]);
            }
        }
    }
}
