//! `cargo xtask`: builds every tier, packages reproducible tarballs, and tests them under qemu.
//! One function per command; the logic they share lives in the modules below.

mod bench;
mod dist;
mod faults;
mod genfix;
mod hetero;
mod insn;
mod lint;
mod modelcheck;
mod models;
mod prereq;
mod publish;
mod qemu;
mod sync;
mod tierbuild;
mod workflows;
mod workspace;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Instant;
use xshell::cmd;

use hartlm_variants::Arch;
use prereq::Needs;
use workspace::Workspace;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "hartlm build, test and release tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ArchArg {
    Riscv64,
    #[value(name = "x86_64")]
    X86_64,
    All,
}

impl ArchArg {
    fn arches(self) -> Vec<Arch> {
        match self {
            ArchArg::Riscv64 => vec![Arch::Riscv64],
            ArchArg::X86_64 => vec![Arch::X86_64],
            ArchArg::All => vec![Arch::Riscv64, Arch::X86_64],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    All,
    Cpus,
    Checks,
}

#[derive(Subcommand)]
enum CiAction {
    /// Write .github/workflows/ from ci/workflows.toml, ci/qemu-matrix.toml and variants/tiers.toml.
    Generate,
    /// Fail if a workflow differs from what `generate` writes; run actionlint, zizmor, shellcheck.
    Check,
}

#[derive(Subcommand)]
enum Command {
    /// Install missing prerequisites (as root with apt) or print the commands that would.
    Setup,
    /// Build one engine library per tier and the launcher of each architecture.
    Build {
        #[arg(long, value_enum, default_value = "all")]
        arch: ArchArg,
        /// Build only this tier (and its architecture's launcher).
        #[arg(long)]
        tier: Option<String>,
    },
    /// Build everything and write target/dist/: one tarball per architecture, SHA256SUMS, manifest.json.
    Dist {
        #[arg(long, value_enum, default_value = "all")]
        arch: ArchArg,
    },
    /// Run the packaged launcher on every CPU of ci/qemu-matrix.toml and print CPU × tier.
    TestQemu {
        #[arg(long, value_enum, default_value = "all")]
        arch: ArchArg,
        /// Use the tarballs already in target/dist instead of running `dist` first.
        #[arg(long)]
        no_build: bool,
        /// Only these CPU rows (names from ci/qemu-matrix.toml, or `tier:<id>`); implies `--part cpus`.
        #[arg(long, value_delimiter = ',')]
        cpu: Vec<String>,
        /// `cpus`: the CPU × tier table only; `checks`: only the launcher fault, placement and
        /// fixture-model checks. CI runs each CPU and the checks as separate jobs.
        #[arg(long, value_enum, default_value = "all")]
        part: Part,
    },
    /// Download the real models tests use (SmolLM2-135M Q4_1) into target/models/ and generate
    /// the qwen2 fixtures with their numpy reference logits into target/fixtures-gen/.
    FetchModels,
    /// Benchmark every x86-64 tier the host can run, side by side, against llama.cpp's figures.
    Bench {
        /// Prompt tokens (ppN).
        #[arg(short = 'p', long, default_value_t = 512)]
        n_prompt: usize,
        /// Generated tokens (tgN).
        #[arg(short = 'n', long, default_value_t = 128)]
        n_gen: usize,
        /// Repetitions per test.
        #[arg(short = 'r', long, default_value_t = 5)]
        reps: usize,
        /// Thread counts.
        #[arg(short = 't', long, default_value = "1,2")]
        threads: String,
        /// Only these tiers (comma-separated ids).
        #[arg(long, value_delimiter = ',')]
        tiers: Vec<String>,
    },
    /// Exact dynamic instruction counts per prompt and generated token of every riscv64 tier at
    /// VLEN 128-1024 under a plugin-enabled qemu (built once into target/qemu-plugin/).
    BenchInsn {
        /// Only models whose name contains this (s288-q4_0, smollm2-q4_1, lfm2-micro-q4_0,
        /// qwen2-micro-f16).
        #[arg(long)]
        model: Option<String>,
        /// Count one kernel on its own instead of models (`ssm_conv`: d_inner 1536, 4 taps,
        /// T = 4, 16, 64, 512, upstream's loop and every tier and VLEN; `matvec`: one 1 MiB
        /// matrix-vector product of every quantized type at rv64gc and rv64gcv at every VLEN).
        #[arg(long, value_parser = ["ssm_conv", "matvec"], conflicts_with = "model")]
        kernel: Option<String>,
    },
    /// The full test: fmt, clippy, unit tests, two reproducible `dist` runs, `test-qemu`.
    Test,
    /// Build the release twice, recompiling in between, and require byte-identical archives.
    Reproducible,
    /// Clippy for the RVV code: the engine and launcher as the rv64gcv tier compiles them.
    ClippyRvv,
    /// Follow upstream (ci/sync.toml): merge in a temporary worktree, test, then push, move the
    /// nightly tag and publish. Exit 3 on a merge conflict, 4 when a step failed.
    Sync {
        /// Print the decision and the plan only.
        #[arg(long)]
        dry_run: bool,
    },
    /// The GitHub workflows: generate them, or check they match their sources and lint them.
    Ci {
        #[command(subcommand)]
        action: CiAction,
    },
    /// Publish target/dist as a GitHub release: draft, upload and verify every asset, then
    /// undraft. Safe to re-run. Token from GITHUB_TOKEN.
    Publish {
        /// The release tag, `v` + the workspace version.
        #[arg(long, required_unless_present = "nightly", conflicts_with = "nightly")]
        tag: Option<String>,
        /// Move the `nightly` tag to the built commit and replace that prerelease's assets.
        #[arg(long)]
        nightly: bool,
        /// Print the plan (reads the remote release) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// `owner/name` (default: $GITHUB_REPOSITORY).
        #[arg(long)]
        repo: Option<String>,
        /// API base (default: $GITHUB_API_URL, else https://api.github.com).
        #[arg(long)]
        api_url: Option<String>,
        /// Upload base (default: derived from the API base for github.com and GitHub Enterprise).
        #[arg(long)]
        upload_url: Option<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = Workspace::discover().and_then(|ws| match cli.command {
        Command::Setup => setup(&ws),
        Command::Build { arch, tier } => build(&ws, &arch.arches(), tier.as_deref()),
        Command::Dist { arch } => dist(&ws, &arch.arches()).map(|_| ()),
        Command::TestQemu { arch, no_build, cpu, part } => {
            let part = if cpu.is_empty() { part } else { Part::Cpus };
            test_qemu(&ws, &arch.arches(), no_build, &cpu, part)
        }
        Command::FetchModels => fetch_models(&ws),
        Command::Bench { n_prompt, n_gen, reps, threads, tiers } => {
            bench(&ws, bench::Spec { n_prompt, n_gen, reps, threads }, tiers)
        }
        Command::BenchInsn { kernel: Some(k), .. } if k == "matvec" => bench_insn_matvec(&ws),
        Command::BenchInsn { kernel: Some(_), .. } => bench_insn_kernel(&ws),
        Command::BenchInsn { model, kernel: None } => bench_insn(&ws, model.as_deref()),
        Command::Test => test(&ws),
        Command::Reproducible => {
            let all = [Arch::Riscv64, Arch::X86_64];
            prereq::ensure(&ws.shell()?, Needs::build(&all)).and_then(|()| reproducible(&ws))
        }
        Command::Sync { dry_run } => sync(&ws, dry_run),
        Command::Ci { action: CiAction::Generate } => ci_generate(&ws),
        Command::Ci { action: CiAction::Check } => ci_check(&ws),
        Command::ClippyRvv => {
            prereq::ensure(&ws.shell()?, Needs::build(&[Arch::Riscv64])).and_then(|()| clippy_rvv(&ws))
        }
        Command::Publish { tag, nightly, dry_run, repo, api_url, upload_url } => {
            publish::run(&ws.dist_dir(), &publish::Args { tag, nightly, dry_run, repo, api_url, upload_url })
        }
    });
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn setup(ws: &Workspace) -> Result<()> {
    let all = [Arch::Riscv64, Arch::X86_64];
    prereq::ensure(&ws.shell()?, Needs::build(&all).with_qemu(&all))?;
    eprintln!("xtask: all prerequisites present");
    Ok(())
}

fn bench(ws: &Workspace, spec: bench::Spec, only: Vec<String>) -> Result<()> {
    let sh = ws.shell()?;
    let tarball = dist(ws, &[Arch::X86_64])?.pop().context("no x86_64 tarball")?;
    let unpacked = qemu::unpack(&tarball, &ws.target_dir.join("bench/release"), Arch::X86_64)?;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let best = qemu::host_x86_tier(&cpuinfo).context("cannot read the host's CPU flags")?;
    let tiers: Vec<&str> = bench::host_tiers(best)
        .into_iter()
        .filter(|t| only.is_empty() || only.iter().any(|o| o == t))
        .collect();
    let fixtures = modelcheck::fixtures_dir(&ws.root)?;
    let smollm2 = models::ensure(&sh, &ws.target_dir, &models::SMOLLM2)?;
    let bench_models =
        bench::models(&sh, &ws.target_dir.join("bench/models"), &fixtures, &unpacked.launcher, smollm2)?;
    let rows = bench::run(&unpacked.launcher, &bench_models, &tiers, &spec)?;
    println!("{}", bench::render(&bench_models, &tiers, &rows));
    Ok(())
}

/// Builds the plugin qemu and the riscv64 release whose instructions `bench-insn` counts.
fn insn_counter(ws: &Workspace) -> Result<insn::Counter> {
    let sh = ws.shell()?;
    prereq::ensure(&sh, Needs::build(&[Arch::Riscv64]))?;
    let qemu = insn::ensure_qemu(&sh, &ws.root, &ws.target_dir)?;
    let tarball = dist(ws, &[Arch::Riscv64])?.pop().context("no riscv64 tarball")?;
    let dir = ws.target_dir.join("bench-insn");
    let unpacked = qemu::unpack(&tarball, &dir.join("release"), Arch::Riscv64)?;
    let lib_dir =
        unpacked.launcher.parent().and_then(|b| b.parent()).context("launcher outside bin/")?.join("lib");
    let scratch = dir.join("profiles");
    std::fs::create_dir_all(&scratch)?;
    Ok(insn::Counter { qemu, launcher: unpacked.launcher, lib_dir, scratch })
}

/// `bench-insn --kernel ssm_conv`: one kernel call per tier, VLEN and prompt length.
fn bench_insn_kernel(ws: &Workspace) -> Result<()> {
    let c = insn_counter(ws)?;
    let jobs = insn::kernel_jobs()?;
    let label = |j: &insn::KernelJob| {
        format!("ssm_conv {} T={} {} VLEN {}", j.which, j.tokens, j.tier.id, insn::vlen_label(j.vlen))
    };
    let counts = c.all(&jobs, label, insn::run_kernel_job)?;
    println!("{}", insn::render_kernel(&jobs, &counts));
    Ok(())
}

/// `bench-insn --kernel matvec`: one matrix-vector product per type, tier and VLEN.
fn bench_insn_matvec(ws: &Workspace) -> Result<()> {
    let c = insn_counter(ws)?;
    let jobs = insn::matvec_jobs()?;
    let label =
        |j: &insn::MatvecJob| format!("matvec {} {} VLEN {}", j.ty, j.tier.id, insn::vlen_label(j.vlen));
    let counts = c.all(&jobs, label, insn::run_matvec_job)?;
    println!("{}", insn::render_matvec(&jobs, &counts));
    Ok(())
}

/// `bench-insn [--model NAME]`: per-token counts of the fixture models at every tier and VLEN.
fn bench_insn(ws: &Workspace, only: Option<&str>) -> Result<()> {
    let c = insn_counter(ws)?;
    let sh = ws.shell()?;
    let fixtures = modelcheck::fixtures_dir(&ws.root)?;
    let smollm2 = models::ensure(&sh, &ws.target_dir, &models::SMOLLM2)?;
    let generated = genfix::ensure(&sh, &ws.target_dir, &fixtures)?;
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
        for (tier, vlen) in insn::tier_vlens()? {
            jobs.push(insn::Job {
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
    let label = |j: &insn::Job| format!("{} {} VLEN {}", j.model, j.tier.id, insn::vlen_label(j.vlen));
    let results = c.all(&jobs, label, insn::run_job)?;
    println!("{}", insn::render(&jobs, &results));
    Ok(())
}

fn fetch_models(ws: &Workspace) -> Result<()> {
    let sh = ws.shell()?;
    println!("{}", models::ensure(&sh, &ws.target_dir, &models::SMOLLM2)?.display());
    println!("{}", genfix::ensure(&sh, &ws.target_dir, &modelcheck::fixtures_dir(&ws.root)?)?.display());
    Ok(())
}

fn build(ws: &Workspace, arches: &[Arch], only: Option<&str>) -> Result<()> {
    let sh = ws.shell()?;
    let tiers = tierbuild::select_tiers(arches, only)?;
    let arches: Vec<Arch> = arches.iter().copied().filter(|a| tiers.iter().any(|t| t.arch == *a)).collect();
    prereq::ensure(&sh, Needs::build(&arches))?;
    let built = tierbuild::build_all(&sh, ws, &arches, &tiers)?;
    for b in &built.tiers {
        println!("{:<32} {}", b.tier.id, tierbuild::relative(&ws.root, &b.library).display());
    }
    for (arch, path) in &built.launchers {
        println!(
            "{:<32} {}",
            format!("launcher ({})", arch.name()),
            tierbuild::relative(&ws.root, path).display()
        );
    }
    Ok(())
}

fn dist(ws: &Workspace, arches: &[Arch]) -> Result<Vec<PathBuf>> {
    let sh = ws.shell()?;
    prereq::ensure(&sh, Needs::build(arches))?;
    let tiers = tierbuild::select_tiers(arches, None)?;
    let built = tierbuild::build_all(&sh, ws, arches, &tiers)?;
    let prov = dist::Provenance {
        version: ws.version.clone(),
        git_commit: ws.git_commit(),
        source_date_epoch: ws.source_date_epoch()?,
    };
    let plans: Vec<dist::ArchivePlan> = built
        .launchers
        .iter()
        .map(|(arch, launcher)| dist::plan_archive(&ws.root, &ws.version, *arch, launcher, &built.tiers))
        .collect();
    let paths = dist::write_release(&ws.dist_dir(), &plans, &prov, &ws.root)?;
    eprintln!("wrote {}", tierbuild::relative(&ws.root, &ws.dist_dir().join("SHA256SUMS")).display());
    Ok(paths)
}

fn test_qemu(
    ws: &Workspace,
    arches: &[Arch],
    no_build: bool,
    only_cpus: &[String],
    part: Part,
) -> Result<()> {
    let sh = ws.shell()?;
    prereq::ensure(&sh, Needs::default().with_qemu(arches))?;
    let tarballs: Vec<PathBuf> = if no_build {
        arches
            .iter()
            .map(|a| ws.dist_dir().join(format!("{}.tar.gz", dist::archive_name(&ws.version, *a))))
            .collect()
    } else {
        dist(ws, arches)?
    };
    let mut launchers = Vec::new();
    for (arch, tarball) in arches.iter().zip(&tarballs) {
        if !tarball.is_file() {
            bail!("{} is missing; run `cargo xtask dist` first", tarball.display());
        }
        let dir = ws.target_dir.join("qemu-test").join(arch.baseline_triple());
        launchers.push(qemu::unpack(tarball, &dir, *arch)?);
    }
    let text = std::fs::read_to_string(ws.root.join("ci/qemu-matrix.toml"))
        .context("reading ci/qemu-matrix.toml")?;
    let mut entries = qemu::load_matrix(&text)?;
    if let Some(unknown) = only_cpus.iter().find(|c| !entries.iter().any(|e| &e.name == *c)) {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        bail!("--cpu {unknown}: no such CPU; choose from {}", names.join(", "));
    }
    entries.retain(|e| part != Part::Checks && (only_cpus.is_empty() || only_cpus.contains(&e.name)));
    let host_expect = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| qemu::host_x86_tier(&c));
    eprintln!(
        "test-qemu: {} CPUs",
        entries.iter().filter(|e| e.arch().is_ok_and(|a| arches.contains(&a))).count()
    );
    let t0 = Instant::now();
    let rows = qemu::run_matrix(&entries, &launchers, host_expect)?;
    if !rows.is_empty() {
        println!("\n{}", qemu::render(&rows));
    }
    let mut failures: Vec<String> =
        rows.iter().flat_map(|r| r.failures.iter().map(move |f| format!("{}: {f}", r.cpu.name))).collect();
    let mut checks = rows.iter().map(|r| r.cells.len()).sum::<usize>();
    if part == Part::Cpus {
        return finish(checks, failures);
    }
    let x86 = launchers.iter().find(|u| u.arch == Arch::X86_64);
    if let (Some(host), Some(x86)) = (host_expect, x86) {
        println!("launcher fault checks (native, {host}):");
        let scratch = ws.target_dir.join("qemu-test/faults");
        let model = modelcheck::fixtures_dir(&ws.root)?.join("models/micro-q4_0.gguf");
        for (name, ok, detail) in faults::run_all(&x86.launcher, &scratch, host, &model)? {
            println!("  {} {name}", if ok { "ok  " } else { "FAIL" });
            checks += 1;
            if !ok {
                failures.push(format!("fault check `{name}`: {detail}"));
            }
        }
    }
    if let Some(rv) = launchers.iter().find(|u| u.arch == Arch::Riscv64) {
        println!("core placement on heterogeneous chips (riscv64 launcher under qemu):");
        let scratch = ws.target_dir.join("qemu-test/hetero");
        let model = modelcheck::fixtures_dir(&ws.root)?.join("models/micro-q4_0.gguf");
        for (name, ok, detail) in hetero::run_all(&ws.root, &rv.launcher, &scratch, &model)? {
            println!("  {} {name}", if ok { "ok  " } else { "FAIL" });
            checks += 1;
            if !ok {
                failures.push(format!("placement check `{name}`: {detail}"));
            }
        }
    }
    println!("fixture models at every tier (max |dlogit| against llama.cpp, or numpy for qwen2-*):");
    let fixtures = modelcheck::fixtures_dir(&ws.root)?;
    let generated = genfix::ensure(&sh, &ws.target_dir, &fixtures)?;
    let real_model = models::ensure(&sh, &ws.target_dir, &models::SMOLLM2)?;
    let dirs = modelcheck::Dirs { fixtures: &fixtures, generated: &generated, real_model: &real_model };
    let scratch = ws.target_dir.join("qemu-test/logits");
    let model_rows = modelcheck::run_all(&launchers, host_expect, &dirs, &scratch)?;
    println!("{}", modelcheck::render(&model_rows));
    for r in &model_rows {
        for (name, cell) in &r.cells {
            checks += 1;
            if let Err(e) = cell {
                failures.push(format!("{} @ {}: {name}: {e}", r.tier, r.cpu));
            }
        }
        for (run, name) in r.runs.iter().zip(modelcheck::RUN_CHECKS) {
            checks += 1;
            if let Err(e) = run {
                failures.push(format!("{} @ {}: {name}: {e}", r.tier, r.cpu));
            }
        }
    }
    println!("{} CPU rows, fault checks and fixtures took {:.0}s", rows.len(), t0.elapsed().as_secs_f64());
    finish(checks, failures)
}

fn finish(checks: usize, failures: Vec<String>) -> Result<()> {
    println!("test-qemu: {} passed, {} failed", checks - failures.len().min(checks), failures.len());
    if !failures.is_empty() {
        bail!("test-qemu failures:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

fn sync(ws: &Workspace, dry_run: bool) -> Result<()> {
    let text = std::fs::read_to_string(ws.root.join("ci/sync.toml")).context("reading ci/sync.toml")?;
    let config = sync::load_config(&text)?;
    // Issues need a repository and a token; without them conflicts are only printed.
    let github = publish::github_config(None, None, None).ok().filter(|c| c.token.is_some());
    let git_env =
        github.as_ref().and_then(|c| c.token.as_deref()).map(sync::github_push_auth).unwrap_or_default();
    let outcome = sync::run(&sync::Env { repo: &ws.root, github, dry_run, git_env }, &config)?;
    match outcome.exit_code() {
        0 => Ok(()),
        code => {
            eprintln!("xtask: sync: {outcome:?}");
            std::process::exit(code.into())
        }
    }
}

fn workflow_files(ws: &Workspace) -> Result<Vec<(&'static str, String)>> {
    let read = |p: &str| std::fs::read_to_string(ws.root.join(p)).with_context(|| format!("reading {p}"));
    let config = workflows::load_config(&read("ci/workflows.toml")?)?;
    let cpus: Vec<String> =
        qemu::load_matrix(&read("ci/qemu-matrix.toml")?)?.into_iter().map(|e| e.name).collect();
    Ok(workflows::generate(&config, &cpus))
}

fn ci_generate(ws: &Workspace) -> Result<()> {
    for (path, text) in workflow_files(ws)? {
        hartlm_abi::atomic::write_atomic(&ws.root.join(path), text.as_bytes())?;
        println!("wrote {path}");
    }
    Ok(())
}

fn ci_check(ws: &Workspace) -> Result<()> {
    let expected = workflow_files(ws)?;
    let drift = workflows::drift(&expected, |p| std::fs::read_to_string(ws.root.join(p)).ok());
    if !drift.is_empty() {
        bail!("{}; run `cargo xtask ci generate` and commit the result", drift.join("; "));
    }
    eprintln!("ci check: {} workflows match their sources", expected.len());
    let sh = ws.shell()?;
    lint::ensure_tools(&sh)?;
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(ws.root.join("ci/runner"))
        .context("reading ci/runner")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    scripts.sort();
    lint::run(&sh, &ws.root, &scripts)
}

/// Host clippy never compiles the RVV kernels: lint them as a V tier build sees them.
fn clippy_rvv(ws: &Workspace) -> Result<()> {
    let sh = ws.shell()?;
    let tier = hartlm_variants::tier::find("rv64gcv").context("tier rv64gcv missing")?;
    let triple = tier.triple;
    let target_dir = ws.target_dir.join("clippy-riscv");
    cmd!(
        sh,
        "cargo clippy --locked -p hartlm-engine -p hartlm-variants --target {triple} --target-dir {target_dir} -- -D warnings"
    )
    .env(tierbuild::rustflags_var(triple), tierbuild::tier_rustflags(tier, &[]).join(" "))
    .env("HARTLM_TIER_ID", tier.id.0)
    .run()?;
    Ok(())
}

fn test(ws: &Workspace) -> Result<()> {
    let sh = ws.shell()?;
    let all = [Arch::Riscv64, Arch::X86_64];
    prereq::ensure(&sh, Needs::build(&all).with_qemu(&all))?;
    eprintln!("== cargo fmt --check");
    cmd!(sh, "cargo fmt --all -- --check").run().context("run `cargo fmt --all`")?;
    eprintln!("== cargo clippy");
    cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?;
    clippy_rvv(ws)?;
    eprintln!("== workflows");
    ci_check(ws)?;
    models::ensure(&sh, &ws.target_dir, &models::SMOLLM2)?;
    genfix::ensure(&sh, &ws.target_dir, &modelcheck::fixtures_dir(&ws.root)?)?;
    eprintln!("== cargo test");
    cmd!(sh, "cargo test --workspace --locked").run()?;
    reproducible(ws)?;
    eprintln!("== test-qemu");
    test_qemu(ws, &all, true, &[], Part::All)
}

/// Builds the release twice, recompiling hartlm's crates in between: the archives must be
/// byte-identical, and `sha256sum -c` must accept the second.
fn reproducible(ws: &Workspace) -> Result<()> {
    let all = [Arch::Riscv64, Arch::X86_64];
    let sh = ws.shell()?;
    eprintln!("== dist, twice, recompiling hartlm's crates in between: the archives must be byte-identical");
    let sums = ws.dist_dir().join("SHA256SUMS");
    for p in dist(ws, &all)? {
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    let first = std::fs::read(&sums)?;
    std::fs::remove_file(&sums)?;
    tierbuild::clean_own_crates(&sh, ws, &tierbuild::select_tiers(&all, None)?)?;
    dist(ws, &all)?;
    let second = std::fs::read(ws.dist_dir().join("SHA256SUMS"))?;
    if first != second {
        bail!(
            "dist is not reproducible:\nfirst:\n{}\nsecond:\n{}",
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&second)
        );
    }
    let dist_sh = ws.shell()?;
    dist_sh.change_dir(ws.dist_dir());
    cmd!(dist_sh, "sha256sum -c SHA256SUMS").run()?;
    Ok(())
}
