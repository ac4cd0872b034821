//! Tier selection: which tiers a CPU can run, and in what order the launcher tries them.
//! Pure functions over the tier table, detected features and which library files exist.

use serde::Serialize;
use std::fmt;

use crate::cpu::CpuFeatures;
use crate::tier::{self, Tier};

/// Whether a CPU meets a tier's requirements, and if not, exactly what is missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Eligibility {
    Eligible,
    NotEligible { missing: Vec<String> },
}

impl Eligibility {
    pub fn is_eligible(&self) -> bool {
        matches!(self, Eligibility::Eligible)
    }
}

/// Checks one tier against a CPU. A too-short vector length is reported as `vlen>=N`.
pub fn evaluate(tier: &Tier, cpu: &CpuFeatures) -> Eligibility {
    if tier.arch != cpu.arch {
        return Eligibility::NotEligible { missing: vec![format!("arch {}", tier.arch.name())] };
    }
    let mut missing: Vec<String> =
        tier.requires.iter().filter(|f| !cpu.has(f)).map(|f| f.to_string()).collect();
    if let Some(min) = tier.min_vlen
        && cpu.has("v")
        && cpu.vlen.is_none_or(|v| v < min)
    {
        missing.push(format!("vlen>={min}"));
    }
    if missing.is_empty() { Eligibility::Eligible } else { Eligibility::NotEligible { missing } }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    UnknownTier {
        id: String,
        valid: Vec<String>,
    },
    ForcedNotEligible {
        id: String,
        missing: Vec<String>,
    },
    ForcedLibraryMissing {
        id: String,
        file: String,
    },
    NoLibrary {
        eligible: Vec<String>,
    },
    UnknownCluster {
        name: String,
        valid: Vec<String>,
    },
    /// HARTLM_CORES names no core this process may use, or cores it may not.
    BadCores {
        message: String,
    },
}

impl SelectError {
    /// 2 for a request the CPU or the table refuses; 1 for a broken installation.
    pub fn exit_code(&self) -> u8 {
        match self {
            SelectError::UnknownTier { .. }
            | SelectError::ForcedNotEligible { .. }
            | SelectError::UnknownCluster { .. }
            | SelectError::BadCores { .. } => 2,
            SelectError::ForcedLibraryMissing { .. } | SelectError::NoLibrary { .. } => 1,
        }
    }
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::UnknownTier { id, valid } => write!(
                f,
                "HARTLM_TIER={id} is not a tier of this architecture; valid tiers: {}",
                valid.join(", ")
            ),
            SelectError::ForcedNotEligible { id, missing } => write!(
                f,
                "HARTLM_TIER={id} cannot run on this CPU: missing {}; unset HARTLM_TIER or pick a \
                 tier `hartlm cpu` lists as eligible",
                missing.join(", ")
            ),
            SelectError::ForcedLibraryMissing { id, file } => {
                write!(f, "HARTLM_TIER={id}: library {file} is missing; reinstall the hartlm tarball")
            }
            SelectError::UnknownCluster { name, valid } => write!(
                f,
                "HARTLM_CLUSTER={name} is not a core cluster of this CPU; clusters: {} (see `hartlm cpu`)",
                valid.join(", ")
            ),
            SelectError::BadCores { message } => f.write_str(message),
            SelectError::NoLibrary { eligible } => write!(
                f,
                "no engine library found for any eligible tier ({}); reinstall the hartlm tarball \
                 so that lib/ sits next to bin/",
                eligible.join(", ")
            ),
        }
    }
}

impl std::error::Error for SelectError {}

