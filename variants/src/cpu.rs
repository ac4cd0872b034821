//! What a CPU can run, derived purely from recorded probe data: `/proc/cpuinfo` text, riscv_hwprobe
//! pairs, AT_HWCAP and CPUID registers. `probe` gathers that data; this module only interprets it.

use serde::Serialize;
use std::collections::BTreeSet;

use crate::tier::Arch;

/// A set of feature names, lower-case, as the probe names them (`v`, `zvfh`, `avx2`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FeatureSet(BTreeSet<String>);

impl FeatureSet {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }
    pub fn insert(&mut self, name: &str) {
        self.0.insert(name.to_ascii_lowercase());
    }
    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|f| keep(f));
    }
    fn intersect(&self, other: &FeatureSet) -> FeatureSet {
        FeatureSet(self.0.intersection(&other.0).cloned().collect())
    }
}

impl<'a> FromIterator<&'a str> for FeatureSet {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut s = FeatureSet::new();
        for f in iter {
            s.insert(f);
        }
        s
    }
}

/// The CPU as the launcher understands it: usable features, vector length, identity, and notes
/// explaining any feature the probe saw but refused to trust.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CpuFeatures {
    pub arch: Arch,
    pub model: Option<String>,
    pub mvendorid: Option<u64>,
    pub marchid: Option<u64>,
    pub features: FeatureSet,
    /// Vector register width in bits (RISC-V, read from `vlenb` only when V is usable).
    pub vlen: Option<u32>,
    /// Features declared through HARTLM_ASSUME_FEATURES rather than detected.
    pub assumed: FeatureSet,
    pub sources: Vec<String>,
    pub notes: Vec<String>,
}

impl CpuFeatures {
    pub fn has(&self, feature: &str) -> bool {
        self.features.contains(feature) || self.assumed.contains(feature)
    }
}

// ---------------------------------------------------------------------------------------------
// RISC-V

/// One `processor` block of `/proc/cpuinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuinfoCore {
    pub processor: Option<u32>,
    pub isa: Option<String>,
    pub mvendorid: Option<u64>,
    pub marchid: Option<u64>,
    pub mimpid: Option<u64>,
    pub model_name: Option<String>,
    pub uarch: Option<String>,
    /// `cpu-vector`, printed by T-Head vendor kernels (`0.7.1` = XTheadVector).
    pub cpu_vector: Option<String>,
}

fn parse_hex(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X"))?;
    u64::from_str_radix(digits, 16).ok()
}

/// Splits `/proc/cpuinfo` into processor blocks (blank-line separated `key : value` lines).
pub fn parse_cpuinfo(text: &str) -> Vec<CpuinfoCore> {
    let mut cores = Vec::new();
    let mut cur = CpuinfoCore::default();
    let mut seen_any = false;
    for line in text.lines().chain(std::iter::once("")) {
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() && seen_any {
                cores.push(std::mem::take(&mut cur));
                seen_any = false;
            }
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        seen_any = true;
        match key {
            "processor" => cur.processor = value.parse().ok(),
            "isa" => cur.isa = Some(value.to_string()),
            "mvendorid" => cur.mvendorid = parse_hex(value),
            "marchid" => cur.marchid = parse_hex(value),
            "mimpid" => cur.mimpid = parse_hex(value),
            "model name" => cur.model_name = Some(value.to_string()),
            "uarch" => cur.uarch = Some(value.to_string()),
            "cpu-vector" => cur.cpu_vector = Some(value.to_string()),
            _ => {}
        }
    }
    cores.retain(|c| c.processor.is_some() || c.isa.is_some());
    cores
}

