//! What publishing a release must do, decided from the local files and the remote release as
//! plain data: which release to use, which assets to keep, upload, replace or delete, and when to undraft.

use std::fmt;

/// A file to publish: its asset name, size and sha256 (lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAsset {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAsset {
    pub id: u64,
    pub name: String,
    pub size: u64,
    /// `sha256:<hex>` as GitHub reports it; absent on servers that do not compute digests.
    pub digest: Option<String>,
    /// `uploaded`, or `starter` for an upload that never completed.
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRelease {
    pub id: u64,
    pub tag: String,
    pub draft: bool,
    pub prerelease: bool,
    pub target_commitish: String,
    pub assets: Vec<RemoteAsset>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `vX.Y.Z`: a normal release, created as a draft and published once every asset verified.
    Tagged,
    /// The moving `nightly` prerelease: its tag follows the commit and its assets are replaced.
    Nightly,
}

/// What is being published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tag: String,
    pub commit: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseAction {
    Create,
    Reuse { id: u64, draft: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssetAction {
    /// Present with the right size and digest.
    Keep,
    Upload,
    /// Present but wrong (partial, other size or digest): delete, then upload.
    Replace {
        id: u64,
        problem: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagAction {
    Unchanged,
    Create,
    Move { from: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub target: Target,
    pub release: ReleaseAction,
    /// One entry per local asset, in the local order.
    pub assets: Vec<(String, AssetAction)>,
    /// Remote assets to delete: a nightly's files that are no longer built.
    pub delete: Vec<RemoteAsset>,
    /// Remote assets of a tagged release that are not ours; reported, left alone.
    pub foreign: Vec<String>,
    /// Nightly only: the git tag.
    pub tag: TagAction,
    /// Nightly only: the release records an older commit.
    pub set_commit: bool,
    /// The release is (or will be created as) a draft and must be published at the end.
    pub publish: bool,
    /// Other drafts carrying the same tag (left by other tools); reported, never touched.
    pub duplicate_drafts: Vec<u64>,
}

impl Plan {
    /// True when running the plan would change nothing: the release is complete.
    pub fn is_noop(&self) -> bool {
        matches!(self.release, ReleaseAction::Reuse { .. })
            && self.assets.iter().all(|(_, a)| *a == AssetAction::Keep)
            && self.delete.is_empty()
            && self.tag == TagAction::Unchanged
            && !self.set_commit
            && !self.publish
    }
}

/// Why `remote` is not a verified copy of `local`, or `None` when it is.
pub fn asset_problem(local: &LocalAsset, remote: &RemoteAsset) -> Option<String> {
    if remote.state != "uploaded" {
        return Some(format!("upload never completed (state `{}`)", remote.state));
    }
    if remote.size != local.size {
        return Some(format!("size {} instead of {}", remote.size, local.size));
    }
    match &remote.digest {
        None => Some("the server reports no digest, so the upload cannot be verified".into()),
        Some(d) if !d.eq_ignore_ascii_case(&format!("sha256:{}", local.sha256)) => {
            Some(format!("digest {d} instead of sha256:{}", local.sha256))
        }
        Some(_) => None,
    }
}

/// The release to publish into: the published one for the tag, else the oldest draft. GitHub's
/// by-tag lookup never returns drafts, so the caller must pass every release of the repository.
/// Returns the choice and the ids of further drafts with the same tag.
pub fn choose_release<'a>(releases: &'a [RemoteRelease], tag: &str) -> (Option<&'a RemoteRelease>, Vec<u64>) {
    let mut same: Vec<&RemoteRelease> = releases.iter().filter(|r| r.tag == tag).collect();
    same.sort_by_key(|r| (r.draft, r.id));
    let chosen = same.first().copied();
    let duplicates = same.iter().skip(1).filter(|r| r.draft).map(|r| r.id).collect();
    (chosen, duplicates)
}

/// Plans the publication of `local` as `target`, given every release of the repository and, for
/// a nightly, the commit its tag points at now.
pub fn plan(
    target: &Target,
    local: &[LocalAsset],
    releases: &[RemoteRelease],
    remote_tag: Option<&str>,
) -> Plan {
    let (existing, duplicate_drafts) = choose_release(releases, &target.tag);
    let remote_assets: &[RemoteAsset] = existing.map_or(&[], |r| &r.assets);
    let assets = local
        .iter()
        .map(|l| {
            let action = match remote_assets.iter().find(|r| r.name == l.name) {
                None => AssetAction::Upload,
                Some(r) => match asset_problem(l, r) {
                    None => AssetAction::Keep,
                    Some(problem) => AssetAction::Replace { id: r.id, problem },
                },
            };
            (l.name.clone(), action)
        })
        .collect();
    let (delete, foreign) = {
        let others = remote_assets.iter().filter(|r| !local.iter().any(|l| l.name == r.name));
        match target.kind {
            Kind::Nightly => (others.cloned().collect(), vec![]),
            // A tagged release may carry files someone attached by hand: never delete them,
            // except leftovers of interrupted uploads, which are never anyone's file.
            Kind::Tagged => {
                let (partial, complete): (Vec<_>, Vec<_>) = others.partition(|r| r.state != "uploaded");
                (
                    partial.into_iter().cloned().collect(),
                    complete.into_iter().map(|r| r.name.clone()).collect(),
                )
            }
        }
    };
    let (tag, set_commit) = match target.kind {
        Kind::Tagged => (TagAction::Unchanged, false),
        Kind::Nightly => (
            match remote_tag {
                None => TagAction::Create,
                Some(sha) if sha == target.commit => TagAction::Unchanged,
                Some(sha) => TagAction::Move { from: sha.into() },
            },
            existing.is_some_and(|r| r.target_commitish != target.commit),
        ),
    };
    Plan {
        target: target.clone(),
        release: match existing {
            None => ReleaseAction::Create,
            Some(r) => ReleaseAction::Reuse { id: r.id, draft: r.draft },
        },
        assets,
        delete,
        foreign,
        tag,
        set_commit,
        publish: existing.is_none_or(|r| r.draft),
        duplicate_drafts,
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.target;
        let short = &t.commit[..t.commit.len().min(12)];
        match &self.release {
            ReleaseAction::Create => {
                writeln!(f, "create draft release {} at {short}", t.tag)?;
            }
            ReleaseAction::Reuse { id, draft } => {
                let what = if *draft { "draft" } else { "published release" };
                writeln!(f, "reuse {what} {} (id {id})", t.tag)?;
            }
        }
        for id in &self.duplicate_drafts {
            writeln!(f, "warning: another draft release {id} carries tag {}; left alone", t.tag)?;
        }
        for (name, action) in &self.assets {
            match action {
                AssetAction::Keep => writeln!(f, "keep    {name} (size and digest verified)")?,
                AssetAction::Upload => writeln!(f, "upload  {name}")?,
                AssetAction::Replace { id, problem } => {
                    writeln!(f, "replace {name} (asset {id}: {problem})")?;
                }
            }
        }
        for a in &self.delete {
            writeln!(f, "delete  {} (asset {}: not part of this build)", a.name, a.id)?;
        }
        for name in &self.foreign {
            writeln!(f, "leave   {name} (not built by hartlm)")?;
        }
        match &self.tag {
            TagAction::Unchanged => {}
            TagAction::Create => writeln!(f, "create tag {} at {short}", t.tag)?,
            TagAction::Move { from } => writeln!(f, "move tag {} from {from} to {short}", t.tag)?,
        }
        if self.set_commit {
            writeln!(f, "record commit {short} on the release")?;
        }
        if self.publish {
            let what = if t.kind == Kind::Nightly { "prerelease" } else { "release" };
            writeln!(f, "publish the {what} once every asset is verified")?;
        }
        if self.is_noop() {
            writeln!(f, "nothing to do: every asset is present and verified")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(name: &str, body: &str) -> LocalAsset {
        LocalAsset {
            name: name.into(),
            size: body.len() as u64,
            sha256: crate::sums::sha256_hex(body.as_bytes()),
        }
    }

    fn remote(id: u64, l: &LocalAsset) -> RemoteAsset {
        RemoteAsset {
            id,
            name: l.name.clone(),
            size: l.size,
            digest: Some(format!("sha256:{}", l.sha256)),
            state: "uploaded".into(),
        }
    }

    fn release(id: u64, tag: &str, draft: bool, assets: Vec<RemoteAsset>) -> RemoteRelease {
        RemoteRelease { id, tag: tag.into(), draft, prerelease: false, target_commitish: "c1".into(), assets }
    }

    fn tagged() -> Target {
        Target { tag: "v1.0.0".into(), commit: "c1".into(), kind: Kind::Tagged }
    }

    fn files() -> Vec<LocalAsset> {
        vec![local("a.tar.gz", "aaaa"), local("SHA256SUMS", "sums"), local("manifest.json", "{}")]
    }

    #[test]
    fn nothing_remote_creates_a_draft_uploads_all_and_publishes() {
        let p = plan(&tagged(), &files(), &[], None);
        assert_eq!(p.release, ReleaseAction::Create);
        assert!(p.assets.iter().all(|(_, a)| *a == AssetAction::Upload));
        assert!(p.publish && !p.is_noop());
        assert_eq!(p.tag, TagAction::Unchanged);
    }

    #[test]
    fn a_complete_published_release_is_a_noop() {
        let f = files();
        let assets = f.iter().enumerate().map(|(i, l)| remote(i as u64 + 10, l)).collect();
        let p = plan(&tagged(), &f, &[release(5, "v1.0.0", false, assets)], None);
        assert!(p.is_noop(), "{p}");
        assert!(p.to_string().contains("nothing to do"));
    }

    #[test]
    fn partial_and_mismatched_assets_are_replaced_and_missing_ones_uploaded() {
        let f = files();
        let mut partial = remote(10, &f[0]);
        partial.state = "starter".into();
        partial.size = 2;
        let mut forged = remote(11, &f[1]);
        forged.digest = Some("sha256:00".into());
        let p = plan(&tagged(), &f, &[release(5, "v1.0.0", true, vec![partial, forged])], None);
        assert_eq!(p.release, ReleaseAction::Reuse { id: 5, draft: true });
        assert!(
            matches!(&p.assets[0].1, AssetAction::Replace { id: 10, problem } if problem.contains("starter"))
        );
        assert!(
            matches!(&p.assets[1].1, AssetAction::Replace { id: 11, problem } if problem.contains("digest"))
        );
        assert_eq!(p.assets[2].1, AssetAction::Upload);
        assert!(p.publish);
    }

    #[test]
    fn asset_problems_name_what_differs() {
        let l = local("a", "abcd");
        let mut r = remote(1, &l);
        assert_eq!(asset_problem(&l, &r), None);
        r.size = 3;
        assert!(asset_problem(&l, &r).unwrap().contains("size 3 instead of 4"));
        r.size = 4;
        r.digest = None;
        assert!(asset_problem(&l, &r).unwrap().contains("no digest"));
        r.digest = Some(format!("SHA256:{}", l.sha256.to_uppercase()));
        assert_eq!(asset_problem(&l, &r), None, "digests compare case-insensitively");
    }

    #[test]
    fn drafts_are_found_and_duplicates_reported_not_chosen() {
        let rs = [
            release(7, "v1.0.0", true, vec![]),
            release(3, "v1.0.0", true, vec![]),
            release(9, "v0.9", false, vec![]),
        ];
        let p = plan(&tagged(), &files(), &rs, None);
        assert_eq!(p.release, ReleaseAction::Reuse { id: 3, draft: true });
        assert_eq!(p.duplicate_drafts, vec![7]);
        let rs = [release(7, "v1.0.0", true, vec![]), release(8, "v1.0.0", false, vec![])];
        assert_eq!(choose_release(&rs, "v1.0.0").0.map(|r| r.id), Some(8), "published wins over drafts");
    }

    #[test]
    fn tagged_releases_keep_foreign_assets_but_drop_partial_leftovers() {
        let f = files();
        let mut assets: Vec<_> = f.iter().enumerate().map(|(i, l)| remote(i as u64, l)).collect();
        assets.push(RemoteAsset {
            id: 20,
            name: "notes.pdf".into(),
            size: 1,
            digest: None,
            state: "uploaded".into(),
        });
        assets.push(RemoteAsset {
            id: 21,
            name: "old.tar.gz".into(),
            size: 1,
            digest: None,
            state: "starter".into(),
        });
        let p = plan(&tagged(), &f, &[release(5, "v1.0.0", false, assets)], None);
        assert_eq!(p.foreign, vec!["notes.pdf".to_string()]);
        assert_eq!(p.delete.iter().map(|a| a.id).collect::<Vec<_>>(), vec![21]);
    }

    #[test]
    fn nightly_moves_its_tag_replaces_changed_assets_and_deletes_stale_ones() {
        let f = files();
        let old = local("a.tar.gz", "old!");
        let mut assets = vec![remote(1, &old), remote(2, &f[1]), remote(3, &f[2])];
        assets.push(remote(4, &local("hartlm-0.0.9.tar.gz", "x")));
        let mut r = release(5, "nightly", false, assets);
        r.prerelease = true;
        let target = Target { tag: "nightly".into(), commit: "c2".into(), kind: Kind::Nightly };
        let p = plan(&target, &f, &[r], Some("c1"));
        assert!(matches!(p.assets[0].1, AssetAction::Replace { id: 1, .. }));
        assert_eq!(p.assets[1].1, AssetAction::Keep);
        assert_eq!(p.delete.iter().map(|a| a.id).collect::<Vec<_>>(), vec![4]);
        assert_eq!(p.tag, TagAction::Move { from: "c1".into() });
        assert!(p.set_commit && !p.publish);
        let text = p.to_string();
        assert!(
            text.contains("move tag nightly from c1 to c2") && text.contains("delete  hartlm-0.0.9"),
            "{text}"
        );
    }

    #[test]
    fn a_first_nightly_creates_its_tag() {
        let target = Target { tag: "nightly".into(), commit: "c2".into(), kind: Kind::Nightly };
        let p = plan(&target, &files(), &[], None);
        assert_eq!((p.tag, p.release, p.publish), (TagAction::Create, ReleaseAction::Create, true));
    }
}
