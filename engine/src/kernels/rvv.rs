//! RVV 1.0 kernels, hand-written with `asm!` because stable Rust has no vector intrinsics.
//! VLEN-agnostic (vsetvli decides how much each instruction covers); every vector register is
//! declared clobbered. All functions require a CPU with kernel-enabled V.

use crate::quant::{BlockQ4_0, BlockQ8_0, QK, f16_to_f32, f32_to_f16};
use crate::tensor::BlockQ8K;

/// `asm!` with `.option arch, +v` around the template and v0–v31 declared clobbered.
/// The caller's operand list must end with a comma.
macro_rules! asm_v {
    ($($template:expr),+ ; $($operands:tt)*) => {
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

/// asm lines turning zero-extended f16 bits (e32 lanes of `$h`) into f32 in place, exactly,
/// without zvfh: `(bits & 0x7fff) << 13` times 2^112 is right for normal and subnormal values,
/// inf/NaN get their exponent forced (masked `vor`: needs mask-undisturbed), then the sign.
/// Uses `$t` and v0; needs operands abs, inf, scale, exp, sign.
#[cfg(not(hartlm_feature = "zvfh"))]
macro_rules! f16_bits_to_f32 {
    ($h:literal, $t:literal) => {
        concat!(
            "vand.vx ",
            $t,
            ", ",
            $h,
            ", {abs}\n",
            "vmsgeu.vx v0, ",
            $t,
            ", {inf}\n",
            "vsll.vi ",
            $t,
            ", ",
            $t,
            ", 13\n",
            "vfmul.vf ",
            $t,
            ", ",
            $t,
            ", {scale}\n",
            "vor.vx ",
            $t,
            ", ",
            $t,
            ", {exp}, v0.t\n",
            "vand.vx ",
            $h,
            ", ",
            $h,
            ", {sign}\n",
            "vsll.vi ",
            $h,
            ", ",
            $h,
            ", 16\n",
            "vor.vv ",
            $h,
            ", ",
            $h,
            ", ",
            $t,
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

/// Integer sums of `n` Q6_K blocks (raw bytes at `x`) with Q8_K blocks (quants at `q8`, one
/// block every `q8_stride` bytes) into `sums`.
///
/// Per half block (128 values): 32 low-nibble bytes at ql and ql+32 and 32 bytes of high bit
/// pairs give four strips of 32 values, each `(nibble | bits << 4) - 32`; a strip's first 16
/// lanes use one scale and its last 16 the next (merged under v0 = lanes >= 16). Products
/// |q6 q8| <= 32 * 128 fit e16; scaled and summed per lane they stay far inside e32.
///
/// # Safety
/// V enabled; `x` points to `n >= 1` Q6_K blocks, `q8` to 256 i8 in each of `n` blocks
/// `q8_stride` apart; `sums` to `n` writable i32.
unsafe fn block_sums_q6_k_q8_k(x: *const u8, q8: *const i8, q8_stride: usize, sums: *mut i32, n: usize) {
    // SAFETY: per block: 210 bytes read at x, 256 at q8, one i32 store. vl = 32 fits every
    // register group used at VLEN >= 128 (e8 m2, e16 m4, e32 m8).
    unsafe {
        asm_v!(
            "li {c32}, 32",
            "li {c30}, 0x30",
            "vsetvli zero, {c32}, e8, m2, ta, ma",
            "vid.v v2",
            "vmsgeu.vi v0, v2, 16",
            "2:",
            "vsetvli zero, {c32}, e32, m8, ta, ma",
            "vmv.v.i v8, 0",
            ".irp h, 0,1",
            "vsetvli zero, {c32}, e8, m2, ta, ma",
            "addi {t}, {x}, 64*\\h",
            "vle8.v v2, ({t})",
            "addi {t}, {t}, 32",
            "vle8.v v4, ({t})",
            "addi {t}, {x}, 128+32*\\h",
            "vle8.v v6, ({t})",
            // Strip k: low nibbles of ql[0..32] / ql[32..64], then high nibbles; qh bits 2k, 2k+1.
            ".irp k, 0,1,2,3",
            ".if \\k == 0",
            "vand.vi v16, v2, 15",
            "vsll.vi v18, v6, 4",
            ".elseif \\k == 1",
            "vand.vi v16, v4, 15",
            "vsll.vi v18, v6, 2",
            ".elseif \\k == 2",
            "vsrl.vi v16, v2, 4",
            "vmv.v.v v18, v6",
            ".else",
            "vsrl.vi v16, v4, 4",
            "vsrl.vi v18, v6, 2",
            ".endif",
            "vand.vx v18, v18, {c30}",
            "vor.vv v16, v16, v18",
            "vsub.vx v16, v16, {c32}",
            "addi {t}, {q}, 128*\\h+32*\\k",
            "vle8.v v20, ({t})",
            "vwmul.vv v24, v16, v20",
            "lb {s0}, 192+8*\\h+2*\\k({x})",
            "lb {s1}, 193+8*\\h+2*\\k({x})",
            "vsetvli zero, {c32}, e16, m4, ta, ma",
            "vmv.v.x v28, {s0}",
            "vmerge.vxm v28, v28, {s1}, v0",
            "vwmacc.vv v8, v28, v24",
            "vsetvli zero, {c32}, e8, m2, ta, ma",
            ".endr",
            ".endr",
            "vsetvli zero, {c32}, e32, m8, ta, ma",
            "vmv.s.x v16, zero",
            "vredsum.vs v16, v8, v16",
            "vmv.x.s {t}, v16",
            "sw {t}, 0({out})",
            "addi {x}, {x}, 210",
            "add {q}, {q}, {stride}",
            "addi {out}, {out}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b";
            x = inout(reg) x => _,
            q = inout(reg) q8 => _,
            out = inout(reg) sums => _,
            n = inout(reg) n => _,
            stride = in(reg) q8_stride,
            c32 = out(reg) _,
            c30 = out(reg) _,
            t = out(reg) _,
            s0 = out(reg) _,
            s1 = out(reg) _,
        );
    }
}

/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn dot_q6_k_q8_k(row: &[u8], y: &[BlockQ8K]) -> f32 {
    use super::scalar::Q6K_BYTES;
    let n = (row.len() / Q6K_BYTES).min(y.len());
    let mut sum = 0.0f32;
    let mut sums = [0i32; BATCH];
    for start in (0..n).step_by(BATCH) {
        let m = BATCH.min(n - start);
        let x = &row[start * Q6K_BYTES..(start + m) * Q6K_BYTES];
        let ys = &y[start..start + m];
        // SAFETY: m >= 1 whole blocks in x and ys and m <= BATCH sums; V by this fn's contract.
        unsafe {
            block_sums_q6_k_q8_k(x.as_ptr(), ys[0].qs.as_ptr(), size_of::<BlockQ8K>(), sums.as_mut_ptr(), m)
        };
        for (i, (b, by)) in x.chunks_exact(Q6K_BYTES).zip(ys).enumerate() {
            sum += f16_to_f32(u16::from_le_bytes([b[208], b[209]])) * by.d * sums[i] as f32;
        }
    }
    sum
}

/// Integer sums `sum_s scale_s * sum(q * q8)` of `n` Q4_K or Q5_K blocks (raw bytes at `x`,
/// `bb` bytes each, nibbles `qs_at` bytes in; Q5_K high bits at 16 when `q5` is non-zero) with
/// Q8_K blocks (quants at `q8`, `q8_stride` apart) into `sums`; `scales` holds each block's
/// eight unpacked 6-bit scales.
///
/// Per 64 values: 32 nibble bytes give sub-block 2c (low nibbles) and 2c+1 (high), each
/// `vwmulsu`'d with its 32 activations into e16 (|q q8| <= 31 * 128) and `vwmacc`'d with its
/// scale into e32 (per lane at most 8 * 63 * 3968: no overflow). One reduction per block.
///
/// # Safety
/// V enabled; `x` points to `n >= 1` blocks of `bb` bytes, `q8` to 256 i8 in each of `n`
/// blocks `q8_stride` apart, `scales` to `8 n` bytes, `sums` to `n` writable i32.
#[allow(clippy::too_many_arguments)]
unsafe fn block_sums_k4_q8_k(
    x: *const u8,
    bb: usize,
    qs_at: usize,
    q5: usize,
    q8: *const i8,
    q8_stride: usize,
    scales: *const u8,
    sums: *mut i32,
    n: usize,
) {
    // SAFETY: per block: bb bytes read at x (qh 16..48 and the 128 nibble bytes from qs_at),
    // 256 at q8, 8 at scales, one i32 store. vl = 32 fits e8 m2, e16 m4 and e32 m8 at VLEN 128.
    unsafe {
        asm_v!(
            "li {c32}, 32",
            "2:",
            "vsetvli zero, {c32}, e32, m8, ta, ma",
            "vmv.v.i v8, 0",
            "vsetvli zero, {c32}, e8, m2, ta, ma",
            "beqz {q5}, 3f",
            "addi {t}, {x}, 16",
            "vle8.v v6, ({t})",
            "3:",
            ".irp c, 0,1,2,3",
            "vsetvli zero, {c32}, e8, m2, ta, ma",
            "add {t}, {x}, {qs_at}",
            "addi {t}, {t}, 32*\\c",
            "vle8.v v2, ({t})",
            "vand.vi v16, v2, 15",
            "vsrl.vi v18, v2, 4",
            "beqz {q5}, 4f",
            // Q5_K: bit 2c of qh[l] is bit 4 of sub-block 2c's value l, bit 2c+1 of 2c+1's.
            "vsrl.vi v4, v6, 2*\\c",
            "vand.vi v4, v4, 1",
            "vsll.vi v4, v4, 4",
            "vor.vv v16, v16, v4",
            "vsrl.vi v4, v6, 2*\\c+1",
            "vand.vi v4, v4, 1",
            "vsll.vi v4, v4, 4",
            "vor.vv v18, v18, v4",
            "4:",
            "addi {t}, {q}, 64*\\c",
            "vle8.v v20, ({t})",
            "addi {t}, {t}, 32",
            "vle8.v v22, ({t})",
            "vwmulsu.vv v24, v20, v16",
            "vwmulsu.vv v28, v22, v18",
            "lbu {s0}, 2*\\c({sc})",
            "lbu {s1}, 2*\\c+1({sc})",
            "vsetvli zero, {c32}, e16, m4, ta, ma",
            "vwmacc.vx v8, {s0}, v24",
            "vwmacc.vx v8, {s1}, v28",
            ".endr",
            "vsetvli zero, {c32}, e32, m8, ta, ma",
            "vmv.s.x v16, zero",
            "vredsum.vs v16, v8, v16",
            "vmv.x.s {t}, v16",
            "sw {t}, 0({out})",
            "add {x}, {x}, {bb}",
            "add {q}, {q}, {stride}",
            "addi {sc}, {sc}, 8",
            "addi {out}, {out}, 4",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b";
            x = inout(reg) x => _,
            q = inout(reg) q8 => _,
            sc = inout(reg) scales => _,
            out = inout(reg) sums => _,
            n = inout(reg) n => _,
            bb = in(reg) bb,
            qs_at = in(reg) qs_at,
            q5 = in(reg) q5,
            stride = in(reg) q8_stride,
            c32 = out(reg) _,
            t = out(reg) _,
            s0 = out(reg) _,
            s1 = out(reg) _,
        );
    }
}

/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn dot_k4_q8_k(q5: bool, row: &[u8], y: &[BlockQ8K]) -> f32 {
    use super::scalar::{k4_block_bytes, k4_combine, scale_min_k4};
    let bb = k4_block_bytes(q5);
    let n = (row.len() / bb).min(y.len());
    let mut sum = 0.0f32;
    let (mut sums, mut scales) = ([0i32; BATCH], [0u8; 8 * BATCH]);
    for start in (0..n).step_by(BATCH) {
        let m = BATCH.min(n - start);
        let x = &row[start * bb..(start + m) * bb];
        let ys = &y[start..start + m];
        // Scales for the kernel and the mins term (as `k4_mins`) from one unpacking.
        let mut mins = [0i32; BATCH];
        for ((b, by), (sc, mn)) in x.chunks_exact(bb).zip(ys).zip(scales.chunks_exact_mut(8).zip(&mut mins)) {
            for (s, v) in sc.iter_mut().enumerate() {
                let (scale, min) = scale_min_k4(s, &b[4..16]);
                *v = scale;
                *mn += min as i32 * (by.bsums[2 * s] as i32 + by.bsums[2 * s + 1] as i32);
            }
        }
        // SAFETY: m >= 1 whole blocks in x and ys, 8 m scales, m <= BATCH sums; V by contract.
        unsafe {
            block_sums_k4_q8_k(
                x.as_ptr(),
                bb,
                bb - 128,
                q5 as usize,
                ys[0].qs.as_ptr(),
                size_of::<BlockQ8K>(),
                scales.as_ptr(),
                sums.as_mut_ptr(),
                m,
            )
        };
        for (i, (b, by)) in x.chunks_exact(bb).zip(ys).enumerate() {
            sum += k4_combine(b, by, sums[i], mins[i]);
        }
    }
    sum
}

/// Bytes in one vector register (VLEN / 8), read from the `vlenb` CSR of the running core.
pub fn vlenb() -> usize {
    let v: usize;
    // SAFETY: reading vlenb has no side effects; this module is only built for V tiers.
    unsafe {
        core::arch::asm!(".option push", ".option arch, +v", "csrr {v}, vlenb", ".option pop", v = out(reg) v, options(nomem, nostack))
    };
    v
}

/// Activation pointers for one panel product: quants of block 0 (`q`, blocks `stride` bytes
/// apart) and the per-block f32 scale, Q4_0 offset correction and Q8_1 sum arrays.
pub struct PanelInput {
    pub q: *const i8,
    pub stride: usize,
    pub d: *const f32,
    pub corr: *const i32,
    pub s: *const f32,
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

/// Q8_0 activation quantization (see `quant::quantize_row_q8_0`), bit-identical to it: the
/// block maximum by `vfredmax`, the scaled values rounded half-to-even by `vfcvt` (frm = RNE).
///
/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    for (chunk, block) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax: f32;
        // SAFETY: 32 f32 read from chunk; VLEN >= 128 holds 32 e32 in m8.
        unsafe {
            asm_v!(
                "li {t}, 32",
                "vsetvli zero, {t}, e32, m8, ta, ma",
                "vle32.v v0, ({x})",
                "vfabs.v v8, v0",
                "vmv.s.x v16, zero",
                "vfredmax.vs v16, v8, v16",
                "vfmv.f.s {amax}, v16";
                x = in(reg) chunk.as_ptr(),
                t = out(reg) _,
                amax = out(freg) amax,
            );
        }
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        block.d = f32_to_f16(amax / 127.0);
        // SAFETY: 32 f32 read, 32 i8 written to block.qs; |x * id| <= 127 so the narrowing
        // shifts keep the value.
        unsafe {
            asm_v!(
                "li {t}, 32",
                "vsetvli zero, {t}, e32, m8, ta, ma",
                "vle32.v v0, ({x})",
                "vfmul.vf v8, v0, {id}",
                "vfcvt.x.f.v v8, v8",
                "vsetvli zero, {t}, e16, m4, ta, ma",
                "vnsrl.wi v16, v8, 0",
                "vsetvli zero, {t}, e8, m2, ta, ma",
                "vnsrl.wi v20, v16, 0",
                "vse8.v v20, ({q})";
                x = in(reg) chunk.as_ptr(),
                q = in(reg) block.qs.as_mut_ptr(),
                id = in(freg) id,
                t = out(reg) _,
            );
        }
    }
}

/// asm lines computing `v8 = exp(v4)` at vtype e32/m4 (ggml's `ggml_v_expf` polynomial,
/// within 2 ulp of expf) for arguments already clamped to [-87, 88], where building 2^n from
/// exponent bits is exact. Uses v12–v28; needs operands one, r, log2e, ln2hi, ln2lo, c0–c4
/// ([`exp_operands!`]).
macro_rules! exp_poly {
    () => {
        concat!(
            // z = r + x log2(e); n = z - r; b = x - n ln2 (two parts)
            "vfmv.v.f v8, {r}\n",
            "vfmacc.vf v8, {log2e}, v4\n",
            "vfsub.vf v12, v8, {r}\n",
            "vmv.v.v v16, v4\n",
            "vfnmsac.vf v16, {ln2hi}, v12\n",
            "vfnmsac.vf v16, {ln2lo}, v12\n",
            // k = 2^n from the integer bits of z
            "vsll.vi v8, v8, 23\n",
            "vadd.vx v8, v8, {one}\n",
            "vfmul.vv v20, v16, v16\n",
            "vfmv.v.f v24, {c1}\n",
            "vfmacc.vf v24, {c0}, v16\n",
            "vfmv.v.f v28, {c3}\n",
            "vfmacc.vf v28, {c2}, v16\n",
            "vfmacc.vv v28, v24, v20\n",
            "vfmul.vf v24, v16, {c4}\n",
            "vfmacc.vv v24, v28, v20\n",
            "vfmacc.vv v8, v8, v24",
        )
    };
}

/// The constant operands of [`exp_poly!`], followed by the caller's own.
macro_rules! asm_v_exp {
    ($($template:expr),+ ; $($operands:tt)*) => {
        asm_v!(
            $($template),+;
            $($operands)*
            one = in(reg) 0x3f80_0000u32 as usize,
            r = in(freg) f32::from_bits(0x4b40_0000),
            log2e = in(freg) f32::from_bits(0x3fb8_aa3b),
            ln2hi = in(freg) f32::from_bits(0x3f31_7200),
            ln2lo = in(freg) f32::from_bits(0x35bf_be8e),
            c0 = in(freg) f32::from_bits(0x3c07_2010),
            c1 = in(freg) f32::from_bits(0x3d2b_9f17),
            c2 = in(freg) f32::from_bits(0x3e2a_af33),
            c3 = in(freg) f32::from_bits(0x3eff_fedb),
            c4 = in(freg) f32::from_bits(0x3f7f_fff6),
        )
    };
}

/// Q8_K activation quantization (see `tensor::quantize_row_q8_k`), bit-identical to it: the
/// signed value of largest magnitude (the first one, as the scalar loop keeps) by `vfredmax`
/// and `vfirst`, values rounded half-to-even by `vfncvt` (frm = RNE), then the 16-value sums
/// by widening reductions.
///
/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn quantize_row_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    for (chunk, b) in x.chunks_exact(crate::tensor::QK_K).zip(out.iter_mut()) {
        let (amax, at): (f32, usize);
        // SAFETY: 256 f32 read from chunk, vl at a time, twice; tu keeps the running maxima
        // past a short final vl. NaN is never the maximum (vfmax ignores it, as `>` does).
        unsafe {
            asm_v!(
                "vsetvli {t}, zero, e32, m8, ta, ma",
                "vmv.v.i v16, 0",
                "mv {n}, {len}",
                "mv {p}, {x}",
                "2:",
                "vsetvli {t}, {n}, e32, m8, tu, ma",
                "vle32.v v0, ({p})",
                "vfabs.v v0, v0",
                "vfmax.vv v16, v16, v0",
                "sub {n}, {n}, {t}",
                "slli {t}, {t}, 2",
                "add {p}, {p}, {t}",
                "bnez {n}, 2b",
                "vsetvli {t}, zero, e32, m8, ta, ma",
                "vmv.s.x v24, zero",
                "vfredmax.vs v24, v16, v24",
                "vfmv.f.s {amax}, v24",
                // The first index whose magnitude is amax.
                "mv {n}, {len}",
                "mv {at}, zero",
                "3:",
                "vsetvli {t}, {n}, e32, m8, ta, ma",
                "vle32.v v8, ({x})",
                "vfabs.v v8, v8",
                "vmfeq.vf v0, v8, {amax}",
                "vfirst.m {p}, v0",
                "bgez {p}, 4f",
                "add {at}, {at}, {t}",
                "sub {n}, {n}, {t}",
                "slli {t}, {t}, 2",
                "add {x}, {x}, {t}",
                "bnez {n}, 3b",
                "mv {p}, zero",
                "4:",
                "add {at}, {at}, {p}";
                x = inout(reg) chunk.as_ptr() => _,
                len = in(reg) chunk.len(),
                n = out(reg) _,
                p = out(reg) _,
                t = out(reg) _,
                at = out(reg) at,
                amax = out(freg) amax,
            );
        }
        if amax == 0.0 || at >= chunk.len() {
            *b = BlockQ8K { d: 0.0, qs: [0; crate::tensor::QK_K], bsums: [0; crate::tensor::QK_K / 16] };
            continue;
        }
        let iscale = -127.0 / chunk[at];
        // SAFETY: 256 f32 read, 256 i8 and 16 i16 written to b; |x * iscale| <= 127 (rounded
        // up by at most an ulp, then clamped to 127 as the scalar code does), so narrowing
        // keeps the value; 16 e8 fit m1 and the e16 sums m1 at VLEN >= 128.
        unsafe {
            asm_v!(
                "mv {n}, {len}",
                "mv {p}, {q}",
                "2:",
                "vsetvli {t}, {n}, e32, m8, ta, ma",
                "vle32.v v0, ({x})",
                "vfmul.vf v0, v0, {iscale}",
                "vsetvli zero, {t}, e16, m4, ta, ma",
                "vfncvt.x.f.w v8, v0",
                "vmin.vx v8, v8, {max}",
                "vsetvli zero, {t}, e8, m2, ta, ma",
                "vnsrl.wi v12, v8, 0",
                "vse8.v v12, ({p})",
                "sub {n}, {n}, {t}",
                "add {p}, {p}, {t}",
                "slli {t}, {t}, 2",
                "add {x}, {x}, {t}",
                "bnez {n}, 2b",
                "vsetivli zero, 1, e16, m1, ta, ma",
                "vmv.s.x v2, zero",
                ".irp g, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
                "vsetivli zero, 16, e8, m1, ta, ma",
                "vle8.v v1, ({q})",
                "addi {q}, {q}, 16",
                "vwredsum.vs v3, v1, v2",
                "vsetivli zero, 1, e16, m1, ta, ma",
                "vse16.v v3, ({bs})",
                "addi {bs}, {bs}, 2",
                ".endr";
                x = inout(reg) chunk.as_ptr() => _,
                q = inout(reg) b.qs.as_mut_ptr() => _,
                bs = inout(reg) b.bsums.as_mut_ptr() => _,
                len = in(reg) chunk.len(),
                max = in(reg) 127,
                iscale = in(freg) iscale,
                n = out(reg) _,
                p = out(reg) _,
                t = out(reg) _,
            );
        }
        b.d = 1.0 / iscale;
    }
}

/// `g[i] = silu(g[i]) * u[i]` with a vector exp (ggml's `ggml_v_expf` polynomial, within 2 ulp
/// of expf) on arguments clamped to [-87, 88], where silu is already 0 or x to f32 precision.
///
/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn silu_mul(g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    // SAFETY: reads and writes n f32 of g and reads n of u, vl elements at a time; the clamp
    // keeps 2^n inside the normal range, so building it from exponent bits is exact.
    unsafe {
        asm_v_exp!(
            "2:",
            "vsetvli {t}, {n}, e32, m4, ta, ma",
            "vle32.v v0, ({g})",
            "vfneg.v v4, v0",
            "vfmax.vf v4, v4, {lo}",
            "vfmin.vf v4, v4, {hi}",
            exp_poly!(),
            // silu(x) * u = x / (1 + e^-x) * u
            "vfadd.vf v8, v8, {onef}",
            "vfdiv.vv v0, v0, v8",
            "vle32.v v4, ({u})",
            "vfmul.vv v0, v0, v4",
            "vse32.v v0, ({g})",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 2",
            "add {g}, {g}, {t}",
            "add {u}, {u}, {t}",
            "bnez {n}, 2b";
            n = inout(reg) n => _,
            g = inout(reg) g.as_mut_ptr() => _,
            u = inout(reg) u.as_ptr() => _,
            t = out(reg) _,
            lo = in(freg) -87.0f32,
            hi = in(freg) 88.0f32,
            onef = in(freg) 1.0f32,
        );
    }
}

/// `sum(x[i])` (`square` false) or `sum(x[i] * x[i])` (true, each square rounded to f32) in
/// f64, as ggml's softmax and RMSNorm sum; lanes accumulate separately (`vfwadd.wv`), then one
/// unordered reduction.
///
/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
unsafe fn sum_f64_impl<const SQUARE: bool>(x: &[f32]) -> f64 {
    let n = x.len();
    if n == 0 {
        return 0.0;
    }
    let sum: f64;
    // SAFETY: n f32 read, vl at a time; tu keeps the accumulator lanes past a short final vl.
    unsafe {
        asm_v!(
            "vsetvli {t}, zero, e64, m8, ta, ma",
            "vmv.v.i v16, 0",
            "2:",
            "vsetvli {t}, {n}, e32, m4, tu, ma",
            "vle32.v v0, ({x})",
            "beqz {sq}, 3f",
            "vfmul.vv v0, v0, v0",
            "3:",
            "vfwadd.wv v16, v16, v0",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 2",
            "add {x}, {x}, {t}",
            "bnez {n}, 2b",
            "vsetvli {t}, zero, e64, m8, ta, ma",
            "vmv.s.x v8, zero",
            "vfredusum.vs v8, v16, v8",
            "vfmv.f.s {sum}, v8";
            n = inout(reg) n => _,
            x = inout(reg) x.as_ptr() => _,
            sq = in(reg) SQUARE as usize,
            t = out(reg) _,
            sum = out(freg) sum,
        );
    }
    sum
}

/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn sum_squares_f64(x: &[f32]) -> f64 {
    // SAFETY: as this fn's contract.
    unsafe { sum_f64_impl::<true>(x) }
}

/// `out[i] = x[i] * s * w[i]` for `n` elements, rounded as the scalar reference; `out` may be
/// `x`.
///
/// # Safety
/// V enabled; `x`, `w` readable and `out` writable for `n` f32.
pub unsafe fn scale_mul(x: *const f32, s: f32, w: *const f32, out: *mut f32, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: n f32 read from x and w and written to out, vl at a time; each element is read
    // before its own store, so out == x is fine.
    unsafe {
        asm_v!(
            "2:",
            "vsetvli {t}, {n}, e32, m8, ta, ma",
            "vle32.v v0, ({x})",
            "vle32.v v8, ({w})",
            "vfmul.vf v0, v0, {s}",
            "vfmul.vv v0, v0, v8",
            "vse32.v v0, ({o})",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 2",
            "add {x}, {x}, {t}",
            "add {w}, {w}, {t}",
            "add {o}, {o}, {t}",
            "bnez {n}, 2b";
            n = inout(reg) n => _,
            x = inout(reg) x => _,
            w = inout(reg) w => _,
            o = inout(reg) out => _,
            s = in(freg) s,
            t = out(reg) _,
        );
    }
}

/// Softmax in place: `vfredmax`, then [`exp_poly!`] of `x - max` (clamped below at -87, where
/// exp is below 2^-125 of the largest term), the f64 sum, and one scaling pass.
///
/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn softmax(x: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let max: f32;
    // SAFETY: n f32 read, vl at a time; tu keeps the running maxima past a short final vl.
    unsafe {
        asm_v!(
            "vsetvli {t}, zero, e32, m8, ta, ma",
            "vfmv.v.f v8, {ninf}",
            "2:",
            "vsetvli {t}, {n}, e32, m8, tu, ma",
            "vle32.v v0, ({x})",
            "vfmax.vv v8, v8, v0",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 2",
            "add {x}, {x}, {t}",
            "bnez {n}, 2b",
            "vsetvli {t}, zero, e32, m8, ta, ma",
            "vfmv.s.f v16, {ninf}",
            "vfredmax.vs v16, v8, v16",
            "vfmv.f.s {max}, v16";
            n = inout(reg) n => _,
            x = inout(reg) x.as_ptr() => _,
            ninf = in(freg) f32::NEG_INFINITY,
            t = out(reg) _,
            max = out(freg) max,
        );
    }
    // SAFETY: n f32 rewritten in place, vl at a time.
    unsafe {
        asm_v_exp!(
            "2:",
            "vsetvli {t}, {n}, e32, m4, ta, ma",
            "vle32.v v0, ({x})",
            "vfsub.vf v4, v0, {max}",
            "vfmax.vf v4, v4, {lo}",
            exp_poly!(),
            "vse32.v v8, ({x})",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 2",
            "add {x}, {x}, {t}",
            "bnez {n}, 2b";
            n = inout(reg) n => _,
            x = inout(reg) x.as_mut_ptr() => _,
            max = in(freg) max,
            lo = in(freg) -87.0f32,
            t = out(reg) _,
        );
    }
    // SAFETY: V by this fn's contract.
    let inv = (1.0 / unsafe { sum_f64_impl::<false>(x) }) as f32;
    // SAFETY: n f32 rewritten in place (w = nothing: scaled by inv alone).
    unsafe {
        asm_v!(
            "2:",
            "vsetvli {t}, {n}, e32, m8, ta, ma",
            "vle32.v v0, ({x})",
            "vfmul.vf v0, v0, {inv}",
            "vse32.v v0, ({x})",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 2",
            "add {x}, {x}, {t}",
            "bnez {n}, 2b";
            n = inout(reg) n => _,
            x = inout(reg) x.as_mut_ptr() => _,
            inv = in(freg) inv,
            t = out(reg) _,
        );
    }
}

/// Rotates `half >= 1` pairs of one head in place (see `scalar::rope`): unit-stride halves in
/// NeoX order, `vlseg2e32` pairs otherwise. Products and sums round as the scalar reference.
///
/// # Safety
/// V enabled; `head` holds `2 half` writable f32, `cos` and `sin` `half` readable.
pub unsafe fn rope_head(head: *mut f32, neox: bool, cos: *const f32, sin: *const f32, half: usize) {
    if neox {
        // SAFETY: x0 at head[..half], x1 at head[half..2 half]; vl at a time.
        unsafe {
            asm_v!(
                "slli {b}, {n}, 2",
                "add {b}, {b}, {a}",
                "2:",
                "vsetvli {t}, {n}, e32, m4, ta, ma",
                "vle32.v v0, ({a})",
                "vle32.v v4, ({b})",
                "vle32.v v8, ({c})",
                "vle32.v v12, ({s})",
                "vfmul.vv v16, v0, v8",
                "vfmul.vv v24, v4, v12",
                "vfsub.vv v16, v16, v24",
                "vfmul.vv v20, v0, v12",
                "vfmul.vv v28, v4, v8",
                "vfadd.vv v20, v20, v28",
                "vse32.v v16, ({a})",
                "vse32.v v20, ({b})",
                "sub {n}, {n}, {t}",
                "slli {t}, {t}, 2",
                "add {a}, {a}, {t}",
                "add {b}, {b}, {t}",
                "add {c}, {c}, {t}",
                "add {s}, {s}, {t}",
                "bnez {n}, 2b";
                n = inout(reg) half => _,
                a = inout(reg) head => _,
                c = inout(reg) cos => _,
                s = inout(reg) sin => _,
                b = out(reg) _,
                t = out(reg) _,
            );
        }
    } else {
        // SAFETY: pairs (x0, x1) interleaved in head[..2 half]; vl pairs at a time.
        unsafe {
            asm_v!(
                "2:",
                "vsetvli {t}, {n}, e32, m4, ta, ma",
                "vlseg2e32.v v0, ({a})",
                "vle32.v v8, ({c})",
                "vle32.v v12, ({s})",
                "vfmul.vv v16, v0, v8",
                "vfmul.vv v24, v4, v12",
                "vfsub.vv v16, v16, v24",
                "vfmul.vv v20, v0, v12",
                "vfmul.vv v28, v4, v8",
                "vfadd.vv v20, v20, v28",
                "vsseg2e32.v v16, ({a})",
                "sub {n}, {n}, {t}",
                "slli {t}, {t}, 2",
                "add {c}, {c}, {t}",
                "add {s}, {s}, {t}",
                "slli {t}, {t}, 1",
                "add {a}, {a}, {t}",
                "bnez {n}, 2b";
                n = inout(reg) half => _,
                a = inout(reg) head => _,
                c = inout(reg) cos => _,
                s = inout(reg) sin => _,
                t = out(reg) _,
            );
        }
    }
}

/// `out[i] += a * v[i]` with `vfmacc` (fused: one rounding).
///
/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    let n = out.len().min(v.len());
    if n == 0 {
        return;
    }
    // SAFETY: n f32 of out rewritten and n of v read, vl at a time.
    unsafe {
        asm_v!(
            "2:",
            "vsetvli {t}, {n}, e32, m8, ta, ma",
            "vle32.v v0, ({o})",
            "vle32.v v8, ({v})",
            "vfmacc.vf v0, {a}, v8",
            "vse32.v v0, ({o})",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 2",
            "add {o}, {o}, {t}",
            "add {v}, {v}, {t}",
            "bnez {n}, 2b";
            n = inout(reg) n => _,
            o = inout(reg) out.as_mut_ptr() => _,
            v = inout(reg) v.as_ptr() => _,
            a = in(freg) a,
            t = out(reg) _,
        );
    }
}

/// `dst[i] = src[i]` converted from f16 bits, exactly. zvfh tiers use `vfwcvt.f.f.v`; plain V
/// tiers rebuild the f32 bits with integer operations (normal and subnormal values by one
/// power-of-two multiply, infinities and NaNs by forcing the exponent).
///
/// # Safety
/// The CPU must support RVV 1.0 with V enabled (and zvfh on zvfh tiers).
pub unsafe fn f16_to_f32_row(src: &[u16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    if n == 0 {
        return;
    }
    #[cfg(hartlm_feature = "zvfh")]
    // SAFETY: n f16 read and n f32 written, vl at a time.
    unsafe {
        asm_v!(
            ".option arch, +zvfh",
            "2:",
            "vsetvli {t}, {n}, e16, m4, ta, ma",
            "vle16.v v0, ({s})",
            "vfwcvt.f.f.v v8, v0",
            "vsetvli zero, {t}, e32, m8, ta, ma",
            "vse32.v v8, ({d})",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 1",
            "add {s}, {s}, {t}",
            "slli {t}, {t}, 1",
            "add {d}, {d}, {t}",
            "bnez {n}, 2b";
            n = inout(reg) n => _,
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            t = out(reg) _,
        );
    }
    #[cfg(not(hartlm_feature = "zvfh"))]
    // SAFETY: n f16 read and n f32 written, vl at a time; see the doc comment for the method.
    unsafe {
        asm_v!(
            "2:",
            // mu: the masked vor must leave inactive lanes alone (agnostic may set them to 1s).
            "vsetvli {t}, {n}, e32, m4, ta, mu",
            "vle16.v v4, ({s})",
            "vzext.vf2 v8, v4",
            f16_bits_to_f32!("v8", "v12"),
            "vse32.v v8, ({d})",
            "sub {n}, {n}, {t}",
            "slli {t}, {t}, 1",
            "add {s}, {s}, {t}",
            "slli {t}, {t}, 1",
            "add {d}, {d}, {t}",
            "bnez {n}, 2b";
            n = inout(reg) n => _,
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            t = out(reg) _,
            abs = in(reg) 0x7fffusize,
            inf = in(reg) 0x7c00usize,
            exp = in(reg) 0x7f80_0000usize,
            sign = in(reg) 0x8000usize,
            scale = in(freg) f32::from_bits(0x7780_0000),
        );
    }
}

/// `sum(a[i] * b[i])` of two f16 vectors, accumulated in f32 lanes (as ggml's F16 dot does).
///
/// # Safety
/// As [`f16_to_f32_row`].
pub unsafe fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    #[cfg(hartlm_feature = "zvfh")]
    {
        let n = a.len().min(b.len());
        let sum: f32;
        // SAFETY: n f16 read from each slice; vfwmacc widens into f32 lanes kept across the
        // partial last iteration (tu).
        unsafe {
            asm_v!(
                ".option arch, +zvfh",
                "vsetvli {t}, zero, e32, m8, ta, ma",
                "vmv.v.i v16, 0",
                "beqz {n}, 3f",
                "2:",
                "vsetvli {t}, {n}, e16, m4, tu, ma",
                "vle16.v v0, ({a})",
                "vle16.v v8, ({b})",
                "vfwmacc.vv v16, v0, v8",
                "sub {n}, {n}, {t}",
                "slli {t}, {t}, 1",
                "add {a}, {a}, {t}",
                "add {b}, {b}, {t}",
                "bnez {n}, 2b",
                "3:",
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
    #[cfg(not(hartlm_feature = "zvfh"))]
    {
        let n = a.len().min(b.len());
        let sum: f32;
        // SAFETY: n f16 read from each slice; both are widened to f32 exactly as in
        // f16_to_f32_row, then multiplied into f32 lanes kept across the last iteration (tu).
        unsafe {
            asm_v!(
                "vsetvli {t}, zero, e32, m4, ta, ma",
                "vmv.v.i v24, 0",
                "beqz {n}, 3f",
                "2:",
                "vsetvli {t}, {n}, e32, m4, tu, mu",
                "vle16.v v4, ({a})",
                "vle16.v v6, ({b})",
                "vzext.vf2 v8, v4",
                "vzext.vf2 v16, v6",
                f16_bits_to_f32!("v8", "v12"),
                f16_bits_to_f32!("v16", "v20"),
                "vfmacc.vv v24, v8, v16",
                "sub {n}, {n}, {t}",
                "slli {t}, {t}, 1",
                "add {a}, {a}, {t}",
                "add {b}, {b}, {t}",
                "bnez {n}, 2b",
                "3:",
                "vsetvli {t}, zero, e32, m4, ta, ma",
                "vmv.s.x v28, zero",
                "vfredusum.vs v28, v24, v28",
                "vfmv.f.s {sum}, v28";
                n = inout(reg) n => _,
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                t = out(reg) _,
                sum = out(freg) sum,
                abs = in(reg) 0x7fffusize,
                inf = in(reg) 0x7c00usize,
                exp = in(reg) 0x7f80_0000usize,
                sign = in(reg) 0x8000usize,
                scale = in(freg) f32::from_bits(0x7780_0000),
            );
        }
        sum
    }
}

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