/// Parses an ISA string such as `rv64imafdcv_zicbom_zvfh_xtheadvector` into extension names.
/// Single letters before the first `_` are separate extensions; the rest are `_`-separated.
pub fn parse_isa(isa: &str) -> Option<FeatureSet> {
    let isa = isa.trim().to_ascii_lowercase();
    let rest = isa.strip_prefix("rv64").or_else(|| isa.strip_prefix("rv32"))?;
    let mut set = FeatureSet::new();
    let mut parts = rest.split('_');
    let letters = parts.next().unwrap_or("");
    for (i, c) in letters.char_indices() {
        // Some kernels glue the first multi-letter extension to the letters (`rv64imafdczicsr`);
        // `s` and `u` stay single letters (old kernels print `rv64imafdcsu`).
        if matches!(c, 'z' | 'x') && i > 0 {
            set.insert(&letters[i..]);
            break;
        }
        if c.is_ascii_lowercase() {
            set.insert(&c.to_string());
        }
    }
    if set.contains("g") {
        for l in ["i", "m", "a", "f", "d"] {
            set.insert(l);
        }
    }
    for p in parts.filter(|p| !p.is_empty()) {
        set.insert(p);
    }
    Some(set)
}

/// riscv_hwprobe results (keys 0–4). `None` fields: the kernel did not know the key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hwprobe {
    pub mvendorid: Option<u64>,
    pub marchid: Option<u64>,
    pub mimpid: Option<u64>,
    pub base_ima: bool,
    pub ima_ext_0: Option<u64>,
}

/// RISCV_HWPROBE_KEY_IMA_EXT_0 bits (Linux uapi asm/hwprobe.h).
const HWPROBE_EXT_BITS: &[(u32, &str)] = &[
    (0, "fd"),
    (1, "c"),
    (2, "v"),
    (3, "zba"),
    (4, "zbb"),
    (5, "zbs"),
    (6, "zicboz"),
    (7, "zbc"),
    (27, "zfh"),
    (28, "zfhmin"),
    (29, "zihintntl"),
    (30, "zvfh"),
    (31, "zvfhmin"),
    (32, "zfa"),
    (33, "ztso"),
    (34, "zacas"),
    (35, "zicond"),
    (36, "zihintpause"),
    (37, "zve32x"),
    (38, "zve32f"),
    (39, "zve64x"),
    (40, "zve64f"),
    (41, "zve64d"),
];

/// What an upstream kernel that knows every extension in `cpuinfo` reports through hwprobe for
/// the processors listed there: extensions all of them have, identity fields where they agree.
/// Used for recorded systems (HARTLM_SYSROOT and tests); None without isa lines.
pub fn hwprobe_from_cpuinfo(cpuinfo: &str) -> Option<Hwprobe> {
    let cores = parse_cpuinfo(cpuinfo);
    let mut isa: Option<FeatureSet> = None;
    for set in cores.iter().filter_map(|c| c.isa.as_deref().and_then(parse_isa)) {
        isa = Some(match isa {
            None => set,
            Some(acc) => acc.intersect(&set),
        });
    }
    let isa = isa?;
    let mut bits = 0u64;
    for &(bit, name) in HWPROBE_EXT_BITS {
        let has = if name == "fd" { isa.contains("f") && isa.contains("d") } else { isa.contains(name) };
        if has {
            bits |= 1 << bit;
        }
    }
    let same = |f: fn(&CpuinfoCore) -> Option<u64>| {
        let first = f(&cores[0]);
        // The kernel answers -1 (here: no value) when cores disagree.
        cores.iter().all(|c| f(c) == first).then_some(first).flatten()
    };
    Some(Hwprobe {
        mvendorid: same(|c| c.mvendorid),
        marchid: same(|c| c.marchid),
        mimpid: same(|c| c.mimpid),
        base_ima: true,
        ima_ext_0: Some(bits),
    })
}

pub const MVENDORID_THEAD: u64 = 0x5b7;
pub const MVENDORID_SPACEMIT: u64 = 0x710;

/// Which CPUs of a chip carry a core type's IME matrix unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImeCores {
    None,
    All,
    /// Only CPUs `first..=last` (K1: the unit sits in cluster 0 alone, cores 0-3).
    Only {
        first: u32,
        last: u32,
    },
}

