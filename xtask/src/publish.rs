//! `cargo xtask publish`: checks target/dist against its manifest and the tag, then plans and
//! (unless `--dry-run`) carries out the GitHub release with hartlm_release::github.

use anyhow::{Context, Result, bail};
use hartlm_release::github::{self, Config, LocalFile, Publisher, Retry};
use hartlm_release::manifest::ReleaseManifest;
use hartlm_release::publish::{Kind, Target};
use std::path::{Path, PathBuf};

pub struct Args {
    pub tag: Option<String>,
    pub nightly: bool,
    pub dry_run: bool,
    pub repo: Option<String>,
    pub api_url: Option<String>,
    pub upload_url: Option<String>,
}

/// The files a release consists of, in upload order: archives and install.sh, then SHA256SUMS
/// and the manifest last, so a release with a manifest has everything the manifest lists.
/// An archive name from manifest.json is only ever a file name inside the dist directory: no
/// separators, no `..`, nothing hidden, so a crafted manifest cannot upload files from elsewhere.
pub fn release_files(dist: &Path, manifest: &ReleaseManifest) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for a in &manifest.archives {
        let plain = !a.file.is_empty()
            && !a.file.starts_with('.')
            && !a.file.contains(['/', '\\', '\0'])
            && !a.file.chars().any(char::is_control);
        if !plain {
            bail!(
                "manifest.json names archive {:?}, which is not a file name inside {}; rebuild with `cargo xtask dist`",
                a.file,
                dist.display()
            );
        }
        files.push(dist.join(&a.file));
    }
    files.push(dist.join("install.sh"));
    files.push(dist.join("SHA256SUMS"));
    files.push(dist.join("manifest.json"));
    Ok(files)
}

/// A release must be built from a commit, never from a dirty tree.
pub fn check_clean(manifest: &ReleaseManifest) -> Result<()> {
    let commit = &manifest.git_commit;
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "target/dist was built from `{commit}`, not a clean commit; commit your changes and run `cargo xtask dist` again"
        );
    }
    Ok(())
}

/// The release target: `--nightly`, or a `vX.Y.Z` tag that must match the built version.
pub fn target(tag: Option<&str>, nightly: bool, manifest: &ReleaseManifest) -> Result<Target> {
    let commit = manifest.git_commit.clone();
    match (tag, nightly) {
        (_, true) => Ok(Target { tag: "nightly".into(), commit, kind: Kind::Nightly }),
        (Some(tag), false) => {
            let want = format!("v{}", manifest.version);
            if tag != want {
                bail!(
                    "tag {tag} does not match the built version {}: tag {want}, or bump the workspace version and rebuild",
                    manifest.version
                );
            }
            Ok(Target { tag: tag.into(), commit, kind: Kind::Tagged })
        }
        (None, false) => bail!("pass --tag vX.Y.Z or --nightly"),
    }
}

/// The repository, API base and token from flags, else the environment GitHub Actions sets
/// (`GITHUB_REPOSITORY`, `GITHUB_API_URL`, `GITHUB_TOKEN`).
pub fn github_config(
    repo: Option<String>,
    api_url: Option<String>,
    upload_url: Option<String>,
) -> Result<Config> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Ok(Config {
        repo: repo
            .or_else(|| var("GITHUB_REPOSITORY"))
            .context("no repository: pass --repo owner/name or set GITHUB_REPOSITORY")?,
        api_url: api_url.or_else(|| var("GITHUB_API_URL")).unwrap_or_else(|| github::GITHUB_API.into()),
        upload_url,
        token: var("GITHUB_TOKEN"),
        retry: Retry::default(),
    })
}

