//! qemu built from Debian's verified 10.0.2 source: our qemu-riscv64 with `xtask/qemu/xsmtvdot.patch`
//! (SpacemiT's IME instructions behind the `xsmtvdot`/`xsmtvdotii` CPU properties) and TCG
//! plugins, and stock qemu-riscv64/qemu-x86_64 where no package offers qemu 10.
//!
//! The patched one is built once per patch version into `<tools>/qemu-hartlm/<patch hash>/`
//! (`prereq::ToolDirs`) and shared by the IME rows of `test-qemu` and by `bench-insn`, whose
//! counting plugin needs plugin support.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use xshell::{Shell, cmd};

use crate::prereq::{self, Needs};

const QEMU_VERSION: &str = prereq::PINNED_QEMU;
const QEMU_ORIG_URL: &str = "https://deb.debian.org/debian/pool/main/q/qemu/qemu_10.0.2+ds.orig.tar.xz";
const QEMU_ORIG_SHA256: &str = "0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1";
const PIP_PACKAGES: &[&str] = &["meson", "pycotap"];
/// The patch, relative to the workspace root.
pub const PATCH: &str = "xtask/qemu/xsmtvdot.patch";

/// A built qemu-riscv64 and the source tree it came from (plugins compile against its headers).
pub struct BuiltQemu {
    pub qemu: PathBuf,
    pub source: PathBuf,
}

/// Downloads `url` to `dest` (through a `.part` file renamed once complete) and refuses a
/// file whose sha256 is not `sha256`.
pub fn download_verified(sh: &Shell, url: &str, sha256: &str, dest: &Path) -> Result<()> {
    // Callers run before the build tools are installed (fetch-models extracts the chat
    // templates from the llama.cpp sdist), so curl is asked for here.
    prereq::ensure(sh, Needs::default().with_apt(&["curl"]))?;
    let part = dest.with_extension("part");
    cmd!(sh, "curl -fsSL --retry 3 -o {part} {url}").run().with_context(|| format!("downloading {url}"))?;
    let got = format!("{:x}", Sha256::digest(std::fs::read(&part)?));
    if got != sha256 {
        bail!("{url} has sha256 {got}, expected {sha256}; refusing to build it");
    }
    std::fs::rename(&part, dest)?;
    Ok(())
}

/// The patched qemu, building it first if this version of the patch has not been built.
pub fn ensure(sh: &Shell, root: &Path) -> Result<BuiltQemu> {
    let patch = root.join(PATCH);
    let patch_text = std::fs::read(&patch).with_context(|| format!("reading {}", patch.display()))?;
    let key = format!("{:x}", Sha256::digest(&patch_text));
    let top = prereq::tool_dirs().qemu_hartlm();
    let dir = top.join(&key[..12]);
    let source = dir.join(format!("qemu-{QEMU_VERSION}"));
    let qemu = source.join("build/qemu-riscv64");
    ensure_build_tools(sh)?;
    if qemu.is_file() {
        return Ok(BuiltQemu { qemu, source });
    }
    eprintln!("qemu: configuring and building qemu-riscv64 with {PATCH} and plugins (a few minutes, once)");
    unpack_and_build(sh, &top, &dir, Some(&patch), &["riscv64"], "--enable-plugins")?;
    Ok(BuiltQemu { qemu, source })
}

