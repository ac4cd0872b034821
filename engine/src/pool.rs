//! A persistent worker pool: `run(f)` calls `f(i)` on every active worker i (the caller is
//! worker 0) and returns when all are done. Idle workers spin briefly, then park, so per-matmul
//! dispatch costs well under a microsecond while a token is being computed and nothing while idle.
//! Fewer workers than the pool holds can be made active (generation stops scaling at the memory
//! bandwidth knee), and workers can be pinned one per core.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use hartlm_abi::affinity;

/// Spin iterations before parking (tens of microseconds on current cores).
const SPINS: u32 = 20_000;

/// Low bits of the epoch word holding the job's width; also bounds the pool size.
const WIDTH_BITS: u32 = 16;

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// A job counter in the high bits and the number of active workers (the job's width) in
    /// the low [`WIDTH_BITS`], published in one store so a worker never pairs one job with
    /// another's width.
    epoch: AtomicU64,
    job: UnsafeCell<Option<Job>>,
    pending: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    sleepers: AtomicUsize,
    caller_waiting: AtomicBool,
    lock: Mutex<()>,
    wake_workers: Condvar,
    wake_caller: Condvar,
}

// SAFETY: `job` is written only by the caller of `run` while no worker reads it (before the
// epoch is published and after `pending` reaches 0); every other field is a sync primitive.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw job pointer is only dereferenced during `run`.
unsafe impl Send for Shared {}

/// What a worker thread does before it takes work; a worker whose entry fails leaves the pool.
pub type Entry = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Workers (the caller included) that entered their cores and take work.
    entered: usize,
    width: AtomicUsize,
    /// The creating thread's affinity before it was pinned as worker 0, restored on drop.
    caller_affinity: Option<Vec<u32>>,
}

impl Pool {
    /// A pool of `n` threads including the caller (n = 1 spawns nothing), pinned one per core
    /// when [`set_worker_cores`] named enough cores.
    pub fn new(n: usize) -> Pool {
        let cores = WORKER_CORES.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Pool::pinned(n, &cores)
    }

    /// Like [`Pool::new`], with worker i pinned to `cores[i]` (the caller too) when `cores` has
    /// one core per thread; otherwise threads keep the process's affinity. Pinning is best
    /// effort: a core the kernel refuses leaves that thread unpinned.
    pub fn pinned(n: usize, cores: &[u32]) -> Pool {
        let ai = AI_CORES.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if ai.is_empty() {
            return Pool::entering(n, cores, None);
        }
        // Each worker moves itself onto the AI cluster (the caller was moved by the launcher).
        let entry: Entry = Arc::new(move || affinity::enter_ai_cluster(&ai));
        Pool::entering(n, &[], Some(entry))
    }

    /// [`Pool::pinned`] where every spawned worker first runs `entry`; those for which it fails
    /// exit at once (one line says how many and why), so no work runs where entry failed.
    pub fn entering(n: usize, cores: &[u32], entry: Option<Entry>) -> Pool {
        let n = n.clamp(1, (1 << WIDTH_BITS) - 1);
        let cores: Option<Vec<u32>> = (cores.len() >= n).then(|| cores[..n].to_vec());
        let caller_affinity = cores.as_ref().map(|c| {
            let before = affinity::current();
            let _ = affinity::set([c[0]]);
            before
        });
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            caller_waiting: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake_workers: Condvar::new(),
            wake_caller: Condvar::new(),
        });
        // Worker ids are handed out after entry, so the ones taking work stay 1..entered.
        let next_id = Arc::new(AtomicUsize::new(1));
        let (report, results) = std::sync::mpsc::channel::<Result<(), String>>();
        let workers: Vec<JoinHandle<()>> = (1..n)
            .map(|i| {
                let s = Arc::clone(&shared);
                let core = cores.as_ref().map(|c| c[i]);
                let (entry, next_id, report) = (entry.clone(), Arc::clone(&next_id), report.clone());
                std::thread::Builder::new()
                    .name(format!("hartlm-worker-{i}"))
                    .spawn(move || {
                        if let Some(c) = core {
                            let _ = affinity::set([c]);
                        }
                        // Without an entry step every worker takes work, keeping its spawn
                        // index (and so the core it was pinned to).
                        let entered = entry.as_ref().map_or(Ok(()), |e| e());
                        let id = match (&entry, &entered) {
                            (None, _) => Some(i),
                            (Some(_), Ok(())) => Some(next_id.fetch_add(1, SeqCst)),
                            (Some(_), Err(_)) => None,
                        };
                        let _ = report.send(entered);
                        // The pool's constructor reads reports until every sender is gone.
                        drop(report);
                        if let Some(id) = id {
                            worker(&s, id)
                        }
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        drop(report);
        let failures: Vec<String> = results.iter().filter_map(Result::err).collect();
        let entered = n - failures.len();
        if let Some(why) = failures.first() {
            eprintln!(
                "hartlm: {} of {} worker threads could not enter their cores ({why}); running with {entered}",
                failures.len(),
                n - 1
            );
        }
        Pool { shared, workers, entered, width: AtomicUsize::new(entered), caller_affinity }
    }

    /// The workers the next `run` uses.
    pub fn threads(&self) -> usize {
        self.width.load(SeqCst)
    }

    /// Every worker the pool holds that can take work, active or not.
    pub fn capacity(&self) -> usize {
        self.entered
    }

    /// Makes workers 0..n (clamped to 1..=capacity) take part in later runs; the rest stay idle.
    pub fn set_threads(&self, n: usize) {
        self.width.store(n.clamp(1, self.capacity()), SeqCst);
    }

    /// Runs `f(i)` for every active worker i in 0..threads() and waits for all of them.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        let width = self.threads();
        if width == 1 {
            f(0);
            return;
        }
        let s = &*self.shared;
        // SAFETY: the pointer's lifetime is erased, but `run` does not return before every
        // worker has finished calling it (pending == 0), so the borrow outlives all uses.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        // SAFETY: no worker reads `job` until the epoch below is published.
        unsafe { *s.job.get() = Some(job) };
        s.pending.store(width - 1, SeqCst);
        let next = ((s.epoch.load(SeqCst) >> WIDTH_BITS) + 1) << WIDTH_BITS | width as u64;
        s.epoch.store(next, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake_workers.notify_all();
        }
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0)));
        let mut spins = 0;
        while s.pending.load(SeqCst) != 0 {
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let mut g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.caller_waiting.store(true, SeqCst);
            while s.pending.load(SeqCst) != 0 {
                g = s.wake_caller.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            s.caller_waiting.store(false, SeqCst);
        }
        // SAFETY: every worker is done with the job.
        unsafe { *s.job.get() = None };
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if s.panicked.swap(false, SeqCst) {
            panic!("a worker thread panicked");
        }
    }
}

