//! `cargo xtask test`, everything CI checks, as one list of steps ([`STEPS`]) that the test
//! command runs in order and `workflows` turns into the CI jobs; and `reproducible`, one step.

use anyhow::{Context, Result, bail};
use xshell::cmd;

use hartlm_variants::Arch;

use crate::prereq::{self, Needs};
use crate::workspace::Workspace;

/// The CI job a step runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// fmt, clippy, workflow lint, unit and fixture tests.
    Lint,
    /// The release built twice, byte for byte.
    Reproducible,
    /// The packaged tiers under qemu. CI runs this step as one job per CPU plus one for the
    /// checks (`test-qemu --cpu NAME`, `--part checks`).
    Qemu,
}

/// One check: its name in CI and the command it runs from the repository root.
pub struct Step {
    pub job: Job,
    pub name: &'static str,
    pub command: &'static str,
}

/// Everything `cargo xtask test` runs, in order; the CI workflow's jobs are generated from it.
pub const STEPS: &[Step] = &[
    Step { job: Job::Lint, name: "Formatting", command: "cargo fmt --all -- --check" },
    Step {
        job: Job::Lint,
        name: "Clippy",
        command: "cargo clippy --workspace --all-targets --locked -- -D warnings",
    },
    Step { job: Job::Lint, name: "Clippy for every kernel family", command: "cargo xtask clippy-tiers" },
    Step {
        job: Job::Lint,
        name: "Workflows match their sources; actionlint, zizmor, shellcheck",
        command: "cargo xtask ci check",
    },
    Step {
        job: Job::Lint,
        name: "Fetch the real model and generate fixtures",
        command: "cargo xtask fetch-models",
    },
    Step { job: Job::Lint, name: "Unit and fixture tests", command: "cargo test --workspace --locked" },
    Step { job: Job::Reproducible, name: "Build twice and compare", command: "cargo xtask reproducible" },
    Step {
        job: Job::Qemu,
        name: "Every tier under qemu, then the checks",
        command: "cargo xtask test-qemu --no-build",
    },
];

/// The steps of one CI job.
pub fn steps_of(job: Job) -> impl Iterator<Item = &'static Step> {
    STEPS.iter().filter(move |s| s.job == job)
}

/// `cargo xtask test`: installs what every step needs, then runs [`STEPS`] in order.
pub fn command(ws: &Workspace) -> Result<()> {
    let sh = ws.shell()?;
    prereq::ensure(&sh, Needs::everything())?;
    for (i, step) in STEPS.iter().enumerate() {
        eprintln!("== [{}/{}] {}: {}", i + 1, STEPS.len(), step.name, step.command);
        let words: Vec<&str> = step.command.split_whitespace().collect();
        let (program, args) = words.split_first().context("empty step")?;
        if let Err(e) = cmd!(sh, "{program} {args...}").run() {
            bail!("step `{}` failed ({e}); rerun it alone with `{}`", step.name, step.command);
        }
    }
    Ok(())
}

/// Builds the release twice, recompiling hartlm's crates in between: the archives must be
/// byte-identical, and `sha256sum -c` must accept the second.
pub fn reproducible(ws: &Workspace) -> Result<()> {
    let all = [Arch::Riscv64, Arch::X86_64];
    let sh = ws.shell()?;
    eprintln!("== dist, twice, recompiling hartlm's crates in between: the archives must be byte-identical");
    let sums = ws.dist_dir().join("SHA256SUMS");
    for p in crate::dist::command(ws, &all)? {
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    let first = std::fs::read(&sums)?;
    std::fs::remove_file(&sums)?;
    crate::tierbuild::clean_own_crates(&sh, ws, &crate::tierbuild::select_tiers(&all, None)?)?;
    crate::dist::command(ws, &all)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_has_steps_and_the_qemu_step_comes_last() {
        for job in [Job::Lint, Job::Reproducible, Job::Qemu] {
            assert!(steps_of(job).count() > 0, "{job:?}");
        }
        assert_eq!(STEPS.last().map(|s| s.job), Some(Job::Qemu), "test-qemu --no-build needs the dist");
        assert!(STEPS.iter().all(|s| !s.command.contains('"')), "commands are split on whitespace");
    }
}
