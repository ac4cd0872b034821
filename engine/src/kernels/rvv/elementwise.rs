//! RVV row operations: activation quantization (Q8_0, Q8_K), SwiGLU, RMSNorm sums and scaling,
//! softmax, RoPE, the attention value sums and f16 conversion and dots.

use crate::types::{BlockQ8_0, BlockQ8K, QK, QK_K, f32_to_f16};

/// asm lines turning zero-extended f16 bits (e32 lanes of `$h`) into f32 in place, exactly,
/// without zvfh: `(bits & 0x7fff) << 13` times 2^112 is right for normal and subnormal values,
/// inf/NaN get their exponent forced (masked `vor`: needs mask-undisturbed), then the sign.
/// Uses `$t` and v0; needs operands abs, inf, scale, exp, sign.
#[cfg(not(hartlm_kernels = "zvfh"))]
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

/// Q8_0 activation quantization (see `types::q8_0::quantize_row_q8_0`), bit-identical to it: the
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

/// Q8_K activation quantization (see `types::q8_k::quantize_row_q8_k`), bit-identical to it: the
/// signed value of largest magnitude (the first one, as the scalar loop keeps) by `vfredmax`
/// and `vfirst`, values rounded half-to-even by `vfncvt` (frm = RNE), then the 16-value sums
/// by widening reductions.
///
/// # Safety
/// The CPU must support RVV 1.0 with V enabled.
pub unsafe fn quantize_row_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    for (chunk, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
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
            *b = BlockQ8K { d: 0.0, qs: [0; QK_K], bsums: [0; QK_K / 16] };
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
    #[cfg(hartlm_kernels = "zvfh")]
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
    #[cfg(not(hartlm_kernels = "zvfh"))]
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
    #[cfg(hartlm_kernels = "zvfh")]
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
    #[cfg(not(hartlm_kernels = "zvfh"))]
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
