//! Where things are: the workspace root, target directory and version (via cargo_metadata),
//! and the git facts a release records (commit, commit time for SOURCE_DATE_EPOCH).

use anyhow::{Context, Result};
use std::path::PathBuf;
use xshell::{Shell, cmd};

pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub version: String,
}

impl Workspace {
    pub fn discover() -> Result<Workspace> {
        let meta = cargo_metadata::MetadataCommand::new()
            .no_deps()
            .exec()
            .context("cargo metadata failed; run cargo xtask from inside the hartlm checkout")?;
        let version = meta
            .packages
            .iter()
            .find(|p| p.name.as_str() == "hartlm-variants")
            .map(|p| p.version.to_string())
            .context("workspace has no hartlm-variants package")?;
        Ok(Workspace {
            root: meta.workspace_root.into_std_path_buf(),
            target_dir: meta.target_directory.into_std_path_buf(),
            version,
        })
    }

    pub fn dist_dir(&self) -> PathBuf {
        self.target_dir.join("dist")
    }

    pub fn shell(&self) -> Result<Shell> {
        let sh = Shell::new()?;
        sh.change_dir(&self.root);
        Ok(sh)
    }

    /// `<commit>` or `<commit>-dirty`; `unknown` outside git.
    pub fn git_commit(&self) -> String {
        let Ok(sh) = self.shell() else {
            return "unknown".into();
        };
        let Ok(commit) = cmd!(sh, "git rev-parse HEAD").quiet().ignore_stderr().read() else {
            return "unknown".into();
        };
        let dirty = cmd!(sh, "git status --porcelain --untracked-files=no")
            .quiet()
            .ignore_stderr()
            .read()
            .map(|s| !s.trim().is_empty())
            .unwrap_or(false);
        if dirty { format!("{commit}-dirty") } else { commit }
    }

    /// SOURCE_DATE_EPOCH if set, else the commit time, else 0.
    pub fn source_date_epoch(&self) -> Result<u64> {
        if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
            return v.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number"));
        }
        let sh = self.shell()?;
        Ok(cmd!(sh, "git log -1 --format=%ct")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0))
    }
}
