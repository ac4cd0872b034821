//! `hartlm cpu`: what was detected, every tier's verdict, and why one was chosen, as text or JSON.
//! Built from plain data so the same report is unit-tested on recorded CPUs.

use serde::Serialize;

use crate::cpu::CpuFeatures;
use crate::select::{Eligibility, evaluate, plan_load};
use crate::tier::Tier;

pub const REPORT_SCHEMA: u32 = 1;

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

pub fn build(
    cpu: &CpuFeatures,
    tiers: &[&Tier],
    forced: Option<&str>,
    library_exists: impl Fn(&Tier) -> bool,
) -> Report {
    let plan = plan_load(tiers, cpu, forced, &library_exists);
    let selected = plan.as_ref().ok().and_then(|p| p.first()).map(|t| t.id.0.to_string());
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
    let reason = match (&plan, forced) {
        (Err(e), _) => e.to_string(),
        (Ok(_), Some(_)) => "forced by HARTLM_TIER".to_string(),
        (Ok(p), None) => {
            let chosen = p[0];
            let skipped: Vec<&str> = tier_reports
                .iter()
                .filter(|r| r.rank > chosen.rank && r.status == "eligible" && !r.library_present)
                .map(|r| r.id.as_str())
                .collect();
            let mut s = format!(
                "{} is the highest-ranked tier whose requirements this CPU meets and whose \
                 library is installed",
                chosen.id
            );
            if !skipped.is_empty() {
                s += &format!(" ({} eligible but its library is missing)", skipped.join(", "));
            }
            if let Some(note) = chosen.note {
                s += &format!("; note: {note}");
            }
            s
        }
    };
    Report {
        schema: REPORT_SCHEMA,
        launcher_version: env!("CARGO_PKG_VERSION"),
        arch: cpu.arch.name(),
        model: cpu.model.clone(),
        mvendorid: cpu.mvendorid.map(|v| format!("{v:#x}")),
        marchid: cpu.marchid.map(|v| format!("{v:#x}")),
        vlen: cpu.vlen,
        features: cpu.features.iter().map(str::to_string).collect(),
        assumed: cpu.assumed.iter().map(str::to_string).collect(),
        sources: cpu.sources.clone(),
        notes: cpu.notes.clone(),
        tiers: tier_reports,
        selected,
        forced: forced.map(str::to_string),
        reason,
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
    match &r.selected {
        Some(s) => line(format!("selected: {s}: {}", r.reason)),
        None => line(format!("selected: none: {}", r.reason)),
    }
    out
}
