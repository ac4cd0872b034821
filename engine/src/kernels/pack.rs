//! Weights repacked at load into row panels for the vector kernels, and the scalar reference of
//! a panel · activation product. Owns the panel layouts; the RVV kernels read [`Layout::Bytes`]
//! in `rvv`, the x86 kernels [`Layout::Words`] in `x86` and `x86_tile`.
//!
//! ## Bytes (RVV)
//!
//! A panel holds `r` consecutive rows (r = the number of bytes in one vector register, so one
//! vector load fetches the same byte of every row). For each block column it stores the rows'
//! scales as f32 (f16 → f32 is exact, done once here instead of in every product), then byte `j`
//! of all `r` rows, for each `j`. Rows past the matrix end are zero.
//!
//! | type | per block column                                 | bytes  |
//! |------|--------------------------------------------------|--------|
//! | Q4_0 | d[r] f32, qs[16][r] (low nibble: elem j, high: j+16) | 20 r |
//! | Q4_1 | d[r] f32, m[r] f32, qs[16][r]                    | 24 r   |
//! | Q8_0 | d[r] f32, qs[32][r] i8                           | 36 r   |
//! | Q5_0 | d[r] f32, hb[32][r/8], qs[16][r]                 | 24 r   |
//! | Q5_1 | d[r] f32, m[r] f32, hb[32][r/8], qs[16][r]       | 28 r   |
//!
//! Q5's fifth bits are stored as bit planes: plane `k` holds element `k`'s high bit of every
//! row, bit `i % 8` of byte `i / 8` for row `i` — exactly an RVV mask register at vl = r, so one
//! `vlm.v` fetches it.
//!
//! K-quant columns are 256 elements (one super-block). Scales and mins are unpacked to bytes;
//! quants keep ggml's bits, transposed so one load fetches the same byte of every row, in the
//! order the kernels read them (`c` a 64-element chunk, `j` < 32, `n` a 128-element half):
//!
//! | type | per block column                                                        | bytes |
//! |------|-------------------------------------------------------------------------|-------|
//! | Q4_K | d[r] f32, dmin[r] f32, sc[8][r], mn[8][r], per (c, j): qs[r]             | 152 r |
//! | Q5_K | as Q4_K, per (c, j): qs[r], plane(64c+j)[r/8], plane(64c+32+j)[r/8]     | 184 r |
//! | Q6_K | d[r] f32, sc[16][r] i8, per (n, j): ql[64n+j][r], ql[64n+32+j][r], qh[32n+j][r] | 212 r |

//!
//! ## Words (x86)
//!
//! A panel holds eight rows. Each block column stores the rows' f16 scales side by side (as
//! ggml has them: no bytes added), then each four-byte word `w` of the block's quants with the
//! eight rows' copies side by side. One 256-bit load fetches word `w` of every row, a 32-bit
//! lane per row, so byte products (`vpmaddubsw`/`vpdpbusd`) sum straight into per-row lanes:
//! no horizontal sums and no scattered scale loads, which is what bounded the row-layout
//! kernels. Q4 words are ggml's nibble bytes `4w..4w + 4`: low nibbles elements `4w..4w + 4`,
//! high nibbles elements `16 + 4w..`. Rows past the matrix end are zero.
//!
//! | type | per block column                     | bytes |
//! |------|--------------------------------------|-------|
//! | Q4_0 | d[8] f16, qs words[4][8]             | 144   |
//! | Q4_1 | d[8] f16, m[8] f16, qs words[4][8]   | 160   |
//! | Q8_0 | d[8] f16, qs words[8][8]             | 272   |

use crate::types::k4::{k4_values, scale_min_k4};
use crate::types::q6_k::q6k_values;
use crate::types::{Activation, BlockQ8K, GgmlType, QK, f16_to_f32};

/// How a panel's block columns are laid out (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Byte `j` of all `r` rows side by side, scales as f32 (RVV).
    Bytes,
    /// Four-byte words of eight rows side by side, scales as f16 (x86).
    Words,
}

/// Rows per panel of [`Layout::Words`].
pub const WORDS_ROWS: usize = 8;

/// A weight matrix in panel layout.
pub struct Packed {
    pub ty: GgmlType,
    pub layout: Layout,
    pub rows: usize,
    pub cols: usize,
    /// Rows per panel.
    pub r: usize,
    /// 8-byte aligned storage, so every f32 scale and vector load is aligned.
    data: Vec<u64>,
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Packed({} {}x{}, {:?}, {} rows per panel)",
            self.ty, self.rows, self.cols, self.layout, self.r
        )
    }
}