/// A SpacemiT core type known by its marchid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpacemitCore {
    pub marchid: u64,
    pub name: &'static str,
    /// Where the IME matrix unit (`xsmtvdot`) is.
    pub ime: ImeCores,
    /// An "AI core" (A-series): built around the matrix unit, slow on standard vector code.
    pub ai: bool,
    /// Generation threads past which tokens/s stops rising on the chip these cores ship in
    /// (memory-bound), from field measurements; `hartlm calibrate` measures it per machine.
    pub gen_threads_knee: Option<usize>,
    /// Threads reach these cores only through `/proc/set_ai_thread`: plain affinity masks naming
    /// them fail with EINVAL (measured on a K3's A100 cores, 2026-09).
    pub ai_thread_entry: bool,
}

impl SpacemitCore {
    /// Whether CPU `cpu` (None: a CPU of unknown number) has the IME unit.
    pub fn ime_on(&self, cpu: Option<u32>) -> bool {
        match self.ime {
            ImeCores::None => false,
            ImeCores::All => true,
            ImeCores::Only { first, last } => cpu.is_some_and(|c| (first..=last).contains(&c)),
        }
    }
}

pub const SPACEMIT_CORES: &[SpacemitCore] = &[
    // K1: eight X60 cores, the IME unit only on cluster 0 (SpacemiT's llama.cpp backend calls
    // those four its "A60" AI cores and runs IME only there).
    SpacemitCore {
        marchid: 0x8000000058000001,
        name: "X60",
        ime: ImeCores::Only { first: 0, last: 3 },
        ai: false,
        gen_threads_knee: None,
        ai_thread_entry: false,
    },
    SpacemitCore {
        marchid: 0x8000000041000001,
        name: "A60",
        ime: ImeCores::All,
        ai: true,
        gen_threads_knee: None,
        ai_thread_entry: false,
    },
    // K3 X100: RVA23-class with IME1 (the vendor code selects IME1 for X100 and A60). TinyLlama-1.1B
    // Q4_0 with llama.cpp: tg128 saturates at 4 threads.
    SpacemitCore {
        marchid: 0x8000000058000002,
        name: "X100",
        ime: ImeCores::All,
        ai: false,
        gen_threads_knee: Some(4),
        ai_thread_entry: false,
    },
    // K3 A100: IME2 (xsmtvdotii) at VLEN 1024, entered through /proc/set_ai_thread.
    SpacemitCore {
        marchid: 0x8000000041000002,
        name: "A100",
        ime: ImeCores::All,
        ai: true,
        gen_threads_knee: None,
        ai_thread_entry: true,
    },
];

pub fn spacemit_core(marchid: u64) -> Option<&'static SpacemitCore> {
    SPACEMIT_CORES.iter().find(|c| c.marchid == marchid)
}

/// Everything the RISC-V probe gathers, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RiscvProbe {
    pub hwprobe: Option<Hwprobe>,
    pub hwcap: u64,
    pub cpuinfo: Option<String>,
}

const HWCAP_V: u64 = 1 << (b'v' - b'a');

/// Vector extensions that are only usable when the kernel has enabled V state.
fn is_vector_ext(name: &str) -> bool {
    name == "v" || name.starts_with("zv") || name.starts_with("zve") || name.starts_with("zvl")
}

