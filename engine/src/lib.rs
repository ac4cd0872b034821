//! hartlm's inference engine, compiled once per ISA tier as a cdylib the launcher dlopens.
//! This file owns the version and calibration symbols; `api` exports the function table.

pub mod api;
pub mod bench;
pub mod build_info;
pub mod eval;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod pool;
pub mod pretokenize;
pub mod quantize;
pub mod selftest;
pub mod tensor;
pub mod testdata;
pub mod tier;
pub mod tokenizer;
pub mod types;

use std::ffi::c_int;

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
