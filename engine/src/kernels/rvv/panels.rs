//! RVV panel kernels: `r = vlenb` weight rows (the layout of `kernels::pack`) times one
//! activation, one vector lane per row, so the work per row falls in proportion to VLEN.

use super::PanelInput;
use crate::kernels::pack::{ActivationAux, Packed};
use crate::types::{Activation, BlockQ8_0, BlockQ8_1, BlockQ8K, GgmlType};

/// `out[i] = row i of panel p · act` through this module's panel kernels, or the scalar
/// reference when `w` was packed for another VLEN. `out` holds `w.panel_rows(p)` floats and `w`
/// has at least one block column.
///
/// # Safety
/// V must be enabled.
pub unsafe fn panel_dot(w: &Packed, p: usize, act: &Activation, aux: &ActivationAux, out: &mut [f32]) {
    if w.r != super::vlenb() {
        return crate::kernels::pack::panel_dot_reference(w, p, act, aux, out);
    }
    let (q, stride) = match act {
        Activation::Q8_0(y) => (y.as_ptr().cast::<u8>().wrapping_add(2), size_of::<BlockQ8_0>()),
        Activation::Q8_1(y) => (y.as_ptr().cast::<u8>().wrapping_add(4), size_of::<BlockQ8_1>()),
        Activation::Q8K(y) => (y[0].qs.as_ptr().cast::<u8>(), size_of::<BlockQ8K>()),
        _ => panic!("panel_dot: {} weights need a Q8_0, Q8_1 or Q8_K activation", w.ty),
    };
    let y = PanelInput { q: q.cast(), stride, d: aux.d.as_ptr(), corr: aux.corr.as_ptr(), s: aux.s.as_ptr() };
    let (panel, nb, n_out) = (w.panel(p), w.blocks(), out.len());
    let kernel = match w.ty {
        GgmlType::Q4_0 => panel_q4_0,
        GgmlType::Q4_1 => panel_q4_1,
        GgmlType::Q5_0 => panel_q5_0,
        GgmlType::Q5_1 => panel_q5_1,
        GgmlType::Q4K => panel_q4_k,
        GgmlType::Q5K => panel_q5_k,
        GgmlType::Q6K => panel_q6_k,
        _ => panel_q8_0,
    };
    // SAFETY: V is enabled (caller); the panel has r = vlenb rows and nb >= 1 columns, the
    // activation and aux hold nb blocks, out holds n_out <= r floats.
    unsafe { kernel(panel, nb, &y, out.as_mut_ptr(), n_out) }
}

/// asm lines shared by the Q4_0 and Q4_1 panel kernels: the integer sums of one block column,
/// left as e32 in v8 (vtype e32/m4). Quants start `r << shift` bytes into the column (after the
/// f32 scale arrays); the nibbles are unsigned, so `vwmaccsu` adds q*y; each e16 accumulator
/// sums 16 products of at most 15 * 127: no overflow.
macro_rules! nibble_panel_sums {
    ($shift:literal) => {
        concat!(
            "vsetvli zero, zero, e16, m2, ta, ma\n",
            "vmv.v.i v4, 0\n",
            "vmv.v.i v6, 0\n",
            "vsetvli zero, zero, e8, m1, ta, ma\n",
            "slli {p}, {r}, ",
            $shift,
            "\n",
            "add {p}, {p}, {x}\n",
            ".irp j, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n",
            "vle8.v v1, ({p})\n",
            "add {p}, {p}, {r}\n",
            "vand.vi v2, v1, 15\n",
            "vsrl.vi v3, v1, 4\n",
            "lb {t0}, \\j({q})\n",
            "lb {t1}, 16+\\j({q})\n",
            "vwmaccsu.vx v4, {t0}, v2\n",
            "vwmaccsu.vx v6, {t1}, v3\n",
            ".endr\n",
            "vsetvli zero, zero, e16, m2, ta, ma\n",
            "vwadd.vv v8, v4, v6\n",
            "vsetvli zero, zero, e32, m4, ta, ma",
        )
    };
}

