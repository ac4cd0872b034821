//! `cargo xtask dist`: one reproducible `hartlm-<triple>.tar.gz` per architecture (a stable name,
//! so `releases/latest/download/` always works; the version is the archive's top directory) with
//! the launcher, every tier library, a manifest and the user documents, plus SHA256SUMS, the
//! release manifest and install.sh.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use hartlm_abi::atomic::write_atomic;
use hartlm_release::archive::{self, Entry};
use hartlm_release::manifest::{self, ArchiveRecord, FileRecord, Manifest, ReleaseManifest, TierRecord};
use hartlm_release::sums::{sha256_hex, sha256sums};
use hartlm_variants::{Arch, Tier};

use crate::prereq::{self, Needs};
use crate::tierbuild::{Built, relative};
use crate::workspace::Workspace;

/// Release-wide facts every archive records.
pub struct Provenance {
    pub version: String,
    pub git_commit: String,
    pub source_date_epoch: u64,
}

/// What a file of an archive is: decides its mode and what the manifest records of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `bin/hartlm`, executable, recorded as the manifest's launcher.
    Launcher,
    /// One tier's engine library, executable, recorded among the manifest's tiers.
    Tier(&'static Tier),
    /// README, LICENSE, completions, man page: plain files.
    Doc,
}

/// One file of an archive: its path inside, where it is read from, and what it is.
#[derive(Debug)]
pub struct PlannedFile {
    pub inside: String,
    pub source: PathBuf,
    pub role: Role,
}

/// One architecture's archive, planned from the built artifacts before anything is read.
#[derive(Debug)]
pub struct ArchivePlan {
    pub arch: Arch,
    pub file_name: String,
    pub root: String,
    pub files: Vec<PlannedFile>,
}

/// The archive's top directory: `hartlm-<version>-<triple>`.
pub fn archive_root(version: &str, arch: Arch) -> String {
    format!("hartlm-{version}-{}", arch.baseline_triple())
}

/// The release asset: `hartlm-<triple>.tar.gz`, the same name in every release.
pub fn archive_file(arch: Arch) -> String {
    format!("hartlm-{}.tar.gz", arch.baseline_triple())
}

/// The installer published beside the archives (`releases/latest/download/install.sh`).
pub const INSTALLER: &str = "release/install.sh";

