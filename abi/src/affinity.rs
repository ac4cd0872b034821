//! CPU affinity of the calling thread: the launcher pins itself to a cluster (and a probe thread
//! to one core), the engine pins each worker to the core `LaunchInfo::cores` names.

/// The CPUs the calling thread may run on; empty if the kernel will not say.
pub fn current() -> Vec<u32> {
    // SAFETY: cpu_set_t is plain data and all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the size matches the buffer.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return vec![];
    }
    // SAFETY: CPU_ISSET reads the set filled above; every index is below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .map(|c| c as u32)
        .collect()
}

/// `cores` as a kernel CPU set (CPUs beyond CPU_SETSIZE cannot be named and are left out).
pub fn cpu_set(cores: impl IntoIterator<Item = u32>) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data and all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for c in cores.into_iter().map(|c| c as usize).filter(|&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: the index is below CPU_SETSIZE, inside the set.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    set
}

/// Restricts the calling thread, and the threads it creates later, to `cores`.
pub fn set(cores: impl IntoIterator<Item = u32>) -> std::io::Result<()> {
    let set = cpu_set(cores);
    // SAFETY: pid 0 is the calling thread; the size matches the set passed.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// SpacemiT's interface for moving the calling thread onto the AI cluster (K3 A100), whose cores
/// plain `sched_setaffinity` refuses with EINVAL.
pub const AI_THREAD_PROC: &str = "/proc/set_ai_thread";

/// Moves the calling thread onto the AI cores `cores` the vendor's way: writes `0` to
/// [`AI_THREAD_PROC`], pins the thread among `cores`, then checks that it may run on no other
/// CPU. The error says which step failed.
pub fn enter_ai_cluster(cores: &[u32]) -> Result<(), String> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(AI_THREAD_PROC)
        .map_err(|e| format!("opening {AI_THREAD_PROC}: {e}"))?;
    f.write_all(b"0").map_err(|e| format!("writing {AI_THREAD_PROC}: {e}"))?;
    set(cores.iter().copied()).map_err(|e| format!("pinning among the AI cores after registering: {e}"))?;
    let now = current();
    if now.is_empty() || now.iter().any(|c| !cores.contains(c)) {
        return Err(format!("after registering, the thread may still run on CPUs {now:?}"));
    }
    Ok(())
}
