//! `cargo xtask bench-history`: one line per board run (date, commit, tier, board labels, pp and
//! tg t/s) built from `hartlm bench -o jsonl` (pure, tested), appended to a release's asset.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::Path;

use hartlm_release::github::Publisher;

use crate::workspace::Workspace;

pub const ASSET: &str = "bench-history.jsonl";

/// The history line for one board run: `date` (UTC, `YYYY-MM-DD`), the commit, tier and model
/// the bench reports, the runner labels, and each test as `pp<N>`/`tg<N>` → mean t/s.
pub fn history_line(bench_jsonl: &str, labels: &str, date: &str) -> Result<String> {
    let rows: Vec<Value> = bench_jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("not a JSON line: {l:.80}")))
        .collect::<Result<_>>()?;
    let Some(first) = rows.first() else {
        bail!("the bench output is empty; the board's `hartlm bench -o jsonl` printed nothing");
    };
    let text = |v: &Value, k: &str| {
        v[k].as_str().map(str::to_string).with_context(|| format!("bench row has no {k}"))
    };
    let (commit, tier, model) =
        (text(first, "build_commit")?, text(first, "tier")?, text(first, "model_filename")?);
    let mut tests = serde_json::Map::new();
    for r in &rows {
        let count = |k: &str| r[k].as_u64().with_context(|| format!("bench row has no {k}"));
        let (p, g) = (count("n_prompt")?, count("n_gen")?);
        let name = match (p, g) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        };
        let ts = r["avg_ts"].as_f64().context("bench row has no avg_ts")?;
        tests.insert(name, json!((ts * 100.0).round() / 100.0));
        if text(r, "tier")? != tier || text(r, "build_commit")? != commit {
            bail!("the bench rows disagree on tier or commit; give one board run's output");
        }
    }
    let labels: Vec<&str> = labels.trim().split(',').map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = json!({
        "date": date,
        "commit": commit,
        "tier": tier,
        "labels": labels,
        "model": model,
        "threads": first["n_threads"],
        "t_s": tests,
    });
    Ok(line.to_string())
}

/// Today's UTC date from the system clock, `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    hartlm_frontend::template::strftime_utc(secs as i64, "%Y-%m-%d")
}

/// Appends to `tag`'s history through the GitHub API.
pub fn append(publisher: &Publisher, tag: &str, line: &str, scratch: &Path) -> Result<usize> {
    publisher.append_line(tag, ASSET, line, scratch).with_context(|| format!("appending to {ASSET} of {tag}"))
}