/// asm lines ending one block column of the Q4_1 and Q5_1 panel kernels: the integer sums in
/// v8 become `(dx * dy) * isum + mx * sy` (ggml's order), added to the v16 accumulators; then
/// the pointers step to the next column and the loop repeats while blocks remain.
macro_rules! x_1_panel_step {
    () => {
        concat!(
            "vfcvt.f.x.v v8, v8\n",
            "vle32.v v12, ({x})\n",
            "flw {f0}, 0({d})\n",
            "vfmul.vf v12, v12, {f0}\n",
            "vfmul.vv v8, v12, v8\n",
            "slli {t0}, {r}, 2\n",
            "add {t0}, {t0}, {x}\n",
            "vle32.v v20, ({t0})\n",
            "flw {f0}, 0({s})\n",
            "vfmul.vf v20, v20, {f0}\n",
            "vfadd.vv v8, v8, v20\n",
            "vfadd.vv v16, v16, v8\n",
            "mv {x}, {p}\n",
            "add {q}, {q}, {stride}\n",
            "addi {s}, {s}, 4\n",
            "addi {d}, {d}, 4\n",
            "addi {n}, {n}, -1\n",
            "bnez {n}, 2b",
        )
    };
}

/// `out[i] = row i · y` for the first `n_out` rows of a Q4_0 panel of `nb >= 1` blocks.
///
/// # Safety
/// V enabled; the panel was packed with r = `vlenb()`; `y` covers `nb` blocks; `out` holds
/// `n_out <= r` floats.
#[inline(never)]
pub unsafe fn panel_q4_0(panel: &[u8], nb: usize, y: &PanelInput, out: *mut f32, n_out: usize) {
    // SAFETY: per block column: r f32 scales then 16 rows of r nibble bytes (20 r bytes, read by
    // vle32/vle8 at vl = r); 32 activation bytes at q..q+32; one f32 and one i32 of aux.
    // corr = -8 sum(y) restores (q - 8). Lanes keep ggml's block order and operation order
    // ((isum * dx) * dy), so results equal the scalar reference.
    unsafe {
        asm_v!(
            "vsetvli {r}, zero, e32, m4, ta, ma",
            "vmv.v.i v16, 0",
            "2:",
            nibble_panel_sums!("2"),
            "lw {t0}, 0({c})",
            "vadd.vx v8, v8, {t0}",
            "vfcvt.f.x.v v8, v8",
            "vle32.v v12, ({x})",
            "vfmul.vv v8, v8, v12",
            "flw {f0}, 0({d})",
            "vfmul.vf v8, v8, {f0}",
            "vfadd.vv v16, v16, v8",
            "mv {x}, {p}",
            "add {q}, {q}, {stride}",
            "addi {c}, {c}, 4",
            "addi {d}, {d}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            "vsetvli zero, {m}, e32, m4, ta, ma",
            "vse32.v v16, ({out})";
            x = inout(reg) panel.as_ptr() => _,
            q = inout(reg) y.q => _,
            c = inout(reg) y.corr => _,
            d = inout(reg) y.d => _,
            n = inout(reg) nb => _,
            stride = in(reg) y.stride,
            m = in(reg) n_out,
            out = in(reg) out,
            r = out(reg) _,
            p = out(reg) _,
            t0 = out(reg) _,
            t1 = out(reg) _,
            f0 = out(freg) _,
        );
    }
}

