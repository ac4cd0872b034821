//! Choosing a tier and the cores to run it on together: every tier is matched against every
//! cluster, and the best (tier, cluster) pair wins by a fixed rule. Pure functions over clusters.
//!
//! The rule, in order:
//! 1. a tier whose matrix kernels exist (`matrix_unit` in tiers.toml) on a cluster with that unit
//!    at a vector length they are written for (`matrix_vlen`);
//! 2. general-purpose clusters before AI-core clusters, even when the AI cores have wider vectors
//!    (standard RVV code ran 30x slower on K3's A100 cores than on its X100 cores);
//! 3. the higher-ranked tier;
//! 4. the cluster with more allowed cores, then the one whose first core is lower.
//!
//! The engine packs weights for one VLEN, so a placement never spans cores of different VLEN.

use serde::Serialize;

use crate::cluster::{Cluster, CoreKind, CoreSet};
use crate::select::{SelectError, evaluate, plan_load};
use crate::tier::Tier;

/// A tier, the cores its threads may use, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement<'t> {
    #[serde(serialize_with = "tier_id")]
    pub tier: &'t Tier,
    /// Name of the chosen cluster.
    pub cluster: String,
    /// The cluster's cores, then those of other clusters the tier runs on with the same VLEN
    /// and kind: more threads than the cluster has spill there instead of failing.
    pub cores: CoreSet,
    /// Default worker count: the chosen cluster's allowed cores.
    pub threads: usize,
    /// Default workers for token generation: `threads` capped at the memory-bandwidth knee
    /// when it is known (from calibration, or field measurements of the core type).
    pub gen_threads: usize,
    /// `cores` in the order workers take them: the chosen cluster's first.
    pub worker_cores: Vec<u32>,
    pub vlen: Option<u32>,
    pub reason: String,
}

fn tier_id<S: serde::Serializer>(t: &&Tier, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.id.0)
}

/// The placements to try, best first (a library that fails to load falls back to the next).
/// `forced_tier` (HARTLM_TIER) and `forced_cluster` (HARTLM_CLUSTER) narrow the choice.
pub fn plan_placements<'t>(
    tiers: &[&'t Tier],
    clusters: &[Cluster],
    forced_tier: Option<&str>,
    forced_cluster: Option<&str>,
    library_exists: impl Fn(&Tier) -> bool,
) -> Result<Vec<Placement<'t>>, SelectError> {
    let candidates: Vec<&Cluster> = match forced_cluster {
        None => clusters.iter().collect(),
        Some(name) => match clusters.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
            Some(c) => vec![c],
            None => {
                return Err(SelectError::UnknownCluster {
                    name: name.to_string(),
                    valid: clusters.iter().map(|c| c.name.clone()).collect(),
                });
            }
        },
    };
    let mut pairs: Vec<(&'t Tier, &Cluster)> = Vec::new();
    let mut refusals = Vec::new();
    for c in &candidates {
        match plan_load(tiers, &c.cpu, forced_tier, &library_exists) {
            Ok(ts) => pairs.extend(ts.into_iter().map(|t| (t, *c))),
            Err(e) => refusals.push(((c.kind != CoreKind::General, size_order(c)), e)),
        }
    }
    if pairs.is_empty() {
        // Report the refusal of the cluster that would have been preferred.
        refusals.sort_by_key(|r| r.0);
        let first = refusals.into_iter().next().map(|(_, e)| e);
        return Err(first.unwrap_or(SelectError::NoLibrary { eligible: vec![] }));
    }
    pairs.sort_by_key(|(t, c)| {
        let matrix = t.matrix_runs_on(&c.cpu);
        (!matrix, c.kind != CoreKind::General, std::cmp::Reverse(t.rank), size_order(c))
    });
    let forced = (forced_tier.is_some(), forced_cluster.is_some());
    Ok(pairs.into_iter().map(|(t, c)| place(t, c, clusters, forced)).collect())
}

/// Cluster order among equals: more allowed cores first, then the lower first core.
fn size_order(c: &Cluster) -> (std::cmp::Reverse<usize>, Option<u32>) {
    (std::cmp::Reverse(c.cores.len()), c.cores.first())
}

/// The placement of `tier` on `c`; `(forced_tier, forced_cluster)` say what the user chose.
fn place<'t>(tier: &'t Tier, c: &Cluster, all: &[Cluster], forced: (bool, bool)) -> Placement<'t> {
    let spill: Vec<&Cluster> = all
        .iter()
        .filter(|o| o.name != c.name && o.kind == c.kind && o.cpu.vlen == c.cpu.vlen)
        .filter(|o| evaluate(tier, &o.cpu).is_eligible())
        .collect();
    let cores = spill.iter().fold(c.cores.clone(), |acc, o| acc.union(&o.cores));
    let worker_cores: Vec<u32> = c.cores.iter().chain(spill.iter().flat_map(|o| o.cores.iter())).collect();
    let threads = c.cores.len().max(1);
    let knee = c.cpu.marchid.and_then(crate::cpu::spacemit_core).and_then(|k| k.gen_threads_knee);
    let gen_threads = knee.map_or(threads, |k| k.clamp(1, threads));
    let others: Vec<&Cluster> = all.iter().filter(|o| o.name != c.name).collect();
    let matrix = tier.matrix_runs_on(&c.cpu);
    let mut reason = if forced.0 {
        format!("{} forced by HARTLM_TIER; {} is the best cluster that runs it", tier.id, c.name)
    } else if forced.1 {
        format!("{} is the highest-ranked tier {} (HARTLM_CLUSTER) can run", tier.id, c.name)
    } else if matrix {
        format!("{} has the {} matrix unit this tier's kernels use", c.name, tier.matrix_unit.unwrap_or(""))
    } else {
        format!("{} is the highest-ranked tier {} can run with its library installed", tier.id, c.name)
    };
    if c.kind == CoreKind::General && others.iter().any(|o| o.kind == CoreKind::Ai) {
        reason += "; general-purpose cores are preferred over AI cores, where standard vector code \
                   runs far slower";
    }
    if c.kind == CoreKind::Ai && !matrix {
        reason += if forced.0 || forced.1 {
            "; these are AI cores: expect standard vector code to run far slower than on general cores"
        } else {
            "; only AI cores are available: expect standard vector code to be slow"
        };
    }
    if let Some(note) = tier.note {
        reason += &format!("; note: {note}");
    }
    if gen_threads < threads {
        reason += &format!(
            "; generation uses {gen_threads} threads, where {}'s memory bandwidth saturates",
            c.name
        );
    }
    if !spill.is_empty() {
        let names: Vec<&str> = spill.iter().map(|o| o.name.as_str()).collect();
        reason += &format!("; threads beyond {} spill to {}", c.cores.len(), names.join(", "));
    }
    Placement {
        tier,
        cluster: c.name.clone(),
        cores,
        threads,
        gen_threads,
        worker_cores,
        vlen: c.cpu.vlen,
        reason,
    }
}
