//! The hostile-input suite: hundreds of damaged models, odd prompts, bad flags and variables,
//! special files and broken installations, run against a packaged release natively or under qemu.
//! Every case must exit with its stated code and print its one stated stderr line; a panic,
//! a signal, a timeout or a second line fails it.

mod cases;
mod gguf_edit;

use anyhow::{Context, Result};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::qemu::{self, CpuEntry, RunOut};
use cases::{Case, Damage, Make};

pub use cases::Models;

/// Where the suite runs: a CPU (native, or a qemu model) and the unpacked release it runs.
pub struct Target<'a> {
    pub cpu: CpuEntry,
    /// The release root (holding bin/, lib/ and manifest.json).
    pub release: &'a Path,
    /// A library of the other architecture, for the wrong-architecture case.
    pub foreign_library: &'a Path,
    pub timeout: Duration,
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
pub fn matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return text == pattern;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// What went wrong with a case's run, if anything.
pub fn judge(case: &Case, expand: &dyn Fn(&str) -> String, out: &RunOut) -> Option<String> {
    if out.timed_out {
        return Some("hung (timed out)".into());
    }
    if let Some(s) = out.signal {
        return Some(format!("killed by signal {s}"));
    }
    let all = format!("{}{}", out.stdout, out.stderr);
    if all.contains("panicked") || out.code == Some(101) {
        return Some(format!("panicked: {}", out.stderr.trim()));
    }
    if out.code != Some(case.code) {
        return Some(format!("exit {:?}, expected {}: {}", out.code, case.code, out.stderr.trim()));
    }
    let lines: Vec<&str> = out.stderr.lines().collect();
    match (&case.line, lines.as_slice()) {
        (None, []) => {}
        (None, _) => return Some(format!("expected no stderr, got: {}", out.stderr.trim())),
        (Some(p), [one]) if matches(&expand(p), one) => {}
        (Some(p), [one]) => return Some(format!("stderr `{one}` does not match `{}`", expand(p))),
        (Some(_), _) => {
            return Some(format!("{} stderr lines, expected one: {}", lines.len(), out.stderr.trim()));
        }
    }
    if let Some(p) = &case.stdout {
        let first = out.stdout.lines().next().unwrap_or("");
        if !matches(&expand(p), first) {
            return Some(format!("stdout `{first}` does not match `{}`", expand(p)));
        }
    }
    None
}

fn make_files(dir: &Path, files: &[(String, Make)]) -> Result<()> {
    for (rel, make) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match make {
            Make::Bytes(b) => std::fs::write(&path, b)?,
            Make::Sparse { head, tail_at, tail } => {
                let mut f = std::fs::File::create(&path)?;
                f.write_all(head)?;
                f.seek(SeekFrom::Start(*tail_at))?;
                f.write_all(tail)?;
            }
            Make::Dir => std::fs::create_dir_all(&path)?,
            Make::Symlink(to) => std::os::unix::fs::symlink(to, &path)?,
            Make::Fifo => mkfifo(&path)?,
        }
    }
    Ok(())
}

