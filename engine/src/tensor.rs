//! Weight matrices of every supported ggml type: row dequantization, the activation format ggml
//! pairs with each type (Q8_0, Q8_1, Q8_K, F16, F32), and row · activation dot products.
//!
//! Formulas follow ggml's reference code (`ggml-quants.c`) so results match llama.cpp; the
//! SIMD kernels in `kernels` take over the quantized dots, panels and prompt tiles.

use crate::ggml_type::GgmlType;
use crate::kernels::tile::{self, Tokens};
use crate::kernels::{self, pack::ActivationAux, pack::Packed};
use crate::pool::{Pool, split};
use crate::quant::{BlockQ4_0, BlockQ8_0, QK, f16_to_f32, f32_to_f16};

pub const QK_K: usize = 256;

/// A row-major matrix stored in a GGUF tensor: `rows` rows of `cols` elements each.
#[derive(Clone, Copy, Debug)]
pub struct Weight<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
    /// The same matrix in the panel layout of this build's kernels, when it has one.
    pub packed: Option<&'a Packed>,
}

impl<'a> Weight<'a> {
    pub fn row_bytes(&self) -> usize {
        self.cols / self.ty.block_len() * self.ty.block_bytes()
    }

    pub fn row(&self, r: usize) -> &'a [u8] {
        let n = self.row_bytes();
        &self.data[r * n..(r + 1) * n]
    }

    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        dequantize(self.ty, self.row(r), &mut out[..self.cols]);
    }

    /// `out[b][r] = row(r) · x[b]` for a batch of `x.len() / cols` vectors (row-major), rows
    /// split across the pool's workers. Each `x[b]` is quantized once, as ggml does, and each
    /// weight row is used for the whole batch while it is in cache.
    pub fn matmul(&self, x: &[f32], out: &mut [f32], pool: &Pool) {
        let batch = x.len() / self.cols;
        let acts: Vec<Activation> = x.chunks_exact(self.cols).map(|v| Activation::new(self.ty, v)).collect();
        let rows = self.rows;
        debug_assert!(out.len() >= batch * rows);
        if let Some(p) = self.packed {
            return matmul_packed(p, &acts, out, pool);
        }
        // Q4_0/Q8_0 rows take four tokens per kernel call: each block is unpacked once.
        let q8: Vec<&[BlockQ8_0]> = acts
            .iter()
            .filter_map(|a| if let Activation::Q8_0(q) = a { Some(&q[..]) } else { None })
            .collect();
        let by_four = matches!(self.ty, GgmlType::Q4_0 | GgmlType::Q8_0) && q8.len() == batch;
        // Where this build has tiles, four rows times `tile::TOKENS` tokens per call (`kernels::tile`).
        let token_sets: Vec<Tokens> = if tile::supported(self.ty) && batch >= 4 {
            acts.chunks(tile::TOKENS).map_while(Tokens::new).collect()
        } else {
            Vec::new()
        };
        let tiled_tokens = (token_sets.len() * tile::TOKENS).min(batch);
        let out = SyncPtr(out.as_mut_ptr());
        let put = |b: usize, r: usize, v: f32| {
            // SAFETY: each (b, r) is written by exactly one worker (rows are split into disjoint
            // ranges) and lies below batch * rows <= out.len(); `run` joins before returning.
            unsafe { *out.get().add(b * rows + r) = v }
        };
        // The tokens from `b` on, against row r.
        let row_tail = |r: usize, mut b: usize| {
            let row = self.row(r);
            if by_four {
                while b + 4 <= batch {
                    let ys = [q8[b], q8[b + 1], q8[b + 2], q8[b + 3]];
                    let v = match self.ty {
                        GgmlType::Q4_0 => kernels::dot_q4_0_q8_0_x4(&blocks_q4_0(row), ys),
                        _ => kernels::dot_q8_0_q8_0_x4(&blocks_q8_0(row), ys),
                    };
                    for (i, v) in v.into_iter().enumerate() {
                        put(b + i, r, v);
                    }
                    b += 4;
                }
            }
            for (b, act) in acts.iter().enumerate().skip(b) {
                put(b, r, act.dot(self.ty, row));
            }
        };
        // Workers take groups of four rows, so tiles never straddle two workers.
        let work = |groups: std::ops::Range<usize>| {
            for g in groups {
                let r0 = 4 * g;
                if token_sets.is_empty() || r0 + 4 > rows {
                    (r0..(r0 + 4).min(rows)).for_each(|r| row_tail(r, 0));
                    continue;
                }
                let four = [self.row(r0), self.row(r0 + 1), self.row(r0 + 2), self.row(r0 + 3)];
                for (k, y) in token_sets.iter().enumerate() {
                    for (i, v) in tile::tile(self.ty, four, y).into_iter().enumerate() {
                        let b0 = k * tile::TOKENS;
                        // Lanes past the batch are padding.
                        v.iter().take(batch - b0).enumerate().for_each(|(t, &v)| put(b0 + t, r0 + i, v));
                    }
                }
                (r0..r0 + 4).for_each(|r| row_tail(r, tiled_tokens));
            }
        };
        let groups = rows.div_ceil(4);
        // Below this much work a dispatch costs more than it saves.
        if pool.threads() == 1 || batch * rows * self.cols < 32 * 1024 {
            work(0..groups);
        } else {
            pool.run(&|i| work(split(groups, i, pool.threads())));
        }
    }
}

