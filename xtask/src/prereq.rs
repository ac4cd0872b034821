//! Prerequisites (rustup targets, the riscv64 cross toolchain, qemu-user >= 8, other apt packages,
//! pip packages): what is missing, the plan to install it (pure, tested), and carrying it out.

use anyhow::{Context, Result, bail};
use std::path::Path;
use xshell::{Shell, cmd};

use hartlm_variants::Arch;

use crate::workspace::Workspace;

pub const MIN_QEMU_MAJOR: u32 = 8;
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/hartlm-backports.list";

/// What a command needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub build_riscv64: bool,
    pub build_x86_64: bool,
    pub qemu_riscv64: bool,
    pub qemu_x86_64: bool,
    /// Further Debian packages (build tools, linters).
    pub apt: &'static [&'static str],
}

impl Needs {
    pub fn build(arches: &[Arch]) -> Needs {
        Needs {
            build_riscv64: arches.contains(&Arch::Riscv64),
            build_x86_64: arches.contains(&Arch::X86_64),
            ..Needs::default()
        }
    }
    pub fn with_qemu(mut self, arches: &[Arch]) -> Needs {
        self.qemu_riscv64 = arches.contains(&Arch::Riscv64);
        self.qemu_x86_64 = arches.contains(&Arch::X86_64);
        self
    }
    pub fn with_apt(mut self, packages: &'static [&'static str]) -> Needs {
        self.apt = packages;
        self
    }
}

/// What the machine has, as plain data.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub rust_targets: Vec<String>,
    pub cross_gcc: bool,
    pub cross_libc: bool,
    /// `qemu-riscv64 --version` / `qemu-x86_64 --version` major versions.
    pub qemu_riscv64: Option<u32>,
    pub qemu_x86_64: Option<u32>,
    pub is_root: bool,
    pub has_apt: bool,
    /// VERSION_CODENAME from /etc/os-release.
    pub codename: Option<String>,
    /// Contents of the apt source files, to reuse the configured mirror for backports.
    pub apt_sources: String,
    /// Which of the needed `apt` packages are installed.
    pub apt_installed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    RustupTarget(String),
    /// Add a backports source line, then install these packages from `<codename>-backports`.
    AptBackports {
        line: String,
        suite: String,
        packages: Vec<String>,
    },
    Apt(Vec<String>),
}

impl Step {
    /// The shell commands a person would run for this step.
    pub fn commands(&self) -> Vec<String> {
        match self {
            Step::RustupTarget(t) => vec![format!("rustup target add {t}")],
            Step::Apt(p) => vec!["apt-get update".into(), format!("apt-get install -y {}", p.join(" "))],
            Step::AptBackports { line, suite, packages } => vec![
                format!("echo '{line}' > {BACKPORTS_LIST}"),
                "apt-get update".into(),
                format!("apt-get install -y -t {suite} {}", packages.join(" ")),
            ],
        }
    }
}

/// Parses the major version from `qemu-riscv64 version 10.0.2 (Debian ...)`.
pub fn parse_qemu_major(version_output: &str) -> Option<u32> {
    let rest = version_output.split("version ").nth(1)?;
    rest.split(['.', ' ']).next()?.parse().ok()
}

/// `deb <mirror> <codename>-backports main`, using the mirror apt already uses for `<codename>`
/// (one-line or deb822 sources), so no host is hard-coded.
pub fn backports_line(apt_sources: &str, codename: &str) -> Option<String> {
    for line in apt_sources.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"deb") {
            let uri = words.iter().skip(1).find(|w| !w.starts_with('['))?;
            let suite_pos = words.iter().position(|w| *w == codename);
            if suite_pos.is_some() {
                return Some(format!("deb {uri} {codename}-backports main"));
            }
        }
    }
    // deb822: stanzas separated by blank lines with `URIs:` and `Suites:` fields.
    for stanza in apt_sources.split("\n\n") {
        let field =
            |name: &str| stanza.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
        let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) else {
            continue;
        };
        if suites.split_whitespace().any(|s| s == codename)
            && let Some(uri) = uris.split_whitespace().next()
        {
            return Some(format!("deb {uri} {codename}-backports main"));
        }
    }
    None
}

