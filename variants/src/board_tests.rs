// Feature detection and tier choice on /proc/cpuinfo texts recorded from (or reconstructed for)
// real boards, with the hwprobe/HWCAP answers their kernels give. See tests/cpuinfo/README.md.

use super::*;
use crate::calibration::Cached;
use crate::report;
use crate::select::{Eligibility, evaluate, plan_load};
use crate::tier::{self, Arch, Tier};

const HWCAP_GC: u64 = 0x112d; // i m a f d c
const HWCAP_GCV: u64 = HWCAP_GC | HWCAP_V;

fn hwprobe_for(cpuinfo: &str) -> Hwprobe {
    hwprobe_from_cpuinfo(cpuinfo).expect("recorded boards list isa lines")
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

/// The K1's IME unit is on cores 0-3 only: the chip as a whole (a process free to migrate to
/// any core) has no IME, and gets the best standard tier.
#[test]
fn spacemit_k1_whole_chip_has_no_ime_and_never_the_k3_tier() {
    for kernel in [Kernel::Upstream, Kernel::Old(HWCAP_GCV)] {
        let cpu = detect("spacemit-k1.txt", kernel, 32);
        assert_eq!(cpu.vlen, Some(256));
        assert!(cpu.has("zvfh") && !cpu.has("xsmtvdot"), "{cpu:?}");
        assert_eq!(chosen(&cpu), "rv64gcv_zvfh");
        assert!(cpu.notes.iter().any(|n| n.contains("X60 (IME on cpus 0-3)")), "{:?}", cpu.notes);
        // Real K1 kernels list zicond (6.6+); zfa and zicbop are absent.
        assert_eq!(missing(&cpu, "rv64gcv_zvfh_zfa_zicond_zicbop"), ["zfa", "zicbop"]);
    }
}

/// K3: X100 (IME1) and A100 (IME2) both carry the unit, so the whole chip has it; its tiles at
/// VLEN 256 are the X100's.
#[test]
fn spacemit_k3_whole_chip_has_ime_on_every_core() {
    let cpu = detect("spacemit-k3.txt", Kernel::Upstream, 32);
    assert!(cpu.has("xsmtvdot"), "X100 and A100 both carry the IME unit");
    assert_eq!(chosen(&cpu), "spacemit_ime_rva23");
    assert!(
        cpu.notes.iter().any(|n| n.contains("A100 (IME)") && n.contains("X100 (IME)")),
        "{:?}",
        cpu.notes
    );
}

#[test]
fn spacemit_k3_clusters() {
    let x100 = detect("spacemit-k3-x100-cluster.txt", Kernel::Upstream, 32);
    assert_eq!(chosen(&x100), "spacemit_ime_rva23");
    assert!(tier::find("spacemit_ime_rva23").unwrap().matrix_runs_on(&x100));
    let a100 = detect("spacemit-k3-a100-cluster.txt", Kernel::Upstream, 128);
    assert_eq!(a100.vlen, Some(1024));
    assert_eq!(chosen(&a100), "spacemit_ime_rva23");
    // The IME1 tiles are written for VLEN 256: on A100 the tier runs its vector kernels.
    assert!(!tier::find("spacemit_ime_rva23").unwrap().matrix_runs_on(&a100));
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
    let clusters = clusters_of("spacemit-k1.txt", "0-7", |_| 32);
    let tiers = tier::for_arch(Arch::Riscv64);
    let r = report::build(&clusters, &tiers, (None, None), |t| t.id.0 != "rv64gcv_zvfh", &Cached::Missing);
    assert_eq!(r.selected.as_deref(), Some("spacemit_ime"));
    assert!(r.reason.contains("X60-ime has the xsmtvdot matrix unit"), "{}", r.reason);
    let text = report::render_text(&r);
    assert!(text.contains("missing: zfa, zicbop"), "{text}");
    assert!(text.contains("library lib/libhartlm-rv64gcv_zvfh.so not installed"), "{text}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["marchid"], "0x8000000058000001");
    assert_eq!(json["tiers"][1]["status"], "selected");
    assert_eq!(json["vlen"], 256);
    let forced = report::build(
        &clusters,
        &tiers,
        (Some("rv64gcv_zvfh_zfa_zicond_zicbop"), None),
        |_| true,
        &Cached::Missing,
    );
    assert_eq!(forced.selected, None);
    assert!(forced.reason.contains("missing zfa, zicbop"), "{}", forced.reason);
}

// ---------------------------------------------------------------------------------------------
// Clusters and placement on heterogeneous chips.

use crate::cluster::{Cluster, ClusterProbe, CoreKind, CoreSet, recorded_hwprobe, riscv_clusters};
use crate::placement::{Placement, plan_placements};

/// Clusters of a recorded board under an upstream kernel: hwprobe answers for the CPUs asked
/// about, and `vlenb(cpu)` stands in for reading the CSR on that core.
fn clusters_of(file: &str, allowed: &str, vlenb: impl Fn(u32) -> u64) -> Vec<Cluster> {
    let text = board(file);
    let hwprobe = |cores: &CoreSet| recorded_hwprobe(text, cores);
    let vlenb = |cpu: u32| Some(vlenb(cpu));
    let allowed = CoreSet::parse(allowed).unwrap();
    riscv_clusters(&ClusterProbe {
        cpuinfo: text,
        allowed: &allowed,
        hwcap: HWCAP_GCV,
        hwprobe: &hwprobe,
        vlenb: &vlenb,
    })
}

/// K3: X100 cores 0-7 at VLEN 256, A100 cores 8-15 at VLEN 1024.
fn k3(allowed: &str) -> Vec<Cluster> {
    clusters_of("spacemit-k3.txt", allowed, |cpu| if cpu < 8 { 32 } else { 128 })
}

fn place<'t>(tiers: &[&'t Tier], clusters: &[Cluster], cluster: Option<&str>) -> Placement<'t> {
    plan_placements(tiers, clusters, None, cluster, |_| true).unwrap().remove(0)
}

