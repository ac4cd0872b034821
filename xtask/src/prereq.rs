//! Prerequisites (rustup targets, the riscv64 cross toolchain, qemu-user >= 10, other apt
//! packages, a Python venv for pip): what is missing, the plan to install it (pure, tested on
//! Debian 12, Debian 13 and Ubuntu 24.04 as plain data), and carrying it out.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use xshell::{Shell, cmd};

use hartlm_variants::Arch;

use crate::workspace::Workspace;

/// The qemu CPU matrix needs qemu 10.0 (`rva23u64`, `tt-ascalon`, bare `rv64i` with `zicbop`).
pub const MIN_QEMU_MAJOR: u32 = 10;
/// The qemu built from source where no package offers [`MIN_QEMU_MAJOR`] (Ubuntu 24.04 has 8.2).
pub const PINNED_QEMU: &str = "10.0.2";
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/hartlm-backports.list";

/// Where xtask keeps the tools it makes itself: the Python venv every pip package goes into
/// (PEP 668 forbids system-wide pip on Debian 12+/Ubuntu 24.04), qemu built from source, and
/// our patched qemu. Under the target directory, or `HARTLM_TOOLS_DIR` (CI caches that
/// directory apart from cargo's). The venv's and the built qemu's `bin` go first on PATH
/// ([`init`]).
#[derive(Clone, Debug)]
pub struct ToolDirs {
    pub root: PathBuf,
    pub venv: PathBuf,
    pub qemu: PathBuf,
}

static TOOL_DIRS: OnceLock<ToolDirs> = OnceLock::new();

impl ToolDirs {
    pub fn under(root: &Path) -> ToolDirs {
        ToolDirs {
            root: root.to_path_buf(),
            venv: root.join("python"),
            qemu: root.join(format!("qemu-{PINNED_QEMU}")),
        }
    }
    pub fn venv_python(&self) -> PathBuf {
        self.venv.join("bin/python3")
    }
    pub fn qemu_bin(&self) -> PathBuf {
        self.qemu.join("bin")
    }
    /// Our patched qemu's builds and the cached source tarball (`qemu_build`).
    pub fn qemu_hartlm(&self) -> PathBuf {
        self.root.join("qemu-hartlm")
    }
}

/// Records the tool directories and puts their `bin` first on this process's PATH, so every
/// child (xshell commands, `cargo test`, the Python checks) finds the venv's python3 and the
/// built qemu once they exist. Call once, at start.
pub fn init(ws: &Workspace) {
    let root = std::env::var_os("HARTLM_TOOLS_DIR").map_or_else(|| ws.target_dir.clone(), PathBuf::from);
    let dirs = ToolDirs::under(&root);
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dirs.venv.join("bin"), dirs.qemu_bin()];
    paths.extend(std::env::split_paths(&old));
    if let Ok(path) = std::env::join_paths(paths) {
        // SAFETY: called from main before any thread is spawned, so nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("PATH", path) };
    }
    let _ = TOOL_DIRS.set(dirs);
}

pub fn tool_dirs() -> ToolDirs {
    TOOL_DIRS.get().cloned().unwrap_or_else(|| ToolDirs::under(Path::new("target")))
}

/// What a command needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub build_riscv64: bool,
    pub build_x86_64: bool,
    pub qemu_riscv64: bool,
    pub qemu_x86_64: bool,
    /// A Python with a working pip (the project venv).
    pub python: bool,
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
    pub fn with_python(mut self) -> Needs {
        self.python = true;
        self
    }
    pub fn with_apt(mut self, packages: &'static [&'static str]) -> Needs {
        self.apt = packages;
        self
    }
    /// Everything `cargo xtask test` and CI use.
    pub fn everything() -> Needs {
        let all = [Arch::Riscv64, Arch::X86_64];
        Needs::build(&all).with_qemu(&all).with_python()
    }
}

/// The fields of /etc/os-release the plan depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `debian`, `ubuntu`, ...
    pub id: String,
    /// `12`, `13`, `24.04`.
    pub version_id: String,
    /// `bookworm`, `trixie`, `noble`.
    pub codename: String,
}

