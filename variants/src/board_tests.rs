// Feature detection and tier choice on /proc/cpuinfo texts recorded from (or reconstructed for)
// real boards, with the hwprobe/HWCAP answers their kernels give. See tests/cpuinfo/README.md.

use super::*;
use crate::report;
use crate::select::{Eligibility, evaluate, plan_load};
use crate::tier::{self, Arch};

const HWCAP_GC: u64 = 0x112d; // i m a f d c
const HWCAP_GCV: u64 = HWCAP_GC | HWCAP_V;

/// What an upstream kernel that knows every extension in `cpuinfo` reports through hwprobe.
fn hwprobe_for(cpuinfo: &str) -> Hwprobe {
    let cores = parse_cpuinfo(cpuinfo);
    let isa = parse_isa(cores[0].isa.as_deref().unwrap()).unwrap();
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
    Hwprobe {
        mvendorid: same(|c| c.mvendorid),
        marchid: same(|c| c.marchid),
        mimpid: same(|c| c.mimpid),
        base_ima: true,
        ima_ext_0: Some(bits),
    }
}

fn board(file: &str) -> &'static str {
    match file {
        "spacemit-k1.txt" => include_str!("../tests/cpuinfo/spacemit-k1.txt"),
        "spacemit-k3.txt" => include_str!("../tests/cpuinfo/spacemit-k3.txt"),
        "spacemit-k3-x100-cluster.txt" => {
            include_str!("../tests/cpuinfo/spacemit-k3-x100-cluster.txt")
        }
        "spacemit-k3-a100-cluster.txt" => {
            include_str!("../tests/cpuinfo/spacemit-k3-a100-cluster.txt")
        }
        "sifive-u74-jh7110.txt" => include_str!("../tests/cpuinfo/sifive-u74-jh7110.txt"),
        "sifive-p550-eic7700.txt" => include_str!("../tests/cpuinfo/sifive-p550-eic7700.txt"),
        "thead-c910-vendor-5.10.txt" => include_str!("../tests/cpuinfo/thead-c910-vendor-5.10.txt"),
        "thead-c910-mainline.txt" => include_str!("../tests/cpuinfo/thead-c910-mainline.txt"),
        "qemu-sifive-u54.txt" => include_str!("../tests/cpuinfo/qemu-sifive-u54.txt"),
        "qemu-k1-like.txt" => include_str!("../tests/cpuinfo/qemu-k1-like.txt"),
        "qemu-rva23u64.txt" => include_str!("../tests/cpuinfo/qemu-rva23u64.txt"),
        "qemu-max.txt" => include_str!("../tests/cpuinfo/qemu-max.txt"),
        other => panic!("no fixture {other}"),
    }
}

enum Kernel {
    /// Linux >= 6.4 with riscv_hwprobe.
    Upstream,
    /// No riscv_hwprobe; HWCAP as given.
    Old(u64),
}

fn detect(file: &str, kernel: Kernel, vlenb: u64) -> CpuFeatures {
    let text = board(file);
    let probe = match kernel {
        Kernel::Upstream => {
            let h = hwprobe_for(text);
            let v = h.ima_ext_0.unwrap() & (1 << 2) != 0;
            RiscvProbe {
                hwprobe: Some(h),
                hwcap: if v { HWCAP_GCV } else { HWCAP_GC },
                cpuinfo: Some(text.into()),
            }
        }
        Kernel::Old(hwcap) => RiscvProbe { hwprobe: None, hwcap, cpuinfo: Some(text.into()) },
    };
    let cpu = riscv_features(&probe);
    if cpu.has("v") { with_vlenb(cpu, vlenb) } else { cpu }
}

fn chosen(cpu: &CpuFeatures) -> &'static str {
    plan_load(&tier::for_arch(Arch::Riscv64), cpu, None, |_| true).unwrap()[0].id.0
}

fn missing(cpu: &CpuFeatures, id: &str) -> Vec<String> {
    match evaluate(tier::find(id).unwrap(), cpu) {
        Eligibility::Eligible => vec![],
        Eligibility::NotEligible { missing } => missing,
    }
}

#[test]
fn spacemit_k1_gets_its_ime_tier_and_never_the_k3_tier() {
    for kernel in [Kernel::Upstream, Kernel::Old(HWCAP_GCV)] {
        let cpu = detect("spacemit-k1.txt", kernel, 32);
        assert_eq!(cpu.vlen, Some(256));
        assert!(cpu.has("zvfh") && cpu.has("xsmtvdot"), "{cpu:?}");
        assert_eq!(chosen(&cpu), "spacemit_ime");
        // Real K1 kernels list zicond (6.6+); zfa and zicbop are absent.
        assert_eq!(missing(&cpu, "rv64gcv_zvfh_zfa_zicond_zicbop"), ["zfa", "zicbop"]);
    }
}