/// Interprets RISC-V probe data. The vector length is not known yet: the caller reads `vlenb`
/// (which traps without V) only if the result says V is usable, then calls [`with_vlenb`].
pub fn riscv_features(p: &RiscvProbe) -> CpuFeatures {
    let mut notes = Vec::new();
    let mut sources = Vec::new();
    let cores = p.cpuinfo.as_deref().map(parse_cpuinfo).unwrap_or_default();
    let first = cores.first().cloned().unwrap_or_default();

    // Extensions every core has: a process may be migrated to any of them.
    let mut isa: Option<FeatureSet> = None;
    for core in &cores {
        if let Some(set) = core.isa.as_deref().and_then(parse_isa) {
            isa = Some(match isa {
                None => set,
                Some(acc) => acc.intersect(&set),
            });
        }
    }
    if !cores.is_empty() {
        sources.push(format!("/proc/cpuinfo ({} cores)", cores.len()));
    }
    let isa_distinct: BTreeSet<&str> = cores.iter().filter_map(|c| c.isa.as_deref()).collect();
    if isa_distinct.len() > 1 {
        notes.push("cores differ in their isa lines; using the extensions common to all".into());
    }

    let mut features = isa.clone().unwrap_or_default();
    let hwcap_has = |c: u8| p.hwcap & (1 << (c - b'a')) != 0;
    if p.hwcap != 0 {
        sources.push("AT_HWCAP".into());
        for c in ["i", "m", "a", "f", "d", "c"] {
            if hwcap_has(c.as_bytes()[0]) {
                features.insert(c);
            }
        }
    }
    let mut hwprobe_v = None;
    if let Some(h) = p.hwprobe {
        sources.push("riscv_hwprobe".into());
        if h.base_ima {
            for l in ["i", "m", "a"] {
                features.insert(l);
            }
        }
        if let Some(bits) = h.ima_ext_0 {
            for &(bit, name) in HWPROBE_EXT_BITS {
                if bits & (1u64 << bit) != 0 {
                    if name == "fd" {
                        features.insert("f");
                        features.insert("d");
                    } else {
                        features.insert(name);
                    }
                }
            }
            hwprobe_v = Some(bits & (1 << 2) != 0);
        }
    }

    let mvendorid = p.hwprobe.and_then(|h| h.mvendorid).filter(|&v| v != 0).or(first.mvendorid);
    let marchid = p.hwprobe.and_then(|h| h.marchid).filter(|&v| v != 0).or(first.marchid);

    // V is usable only if the kernel enabled vector state for user space. riscv_hwprobe reports
    // RVV 1.0 only; AT_HWCAP's V bit is trusted when hwprobe is missing, except on T-Head cores,
    // whose vendor kernels set it for XTheadVector (RVV 0.7.1), which cannot run RVV 1.0 code.
    let isa_says_v = isa.as_ref().is_some_and(|s| s.contains("v"));
    let thead = mvendorid == Some(MVENDORID_THEAD)
        || features.contains("xtheadvector")
        || cores.iter().any(|c| c.cpu_vector.as_deref().is_some_and(|v| v.starts_with("0.")));
    let v_usable = match hwprobe_v {
        Some(v) => v,
        None if thead && (p.hwcap & HWCAP_V != 0 || isa_says_v) => {
            notes.push(
                "T-Head core without riscv_hwprobe: its 'v' is XTheadVector (RVV 0.7.1), not RVV 1.0".into(),
            );
            false
        }
        None => p.hwcap & HWCAP_V != 0,
    };
    if !v_usable {
        if isa_says_v && !thead {
            notes.push("cpuinfo lists 'v' but the kernel has not enabled vector state".into());
        }
        features.retain(|f| !is_vector_ext(f));
    } else {
        features.insert("v");
    }

    // SpacemiT's matrix extension is invisible to hwprobe: trust the isa line, or known marchids
    // when every core has one (the process may run on any core).
    // The unit may sit on some CPUs of a core type only (K1), so each core is judged by number.
    type CoreId = (Option<u64>, Option<u64>, Option<u32>);
    let core_ids: Vec<CoreId> = if cores.iter().all(|c| c.marchid.is_some()) {
        cores.iter().map(|c| (c.mvendorid, c.marchid, c.processor)).collect()
    } else {
        vec![(mvendorid, marchid, None)]
    };
    let spacemit: Vec<(&SpacemitCore, bool)> = core_ids
        .iter()
        .filter(|(v, _, _)| *v == Some(MVENDORID_SPACEMIT))
        .filter_map(|(_, a, cpu)| a.and_then(spacemit_core).map(|k| (k, k.ime_on(*cpu))))
        .collect();
    if !spacemit.is_empty() {
        if spacemit.len() == core_ids.len() && spacemit.iter().all(|c| c.1) && v_usable {
            features.insert("xsmtvdot");
        }
        let names: BTreeSet<String> = spacemit
            .iter()
            .map(|(k, _)| match k.ime {
                ImeCores::None => k.name.to_string(),
                ImeCores::All => format!("{} (IME)", k.name),
                ImeCores::Only { first, last } => format!("{} (IME on cpus {first}-{last})", k.name),
            })
            .collect();
        notes.push(format!("SpacemiT cores: {}", names.into_iter().collect::<Vec<_>>().join(", ")));
    }
    if features.contains("xsmtvdotii") {
        features.insert("xsmtvdot");
    }
    if !v_usable {
        features.remove("xsmtvdot");
    }

    CpuFeatures {
        arch: Arch::Riscv64,
        model: first.model_name.or(first.uarch),
        mvendorid,
        marchid,
        features,
        vlen: None,
        assumed: FeatureSet::new(),
        sources,
        notes,
    }
}