impl OsRelease {
    pub fn parse(text: &str) -> OsRelease {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
                .unwrap_or_default()
        };
        OsRelease { id: field("ID"), version_id: field("VERSION_ID"), codename: field("VERSION_CODENAME") }
    }
}

/// What the machine has, as plain data.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub rust_targets: Vec<String>,
    pub cross_gcc: bool,
    pub cross_libc: bool,
    /// `qemu-riscv64 --version` / `qemu-x86_64 --version` major versions (on PATH, which
    /// includes the built qemu).
    pub qemu_riscv64: Option<u32>,
    pub qemu_x86_64: Option<u32>,
    pub is_root: bool,
    pub has_apt: bool,
    pub os: OsRelease,
    /// Contents of the apt source files, to reuse the configured mirror for backports.
    pub apt_sources: String,
    /// The version apt would install of `qemu-user` from the configured suites
    /// (`apt-cache policy`'s Candidate, e.g. `1:8.2.2+ds-0ubuntu1.4`), if any.
    pub qemu_candidate: Option<String>,
    /// Which of the needed `apt` packages are installed.
    pub apt_installed: Vec<String>,
    /// `python3` runs; it can create a venv with pip (`ensurepip`, Debian's `python3-venv`).
    pub python3: bool,
    pub python_venv_module: bool,
    /// The project venv exists and its pip runs.
    pub venv_ready: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    RustupTarget(String),
    Apt(Vec<String>),
    /// Add a backports source line, then install these packages from `<codename>-backports`.
    AptBackports {
        line: String,
        suite: String,
        packages: Vec<String>,
    },
    /// `python3 -m venv` the project venv (pip goes there, never into the system Python).
    PythonVenv(PathBuf),
    /// Build qemu-riscv64 and qemu-x86_64 at this version from Debian's verified source
    /// tarball into the tool directory (after `Apt` installed the build packages).
    BuildQemu {
        version: String,
        into: PathBuf,
    },
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
            Step::PythonVenv(dir) => vec![format!("python3 -m venv {}", dir.display())],
            Step::BuildQemu { version, into } => {
                vec![format!("cargo xtask setup  # builds qemu {version} into {}", into.display())]
            }
        }
    }

    /// Whether the step changes the system (and so needs root and apt).
    fn needs_root(&self) -> bool {
        matches!(self, Step::Apt(_) | Step::AptBackports { .. })
    }
}

/// Parses the major version from `qemu-riscv64 version 10.0.2 (Debian ...)`.
pub fn parse_qemu_major(version_output: &str) -> Option<u32> {
    let rest = version_output.split("version ").nth(1)?;
    rest.split(['.', ' ']).next()?.parse().ok()
}