/// [`Weight::matmul`] on panels: each worker takes whole panels and runs every token of the
/// batch through a panel while it is in cache.
fn matmul_packed(p: &Packed, acts: &[Activation], out: &mut [f32], pool: &Pool) {
    let aux: Vec<ActivationAux> = acts.iter().map(|a| ActivationAux::new(p.ty, a)).collect();
    let (rows, r) = (p.rows, p.r);
    let out = SyncPtr(out.as_mut_ptr());
    let work = |panels: std::ops::Range<usize>| {
        for panel in panels {
            let n = p.panel_rows(panel);
            for (b, (act, aux)) in acts.iter().zip(&aux).enumerate() {
                // SAFETY: rows [panel*r, panel*r + n) of token b belong to this worker's disjoint
                // panel range and lie below acts.len() * rows <= out.len(); `run` joins first.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.get().add(b * rows + panel * r), n) };
                kernels::panel_dot(p, panel, act, aux, dst);
            }
        }
    };
    let panels = p.panels();
    if pool.threads() == 1 || acts.len() * rows * p.cols < 32 * 1024 {
        work(0..panels);
    } else {
        pool.run(&|i| work(split(panels, i, pool.threads())));
    }
}

/// A pointer workers write disjoint elements through.
pub(crate) struct SyncPtr(*mut f32);
// SAFETY: only used for disjoint writes inside `Pool::run`, which joins before returning.
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    pub(crate) fn new(p: *mut f32) -> SyncPtr {
        SyncPtr(p)
    }

    pub(crate) fn get(&self) -> *mut f32 {
        self.0
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// Dequantizes one row (`out.len()` elements) of type `ty`.
pub fn dequantize(ty: GgmlType, row: &[u8], out: &mut [f32]) {
    let bb = ty.block_bytes();
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(row.chunks_exact(4)) {
                *o = f32::from_le_bytes(c.try_into().unwrap());
            }
        }
        GgmlType::F16 => {
            for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::BF16 => {
            for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16);
            }
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 => {
            for (b, y) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK)) {
                let d = f16_at(b, 0);
                match ty {
                    GgmlType::Q8_0 => {
                        for (o, &q) in y.iter_mut().zip(&b[2..34]) {
                            *o = d * (q as i8) as f32;
                        }
                    }
                    GgmlType::Q4_0 | GgmlType::Q4_1 => {
                        let (m, qs) =
                            if ty == GgmlType::Q4_1 { (f16_at(b, 2), &b[4..20]) } else { (0.0, &b[2..18]) };
                        let off = if ty == GgmlType::Q4_0 { 8 } else { 0 };
                        for j in 0..QK / 2 {
                            y[j] = ((qs[j] & 0xf) as i32 - off) as f32 * d + m;
                            y[j + QK / 2] = ((qs[j] >> 4) as i32 - off) as f32 * d + m;
                        }
                    }
                    _ => {
                        let m = if ty == GgmlType::Q5_1 { f16_at(b, 2) } else { 0.0 };
                        for (o, v) in y.iter_mut().zip(q5_block_values(ty, b)) {
                            *o = v as f32 * d + m;
                        }
                    }
                }
            }
        }
        GgmlType::Q4K | GgmlType::Q5K => {
            for (b, y) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK_K)) {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let vals = kernels::scalar::k4_values(ty == GgmlType::Q5K, b);
                for (sub, (ys, vs)) in y.chunks_exact_mut(32).zip(vals.chunks_exact(32)).enumerate() {
                    let (sc, m) = kernels::scalar::scale_min_k4(sub, &b[4..16]);
                    let (dl, ml) = (d * sc as f32, dmin * m as f32);
                    for (o, &v) in ys.iter_mut().zip(vs) {
                        *o = dl * v as f32 - ml;
                    }
                }
            }
        }
        GgmlType::Q6K => {
            for (b, y) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK_K)) {
                let d = f16_at(b, 208);
                let vals = kernels::scalar::q6k_values(b);
                for (g, (ys, vs)) in y.chunks_exact_mut(16).zip(vals.chunks_exact(16)).enumerate() {
                    let sc = b[192 + g] as i8 as f32;
                    for (o, &v) in ys.iter_mut().zip(vs) {
                        *o = d * sc * v as f32;
                    }
                }
            }
        }
        GgmlType::Q8K => {
            for (b, y) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK_K)) {
                let d = f32::from_le_bytes(b[0..4].try_into().unwrap());
                for (o, &q) in y.iter_mut().zip(&b[4..260]) {
                    *o = d * (q as i8) as f32;
                }
            }
        }
    }
}

