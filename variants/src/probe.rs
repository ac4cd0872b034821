//! Reads the real CPU: riscv_hwprobe, AT_HWCAP, /proc/cpuinfo and the vlenb CSR on RISC-V;
//! CPUID and XGETBV on x86-64. Interpretation lives in `cpu`; this module only gathers data.

use crate::cpu::{self, CpuFeatures};

/// Comma-separated features to assume present (emulators cannot express some vendor
/// extensions). Wrong values make the engine fault; it is meant for tests under qemu.
pub const ASSUME_ENV: &str = "HARTLM_ASSUME_FEATURES";

/// Probes the CPU this process runs on, adding any HARTLM_ASSUME_FEATURES.
pub fn probe() -> CpuFeatures {
    let mut cpu = probe_hardware();
    if let Ok(list) = std::env::var(ASSUME_ENV) {
        cpu.assumed = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    }
    cpu
}

#[cfg(target_arch = "riscv64")]
fn probe_hardware() -> CpuFeatures {
    let data = cpu::RiscvProbe {
        hwprobe: riscv::hwprobe(),
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
    use crate::cpu::Hwprobe;

    #[repr(C)]
    struct Pair {
        key: i64,
        value: u64,
    }

    const SYS_RISCV_HWPROBE: libc::c_long = 258;

    pub fn hwprobe() -> Option<Hwprobe> {
        let mut pairs: Vec<Pair> = (0..5).map(|key| Pair { key, value: 0 }).collect();
        // SAFETY: the kernel writes `pairs.len()` elements of the uapi `struct riscv_hwprobe`
        // layout, which `Pair` matches; cpusetsize 0 with a null set means "all online CPUs".
        let rc = unsafe {
            libc::syscall(
                SYS_RISCV_HWPROBE,
                pairs.as_mut_ptr(),
                pairs.len(),
                0usize,
                std::ptr::null_mut::<libc::c_void>(),
                0u32,
            )
        };
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
