//! Reads the CPU: riscv_hwprobe per CPU set, AT_HWCAP, /proc/cpuinfo, the affinity mask and vlenb
//! on a thread pinned to each core (RISC-V); CPUID and XGETBV (x86-64); or a recorded system
//! (HARTLM_SYSROOT). Interpretation lives in `cpu` and `cluster`; this module only gathers data.

use std::path::Path;

use crate::cluster::{self, Cluster, ClusterProbe, CoreKind, CoreSet};
use crate::cpu::{self, CpuFeatures};

/// Comma-separated features to assume present (emulators cannot express some vendor
/// extensions). Wrong values make the engine fault; it is meant for tests under qemu.
pub const ASSUME_ENV: &str = "HARTLM_ASSUME_FEATURES";

/// Restricts the cores hartlm considers (a CPU list such as `0-7,12`).
pub const CORES_ENV: &str = "HARTLM_CORES";
/// Points the probe at a recorded system instead of this machine (tests): `<dir>/proc/cpuinfo`,
/// the `Cpus_allowed_list` of `<dir>/proc/self/status`, and `<dir>/hartlm/vlenb` (lines
/// `<cpu list> <vlenb>`) standing in for reading the CSR on each core. Threads are not pinned.
pub const SYSROOT_ENV: &str = "HARTLM_SYSROOT";

fn apply_assumed(cpu: &mut CpuFeatures) {
    if let Ok(list) = std::env::var(ASSUME_ENV) {
        cpu.assumed = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    }
}

/// The cores this process may use, grouped into clusters of identical capabilities.
pub struct System {
    pub clusters: Vec<Cluster>,
    /// From HARTLM_SYSROOT: nothing here describes this machine, so nothing gets pinned.
    pub recorded: bool,
    /// The `/proc/cpuinfo` text read (the recorded one under HARTLM_SYSROOT; empty if none).
    pub cpuinfo: String,
}

/// Probes every core this process may use (narrowed by HARTLM_CORES), reading `vlenb` on each;
/// or reads a recorded system from HARTLM_SYSROOT.
pub fn system() -> Result<System, String> {
    system_within(std::env::var(CORES_ENV).ok().filter(|s| !s.is_empty()))
}

/// [`system`] without HARTLM_CORES: every core the process's affinity allows (where a thread
/// that could not enter its placement still runs).
pub fn whole_system() -> Result<System, String> {
    system_within(None)
}

/// This machine's own processors, even under HARTLM_SYSROOT: what a loaded library really runs on.
pub fn live_system() -> Result<System, String> {
    probe_within(None, None)
}

fn system_within(requested: Option<String>) -> Result<System, String> {
    probe_within(std::env::var_os(SYSROOT_ENV).filter(|r| !r.is_empty()).as_deref().map(Path::new), requested)
}

/// `/proc/cpuinfo` holds a few KiB per processor: 64 MiB is far past any real machine's.
const MAX_CPUINFO_BYTES: u64 = 64 << 20;

fn probe_within(sysroot: Option<&Path>, requested: Option<String>) -> Result<System, String> {
    let (mut clusters, recorded, cpuinfo) = match sysroot {
        Some(root) => {
            let cpuinfo = hartlm_abi::files::read_text_capped(&root.join("proc/cpuinfo"), MAX_CPUINFO_BYTES)
                .map_err(|e| format!("{SYSROOT_ENV}: proc/cpuinfo {e}"))?;
            (recorded_clusters(root, &cpuinfo, requested.as_deref())?, true, cpuinfo)
        }
        None => {
            // procfs files report size 0 but read normally; they are never FIFOs.
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            (live_clusters(&cpuinfo, requested.as_deref())?, false, cpuinfo)
        }
    };
    for c in &mut clusters {
        apply_assumed(&mut c.cpu);
    }
    Ok(System { clusters, recorded, cpuinfo })
}

/// A recorded RISC-V system (see [`SYSROOT_ENV`]) whose `proc/cpuinfo` reads `cpuinfo`.
pub fn recorded_clusters(
    root: &Path,
    cpuinfo: &str,
    requested: Option<&str>,
) -> Result<Vec<Cluster>, String> {
    let read = |rel: &str| hartlm_abi::files::read_text_capped(&root.join(rel), MAX_CPUINFO_BYTES);
    let listed: CoreSet = cpu::parse_cpuinfo(cpuinfo).iter().filter_map(|c| c.processor).collect();
    let allowed = read("proc/self/status").ok().and_then(|s| cluster::status_allowed(&s)).unwrap_or(listed);
    let allowed = cluster::restrict(&allowed, requested)?;
    let hook = match read("hartlm/vlenb") {
        Ok(text) => cluster::parse_vlenb_hook(&text).map_err(|e| format!("{SYSROOT_ENV}: {e}"))?,
        Err(_) => vec![],
    };
    let recorded = cluster::RecordedCpuinfo::parse(cpuinfo);
    let hwprobe = |set: &CoreSet| recorded.hwprobe(set);
    let vlenb = |core: u32| hook.iter().find(|(set, _)| set.contains(core)).map(|h| h.1);
    const HWCAP_IMAFDC: u64 = 0x112d;
    let probe =
        ClusterProbe { cpuinfo, allowed: &allowed, hwcap: HWCAP_IMAFDC, hwprobe: &hwprobe, vlenb: &vlenb };
    Ok(cluster::riscv_clusters(&probe))
}

