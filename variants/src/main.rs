//! The `hartlm` launcher: probes the CPU, picks the best tier it can safely run, dlopens that
//! tier's engine library from `lib/` beside `bin/` and hands it argv. `hartlm cpu` explains it.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsString, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hartlm_abi::engine::EngineApiFn;
use hartlm_abi::{
    ABI_SYMBOL, ABI_VERSION, API_SYMBOL, AbiVersionFn, CALIBRATE_SYMBOL, CalibrateFn, LaunchInfo,
    MatvecTiming,
};
use hartlm_frontend::cli::{Cli, Command};
use hartlm_variants::calibration::{self, Cached, Calibration, Measured, Sample};
use hartlm_variants::cluster::{Cluster, CoreSet};
use hartlm_variants::entry::{self, Entered, LiveOs, Os, RecordedOs};
use hartlm_variants::placement::{Placement, plan_placements};
use hartlm_variants::{Tier, libcheck, probe, report, tier};

const TIER_ENV: &str = "HARTLM_TIER";
const CLUSTER_ENV: &str = "HARTLM_CLUSTER";
const LIB_DIR_ENV: &str = "HARTLM_LIB_DIR";
/// Set to 1 to print which library was loaded and where (instruction profiles need the base).
const VERBOSE_ENV: &str = "HARTLM_VERBOSE";
/// `off` ignores the `hartlm calibrate` ranking.
const CALIBRATION_ENV: &str = "HARTLM_CALIBRATION";
/// `cores` pins each worker thread to its own core; `cluster` (the default) lets the threads
/// move within the placement, which behaves better when other processes share the cores.
const PIN_ENV: &str = "HARTLM_PIN";

struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            // Messages quote paths, variables and file contents: one line, no escapes.
            eprintln!("hartlm: {}", hartlm_abi::text::escape_controls(&f.message));
            ExitCode::from(f.code)
        }
    }
}