#[test]
fn spacemit_k3_whole_chip_uses_the_common_features_without_ime() {
    let cpu = detect("spacemit-k3.txt", Kernel::Upstream, 32);
    assert!(!cpu.has("xsmtvdot"), "X100 cores have no IME, so the chip as a whole has none");
    assert_eq!(chosen(&cpu), "rv64gcv_zvfh_zfa_zicond_zicbop");
    assert!(cpu.notes.iter().any(|n| n.contains("A100 (IME)") && n.contains("X100")), "{:?}", cpu.notes);
}

#[test]
fn spacemit_k3_clusters() {
    let x100 = detect("spacemit-k3-x100-cluster.txt", Kernel::Upstream, 32);
    assert_eq!(chosen(&x100), "rv64gcv_zvfh_zfa_zicond_zicbop");
    assert_eq!(missing(&x100, "spacemit_ime"), ["xsmtvdot"]);
    let a100 = detect("spacemit-k3-a100-cluster.txt", Kernel::Upstream, 128);
    assert_eq!(a100.vlen, Some(1024));
    assert_eq!(chosen(&a100), "spacemit_ime");
}

#[test]
fn sifive_u74_and_p550_are_rv64gc_without_zfh() {
    for file in ["sifive-u74-jh7110.txt", "sifive-p550-eic7700.txt"] {
        let cpu = detect(file, Kernel::Upstream, 0);
        assert_eq!(cpu.vlen, None);
        assert!(!cpu.has("zfh"), "P550 SIGILLs on zfh: {file}");
        assert!(cpu.has("zba") && cpu.has("zbb"));
        assert_eq!(chosen(&cpu), "rv64gc");
        assert_eq!(missing(&cpu, "rv64gcv_zvfh"), ["v", "zfh", "zvfh"]);
    }
    // Old kernels without hwprobe print a bare isa line.
    let cpu = detect("sifive-u74-jh7110.txt", Kernel::Old(HWCAP_GC), 0);
    assert_eq!(chosen(&cpu), "rv64gc");
}

#[test]
fn thead_c910_xtheadvector_is_not_rvv_1_0() {
    // The vendor 5.10 kernel prints `rv64imafdcvsu` and sets HWCAP V for RVV 0.7.1.
    let vendor = detect("thead-c910-vendor-5.10.txt", Kernel::Old(HWCAP_GCV), 16);
    assert!(!vendor.has("v"), "{vendor:?}");
    assert_eq!(vendor.vlen, None, "vlenb must not be read without RVV 1.0");
    assert!(vendor.notes.iter().any(|n| n.contains("XTheadVector")));
    assert_eq!(chosen(&vendor), "rv64gc");
    // Mainline kernels name it xtheadvector and hwprobe reports no V.
    let mainline = detect("thead-c910-mainline.txt", Kernel::Upstream, 16);
    assert!(mainline.has("xtheadvector") && !mainline.has("v"));
    assert_eq!(chosen(&mainline), "rv64gc");
}

#[test]
fn qemu_guest_views() {
    let u54 = detect("qemu-sifive-u54.txt", Kernel::Upstream, 0);
    assert_eq!(chosen(&u54), "rv64gc");
    let k1 = detect("qemu-k1-like.txt", Kernel::Upstream, 32);
    assert_eq!(chosen(&k1), "rv64gcv_zvfh");
    assert_eq!(missing(&k1, "rv64gcv_zvfh_zfa_zicond_zicbop"), ["zfa", "zicond", "zicbop"]);
    let rva23 = detect("qemu-rva23u64.txt", Kernel::Upstream, 16);
    assert!(rva23.has("zvfhmin") && !rva23.has("zvfh"));
    assert_eq!(chosen(&rva23), "rv64gcv");
    let max = detect("qemu-max.txt", Kernel::Upstream, 16);
    assert_eq!(chosen(&max), "rv64gcv_zvfh_zfa_zicond_zicbop");
}

#[test]
fn report_explains_the_choice_and_the_ime_note() {
    let cpu = detect("spacemit-k1.txt", Kernel::Upstream, 32);
    let tiers = tier::for_arch(Arch::Riscv64);
    let r = report::build(&cpu, &tiers, None, |t| t.id.0 != "rv64gcv_zvfh");
    assert_eq!(r.selected.as_deref(), Some("spacemit_ime"));
    assert!(r.reason.contains("IME matrix kernels are not written yet"), "{}", r.reason);
    let text = report::render_text(&r);
    assert!(text.contains("missing: zfa, zicbop"), "{text}");
    assert!(text.contains("library lib/libhartlm-rv64gcv_zvfh.so not installed"), "{text}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["marchid"], "0x8000000058000001");
    assert_eq!(json["tiers"][0]["status"], "selected");
    assert_eq!(json["vlen"], 256);
    let forced = report::build(&cpu, &tiers, Some("rv64gcv_zvfh_zfa_zicond_zicbop"), |_| true);
    assert_eq!(forced.selected, None);
    assert!(forced.reason.contains("missing zfa, zicbop"), "{}", forced.reason);
}
