//! IME1 kernels (SpacemiT `smt.vmadot`, VLEN 256 profile): a panel's rows transposed into the
//! tile records of `kernels::ime`, and one 4-token × 4-row tile of Q4_0, Q4_1 or Q8_0 weights.

use crate::kernels::ime::{GROUPS, N, RECORD, Tiles};
use crate::types::{GgmlType, QK};

/// Whether this CPU's vector length is the one the IME1 tiles are written for (VLEN 256, the
/// X60/X100 profile). Elsewhere (A100's 1024) the panel kernels run instead.
pub fn active() -> bool {
    super::vlenb() == 32
}

/// Writes the `[block][row group]` records of `panel` (`r` rows, `nb` block columns of `ty`,
/// `kernels::pack` layout) into `out`, as `ime::row_records_reference` does.
///
/// # Safety
/// V enabled with VLEN 256; `out` holds `r / 4 * nb` records and `panel` `nb` block columns.
pub unsafe fn row_records(ty: GgmlType, panel: &[u8], r: usize, nb: usize, out: &mut [u8]) {
    assert!(nb > 0 && out.len() >= r / N * nb * RECORD && panel.len().is_multiple_of(nb));
    let col = panel.len() / nb;
    // Consecutive blocks of one row group are this far apart.
    let block_step = r / N * RECORD;
    let quants = match ty {
        GgmlType::Q4_1 => 8 * r,
        _ => 4 * r,
    };
    // Byte q of a record's quants (chunk c, row n, quant k) is quant e = 8 c + k of row 4 g + n,
    // which the panel holds at byte (e % 16) * r + 4 g + n of the block's quants (Q4: low
    // nibbles for e < 16, high ones after; Q8_0: e * r + ...). One indexed load per record
    // gathers them in record order: Q4 gathers the 16 nibble bytes of 4 rows, in the order of
    // chunks 0-1, whose high nibbles are then chunks 2-3; Q8_0 all 32 bytes of 4 rows.
    // Q4 reads the first 64 entries (chunks 0-1), Q8_0 all 128.
    let q8 = ty == GgmlType::Q8_0;
    let index: [u16; QK * N] = std::array::from_fn(|q| {
        let (c, n, k) = (q / (N * 8), q / 8 % N, q % 8);
        u16::try_from((8 * c + k) * r + n).expect("panel offsets fit 16 bits at VLEN 256")
    });
    for g in 0..r / N {
        let src = panel[quants + N * g..].as_ptr();
        let dst = out[g * RECORD..].as_mut_ptr();
        // SAFETY: per block, 128 (Q8_0) or 64 (Q4) bytes read at src + index[q] (< 32 r, inside
        // the block's quants), and 128 bytes written at dst (Q4: 64 + 64), inside the record;
        // blocks step by `col` and `block_step`. That many u16 of `index` are read once.
        unsafe {
            if q8 {
                asm_v!(
                    "li {t0}, 128",
                    "vsetvli zero, {t0}, e16, m8, ta, ma",
                    "vle16.v v8, ({idx})",
                    "vsetvli zero, {t0}, e8, m4, ta, ma",
                    "1:",
                    "vluxei16.v v0, ({src}), v8",
                    "vse8.v v0, ({dst})",
                    "add {src}, {src}, {col}",
                    "add {dst}, {dst}, {step}",
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b";
                    src = inout(reg) src => _,
                    dst = inout(reg) dst => _,
                    n = inout(reg) nb => _,
                    idx = in(reg) index.as_ptr(),
                    col = in(reg) col,
                    step = in(reg) block_step,
                    t0 = out(reg) _,
                );
            } else {
                asm_v!(
                    "li {t0}, 64",
                    "vsetvli zero, {t0}, e16, m4, ta, ma",
                    "vle16.v v8, ({idx})",
                    "vsetvli zero, {t0}, e8, m2, ta, ma",
                    "1:",
                    "vluxei16.v v0, ({src}), v8",
                    "vand.vi v2, v0, 15",
                    "vsrl.vi v4, v0, 4",
                    "vse8.v v2, ({dst})",
                    "addi {t1}, {dst}, 64",
                    "vse8.v v4, ({t1})",
                    "add {src}, {src}, {col}",
                    "add {dst}, {dst}, {step}",
                    "addi {n}, {n}, -1",
                    "bnez {n}, 1b";
                    src = inout(reg) src => _,
                    dst = inout(reg) dst => _,
                    n = inout(reg) nb => _,
                    idx = in(reg) index.as_ptr(),
                    col = in(reg) col,
                    step = in(reg) block_step,
                    t0 = out(reg) _,
                    t1 = out(reg) _,
                );
            }
        }
    }
    // The per-element scales of each record: dx (and Q4_1's mx) of its 4 rows, at every p with
    // p % 4 == n: four floats of the panel's scale array gathered into 16.
    let mins = if ty == GgmlType::Q4_1 { 4 * r } else { 0 };
    for g in 0..r / N {
        let src = panel[16 * g..].as_ptr();
        let dst = out[g * RECORD + 128..].as_mut_ptr();
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
                "add {dst}, {dst}, {step}",
                "addi {n}, {n}, -1",
                "bnez {n}, 1b";
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                n = inout(reg) nb => _,
                col = in(reg) col,
                step = in(reg) block_step,
                mins = in(reg) mins,
                t0 = out(reg) _,
                t1 = out(reg) _,
            );
        }
    }
}

