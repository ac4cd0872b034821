//! `cargo xtask bench --vs llama.cpp`: hartlm and llama.cpp side by side, in one run, on the
//! same GGUF files: wall-clock t/s on this host (alternating the engines) and, under the plugin
//! qemu, exact instructions per prompt and per generated token on riscv64.
//!
//! Native: both engines run `bench -p P -n N -r R -t T -o jsonl`, llama.cpp then hartlm, for
//! each round; each round gives one ratio, and the table shows their mean and range. Our best
//! tier faces llama.cpp built with every SIMD extension the host has; the x86-64 and v2 tiers
//! face builds with matching flags (SmolLM2 only: the baseline builds are slow on 1B models).
//! The host's read bandwidth (`hartlm bench-kernel read`, 1 and 2 threads) gives the roofline
//! each tg figure is reported against.
//!
//! Instructions: each engine runs twice per test with different lengths (`-p 8`/`-p 16` with
//! `-n 0`, `-n 2`/`-n 6` with `-p 0`, `-r 1 -t 1`, no warm-up); the difference divided by the
//! extra tokens is the cost of one token, with loading and start-up cancelled out.

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use xshell::{Shell, cmd};

use hartlm_variants::{Arch, tier};

use crate::insn::{self, Counter};
use crate::llamacpp::{self, Built};
use crate::prereq::{self, Needs};
use crate::workspace::Workspace;

/// Which half of the comparison to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VsPart {
    All,
    /// Wall-clock t/s on this host.
    Native,
    /// Instructions per token under the plugin qemu (riscv64).
    Insn,
}

pub struct Spec {
    pub n_prompt: usize,
    pub n_gen: usize,
    pub reps: usize,
    pub threads: Vec<usize>,
    pub rounds: usize,
    pub part: VsPart,
}

/// A model both engines run.
pub struct Model {
    pub label: &'static str,
    pub path: PathBuf,
}

/// One engine's t/s for one test in one round.
#[derive(Clone, Debug, PartialEq)]
pub struct Speed {
    pub model: &'static str,
    /// Our tier, facing the llama.cpp build of the same rank.
    pub tier: String,
    pub test: String,
    pub threads: usize,
    pub round: usize,
    pub llama: f64,
    pub ours: f64,
}

/// Mean and range of some values.
pub fn mean_range(v: &[f64]) -> (f64, f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, lo, hi)
}

/// The native table: one row per (model, tier, test, threads), each engine's mean t/s over the
/// rounds, and the per-round ratio's mean and range; tg rows also as a fraction of the roofline
/// (`bytes` read per generated token of each model, `roofline` GB/s per thread count).
pub fn render_native(speeds: &[Speed], bytes: &[(&str, u64)], roofline: &[(usize, f64)]) -> String {
    let mut out = String::from(
        "| model | hartlm tier vs llama.cpp build | test | threads | llama.cpp t/s | hartlm t/s | hartlm / llama.cpp (range) | hartlm tg / roofline |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
    );
    let mut keys: Vec<(&str, &str, &str, usize)> = Vec::new();
    for s in speeds {
        let k = (s.model, s.tier.as_str(), s.test.as_str(), s.threads);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (model, tier, test, threads) in keys {
        let rows: Vec<&Speed> = speeds
            .iter()
            .filter(|s| s.model == model && s.tier == tier && s.test == test && s.threads == threads)
            .collect();
        let (llama, _, _) = mean_range(&rows.iter().map(|s| s.llama).collect::<Vec<_>>());
        let (ours, _, _) = mean_range(&rows.iter().map(|s| s.ours).collect::<Vec<_>>());
        let (r, lo, hi) = mean_range(&rows.iter().map(|s| s.ours / s.llama).collect::<Vec<_>>());
        let roof = match (
            test.starts_with("tg"),
            bytes.iter().find(|b| b.0 == model),
            roofline.iter().find(|r| r.0 == threads),
        ) {
            (true, Some(&(_, b)), Some(&(_, gbps))) => {
                format!("{:.0} %", 100.0 * ours * b as f64 / 1e9 / gbps)
            }
            _ => "–".into(),
        };
        out += &format!(
            "| {model} | {tier} | {test} | {threads} | {llama:.2} | {ours:.2} | {r:.2}x ({lo:.2}–{hi:.2}) | {roof} |\n"
        );
    }
    out
}

/// One engine's `bench` JSON lines as (test, t/s).
pub fn parse_jsonl(text: &str) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("bench output: {line}"))?;
        let (p, n) = (v["n_prompt"].as_u64().unwrap_or(0), v["n_gen"].as_u64().unwrap_or(0));
        let ts = v["avg_ts"].as_f64().context("bench output without avg_ts")?;
        out.push((if p > 0 { format!("pp{p}") } else { format!("tg{n}") }, ts));
    }
    Ok(out)
}

