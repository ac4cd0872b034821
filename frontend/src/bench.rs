//! `hartlm bench`: llama-bench's tests (ppN, tgN, pgN,M, each optionally after a depth of
//! context), its value syntax and its md/csv/json/jsonl outputs, timed through the engine table.
//!
//! Each timed test reads the monotonic clock exactly twice (`cargo xtask bench-insn` counts the
//! instructions between those reads); t/s is the mean over repetitions with the sample standard
//! deviation, after one untimed warm-up run.

use std::time::Instant;

use hartlm_abi::engine::{CACHE_F16, ContextParams};
use serde_json::json;

use crate::engine::{EngineError, Model};

/// One test: `n_prompt` prompt tokens in one batch, then `n_gen` generated one at a time, after
/// `n_depth` tokens of context (untimed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Test {
    pub n_prompt: usize,
    pub n_gen: usize,
    pub n_depth: usize,
}

impl Test {
    /// llama-bench's name: `pp512`, `tg128`, `pp512+tg128`, with ` @ d<depth>`.
    pub fn name(&self) -> String {
        let base = match (self.n_prompt, self.n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        };
        if self.n_depth > 0 { format!("{base} @ d{}", self.n_depth) } else { base }
    }
}

/// What `hartlm bench` runs: every test at every thread count.
#[derive(Clone, Debug)]
pub struct Spec {
    pub tests: Vec<Test>,
    /// (prompt threads, generation threads) per run of the tests.
    pub threads: Vec<(usize, usize)>,
    pub reps: usize,
    pub warmup: bool,
    pub cache_f16: bool,
}

/// Expands llama-bench's tests: each `-p` value a ppN, each `-n` a tgN, each `-pg` pair both,
/// repeated at each depth `-d`.
pub fn tests(n_prompt: &[usize], n_gen: &[usize], pg: &[(usize, usize)], depths: &[usize]) -> Vec<Test> {
    let mut out = Vec::new();
    for &n_depth in depths {
        out.extend(n_prompt.iter().filter(|&&p| p > 0).map(|&p| Test { n_prompt: p, n_gen: 0, n_depth }));
        out.extend(n_gen.iter().filter(|&&g| g > 0).map(|&g| Test { n_prompt: 0, n_gen: g, n_depth }));
        out.extend(pg.iter().map(|&(p, g)| Test { n_prompt: p, n_gen: g, n_depth }));
    }
    out
}

/// llama-bench's integer lists: `1,2,4`, ranges `1-4`, stepped `1-16+4` and multiplied `1-16*2`.
pub fn parse_list(text: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad = || format!("`{part}` is not a number, a range like 1-4, 1-16+4 or 1-16*2");
        let num = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
        let Some((first, rest)) = part.split_once('-') else {
            out.push(num(part)?);
            continue;
        };
        let (last, step, mult) = match (rest.split_once('+'), rest.split_once('*')) {
            (Some((l, s)), _) => (num(l)?, num(s)?, false),
            (_, Some((l, m))) => (num(l)?, num(m)?, true),
            _ => (num(rest)?, 1, false),
        };
        let first = num(first)?;
        if first > last || step == 0 || (mult && (step < 2 || first == 0)) {
            return Err(format!("`{part}`: the range is empty or never ends"));
        }
        let mut v = first;
        while v <= last {
            out.push(v);
            if out.len() > 4096 {
                return Err(format!("`{part}` lists more than 4096 values"));
            }
            v = if mult { v * step } else { v + step };
        }
    }
    Ok(out)
}

/// `-pg` pairs: `512,128` (one pair) or several separated by `;`.
pub fn parse_pairs(text: &str) -> Result<Vec<(usize, usize)>, String> {
    text.split(';')
        .map(|pair| {
            let v: Vec<&str> = pair.split(',').map(str::trim).collect();
            match v.as_slice() {
                [p, g] => match (p.parse(), g.parse()) {
                    (Ok(p), Ok(g)) => Ok((p, g)),
                    _ => Err(format!("-pg `{pair}`: give two numbers, prompt,gen")),
                },
                _ => Err(format!("-pg `{pair}`: give two numbers, prompt,gen")),
            }
        })
        .collect()
}

/// One table row: a test at one thread count.
#[derive(Clone, Debug)]
pub struct Row {
    pub test: Test,
    pub threads: usize,
    pub samples_ns: Vec<u64>,
    /// When the test's first timed repetition started, RFC 3339 UTC.
    pub test_time: String,
}

