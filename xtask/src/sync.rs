//! `cargo xtask sync`: follows upstream. Decides from plain data whether there is work, merges in
//! a temporary worktree, tests, and only then pushes, moves the nightly tag and publishes.
//! Conflicts and failures go to one `upstream-sync` issue; our branch is never touched before tests pass.

mod issues;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use xshell::{Shell, cmd};

use hartlm_release::github::Config as GitHubConfig;

use issues::IssueTracker;

use crate::workspace::Workspace;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Merge,
    Rebase,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub schema: u32,
    pub upstream_url: String,
    pub upstream_branch: String,
    /// Our remote and branch.
    pub remote: String,
    pub branch: String,
    pub strategy: Strategy,
    /// Paths that always keep our version (upstream's changes to them are dropped).
    pub keep_ours: Vec<String>,
    /// Also run `cargo update` and ship the result.
    pub update_dependencies: bool,
    pub nightly_tag: String,
    pub issue_label: String,
    /// Must pass before anything is pushed.
    pub test: Vec<String>,
    /// Run after the push and the tag move (build the release and `publish --nightly`).
    pub publish: Vec<Vec<String>>,
}

pub fn load_config(text: &str) -> Result<Config> {
    let c: Config = toml::from_str(text).context("ci/sync.toml")?;
    if c.schema != 1 {
        bail!("ci/sync.toml: schema {} is not 1", c.schema);
    }
    if c.test.is_empty() {
        bail!("ci/sync.toml: `test` must name a command; nothing is pushed untested");
    }
    Ok(c)
}

/// What the remote branch, upstream and the nightly tag point at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub ours: String,
    pub upstream: String,
    /// Upstream's head is already contained in our branch.
    pub upstream_merged: bool,
    /// The commit the last nightly was built from (the nightly tag).
    pub nightly: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing upstream that we lack, and the nightly is built from our head.
    NothingNew,
    /// Upstream has commits we lack.
    Merge,
    /// Upstream is merged but the nightly is older than our head (a previous run failed after
    /// the push, or we committed since): build and publish our head.
    Rebuild,
}

pub fn decide(o: &Observed) -> Decision {
    if !o.upstream_merged {
        Decision::Merge
    } else if o.nightly.as_deref() != Some(o.ours.as_str()) {
        Decision::Rebuild
    } else {
        Decision::NothingNew
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    NothingNew,
    DryRun,
    Conflict { files: Vec<String> },
    Failed { step: String },
    Published { commit: String },
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Conflict { .. } => 3,
            Outcome::Failed { .. } => 4,
            _ => 0,
        }
    }
}

/// Where the run happens and whom it reports to.
pub struct Env<'a> {
    pub repo: &'a Path,
    pub github: Option<GitHubConfig>,
    pub dry_run: bool,
    /// Environment for every git command (credentials for fetch and push).
    pub git_env: Vec<(String, String)>,
    /// The environment sync was started with; the merged tree's tests see only
    /// [`untrusted_env`] of it.
    pub vars: Vec<(String, String)>,
}

