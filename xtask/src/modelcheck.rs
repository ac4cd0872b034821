//! Fixture models at every tier: each tier runs `hartlm logits` through the packaged launcher
//! (riscv64 under qemu) on the shared llama.cpp fixtures, compared with the recorded logits.

use anyhow::{Context, Result};
use std::path::Path;

use hartlm_test_support::oracle::{CASES, Case, Chunking, GENERATED_CASES, Oracle};
use hartlm_variants::{Arch, tier};

use crate::qemu::{CpuEntry, Unpacked, parallel_map, run_guest};

/// Where each tier is run: its own qemu CPU, RVV again at VLEN 1024, and the host for tiers
/// qemu cannot express.
pub fn targets(host_tier: Option<&str>) -> Vec<(CpuEntry, &'static str)> {
    let entry = |name: String, arch: Arch, cpu: Option<&str>, assume: &[&str]| CpuEntry {
        name,
        arch: arch.name().into(),
        qemu_cpu: cpu.map(str::to_string),
        assume: assume.iter().map(|s| s.to_string()).collect(),
        ..CpuEntry::default()
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
    /// Greedy `hartlm run` of [`RUN_CHECKS`]: the continuation or an error, in that order.
    pub runs: Vec<Result<String, String>>,
}

/// The story prompt every recorded run continues.
pub const PROMPT: &str = "Once upon a time, there was a little cat named Tom.";

/// Greedy `hartlm run` checks, each a column: the real SmolLM2 must print llama.cpp's
/// continuation up to its first low-margin step (fixtures README: margins 1.09 0.34 0.38 0.69
/// 0.14 ...); the LFM2 fixture (l_cache 3, whose 16 greedy tokens decode to valid UTF-8) must
/// print llama.cpp's whole recorded continuation.
pub const RUN_CHECKS: [&str; 2] = ["smollm2 greedy", "lfm2-l3 greedy"];

/// The model, token count and expected continuation of each of [`RUN_CHECKS`].
fn run_checks(dirs: &Dirs) -> Result<[(std::path::PathBuf, usize, String); 2]> {
    let lfm2 = "lfm2-micro-l3-f32";
    let text = dirs.fixtures.join(format!("oracle/{lfm2}.greedy_text.txt"));
    let text = std::fs::read_to_string(&text).with_context(|| format!("reading {}", text.display()))?;
    Ok([
        (dirs.real_model.to_path_buf(), 4, " Tom was a friendly".into()),
        (dirs.fixtures.join(format!("models/{lfm2}.gguf")), 16, text),
    ])
}

fn check_run(
    cpu: &CpuEntry,
    tier: &str,
    launcher: &Path,
    (model, n, want): &(std::path::PathBuf, usize, String),
) -> Result<Result<String, String>> {
    let n = n.to_string();
    let args = ["run", "-m", model.to_str().unwrap(), "-p", PROMPT, "-n", &n, "--temp", "0"];
    let run = run_guest(cpu, launcher, &args, Some(tier))?;
    Ok(if run.code != Some(0) {
        Err(format!("{}: {}", run.describe(), run.stderr.lines().last().unwrap_or("")))
    } else {
        match run.stdout.strip_prefix(PROMPT) {
            Some(rest) if rest.strip_suffix('\n').unwrap_or(rest) == want => Ok(rest.trim_end().to_string()),
            _ => Err(format!("printed {:?}, expected {PROMPT:?} + {want:?}", run.stdout)),
        }
    })
}

/// Where the fixtures are: ../shared/fixtures and target/fixtures-gen.
pub struct Dirs<'a> {
    pub fixtures: &'a Path,
    pub generated: &'a Path,
    pub real_model: &'a Path,
}

/// One compared run: a fixture, its file, its reference, and `hartlm logits --batch` (0 = one
/// call).
struct Compared {
    case: &'static Case,
    model: std::path::PathBuf,
    oracle: Oracle,
    batch: usize,
}

/// The column name of the chunked LFM2 runs (prompt fed 4 tokens per call, so the conv state
/// must be carried between calls).
const CHUNKED_COLUMN: &str = "lfm2 --batch 4";

/// Every compared run: each fixture in one call, then each LFM2 fixture in calls of 4 tokens
/// against llama.cpp's micro-batch-4 recording.
fn all_cases(d: &Dirs) -> Result<Vec<Compared>> {
    let mut out = Vec::new();
    for case in CASES {
        let oracle = Oracle::load(d.fixtures, case.name).map_err(anyhow::Error::msg)?;
        let model = d.fixtures.join(format!("models/{}.gguf", case.name));
        out.push(Compared { case, model, oracle, batch: 0 });
    }
    for case in GENERATED_CASES {
        let oracle =
            Oracle::load_generated(d.generated, d.fixtures, case.name).map_err(anyhow::Error::msg)?;
        out.push(Compared { case, model: d.generated.join(format!("{}.gguf", case.name)), oracle, batch: 0 });
    }
    for case in CASES.iter().filter(|c| c.name.starts_with("lfm2-")) {
        let oracle =
            Oracle::load_chunked(d.fixtures, case.name, Chunking::Ubatch4).map_err(anyhow::Error::msg)?;
        let model = d.fixtures.join(format!("models/{}.gguf", case.name));
        out.push(Compared { case, model, oracle, batch: 4 });
    }
    Ok(out)
}

