//! hartlm's inference engine, compiled once per ISA tier as a cdylib the launcher dlopens.
//! This file owns the exported C entry points; everything behind them is ordinary Rust.

pub mod bench;
pub mod build_info;
pub mod chat;
pub mod cli;
pub mod eval;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod npy;
pub mod pool;
pub mod pretokenize;
pub mod quantize;
pub mod sampler;
pub mod selftest;
pub mod tensor;
pub mod testdata;
pub mod tier;
pub mod tokenizer;
pub mod types;

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStringExt;

use hartlm_abi::{ABI_VERSION, LaunchInfo, MatvecTiming};

/// Reports the launcher/engine contract version this library implements.
#[unsafe(no_mangle)]
pub extern "C" fn hartlm_abi_version() -> u32 {
    ABI_VERSION
}

/// `hartlm calibrate`'s measurement (see [`hartlm_abi::CalibrateFn`]).
///
/// # Safety
/// `info` must point to a valid [`LaunchInfo`] (its `cores` array included) and `out` to
/// writable memory for one [`MatvecTiming`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hartlm_calibrate(
    info: *const LaunchInfo,
    size_mib: u32,
    reps: u32,
    out: *mut MatvecTiming,
) -> c_int {
    // SAFETY: the caller guarantees info is valid for the duration of the call.
    let launch = unsafe { tier::Launch::from_raw(info) };
    let threads = launch.threads as usize;
    if out.is_null() || !(1..=4096).contains(&size_mib) || reps == 0 || !(1..=1024).contains(&threads) {
        return 2;
    }
    let measured = std::panic::catch_unwind(|| {
        pool::set_ai_cores(launch.ai_cores.clone());
        let pool = pool::Pool::pinned(threads, &launch.cores);
        bench::time_matvec(types::GgmlType::Q4_0, (size_mib as usize) << 20, 1, &pool, reps as usize)
    });
    let Ok((samples, bytes, _)) = measured else { return 101 };
    let timing = MatvecTiming { median_ns: bench::median(&samples), bytes: bytes as u64 };
    // SAFETY: out is non-null (checked) and writable (caller's contract).
    unsafe { out.write(timing) };
    0
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
