//! `cargo xtask build`: one engine cdylib per tier, each in its own target dir with flags given
//! only through CARGO_TARGET_<TRIPLE>_RUSTFLAGS, plus one baseline launcher per architecture.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Instant;
use xshell::{Shell, cmd};

use hartlm_variants::{Arch, Tier, tiers};

use crate::prereq::{self, Needs};
use crate::workspace::Workspace;

/// `CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUSTFLAGS` for a triple.
pub fn rustflags_var(triple: &str) -> String {
    format!("CARGO_TARGET_{}_RUSTFLAGS", triple.to_uppercase().replace(['-', '.'], "_"))
}

/// The rustc flags of a tier: CPU and features (the engine's build script derives its kernel
/// cfgs from HARTLM_TIER_ID). `remaps` rewrite local paths so the libraries do not depend on
/// where they were built.
pub fn tier_rustflags(tier: &Tier, remaps: &[(String, &str)]) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(cpu) = tier.rustc_cpu {
        f.push(format!("-Ctarget-cpu={cpu}"));
    }
    if !tier.rustc_features.is_empty() {
        f.push(format!("-Ctarget-feature={}", tier.rustc_features.join(",")));
    }
    f.extend(remap_flags(remaps));
    f
}

/// `--remap-path-prefix` flags. The RUSTFLAGS variable is split on whitespace, so a path
/// containing spaces cannot be remapped and is skipped.
fn remap_flags(remaps: &[(String, &str)]) -> Vec<String> {
    remaps
        .iter()
        .filter(|(from, _)| !from.contains(char::is_whitespace))
        .map(|(from, to)| format!("--remap-path-prefix={from}={to}"))
        .collect()
}

/// Which requested `+feature`s rustc did not accept, judged from `rustc --print cfg` output.
/// Unstable features (RISC-V `v`, `zfh`, ...) never appear in the cfg list on stable; rustc
/// accepts them with an "unstable feature specified" warning, and flags typos as "unknown".
pub fn rejected_features(requested: &[&str], cfg_stdout: &str, stderr: &str) -> Vec<String> {
    requested
        .iter()
        .map(|f| f.trim_start_matches('+'))
        .filter(|name| {
            let in_cfg = cfg_stdout.lines().any(|l| l.trim() == format!("target_feature=\"{name}\""));
            let quoted = format!("`{name}`");
            let unknown = stderr
                .lines()
                .any(|l| l.contains("unknown") && l.contains("feature") && l.ends_with(&quoted));
            let unstable_ok = stderr.lines().any(|l| {
                l.contains("unstable feature specified") && !l.contains("unknown") && l.ends_with(&quoted)
            });
            unknown || !(in_cfg || unstable_ok)
        })
        .map(str::to_string)
        .collect()
}

fn check_features(sh: &Shell, tier: &Tier) -> Result<()> {
    if tier.rustc_features.is_empty() {
        return Ok(());
    }
    let triple = tier.triple;
    let features = tier.rustc_features.join(",");
    let cpu: Vec<String> = tier.rustc_cpu.map(|c| format!("-Ctarget-cpu={c}")).into_iter().collect();
    let out = cmd!(sh, "rustc --print cfg --target {triple} {cpu...} -Ctarget-feature={features}")
        .quiet()
        .ignore_status()
        .output()?;
    let rejected = rejected_features(
        tier.rustc_features,
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    );
    if !rejected.is_empty() {
        bail!(
            "tier {}: rustc does not accept target feature(s) {} for {triple} (checked with \
             `rustc --print cfg --target {triple} -Ctarget-feature={features}`); fix \
             variants/tiers.toml or update the toolchain",
            tier.id,
            rejected.join(", ")
        );
    }
    Ok(())
}

/// Environment variables that would leak flags into every tier or into host build scripts.
const FLAG_VARS: &[&str] = &["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"];

pub struct Built {
    pub tier: &'static Tier,
    pub library: PathBuf,
}