/// 32 activations as i8 with an f16 scale and `s = d * sum(q)` (ggml's block_q8_1), used
/// with the `_1` weight types whose offsets need the activation sum.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BlockQ8_1 {
    pub d: u16,
    pub s: u16,
    pub qs: [i8; QK],
}

const _: () = assert!(size_of::<BlockQ8_1>() == 36);

/// 256 activations as i8 with an f32 scale and sums of each 16 (ggml's block_q8_K). The
/// K-quant kernels take the sums as exact: a block whose `bsums` disagree with `qs` is invalid.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BlockQ8K {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; QK_K / 16],
}

/// ggml's `nearest_int`: round half to even through the float mantissa.
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

pub fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    let mut tmp = [BlockQ8_0::default()];
    for (chunk, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        kernels::quantize_row_q8_0(chunk, &mut tmp);
        let amax = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let sum: i32 = tmp[0].qs.iter().map(|&q| q as i32).sum();
        *b = BlockQ8_1 { d: tmp[0].d, s: f32_to_f16(amax / 127.0 * sum as f32), qs: tmp[0].qs };
    }
}

pub fn quantize_row_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    for (chunk, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in chunk {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        b.bsums = [0; QK_K / 16];
        if amax == 0.0 {
            b.d = 0.0;
            b.qs = [0; QK_K];
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(chunk) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = g.iter().map(|&q| q as i16).sum();
        }
        b.d = 1.0 / iscale;
    }
}

/// An input vector converted to the format ggml multiplies a given weight type with.
pub enum Activation {
    F32(Vec<f32>),
    F16(Vec<u16>),
    Q8_0(Vec<BlockQ8_0>),
    Q8_1(Vec<BlockQ8_1>),
    Q8K(Vec<BlockQ8K>),
}

impl Activation {
    pub fn new(weight_ty: GgmlType, x: &[f32]) -> Activation {
        match weight_ty {
            GgmlType::F32 => Activation::F32(x.to_vec()),
            GgmlType::F16 => Activation::F16(x.iter().map(|&v| f32_to_f16(v)).collect()),
            // ggml multiplies BF16 weights with BF16 activations.
            GgmlType::BF16 => Activation::F32(x.iter().map(|&v| bf16_round(v)).collect()),
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => {
                let mut q = vec![BlockQ8_0::default(); x.len() / QK];
                kernels::quantize_row_q8_0(x, &mut q);
                Activation::Q8_0(q)
            }
            GgmlType::Q4_1 | GgmlType::Q5_1 => {
                let mut q = vec![BlockQ8_1 { d: 0, s: 0, qs: [0; QK] }; x.len() / QK];
                quantize_row_q8_1(x, &mut q);
                Activation::Q8_1(q)
            }
            GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K | GgmlType::Q8K => {
                let mut q = vec![BlockQ8K { d: 0.0, qs: [0; QK_K], bsums: [0; QK_K / 16] }; x.len() / QK_K];
                kernels::quantize_row_q8_k(x, &mut q);
                Activation::Q8K(q)
            }
        }
    }