/// Git configuration, passed by environment, that authenticates https pushes to github.com
/// with `token`: the workflow checks out without stored credentials.
pub fn github_push_auth(token: &str) -> Vec<(String, String)> {
    let header = format!("AUTHORIZATION: basic {}", base64(format!("x-access-token:{token}").as_bytes()));
    vec![
        ("GIT_CONFIG_COUNT".into(), "1".into()),
        ("GIT_CONFIG_KEY_0".into(), "http.https://github.com/.extraheader".into()),
        ("GIT_CONFIG_VALUE_0".into(), header),
    ]
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn git(sh: &Shell, args: &[&str]) -> Result<String> {
    Ok(cmd!(sh, "git {args...}").quiet().ignore_stderr().read()?.trim().to_string())
}

fn git_ok(sh: &Shell, args: &[&str]) -> bool {
    cmd!(sh, "git {args...}").quiet().ignore_stdout().ignore_stderr().run().is_ok()
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn observe(sh: &Shell, c: &Config) -> Result<Observed> {
    if git(sh, &["rev-parse", "--is-shallow-repository"])? == "true" {
        eprintln!("sync: shallow clone; fetching the full history of {}", c.remote);
        git(sh, &["fetch", "--quiet", "--unshallow", &c.remote]).context("unshallowing the clone")?;
    }
    let ours_ref = format!("refs/remotes/{}/{}", c.remote, c.branch);
    git(sh, &["fetch", "--quiet", &c.remote, &format!("+refs/heads/{}:{ours_ref}", c.branch)]).with_context(
        || {
            format!(
                "fetching {} from remote `{}` (ci/sync.toml names it; `git remote -v` lists remotes)",
                c.branch, c.remote
            )
        },
    )?;
    git(
        sh,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            &c.upstream_url,
            &format!("+refs/heads/{}:refs/hartlm-sync/upstream", c.upstream_branch),
        ],
    )
    .with_context(|| format!("fetching {} from upstream {}", c.upstream_branch, c.upstream_url))?;
    let ours = git(sh, &["rev-parse", &ours_ref])?;
    let upstream = git(sh, &["rev-parse", "refs/hartlm-sync/upstream"])?;
    let upstream_merged = git_ok(sh, &["merge-base", "--is-ancestor", &upstream, &ours]);
    let tag = format!("refs/tags/{}", c.nightly_tag);
    let listed = git(sh, &["ls-remote", &c.remote, &tag, &format!("{tag}^{{}}")])?;
    // An annotated tag lists the tag object and then the peeled commit; the commit wins.
    let nightly = listed.lines().filter_map(|l| l.split_whitespace().next()).next_back().map(String::from);
    Ok(Observed { ours, upstream, upstream_merged, nightly })
}

/// A detached worktree beside the repository (so `../shared` resolves as in the checkout),
/// removed again on drop whatever happened.
struct Worktree<'a> {
    repo: &'a Shell,
    dir: PathBuf,
}

impl Drop for Worktree<'_> {
    fn drop(&mut self) {
        let dir = self.dir.to_string_lossy().into_owned();
        let _ = git(self.repo, &["worktree", "remove", "--force", &dir]);
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = git(self.repo, &["worktree", "prune"]);
    }
}

/// What the testing phase hands the pushing phase: the commits it merged and the tree it
/// tested. The pushing phase redoes the merge itself and pushes only that same tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tested {
    pub ours: String,
    pub upstream: String,
    pub merged: bool,
    pub tree: String,
}

/// The testing phase's result, as `--test-only --report FILE` writes it for the pushing job.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Staged {
    NothingNew,
    DryRun,
    /// Nothing pushed; `title` and `body` are for the upstream-sync issue.
    Conflict {
        files: Vec<String>,
        title: String,
        body: String,
    },
    Failed {
        step: String,
        title: String,
        body: String,
    },
    Passed(Tested),
}

/// The report file's schema; the pushing phase refuses any other.
pub const REPORT_SCHEMA: u32 = 1;

#[derive(Serialize, Deserialize)]
struct ReportFile {
    schema: u32,
    #[serde(flatten)]
    staged: Staged,
}

/// Both phases in one process (a developer's machine): [`stage`], then [`push_tested`].
pub fn run(env: &Env, c: &Config) -> Result<Outcome> {
    let staged = stage(env, c)?;
    finish(env, c, staged)
}

/// The pushing phase for a staged result: report a conflict or failure, or push what was tested.
pub fn finish(env: &Env, c: &Config, staged: Staged) -> Result<Outcome> {
    match staged {
        Staged::NothingNew => Ok(Outcome::NothingNew),
        Staged::DryRun => Ok(Outcome::DryRun),
        Staged::Conflict { files, title, body } => {
            report(env, c, &title, &body)?;
            Ok(Outcome::Conflict { files })
        }
        Staged::Failed { step, title, body } => {
            report(env, c, &title, &body)?;
            Ok(Outcome::Failed { step })
        }
        Staged::Passed(tested) => push_tested(env, c, &tested),
    }
}

fn shell_in(env: &Env, dir: &Path) -> Result<Shell> {
    let sh = Shell::new()?;
    sh.change_dir(dir);
    for (k, v) in &env.git_env {
        sh.set_var(k, v);
    }
    Ok(sh)
}