/// Whether `ty` has a panel layout.
pub fn packable(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0)
        || is_k(ty)
}

fn is_k(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K)
}

/// Bytes of one block column of one panel.
fn column_bytes(ty: GgmlType, r: usize) -> usize {
    match ty {
        GgmlType::Q4_0 => 20 * r,
        GgmlType::Q4_1 | GgmlType::Q5_0 => 24 * r,
        GgmlType::Q5_1 => 28 * r,
        GgmlType::Q4K => 152 * r,
        GgmlType::Q5K => 184 * r,
        GgmlType::Q6K => 212 * r,
        _ => 36 * r,
    }
}

/// Whether `ty` has a [`Layout::Words`] layout.
pub fn words_packable(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
}

/// Bytes of one [`Layout::Words`] block column, and where its quant words start.
pub const fn words_column(ty: GgmlType) -> (usize, usize) {
    match ty {
        GgmlType::Q4_0 => (144, 16),
        GgmlType::Q4_1 => (160, 32),
        _ => (272, 16),
    }
}

/// Where in a block column the quants start, and (Q5 types) where the bit planes start.
fn quants_at(ty: GgmlType, r: usize) -> (usize, Option<usize>) {
    match ty {
        GgmlType::Q4_1 => (8 * r, None),
        GgmlType::Q5_0 => (8 * r, Some(4 * r)),
        GgmlType::Q5_1 => (12 * r, Some(8 * r)),
        _ => (4 * r, None),
    }
}

impl Packed {
    /// Repacks the row-major `rows` x `cols` matrix of `ty` in `data` into panels of `r` rows
    /// (`r` a multiple of 8), or None for types without a panel layout.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: &[u8], r: usize) -> Option<Packed> {
        if !packable(ty) || r == 0 || !r.is_multiple_of(8) {
            return None;
        }
        let nb = cols / ty.block_len();
        let panels = rows.div_ceil(r);
        let col = column_bytes(ty, r);
        let mut data_out = vec![0u64; (panels * nb * col).div_ceil(8)];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut data_out);
        let bb = ty.block_bytes();
        for (row, src) in data.chunks_exact(nb * bb).take(rows).enumerate() {
            let (p, i) = (row / r, row % r);
            for b in 0..nb {
                let blk = &src[b * bb..(b + 1) * bb];
                let dst = &mut bytes[(p * nb + b) * col..][..col];
                if is_k(ty) {
                    pack_k_block(ty, blk, dst, r, i);
                    continue;
                }
                let f16 = |at: usize| f16_to_f32(u16::from_le_bytes([blk[at], blk[at + 1]]));
                dst[4 * i..4 * i + 4].copy_from_slice(&f16(0).to_le_bytes());
                if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                    dst[4 * (r + i)..4 * (r + i) + 4].copy_from_slice(&f16(2).to_le_bytes());
                }
                let (at, planes) = quants_at(ty, r);
                let qs = match ty {
                    GgmlType::Q4_0 => &blk[2..18],
                    GgmlType::Q4_1 => &blk[4..20],
                    GgmlType::Q5_0 => &blk[6..22],
                    GgmlType::Q5_1 => &blk[8..24],
                    _ => &blk[2..34],
                };
                for (j, &q) in qs.iter().enumerate() {
                    dst[at + j * r + i] = q;
                }
                if let Some(planes) = planes {
                    let qh_at = if ty == GgmlType::Q5_1 { 4 } else { 2 };
                    let qh = u32::from_le_bytes(blk[qh_at..qh_at + 4].try_into().unwrap());
                    for k in (0..QK).filter(|k| qh >> k & 1 == 1) {
                        dst[planes + k * (r / 8) + i / 8] |= 1 << (i % 8);
                    }
                }
            }
        }
        Some(Packed { ty, layout: Layout::Bytes, rows, cols, r, data: data_out })
    }

    /// Repacks the row-major `rows` x `cols` matrix of `ty` in `data` into [`Layout::Words`]
    /// panels, or None for types without that layout.
    pub fn words(ty: GgmlType, rows: usize, cols: usize, data: &[u8]) -> Option<Packed> {
        if !words_packable(ty) {
            return None;
        }
        let (nb, bb, r) = (cols / ty.block_len(), ty.block_bytes(), WORDS_ROWS);
        let (col, qs_at) = words_column(ty);
        let mut data_out = vec![0u64; (rows.div_ceil(r) * nb * col).div_ceil(8)];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut data_out);
        // The scales (d, then m for Q4_1) are the block's first bytes; the quants its last.
        let scales = qs_at / (2 * r);
        let quants = bb - 2 * scales;
        // A matrix of zero columns has nothing to pack (and chunks of zero bytes do not exist).
        for (row, src) in data.chunks_exact((nb * bb).max(1)).take(if nb == 0 { 0 } else { rows }).enumerate()
        {
            let (p, i) = (row / r, row % r);
            for (b, blk) in src.chunks_exact(bb).enumerate() {
                let dst = &mut bytes[(p * nb + b) * col..][..col];
                for k in 0..scales {
                    dst[2 * (k * r + i)..][..2].copy_from_slice(&blk[2 * k..2 * k + 2]);
                }
                for (w, word) in blk[2 * scales..].chunks_exact(4).take(quants / 4).enumerate() {
                    dst[qs_at + 4 * (w * r + i)..][..4].copy_from_slice(word);
                }
            }
        }
        Some(Packed { ty, layout: Layout::Words, rows, cols, r, data: data_out })
    }

    /// Row `i` of panel `p` of a [`Layout::Words`] matrix as ggml's blocks.
    pub fn words_row(&self, p: usize, i: usize) -> Vec<u8> {
        let (bb, r) = (self.ty.block_bytes(), self.r);
        let (col, qs_at) = words_column(self.ty);
        let scales = qs_at / (2 * r);
        let mut out = Vec::with_capacity(self.blocks() * bb);
        for c in self.panel(p).chunks_exact(col) {
            for k in 0..scales {
                out.extend_from_slice(&c[2 * (k * r + i)..][..2]);
            }
            for w in 0..(bb - 2 * scales) / 4 {
                out.extend_from_slice(&c[qs_at + 4 * (w * r + i)..][..4]);
            }
        }
        out
    }

    pub fn blocks(&self) -> usize {
        self.cols / self.ty.block_len()
    }

    pub fn panels(&self) -> usize {
        self.rows.div_ceil(self.r)
    }

    /// The bytes of panel `p`: `blocks()` block columns.
    pub fn panel(&self, p: usize) -> &[u8] {
        let col = match self.layout {
            Layout::Bytes => column_bytes(self.ty, self.r),
            Layout::Words => words_column(self.ty).0,
        };
        let n = self.blocks() * col;
        &bytemuck::cast_slice(&self.data)[p * n..(p + 1) * n]
    }

    /// Rows of panel `p` that exist in the matrix.
    pub fn panel_rows(&self, p: usize) -> usize {
        self.r.min(self.rows - p * self.r)
    }
}