impl Row {
    fn tokens(&self) -> usize {
        self.test.n_prompt + self.test.n_gen
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

/// Tokens per prompt decode call, as llama-bench's default `-b`/`-ub`.
pub const N_BATCH: usize = 512;

/// Nanoseconds of one test from an empty cache, the depth filled first (untimed).
fn time_test(
    model: &Model,
    test: Test,
    threads: (usize, usize),
    f16: bool,
    rng: &mut Tokens,
) -> Result<u64, EngineError> {
    let n_vocab = model.config()?.n_vocab;
    let total = (test.n_depth + test.n_prompt + test.n_gen).max(1);
    let params = ContextParams {
        n_ctx: u32::try_from(total).unwrap_or(u32::MAX),
        n_seq: 1,
        threads_batch: threads.0 as u32,
        threads_gen: threads.1 as u32,
        cache_type: if f16 { CACHE_F16 } else { 0 },
    };
    let mut ctx = model.context(params)?;
    let mut random = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.next(n_vocab)).collect() };
    for chunk in random(test.n_depth).chunks(N_BATCH) {
        ctx.feed(0, chunk)?;
    }
    let prompt = random(test.n_prompt);
    let generated = random(test.n_gen);
    let t0 = Instant::now();
    for chunk in prompt.chunks(N_BATCH) {
        ctx.feed(0, chunk)?;
    }
    for &t in &generated {
        ctx.feed(0, &[t])?;
    }
    Ok(t0.elapsed().as_nanos() as u64)
}

/// Runs every test at every thread count, reporting progress on stderr.
pub fn run(model: &Model, spec: &Spec) -> Result<Vec<Row>, EngineError> {
    let mut rows = Vec::new();
    let mut rng = Tokens(1234);
    for &(batch, generate) in &spec.threads {
        for &test in &spec.tests {
            // A test with a prompt runs on the batch threads, generation alone on the others.
            let t = if test.n_prompt > 0 { (batch, generate) } else { (generate, generate) };
            let shown = if test.n_prompt > 0 { batch } else { generate };
            eprint!("bench: {} -t {shown}:", test.name());
            if spec.warmup {
                eprint!(" warm-up,");
                time_test(model, test, t, spec.cache_f16, &mut rng)?;
            }
            let test_time = rfc3339_now();
            let mut samples_ns = Vec::with_capacity(spec.reps);
            for r in 0..spec.reps {
                eprint!("{} rep {}/{}", if r > 0 { "," } else { "" }, r + 1, spec.reps);
                samples_ns.push(time_test(model, test, t, spec.cache_f16, &mut rng)?);
            }
            eprintln!();
            rows.push(Row { test, threads: shown, samples_ns, test_time });
        }
    }
    Ok(rows)
}

/// The wall-clock time (CLOCK_REALTIME: not one of the monotonic reads that bracket tests).
fn rfc3339_now() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    crate::template::strftime_utc(secs, "%Y-%m-%dT%H:%M:%SZ")
}

/// What the table's model and build columns show.
pub struct ModelColumns {
    pub filename: String,
    pub label: String,
    pub size_bytes: u64,
    pub n_params: u64,
    pub tier: String,
    pub vlen: u32,
    pub build_commit: String,
    pub cpu_info: String,
    pub cache_type: &'static str,
}

fn human(n: u64) -> String {
    if n >= 1_000_000_000 { format!("{:.2} B", n as f64 / 1e9) } else { format!("{:.2} M", n as f64 / 1e6) }
}

pub fn markdown(info: &ModelColumns, rows: &[Row]) -> String {
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
            r.test.name(),
            r.avg_ts(),
            r.stddev_ts()
        );
    }
    out
}