/// `hartlm logits` of one compared run at `tier`: max |dlogit|, or what failed.
fn logits_cell(
    cpu: &CpuEntry,
    tier: &str,
    launcher: &Path,
    scratch: &Path,
    c: &Compared,
) -> Result<Result<f32, String>> {
    let (case, batch) = (c.case, c.batch);
    let tokens: Vec<String> = c.oracle.tokens().iter().map(u32::to_string).collect();
    let out = scratch.join(format!("{tier}-{}-{}-b{batch}.npy", short(&cpu.name), case.name));
    let batch_arg = batch.to_string();
    let args = [
        "logits",
        "-m",
        c.model.to_str().unwrap(),
        "--tokens",
        &tokens.join(","),
        "-o",
        out.to_str().unwrap(),
        "--batch",
        &batch_arg,
    ];
    let run = run_guest(cpu, launcher, &args, Some(tier))?;
    let cell = if run.code != Some(0) {
        Err(format!("{}: {}", run.describe(), run.stderr.lines().last().unwrap_or("")))
    } else {
        hartlm_test_support::npy::read_f32(&out).and_then(|(logits, _)| {
            let cmp = c.oracle.compare(&logits, case.margin);
            if cmp.passes(case) {
                Ok(cmp.max_abs)
            } else {
                Err(format!(
                    "max |dlogit| {:.3e} (tol {}), argmax flips at {:?}",
                    cmp.max_abs, case.tol, cmp.argmax_flips
                ))
            }
        })
    };
    Ok(cell.map_err(|e| format!("{} --batch {batch}: {e}", case.name)))
}

fn check(cpu: &CpuEntry, tier: &str, launcher: &Path, dirs: &Dirs, scratch: &Path) -> Result<Row> {
    let (one_call, chunked): (Vec<Compared>, Vec<Compared>) =
        all_cases(dirs)?.into_iter().partition(|c| c.batch == 0);
    let mut cells: Vec<(&'static str, Result<f32, String>)> = Vec::new();
    for c in &one_call {
        cells.push((c.case.name, logits_cell(cpu, tier, launcher, scratch, c)?));
    }
    // The chunked runs share one column: the worst of them, or the first failure.
    let mut worst = Ok(0.0f32);
    for c in &chunked {
        let cell = logits_cell(cpu, tier, launcher, scratch, c)?;
        worst = worst.and_then(|w| cell.map(|v| v.max(w)));
    }
    cells.push((CHUNKED_COLUMN, worst));
    let runs = run_checks(dirs)?
        .iter()
        .map(|check| check_run(cpu, tier, launcher, check))
        .collect::<Result<Vec<_>>>()?;
    Ok(Row { tier: tier_static(tier), cpu: cpu.name.clone(), cells, runs })
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
            let bad = row.cells.iter().filter(|c| c.1.is_err()).count()
                + row.runs.iter().filter(|r| r.is_err()).count();
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
    let names: Vec<&str> =
        CASES.iter().chain(GENERATED_CASES).map(|c| c.name).chain([CHUNKED_COLUMN]).collect();
    let mut out = format!("{:<32} {:<10}", "tier", "cpu");
    for name in &names {
        out += &format!(" {name:>w$}", w = name.len().max(8));
    }
    for name in RUN_CHECKS {
        out += &format!(" {name:>w$}", w = name.len());
    }
    out += "\n";
    for r in rows {
        out += &format!("{:<32} {:<10}", r.tier, short(&r.cpu));
        for ((_, cell), name) in r.cells.iter().zip(&names) {
            let w = name.len().max(8);
            out += &match cell {
                Ok(v) => format!(" {v:>w$.1e}"),
                Err(_) => format!(" {:>w$}", "FAIL"),
            };
        }
        for (run, name) in r.runs.iter().zip(RUN_CHECKS) {
            out += &format!(" {:>w$}", if run.is_ok() { "ok" } else { "FAIL" }, w = name.len());
        }
        out += "\n";
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

/// Each IME tier and the vector tier it extends: the same compiler flags and kernels, plus the
/// IME prompt tiles, which are bit-identical to the panel kernels they replace.
pub const IME_TWINS: [(&str, &str); 2] =
    [("spacemit_ime", "rv64gcv_zvfh"), ("spacemit_ime_rva23", "rv64gcv_zvfh_zfa_zicond_zicbop")];

/// Every fixture's logits at each IME tier against its twin's at the same VLEN, byte for byte
/// (the `.npy` files [`run_all`] left in `scratch`): (name, identical, detail).
pub fn ime_twins_identical(scratch: &Path) -> Result<Vec<(String, bool, String)>> {
    let mut out = Vec::new();
    for (ime, twin) in IME_TWINS {
        let prefix = format!("{ime}-");
        let mut files: Vec<String> = std::fs::read_dir(scratch)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix) && n.ends_with(".npy"))
            .collect();
        files.sort();
        let mut differ = Vec::new();
        for f in &files {
            let other = format!("{twin}-{}", &f[prefix.len()..]);
            let (a, b) = (std::fs::read(scratch.join(f))?, std::fs::read(scratch.join(&other)));
            if b.ok().as_ref() != Some(&a) {
                differ.push(other);
            }
        }
        let ok = !files.is_empty() && differ.is_empty();
        let detail = if files.is_empty() { "no logits found".into() } else { format!("differ: {differ:?}") };
        out.push((format!("{ime} logits equal {twin}'s bit for bit ({} fixtures)", files.len()), ok, detail));
    }
    Ok(out)
}
