//! The contract between the `hartlm` launcher and the per-tier engine libraries it dlopens:
//! exported symbol names, the launch record passed to the engine, its function table (`engine`)
//! and library file names. Also the mechanisms both sides share: CPU affinity (`affinity`), file writes (`atomic`) and
//! reads (`files`), standard output (`output`) and untrusted text (`text`).
use core::ffi::{c_char, c_int};

pub mod affinity;
pub mod atomic;
pub mod engine;
pub mod files;
pub mod output;
pub mod text;

/// Bump whenever [`LaunchInfo`], [`engine::EngineApi`] or the exported symbols change.
/// 5: the engine exports a function table instead of a command-line entry point.
/// 6: sequence state save and load (`seq_save`, `seq_load`).
pub const ABI_VERSION: u32 = 6;

/// The ELF section of every engine library that names its tier: [`TIER_TAG_PREFIX`] then the
/// tier id. The launcher reads it from the file, so a library under another tier's name is
/// refused before any of its code (initialisers included) runs.
pub const TIER_SECTION: &str = ".hartlm_tier";
pub const TIER_TAG_PREFIX: &str = "hartlm-tier:";

/// `extern "C" fn() -> u32` returning the library's [`ABI_VERSION`].
pub const ABI_SYMBOL: &core::ffi::CStr = c"hartlm_abi_version";
/// The engine's function table, of type [`engine::EngineApiFn`].
pub const API_SYMBOL: &core::ffi::CStr = c"hartlm_engine_api";
/// `hartlm calibrate`'s measurement, of type [`CalibrateFn`].
pub const CALIBRATE_SYMBOL: &core::ffi::CStr = c"hartlm_calibrate";

/// What the launcher tells the engine about the choice it made.
#[repr(C)]
pub struct LaunchInfo {
    pub abi_version: u32,
    /// Vector length in bits as the launcher probed it; 0 when the CPU has no usable vectors.
    pub vlen_bits: u32,
    /// Default worker threads: the allowed cores of the cluster the launcher placed the process
    /// on (its threads are pinned there); 0 lets the engine decide.
    pub threads: u32,
    /// Default threads for token generation, which is memory-bound and stops scaling at the
    /// memory-bandwidth knee (`hartlm calibrate` measures it); 0: same as `threads`.
    pub gen_threads: u32,
    /// `n_cores` CPU numbers, one per worker thread in order, for pinning each worker to its
    /// own core; null (and 0) leaves threads on the whole placement.
    pub cores: *const u32,
    pub n_cores: u32,
    /// `n_ai_cores` CPU numbers of an AI cluster that refuses plain affinity (SpacemiT K3 A100):
    /// each worker thread enters it through `/proc/set_ai_thread` and checks where it landed
    /// before taking work ([`affinity::enter_ai_cluster`]). Null (and 0): no such entry.
    pub ai_cores: *const u32,
    pub n_ai_cores: u32,
    /// NUL-terminated tier id the launcher selected.
    pub tier_id: *const c_char,
    /// NUL-terminated human-readable reason for the choice.
    pub reason: *const c_char,
}

pub type AbiVersionFn = unsafe extern "C" fn() -> u32;

/// One calibration measurement: the median time of a Q4_0 matrix-vector product and the
/// weight bytes it reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MatvecTiming {
    pub median_ns: u64,
    pub bytes: u64,
}

/// Times `reps` products over `size_mib` MiB of weights on `info.threads` workers pinned to
/// `info.cores`, writing `out`. Returns 0, or 2 when an argument is out of range.
pub type CalibrateFn =
    unsafe extern "C" fn(info: *const LaunchInfo, size_mib: u32, reps: u32, out: *mut MatvecTiming) -> c_int;

/// The engine library file of a tier inside a release's `lib/` directory.
pub fn library_file_name(tier_id: &str) -> String {
    format!("libhartlm-{tier_id}.so")
}