/// llama-bench's JSON fields where they apply, plus `tier` and `vlen`.
pub fn json_rows(info: &ModelColumns, rows: &[Row]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let ns: Vec<f64> = r.samples_ns.iter().map(|&v| v as f64).collect();
            json!({
                "build_commit": info.build_commit,
                "cpu_info": info.cpu_info,
                "gpu_info": "",
                "backends": "CPU",
                "model_filename": info.filename,
                "model_type": info.label,
                "model_size": info.size_bytes,
                "model_n_params": info.n_params,
                "n_batch": N_BATCH,
                "n_ubatch": N_BATCH,
                "n_threads": r.threads,
                "type_k": info.cache_type,
                "type_v": info.cache_type,
                "n_gpu_layers": 0,
                "n_depth": r.test.n_depth,
                "n_prompt": r.test.n_prompt,
                "n_gen": r.test.n_gen,
                "test_time": r.test_time,
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

/// The JSON rows as CSV with llama-bench's column order (lists joined by `;`, as it does).
pub fn csv(info: &ModelColumns, rows: &[Row]) -> String {
    const COLUMNS: [&str; 26] = [
        "build_commit",
        "cpu_info",
        "gpu_info",
        "backends",
        "model_filename",
        "model_type",
        "model_size",
        "model_n_params",
        "n_batch",
        "n_ubatch",
        "n_threads",
        "type_k",
        "type_v",
        "n_gpu_layers",
        "n_depth",
        "n_prompt",
        "n_gen",
        "test_time",
        "avg_ns",
        "stddev_ns",
        "avg_ts",
        "stddev_ts",
        "samples_ns",
        "samples_ts",
        "tier",
        "vlen",
    ];
    let cell = |v: &serde_json::Value| {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";"),
            other => other.to_string(),
        };
        format!("\"{}\"", text.replace('"', "\"\""))
    };
    let mut out = COLUMNS.join(",") + "\n";
    for j in json_rows(info, rows) {
        out += &COLUMNS.iter().map(|c| cell(&j[*c])).collect::<Vec<_>>().join(",");
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> ModelColumns {
        ModelColumns {
            filename: "m.gguf".into(),
            label: "llama 5.6M Q4_0".into(),
            size_bytes: 3 << 20,
            n_params: 5_600_000,
            tier: "x86-64-v3".into(),
            vlen: 0,
            build_commit: "abc1234".into(),
            cpu_info: "Test CPU".into(),
            cache_type: "f32",
        }
    }

    #[test]
    fn rates_and_sample_stddev() {
        let test = Test { n_prompt: 0, n_gen: 10, n_depth: 0 };
        let r =
            Row { test, threads: 2, samples_ns: vec![1_000_000_000, 500_000_000], test_time: String::new() };
        assert_eq!(r.test.name(), "tg10");
        assert_eq!(r.samples_ts(), vec![10.0, 20.0]);
        assert_eq!(r.avg_ts(), 15.0);
        assert!((r.stddev_ts() - 50f64.sqrt()).abs() < 1e-12);
        assert_eq!(stddev(&[3.0]), 0.0);
    }

    #[test]
    fn table_json_and_csv_carry_llama_bench_fields() {
        let test = Test { n_prompt: 512, n_gen: 0, n_depth: 0 };
        let rows = [Row {
            test,
            threads: 1,
            samples_ns: vec![2_000_000_000],
            test_time: "2026-12-06T20:00:00Z".into(),
        }];
        let md = markdown(&columns(), &rows);
        assert!(
            md.contains("| llama 5.6M Q4_0 | 3.00 MiB | 5.60 M | x86-64-v3 | 1 | pp512 | 256.00 ± 0.00 |"),
            "{md}"
        );
        let j = &json_rows(&columns(), &rows)[0];
        for (k, v) in [("n_prompt", json!(512)), ("avg_ts", json!(256.0)), ("n_batch", json!(512))] {
            assert_eq!(j[k], v, "{k}");
        }
        for k in ["build_commit", "cpu_info", "type_k", "type_v", "n_depth", "test_time", "samples_ns"] {
            assert!(!j[k].is_null(), "{k} missing");
        }
        let csv = csv(&columns(), &rows);
        let (head, line) = csv.split_once('\n').unwrap();
        assert!(head.starts_with("build_commit,cpu_info,gpu_info,backends,model_filename"));
        assert!(line.contains("\"pp512\"") || line.contains("\"512\",\"0\""), "{line}");
        assert_eq!(head.split(',').count(), line.trim_end().split("\",\"").count());
    }

    #[test]
    fn llama_bench_value_syntax() {
        assert_eq!(parse_list("1,2,4").unwrap(), [1, 2, 4]);
        assert_eq!(parse_list("1-4").unwrap(), [1, 2, 3, 4]);
        assert_eq!(parse_list("1-16+5").unwrap(), [1, 6, 11, 16]);
        assert_eq!(parse_list("1-16*2").unwrap(), [1, 2, 4, 8, 16]);
        assert_eq!(parse_list("8, 2-3").unwrap(), [8, 2, 3]);
        for bad in ["", "a", "4-1", "1-4+0", "0-8*2", "1-8*1", "1-"] {
            assert!(parse_list(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_pairs("512,128").unwrap(), [(512, 128)]);
        assert_eq!(parse_pairs("8,4;16,2").unwrap(), [(8, 4), (16, 2)]);
        assert!(parse_pairs("512").is_err());
    }

    #[test]
    fn tests_expand_like_llama_bench() {
        let t = tests(&[512], &[128], &[(8, 4)], &[0, 256]);
        let names: Vec<String> = t.iter().map(Test::name).collect();
        assert_eq!(names, ["pp512", "tg128", "pp8+tg4", "pp512 @ d256", "tg128 @ d256", "pp8+tg4 @ d256"]);
        assert!(tests(&[0], &[0], &[], &[0]).is_empty());
    }
}
