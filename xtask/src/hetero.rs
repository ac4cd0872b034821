//! Placement on heterogeneous chips through the packaged riscv64 launcher under qemu: recorded
//! systems (HARTLM_SYSROOT, built from variants/tests/cpuinfo) and the live probe.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use crate::qemu::{CpuEntry, RunOut, run_guest_env};

/// qemu CPU for these runs: any V core will do, the recorded system decides the placement.
const QEMU_CPU: &str = "rv64i,m=true,a=true,f=true,d=true,c=true,zicsr=true,zifencei=true,v=true,vlen=256";

/// A recorded system: cpuinfo from `variants/tests/cpuinfo/<board>`, the allowed CPU list,
/// and `vlenb` per CPU list.
fn sysroot(
    root: &Path,
    scratch: &Path,
    board: &str,
    allowed: &str,
    vlenb: &[(&str, u32)],
) -> Result<PathBuf> {
    let dir = scratch.join(format!("{}-{allowed}", board.trim_end_matches(".txt")));
    std::fs::create_dir_all(dir.join("proc/self"))?;
    std::fs::create_dir_all(dir.join("hartlm"))?;
    let cpuinfo = root.join("variants/tests/cpuinfo").join(board);
    std::fs::copy(&cpuinfo, dir.join("proc/cpuinfo")).with_context(|| format!("{}", cpuinfo.display()))?;
    std::fs::write(dir.join("proc/self/status"), format!("Name:\thartlm\nCpus_allowed_list:\t{allowed}\n"))?;
    let hook: String = vlenb.iter().map(|(cpus, v)| format!("{cpus} {v}\n")).collect();
    std::fs::write(dir.join("hartlm/vlenb"), hook)?;
    Ok(dir)
}

/// A qemu CPU with every feature of the SpacemiT tiers (on hartlm's patched qemu), for runs that
/// load the engine library of a recorded system's placement.
const SPACEMIT_QEMU_CPU: &str = "rv64i,m=true,a=true,f=true,d=true,c=true,zicsr=true,zifencei=true,v=true,vlen=256,zfh=true,zvfh=true,zfa=true,zicond=true,zicbop=true,zba=true,zbb=true,zbs=true,xsmtvdot=true";