pub fn run(dist: &Path, args: &Args) -> Result<()> {
    let manifest_path = dist.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}; run `cargo xtask dist` first", manifest_path.display()))?;
    let manifest: ReleaseManifest =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", manifest_path.display()))?;
    match check_clean(&manifest) {
        Err(e) if args.dry_run => eprintln!("publish: warning: {e}"),
        other => other?,
    }
    let target = target(args.tag.as_deref(), args.nightly, &manifest)?;
    let mut files = Vec::new();
    for path in release_files(dist, &manifest)? {
        files.push(LocalFile::read(&path).with_context(|| "run `cargo xtask dist` first")?);
    }
    for a in &manifest.archives {
        let f = files.iter().find(|f| f.asset.name == a.file).context("archive missing")?;
        if f.asset.sha256 != a.sha256 {
            bail!("{} does not match manifest.json (stale dist?); run `cargo xtask dist` again", a.file);
        }
    }
    let config = github_config(args.repo.clone(), args.api_url.clone(), args.upload_url.clone())?;
    let repo = config.repo.clone();
    if config.token.is_none() && !args.dry_run {
        bail!("GITHUB_TOKEN is not set: publishing needs a token with `contents: write` on {repo}");
    }
    let publisher = Publisher::new(&config, Box::new(|m| eprintln!("publish: {m}")))?;
    let locals: Vec<_> = files.iter().map(|f| f.asset.clone()).collect();
    let plan = publisher.plan(&target, &locals)?;
    println!("plan for {repo} {}:\n{plan}", target.tag);
    if args.dry_run {
        println!("--dry-run: nothing was changed");
        return Ok(());
    }
    let out = publisher.execute(&plan, &files)?;
    println!(
        "{} {}: {} uploaded, {} replaced, {} deleted, {} already verified{}",
        repo,
        target.tag,
        out.uploaded,
        out.replaced,
        out.deleted,
        out.kept,
        if out.published { "; published" } else { "" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(commit: &str) -> ReleaseManifest {
        ReleaseManifest {
            schema_version: 1,
            name: "hartlm".into(),
            version: "0.3.0".into(),
            git_commit: commit.into(),
            source_date_epoch: 0,
            archives: vec![],
        }
    }

    #[test]
    fn tags_must_match_the_built_version_and_a_clean_commit() {
        let c = "0123456789abcdef0123456789abcdef01234567";
        let t = target(Some("v0.3.0"), false, &manifest(c)).unwrap();
        assert_eq!((t.tag.as_str(), t.kind), ("v0.3.0", Kind::Tagged));
        let e = target(Some("v0.3.1"), false, &manifest(c)).unwrap_err().to_string();
        assert!(e.contains("does not match the built version 0.3.0"), "{e}");
        assert!(check_clean(&manifest(c)).is_ok());
        let e = check_clean(&manifest(&format!("{c}-dirty"))).unwrap_err().to_string();
        assert!(e.contains("not a clean commit"), "{e}");
        assert_eq!(target(None, true, &manifest(c)).unwrap().tag, "nightly");
        assert!(target(None, false, &manifest(c)).is_err());
    }

    #[test]
    fn the_manifest_is_uploaded_last() {
        let mut m = manifest("x");
        m.archives.push(hartlm_release::manifest::ArchiveRecord {
            file: "a.tar.gz".into(),
            target: "t".into(),
            sha256: "s".into(),
            size: 1,
            manifest: serde_json::from_str(
                r#"{"schema_version":1,"name":"h","version":"0","git_commit":"x","source_date_epoch":0,"target":"t",
                "launcher":{"file":"f","sha256":"s","size":1},"tiers":[]}"#,
            )
            .unwrap(),
        });
        let names: Vec<String> = release_files(Path::new("d"), &m)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into())
            .collect();
        assert_eq!(names, ["a.tar.gz", "install.sh", "SHA256SUMS", "manifest.json"]);
        for bad in ["../../etc/passwd", "/etc/passwd", "sub/a.tar.gz", ".hidden", "", "a\nb"] {
            m.archives[0].file = bad.into();
            let e = release_files(Path::new("d"), &m).unwrap_err().to_string();
            assert!(e.contains("not a file name inside d"), "{bad}: {e}");
        }
    }
}
