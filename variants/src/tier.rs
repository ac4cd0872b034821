//! The tier data model and the static table generated from variants/tiers.toml.
//! A tier is one build of the engine: a target triple plus the CPU features it may use.

use serde::Serialize;
use std::fmt;

/// A tier's slug id, e.g. `rv64gcv_zvfh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TierId(pub &'static str);

impl fmt::Display for TierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Riscv64,
    X86_64,
}

impl Arch {
    /// The architecture this code was compiled for, if hartlm supports it.
    pub fn current() -> Option<Arch> {
        match std::env::consts::ARCH {
            "riscv64" => Some(Arch::Riscv64),
            "x86_64" => Some(Arch::X86_64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64",
            Arch::X86_64 => "x86_64",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        [Arch::Riscv64, Arch::X86_64].into_iter().find(|a| a.name() == name)
    }

    /// The target triple of this architecture's launcher (the baseline tier's triple).
    pub fn baseline_triple(self) -> &'static str {
        match self {
            Arch::Riscv64 => "riscv64gc-unknown-linux-gnu",
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub id: TierId,
    pub triple: &'static str,
    pub arch: Arch,
    pub rank: u32,
    pub rustc_cpu: Option<&'static str>,
    pub rustc_features: &'static [&'static str],
    pub requires: &'static [&'static str],
    /// The engine's kernel families this tier compiles in (engine/build.rs reads the same rows).
    pub kernels: &'static [&'static str],
    pub min_vlen: Option<u32>,
    pub qemu_cpu: Option<&'static str>,
    pub qemu_assume: &'static [&'static str],
    pub summary: &'static str,
    pub note: Option<&'static str>,
    /// The matrix extension this tier's kernels use, once they exist: placement then prefers the
    /// cluster that has the unit (see `placement`).
    pub matrix_unit: Option<&'static str>,
    /// The vector lengths the matrix kernels are written for (the unit's tile geometry follows
    /// VLEN); at others the tier runs its standard vector kernels.
    pub matrix_vlen: &'static [u32],
}

impl Tier {
    /// Whether this tier's matrix kernels run on `cpu`: it has the unit at a supported VLEN.
    pub fn matrix_runs_on(&self, cpu: &crate::cpu::CpuFeatures) -> bool {
        self.matrix_unit.is_some_and(|m| cpu.has(m))
            && cpu.vlen.is_some_and(|v| self.matrix_vlen.contains(&v))
    }
}

include!(concat!(env!("OUT_DIR"), "/tiers_gen.rs"));

/// Every tier of every architecture, in table order.
pub fn tiers() -> &'static [Tier] {
    TIERS
}

/// The tier with this id, if any.
pub fn find(id: &str) -> Option<&'static Tier> {
    TIERS.iter().find(|t| t.id.0 == id)
}

/// The tiers of one architecture, best (highest rank) first.
pub fn for_arch(arch: Arch) -> Vec<&'static Tier> {
    let mut v: Vec<&Tier> = TIERS.iter().filter(|t| t.arch == arch).collect();
    v.sort_by_key(|t| std::cmp::Reverse(t.rank));
    v
}

impl Tier {
    /// The library's file name inside the tarball's `lib/` directory.
    pub fn library_file(&self) -> String {
        hartlm_abi::library_file_name(self.id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_promised_tiers() {
        for id in [
            "rv64gc",
            "rv64gcv",
            "rv64gcv_zvfh",
            "rv64gcv_zvfh_zfa_zicond_zicbop",
            "spacemit_ime",
            "x86-64",
            "x86-64-v2",
            "x86-64-v3",
            "x86-64-v4",
        ] {
            assert!(find(id).is_some(), "tier {id} missing from tiers.toml");
        }
    }

    #[test]
    fn each_architecture_has_a_rank_zero_baseline_without_requirements() {
        for arch in [Arch::Riscv64, Arch::X86_64] {
            let tiers = for_arch(arch);
            let base = tiers.last().unwrap();
            assert_eq!(base.rank, 0);
            assert!(base.requires.is_empty() && base.rustc_features.is_empty());
            assert_eq!(base.triple, arch.baseline_triple());
        }
    }

    #[test]
    fn higher_tiers_require_a_superset_of_lower_standard_tiers() {
        // A tier that drops a requirement of a lower tier would be chosen on CPUs the lower one refuses.
        let std_rv: Vec<_> =
            for_arch(Arch::Riscv64).into_iter().filter(|t| t.id.0.starts_with("rv64")).collect();
        for pair in std_rv.windows(2) {
            for r in pair[1].requires {
                assert!(pair[0].requires.contains(r), "{} lacks {r} of {}", pair[0].id, pair[1].id);
            }
        }
        let x86 = for_arch(Arch::X86_64);
        for pair in x86.windows(2) {
            for r in pair[1].requires {
                assert!(pair[0].requires.contains(r), "{} lacks {r} of {}", pair[0].id, pair[1].id);
            }
        }
    }
}