/// Unpacks Debian's verified qemu source into `dir` (tarball cached in `cache`), applies
/// `patch`, and builds the `<arch>-linux-user` emulators.
fn unpack_and_build(
    sh: &Shell,
    cache: &Path,
    dir: &Path,
    patch: Option<&Path>,
    arches: &[&str],
    extra: &str,
) -> Result<PathBuf> {
    std::fs::create_dir_all(cache)?;
    std::fs::create_dir_all(dir)?;
    let tarball = cache.join(format!("qemu_{QEMU_VERSION}+ds.orig.tar.xz"));
    if !tarball.is_file() {
        eprintln!("qemu: downloading Debian's qemu {QEMU_VERSION} source");
        download_verified(sh, QEMU_ORIG_URL, QEMU_ORIG_SHA256, &tarball)?;
    }
    let source = dir.join(format!("qemu-{QEMU_VERSION}"));
    if source.exists() {
        std::fs::remove_dir_all(&source)?;
    }
    cmd!(sh, "tar -C {dir} -xf {tarball}").run()?;
    if let Some(patch) = patch {
        cmd!(sh, "patch -d {source} -p1 --quiet -i {patch}")
            .run()
            .with_context(|| format!("applying {}", patch.display()))?;
    }
    let build = source.join("build");
    std::fs::create_dir_all(&build)?;
    let _d = sh.push_dir(&build);
    let targets: Vec<String> = arches.iter().map(|a| format!("{a}-linux-user")).collect();
    let target_list = format!("--target-list={}", targets.join(","));
    let extra: Vec<&str> = extra.split_whitespace().collect();
    cmd!(
        sh,
        "../configure {target_list} {extra...} --disable-system --disable-tools --disable-docs --disable-install-blobs"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .context("configuring qemu")?;
    let binaries: Vec<String> = arches.iter().map(|a| format!("qemu-{a}")).collect();
    cmd!(sh, "ninja {binaries...}").quiet().ignore_stdout().run().context("building qemu")?;
    Ok(build)
}

/// Stock qemu-riscv64 and qemu-x86_64 at [`QEMU_VERSION`] in `<into>/bin`, for systems whose
/// packages are older than the CPU matrix needs (the prerequisite plan's `BuildQemu`).
pub fn build_pinned(sh: &Shell, into: &Path) -> Result<()> {
    ensure_build_tools(sh)?;
    eprintln!("qemu: building qemu-riscv64 and qemu-x86_64 {QEMU_VERSION} from source (a few minutes, once)");
    let build =
        unpack_and_build(sh, &prereq::tool_dirs().qemu_hartlm(), into, None, &["riscv64", "x86_64"], "")?;
    let bin = into.join("bin");
    std::fs::create_dir_all(&bin)?;
    for name in ["qemu-riscv64", "qemu-x86_64"] {
        std::fs::copy(build.join(name), bin.join(name)).with_context(|| format!("installing {name}"))?;
    }
    let _ = std::fs::remove_dir_all(into.join(format!("qemu-{QEMU_VERSION}")));
    Ok(())
}

fn ensure_build_tools(sh: &Shell) -> Result<()> {
    prereq::ensure(sh, Needs::default().with_apt(prereq::QEMU_BUILD_PACKAGES))?;
    if !prereq::python_has(sh, "mesonbuild") {
        prereq::pip_install(sh, PIP_PACKAGES)?;
    }
    Ok(())
}

/// The emulator's own tests: `xtask/qemu/xsmtvdot-test.c`, cross-compiled, run at each IME
/// profile and, on a CPU without the extension, expected to raise SIGILL. (name, ok, output).
pub fn self_test(
    sh: &Shell,
    root: &Path,
    target_dir: &Path,
    qemu: &Path,
) -> Result<Vec<(String, bool, String)>> {
    let source = root.join("xtask/qemu/xsmtvdot-test.c");
    let binary = target_dir.join("qemu-hartlm/xsmtvdot-test");
    cmd!(sh, "riscv64-linux-gnu-gcc -O1 -march=rv64gcv -Wall -Wextra -Werror -o {binary} {source}")
        .run()
        .context("compiling the IME emulator tests")?;
    const BASE: &str = "rv64i,m=true,a=true,f=true,d=true,c=true,zicsr=true,zifencei=true,v=true";
    let cases = [
        ("IME1 tiles at VLEN 256 (X60/X100)", format!("{BASE},vlen=256,xsmtvdot=true"), None),
        ("IME1 tiles at VLEN 1024 (A100)", format!("{BASE},vlen=1024,xsmtvdot=true"), None),
        (
            "IME2 int4 tiles at VLEN 1024 (A100)",
            format!("{BASE},vlen=1024,xsmtvdot=true,xsmtvdotii=true"),
            Some("--int4"),
        ),
        ("SIGILL without the extension", format!("{BASE},vlen=256"), Some("--expect-sigill")),
    ];
    let mut out = Vec::new();
    for (name, cpu, arg) in cases {
        let run = std::process::Command::new(qemu)
            .args(["-L", "/usr/riscv64-linux-gnu", "-cpu", &cpu])
            .arg(&binary)
            .args(arg)
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        let text =
            String::from_utf8_lossy(&run.stdout).trim().to_string() + &String::from_utf8_lossy(&run.stderr);
        let last = text.lines().last().unwrap_or("").to_string();
        out.push((format!("{name}: {last}"), run.status.success(), text));
    }
    Ok(out)
}
