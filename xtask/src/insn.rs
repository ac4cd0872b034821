//! `cargo xtask bench-insn`: exact dynamic instruction counts of the riscv64 tiers under a
//! plugin-enabled qemu-riscv64 (built once from Debian's qemu source) with our counting plugin.
//!
//! `hartlm bench --no-warmup -r 1 -t 1` brackets each timed test with clock_gettime; the plugin
//! starts a new segment at each such syscall, so segment 1 is the prompt test and segment 3 the
//! generation test, with loading and printing outside. Counts are attributed to the engine
//! library's symbols (its load address comes from HARTLM_VERBOSE=1); the rest is libc/libm.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use xshell::{Shell, cmd};

use hartlm_variants::Arch;
use hartlm_variants::tier::{self, Tier};

use crate::prereq::{self, Needs};
use crate::qemu_build;
use crate::workspace::Workspace;

const CLOCK_GETTIME: u32 = 113;
const CLOCK_MONOTONIC: u32 = 1;
pub const VLENS: [u32; 4] = [128, 256, 512, 1024];
/// The riscv64 tiers our qemu runs exactly (`qemu_assume` empty; the IME tiers run on its
/// xsmtvdot property), lowest rank first.
pub fn counted_tiers() -> Vec<&'static Tier> {
    tier::for_arch(Arch::Riscv64).into_iter().rev().filter(|t| t.qemu_assume.is_empty()).collect()
}

/// The VLENs a tier is counted at: its matrix kernels' (IME tiles exist at one VLEN), else
/// every VLEN for vector tiers, none for the scalar tier.
fn vlens_of(t: &Tier) -> Vec<Option<u32>> {
    if !t.matrix_vlen.is_empty() {
        t.matrix_vlen.iter().map(|&v| Some(v)).collect()
    } else if t.requires.contains(&"v") {
        VLENS.iter().map(|&v| Some(v)).collect()
    } else {
        vec![None]
    }
}

pub struct PluginQemu {
    pub qemu: PathBuf,
    pub plugin: PathBuf,
}

/// Our patched qemu (`qemu_build`, built once) and the counting plugin, compiled every time:
/// it takes a second and follows source edits.
pub fn ensure_qemu(sh: &Shell, root: &Path, target_dir: &Path) -> Result<PluginQemu> {
    let built = qemu_build::ensure(sh, root)?;
    let plugin = target_dir.join("qemu-hartlm/insn_count.so");
    let source = root.join("xtask/plugin/insn_count.c");
    let include = built.source.join("include/qemu");
    let glib_cflags = cmd!(sh, "pkg-config --cflags glib-2.0").read()?;
    let glib_libs = cmd!(sh, "pkg-config --libs glib-2.0").read()?;
    let (cflags, libs): (Vec<&str>, Vec<&str>) =
        (glib_cflags.split_whitespace().collect(), glib_libs.split_whitespace().collect());
    cmd!(sh, "gcc -O2 -shared -fPIC -Wall -Wextra -Werror -Wno-unused-parameter -I{include} {cflags...} -o {plugin} {source} {libs...}")
        .run()
        .context("compiling the counting plugin")?;
    Ok(PluginQemu { qemu: built.qemu, plugin })
}

/// One counted run: a model at one tier on one qemu CPU.
#[derive(Clone, Debug)]
pub struct Job {
    pub model: String,
    pub path: PathBuf,
    pub extra: Vec<String>,
    pub n_prompt: usize,
    pub n_gen: usize,
    pub tier: &'static Tier,
    pub vlen: Option<u32>,
}

/// The qemu `-cpu` string of `tier` with VLEN set to `vlen` (vector tiers only).
pub fn cpu_for(tier: &Tier, vlen: Option<u32>) -> Result<String> {
    let base = tier.qemu_cpu.with_context(|| format!("tier {} has no qemu_cpu", tier.id))?;
    Ok(match vlen {
        None => base.to_string(),
        Some(v) => {
            let parts: Vec<String> = base
                .split(',')
                .filter(|p| !p.starts_with("vlen="))
                .map(str::to_string)
                .chain([format!("vlen={v}")])
                .collect();
            parts.join(",")
        }
    })
}

/// Every (tier, VLEN) pair counted: the scalar tier once, each vector tier at every VLEN.
pub fn tier_vlens() -> Result<Vec<(&'static Tier, Option<u32>)>> {
    let mut out = Vec::new();
    for t in counted_tiers() {
        out.extend(vlens_of(t).into_iter().map(|v| (t, v)));
    }
    Ok(out)
}

/// Symbol table of a library: (start, end, name without the Rust hash), sorted by start.
pub fn parse_nm(text: &str) -> Vec<(u64, u64, String)> {
    let mut syms: Vec<(u64, u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            let (addr, size, kind, name) = (it.next()?, it.next()?, it.next()?, it.next()?);
            if !matches!(kind, "t" | "T") {
                return None;
            }
            let start = u64::from_str_radix(addr, 16).ok()?;
            let size = u64::from_str_radix(size, 16).ok()?;
            let name = match name.rsplit_once("::h") {
                Some((n, h)) if h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()) => n,
                _ => name,
            };
            Some((start, start + size.max(1), name.to_string()))
        })
        .collect();
    syms.sort();
    syms
}

