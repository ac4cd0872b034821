//! `cargo xtask test-qemu`: runs the packaged launcher on every CPU of ci/qemu-matrix.toml (and
//! each tier's own qemu CPU), checks the selected tier, selftests, and refusals; prints CPU × tier.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hartlm_variants::{Arch, Tier, tier};

const RUN_TIMEOUT: Duration = Duration::from_secs(300);
const RISCV_SYSROOT: &str = "/usr/riscv64-linux-gnu";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    schema: u32,
    cpu: Vec<CpuEntry>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuEntry {
    pub name: String,
    pub arch: String,
    #[serde(default)]
    pub qemu_cpu: Option<String>,
    /// Run natively under Intel SDE as this chip (`icx` → `sde64 -icx --`), for what qemu
    /// cannot emulate (AVX-512).
    #[serde(default)]
    pub sde_cpu: Option<String>,
    pub expect: String,
    #[serde(default)]
    pub expect_vlen: Option<u32>,
    #[serde(default)]
    pub assume: Vec<String>,
    #[serde(default)]
    pub refuse: Vec<Refusal>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub tier: String,
    pub missing: Vec<String>,
}

impl CpuEntry {
    pub fn arch(&self) -> Result<Arch> {
        Arch::from_name(&self.arch)
            .with_context(|| format!("cpu {}: unknown arch {:?}", self.name, self.arch))
    }
}

/// The matrix file plus one entry per tier that names its own qemu CPU (unless an identical
/// CPU is already listed), validated against the tier table.
pub fn load_matrix(text: &str) -> Result<Vec<CpuEntry>> {
    let file: MatrixFile = toml::from_str(text).context("ci/qemu-matrix.toml")?;
    if file.schema != 1 {
        bail!("ci/qemu-matrix.toml: schema {} is not 1", file.schema);
    }
    let mut entries = file.cpu;
    for t in tier::tiers() {
        let Some(cpu) = t.qemu_cpu else { continue };
        let assume: Vec<String> = t.qemu_assume.iter().map(|s| s.to_string()).collect();
        let listed = entries.iter().any(|e| e.qemu_cpu.as_deref() == Some(cpu) && e.assume == assume);
        if !listed {
            entries.push(CpuEntry {
                name: format!("tier:{}", t.id),
                arch: t.arch.name().into(),
                qemu_cpu: Some(cpu.into()),
                expect: t.id.0.into(),
                assume,
                ..CpuEntry::default()
            });
        }
    }
    for e in &entries {
        let arch = e.arch()?;
        let known = |id: &str| tier::find(id).is_some_and(|t| t.arch == arch);
        if e.expect != "host" && !known(&e.expect) {
            bail!("cpu {}: expected tier {:?} is not a {} tier", e.name, e.expect, e.arch);
        }
        if let Some(r) = e.refuse.iter().find(|r| !known(&r.tier)) {
            bail!("cpu {}: refuse names unknown tier {:?}", e.name, r.tier);
        }
        if e.sde_cpu.is_some() && (arch != Arch::X86_64 || e.qemu_cpu.is_some() || e.expect == "host") {
            bail!("cpu {}: sde_cpu needs arch x86_64, no qemu_cpu and an expected tier", e.name);
        }
    }
    Ok(entries)
}

/// The CPU's `model name` in /proc/cpuinfo text (benchmark tables name it).
pub fn cpu_model(cpuinfo: &str) -> &str {
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim()))
        .unwrap_or("unknown CPU")
}

/// The best x86-64 tier the host's /proc/cpuinfo flags allow: an expectation computed without
/// the launcher's own CPUID code.
pub fn host_x86_tier(cpuinfo: &str) -> Option<&'static str> {
    let flags: BTreeSet<&str> = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags").and_then(|r| r.split_once(':')).map(|(_, v)| v))?
        .split_whitespace()
        .collect();
    tier::for_arch(Arch::X86_64)
        .into_iter()
        .find(|t| t.requires.iter().all(|f| flags.contains(linux_name(f))))
        .map(|t| t.id.0)
}

/// The name Linux's cpuinfo `flags` line uses for a probe feature name.
fn linux_name(f: &str) -> &str {
    match f {
        "sse3" => "pni",
        "sse4.1" => "sse4_1",
        "sse4.2" => "sse4_2",
        "cmpxchg16b" => "cx16",
        "lahfsahf" => "lahf_lm",
        "lzcnt" => "abm",
        other => other,
    }
}