/// `out[i] = row i · y` for the first `n_out` rows of a Q4_1 panel (against Q8_1).
///
/// # Safety
/// As [`panel_q4_0`].
#[inline(never)]
pub unsafe fn panel_q4_1(panel: &[u8], nb: usize, y: &PanelInput, out: *mut f32, n_out: usize) {
    // SAFETY: as panel_q4_0 with 24 r bytes per column (d[r], m[r], 16 r nibbles); the value is
    // (dx * dy) * isum + mx * sy per block, as ggml computes it.
    unsafe {
        asm_v!(
            "vsetvli {r}, zero, e32, m4, ta, ma",
            "vmv.v.i v16, 0",
            "2:",
            nibble_panel_sums!("3"),
            x_1_panel_step!(),
            "vsetvli zero, {m}, e32, m4, ta, ma",
            "vse32.v v16, ({out})";
            x = inout(reg) panel.as_ptr() => _,
            q = inout(reg) y.q => _,
            s = inout(reg) y.s => _,
            d = inout(reg) y.d => _,
            n = inout(reg) nb => _,
            stride = in(reg) y.stride,
            m = in(reg) n_out,
            out = in(reg) out,
            r = out(reg) _,
            p = out(reg) _,
            t0 = out(reg) _,
            t1 = out(reg) _,
            f0 = out(freg) _,
        );
    }
}

/// asm lines shared by the Q5_0 and Q5_1 panel kernels: the integer sums of one block column
/// of unsigned 5-bit values, left as e32 in v8 (vtype e32/m4). Bit planes start `r << shift`
/// bytes into the column, the nibbles 4 r bytes after them; each plane, loaded as a mask, sets
/// bit 4 of its element by a masked `vor` with `{sixteen}` (vtype mu). A product is at most
/// 31 * 127, so each e16 accumulator takes 8 of them (v4/v6 for j < 8, v24/v26 after): no
/// overflow.
macro_rules! q5_panel_sums {
    ($shift:literal) => {
        concat!(
            "vsetvli zero, zero, e16, m2, ta, ma\n",
            "vmv.v.i v4, 0\n",
            "vmv.v.i v6, 0\n",
            "vmv.v.i v24, 0\n",
            "vmv.v.i v26, 0\n",
            "vsetvli zero, zero, e8, m1, ta, mu\n",
            "slli {h}, {r}, ",
            $shift,
            "\n",
            "add {h}, {h}, {x}\n",
            "slli {h1}, {rb}, 4\n",
            "add {h1}, {h1}, {h}\n",
            "slli {p}, {r}, 2\n",
            "add {p}, {p}, {h}\n",
            q5_panel_pair!("v4", "v6", "0,1,2,3,4,5,6,7"),
            q5_panel_pair!("v24", "v26", "8,9,10,11,12,13,14,15"),
            "vsetvli zero, zero, e16, m2, ta, ma\n",
            "vwadd.vv v8, v4, v6\n",
            "vwadd.vv v28, v24, v26\n",
            "vsetvli zero, zero, e32, m4, ta, ma\n",
            "vadd.vv v8, v8, v28",
        )
    };
}

/// Elements `j` (low nibbles, planes from `h`) and `j + 16` (high nibbles, planes from `h1`)
/// for each listed `j`, accumulated into `$lo` and `$hi`.
macro_rules! q5_panel_pair {
    ($lo:literal, $hi:literal, $js:literal) => {
        concat!(
            ".irp j, ",
            $js,
            "\n",
            "vle8.v v1, ({p})\n",
            "add {p}, {p}, {r}\n",
            "vlm.v v0, ({h})\n",
            "add {h}, {h}, {rb}\n",
            "vand.vi v2, v1, 15\n",
            "vor.vx v2, v2, {sixteen}, v0.t\n",
            "vlm.v v0, ({h1})\n",
            "add {h1}, {h1}, {rb}\n",
            "vsrl.vi v3, v1, 4\n",
            "vor.vx v3, v3, {sixteen}, v0.t\n",
            "lb {t0}, \\j({q})\n",
            "lb {t1}, 16+\\j({q})\n",
            "vwmaccsu.vx ",
            $lo,
            ", {t0}, v2\n",
            "vwmaccsu.vx ",
            $hi,
            ", {t1}, v3\n",
            ".endr\n",
        )
    };
}

