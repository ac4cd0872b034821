//! `cargo xtask sync`: follows upstream. Decides from plain data whether there is work, merges in
//! a temporary worktree, tests, and only then pushes, moves the nightly tag and publishes.
//! Conflicts and failures go to one `upstream-sync` issue; our branch is never touched before tests pass.

mod issues;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
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

pub fn run(env: &Env, c: &Config) -> Result<Outcome> {
    let sh = Shell::new()?;
    sh.change_dir(env.repo);
    for (k, v) in &env.git_env {
        sh.set_var(k, v);
    }
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
        return Ok(Outcome::DryRun);
    }
    if decision == Decision::NothingNew && !c.update_dependencies {
        return Ok(Outcome::NothingNew);
    }
    let parent = env.repo.canonicalize()?.parent().map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!(".hartlm-sync-{}", std::process::id()));
    let dir_s = dir.to_string_lossy().into_owned();
    git(&sh, &["worktree", "add", "--quiet", "--detach", &dir_s, &o.ours])
        .context("creating the sync worktree")?;
    let _guard = Worktree { repo: &sh, dir: dir.clone() };
    let wt = Shell::new()?;
    wt.change_dir(&dir);
    for (k, v) in &env.git_env {
        wt.set_var(k, v);
    }
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "hartlm sync"),
        ("GIT_AUTHOR_EMAIL", "sync@hartlm.invalid"),
        ("GIT_COMMITTER_NAME", "hartlm sync"),
        ("GIT_COMMITTER_EMAIL", "sync@hartlm.invalid"),
    ] {
        wt.set_var(k, v);
    }
    if decision == Decision::Merge {
        let conflicts = merge(&wt, c, &o)?;
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
            report(env, c, &format!("Upstream sync: conflicts merging {range}"), &body)?;
            return Ok(Outcome::Conflict { files: conflicts });
        }
    }
    if c.update_dependencies {
        cmd!(wt, "cargo update --quiet").run().context("cargo update")?;
        if !git_ok(&wt, &["diff", "--quiet"]) {
            git(&wt, &["commit", "--quiet", "-am", "sync: cargo update"])?;
        }
    }
    let head = git(&wt, &["rev-parse", "HEAD"])?;
    if head == o.ours && o.nightly.as_deref() == Some(head.as_str()) {
        println!("sync: nothing changed");
        return Ok(Outcome::NothingNew);
    }
    let test = c.test.join(" ");
    println!("sync: testing {} with `{test}`", short(&head));
    if let Err(e) = run_command(&dir, &c.test) {
        let body = format!(
            "After merging upstream `{}` at `{}`, `{test}` failed: {e:#}\n\nNothing was pushed; the last good nightly ({}) stays.\n",
            c.upstream_branch,
            short(&o.upstream),
            o.nightly.as_deref().map_or("none", short)
        );
        report(env, c, "Upstream sync: tests failed", &body)?;
        return Ok(Outcome::Failed { step: test });
    }
    let branch_ref = format!("HEAD:refs/heads/{}", c.branch);
    // A rebase rewrites our commits: replace the branch only if nobody pushed since we fetched.
    let lease = format!("--force-with-lease=refs/heads/{}:{}", c.branch, o.ours);
    let mut push = vec!["push", "--quiet"];
    if c.strategy == Strategy::Rebase {
        push.push(&lease);
    }
    push.extend([c.remote.as_str(), &branch_ref]);
    git(&wt, &push).with_context(|| format!("pushing {} (did someone push meanwhile?)", c.branch))?;
    let tag_ref = format!("HEAD:refs/tags/{}", c.nightly_tag);
    git(&wt, &["push", "--quiet", "--force", &c.remote, &tag_ref]).context("moving the nightly tag")?;
    for step in &c.publish {
        if let Err(e) = run_command(&dir, step) {
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

/// Merges (or rebases onto) upstream in the worktree and puts our protected paths back.
/// Returns the files that still conflict (the worktree is then reset).
fn merge(wt: &Shell, c: &Config, o: &Observed) -> Result<Vec<String>> {
    let ok = match c.strategy {
        Strategy::Merge => git_ok(wt, &["merge", "--quiet", "--no-edit", &o.upstream]),
        Strategy::Rebase => git_ok(wt, &["rebase", "--quiet", &o.upstream]),
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
        let in_ours = !git(wt, &["ls-tree", "--name-only", &o.ours, "--", p])?.is_empty();
        if in_ours {
            git(wt, &["restore", &format!("--source={}", o.ours), "--staged", "--worktree", "--", p])?;
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

fn run_command(dir: &Path, argv: &[String]) -> Result<()> {
    let (program, args) = argv.split_first().context("empty command")?;
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("starting `{program}`"))?;
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

/// `cargo xtask sync`: exits 3 on a conflict, 4 on a failed step.
pub fn command(ws: &Workspace, dry_run: bool) -> Result<()> {
    let text = std::fs::read_to_string(ws.root.join("ci/sync.toml")).context("reading ci/sync.toml")?;
    let config = load_config(&text)?;
    // Issues need a repository and a token; without them conflicts are only printed.
    let github = crate::publish::github_config(None, None, None).ok().filter(|c| c.token.is_some());
    let git_env = github.as_ref().and_then(|c| c.token.as_deref()).map(github_push_auth).unwrap_or_default();
    let outcome = run(&Env { repo: &ws.root, github, dry_run, git_env }, &config)?;
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