#[test]
fn k3_has_two_clusters_with_their_own_vlen_and_kind() {
    let c = k3("0-15");
    let summary: Vec<(&str, String, Option<u32>, CoreKind)> =
        c.iter().map(|c| (c.name.as_str(), c.cores.to_string(), c.cpu.vlen, c.kind)).collect();
    assert_eq!(
        summary,
        [
            ("X100", "0-7".into(), Some(256), CoreKind::General),
            ("A100", "8-15".into(), Some(1024), CoreKind::Ai),
        ]
    );
    assert!(c[0].cpu.has("xsmtvdot") && c[1].cpu.has("xsmtvdot"));
}

#[test]
fn k3_runs_the_rva23_ime_tier_on_the_x100_cores() {
    let tiers = tier::for_arch(Arch::Riscv64);
    let p = place(&tiers, &k3("0-15"), None);
    assert_eq!((p.tier.id.0, p.cluster.as_str()), ("spacemit_ime_rva23", "X100"));
    assert!(p.reason.contains("X100 has the xsmtvdot matrix unit"), "{}", p.reason);
    assert_eq!((p.cores.to_string(), p.threads, p.vlen), ("0-7".into(), 8, Some(256)));
    assert!(p.reason.contains("preferred over AI cores"), "{}", p.reason);
    // Generation is memory-bound: K3 stops scaling at four threads (field measurement).
    assert_eq!(p.gen_threads, 4);
    assert!(p.reason.contains("generation uses 4 threads"), "{}", p.reason);
    // Restricted to three X100 cores, the knee is above what is allowed.
    let p = place(&tiers, &k3("0-2,8-15"), None);
    assert_eq!((p.cluster.as_str(), p.threads, p.gen_threads), ("X100", 3, 3));
}

