//! hartlm's inference engine, compiled once per ISA tier as a cdylib the launcher dlopens.
//! This file owns the exported C entry points; everything behind them is ordinary Rust.

pub mod bench;
pub mod chat;
pub mod cli;
pub mod eval;
pub mod ggml_type;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod npy;
pub mod oracle;
pub mod pool;
pub mod pretokenize;
pub mod quant;
pub mod quantize;
pub mod sampler;
pub mod selftest;
pub mod tensor;
pub mod tier;
pub mod tokenizer;

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStringExt;

use hartlm_abi::{ABI_VERSION, LaunchInfo};

/// Reports the launcher/engine contract version this library implements.
#[unsafe(no_mangle)]
pub extern "C" fn hartlm_abi_version() -> u32 {
    ABI_VERSION
}

/// The launcher's entry point: runs the command line and returns the process exit status.
///
/// # Safety
/// `argv` must hold `argc` NUL-terminated strings and `info`, when non-null, must point to a
/// valid [`LaunchInfo`] whose strings outlive the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hartlm_main(
    argc: c_int,
    argv: *const *const c_char,
    info: *const LaunchInfo,
) -> c_int {
    let count = usize::try_from(argc).unwrap_or(0);
    let args: Vec<OsString> = (0..count)
        .map(|i| {
            // SAFETY: the caller guarantees argv[0..argc] are valid C strings.
            let s = unsafe { CStr::from_ptr(*argv.add(i)) };
            OsString::from_vec(s.to_bytes().to_vec())
        })
        .collect();
    // SAFETY: the caller guarantees info is null or valid for the duration of the call.
    let launch = unsafe { tier::Launch::from_raw(info) };
    match std::panic::catch_unwind(|| cli::main(args, &launch)) {
        Ok(code) => code,
        Err(_) => {
            eprintln!("hartlm: internal error (a bug: please report it with the command line)");
            101
        }
    }
}