/// The upstream major version of a Debian package version: `1:10.0.2+ds-2` → 10.
pub fn debian_version_major(version: &str) -> Option<u32> {
    let upstream = version.split_once(':').map_or(version, |(_, v)| v);
    upstream.split(['.', '+', '-', '~']).next()?.parse().ok()
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

/// Packages the qemu source build needs (meson comes from pip, into the venv).
pub const QEMU_BUILD_PACKAGES: &[&str] =
    &["libglib2.0-dev", "ninja-build", "flex", "bison", "pkg-config", "curl", "xz-utils", "patch", "make"];

/// Where qemu >= [`MIN_QEMU_MAJOR`] comes from on this system.
#[derive(Clone, Debug, PartialEq, Eq)]
enum QemuSource {
    Apt,
    Backports(String),
    Build,
}

fn qemu_source(obs: &Observed) -> Result<QemuSource> {
    let packaged = obs.qemu_candidate.as_deref().and_then(debian_version_major);
    if packaged.is_some_and(|m| m >= MIN_QEMU_MAJOR) {
        return Ok(QemuSource::Apt);
    }
    // Debian 12 has qemu 7.2 in main and 10.0 in bookworm-backports.
    if obs.os.id == "debian" && obs.os.codename == "bookworm" {
        let Some(line) = backports_line(&obs.apt_sources, "bookworm") else {
            bail!(
                "qemu-user >= {MIN_QEMU_MAJOR} is needed; on Debian 12 it comes from bookworm-backports, \
                 but no apt source for bookworm was found to derive it from"
            );
        };
        return Ok(QemuSource::Backports(line));
    }
    Ok(QemuSource::Build)
}

/// Decides what to install. Returns the steps, or an explanation when qemu cannot be had.
pub fn plan(needs: Needs, obs: &Observed, dirs: &ToolDirs) -> Result<Vec<Step>> {
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
    let mut apt: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        if !apt.iter().any(|a| a == p) {
            apt.push(p.to_string());
        }
    };
    if needs.build_riscv64 && !obs.cross_gcc {
        add("gcc-riscv64-linux-gnu");
    }
    if needs.build_riscv64 && !obs.cross_libc {
        add("libc6-dev-riscv64-cross");
    }
    for p in needs.apt.iter().filter(|p| !obs.apt_installed.iter().any(|i| i == *p)) {
        add(p);
    }
    let qemu_ok = |v: Option<u32>| v.is_some_and(|m| m >= MIN_QEMU_MAJOR);
    let qemu_missing = (needs.qemu_riscv64 && !qemu_ok(obs.qemu_riscv64))
        || (needs.qemu_x86_64 && !qemu_ok(obs.qemu_x86_64));
    let qemu = if qemu_missing { Some(qemu_source(obs)?) } else { None };
    let python = needs.python || qemu == Some(QemuSource::Build);
    if python && !obs.venv_ready {
        if !obs.python3 {
            add("python3");
        }
        if !obs.python_venv_module {
            add("python3-venv");
        }
    }
    match &qemu {
        Some(QemuSource::Apt) => add("qemu-user"),
        Some(QemuSource::Build) => QEMU_BUILD_PACKAGES.iter().for_each(|p| add(p)),
        _ => {}
    }
    if !apt.is_empty() {
        steps.push(Step::Apt(apt));
    }
    if let Some(QemuSource::Backports(line)) = &qemu {
        steps.push(Step::AptBackports {
            line: line.clone(),
            suite: "bookworm-backports".into(),
            packages: vec!["qemu-user".into()],
        });
    }
    if python && !obs.venv_ready {
        steps.push(Step::PythonVenv(dirs.venv.clone()));
    }
    if qemu == Some(QemuSource::Build) {
        steps.push(Step::BuildQemu { version: PINNED_QEMU.into(), into: dirs.qemu.clone() });
    }
    Ok(steps)
}

