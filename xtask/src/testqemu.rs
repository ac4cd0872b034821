//! `cargo xtask test-qemu`: the packaged launcher on every CPU of ci/qemu-matrix.toml (`qemu`),
//! then the launcher fault, core placement and fixture-model checks, with one pass/fail count.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hartlm_variants::Arch;

use crate::flags::Part;
use crate::prereq::{self, Needs};
use crate::workspace::Workspace;
use crate::{dist, faults, genfix, hetero, hostile, modelcheck, models, qemu, qemu_build, sde, servecheck};

/// The riscv64 CPU the server checks run on under qemu.
const SERVE_CPU: &str = "rv64gcv-vlen256";

/// `cargo xtask test-qemu`.
pub fn command(
    ws: &Workspace,
    arches: &[Arch],
    no_build: bool,
    only_cpus: &[String],
    part: Part,
) -> Result<()> {
    let sh = ws.shell()?;
    prereq::ensure(&sh, Needs::default().with_qemu(arches))?;
    let tarballs: Vec<PathBuf> = if no_build {
        arches.iter().map(|a| ws.dist_dir().join(dist::archive_file(*a))).collect()
    } else {
        crate::dist::command(ws, arches)?
    };
    let mut launchers = Vec::new();
    for (arch, tarball) in arches.iter().zip(&tarballs) {
        if !tarball.is_file() {
            bail!("{} is missing; run `cargo xtask dist` first", tarball.display());
        }
        let dir = ws.target_dir.join("qemu-test").join(arch.baseline_triple());
        launchers.push(qemu::unpack(tarball, &dir, *arch)?);
    }
    let patched = if arches.contains(&Arch::Riscv64) {
        let built = qemu_build::ensure(&sh, &ws.root)?;
        qemu::use_patched_qemu(built.qemu.clone());
        Some(built.qemu)
    } else {
        None
    };
    let text = std::fs::read_to_string(ws.root.join("ci/qemu-matrix.toml"))
        .context("reading ci/qemu-matrix.toml")?;
    let mut entries = qemu::load_matrix(&text)?;
    if let Some(unknown) = only_cpus.iter().find(|c| !entries.iter().any(|e| &e.name == *c)) {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        bail!("--cpu {unknown}: no such CPU; choose from {}", names.join(", "));
    }
    entries.retain(|e| {
        !matches!(part, Part::Checks | Part::Hostile) && (only_cpus.is_empty() || only_cpus.contains(&e.name))
    });
    if arches.contains(&Arch::X86_64) && entries.iter().any(|e| e.sde_cpu.is_some()) {
        match sde::ensure(&sh) {
            Ok(sde64) => qemu::use_sde(sde64),
            // Only GitHub reaches the pinned download; elsewhere the host row covers v4 when the
            // host has AVX-512, and says so when it has not.
            Err(e) if std::env::var_os("GITHUB_ACTIONS").is_none() && only_cpus.is_empty() => {
                let skipped: Vec<String> =
                    entries.iter().filter(|e| e.sde_cpu.is_some()).map(|e| e.name.clone()).collect();
                eprintln!(
                    "test-qemu: skipping {}: Intel SDE is not available here ({e:#}); GitHub CI runs it, \
                     or set {} to an installed sde64",
                    skipped.join(", "),
                    sde::SDE_ENV
                );
                entries.retain(|e| e.sde_cpu.is_none());
            }
            Err(e) => return Err(e.context("the x86-64-v4 row runs under Intel SDE")),
        }
    }
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
    let (hostile_checks, hostile_failures) = hostile_suite(ws, &sh, &launchers, host_expect.is_some())?;
    checks += hostile_checks;
    failures.extend(hostile_failures);
    if part == Part::Hostile {
        return finish(checks, failures);
    }
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
    let serve_scratch = ws.target_dir.join("qemu-test/serve");
    let mut record = |what: &str, rows: Result<Vec<(String, bool, String)>>| {
        let rows = rows.unwrap_or_else(|e| vec![(format!("the {what} checks ran"), false, format!("{e:#}"))]);
        for (name, ok, detail) in rows {
            println!("  {} {name}", if ok { "ok  " } else { "FAIL" });
            checks += 1;
            if !ok {
                failures.push(format!("{what} check `{name}`: {detail}"));
            }
        }
    };
    if let (Some(host), Some(x86)) = (host_expect, x86) {
        let smollm2 = models::ensure(&sh, &ws.target_dir, &models::SMOLLM2)?;
        let launcher = x86.launcher.clone();
        println!("OpenAI-compatible server (native, {host}, SmolLM2-135M; the openai package and curl):");
        let launch = || Ok(std::process::Command::new(&launcher));
        // Qwen2.5's published template: SmolLM2 writes the <tool_call> blocks it asks for.
        let tools = crate::templates::ensure(&sh, &ws.target_dir)?.join("Qwen-Qwen2.5-7B-Instruct.jinja");
        record("server", servecheck::run_all(&sh, &launch, &smollm2, Some(&tools), &serve_scratch));
        println!("chat REPL (native, {host}, SmolLM2-135M; a pseudo-terminal, then a pipe):");
        record("chat", servecheck::chat_checks(&launcher, &smollm2));
    }
    if let Some(rv) = launchers.iter().find(|u| u.arch == Arch::Riscv64) {
        let all = qemu::load_matrix(&text)?;
        let cpu = all
            .iter()
            .find(|e| e.name == SERVE_CPU)
            .with_context(|| format!("{SERVE_CPU} is not in the matrix"))?;
        let model = modelcheck::fixtures_dir(&ws.root)?.join("models/micro-q4_0.gguf");
        println!(
            "OpenAI-compatible server (riscv64 under qemu as {SERVE_CPU}, micro-q4_0; the openai package and curl):"
        );
        let launch = || qemu::guest_command(cpu, &rv.launcher, None);
        record("riscv64 server", servecheck::run_all(&sh, &launch, &model, None, &serve_scratch));
    }
    if let Some(patched) = &patched {
        println!("IME emulator (xtask/qemu/xsmtvdot-test.c under {}):", qemu_build::PATCH);
        for (name, ok, detail) in qemu_build::self_test(&sh, &ws.root, &ws.target_dir, patched)? {
            println!("  {} {name}", if ok { "ok  " } else { "FAIL" });
            checks += 1;
            if !ok {
                failures.push(format!("IME emulator `{name}`: {detail}"));
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
    if arches.contains(&Arch::Riscv64) {
        println!("IME tiers against their vector twins (fixture logits, bit for bit):");
        for (name, ok, detail) in modelcheck::ime_twins_identical(&scratch)? {
            println!("  {} {name}", if ok { "ok  " } else { "FAIL" });
            checks += 1;
            if !ok {
                failures.push(format!("`{name}`: {detail}"));
            }
        }
    }
    println!("{} CPU rows, fault checks and fixtures took {:.0}s", rows.len(), t0.elapsed().as_secs_f64());
    finish(checks, failures)
}

/// The hostile-input suite (`hostile`) natively at x86-64 (when this host runs x86-64) and under
/// qemu at rv64gc and rv64gcv; returns (checks, failures).
fn hostile_suite(
    ws: &Workspace,
    sh: &xshell::Shell,
    launchers: &[qemu::Unpacked],
    native_x86: bool,
) -> Result<(usize, Vec<String>)> {
    let fixtures = modelcheck::fixtures_dir(&ws.root)?;
    let (micro, lfm2) = hostile::load_models(&fixtures)?;
    let bpe = models::ensure(sh, &ws.target_dir, &models::SMOLLM2)?;
    let bpe_path = bpe.to_string_lossy().into_owned();
    let qwen2 = fixtures.join("third_party_vocab/ggml-vocab-qwen2.gguf").to_string_lossy().into_owned();
    let models = hostile::Models { micro: &micro, lfm2: &lfm2, bpe_path: &bpe_path, qwen2_vocab: &qwen2 };
    let census: Vec<String> = hostile::census(&models).iter().map(|(f, n)| format!("{n} {f}")).collect();
    let release = |u: &qemu::Unpacked| u.launcher.parent().and_then(Path::parent).map(Path::to_path_buf);
    let lowest_library = |u: &qemu::Unpacked| {
        let tiers = hartlm_variants::tier::for_arch(u.arch);
        release(u).zip(tiers.last()).map(|(r, t)| r.join("lib").join(t.library_file()))
    };
    let cpu = |name: &str, arch: &str, qemu_cpu: Option<&str>| qemu::CpuEntry {
        name: name.into(),
        arch: arch.into(),
        qemu_cpu: qemu_cpu.map(String::from),
        ..qemu::CpuEntry::default()
    };
    const RV64GC: &str = "rv64i,m=true,a=true,f=true,d=true,c=true,zicsr=true,zifencei=true";
    let rv64gcv = format!("{RV64GC},v=true,vlen=256");
    let mut targets = Vec::new();
    for u in launchers {
        let other = launchers.iter().find(|o| o.arch != u.arch);
        let (Some(root), foreign) = (release(u), other.and_then(lowest_library)) else { continue };
        let foreign = foreign.unwrap_or_else(|| root.join("manifest.json"));
        match u.arch {
            Arch::X86_64 if native_x86 => {
                targets.push((
                    cpu("x86-64 (native)", "x86_64", None),
                    root,
                    foreign,
                    Duration::from_secs(30),
                ));
            }
            Arch::X86_64 => {}
            Arch::Riscv64 => {
                for (name, c) in [("rv64gc (qemu)", RV64GC), ("rv64gcv VLEN 256 (qemu)", rv64gcv.as_str())] {
                    targets.push((
                        cpu(name, "riscv64", Some(c)),
                        root.clone(),
                        foreign.clone(),
                        Duration::from_secs(120),
                    ));
                }
            }
        }
    }
    let (mut checks, mut failures) = (0, Vec::new());
    for (cpu, root, foreign, timeout) in targets {
        let name = cpu.name.clone();
        let t0 = Instant::now();
        let target = hostile::Target { cpu, release: &root, foreign_library: &foreign, timeout };
        let scratch = ws.target_dir.join("qemu-test/hostile").join(name.split(' ').next().unwrap_or("x"));
        let rows = hostile::run_all(&target, &scratch, &models)?;
        let failed: Vec<&(String, bool, String)> = rows.iter().filter(|r| !r.1).collect();
        println!(
            "hostile inputs at {name}: {} cases ({}), {} failed, {:.0}s",
            rows.len(),
            census.join(", "),
            failed.len(),
            t0.elapsed().as_secs_f64()
        );
        for (case, _, why) in &failed {
            println!("  FAIL {case}: {why}");
            failures.push(format!("hostile input at {name}: `{case}`: {why}"));
        }
        checks += rows.len();
    }
    Ok((checks, failures))
}

fn finish(checks: usize, failures: Vec<String>) -> Result<()> {
    println!("test-qemu: {} passed, {} failed", checks - failures.len().min(checks), failures.len());
    if !failures.is_empty() {
        bail!("test-qemu failures:\n  {}", failures.join("\n  "));
    }
    Ok(())
}