fn run_bench(label: &str, mut c: Command) -> Result<Vec<(String, f64)>> {
    let out = c.stderr(std::process::Stdio::null()).output().with_context(|| format!("starting {label}"))?;
    if !out.status.success() {
        bail!("{label} failed: {}", out.status);
    }
    parse_jsonl(&String::from_utf8_lossy(&out.stdout))
}

/// What the native comparison runs: (model, our tier, llama.cpp build) triples.
pub fn native_pairs<'m>(
    models: &'m [Model],
    best_tier: &'static str,
) -> Vec<(&'m Model, &'static str, &'static str)> {
    let mut out: Vec<_> = models.iter().map(|m| (m, best_tier, "x86-best")).collect();
    if let Some(smol) = models.iter().find(|m| m.label.starts_with("SmolLM2")) {
        for (t, b) in [("x86-64-v2", "x86-64-v2"), ("x86-64", "x86-64")] {
            if t != best_tier {
                out.push((smol, t, b));
            }
        }
    }
    out
}

/// Weight bytes one generated token reads: every tensor but the token embedding table (read
/// one row per token) unless it is also the output matrix (tied).
fn bytes_per_token(sh: &Shell, model: &Path) -> Result<u64> {
    let script = "import sys, gguf\n\
                  r = gguf.GGUFReader(sys.argv[1])\n\
                  t = {x.name: int(x.n_bytes) for x in r.tensors}\n\
                  tied = 'output.weight' not in t\n\
                  print(sum(b for n, b in t.items() if n != 'token_embd.weight' or tied))";
    let text = cmd!(sh, "python3 -c {script} {model}").read().context("reading tensor sizes with gguf")?;
    text.trim().parse().with_context(|| format!("tensor bytes: {text}"))
}

/// The models of the native comparison, made once: TinyLlama-1.1B and Qwen2.5-0.5B shapes by
/// the fixtures' generator (F16), quantized by llama-quantize's Q4_0 mix (output Q6_K or Q8_0,
/// as llama.cpp's users download them), and the real SmolLM2-135M Q4_1.
fn native_models(ws: &Workspace, sh: &Shell, quantize: &Path) -> Result<Vec<Model>> {
    let fixtures = crate::modelcheck::fixtures_dir(&ws.root)?;
    let dir = ws.target_dir.join("bench/vs");
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    for (label, preset, vocab) in [
        ("TinyLlama-1.1B-shape Q4_0", "tinyllama", "ggml-vocab-llama-spm.gguf"),
        ("Qwen2.5-0.5B-shape Q4_0", "qwen25_05b", "ggml-vocab-qwen2.gguf"),
    ] {
        let q4 = dir.join(format!("{preset}-q4_0.gguf"));
        if !q4.is_file() {
            let f16 = crate::bench::generated_f16(sh, &dir, &fixtures, preset, vocab)?;
            let tmp = dir.join(format!("{preset}-q4_0.gguf.tmp"));
            cmd!(sh, "{quantize} {f16} {tmp} Q4_0").quiet().ignore_stdout().ignore_stderr().run()?;
            std::fs::rename(&tmp, &q4)?;
        }
        out.push(Model { label, path: q4 });
    }
    out.push(Model {
        label: "SmolLM2-135M Q4_1",
        path: crate::models::ensure(sh, &ws.target_dir, &crate::models::SMOLLM2)?,
    });
    Ok(out)
}