pub fn command(
    ws: &Workspace,
    tag: &str,
    bench: &Path,
    labels: &Path,
    repo: Option<String>,
    api_url: Option<String>,
) -> Result<()> {
    let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let line = history_line(&read(bench)?, &read(labels)?, &today())?;
    let config = crate::publish::github_config(repo, api_url, None)?;
    if config.token.is_none() {
        bail!("GITHUB_TOKEN is not set; appending to a release asset needs a token with contents: write");
    }
    let publisher = Publisher::new(&config, Box::new(|m| eprintln!("bench-history: {m}")))?;
    let scratch = ws.target_dir.join("bench-history");
    std::fs::create_dir_all(&scratch)?;
    let lines = append(&publisher, tag, &line, &scratch)?;
    println!("{line}");
    eprintln!("bench-history: {ASSET} of {tag} holds {lines} runs");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hartlm_release::github::{Config, Retry};
    use hartlm_test_support::github::{Asset, GitHubDouble, Release, TOKEN, sha256_digest};
    use std::time::Duration;

    fn row(p: u64, g: u64, ts: f64) -> String {
        json!({"build_commit": "abc1234", "tier": "rv64gcv_zvfh", "model_filename": "s288-q4_0.gguf",
               "n_threads": 4, "n_prompt": p, "n_gen": g, "avg_ts": ts})
        .to_string()
    }

    #[test]
    fn one_line_per_run_with_pp_and_tg() {
        let bench = format!("{}\n{}\n", row(64, 0, 123.456), row(0, 16, 20.0));
        let line = history_line(&bench, "self-hosted,linux,riscv64, rvv ,vlen256\n", "2026-12-06").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(v["commit"], "abc1234");
        assert_eq!(v["tier"], "rv64gcv_zvfh");
        assert_eq!(v["labels"], json!(["self-hosted", "linux", "riscv64", "rvv", "vlen256"]));
        assert_eq!(v["t_s"], json!({"pp64": 123.46, "tg16": 20.0}));
        assert_eq!(v["date"], "2026-12-06");
    }

    #[test]
    fn bad_bench_output_is_refused() {
        assert!(history_line("", "x", "d").unwrap_err().to_string().contains("empty"));
        assert!(history_line("not json\n", "x", "d").is_err());
        let mixed = format!("{}\n{}\n", row(64, 0, 1.0), row(0, 16, 1.0).replace("abc1234", "def5678"));
        assert!(history_line(&mixed, "x", "d").unwrap_err().to_string().contains("disagree"));
    }

    #[test]
    fn today_is_a_date() {
        let t = today();
        assert!(t.len() == 10 && t.starts_with("20") && t.as_bytes()[4] == b'-', "{t}");
    }

    /// Against the GitHub double: the first run creates the asset, the next appends, and no
    /// staging asset is left behind; other assets are untouched.
    #[test]
    fn the_nightly_history_grows_by_one_line_per_run() {
        let gh = GitHubDouble::start("hart", "hartlm").unwrap();
        let tarball = b"tarball".to_vec();
        // Ids far above the double's own counter, which numbers uploads from 1.
        gh.state().releases.push(Release {
            id: 1000,
            tag_name: "nightly".into(),
            target_commitish: "main".into(),
            name: "nightly".into(),
            body: String::new(),
            draft: false,
            prerelease: true,
            assets: vec![Asset {
                id: 1001,
                name: "hartlm-riscv64gc-unknown-linux-gnu.tar.gz".into(),
                state: "uploaded".into(),
                size: tarball.len() as u64,
                digest: sha256_digest(&tarball),
                content: tarball,
            }],
        });
        let config = Config {
            repo: "hart/hartlm".into(),
            api_url: gh.api_url(),
            upload_url: Some(gh.upload_url()),
            token: Some(TOKEN.into()),
            retry: Retry { attempts: 3, base_delay: Duration::from_millis(5) },
        };
        let publisher = Publisher::new(&config, Box::new(|m| eprintln!("{m}"))).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        assert_eq!(append(&publisher, "nightly", "{\"run\":1}", scratch.path()).unwrap(), 1);
        assert_eq!(append(&publisher, "nightly", "{\"run\":2}\n", scratch.path()).unwrap(), 2);
        let releases = gh.releases();
        let mut names: Vec<&str> = releases[0].assets.iter().map(|a| a.name.as_str()).collect();
        names.sort();
        assert_eq!(names, [ASSET, "hartlm-riscv64gc-unknown-linux-gnu.tar.gz"]);
        let history = releases[0].assets.iter().find(|a| a.name == ASSET).unwrap();
        assert_eq!(String::from_utf8_lossy(&history.content), "{\"run\":1}\n{\"run\":2}\n");
        // A run cut off after deleting the old file left only `.new`: the next run builds on it.
        {
            let mut state = gh.state();
            let assets = &mut state.releases[0].assets;
            assets.retain(|a| a.name != ASSET);
            let content = b"{\"run\":1}\n{\"run\":2}\n".to_vec();
            let digest = sha256_digest(&content);
            let size = content.len() as u64;
            assets.push(Asset {
                id: 2000,
                name: format!("{ASSET}.new"),
                state: "uploaded".into(),
                size,
                digest,
                content,
            });
        }
        assert_eq!(append(&publisher, "nightly", "{\"run\":3}", scratch.path()).unwrap(), 3);
        let releases = gh.releases();
        let names: Vec<&str> = releases[0].assets.iter().map(|a| a.name.as_str()).collect();
        assert!(names.contains(&ASSET) && !names.iter().any(|n| n.ends_with(".new")), "{names:?}");
        let err = append(&publisher, "v9.9.9", "{}", scratch.path()).unwrap_err();
        assert!(format!("{err:#}").contains("no published release v9.9.9"), "{err:#}");
    }
}
