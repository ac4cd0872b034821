//! Prompt tiles for SpacemiT's IME matrix unit (`smt.vmadot`, IME1 at VLEN 256): the token and
//! weight tile layouts the RVV/IME kernel (`rvv::ime`) reads, built from activations and panels.
//!
//! At VLEN 256 one `vmadot` adds A·Bᵀ into a 4×4 int32 tile C (two registers), A being 4 tokens
//! × 8 quants and Bᵀ 4 weight rows × 8 quants, each one 32-byte register, row-major. A 32-quant
//! block is four such steps, so a block of 4 tokens or of 4 rows is one 128-byte record of four
//! registers, chunk-major (`qs[c][m][k]` = quant 8c + k of token or row m), followed by the
//! per-element f32/i32 factors the kernel applies to C with one vector op each:
//!
//! | record | bytes 0..128   | 128..192                 | 192..256                          |
//! |--------|----------------|--------------------------|-----------------------------------|
//! | tokens | `qs[c][m][k]`  | `dy[p / 4]` (f32 × 16)   | Q4_0: `corr[p / 4]` i32; Q4_1: `s[p / 4]` f32 |
//! | rows   | `qs[c][n][k]`  | `dx[p % 4]` (f32 × 16)   | Q4_1: `mx[p % 4]` f32             |
//!
//! (`p = 4m + n` indexes C.) Row quants are Q4's unsigned nibbles (0..15, so `vmadotsu`) or
//! Q8_0's signed bytes (`vmadot`). The kernel then takes each C element through the float
//! operations of the panel kernel of its type, in the same order, so results are bit-identical.

use crate::kernels::pack::Packed;
use crate::types::{Activation, GgmlType, QK, f16_to_f32};

/// Tokens (M) and rows (N) per tile, and quants per `vmadot` (K), at VLEN 256.
pub const M: usize = 4;
pub const N: usize = 4;
pub const K: usize = 8;
/// Bytes of one token-block or row-block record.
pub const RECORD: usize = 256;
/// Row groups one tile call covers: four C tiles share each token record's loads.
pub const GROUPS: usize = 4;
/// The products of one tile call: `[row group][token m][row n]`.
pub type Tiles = [[[f32; N]; M]; GROUPS];

/// Whether the IME kernels handle weights of `ty`.
pub fn supported(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
}

/// The tokens of one matmul in tile records: `[group of M tokens][block]`, missing tokens zero.
pub struct ImeTokens {
    pub tokens: usize,
    pub blocks: usize,
    /// 8-byte aligned records, so every f32/i32 vector load is aligned.
    data: Vec<u64>,
}

impl ImeTokens {
    /// The records of `acts` (all Q8_0, or all Q8_1, of `weight`-typed rows).
    pub fn new(weight: GgmlType, acts: &[Activation]) -> Option<ImeTokens> {
        let blocks = match acts.first()?.plain() {
            Activation::Q8_0(y) => y.len(),
            Activation::Q8_1(y) => y.len(),
            _ => return None,
        };
        let groups = acts.len().div_ceil(M);
        let mut data = vec![0u64; groups * blocks * RECORD / 8];
        let pair = |v: u32| u64::from(v) | u64::from(v) << 32;
        for (t, act) in acts.iter().enumerate() {
            let (g, m) = (t / M, t % M);
            let token = &mut data[g * blocks * RECORD / 8..][..blocks * RECORD / 8];
            // Each block's quants move as four 8-byte chunks (one per vmadot step), and its
            // factors as one f32/i32 per C element of the token's row (p = 4 m .. 4 m + 3).
            let mut put = |b: usize, qs: &[i8; QK], dy: f32, extra: u32| {
                let rec = &mut token[b * RECORD / 8..][..RECORD / 8];
                let chunks: &[[u8; 8]; 4] = bytemuck::cast_ref(qs);
                for (c, chunk) in chunks.iter().enumerate() {
                    rec[c * M + m] = u64::from_le_bytes(*chunk);
                }
                rec[16 + 2 * m..][..2].fill(pair(dy.to_bits()));
                rec[24 + 2 * m..][..2].fill(pair(extra));
            };
            match act.plain() {
                Activation::Q8_0(y) if weight != GgmlType::Q4_1 && y.len() == blocks => {
                    for (b, y) in y.iter().enumerate() {
                        let corr = if weight == GgmlType::Q4_0 {
                            -8 * y.qs.iter().map(|&q| q as i32).sum::<i32>()
                        } else {
                            0
                        };
                        put(b, &y.qs, f16_to_f32(y.d), corr as u32);
                    }
                }
                Activation::Q8_1(y) if weight == GgmlType::Q4_1 && y.len() == blocks => {
                    for (b, y) in y.iter().enumerate() {
                        put(b, &y.qs, f16_to_f32(y.d), f16_to_f32(y.s).to_bits());
                    }
                }
                _ => return None,
            }
        }
        Some(ImeTokens { tokens: acts.len(), blocks, data })
    }