/// `out[i] = row i · y` for the first `n_out` rows of a Q5_0 panel.
///
/// # Safety
/// As [`panel_q4_0`].
#[inline(never)]
pub unsafe fn panel_q5_0(panel: &[u8], nb: usize, y: &PanelInput, out: *mut f32, n_out: usize) {
    // SAFETY: per block column: r f32 scales, 32 bit planes of r/8 bytes (vlm.v at vl = r reads
    // r/8 bytes), 16 rows of r nibble bytes: 24 r bytes; 32 activation bytes at q; one f32 and
    // one i32 of aux. corr = -16 sum(y) restores (q - 16); the block value is
    // isum * (dx * dy) as ggml computes it, accumulated in block order.
    unsafe {
        asm_v!(
            "vsetvli {r}, zero, e32, m4, ta, ma",
            "srli {rb}, {r}, 3",
            "vmv.v.i v16, 0",
            "2:",
            q5_panel_sums!("2"),
            "lw {t0}, 0({c})",
            "vadd.vx v8, v8, {t0}",
            "vfcvt.f.x.v v8, v8",
            "vle32.v v12, ({x})",
            "flw {f0}, 0({d})",
            "vfmul.vf v12, v12, {f0}",
            "vfmul.vv v8, v8, v12",
            "vfadd.vv v16, v16, v8",
            "mv {x}, {p}",
            "add {q}, {q}, {stride}",
            "addi {c}, {c}, 4",
            "addi {d}, {d}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            "vsetvli zero, {m}, e32, m4, ta, ma",
            "vse32.v v16, ({out})";
            x = inout(reg) panel.as_ptr() => _,
            q = inout(reg) y.q => _,
            c = inout(reg) y.corr => _,
            d = inout(reg) y.d => _,
            n = inout(reg) nb => _,
            stride = in(reg) y.stride,
            m = in(reg) n_out,
            out = in(reg) out,
            r = out(reg) _,
            rb = out(reg) _,
            p = out(reg) _,
            h = out(reg) _,
            h1 = out(reg) _,
            sixteen = in(reg) 16,
            t0 = out(reg) _,
            t1 = out(reg) _,
            f0 = out(freg) _,
        );
    }
}

/// `out[i] = row i · y` for the first `n_out` rows of a Q5_1 panel (against Q8_1).
///
/// # Safety
/// As [`panel_q4_0`].
#[inline(never)]
pub unsafe fn panel_q5_1(panel: &[u8], nb: usize, y: &PanelInput, out: *mut f32, n_out: usize) {
    // SAFETY: as panel_q5_0 with 28 r bytes per column (d[r], m[r], planes, nibbles); the value
    // is (dx * dy) * isum + mx * sy per block, as ggml computes it.
    unsafe {
        asm_v!(
            "vsetvli {r}, zero, e32, m4, ta, ma",
            "srli {rb}, {r}, 3",
            "vmv.v.i v16, 0",
            "2:",
            q5_panel_sums!("3"),
            x_1_panel_step!(),
            "vsetvli zero, {m}, e32, m4, ta, ma",
            "vse32.v v16, ({out})";
            x = inout(reg) panel.as_ptr() => _,
            q = inout(reg) y.q => _,
            s = inout(reg) y.s => _,
            d = inout(reg) y.d => _,
            n = inout(reg) nb => _,
            stride = in(reg) y.stride,
            m = in(reg) n_out,
            out = in(reg) out,
            r = out(reg) _,
            rb = out(reg) _,
            p = out(reg) _,
            h = out(reg) _,
            h1 = out(reg) _,
            sixteen = in(reg) 16,
            t0 = out(reg) _,
            t1 = out(reg) _,
            f0 = out(freg) _,
        );
    }
}