pub const OUTSIDE: &str = "(libc, libm, loader)";

/// Instructions per symbol in each segment of a profile (`<segment> <hex addr> <count>` lines)
/// of a library loaded at `base`.
pub fn attribute(
    profile: &str,
    base: u64,
    syms: &[(u64, u64, String)],
) -> Result<Vec<BTreeMap<String, u64>>> {
    let mut segments: Vec<BTreeMap<String, u64>> = Vec::new();
    for (n, line) in profile.lines().enumerate() {
        let parse = || -> Option<(usize, u64, u64)> {
            let mut it = line.split(' ');
            Some((
                it.next()?.parse().ok()?,
                u64::from_str_radix(it.next()?, 16).ok()?,
                it.next()?.parse().ok()?,
            ))
        };
        let (seg, addr, count) = parse().with_context(|| format!("profile line {}: {line:?}", n + 1))?;
        if segments.len() <= seg {
            segments.resize(seg + 1, BTreeMap::new());
        }
        let name = addr
            .checked_sub(base)
            .and_then(|off| {
                let i = syms.partition_point(|s| s.0 <= off).checked_sub(1)?;
                (off < syms[i].1).then_some(syms[i].2.as_str())
            })
            .unwrap_or(OUTSIDE);
        *segments[seg].entry(name.to_string()).or_default() += count;
    }
    Ok(segments)
}

/// The load address from the launcher's HARTLM_VERBOSE line.
pub fn parse_base(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.starts_with("hartlm: tier ") && l.contains(" loaded at 0x"))?;
    u64::from_str_radix(line.rsplit_once("0x")?.1.trim(), 16).ok()
}

/// Counted instructions of one job.
#[derive(Clone, Debug)]
pub struct Counted {
    pub prompt: BTreeMap<String, u64>,
    pub generation: BTreeMap<String, u64>,
}

impl Counted {
    pub fn per_prompt_token(&self, n: usize) -> u64 {
        self.prompt.values().sum::<u64>() / n.max(1) as u64
    }
    pub fn per_gen_token(&self, n: usize) -> u64 {
        self.generation.values().sum::<u64>() / n.max(1) as u64
    }
}

/// What every counted run needs: the plugin qemu, the unpacked release and a scratch directory.
pub struct Counter {
    pub qemu: PluginQemu,
    pub launcher: PathBuf,
    pub lib_dir: PathBuf,
    pub scratch: PathBuf,
}

/// `-` for the scalar tier, the VLEN in bits otherwise.
pub fn vlen_label(vlen: Option<u32>) -> String {
    vlen.map_or("-".to_string(), |v| v.to_string())
}

impl Counter {
    /// Counts every job, two at a time, printing progress as `label(job)` finishes.
    pub fn all<J: Sync, T: Send>(
        &self,
        jobs: &[J],
        label: impl Fn(&J) -> String + Sync,
        count: impl Fn(&Counter, &J) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let t0 = std::time::Instant::now();
        crate::qemu::parallel_map(jobs, 2, |j| {
            let r = count(self, j);
            eprintln!("bench-insn: {} counted ({:.0}s)", label(j), t0.elapsed().as_secs_f64());
            r
        })
        .into_iter()
        .collect()
    }
}

pub fn run_job(c: &Counter, job: &Job) -> Result<Counted> {
    let (p, n) = (job.n_prompt.to_string(), job.n_gen.to_string());
    let mut args: Vec<OsString> = vec!["bench".into(), "-m".into(), job.path.clone().into()];
    args.extend(["-p", &p, "-n", &n, "-r", "1", "-t", "1", "--no-warmup"].map(OsString::from));
    args.extend(job.extra.iter().map(OsString::from));
    let run = Run { label: &job.model, tier: job.tier, vlen: job.vlen, args };
    let mut segs = count(c, &run)?;
    // Segments: 0 load, 1 prompt test, 2 between, 3 generation test, 4 exit.
    if segs.len() != 5 {
        bail!("expected 4 clock markers around the two tests, found {}", segs.len().saturating_sub(1));
    }
    Ok(Counted { generation: std::mem::take(&mut segs[3]), prompt: std::mem::take(&mut segs[1]) })
}

/// One launcher command line counted at one tier and VLEN.
struct Run<'a> {
    label: &'a str,
    tier: &'static Tier,
    vlen: Option<u32>,
    args: Vec<OsString>,
}