/// Writes row `i` of one K-quant block column (`dst`, r rows) from ggml block `blk`.
fn pack_k_block(ty: GgmlType, blk: &[u8], dst: &mut [u8], r: usize, i: usize) {
    let f16 = |at: usize| f16_to_f32(u16::from_le_bytes([blk[at], blk[at + 1]]));
    let rb = r / 8;
    if ty == GgmlType::Q6K {
        dst[4 * i..4 * i + 4].copy_from_slice(&f16(208).to_le_bytes());
        for g in 0..16 {
            dst[(4 + g) * r + i] = blk[192 + g];
        }
        for (k, at) in (0..64).flat_map(q6k_panel_bytes).enumerate() {
            dst[(20 + k) * r + i] = blk[at];
        }
        return;
    }
    let q5 = ty == GgmlType::Q5K;
    dst[4 * i..4 * i + 4].copy_from_slice(&f16(0).to_le_bytes());
    dst[4 * (r + i)..4 * (r + i) + 4].copy_from_slice(&f16(2).to_le_bytes());
    for s in 0..8 {
        let (sc, mn) = scale_min_k4(s, &blk[4..16]);
        dst[(8 + s) * r + i] = sc;
        dst[(16 + s) * r + i] = mn;
    }
    let (qs, qh) = if q5 { (&blk[48..176], &blk[16..48]) } else { (&blk[16..144], &[][..]) };
    for (cj, &q) in qs.iter().enumerate() {
        let at = k4_panel_byte(q5, r, cj);
        dst[at + i] = q;
        if q5 {
            for h in 0..2 {
                let bit = qh[cj % 32] >> (2 * (cj / 32) + h) & 1;
                dst[at + r + h * rb + i / 8] |= bit << (i % 8);
            }
        }
    }
}

