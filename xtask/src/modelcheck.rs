//! Fixture models at every tier: each tier runs `hartlm logits` through the packaged launcher
//! (riscv64 under qemu) on the shared llama.cpp fixtures, compared with the recorded logits.

use anyhow::{Context, Result};
use std::path::Path;

use hartlm_engine::oracle::{CASES, Case, GENERATED_CASES, Oracle};
use hartlm_variants::{Arch, tier};

use crate::qemu::{CpuEntry, Unpacked, parallel_map, run_guest};

/// Where each tier is run: its own qemu CPU, RVV again at VLEN 1024, and the host for tiers
/// qemu cannot express.
pub fn targets(host_tier: Option<&str>) -> Vec<(CpuEntry, &'static str)> {
    let entry = |name: String, arch: Arch, cpu: Option<&str>, assume: &[&str]| CpuEntry {
        name,
        arch: arch.name().into(),
        qemu_cpu: cpu.map(str::to_string),
        expect: String::new(),
        expect_vlen: None,
        assume: assume.iter().map(|s| s.to_string()).collect(),
        refuse: vec![],
    };
    let mut out = Vec::new();
    for t in tier::tiers() {
        match t.qemu_cpu {
            Some(cpu) => {
                out.push((entry(t.qemu_cpu.unwrap().into(), t.arch, Some(cpu), t.qemu_assume), t.id.0))
            }
            None if t.arch == Arch::X86_64 && host_tier.is_some_and(|h| tier_at_least(t.id.0, h)) => {
                out.push((entry("host".into(), t.arch, None, &[]), t.id.0))
            }
            None => {}
        }
        if t.id.0 == "rv64gcv" {
            let cpu = t.qemu_cpu.unwrap().replace("vlen=128", "vlen=1024");
            out.push((entry(cpu.clone(), t.arch, Some(&cpu), &[]), t.id.0));
        }
    }
    out
}

/// Whether the host (whose best tier is `host`) can run tier `id`.
fn tier_at_least(id: &str, host: &str) -> bool {
    let rank = |x: &str| tier::find(x).map(|t| t.rank);
    rank(id) <= rank(host)
}

pub struct Row {
    pub tier: &'static str,
    pub cpu: String,
    /// (fixture, max |Δlogit| or an error)
    pub cells: Vec<(&'static str, Result<f32, String>)>,
    /// `hartlm run` on the real model: the greedy continuation or an error.
    pub real: Result<String, String>,
}

/// The real-model check: greedy `hartlm run` must print llama.cpp's continuation up to its
/// first low-margin step (fixtures README: margins 1.09 0.34 0.38 0.69 0.14 ...).
pub const REAL_PROMPT: &str = "Once upon a time, there was a little cat named Tom.";
pub const REAL_CONTINUATION: &str = " Tom was a friendly";

fn check_real(cpu: &CpuEntry, tier: &str, launcher: &Path, model: &Path) -> Result<Result<String, String>> {
    let args = ["run", "-m", model.to_str().unwrap(), "-p", REAL_PROMPT, "-n", "4", "--temp", "0"];
    let run = run_guest(cpu, launcher, &args, Some(tier))?;
    Ok(if run.code != Some(0) {
        Err(format!("{}: {}", run.describe(), run.stderr.lines().last().unwrap_or("")))
    } else {
        match run.stdout.strip_prefix(REAL_PROMPT) {
            Some(rest) if rest.trim_end_matches('\n') == REAL_CONTINUATION => Ok(rest.trim_end().to_string()),
            _ => Err(format!("printed {:?}", run.stdout)),
        }
    })
}

/// Where the fixtures are: ../shared/fixtures and target/fixtures-gen.
pub struct Dirs<'a> {
    pub fixtures: &'a Path,
    pub generated: &'a Path,
    pub real_model: &'a Path,
}

/// Every compared model: (case, its file, its reference).
fn all_cases(d: &Dirs) -> Result<Vec<(&'static Case, std::path::PathBuf, Oracle)>> {
    let mut out = Vec::new();
    for case in CASES {
        let oracle = Oracle::load(d.fixtures, case.name).map_err(anyhow::Error::msg)?;
        out.push((case, d.fixtures.join(format!("models/{}.gguf", case.name)), oracle));
    }
    for case in GENERATED_CASES {
        let oracle =
            Oracle::load_generated(d.generated, d.fixtures, case.name).map_err(anyhow::Error::msg)?;
        out.push((case, d.generated.join(format!("{}.gguf", case.name)), oracle));
    }
    Ok(out)
}

