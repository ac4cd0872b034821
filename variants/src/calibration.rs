//! `hartlm calibrate`'s result: the measured memory throughput of every (tier, cluster) pair, the
//! generation thread knee, the cache file and when it no longer applies. Pure; main.rs measures.
//!
//! Each pair times the engine's Q4_0 matrix-vector product over weights larger than the caches
//! (what token generation spends its time on) at rising thread counts. A pair's score is its
//! best throughput; its knee is the fewest threads reaching 90% of that, since past the memory
//! bandwidth knee more threads only contend (K3: generation stops scaling at 4 threads).

use serde::{Deserialize, Serialize};

use crate::placement::Placement;

/// Bump when the file's meaning changes; other versions are ignored as stale.
pub const SCHEMA: u32 = 1;
pub const FILE_NAME: &str = "calibration.json";
/// Share of the best throughput that counts as reaching it.
const KNEE_SHARE: f64 = 0.9;

/// One measurement: weight bytes read per second at a thread count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub threads: usize,
    pub gbps: f64,
}

/// Everything measured for one (tier, cluster) pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub tier: String,
    pub cluster: String,
    pub cores: String,
    pub samples: Vec<Sample>,
    pub best_gbps: f64,
    pub knee_threads: usize,
}

impl Measured {
    /// Scores samples (at least one) taken for `tier` on `cluster`.
    pub fn new(tier: &str, cluster: &str, cores: &str, samples: Vec<Sample>) -> Measured {
        let best = samples.iter().map(|s| s.gbps).fold(0.0, f64::max);
        let knee =
            samples.iter().filter(|s| s.gbps >= KNEE_SHARE * best).map(|s| s.threads).min().unwrap_or(1);
        Measured {
            tier: tier.into(),
            cluster: cluster.into(),
            cores: cores.into(),
            samples,
            best_gbps: best,
            knee_threads: knee,
        }
    }
}

/// The cache file: the pairs best first, and what they were measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub schema: u32,
    pub launcher_version: String,
    /// [`fingerprint`] of the machine measured.
    pub system: String,
    pub size_mib: usize,
    pub pairs: Vec<Measured>,
}

impl Calibration {
    /// Orders `pairs` by score, best first (ties keep the rule's order).
    pub fn new(system: String, size_mib: usize, mut pairs: Vec<Measured>) -> Calibration {
        pairs.sort_by(|a, b| b.best_gbps.total_cmp(&a.best_gbps));
        Calibration {
            schema: SCHEMA,
            launcher_version: env!("CARGO_PKG_VERSION").into(),
            system,
            size_mib,
            pairs,
        }
    }

    /// Reads a cache file's text, refusing one made by another launcher or for another machine
    /// (the error says why, for `hartlm cpu`).
    pub fn parse(text: &str, system: &str) -> Result<Calibration, String> {
        let c: Calibration = serde_json::from_str(text)
            .map_err(|e| format!("unreadable ({e}); run `hartlm calibrate` again"))?;
        if c.schema != SCHEMA || c.launcher_version != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "made by hartlm {} (schema {}); run `hartlm calibrate` again",
                c.launcher_version, c.schema
            ));
        }
        if c.system != system {
            return Err("/proc/cpuinfo changed since it was measured; run `hartlm calibrate` again".into());
        }
        Ok(c)
    }

    fn find(&self, tier: &str, cluster: &str) -> Option<(usize, &Measured)> {
        self.pairs.iter().enumerate().find(|(_, m)| m.tier == tier && m.cluster == cluster)
    }

    /// Reorders the rule's placements by measured speed and caps generation threads at each
    /// pair's knee. Only pairs the rule allowed are ever chosen. Fails (the cache is stale) when
    /// a placement was never measured: a tier installed or cores freed since calibrating.
    pub fn apply<'t>(&self, plan: Vec<Placement<'t>>) -> Result<Vec<Placement<'t>>, String> {
        let mut ranked = Vec::with_capacity(plan.len());
        for mut p in plan {
            let Some((rank, m)) = self.find(p.tier.id.0, &p.cluster) else {
                return Err(format!(
                    "{} on {} was not measured; run `hartlm calibrate` again",
                    p.tier.id, p.cluster
                ));
            };
            p.gen_threads = m.knee_threads.clamp(1, p.threads);
            let best = &self.pairs[0];
            p.reason = if rank == 0 {
                format!(
                    "calibrated: {} on {} reads weights fastest ({:.2} GB/s, `hartlm calibrate`)",
                    p.tier.id, p.cluster, m.best_gbps
                )
            } else {
                format!(
                    "calibrated: {:.2} GB/s, behind {} on {} ({:.2} GB/s)",
                    m.best_gbps, best.tier, best.cluster, best.best_gbps
                )
            };
            p.reason += &format!(
                "; generation uses {} threads, where throughput reaches {:.0}% of its best",
                p.gen_threads,
                KNEE_SHARE * 100.0
            );
            ranked.push((rank, p));
        }
        ranked.sort_by_key(|(rank, _)| *rank);
        Ok(ranked.into_iter().map(|(_, p)| p).collect())
    }
}

