//! A persistent worker pool: `run(f)` calls `f(i)` on every worker i (the caller is worker 0)
//! and returns when all are done. Idle workers spin briefly, then park, so per-matmul dispatch
//! costs well under a microsecond while a token is being computed and nothing while idle.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Spin iterations before parking (tens of microseconds on current cores).
const SPINS: u32 = 20_000;

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
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

pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `n` threads including the caller (n = 1 spawns nothing).
    pub fn new(n: usize) -> Pool {
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
        let workers = (1..n.max(1))
            .map(|i| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("hartlm-worker-{i}"))
                    .spawn(move || worker(&s, i))
                    .expect("spawning a worker thread")
            })
            .collect();
        Pool { shared, workers }
    }

    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` for every worker i in 0..threads() and waits for all of them.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            f(0);
            return;
        }
        let s = &*self.shared;
        // SAFETY: the pointer's lifetime is erased, but `run` does not return before every
        // worker has finished calling it (pending == 0), so the borrow outlives all uses.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        // SAFETY: no worker reads `job` until the epoch below is published.
        unsafe { *s.job.get() = Some(job) };
        s.pending.store(self.workers.len(), SeqCst);
        s.epoch.fetch_add(1, SeqCst);
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
    }
}

/// The range of `len` items worker `i` of `n` handles.
pub fn split(len: usize, i: usize, n: usize) -> std::ops::Range<usize> {
    let per = len.div_ceil(n.max(1));
    (i * per).min(len)..((i + 1) * per).min(len)
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
    fn split_covers_everything_once() {
        for len in [0, 1, 7, 64, 100] {
            for n in 1..5 {
                let total: usize = (0..n).map(|i| split(len, i, n).len()).sum();
                assert_eq!(total, len);
            }
        }
    }
}