fn mkfifo(path: &Path) -> Result<()> {
    let ok = std::process::Command::new("mkfifo").arg(path).status().context("running mkfifo")?.success();
    anyhow::ensure!(ok, "mkfifo {} failed", path.display());
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// The installation's best tier on this CPU and the one it falls back to, from `cpu --json`.
fn best_and_next(target: &Target, launcher: &Path) -> Result<(String, Option<String>)> {
    let out = qemu::run_guest_timed(&target.cpu, launcher, &["cpu", "--json"], None, &[], target.timeout)?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).context("hartlm cpu --json")?;
    let best = v["selected"].as_str().context("no tier selected")?.to_string();
    let next = v["tiers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["status"] == "eligible")
        .and_then(|t| t["id"].as_str())
        .map(String::from);
    Ok((best, next))
}

/// Applies `damage` to the installation at `root`; returns how to undo it.
fn damage(
    root: &Path,
    d: &Damage,
    best: &str,
    next: Option<&str>,
    foreign: &Path,
) -> Result<Box<dyn FnOnce() -> Result<()>>> {
    let lib = root.join("lib");
    let file = |tier: &str| lib.join(hartlm_abi::library_file_name(tier));
    let best_lib = file(best);
    let saved = std::fs::read(&best_lib)?;
    let restore_best = {
        let best_lib = best_lib.clone();
        move || -> Result<()> {
            if best_lib.is_dir() {
                std::fs::remove_dir(&best_lib)?;
            } else if best_lib.exists() || best_lib.is_symlink() {
                std::fs::remove_file(&best_lib)?;
            }
            std::fs::write(&best_lib, saved)?;
            Ok(())
        }
    };
    match d {
        Damage::Truncate(n) => {
            let n = if *n == usize::MAX { std::fs::metadata(&best_lib)?.len() as usize / 2 } else { *n };
            let bytes = std::fs::read(&best_lib)?;
            std::fs::write(&best_lib, &bytes[..n.min(bytes.len())])?;
        }
        Damage::Replace(bytes) => std::fs::write(&best_lib, bytes)?,
        Damage::ForeignArch => {
            std::fs::copy(foreign, &best_lib)?;
        }
        Damage::LibDir => {
            std::fs::remove_file(&best_lib)?;
            std::fs::create_dir(&best_lib)?;
        }
        Damage::LibFifo => {
            std::fs::remove_file(&best_lib)?;
            mkfifo(&best_lib)?;
        }
        Damage::Swap => {
            let next_lib = file(next.context("no fallback tier to swap with")?);
            let saved_next = std::fs::read(&next_lib)?;
            std::fs::copy(&best_lib, &next_lib)?;
            return Ok(Box::new(move || Ok(std::fs::write(&next_lib, saved_next)?)));
        }
        Damage::Manifest(bytes) => {
            let m = root.join("manifest.json");
            let saved_m = std::fs::read(&m)?;
            std::fs::write(&m, bytes)?;
            return Ok(Box::new(move || Ok(std::fs::write(&m, saved_m)?)));
        }
        Damage::NoLib => {
            let moved = root.join("lib.moved");
            std::fs::rename(&lib, &moved)?;
            return Ok(Box::new(move || Ok(std::fs::rename(&moved, &lib)?)));
        }
    }
    Ok(Box::new(restore_best))
}

/// Runs every case on `target`; returns (name, passed, detail) rows, one per case.
pub fn run_all(target: &Target, scratch: &Path, models: &Models) -> Result<Vec<(String, bool, String)>> {
    if scratch.exists() {
        std::fs::remove_dir_all(scratch)?;
    }
    let dir = scratch.join("files");
    let root = scratch.join("install");
    for sub in ["bin", "lib"] {
        copy_dir(&target.release.join(sub), &root.join(sub))?;
    }
    std::fs::copy(target.release.join("manifest.json"), root.join("manifest.json"))?;
    let launcher = root.join("bin/hartlm");
    let (all, files) = cases::all(models);
    make_files(&dir, &files.0)?;
    let (best, next) = best_and_next(target, &launcher)?;
    let dir_s = dir.to_string_lossy().into_owned();
    let root_s = root.to_string_lossy().into_owned();
    let expand = |s: &str| {
        s.replace("{dir}", &dir_s)
            .replace("{install}", &root_s)
            .replace("{best}", &best)
            .replace("{next}", next.as_deref().unwrap_or("(none)"))
    };
    let run_case = |c: &Case| -> (String, bool, String) {
        let args: Vec<String> = c.args.iter().map(|a| expand(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(String, String)> = c.env.iter().map(|(k, v)| (k.clone(), expand(v))).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let name = format!("{}: {}", c.family, c.name);
        match qemu::run_guest_timed(&target.cpu, &launcher, &args, None, &env, target.timeout) {
            Err(e) => (name, false, format!("{e:#}")),
            Ok(out) => match judge(c, &expand, &out) {
                None => (name, true, String::new()),
                Some(why) => (name, false, why),
            },
        }
    };
    // Cases that leave the installation alone run two at a time; the others one by one.
    let (intact, damaging): (Vec<&Case>, Vec<&Case>) = all.iter().partition(|c| c.damage.is_none());
    let mut rows = qemu::parallel_map(&intact, 2, |c| run_case(c));
    for c in damaging {
        let Some(d) = &c.damage else { continue };
        // Without a fallback tier, a damaged best library can only fail, forced or not.
        let adjusted;
        let falls_back = c.line.as_deref().is_some_and(|l| l.contains("falling back"));
        let c = if next.is_none() && falls_back {
            adjusted = Case {
                family: c.family,
                name: c.name.clone(),
                args: c.args.clone(),
                env: c.env.clone(),
                code: 1,
                line: Some("hartlm: tier {best} failed to load: *; reinstall the hartlm tarball".into()),
                stdout: None,
                damage: None,
            };
            &adjusted
        } else {
            c
        };
        if matches!(d, Damage::Swap) && next.is_none() {
            continue;
        }
        let undo = damage(&root, d, &best, next.as_deref(), target.foreign_library)?;
        rows.push(run_case(c));
        undo().with_context(|| format!("repairing the installation after `{}`", c.name))?;
    }
    Ok(rows)
}

/// How many cases each family holds.
pub fn census(models: &Models) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for c in cases::all(models).0 {
        match counts.iter_mut().find(|(f, _)| *f == c.family) {
            Some(e) => e.1 += 1,
            None => counts.push((c.family, 1)),
        }
    }
    counts
}

/// The micro fixtures the cases start from.
pub fn load_models(fixtures: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let read = |name: &str| {
        let p: PathBuf = fixtures.join("models").join(name);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    };
    Ok((read("micro-q4_0.gguf")?, read("lfm2-micro-q4_0.gguf")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_lines_with_wildcards() {
        assert!(matches("a*c", "abc") && matches("a*c", "ac") && matches("*", ""));
        assert!(matches("hartlm: * at * end", "hartlm: x at y end"));
        assert!(!matches("a*c", "abcd") && !matches("abc", "abcd") && !matches("a*b*a", "acca"));
        assert!(
            matches("a*b*a", "aba") && !matches("ab*ba", "aba"),
            "overlapping ends do not share characters"
        );
        assert!(matches("a*b*a", "abba"));
    }
}
