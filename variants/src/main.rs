//! The `hartlm` launcher: probes the CPU, picks the best tier it can safely run, dlopens that
//! tier's engine library from `lib/` beside `bin/` and hands it argv. `hartlm cpu` explains it.

use std::ffi::{CStr, CString, OsString, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hartlm_abi::{ABI_SYMBOL, ABI_VERSION, AbiVersionFn, ENTRY_SYMBOL, EntryFn, LaunchInfo};
use hartlm_variants::cluster::Cluster;
use hartlm_variants::placement::{Placement, plan_placements};
use hartlm_variants::{Tier, probe, report, tier};

const TIER_ENV: &str = "HARTLM_TIER";
const CLUSTER_ENV: &str = "HARTLM_CLUSTER";
const LIB_DIR_ENV: &str = "HARTLM_LIB_DIR";
/// Set to 1 to print which library was loaded and where (instruction profiles need the base).
const VERBOSE_ENV: &str = "HARTLM_VERBOSE";

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
            eprintln!("hartlm: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run() -> Result<u8, Failure> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let system = probe::system().map_err(|e| fail(2, e))?;
    if system.clusters.is_empty() {
        return Err(fail(2, "no usable processor: HARTLM_CORES or the CPU affinity leaves none"));
    }
    let lib_dir = library_dir()?;
    let env = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
    let (forced, forced_cluster) = (env(TIER_ENV), env(CLUSTER_ENV));
    let tiers = tier::for_arch(system.clusters[0].cpu.arch);
    let exists = |t: &Tier| lib_dir.join(t.library_file()).is_file();

    if args.get(1).is_some_and(|a| a == "cpu") {
        return cpu_command(
            &args[2..],
            &system.clusters,
            &tiers,
            forced.as_deref(),
            forced_cluster.as_deref(),
            exists,
        );
    }
    let plan =
        plan_placements(&tiers, &system.clusters, forced.as_deref(), forced_cluster.as_deref(), exists)
            .map_err(|e| fail(e.exit_code(), e.to_string()))?;
    let mut last_error = String::new();
    let mut failed: Vec<&str> = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        if failed.contains(&p.tier.id.0) {
            continue;
        }
        let path = lib_dir.join(p.tier.library_file());
        match load(&path) {
            Ok(entry) => {
                let reason = if i > 0 { format!("fallback: {last_error}") } else { p.reason.clone() };
                // Threads the engine creates inherit the main thread's affinity.
                if !system.recorded
                    && let Err(e) = probe::pin_process(&p.cores)
                {
                    eprintln!("hartlm: warning: cannot keep threads on cores {} ({e})", p.cores);
                }
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
                return call_engine(entry, &args, p, &reason);
            }
            Err(e) => {
                last_error = format!("tier {} failed to load: {e}", p.tier.id);
                failed.push(p.tier.id.0);
                if let Some(next) = plan.iter().skip(i + 1).find(|n| !failed.contains(&n.tier.id.0)) {
                    eprintln!("hartlm: warning: {last_error}; falling back to {}", next.tier.id);
                }
            }
        }
    }
    Err(fail(1, format!("{last_error}; reinstall the hartlm tarball")))
}