pub fn tier_target_dir(ws: &Workspace, tier: &Tier) -> PathBuf {
    ws.target_dir.join("tiers").join(tier.id.0)
}

fn remaps(ws: &Workspace) -> Vec<(String, &'static str)> {
    let mut r = vec![(ws.root.display().to_string(), "/hartlm")];
    let cargo_home = std::env::var("CARGO_HOME")
        .ok()
        .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.cargo")));
    if let Some(h) = cargo_home {
        r.push((h, "/cargo"));
    }
    r
}

/// Builds one tier's engine library; returns its path.
pub fn build_tier(sh: &Shell, ws: &Workspace, tier: &'static Tier) -> Result<Built> {
    check_features(sh, tier)?;
    let triple = tier.triple;
    let target_dir = tier_target_dir(ws, tier);
    let flags = tier_rustflags(tier, &remaps(ws)).join(" ");
    let var = rustflags_var(triple);
    let mut c = cmd!(
        sh,
        "cargo build --release --locked --package hartlm-engine --lib --target {triple} --target-dir {target_dir}"
    )
    .env(&var, &flags)
    .env("HARTLM_TIER_ID", tier.id.0);
    for v in FLAG_VARS {
        c = c.env_remove(v);
    }
    let shown = format!("{var}='{flags}' HARTLM_TIER_ID={} {c}", tier.id);
    c.quiet().run().with_context(|| format!("tier {} failed to build; command:\n  {shown}", tier.id))?;
    let library = target_dir.join(triple).join("release").join("libhartlm_engine.so");
    if !library.is_file() {
        bail!("tier {}: cargo succeeded but {} is missing", tier.id, library.display());
    }
    Ok(Built { tier, library })
}

/// Builds the launcher for an architecture's baseline triple; returns the binary's path.
pub fn build_launcher(sh: &Shell, ws: &Workspace, arch: Arch) -> Result<PathBuf> {
    let triple = arch.baseline_triple();
    let flags = remap_flags(&remaps(ws)).join(" ");
    let var = rustflags_var(triple);
    let mut c =
        cmd!(sh, "cargo build --release --locked --package hartlm-variants --bin hartlm --target {triple}")
            .env(&var, &flags);
    for v in FLAG_VARS {
        c = c.env_remove(v);
    }
    let shown = c.to_string();
    c.quiet().run().with_context(|| format!("launcher for {triple} failed to build; command:\n  {shown}"))?;
    Ok(ws.target_dir.join(triple).join("release").join("hartlm"))
}

/// The tiers selected by `--arch` and `--tier`, in table order.
pub fn select_tiers(arches: &[Arch], only: Option<&str>) -> Result<Vec<&'static Tier>> {
    let chosen: Vec<&Tier> = tiers()
        .iter()
        .filter(|t| arches.contains(&t.arch))
        .filter(|t| only.is_none_or(|id| t.id.0 == id))
        .collect();
    if let Some(id) = only
        && chosen.is_empty()
    {
        let valid: Vec<&str> = tiers().iter().map(|t| t.id.0).collect();
        bail!("unknown tier `{id}` for the chosen architectures; valid tiers: {}", valid.join(", "));
    }
    Ok(chosen)
}

/// Everything one build produced.
pub struct Artifacts {
    pub tiers: Vec<Built>,
    pub launchers: Vec<(Arch, PathBuf)>,
}