/// Decides what to install. Returns the steps, or an explanation when qemu cannot be had.
pub fn plan(needs: Needs, obs: &Observed) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut targets = Vec::new();
    if needs.build_riscv64 {
        targets.push(Arch::Riscv64.baseline_triple());
    }
    if needs.build_x86_64 {
        targets.push(Arch::X86_64.baseline_triple());
    }
    for t in targets {
        if !obs.rust_targets.iter().any(|x| x == t) {
            steps.push(Step::RustupTarget(t.to_string()));
        }
    }
    let mut apt = Vec::new();
    if needs.build_riscv64 && !obs.cross_gcc {
        apt.push("gcc-riscv64-linux-gnu".to_string());
    }
    if needs.build_riscv64 && !obs.cross_libc {
        apt.push("libc6-dev-riscv64-cross".to_string());
    }
    apt.extend(
        needs.apt.iter().filter(|p| !obs.apt_installed.iter().any(|i| i == *p)).map(|p| p.to_string()),
    );
    let qemu_ok = |v: Option<u32>| v.is_some_and(|m| m >= MIN_QEMU_MAJOR);
    let qemu_missing = (needs.qemu_riscv64 && !qemu_ok(obs.qemu_riscv64))
        || (needs.qemu_x86_64 && !qemu_ok(obs.qemu_x86_64));
    let mut backports = None;
    if qemu_missing {
        if obs.codename.as_deref() == Some("bookworm") {
            let Some(line) = backports_line(&obs.apt_sources, "bookworm") else {
                bail!(
                    "qemu-user >= {MIN_QEMU_MAJOR} is needed; on Debian 12 it comes from \
                     bookworm-backports, but no apt source for bookworm was found to derive it from"
                );
            };
            backports = Some(Step::AptBackports {
                line,
                suite: "bookworm-backports".into(),
                packages: vec!["qemu-user".into()],
            });
        } else {
            apt.push("qemu-user".to_string());
        }
    }
    if !apt.is_empty() {
        steps.push(Step::Apt(apt));
    }
    steps.extend(backports);
    Ok(steps)
}

fn observe(sh: &Shell, needs: Needs) -> Observed {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let qemu = |bin: &str| {
        cmd!(sh, "{bin} --version").quiet().ignore_stderr().read().ok().and_then(|s| parse_qemu_major(&s))
    };
    let mut apt_sources = read("/etc/apt/sources.list");
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "list" || e == "sources") {
                apt_sources.push_str("\n\n");
                apt_sources.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    Observed {
        rust_targets: cmd!(sh, "rustup target list --installed")
            .quiet()
            .ignore_stderr()
            .read()
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        cross_gcc: cmd!(sh, "riscv64-linux-gnu-gcc --version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok(),
        cross_libc: Path::new("/usr/riscv64-linux-gnu/lib/libc.so").exists(),
        qemu_riscv64: qemu("qemu-riscv64"),
        qemu_x86_64: qemu("qemu-x86_64"),
        is_root: read("/proc/self/status")
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
            .unwrap_or(false),
        has_apt: Path::new("/usr/bin/apt-get").exists(),
        codename: read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(|v| v.trim_matches('"').to_string())),
        apt_sources,
        apt_installed: needs
            .apt
            .iter()
            .filter(|p| {
                let fmt = "${Status}";
                cmd!(sh, "dpkg-query -W -f {fmt} {p}")
                    .quiet()
                    .ignore_stderr()
                    .read()
                    .is_ok_and(|s| s.contains("ok installed"))
            })
            .map(|p| p.to_string())
            .collect(),
    }
}

/// Whether Python can import these modules (`"numpy, gguf"`).
pub fn python_has(sh: &Shell, modules: &str) -> bool {
    let statement = format!("import {modules}");
    cmd!(sh, "python3 -c {statement}").quiet().ignore_stderr().run().is_ok()
}

pub fn pip_install(sh: &Shell, packages: &[&str]) -> Result<()> {
    eprintln!("xtask: pip install {}", packages.join(" "));
    cmd!(sh, "python3 -m pip install --quiet --disable-pip-version-check {packages...}")
        .run()
        .with_context(|| format!("pip install {} failed; install them yourself", packages.join(" ")))
}