/// The host's read bandwidth in GB/s at each thread count: the best of three medians of 9
/// passes over 512 MiB (a ceiling, so a busy moment must not lower it).
fn read_bandwidth(launcher: &Path, threads: &[usize]) -> Result<Vec<(usize, f64)>> {
    threads
        .iter()
        .map(|&t| {
            let mut best = 0.0f64;
            for _ in 0..3 {
                let out = Command::new(launcher)
                    .args(["bench-kernel", "read", "--size-mib", "512", "-r", "9", "-t", &t.to_string()])
                    .output()
                    .context("running hartlm bench-kernel read")?;
                let v: serde_json::Value =
                    serde_json::from_slice(&out.stdout).context("bench-kernel read output")?;
                best = best.max(v["gbps"].as_f64().context("no gbps")?);
            }
            Ok((t, best))
        })
        .collect()
}

fn native(ws: &Workspace, sh: &Shell, spec: &Spec) -> Result<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: BTreeSet<&str> = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags").and_then(|r| r.split_once(':')).map(|(_, v)| v))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let cpu_model = crate::qemu::cpu_model(&cpuinfo);
    let best = crate::qemu::host_x86_tier(&cpuinfo).context("cannot read the host's CPU flags")?;
    let configs = llamacpp::configs(&flags);
    let build = |name: &str| -> Result<Built> {
        let c = configs.iter().find(|c| c.name == name).context("no such llama.cpp build")?;
        llamacpp::ensure(sh, &ws.target_dir, c)
    };
    let best_build = build("x86-best")?;
    let tarball = crate::dist::command(ws, &[Arch::X86_64])?.pop().context("no x86_64 tarball")?;
    let unpacked = crate::qemu::unpack(&tarball, &ws.target_dir.join("bench/vs-release"), Arch::X86_64)?;
    let launcher = unpacked.launcher;
    let models = native_models(ws, sh, &best_build.tool("llama-quantize"))?;
    let roofline = read_bandwidth(&launcher, &spec.threads)?;
    let mut bytes = Vec::new();
    for m in &models {
        bytes.push((m.label, bytes_per_token(sh, &m.path)?));
    }
    let pairs = native_pairs(&models, best);
    let mut builds = Vec::new();
    for name in pairs.iter().map(|p| p.2).collect::<BTreeSet<_>>() {
        builds.push((name, build(name)?));
    }
    let (p, n, r) = (spec.n_prompt.to_string(), spec.n_gen.to_string(), spec.reps.to_string());
    let total = pairs.len() * spec.threads.len() * spec.rounds;
    let mut speeds = Vec::new();
    let t0 = std::time::Instant::now();
    for round in 0..spec.rounds {
        for &(m, tier, build_name) in &pairs {
            let lb = &builds.iter().find(|b| b.0 == build_name).context("build")?.1;
            for &t in &spec.threads {
                let t_arg = t.to_string();
                let args = ["-m".into(), m.path.clone().into_os_string(), "-p".into(), OsString::from(&p)]
                    .into_iter()
                    .chain(["-n", &n, "-r", &r, "-t", &t_arg, "-o", "jsonl"].map(OsString::from))
                    .collect::<Vec<OsString>>();
                let mut llama = Command::new(lb.tool("llama-bench"));
                llama.args(&args);
                let theirs = run_bench("llama-bench", llama)?;
                let mut hartlm = Command::new(&launcher);
                hartlm.arg("bench").args(&args).env("HARTLM_TIER", tier);
                let ours = run_bench("hartlm bench", hartlm)?;
                for (test, llama) in theirs {
                    let ours = ours
                        .iter()
                        .find(|o| o.0 == test)
                        .with_context(|| format!("hartlm printed no {test}"))?;
                    speeds.push(Speed {
                        model: m.label,
                        tier: format!("{tier} vs {build_name}"),
                        test,
                        threads: t,
                        round,
                        llama,
                        ours: ours.1,
                    });
                }
                eprintln!(
                    "bench: round {}/{}, {} {tier} -t {t} done ({} of {total}, {:.0} s)",
                    round + 1,
                    spec.rounds,
                    m.label,
                    speeds.len() / 2,
                    t0.elapsed().as_secs_f64()
                );
            }
        }
    }
    let mut out = format!(
        "Host: {cpu_model}, {} logical CPUs. llama.cpp {} (llama-cpp-python 0.3.36 sdist), x86-best built with: {}.\n\
         Each engine ran `bench -p {p} -n {n} -r {r} -o jsonl` at each thread count, llama.cpp first, in each of {} rounds; \
         the ratio's range is over the rounds.\n\
         Read bandwidth (hartlm bench-kernel read, 512 MiB, best of three): {}.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        llamacpp::COMMIT,
        configs[0].defines.iter().filter_map(|d| d.strip_suffix("=ON")).collect::<Vec<_>>().join(" "),
        spec.rounds,
        roofline.iter().map(|(t, g)| format!("{g:.1} GB/s at {t} thread(s)")).collect::<Vec<_>>().join(", "),
    );
    out += &render_native(&speeds, &bytes, &roofline);
    Ok(out)
}