/// Runs `run` under the plugin qemu and returns its counts per segment and symbol.
fn count(c: &Counter, run: &Run) -> Result<Vec<BTreeMap<String, u64>>> {
    let cpu = cpu_for(run.tier, run.vlen)?;
    let vlen = vlen_label(run.vlen);
    let profile = c.scratch.join(format!("{}-{}-{vlen}.txt", run.label, run.tier.id));
    let plugin = format!(
        "{},out={},marker={CLOCK_GETTIME},marker_arg={CLOCK_MONOTONIC}",
        c.qemu.plugin.display(),
        profile.display()
    );
    let out = Command::new(&c.qemu.qemu)
        .args(["-L", "/usr/riscv64-linux-gnu", "-cpu", &cpu, "-plugin", &plugin])
        .arg(&c.launcher)
        .args(&run.args)
        .env("HARTLM_TIER", run.tier.id.0)
        .env("HARTLM_VERBOSE", "1")
        .env("HARTLM_LIB_DIR", &c.lib_dir)
        .env_remove("HARTLM_ASSUME_FEATURES")
        .output()
        .context("starting the plugin qemu")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{} at {} VLEN {vlen}: {}\n{stderr}", run.label, run.tier.id, out.status);
    }
    let base = parse_base(&stderr).context("the launcher did not report the library's load address")?;
    let lib = c.lib_dir.join(run.tier.library_file());
    let nm = Command::new("riscv64-linux-gnu-nm")
        .args(["-C", "--defined-only", "-S"])
        .arg(&lib)
        .output()
        .context("running riscv64-linux-gnu-nm")?;
    let syms = parse_nm(&String::from_utf8_lossy(&nm.stdout));
    let text = std::fs::read_to_string(&profile).with_context(|| format!("reading {}", profile.display()))?;
    attribute(&text, base, &syms)
}

