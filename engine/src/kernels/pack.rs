//! Weights repacked at load into row panels for the vector kernels, and the scalar reference of
//! a panel · activation product. Owns the panel layout; the RVV kernels read it in `rvv`.
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

use crate::ggml_type::GgmlType;
use crate::quant::{QK, f16_to_f32};
use crate::tensor::{Activation, Weight};

/// A weight matrix in panel layout.
pub struct Packed {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    /// Rows per panel.
    pub r: usize,
    /// 8-byte aligned storage, so every f32 scale and vector load is aligned.
    data: Vec<u64>,
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} {}x{}, {} rows per panel)", self.ty, self.rows, self.cols, self.r)
    }
}

/// Whether `ty` has a panel layout.
pub fn packable(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0)
}

/// Bytes of one block column of one panel.
fn column_bytes(ty: GgmlType, r: usize) -> usize {
    match ty {
        GgmlType::Q4_0 => 20 * r,
        GgmlType::Q4_1 | GgmlType::Q5_0 => 24 * r,
        GgmlType::Q5_1 => 28 * r,
        _ => 36 * r,
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
    /// Repacks `w` into panels of `r` rows (`r` a multiple of 8), or None for other types.
    pub fn new(w: &Weight, r: usize) -> Option<Packed> {
        if !packable(w.ty) || r == 0 || !r.is_multiple_of(8) {
            return None;
        }
        let nb = w.cols / QK;
        let panels = w.rows.div_ceil(r);
        let col = column_bytes(w.ty, r);
        let mut data = vec![0u64; (panels * nb * col).div_ceil(8)];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut data);
        let bb = w.ty.block_bytes();
        for row in 0..w.rows {
            let (p, i) = (row / r, row % r);
            let src = w.row(row);
            for b in 0..nb {
                let blk = &src[b * bb..(b + 1) * bb];
                let dst = &mut bytes[(p * nb + b) * col..][..col];
                let f16 = |at: usize| f16_to_f32(u16::from_le_bytes([blk[at], blk[at + 1]]));
                dst[4 * i..4 * i + 4].copy_from_slice(&f16(0).to_le_bytes());
                if matches!(w.ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                    dst[4 * (r + i)..4 * (r + i) + 4].copy_from_slice(&f16(2).to_le_bytes());
                }
                let (at, planes) = quants_at(w.ty, r);
                let qs = match w.ty {
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
                    let qh_at = if w.ty == GgmlType::Q5_1 { 4 } else { 2 };
                    let qh = u32::from_le_bytes(blk[qh_at..qh_at + 4].try_into().unwrap());
                    for k in (0..QK).filter(|k| qh >> k & 1 == 1) {
                        dst[planes + k * (r / 8) + i / 8] |= 1 << (i % 8);
                    }
                }
            }
        }
        Some(Packed { ty: w.ty, rows: w.rows, cols: w.cols, r, data })
    }

    pub fn blocks(&self) -> usize {
        self.cols / QK
    }

    pub fn panels(&self) -> usize {
        self.rows.div_ceil(self.r)
    }

    /// The bytes of panel `p`: `blocks()` block columns.
    pub fn panel(&self, p: usize) -> &[u8] {
        let n = self.blocks() * column_bytes(self.ty, self.r);
        &bytemuck::cast_slice(&self.data)[p * n..(p + 1) * n]
    }

    /// Rows of panel `p` that exist in the matrix.
    pub fn panel_rows(&self, p: usize) -> usize {
        self.r.min(self.rows - p * self.r)
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
    /// The aux values of `act`, the Q8_0 or Q8_1 activation of a `weight` matrix. Only Q4_0
    /// and Q5_0 need `corr`, only the `_1` types `s`.
    pub fn new(weight: GgmlType, act: &Activation) -> ActivationAux {
        match act {
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
            _ => panic!("panel kernels take a Q8_0 or Q8_1 activation, not the one of {weight} weights"),
        }
    }
}

/// The quants of a Q8_0 or Q8_1 activation, block by block (for the scalar reference).
pub fn activation_quants(act: &Activation) -> Vec<[i8; QK]> {
    match act {
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
    use crate::selftest::{Rng, random_quant_row};

    #[test]
    fn packed_reference_equals_unpacked_dot_bit_for_bit() {
        let mut rng = Rng::new(5);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0] {
            for (rows, blocks, r) in [(5, 1, 8), (37, 3, 16), (64, 9, 32), (130, 2, 128)] {
                let cols = blocks * QK;
                let data: Vec<u8> = (0..rows).flat_map(|_| random_quant_row(ty, blocks, &mut rng)).collect();
                let w = Weight { ty, rows, cols, data: &data, packed: None };
                let p = Packed::new(&w, r).unwrap();
                assert_eq!(p.panels(), rows.div_ceil(r));
                let x = rng.vec(cols);
                let act = Activation::new(ty, &x);
                let (yq, aux) = (activation_quants(&act), ActivationAux::new(ty, &act));
                for row in 0..rows {
                    let got = panel_row_dot_reference(ty, r, p.panel(row / r), row % r, &yq, &aux);
                    let want = act.dot(ty, w.row(row));
                    assert_eq!(got.to_bits(), want.to_bits(), "{ty} rows {rows} r {r} row {row}");
                }
            }
        }
    }

    #[test]
    fn padding_rows_are_zero_and_other_types_are_not_packed() {
        let mut rng = Rng::new(6);
        let data = random_quant_row(GgmlType::Q4_0, 2, &mut rng);
        let w = Weight { ty: GgmlType::Q4_0, rows: 1, cols: 64, data: &data, packed: None };
        let p = Packed::new(&w, 16).unwrap();
        assert_eq!(p.panel_rows(0), 1);
        let panel = p.panel(0);
        assert!(panel[4..64].iter().all(|&b| b == 0), "scales of missing rows are zero");
        let f = Weight { ty: GgmlType::F32, rows: 1, cols: 64, data: &[0; 256], packed: None };
        assert!(Packed::new(&f, 16).is_none());
        assert!(Packed::new(&w, 12).is_none(), "r must be a multiple of 8");
    }
}