/// One instruction-count configuration: our tier at a VLEN, and the llama.cpp build for it.
pub struct InsnConfig {
    pub tier: &'static str,
    pub vlen: Option<u32>,
    pub build: &'static str,
}

pub const INSN_CONFIGS: [InsnConfig; 4] = [
    InsnConfig { tier: "rv64gc", vlen: None, build: "rv64gc" },
    InsnConfig { tier: "rv64gcv", vlen: Some(128), build: "rv64gcv" },
    InsnConfig { tier: "rv64gcv", vlen: Some(256), build: "rv64gcv" },
    InsnConfig { tier: "rv64gcv", vlen: Some(1024), build: "rv64gcv" },
];
/// (short, long) lengths of the two runs whose difference is counted.
const PROMPTS: (usize, usize) = (8, 16);
const GENS: (usize, usize) = (2, 6);

/// Instructions per prompt token and per generated token of one engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerToken {
    pub prompt: f64,
    pub generated: f64,
}

/// Per-token costs from the totals of the four runs (short/long prompt, short/long generation).
pub fn per_token(totals: [u64; 4]) -> PerToken {
    let d = |a: u64, b: u64, n: usize| (b as f64 - a as f64) / n as f64;
    PerToken {
        prompt: d(totals[0], totals[1], PROMPTS.1 - PROMPTS.0),
        generated: d(totals[2], totals[3], GENS.1 - GENS.0),
    }
}