/// A worktree of `ours` beside the repository, with sync's commit identity.
fn worktree<'a>(
    repo: &'a Shell,
    env: &Env,
    parent: &Path,
    role: &str,
    ours: &str,
) -> Result<(Worktree<'a>, Shell)> {
    let dir = parent.join(format!(".hartlm-sync-{role}-{}", std::process::id()));
    let dir_s = dir.to_string_lossy().into_owned();
    git(repo, &["worktree", "add", "--quiet", "--detach", &dir_s, ours])
        .context("creating the sync worktree")?;
    let guard = Worktree { repo, dir: dir.clone() };
    let wt = shell_in(env, &dir)?;
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "hartlm sync"),
        ("GIT_AUTHOR_EMAIL", "sync@hartlm.invalid"),
        ("GIT_COMMITTER_NAME", "hartlm sync"),
        ("GIT_COMMITTER_EMAIL", "sync@hartlm.invalid"),
    ] {
        wt.set_var(k, v);
    }
    Ok((guard, wt))
}

fn parent_dir(repo: &Path) -> Result<PathBuf> {
    Ok(repo.canonicalize()?.parent().map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir))
}

/// The testing phase: observe, decide, merge in a temporary worktree, and test the result in a
/// separate clone without credentials. Pushes nothing and needs no token.
pub fn stage(env: &Env, c: &Config) -> Result<Staged> {
    let sh = shell_in(env, env.repo)?;
    let o = observe(&sh, c)?;
    let decision = decide(&o);
    let behind = git(&sh, &["rev-list", "--count", &format!("{}..{}", o.ours, o.upstream)])?;
    println!(
        "sync: {}/{} at {}, upstream {} at {} ({behind} commits not in ours), nightly built from {}",
        c.remote,
        c.branch,
        short(&o.ours),
        c.upstream_branch,
        short(&o.upstream),
        o.nightly.as_deref().map_or("nothing yet", short)
    );
    let plan = match decision {
        Decision::NothingNew if !c.update_dependencies => "nothing to do",
        Decision::NothingNew => {
            "check for dependency updates; if any: test, push, move the nightly tag, publish"
        }
        Decision::Merge => {
            "merge upstream in a temporary worktree, keep our protected paths, test, then push, move the nightly tag, publish"
        }
        Decision::Rebuild => "test our head, then move the nightly tag and publish",
    };
    println!("sync: decision {decision:?}: {plan}");
    if env.dry_run {
        return Ok(Staged::DryRun);
    }
    if decision == Decision::NothingNew && !c.update_dependencies {
        return Ok(Staged::NothingNew);
    }
    let parent = parent_dir(env.repo)?;
    let (guard, wt) = worktree(&sh, env, &parent, "merge", &o.ours)?;
    let merged = decision == Decision::Merge;
    if merged {
        let conflicts = merge(&wt, c, &o.ours, &o.upstream)?;
        if !conflicts.is_empty() {
            let range = format!("{}..{}", short(&o.ours), short(&o.upstream));
            let body = format!(
                "Merging upstream `{}` ({} commits, `{range}`) into `{}` conflicts in:\n\n{}\n\n\
                 The branch was left as it was. Resolve by hand: `git fetch {} {} && git merge FETCH_HEAD`.\n",
                c.upstream_branch,
                behind,
                c.branch,
                conflicts.iter().map(|f| format!("- `{f}`")).collect::<Vec<_>>().join("\n"),
                c.upstream_url,
                c.upstream_branch
            );
            let title = format!("Upstream sync: conflicts merging {range}");
            return Ok(Staged::Conflict { files: conflicts, title, body });
        }
    }
    update_dependencies(&wt, c)?;
    let head = git(&wt, &["rev-parse", "HEAD"])?;
    if head == o.ours && o.nightly.as_deref() == Some(head.as_str()) {
        println!("sync: nothing changed");
        return Ok(Staged::NothingNew);
    }
    let tree = git(&wt, &["rev-parse", "HEAD^{tree}"])?;
    let test = c.test.join(" ");
    println!("sync: testing {} with `{test}` in a separate clone, without credentials", short(&head));
    if let Err(e) = test_in_clone(&sh, &guard.dir, &parent, &head, &c.test, &untrusted_env(env.vars.clone()))
    {
        let body = format!(
            "After merging upstream `{}` at `{}`, `{test}` failed: {e:#}\n\nNothing was pushed; the last good nightly ({}) stays.\n",
            c.upstream_branch,
            short(&o.upstream),
            o.nightly.as_deref().map_or("none", short)
        );
        return Ok(Staged::Failed { step: test, title: "Upstream sync: tests failed".into(), body });
    }
    Ok(Staged::Passed(Tested { ours: o.ours, upstream: o.upstream, merged, tree }))
}