fn run() -> Result<u8, Failure> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match hartlm_frontend::cli::parse(args) {
        Ok(cli) => cli,
        Err(status) => return Ok(u8::try_from(status).unwrap_or(2)),
    };
    let system = probe::system().map_err(|e| fail(2, e))?;
    if system.clusters.is_empty() {
        return Err(fail(2, "no usable processor: HARTLM_CORES or the CPU affinity leaves none"));
    }
    let lib_dir = library_dir()?;
    let (forced, forced_cluster) = (env(TIER_ENV), env(CLUSTER_ENV));
    let pin_cores = match env(PIN_ENV).as_deref() {
        None | Some("cluster") => false,
        Some("cores") => true,
        Some(other) => return Err(fail(2, format!("{PIN_ENV}={other}: use `cores` or `cluster`"))),
    };
    let tiers = tier::for_arch(system.clusters[0].cpu.arch);
    // Whatever sits at a library's path counts as installed, so a damaged one (a directory, a
    // FIFO) is tried, refused by name and warned about, not silently skipped.
    let exists = |t: &Tier| lib_dir.join(t.library_file()).symlink_metadata().is_ok();
    let fingerprint = calibration::fingerprint(&system.cpuinfo);
    let cached = cached_calibration(&fingerprint)?;

    match &cli.command {
        Some(Command::Cpu { json, runner_labels }) => {
            let forced = (forced.as_deref(), forced_cluster.as_deref());
            return cpu_command((*json, *runner_labels), &system.clusters, &tiers, forced, exists, &cached);
        }
        Some(Command::Calibrate { size_mib, reps, clear }) => {
            return calibrate_command((*size_mib, *reps, *clear), &system, &tiers, &lib_dir, &fingerprint);
        }
        _ => {}
    }
    let plan =
        plan_placements(&tiers, &system.clusters, forced.as_deref(), forced_cluster.as_deref(), exists);
    let (plan, _) = calibration::choose(plan, &cached, forced.is_some() || forced_cluster.is_some());
    // `--version` names the tier that would really run: it goes through entry and loading
    // (fallbacks included) and stops before the engine runs anything.
    let plan = match plan {
        Err(e) if cli.version => {
            hartlm_abi::sayln!("{}", hartlm_frontend::version_line(&format!("none ({e})")));
            return Ok(0);
        }
        plan => plan,
    };
    let mut queue: VecDeque<Placement> = plan.map_err(|e| fail(e.exit_code(), e.to_string()))?.into();
    // A damaged manifest damages the whole installation: one line, before any library is tried.
    let manifest =
        read_manifest(&lib_dir).map_err(|e| fail(1, format!("{e}; reinstall the hartlm tarball")))?;
    let mut os: Box<dyn Os> = match std::env::var_os(probe::SYSROOT_ENV) {
        Some(root) if system.recorded => {
            let whole = probe::whole_system().map_err(|e| fail(2, e))?;
            let allowed = whole.clusters.iter().fold(CoreSet::default(), |acc, c| acc.union(&c.cores));
            Box::new(RecordedOs::new(Path::new(&root), allowed).map_err(|e| fail(2, e))?)
        }
        _ => Box::new(LiveOs),
    };
    let mut last_error = String::new();
    let mut first_failure: Option<String> = None;
    let mut failed: Vec<&str> = Vec::new();
    let mut unenterable: Vec<String> = Vec::new();
    let mut fell_back = false;
    loop {
        let Some(p) = queue.pop_front() else {
            // Every placement left was refused entry: run where this thread actually is, which
            // HARTLM_CORES or HARTLM_CLUSTER may not have named.
            if unenterable.is_empty() || fell_back {
                break;
            }
            fell_back = true;
            let here = os.current();
            let whole = probe::whole_system().map_err(|e| fail(2, e))?;
            let local: Vec<Cluster> = whole
                .clusters
                .iter()
                .filter_map(|c| {
                    let cores = c.cores.intersection(&here);
                    (!cores.is_empty() && !unenterable.contains(&c.name))
                        .then(|| Cluster { cores, ..c.clone() })
                })
                .collect();
            if let Ok(plan) = plan_placements(&tiers, &local, None, None, exists) {
                queue.extend(plan);
            }
            continue;
        };
        if failed.contains(&p.tier.id.0) || unenterable.contains(&p.cluster) {
            continue;
        }
        if system.recorded && forced.is_none() {
            refuse_unless_live_cpu_runs(p.tier)?;
        }
        let path = lib_dir.join(p.tier.library_file());
        let entry = match load(&path, p.tier, &manifest).and_then(|lib| symbol(lib, API_SYMBOL, &path)) {
            Ok(entry) => entry,
            Err(e) => {
                last_error = format!("tier {} failed to load: {e}", p.tier.id);
                failed.push(p.tier.id.0);
                first_failure.get_or_insert_with(|| last_error.clone());
                continue;
            }
        };
        // Threads the engine creates inherit the main thread's affinity (and AI registration).
        let entered = match entry::enter(os.as_mut(), &p, &system.clusters) {
            Ok(e) => e,
            Err(why) => {
                last_error = format!("cannot enter the {} cores {} ({why})", p.cluster, p.cores);
                let line = format!("{last_error}; falling back to cores this thread can use");
                eprintln!("hartlm: {}", hartlm_abi::text::escape_controls(&line));
                unenterable.push(p.cluster.clone());
                continue;
            }
        };
        if let Entered::Unpinned(why) = &entered {
            eprintln!(
                "hartlm: warning: cannot keep threads on cores {} ({why}); every core this process may use runs {}",
                p.cores, p.tier.id
            );
        }
        // One line however many libraries failed before this one loaded.
        if let Some(first) = &first_failure {
            let others = match failed.len() {
                1 => String::new(),
                n => format!(" ({} more tiers failed too)", n - 1),
            };
            let line = format!("{first}; falling back to {}{others}", p.tier.id);
            eprintln!("hartlm: warning: {}", hartlm_abi::text::escape_controls(&line));
        }
        // SAFETY: the ABI version matched, so hartlm_engine_api has the EngineApiFn signature.
        let entry = unsafe { std::mem::transmute::<*mut c_void, EngineApiFn>(entry) };
        let reason = if last_error.is_empty() { p.reason.clone() } else { format!("fallback: {last_error}") };
        if std::env::var_os(VERBOSE_ENV).is_some_and(|v| v == "1") {
            eprintln!(
                "hartlm: tier {} on {} cores {} ({reason}): {} loaded at {:#x}",
                p.tier.id,
                p.cluster,
                p.cores,
                path.display(),
                load_base(entry)
            );
        }
        if cli.version {
            let tier = format!("{} on {} cores {}", p.tier.id, p.cluster, p.cores);
            hartlm_abi::sayln!("{}", hartlm_frontend::version_line(&tier));
            return Ok(0);
        }
        // Per-core pinning and AI registration only mean something on this machine's own cores.
        let pin = pin_cores && !system.recorded && entered == Entered::Pinned;
        let ai = !system.recorded && entered == Entered::AiThread;
        return call_engine(entry, cli, &p, &reason, (pin, ai));
    }
    let others = match failed.len() {
        0 | 1 => String::new(),
        n => format!(" ({} more tiers failed too)", n - 1),
    };
    if cli.version {
        hartlm_abi::sayln!("{}", hartlm_frontend::version_line(&format!("none ({last_error}{others})")));
        return Ok(0);
    }
    Err(fail(1, format!("{last_error}{others}; reinstall the hartlm tarball")))
}