/// `out[i] = row i · y` for the first `n_out` rows of a Q8_0 panel.
///
/// # Safety
/// As [`panel_q4_0`].
#[inline(never)]
pub unsafe fn panel_q8_0(panel: &[u8], nb: usize, y: &PanelInput, out: *mut f32, n_out: usize) {
    // SAFETY: per column r f32 scales then 32 rows of r i8 (36 r bytes); at e16/m2 vle8 loads r
    // bytes (EMUL 1), vsext widens them and vwmacc accumulates exactly in e32. Block value
    // isum * (dx * dy), accumulated in block order as the scalar reference does.
    unsafe {
        asm_v!(
            "vsetvli {r}, zero, e32, m4, ta, ma",
            "vmv.v.i v16, 0",
            "2:",
            "vsetvli zero, zero, e32, m4, ta, ma",
            "vmv.v.i v8, 0",
            "vsetvli zero, zero, e16, m2, ta, ma",
            "slli {p}, {r}, 2",
            "add {p}, {p}, {x}",
            ".irp j, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "vle8.v v1, ({p})",
            "add {p}, {p}, {r}",
            "lb {t0}, \\j({q})",
            "vsext.vf2 v2, v1",
            "vwmacc.vx v8, {t0}, v2",
            ".endr",
            "vsetvli zero, zero, e32, m4, ta, ma",
            "vfcvt.f.x.v v8, v8",
            "vle32.v v12, ({x})",
            "flw {f0}, 0({d})",
            "vfmul.vf v12, v12, {f0}",
            "vfmul.vv v8, v8, v12",
            "vfadd.vv v16, v16, v8",
            "mv {x}, {p}",
            "add {q}, {q}, {stride}",
            "addi {d}, {d}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            "vsetvli zero, {m}, e32, m4, ta, ma",
            "vse32.v v16, ({out})";
            x = inout(reg) panel.as_ptr() => _,
            q = inout(reg) y.q => _,
            d = inout(reg) y.d => _,
            n = inout(reg) nb => _,
            stride = in(reg) y.stride,
            m = in(reg) n_out,
            out = in(reg) out,
            r = out(reg) _,
            p = out(reg) _,
            t0 = out(reg) _,
            f0 = out(freg) _,
        );
    }
}

