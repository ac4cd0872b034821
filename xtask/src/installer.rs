//! Tests of release/install.sh, run for real with `sh` against the GitHub test double on
//! loopback: install, reinstall, a named version, and failures that must leave nothing behind.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use hartlm_release::archive::{Entry, tar_gz};
    use hartlm_release::sums::{sha256_hex, sha256sums};
    use hartlm_test_support::github::{Asset, GitHubDouble, Release, sha256_digest};

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../release/install.sh")
    }

    fn triple() -> &'static str {
        if cfg!(target_arch = "riscv64") { "riscv64gc-unknown-linux-gnu" } else { "x86_64-unknown-linux-gnu" }
    }

    fn archive_name() -> String {
        format!("hartlm-{}.tar.gz", triple())
    }

    /// A release archive as `cargo xtask dist` lays it out, whose launcher prints its version.
    fn archive(version: &str) -> Vec<u8> {
        let entries = vec![
            Entry::executable("bin/hartlm", format!("#!/bin/sh\necho hartlm {version}\n").into_bytes()),
            Entry::file("share/man/man1/hartlm.1", b".TH hartlm 1\n".to_vec()),
            Entry::file("README.md", b"# hartlm\n".to_vec()),
        ];
        tar_gz(&format!("hartlm-{version}-{}", triple()), &entries, 1).unwrap()
    }

    struct Fixture {
        gh: GitHubDouble,
        home: tempfile::TempDir,
        next_id: u64,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                gh: GitHubDouble::start("hart", "hartlm").unwrap(),
                home: tempfile::tempdir().unwrap(),
                next_id: 100,
            }
        }

        /// Publishes a release holding `assets` (name, bytes).
        fn release(&mut self, tag: &str, prerelease: bool, assets: Vec<(String, Vec<u8>)>) {
            self.next_id += 10;
            let id = self.next_id;
            let assets = assets
                .into_iter()
                .enumerate()
                .map(|(i, (name, content))| Asset {
                    id: id + 1 + i as u64,
                    name,
                    state: "uploaded".into(),
                    size: content.len() as u64,
                    digest: sha256_digest(&content),
                    content,
                })
                .collect();
            self.gh.state().releases.push(Release {
                id,
                tag_name: tag.into(),
                target_commitish: "main".into(),
                name: tag.into(),
                body: "notes, with {braces}, [brackets] and \"quotes\"".into(),
                draft: false,
                prerelease,
                assets,
            });
        }

        /// A complete release of `version`: the archive and its SHA256SUMS.
        fn good_release(&mut self, tag: &str, version: &str, prerelease: bool) {
            let bytes = archive(version);
            let sums = sha256sums(&[(archive_name(), sha256_hex(&bytes))]);
            self.release(
                tag,
                prerelease,
                vec![(archive_name(), bytes), ("SHA256SUMS".into(), sums.into_bytes())],
            );
        }

        fn home(&self) -> &Path {
            self.home.path()
        }

        fn install(&self, args: &[&str]) -> Output {
            let tmp = self.home().join("tmp");
            std::fs::create_dir_all(&tmp).unwrap();
            Command::new("sh")
                .arg(script())
                .args(args)
                .env("HOME", self.home())
                .env("TMPDIR", &tmp)
                .env("HARTLM_API_URL", self.gh.api_url())
                .env("HARTLM_REPO", "hart/hartlm")
                .env_remove("HARTLM_PREFIX")
                .output()
                .unwrap()
        }

        /// Everything under ~/.local/share/hartlm and the temporary directory.
        fn leftovers(&self) -> Vec<String> {
            let mut out = Vec::new();
            for dir in [self.home().join(".local/share/hartlm"), self.home().join("tmp")] {
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    out.extend(rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()));
                }
            }
            out.sort();
            out
        }

        fn installed(&self) -> String {
            let link = self.home().join(".local/bin/hartlm");
            let out = Command::new(&link).output().unwrap();
            String::from_utf8(out.stdout).unwrap()
        }
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// A failure: exit 1 and exactly one line on stderr containing `what`.
    fn assert_one_line_failure(out: &Output, what: &str) {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("install.sh: error: ") && err.contains(what), "{err}");
    }

    #[test]
    fn installs_the_latest_release_and_links_it() {
        let mut fx = Fixture::new();
        fx.good_release("v1.2.3", "1.2.3", false);
        fx.good_release("nightly", "1.3.0-dev", true);
        let out = fx.install(&[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let said = text(&out.stdout);
        let dest = fx.home().join(".local/share/hartlm/1.2.3");
        assert!(
            said.contains(&format!("installed hartlm 1.2.3 ({}) into {}", triple(), dest.display())),
            "{said}"
        );
        assert!(said.contains("verified sha256"), "{said}");
        assert_eq!(fx.installed(), "hartlm 1.2.3\n", "latest skips the nightly prerelease");
        let man = fx.home().join(".local/share/man/man1/hartlm.1");
        assert_eq!(std::fs::read_link(&man).unwrap(), dest.join("share/man/man1/hartlm.1"));
        assert_eq!(fx.leftovers(), ["1.2.3"], "no staging or temporary files remain");
        // A named version, then the latest again: each replaces the link, both trees stay. The
        // first finds the new link of a run cut off before its rename, and replaces it too.
        let bin = fx.home().join(".local/bin");
        std::os::unix::fs::symlink("/nowhere", bin.join("hartlm.hartlm-new")).unwrap();
        let out = fx.install(&["--version", "nightly"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(fx.installed(), "hartlm 1.3.0-dev\n");
        let links: Vec<_> = std::fs::read_dir(&bin).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(links, ["hartlm"]);
        let out = fx.install(&[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(fx.installed(), "hartlm 1.2.3\n");
        assert_eq!(fx.leftovers(), ["1.2.3", "1.3.0-dev"]);
    }

    #[test]
    fn a_checksum_mismatch_installs_nothing_and_keeps_the_old_version() {
        let mut fx = Fixture::new();
        fx.good_release("v1.2.3", "1.2.3", false);
        assert!(fx.install(&[]).status.success());
        let bytes = archive("1.2.4");
        let wrong = sha256sums(&[(archive_name(), sha256_hex(b"something else"))]);
        fx.release("v1.2.4", false, vec![(archive_name(), bytes), ("SHA256SUMS".into(), wrong.into_bytes())]);
        let out = fx.install(&[]);
        assert_one_line_failure(&out, "checksum mismatch");
        assert_eq!(fx.leftovers(), ["1.2.3"]);
        assert_eq!(fx.installed(), "hartlm 1.2.3\n", "the working install is untouched");
    }

    #[test]
    fn a_missing_asset_or_release_fails_in_one_line() {
        let mut fx = Fixture::new();
        fx.release("v2.0.0", false, vec![("SHA256SUMS".into(), b"".to_vec())]);
        assert_one_line_failure(&fx.install(&[]), &format!("release v2.0.0 has no {}", archive_name()));
        let bytes = archive("2.0.1");
        fx.release("v2.0.1", false, vec![(archive_name(), bytes)]);
        assert_one_line_failure(&fx.install(&[]), "has no SHA256SUMS");
        assert_one_line_failure(
            &fx.install(&["--version", "v9.9.9"]),
            "cannot read release v9.9.9 of hart/hartlm",
        );
        assert!(fx.leftovers().is_empty(), "{:?}", fx.leftovers());
        assert!(!fx.home().join(".local/bin/hartlm").exists());
    }

    #[test]
    fn bad_arguments_and_foreign_files_are_refused() {
        let mut fx = Fixture::new();
        assert_one_line_failure(&fx.install(&["--version", "../../x"]), "is not a release tag");
        assert_one_line_failure(&fx.install(&["--frobnicate"]), "unknown argument");
        // Someone else's ~/.local/bin/hartlm is never overwritten.
        fx.good_release("v1.2.3", "1.2.3", false);
        let bin = fx.home().join(".local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("hartlm"), "mine").unwrap();
        let out = fx.install(&[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("is not a link this script made"), "{}", text(&out.stderr));
        assert_eq!(std::fs::read_to_string(bin.join("hartlm")).unwrap(), "mine");
    }
}