/// Where in a Q4_K/Q5_K block column nibble byte `cj` (= 32c + j) of row 0 lies; Q5_K's two
/// bit planes of that byte follow its r bytes.
fn k4_panel_byte(q5: bool, r: usize, cj: usize) -> usize {
    24 * r + cj * if q5 { r + r / 4 } else { r }
}

/// The ggml block bytes behind Q6_K panel rows 3nj, 3nj + 1, 3nj + 2 (half n = nj / 32, byte
/// j = nj % 32): the two low-nibble bytes and the high-bits byte of elements 128n + j + 32k.
fn q6k_panel_bytes(nj: usize) -> [usize; 3] {
    let (n, j) = (nj / 32, nj % 32);
    [64 * n + j, 64 * n + 32 + j, 128 + 32 * n + j]
}

/// The quant bytes of row `i` of a K-quant block column, back at their places in a ggml block
/// (the scale bytes are left zero), for the scalar value decoders.
fn ggml_quants_k(ty: GgmlType, c: &[u8], r: usize, i: usize) -> [u8; 210] {
    let mut b = [0u8; 210];
    let rb = r / 8;
    match ty {
        GgmlType::Q6K => {
            for (k, at) in (0..64).flat_map(q6k_panel_bytes).enumerate() {
                b[at] = c[(20 + k) * r + i];
            }
        }
        _ => {
            let q5 = ty == GgmlType::Q5K;
            let qs_at = if q5 { 48 } else { 16 };
            for cj in 0..128 {
                let at = k4_panel_byte(q5, r, cj);
                b[qs_at + cj] = c[at + i];
                if q5 {
                    for h in 0..2 {
                        let bit = c[at + r + h * rb + i / 8] >> (i % 8) & 1;
                        b[16 + cj % 32] |= bit << (2 * (cj / 32) + h);
                    }
                }
            }
        }
    }
    b
}

/// Scalar reference of a K-quant panel: row `i` dotted with Q8_K activation `y`, from the
/// panel bytes alone, with the integer sums and f32 operations of the row dot (so bit for bit).
pub fn panel_row_dot_reference_k(ty: GgmlType, r: usize, panel: &[u8], i: usize, y: &[BlockQ8K]) -> f32 {
    let col = column_bytes(ty, r);
    let mut sum = 0.0f32;
    for (c, by) in panel.chunks_exact(col).zip(y) {
        let d = f32_at(c, 4 * i);
        let block = ggml_quants_k(ty, c, r, i);
        if ty == GgmlType::Q6K {
            let vals = q6k_values(&block);
            let sumi: i32 = (0..16)
                .map(|g| {
                    let s: i32 = (0..16).map(|l| vals[16 * g + l] * by.qs[16 * g + l] as i32).sum();
                    c[(4 + g) * r + i] as i8 as i32 * s
                })
                .sum();
            sum += d * by.d * sumi as f32;
            continue;
        }
        let vals = k4_values(ty == GgmlType::Q5K, &block);
        let (mut isum, mut imin) = (0i32, 0i32);
        for s in 0..8 {
            let v: i32 = (0..32).map(|l| vals[32 * s + l] * by.qs[32 * s + l] as i32).sum();
            isum += c[(8 + s) * r + i] as i32 * v;
            imin += c[(16 + s) * r + i] as i32 * (by.bsums[2 * s] as i32 + by.bsums[2 * s + 1] as i32);
        }
        sum += d * by.d * isum as f32 - f32_at(c, 4 * (r + i)) * by.d * imin as f32;
    }
    sum
}

/// Every existing row of panel `p` dotted with `act` by the scalar references (what a build
/// without panel kernels runs); `out` holds [`Packed::panel_rows`] floats.
pub fn panel_dot_reference(w: &Packed, p: usize, act: &Activation, aux: &ActivationAux, out: &mut [f32]) {
    if w.layout == Layout::Words {
        // The row dot of the row's own blocks is the reference the word kernels equal.
        for (i, o) in out.iter_mut().enumerate() {
            *o = crate::kernels::dot(w.ty, &w.words_row(p, i), act);
        }
        return;
    }
    let panel = w.panel(p);
    if let Activation::Q8K(y) = act.plain() {
        for (i, o) in out.iter_mut().enumerate() {
            *o = panel_row_dot_reference_k(w.ty, w.r, panel, i, y);
        }
        return;
    }
    let yq = activation_quants(act);
    for (i, o) in out.iter_mut().enumerate() {
        *o = panel_row_dot_reference(w.ty, w.r, panel, i, &yq, aux);
    }
}

