//! RVV 1.0 kernels, hand-written with `asm!` because stable Rust has no vector intrinsics, one
//! file per kind: row dots, weight panels, elementwise row operations and ssm_conv.
//!
//! VLEN-agnostic (vsetvli decides how much each instruction covers); every vector register is
//! declared clobbered. All functions require a CPU with kernel-enabled V.

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

mod dots;
mod elementwise;
pub mod ime;
mod panels;
mod ssm_conv;

pub use dots::*;
pub use elementwise::*;
pub use panels::*;
pub use ssm_conv::*;

use std::sync::OnceLock;

/// Bytes in one vector register (VLEN / 8), read once per process from the `vlenb` CSR. All
/// engine threads run on cores of one VLEN (the launcher's placement never spans two).
pub fn vlenb() -> usize {
    static VLENB: OnceLock<usize> = OnceLock::new();
    *VLENB.get_or_init(|| {
        let v: usize;
        // SAFETY: reading vlenb has no side effects; this module's kernels run only on V tiers.
        unsafe {
            core::arch::asm!(".option push", ".option arch, +v", "csrr {v}, vlenb", ".option pop", v = out(reg) v, options(nomem, nostack))
        };
        v
    })
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