fn check(cpu: &CpuEntry, tier: &str, launcher: &Path, dirs: &Dirs, scratch: &Path) -> Result<Row> {
    let mut cells = Vec::new();
    for (case, model, oracle) in all_cases(dirs)? {
        let tokens: Vec<String> = oracle.tokens().iter().map(u32::to_string).collect();
        let out = scratch.join(format!("{tier}-{}-{}.npy", short(&cpu.name), case.name));
        let args = [
            "logits",
            "-m",
            model.to_str().unwrap(),
            "--tokens",
            &tokens.join(","),
            "-o",
            out.to_str().unwrap(),
        ];
        let run = run_guest(cpu, launcher, &args, Some(tier))?;
        let cell = if run.code != Some(0) {
            Err(format!("{}: {}", run.describe(), run.stderr.lines().last().unwrap_or("")))
        } else {
            match hartlm_engine::npy::read_f32(&out) {
                Err(e) => Err(e),
                Ok((logits, _)) => {
                    let c = oracle.compare(&logits, case.margin);
                    if c.passes(case) {
                        Ok(c.max_abs)
                    } else {
                        Err(format!(
                            "max |dlogit| {:.3e} (tol {}), argmax flips at {:?}",
                            c.max_abs, case.tol, c.argmax_flips
                        ))
                    }
                }
            }
        };
        cells.push((case.name, cell));
    }
    let real = check_real(cpu, tier, launcher, dirs.real_model)?;
    Ok(Row { tier: tier_static(tier), cpu: cpu.name.clone(), cells, real })
}

fn tier_static(id: &str) -> &'static str {
    tier::find(id).map_or("?", |t| t.id.0)
}

/// Runs every fixture on every target, two targets at a time.
pub fn run_all(
    launchers: &[Unpacked],
    host_tier: Option<&str>,
    dirs: &Dirs,
    scratch: &Path,
) -> Result<Vec<Row>> {
    std::fs::create_dir_all(scratch)?;
    let jobs: Vec<(CpuEntry, &'static str, &Path)> = targets(host_tier)
        .into_iter()
        .filter_map(|(cpu, t)| {
            let arch = cpu.arch().ok()?;
            launchers.iter().find(|u| u.arch == arch).map(|u| (cpu, t, u.launcher.as_path()))
        })
        .collect();
    let results = parallel_map(&jobs, 2, |(cpu, t, launcher)| {
        let t0 = std::time::Instant::now();
        let row = check(cpu, t, launcher, dirs, scratch);
        if let Ok(row) = &row {
            let bad = row.cells.iter().filter(|c| c.1.is_err()).count() + usize::from(row.real.is_err());
            let verdict = if bad == 0 { "ok".into() } else { format!("{bad} failed") };
            eprintln!("  {t} @ {}: {verdict} ({:.1}s)", short(&cpu.name), t0.elapsed().as_secs_f64());
        }
        row.with_context(|| format!("{t} @ {}", cpu.name))
    });
    let mut rows = results.into_iter().collect::<Result<Vec<Row>>>()?;
    rows.sort_by_key(|r| (tier::find(r.tier).map(|t| (t.arch, std::cmp::Reverse(t.rank))), r.cpu.clone()));
    Ok(rows)
}

/// A qemu CPU string shortened for tables (`...,v=true,vlen=1024` -> `vlen=1024`).
pub fn short(cpu: &str) -> String {
    match cpu.rsplit_once(",vlen=") {
        Some((_, v)) => format!("vlen={}", v.split(',').next().unwrap_or(v)),
        None if cpu.starts_with("rv64i,") => "rv64gc".into(),
        None => cpu.into(),
    }
}

pub fn render(rows: &[Row]) -> String {
    let mut out = format!("{:<32} {:<10}", "tier", "cpu");
    for c in CASES.iter().chain(GENERATED_CASES) {
        out += &format!(" {:>16}", c.name);
    }
    out += "  smollm2 greedy\n";
    for r in rows {
        out += &format!("{:<32} {:<10}", r.tier, short(&r.cpu));
        for (_, cell) in &r.cells {
            out += &match cell {
                Ok(v) => format!(" {v:>16.1e}"),
                Err(_) => format!(" {:>16}", "FAIL"),
            };
        }
        out += &match &r.real {
            Ok(text) => format!("  {text:?}\n"),
            Err(_) => "  FAIL\n".to_string(),
        };
    }
    out
}

pub fn fixtures_dir(root: &Path) -> Result<std::path::PathBuf> {
    let dir = root.join("../shared/fixtures");
    if !dir.join("README.md").is_file() {
        anyhow::bail!(
            "{} is missing: the fixture models live in ../shared beside the checkout",
            dir.display()
        );
    }
    dir.canonicalize().context("resolving ../shared/fixtures")
}