/// The instruction table and the verdicts on the issue's targets: rv64gc at most 0.8x
/// llama.cpp per generated token, every vector configuration at VLEN >= 256 at most 0.3x.
pub fn render_insn(rows: &[(&str, &InsnConfig, PerToken, PerToken)]) -> String {
    let mut out = String::from(
        "| model | tier | VLEN | llama.cpp / prompt token | hartlm | ratio | llama.cpp / generated token | hartlm | ratio |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut verdicts = Vec::new();
    for (model, c, theirs, ours) in rows {
        let (rp, rg) = (ours.prompt / theirs.prompt, ours.generated / theirs.generated);
        out += &format!(
            "| {model} | {} | {} | {:.2} M | {:.2} M | {rp:.2} | {:.2} M | {:.2} M | {rg:.2} |\n",
            c.tier,
            insn::vlen_label(c.vlen),
            theirs.prompt / 1e6,
            ours.prompt / 1e6,
            theirs.generated / 1e6,
            ours.generated / 1e6
        );
        let target = match c.vlen {
            None => Some(0.8),
            Some(v) if v >= 256 => Some(0.3),
            Some(_) => None,
        };
        if let Some(target) = target {
            verdicts.push(format!(
                "- {model} {} VLEN {}: {rg:.2}x llama.cpp per generated token (target <= {target}): {}",
                c.tier,
                insn::vlen_label(c.vlen),
                if rg <= target { "met" } else { "MISSED" }
            ));
        }
    }
    out + "\n" + &verdicts.join("\n") + "\n"
}

fn insn_part(ws: &Workspace, sh: &Shell) -> Result<String> {
    let configs = llamacpp::configs(&BTreeSet::new());
    let mut builds = Vec::new();
    for name in ["rv64gc", "rv64gcv"] {
        let c = configs.iter().find(|c| c.name == name).context("riscv build missing")?;
        builds.push((name, llamacpp::ensure(sh, &ws.target_dir, c)?));
    }
    let counter = insn::counter(ws)?;
    let fixtures = crate::modelcheck::fixtures_dir(&ws.root)?;
    let models = [
        ("s288 Q4_0", fixtures.join("models/s288-q4_0.gguf")),
        ("SmolLM2-135M Q4_1", crate::models::ensure(sh, &ws.target_dir, &crate::models::SMOLLM2)?),
    ];
    // Every (model, config, engine, run) as one job, two at a time.
    struct Job<'a> {
        model: usize,
        config: usize,
        llama: bool,
        run: usize,
        path: &'a Path,
    }
    let mut jobs = Vec::new();
    for (mi, (_, path)) in models.iter().enumerate() {
        for ci in 0..INSN_CONFIGS.len() {
            for llama in [true, false] {
                for run in 0..4 {
                    jobs.push(Job { model: mi, config: ci, llama, run, path });
                }
            }
        }
    }
    let count = |c: &Counter, j: &Job| -> Result<u64> {
        let cfg = &INSN_CONFIGS[j.config];
        let t = tier::find(cfg.tier).with_context(|| format!("tier {} missing", cfg.tier))?;
        let cpu = insn::cpu_for(t, cfg.vlen)?;
        let (p, n) = match j.run {
            0 => (PROMPTS.0, 0),
            1 => (PROMPTS.1, 0),
            2 => (0, GENS.0),
            _ => (0, GENS.1),
        };
        let mut args: Vec<OsString> = vec!["bench".into(), "-m".into(), j.path.into()];
        args.extend(
            ["-p", &p.to_string(), "-n", &n.to_string(), "-r", "1", "-t", "1", "--no-warmup"]
                .map(OsString::from),
        );
        let label = format!(
            "vs-{}-{}-{}-{}-{}",
            j.model,
            j.config,
            if j.llama { "llama" } else { "hartlm" },
            j.run,
            std::process::id()
        );
        if j.llama {
            let lb = &builds.iter().find(|b| b.0 == cfg.build).context("build")?.1;
            args.remove(0);
            insn::count_run(c, &label, &cpu, &lb.tool("llama-bench"), &args, &[])
        } else {
            let env = [
                ("HARTLM_TIER", OsString::from(cfg.tier)),
                ("HARTLM_LIB_DIR", c.lib_dir.clone().into_os_string()),
            ];
            insn::count_run(c, &label, &cpu, &c.launcher, &args, &env)
        }
    };
    let label = |j: &Job| {
        let c = &INSN_CONFIGS[j.config];
        format!(
            "{} {} VLEN {} {} run {}",
            models[j.model].0,
            c.tier,
            insn::vlen_label(c.vlen),
            if j.llama { "llama.cpp" } else { "hartlm" },
            j.run + 1
        )
    };
    let totals = counter.all(&jobs, label, count)?;
    let mut rows = Vec::new();
    for (mi, (name, _)) in models.iter().enumerate() {
        for (ci, cfg) in INSN_CONFIGS.iter().enumerate() {
            let get = |llama: bool| -> [u64; 4] {
                let mut t = [0; 4];
                for (j, &c) in jobs.iter().zip(&totals) {
                    if j.model == mi && j.config == ci && j.llama == llama {
                        t[j.run] = c;
                    }
                }
                t
            };
            rows.push((*name, cfg, per_token(get(true)), per_token(get(false))));
        }
    }
    Ok(format!(
        "Dynamic instructions per token under the plugin qemu (exact), `-t 1`, from the difference of `-p {}`/`-p {}` \
         (prompt) and `-n {}`/`-n {}` (generation) runs; llama.cpp {} cross-built with clang-19 (rv64gc; rv64gcv = GGML_RVV).\n\n{}",
        PROMPTS.0,
        PROMPTS.1,
        GENS.0,
        GENS.1,
        llamacpp::COMMIT,
        render_insn(&rows)
    ))
}

