//! `hartlm bench-kernel`: one kernel timed on random data (the frontend's `bench` times whole
//! models through the engine's table), and the matrix-vector timing `hartlm calibrate` uses.

use std::time::Instant;

use hartlm_abi::engine::{KERNEL_MATVEC, KERNEL_READ, KERNEL_SSM_CONV, KernelBenchRequest};
use serde_json::json;

use crate::tier::Launch;
use crate::types::GgmlType;

/// Runs one `bench-kernel` request and returns its report line, or why the request is refused.
pub fn kernel_line(r: &KernelBenchRequest, launch: &Launch) -> Result<String, String> {
    let check_threads = |n: u32| match n {
        1..=1024 => Ok(n as usize),
        _ => Err(format!("-t {n}: use 1 to 1024 threads")),
    };
    match r.kernel {
        KERNEL_SSM_CONV => {
            let (channels, taps, tokens, reps) =
                (r.channels as usize, r.taps as usize, r.tokens as usize, r.reps as usize);
            if channels == 0 || taps == 0 || tokens == 0 || reps == 0 {
                return Err("--channels, --taps, --tokens and --reps must be at least 1".into());
            }
            // Input, taps and output buffers, in floats; sizes that overflow are as refused.
            let floats = (tokens as u64)
                .checked_mul(2)
                .and_then(|t| t.checked_add(taps as u64))
                .and_then(|n| n.checked_mul(channels as u64))
                .filter(|&f| f <= 1 << 30);
            if floats.is_none() {
                return Err(format!(
                    "{channels} channels x ({taps} taps + {tokens} tokens) needs more than 4 GiB of buffers; use smaller sizes"
                ));
            }
            let which = if r.reference != 0 { ConvImpl::Ggml } else { ConvImpl::Tier };
            let ns = time_ssm_conv(which, channels, taps, tokens, reps);
            let med = median(&ns);
            Ok(format!(
                "ssm_conv {} channels={channels} taps={taps} tokens={tokens}: median {:.1} us over {reps} \
                 calls, {:.2} Goutputs/s ({}{})",
                which.name(),
                med as f64 / 1e3,
                (channels * tokens) as f64 / med.max(1) as f64,
                launch.tier_id,
                if launch.vlen_bits > 0 { format!(", VLEN {}", launch.vlen_bits) } else { String::new() }
            ))
        }
        KERNEL_MATVEC => {
            let threads = check_threads(r.threads)?;
            let (size_mib, batch, reps) = (r.size_mib as usize, r.batch as usize, r.reps as usize);
            if size_mib == 0 || size_mib > 4096 || reps == 0 || !(1..=512).contains(&batch) {
                return Err("--size-mib must be 1..=4096, --batch 1..=512 and --reps at least 1".into());
            }
            let ty = GgmlType::from_id(r.ggml_type)
                .filter(|t| t.block_len() > 1)
                .ok_or_else(|| format!("GGML type {} is not a quantized type", r.ggml_type))?;
            let pool = crate::pool::Pool::new(threads);
            let (ns, bytes, macs) = time_matvec(ty, size_mib << 20, batch, &pool, reps);
            let med = median(&ns).max(1);
            Ok(json!({
                "kernel": format!("matvec_{}", ty.name().to_ascii_lowercase()),
                "tier": launch.tier_id,
                "vlen": launch.vlen_bits,
                "threads": threads,
                "batch": batch,
                "bytes": bytes,
                "median_ns": med,
                "gbps": bytes as f64 / med as f64,
                "gmacs": macs as f64 / med as f64,
            })
            .to_string())
        }
        KERNEL_READ => {
            let threads = check_threads(r.threads)?;
            let (size_mib, reps) = (r.size_mib as usize, r.reps as usize);
            if size_mib == 0 || size_mib > 4096 || reps == 0 {
                return Err("--size-mib must be 1..=4096 and --reps at least 1".into());
            }
            let pool = crate::pool::Pool::new(threads);
            let (ns, bytes) = time_read(size_mib << 20, &pool, reps);
            let med = median(&ns).max(1);
            Ok(json!({
                "kernel": "read",
                "tier": launch.tier_id,
                "threads": threads,
                "bytes": bytes,
                "median_ns": med,
                "gbps": bytes as f64 / med as f64,
            })
            .to_string())
        }
        k => Err(format!("kernel {k} is not one this engine times")),
    }
}

/// Which short-convolution loop `hartlm bench-kernel ssm_conv` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvImpl {
    /// The tier's kernel on hartlm's time-major layout (what the engine runs).
    Tier,
    /// Upstream ggml's scalar loop on its channel-major layout, for comparison.
    Ggml,
}

impl ConvImpl {
    pub fn name(self) -> &'static str {
        match self {
            ConvImpl::Tier => "tier",
            ConvImpl::Ggml => "ggml",
        }
    }
}