/// What the launcher found where the cache lives.
#[derive(Clone, Debug)]
pub enum Cached {
    /// No file (or nowhere to keep one).
    Missing,
    /// HARTLM_CALIBRATION=off.
    Off,
    /// A file that does not apply, and why.
    Stale {
        path: String,
        why: String,
    },
    Found {
        path: String,
        calibration: Calibration,
    },
}

/// The rule's placements with the cached ranking applied when it is present, valid and not
/// overridden by HARTLM_TIER / HARTLM_CLUSTER (`forced`), and a line saying what happened.
pub fn choose<'t, E>(
    plan: Result<Vec<Placement<'t>>, E>,
    cached: &Cached,
    forced: bool,
) -> (Result<Vec<Placement<'t>>, E>, String) {
    let status = match cached {
        Cached::Missing => "none (`hartlm calibrate` ranks tiers and clusters by measurement)".to_string(),
        Cached::Off => "off (HARTLM_CALIBRATION=off)".to_string(),
        Cached::Stale { path, why } => format!("ignored {path}: {why}"),
        Cached::Found { path, .. } if forced => {
            format!("not used: HARTLM_TIER or HARTLM_CLUSTER decides ({path})")
        }
        Cached::Found { path, calibration } => match plan {
            Ok(p) => {
                return match calibration.apply(p.clone()) {
                    Ok(ranked) => (Ok(ranked), format!("used {path}")),
                    Err(why) => (Ok(p), format!("ignored {path}: {why}")),
                };
            }
            Err(_) => format!("not used: no placement ({path})"),
        },
    };
    (plan, status)
}

