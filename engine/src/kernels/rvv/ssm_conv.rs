//! RVV `ssm_conv`, LFM2's short convolution in the time-major layout: unit-stride loads only,
//! vectorized across channels.

/// [`super::scalar::ssm_conv`] with `t` output rows and `k >= 1` taps: for each output row,
/// channel strips of VLEN/4 floats (m8) take one unit-stride load of each input row and tap,
/// a multiply and k - 1 fused multiply-adds in the reference's order, so results are equal.
/// No strided access anywhere: rows are time steps, lanes are channels.
///
/// # Safety
/// V must be enabled; `x` holds `(k - 1 + t) * e` floats, `w` `k * e`, `out` `t * e`, with
/// `e, t, k >= 1`.
#[inline(never)]
pub unsafe fn ssm_conv(x: *const f32, w: *const f32, e: usize, k: usize, t: usize, out: *mut f32) {
    // SAFETY: every load reads x row i + j (< k - 1 + t rows) or w row j (< k rows) at channels
    // below e; every store writes out row i < t at channels below e (caller's contract).
    unsafe {
        asm_v!(
            "1:",
            "mv {rem}, {e}",
            "mv {xc}, {x}",
            "mv {wc}, {w}",
            "mv {oc}, {out}",
            "2:",
            "vsetvli {vl}, {rem}, e32, m8, ta, ma",
            "mv {xp}, {xc}",
            "mv {wp}, {wc}",
            "vle32.v v16, ({xp})",
            "vle32.v v24, ({wp})",
            "vfmul.vv v8, v24, v16",
            "addi {j}, {k}, -1",
            "beqz {j}, 4f",
            "3:",
            "add {xp}, {xp}, {row}",
            "add {wp}, {wp}, {row}",
            "vle32.v v16, ({xp})",
            "vle32.v v24, ({wp})",
            "vfmacc.vv v8, v24, v16",
            "addi {j}, {j}, -1",
            "bnez {j}, 3b",
            "4:",
            "vse32.v v8, ({oc})",
            "sub {rem}, {rem}, {vl}",
            "slli {vl}, {vl}, 2",
            "add {xc}, {xc}, {vl}",
            "add {wc}, {wc}, {vl}",
            "add {oc}, {oc}, {vl}",
            "bnez {rem}, 2b",
            "add {x}, {x}, {row}",
            "add {out}, {out}, {row}",
            "addi {t}, {t}, -1",
            "bnez {t}, 1b";
            x = inout(reg) x => _,
            out = inout(reg) out => _,
            t = inout(reg) t => _,
            w = in(reg) w,
            e = in(reg) e,
            k = in(reg) k,
            row = in(reg) e * 4,
            rem = out(reg) _,
            xc = out(reg) _,
            wc = out(reg) _,
            oc = out(reg) _,
            vl = out(reg) _,
            xp = out(reg) _,
            wp = out(reg) _,
            j = out(reg) _,
        );
    }
}