fn update_dependencies(wt: &Shell, c: &Config) -> Result<()> {
    if c.update_dependencies {
        cmd!(wt, "cargo update --quiet").run().context("cargo update")?;
        if !git_ok(wt, &["diff", "--quiet"]) {
            git(wt, &["commit", "--quiet", "-am", "sync: cargo update"])?;
        }
    }
    Ok(())
}

/// The pushing phase. Runs none of the merged code before the push: it redoes the merge of the
/// tested commits itself (git only), requires the very tree that was tested, then pushes, moves
/// the nightly tag, runs the publish steps and closes the sync issue.
pub fn push_tested(env: &Env, c: &Config, t: &Tested) -> Result<Outcome> {
    for sha in [&t.ours, &t.upstream, &t.tree] {
        if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("the sync report names {sha:?}, not a commit id; rerun the sync");
        }
    }
    let sh = shell_in(env, env.repo)?;
    let o = observe(&sh, c)?;
    if o.ours != t.ours {
        bail!(
            "{}/{} moved from {} to {} while the merge was tested; nothing pushed (the next run retries)",
            c.remote,
            c.branch,
            short(&t.ours),
            short(&o.ours)
        );
    }
    if t.merged && !git_ok(&sh, &["merge-base", "--is-ancestor", &t.upstream, &o.upstream]) {
        bail!(
            "the tested upstream commit {} is not on upstream {}; nothing pushed",
            short(&t.upstream),
            c.upstream_branch
        );
    }
    let parent = parent_dir(env.repo)?;
    let (guard, wt) = worktree(&sh, env, &parent, "push", &o.ours)?;
    if t.merged && !merge(&wt, c, &o.ours, &t.upstream)?.is_empty() {
        bail!(
            "merging {} again conflicts, although the tested merge did not; nothing pushed",
            short(&t.upstream)
        );
    }
    update_dependencies(&wt, c)?;
    let head = git(&wt, &["rev-parse", "HEAD"])?;
    let tree = git(&wt, &["rev-parse", "HEAD^{tree}"])?;
    if tree != t.tree {
        bail!(
            "the merge here gives tree {} but tree {} was tested; nothing pushed (the next run retries)",
            short(&tree),
            short(&t.tree)
        );
    }
    let no_hooks = ["-c", "core.hooksPath=/dev/null", "push", "--quiet", "--no-verify"];
    let branch_ref = format!("HEAD:refs/heads/{}", c.branch);
    // A rebase rewrites our commits: replace the branch only if nobody pushed since we fetched.
    let lease = format!("--force-with-lease=refs/heads/{}:{}", c.branch, o.ours);
    let mut push = no_hooks.to_vec();
    if c.strategy == Strategy::Rebase {
        push.push(&lease);
    }
    push.extend([c.remote.as_str(), &branch_ref]);
    git(&wt, &push).with_context(|| format!("pushing {} (did someone push meanwhile?)", c.branch))?;
    let tag_ref = format!("HEAD:refs/tags/{}", c.nightly_tag);
    let mut tag = no_hooks.to_vec();
    tag.extend(["--force", c.remote.as_str(), &tag_ref]);
    git(&wt, &tag).context("moving the nightly tag")?;
    for step in &c.publish {
        if let Err(e) = run_command(&guard.dir, step) {
            let body = format!("`{}` failed after the push: {e:#}\n", step.join(" "));
            report(env, c, "Upstream sync: publishing the nightly failed", &body)?;
            return Ok(Outcome::Failed { step: step.join(" ") });
        }
    }
    if let Some(gh) = &env.github {
        let closed =
            IssueTracker::new(gh)?.resolve(&c.issue_label, &format!("Synced: nightly built from {head}."))?;
        for n in closed {
            println!("sync: closed issue #{n}");
        }
    }
    println!("sync: pushed {} and published the nightly", short(&head));
    Ok(Outcome::Published { commit: head })
}