/// One process run under qemu (or natively).
#[derive(Debug, Default)]
pub struct RunOut {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl RunOut {
    pub fn describe(&self) -> String {
        match (self.timed_out, self.signal, self.code) {
            (true, _, _) => "timed out".into(),
            (_, Some(4), _) => "SIGILL".into(),
            (_, Some(s), _) => format!("signal {s}"),
            (_, _, Some(c)) => format!("exit {c}"),
            _ => "no status".into(),
        }
    }
}

/// How one (CPU, tier) cell turned out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Auto-selected; selftest passed.
    Selected,
    /// Forced and eligible; selftest passed.
    Ran,
    /// Forced, not eligible, refused with exit 2.
    Refused,
    Fail(String),
}

impl Cell {
    fn label(&self) -> String {
        match self {
            Cell::Selected => "SELECTED ok".into(),
            Cell::Ran => "ok".into(),
            Cell::Refused => "refused".into(),
            Cell::Fail(why) => format!("FAIL: {why}"),
        }
    }
}

pub struct Row {
    pub cpu: CpuEntry,
    pub vlen: Option<u32>,
    pub cells: Vec<(&'static str, Cell)>,
    pub failures: Vec<String>,
}

/// The unpacked release of one architecture.
pub struct Unpacked {
    pub arch: Arch,
    pub launcher: PathBuf,
}

pub fn unpack(tarball: &Path, into: &Path, arch: Arch) -> Result<Unpacked> {
    if into.exists() {
        std::fs::remove_dir_all(into).with_context(|| format!("removing {}", into.display()))?;
    }
    std::fs::create_dir_all(into)?;
    let file = std::fs::File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(into)
        .with_context(|| format!("unpacking {}", tarball.display()))?;
    // The archive holds one top directory, `hartlm-<version>-<triple>`.
    let tops: Vec<PathBuf> = std::fs::read_dir(into)?.flatten().map(|e| e.path()).collect();
    let [root] = tops.as_slice() else {
        bail!("{} holds {} top-level entries, not one directory", tarball.display(), tops.len());
    };
    Ok(Unpacked { arch, launcher: root.join("bin").join("hartlm") })
}

/// Our patched qemu-riscv64 (`qemu_build`), set once by test-qemu before any IME CPU runs.
static PATCHED_QEMU: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Whether a qemu `-cpu` string needs our patched qemu (stock qemu has no IME properties).
pub fn needs_patched_qemu(qemu_cpu: &str) -> bool {
    qemu_cpu.split(',').any(|p| p.starts_with("xsmtvdot"))
}

/// Makes [`run_guest`] run IME CPUs on `qemu`.
pub fn use_patched_qemu(qemu: PathBuf) {
    let _ = PATCHED_QEMU.set(qemu);
}

static SDE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Records the `sde64` that runs the matrix's `sde_cpu` rows (test-qemu fetches it: `sde`).
pub fn use_sde(sde64: PathBuf) {
    let _ = SDE.set(sde64);
}

fn riscv_qemu(qemu_cpu: &str) -> Result<PathBuf> {
    if !needs_patched_qemu(qemu_cpu) {
        return Ok(PathBuf::from("qemu-riscv64"));
    }
    PATCHED_QEMU.get().cloned().with_context(|| {
        format!("-cpu {qemu_cpu} needs hartlm's patched qemu; test-qemu builds it (qemu_build)")
    })
}

pub fn run_guest(cpu: &CpuEntry, launcher: &Path, args: &[&str], forced: Option<&str>) -> Result<RunOut> {
    run_guest_env(cpu, launcher, args, forced, &[])
}

/// [`run_guest`] with extra environment variables for the launcher (every other HARTLM_*
/// variable of the caller's environment is removed).
pub fn run_guest_env(
    cpu: &CpuEntry,
    launcher: &Path,
    args: &[&str],
    forced: Option<&str>,
    env: &[(&str, &str)],
) -> Result<RunOut> {
    run_guest_timed(cpu, launcher, args, forced, env, RUN_TIMEOUT)
}

/// The command that runs `launcher` on `cpu` (under qemu unless it is this host), with every
/// HARTLM_* variable of the caller's environment removed and the tier `forced` if given.
pub fn guest_command(cpu: &CpuEntry, launcher: &Path, forced: Option<&str>) -> Result<Command> {
    let mut cmd = match (cpu.arch()?, &cpu.qemu_cpu, &cpu.sde_cpu) {
        (Arch::X86_64, None, Some(chip)) => {
            let sde = SDE
                .get()
                .with_context(|| format!("cpu {} runs under Intel SDE; test-qemu fetches it", cpu.name))?;
            let mut k = Command::new(sde);
            k.args(crate::sde::prefix_args(chip)).arg(launcher);
            k
        }
        (_, _, Some(_)) => bail!("cpu {}: sde_cpu needs arch x86_64 and no qemu_cpu", cpu.name),
        (Arch::Riscv64, Some(c), None) => {
            let mut k = Command::new(riscv_qemu(c)?);
            k.args(["-L", RISCV_SYSROOT, "-cpu", c]).arg(launcher);
            k
        }
        (Arch::X86_64, Some(c), None) => {
            let mut k = Command::new("qemu-x86_64");
            k.args(["-cpu", c]).arg(launcher);
            k
        }
        (Arch::Riscv64, None, None) => bail!("cpu {}: riscv64 needs a qemu_cpu", cpu.name),
        (Arch::X86_64, None, None) => Command::new(launcher),
    };
    for v in [
        "HARTLM_TIER",
        "HARTLM_ASSUME_FEATURES",
        "HARTLM_LIB_DIR",
        "HARTLM_CORES",
        "HARTLM_CLUSTER",
        "HARTLM_SYSROOT",
    ] {
        cmd.env_remove(v);
    }
    if let Some(t) = forced {
        cmd.env("HARTLM_TIER", t);
    }
    if !cpu.assume.is_empty() {
        cmd.env("HARTLM_ASSUME_FEATURES", cpu.assume.join(","));
    }
    Ok(cmd)
}

/// [`run_guest_env`], killed (and reported as timed out) after `timeout`.
pub fn run_guest_timed(
    cpu: &CpuEntry,
    launcher: &Path,
    args: &[&str],
    forced: Option<&str>,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<RunOut> {
    let mut cmd = guest_command(cpu, launcher, forced)?;
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut result = RunOut::default();
    loop {
        if let Some(status) = child.try_wait()? {
            use std::os::unix::process::ExitStatusExt;
            result.code = status.code();
            result.signal = status.signal();
            break;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            result.timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    result.stdout = out_t.join().unwrap_or_default();
    result.stderr = err_t.join().unwrap_or_default();
    Ok(result)
}

#[derive(Deserialize)]
struct CpuJson {
    selected: Option<String>,
    vlen: Option<u32>,
    tiers: Vec<CpuJsonTier>,
}

#[derive(Deserialize)]
struct CpuJsonTier {
    id: String,
    status: String,
    missing: Vec<String>,
}

/// Checks a selftest run: exit 0, and the tier it reports is the one expected.
fn selftest_cell(out: &RunOut, tier: &str, ok: Cell) -> Cell {
    if out.code != Some(0) {
        return Cell::Fail(format!(
            "selftest {}: {}",
            out.describe(),
            out.stderr.lines().last().unwrap_or("")
        ));
    }
    if !out.stdout.contains(&format!("tier {tier} ")) || !out.stdout.contains("selftest passed") {
        return Cell::Fail(format!("selftest did not report tier {tier}"));
    }
    ok
}

/// Checks a refusal: exit 2 (not a signal) with every missing feature named on stderr.
fn refusal_cell(out: &RunOut, missing: &[String]) -> Cell {
    if out.code != Some(2) {
        return Cell::Fail(format!("expected refusal (exit 2), got {}", out.describe()));
    }
    let unnamed: Vec<&String> = missing.iter().filter(|m| !out.stderr.contains(m.as_str())).collect();
    if !unnamed.is_empty() {
        return Cell::Fail(format!("refusal does not name {unnamed:?}"));
    }
    Cell::Refused
}

fn test_cpu(cpu: &CpuEntry, launcher: &Path, host_expect: Option<&str>) -> Result<Row> {
    let arch = cpu.arch()?;
    let expect = if cpu.expect == "host" {
        let expect = host_expect.context("cannot determine the host's expected tier from /proc/cpuinfo")?;
        if expect != "x86-64-v4" {
            // qemu 10.0's TCG has no AVX-512 (it drops avx512* from every -cpu model and raises
            // SIGILL on EVEX code), so only a host with AVX-512 runs the v4 tier natively.
            let why = format!(
                "x86-64-v4 was not run natively: this host's best tier is {expect}, and qemu cannot \
                 emulate AVX-512 (the x86-64-v4-sde row runs it under Intel SDE)"
            );
            if std::env::var_os("GITHUB_ACTIONS").is_some() {
                println!("::warning title=x86-64-v4 not run natively::{why}");
            }
            eprintln!("test-qemu: {why}");
        }
        expect.to_string()
    } else {
        cpu.expect.clone()
    };
    let mut failures = Vec::new();
    let json_run = run_guest(cpu, launcher, &["cpu", "--json"], None)?;
    if json_run.code != Some(0) {
        bail!("cpu {}: `hartlm cpu --json` failed: {} {}", cpu.name, json_run.describe(), json_run.stderr);
    }
    let report: CpuJson = serde_json::from_str(&json_run.stdout)
        .with_context(|| format!("cpu {}: unreadable `hartlm cpu --json`", cpu.name))?;
    if report.selected.as_deref() != Some(expect.as_str()) {
        failures.push(format!("selected {:?}, expected {expect}", report.selected));
    }
    if let Some(v) = cpu.expect_vlen
        && report.vlen != Some(v)
    {
        failures.push(format!("VLEN {:?}, expected {v}", report.vlen));
    }
    let mut cells = Vec::new();
    for t in tier::for_arch(arch) {
        let id = t.id.0;
        let Some(status) = report.tiers.iter().find(|r| r.id == id) else {
            failures.push(format!("tier {id} missing from `hartlm cpu --json`"));
            continue;
        };
        let cell = if Some(id) == report.selected.as_deref() {
            selftest_cell(&run_guest(cpu, launcher, &["selftest"], None)?, id, Cell::Selected)
        } else if status.status == "eligible" {
            selftest_cell(&run_guest(cpu, launcher, &["selftest"], Some(id))?, id, Cell::Ran)
        } else {
            refusal_cell(&run_guest(cpu, launcher, &["selftest"], Some(id))?, &status.missing)
        };
        if let Some(r) = cpu.refuse.iter().find(|r| r.tier == id) {
            let got: BTreeSet<&str> = status.missing.iter().map(String::as_str).collect();
            let want: BTreeSet<&str> = r.missing.iter().map(String::as_str).collect();
            if cell != Cell::Refused || got != want {
                failures.push(format!(
                    "tier {id}: expected refusal naming {want:?}, got {cell:?} naming {got:?}"
                ));
            }
        }
        if let Cell::Fail(why) = &cell {
            failures.push(format!("tier {id}: {why}"));
        }
        cells.push((id, cell));
    }
    Ok(Row { cpu: cpu.clone(), vlen: report.vlen, cells, failures })
}

/// Runs every CPU entry of the given architectures, two at a time (one per core).
pub fn run_matrix(
    entries: &[CpuEntry],
    launchers: &[Unpacked],
    host_expect: Option<&str>,
) -> Result<Vec<Row>> {
    let jobs: Vec<(usize, &CpuEntry, &Path)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let arch = e.arch().ok()?;
            launchers.iter().find(|u| u.arch == arch).map(|u| (i, e, u.launcher.as_path()))
        })
        .collect();
    parallel_map(&jobs, 2, |&(_, cpu, launcher)| {
        let t0 = Instant::now();
        let row = test_cpu(cpu, launcher, host_expect);
        let verdict = match &row {
            Ok(r) if r.failures.is_empty() => "ok".to_string(),
            Ok(r) => format!("{} failure(s)", r.failures.len()),
            Err(e) => format!("error: {e:#}"),
        };
        eprintln!("  {:<24} {verdict} ({:.1}s)", cpu.name, t0.elapsed().as_secs_f64());
        row
    })
    .into_iter()
    .collect()
}

/// Runs `f` on every job with `workers` threads (one per core suits qemu); results keep job order.
pub fn parallel_map<J: Sync, R: Send>(jobs: &[J], workers: usize, f: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { break };
                    let r = f(job);
                    results.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The CPU × tier table, one block per architecture.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    for arch in [Arch::Riscv64, Arch::X86_64] {
        let rows: Vec<&Row> = rows.iter().filter(|r| r.cpu.arch().ok() == Some(arch)).collect();
        if rows.is_empty() {
            continue;
        }
        let tiers: Vec<&Tier> = tier::for_arch(arch);
        let name_w = rows.iter().map(|r| r.cpu.name.len()).max().unwrap_or(4).max(4);
        let col_w = |t: &Tier| t.id.0.len().max(11);
        out += &format!("{:name_w$}  {:>5}", "cpu", "vlen");
        for t in &tiers {
            out += &format!("  {:w$}", t.id.0, w = col_w(t));
        }
        out += "\n";
        for r in rows {
            let vlen = r.vlen.map_or("-".to_string(), |v| v.to_string());
            out += &format!("{:name_w$}  {vlen:>5}", r.cpu.name);
            for t in &tiers {
                let label = r.cells.iter().find(|c| c.0 == t.id.0).map_or("?".to_string(), |c| c.1.label());
                out += &format!("  {label:w$}", w = col_w(t));
            }
            out += "\n";
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_file_parses_and_covers_the_required_cpus() {
        let text = include_str!("../../ci/qemu-matrix.toml");
        let m = load_matrix(text).unwrap();
        let names: Vec<&str> = m.iter().map(|e| e.name.as_str()).collect();
        for n in [
            "sifive-u54",
            "rv64gc-exact",
            "k1-like",
            "k1-ime",
            "k3-x100-like",
            "k3-x100-ime",
            "k3-a100",
            "rva23u64",
            "tt-ascalon",
            "max",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        let vlens: BTreeSet<u32> = m.iter().filter_map(|e| e.expect_vlen).collect();
        assert!([128, 256, 512, 1024].iter().all(|v| vlens.contains(v)));
        // Plain `-cpu rv64` enables extensions beyond rv64gc; the matrix must never use it.
        assert!(m.iter().all(|e| e.qemu_cpu.as_deref() != Some("rv64")));
        // Every tier is the expected choice of at least one CPU.
        for t in tier::tiers().iter().filter(|t| t.qemu_cpu.is_some()) {
            assert!(m.iter().any(|e| e.expect == t.id.0), "{} never expected", t.id);
        }
        // qemu cannot run x86-64-v4, so one row runs it under SDE whatever the host has.
        assert!(m.iter().any(|e| e.sde_cpu.is_some() && e.expect == "x86-64-v4"));
    }

    #[test]
    fn sde_rows_run_the_launcher_under_sde64() {
        let m = load_matrix(include_str!("../../ci/qemu-matrix.toml")).unwrap();
        let row = m.iter().find(|e| e.sde_cpu.is_some()).unwrap();
        use_sde(PathBuf::from("/opt/sde/sde64"));
        let cmd = guest_command(row, Path::new("/x/bin/hartlm"), Some("x86-64-v3")).unwrap();
        assert_eq!(cmd.get_program(), "/opt/sde/sde64");
        let args: Vec<&std::ffi::OsStr> = cmd.get_args().collect();
        assert_eq!(args, ["-icx", "--", "/x/bin/hartlm"]);
        assert!(cmd.get_envs().any(|(k, v)| k == "HARTLM_TIER" && v == Some("x86-64-v3".as_ref())));
    }

    #[test]
    fn sde_rows_must_be_x86_with_an_expected_tier() {
        let row = |arch: &str, extra: &str| {
            format!("schema = 1\n[[cpu]]\nname = \"x\"\narch = \"{arch}\"\nsde_cpu = \"icx\"\n{extra}\n")
        };
        for bad in [
            row("riscv64", "expect = \"rv64gc\"\nqemu_cpu = \"max\""),
            row("x86_64", "expect = \"host\""),
            row("x86_64", "expect = \"x86-64-v4\"\nqemu_cpu = \"max\""),
        ] {
            assert!(load_matrix(&bad).unwrap_err().to_string().contains("sde_cpu"), "{bad}");
        }
        assert!(load_matrix(&row("x86_64", "expect = \"x86-64-v4\"")).is_ok());
    }

    #[test]
    fn matrix_rejects_unknown_tiers() {
        let bad = "schema = 1\n[[cpu]]\nname = \"x\"\narch = \"riscv64\"\nqemu_cpu = \"max\"\nexpect = \"rv64gcx\"\n";
        assert!(load_matrix(bad).unwrap_err().to_string().contains("rv64gcx"));
    }

    #[test]
    fn host_tier_from_linux_flags() {
        let v3 = "flags\t\t: fpu pni ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt avx f16c lahf_lm abm bmi1 avx2 bmi2\n";
        assert_eq!(host_x86_tier(v3), Some("x86-64-v3"));
        let v4 = format!("{} avx512f avx512dq avx512cd avx512bw avx512vl", v3.trim_end());
        assert_eq!(host_x86_tier(&v4), Some("x86-64-v4"));
        assert_eq!(host_x86_tier("flags : fpu sse2\n"), Some("x86-64"));
    }

    #[test]
    fn refusal_must_be_exit_2_naming_features() {
        let out = RunOut { code: Some(2), stderr: "missing zfa, zicond".into(), ..Default::default() };
        assert_eq!(refusal_cell(&out, &["zfa".into(), "zicond".into()]), Cell::Refused);
        assert!(matches!(refusal_cell(&out, &["zicbop".into()]), Cell::Fail(_)));
        let sigill = RunOut { signal: Some(4), ..Default::default() };
        assert_eq!(refusal_cell(&sigill, &[]), Cell::Fail("expected refusal (exit 2), got SIGILL".into()));
    }
}