/// Under HARTLM_SYSROOT the tier was chosen for a recorded CPU, but its code would run on this
/// one: refused (exit 2) unless every core here has the tier's features, or HARTLM_TIER forces it.
fn refuse_unless_live_cpu_runs(tier: &Tier) -> Result<(), Failure> {
    let live = probe::live_system().map_err(|e| fail(2, e))?;
    for c in &live.clusters {
        if let hartlm_variants::Eligibility::NotEligible { missing } = hartlm_variants::evaluate(tier, &c.cpu)
        {
            return Err(fail(
                2,
                format!(
                    "{} describes a recorded CPU whose tier {} this machine cannot run (its cores {} lack {}); \
                     set {TIER_ENV}={} to load it anyway",
                    probe::SYSROOT_ENV,
                    tier.id,
                    c.cores,
                    missing.join(", "),
                    tier.id
                ),
            ));
        }
    }
    Ok(())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

fn cpu_command(
    (json, labels): (bool, bool),
    clusters: &[Cluster],
    tiers: &[&Tier],
    forced: (Option<&str>, Option<&str>),
    exists: impl Fn(&Tier) -> bool,
    cached: &Cached,
) -> Result<u8, Failure> {
    let r = report::build(clusters, tiers, forced, exists, cached);
    if labels {
        let value = serde_json::to_value(&r).map_err(|e| fail(1, format!("cannot encode report: {e}")))?;
        let labels = hartlm_variants::labels::runner_labels(&value).map_err(|e| fail(1, e))?;
        hartlm_abi::sayln!("{}", labels.join(","));
    } else if json {
        let text =
            serde_json::to_string_pretty(&r).map_err(|e| fail(1, format!("cannot encode report: {e}")))?;
        hartlm_abi::sayln!("{text}");
    } else {
        hartlm_abi::say!("{}", report::render_text(&r));
    }
    Ok(0)
}

/// `lib/` next to the directory holding the executable's real path, or HARTLM_LIB_DIR (made
/// absolute, so a library is never looked up through the dynamic loader's search path).
fn library_dir() -> Result<PathBuf, Failure> {
    if let Some(dir) = std::env::var_os(LIB_DIR_ENV).filter(|d| !d.is_empty()) {
        return std::path::absolute(PathBuf::from(dir))
            .map_err(|e| fail(2, format!("{LIB_DIR_ENV}: cannot resolve it ({e})")));
    }
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| fail(1, format!("cannot locate the hartlm executable: {e}")))?;
    let prefix = exe.parent().and_then(Path::parent).ok_or_else(|| {
        fail(1, format!("{} is not inside a bin/ directory; set {LIB_DIR_ENV}", exe.display()))
    })?;
    Ok(prefix.join("lib"))
}

fn dlerror_text() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl* call,
    // which is copied out before any.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown dynamic loader error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// The release manifest beside `lib/` (`<lib>/../manifest.json`), by library file name. None
/// when there is none (a development build); [`read_manifest`] fails on an unreadable one.
type Manifest = Option<std::collections::BTreeMap<String, libcheck::Expected>>;