/// Completes RISC-V features with the `vlenb` CSR value (bytes).
pub fn with_vlenb(mut cpu: CpuFeatures, vlenb: u64) -> CpuFeatures {
    cpu.vlen = u32::try_from(vlenb.saturating_mul(8)).ok();
    cpu.sources.push("vlenb CSR".into());
    cpu
}

// ---------------------------------------------------------------------------------------------
// x86-64

/// The CPUID words the x86 probe reads, and XCR0 when the OS enabled XSAVE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct X86Cpuid {
    pub vendor: String,
    pub brand: String,
    pub leaf1_ecx: u32,
    pub leaf1_edx: u32,
    pub leaf7_ebx: u32,
    pub leaf7_ecx: u32,
    pub leaf7_1_eax: u32,
    pub ext1_ecx: u32,
    pub xcr0: Option<u64>,
}

/// Interprets CPUID: AVX-family features count only when XCR0 shows the OS saves their registers.
pub fn x86_features(c: &X86Cpuid) -> CpuFeatures {
    let bit = |w: u32, b: u32| w & (1 << b) != 0;
    let mut f = FeatureSet::new();
    let mut notes = Vec::new();
    for (w, b, name) in [
        (c.leaf1_ecx, 0, "sse3"),
        (c.leaf1_ecx, 9, "ssse3"),
        (c.leaf1_ecx, 13, "cmpxchg16b"),
        (c.leaf1_ecx, 19, "sse4.1"),
        (c.leaf1_ecx, 20, "sse4.2"),
        (c.leaf1_ecx, 22, "movbe"),
        (c.leaf1_ecx, 23, "popcnt"),
        (c.leaf1_ecx, 26, "xsave"),
        (c.leaf7_ebx, 3, "bmi1"),
        (c.leaf7_ebx, 8, "bmi2"),
        (c.ext1_ecx, 0, "lahfsahf"),
        (c.ext1_ecx, 5, "lzcnt"),
    ] {
        if bit(w, b) {
            f.insert(name);
        }
    }
    let xcr0 = if bit(c.leaf1_ecx, 27) { c.xcr0.unwrap_or(0) } else { 0 };
    let ymm_state = xcr0 & 0b110 == 0b110;
    let zmm_state = xcr0 & 0xe6 == 0xe6;
    let avx_family = [
        (c.leaf1_ecx, 28, "avx"),
        (c.leaf1_ecx, 12, "fma"),
        (c.leaf1_ecx, 29, "f16c"),
        (c.leaf7_ebx, 5, "avx2"),
        (c.leaf7_1_eax, 4, "avxvnni"),
    ];
    let avx512_family = [
        (c.leaf7_ebx, 16, "avx512f"),
        (c.leaf7_ebx, 17, "avx512dq"),
        (c.leaf7_ebx, 28, "avx512cd"),
        (c.leaf7_ebx, 30, "avx512bw"),
        (c.leaf7_ebx, 31, "avx512vl"),
        (c.leaf7_ecx, 11, "avx512vnni"),
    ];
    for (w, b, name) in avx_family {
        if bit(w, b) {
            if ymm_state {
                f.insert(name);
            } else {
                notes.push(format!("{name} present but the OS does not save YMM state"));
            }
        }
    }
    for (w, b, name) in avx512_family {
        if bit(w, b) {
            if zmm_state {
                f.insert(name);
            } else {
                notes.push(format!("{name} present but the OS does not save ZMM state"));
            }
        }
    }
    let model = [c.brand.trim(), c.vendor.trim()].into_iter().find(|s| !s.is_empty());
    CpuFeatures {
        arch: Arch::X86_64,
        model: model.map(str::to_string),
        mvendorid: None,
        marchid: None,
        features: f,
        vlen: None,
        assumed: FeatureSet::new(),
        sources: vec!["CPUID".into(), "XGETBV".into()],
        notes,
    }
}

