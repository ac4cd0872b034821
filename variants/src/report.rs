//! `hartlm cpu`: what was detected, every tier's verdict, and why one was chosen, as text or JSON.
//! Built from plain data so the same report is unit-tested on recorded CPUs.

use serde::Serialize;

use crate::calibration::Cached;
use crate::cluster::{Cluster, CoreKind, CoreSet};
use crate::placement::plan_placements;
use crate::select::{Eligibility, evaluate};
use crate::tier::Tier;

/// 2: clusters and the chosen placement; the top-level CPU fields describe the chosen cluster.
/// 3: generation threads, worker cores and the calibration status.
pub const REPORT_SCHEMA: u32 = 3;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    pub launcher_version: &'static str,
    pub arch: &'static str,
    pub model: Option<String>,
    pub mvendorid: Option<String>,
    pub marchid: Option<String>,
    pub vlen: Option<u32>,
    pub features: Vec<String>,
    pub assumed: Vec<String>,
    pub sources: Vec<String>,
    pub notes: Vec<String>,
    pub tiers: Vec<TierReport>,
    pub selected: Option<String>,
    pub forced: Option<String>,
    pub reason: String,
    pub clusters: Vec<ClusterReport>,
    pub placement: Option<PlacementReport>,
    /// Whether a `hartlm calibrate` ranking decided, or why not.
    pub calibration: String,
}