fn read_manifest(lib_dir: &Path) -> Result<Manifest, String> {
    let Some(path) = lib_dir.parent().map(|p| p.join("manifest.json")) else { return Ok(None) };
    match hartlm_abi::files::read_text_capped(&path, 1 << 20) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
        Ok(text) => libcheck::parse_manifest(&text).map(Some).map_err(|e| format!("{}: {e}", path.display())),
    }
}

/// Checks a tier library's file before anything loads it: size and sha256 against the manifest
/// (when the installation has one) and the tier tag in its own bytes ([`libcheck::verify`]).
fn verify_library(path: &Path, tier: &Tier, manifest: &Manifest) -> Result<(), String> {
    const MAX_LIBRARY_BYTES: u64 = 1 << 30;
    let name = tier.library_file();
    let expected = match manifest {
        Some(m) => Some(m.get(&name).ok_or_else(|| format!("manifest.json does not list {name}"))?),
        None => None,
    };
    let bytes = hartlm_abi::files::read_capped(path, MAX_LIBRARY_BYTES)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let sha256 = |b: &[u8]| {
        use sha2::Digest as _;
        sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    libcheck::verify(&bytes, tier.id.0, tier.arch, expected, sha256)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads an engine library once [`verify_library`] accepts its file, and checks its ABI version,
/// returning the dlopen handle. The handle is never closed: the engine may leave threads or
/// thread-locals behind that must outlive it.
fn load(path: &Path, tier: &Tier, manifest: &Manifest) -> Result<*mut c_void, String> {
    verify_library(path, tier, manifest)?;
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: cpath is NUL-terminated; the file was checked to be this tier's library (its tag,
    // and its hash where the installation has a manifest), a tier this CPU can run, so its
    // initialisers execute only supported instructions.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(dlerror_text());
    }
    let abi = symbol(handle, ABI_SYMBOL, path)?;
    // SAFETY: hartlm_abi_version has had this signature since ABI 1; checking it is the point.
    let version = unsafe { std::mem::transmute::<*mut c_void, AbiVersionFn>(abi)() };
    if version != ABI_VERSION {
        return Err(format!(
            "{} has engine ABI {version}, this launcher speaks {ABI_VERSION} (mixed installation)",
            path.display()
        ));
    }
    Ok(handle)
}

/// The address of `name` in the library `handle` loaded from `path`.
fn symbol(handle: *mut c_void, name: &CStr, path: &Path) -> Result<*mut c_void, String> {
    // SAFETY: handle is a live dlopen handle and name is NUL-terminated.
    let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if p.is_null() {
        Err(format!("{} is not a hartlm engine library (no {name:?})", path.display()))
    } else {
        Ok(p)
    }
}

/// The address the library holding `entry` was mapped at (0 if the loader cannot say).
fn load_base(entry: EngineApiFn) -> usize {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the address and fills `info`, which is valid for writes.
    let found = unsafe { libc::dladdr(entry as *const c_void, info.as_mut_ptr()) };
    // SAFETY: zero-initialised, and filled by dladdr when it returns non-zero.
    if found == 0 { 0 } else { unsafe { info.assume_init() }.dli_fbase as usize }
}

/// Hands the parsed command line to the frontend with the engine the library's table offers.
fn call_engine(
    entry: EngineApiFn,
    cli: Cli,
    p: &Placement,
    reason: &str,
    (pin_cores, ai_entry): (bool, bool),
) -> Result<u8, Failure> {
    let to_c = |s: &[u8]| CString::new(s).map_err(|_| fail(2, "the tier id or reason contains a NUL byte"));
    let tier_id = to_c(p.tier.id.0.as_bytes())?;
    let reason = to_c(reason.as_bytes())?;
    let cores: &[u32] = if pin_cores { &p.worker_cores } else { &[] };
    let ai_cores: Vec<u32> = if ai_entry { p.cores.iter().collect() } else { vec![] };
    let info = launch_info(&tier_id, &reason, p.vlen, (p.threads, p.gen_threads), cores, &ai_cores);
    // SAFETY: info, the strings and arrays it points to outlive the call; the table it returns
    // lives as long as the library, which is never unloaded.
    let table =
        unsafe { entry(&info).as_ref() }.ok_or_else(|| fail(1, "the engine library returned no table"))?;
    let engine = hartlm_frontend::engine::Engine::new(table).map_err(|e| fail(1, e))?;
    let defaults = hartlm_frontend::cli::Defaults {
        threads: p.threads,
        gen_threads: p.gen_threads,
        vlen_bits: p.vlen.unwrap_or(0),
        tier_id: p.tier.id.0.to_string(),
    };
    let status = hartlm_frontend::cli::run(cli, &engine, &defaults);
    Ok(u8::try_from(status).unwrap_or(1))
}

/// The launch record for a tier at `vlen` with `(threads, gen_threads)` workers, worker i
/// pinned to `cores[i]` (empty: no per-core pinning). It borrows the strings and `cores`.
fn launch_info(
    tier_id: &CStr,
    reason: &CStr,
    vlen: Option<u32>,
    (threads, gen_threads): (usize, usize),
    cores: &[u32],
    ai_cores: &[u32],
) -> LaunchInfo {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    LaunchInfo {
        abi_version: ABI_VERSION,
        vlen_bits: vlen.unwrap_or(0),
        threads: count(threads),
        gen_threads: count(gen_threads),
        cores: if cores.is_empty() { std::ptr::null() } else { cores.as_ptr() },
        n_cores: count(cores.len()),
        ai_cores: if ai_cores.is_empty() { std::ptr::null() } else { ai_cores.as_ptr() },
        n_ai_cores: count(ai_cores.len()),
        tier_id: tier_id.as_ptr(),
        reason: reason.as_ptr(),
    }
}

/// Where `hartlm calibrate` keeps its ranking: `$XDG_CACHE_HOME/hartlm/`, else `~/.cache/hartlm/`.
fn calibration_file() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("hartlm").join(calibration::FILE_NAME))
}