    pub fn groups(&self) -> usize {
        self.tokens.div_ceil(M)
    }

    /// The `blocks` records of token group `g`.
    pub fn group(&self, g: usize) -> &[u8] {
        let n = self.blocks * RECORD;
        &bytemuck::cast_slice(&self.data)[g * n..(g + 1) * n]
    }
}

/// Scalar reference of one tile call: for row groups `rg0..rg0 + GROUPS` of a panel's records
/// (`[block][row group]`, `groups` per block), `[k][m][n]` = row n of group rg0 + k · token m of
/// `tokens` (one token group's `[block]` records).
pub fn tiles_reference(ty: GgmlType, records: &[u8], groups: usize, rg0: usize, tokens: &[u8]) -> Tiles {
    let nb = tokens.len() / RECORD;
    std::array::from_fn(|k| {
        let rows: Vec<u8> = (0..nb)
            .flat_map(|b| records[(b * groups + rg0 + k) * RECORD..][..RECORD].iter().copied())
            .collect();
        tile_reference(ty, &rows, tokens)
    })
}

/// Scalar reference of one tile: `out[m][n]` = row n of `rows` · token m, from the records alone
/// (`rows` and `tokens` hold the same number of block records), in the float order of the type's
/// panel kernel.
pub fn tile_reference(ty: GgmlType, rows: &[u8], tokens: &[u8]) -> [[f32; N]; M] {
    let f32_at = |r: &[u8], at: usize| f32::from_le_bytes(r[at..at + 4].try_into().unwrap());
    let mut out = [[0.0f32; N]; M];
    for (w, a) in rows.chunks_exact(RECORD).zip(tokens.chunks_exact(RECORD)) {
        for (m, o) in out.iter_mut().enumerate() {
            for (n, o) in o.iter_mut().enumerate() {
                let p = m * N + n;
                let mut isum = 0i32;
                for e in 0..QK {
                    let (x, y) = (w[(e / K) * N * K + n * K + e % K], a[(e / K) * M * K + m * K + e % K]);
                    let x = if ty == GgmlType::Q8_0 { x as i8 as i32 } else { x as i32 };
                    isum += x * y as i8 as i32;
                }
                let (dx, dy) = (f32_at(w, 128 + 4 * p), f32_at(a, 128 + 4 * p));
                *o += match ty {
                    GgmlType::Q4_0 => {
                        let corr = i32::from_le_bytes(a[192 + 4 * p..][..4].try_into().unwrap());
                        (isum + corr) as f32 * dx * dy
                    }
                    GgmlType::Q4_1 => {
                        (dx * dy) * isum as f32 + f32_at(w, 192 + 4 * p) * f32_at(a, 192 + 4 * p)
                    }
                    _ => isum as f32 * (dx * dy),
                };
            }
        }
    }
    out
}