/// Per-block activation values the panel kernels read as scalars, computed once per token.
pub struct ActivationAux {
    /// Scale of each block as f32.
    pub d: Vec<f32>,
    /// Q8_0 against Q4_0 / Q5_0: `-8 * sum(q)` / `-16 * sum(q)`, the offset of their `q - 8` /
    /// `q - 16`. Otherwise empty.
    pub corr: Vec<i32>,
    /// Q8_1: `s` of each block as f32.
    pub s: Vec<f32>,
}

impl ActivationAux {
    /// The aux values of `act`, the Q8_0, Q8_1 or Q8_K activation of a `weight` matrix. Only
    /// Q4_0 and Q5_0 need `corr`, only the `_1` types `s`.
    pub fn new(weight: GgmlType, act: &Activation) -> ActivationAux {
        match act.plain() {
            Activation::Q8_0(y) => ActivationAux {
                d: y.iter().map(|b| f16_to_f32(b.d)).collect(),
                corr: match weight {
                    GgmlType::Q4_0 | GgmlType::Q5_0 => {
                        let off = if weight == GgmlType::Q4_0 { -8 } else { -16 };
                        y.iter().map(|b| off * b.qs.iter().map(|&q| q as i32).sum::<i32>()).collect()
                    }
                    _ => Vec::new(),
                },
                s: Vec::new(),
            },
            Activation::Q8_1(y) => ActivationAux {
                d: y.iter().map(|b| f16_to_f32(b.d)).collect(),
                corr: Vec::new(),
                s: y.iter().map(|b| f16_to_f32(b.s)).collect(),
            },
            // The K-quant kernels read Q8_K's f32 scale and bsums from the blocks themselves.
            Activation::Q8K(y) => {
                ActivationAux { d: y.iter().map(|b| b.d).collect(), corr: Vec::new(), s: Vec::new() }
            }
            _ => {
                panic!("panel kernels take a Q8_0, Q8_1 or Q8_K activation, not the one of {weight} weights")
            }
        }
    }
}

