//! Cores grouped into clusters of identical capabilities (heterogeneous chips such as SpacemiT
//! K3: X100 and A100 cores with different VLEN), and Linux CPU lists (`0-7,12`). Pure: probe data
//! in, clusters out; `probe` supplies the per-core reads (hwprobe on a CPU set, vlenb on a core).

use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

use crate::cpu::{self, CpuFeatures, Hwprobe, RiscvProbe};

/// A set of logical CPU numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CoreSet(BTreeSet<u32>);

/// More CPUs than any list hartlm accepts may name (bounds `0-4294967295`).
const MAX_CPU: u32 = 1 << 16;

impl CoreSet {
    /// Parses a Linux CPU list: comma-separated numbers and ranges, e.g. `0-7,12`.
    pub fn parse(list: &str) -> Result<CoreSet, String> {
        let mut set = BTreeSet::new();
        for part in list.trim().split(',').map(str::trim) {
            let num = |s: &str| {
                s.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n < MAX_CPU)
                    .ok_or_else(|| format!("`{s}` in CPU list `{list}` is not a CPU number"))
            };
            match part.split_once('-') {
                _ if part.is_empty() => return Err(format!("empty entry in CPU list `{list}`")),
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(format!("range `{part}` in CPU list `{list}` runs backwards"));
                    }
                    set.extend(a..=b);
                }
                None => {
                    set.insert(num(part)?);
                }
            }
        }
        Ok(CoreSet(set))
    }

    pub fn contains(&self, cpu: u32) -> bool {
        self.0.contains(&cpu)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn first(&self) -> Option<u32> {
        self.0.first().copied()
    }
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
    pub fn intersection(&self, other: &CoreSet) -> CoreSet {
        CoreSet(self.0.intersection(&other.0).copied().collect())
    }
    pub fn union(&self, other: &CoreSet) -> CoreSet {
        CoreSet(self.0.union(&other.0).copied().collect())
    }
    pub fn is_subset(&self, other: &CoreSet) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl FromIterator<u32> for CoreSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        CoreSet(iter.into_iter().collect())
    }
}

/// Written back in the kernel's list format, ranges collapsed.
impl fmt::Display for CoreSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut it = self.0.iter().copied().peekable();
        while let Some(start) = it.next() {
            let mut end = start;
            while it.peek() == Some(&(end + 1)) {
                end = it.next().unwrap_or(end);
            }
            parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
        }
        f.write_str(&parts.join(","))
    }
}

impl Serialize for CoreSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a cluster's cores are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreKind {
    General,
    /// Cores built around a matrix unit (SpacemiT A60/A100): standard RVV code runs far slower
    /// there (K3 field measurements: 30x), so standard tiers avoid them.
    Ai,
}

/// Cores of one kind: identical isa line, identity and vector length.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    pub name: String,
    pub cores: CoreSet,
    pub kind: CoreKind,
    pub cpu: CpuFeatures,
}

/// Probe data for grouping RISC-V cores. `hwprobe` answers for a CPU set (the kernel reports
/// what every CPU of the set has); `vlenb` reads the CSR on one core and is only asked for cores
/// whose features say V is usable (None: could not be read there).
pub struct ClusterProbe<'a> {
    pub cpuinfo: &'a str,
    pub allowed: &'a CoreSet,
    pub hwcap: u64,
    pub hwprobe: &'a dyn Fn(&CoreSet) -> Option<Hwprobe>,
    pub vlenb: &'a dyn Fn(u32) -> Option<u64>,
}

/// The cpuinfo blocks (as text) of the processors in `allowed`, with their parsed fields.
fn blocks(text: &str, allowed: &CoreSet) -> Vec<(cpu::CpuinfoCore, String)> {
    blocks_of(text, |p| allowed.contains(p))
}

/// The cpuinfo blocks (as text) of the processors `keep` accepts, with their parsed fields.
fn blocks_of(text: &str, keep: impl Fn(u32) -> bool) -> Vec<(cpu::CpuinfoCore, String)> {
    let mut out = Vec::new();
    let mut block = String::new();
    for line in text.lines().chain([""]) {
        if !line.trim().is_empty() {
            block += line;
            block.push('\n');
        } else if !block.is_empty() {
            if let Some(core) = cpu::parse_cpuinfo(&block).pop()
                && core.processor.is_some_and(&keep)
            {
                out.push((core, block.clone()));
            }
            block.clear();
        }
    }
    out
}