#[cfg(test)]
#[path = "board_tests.rs"]
mod board_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_letters_and_extensions() {
        let s = parse_isa("rv64imafdcv_zicbom_zvfh_xtheadvector").unwrap();
        for f in ["i", "m", "a", "f", "d", "c", "v", "zicbom", "zvfh", "xtheadvector"] {
            assert!(s.contains(f), "{f}");
        }
        assert!(!s.contains("zfa"));
        assert_eq!(parse_isa("rv64gc").unwrap().iter().collect::<Vec<_>>().len(), 7);
        assert!(parse_isa("armv8").is_none());
        // The 'h' letter of `rv64imafdcvh` is the hypervisor extension, not part of 'v'.
        assert!(parse_isa("rv64imafdcvh_zfa").unwrap().contains("h"));
    }

    #[test]
    fn isa_with_glued_extension_keeps_letters_apart() {
        let s = parse_isa("rv64imafdczicsr_zifencei").unwrap();
        assert!(s.contains("c") && s.contains("zicsr") && s.contains("zifencei"));
        assert!(!s.contains("z"));
    }

    #[test]
    fn hwprobe_bits_decode() {
        let p = RiscvProbe {
            hwprobe: Some(Hwprobe {
                base_ima: true,
                ima_ext_0: Some((1 << 0) | (1 << 2) | (1 << 30) | (1 << 32) | (1 << 35)),
                ..Default::default()
            }),
            hwcap: 0,
            cpuinfo: None,
        };
        let f = riscv_features(&p).features;
        for n in ["i", "m", "a", "f", "d", "v", "zvfh", "zfa", "zicond"] {
            assert!(f.contains(n), "{n}");
        }
        assert!(!f.contains("zfh"));
    }

    #[test]
    fn hwprobe_without_v_overrides_cpuinfo() {
        let p = RiscvProbe {
            hwprobe: Some(Hwprobe { base_ima: true, ima_ext_0: Some(0b11), ..Default::default() }),
            hwcap: 0x112d,
            cpuinfo: Some("processor : 0\nisa : rv64imafdcv_zvfh_zfh\n".into()),
        };
        let cpu = riscv_features(&p);
        assert!(!cpu.has("v") && !cpu.has("zvfh"));
        assert!(cpu.has("zfh"), "scalar zfh needs no kernel state");
        assert!(cpu.notes.iter().any(|n| n.contains("not enabled vector state")));
    }

    #[test]
    fn x86_avx_needs_os_state() {
        let mut c = X86Cpuid {
            leaf1_ecx: (1 << 28) | (1 << 27) | (1 << 12),
            leaf7_ebx: (1 << 5) | (1 << 16),
            xcr0: Some(0b111),
            ..Default::default()
        };
        let f = x86_features(&c);
        assert!(f.has("avx") && f.has("avx2") && f.has("fma"));
        assert!(!f.has("avx512f"), "XCR0 lacks opmask/ZMM state");
        c.xcr0 = Some(0b11);
        let f = x86_features(&c);
        assert!(!f.has("avx") && !f.has("avx2"));
        c.xcr0 = Some(0xe7);
        assert!(x86_features(&c).has("avx512f"));
        c.leaf1_ecx &= !(1 << 27); // no OSXSAVE: XCR0 cannot be trusted
        assert!(!x86_features(&c).has("avx"));
    }
}