/// Scalar reference of the row records of one panel: `[block][row group]` records into `out`
/// (`r / N * nb` of them) for `panel` (`r` rows, `nb` block columns of `ty` in `kernels::pack`'s
/// layout), as the RVV transposition writes them.
pub fn row_records_reference(ty: GgmlType, panel: &[u8], r: usize, nb: usize, out: &mut [u8]) {
    let col = panel.len() / nb.max(1);
    for i in 0..r {
        let (g, n) = (i / N, i % N);
        for b in 0..nb {
            let c = &panel[b * col..(b + 1) * col];
            let rec = &mut out[(b * (r / N) + g) * RECORD..][..RECORD];
            let quant = |e: usize| match ty {
                GgmlType::Q8_0 => c[4 * r + e * r + i],
                _ => {
                    let at = if ty == GgmlType::Q4_1 { 8 * r } else { 4 * r };
                    let byte = c[at + (e % 16) * r + i];
                    if e < 16 { byte & 15 } else { byte >> 4 }
                }
            };
            for e in 0..QK {
                rec[(e / K) * N * K + n * K + e % K] = quant(e);
            }
            for m in 0..M {
                let p = m * N + n;
                rec[128 + 4 * p..][..4].copy_from_slice(&c[4 * i..4 * i + 4]);
                if ty == GgmlType::Q4_1 {
                    rec[192 + 4 * p..][..4].copy_from_slice(&c[4 * (r + i)..4 * (r + i) + 4]);
                }
            }
        }
    }
}

/// Writes one panel's row records (`ty`, panel bytes, rows per panel, block columns, out).
pub type RecordsFn<'a> = &'a dyn Fn(GgmlType, &[u8], usize, usize, &mut [u8]);
/// One tile call (as [`tiles_reference`]): records, row groups per block, first group, tokens.
pub type TileFn<'a> = &'a dyn Fn(GgmlType, &[u8], usize, usize, &[u8]) -> Tiles;

/// `out[t * ld + i]` = row i of panel `p` · token t for every token of `tokens` and existing row
/// of the panel, through `records` (a panel's row records, as [`row_records_reference`]) and
/// `tile` (one tile call, as [`tiles_reference`]). `scratch` holds the records between calls.
///
/// # Safety
/// `out` must be valid for writes at `t * ld + i` for every token t and existing row i of the
/// panel, and no other thread may touch those floats during the call (workers own whole panels).
#[allow(clippy::too_many_arguments)]
pub unsafe fn panel_batch(
    w: &Packed,
    p: usize,
    tokens: &ImeTokens,
    scratch: &mut Vec<u8>,
    out: *mut f32,
    ld: usize,
    records: RecordsFn,
    tile: TileFn,
) {
    let (nb, n_rows, r) = (w.blocks(), w.panel_rows(p), w.r);
    let groups = r / N;
    assert!(
        nb == tokens.blocks && groups.is_multiple_of(GROUPS) && n_rows <= ld,
        "ime: {nb} weight blocks, {} token blocks, {r} rows per panel, {ld} per token",
        tokens.blocks
    );
    scratch.resize(groups * nb * RECORD, 0);
    records(w.ty, w.panel(p), r, nb, scratch);
    for g in 0..tokens.groups() {
        let group = tokens.group(g);
        let m_here = (tokens.tokens - g * M).min(M);
        // Row groups past the panel's last row hold zeros; skip whole calls of them.
        for rg0 in (0..n_rows.div_ceil(N)).step_by(GROUPS) {
            let c = tile(w.ty, scratch, groups, rg0, group);
            for (k, c) in c.iter().enumerate() {
                let (i0, rows_here) = ((rg0 + k) * N, n_rows.saturating_sub((rg0 + k) * N).min(N));
                for (m, c) in c.iter().enumerate().take(m_here) {
                    // SAFETY: token g M + m < tokens.tokens and rows i0..i0 + rows_here exist in
                    // the panel: writable and ours by the caller's contract.
                    unsafe {
                        let dst = out.add((g * M + m) * ld + i0);
                        if rows_here == N {
                            dst.cast::<[f32; N]>().write_unaligned(*c);
                        } else {
                            std::ptr::copy_nonoverlapping(c.as_ptr(), dst, rows_here);
                        }
                    }
                }
            }
        }
    }
}