/// A recorded cpuinfo split into its processors' blocks once, so asking what hwprobe reports
/// for each of many clusters costs a pass over processor numbers, not a re-parse of the file.
pub struct RecordedCpuinfo {
    blocks: Vec<(u32, String)>,
}

impl RecordedCpuinfo {
    pub fn parse(cpuinfo: &str) -> RecordedCpuinfo {
        let blocks = blocks_of(cpuinfo, |_| true)
            .into_iter()
            .filter_map(|(core, text)| core.processor.map(|p| (p, text)))
            .collect();
        RecordedCpuinfo { blocks }
    }

    /// What an upstream kernel's hwprobe reports for `cores`.
    pub fn hwprobe(&self, cores: &CoreSet) -> Option<Hwprobe> {
        let text: Vec<&str> =
            self.blocks.iter().filter(|(p, _)| cores.contains(*p)).map(|(_, t)| t.as_str()).collect();
        cpu::hwprobe_from_cpuinfo(&text.join("\n"))
    }
}

/// What an upstream kernel's hwprobe reports for `cores` of a recorded cpuinfo.
pub fn recorded_hwprobe(cpuinfo: &str, cores: &CoreSet) -> Option<Hwprobe> {
    RecordedCpuinfo::parse(cpuinfo).hwprobe(cores)
}

/// Groups the allowed RISC-V cores of `/proc/cpuinfo` into clusters, in order of their first
/// core. Empty when cpuinfo lists no allowed processor (the caller then probes the process).
pub fn riscv_clusters(p: &ClusterProbe) -> Vec<Cluster> {
    // Identity, plus whether the core carries its type's IME unit (K1: cores 0-3 only).
    type Key = (Option<String>, Option<u64>, Option<u64>, Option<u64>, bool);
    let mut groups: Vec<(Vec<u32>, String)> = Vec::new();
    // Hashed lookups throughout: a cpuinfo may list thousands of processors, all different.
    let mut group_of: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    for (core, text) in blocks(p.cpuinfo, p.allowed) {
        let ime = core.marchid.and_then(cpu::spacemit_core).is_some_and(|k| k.ime_on(core.processor));
        let key = (core.isa.clone(), core.mvendorid, core.marchid, core.mimpid, ime);
        let cpu_no = core.processor.unwrap_or(0);
        match group_of.get(&key) {
            Some(&g) => {
                groups[g].0.push(cpu_no);
                groups[g].1 += "\n";
                groups[g].1 += &text;
            }
            None => {
                group_of.insert(key, groups.len());
                groups.push((vec![cpu_no], text));
            }
        }
    }
    let mut clusters: Vec<Cluster> = Vec::new();
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut next_suffix: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (cpus, text) in groups {
        let cores: CoreSet = cpus.into_iter().collect();
        let probe = RiscvProbe { hwprobe: (p.hwprobe)(&cores), hwcap: p.hwcap, cpuinfo: Some(text) };
        let features = cpu::riscv_features(&probe);
        // VLEN is read on every core: identical isa lines do not promise identical vectors, and
        // the engine must never see two VLENs.
        let mut by_vlen: Vec<(Option<u64>, CoreSet)> = Vec::new();
        for core in cores.iter() {
            let vlenb = if features.has("v") { (p.vlenb)(core) } else { None };
            match by_vlen.iter_mut().find(|g| g.0 == vlenb) {
                Some(g) => g.1 = g.1.union(&std::iter::once(core).collect()),
                None => by_vlen.push((vlenb, std::iter::once(core).collect())),
            }
        }
        let split = by_vlen.len() > 1;
        for (vlenb, cores) in by_vlen {
            let cpu = match vlenb {
                Some(v) => cpu::with_vlenb(features.clone(), v),
                None => features.clone(),
            };
            let known = cpu.marchid.and_then(cpu::spacemit_core);
            let kind = if known.is_some_and(|k| k.ai) { CoreKind::Ai } else { CoreKind::General };
            // A core type whose unit only some CPUs carry names its two halves apart.
            let partial = known.is_some_and(|k| matches!(k.ime, cpu::ImeCores::Only { .. }));
            let mut base = known
                .map(|k| {
                    if partial && cpu.has("xsmtvdot") {
                        format!("{}-ime", k.name)
                    } else {
                        k.name.to_string()
                    }
                })
                .or_else(|| cpu.model.clone())
                .unwrap_or_else(|| format!("cluster{}", clusters.len()));
            if split {
                base += &cpu.vlen.map_or("-novlen".to_string(), |v| format!("-vlen{v}"));
            }
            let mut name = base.clone();
            let n = next_suffix.entry(base.clone()).or_insert(1);
            while taken.contains(&name) {
                *n += 1;
                name = format!("{base}-{n}");
            }
            taken.insert(name.clone());
            clusters.push(Cluster { name, cores, kind, cpu });
        }
    }
    clusters
}

