//! `hartlm bench`: llama-bench's measurements and output formats. ppN evaluates N random prompt
//! tokens from an empty cache; tgN generates N tokens one at a time; t/s is the mean over
//! repetitions of tokens / seconds, with the sample standard deviation, after one warm-up run.

use std::time::Instant;

use serde_json::json;

use crate::model::{CacheType, Logits, Model, ModelError, State};
use crate::pool::Threads;

#[derive(Clone, Debug)]
pub struct Spec {
    pub n_prompt: usize,
    pub n_gen: usize,
    /// Each entry runs both tests: ppN with its `batch` workers, tgN with its `generate` workers.
    pub threads: Vec<Threads>,
    pub reps: usize,
    /// One untimed run before each test, as llama-bench does unless `--no-warmup`.
    pub warmup: bool,
    pub cache: CacheType,
}

/// One table row: a test at one thread count.
#[derive(Clone, Debug)]
pub struct Row {
    pub threads: usize,
    pub n_prompt: usize,
    pub n_gen: usize,
    pub samples_ns: Vec<u64>,
}

impl Row {
    pub fn test_name(&self) -> String {
        if self.n_prompt > 0 { format!("pp{}", self.n_prompt) } else { format!("tg{}", self.n_gen) }
    }
    fn tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }
    pub fn samples_ts(&self) -> Vec<f64> {
        self.samples_ns.iter().map(|&ns| self.tokens() as f64 * 1e9 / ns.max(1) as f64).collect()
    }
    pub fn avg_ts(&self) -> f64 {
        mean(&self.samples_ts())
    }
    pub fn stddev_ts(&self) -> f64 {
        stddev(&self.samples_ts())
    }
}

pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// Sample standard deviation (n - 1), 0 for fewer than two samples.
pub fn stddev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Deterministic pseudo-random token ids (llama-bench feeds random tokens too).
struct Tokens(u64);

impl Tokens {
    fn next(&mut self, n_vocab: usize) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n_vocab as u64) as u32
    }
}

/// Nanoseconds of one test from an empty cache: `n_prompt` tokens in one batch (ppN) or, when
/// that is 0, `n_gen` tokens one at a time (tgN). Only the evaluation is inside the clock reads
/// (`cargo xtask bench-insn` counts instructions between them).
fn time_test(
    model: &Model,
    (n_prompt, n_gen): (usize, usize),
    threads: usize,
    cache: CacheType,
    rng: &mut Tokens,
) -> Result<u64, ModelError> {
    let n_vocab = model.config.n_vocab;
    let mut state = State::new(&model.config, (n_prompt + n_gen).max(1), threads, cache)?;
    let mut logits = vec![0.0; n_vocab];
    if n_prompt > 0 {
        let tokens: Vec<u32> = (0..n_prompt).map(|_| rng.next(n_vocab)).collect();
        let t0 = Instant::now();
        model.forward_batch(&mut state, &tokens, Logits::Last(&mut logits))?;
        return Ok(t0.elapsed().as_nanos() as u64);
    }
    let t0 = Instant::now();
    for _ in 0..n_gen {
        model.forward(&mut state, rng.next(n_vocab), Some(&mut logits))?;
    }
    Ok(t0.elapsed().as_nanos() as u64)
}

/// Runs every test at every thread count, reporting progress on stderr.
pub fn run(model: &Model, spec: &Spec) -> Result<Vec<Row>, ModelError> {
    let mut rows = Vec::new();
    let mut rng = Tokens(1234);
    for &t in &spec.threads {
        let tests = [(spec.n_prompt, 0), (0, spec.n_gen)];
        for (n_prompt, n_gen) in tests.into_iter().filter(|(p, g)| p + g > 0) {
            let t = t.for_tokens(if n_prompt > 0 { n_prompt } else { 1 });
            let time = |rng: &mut Tokens| time_test(model, (n_prompt, n_gen), t, spec.cache, rng);
            let name = if n_prompt > 0 { format!("pp{n_prompt}") } else { format!("tg{n_gen}") };
            eprint!("bench: {name} -t {t}:");
            if spec.warmup {
                eprint!(" warm-up,");
                time(&mut rng)?;
            }
            let mut samples_ns = Vec::with_capacity(spec.reps);
            for r in 0..spec.reps {
                eprint!("{} rep {}/{}", if r > 0 { "," } else { "" }, r + 1, spec.reps);
                samples_ns.push(time(&mut rng)?);
            }
            eprintln!();
            rows.push(Row { threads: t, n_prompt, n_gen, samples_ns });
        }
    }
    Ok(rows)
}

