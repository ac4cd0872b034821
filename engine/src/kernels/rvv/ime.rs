//! IME1 kernels (SpacemiT `smt.vmadot`, VLEN 256 profile): a panel's rows transposed into the
//! tile records of `kernels::ime`, and one 4-token × 4-row tile of Q4_0, Q4_1 or Q8_0 weights.

use crate::kernels::ime::{M, N, RECORD};
use crate::types::GgmlType;

/// Whether this CPU's vector length is the one the IME1 tiles are written for (VLEN 256, the
/// X60/X100 profile). Elsewhere (A100's 1024) the panel kernels run instead.
pub fn active() -> bool {
    super::vlenb() == 32
}

/// Writes the `[row group][block]` records of `panel` (`r` rows, `nb` block columns of `ty`,
/// `kernels::pack` layout) into `out`, as `ime::row_records_reference` does.
///
/// # Safety
/// V enabled with VLEN 256; `out` holds `r / 4 * nb` records and `panel` `nb` block columns.
pub unsafe fn row_records(ty: GgmlType, panel: &[u8], r: usize, nb: usize, out: &mut [u8]) {
    assert!(nb > 0 && out.len() >= r / N * nb * RECORD && panel.len().is_multiple_of(nb));
    let col = panel.len() / nb;
    let quants = match ty {
        GgmlType::Q4_1 => 8 * r,
        _ => 4 * r,
    };
    for i in 0..r {
        let (g, n) = (i / N, i % N);
        let dst = out[(g * nb) * RECORD + n * 8..].as_mut_ptr();
        let src = panel[quants + i..].as_ptr();
        // SAFETY: per block: 16 (Q4) or 32 (Q8_0) bytes read at src + j * r (inside the block's
        // column of `col` bytes); four 8-byte pieces written at dst + 32 h, inside the record
        // (dst = record + 8 n, 8-byte aligned). Blocks step by `col` and RECORD.
        unsafe {
            if ty == GgmlType::Q8_0 {
                asm_v!(
                    "li {t0}, 32",
                    "li {t1}, 4",
                    "1:",
                    "vsetvli zero, {t0}, e8, m1, ta, ma",
                    "vlse8.v v1, ({src}), {r}",
                    "vsetvli zero, {t1}, e64, m1, ta, ma",
                    "vsse64.v v1, ({dst}), {t0}",
                    "add {src}, {src}, {col}",
                    "addi {dst}, {dst}, 256",
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b";
                    src = inout(reg) src => _,
                    dst = inout(reg) dst => _,
                    n = inout(reg) nb => _,
                    r = in(reg) r,
                    col = in(reg) col,
                    t0 = out(reg) _,
                    t1 = out(reg) _,
                );
            } else {
                // Low nibbles are elements 0..15 (pieces 0, 1), high ones 16..31 (pieces 2, 3).
                asm_v!(
                    "li {t0}, 32",
                    "li {t1}, 16",
                    "li {t2}, 2",
                    "1:",
                    "vsetvli zero, {t1}, e8, m1, ta, ma",
                    "vlse8.v v1, ({src}), {r}",
                    "vand.vi v2, v1, 15",
                    "vsrl.vi v3, v1, 4",
                    "vsetvli zero, {t2}, e64, m1, ta, ma",
                    "vsse64.v v2, ({dst}), {t0}",
                    "addi {t3}, {dst}, 64",
                    "vsse64.v v3, ({t3}), {t0}",
                    "add {src}, {src}, {col}",
                    "addi {dst}, {dst}, 256",
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b";
                    src = inout(reg) src => _,
                    dst = inout(reg) dst => _,
                    n = inout(reg) nb => _,
                    r = in(reg) r,
                    col = in(reg) col,
                    t0 = out(reg) _,
                    t1 = out(reg) _,
                    t2 = out(reg) _,
                    t3 = out(reg) _,
                );
            }
        }
    }
    // The per-element scales of each record: dx (and Q4_1's mx) of its 4 rows, at every p with
    // p % 4 == n: four floats of the panel's scale array gathered into 16.
    let mins = if ty == GgmlType::Q4_1 { 4 * r } else { 0 };
    for g in 0..r / N {
        let src = panel[16 * g..].as_ptr();
        let dst = out[g * nb * RECORD + 128..].as_mut_ptr();
        // SAFETY: per block, 64 bytes read at src (and at src + mins for Q4_1's m): the 4 scales
        // gathered and 12 after them, inside the column (16 g + 64 <= 4 r + 48 < column bytes at
        // r = 32); 64 bytes written at dst (and dst + 64), inside the record.
        unsafe {
            asm_v!(
                "li {t0}, 16",
                "vsetvli zero, {t0}, e32, m2, ta, ma",
                "vid.v v12",
                "vand.vi v12, v12, 3",
                "1:",
                "vle32.v v8, ({src})",
                "vrgather.vv v10, v8, v12",
                "vse32.v v10, ({dst})",
                "beqz {mins}, 2f",
                "add {t1}, {src}, {mins}",
                "vle32.v v8, ({t1})",
                "vrgather.vv v10, v8, v12",
                "addi {t1}, {dst}, 64",
                "vse32.v v10, ({t1})",
                "2:",
                "add {src}, {src}, {col}",
                "addi {dst}, {dst}, 256",
                "addi {n}, {n}, -1",
                "bnez {n}, 1b";
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                n = inout(reg) nb => _,
                col = in(reg) col,
                mins = in(reg) mins,
                t0 = out(reg) _,
                t1 = out(reg) _,
            );
        }
    }
}