fn worker(s: &Shared, id: usize) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0;
        loop {
            if s.shutdown.load(SeqCst) {
                return;
            }
            let e = s.epoch.load(SeqCst);
            if e != seen {
                seen = e;
                break;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let mut g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.sleepers.fetch_add(1, SeqCst);
            while s.epoch.load(SeqCst) == seen && !s.shutdown.load(SeqCst) {
                g = s.wake_workers.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            s.sleepers.fetch_sub(1, SeqCst);
        }
        if id as u64 >= seen & ((1 << WIDTH_BITS) - 1) {
            // Not part of this job: it neither reads the job nor counts towards `pending`.
            continue;
        }
        // SAFETY: the epoch was published after `job` was set, and `run` keeps it alive until
        // this worker decrements `pending`.
        let job = unsafe { (*s.job.get()).expect("job published with the epoch") };
        // SAFETY: see above; the closure is Sync, so calling it from this thread is sound.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)(id) }));
        if result.is_err() {
            s.panicked.store(true, SeqCst);
        }
        if s.pending.fetch_sub(1, SeqCst) == 1 && s.caller_waiting.load(SeqCst) {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake_caller.notify_all();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        {
            let _g = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake_workers.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(before) = self.caller_affinity.take().filter(|b| !b.is_empty()) {
            let _ = affinity::set(before);
        }
    }
}

/// The range of `len` items worker `i` of `n` handles.
pub fn split(len: usize, i: usize, n: usize) -> std::ops::Range<usize> {
    let per = len.div_ceil(n.max(1));
    (i * per).min(len)..((i + 1) * per).min(len)
}

/// The cores the launcher placed this process on, one per worker in order (empty: none).
static WORKER_CORES: Mutex<Vec<u32>> = Mutex::new(Vec::new());

static AI_CORES: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Makes later pools' workers enter these AI cores through `/proc/set_ai_thread` (the launcher's
/// placement on a K3's A100 cluster, once per process); empty: no such entry.
pub fn set_ai_cores(cores: Vec<u32>) {
    *AI_CORES.lock().unwrap_or_else(|e| e.into_inner()) = cores;
}

/// Makes later pools pin worker i to `cores[i]` (the launcher's placement, once per process).
pub fn set_worker_cores(cores: Vec<u32>) {
    *WORKER_CORES.lock().unwrap_or_else(|e| e.into_inner()) = cores;
}

/// Worker counts for one sequence: prompt batches use `batch` workers, single-token steps
/// `generate` (generation is memory-bound, and past the bandwidth knee more threads only contend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads {
    pub batch: usize,
    pub generate: usize,
}

impl Threads {
    pub fn uniform(n: usize) -> Threads {
        Threads { batch: n, generate: n }
    }
    /// The workers the pool must hold.
    pub fn most(&self) -> usize {
        self.batch.max(self.generate)
    }
    /// The workers for a step of `n_tokens` tokens.
    pub fn for_tokens(&self, n_tokens: usize) -> usize {
        if n_tokens == 1 { self.generate } else { self.batch }
    }
}

impl From<usize> for Threads {
    fn from(n: usize) -> Threads {
        Threads::uniform(n)
    }
}

/// The number of physical cores (distinct core ids), falling back to logical CPUs.
pub fn physical_cores() -> usize {
    let mut cores = std::collections::BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.strip_prefix("cpu").is_some_and(|n| n.parse::<u32>().is_ok()) {
                let t = e.path().join("topology");
                let read = |f: &str| std::fs::read_to_string(t.join(f)).ok().map(|s| s.trim().to_string());
                if let (Some(pkg), Some(core)) = (read("physical_package_id"), read("core_id")) {
                    cores.insert((pkg, core));
                }
            }
        }
    }
    // available_parallelism honours the affinity mask (taskset, cgroups), which the topology
    // files do not.
    let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores.is_empty() { allowed } else { cores.len().min(allowed) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_worker_runs_every_job_and_run_waits() {
        let pool = Pool::new(3);
        let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        for round in 0..2000 {
            pool.run(&|i| {
                hits[i].fetch_add(1, SeqCst);
            });
            // After run returns, all three have counted this round.
            assert!(hits.iter().all(|h| h.load(SeqCst) == round + 1));
            if round == 1000 {
                // Let the workers park, then make sure they wake up.
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    /// Workers that cannot enter their cores (a K3 A100 refusing registration) leave the pool:
    /// the others take every job, with ids 0..entered.
    #[test]
    fn workers_whose_entry_fails_take_no_work() {
        let tries = Arc::new(AtomicUsize::new(0));
        let t = Arc::clone(&tries);
        let entry: Entry =
            Arc::new(
                move || if t.fetch_add(1, SeqCst).is_multiple_of(2) { Err("EINVAL".into()) } else { Ok(()) },
            );
        let pool = Pool::entering(5, &[], Some(entry));
        assert_eq!(tries.load(SeqCst), 4);
        assert_eq!((pool.capacity(), pool.threads()), (3, 3));
        let hits: Vec<AtomicUsize> = (0..5).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..100 {
            pool.run(&|i| {
                hits[i].fetch_add(1, SeqCst);
            });
        }
        let got: Vec<usize> = hits.iter().map(|h| h.load(SeqCst)).collect();
        assert_eq!(got, [100, 100, 100, 0, 0]);
        pool.set_threads(5);
        assert_eq!(pool.threads(), 3);
    }

    #[test]
    fn a_panicking_worker_panics_the_caller_and_the_pool_survives() {
        let pool = Pool::new(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.run(&|i| assert_ne!(i, 1))));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        pool.run(&|_| {
            n.fetch_add(1, SeqCst);
        });
        assert_eq!(n.load(SeqCst), 2);
    }

    #[test]
    fn only_the_active_workers_run_and_width_changes_take_effect() {
        let pool = Pool::new(4);
        let hits: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        for round in 0..3000 {
            // Alternate widths quickly so an idle worker racing a new job would be caught
            // running the wrong one (counts would drift from the expected totals).
            let width = [2, 4, 1, 3][round % 4];
            pool.set_threads(width);
            assert_eq!(pool.threads(), width);
            pool.run(&|i| {
                assert!(i < width, "worker {i} ran a job of width {width}");
                hits[i].fetch_add(1, SeqCst);
            });
        }
        let got: Vec<usize> = hits.iter().map(|h| h.load(SeqCst)).collect();
        assert_eq!(got, [3000, 2250, 1500, 750]);
        pool.set_threads(99);
        assert_eq!(pool.threads(), 4, "clamped to the pool's capacity");
    }

    #[test]
    fn pinned_workers_each_run_on_their_own_core() {
        let allowed = affinity::current();
        assert!(!allowed.is_empty());
        let cores: Vec<u32> = allowed.iter().copied().cycle().take(3).collect();
        let seen: Vec<Mutex<Vec<u32>>> = (0..3).map(|_| Mutex::new(vec![])).collect();
        // The caller is pinned too: run it on its own thread so the test harness is unaffected.
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let pool = Pool::pinned(3, &cores);
                pool.run(&|i| *seen[i].lock().unwrap() = affinity::current());
            });
        });
        for (i, s) in seen.iter().enumerate() {
            assert_eq!(*s.lock().unwrap(), [cores[i]], "worker {i}");
        }
        // Too few cores for the threads: nobody is pinned.
        let pool = Pool::pinned(3, &cores[..1]);
        pool.run(&|i| *seen[i].lock().unwrap() = affinity::current());
        assert_eq!(*seen[2].lock().unwrap(), allowed);
    }

    #[test]
    fn split_covers_everything_once() {
        for len in [0, 1, 7, 64, 100] {
            for n in 1..5 {
                let total: usize = (0..n).map(|i| split(len, i, n).len()).sum();
                assert_eq!(total, len);
            }
        }
    }
}
