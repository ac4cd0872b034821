//! Sync against real git repositories (bare upstream and fork in a temp dir) and the GitHub double.

use super::*;
use hartlm_release::github::Retry;
use hartlm_test_support::github::{GitHubDouble, TOKEN};
use std::time::Duration;

struct Repos {
    tmp: PathBuf,
    up: Shell,
    local: PathBuf,
    gh: GitHubDouble,
}

fn sh_in(dir: &Path) -> Shell {
    let sh = Shell::new().unwrap();
    sh.change_dir(dir);
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "t"),
        ("GIT_AUTHOR_EMAIL", "t@t"),
        ("GIT_COMMITTER_NAME", "t"),
        ("GIT_COMMITTER_EMAIL", "t@t"),
    ] {
        sh.set_var(k, v);
    }
    sh
}

fn commit(sh: &Shell, files: &[(&str, &str)], msg: &str) {
    for (path, text) in files {
        let p = sh.current_dir().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    cmd!(sh, "git add -A").quiet().run().unwrap();
    cmd!(sh, "git commit -q -m {msg}").quiet().run().unwrap();
    cmd!(sh, "git push -q origin HEAD:refs/heads/main").quiet().run().unwrap();
}

fn head(sh: &Shell, git_dir: &Path, rev: &str) -> Option<String> {
    let d = git_dir.to_str().unwrap();
    cmd!(sh, "git --git-dir {d} rev-parse --verify -q {rev}").quiet().ignore_stderr().read().ok()
}

/// Upstream with three files, a fork of it (optionally with its own workflow), a clone of the
/// fork to run sync in, and a nightly built from the fork's head.
fn repos(name: &str, fork_commit: bool) -> Repos {
    let tmp = std::env::temp_dir().join(format!("hartlm-sync-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let sh = sh_in(&tmp);
    cmd!(sh, "git init -q --bare -b main upstream.git").run().unwrap();
    cmd!(sh, "git clone -q upstream.git up").quiet().ignore_stderr().run().unwrap();
    let up = sh_in(&tmp.join("up"));
    commit(
        &up,
        &[("src.txt", "a\nb\nc\n"), ("README", "hi\n"), (".github/workflows/ci.yml", "upstream ci v1\n")],
        "one",
    );
    cmd!(sh, "git clone -q --bare upstream.git fork.git").run().unwrap();
    cmd!(sh, "git clone -q fork.git local").run().unwrap();
    let local = tmp.join("local");
    let l = sh_in(&local);
    if fork_commit {
        commit(&l, &[(".github/workflows/ci.yml", "fork ci\n")], "our workflow");
    }
    cmd!(l, "git push -q origin HEAD:refs/tags/nightly").run().unwrap();
    Repos { tmp, up, local, gh: GitHubDouble::start("hart", "hartlm").unwrap() }
}

impl Repos {
    fn config(&self, test: &str) -> Config {
        self.config_with(test, Strategy::Merge)
    }

    fn config_with(&self, test: &str, strategy: Strategy) -> Config {
        Config {
            schema: 1,
            upstream_url: self.tmp.join("upstream.git").to_string_lossy().into(),
            upstream_branch: "main".into(),
            remote: "origin".into(),
            branch: "main".into(),
            strategy,
            keep_ours: vec![".github/workflows/".into()],
            update_dependencies: false,
            nightly_tag: "nightly".into(),
            issue_label: "upstream-sync".into(),
            test: vec![test.into()],
            publish: vec![],
        }
    }

    fn sync(&self, test: &str) -> Outcome {
        self.sync_with(test, Strategy::Merge)
    }

    fn sync_with(&self, test: &str, strategy: Strategy) -> Outcome {
        let github = GitHubConfig {
            repo: "hart/hartlm".into(),
            api_url: self.gh.api_url(),
            upload_url: Some(self.gh.upload_url()),
            token: Some(TOKEN.into()),
            retry: Retry { attempts: 2, base_delay: Duration::from_millis(1) },
        };
        let env =
            Env { repo: &self.local, github: Some(github), dry_run: false, git_env: vec![], vars: vec![] };
        run(&env, &self.config_with(test, strategy)).unwrap()
    }

    /// Sync as the workflow runs it: the token in the environment and in git's push header.
    fn sync_with_token(&self, test: Vec<String>) -> Outcome {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        vars.extend([
            ("GITHUB_TOKEN".to_string(), TOKEN.to_string()),
            ("HARTLM_SYNC_TOKEN".into(), TOKEN.into()),
            ("ACTIONS_RUNTIME_TOKEN".into(), TOKEN.into()),
        ]);
        let git_env = github_push_auth(TOKEN);
        vars.extend(git_env.iter().cloned());
        let env = Env { repo: &self.local, github: None, dry_run: false, git_env, vars };
        let mut config = self.config("true");
        config.test = test;
        run(&env, &config).unwrap()
    }

    fn fork(&self, rev: &str) -> Option<String> {
        head(&self.up, &self.tmp.join("fork.git"), rev)
    }

    fn file_at_fork(&self, path: &str) -> String {
        let d = self.tmp.join("fork.git");
        let d = d.to_str().unwrap();
        let spec = format!("main:{path}");
        cmd!(self.up, "git --git-dir {d} show {spec}").quiet().read().unwrap()
    }
}

impl Drop for Repos {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

#[test]
fn decisions() {
    let o = |merged, nightly: Option<&str>| Observed {
        ours: "o".into(),
        upstream: "u".into(),
        upstream_merged: merged,
        nightly: nightly.map(String::from),
    };
    assert_eq!(decide(&o(false, Some("o"))), Decision::Merge);
    assert_eq!(decide(&o(true, Some("o"))), Decision::NothingNew);
    assert_eq!(decide(&o(true, Some("x"))), Decision::Rebuild);
    assert_eq!(decide(&o(true, None)), Decision::Rebuild);
}

#[test]
fn push_auth_is_basic_with_the_token() {
    assert_eq!(base64(b"x-access-token:abc"), "eC1hY2Nlc3MtdG9rZW46YWJj");
    assert_eq!(base64(b"ab"), "YWI=");
    let env = github_push_auth("abc");
    assert_eq!(env[2].1, "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46YWJj");
}

#[test]
fn the_committed_config_loads() {
    let c = load_config(include_str!("../../../ci/sync.toml")).unwrap();
    assert!(c.keep_ours.iter().any(|p| p == ".github/workflows/"));
    assert!(load_config(&include_str!("../../../ci/sync.toml").replace("schema = 1", "schema = 9")).is_err());
}

#[test]
fn nothing_new_is_a_noop_that_writes_nothing() {
    let r = repos("noop", true);
    let before = r.fork("main");
    assert_eq!(r.sync("false"), Outcome::NothingNew, "tests are not even run");
    assert_eq!(r.fork("main"), before);
    assert!(r.gh.log().is_empty(), "no API calls at all");
}

#[test]
fn clean_fast_forward_pushes_and_moves_the_nightly() {
    let r = repos("ff", false);
    commit(&r.up, &[("src.txt", "a\nb\nc\nd\n")], "upstream d");
    let upstream = head(&r.up, &r.tmp.join("upstream.git"), "main");
    let out = r.sync("true");
    assert_eq!(out, Outcome::Published { commit: upstream.clone().unwrap() });
    assert_eq!(r.fork("main"), upstream, "a fast-forward");
    assert_eq!(r.fork("refs/tags/nightly"), upstream);
    assert_eq!(r.sync("true"), Outcome::NothingNew, "a second run finds nothing to do");
}

#[test]
fn clean_merge_keeps_our_workflows() {
    let r = repos("merge", true);
    commit(&r.up, &[("new.txt", "new\n"), (".github/workflows/ci.yml", "upstream ci v2\n")], "upstream");
    let Outcome::Published { commit } = r.sync("true") else { panic!("not published") };
    assert_eq!(r.fork("main").as_deref(), Some(commit.as_str()));
    assert_eq!(r.file_at_fork("new.txt"), "new");
    assert_eq!(r.file_at_fork(".github/workflows/ci.yml"), "fork ci", "our workflow kept");
    assert_eq!(r.fork("refs/tags/nightly").as_deref(), Some(commit.as_str()));
}

#[test]
fn conflicts_leave_everything_and_update_one_issue() {
    let r = repos("conflict", true);
    let l = sh_in(&r.local);
    commit(&l, &[("src.txt", "a\nB-fork\nc\n")], "ours");
    cmd!(l, "git push -q --force origin HEAD:refs/tags/nightly").run().unwrap();
    commit(&r.up, &[("src.txt", "a\nB-up\nc\n")], "theirs");
    let before = (r.fork("main"), r.fork("refs/tags/nightly"));
    let local_head = cmd!(l, "git rev-parse HEAD").read().unwrap();
    for run in 0..2 {
        assert_eq!(r.sync("true"), Outcome::Conflict { files: vec!["src.txt".into()] });
        assert_eq!((r.fork("main"), r.fork("refs/tags/nightly")), before, "nothing pushed");
        assert_eq!(cmd!(l, "git rev-parse HEAD").read().unwrap(), local_head);
        assert_eq!(cmd!(l, "git status --porcelain").read().unwrap(), "", "working tree untouched");
        assert_eq!(cmd!(l, "git worktree list").read().unwrap().lines().count(), 1, "no worktree left");
        let issues = r.gh.state().issues.clone();
        assert_eq!(issues.len(), 1, "run {run}: one issue, never a second");
        assert!(issues[0].open && issues[0].labels == ["upstream-sync"]);
        assert!(issues[0].body.contains("`src.txt`"), "{}", issues[0].body);
    }
}

#[test]
fn a_failed_build_pushes_nothing_and_a_later_run_recovers() {
    let r = repos("recover", true);
    commit(&r.up, &[("new.txt", "new\n")], "upstream");
    let before = (r.fork("main"), r.fork("refs/tags/nightly"));
    assert!(matches!(r.sync("false"), Outcome::Failed { .. }));
    assert_eq!((r.fork("main"), r.fork("refs/tags/nightly")), before, "nothing pushed, old nightly stays");
    let issue = r.gh.state().issues[0].clone();
    assert!(issue.open && issue.body.contains("failed"), "{}", issue.body);

    let Outcome::Published { commit } = r.sync("true") else { panic!("not published") };
    assert_eq!(r.fork("refs/tags/nightly").as_deref(), Some(commit.as_str()), "nightly moved");
    let issue = r.gh.state().issues[0].clone();
    assert!(!issue.open && issue.comments.len() == 1, "closed with a comment: {issue:?}");
    assert_eq!(r.gh.state().issues.len(), 1);
}

#[test]
fn dry_run_only_plans() {
    let r = repos("dry", true);
    commit(&r.up, &[("new.txt", "new\n")], "upstream");
    let before = r.fork("main");
    let env = Env { repo: &r.local, github: None, dry_run: true, git_env: vec![], vars: vec![] };
    assert_eq!(run(&env, &r.config("true")).unwrap(), Outcome::DryRun);
    assert_eq!(r.fork("main"), before);
}

#[test]
fn rebase_replays_our_commits_on_upstream() {
    let r = repos("rebase", true);
    commit(&r.up, &[("new.txt", "new\n")], "upstream");
    let upstream = head(&r.up, &r.tmp.join("upstream.git"), "main").unwrap();
    let Outcome::Published { commit } = r.sync_with("true", Strategy::Rebase) else {
        panic!("not published")
    };
    let parent = head(&r.up, &r.tmp.join("fork.git"), &format!("{commit}^"));
    assert_eq!(parent.as_deref(), Some(upstream.as_str()), "our commit sits on upstream's head");
    assert_eq!(r.file_at_fork(".github/workflows/ci.yml"), "fork ci");
}

/// An attacker's test in the merged tree: upstream adds a script that dumps its environment and
/// the git configuration it can see. Neither the token nor the push header may appear, and the
/// script cannot have touched our repository's hooks.
#[test]
fn merged_tests_run_without_the_token() {
    let r = repos("token", true);
    let dump = r.tmp.join("stolen.txt");
    let script = format!(
        "env > '{d}'; git config --list >> '{d}' 2>&1; mkdir -p ../local/.git/hooks 2>/dev/null; \
         printf '#!/bin/sh\\necho hooked > {d}.hook\\n' > \"$(git rev-parse --git-common-dir)/hooks/pre-push\"; \
         chmod +x \"$(git rev-parse --git-common-dir)/hooks/pre-push\"",
        d = dump.display()
    );
    commit(&r.up, &[("print-env.sh", &script)], "an upstream test that prints its environment");
    let outcome = r.sync_with_token(vec!["sh".into(), "print-env.sh".into()]);
    assert!(matches!(outcome, Outcome::Published { .. }), "{outcome:?}");
    let stolen = std::fs::read_to_string(&dump).expect("the test ran");
    assert!(stolen.contains("PATH="), "the tests got a working environment: {stolen}");
    let header = base64(format!("x-access-token:{TOKEN}").as_bytes());
    for secret in [TOKEN, header.as_str(), "extraheader", "GITHUB_TOKEN", "GIT_CONFIG"] {
        assert!(!stolen.contains(secret), "`{secret}` reached the merged tree's tests:\n{stolen}");
    }
    assert!(!r.tmp.join("stolen.txt.hook").exists(), "a hook planted by the tests ran at push time");
    assert!(!r.local.join(".git/hooks/pre-push").exists(), "the tests reached our repository's hooks");
}

#[test]
fn untrusted_env_keeps_what_builds_need_and_drops_secrets() {
    let vars = [
        "PATH",
        "HOME",
        "LC_ALL",
        "PIP_FIND_LINKS",
        "CARGO_HOME",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "HARTLM_SYNC_TOKEN",
        "CARGO_REGISTRY_TOKEN",
        "GIT_CONFIG_VALUE_0",
        "ACTIONS_RUNTIME_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "PIP_INDEX_PASSWORD",
        "SSH_AUTH_SOCK",
        "RANDOM_VAR",
    ]
    .map(|k| (k.to_string(), "v".to_string()));
    let kept: Vec<String> = untrusted_env(vars).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kept, ["PATH", "HOME", "LC_ALL", "PIP_FIND_LINKS", "CARGO_HOME"]);
}

/// The workflow's two jobs: the testing phase (no token) writes a report; the pushing phase
/// redoes the merge and pushes only the tree that was tested.
#[test]
fn the_pushing_phase_pushes_only_the_tested_tree() {
    let r = repos("phases", true);
    commit(&r.up, &[("new.txt", "new\n")], "upstream");
    let before = (r.fork("main"), r.fork("refs/tags/nightly"));
    let untrusted = Env { repo: &r.local, github: None, dry_run: false, git_env: vec![], vars: vec![] };
    let staged = stage(&untrusted, &r.config("true")).unwrap();
    let Staged::Passed(tested) = &staged else { panic!("{staged:?}") };
    assert_eq!((r.fork("main"), r.fork("refs/tags/nightly")), before, "the testing phase pushes nothing");

    let report = r.tmp.join("report.json");
    write_report(&report, Staged::Passed(Tested { tree: "0".repeat(40), ..tested.clone() })).unwrap();
    let trusted = Env { repo: &r.local, github: None, dry_run: false, git_env: vec![], vars: vec![] };
    let err = finish(&trusted, &r.config("true"), read_report(&report).unwrap()).unwrap_err();
    assert!(err.to_string().contains("was tested; nothing pushed"), "{err}");
    assert_eq!((r.fork("main"), r.fork("refs/tags/nightly")), before, "a tampered tree is not pushed");

    write_report(&report, staged).unwrap();
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("\"schema\": 1") && text.contains("\"outcome\": \"passed\""), "{text}");
    let Outcome::Published { commit } =
        finish(&trusted, &r.config("true"), read_report(&report).unwrap()).unwrap()
    else {
        panic!("not published")
    };
    assert_eq!(r.fork("main").as_deref(), Some(commit.as_str()));
    assert_eq!(r.file_at_fork("new.txt"), "new");
    assert_eq!(r.file_at_fork(".github/workflows/ci.yml"), "fork ci", "our workflow kept");

    std::fs::write(&report, "{\"schema\": 2, \"outcome\": \"nothing-new\"}").unwrap();
    assert!(read_report(&report).unwrap_err().to_string().contains("schema 2 is not 1"));
}

#[test]
fn the_pushing_phase_refuses_when_our_branch_moved() {
    let r = repos("moved", true);
    commit(&r.up, &[("new.txt", "new\n")], "upstream");
    let env = Env { repo: &r.local, github: None, dry_run: false, git_env: vec![], vars: vec![] };
    let staged = stage(&env, &r.config("true")).unwrap();
    let l = sh_in(&r.local);
    commit(&l, &[("ours.txt", "meanwhile\n")], "someone pushed meanwhile");
    let moved = r.fork("main");
    let err = finish(&env, &r.config("true"), staged).unwrap_err();
    assert!(err.to_string().contains("while the merge was tested"), "{err}");
    assert_eq!(r.fork("main"), moved);
}