pub fn ensure(sh: &Shell, needs: Needs) -> Result<()> {
    let obs = observe(sh, needs);
    let steps = plan(needs, &obs)?;
    if steps.is_empty() {
        return Ok(());
    }
    let apt_needed = steps.iter().any(|s| !matches!(s, Step::RustupTarget(_)));
    if apt_needed && !(obs.is_root && obs.has_apt) {
        let cmds: Vec<String> = steps.iter().flat_map(Step::commands).collect();
        bail!("missing prerequisites; run as root:\n  {}", cmds.join("\n  "));
    }
    let mut apt_updated = false;
    for step in &steps {
        eprintln!("xtask: installing prerequisite: {}", step.commands().join(" && "));
        match step {
            Step::RustupTarget(t) => cmd!(sh, "rustup target add {t}").run()?,
            Step::Apt(packages) => {
                if !apt_updated {
                    cmd!(sh, "apt-get update -qq").run()?;
                    apt_updated = true;
                }
                cmd!(sh, "apt-get install -y -qq {packages...}")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .run()?;
            }
            Step::AptBackports { line, suite, packages } => {
                std::fs::write(BACKPORTS_LIST, format!("{line}\n"))
                    .with_context(|| format!("writing {BACKPORTS_LIST}"))?;
                cmd!(sh, "apt-get update -qq").run()?;
                apt_updated = true;
                cmd!(sh, "apt-get install -y -qq -t {suite} {packages...}")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .run()?;
            }
        }
    }
    let after = plan(needs, &observe(sh, needs))?;
    if !after.is_empty() {
        bail!("prerequisites still missing after installing: {after:?}");
    }
    Ok(())
}

/// `cargo xtask setup`.
pub fn setup(ws: &Workspace) -> Result<()> {
    let all = [Arch::Riscv64, Arch::X86_64];
    ensure(&ws.shell()?, Needs::build(&all).with_qemu(&all))?;
    eprintln!("xtask: all prerequisites present");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bookworm() -> Observed {
        Observed {
            rust_targets: vec!["x86_64-unknown-linux-gnu".into()],
            is_root: true,
            has_apt: true,
            codename: Some("bookworm".into()),
            qemu_riscv64: Some(7),
            apt_sources:
                "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
                          Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\n\
                          Suites: bookworm-security\n"
                    .into(),
            ..Observed::default()
        }
    }

    #[test]
    fn fresh_bookworm_gets_target_cross_tools_and_backported_qemu() {
        let needs = Needs::build(&[Arch::Riscv64, Arch::X86_64]).with_qemu(&[Arch::Riscv64, Arch::X86_64]);
        let steps = plan(needs, &bookworm()).unwrap();
        assert_eq!(
            steps,
            vec![
                Step::RustupTarget("riscv64gc-unknown-linux-gnu".into()),
                Step::Apt(vec!["gcc-riscv64-linux-gnu".into(), "libc6-dev-riscv64-cross".into()]),
                Step::AptBackports {
                    line: "deb http://mirror.example/debian bookworm-backports main".into(),
                    suite: "bookworm-backports".into(),
                    packages: vec!["qemu-user".into()],
                },
            ]
        );
    }

    #[test]
    fn complete_machine_needs_nothing() {
        let mut o = bookworm();
        o.rust_targets.push("riscv64gc-unknown-linux-gnu".into());
        o.cross_gcc = true;
        o.cross_libc = true;
        o.qemu_riscv64 = Some(10);
        o.qemu_x86_64 = Some(10);
        let needs = Needs::build(&[Arch::Riscv64]).with_qemu(&[Arch::Riscv64, Arch::X86_64]);
        assert!(plan(needs, &o).unwrap().is_empty());
    }

    #[test]
    fn other_distributions_install_plain_qemu_user() {
        let mut o = bookworm();
        o.codename = Some("noble".into());
        let steps = plan(Needs::default().with_qemu(&[Arch::Riscv64]), &o).unwrap();
        assert_eq!(steps, vec![Step::Apt(vec!["qemu-user".into()])]);
    }

    #[test]
    fn extra_apt_packages_are_installed_only_when_missing() {
        let mut o = bookworm();
        o.apt_installed = vec!["flex".into()];
        let steps = plan(Needs::default().with_apt(&["flex", "shellcheck"]), &o).unwrap();
        assert_eq!(steps, vec![Step::Apt(vec!["shellcheck".into()])]);
    }

    #[test]
    fn backports_line_from_one_line_sources() {
        let s = "# comment\ndeb [signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n";
        assert_eq!(
            backports_line(s, "bookworm").as_deref(),
            Some("deb http://m.example/debian bookworm-backports main")
        );
        assert_eq!(backports_line("deb http://m.example/debian trixie main", "bookworm"), None);
    }

    #[test]
    fn qemu_version_parsing() {
        assert_eq!(parse_qemu_major("qemu-riscv64 version 10.0.2 (Debian 1:10.0.2+ds-2)"), Some(10));
        assert_eq!(parse_qemu_major("qemu-riscv64 version 7.2.15"), Some(7));
        assert_eq!(parse_qemu_major("garbage"), None);
    }
}