    /// Dot product of one weight row of type `ty` with this activation.
    pub fn dot(&self, ty: GgmlType, row: &[u8]) -> f32 {
        match (self, ty) {
            (Activation::F32(x), GgmlType::F32) => match bytemuck_f32(row) {
                Some(w) => kernels::dot_f32(w, x),
                None => row
                    .chunks_exact(4)
                    .zip(x)
                    .map(|(c, v)| f32::from_le_bytes(c.try_into().unwrap()) * v)
                    .sum(),
            },
            (Activation::F32(x), GgmlType::BF16) => row
                .chunks_exact(2)
                .zip(x)
                .map(|(c, v)| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) * v)
                .sum(),
            (Activation::F16(x), GgmlType::F16) => match bytemuck::try_cast_slice::<u8, u16>(row) {
                Ok(w) => kernels::dot_f16(w, x),
                Err(_) => kernels::dot_f16(&bytemuck::pod_collect_to_vec::<u8, u16>(row), x),
            },
            (Activation::Q8_0(y), GgmlType::Q4_0) => kernels::dot_q4_0_q8_0(&blocks_q4_0(row), y),
            (Activation::Q8_0(y), GgmlType::Q8_0) => kernels::dot_q8_0_q8_0(&blocks_q8_0(row), y),
            (Activation::Q8_0(y), GgmlType::Q5_0) => dot_q5_0_q8_0(row, y),
            (Activation::Q8_1(y), GgmlType::Q4_1) => kernels::dot_q4_1_q8_1(row, y),
            (Activation::Q8_1(y), GgmlType::Q5_1) => dot_x_1_q8_1(ty, row, y),
            (Activation::Q8K(y), GgmlType::Q6K) => kernels::dot_q6_k_q8_k(row, y),
            (Activation::Q8K(y), GgmlType::Q4K) => kernels::dot_k4_q8_k(false, row, y),
            (Activation::Q8K(y), GgmlType::Q5K) => kernels::dot_k4_q8_k(true, row, y),
            (Activation::Q8K(y), GgmlType::Q8K) => dot_q8_k_q8_k(row, y),
            _ => unreachable!("activation built for another weight type"),
        }
    }
}

fn bf16_round(v: f32) -> f32 {
    let b = v.to_bits();
    // Round to nearest even on the upper 16 bits, as ggml's fp32->bf16 does (NaN kept quiet).
    if v.is_nan() {
        return f32::from_bits((b >> 16 | 64) << 16);
    }
    f32::from_bits(((b + (0x7fff + ((b >> 16) & 1))) >> 16) << 16)
}

fn bytemuck_f32(row: &[u8]) -> Option<&[f32]> {
    bytemuck::try_cast_slice(row).ok()
}

fn blocks_q4_0(row: &[u8]) -> std::borrow::Cow<'_, [BlockQ4_0]> {
    match bytemuck::try_cast_slice(row) {
        Ok(b) => std::borrow::Cow::Borrowed(b),
        Err(_) => std::borrow::Cow::Owned(bytemuck::pod_collect_to_vec(row)),
    }
}

fn blocks_q8_0(row: &[u8]) -> std::borrow::Cow<'_, [BlockQ8_0]> {
    match bytemuck::try_cast_slice(row) {
        Ok(b) => std::borrow::Cow::Borrowed(b),
        Err(_) => std::borrow::Cow::Owned(bytemuck::pod_collect_to_vec(row)),
    }
}

/// The 5-bit values of a Q5_0 (offset by -16) or Q5_1 block, in element order.
fn q5_block_values(ty: GgmlType, b: &[u8]) -> [i32; QK] {
    let (qh_at, off) = if ty == GgmlType::Q5_1 { (4, 0) } else { (2, 16) };
    let qh = u32::from_le_bytes(b[qh_at..qh_at + 4].try_into().unwrap());
    let qs = &b[qh_at + 4..qh_at + 20];
    let mut v = [0; QK];
    for j in 0..QK / 2 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        v[j] = ((qs[j] & 0xf) as u32 | h0) as i32 - off;
        v[j + QK / 2] = ((qs[j] >> 4) as u32 | h1) as i32 - off;
    }
    v
}

fn dot_q5_0_q8_0(row: &[u8], y: &[BlockQ8_0]) -> f32 {
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(22).zip(y) {
        let v = q5_block_values(GgmlType::Q5_0, b);
        let sumi: i32 = v.iter().zip(&by.qs).map(|(&a, &q)| a * q as i32).sum();
        sum += sumi as f32 * (f16_at(b, 0) * f16_to_f32(by.d));
    }
    sum
}