/// The asm of the Q4_K (`$q5` "0", `$group` "16") and Q5_K ("1", "8") panel kernels. Per
/// column: the mins term `sum_s mn_s * (bsums[2s] + bsums[2s+1])` into v12; then per 64-element
/// chunk `c`, byte `j` of every row gives element `64c + j` (low nibble) and `64c + 32 + j`
/// (high; Q5_K adds bit 4 from the two bit planes after it by masked `vor`, vtype mu). Products
/// go into e16 accumulators v4/v6, flushed into v8 (e32) times the zero-extended scales every
/// `$group` bytes: at most 16 * 15 * 128 or 8 * 31 * 128 per lane, so e16 never overflows.
/// The block value `(d * dy) * isum - (dmin * dy) * imin` is the row dot's, in its order.
macro_rules! k4_panel_asm {
    ($q5:literal, $group:literal, $panel:ident, $nb:ident, $y:ident, $out:ident, $n_out:ident) => {
        asm_v!(
            "vsetvli {r}, zero, e32, m4, ta, ma",
            "srli {rb}, {r}, 3",
            "vmv.v.i v16, 0",
            "2:",
            "vsetvli zero, zero, e32, m4, ta, ma",
            "vmv.v.i v8, 0",
            "vmv.v.i v12, 0",
            "slli {p}, {r}, 4",
            "add {p}, {p}, {x}",
            ".irp s, 0,1,2,3,4,5,6,7",
            "vsetvli zero, zero, e8, m1, ta, ma",
            "vle8.v v1, ({p})",
            "add {p}, {p}, {r}",
            "vsetvli zero, zero, e16, m2, ta, ma",
            "vzext.vf2 v20, v1",
            "lh {t0}, 256+4*\\s({q})",
            "lh {t1}, 258+4*\\s({q})",
            "add {t0}, {t0}, {t1}",
            "vwmacc.vx v12, {t0}, v20",
            ".endr",
            "vmv.v.i v4, 0",
            "vmv.v.i v6, 0",
            "slli {sp}, {r}, 3",
            "add {sp}, {sp}, {x}",
            ".irp c, 0,1,2,3",
            "vsetvli zero, zero, e8, m1, ta, mu",
            "vle8.v v1, ({sp})",
            "add {sp}, {sp}, {r}",
            "vle8.v v2, ({sp})",
            "add {sp}, {sp}, {r}",
            "vsetvli zero, zero, e16, m2, ta, ma",
            "vzext.vf2 v20, v1",
            "vzext.vf2 v22, v2",
            "vsetvli zero, zero, e8, m1, ta, mu",
            ".irp j, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "vle8.v v1, ({p})",
            "add {p}, {p}, {r}",
            "vand.vi v2, v1, 15",
            "vsrl.vi v3, v1, 4",
            concat!(".if ", $q5),
            "vlm.v v0, ({p})",
            "add {p}, {p}, {rb}",
            "vor.vx v2, v2, {sixteen}, v0.t",
            "vlm.v v0, ({p})",
            "add {p}, {p}, {rb}",
            "vor.vx v3, v3, {sixteen}, v0.t",
            ".endif",
            "lb {t0}, 64*\\c+\\j({q})",
            "lb {t1}, 64*\\c+32+\\j({q})",
            "vwmaccsu.vx v4, {t0}, v2",
            "vwmaccsu.vx v6, {t1}, v3",
            concat!(".if (\\j + 1) % ", $group, " == 0"),
            "vsetvli zero, zero, e16, m2, ta, ma",
            "vwmacc.vv v8, v20, v4",
            "vwmacc.vv v8, v22, v6",
            "vmv.v.i v4, 0",
            "vmv.v.i v6, 0",
            "vsetvli zero, zero, e8, m1, ta, mu",
            ".endif",
            ".endr",
            ".endr",
            "vsetvli zero, zero, e32, m4, ta, ma",
            "vfcvt.f.x.v v8, v8",
            "vfcvt.f.x.v v12, v12",
            "flw {f0}, 0({d})",
            "vle32.v v24, ({x})",
            "vfmul.vf v24, v24, {f0}",
            "vfmul.vv v8, v24, v8",
            "slli {t0}, {r}, 2",
            "add {t0}, {t0}, {x}",
            "vle32.v v28, ({t0})",
            "vfmul.vf v28, v28, {f0}",
            "vfmul.vv v12, v28, v12",
            "vfsub.vv v8, v8, v12",
            "vfadd.vv v16, v16, v8",
            "mv {x}, {p}",
            "add {q}, {q}, {stride}",
            "addi {d}, {d}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            "vsetvli zero, {m}, e32, m4, ta, ma",
            "vse32.v v16, ({out})";
            x = inout(reg) $panel.as_ptr() => _,
            q = inout(reg) $y.q => _,
            d = inout(reg) $y.d => _,
            n = inout(reg) $nb => _,
            stride = in(reg) $y.stride,
            m = in(reg) $n_out,
            out = in(reg) $out,
            sixteen = in(reg) 16,
            r = out(reg) _,
            rb = out(reg) _,
            p = out(reg) _,
            sp = out(reg) _,
            t0 = out(reg) _,
            t1 = out(reg) _,
            f0 = out(freg) _,
        )
    };
}