/// The calibration for this machine, if one was made (`fingerprint` identifies the machine).
fn cached_calibration(fingerprint: &str) -> Result<Cached, Failure> {
    match env(CALIBRATION_ENV).as_deref() {
        None => {}
        Some("off") => return Ok(Cached::Off),
        Some(other) => {
            return Err(fail(2, format!("{CALIBRATION_ENV}={other}: use `off` or leave it unset")));
        }
    }
    let Some(path) = calibration_file() else { return Ok(Cached::Missing) };
    let shown = path.display().to_string();
    Ok(match hartlm_abi::files::read_text_capped(&path, 1 << 20) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Cached::Missing,
        Err(e) => Cached::Stale { path: shown, why: e.to_string() },
        Ok(text) => match Calibration::parse(&text, fingerprint) {
            Ok(calibration) => Cached::Found { path: shown, calibration },
            Err(why) => Cached::Stale { path: shown, why },
        },
    })
}

/// `hartlm calibrate`: times every (tier, cluster) pair the rule allows at rising thread
/// counts, in this process with the threads pinned core by core, and saves the ranking.
fn calibrate_command(
    (size_mib, reps, clear): (u32, u32, bool),
    system: &probe::System,
    tiers: &[&Tier],
    lib_dir: &Path,
    fingerprint: &str,
) -> Result<u8, Failure> {
    let path = calibration_file().ok_or_else(|| {
        fail(1, "neither XDG_CACHE_HOME nor HOME is set: calibrate keeps its ranking there")
    })?;
    if clear {
        match std::fs::remove_file(&path) {
            Ok(()) => hartlm_abi::sayln!("removed {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                hartlm_abi::sayln!("no calibration at {}", path.display())
            }
            Err(e) => return Err(fail(1, format!("cannot remove {}: {e}", path.display()))),
        }
        return Ok(0);
    }
    if system.recorded {
        return Err(fail(
            2,
            format!("{}: calibrate measures this machine, not a recorded one; unset it", probe::SYSROOT_ENV),
        ));
    }
    // Whatever sits at a library's path counts as installed, so a damaged one (a directory, a
    // FIFO) is tried, refused by name and warned about, not silently skipped.
    let exists = |t: &Tier| lib_dir.join(t.library_file()).symlink_metadata().is_ok();
    let plan = plan_placements(tiers, &system.clusters, None, None, exists)
        .map_err(|e| fail(e.exit_code(), e.to_string()))?;
    let mut pairs = Vec::new();
    for p in &plan {
        let Some(cluster) = system.clusters.iter().find(|c| c.name == p.cluster) else { continue };
        let samples = measure_pair(p, cluster, lib_dir, size_mib, reps);
        pairs.push(Measured::new(p.tier.id.0, &cluster.name, &cluster.cores.to_string(), samples));
    }
    let cal = Calibration::new(fingerprint.to_string(), size_mib as usize, pairs);
    let text = serde_json::to_string_pretty(&cal).map_err(|e| fail(1, format!("cannot encode: {e}")))?;
    hartlm_abi::atomic::write_atomic(&path, text.as_bytes())
        .map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))?;
    hartlm_abi::sayln!("| tier | cluster | cores | best GB/s | generation threads |");
    hartlm_abi::sayln!("| --- | --- | --- | ---: | ---: |");
    for m in &cal.pairs {
        hartlm_abi::sayln!(
            "| {} | {} | {} | {:.2} | {} |",
            m.tier,
            m.cluster,
            m.cores,
            m.best_gbps,
            m.knee_threads
        );
    }
    if let Some(best) = cal.pairs.first() {
        hartlm_abi::sayln!("saved {}: hartlm now runs {} on {}", path.display(), best.tier, best.cluster);
    }
    Ok(0)
}