fn cpu_command(
    args: &[OsString],
    clusters: &[Cluster],
    tiers: &[&Tier],
    forced: Option<&str>,
    forced_cluster: Option<&str>,
    exists: impl Fn(&Tier) -> bool,
) -> Result<u8, Failure> {
    const USAGE: &str = "usage: hartlm cpu [--json | --runner-labels]";
    let (mut json, mut labels) = (false, false);
    for a in args {
        match a.to_str() {
            Some("--json") => json = true,
            Some("--runner-labels") => labels = true,
            Some("-h" | "--help") => {
                println!(
                    "{USAGE}\nShows detected CPU features and which tier runs; --runner-labels prints the \
                     GitHub Actions runner labels for this machine (ci/runner/install.sh uses them)."
                );
                return Ok(0);
            }
            _ => return Err(fail(2, format!("unknown argument {a:?} for `hartlm cpu`; {USAGE}"))),
        }
    }
    let r = report::build(clusters, tiers, forced, forced_cluster, exists);
    if labels {
        let value = serde_json::to_value(&r).map_err(|e| fail(1, format!("cannot encode report: {e}")))?;
        let labels = hartlm_variants::labels::runner_labels(&value).map_err(|e| fail(1, e))?;
        println!("{}", labels.join(","));
    } else if json {
        let text =
            serde_json::to_string_pretty(&r).map_err(|e| fail(1, format!("cannot encode report: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", report::render_text(&r));
    }
    Ok(0)
}

/// `lib/` next to the directory holding the executable's real path, or HARTLM_LIB_DIR.
fn library_dir() -> Result<PathBuf, Failure> {
    if let Some(dir) = std::env::var_os(LIB_DIR_ENV) {
        return Ok(PathBuf::from(dir));
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

/// Loads an engine library and checks its ABI version. The handle is never closed: the engine
/// may leave threads or thread-locals behind that must outlive the call.
fn load(path: &Path) -> Result<EntryFn, String> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: cpath is NUL-terminated; the library was built for a tier this CPU can run, so its
    // initialisers execute only supported instructions.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(dlerror_text());
    }
    let symbol = |name: &CStr| -> Result<*mut c_void, String> {
        // SAFETY: handle is a live dlopen handle and name is NUL-terminated.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if p.is_null() {
            Err(format!("{} is not a hartlm engine library (no {name:?})", path.display()))
        } else {
            Ok(p)
        }
    };
    let abi = symbol(ABI_SYMBOL)?;
    // SAFETY: hartlm_abi_version has had this signature since ABI 1; checking it is the point.
    let version = unsafe { std::mem::transmute::<*mut c_void, AbiVersionFn>(abi)() };
    if version != ABI_VERSION {
        return Err(format!(
            "{} has engine ABI {version}, this launcher speaks {ABI_VERSION} (mixed installation)",
            path.display()
        ));
    }
    let entry = symbol(ENTRY_SYMBOL)?;
    // SAFETY: the ABI version matched, so hartlm_main has the EntryFn signature.
    Ok(unsafe { std::mem::transmute::<*mut c_void, EntryFn>(entry) })
}

/// The address the library holding `entry` was mapped at (0 if the loader cannot say).
fn load_base(entry: EntryFn) -> usize {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the address and fills `info`, which is valid for writes.
    let found = unsafe { libc::dladdr(entry as *const c_void, info.as_mut_ptr()) };
    // SAFETY: zero-initialised, and filled by dladdr when it returns non-zero.
    if found == 0 { 0 } else { unsafe { info.assume_init() }.dli_fbase as usize }
}

fn call_engine(entry: EntryFn, args: &[OsString], p: &Placement, reason: &str) -> Result<u8, Failure> {
    let to_c = |s: &[u8]| CString::new(s).map_err(|_| fail(2, "argument contains a NUL byte"));
    let c_args: Vec<CString> = args.iter().map(|a| to_c(a.as_bytes())).collect::<Result<_, _>>()?;
    let mut argv: Vec<*const c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let tier_id = to_c(p.tier.id.0.as_bytes())?;
    let reason = to_c(reason.as_bytes())?;
    let info = LaunchInfo {
        abi_version: ABI_VERSION,
        vlen_bits: p.vlen.unwrap_or(0),
        threads: u32::try_from(p.threads).unwrap_or(u32::MAX),
        tier_id: tier_id.as_ptr(),
        reason: reason.as_ptr(),
    };
    let argc = c_int::try_from(c_args.len()).map_err(|_| fail(2, "too many arguments"))?;
    // SAFETY: argv holds argc valid C strings plus a terminating null; info and the strings it
    // points to outlive the call.
    let status = unsafe { entry(argc, argv.as_ptr(), &info) };
    Ok(u8::try_from(status).unwrap_or(1))
}