/// `cargo xtask bench --vs llama.cpp`.
pub fn command(ws: &Workspace, spec: &Spec) -> Result<()> {
    let sh = ws.shell()?;
    let arches = [Arch::Riscv64, Arch::X86_64];
    prereq::ensure(&sh, Needs::build(&arches).with_qemu(&arches).with_apt(llamacpp::APT))?;
    let mut report = String::new();
    if spec.part != VsPart::Insn {
        report += &native(ws, &sh, spec)?;
        report += "\n";
    }
    if spec.part != VsPart::Native {
        report += &insn_part(ws, &sh)?;
    }
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_costs_come_from_the_difference_of_two_runs() {
        // Start-up 1000, 10 per prompt token, 50 per generated token.
        let t = per_token([1000 + 80, 1000 + 160, 1000 + 100, 1000 + 300]);
        assert_eq!(t, PerToken { prompt: 10.0, generated: 50.0 });
    }

    #[test]
    fn native_table_shows_mean_ratio_range_and_roofline() {
        let s = |round, llama, ours| Speed {
            model: "M",
            tier: "x86-64-v4 vs x86-best".into(),
            test: "tg128".into(),
            threads: 1,
            round,
            llama,
            ours,
        };
        let t = render_native(&[s(0, 10.0, 11.0), s(1, 10.0, 13.0)], &[("M", 1_000_000_000)], &[(1, 20.0)]);
        assert!(
            t.contains(
                "| M | x86-64-v4 vs x86-best | tg128 | 1 | 10.00 | 12.00 | 1.20x (1.10–1.30) | 60 % |"
            ),
            "{t}"
        );
    }

    #[test]
    fn insn_verdicts_use_the_targets_of_each_configuration() {
        let theirs = PerToken { prompt: 100.0, generated: 100.0 };
        let rows = [
            ("M", &INSN_CONFIGS[0], theirs, PerToken { prompt: 70.0, generated: 79.0 }),
            ("M", &INSN_CONFIGS[1], theirs, PerToken { prompt: 50.0, generated: 50.0 }),
            ("M", &INSN_CONFIGS[2], theirs, PerToken { prompt: 20.0, generated: 31.0 }),
        ];
        let t = render_insn(&rows);
        assert!(
            t.contains("M rv64gc VLEN -: 0.79x llama.cpp per generated token (target <= 0.8): met"),
            "{t}"
        );
        assert!(
            t.contains("M rv64gcv VLEN 256: 0.31x llama.cpp per generated token (target <= 0.3): MISSED"),
            "{t}"
        );
        assert!(!t.contains("VLEN 128:"), "{t}");
    }

    #[test]
    fn baseline_tiers_face_their_builds_on_smollm2_only() {
        let models = [
            Model { label: "TinyLlama", path: PathBuf::new() },
            Model { label: "SmolLM2-135M Q4_1", path: PathBuf::new() },
        ];
        let pairs: Vec<(&str, &str, &str)> =
            native_pairs(&models, "x86-64-v4").into_iter().map(|(m, t, b)| (m.label, t, b)).collect();
        assert_eq!(
            pairs,
            [
                ("TinyLlama", "x86-64-v4", "x86-best"),
                ("SmolLM2-135M Q4_1", "x86-64-v4", "x86-best"),
                ("SmolLM2-135M Q4_1", "x86-64-v2", "x86-64-v2"),
                ("SmolLM2-135M Q4_1", "x86-64", "x86-64"),
            ]
        );
    }
}