/// The samples of one pair (none when its library cannot be loaded or measured: it ranks last).
fn measure_pair(p: &Placement, cluster: &Cluster, lib_dir: &Path, size_mib: u32, reps: u32) -> Vec<Sample> {
    let path = lib_dir.join(p.tier.library_file());
    // The library's code runs on this cluster only, from loading on.
    let ai = match entry::enter(&mut LiveOs, p, std::slice::from_ref(cluster)) {
        Ok(Entered::Pinned) => false,
        Ok(Entered::AiThread) => true,
        Ok(Entered::Unpinned(e)) | Err(e) => {
            eprintln!("calibrate: warning: cannot run on cores {} ({e}); skipping", cluster.cores);
            return vec![];
        }
    };
    let calibrate = match read_manifest(lib_dir)
        .and_then(|m| load(&path, p.tier, &m))
        .and_then(|lib| symbol(lib, CALIBRATE_SYMBOL, &path))
    {
        // SAFETY: the ABI version matched, so hartlm_calibrate has the CalibrateFn signature.
        Ok(f) => unsafe { std::mem::transmute::<*mut c_void, CalibrateFn>(f) },
        Err(e) => {
            eprintln!("calibrate: warning: {} on {}: {e}; skipping", p.tier.id, cluster.name);
            return vec![];
        }
    };
    let tier_id = CString::new(p.tier.id.0).unwrap_or_default();
    let reason = c"hartlm calibrate";
    let cores: Vec<u32> = cluster.cores.iter().collect();
    let mut samples = Vec::new();
    for threads in calibration::thread_counts(cores.len()) {
        let (pinned, ai_cores): (&[u32], &[u32]) = if ai { (&[], &cores) } else { (&cores[..threads], &[]) };
        let info = launch_info(&tier_id, reason, p.vlen, (threads, threads), pinned, ai_cores);
        let mut timing = MatvecTiming::default();
        // SAFETY: info, its strings and `cores` (at least `threads` long) outlive the call, and
        // timing is writable.
        let rc = unsafe { calibrate(&info, size_mib, reps, &mut timing) };
        if rc != 0 || timing.median_ns == 0 {
            eprintln!(
                "calibrate: warning: {} on {} failed at {threads} threads ({rc})",
                p.tier.id, cluster.name
            );
            break;
        }
        let gbps = timing.bytes as f64 / timing.median_ns as f64;
        eprintln!(
            "calibrate: {} on {} ({} cores), {threads} threads: {gbps:.2} GB/s",
            p.tier.id,
            cluster.name,
            cores.len()
        );
        samples.push(Sample { threads, gbps });
    }
    samples
}
