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

/// Runs the launcher under qemu on [`QEMU_CPU`] with `env`.
fn run(launcher: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<RunOut> {
    let cpu = CpuEntry {
        name: "placement".into(),
        arch: "riscv64".into(),
        qemu_cpu: Some(QEMU_CPU.into()),
        expect: String::new(),
        expect_vlen: None,
        assume: vec![],
        refuse: vec![],
    };
    run_guest_env(&cpu, launcher, args, None, env)
}

/// `(tier, cluster, cores, vlen)` of a placement.
type Where = (String, String, String, Option<u64>);

/// The placement `hartlm cpu --json` reports, or what went wrong.
fn placement(o: &RunOut) -> Result<Where, String> {
    if o.code != Some(0) {
        return Err(format!("exit {:?}: {}", o.code, o.stderr.trim()));
    }
    let v: serde_json::Value = serde_json::from_str(&o.stdout).map_err(|e| format!("bad JSON: {e}"))?;
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
    struct Case<'a> {
        name: &'a str,
        system: &'a Path,
        env: Vec<(&'a str, &'a str)>,
        want: Where,
    }
    let case = |name, system, env, want| Case { name, system, env, want };
    let cases = [
        case("K3: RVA23 tier on the X100 cores", &k3, vec![], expect(rva23, "X100", "0-7", 256)),
        case(
            "K3, HARTLM_CORES=8-15: A100 cores",
            &k3,
            vec![("HARTLM_CORES", "8-15")],
            expect("spacemit_ime", "A100", "8-15", 1024),
        ),
        case(
            "K3, HARTLM_CLUSTER=A100",
            &k3,
            vec![("HARTLM_CLUSTER", "A100")],
            expect("spacemit_ime", "A100", "8-15", 1024),
        ),
        case("K3, taskset 4-11: X100 cores 4-7", &k3_taskset, vec![], expect(rva23, "X100", "4-7", 256)),
        case("K1: IME tier on all X60 cores", &k1, vec![], expect("spacemit_ime", "X60", "0-7", 256)),
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
    let want = format!("riscv64,rvv,zvfh,zfa,zicond,zicbop,vlen256,x100,tier-{rva23}");
    let got = o.stdout.trim();
    rows.push((
        "K3: runner labels name the X100 cores".into(),
        got == want,
        format!("got {got:?}, want {want:?}"),
    ));
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
    Ok(rows)
}
