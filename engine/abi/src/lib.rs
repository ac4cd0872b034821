//! The contract between the `hartlm` launcher and the per-tier engine libraries it dlopens:
//! exported symbol names, the launch record passed to the entry point, and library file names.
use core::ffi::{c_char, c_int};

/// Bump whenever [`LaunchInfo`], [`EntryFn`] or the exported symbols change.
pub const ABI_VERSION: u32 = 2;

/// `extern "C" fn() -> u32` returning the library's [`ABI_VERSION`].
pub const ABI_SYMBOL: &core::ffi::CStr = c"hartlm_abi_version";
/// The entry point, of type [`EntryFn`].
pub const ENTRY_SYMBOL: &core::ffi::CStr = c"hartlm_main";

/// What the launcher tells the engine about the choice it made.
#[repr(C)]
pub struct LaunchInfo {
    pub abi_version: u32,
    /// Vector length in bits as the launcher probed it; 0 when the CPU has no usable vectors.
    pub vlen_bits: u32,
    /// Default worker threads: the allowed cores of the cluster the launcher placed the process
    /// on (its threads are pinned there); 0 lets the engine decide.
    pub threads: u32,
    /// NUL-terminated tier id the launcher selected.
    pub tier_id: *const c_char,
    /// NUL-terminated human-readable reason for the choice.
    pub reason: *const c_char,
}

pub type AbiVersionFn = unsafe extern "C" fn() -> u32;

/// `argv` holds `argc` NUL-terminated strings; `info` is valid for the call. Returns the exit status.
pub type EntryFn =
    unsafe extern "C" fn(argc: c_int, argv: *const *const c_char, info: *const LaunchInfo) -> c_int;

/// The engine library file of a tier inside a release's `lib/` directory.
pub fn library_file_name(tier_id: &str) -> String {
    format!("libhartlm-{tier_id}.so")
}