/// `out[i] = row i · y` for the first `n_out` rows of a Q4_K panel (against Q8_K: `y.q` are
/// block 0's quants, its bsums 256 bytes after them, `y.d` the blocks' f32 scales).
///
/// # Safety
/// As [`panel_q4_0`], with 152 r bytes per 256-element column.
#[inline(never)]
pub unsafe fn panel_q4_k(panel: &[u8], nb: usize, y: &PanelInput, out: *mut f32, n_out: usize) {
    // SAFETY: per column: d[r], dmin[r] f32, 16 rows of r scale/min bytes, 128 rows of r nibble
    // bytes (152 r, read at vl = r); 256 quants and 16 bsums at q; one f32 at d.
    unsafe { k4_panel_asm!("0", "16", panel, nb, y, out, n_out) }
}

/// `out[i] = row i · y` for the first `n_out` rows of a Q5_K panel.
///
/// # Safety
/// As [`panel_q4_k`], with 184 r bytes per column.
#[inline(never)]
pub unsafe fn panel_q5_k(panel: &[u8], nb: usize, y: &PanelInput, out: *mut f32, n_out: usize) {
    // SAFETY: as panel_q4_k, each nibble row followed by two bit planes of r/8 bytes (vlm.v at
    // vl = r reads r/8 bytes).
    unsafe { k4_panel_asm!("1", "8", panel, nb, y, out, n_out) }
}

/// asm lines of [`panel_q6_k`] for one of the four scale groups loaded together: isum (v8) +=
/// (sc << 5) * -bsum, i.e. the `- 32` of every quant (|sc << 5| <= 4096 and |bsum| <= 2048 fit
/// e16). `$k` picks group `8n + j/16 + 2k`.
macro_rules! q6_offset {
    ($sc:literal, $k:literal) => {
        concat!(
            "vsll.vi v12, ",
            $sc,
            ", 5\n",
            "lh {t0}, 256+2*(8*\\n+\\j/16+2*",
            $k,
            ")({q})\n",
            "neg {t0}, {t0}\n",
            "vwmacc.vx v8, {t0}, v12",
        )
    };
}

