//! Which tier this library was compiled as, and what the launcher told it at start-up.
//! The tier id comes from xtask (HARTLM_TIER_ID at build time); `host` in plain cargo builds.

use std::ffi::CStr;

use hartlm_abi::LaunchInfo;

pub use crate::build_info::{KERNEL_FAMILIES, TIER_ID, kernels_of};

/// The launcher's choice, or this library's own defaults when called without one (tests).
#[derive(Clone, Debug)]
pub struct Launch {
    pub tier_id: String,
    pub vlen_bits: u32,
    /// Default worker threads chosen by the launcher (0: decide here).
    pub threads: u32,
    /// Default generation threads (0: same as `threads`).
    pub gen_threads: u32,
    /// One CPU per worker to pin it to (empty: no per-core pinning).
    pub cores: Vec<u32>,
    /// An AI cluster every worker must enter through `/proc/set_ai_thread` (empty: none).
    pub ai_cores: Vec<u32>,
    pub reason: String,
}

impl Launch {
    pub fn local() -> Self {
        Launch {
            tier_id: TIER_ID.into(),
            vlen_bits: vlen_bits(),
            threads: 0,
            gen_threads: 0,
            cores: vec![],
            ai_cores: vec![],
            reason: "direct call".into(),
        }
    }

    /// # Safety
    /// `info` must be null or point to a valid `LaunchInfo` with valid (or null) strings.
    pub unsafe fn from_raw(info: *const LaunchInfo) -> Self {
        // SAFETY: guaranteed by the caller.
        let Some(info) = (unsafe { info.as_ref() }) else {
            return Launch::local();
        };
        let text = |p: *const std::ffi::c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: non-null strings in LaunchInfo are NUL-terminated (caller's contract).
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        Launch {
            tier_id: text(info.tier_id),
            vlen_bits: info.vlen_bits,
            threads: info.threads,
            gen_threads: info.gen_threads,
            cores: if info.cores.is_null() {
                vec![]
            } else {
                // SAFETY: a non-null `cores` points to `n_cores` CPU numbers (caller's contract).
                unsafe { std::slice::from_raw_parts(info.cores, info.n_cores as usize) }.to_vec()
            },
            ai_cores: if info.ai_cores.is_null() {
                vec![]
            } else {
                // SAFETY: a non-null `ai_cores` points to `n_ai_cores` CPU numbers (caller's contract).
                unsafe { std::slice::from_raw_parts(info.ai_cores, info.n_ai_cores as usize) }.to_vec()
            },
            reason: text(info.reason),
        }
    }
}

/// The vector length this code runs with: read from `vlenb` in V tiers (once), 0 elsewhere.
pub fn vlen_bits() -> u32 {
    crate::kernels::vlen_bits()
}
