//! Publishing against the local GitHub double: a clean publish, a re-run, an interrupted run
//! resumed, forged digests, dropped and failed requests, nightlies, bad credentials.

use hartlm_release::github::{Config, Error, LocalFile, Outcome, Publisher, Retry};
use hartlm_release::publish::{Kind, Target};
use hartlm_test_support::github::{Fault, GitHubDouble, Host, TOKEN, sha256_digest};
use std::path::PathBuf;
use std::time::Duration;

struct Fixture {
    gh: GitHubDouble,
    dir: PathBuf,
    files: Vec<LocalFile>,
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("hartlm-publish-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (file, len) in [("hartlm-1.2.3-riscv64.tar.gz", 300_000), ("hartlm-1.2.3-x86_64.tar.gz", 200_000)] {
        write(&dir, file, len, 7);
    }
    write(&dir, "SHA256SUMS", 150, 3);
    write(&dir, "manifest.json", 900, 5);
    for f in ["hartlm-1.2.3-riscv64.tar.gz", "hartlm-1.2.3-x86_64.tar.gz", "SHA256SUMS", "manifest.json"] {
        files.push(LocalFile::read(&dir.join(f)).unwrap());
    }
    Fixture { gh: GitHubDouble::start("hart", "hartlm").unwrap(), dir, files }
}

fn write(dir: &std::path::Path, name: &str, len: usize, seed: u32) {
    let bytes: Vec<u8> =
        (0..len as u32).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8).collect();
    std::fs::write(dir.join(name), bytes).unwrap();
}

impl Fixture {
    fn publisher(&self, token: &str) -> Publisher {
        let config = Config {
            repo: "hart/hartlm".into(),
            api_url: self.gh.api_url(),
            upload_url: Some(self.gh.upload_url()),
            token: Some(token.into()),
            retry: Retry { attempts: 4, base_delay: Duration::from_millis(5) },
        };
        Publisher::new(&config, Box::new(|m| eprintln!("publish: {m}"))).unwrap()
    }

    fn publish(&self, target: &Target) -> Result<Outcome, Error> {
        let p = self.publisher(TOKEN);
        let locals: Vec<_> = self.files.iter().map(|f| f.asset.clone()).collect();
        let plan = p.plan(target, &locals)?;
        eprint!("{plan}");
        p.execute(&plan, &self.files)
    }