/// What the table's model columns show.
pub struct ModelInfo {
    pub filename: String,
    pub label: String,
    pub size_bytes: u64,
    pub n_params: u64,
    pub tier: String,
    pub vlen: u32,
}

fn human(n: u64) -> String {
    if n >= 1_000_000_000 { format!("{:.2} B", n as f64 / 1e9) } else { format!("{:.2} M", n as f64 / 1e6) }
}

pub fn markdown(info: &ModelInfo, rows: &[Row]) -> String {
    let mut out = String::from("| model | size | params | backend | threads | test | t/s |\n");
    out += "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n";
    for r in rows {
        out += &format!(
            "| {} | {:.2} MiB | {} | {} | {} | {} | {:.2} ± {:.2} |\n",
            info.label,
            info.size_bytes as f64 / 1048576.0,
            human(info.n_params),
            info.tier,
            r.threads,
            r.test_name(),
            r.avg_ts(),
            r.stddev_ts()
        );
    }
    out
}

/// llama-bench's JSON fields where they apply, plus `tier` and `vlen`.
pub fn json_rows(info: &ModelInfo, rows: &[Row]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let ns: Vec<f64> = r.samples_ns.iter().map(|&v| v as f64).collect();
            json!({
                "model_filename": info.filename,
                "model_type": info.label,
                "model_size": info.size_bytes,
                "model_n_params": info.n_params,
                "backends": "CPU",
                "n_threads": r.threads,
                "n_prompt": r.n_prompt,
                "n_gen": r.n_gen,
                "avg_ns": mean(&ns) as u64,
                "stddev_ns": stddev(&ns) as u64,
                "avg_ts": r.avg_ts(),
                "stddev_ts": r.stddev_ts(),
                "samples_ns": r.samples_ns,
                "samples_ts": r.samples_ts(),
                "tier": info.tier,
                "vlen": info.vlen,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_sample_stddev() {
        let r = Row { threads: 2, n_prompt: 0, n_gen: 10, samples_ns: vec![1_000_000_000, 500_000_000] };
        assert_eq!(r.test_name(), "tg10");
        assert_eq!(r.samples_ts(), vec![10.0, 20.0]);
        assert_eq!(r.avg_ts(), 15.0);
        assert!((r.stddev_ts() - 50f64.sqrt()).abs() < 1e-12);
        assert_eq!(stddev(&[3.0]), 0.0);
    }

    #[test]
    fn table_and_json_carry_llama_bench_fields() {
        let info = ModelInfo {
            filename: "m.gguf".into(),
            label: "llama 5.6M Q4_0".into(),
            size_bytes: 3 << 20,
            n_params: 5_600_000,
            tier: "x86-64-v3".into(),
            vlen: 0,
        };
        let rows = [Row { threads: 1, n_prompt: 512, n_gen: 0, samples_ns: vec![2_000_000_000] }];
        let md = markdown(&info, &rows);
        assert!(
            md.contains("| llama 5.6M Q4_0 | 3.00 MiB | 5.60 M | x86-64-v3 | 1 | pp512 | 256.00 ± 0.00 |"),
            "{md}"
        );
        let j = &json_rows(&info, &rows)[0];
        assert_eq!(j["n_prompt"], 512);
        assert_eq!(j["avg_ts"], 256.0);
        assert_eq!(j["tier"], "x86-64-v3");
    }
}

/// Which short-convolution loop `hartlm bench-kernel ssm_conv` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
    let packed = crate::kernels::panel_rows()
        .and_then(|r| crate::kernels::pack::Packed::new(ty, rows, MATVEC_COLS, &data, r));
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