/// ggml's `ssm_conv` loop as upstream runs it on RISC-V: the input is channel-major (each
/// channel's `k - 1 + t` values contiguous), so every output reads a sliding window of one row.
#[inline(never)]
pub fn ggml_ssm_conv_loop(x: &[f32], w_by_channel: &[f32], e: usize, t: usize, out: &mut [f32]) {
    let k = w_by_channel.len() / e;
    let ncs = k - 1 + t;
    for i in 0..t {
        for c in 0..e {
            let (s, w) = (&x[c * ncs + i..][..k], &w_by_channel[c * k..][..k]);
            let mut sum = 0.0f32;
            for j in 0..k {
                sum += s[j] * w[j];
            }
            out[i * e + c] = sum;
        }
    }
}

/// Nanoseconds of each of `reps` `ssm_conv` calls over `tokens` rows of `channels` channels
/// with `taps` taps, on random data. Only the calls are inside the clock reads, so
/// `cargo xtask bench-insn --kernel` counts exactly the kernel.
pub fn time_ssm_conv(which: ConvImpl, channels: usize, taps: usize, tokens: usize, reps: usize) -> Vec<u64> {
    let mut rng = crate::testdata::Rng::new(7);
    let x = rng.vec((taps - 1 + tokens) * channels);
    let w = rng.vec(taps * channels);
    let mut out = vec![0.0f32; tokens * channels];
    time_calls(reps, &mut out, |out| match which {
        ConvImpl::Tier => crate::kernels::ssm_conv(&x, &w, channels, out),
        ConvImpl::Ggml => ggml_ssm_conv_loop(&x, &w, channels, tokens, out),
    })
}

/// Nanoseconds of each of `reps` calls of `f` writing `out`, which stays observable after each
/// clock read so the work cannot be optimised away.
fn time_calls<T: ?Sized>(reps: usize, out: &mut T, mut f: impl FnMut(&mut T)) -> Vec<u64> {
    (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f(out);
            let ns = t0.elapsed().as_nanos() as u64;
            std::hint::black_box(&*out);
            ns
        })
        .collect()
}

/// Columns of the matrix `time_matvec` multiplies (TinyLlama's FFN width is 5632, its hidden 2048).
const MATVEC_COLS: usize = 4096;

/// Nanoseconds of each of `reps` products of about `bytes` of `ty` weights with `batch`
/// vectors, through the engine's own path (packed panels or prompt tiles when this tier uses
/// them) on `pool`. One vector is the memory-bound operation token generation is made of; a
/// batch is prompt processing. Returns the samples (after one untimed warm-up product), the
/// exact weight bytes read per product and its multiply-adds.
pub fn time_matvec(
    ty: crate::types::GgmlType,
    bytes: usize,
    batch: usize,
    pool: &crate::pool::Pool,
    reps: usize,
) -> (Vec<u64>, usize, usize) {
    let blocks = MATVEC_COLS / ty.block_len();
    let row_bytes = blocks * ty.block_bytes();
    let rows = (bytes / row_bytes).max(1);
    let mut rng = crate::testdata::Rng::new(11);
    let data = crate::testdata::random_quant_row(ty, rows * blocks, &mut rng);
    let plain = crate::tensor::Weight { ty, rows, cols: MATVEC_COLS, data: &data, packed: None };
    let packed = crate::kernels::pack_weight(ty, rows, MATVEC_COLS, &data);
    let weight = crate::tensor::Weight { packed: packed.as_ref(), ..plain };
    let x = rng.vec(MATVEC_COLS * batch);
    let mut out = vec![0.0f32; rows * batch];
    weight.matmul(&x, &mut out, pool);
    let samples = time_calls(reps, &mut out[..], |out| weight.matmul(&x, out, pool));
    (samples, rows * row_bytes, rows * MATVEC_COLS * batch)
}

/// Nanoseconds of each of `reps` read passes over a buffer of about `bytes`, split across
/// `pool` (after one untimed pass), and the bytes read per pass.
pub fn time_read(bytes: usize, pool: &crate::pool::Pool, reps: usize) -> (Vec<u64>, usize) {
    let words: Vec<u64> = (0..bytes / 8).map(|i| i as u64).collect();
    let sums: Vec<std::sync::atomic::AtomicU64> =
        (0..pool.threads()).map(|_| std::sync::atomic::AtomicU64::new(0)).collect();
    let pass = |_: &mut [u64]| {
        pool.run(&|i| {
            let part = crate::pool::split(words.len(), i, pool.threads());
            // Eight independent sums, so the adds never wait on each other.
            let mut acc = [0u64; 8];
            for chunk in words[part].chunks_exact(8) {
                for (a, &w) in acc.iter_mut().zip(chunk) {
                    *a = a.wrapping_add(w);
                }
            }
            let total = acc.iter().fold(0u64, |s, &a| s.wrapping_add(a));
            sums[i].store(total, std::sync::atomic::Ordering::Relaxed);
        })
    };
    pass(&mut []);
    let samples = time_calls(reps, &mut [][..], pass);
    std::hint::black_box(&sums);
    (samples, words.len() * 8)
}

/// The median of some samples (0 for none).
pub fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}
