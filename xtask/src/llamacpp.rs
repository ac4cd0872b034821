//! llama.cpp as the competitor of `cargo xtask bench --vs llama.cpp`: the pinned source (the copy
//! vendored in a PyPI sdist), its build configurations as plain data, and cached builds.
//!
//! Each configuration matches one of our tiers: the host's best x86 build (every SIMD extension
//! the host has, AMX always off: its backend faults on some VMs), SSE4.2 for x86-64-v2, none for
//! x86-64, and clang-19 cross builds for rv64gc and rv64gcv. Builds land in
//! `target/llama.cpp/<name>-<key>/` keyed by the source and the flags, built once.
//!
//! The riscv64 cross build needs no source change: cmake with a clang toolchain file
//! (`--target=riscv64-linux-gnu`, lld, Debian's riscv64 sysroot) and OpenMP off (there is no
//! riscv64 libomp to link; `-t 1` counts do not use threads anyway).

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use xshell::{Shell, cmd};

use hartlm_variants::Arch;

/// `llama-cpp-python==0.3.36`'s sdist, which vendors llama.cpp 0c1e570 (the fixtures' oracle).
const SDIST_URL: &str = "https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-0.3.36.tar.gz";
const SDIST_SHA256: &str = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e";
const SDIST_DIR: &str = "llama_cpp_python-0.3.36";
pub const COMMIT: &str = "0c1e570";
/// Debian packages the builds need beyond the riscv64 cross C toolchain.
pub const APT: &[&str] = &["cmake", "ninja-build", "clang-19", "lld-19", "g++-riscv64-linux-gnu"];

/// One build of llama.cpp, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Also the directory prefix: `x86-best`, `x86-64-v2`, `x86-64`, `rv64gc`, `rv64gcv`.
    pub name: &'static str,
    pub arch: Arch,
    /// `-DNAME=VALUE` cmake definitions beyond the common ones.
    pub defines: Vec<String>,
    /// cmake targets to build.
    pub targets: &'static [&'static str],
}

/// The x86 SIMD switches of ggml with the `/proc/cpuinfo` flag that allows each.
const X86_SWITCHES: [(&str, &str); 12] = [
    ("GGML_SSE42", "sse4_2"),
    ("GGML_AVX", "avx"),
    ("GGML_AVX2", "avx2"),
    ("GGML_FMA", "fma"),
    ("GGML_F16C", "f16c"),
    ("GGML_BMI2", "bmi2"),
    ("GGML_AVX_VNNI", "avx_vnni"),
    ("GGML_AVX512", "avx512f"),
    ("GGML_AVX512_VBMI", "avx512vbmi"),
    ("GGML_AVX512_VNNI", "avx512_vnni"),
    ("GGML_AVX512_BF16", "avx512_bf16"),
    // Never on: ggml's AMX backend faults in ggml_backend_amx_mul_mat on some VMs.
    ("GGML_AMX_INT8", "-"),
];

/// The x86 switches, each ON exactly when `enabled` says.
fn x86_defines(enabled: impl Fn(&str, &str) -> bool) -> Vec<String> {
    let mut d = vec!["GGML_NATIVE=OFF".to_string(), "GGML_AMX_TILE=OFF".into(), "GGML_AMX_BF16=OFF".into()];
    for (switch, flag) in X86_SWITCHES {
        let on = flag != "-" && enabled(switch, flag);
        d.push(format!("{switch}={}", if on { "ON" } else { "OFF" }));
    }
    d
}

/// AVX-512 as ggml enables it (F, CD, VL, DQ, BW together) is usable only with all five.
fn has_avx512(flags: &BTreeSet<&str>) -> bool {
    ["avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"].iter().all(|f| flags.contains(f))
}