/// The cores to consider: the process's allowed set, narrowed by HARTLM_CORES if given. Naming
/// a core the process may not use (taskset, cgroup cpuset) is an error, not silently dropped.
pub fn restrict(allowed: &CoreSet, requested: Option<&str>) -> Result<CoreSet, String> {
    let Some(list) = requested else { return Ok(allowed.clone()) };
    let want = CoreSet::parse(list).map_err(|e| format!("HARTLM_CORES: {e}"))?;
    if want.is_empty() || !want.is_subset(allowed) {
        return Err(format!(
            "HARTLM_CORES={list} names cores this process may not use; allowed: {allowed} \
             (taskset or the cgroup cpuset decide that)"
        ));
    }
    Ok(want)
}

/// `Cpus_allowed_list` from `/proc/self/status` text.
pub fn status_allowed(status: &str) -> Option<CoreSet> {
    let line = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    CoreSet::parse(line).ok()
}

/// The test hook for per-core `vlenb` in a recorded system: lines `<cpu list> <vlenb>`.
pub fn parse_vlenb_hook(text: &str) -> Result<Vec<(CoreSet, u64)>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (cpus, v) =
                l.split_once(char::is_whitespace).ok_or_else(|| format!("vlenb hook line `{l}`"))?;
            let v = v.trim().parse::<u64>().map_err(|_| format!("vlenb hook line `{l}`: bad vlenb"))?;
            Ok((CoreSet::parse(cpus)?, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_requested_must_be_allowed() {
        let allowed = CoreSet::parse("0-7").unwrap();
        assert_eq!(restrict(&allowed, None).unwrap(), allowed);
        assert_eq!(restrict(&allowed, Some("2-3")).unwrap().to_string(), "2-3");
        let err = restrict(&allowed, Some("6-9")).unwrap_err();
        assert!(err.contains("allowed: 0-7"), "{err}");
        assert!(restrict(&allowed, Some("x")).unwrap_err().starts_with("HARTLM_CORES"));
    }

    #[test]
    fn status_and_vlenb_hook() {
        let status = "Name:\tcat\nCpus_allowed:\tff00\nCpus_allowed_list:\t8-15\n";
        assert_eq!(status_allowed(status).unwrap().to_string(), "8-15");
        assert_eq!(status_allowed("Name: x\n"), None);
        let hook = parse_vlenb_hook("# K3\n0-7 32\n8-15 128\n").unwrap();
        assert_eq!(hook.len(), 2);
        assert_eq!((hook[1].0.to_string(), hook[1].1), ("8-15".into(), 128));
        assert!(parse_vlenb_hook("0-7\n").is_err());
    }

    #[test]
    fn cpu_lists_parse_and_print_as_the_kernel_does() {
        let s = CoreSet::parse("0-3, 8,10-11").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(s.to_string(), "0-3,8,10-11");
        assert_eq!(CoreSet::parse("5").unwrap().to_string(), "5");
        for bad in ["", "1,", "a", "3-1", "-1", "1-2-3", "99999999"] {
            assert!(CoreSet::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn blocks_keep_only_allowed_processors() {
        let text = "processor\t: 0\nisa\t: rv64gc\n\nprocessor\t: 1\nisa\t: rv64gcv\n\n\nprocessor\t: 2\nisa : rv64gc\n";
        let b = blocks(text, &CoreSet::parse("1-2").unwrap());
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].0.isa.as_deref(), Some("rv64gcv"));
        assert!(b[1].1.starts_with("processor\t: 2"), "{:?}", b[1].1);
    }
}
