//! `cargo xtask test-qemu`: the packaged launcher on every CPU of ci/qemu-matrix.toml (`qemu`),
//! then the launcher fault, core placement and fixture-model checks, with one pass/fail count.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::time::Instant;

use hartlm_variants::Arch;

use crate::flags::Part;
use crate::prereq::{self, Needs};
use crate::workspace::Workspace;
use crate::{dist, faults, genfix, hetero, modelcheck, models, qemu, qemu_build};

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
        arches
            .iter()
            .map(|a| ws.dist_dir().join(format!("{}.tar.gz", dist::archive_name(&ws.version, *a))))
            .collect()
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
        let built = qemu_build::ensure(&sh, &ws.root, &ws.target_dir)?;
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

fn finish(checks: usize, failures: Vec<String>) -> Result<()> {
    println!("test-qemu: {} passed, {} failed", checks - failures.len().min(checks), failures.len());
    if !failures.is_empty() {
        bail!("test-qemu failures:\n  {}", failures.join("\n  "));
    }
    Ok(())
}