/// The tiers to try, in order. A forced tier (HARTLM_TIER) is tried alone and must be eligible;
/// otherwise every eligible tier whose library exists, best first, so a library that fails to
/// load falls back to the next.
pub fn plan_load<'t>(
    tiers: &[&'t Tier],
    cpu: &CpuFeatures,
    forced: Option<&str>,
    library_exists: impl Fn(&Tier) -> bool,
) -> Result<Vec<&'t Tier>, SelectError> {
    let mut ordered: Vec<&Tier> = tiers.iter().copied().filter(|t| t.arch == cpu.arch).collect();
    ordered.sort_by_key(|t| std::cmp::Reverse(t.rank));
    if let Some(id) = forced {
        let Some(t) = ordered.iter().find(|t| t.id.0 == id) else {
            return Err(SelectError::UnknownTier {
                id: id.to_string(),
                valid: ordered.iter().map(|t| t.id.0.to_string()).collect(),
            });
        };
        if let Eligibility::NotEligible { missing } = evaluate(t, cpu) {
            return Err(SelectError::ForcedNotEligible { id: id.to_string(), missing });
        }
        if !library_exists(t) {
            return Err(SelectError::ForcedLibraryMissing { id: id.to_string(), file: t.library_file() });
        }
        return Ok(vec![*t]);
    }
    let eligible: Vec<&Tier> = ordered.into_iter().filter(|t| evaluate(t, cpu).is_eligible()).collect();
    let plan: Vec<&Tier> = eligible.iter().copied().filter(|t| library_exists(t)).collect();
    if plan.is_empty() {
        return Err(SelectError::NoLibrary {
            eligible: eligible.iter().map(|t| t.id.0.to_string()).collect(),
        });
    }
    Ok(plan)
}

/// All tiers of the CPU's architecture, best first.
pub fn arch_tiers(cpu: &CpuFeatures) -> Vec<&'static Tier> {
    tier::for_arch(cpu.arch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::FeatureSet;
    use crate::tier::Arch;

    fn cpu(features: &[&str], vlen: Option<u32>) -> CpuFeatures {
        CpuFeatures {
            arch: Arch::Riscv64,
            model: None,
            mvendorid: None,
            marchid: None,
            features: features.iter().copied().collect(),
            vlen,
            assumed: FeatureSet::new(),
            sources: vec![],
            notes: vec![],
        }
    }

    fn ids(plan: &[&Tier]) -> Vec<&'static str> {
        plan.iter().map(|t| t.id.0).collect()
    }

    #[test]
    fn picks_highest_eligible_and_falls_back_in_rank_order() {
        let c = cpu(&["i", "m", "a", "f", "d", "c", "v", "zfh", "zvfh"], Some(256));
        let plan = plan_load(&arch_tiers(&c), &c, None, |_| true).unwrap();
        assert_eq!(ids(&plan), ["rv64gcv_zvfh", "rv64gcv", "rv64gc"]);
    }

    #[test]
    fn missing_library_is_skipped() {
        let c = cpu(&["v", "zfh", "zvfh"], Some(256));
        let plan = plan_load(&arch_tiers(&c), &c, None, |t| t.id.0 != "rv64gcv_zvfh").unwrap();
        assert_eq!(ids(&plan)[0], "rv64gcv");
        let err = plan_load(&arch_tiers(&c), &c, None, |_| false).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("rv64gcv_zvfh, rv64gcv, rv64gc"), "{err}");
    }

    #[test]
    fn forced_tier_refused_names_every_missing_feature() {
        let k1 = cpu(&["v", "zfh", "zvfh", "zba", "zbb"], Some(256));
        let err =
            plan_load(&arch_tiers(&k1), &k1, Some("rv64gcv_zvfh_zfa_zicond_zicbop"), |_| true).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err,
            SelectError::ForcedNotEligible {
                id: "rv64gcv_zvfh_zfa_zicond_zicbop".into(),
                missing: vec!["zfa".into(), "zicond".into(), "zicbop".into()],
            }
        );
    }

    #[test]
    fn unknown_and_foreign_ids_list_valid_ones() {
        let c = cpu(&[], None);
        for bad in ["rv64gcv_nope", "x86-64-v3"] {
            let err = plan_load(&arch_tiers(&c), &c, Some(bad), |_| true).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains("valid tiers: spacemit_ime"), "{err}");
        }
    }

    #[test]
    fn forced_eligible_tier_is_tried_alone_even_if_lower() {
        let c = cpu(&["v"], Some(128));
        let plan = plan_load(&arch_tiers(&c), &c, Some("rv64gc"), |_| true).unwrap();
        assert_eq!(ids(&plan), ["rv64gc"]);
    }

    #[test]
    fn min_vlen_is_enforced() {
        let c = cpu(&["v", "zfh", "zvfh", "xsmtvdot"], Some(128));
        let ime = tier::find("spacemit_ime").unwrap();
        assert_eq!(evaluate(ime, &c), Eligibility::NotEligible { missing: vec!["vlen>=256".into()] });
        let c = cpu(&["v", "zfh", "zvfh", "xsmtvdot"], Some(1024));
        assert!(evaluate(ime, &c).is_eligible());
    }
}
