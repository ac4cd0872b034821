//! Broken installations and bad requests, run on a damaged copy of the unpacked host release:
//! a corrupt library must fall back to the next tier, a missing lib/ or a bad flag must fail cleanly.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use hartlm_variants::{Arch, tier};

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(launcher: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Outcome> {
    let mut c = Command::new(launcher);
    c.args(args).env_remove("HARTLM_TIER").env_remove("HARTLM_LIB_DIR").env_remove("HARTLM_ASSUME_FEATURES");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().with_context(|| format!("running {}", launcher.display()))?;
    Ok(Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs the launcher with its stdout a pipe that is closed after the first line is read.
fn closed_after_first_line(launcher: &Path, args: &[&str]) -> Result<Outcome> {
    use std::io::{BufRead, Read};
    let mut child = Command::new(launcher)
        .args(args)
        .env_remove("HARTLM_TIER")
        .env_remove("HARTLM_LIB_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", launcher.display()))?;
    let mut first = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().context("no stdout")?);
    out.read_line(&mut first)?;
    drop(out);
    let mut stderr = String::new();
    child.stderr.take().context("no stderr")?.read_to_string(&mut stderr)?;
    let status = child.wait()?;
    Ok(Outcome { code: status.code(), stdout: first, stderr })
}

fn copy_release(from_launcher: &Path, to: &Path) -> Result<PathBuf> {
    let src = from_launcher.parent().and_then(Path::parent).context("launcher not in bin/")?;
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    for sub in ["bin", "lib"] {
        std::fs::create_dir_all(to.join(sub))?;
        for e in std::fs::read_dir(src.join(sub))?.flatten() {
            std::fs::copy(e.path(), to.join(sub).join(e.file_name()))?;
        }
    }
    Ok(to.join("bin").join("hartlm"))
}

/// Runs every fault case; returns (name, passed, detail) rows. `model` is a small valid GGUF.
pub fn run_all(
    host_launcher: &Path,
    scratch: &Path,
    host_tier: &str,
    model: &Path,
) -> Result<Vec<(String, bool, String)>> {
    let launcher = copy_release(host_launcher, scratch)?;
    let lib = scratch.join("lib");
    let ranked = tier::for_arch(Arch::X86_64);
    let top = ranked.iter().position(|t| t.id.0 == host_tier).context("host tier not in table")?;
    let next = ranked.get(top + 1).map(|t| t.id.0).context("host tier has no fallback")?;
    let mut rows = Vec::new();
    let mut check = |name: &str, ok: bool, out: &Outcome| {
        let detail = format!("exit {:?}: {}", out.code, out.stderr.lines().next().unwrap_or(""));
        rows.push((name.to_string(), ok, detail));
    };

    // Damaged model files: one line naming the problem, exit 1, no panic (101) or signal.
    let good = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let truncated = scratch.join("truncated.gguf");
    std::fs::write(&truncated, &good[..good.len() / 2])?;
    let o = run(&launcher, &["info", "-m", truncated.to_str().unwrap()], &[])?;
    let one_line = |o: &Outcome| o.stderr.lines().count() == 1;
    check(
        "truncated GGUF exits 1 with one line",
        o.code == Some(1) && one_line(&o) && o.stderr.contains("truncated"),
        &o,
    );
    let mut flipped = good.clone();
    flipped[20] ^= 0x40; // the high bits of the metadata count
    let flipped_path = scratch.join("flipped.gguf");
    std::fs::write(&flipped_path, &flipped)?;
    let o = run(&launcher, &["run", "-m", flipped_path.to_str().unwrap(), "-p", "hi", "-n", "2"], &[])?;
    check("bit-flipped GGUF header exits 1 with one line", o.code == Some(1) && one_line(&o), &o);
    let mut noisy = good;
    let len = noisy.len();
    noisy[len - 100] ^= 0xff; // inside tensor data: still a valid file
    let noisy_path = scratch.join("noisy.gguf");
    std::fs::write(&noisy_path, &noisy)?;
    let o = run(&launcher, &["run", "-m", noisy_path.to_str().unwrap(), "-p", "hi", "-n", "2"], &[])?;
    check("bit-flipped tensor data still runs", o.code == Some(0), &o);

    let o = run(&launcher, &["selftest", "--bogus-flag"], &[])?;
    check("unknown flag exits 2", o.code == Some(2), &o);

    let o = run(&launcher, &["cpu", "--bogus"], &[])?;
    check(
        "`cpu` with an unknown argument exits 2",
        o.code == Some(2) && o.stderr.contains("hartlm --help"),
        &o,
    );

    let o = run(&launcher, &["selftest"], &[("HARTLM_TIER", "no-such-tier")])?;
    check(
        "unknown HARTLM_TIER exits 2 listing valid tiers",
        o.code == Some(2) && o.stderr.contains("valid tiers: x86-64-v4"),
        &o,
    );

    // The best tier's library copied over the next tier's file: the launcher reads the tier tag
    // (and the manifest's hash) before loading it, and refuses it naming both tiers.
    let next_lib = lib.join(tier::find(next).context("next tier")?.library_file());
    let saved = std::fs::read(&next_lib)?;
    std::fs::copy(lib.join(ranked[top].library_file()), &next_lib)?;
    let o = run(&launcher, &["selftest"], &[("HARTLM_TIER", next)])?;
    check(
        "another tier's library under this tier's name is refused before loading",
        o.code == Some(1)
            && one_line(&o)
            && (o.stderr.contains("does not match manifest.json")
                || o.stderr.contains(&format!("it is the library of tier {host_tier}, not {next}"))),
        &o,
    );
    std::fs::write(&next_lib, saved)?;

    // A corrupt library for the best tier: warn once, fall back, still work.
    let best = lib.join(ranked[top].library_file());
    std::fs::write(&best, b"\x7fELF this is not a shared object")?;
    let o = run(&launcher, &["selftest"], &[])?;
    check(
        "corrupt best library falls back to the next tier",
        o.code == Some(0)
            && o.stderr.contains(&format!("warning: tier {host_tier} failed to load"))
            && o.stdout.contains(&format!("tier {next} ")),
        &o,
    );

    let o = run(&launcher, &["selftest"], &[("HARTLM_TIER", host_tier)])?;
    check(
        "forced tier with a corrupt library exits 1 without fallback",
        o.code == Some(1) && o.stderr.contains(host_tier),
        &o,
    );

    std::fs::remove_file(&best)?;
    let o = run(&launcher, &["selftest"], &[("HARTLM_TIER", host_tier)])?;
    check(
        "forced tier with a missing library exits 1 naming the file",
        o.code == Some(1) && o.stderr.contains(&ranked[top].library_file()),
        &o,
    );

    // Special files where hartlm reads: a FIFO (which would block `open` until a writer came)
    // as the model or as the calibration cache, and the cache linked to /dev/zero (endless).
    // `timeout` turns a hang into exit 124.
    let fifo = scratch.join("fifo.gguf");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().context("running mkfifo")?;
    anyhow::ensure!(made.success(), "mkfifo {} failed", fifo.display());
    let timed = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["20", launcher.to_str().unwrap_or("")];
        all.extend(args);
        run(Path::new("timeout"), &all, env)
    };
    let o = timed(&["info", "-m", fifo.to_str().unwrap()], &[])?;
    check(
        "a FIFO as the model exits 1 with one line, without blocking",
        o.code == Some(1) && one_line(&o) && o.stderr.contains("is a FIFO"),
        &o,
    );
    for (name, make) in [("a FIFO", "fifo"), ("a link to /dev/zero", "zero")] {
        let xdg = scratch.join(format!("xdg-{make}"));
        let cache = xdg.join("hartlm");
        let _ = std::fs::remove_dir_all(&xdg);
        std::fs::create_dir_all(&cache)?;
        let file = cache.join(hartlm_variants::calibration::FILE_NAME);
        if make == "fifo" {
            Command::new("mkfifo").arg(&file).status()?;
        } else {
            std::os::unix::fs::symlink("/dev/zero", &file)?;
        }
        let o = timed(&["cpu", "--json"], &[("XDG_CACHE_HOME", xdg.to_str().unwrap_or(""))])?;
        let ignored = serde_json::from_str::<serde_json::Value>(&o.stdout)
            .is_ok_and(|v| v["calibration"].as_str().is_some_and(|c| c.contains("not a regular file")));
        check(
            &format!("{name} as the calibration cache is ignored, without blocking"),
            o.code == Some(0) && ignored,
            &o,
        );
    }

    // A reader that stops after one line (`hartlm selftest | head -1`): selftest writes its
    // later lines while it runs, so they meet the closed pipe. Quiet exit 0, no panic (101).
    let o = closed_after_first_line(&launcher, &["selftest"])?;
    check("`hartlm selftest | head -1` ends quietly with 0", o.code == Some(0) && o.stderr.is_empty(), &o);

    std::fs::remove_dir_all(&lib)?;
    let o = run(&launcher, &["selftest"], &[])?;
    check(
        "missing lib/ exits 1 with one line",
        o.code == Some(1) && o.stderr.contains("no engine library found") && o.stderr.lines().count() == 1,
        &o,
    );
    let o = run(&launcher, &["cpu"], &[])?;
    check(
        "`cpu` still explains a broken installation",
        o.code == Some(0) && o.stdout.contains("not installed"),
        &o,
    );
    Ok(rows)
}