/// Matrix kernels count only at the VLEN they were written for: on A100 (1024) the IME1 tiers
/// are standard vector code on AI cores. A tier with VLEN 1024 tiles (IME2) would be placed there
/// as a matrix tier, still behind IME1 on the general-purpose X100 cores unless a calibration
/// measures otherwise.
#[test]
fn k3_runs_matrix_kernels_on_the_a100_cores_only_at_their_vlen() {
    let real = tier::for_arch(Arch::Riscv64);
    let p = place(&real, &k3("8-15"), None);
    assert_eq!((p.tier.id.0, p.cluster.as_str()), ("spacemit_ime_rva23", "A100"));
    assert!(p.reason.contains("only AI cores are available"), "{}", p.reason);
    let mut ime2 = tier::find("spacemit_ime_rva23").unwrap().clone();
    ime2.matrix_vlen = &[1024];
    let mut tiers = real.clone();
    tiers.retain(|t| t.id.0 != "spacemit_ime_rva23");
    tiers.insert(0, &ime2);
    let p = place(&tiers, &k3("8-15"), None);
    assert_eq!((p.cluster.as_str(), p.vlen), ("A100", Some(1024)));
    assert!(p.reason.contains("A100 has the xsmtvdot matrix unit"), "{}", p.reason);
    let p = place(&tiers, &k3("0-15"), None);
    assert_eq!((p.tier.id.0, p.cluster.as_str()), ("spacemit_ime", "X100"));
}

#[test]
fn restricted_cpu_sets_and_forced_clusters() {
    let tiers = tier::for_arch(Arch::Riscv64);
    // taskset 8-15: only AI cores remain; the best tier there runs, with a warning.
    let p = place(&tiers, &k3("8-15"), None);
    assert_eq!((p.cluster.as_str(), p.vlen), ("A100", Some(1024)));
    assert!(p.reason.contains("only AI cores are available"), "{}", p.reason);
    // A partial X100 set still wins over the whole A100 cluster.
    let p = place(&tiers, &k3("6-15"), None);
    assert_eq!((p.cluster.as_str(), p.cores.to_string(), p.threads), ("X100", "6-7".into(), 2));
    let p = place(&tiers, &k3("0-15"), Some("a100"));
    assert_eq!(p.cluster, "A100");
    assert!(p.reason.contains("(HARTLM_CLUSTER)") && p.reason.contains("these are AI cores"), "{}", p.reason);
    let err = plan_placements(&tiers, &k3("0-15"), None, Some("big"), |_| true).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("clusters: X100, A100"), "{err}");
    // A forced tier picks the best cluster that can run it.
    let p = plan_placements(&tiers, &k3("0-15"), Some("spacemit_ime"), None, |_| true).unwrap().remove(0);
    assert_eq!(p.cluster, "X100");
    let p =
        plan_placements(&tiers, &k3("0-15"), Some("spacemit_ime"), Some("A100"), |_| true).unwrap().remove(0);
    assert_eq!(p.cluster, "A100");
}

#[test]
fn homogeneous_boards_are_one_cluster() {
    let tiers = tier::for_arch(Arch::Riscv64);
    let k1 = clusters_of("spacemit-k1.txt", "0-7", |_| 32);
    let got: Vec<(&str, String, bool)> =
        k1.iter().map(|c| (c.name.as_str(), c.cores.to_string(), c.cpu.has("xsmtvdot"))).collect();
    assert_eq!(got, [("X60-ime", "0-3".into(), true), ("X60", "4-7".into(), false)]);
    let u74 = clusters_of("sifive-u74-jh7110.txt", "0-3", |_| unreachable!("no V: vlenb is never read"));
    assert_eq!(u74.len(), 1);
    let p = place(&tiers, &u74, None);
    assert_eq!((p.tier.id.0, p.cores.to_string(), p.vlen), ("rv64gc", "0-3".into(), None));
}