/// asm lines starting a tile call's block loop: four integer tiles C_k = A·B_kᵀ of the token
/// record at {a} and the row records at {w} + 256 k, in v8, v10, v12, v14 (vtype e8/m1 for the
/// `vmadot`s, LMUL 1 as IME requires); the four f32 accumulators are v16..v22 (e32/m2, 16 lanes).
macro_rules! ime_tile_sums {
    ($vmadot:literal) => {
        concat!(
            ".option arch, +xsmtvdot\n",
            "li {vl}, 16\n",
            "vsetvli zero, {vl}, e32, m2, ta, ma\n",
            "vmv.v.i v16, 0\n",
            "vmv.v.i v18, 0\n",
            "vmv.v.i v20, 0\n",
            "vmv.v.i v22, 0\n",
            "vmv.v.i v30, 0\n",
            "1:\n",
            "vsetvli zero, {vl}, e8, m1, ta, ma\n",
            "vl4re8.v v0, ({a})\n",
            ime_tile_sums!(@group $vmadot, "v8", "0"),
            ime_tile_sums!(@group $vmadot, "v10", "256"),
            ime_tile_sums!(@group $vmadot, "v12", "512"),
            ime_tile_sums!(@group $vmadot, "v14", "768"),
            "vsetvli zero, {vl}, e32, m2, ta, ma\n",
            "addi {t0}, {a}, 128\n",
            "vle32.v v24, ({t0})\n",
            "addi {t0}, {a}, 192\n",
            "vle32.v v26, ({t0})\n",
        )
    };
    (@group $vmadot:literal, $c:literal, $off:literal) => {
        concat!(
            "addi {t0}, {w}, ", $off, "\n",
            "vl4re8.v v4, ({t0})\n",
            "vmv2r.v ", $c, ", v30\n",
            $vmadot, " ", $c, ", v0, v4\n",
            $vmadot, " ", $c, ", v1, v5\n",
            $vmadot, " ", $c, ", v2, v6\n",
            $vmadot, " ", $c, ", v3, v7\n",
        )
    };
}

/// asm lines ending a block (step both records, loop), then storing the four accumulators.
macro_rules! ime_tile_end {
    () => {
        concat!(
            "addi {a}, {a}, 256\n",
            "add {w}, {w}, {step}\n",
            "addi {n}, {n}, -1\n",
            "bnez {n}, 1b\n",
            "vse32.v v16, ({out})\n",
            "addi {t0}, {out}, 64\n",
            "vse32.v v18, ({t0})\n",
            "addi {t0}, {out}, 128\n",
            "vse32.v v20, ({t0})\n",
            "addi {t0}, {out}, 192\n",
            "vse32.v v22, ({t0})",
        )
    };
}

/// Q4_0's float steps for group tile `c` into accumulator `acc` (dx at {w} + `dx`): with v24 = dy
/// and v26 = corr, `acc += (isum + corr) * dx * dy`. (`_mx` is Q4_1's.)
macro_rules! q4_0_steps {
    ($c:literal, $acc:literal, $dx:literal, $_mx:literal) => {
        concat!(
            "addi {t0}, {w}, ",
            $dx,
            "\n",
            "vle32.v v28, ({t0})\n",
            "vadd.vv ",
            $c,
            ", ",
            $c,
            ", v26\n",
            "vfcvt.f.x.v ",
            $c,
            ", ",
            $c,
            "\n",
            "vfmul.vv ",
            $c,
            ", ",
            $c,
            ", v28\n",
            "vfmul.vv ",
            $c,
            ", ",
            $c,
            ", v24\n",
            "vfadd.vv ",
            $acc,
            ", ",
            $acc,
            ", ",
            $c,
            "\n",
        )
    };
}

