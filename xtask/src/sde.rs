//! Intel's Software Development Emulator for the x86-64-v4 rows of `test-qemu`: qemu's TCG has no
//! AVX-512, so a host without it runs the v4 tier under SDE, fetched pinned and sha256-checked.
//!
//! The tarball is Intel's `sde-external-10.8.0-2026-03-15-lin.tar.xz`. Its sha256 is the one
//! Intel published for that file, as recorded in petarpetrovt/setup-sde's `index.ts` (commit
//! 574e42111fec078318a53f7650cbc50e2e2ac707), whose `binaries` release mirrors it; Intel's own
//! download page needs a browser. It unpacks once into `<tools>/sde-<version>/`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use xshell::{Shell, cmd};

use crate::prereq::{self, Needs};
use crate::qemu_build::download_verified;

const VERSION: &str = "10.8.0-2026-03-15";
const URL: &str = "https://github.com/petarpetrovt/setup-sde/releases/download/binaries/sde-external-10.8.0-2026-03-15-lin.tar.xz";
const SHA256: &str = "50b320cd226acef7a491f5b321fc1be3c3c7984f9e27a456e64894b5b0979dd3";
/// Names an SDE already installed (its `sde64`) instead of the pinned download.
pub const SDE_ENV: &str = "HARTLM_SDE";

/// The `sde64` to run: `$HARTLM_SDE` if set, else the pinned SDE, downloaded and unpacked first
/// if this tools directory does not have it yet.
pub fn ensure(sh: &Shell) -> Result<PathBuf> {
    if let Some(given) = std::env::var_os(SDE_ENV) {
        let given = PathBuf::from(given);
        if !given.is_file() {
            bail!("{SDE_ENV}={} is not a file; point it at SDE's sde64", given.display());
        }
        return Ok(given);
    }
    let dir = prereq::tool_dirs().root.join(format!("sde-{VERSION}"));
    let sde = dir.join("sde64");
    if sde.is_file() {
        return Ok(sde);
    }
    let parent = dir.parent().context("the tools directory has no parent")?;
    std::fs::create_dir_all(parent)?;
    let tarball = parent.join(format!("sde-{VERSION}.tar.xz"));
    if !tarball.is_file() {
        eprintln!("sde: downloading Intel SDE {VERSION} (33 MB, once)");
        download_verified(sh, URL, SHA256, &tarball)?;
    }
    // Asked for only now: a host that cannot download SDE installs nothing for it.
    prereq::ensure(sh, Needs::default().with_apt(&["xz-utils"]))?;
    unpack(sh, &tarball, &dir)?;
    if !sde.is_file() {
        bail!("{} has no sde64", tarball.display());
    }
    Ok(sde)
}

/// Unpacks the tarball's one top directory into `dir`, through a scratch directory renamed once
/// complete so a cut-off unpack is never taken for an installed SDE.
fn unpack(sh: &Shell, tarball: &Path, dir: &Path) -> Result<()> {
    let scratch = dir.with_extension("unpacking");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    std::fs::create_dir_all(&scratch)?;
    cmd!(sh, "tar -xJf {tarball} -C {scratch} --strip-components=1")
        .run()
        .with_context(|| format!("unpacking {}", tarball.display()))?;
    std::fs::rename(&scratch, dir).with_context(|| format!("moving SDE into {}", dir.display()))?;
    Ok(())
}

/// The arguments before the program: SDE's chip option (`icx` → `-icx`), then `--`.
pub fn prefix_args(chip: &str) -> [String; 2] {
    [format!("-{chip}"), "--".to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_is_a_sha256() {
        assert_eq!(SHA256.len(), 64);
        assert!(SHA256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(URL.ends_with(&format!("sde-external-{VERSION}-lin.tar.xz")));
    }
}