/// The process's allowed CPUs (sched_getaffinity), if the kernel says.
fn affinity() -> Option<CoreSet> {
    let cores: CoreSet = hartlm_abi::affinity::current().into_iter().collect();
    (!cores.is_empty()).then_some(cores)
}

/// Pins the calling thread (and the threads it creates later) to `cores`.
pub fn pin_process(cores: &CoreSet) -> Result<(), String> {
    hartlm_abi::affinity::set(cores.iter()).map_err(|e| e.to_string())
}

/// One cluster holding every allowed core, described by the whole-process probe (x86-64, or
/// RISC-V systems whose cpuinfo lists no processors).
fn single_cluster(cores: CoreSet) -> Vec<Cluster> {
    let cpu = probe_hardware();
    let name = if cpu.arch == crate::tier::Arch::X86_64 { "cpu".to_string() } else { "all".to_string() };
    vec![Cluster { name, cores, kind: CoreKind::General, cpu }]
}

#[cfg(target_arch = "riscv64")]
fn live_clusters(cpuinfo: &str, requested: Option<&str>) -> Result<Vec<Cluster>, String> {
    let listed: CoreSet = cpu::parse_cpuinfo(cpuinfo).iter().filter_map(|c| c.processor).collect();
    let allowed = affinity().unwrap_or(listed);
    let allowed = cluster::restrict(&allowed, requested)?;
    let probe = ClusterProbe {
        cpuinfo,
        allowed: &allowed,
        // SAFETY: getauxval has no preconditions; it returns 0 for an absent entry.
        hwcap: unsafe { libc::getauxval(libc::AT_HWCAP) },
        hwprobe: &|set: &CoreSet| riscv::hwprobe_on(Some(set)).or_else(|| riscv::hwprobe_on(None)),
        vlenb: &riscv::vlenb_on,
    };
    let clusters = cluster::riscv_clusters(&probe);
    Ok(if clusters.is_empty() { single_cluster(allowed) } else { clusters })
}

#[cfg(not(target_arch = "riscv64"))]
fn live_clusters(_cpuinfo: &str, requested: Option<&str>) -> Result<Vec<Cluster>, String> {
    let allowed = affinity().unwrap_or_else(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        (0..n).collect()
    });
    Ok(single_cluster(cluster::restrict(&allowed, requested)?))
}

#[cfg(target_arch = "riscv64")]
fn probe_hardware() -> CpuFeatures {
    let data = cpu::RiscvProbe {
        hwprobe: riscv::hwprobe_on(None),
        // SAFETY: getauxval has no preconditions; it returns 0 for an absent entry.
        hwcap: unsafe { libc::getauxval(libc::AT_HWCAP) },
        cpuinfo: std::fs::read_to_string("/proc/cpuinfo").ok(),
    };
    let features = cpu::riscv_features(&data);
    if features.has("v") {
        // SAFETY: V is usable (kernel-enabled vector state), so the vlenb CSR read cannot trap.
        let vlenb = unsafe { riscv::read_vlenb() };
        cpu::with_vlenb(features, vlenb)
    } else {
        features
    }
}

#[cfg(target_arch = "riscv64")]
mod riscv {
    use crate::cluster::CoreSet;
    use crate::cpu::Hwprobe;

    #[repr(C)]
    struct Pair {
        key: i64,
        value: u64,
    }

    const SYS_RISCV_HWPROBE: libc::c_long = 258;