/// Builds the given tiers and each architecture's launcher, showing progress per tier.
pub fn build_all(sh: &Shell, ws: &Workspace, arches: &[Arch], tiers: &[&'static Tier]) -> Result<Artifacts> {
    let total = tiers.len() + arches.len();
    let mut built = Vec::new();
    let mut launchers = Vec::new();
    for (i, tier) in tiers.iter().enumerate() {
        let t0 = Instant::now();
        eprintln!(
            "[{}/{total}] tier {} ({}{})",
            i + 1,
            tier.id,
            tier.triple,
            if tier.rustc_features.is_empty() {
                String::new()
            } else {
                format!(", {}", tier.rustc_features.join(","))
            }
        );
        built.push(build_tier(sh, ws, tier)?);
        eprintln!("      done in {:.1}s", t0.elapsed().as_secs_f64());
    }
    for (j, &arch) in arches.iter().enumerate() {
        eprintln!("[{}/{total}] launcher hartlm ({})", tiers.len() + j + 1, arch.baseline_triple());
        launchers.push((arch, build_launcher(sh, ws, arch)?));
    }
    Ok(Artifacts { tiers: built, launchers })
}

/// Removes the compiled engine of every tier and each launcher, so the next build really
/// recompiles hartlm's own crates (dependencies stay cached).
pub fn clean_own_crates(sh: &Shell, ws: &Workspace, tiers: &[&'static Tier]) -> Result<()> {
    for t in tiers {
        let (triple, dir) = (t.triple, tier_target_dir(ws, t));
        cmd!(sh, "cargo clean --quiet -p hartlm-engine --release --target {triple} --target-dir {dir}")
            .run()?;
    }
    for arch in [Arch::Riscv64, Arch::X86_64] {
        let triple = arch.baseline_triple();
        cmd!(sh, "cargo clean --quiet -p hartlm-variants --release --target {triple}").run()?;
    }
    Ok(())
}

pub fn relative<'a>(root: &Path, p: &'a Path) -> &'a Path {
    p.strip_prefix(root).unwrap_or(p)
}

/// `cargo xtask build`.
pub fn command(ws: &Workspace, arches: &[Arch], only: Option<&str>) -> Result<()> {
    let sh = ws.shell()?;
    let tiers = select_tiers(arches, only)?;
    let arches: Vec<Arch> = arches.iter().copied().filter(|a| tiers.iter().any(|t| t.arch == *a)).collect();
    prereq::ensure(&sh, Needs::build(&arches))?;
    let built = build_all(&sh, ws, &arches, &tiers)?;
    for b in &built.tiers {
        println!("{:<32} {}", b.tier.id, relative(&ws.root, &b.library).display());
    }
    for (arch, path) in &built.launchers {
        println!("{:<32} {}", format!("launcher ({})", arch.name()), relative(&ws.root, path).display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hartlm_variants::tier::find;

    #[test]
    fn rustflags_name_the_triple() {
        assert_eq!(
            rustflags_var("riscv64gc-unknown-linux-gnu"),
            "CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUSTFLAGS"
        );
    }

    #[test]
    fn tier_flags_carry_features_and_remaps() {
        let t = find("rv64gcv_zvfh").unwrap();
        let f = tier_rustflags(t, &[("/work/x".into(), "/hartlm"), ("/a b".into(), "/c")]);
        assert_eq!(f, ["-Ctarget-feature=+v,+zfh,+zvfh", "--remap-path-prefix=/work/x=/hartlm",]);
        let v3 = tier_rustflags(find("x86-64-v3").unwrap(), &[]);
        assert_eq!(v3[0], "-Ctarget-cpu=x86-64-v3");
    }

    #[test]
    fn feature_check_accepts_stable_and_unstable_and_rejects_unknown() {
        let stdout = "target_arch=\"riscv64\"\ntarget_feature=\"zicond\"\n";
        let stderr = "warning: unstable feature specified for `-Ctarget-feature`: `v`\n\
                      warning: unknown and unstable feature specified for `-Ctarget-feature`: `zvfhh`\n";
        assert_eq!(rejected_features(&["+v", "+zicond", "+zvfhh", "+zfa"], stdout, stderr), ["zvfhh", "zfa"]);
    }

    #[test]
    fn tier_selection_filters() {
        assert_eq!(select_tiers(&[Arch::Riscv64], None).unwrap().len(), 6);
        assert_eq!(select_tiers(&[Arch::X86_64], Some("x86-64-v3")).unwrap().len(), 1);
        let err = select_tiers(&[Arch::X86_64], Some("rv64gc")).unwrap_err().to_string();
        assert!(err.contains("valid tiers"), "{err}");
    }
}