/// The `isum * (dx * dy)` step Q8_0 and Q4_1 share, with v24 = dy, leaving it in `c`.
macro_rules! times_dx_dy {
    ($c:literal, $dx:literal) => {
        concat!(
            "addi {t0}, {w}, ",
            $dx,
            "\n",
            "vle32.v v28, ({t0})\n",
            "vfmul.vv v28, v28, v24\n",
            "vfcvt.f.x.v ",
            $c,
            ", ",
            $c,
            "\n",
            "vfmul.vv ",
            $c,
            ", ",
            $c,
            ", v28\n",
        )
    };
}

/// Q4_1's: with v26 = s, `acc += (dx * dy) * isum + mx * s` (mx at {w} + `mx`).
macro_rules! q4_1_steps {
    ($c:literal, $acc:literal, $dx:literal, $mx:literal) => {
        concat!(
            times_dx_dy!($c, $dx),
            "addi {t0}, {w}, ",
            $mx,
            "\n",
            "vle32.v v28, ({t0})\n",
            "vfmul.vv v28, v28, v26\n",
            "vfadd.vv ",
            $c,
            ", ",
            $c,
            ", v28\n",
            "vfadd.vv ",
            $acc,
            ", ",
            $acc,
            ", ",
            $c,
            "\n",
        )
    };
}

/// Q8_0's: `acc += isum * (dx * dy)`.
macro_rules! q8_0_steps {
    ($c:literal, $acc:literal, $dx:literal, $_mx:literal) => {
        concat!(times_dx_dy!($c, $dx), "vfadd.vv ", $acc, ", ", $acc, ", ", $c, "\n")
    };
}

/// The whole tile call for one type: its `vmadot` form and its float steps, applied to the four
/// group tiles (C in v8..v14 into accumulators v16..v22, row records 256 bytes apart).
macro_rules! tile_asm {
    ($vmadot:literal, $steps:ident, $a:ident, $w:ident, $nb:ident, $step:ident, $out:ident) => {
        asm_v!(
            ime_tile_sums!($vmadot),
            $steps!("v8", "v16", "128", "192"),
            $steps!("v10", "v18", "384", "448"),
            $steps!("v12", "v20", "640", "704"),
            $steps!("v14", "v22", "896", "960"),
            ime_tile_end!();
            a = inout(reg) $a => _, w = inout(reg) $w => _, n = inout(reg) $nb => _,
            step = in(reg) $step, out = in(reg) $out, vl = out(reg) _, t0 = out(reg) _,
        )
    };
}

/// One tile call: for row groups `rg0..rg0 + 4` of a panel's `[block][row group]` records
/// (`groups` per block) and one token group's `[block]` records, `[k][m][n]` = row n of group
/// rg0 + k · token m; equal bit for bit to `ime::tiles_reference` (and so to the panel kernels).
///
/// # Safety
/// V and xsmtvdot enabled, VLEN 256; `tokens` holds nb ≥ 1 records and `records` nb × `groups`,
/// with rg0 + 4 <= groups.
pub unsafe fn tiles(ty: GgmlType, records: &[u8], groups: usize, rg0: usize, tokens: &[u8]) -> Tiles {
    let nb = tokens.len() / RECORD;
    assert!(nb > 0 && rg0 + GROUPS <= groups && records.len() >= nb * groups * RECORD);
    let mut c: Tiles = [[[0.0; N]; crate::kernels::ime::M]; GROUPS];
    let (a, w, out) = (tokens.as_ptr(), records[rg0 * RECORD..].as_ptr(), c.as_mut_ptr().cast::<f32>());
    let step = groups * RECORD;
    // SAFETY: per block, 256 bytes of the token record and of four row records (at w + 256 k,
    // k < 4: groups rg0..rg0 + 4 of the block) are read: four whole registers of quants, then
    // 16-lane f32/i32 vectors at offsets 128 and 192; 64 floats written to `c`. The integer
    // tiles are exact (32 products of at most 128 * 255 per element); the float steps are the
    // panel kernels' (`kernels::ime` module docs).
    unsafe {
        match ty {
            GgmlType::Q4_0 => tile_asm!("smt.vmadotsu", q4_0_steps, a, w, nb, step, out),
            GgmlType::Q4_1 => tile_asm!("smt.vmadotsu", q4_1_steps, a, w, nb, step, out),
            _ => tile_asm!("smt.vmadot", q8_0_steps, a, w, nb, step, out),
        }
    }
    c
}