/// However cores are restricted or clusters forced, no placement mixes VLENs: the engine reads
/// VLEN once, when it packs weights, so every core it may run on must share it.
#[test]
fn no_placement_spans_two_vector_lengths() {
    let tiers = tier::for_arch(Arch::Riscv64);
    for allowed in ["0-15", "0", "7-8", "4-11", "8-15", "0,15"] {
        let clusters = k3(allowed);
        for forced in [None, Some("X100"), Some("A100")] {
            let Ok(plans) = plan_placements(&tiers, &clusters, None, forced, |_| true) else { continue };
            for p in plans {
                for cpu in p.cores.iter() {
                    let c = clusters.iter().find(|c| c.cores.contains(cpu)).unwrap();
                    assert_eq!(c.cpu.vlen, p.vlen, "{allowed} {forced:?}: core {cpu} of {} in {p:?}", c.name);
                }
            }
        }
    }
}

/// Identical isa lines with different vectors (a hypothetical chip): VLEN is read on every core,
/// so the cores split into two clusters, and no placement takes both.
#[test]
fn equal_isa_lines_with_different_vlen_are_two_clusters() {
    let tiers = tier::for_arch(Arch::Riscv64);
    let c = clusters_of("spacemit-k1.txt", "0-7", |cpu| if cpu < 4 { 32 } else { 64 });
    let got: Vec<(&str, String, Option<u32>)> =
        c.iter().map(|c| (c.name.as_str(), c.cores.to_string(), c.cpu.vlen)).collect();
    // (The K1's cores 0-3 differ from 4-7 by the IME unit as well.)
    assert_eq!(got, [("X60-ime", "0-3".into(), Some(256)), ("X60", "4-7".into(), Some(512))]);
    for p in plan_placements(&tiers, &c, None, None, |_| true).unwrap() {
        assert!(p.cores.to_string() == "0-3" || p.cores.to_string() == "4-7", "{p:?}");
    }
}

#[test]
fn threads_spill_to_clusters_of_the_same_vlen_and_kind() {
    let tiers = tier::for_arch(Arch::Riscv64);
    let mut c = k3("0-15");
    // Pretend the A100 cores were general-purpose at VLEN 256 under another name.
    c[1].kind = CoreKind::General;
    c[1].cpu.vlen = Some(256);
    c[1].cpu.marchid = None;
    c[1].cpu.features.remove("xsmtvdot");
    c[0].cpu.features.remove("xsmtvdot");
    let p = place(&tiers, &c, None);
    assert_eq!((p.cluster.as_str(), p.cores.to_string(), p.threads), ("X100", "0-15".into(), 8));
    // Workers take the chosen cluster's cores first, then the spill cluster's.
    assert_eq!(p.worker_cores, (0..16).collect::<Vec<u32>>());
    assert!(p.reason.contains("spill to A100"), "{}", p.reason);
}

