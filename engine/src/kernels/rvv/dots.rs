//! RVV row dots: one weight row (ggml's layout) with one activation, for F32 and the quantized
//! types whose weights are not panel-packed. Integer block sums are exact; the float part follows
//! the scalar reference's order.

use crate::types::k4::{k4_block_bytes, k4_combine, scale_min_k4};
use crate::types::q6_k::Q6K_BYTES;
use crate::types::{BlockQ4_0, BlockQ8_0, BlockQ8K, f16_to_f32};

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
