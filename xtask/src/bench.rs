//! `cargo xtask bench`: every x86-64 tier side by side on the host, on a TinyLlama-1.1B-shaped
//! and a Qwen2.5-0.5B-shaped Q4_0 model (generated, then quantized by `hartlm quantize`) and
//! the real SmolLM2-135M Q4_1. Against llama.cpp, in the same run: `--vs llama.cpp` (`vs`).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use xshell::{Shell, cmd};

use hartlm_variants::{Arch, tier};

use crate::workspace::Workspace;

pub struct BenchModel {
    pub label: &'static str,
    pub path: PathBuf,
}

/// Generates `<preset>-f16.gguf` with the fixtures' generator and quantizes it to Q4_0.
pub fn synthetic(
    sh: &Shell,
    dir: &Path,
    fixtures: &Path,
    launcher: &Path,
    preset: &str,
    vocab: &str,
) -> Result<PathBuf> {
    let q4 = dir.join(format!("{preset}-q4_0.gguf"));
    if q4.is_file() {
        return Ok(q4);
    }
    let f16 = generated_f16(sh, dir, fixtures, preset, vocab)?;
    cmd!(sh, "{launcher} quantize -m {f16} -o {q4} --type q4_0").run()?;
    Ok(q4)
}

/// `<preset>-f16.gguf` in `dir`, made by the fixtures' generator the first time.
pub fn generated_f16(sh: &Shell, dir: &Path, fixtures: &Path, preset: &str, vocab: &str) -> Result<PathBuf> {
    let f16 = dir.join(format!("{preset}-f16.gguf"));
    if !f16.is_file() {
        eprintln!("bench: generating {preset} (F16) with the fixtures' generator");
        let gen_script = fixtures.join("gen_synthetic_gguf.py");
        let vocab = fixtures.join("third_party_vocab").join(vocab);
        let tmp = dir.join(format!("{preset}-f16.gguf.tmp"));
        cmd!(
            sh,
            "python3 {gen_script} model {tmp} --preset {preset} --vocab-gguf {vocab} --dtype f16 --seed 1234"
        )
        .run()?;
        std::fs::rename(&tmp, &f16)?;
    }
    Ok(f16)
}

pub fn models(
    sh: &Shell,
    dir: &Path,
    fixtures: &Path,
    launcher: &Path,
    smollm2: PathBuf,
) -> Result<Vec<BenchModel>> {
    std::fs::create_dir_all(dir)?;
    Ok(vec![
        BenchModel {
            label: "TinyLlama-1.1B-shape Q4_0",
            path: synthetic(sh, dir, fixtures, launcher, "tinyllama", "ggml-vocab-llama-spm.gguf")?,
        },
        BenchModel {
            label: "Qwen2.5-0.5B-shape Q4_0",
            path: synthetic(sh, dir, fixtures, launcher, "qwen25_05b", "ggml-vocab-qwen2.gguf")?,
        },
        BenchModel { label: "SmolLM2-135M Q4_1", path: smollm2 },
    ])
}

/// One measured cell: (test, threads, tier) -> t/s mean and stddev.
pub struct Measured {
    pub model: &'static str,
    pub test: String,
    pub threads: usize,
    pub tier: String,
    pub avg: f64,
    pub stddev: f64,
}

pub struct Spec {
    pub n_prompt: usize,
    pub n_gen: usize,
    pub reps: usize,
    pub threads: Vec<usize>,
}

/// The x86-64 tiers the host can run, best first.
pub fn host_tiers(host_best: &str) -> Vec<&'static str> {
    let best = tier::find(host_best).map_or(0, |t| t.rank);
    tier::for_arch(Arch::X86_64).into_iter().filter(|t| t.rank <= best).map(|t| t.id.0).collect()
}