/// Every configuration the harness compares with, for a host with these cpuinfo `flags`.
pub fn configs(flags: &BTreeSet<&str>) -> Vec<Config> {
    let best = x86_defines(|switch, flag| {
        flags.contains(flag) && (!switch.starts_with("GGML_AVX512") || has_avx512(flags))
    });
    let riscv = |name, rvv: bool| Config {
        name,
        arch: Arch::Riscv64,
        defines: [
            "GGML_NATIVE=OFF",
            if rvv { "GGML_RVV=ON" } else { "GGML_RVV=OFF" },
            "GGML_RV_ZFH=OFF",
            "GGML_RV_ZVFH=OFF",
            "GGML_RV_ZICBOP=OFF",
            "GGML_RV_ZIHINTPAUSE=OFF",
            "GGML_OPENMP=OFF",
        ]
        .map(String::from)
        .to_vec(),
        targets: &["llama-bench"],
    };
    vec![
        Config {
            name: "x86-best",
            arch: Arch::X86_64,
            defines: best,
            targets: &["llama-bench", "llama-quantize"],
        },
        Config {
            name: "x86-64-v2",
            arch: Arch::X86_64,
            defines: x86_defines(|switch, _| switch == "GGML_SSE42"),
            targets: &["llama-bench"],
        },
        Config {
            name: "x86-64",
            arch: Arch::X86_64,
            defines: x86_defines(|_, _| false),
            targets: &["llama-bench"],
        },
        riscv("rv64gc", false),
        riscv("rv64gcv", true),
    ]
}

/// The cmake definitions every build shares: a static, release llama-bench without network
/// or server code.
const COMMON: [&str; 8] = [
    "CMAKE_BUILD_TYPE=Release",
    "BUILD_SHARED_LIBS=OFF",
    "LLAMA_CURL=OFF",
    "LLAMA_OPENSSL=OFF",
    "LLAMA_BUILD_TESTS=OFF",
    "LLAMA_BUILD_EXAMPLES=OFF",
    "LLAMA_BUILD_SERVER=OFF",
    "GGML_BACKEND_DL=OFF",
];

/// The cache key of a build: the source and every definition.
pub fn key(c: &Config) -> String {
    let mut h = Sha256::new();
    h.update(SDIST_SHA256);
    for d in COMMON.iter().map(|s| s.to_string()).chain(c.defines.clone()) {
        h.update(d);
        h.update("\n");
    }
    h.update(format!("{:?}", c.arch));
    if c.arch == Arch::Riscv64 {
        h.update(RVV_ASM_FIX);
    }
    format!("{:x}", h.finalize())[..12].to_string()
}

/// A finished build: its `bin/` directory.
pub struct Built {
    pub bin: PathBuf,
}

impl Built {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }
}

/// The pinned llama-cpp-python sdist in `top`, downloaded and verified the first time.
pub fn sdist(sh: &Shell, top: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(top)?;
    let tarball = top.join(format!("{SDIST_DIR}.tar.gz"));
    if !tarball.is_file() {
        eprintln!("llama.cpp: downloading the llama-cpp-python 0.3.36 sdist (llama.cpp {COMMIT}, 77 MB)");
        crate::qemu_build::download_verified(sh, SDIST_URL, SDIST_SHA256, &tarball)?;
    }
    Ok(tarball)
}

/// Where [`sdist`] comes from, for provenance records.
pub const SDIST_SOURCE: (&str, &str, &str) = (SDIST_URL, SDIST_SHA256, SDIST_DIR);

/// The unpacked llama.cpp source, downloading and verifying the sdist first if needed.
fn source(sh: &Shell, top: &Path) -> Result<PathBuf> {
    let src = top.join(format!("src-{COMMIT}"));
    if src.join("CMakeLists.txt").is_file() {
        return Ok(src);
    }
    let tarball = sdist(sh, top)?;
    let unpack = top.join("unpack.tmp");
    if unpack.exists() {
        std::fs::remove_dir_all(&unpack)?;
    }
    std::fs::create_dir_all(&unpack)?;
    let inner = format!("{SDIST_DIR}/vendor/llama.cpp");
    cmd!(sh, "tar -C {unpack} -xzf {tarball} {inner}").run().context("unpacking the sdist")?;
    if src.exists() {
        std::fs::remove_dir_all(&src)?;
    }
    std::fs::rename(unpack.join(&inner), &src)?;
    std::fs::remove_dir_all(&unpack)?;
    Ok(src)
}