/// Writes the testing phase's result for the pushing job.
pub fn write_report(path: &Path, staged: Staged) -> Result<()> {
    let text = serde_json::to_string_pretty(&ReportFile { schema: REPORT_SCHEMA, staged })?;
    hartlm_abi::atomic::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a report written by [`write_report`] (an artifact of a job that ran untrusted code:
/// capped in size, schema-checked; its commit ids are checked again before use).
pub fn read_report(path: &Path) -> Result<Staged> {
    let text = hartlm_abi::files::read_text_capped(path, 1 << 20)
        .with_context(|| format!("sync report {}", path.display()))?;
    let file: ReportFile =
        serde_json::from_str(&text).with_context(|| format!("sync report {}", path.display()))?;
    if file.schema != REPORT_SCHEMA {
        bail!("sync report {}: schema {} is not {REPORT_SCHEMA}", path.display(), file.schema);
    }
    Ok(file.staged)
}

/// Merges (or rebases onto) upstream in the worktree and puts our protected paths back.
/// Returns the files that still conflict (the worktree is then reset).
fn merge(wt: &Shell, c: &Config, ours: &str, upstream: &str) -> Result<Vec<String>> {
    let ok = match c.strategy {
        Strategy::Merge => git_ok(wt, &["merge", "--quiet", "--no-edit", upstream]),
        Strategy::Rebase => git_ok(wt, &["rebase", "--quiet", upstream]),
    };
    if !ok {
        let unmerged = git(wt, &["diff", "--name-only", "--diff-filter=U"])?;
        let protected = |f: &str| c.keep_ours.iter().any(|p| f.starts_with(p.as_str()));
        let conflicts: Vec<String> = unmerged.lines().filter(|f| !protected(f)).map(String::from).collect();
        if !conflicts.is_empty() || c.strategy == Strategy::Rebase {
            let abort = if c.strategy == Strategy::Merge { "merge" } else { "rebase" };
            git(wt, &[abort, "--abort"])?;
            let mut all: Vec<String> = unmerged.lines().map(String::from).collect();
            if all.is_empty() {
                all.push("(the rebase stopped; see `git rebase` output)".into());
            }
            return Ok(if conflicts.is_empty() { all } else { conflicts });
        }
        for f in unmerged.lines() {
            git(wt, &["checkout", "--ours", "--", f])?;
            git(wt, &["add", "--", f])?;
        }
        git(wt, &["commit", "--quiet", "--no-edit"])?;
    }
    let mut kept = Vec::new();
    for p in &c.keep_ours {
        let in_ours = !git(wt, &["ls-tree", "--name-only", ours, "--", p])?.is_empty();
        if in_ours {
            git(wt, &["restore", &format!("--source={ours}"), "--staged", "--worktree", "--", p])?;
        } else if !git(wt, &["ls-files", "--", p])?.is_empty() {
            git(wt, &["rm", "-r", "--quiet", "--", p])?;
        }
        if !git_ok(wt, &["diff", "--cached", "--quiet"]) {
            kept.push(p.as_str());
        }
    }
    if !kept.is_empty() {
        git(wt, &["commit", "--quiet", "-m", &format!("sync: keep our {}", kept.join(", "))])?;
    }
    Ok(vec![])
}

/// Runs the merged tree's tests in a fresh clone of `head` beside the repository (so `../shared`
/// resolves), with [`untrusted_env`]: the merged code is upstream's, and neither our token nor
/// our repository's `.git` (hooks, config) is within its reach. Removed afterwards.
fn test_in_clone(
    sh: &Shell,
    worktree: &Path,
    parent: &Path,
    head: &str,
    argv: &[String],
    env: &[(String, String)],
) -> Result<()> {
    let dir = parent.join(format!(".hartlm-sync-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (from, to) = (worktree.to_string_lossy().into_owned(), dir.to_string_lossy().into_owned());
    git(sh, &["clone", "--quiet", "--no-hardlinks", "--no-checkout", &from, &to])
        .context("cloning for the tests")?;
    let result = git(sh, &["-C", &to, "checkout", "--quiet", "--detach", head])
        .context("checking out the merged commit")
        .and_then(|_| run_command_with(&dir, argv, Some(env)));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Variables that never reach untrusted code, whatever else passes: credentials by name, git's
/// configuration-by-environment (our push header travels that way) and the runner's job tokens.
fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "KEY", "COOKIE"]
        .iter()
        .any(|w| upper.contains(w))
        || upper.starts_with("GIT_CONFIG")
        || upper.starts_with("GITHUB_")
        || upper.starts_with("ACTIONS_")
        || upper.starts_with("GH_")
        || upper.starts_with("SSH_")
}

/// The environment the merged tree's tests get: what a build needs (paths, locale, toolchain
/// homes, proxies, CI and pip settings) and nothing secret ([`is_secret`]).
pub fn untrusted_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    const PASS: &[&str] = &[
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TERM",
        "TMPDIR",
        "TZ",
        "CI",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TERM_COLOR",
        "CARGO_INCREMENTAL",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "DEBIAN_FRONTEND",
    ];
    let passes = |k: &str| {
        PASS.contains(&k) || k.starts_with("LC_") || k.starts_with("PIP_") || k.starts_with("PYENV_")
    };
    vars.into_iter().filter(|(k, _)| passes(k) && !is_secret(k)).collect()
}

fn run_command(dir: &Path, argv: &[String]) -> Result<()> {
    run_command_with(dir, argv, None)
}

/// Runs `argv` in `dir`, with exactly `env` when given (else ours).
fn run_command_with(dir: &Path, argv: &[String], env: Option<&[(String, String)]>) -> Result<()> {
    let (program, args) = argv.split_first().context("empty command")?;
    let mut command = std::process::Command::new(program);
    if let Some(env) = env {
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    let status =
        command.args(args).current_dir(dir).status().with_context(|| format!("starting `{program}`"))?;
    if !status.success() {
        bail!("exit status {}", status.code().map_or("signal".into(), |c| c.to_string()));
    }
    Ok(())
}

fn report(env: &Env, c: &Config, title: &str, body: &str) -> Result<()> {
    eprintln!("sync: {title}\n{body}");
    let Some(gh) = &env.github else {
        eprintln!(
            "sync: warning: no GITHUB_TOKEN/GITHUB_REPOSITORY, so no `{}` issue was filed",
            c.issue_label
        );
        return Ok(());
    };
    let (n, created) = IssueTracker::new(gh)?.report(&c.issue_label, title, body)?;
    println!("sync: {} issue #{n}", if created { "opened" } else { "updated" });
    Ok(())
}

/// Which part of a sync this process runs.
pub enum Phase {
    /// Stage and push in one process (a developer's machine).
    Both,
    /// Merge and test without any token; write the result to `report`.
    TestOnly { report: PathBuf },
    /// Push what `report` says was tested.
    PushFrom { report: PathBuf },
}

/// `cargo xtask sync`: exits 3 on a conflict, 4 on a failed step.
pub fn command(ws: &Workspace, dry_run: bool, phase: Phase) -> Result<()> {
    let text = std::fs::read_to_string(ws.root.join("ci/sync.toml")).context("reading ci/sync.toml")?;
    let config = load_config(&text)?;
    let vars: Vec<(String, String)> = std::env::vars().collect();
    if let Phase::TestOnly { report } = &phase {
        if let Some((name, _)) = vars.iter().find(|(k, _)| k == "GITHUB_TOKEN" || k == "GH_TOKEN") {
            bail!(
                "{name} is set: the testing phase runs upstream's code and must not hold a token; unset it"
            );
        }
        let env = Env { repo: &ws.root, github: None, dry_run, git_env: vec![], vars };
        let staged = stage(&env, &config)?;
        println!("sync: testing phase: {}", serde_json::to_string(&staged)?);
        return write_report(report, staged);
    }
    // Issues need a repository and a token; without them conflicts are only printed.
    let github = crate::publish::github_config(None, None, None).ok().filter(|c| c.token.is_some());
    let git_env = github.as_ref().and_then(|c| c.token.as_deref()).map(github_push_auth).unwrap_or_default();
    let env = Env { repo: &ws.root, github, dry_run, git_env, vars };
    let outcome = match phase {
        Phase::PushFrom { report } => finish(&env, &config, read_report(&report)?)?,
        _ => run(&env, &config)?,
    };
    match outcome.exit_code() {
        0 => Ok(()),
        code => {
            eprintln!("xtask: sync: {outcome:?}");
            std::process::exit(code.into())
        }
    }
}

#[cfg(test)]
mod tests;