/// Identifies the machine a calibration belongs to: `/proc/cpuinfo` without its fields that
/// change at run time (clock speed, bogomips), and the launcher version. FNV-1a, hex.
pub fn fingerprint(cpuinfo: &str) -> String {
    let volatile = |line: &str| {
        let key = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        key == "cpu mhz" || key == "bogomips"
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let stable = cpuinfo.lines().filter(|l| !volatile(l));
    for byte in stable.flat_map(|l| l.bytes().chain([b'\n'])).chain(env!("CARGO_PKG_VERSION").bytes()) {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Thread counts to measure on a cluster of `cores` cores: every count up to 8, then steps of 4,
/// and always `cores` itself.
pub fn thread_counts(cores: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=cores.min(8)).chain((12..cores).step_by(4)).collect();
    if cores > 8 {
        v.push(cores);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::CoreSet;
    use crate::tier;

    fn samples(v: &[(usize, f64)]) -> Vec<Sample> {
        v.iter().map(|&(threads, gbps)| Sample { threads, gbps }).collect()
    }

    #[test]
    fn the_knee_is_the_fewest_threads_near_the_best() {
        // Shaped like K3's X100 cluster: bandwidth saturates at four threads.
        let m = Measured::new(
            "t",
            "X100",
            "0-7",
            samples(&[(1, 3.1), (2, 6.0), (3, 8.2), (4, 9.4), (5, 9.6), (6, 9.5), (7, 9.7), (8, 9.6)]),
        );
        assert_eq!((m.best_gbps, m.knee_threads), (9.7, 4));
        // Still scaling: the knee is the largest count.
        let m = Measured::new("t", "c", "0-1", samples(&[(1, 1.0), (2, 1.95)]));
        assert_eq!(m.knee_threads, 2);
    }

    #[test]
    fn thread_counts_cover_small_clusters_fully_and_large_ones_in_steps() {
        assert_eq!(thread_counts(1), [1]);
        assert_eq!(thread_counts(8), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(thread_counts(16), [1, 2, 3, 4, 5, 6, 7, 8, 12, 16]);
        assert_eq!(thread_counts(18), [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 18]);
    }

    #[test]
    fn fingerprints_ignore_clock_speed_but_not_the_cpus() {
        let a = "processor\t: 0\ncpu MHz\t\t: 2400.000\nbogomips\t: 48.00\nisa\t\t: rv64gcv\n";
        let b = "processor\t: 0\ncpu MHz\t\t: 1600.000\nbogomips\t: 32.00\nisa\t\t: rv64gcv\n";
        assert_eq!(fingerprint(a), fingerprint(b));
        assert_ne!(fingerprint(a), fingerprint(&a.replace("rv64gcv", "rv64gc")));
        assert_ne!(fingerprint(a), fingerprint(&format!("{a}\nprocessor\t: 1\nisa\t\t: rv64gcv\n")));
    }

    #[test]
    fn stale_files_are_refused_with_a_reason() {
        let c = Calibration::new("abc".into(), 32, vec![]);
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(Calibration::parse(&text, "abc").unwrap(), c);
        assert!(Calibration::parse(&text, "abd").unwrap_err().contains("cpuinfo changed"));
        let old = text.replace(&format!("\"schema\":{SCHEMA}"), "\"schema\":0");
        assert!(Calibration::parse(&old, "abc").unwrap_err().contains("schema 0"));
        assert!(Calibration::parse("{", "abc").unwrap_err().starts_with("unreadable"));
    }

    /// Two clusters of one VLEN where the second measured faster: the ranking follows the
    /// measurement, not the rule's core-count order, and generation stops at each knee.
    #[test]
    fn a_calibration_reorders_the_rules_choices_and_caps_generation() {
        let tiers = tier::for_arch(crate::Arch::X86_64);
        let mut features = crate::FeatureSet::new();
        let v3 = tier::find("x86-64-v3").unwrap();
        for f in v3.requires {
            features.insert(f);
        }
        let cpu = crate::CpuFeatures {
            arch: crate::Arch::X86_64,
            model: Some("host".into()),
            mvendorid: None,
            marchid: None,
            features,
            vlen: None,
            assumed: crate::FeatureSet::new(),
            sources: vec![],
            notes: vec![],
        };
        let cluster = |name: &str, cores: &str| crate::cluster::Cluster {
            name: name.into(),
            cores: CoreSet::parse(cores).unwrap(),
            kind: crate::cluster::CoreKind::General,
            cpu: cpu.clone(),
        };
        let clusters = [cluster("big", "0-3"), cluster("small", "4-5")];
        let plan = crate::placement::plan_placements(&tiers, &clusters, None, None, |_| true).unwrap();
        let rule: Vec<(&str, &str)> = plan.iter().map(|p| (p.tier.id.0, p.cluster.as_str())).collect();
        assert_eq!(rule[0], ("x86-64-v3", "big"));

        let mut pairs: Vec<Measured> = rule
            .iter()
            .map(|(t, c)| Measured::new(t, c, "", samples(&[(1, 1.0), (2, 1.5), (3, 2.0), (4, 2.05)])))
            .collect();
        let fast = pairs.iter_mut().find(|m| (m.tier.as_str(), m.cluster.as_str()) == ("x86-64-v3", "small"));
        *fast.unwrap() = Measured::new("x86-64-v3", "small", "4-5", samples(&[(1, 4.0), (2, 4.1)]));
        let cal = Calibration::new("fp".into(), 32, pairs);
        let ranked = cal.apply(plan.clone()).unwrap();
        assert_eq!((ranked[0].tier.id.0, ranked[0].cluster.as_str()), ("x86-64-v3", "small"));
        assert_eq!((ranked[0].threads, ranked[0].gen_threads), (2, 1));
        assert!(ranked[0].reason.starts_with("calibrated:"), "{}", ranked[0].reason);
        let big = ranked.iter().find(|p| (p.tier.id.0, p.cluster.as_str()) == ("x86-64-v3", "big")).unwrap();
        assert_eq!((big.threads, big.gen_threads), (4, 3));
        assert_eq!(ranked.len(), plan.len());

        // A pair the calibration never saw makes it stale rather than half-applied.
        let partial = Calibration::new("fp".into(), 32, cal.pairs[1..].to_vec());
        let missing = &cal.pairs[0];
        let err = partial.apply(plan).unwrap_err();
        assert!(err.contains(&format!("{} on {} was not measured", missing.tier, missing.cluster)), "{err}");
    }
}