/// Every instruction one program run executes under the plugin qemu on `cpu` (one segment:
/// no markers), for programs whose timed regions we do not mark, such as llama-bench. The
/// `label` names the profile file in the scratch directory.
pub fn count_run(
    c: &Counter,
    label: &str,
    cpu: &str,
    program: &Path,
    args: &[OsString],
    env: &[(&str, OsString)],
) -> Result<u64> {
    let profile = c.scratch.join(format!("{label}.txt"));
    let plugin = format!("{},out={}", c.qemu.plugin.display(), profile.display());
    let out = Command::new(&c.qemu.qemu)
        .args(["-L", "/usr/riscv64-linux-gnu", "-cpu", cpu, "-plugin", &plugin])
        .arg(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("HARTLM_ASSUME_FEATURES")
        .output()
        .context("starting the plugin qemu")?;
    if !out.status.success() {
        bail!("{label}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(&profile).with_context(|| format!("reading {}", profile.display()))?;
    let total = text
        .lines()
        .map(|l| l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()))
        .sum::<Option<u64>>()
        .with_context(|| format!("{}: a line without a count", profile.display()))?;
    std::fs::remove_file(&profile)?;
    Ok(total)
}

/// One kernel-level count: `hartlm bench-kernel ssm-conv` with one call.
#[derive(Clone, Debug)]
pub struct KernelJob {
    pub tokens: usize,
    /// `tier` (the tier's kernel) or `ggml` (upstream's channel-major scalar loop).
    pub which: &'static str,
    pub tier: &'static Tier,
    pub vlen: Option<u32>,
}

/// LFM2-700M's short convolution: channels and taps of the kernel-level count.
pub const CONV_CHANNELS: usize = 1536;
pub const CONV_TAPS: usize = 4;
pub const CONV_TOKENS: [usize; 4] = [4, 16, 64, 512];
/// The gem5 study's best RVV ssm_conv relative to scalar (slower: > 1) at the same T.
const GEM5_RATIOS: [(usize, f64); 4] = [(4, 1.22), (16, 2.31), (64, 2.85), (512, 5.46)];

/// Every kernel-level count: upstream's loop and our kernel at the scalar tier, our kernel at
/// rv64gcv at every VLEN, for each prompt length.
pub fn kernel_jobs() -> Result<Vec<KernelJob>> {
    let find = |id: &str| tier::find(id).with_context(|| format!("tier {id} missing from tiers.toml"));
    let (gc, gcv) = (find("rv64gc")?, find("rv64gcv")?);
    let mut out = Vec::new();
    for tokens in CONV_TOKENS {
        out.push(KernelJob { tokens, which: "ggml", tier: gc, vlen: None });
        out.push(KernelJob { tokens, which: "tier", tier: gc, vlen: None });
        out.extend(VLENS.iter().map(|&v| KernelJob { tokens, which: "tier", tier: gcv, vlen: Some(v) }));
    }
    Ok(out)
}

/// Instructions of the one timed kernel call of `job`.
pub fn run_kernel_job(c: &Counter, job: &KernelJob) -> Result<u64> {
    let (ch, k, t) = (CONV_CHANNELS.to_string(), CONV_TAPS.to_string(), job.tokens.to_string());
    let args = ["bench-kernel", "ssm-conv", "-c", &ch, "-k", &k, "-T", &t, "-r", "1", "--impl", job.which];
    let label = format!("ssm_conv-{}-T{}", job.which, job.tokens);
    one_timed_call(
        c,
        &Run { label: &label, tier: job.tier, vlen: job.vlen, args: args.map(OsString::from).to_vec() },
    )
}

/// Instructions of the single timed call of a `hartlm bench-kernel ... -r 1` run.
fn one_timed_call(c: &Counter, run: &Run) -> Result<u64> {
    let segs = count(c, run)?;
    // Segments: 0 setup, 1 the call, 2 printing and exit.
    if segs.len() != 3 {
        bail!("expected 2 clock markers around the kernel call, found {}", segs.len().saturating_sub(1));
    }
    Ok(segs[1].values().sum())
}

/// The ssm_conv table: instructions per call, each vector VLEN relative to the scalar tier,
/// beside the gem5 study's RVV/scalar ratios, and the target verdicts.
pub fn render_kernel(jobs: &[KernelJob], counts: &[u64]) -> String {
    let get = |t: usize, which: &str, tier: &str, vlen: Option<u32>| {
        jobs.iter()
            .zip(counts)
            .find(|(j, _)| j.tokens == t && j.which == which && j.tier.id.0 == tier && j.vlen == vlen)
            .map(|(_, &c)| c)
    };
    let mut out = format!(
        "ssm_conv, {CONV_CHANNELS} channels, {CONV_TAPS} taps: dynamic instructions of one call (exact, \
         qemu); in brackets relative to the rv64gc tier\n\n"
    );
    out += &vlen_table_head(
        "| T | upstream loop @rv64gc | rv64gc |",
        "|---:|---:|---:|",
        "gem5 study: best RVV / scalar",
    );
    let mut verdicts = Vec::new();
    for (t, gem5) in GEM5_RATIOS {
        let Some(scalar) = get(t, "tier", "rv64gc", None) else { continue };
        let rel = |c: Option<u64>| c.map_or("-".into(), |c| relative(c, scalar));
        out += &format!("| {t} | {} | {scalar} |", rel(get(t, "ggml", "rv64gc", None)));
        let vec: Vec<Option<u64>> = VLENS.iter().map(|&v| get(t, "tier", "rv64gcv", Some(v))).collect();
        for c in &vec {
            out += &format!(" {} |", rel(*c));
        }
        out += &format!(" {gem5:.2} |\n");
        if let Some(v256) = vec[1] {
            let r = v256 as f64 / scalar.max(1) as f64;
            let falling = vec.windows(2).all(|w| matches!(w, [Some(a), Some(b)] if b < a));
            verdicts.push(format!(
                "T={t}: rv64gcv@256 / rv64gc = {r:.3} (target <= 0.5: {}); falls with every VLEN step: {}",
                if r <= 0.5 { "met" } else { "MISSED" },
                if falling { "yes" } else { "NO" }
            ));
        }
    }
    out += "\nInstruction counts are a proxy, not cycles. On hardware the kernel still pays for: k \
             unit-stride loads of input rows and k of tap rows per output strip (L1 hits after the first \
             use, but k times the load bandwidth of a kernel that keeps taps and a sliding window in \
             registers); LMUL-8 groups that cores with narrower datapaths split into several beats; and \
             for long prompts (T x 1536 x 4 bytes > L1) the rows re-read by the next k - 1 outputs come \
             from L1 only because outputs are produced in time order. Upstream's loop reads each channel \
             contiguously too; the gem5 study's RVV versions lost on strided gathers (one cache line per \
             lane), which this layout never does.\n";
    out += "\ntargets\n\n";
    for v in verdicts {
        out += &format!("- {v}\n");
    }
    out
}

/// The weight types `bench-insn --kernel matvec` counts: every quantized type with a kernel.
pub const MATVEC_TYPES: [&str; 8] = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k"];
/// MiB of weights per counted matrix-vector product.
const MATVEC_MIB: &str = "1";

/// One matrix-vector product (`hartlm bench-kernel matvec`, one call) of a weight type.
#[derive(Clone, Debug)]
pub struct MatvecJob {
    pub ty: &'static str,
    pub tier: &'static Tier,
    pub vlen: Option<u32>,
}

/// Every type at the scalar tier and at rv64gcv at every VLEN.
pub fn matvec_jobs() -> Result<Vec<MatvecJob>> {
    let find = |id: &str| tier::find(id).with_context(|| format!("tier {id} missing from tiers.toml"));
    let (gc, gcv) = (find("rv64gc")?, find("rv64gcv")?);
    let mut out = Vec::new();
    for ty in MATVEC_TYPES {
        out.push(MatvecJob { ty, tier: gc, vlen: None });
        out.extend(VLENS.iter().map(|&v| MatvecJob { ty, tier: gcv, vlen: Some(v) }));
    }
    Ok(out)
}

/// Instructions of the one timed product of `job` (activation quantization included).
pub fn run_matvec_job(c: &Counter, job: &MatvecJob) -> Result<u64> {
    let args = ["bench-kernel", "matvec", "--type", job.ty, "--size-mib", MATVEC_MIB, "-t", "1", "-r", "1"];
    let label = format!("matvec-{}", job.ty);
    one_timed_call(
        c,
        &Run { label: &label, tier: job.tier, vlen: job.vlen, args: args.map(OsString::from).to_vec() },
    )
}

/// The matvec table: instructions per product, relative to rv64gc, and whether every VLEN
/// doubling at least nearly halves the count (1024 / 256 <= 0.5 is the model-level target).
pub fn render_matvec(jobs: &[MatvecJob], counts: &[u64]) -> String {
    let get = |ty: &str, tier: &str, vlen: Option<u32>| {
        jobs.iter()
            .zip(counts)
            .find(|(j, _)| j.ty == ty && j.tier.id.0 == tier && j.vlen == vlen)
            .map(|(_, &c)| c)
    };
    let mut out = format!(
        "matrix-vector product over {MATVEC_MIB} MiB of weights, one thread: dynamic instructions (exact, \
         qemu; in brackets relative to the rv64gc tier)\n\n"
    );
    out += &vlen_table_head("| type | rv64gc |", "|---|---:|", "@1024 / @256");
    let mut verdicts = Vec::new();
    for ty in MATVEC_TYPES {
        let Some(scalar) = get(ty, "rv64gc", None) else { continue };
        out += &format!("| {ty} | {scalar} |");
        let vec: Vec<Option<u64>> = VLENS.iter().map(|&v| get(ty, "rv64gcv", Some(v))).collect();
        for c in &vec {
            out += &format!(" {} |", c.map_or("-".into(), |c| relative(c, scalar)));
        }
        match (vec[1], vec[3]) {
            (Some(v256), Some(v1024)) => {
                let r = v1024 as f64 / v256.max(1) as f64;
                out += &format!(" {r:.3} |\n");
                verdicts.push(format!(
                    "{ty}: rv64gcv VLEN 1024 / VLEN 256 = {r:.3} (<= 0.5: {})",
                    if r <= 0.5 { "met" } else { "MISSED" }
                ));
            }
            _ => out += " - |\n",
        }
    }
    out += "\nscaling with VLEN\n\n";
    for v in verdicts {
        out += &format!("- {v}\n");
    }
    out
}

/// A table's header and rule: the `lead` columns, one rv64gcv column per VLEN, then `tail`.
fn vlen_table_head(lead: &str, lead_rule: &str, tail: &str) -> String {
    let vlens: String = VLENS.iter().map(|v| format!(" rv64gcv @{v} |")).collect();
    format!("{lead}{vlens} {tail} |\n{lead_rule}{}\n", "---:|".repeat(VLENS.len() + 1))
}

/// A count with its ratio to `base`, as "count (ratio)".
fn relative(count: u64, base: u64) -> String {
    format!("{count} ({:.3})", count as f64 / base.max(1) as f64)
}

fn millions(n: u64) -> String {
    format!("{:.3}", n as f64 / 1e6)
}

/// The largest symbols of one count, as "name pct%" items.
fn split(counts: &BTreeMap<String, u64>, top: usize) -> String {
    let total = counts.values().sum::<u64>().max(1);
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(top)
        .map(|(n, c)| {
            let short = n.trim_start_matches("hartlm_engine::");
            format!("{short} {:.0}%", **c as f64 * 100.0 / total as f64)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The counts table, the per-kernel split and the targets.
pub fn render(jobs: &[Job], results: &[Counted]) -> String {
    let mut out = String::from(
        "instructions per token (millions; exact dynamic counts under qemu, -t 1)\n\n\
         | model | tier | VLEN | per prompt token | per generated token |\n|---|---|---:|---:|---:|\n",
    );
    for (j, r) in jobs.iter().zip(results) {
        out += &format!(
            "| {} | {} | {} | {} | {} |\n",
            j.model,
            j.tier.id,
            vlen_label(j.vlen),
            millions(r.per_prompt_token(j.n_prompt)),
            millions(r.per_gen_token(j.n_gen))
        );
    }
    out += "\nper-kernel split of generation (largest symbols)\n\n";
    for (j, r) in jobs.iter().zip(results) {
        out += &format!(
            "- {} {} VLEN {}: {}\n",
            j.model,
            j.tier.id,
            vlen_label(j.vlen),
            split(&r.generation, 5)
        );
    }
    out += "\ntargets\n\n";
    let targets = targets(jobs, results);
    if targets.is_empty() {
        out += "- none for these models (set on s288-q4_0, smollm2-q4_1 and qwen2-micro-f16)\n";
    }
    for t in targets {
        out += &format!("- {t}\n");
    }
    out
}

/// The issue's RVV targets, checked on every model counted.
pub fn targets(jobs: &[Job], results: &[Counted]) -> Vec<String> {
    let per_gen = |model: &str, tier: &str, vlen: Option<u32>| {
        jobs.iter()
            .zip(results)
            .find(|(j, _)| j.model == model && j.tier.id.0 == tier && j.vlen == vlen)
            .map(|(j, r)| r.per_gen_token(j.n_gen) as f64)
    };
    let mut models: Vec<&str> = jobs.iter().map(|j| j.model.as_str()).collect();
    models.dedup();
    let mut out = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for m in models {
        // The instruction targets are set on the quantized models; the F16 model shows zvfh.
        if m.contains("f16") {
            if let (Some(v), Some(z)) =
                (per_gen(m, "rv64gcv", Some(256)), per_gen(m, "rv64gcv_zvfh", Some(256)))
            {
                let r = z / v;
                out.push(format!(
                    "{m}: rv64gcv_zvfh / rv64gcv @256 = {r:.3} (target < 1: {})",
                    verdict(r < 1.0)
                ));
            }
            continue;
        }
        // A 64-wide micro model leaves VLEN-1024 panels (128 rows) half empty: no VLEN target.
        if m.contains("micro") {
            continue;
        }
        if let (Some(gc), Some(v256)) = (per_gen(m, "rv64gc", None), per_gen(m, "rv64gcv", Some(256))) {
            let r = v256 / gc;
            out.push(format!(
                "{m}: rv64gcv@256 / rv64gc per generated token = {r:.3} (target <= 0.2: {})",
                verdict(r <= 0.2)
            ));
        }
        if let (Some(v256), Some(v1024)) =
            (per_gen(m, "rv64gcv", Some(256)), per_gen(m, "rv64gcv", Some(1024)))
        {
            let r = v1024 / v256;
            out.push(format!(
                "{m}: rv64gcv VLEN 1024 / VLEN 256 = {r:.3} (target <= 0.5: {})",
                verdict(r <= 0.5)
            ));
        }
    }
    out
}

/// Builds the plugin qemu and the riscv64 release whose instructions `bench-insn` counts.
pub fn counter(ws: &Workspace) -> Result<Counter> {
    let sh = ws.shell()?;
    prereq::ensure(&sh, Needs::build(&[Arch::Riscv64]))?;
    let qemu = ensure_qemu(&sh, &ws.root, &ws.target_dir)?;
    let tarball = crate::dist::command(ws, &[Arch::Riscv64])?.pop().context("no riscv64 tarball")?;
    let dir = ws.target_dir.join("bench-insn");
    let unpacked = crate::qemu::unpack(&tarball, &dir.join("release"), Arch::Riscv64)?;
    let lib_dir =
        unpacked.launcher.parent().and_then(|b| b.parent()).context("launcher outside bin/")?.join("lib");
    let scratch = dir.join("profiles");
    std::fs::create_dir_all(&scratch)?;
    Ok(Counter { qemu, launcher: unpacked.launcher, lib_dir, scratch })
}

/// `bench-insn --kernel ssm_conv`: one kernel call per tier, VLEN and prompt length.
pub fn kernel_command(ws: &Workspace) -> Result<()> {
    let c = counter(ws)?;
    let jobs = kernel_jobs()?;
    let label = |j: &KernelJob| {
        format!("ssm_conv {} T={} {} VLEN {}", j.which, j.tokens, j.tier.id, vlen_label(j.vlen))
    };
    let counts = c.all(&jobs, label, run_kernel_job)?;
    println!("{}", render_kernel(&jobs, &counts));
    Ok(())
}

/// `bench-insn --kernel matvec`: one matrix-vector product per type, tier and VLEN.
pub fn matvec_command(ws: &Workspace) -> Result<()> {
    let c = counter(ws)?;
    let jobs = matvec_jobs()?;
    let label = |j: &MatvecJob| format!("matvec {} {} VLEN {}", j.ty, j.tier.id, vlen_label(j.vlen));
    let counts = c.all(&jobs, label, run_matvec_job)?;
    println!("{}", render_matvec(&jobs, &counts));
    Ok(())
}

/// `bench-insn [--model NAME]`: per-token counts of the fixture models at every tier and VLEN.
pub fn models_command(ws: &Workspace, only: Option<&str>) -> Result<()> {
    let c = counter(ws)?;
    let sh = ws.shell()?;
    let fixtures = crate::modelcheck::fixtures_dir(&ws.root)?;
    let smollm2 = crate::models::ensure(&sh, &ws.target_dir, &crate::models::SMOLLM2)?;
    let generated = crate::genfix::ensure(&sh, &ws.target_dir, &fixtures)?;
    // (name, file, extra bench flags, prompt tokens, generated tokens): enough tokens for a
    // stable per-token figure, few enough that the scalar tier finishes in seconds.
    let models: Vec<(&str, PathBuf, Vec<String>, usize, usize)> = vec![
        ("s288-q4_0", fixtures.join("models/s288-q4_0.gguf"), vec![], 8, 4),
        ("smollm2-q4_1", smollm2, vec![], 4, 2),
        ("lfm2-micro-q4_0", fixtures.join("models/lfm2-micro-q4_0.gguf"), vec![], 8, 4),
        (
            "qwen2-micro-f16",
            generated.join("qwen2-micro-f16.gguf"),
            vec!["--cache-type".into(), "f16".into()],
            8,
            4,
        ),
    ];
    let mut jobs = Vec::new();
    for (name, path, extra, n_prompt, n_gen) in
        models.into_iter().filter(|m| only.is_none_or(|o| m.0.contains(o)))
    {
        for (tier, vlen) in tier_vlens()? {
            jobs.push(Job {
                model: name.into(),
                path: path.clone(),
                extra: extra.clone(),
                n_prompt,
                n_gen,
                tier,
                vlen,
            });
        }
    }
    if jobs.is_empty() {
        bail!(
            "no model matches --model; choose from s288-q4_0, smollm2-q4_1, lfm2-micro-q4_0, qwen2-micro-f16"
        );
    }
    let label = |j: &Job| format!("{} {} VLEN {}", j.model, j.tier.id, vlen_label(j.vlen));
    let results = c.all(&jobs, label, run_job)?;
    println!("{}", render(&jobs, &results));
    Ok(())
}

/// Each IME tier and the vector tier it extends, compared at VLEN 256.
pub const IME_PAIRS: [(&str, &str); 2] =
    [("spacemit_ime", "rv64gcv_zvfh"), ("spacemit_ime_rva23", "rv64gcv_zvfh_zfa_zicond_zicbop")];
/// Prompt and generated tokens of the IME count: a prompt long enough that re-tiling each weight
/// panel per matmul (amortized over the prompt) weighs as it does in real prompts' first tiles.
const IME_PROMPT: usize = 32;
const IME_GEN: usize = 4;

/// `bench-insn --ime`: the IME tiers against their vector twins at VLEN 256, per prompt and per
/// generated token, on SmolLM2 Q4_1 and a TinyLlama-1.1B-shape Q4_0.
pub fn ime_command(ws: &Workspace) -> Result<()> {
    let c = counter(ws)?;
    let sh = ws.shell()?;
    let fixtures = crate::modelcheck::fixtures_dir(&ws.root)?;
    let smollm2 = crate::models::ensure(&sh, &ws.target_dir, &crate::models::SMOLLM2)?;
    // The TinyLlama shape is generated (F16) and quantized by the host's own launcher.
    prereq::ensure(&sh, Needs::build(&[Arch::X86_64]))?;
    let tarball = crate::dist::command(ws, &[Arch::X86_64])?.pop().context("no x86_64 tarball")?;
    let host = crate::qemu::unpack(&tarball, &ws.target_dir.join("bench/release"), Arch::X86_64)?;
    let models_dir = ws.target_dir.join("bench/models");
    std::fs::create_dir_all(&models_dir)?;
    let tinyllama = crate::bench::synthetic(
        &sh,
        &models_dir,
        &fixtures,
        &host.launcher,
        "tinyllama",
        "ggml-vocab-llama-spm.gguf",
    )?;
    let mut jobs = Vec::new();
    for (name, path) in [("smollm2-q4_1", smollm2), ("tinyllama-q4_0", tinyllama)] {
        for (ime, twin) in IME_PAIRS {
            for id in [twin, ime] {
                let tier = tier::find(id).with_context(|| format!("tier {id} missing from tiers.toml"))?;
                jobs.push(Job {
                    model: name.into(),
                    path: path.clone(),
                    extra: vec![],
                    n_prompt: IME_PROMPT,
                    n_gen: IME_GEN,
                    tier,
                    vlen: Some(256),
                });
            }
        }
    }
    let label = |j: &Job| format!("{} {} VLEN 256", j.model, j.tier.id);
    let results = c.all(&jobs, label, run_job)?;
    println!("{}", render_ime(&jobs, &results));
    Ok(())
}

/// The IME table: per-token counts of each IME tier beside its twin, their ratios, the target
/// (prompt <= 0.5x) and the largest symbols of the IME tiers' prompt.
pub fn render_ime(jobs: &[Job], results: &[Counted]) -> String {
    let find = |model: &str, tier: &str| {
        jobs.iter().zip(results).find(|(j, _)| j.model == model && j.tier.id.0 == tier)
    };
    let mut out = format!(
        "IME tiers against their vector twins at VLEN 256: instructions per token (millions; exact \
         dynamic counts under qemu, -t 1, {IME_PROMPT} prompt and {IME_GEN} generated tokens)\n\n\
         | model | IME tier | prompt | twin's prompt | ratio | generation | twin's generation | ratio |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n"
    );
    let mut models: Vec<&str> = jobs.iter().map(|j| j.model.as_str()).collect();
    models.dedup();
    let mut verdicts = Vec::new();
    let mut splits = Vec::new();
    for m in models {
        for (ime, twin) in IME_PAIRS {
            let (Some((ji, ri)), Some((jt, rt))) = (find(m, ime), find(m, twin)) else { continue };
            let (pi, pt) = (ri.per_prompt_token(ji.n_prompt), rt.per_prompt_token(jt.n_prompt));
            let (gi, gt) = (ri.per_gen_token(ji.n_gen), rt.per_gen_token(jt.n_gen));
            let (rp, rg) = (pi as f64 / pt.max(1) as f64, gi as f64 / gt.max(1) as f64);
            out += &format!(
                "| {m} | {ime} | {} | {} | {rp:.3} | {} | {} | {rg:.3} |\n",
                millions(pi),
                millions(pt),
                millions(gi),
                millions(gt)
            );
            verdicts.push(format!(
                "{m}: {ime} / {twin} per prompt token = {rp:.3} (target <= 0.5: {})",
                if rp <= 0.5 { "met" } else { "MISSED" }
            ));
            splits.push(format!("- {m} {ime} prompt: {}", split(&ri.prompt, 6)));
        }
    }
    out += "\nlargest symbols of the IME tiers' prompt\n\n";
    out += &splits.join("\n");
    out += "\n\ntargets\n\n";
    for v in verdicts {
        out += &format!("- {v}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_tiers_are_the_riscv64_tiers_qemu_runs_exactly() {
        let ids: Vec<&str> = counted_tiers().iter().map(|t| t.id.0).collect();
        assert_eq!(
            ids,
            [
                "rv64gc",
                "rv64gcv",
                "rv64gcv_zvfh",
                "rv64gcv_zvfh_zfa_zicond_zicbop",
                "spacemit_ime",
                "spacemit_ime_rva23"
            ]
        );
    }

    #[test]
    fn cpu_strings_replace_vlen() {
        let t = tier::find("rv64gcv").unwrap();
        let c = cpu_for(t, Some(1024)).unwrap();
        assert!(c.ends_with(",vlen=1024") && c.matches("vlen=").count() == 1, "{c}");
        let gc = tier::find("rv64gc").unwrap();
        assert!(!cpu_for(gc, None).unwrap().contains("vlen"));
    }

    #[test]
    fn attribution_by_symbol_and_segment() {
        let nm = "0000000000001000 0000000000000010 T hartlm_engine::kernels::rvv::panel_q4_0::h0123456789abcdef\n\
                  0000000000002000 0000000000000008 t helper\n\
                  0000000000003000 0000000000000004 D data\n";
        let syms = parse_nm(nm);
        assert_eq!(syms.len(), 2);
        assert_eq!(syms[0].2, "hartlm_engine::kernels::rvv::panel_q4_0");
        let base = 0x7000_0000;
        let profile = "1 70001004 10\n1 7000100f 5\n1 70001010 3\n3 70002000 7\n0 10 1\n";
        let segs = attribute(profile, base, &syms).unwrap();
        assert_eq!(segs.len(), 4);
        assert_eq!(segs[1]["hartlm_engine::kernels::rvv::panel_q4_0"], 15);
        assert_eq!(segs[1][OUTSIDE], 3, "one past the symbol's end is outside it");
        assert_eq!(segs[3]["helper"], 7);
        assert_eq!(segs[0][OUTSIDE], 1);
        assert!(attribute("1 zz 3\n", base, &syms).is_err());
    }

    #[test]
    fn base_from_verbose_line() {
        let e = "bench: pp8\nhartlm: tier rv64gcv (forced by HARTLM_TIER): /x/lib/libhartlm-rv64gcv.so loaded at 0x7fff1000\n";
        assert_eq!(parse_base(e), Some(0x7fff_1000));
        assert_eq!(parse_base("nothing"), None);
    }

    #[test]
    fn matvec_table_judges_the_vlen_scaling() {
        let jobs = matvec_jobs().unwrap();
        assert_eq!(jobs.len(), MATVEC_TYPES.len() * (1 + VLENS.len()));
        // q4_0 halves with every doubling; q4_k stalls at VLEN 256 (vl fixed at 32).
        let counts: Vec<u64> = jobs
            .iter()
            .map(|j| match (j.ty, j.vlen) {
                (_, None) => 10_000,
                ("q4_k", Some(v)) => 1_600 - v as u64 / 8,
                (_, Some(v)) => 256_000 / v as u64,
            })
            .collect();
        let table = render_matvec(&jobs, &counts);
        assert!(
            table.contains(
                "| q4_0 | 10000 | 2000 (0.200) | 1000 (0.100) | 500 (0.050) | 250 (0.025) | 0.250 |"
            )
        );
        assert!(table.contains("q4_0: rv64gcv VLEN 1024 / VLEN 256 = 0.250 (<= 0.5: met)"), "{table}");
        assert!(table.contains("q4_k: rv64gcv VLEN 1024 / VLEN 256 = 0.939 (<= 0.5: MISSED)"), "{table}");
    }

    #[test]
    fn every_vector_tier_at_every_vlen() {
        let tv = tier_vlens().unwrap();
        assert_eq!(tv.len(), 1 + 3 * VLENS.len() + 2, "the IME tiers at VLEN 256 only");
        assert_eq!(tv[0], (tier::find("rv64gc").unwrap(), None));
        assert!(tv.iter().filter(|(t, _)| t.matrix_unit.is_some()).all(|(_, v)| *v == Some(256)));
    }

    #[test]
    fn ime_table_judges_the_prompt_ratio() {
        let job = |t: &'static str| Job {
            model: "m".into(),
            path: PathBuf::new(),
            extra: vec![],
            n_prompt: 2,
            n_gen: 1,
            tier: tier::find(t).unwrap(),
            vlen: Some(256),
        };
        let counted = |p: u64, g: u64| Counted {
            prompt: [("k".to_string(), p)].into(),
            generation: [("k".to_string(), g)].into(),
        };
        let jobs = [job("rv64gcv_zvfh"), job("spacemit_ime")];
        let table = render_ime(&jobs, &[counted(4_000_000, 1_000_000), counted(1_000_000, 1_000_000)]);
        assert!(
            table.contains("| m | spacemit_ime | 0.500 | 2.000 | 0.250 | 1.000 | 1.000 | 1.000 |"),
            "{table}"
        );
        assert!(table.contains("per prompt token = 0.250 (target <= 0.5: met)"), "{table}");
    }
}