/// Plans the archive of one architecture from built artifacts and the user documents
/// (`userdocs`: path inside, file) (pure).
pub fn plan_archive(
    ws_root: &Path,
    version: &str,
    arch: Arch,
    launcher: &Path,
    built: &[Built],
    docs: &[(String, PathBuf)],
) -> ArchivePlan {
    let root = archive_root(version, arch);
    let file = |inside: String, source: PathBuf, role| PlannedFile { inside, source, role };
    let mut files = vec![file("bin/hartlm".into(), launcher.to_path_buf(), Role::Launcher)];
    for b in built.iter().filter(|b| b.tier.arch == arch) {
        files.push(file(format!("lib/{}", b.tier.library_file()), b.library.clone(), Role::Tier(b.tier)));
    }
    files.push(file("LICENSE".into(), ws_root.join("LICENSE"), Role::Doc));
    files.extend(docs.iter().map(|(inside, source)| file(inside.clone(), source.clone(), Role::Doc)));
    ArchivePlan { arch, file_name: archive_file(arch), root, files }
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// Reads the planned files, writes the manifest into the archive, returns (bytes, manifest).
pub fn build_archive(plan: &ArchivePlan, prov: &Provenance) -> Result<(Vec<u8>, Manifest)> {
    let mut entries = Vec::new();
    let mut launcher = None;
    let mut tier_records = Vec::new();
    for f in &plan.files {
        let bytes = read(&f.source)?;
        let record =
            FileRecord { file: f.inside.clone(), sha256: sha256_hex(&bytes), size: bytes.len() as u64 };
        match f.role {
            Role::Launcher => launcher = Some(record),
            Role::Tier(t) => tier_records.push(TierRecord {
                id: t.id.0.to_string(),
                rank: t.rank,
                rustc_features: t.rustc_features.iter().map(|s| s.to_string()).collect(),
                requires: t.requires.iter().map(|s| s.to_string()).collect(),
                min_vlen: t.min_vlen,
                file: record.file,
                sha256: record.sha256,
                size: record.size,
            }),
            Role::Doc => {}
        }
        entries.push(match f.role {
            Role::Launcher | Role::Tier(_) => Entry::executable(f.inside.clone(), bytes),
            Role::Doc => Entry::file(f.inside.clone(), bytes),
        });
    }
    tier_records.sort_by_key(|t| std::cmp::Reverse(t.rank));
    let manifest = Manifest {
        schema_version: manifest::SCHEMA_VERSION,
        name: "hartlm".into(),
        version: prov.version.clone(),
        git_commit: prov.git_commit.clone(),
        source_date_epoch: prov.source_date_epoch,
        target: plan.arch.baseline_triple().into(),
        launcher: launcher.context("archive plan has no bin/hartlm")?,
        tiers: tier_records,
    };
    entries.push(Entry::file("manifest.json", manifest::to_json(&manifest)?));
    let bytes = archive::tar_gz(&plan.root, &entries, prov.source_date_epoch)?;
    Ok((bytes, manifest))
}

/// Writes every archive, the release manifest and SHA256SUMS into `dist_dir`, replacing any
/// stale hartlm archives there. Returns the archive paths.
pub fn write_release(
    dist_dir: &Path,
    plans: &[ArchivePlan],
    prov: &Provenance,
    ws_root: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dist_dir).with_context(|| format!("creating {}", dist_dir.display()))?;
    let mut records = Vec::new();
    let mut paths = Vec::new();
    for plan in plans {
        let (bytes, manifest) = build_archive(plan, prov)?;
        let path = dist_dir.join(&plan.file_name);
        write_atomic(&path, &bytes)?;
        eprintln!(
            "wrote {} ({:.1} MiB, {} tiers)",
            relative(ws_root, &path).display(),
            bytes.len() as f64 / (1 << 20) as f64,
            manifest.tiers.len()
        );
        records.push(ArchiveRecord {
            file: plan.file_name.clone(),
            target: manifest.target.clone(),
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            manifest,
        });
        paths.push(path);
    }
    let release = ReleaseManifest {
        schema_version: manifest::SCHEMA_VERSION,
        name: "hartlm".into(),
        version: prov.version.clone(),
        git_commit: prov.git_commit.clone(),
        source_date_epoch: prov.source_date_epoch,
        archives: records.clone(),
    };
    let manifest_bytes = manifest::to_json(&release)?;
    write_atomic(&dist_dir.join("manifest.json"), &manifest_bytes)?;
    let installer = read(&ws_root.join(INSTALLER))?;
    write_atomic(&dist_dir.join("install.sh"), &installer)?;
    let mut listed: Vec<(String, String)> =
        records.iter().map(|r| (r.file.clone(), r.sha256.clone())).collect();
    listed.push(("manifest.json".into(), sha256_hex(&manifest_bytes)));
    listed.push(("install.sh".into(), sha256_hex(&installer)));
    write_atomic(&dist_dir.join("SHA256SUMS"), sha256sums(&listed).as_bytes())?;
    for entry in std::fs::read_dir(dist_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("hartlm-")
            && name.ends_with(".tar.gz")
            && !plans.iter().any(|p| p.file_name == name)
        {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(paths)
}

/// `cargo xtask dist`: builds every tier of `arches` and writes the release; returns the tarballs.
pub fn command(ws: &Workspace, arches: &[Arch]) -> Result<Vec<PathBuf>> {
    let sh = ws.shell()?;
    prereq::ensure(&sh, Needs::build(arches))?;
    let tiers = crate::tierbuild::select_tiers(arches, None)?;
    let built = crate::tierbuild::build_all(&sh, ws, arches, &tiers)?;
    let prov = Provenance {
        version: ws.version.clone(),
        git_commit: ws.git_commit(),
        source_date_epoch: ws.source_date_epoch()?,
    };
    let docs = crate::userdocs::write(&ws.root, &ws.target_dir.join("userdocs"))?;
    let plans: Vec<ArchivePlan> = built
        .launchers
        .iter()
        .map(|(arch, launcher)| plan_archive(&ws.root, &ws.version, *arch, launcher, &built.tiers, &docs))
        .collect();
    let paths = write_release(&ws.dist_dir(), &plans, &prov, &ws.root)?;
    eprintln!("wrote {}", crate::tierbuild::relative(&ws.root, &ws.dist_dir().join("SHA256SUMS")).display());
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hartlm_variants::tier::find;

    #[test]
    fn plan_places_launcher_libraries_and_docs() {
        let built = vec![
            Built { tier: find("rv64gc").unwrap(), library: "/t/a.so".into() },
            Built { tier: find("x86-64").unwrap(), library: "/t/b.so".into() },
        ];
        let docs = [("README.md".to_string(), PathBuf::from("/d/README.md"))];
        let p = plan_archive(Path::new("/ws"), "1.2.3", Arch::Riscv64, Path::new("/t/hartlm"), &built, &docs);
        assert_eq!(p.file_name, "hartlm-riscv64gc-unknown-linux-gnu.tar.gz");
        assert_eq!(p.root, "hartlm-1.2.3-riscv64gc-unknown-linux-gnu");
        let inside: Vec<&str> = p.files.iter().map(|f| f.inside.as_str()).collect();
        assert_eq!(inside, ["bin/hartlm", "lib/libhartlm-rv64gc.so", "LICENSE", "README.md"]);
        let roles: Vec<Role> = p.files.iter().map(|f| f.role).collect();
        assert_eq!(roles, [Role::Launcher, Role::Tier(find("rv64gc").unwrap()), Role::Doc, Role::Doc]);
    }

    #[test]
    fn archive_is_reproducible_and_manifest_hashes_match() {
        let dir = std::env::temp_dir().join(format!("xtask-dist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in [("hartlm", "L"), ("lib.so", "S"), ("README.md", "R"), ("LICENSE", "M")] {
            std::fs::write(dir.join(name), body).unwrap();
        }
        let built = vec![Built { tier: find("rv64gcv").unwrap(), library: dir.join("lib.so") }];
        let plan = plan_archive(&dir, "0.0.1", Arch::Riscv64, &dir.join("hartlm"), &built, &[]);
        let prov = Provenance { version: "0.0.1".into(), git_commit: "abc".into(), source_date_epoch: 1000 };
        let (a, m) = build_archive(&plan, &prov).unwrap();
        let (b, _) = build_archive(&plan, &prov).unwrap();
        assert_eq!(a, b);
        assert_eq!(m.tiers[0].sha256, sha256_hex(b"S"));
        assert_eq!(m.tiers[0].file, "lib/libhartlm-rv64gcv.so");
        assert_eq!(m.launcher.sha256, sha256_hex(b"L"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