pub fn run(launcher: &Path, models: &[BenchModel], tiers: &[&str], spec: &Spec) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    for m in models {
        for &t in tiers {
            eprintln!("bench: {} on {t}", m.label);
            let output = Command::new(launcher)
                .env("HARTLM_TIER", t)
                .args(["bench", "-m"])
                .arg(&m.path)
                .args(["-p", &spec.n_prompt.to_string(), "-n", &spec.n_gen.to_string()])
                .args(["-r", &spec.reps.to_string(), "-o", "jsonl", "-t"])
                .arg(spec.threads.iter().map(usize::to_string).collect::<Vec<_>>().join(","))
                .stderr(std::process::Stdio::inherit())
                .output()
                .context("running hartlm bench")?;
            if !output.status.success() {
                bail!("hartlm bench failed for {} on {t}", m.label);
            }
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                let v: serde_json::Value = serde_json::from_str(line)?;
                let (p, g) = (v["n_prompt"].as_u64().unwrap_or(0), v["n_gen"].as_u64().unwrap_or(0));
                out.push(Measured {
                    model: m.label,
                    test: if p > 0 { format!("pp{p}") } else { format!("tg{g}") },
                    threads: v["n_threads"].as_u64().unwrap_or(0) as usize,
                    tier: t.to_string(),
                    avg: v["avg_ts"].as_f64().unwrap_or(0.0),
                    stddev: v["stddev_ts"].as_f64().unwrap_or(0.0),
                });
            }
        }
    }
    Ok(out)
}

/// One markdown table: a row per (model, test, threads), a column per tier.
pub fn render(tiers: &[&str], rows: &[Measured]) -> String {
    let mut out = String::from("| model | test | threads |");
    for t in tiers.iter().rev() {
        out += &format!(" {t} |");
    }
    out += "\n|---|---|---:|";
    out += &"---:|".repeat(tiers.len());
    out += "\n";
    let mut keys: Vec<(&str, String, usize)> = Vec::new();
    for r in rows {
        let k = (r.model, r.test.clone(), r.threads);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (model, test, threads) in keys {
        out += &format!("| {model} | {test} | {threads} |");
        for t in tiers.iter().rev() {
            match rows
                .iter()
                .find(|r| r.model == model && r.test == test && r.threads == threads && r.tier == *t)
            {
                Some(r) => out += &format!(" {:.2} ± {:.2} |", r.avg, r.stddev),
                None => out += " – |",
            }
        }
        out += "\n";
    }
    out
}

/// `cargo xtask bench`.
pub fn command(ws: &Workspace, spec: Spec, only: Vec<String>) -> Result<()> {
    let sh = ws.shell()?;
    let tarball = crate::dist::command(ws, &[Arch::X86_64])?.pop().context("no x86_64 tarball")?;
    let unpacked = crate::qemu::unpack(&tarball, &ws.target_dir.join("bench/release"), Arch::X86_64)?;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let best = crate::qemu::host_x86_tier(&cpuinfo).context("cannot read the host's CPU flags")?;
    let tiers: Vec<&str> =
        host_tiers(best).into_iter().filter(|t| only.is_empty() || only.iter().any(|o| o == t)).collect();
    let fixtures = crate::modelcheck::fixtures_dir(&ws.root)?;
    let smollm2 = crate::models::ensure(&sh, &ws.target_dir, &crate::models::SMOLLM2)?;
    let bench_models =
        models(&sh, &ws.target_dir.join("bench/models"), &fixtures, &unpacked.launcher, smollm2)?;
    let rows = run(&unpacked.launcher, &bench_models, &tiers, &spec)?;
    println!("{}", render(&tiers, &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_puts_tiers_side_by_side() {
        let row = |tier: &str, avg| Measured {
            model: "M",
            test: "tg128".into(),
            threads: 2,
            tier: tier.into(),
            avg,
            stddev: 0.5,
        };
        let rows = vec![row("x86-64", 5.0), row("x86-64-v3", 22.0)];
        let t = render(&["x86-64-v3", "x86-64"], &rows);
        assert!(t.contains("| M | tg128 | 2 | 5.00 ± 0.50 | 22.00 ± 0.50 |"), "{t}");
        assert_eq!(host_tiers("x86-64-v3"), ["x86-64-v3", "x86-64-v2", "x86-64"]);
    }
}
