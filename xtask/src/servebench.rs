//! `cargo xtask bench --serve`: aggregate tokens/s of `hartlm serve` at `-np 1, 2, 4` on the
//! host (the packaged x86-64 launcher, SmolLM2-135M), as many streaming clients as slots, the
//! slot counts alternated round by round so drift on a shared machine spreads over all of them.

use anyhow::{Context, Result};
use hartlm_variants::Arch;

use crate::servecheck;
use crate::workspace::Workspace;

const SCRIPT: &str = include_str!("serve_bench.py");
const SLOTS: [usize; 3] = [1, 2, 4];

pub fn command(ws: &Workspace, rounds: usize, requests: usize) -> Result<()> {
    let sh = ws.shell()?;
    crate::servecheck::ensure_python(&sh)?;
    let tarball = crate::dist::command(ws, &[Arch::X86_64])?.pop().context("no x86_64 tarball")?;
    let unpacked = crate::qemu::unpack(&tarball, &ws.target_dir.join("bench/release"), Arch::X86_64)?;
    let model = crate::models::ensure(&sh, &ws.target_dir, &crate::models::SMOLLM2)?;
    let model_arg = model.to_str().context("model path")?;
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); SLOTS.len()];
    for round in 1..=rounds {
        for (k, &np) in SLOTS.iter().enumerate() {
            let np_arg = np.to_string();
            let launch = std::process::Command::new(&unpacked.launcher);
            let server = servecheck::start(launch, &["-m", model_arg, "-np", &np_arg, "--queue", "64"])?;
            let out = std::process::Command::new("python3")
                .args(["-c", SCRIPT, &server.url, &np_arg, &requests.to_string()])
                .output()
                .context("running serve_bench.py")?;
            drop(server);
            let line = String::from_utf8_lossy(&out.stdout);
            let v: serde_json::Value = serde_json::from_str(line.trim()).with_context(|| {
                format!("serve_bench.py gave no result: {}", String::from_utf8_lossy(&out.stderr))
            })?;
            let rate = v["tokens"].as_f64().unwrap_or(0.0) / v["seconds"].as_f64().unwrap_or(1.0).max(1e-9);
            eprintln!("bench --serve: round {round}/{rounds}, -np {np}: {rate:.1} tokens/s ({v})");
            rates[k].push(rate);
        }
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = crate::qemu::cpu_model(&cpuinfo);
    println!(
        "\nhartlm serve, SmolLM2-135M Q4_1, {cpu}, {} cores; clients = slots, {requests} streaming requests of 64 tokens each per client; {rounds} alternating rounds\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| -np | aggregate tokens/s (mean) | range | vs -np 1 |");
    println!("| ---: | ---: | --- | ---: |");
    let base = mean(&rates[0]);
    for (k, np) in SLOTS.iter().enumerate() {
        let (lo, hi) = rates[k].iter().fold((f64::MAX, 0f64), |(l, h), &r| (l.min(r), h.max(r)));
        println!(
            "| {np} | {:.1} | {lo:.1}–{hi:.1} | {:.2}x |",
            mean(&rates[k]),
            mean(&rates[k]) / base.max(1e-9)
        );
    }
    Ok(())
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}