/// The file of llama.cpp's RVV inline assembly, and what the riscv64 builds change in it.
const RVV_ASM_FILE: &str = "ggml/src/ggml-cpu/arch/riscv/quants.c";
const RVV_ASM_FIX: &str = "vsetvli without a policy gets tu, mu";

/// LLVM's assembler refuses `vsetvli`/`vsetivli` without a tail and mask policy (GNU as takes
/// them, defaulting to undisturbed, with a warning): the policy GNU as would use is written out,
/// so clang-19 assembles the same instructions. Other lines are left as they are.
pub fn add_vsetvli_policy(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 256);
    for line in src.split_inclusive('\n') {
        let fixed = ["\"vsetvli ", "\"vsetivli "].iter().find_map(|op| {
            let start = line.find(op)? + 1;
            let end = start + line[start..].find("\\n")?;
            let operands = line[start..end].split(',').count();
            (operands == 4).then(|| format!("{}, tu, mu{}", &line[..end], &line[end..]))
        });
        out.push_str(fixed.as_deref().unwrap_or(line));
    }
    out
}

/// The clang-19 cross toolchain file of the riscv64 builds.
const RISCV_TOOLCHAIN: &str = "set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR riscv64)
set(CMAKE_C_COMPILER clang-19)
set(CMAKE_CXX_COMPILER clang++-19)
set(CMAKE_C_COMPILER_TARGET riscv64-linux-gnu)
set(CMAKE_CXX_COMPILER_TARGET riscv64-linux-gnu)
set(CMAKE_EXE_LINKER_FLAGS_INIT \"-fuse-ld=lld-19\")
set(CMAKE_FIND_ROOT_PATH /usr/riscv64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
";

/// The build of `c`, compiling it first (into a temporary directory, renamed when complete)
/// if this source and these flags have not been built.
pub fn ensure(sh: &Shell, target_dir: &Path, c: &Config) -> Result<Built> {
    let top = target_dir.join("llama.cpp");
    let dir = top.join(format!("{}-{}", c.name, key(c)));
    let built = Built { bin: dir.join("bin") };
    if c.targets.iter().all(|t| built.tool(t).is_file()) {
        return Ok(built);
    }
    let src = source(sh, &top)?;
    let tmp = top.join(format!("{}.tmp", c.name));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    let mut defines: Vec<String> = COMMON.iter().map(|d| format!("-D{d}")).collect();
    defines.extend(c.defines.iter().map(|d| format!("-D{d}")));
    if c.arch == Arch::Riscv64 {
        let asm = src.join(RVV_ASM_FILE);
        let text = std::fs::read_to_string(&asm).with_context(|| format!("reading {}", asm.display()))?;
        let fixed = add_vsetvli_policy(&text);
        if fixed != text {
            eprintln!("llama.cpp: {RVV_ASM_FILE}: {RVV_ASM_FIX} (clang's assembler needs the policy)");
            std::fs::write(&asm, fixed)?;
        }
        let file = tmp.join("riscv64-clang.cmake");
        std::fs::write(&file, RISCV_TOOLCHAIN)?;
        defines.push(format!("-DCMAKE_TOOLCHAIN_FILE={}", file.display()));
    }
    let targets = c.targets;
    let name = c.name;
    eprintln!("llama.cpp: building {name} ({}), once; a few minutes per build", targets.join(", "));
    let t0 = std::time::Instant::now();
    let build = tmp.join("build");
    cmd!(sh, "cmake -S {src} -B {build} -G Ninja {defines...}")
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("configuring llama.cpp {name}"))?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).to_string();
    cmd!(sh, "cmake --build {build} -j {jobs} --target {targets...}")
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("building llama.cpp {name}"))?;
    std::fs::create_dir_all(tmp.join("bin"))?;
    for t in targets {
        std::fs::rename(build.join("bin").join(t), tmp.join("bin").join(t))?;
    }
    std::fs::remove_dir_all(&build)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&tmp, &dir)?;
    eprintln!("llama.cpp: {name} built in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vsetvli_without_a_policy_gets_gnu_as_defaults() {
        let src = concat!(
            "        __asm__ __volatile__(\n",
            "            \"vsetivli zero, 16, e8, m1\\n\\t\"\n",
            "            \"vsetvli zero, %[vl32], e8, m2, ta, mu\\n\\t\"\n",
            "            \"vsetvli zero, %[vl64], e8, m4\\n\\t\"\n",
            "            \"th.vsetvli zero, %[vl16], e8, m1\\n\\t\"\n",
            "            \"vle8.v v1, (%[sc])\\n\\t\"\n",
        );
        let want = concat!(
            "        __asm__ __volatile__(\n",
            "            \"vsetivli zero, 16, e8, m1, tu, mu\\n\\t\"\n",
            "            \"vsetvli zero, %[vl32], e8, m2, ta, mu\\n\\t\"\n",
            "            \"vsetvli zero, %[vl64], e8, m4, tu, mu\\n\\t\"\n",
            "            \"th.vsetvli zero, %[vl16], e8, m1\\n\\t\"\n",
            "            \"vle8.v v1, (%[sc])\\n\\t\"\n",
        );
        assert_eq!(add_vsetvli_policy(src), want);
        assert_eq!(add_vsetvli_policy(want), want, "applying it twice changes nothing");
    }

    fn on(c: &Config) -> Vec<&str> {
        c.defines.iter().filter_map(|d| d.strip_suffix("=ON")).collect()
    }

    #[test]
    fn best_build_follows_the_host_and_never_enables_amx() {
        let zen4: BTreeSet<&str> =
            "sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw \
                                    avx512vbmi avx512_vnni avx512_bf16 amx_int8 amx_tile"
                .split(' ')
                .collect();
        let c = configs(&zen4);
        assert_eq!(c[0].name, "x86-best");
        assert_eq!(
            on(&c[0]),
            [
                "GGML_SSE42",
                "GGML_AVX",
                "GGML_AVX2",
                "GGML_FMA",
                "GGML_F16C",
                "GGML_BMI2",
                "GGML_AVX512",
                "GGML_AVX512_VBMI",
                "GGML_AVX512_VNNI",
                "GGML_AVX512_BF16"
            ]
        );
        assert!(c[0].defines.contains(&"GGML_AMX_INT8=OFF".to_string()));
        // A CPU with AVX-512 F but not the rest of ggml's set gets no AVX-512 at all.
        let partial: BTreeSet<&str> = "sse4_2 avx avx2 fma f16c avx512f avx512_vnni".split(' ').collect();
        assert_eq!(
            on(&configs(&partial)[0]),
            ["GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C"]
        );
    }

    #[test]
    fn baseline_builds_match_our_baseline_tiers() {
        let c = configs(&BTreeSet::new());
        let by = |n: &str| c.iter().find(|c| c.name == n).unwrap();
        assert_eq!(on(by("x86-64-v2")), ["GGML_SSE42"]);
        assert!(on(by("x86-64")).is_empty());
        assert!(by("rv64gc").defines.contains(&"GGML_RVV=OFF".to_string()));
        assert!(by("rv64gcv").defines.contains(&"GGML_RVV=ON".to_string()));
        // On an AVX2 host every configuration has its own cache key.
        let keys: BTreeSet<String> = configs(&["sse4_2", "avx", "avx2"].into()).iter().map(key).collect();
        assert_eq!(keys.len(), c.len());
    }
}