#[test]
fn report_shows_both_k3_clusters_and_the_placement() {
    let tiers = tier::for_arch(Arch::Riscv64);
    let r = report::build(&k3("0-15"), &tiers, (None, None), |_| true, &Cached::Missing);
    assert_eq!(r.selected.as_deref(), Some("spacemit_ime_rva23"));
    assert_eq!(r.vlen, Some(256), "top-level fields describe the chosen cluster");
    let text = report::render_text(&r);
    assert!(text.contains("X100  cores 0-7   general   VLEN 256"), "{text}");
    assert!(
        text.contains("A100  cores 8-15  AI cores  VLEN 1024  runs: spacemit_ime_rva23, spacemit_ime,"),
        "{text}"
    );
    assert!(text.contains("on X100 (cores 0-7, 8 threads by default, 4 for generation)"), "{text}");
    assert!(text.contains("calibration: none"), "{text}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["schema"], 3);
    assert_eq!(json["placement"]["gen_threads"], 4);
    assert_eq!(json["placement"]["cores"], "0-7");
    assert_eq!(json["clusters"][1]["kind"], "ai");
    assert_eq!(json["clusters"][1]["vlen"], 1024);
}

/// HARTLM_SYSROOT's files: a recorded cpuinfo, the allowed CPU list and the vlenb hook.
#[test]
fn recorded_systems_are_read_from_a_sysroot() {
    let root = std::env::temp_dir().join(format!("hartlm-sysroot-{}", std::process::id()));
    std::fs::create_dir_all(root.join("proc/self")).unwrap();
    std::fs::create_dir_all(root.join("hartlm")).unwrap();
    let cpuinfo = board("spacemit-k3.txt");
    std::fs::write(root.join("proc/cpuinfo"), cpuinfo).unwrap();
    std::fs::write(root.join("proc/self/status"), "Cpus_allowed_list:\t2-11\n").unwrap();
    std::fs::write(root.join("hartlm/vlenb"), "0-7 32\n8-15 128\n").unwrap();
    let c = crate::probe::recorded_clusters(&root, cpuinfo, None).unwrap();
    let got: Vec<(String, String, Option<u32>)> =
        c.iter().map(|c| (c.name.clone(), c.cores.to_string(), c.cpu.vlen)).collect();
    assert_eq!(got, [("X100".into(), "2-7".into(), Some(256)), ("A100".into(), "8-11".into(), Some(1024))]);
    let narrowed = crate::probe::recorded_clusters(&root, cpuinfo, Some("9")).unwrap();
    assert_eq!((narrowed.len(), narrowed[0].name.as_str()), (1, "A100"));
    assert!(
        crate::probe::recorded_clusters(&root, cpuinfo, Some("0-3")).unwrap_err().contains("allowed: 2-11")
    );
    std::fs::write(root.join("hartlm/vlenb"), "0-7\n").unwrap();
    assert!(crate::probe::recorded_clusters(&root, cpuinfo, None).is_err(), "a broken hook is an error");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Every placement any recorded SpacemiT system yields, however its cores are restricted and
/// whatever is forced, runs its tier only on cores that have every instruction the tier needs:
/// on a K1 the IME tier never reaches cores 4-7.
#[test]
fn no_placement_pairs_a_tier_with_a_core_lacking_its_instructions() {
    let tiers = tier::for_arch(Arch::Riscv64);
    let systems: Vec<(&str, Vec<Cluster>)> = ["0-7", "0-3", "2-5", "4-7", "3", "0,7"]
        .into_iter()
        .map(|a| ("K1", clusters_of("spacemit-k1.txt", a, |_| 32)))
        .chain(["0-15", "0-7", "8-15", "4-11", "7-8", "0,15"].into_iter().map(|a| ("K3", k3(a))))
        .chain([
            ("K3 X100 cluster", clusters_of("spacemit-k3-x100-cluster.txt", "0-7", |_| 32)),
            ("K3 A100 cluster", clusters_of("spacemit-k3-a100-cluster.txt", "8-15", |_| 128)),
        ])
        .collect();
    let mut checked = 0;
    for (name, clusters) in &systems {
        let names: Vec<Option<&str>> =
            [None].into_iter().chain(clusters.iter().map(|c| Some(c.name.as_str()))).collect();
        let forced_tiers = [None, Some("spacemit_ime"), Some("spacemit_ime_rva23"), Some("rv64gcv_zvfh")];
        for forced_cluster in &names {
            for forced_tier in forced_tiers {
                let Ok(plans) = plan_placements(&tiers, clusters, forced_tier, *forced_cluster, |_| true)
                else {
                    continue;
                };
                for p in plans {
                    for cpu in p.cores.iter() {
                        let c = clusters.iter().find(|c| c.cores.contains(cpu)).unwrap();
                        assert!(
                            evaluate(p.tier, &c.cpu).is_eligible(),
                            "{name}: {} placed on core {cpu} of {}, which lacks its instructions",
                            p.tier.id,
                            c.name
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 500, "{checked}");
    // And the K1's IME tier, where it is placed at all, is on cores 0-3 with at most 4 workers.
    for allowed in ["0-7", "2-5"] {
        let p = place(&tiers, &clusters_of("spacemit-k1.txt", allowed, |_| 32), None);
        assert_eq!(p.tier.id.0, "spacemit_ime");
        assert!(p.cores.iter().all(|c| c < 4) && p.threads <= 4, "{p:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Entering the chosen cores (`entry`), against a simulated scheduler.

use crate::entry::{Entered, Os, RecordedOs, enter};

/// A recorded system's scheduler (`entry::RecordedOs`) in a fresh directory: `sched` as its
/// `hartlm/sched`, `/proc/set_ai_thread` present or not, the thread starting on `current`.
/// Returns it with the directory (removed when dropped), whose registrations [`registrations`] counts.
fn recorded_os(sched: &str, ai_proc: bool, current: &str) -> (RecordedOs, tempfile::TempDir) {
    let dir = tempfile::Builder::new().prefix("hartlm-entry-").tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("hartlm")).unwrap();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(root.join("hartlm/sched"), sched).unwrap();
    if ai_proc {
        std::fs::write(root.join("proc/set_ai_thread"), "").unwrap();
    }
    (RecordedOs::new(root, CoreSet::parse(current).unwrap()).unwrap(), dir)
}

/// The `0`s written to a recorded system's `/proc/set_ai_thread`.
fn registrations(root: &std::path::Path) -> usize {
    std::fs::read_to_string(root.join("proc/set_ai_thread"))
        .map_or(0, |t| t.lines().filter(|l| *l == "0").count())
}

#[test]
fn the_a100_cluster_is_entered_by_registration_and_verified() {
    let tiers = tier::for_arch(Arch::Riscv64);
    let clusters = k3("0-15");
    let a100 = place(&tiers, &clusters, Some("A100"));
    let (mut os, root) = recorded_os("refuse 8-15\nai 8-15\n", true, "0-15");
    assert_eq!(enter(&mut os, &a100, &clusters), Ok(Entered::AiThread));
    assert_eq!((registrations(root.path()), os.current().to_string()), (1, "8-15".into()));
    // No /proc/set_ai_thread: refused with the reason, nothing pinned.
    let (mut os, _dir) = recorded_os("refuse 8-15\nai 8-15\n", false, "0-15");
    let err = enter(&mut os, &a100, &clusters).unwrap_err();
    assert!(err.contains("/proc/set_ai_thread") && err.contains("os error 2"), "{err}");
    // Registration accepted but the kernel still refuses the A100 mask: verification fails.
    let (mut os, _dir) = recorded_os("refuse 8-15\n", true, "0-15");
    let err = enter(&mut os, &a100, &clusters).unwrap_err();
    assert!(err.contains("pinning after registering") && err.contains("os error 22"), "{err}");
    // The X100 cores are entered by plain affinity, and never through registration.
    let x100 = place(&tiers, &clusters, None);
    let (mut os, root) = recorded_os("refuse 8-15\nai 8-15\n", true, "0-15");
    assert_eq!(enter(&mut os, &x100, &clusters), Ok(Entered::Pinned));
    assert_eq!((registrations(root.path()), os.current().to_string()), (0, "0-7".into()));
}

#[test]
fn a_failed_pin_runs_only_where_every_core_has_the_tier() {
    let tiers = tier::for_arch(Arch::Riscv64);
    // K1: the IME tier on cores 0-3 may not run unpinned, since cores 4-7 lack the unit.
    let k1 = clusters_of("spacemit-k1.txt", "0-7", |_| 32);
    let ime = place(&tiers, &k1, None);
    let (mut os, _dir) = recorded_os("refuse 0-7\n", false, "0-7");
    let err = enter(&mut os, &ime, &k1).unwrap_err();
    assert!(err.contains("sched_setaffinity"), "{err}");
    // The standard tier runs on every K1 core: a failed pin only warns.
    let zvfh = plan_placements(&tiers, &k1, Some("rv64gcv_zvfh"), None, |_| true).unwrap().remove(0);
    assert!(matches!(enter(&mut os, &zvfh, &k1), Ok(Entered::Unpinned(_))));
}