/// `out[i] = row i · y` for the first `n_out` rows of a Q6_K panel (Q8_K as [`panel_q4_k`]).
///
/// Byte `j` of half `n` gives four 6-bit values, elements `128n + j + 32k`, from two low-nibble
/// bytes and one byte of high bit pairs. They are multiplied unsigned (0..63) into four e16
/// accumulators, flushed every four bytes (4 * 63 * 128 fits) into v8 times their groups'
/// sign-extended scales; the offset of 32 is taken off through the bsums ([`q6_offset`]).
///
/// # Safety
/// As [`panel_q4_k`], with 212 r bytes per column.
#[inline(never)]
pub unsafe fn panel_q6_k(panel: &[u8], nb: usize, y: &PanelInput, out: *mut f32, n_out: usize) {
    // SAFETY: per column: d[r] f32, 16 rows of r scale bytes, 192 rows of r quant bytes (212 r,
    // read at vl = r); 256 quants and 16 bsums at q; one f32 at d. isum stays below 2^29.
    unsafe {
        asm_v!(
            "vsetvli {r}, zero, e32, m4, ta, ma",
            "slli {r2}, {r}, 1",
            "li {c30}, 0x30",
            "vmv.v.i v16, 0",
            "2:",
            "vsetvli zero, zero, e32, m4, ta, ma",
            "vmv.v.i v8, 0",
            "vsetvli zero, zero, e16, m2, ta, ma",
            "vmv.v.i v4, 0",
            "vmv.v.i v6, 0",
            "vmv.v.i v24, 0",
            "vmv.v.i v26, 0",
            "slli {sp}, {r}, 2",
            "add {sp}, {sp}, {x}",
            "slli {p}, {r}, 4",
            "add {p}, {p}, {sp}",
            ".irp n, 0,1",
            ".irp j, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            ".if \\j % 16 == 0",
            "li {t0}, 8*\\n+\\j/16",
            "mul {t0}, {t0}, {r}",
            "add {t0}, {t0}, {sp}",
            "vsetvli zero, zero, e8, m1, ta, ma",
            "vle8.v v12, ({t0})",
            "add {t0}, {t0}, {r2}",
            "vle8.v v13, ({t0})",
            "add {t0}, {t0}, {r2}",
            "vle8.v v14, ({t0})",
            "add {t0}, {t0}, {r2}",
            "vle8.v v15, ({t0})",
            "vsetvli zero, zero, e16, m2, ta, ma",
            "vsext.vf2 v20, v12",
            "vsext.vf2 v22, v13",
            "vsext.vf2 v28, v14",
            "vsext.vf2 v30, v15",
            q6_offset!("v20", "0"),
            q6_offset!("v22", "1"),
            q6_offset!("v28", "2"),
            q6_offset!("v30", "3"),
            "vsetvli zero, zero, e8, m1, ta, ma",
            ".endif",
            "vle8.v v1, ({p})",
            "add {p}, {p}, {r}",
            "vle8.v v2, ({p})",
            "add {p}, {p}, {r}",
            "vle8.v v3, ({p})",
            "add {p}, {p}, {r}",
            "vand.vi v0, v1, 15",
            "vsll.vi v14, v3, 4",
            "vand.vx v14, v14, {c30}",
            "vor.vv v0, v0, v14",
            "lb {t0}, 128*\\n+\\j({q})",
            "vwmaccsu.vx v4, {t0}, v0",
            "vand.vi v0, v2, 15",
            "vsll.vi v14, v3, 2",
            "vand.vx v14, v14, {c30}",
            "vor.vv v0, v0, v14",
            "lb {t0}, 128*\\n+32+\\j({q})",
            "vwmaccsu.vx v6, {t0}, v0",
            "vsrl.vi v0, v1, 4",
            "vand.vx v14, v3, {c30}",
            "vor.vv v0, v0, v14",
            "lb {t0}, 128*\\n+64+\\j({q})",
            "vwmaccsu.vx v24, {t0}, v0",
            "vsrl.vi v0, v2, 4",
            "vsrl.vi v14, v3, 2",
            "vand.vx v14, v14, {c30}",
            "vor.vv v0, v0, v14",
            "lb {t0}, 128*\\n+96+\\j({q})",
            "vwmaccsu.vx v26, {t0}, v0",
            ".if \\j % 4 == 3",
            "vsetvli zero, zero, e16, m2, ta, ma",
            "vwmacc.vv v8, v20, v4",
            "vwmacc.vv v8, v22, v6",
            "vwmacc.vv v8, v28, v24",
            "vwmacc.vv v8, v30, v26",
            "vmv.v.i v4, 0",
            "vmv.v.i v6, 0",
            "vmv.v.i v24, 0",
            "vmv.v.i v26, 0",
            "vsetvli zero, zero, e8, m1, ta, ma",
            ".endif",
            ".endr",
            ".endr",
            "vsetvli zero, zero, e32, m4, ta, ma",
            "vfcvt.f.x.v v8, v8",
            "vle32.v v12, ({x})",
            "flw {f0}, 0({d})",
            "vfmul.vf v12, v12, {f0}",
            "vfmul.vv v8, v12, v8",
            "vfadd.vv v16, v16, v8",
            "mv {x}, {p}",
            "add {q}, {q}, {stride}",
            "addi {d}, {d}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            "vsetvli zero, {m}, e32, m4, ta, ma",
            "vse32.v v16, ({out})";
            x = inout(reg) panel.as_ptr() => _,
            q = inout(reg) y.q => _,
            d = inout(reg) y.d => _,
            n = inout(reg) nb => _,
            stride = in(reg) y.stride,
            m = in(reg) n_out,
            out = in(reg) out,
            r = out(reg) _,
            r2 = out(reg) _,
            c30 = out(reg) _,
            p = out(reg) _,
            sp = out(reg) _,
            t0 = out(reg) _,
            f0 = out(freg) _,
        );
    }
}