/// asm lines shared by the tile kernels: v24 (e32, 16 lanes) accumulates C = A·Bᵀ per block,
/// each block's integer tile left in v16 with vtype e32/m2 and {t0} / {t1} pointing at the
/// token / row record's f32 factors (dy, dx); the caller's lines finish the block.
macro_rules! ime_block_sums {
    ($vmadot:literal) => {
        concat!(
            ".option arch, +xsmtvdot\n",
            "li {vl}, 16\n",
            "vsetvli zero, {vl}, e32, m2, ta, ma\n",
            "vmv.v.i v24, 0\n",
            "vmv.v.i v30, 0\n",
            "1:\n",
            "vsetvli zero, {vl}, e8, m1, ta, ma\n",
            "vl4re8.v v0, ({a})\n",
            "vl4re8.v v4, ({w})\n",
            "vmv2r.v v16, v30\n",
            $vmadot,
            " v16, v0, v4\n",
            $vmadot,
            " v16, v1, v5\n",
            $vmadot,
            " v16, v2, v6\n",
            $vmadot,
            " v16, v3, v7\n",
            "vsetvli zero, {vl}, e32, m2, ta, ma\n",
            "addi {t0}, {a}, 128\n",
            "addi {t1}, {w}, 128\n",
            "vle32.v v12, ({t0})\n",
            "vle32.v v10, ({t1})",
        )
    };
}

/// asm lines ending a block: accumulate v16, step both records, loop; then store C.
macro_rules! ime_block_end {
    () => {
        concat!(
            "vfadd.vv v24, v24, v16\n",
            "addi {a}, {a}, 256\n",
            "addi {w}, {w}, 256\n",
            "addi {n}, {n}, -1\n",
            "bnez {n}, 1b\n",
            "vse32.v v24, ({out})",
        )
    };
}

/// One tile: `[m][n]` = row record n · token record m over `rows.len() / RECORD` blocks, equal
/// bit for bit to `ime::tile_reference` (and so to the panel kernels of the type).
///
/// # Safety
/// V and xsmtvdot enabled, VLEN 256; `rows` and `tokens` hold the same number (≥ 1) of records.
pub unsafe fn tile(ty: GgmlType, rows: &[u8], tokens: &[u8]) -> [[f32; N]; M] {
    let nb = rows.len() / RECORD;
    assert!(nb > 0 && tokens.len() >= nb * RECORD);
    let mut c = [[0.0f32; N]; M];
    let (a, w, out) = (tokens.as_ptr(), rows.as_ptr(), c.as_mut_ptr().cast::<f32>());
    // SAFETY: per block 256 bytes of each record are read (4 whole registers of quants, then
    // 16-lane f32/i32 vectors at offsets 128 and 192); 16 floats written to `c`. The integer
    // tiles are exact (32 products of at most 128 * 255 per element); the float steps are the
    // panel kernels' (`kernels::ime` module docs).
    unsafe {
        match ty {
            // (isum + corr) * dx * dy
            GgmlType::Q4_0 => asm_v!(
                ime_block_sums!("smt.vmadotsu"),
                "addi {t0}, {a}, 192",
                "vle32.v v8, ({t0})",
                "vadd.vv v16, v16, v8",
                "vfcvt.f.x.v v16, v16",
                "vfmul.vv v16, v16, v10",
                "vfmul.vv v16, v16, v12",
                ime_block_end!();
                a = inout(reg) a => _, w = inout(reg) w => _, n = inout(reg) nb => _,
                out = in(reg) out, vl = out(reg) _, t0 = out(reg) _, t1 = out(reg) _,
            ),
            // (dx * dy) * isum + mx * s
            GgmlType::Q4_1 => asm_v!(
                ime_block_sums!("smt.vmadotsu"),
                "vfcvt.f.x.v v16, v16",
                "vfmul.vv v10, v10, v12",
                "vfmul.vv v16, v10, v16",
                "addi {t0}, {a}, 192",
                "addi {t1}, {w}, 192",
                "vle32.v v8, ({t0})",
                "vle32.v v14, ({t1})",
                "vfmul.vv v14, v14, v8",
                "vfadd.vv v16, v16, v14",
                ime_block_end!();
                a = inout(reg) a => _, w = inout(reg) w => _, n = inout(reg) nb => _,
                out = in(reg) out, vl = out(reg) _, t0 = out(reg) _, t1 = out(reg) _,
            ),
            // isum * (dx * dy)
            _ => asm_v!(
                ime_block_sums!("smt.vmadot"),
                "vfcvt.f.x.v v16, v16",
                "vfmul.vv v10, v10, v12",
                "vfmul.vv v16, v16, v10",
                ime_block_end!();
                a = inout(reg) a => _, w = inout(reg) w => _, n = inout(reg) nb => _,
                out = in(reg) out, vl = out(reg) _, t0 = out(reg) _, t1 = out(reg) _,
            ),
        }
    }
    c
}