/// Q4_1 / Q5_1 (value = d*q + m) against Q8_1: `d_x d_y sum(q_x q_y) + m_x s_y` per block.
pub fn dot_x_1_q8_1(ty: GgmlType, row: &[u8], y: &[BlockQ8_1]) -> f32 {
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(ty.block_bytes()).zip(y) {
        let sumi: i32 = if ty == GgmlType::Q4_1 {
            let qs = &b[4..20];
            (0..QK / 2)
                .map(|j| {
                    (qs[j] & 0xf) as i32 * by.qs[j] as i32 + (qs[j] >> 4) as i32 * by.qs[j + QK / 2] as i32
                })
                .sum()
        } else {
            q5_block_values(GgmlType::Q5_1, b).iter().zip(&by.qs).map(|(&a, &q)| a * q as i32).sum()
        };
        sum += (f16_at(b, 0) * f16_to_f32(by.d)) * sumi as f32 + f16_at(b, 2) * f16_to_f32(by.s);
    }
    sum
}

/// Q8_K rows (never in model files, but a valid ggml type) against Q8_K activations.
fn dot_q8_k_q8_k(row: &[u8], y: &[BlockQ8K]) -> f32 {
    let mut sum = 0.0f32;
    for (b, by) in row.chunks_exact(GgmlType::Q8K.block_bytes()).zip(y) {
        let d = f32::from_le_bytes(b[0..4].try_into().unwrap());
        let s: i32 = b[4..260].iter().zip(&by.qs).map(|(&a, &q)| a as i8 as i32 * q as i32).sum();
        sum += d * by.d * s as f32;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selftest::{Rng, random_quant_row};

    /// The activation as the values the dot product really multiplies.
    fn dequantized_activation(act: &Activation, n: usize) -> Vec<f32> {
        match act {
            Activation::F32(x) => x.clone(),
            Activation::F16(x) => x.iter().map(|&v| f16_to_f32(v)).collect(),
            Activation::Q8_0(q) => {
                let mut out = vec![0.0; n];
                crate::quant::dequantize_row_q8_0(q, &mut out);
                out
            }
            Activation::Q8_1(q) => {
                q.iter().flat_map(|b| b.qs.iter().map(move |&v| v as f32 * f16_to_f32(b.d))).collect()
            }
            Activation::Q8K(q) => q.iter().flat_map(|b| b.qs.iter().map(move |&v| v as f32 * b.d)).collect(),
        }
    }

    #[test]
    fn dot_equals_dequantized_dot_for_every_type() {
        let mut rng = Rng::new(11);
        for ty in GgmlType::ALL {
            let blocks = if ty.block_len() == 1 { 512 } else { 1024 / ty.block_len() };
            let n = blocks * ty.block_len();
            let row = random_quant_row(ty, blocks, &mut rng);
            let x = rng.vec(n);
            let act = Activation::new(ty, &x);
            let mut w = vec![0.0; n];
            dequantize(ty, &row, &mut w);
            let xa = dequantized_activation(&act, n);
            let want: f64 = w.iter().zip(&xa).map(|(a, b)| *a as f64 * *b as f64).sum();
            let scale: f64 = w.iter().zip(&xa).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
            let got = act.dot(ty, &row) as f64;
            // The `_1` types add m_x * s_y where ggml stores s_y = d_y * sum(q_y) as f16 (2^-11).
            let tol = if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) { 2e-3 } else { 1e-5 };
            assert!((got - want).abs() <= tol * scale.max(1e-6), "{ty}: {got} vs {want} (scale {scale})");
        }
    }

    #[test]
    fn q8_k_matches_ggml_reference_rules() {
        let mut x = vec![0.0f32; QK_K];
        x[0] = -2.0; // iscale = -127/max, so the value of largest magnitude always maps to -127
        x[1] = 1.0;
        x[2] = 0.5 * 2.0 / 127.0; // exactly half a step: rounds to even (0)
        let mut b = [BlockQ8K { d: 0.0, qs: [0; QK_K], bsums: [0; QK_K / 16] }];
        quantize_row_q8_k(&x, &mut b);
        assert_eq!(&b[0].qs[..3], &[-127, 64, 0]);
        assert!((b[0].d - 2.0 / 127.0).abs() < 1e-9);
        assert_eq!(b[0].bsums[0], -127 + 64);
    }

    #[test]
    fn q5_0_known_block() {
        // d = 1, qh bit 0 set (element 0 gets +16), qs[0] = 0x21: element 0 = 1|16 - 16 = 1,
        // element 16 = 2 - 16 = -14.
        let mut b = vec![0u8; 22];
        b[0..2].copy_from_slice(&f32_to_f16(1.0).to_le_bytes());
        b[2] = 1;
        b[6] = 0x21;
        let mut out = [0.0; 32];
        dequantize(GgmlType::Q5_0, &b, &mut out);
        assert_eq!((out[0], out[16], out[1]), (1.0, -14.0, -16.0));
    }
}