fn observe(sh: &Shell, needs: Needs, dirs: &ToolDirs) -> Observed {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let qemu = |bin: &str| {
        cmd!(sh, "{bin} --version").quiet().ignore_stderr().read().ok().and_then(|s| parse_qemu_major(&s))
    };
    let runs = |program: &str, args: &[&str]| {
        cmd!(sh, "{program} {args...}").quiet().ignore_stdout().ignore_stderr().run().is_ok()
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
    let venv_python = dirs.venv_python();
    // Only what this plan can use is probed: most commands need neither qemu nor Python.
    let wants_qemu = needs.qemu_riscv64 || needs.qemu_x86_64;
    let wants_python = needs.python || wants_qemu;
    Observed {
        rust_targets: cmd!(sh, "rustup target list --installed")
            .quiet()
            .ignore_stderr()
            .read()
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        cross_gcc: runs("riscv64-linux-gnu-gcc", &["--version"]),
        cross_libc: Path::new("/usr/riscv64-linux-gnu/lib/libc.so").exists(),
        qemu_riscv64: qemu("qemu-riscv64"),
        qemu_x86_64: qemu("qemu-x86_64"),
        is_root: read("/proc/self/status")
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
            .unwrap_or(false),
        has_apt: Path::new("/usr/bin/apt-get").exists(),
        os: OsRelease::parse(&read("/etc/os-release")),
        apt_sources,
        qemu_candidate: wants_qemu
            .then(|| cmd!(sh, "apt-cache policy qemu-user").quiet().ignore_stderr().read().ok())
            .flatten()
            .and_then(|s| {
                s.lines().find_map(|l| l.trim().strip_prefix("Candidate:").map(|v| v.trim().to_string()))
            })
            .filter(|v| v != "(none)"),
        apt_installed: needs
            .apt
            .iter()
            .chain(if wants_qemu { QEMU_BUILD_PACKAGES } else { &[] })
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
        python3: wants_python && runs("python3", &["-c", "pass"]),
        python_venv_module: wants_python && runs("python3", &["-c", "import venv, ensurepip"]),
        venv_ready: wants_python
            && venv_python.is_file()
            && runs(&venv_python.to_string_lossy(), &["-m", "pip", "--version"]),
    }
}

fn ensure_venv(sh: &Shell) -> Result<()> {
    if tool_dirs().venv_python().is_file() {
        return Ok(());
    }
    ensure(sh, Needs::default().with_python())
}

/// Whether the project venv's Python can import these modules (`"numpy, gguf"`); creates the
/// venv first if needed, so later `python3` calls (found first on PATH) are the venv's.
pub fn python_has(sh: &Shell, modules: &str) -> bool {
    if ensure_venv(sh).is_err() {
        return false;
    }
    let python = tool_dirs().venv_python();
    let statement = format!("import {modules}");
    cmd!(sh, "{python} -c {statement}").quiet().ignore_stderr().run().is_ok()
}

/// Installs into the project venv (created first if needed).
pub fn pip_install(sh: &Shell, packages: &[&str]) -> Result<()> {
    ensure_venv(sh)?;
    let python = tool_dirs().venv_python();
    eprintln!("xtask: pip install {} (into {})", packages.join(" "), tool_dirs().venv.display());
    cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check {packages...}")
        .run()
        .with_context(|| format!("pip install {} failed; install them yourself", packages.join(" ")))
}

pub fn ensure(sh: &Shell, needs: Needs) -> Result<()> {
    let dirs = tool_dirs();
    let obs = observe(sh, needs, &dirs);
    let steps = plan(needs, &obs, &dirs)?;
    if steps.is_empty() {
        return Ok(());
    }
    if steps.iter().any(Step::needs_root) && !(obs.is_root && obs.has_apt) {
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
            Step::PythonVenv(dir) => {
                // A restored (cached) venv may work now that apt installed its python3.
                let python = dir.join("bin/python3");
                if cmd!(sh, "{python} -m pip --version").quiet().ignore_stdout().ignore_stderr().run().is_ok()
                {
                    continue;
                }
                if dir.exists() {
                    std::fs::remove_dir_all(dir)
                        .with_context(|| format!("removing a broken {}", dir.display()))?;
                }
                cmd!(sh, "python3 -m venv {dir}")
                    .run()
                    .with_context(|| format!("creating the Python venv {}", dir.display()))?;
            }
            Step::BuildQemu { into, .. } => crate::qemu_build::build_pinned(sh, into)?,
        }
    }
    let after = plan(needs, &observe(sh, needs, &dirs), &dirs)?;
    if !after.is_empty() {
        bail!("prerequisites still missing after installing: {after:?}");
    }
    Ok(())
}