/// Runs the launcher under qemu on [`QEMU_CPU`] with `env`.
fn run(launcher: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<RunOut> {
    run_on(QEMU_CPU, launcher, args, env)
}

/// [`run`] on the qemu CPU `qemu_cpu`.
fn run_on(qemu_cpu: &str, launcher: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<RunOut> {
    let cpu = CpuEntry {
        name: "placement".into(),
        arch: "riscv64".into(),
        qemu_cpu: Some(qemu_cpu.into()),
        ..CpuEntry::default()
    };
    run_guest_env(&cpu, launcher, args, None, env)
}

/// `(tier, cluster, cores, vlen)` of a placement.
type Where = (String, String, String, Option<u64>);

/// The report `hartlm cpu --json` printed, or what went wrong.
fn report(o: &RunOut) -> Result<serde_json::Value, String> {
    if o.code != Some(0) {
        return Err(format!("exit {:?}: {}", o.code, o.stderr.trim()));
    }
    serde_json::from_str(&o.stdout).map_err(|e| format!("bad JSON: {e}"))
}

/// The placement `hartlm cpu --json` reports, or what went wrong.
fn placement(o: &RunOut) -> Result<Where, String> {
    let v = report(o)?;
    let p = &v["placement"];
    let s = |k: &str| p[k].as_str().unwrap_or("?").to_string();
    Ok((s("tier"), s("cluster"), s("cores"), p["vlen"].as_u64()))
}

/// Every check: (name, passed, detail).
pub fn run_all(
    root: &Path,
    launcher: &Path,
    scratch: &Path,
    model: &Path,
) -> Result<Vec<(String, bool, String)>> {
    let k3_vlenb = [("0-7", 32), ("8-15", 128)];
    let k3 = sysroot(root, scratch, "spacemit-k3.txt", "0-15", &k3_vlenb)?;
    let k3_taskset = sysroot(root, scratch, "spacemit-k3.txt", "4-11", &k3_vlenb)?;
    let k1 = sysroot(root, scratch, "spacemit-k1.txt", "0-7", &[("0-7", 32)])?;
    let sys = |d: &Path| d.to_str().unwrap().to_string();
    let expect = |tier: &str, cluster: &str, cores: &str, vlen: u64| {
        (tier.to_string(), cluster.to_string(), cores.to_string(), Some(vlen))
    };
    let rva23 = "rv64gcv_zvfh_zfa_zicond_zicbop";
    let ime_rva23 = "spacemit_ime_rva23";
    struct Case<'a> {
        name: &'a str,
        system: &'a Path,
        env: Vec<(&'a str, &'a str)>,
        want: Where,
    }
    let case = |name, system, env, want| Case { name, system, env, want };
    let cases = [
        case("K3: RVA23 + IME1 tier on the X100 cores", &k3, vec![], expect(ime_rva23, "X100", "0-7", 256)),
        case(
            "K3, HARTLM_CORES=8-15: A100 cores",
            &k3,
            vec![("HARTLM_CORES", "8-15")],
            expect(ime_rva23, "A100", "8-15", 1024),
        ),
        case(
            "K3, HARTLM_CLUSTER=A100",
            &k3,
            vec![("HARTLM_CLUSTER", "A100")],
            expect(ime_rva23, "A100", "8-15", 1024),
        ),
        case(
            "K3, HARTLM_TIER=rv64gcv_zvfh_zfa_zicond_zicbop: X100",
            &k3,
            vec![("HARTLM_TIER", rva23)],
            expect(rva23, "X100", "0-7", 256),
        ),
        case("K3, taskset 4-11: X100 cores 4-7", &k3_taskset, vec![], expect(ime_rva23, "X100", "4-7", 256)),
        case("K1: IME tier on cores 0-3 only", &k1, vec![], expect("spacemit_ime", "X60-ime", "0-3", 256)),
        case(
            "K1, HARTLM_CORES=4-7: no IME",
            &k1,
            vec![("HARTLM_CORES", "4-7")],
            expect("rv64gcv_zvfh", "X60", "4-7", 256),
        ),
    ];
    let mut rows = Vec::new();
    for c in cases {
        let dir = sys(c.system);
        let mut env = c.env;
        env.push(("HARTLM_SYSROOT", &dir));
        let got = placement(&run(launcher, &["cpu", "--json"], &env)?);
        let ok = got.as_ref() == Ok(&c.want);
        rows.push((c.name.to_string(), ok, format!("got {got:?}, want {:?}", c.want)));
    }
    let o = run(launcher, &["cpu"], &[("HARTLM_SYSROOT", &sys(&k3)), ("HARTLM_CORES", "16")])?;
    let refused = o.code == Some(2) && o.stderr.contains("allowed: 0-15");
    rows.push(("K3, HARTLM_CORES=16: refused, exit 2".into(), refused, o.stderr.trim().to_string()));
    // Runner labels come from the packaged launcher's own report, as ci/runner/install.sh reads them.
    let o = run(launcher, &["cpu", "--runner-labels"], &[("HARTLM_SYSROOT", &sys(&k3))])?;
    let want = format!("riscv64,rvv,zvfh,zfa,zicond,zicbop,ime,vlen256,x100,tier-{ime_rva23}");
    let got = o.stdout.trim();
    rows.push((
        "K3: runner labels name the X100 cores".into(),
        got == want,
        format!("got {got:?}, want {want:?}"),
    ));
    rows.extend(generation_and_calibration(launcher, scratch, &sys(&k3))?);
    rows.extend(entering_cores(root, launcher, scratch)?);
    // The live probe: qemu shows the host's cores as one cluster; more threads than cores
    // must still run.
    let o = run(launcher, &["cpu", "--json"], &[])?;
    let live = placement(&o);
    let ok = live.as_ref().is_ok_and(|p| p.3 == Some(256));
    rows.push(("live probe under qemu: one cluster at VLEN 256".into(), ok, format!("{live:?}")));
    let out = scratch.join("t16.npy");
    let args = [
        "logits",
        "-m",
        model.to_str().unwrap(),
        "--tokens",
        "1,2,3",
        "-t",
        "16",
        "-o",
        out.to_str().unwrap(),
    ];
    let o = run(launcher, &args, &[])?;
    let detail = format!("exit {:?}: {}", o.code, o.stderr.lines().last().unwrap_or(""));
    rows.push(("-t 16 on fewer cores runs".into(), o.code == Some(0), detail));
    // One worker per core: as many threads as cores, and more (then nothing is pinned).
    for t in ["2", "16"] {
        let args = args.map(|a| if a == "16" { t } else { a });
        let o = run(launcher, &args, &[("HARTLM_PIN", "cores")])?;
        let detail = format!("exit {:?}: {}", o.code, o.stderr.lines().last().unwrap_or(""));
        rows.push((format!("HARTLM_PIN=cores, -t {t} runs"), o.code == Some(0), detail));
    }
    let o = run(launcher, &["cpu"], &[("HARTLM_PIN", "each")])?;
    let refused = o.code == Some(2) && o.stderr.contains("HARTLM_PIN=each: use `cores` or `cluster`");
    rows.push(("HARTLM_PIN=each: refused, exit 2".into(), refused, o.stderr.trim().to_string()));
    Ok(rows)
}

/// Entering the chosen cores on recorded systems whose scheduler (`hartlm/sched`) refuses
/// affinity: the K3's A100 cluster by `/proc/set_ai_thread` (writes recorded), its failures,
/// and a K1 whose IME cores cannot be pinned. The engine only prints its version, so the
/// stock qemu CPU never runs the tier's kernels.
fn entering_cores(root: &Path, launcher: &Path, scratch: &Path) -> Result<Vec<(String, bool, String)>> {
    let k3_vlenb = [("0-7", 32), ("8-15", 128)];
    let mut rows = Vec::new();
    // (name, board, allowed, sched file, /proc/set_ai_thread present, env, want tier@cluster
    // cores, want the one fallback line, want registrations)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, bool, Vec<(&'a str, &'a str)>, &'a str, bool, usize);
    let cases: Vec<Case> = vec![
        (
            "K3: A100 entered through /proc/set_ai_thread",
            "spacemit-k3.txt",
            "0-15",
            "refuse 8-15\nai 8-15\n",
            true,
            vec![("HARTLM_CLUSTER", "A100")],
            "tier spacemit_ime_rva23 on A100 cores 8-15",
            false,
            1,
        ),
        (
            "K3: no /proc/set_ai_thread, falls back to X100 with one line",
            "spacemit-k3.txt",
            "0-15",
            "refuse 8-15\nai 8-15\n",
            false,
            vec![("HARTLM_CLUSTER", "A100")],
            "tier spacemit_ime_rva23 on X100 cores 0-7",
            true,
            0,
        ),
        (
            "K3: registered but A100 still refused (EINVAL), falls back",
            "spacemit-k3.txt",
            "0-15",
            "refuse 8-15\n",
            true,
            vec![("HARTLM_CORES", "8-15")],
            "on X100 cores",
            true,
            1,
        ),
        (
            "K1: IME cores refuse pinning (EINVAL), falls back to rv64gcv_zvfh, never IME",
            "spacemit-k1.txt",
            "0-7",
            "refuse 0-3\n",
            false,
            vec![],
            "tier rv64gcv_zvfh on X60 cores 0-7",
            true,
            0,
        ),
    ];
    for (name, board, allowed, sched, ai_proc, env, want, want_fallback, want_writes) in cases {
        let vlenb: &[(&str, u32)] = if board == "spacemit-k1.txt" { &[("0-7", 32)] } else { &k3_vlenb };
        let dir = sysroot(root, &scratch.join(format!("entry-{}", rows.len())), board, allowed, vlenb)?;
        std::fs::write(dir.join("hartlm/sched"), sched)?;
        let proc_file = dir.join("proc/set_ai_thread");
        if ai_proc {
            std::fs::write(&proc_file, "")?;
        } else if proc_file.exists() {
            std::fs::remove_file(&proc_file)?;
        }
        let d = dir.to_str().context("non-UTF-8 scratch path")?.to_string();
        let mut env = env;
        env.extend([("HARTLM_SYSROOT", d.as_str()), ("HARTLM_VERBOSE", "1")]);
        let o = run_on(SPACEMIT_QEMU_CPU, launcher, &["--version"], &env)?;
        let fallback_lines = o.stderr.lines().filter(|l| l.contains("falling back")).count();
        let writes =
            std::fs::read_to_string(&proc_file).map_or(0, |t| t.lines().filter(|l| *l == "0").count());
        let ok = o.code == Some(0)
            && o.stderr.contains(want)
            && fallback_lines == usize::from(want_fallback)
            && writes == want_writes;
        rows.push((
            name.to_string(),
            ok,
            format!("exit {:?}, {writes} registrations: {}", o.code, o.stderr.trim()),
        ));
    }
    Ok(rows)
}

/// Generation threads at K3's bandwidth knee, a calibration ranking obeyed on the recorded K3,
/// and `hartlm calibrate` measuring the live (qemu) system.
fn generation_and_calibration(
    launcher: &Path,
    scratch: &Path,
    k3: &str,
) -> Result<Vec<(String, bool, String)>> {
    use hartlm_variants::calibration::{self, Calibration, Measured, Sample};
    let mut rows = Vec::new();
    let o = run(launcher, &["cpu", "--json"], &[("HARTLM_SYSROOT", k3)])?;
    let got = report(&o).map(|v| (v["placement"]["threads"].clone(), v["placement"]["gen_threads"].clone()));
    let ok = got.as_ref().is_ok_and(|(t, g)| t == 8 && g == 4);
    rows.push(("K3: 8 threads, 4 for generation (bandwidth knee)".into(), ok, format!("{got:?}")));

    // A ranking measured on K3 (numbers as a board might give them) in which the vendor tier
    // on the A100 cores reads weights fastest: the launcher follows it and caps generation at
    // that pair's knee, while HARTLM_CLUSTER still overrides it.
    let cpuinfo = std::fs::read_to_string(Path::new(k3).join("proc/cpuinfo"))?;
    let s = |v: &[(usize, f64)]| v.iter().map(|&(threads, gbps)| Sample { threads, gbps }).collect();
    let pairs = vec![
        Measured::new(
            "spacemit_ime_rva23",
            "A100",
            "8-15",
            s(&[(1, 4.0), (2, 7.5), (3, 10.0), (4, 10.2), (8, 10.3)]),
        ),
        Measured::new("spacemit_ime_rva23", "X100", "0-7", s(&[(1, 3.0), (4, 9.0), (8, 9.1)])),
    ];
    let mut all = pairs.clone();
    for t in ["spacemit_ime", "rv64gcv_zvfh_zfa_zicond_zicbop", "rv64gcv_zvfh", "rv64gcv", "rv64gc"] {
        for (c, cores) in [("X100", "0-7"), ("A100", "8-15")] {
            all.push(Measured::new(t, c, cores, s(&[(1, 1.0)])));
        }
    }
    let cal = Calibration::new(calibration::fingerprint(&cpuinfo), 32, all);
    let cache = scratch.join("xdg-k3");
    std::fs::create_dir_all(cache.join("hartlm"))?;
    std::fs::write(cache.join("hartlm").join(calibration::FILE_NAME), serde_json::to_string(&cal)?)?;
    let xdg = cache.to_str().context("non-UTF-8 scratch path")?;
    let env = [("HARTLM_SYSROOT", k3), ("XDG_CACHE_HOME", xdg)];
    let o = run(launcher, &["cpu", "--json"], &env)?;
    let got = report(&o).map(|v| {
        let p = &v["placement"];
        (p["tier"].clone(), p["cluster"].clone(), p["gen_threads"].clone(), v["calibration"].clone())
    });
    let ok = got.as_ref().is_ok_and(|(t, c, g, status)| {
        t == "spacemit_ime_rva23"
            && c == "A100"
            && g == 3
            && status.as_str().is_some_and(|s| s.starts_with("used "))
    });
    rows.push((
        "K3 calibrated: the measured-fastest pair wins, its knee caps generation".into(),
        ok,
        format!("{got:?}"),
    ));
    let forced = [("HARTLM_SYSROOT", k3), ("XDG_CACHE_HOME", xdg), ("HARTLM_CLUSTER", "X100")];
    let got = placement(&run(launcher, &["cpu", "--json"], &forced)?);
    let ok = got.as_ref().is_ok_and(|p| p.1 == "X100");
    rows.push(("K3 calibrated, HARTLM_CLUSTER=X100 still decides".into(), ok, format!("{got:?}")));
    // The same file after a cpuinfo change (the K1's) is stale and ignored.
    let k1 = scratch.join("spacemit-k1-0-7");
    let env = [("HARTLM_SYSROOT", k1.to_str().unwrap_or("")), ("XDG_CACHE_HOME", xdg)];
    let got = report(&run(launcher, &["cpu", "--json"], &env)?).map(|v| v["calibration"].clone());
    let ok = got.as_ref().is_ok_and(|s| s.as_str().is_some_and(|s| s.contains("cpuinfo changed")));
    rows.push(("a calibration from another cpuinfo is ignored".into(), ok, format!("{got:?}")));

    // The real measurement on the live system (qemu's cores): every eligible tier ranked,
    // and the launcher then runs the fastest.
    let live = scratch.join("xdg-live");
    let _ = std::fs::remove_dir_all(&live);
    let xdg = live.to_str().context("non-UTF-8 scratch path")?;
    let o = run(launcher, &["calibrate", "--size-mib", "1", "--reps", "2"], &[("XDG_CACHE_HOME", xdg)])?;
    let file = live.join("hartlm").join(calibration::FILE_NAME);
    let saved: Result<Calibration, String> = match o.code {
        Some(0) => std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())),
        code => Err(format!("exit {code:?}: {}", o.stderr.trim())),
    };
    let measured = saved.as_ref().map(|c| {
        c.pairs.iter().map(|m| (m.tier.clone(), m.samples.len(), m.best_gbps > 0.0)).collect::<Vec<_>>()
    });
    let ok = measured.as_ref().is_ok_and(|m| m.len() >= 2 && m.iter().all(|(_, n, pos)| *n >= 1 && *pos));
    rows.push(("hartlm calibrate measures every eligible tier".into(), ok, format!("{measured:?}")));
    let got = placement(&run(launcher, &["cpu", "--json"], &[("XDG_CACHE_HOME", xdg)])?);
    let best = saved.as_ref().ok().and_then(|c| c.pairs.first()).map(|m| m.tier.clone());
    let ok = got.as_ref().is_ok_and(|p| Some(&p.0) == best.as_ref());
    rows.push((
        "the launcher runs the calibrated-fastest tier".into(),
        ok,
        format!("got {got:?}, want {best:?}"),
    ));
    let o = run(launcher, &["calibrate", "--clear"], &[("XDG_CACHE_HOME", xdg)])?;
    let ok = o.code == Some(0) && !file.exists();
    rows.push(("hartlm calibrate --clear removes it".into(), ok, o.stderr.trim().to_string()));
    Ok(rows)
}
