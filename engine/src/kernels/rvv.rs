//! RVV 1.0 kernels, hand-written with `asm!` because stable Rust has no vector intrinsics.
//! VLEN-agnostic (vsetvli decides how much each instruction covers); every vector register is
//! declared clobbered. All functions require a CPU with kernel-enabled V.

use crate::quant::{BlockQ4_0, BlockQ8_0, f16_to_f32};

/// `asm!` with `.option arch, +v` around the template and v0–v31 declared clobbered.
/// The caller's operand list must end with a comma.
macro_rules! asm_v {
    ($($template:literal),+ ; $($operands:tt)*) => {
        core::arch::asm!(
            ".option push",
            ".option arch, +v",
            $($template),+,
            ".option pop",
            $($operands)*
            out("v0") _, out("v1") _, out("v2") _, out("v3") _,
            out("v4") _, out("v5") _, out("v6") _, out("v7") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            out("v16") _, out("v17") _, out("v18") _, out("v19") _,
            out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(nostack),
        )
    };
}

/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let sum: f32;
    // SAFETY: reads n f32 from each slice; lanes beyond vl are untouched (tu) so the final
    // partial iteration keeps earlier partial sums; the reduction is unordered (vfredusum).
    unsafe {
        asm_v!(
            "vsetvli {t}, zero, e32, m8, ta, ma",
            "vmv.v.i v16, 0",
            "2:",
            "vsetvli {t}, {n}, e32, m8, tu, ma",
            "vle32.v v0, ({a})",
            "vle32.v v8, ({b})",
            "vfmacc.vv v16, v0, v8",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 2",
            "add {a}, {a}, {t}",
            "add {b}, {b}, {t}",
            "bnez {n}, 2b",
            "vsetvli {t}, zero, e32, m8, ta, ma",
            "vmv.s.x v24, zero",
            "vfredusum.vs v24, v16, v24",
            "vfmv.f.s {sum}, v24";
            n = inout(reg) n => _,
            a = inout(reg) a.as_ptr() => _,
            b = inout(reg) b.as_ptr() => _,
            t = out(reg) _,
            sum = out(freg) sum,
        );
    }
    sum
}

/// Blocks handled per batch: integer sums go to a stack buffer, then meet their scales.
const BATCH: usize = 32;

/// Integer dot products of `n` Q4_0/Q8_0 block pairs into `sums`.
///
/// # Safety
/// V enabled; `x`, `y` point to `n >= 1` blocks each; `sums` to `n` writable i32.
unsafe fn block_sums_q4_0_q8_0(x: *const BlockQ4_0, y: *const BlockQ8_0, sums: *mut i32, n: usize) {
    // SAFETY: per block: 16 packed bytes at x+2, 32 i8 at y+2, one i32 store; VLEN >= 128
    // holds 16 e8 in m1 and 16 e16 in m2. v9 is a 32-bit zero for the widening reduction.
    unsafe {
        asm_v!(
            "vsetivli zero, 1, e32, m1, ta, ma",
            "vmv.s.x v9, zero",
            "2:",
            "vsetivli zero, 16, e8, m1, ta, ma",
            "addi {t}, {x}, 2",
            "vle8.v v0, ({t})",
            "addi {t}, {y}, 2",
            "vle8.v v1, ({t})",
            "addi {t}, {t}, 16",
            "vle8.v v2, ({t})",
            "vand.vi v3, v0, 15",
            "vsrl.vi v4, v0, 4",
            "vadd.vi v3, v3, -8",
            "vadd.vi v4, v4, -8",
            "vwmul.vv v6, v3, v1",
            "vwmacc.vv v6, v4, v2",
            "vsetivli zero, 16, e16, m2, ta, ma",
            "vwredsum.vs v8, v6, v9",
            "vsetivli zero, 1, e32, m1, ta, ma",
            "vse32.v v8, ({s})",
            "addi {x}, {x}, 18",
            "addi {y}, {y}, 34",
            "addi {s}, {s}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b";
            x = inout(reg) x => _,
            y = inout(reg) y => _,
            s = inout(reg) sums => _,
            n = inout(reg) n => _,
            t = out(reg) _,
        );
    }
}

/// # Safety
/// V enabled; `x`, `y` point to `n >= 1` blocks each; `sums` to `n` writable i32.
unsafe fn block_sums_q8_0_q8_0(x: *const BlockQ8_0, y: *const BlockQ8_0, sums: *mut i32, n: usize) {
    // SAFETY: per block: 32 i8 at x+2 and y+2, one i32 store; VLEN >= 128 holds 32 e8 in m2
    // and 32 e16 in m4.
    unsafe {
        asm_v!(
            "vsetivli zero, 1, e32, m1, ta, ma",
            "vmv.s.x v12, zero",
            "2:",
            "li {t}, 32",
            "vsetvli zero, {t}, e8, m2, ta, ma",
            "addi {t}, {x}, 2",
            "vle8.v v0, ({t})",
            "addi {t}, {y}, 2",
            "vle8.v v2, ({t})",
            "vwmul.vv v4, v0, v2",
            "li {t}, 32",
            "vsetvli zero, {t}, e16, m4, ta, ma",
            "vwredsum.vs v8, v4, v12",
            "vsetivli zero, 1, e32, m1, ta, ma",
            "vse32.v v8, ({s})",
            "addi {x}, {x}, 34",
            "addi {y}, {y}, 34",
            "addi {s}, {s}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b";
            x = inout(reg) x => _,
            y = inout(reg) y => _,
            s = inout(reg) sums => _,
            n = inout(reg) n => _,
            t = out(reg) _,
        );
    }
}

/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    let mut sum = 0.0f32;
    let mut sums = [0i32; BATCH];
    for (xc, yc) in x.chunks(BATCH).zip(y.chunks(BATCH)) {
        let n = xc.len().min(yc.len());
        // SAFETY: n >= 1 blocks in each chunk and n <= BATCH sums; V by this fn's contract.
        unsafe { block_sums_q4_0_q8_0(xc.as_ptr(), yc.as_ptr(), sums.as_mut_ptr(), n) };
        for i in 0..n {
            sum += sums[i] as f32 * f16_to_f32(xc[i].d) * f16_to_f32(yc[i].d);
        }
    }
    sum
}

/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let mut sum = 0.0f32;
    let mut sums = [0i32; BATCH];
    for (xc, yc) in x.chunks(BATCH).zip(y.chunks(BATCH)) {
        let n = xc.len().min(yc.len());
        // SAFETY: n >= 1 blocks in each chunk and n <= BATCH sums; V by this fn's contract.
        unsafe { block_sums_q8_0_q8_0(xc.as_ptr(), yc.as_ptr(), sums.as_mut_ptr(), n) };
        for i in 0..n {
            sum += sums[i] as f32 * (f16_to_f32(xc[i].d) * f16_to_f32(yc[i].d));
        }
    }
    sum
}