/// `cargo xtask setup [--all]`.
pub fn setup(ws: &Workspace, all: bool) -> Result<()> {
    let sh = ws.shell()?;
    ensure(&sh, Needs::everything())?;
    if all {
        crate::lint::ensure_tools(&sh)?;
        crate::genfix::ensure_python(&sh)?;
        crate::servecheck::ensure_python(&sh)?;
        let qemu = crate::qemu_build::ensure(&sh, &ws.root)?;
        let sde = crate::sde::ensure(&sh)?;
        eprintln!("xtask: patched qemu: {}; Intel SDE: {}", qemu.qemu.display(), sde.display());
    }
    eprintln!("xtask: all prerequisites present (Python venv: {})", tool_dirs().venv.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> ToolDirs {
        ToolDirs::under(Path::new("/w/target"))
    }

    /// A fresh root container or VM of each distribution, as `observe` would read it.
    fn fresh(os_release: &str, sources: &str, qemu_candidate: &str) -> Observed {
        Observed {
            rust_targets: vec!["x86_64-unknown-linux-gnu".into()],
            is_root: true,
            has_apt: true,
            os: OsRelease::parse(os_release),
            apt_sources: sources.into(),
            qemu_candidate: Some(qemu_candidate.into()),
            python3: true,
            ..Observed::default()
        }
    }

    fn debian12() -> Observed {
        fresh(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
             VERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
             Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\n\
             Suites: bookworm-security\n",
            "1:7.2+dfsg-7+deb12u16",
        )
    }

    fn debian13() -> Observed {
        fresh(
            "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\nID=debian\n",
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie trixie-updates\nComponents: main\n",
            "1:10.0.2+ds-2+deb13u1",
        )
    }

    fn ubuntu2404() -> Observed {
        fresh(
            "PRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\n\
             VERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n",
            "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble noble-updates noble-backports\n\
             Components: main universe restricted multiverse\n",
            "1:8.2.2+ds-0ubuntu1.10",
        )
    }

    /// Applies a plan's effects to the observation, as running it would.
    fn carry_out(mut o: Observed, steps: &[Step]) -> Observed {
        for step in steps {
            match step {
                Step::RustupTarget(t) => o.rust_targets.push(t.clone()),
                Step::Apt(p) | Step::AptBackports { packages: p, .. } => {
                    let backports = matches!(step, Step::AptBackports { .. });
                    for p in p {
                        match p.as_str() {
                            "gcc-riscv64-linux-gnu" => o.cross_gcc = true,
                            "libc6-dev-riscv64-cross" => o.cross_libc = true,
                            "python3" => o.python3 = true,
                            "python3-venv" => o.python_venv_module = true,
                            "qemu-user" => {
                                let v = if backports {
                                    Some(10)
                                } else {
                                    o.qemu_candidate.as_deref().and_then(debian_version_major)
                                };
                                (o.qemu_riscv64, o.qemu_x86_64) = (v, v);
                            }
                            _ => {}
                        }
                        o.apt_installed.push(p.clone());
                    }
                }
                Step::PythonVenv(_) => {
                    assert!(o.python3 && o.python_venv_module, "a venv needs python3 and ensurepip");
                    o.venv_ready = true;
                }
                Step::BuildQemu { version, .. } => {
                    assert!(o.venv_ready, "meson comes from pip, into the venv");
                    let v = version.split('.').next().and_then(|m| m.parse().ok());
                    (o.qemu_riscv64, o.qemu_x86_64) = (v, v);
                }
            }
        }
        o
    }

    /// On each supported distribution, from fresh, the plan ends with qemu >= 10 for both
    /// architectures and a venv with pip, and planning again finds nothing left to do.
    #[test]
    fn every_distribution_ends_with_qemu_10_and_a_working_pip() {
        for (name, o) in
            [("Debian 12", debian12()), ("Debian 13", debian13()), ("Ubuntu 24.04", ubuntu2404())]
        {
            let steps = plan(Needs::everything(), &o, &dirs()).unwrap();
            let after = carry_out(o, &steps);
            assert!(
                after.qemu_riscv64 >= Some(MIN_QEMU_MAJOR) && after.qemu_x86_64 >= Some(MIN_QEMU_MAJOR),
                "{name}: {steps:?}"
            );
            assert!(after.venv_ready, "{name}: {steps:?}");
            assert_eq!(plan(Needs::everything(), &after, &dirs()).unwrap(), vec![], "{name}");
        }
    }

    #[test]
    fn debian_12_takes_qemu_from_backports_and_pip_into_a_venv() {
        let steps = plan(Needs::everything(), &debian12(), &dirs()).unwrap();
        assert_eq!(
            steps,
            vec![
                Step::RustupTarget("riscv64gc-unknown-linux-gnu".into()),
                Step::Apt(vec![
                    "gcc-riscv64-linux-gnu".into(),
                    "libc6-dev-riscv64-cross".into(),
                    "python3-venv".into()
                ]),
                Step::AptBackports {
                    line: "deb http://mirror.example/debian bookworm-backports main".into(),
                    suite: "bookworm-backports".into(),
                    packages: vec!["qemu-user".into()],
                },
                Step::PythonVenv("/w/target/python".into()),
            ]
        );
    }

    #[test]
    fn debian_13_has_qemu_10_in_main() {
        let steps = plan(Needs::default().with_qemu(&[Arch::Riscv64]), &debian13(), &dirs()).unwrap();
        assert_eq!(steps, vec![Step::Apt(vec!["qemu-user".into()])]);
    }

    /// Ubuntu 24.04 packages qemu 8.2, which lacks the matrix's CPUs: build 10.0.2, with meson
    /// from pip into the venv first.
    #[test]
    fn ubuntu_24_04_builds_the_pinned_qemu() {
        let steps = plan(Needs::default().with_qemu(&[Arch::X86_64]), &ubuntu2404(), &dirs()).unwrap();
        let mut apt = vec!["python3-venv".to_string()];
        apt.extend(QEMU_BUILD_PACKAGES.iter().map(|p| p.to_string()));
        assert_eq!(
            steps,
            vec![
                Step::Apt(apt),
                Step::PythonVenv("/w/target/python".into()),
                Step::BuildQemu { version: "10.0.2".into(), into: "/w/target/qemu-10.0.2".into() },
            ]
        );
    }

    #[test]
    fn complete_machine_needs_nothing() {
        let mut o = debian12();
        o.rust_targets.push("riscv64gc-unknown-linux-gnu".into());
        o.cross_gcc = true;
        o.cross_libc = true;
        o.qemu_riscv64 = Some(10);
        o.qemu_x86_64 = Some(10);
        o.venv_ready = true;
        assert!(plan(Needs::everything(), &o, &dirs()).unwrap().is_empty());
    }

    #[test]
    fn qemu_8_is_not_enough() {
        let mut o = debian13();
        o.qemu_riscv64 = Some(8);
        assert_eq!(
            plan(Needs::default().with_qemu(&[Arch::Riscv64]), &o, &dirs()).unwrap(),
            vec![Step::Apt(vec!["qemu-user".into()])]
        );
    }

    #[test]
    fn bookworm_without_a_source_line_is_explained() {
        let mut o = debian12();
        o.apt_sources.clear();
        let e = plan(Needs::default().with_qemu(&[Arch::Riscv64]), &o, &dirs()).unwrap_err();
        assert!(e.to_string().contains("bookworm-backports"), "{e}");
    }

    #[test]
    fn extra_apt_packages_are_installed_only_when_missing() {
        let mut o = debian12();
        o.apt_installed = vec!["flex".into()];
        let steps = plan(Needs::default().with_apt(&["flex", "shellcheck"]), &o, &dirs()).unwrap();
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
    fn version_parsing() {
        assert_eq!(parse_qemu_major("qemu-riscv64 version 10.0.2 (Debian 1:10.0.2+ds-2)"), Some(10));
        assert_eq!(parse_qemu_major("qemu-riscv64 version 7.2.15"), Some(7));
        assert_eq!(parse_qemu_major("garbage"), None);
        assert_eq!(debian_version_major("1:8.2.2+ds-0ubuntu1.10"), Some(8));
        assert_eq!(debian_version_major("1:10.0.2+ds-2+deb13u1~bpo12+1"), Some(10));
        assert_eq!(debian_version_major("7.2"), Some(7));
        assert_eq!(debian_version_major("(none)"), None);
    }

    #[test]
    fn os_release_fields() {
        let o = ubuntu2404().os;
        assert_eq!((o.id.as_str(), o.version_id.as_str(), o.codename.as_str()), ("ubuntu", "24.04", "noble"));
    }
}
