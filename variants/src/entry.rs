//! Entering a placement's cores before the engine runs: `sched_setaffinity` for ordinary
//! clusters, SpacemiT's `/proc/set_ai_thread` for AI clusters that refuse affinity (K3 A100).
//!
//! The decisions are pure functions over an [`Os`]: the live one, or a recorded system's
//! simulation (HARTLM_SYSROOT, `<root>/hartlm/sched`) that tests inject failures into.

use std::path::{Path, PathBuf};

use crate::cluster::{Cluster, CoreKind, CoreSet};
use crate::placement::Placement;
use crate::select::evaluate;

/// What the launcher asks of the kernel for the calling thread (whose affinity its engine
/// threads inherit).
pub trait Os {
    /// `sched_setaffinity` of the calling thread.
    fn set_affinity(&mut self, cores: &CoreSet) -> Result<(), String>;
    /// Writes `0` to `/proc/set_ai_thread`, moving the thread onto the AI cluster.
    fn register_ai_thread(&mut self) -> Result<(), String>;
    /// The CPUs the calling thread may run on now.
    fn current(&self) -> CoreSet;
}

/// Whether `cluster`'s cores are entered through `/proc/set_ai_thread`: AI cores of a type the
/// kernel keeps out of plain affinity masks (K3 A100: EINVAL for any mask naming them).
pub fn needs_ai_registration(cluster: &Cluster) -> bool {
    cluster.kind == CoreKind::Ai
        && cluster.cpu.marchid.and_then(crate::cpu::spacemit_core).is_some_and(|k| k.ai_thread_entry)
}

/// How the thread got onto the placement's cores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entered {
    /// Pinned to the placement's cores.
    Pinned,
    /// Registered as an AI thread and pinned among the AI cores; workers must do the same.
    AiThread,
    /// Pinning failed, but every core the thread may run on has the tier's instructions and
    /// the placement's VLEN: run there (the text says why it could not pin).
    Unpinned(String),
}

/// Moves the calling thread onto `p`'s cores, or says why it cannot. It never leaves the thread
/// where the tier could meet a core without its instructions or with another VLEN.
pub fn enter(os: &mut dyn Os, p: &Placement, clusters: &[Cluster]) -> Result<Entered, String> {
    let chosen = clusters.iter().find(|c| c.name == p.cluster);
    let ai = chosen.is_some_and(needs_ai_registration);
    let attempt = if ai {
        os.register_ai_thread()
            .map_err(|e| format!("registering with /proc/set_ai_thread failed: {e}"))
            .and_then(|()| os.set_affinity(&p.cores).map_err(|e| format!("pinning after registering: {e}")))
    } else {
        os.set_affinity(&p.cores).map_err(|e| format!("sched_setaffinity: {e}"))
    };
    let now = os.current();
    match attempt {
        Ok(()) if !now.is_empty() && now.is_subset(&p.cores) => {
            Ok(if ai { Entered::AiThread } else { Entered::Pinned })
        }
        Ok(()) => Err(format!("the thread may still run on cores {now}, outside {}", p.cores)),
        Err(e) if !ai && runs_everywhere(p, clusters, &now) => Ok(Entered::Unpinned(e)),
        Err(e) => Err(e),
    }
}

/// Whether `p`'s tier runs, at its VLEN, on every core of `cores` that `clusters` know (cores
/// they do not know are outside this process's allowed set and count as unsafe).
fn runs_everywhere(p: &Placement, clusters: &[Cluster], cores: &CoreSet) -> bool {
    !cores.is_empty()
        && cores.iter().all(|cpu| {
            clusters
                .iter()
                .find(|c| c.cores.contains(cpu))
                .is_some_and(|c| c.cpu.vlen == p.vlen && evaluate(p.tier, &c.cpu).is_eligible())
        })
}

/// The live kernel.
pub struct LiveOs;

impl Os for LiveOs {
    fn set_affinity(&mut self, cores: &CoreSet) -> Result<(), String> {
        hartlm_abi::affinity::set(cores.iter()).map_err(|e| e.to_string())
    }

    fn register_ai_thread(&mut self) -> Result<(), String> {
        use std::io::Write as _;
        let path = hartlm_abi::affinity::AI_THREAD_PROC;
        let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| format!("{path}: {e}"))?;
        f.write_all(b"0").map_err(|e| format!("{path}: {e}"))
    }

    fn current(&self) -> CoreSet {
        hartlm_abi::affinity::current().into_iter().collect()
    }
}

/// A recorded system's scheduler (HARTLM_SYSROOT). `<root>/hartlm/sched` may say
/// `refuse <cpus>` (affinity masks naming them fail with EINVAL, unless the thread registered
/// and the mask stays within the AI cores) and `ai <cpus>` (where registering moves the thread).
/// Registering appends `0` to `<root>/proc/set_ai_thread`, and fails if that file is missing.
pub struct RecordedOs {
    ai_proc: PathBuf,
    refuse: CoreSet,
    ai: CoreSet,
    registered: bool,
    current: CoreSet,
}

impl RecordedOs {
    /// The scheduler of the recorded system at `root`, whose thread starts on `allowed` (the
    /// recorded process's affinity, whatever HARTLM_CORES narrows the placement to).
    pub fn new(root: &Path, allowed: CoreSet) -> Result<RecordedOs, String> {
        let mut os = RecordedOs {
            ai_proc: root.join("proc/set_ai_thread"),
            refuse: CoreSet::default(),
            ai: CoreSet::default(),
            registered: false,
            current: allowed,
        };
        let text = std::fs::read_to_string(root.join("hartlm/sched")).unwrap_or_default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let bad =
                || format!("HARTLM_SYSROOT: hartlm/sched line `{line}`: use `refuse <cpus>` or `ai <cpus>`");
            let (key, cpus) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
            let cpus = CoreSet::parse(cpus).map_err(|e| format!("HARTLM_SYSROOT: hartlm/sched: {e}"))?;
            match key {
                "refuse" => os.refuse = cpus,
                "ai" => os.ai = cpus,
                _ => return Err(bad()),
            }
        }
        Ok(os)
    }
}

impl Os for RecordedOs {
    fn set_affinity(&mut self, cores: &CoreSet) -> Result<(), String> {
        let allowed_ai = self.registered && cores.is_subset(&self.ai);
        if !cores.intersection(&self.refuse).is_empty() && !allowed_ai {
            return Err("Invalid argument (os error 22)".into());
        }
        self.current = cores.clone();
        Ok(())
    }

    fn register_ai_thread(&mut self) -> Result<(), String> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.ai_proc)
            .map_err(|e| format!("/proc/set_ai_thread: {e}"))?;
        f.write_all(b"0\n").map_err(|e| format!("/proc/set_ai_thread: {e}"))?;
        self.registered = true;
        if !self.ai.is_empty() {
            self.current = self.ai.clone();
        }
        Ok(())
    }

    fn current(&self) -> CoreSet {
        self.current.clone()
    }
}