    /// The release for `tag` holds exactly our files, each once, complete and with our digest.
    fn assert_complete(&self, tag: &str, draft: bool) {
        let releases = self.gh.releases();
        let same: Vec<_> = releases.iter().filter(|r| r.tag_name == tag).collect();
        assert_eq!(same.len(), 1, "exactly one release for {tag}: {same:#?}");
        let r = same[0];
        assert_eq!(r.draft, draft);
        let mut names: Vec<&str> = r.assets.iter().map(|a| a.name.as_str()).collect();
        names.sort();
        let mut want: Vec<&str> = self.files.iter().map(|f| f.asset.name.as_str()).collect();
        want.sort();
        assert_eq!(names, want);
        for f in &self.files {
            let a = r.assets.iter().find(|a| a.name == f.asset.name).unwrap();
            let bytes = std::fs::read(&f.path).unwrap();
            assert_eq!((a.state.as_str(), &a.content), ("uploaded", &bytes), "{}", a.name);
            assert_eq!(a.digest, sha256_digest(&bytes));
        }
        assert!(self.gh.log().iter().all(|l| l.status != 401), "credentials reached both hosts");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tagged() -> Target {
    Target { tag: "v1.2.3".into(), commit: "a".repeat(40), kind: Kind::Tagged }
}

#[test]
fn clean_publish_then_rerun_changes_nothing() {
    let fx = fixture("clean");
    let out = fx.publish(&tagged()).unwrap();
    assert_eq!(out, Outcome { uploaded: 4, published: true, ..Outcome::default() });
    fx.assert_complete("v1.2.3", false);
    assert!(
        fx.gh.log().iter().any(|l| l.host == Host::Uploads && l.status == 201),
        "uploads used the upload host"
    );
    let release = &fx.gh.releases()[0];
    assert_eq!(release.target_commitish, "a".repeat(40));

    fx.gh.clear_log();
    let out = fx.publish(&tagged()).unwrap();
    assert_eq!(out, Outcome { kept: 4, ..Outcome::default() });
    assert!(fx.gh.writes().is_empty(), "a re-run only reads: {:?}", fx.gh.writes());
    fx.assert_complete("v1.2.3", false);
}

#[test]
fn interrupted_after_two_assets_then_resumed() {
    let fx = fixture("interrupted");
    fx.gh.inject(Fault::OutageAfterUploads(2));
    let err = fx.publish(&tagged()).unwrap_err();
    let text = err.to_string();
    assert!(!text.is_empty() && !text.contains('\n'), "one-line error: {text}");
    let r = &fx.gh.releases()[0];
    assert!(r.draft, "an interrupted publish leaves a draft");
    let states: Vec<&str> = r.assets.iter().map(|a| a.state.as_str()).collect();
    assert_eq!(states, ["uploaded", "uploaded", "starter"], "two complete uploads and one partial");

    fx.gh.restore();
    let out = fx.publish(&tagged()).unwrap();
    assert_eq!(out, Outcome { kept: 2, replaced: 1, uploaded: 1, published: true, ..Outcome::default() });
    fx.assert_complete("v1.2.3", false);
}

#[test]
fn a_forged_digest_is_deleted_and_uploaded_again() {
    let fx = fixture("forged");
    fx.gh.inject(Fault::ForgeDigest);
    fx.publish(&tagged()).unwrap();
    fx.assert_complete("v1.2.3", false);
    let deletes = fx.gh.writes().into_iter().filter(|l| l.method == "DELETE").count();
    assert_eq!(deletes, 1);
}

#[test]
fn a_digest_that_never_matches_keeps_the_release_a_draft() {
    let fx = fixture("preexisting");
    fx.gh.inject(Fault::ForgeDigest);
    fx.gh.inject(Fault::ForgeDigest);
    fx.gh.inject(Fault::ForgeDigest);
    fx.gh.inject(Fault::ForgeDigest);
    let err = fx.publish(&tagged()).unwrap_err();
    assert!(err.to_string().contains("no verified upload after 4 attempts"), "{err}");
    assert!(fx.gh.releases()[0].draft, "never published unverified");
    fx.gh.restore();
    fx.publish(&tagged()).unwrap();
    fx.assert_complete("v1.2.3", false);
}

#[test]
fn transient_upload_failures_never_leave_duplicates() {
    let fx = fixture("transient");
    fx.gh.inject(Fault::BadGatewayOnUpload);
    fx.gh.inject(Fault::DropMidUpload);
    fx.gh.inject(Fault::TruncateUpload);
    fx.publish(&tagged()).unwrap();
    fx.assert_complete("v1.2.3", false);
    let statuses: Vec<u16> =
        fx.gh.log().iter().filter(|l| l.host == Host::Uploads).map(|l| l.status).collect();
    assert_eq!(&statuses[..4], [502, 0, 201, 201], "502, a dropped upload, a truncated one, then a good one");
}

#[test]
fn a_create_that_failed_after_creating_does_not_make_a_second_draft() {
    let fx = fixture("create");
    fx.gh.inject(Fault::CreateReleaseThenBadGateway);
    fx.publish(&tagged()).unwrap();
    fx.assert_complete("v1.2.3", false);
}

#[test]
fn nightly_moves_its_tag_and_replaces_assets() {
    let fx = fixture("nightly");
    let first = Target { tag: "nightly".into(), commit: "1".repeat(40), kind: Kind::Nightly };
    fx.publish(&first).unwrap();
    fx.assert_complete("nightly", false);
    assert_eq!(fx.gh.state().refs.get("tags/nightly"), Some(&"1".repeat(40)));
    assert!(fx.gh.releases()[0].prerelease);

    // The next night: one archive changed, one no longer built.
    let mut fx = fx;
    write(&fx.dir, "hartlm-1.2.3-riscv64.tar.gz", 300_001, 9);
    fx.files.remove(1);
    fx.files[0] = LocalFile::read(&fx.dir.join("hartlm-1.2.3-riscv64.tar.gz")).unwrap();
    let second = Target { commit: "2".repeat(40), ..first };
    let out = fx.publish(&second).unwrap();
    assert_eq!(out, Outcome { replaced: 1, deleted: 1, kept: 2, ..Outcome::default() });
    fx.assert_complete("nightly", false);
    assert_eq!(fx.gh.state().refs.get("tags/nightly"), Some(&"2".repeat(40)));
    assert_eq!(fx.gh.releases()[0].target_commitish, "2".repeat(40));
}

#[test]
fn bad_credentials_fail_clearly_and_create_nothing() {
    let fx = fixture("auth");
    let p = fx.publisher("wrong-token");
    let err = p.plan(&tagged(), &[]).unwrap_err().to_string();
    assert!(err.contains("401") && err.contains("GITHUB_TOKEN"), "{err}");
    assert!(fx.gh.releases().is_empty());
}

#[test]
fn an_unreachable_api_is_a_clear_error_after_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = Config {
        repo: "hart/hartlm".into(),
        api_url: format!("http://127.0.0.1:{port}"),
        upload_url: Some(format!("http://127.0.0.1:{port}")),
        token: Some(TOKEN.into()),
        retry: Retry { attempts: 2, base_delay: Duration::from_millis(1) },
    };
    let p = Publisher::new(&config, Box::new(|_| {})).unwrap();
    let err = p.releases().unwrap_err().to_string();
    assert!(err.starts_with("listing releases of hart/hartlm"), "{err}");
    assert!(err.to_lowercase().contains("connect"), "{err}");
}