#[derive(Debug, Serialize)]
pub struct ClusterReport {
    pub name: String,
    pub cores: CoreSet,
    pub kind: CoreKind,
    pub model: Option<String>,
    pub marchid: Option<String>,
    pub vlen: Option<u32>,
    pub features: Vec<String>,
    /// Tiers whose requirements these cores meet, best first.
    pub runs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PlacementReport {
    pub tier: String,
    pub cluster: String,
    /// Cores the engine's threads may run on.
    pub cores: CoreSet,
    /// Default thread count.
    pub threads: usize,
    /// Default thread count for token generation (the memory-bandwidth knee, when known).
    pub gen_threads: usize,
    pub vlen: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct TierReport {
    pub id: String,
    pub rank: u32,
    /// `selected`, `eligible` or `not_eligible`.
    pub status: &'static str,
    pub missing: Vec<String>,
    pub library: String,
    pub library_present: bool,
    pub summary: String,
    pub note: Option<String>,
}

/// The report for `clusters` (at least one), with HARTLM_TIER / HARTLM_CLUSTER as given and
/// whatever calibration the cache holds.
pub fn build(
    clusters: &[Cluster],
    tiers: &[&Tier],
    (forced, forced_cluster): (Option<&str>, Option<&str>),
    library_exists: impl Fn(&Tier) -> bool,
    cached: &Cached,
) -> Report {
    let plan = plan_placements(tiers, clusters, forced, forced_cluster, &library_exists);
    let (plan, calibration) =
        crate::calibration::choose(plan, cached, forced.is_some() || forced_cluster.is_some());
    let chosen = plan.as_ref().ok().and_then(|p| p.first());
    // The CPU fields describe the chosen cluster, or the one that would have been preferred.
    let shown = chosen
        .and_then(|p| clusters.iter().find(|c| c.name == p.cluster))
        .or_else(|| forced_cluster.and_then(|n| clusters.iter().find(|c| c.name.eq_ignore_ascii_case(n))))
        .or_else(|| clusters.iter().find(|c| c.kind == CoreKind::General))
        .or(clusters.first());
    let Some(shown) = shown else {
        panic!("report::build needs at least one cluster");
    };
    let cpu = &shown.cpu;
    let selected = chosen.map(|p| p.tier.id.0.to_string());
    let tier_reports: Vec<TierReport> = tiers
        .iter()
        .map(|t| {
            let verdict = evaluate(t, cpu);
            let status = match (&verdict, selected.as_deref() == Some(t.id.0)) {
                (_, true) => "selected",
                (Eligibility::Eligible, false) => "eligible",
                (Eligibility::NotEligible { .. }, false) => "not_eligible",
            };
            let missing = match verdict {
                Eligibility::NotEligible { missing } => missing,
                Eligibility::Eligible => vec![],
            };
            TierReport {
                id: t.id.0.to_string(),
                rank: t.rank,
                status,
                missing,
                library: format!("lib/{}", t.library_file()),
                library_present: library_exists(t),
                summary: t.summary.to_string(),
                note: t.note.map(str::to_string),
            }
        })
        .collect();
    let reason = match (&plan, chosen) {
        (Err(e), _) => e.to_string(),
        (Ok(_), None) => "no placement".to_string(),
        (Ok(_), Some(p)) => {
            let skipped: Vec<&str> = tier_reports
                .iter()
                .filter(|r| r.rank > p.tier.rank && r.status == "eligible" && !r.library_present)
                .map(|r| r.id.as_str())
                .collect();
            let mut s = p.reason.clone();
            if !skipped.is_empty() {
                s += &format!(" ({} eligible but its library is missing)", skipped.join(", "));
            }
            s
        }
    };
    let hex = |v: Option<u64>| v.map(|v| format!("{v:#x}"));
    Report {
        schema: REPORT_SCHEMA,
        launcher_version: env!("CARGO_PKG_VERSION"),
        arch: cpu.arch.name(),
        model: cpu.model.clone(),
        mvendorid: hex(cpu.mvendorid),
        marchid: hex(cpu.marchid),
        vlen: cpu.vlen,
        features: cpu.features.iter().map(str::to_string).collect(),
        assumed: cpu.assumed.iter().map(str::to_string).collect(),
        sources: cpu.sources.clone(),
        notes: cpu.notes.clone(),
        tiers: tier_reports,
        selected,
        forced: forced.map(str::to_string),
        reason,
        clusters: clusters
            .iter()
            .map(|c| ClusterReport {
                name: c.name.clone(),
                cores: c.cores.clone(),
                kind: c.kind,
                model: c.cpu.model.clone(),
                marchid: hex(c.cpu.marchid),
                vlen: c.cpu.vlen,
                features: c.cpu.features.iter().map(str::to_string).collect(),
                runs: tiers
                    .iter()
                    .filter(|t| evaluate(t, &c.cpu).is_eligible())
                    .map(|t| t.id.0.to_string())
                    .collect(),
            })
            .collect(),
        placement: chosen.map(|p| PlacementReport {
            tier: p.tier.id.0.to_string(),
            cluster: p.cluster.clone(),
            cores: p.cores.clone(),
            threads: p.threads,
            gen_threads: p.gen_threads,
            vlen: p.vlen,
        }),
        calibration,
    }
}

pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("hartlm {} launcher ({})", r.launcher_version, r.arch));
    let mut ident = r.model.clone().unwrap_or_else(|| "unknown CPU".into());
    if let Some(v) = &r.mvendorid {
        ident += &format!("  mvendorid {v}");
    }
    if let Some(a) = &r.marchid {
        ident += &format!("  marchid {a}");
    }
    line(format!("cpu:      {ident}"));
    line(format!(
        "vlen:     {}",
        r.vlen.map_or("none (no usable RVV 1.0)".to_string(), |v| format!("{v} bits"))
    ));
    line(format!("features: {}", r.features.join(" ")));
    if !r.assumed.is_empty() {
        line(format!("assumed:  {} (HARTLM_ASSUME_FEATURES)", r.assumed.join(" ")));
    }
    line(format!("sources:  {}", r.sources.join(", ")));
    for n in &r.notes {
        line(format!("note:     {n}"));
    }
    line("tiers (best first):".into());
    let w = r.tiers.iter().map(|t| t.id.len()).max().unwrap_or(0);
    for t in &r.tiers {
        let detail = match t.status {
            "not_eligible" => format!("missing: {}", t.missing.join(", ")),
            _ if !t.library_present => format!("library {} not installed", t.library),
            _ => t.library.clone(),
        };
        line(format!("  {:w$}  {:12}  {detail}", t.id, t.status.replace('_', " ")));
        if let Some(note) = &t.note {
            line(format!("  {:w$}  {:12}  note: {note}", "", ""));
        }
    }
    line("clusters:".into());
    let nw = r.clusters.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let cw = r.clusters.iter().map(|c| c.cores.to_string().len()).max().unwrap_or(0);
    for c in &r.clusters {
        let kind = if c.kind == CoreKind::Ai { "AI cores" } else { "general" };
        let vlen = match c.vlen {
            Some(v) => format!("VLEN {v}"),
            None if r.arch == "riscv64" => "no RVV".into(),
            None => String::new(),
        };
        let runs = if c.runs.is_empty() { "no tier".to_string() } else { c.runs.join(", ") };
        line(format!(
            "  {:nw$}  cores {:cw$}  {kind:8}  {vlen:9}  runs: {runs}",
            c.name,
            c.cores.to_string()
        ));
        if r.clusters.len() > 1 {
            line(format!("  {:nw$}  features: {}", "", c.features.join(" ")));
        }
    }
    match (&r.selected, &r.placement) {
        (Some(s), Some(p)) => {
            let generation = if p.gen_threads < p.threads {
                format!(", {} for generation", p.gen_threads)
            } else {
                String::new()
            };
            line(format!(
                "selected: {s} on {} (cores {}, {} threads by default{generation}): {}",
                p.cluster, p.cores, p.threads, r.reason
            ))
        }
        (Some(s), None) => line(format!("selected: {s}: {}", r.reason)),
        (None, _) => line(format!("selected: none: {}", r.reason)),
    }
    line(format!("calibration: {}", r.calibration));
    out
}