/// The quants of a Q8_0 or Q8_1 activation, block by block (for the scalar reference).
pub fn activation_quants(act: &Activation) -> Vec<[i8; QK]> {
    match act.plain() {
        Activation::Q8_0(y) => y.iter().map(|b| b.qs).collect(),
        Activation::Q8_1(y) => y.iter().map(|b| b.qs).collect(),
        _ => panic!("panel kernels take a Q8_0 or Q8_1 activation"),
    }
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Scalar reference: row `i` of a panel dotted with activation quants `yq` (32 per block, as
/// i8) and their aux values, in ggml's order of operations, so it equals the unpacked dot
/// product bit for bit.
pub fn panel_row_dot_reference(
    ty: GgmlType,
    r: usize,
    panel: &[u8],
    i: usize,
    yq: &[[i8; QK]],
    aux: &ActivationAux,
) -> f32 {
    let col = column_bytes(ty, r);
    let mut sum = 0.0f32;
    for (b, (c, y)) in panel.chunks_exact(col).zip(yq).enumerate() {
        let d = f32_at(c, 4 * i);
        match ty {
            GgmlType::Q8_0 => {
                let isum: i32 = (0..QK).map(|j| c[4 * r + j * r + i] as i8 as i32 * y[j] as i32).sum();
                sum += isum as f32 * (d * aux.d[b]);
            }
            _ => {
                let (at, planes) = quants_at(ty, r);
                // The unsigned 4- or 5-bit value of element j (of 32) of row i.
                let value = |j: usize| {
                    let q = c[at + (j % 16) * r + i];
                    let nibble = if j < 16 { q & 0xf } else { q >> 4 };
                    let high = planes.map_or(0, |h| (c[h + j * (r / 8) + i / 8] >> (i % 8)) & 1);
                    (nibble | high << 4) as i32
                };
                let isum: i32 = (0..QK).map(|j| value(j) * y[j] as i32).sum();
                match ty {
                    GgmlType::Q4_1 | GgmlType::Q5_1 => {
                        let m = f32_at(c, 4 * (r + i));
                        sum += (d * aux.d[b]) * isum as f32 + m * aux.s[b];
                    }
                    GgmlType::Q5_0 => sum += (isum + aux.corr[b]) as f32 * (d * aux.d[b]),
                    _ => sum += (isum + aux.corr[b]) as f32 * d * aux.d[b],
                }
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{activation, dot};
    use crate::testdata::{Rng, random_quant_row};

    #[test]
    fn packed_reference_equals_unpacked_dot_bit_for_bit() {
        let mut rng = Rng::new(5);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0] {
            for (rows, blocks, r) in [(5, 1, 8), (37, 3, 16), (64, 9, 32), (130, 2, 128)] {
                let cols = blocks * QK;
                let data: Vec<u8> = (0..rows).flat_map(|_| random_quant_row(ty, blocks, &mut rng)).collect();
                let p = Packed::new(ty, rows, cols, &data, r).unwrap();
                assert_eq!(p.panels(), rows.div_ceil(r));
                let x = rng.vec(cols);
                let act = activation(ty, &x);
                let (yq, aux) = (activation_quants(&act), ActivationAux::new(ty, &act));
                for row in 0..rows {
                    let got = panel_row_dot_reference(ty, r, p.panel(row / r), row % r, &yq, &aux);
                    let want = dot(ty, row_of(&data, rows, row), &act);
                    assert_eq!(got.to_bits(), want.to_bits(), "{ty} rows {rows} r {r} row {row}");
                }
            }
        }
    }

    fn row_of(data: &[u8], rows: usize, row: usize) -> &[u8] {
        let n = data.len() / rows;
        &data[row * n..(row + 1) * n]
    }

    /// Word panels hold exactly ggml's bytes, rearranged: every row comes back whole, the
    /// padding rows of a partial panel are zero, and other types have no word layout.
    #[test]
    fn word_panels_keep_every_rows_bytes() {
        let mut rng = Rng::new(9);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            for (rows, blocks) in [(1, 1), (8, 3), (13, 2), (16, 5)] {
                let data: Vec<u8> = (0..rows).flat_map(|_| random_quant_row(ty, blocks, &mut rng)).collect();
                let p = Packed::words(ty, rows, blocks * QK, &data).unwrap();
                assert_eq!(
                    (p.r, p.panels(), p.panel(0).len()),
                    (8, rows.div_ceil(8), blocks * words_column(ty).0)
                );
                assert_eq!(words_column(ty).0, 8 * ty.block_bytes(), "{ty}: no bytes added");
                for row in 0..rows.div_ceil(8) * 8 {
                    let got = p.words_row(row / 8, row % 8);
                    let want =
                        if row < rows { row_of(&data, rows, row).to_vec() } else { vec![0; got.len()] };
                    assert_eq!(got, want, "{ty} rows {rows} row {row}");
                }
            }
        }
        assert!(Packed::words(GgmlType::Q5_0, 8, 32, &[0; 8 * 22]).is_none());
        assert!(Packed::words(GgmlType::Q6K, 8, 256, &[0; 8 * 210]).is_none());
    }

    #[test]
    fn k_quant_panel_reference_equals_row_dot_bit_for_bit() {
        let mut rng = Rng::new(7);
        for ty in [GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K] {
            for (rows, blocks, r) in [(5, 1, 8), (37, 2, 16), (33, 3, 32), (130, 1, 128)] {
                let cols = blocks * 256;
                let data: Vec<u8> = (0..rows).flat_map(|_| random_quant_row(ty, blocks, &mut rng)).collect();
                let p = Packed::new(ty, rows, cols, &data, r).unwrap();
                assert_eq!((p.panels(), p.blocks()), (rows.div_ceil(r), blocks));
                let act = activation(ty, &rng.vec(cols));
                let Activation::Q8K(y) = &act else { panic!("{ty} takes Q8_K") };
                for row in 0..rows {
                    let got = panel_row_dot_reference_k(ty, r, p.panel(row / r), row % r, y);
                    let want = dot(ty, row_of(&data, rows, row), &act);
                    assert_eq!(got.to_bits(), want.to_bits(), "{ty} rows {rows} r {r} row {row}");
                }
            }
        }
    }

    #[test]
    fn padding_rows_are_zero_and_other_types_are_not_packed() {
        let mut rng = Rng::new(6);
        let data = random_quant_row(GgmlType::Q4_0, 2, &mut rng);
        let p = Packed::new(GgmlType::Q4_0, 1, 64, &data, 16).unwrap();
        assert_eq!(p.panel_rows(0), 1);
        let panel = p.panel(0);
        assert!(panel[4..64].iter().all(|&b| b == 0), "scales of missing rows are zero");
        assert!(Packed::new(GgmlType::F32, 1, 64, &[0; 256], 16).is_none());
        assert!(Packed::new(GgmlType::Q4_0, 1, 64, &data, 12).is_none(), "r must be a multiple of 8");
    }
}
