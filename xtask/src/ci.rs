//! `cargo xtask ci generate` / `ci check`: writes the GitHub workflows from their sources
//! (`workflows`), or fails on drift and lints them (`lint`).

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

use crate::workspace::Workspace;
use crate::{lint, qemu, workflows};

fn workflow_files(ws: &Workspace) -> Result<Vec<(&'static str, String)>> {
    let read = |p: &str| std::fs::read_to_string(ws.root.join(p)).with_context(|| format!("reading {p}"));
    let config = workflows::load_config(&read("ci/workflows.toml")?)?;
    let cpus: Vec<String> =
        qemu::load_matrix(&read("ci/qemu-matrix.toml")?)?.into_iter().map(|e| e.name).collect();
    Ok(workflows::generate(&config, &cpus))
}

/// `cargo xtask ci generate`.
pub fn generate(ws: &Workspace) -> Result<()> {
    for (path, text) in workflow_files(ws)? {
        hartlm_abi::atomic::write_atomic(&ws.root.join(path), text.as_bytes())?;
        println!("wrote {path}");
    }
    Ok(())
}

/// `cargo xtask ci check`.
pub fn check(ws: &Workspace) -> Result<()> {
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
    scripts.push(ws.root.join(crate::dist::INSTALLER));
    lint::run(&sh, &ws.root, &scripts)
}