    /// What every CPU of `cores` (None: every online CPU) has, as the kernel reports it.
    pub fn hwprobe_on(cores: Option<&CoreSet>) -> Option<Hwprobe> {
        let mut pairs: Vec<Pair> = (0..5).map(|key| Pair { key, value: 0 }).collect();
        let mut set = cores.map(|c| hartlm_abi::affinity::cpu_set(c.iter()));
        let (size, ptr) = match &mut set {
            Some(set) => (size_of::<libc::cpu_set_t>(), (set as *mut libc::cpu_set_t).cast::<libc::c_void>()),
            None => (0, std::ptr::null_mut()),
        };
        // SAFETY: the kernel writes `pairs.len()` elements of the uapi `struct riscv_hwprobe`
        // layout, which `Pair` matches, and reads `size` bytes of the CPU set (0 with a null set
        // means "all online CPUs").
        let rc =
            unsafe { libc::syscall(SYS_RISCV_HWPROBE, pairs.as_mut_ptr(), pairs.len(), size, ptr, 0u32) };
        if rc != 0 {
            return None;
        }
        let get = |k: usize| (pairs[k].key != -1).then_some(pairs[k].value);
        Some(Hwprobe {
            mvendorid: get(0),
            marchid: get(1),
            mimpid: get(2),
            base_ima: get(3).is_some_and(|v| v & 1 != 0),
            ima_ext_0: get(4),
        })
    }

    /// `vlenb` as core `cpu` reports it, read by a short-lived thread pinned there. None if the
    /// thread cannot be pinned (the value could come from another core) or spawned. Only called
    /// for cores whose hwprobe answer says V is enabled.
    pub fn vlenb_on(cpu: u32) -> Option<u64> {
        let reader = std::thread::Builder::new().name("hartlm-vlenb".into()).spawn(move || {
            super::pin_process(&std::iter::once(cpu).collect()).ok()?;
            // SAFETY: the caller established that V is enabled on this core, where this thread
            // now runs, so reading vlenb cannot trap.
            Some(unsafe { read_vlenb() })
        });
        reader.ok()?.join().ok().flatten()
    }

    /// # Safety
    /// The CPU must have V enabled by the kernel; otherwise the CSR read raises SIGILL.
    pub unsafe fn read_vlenb() -> u64 {
        let vlenb: u64;
        // SAFETY: guaranteed by the caller; 0xc22 is vlenb, a read-only unprivileged CSR.
        unsafe { core::arch::asm!("csrr {0}, 0xc22", out(reg) vlenb, options(nomem, nostack)) };
        vlenb
    }
}

#[cfg(target_arch = "x86_64")]
fn probe_hardware() -> CpuFeatures {
    use core::arch::x86_64::__cpuid_count;
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU; leaves above the maximum return zeros or
    // repeat the highest leaf, so leaves are guarded by the reported maxima below.
    let (max, max_ext) = unsafe { (__cpuid_count(0, 0).eax, __cpuid_count(0x8000_0000, 0).eax) };
    #[allow(unused_unsafe)]
    // SAFETY: as above; each leaf is read only when the CPU reports it.
    let leaf = |l: u32, s: u32| unsafe {
        if (l < 0x8000_0000 && l <= max) || (l >= 0x8000_0000 && l <= max_ext) {
            __cpuid_count(l, s)
        } else {
            core::arch::x86_64::CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 }
        }
    };
    let l0 = leaf(0, 0);
    let vendor: Vec<u8> = [l0.ebx, l0.edx, l0.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
    let brand: Vec<u8> = (0x8000_0002..=0x8000_0004u32)
        .map(|l| leaf(l, 0))
        .flat_map(|r| [r.eax, r.ebx, r.ecx, r.edx])
        .flat_map(|r| r.to_le_bytes())
        .filter(|&b| b != 0)
        .collect();
    let l1 = leaf(1, 0);
    let l7 = leaf(7, 0);
    let l7_1 = leaf(7, 1);
    let osxsave = l1.ecx & (1 << 27) != 0;
    let xcr0 = osxsave.then(|| {
        let (lo, hi): (u32, u32);
        // SAFETY: OSXSAVE is set, so XGETBV is enabled; XCR0 (ecx = 0) is always readable.
        unsafe {
            core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
                options(nomem, nostack))
        };
        (u64::from(hi) << 32) | u64::from(lo)
    });
    cpu::x86_features(&cpu::X86Cpuid {
        vendor: String::from_utf8_lossy(&vendor).into_owned(),
        brand: String::from_utf8_lossy(&brand).trim().to_string(),
        leaf1_ecx: l1.ecx,
        leaf1_edx: l1.edx,
        leaf7_ebx: l7.ebx,
        leaf7_ecx: l7.ecx,
        leaf7_1_eax: if l7.eax >= 1 { l7_1.eax } else { 0 },
        ext1_ecx: leaf(0x8000_0001, 0).ecx,
        xcr0,
    })
}

#[cfg(not(any(target_arch = "riscv64", target_arch = "x86_64")))]
fn probe_hardware() -> CpuFeatures {
    compile_error!("hartlm's launcher supports riscv64 and x86_64 only");
}
