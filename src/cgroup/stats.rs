//! What a group used, as the kernel counted it, and the parsers shared by every controller's
//! stat files (each controller's own parser is beside it, in v1/ and v2/).
//!
//! Every figure is `None` when the kernel does not provide the file it comes from: the report says
//! "unknown" (JSON `null`) rather than inventing a zero.

use std::collections::HashMap;

use serde::Serialize;

/// CPU time of the whole group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuStats {
    /// Total CPU time (v2 cpu.stat usage_usec; v1 cpuacct.usage), seconds.
    pub usage_s: Option<f64>,
    /// User CPU time (v2 user_usec; v1 the user share of cpuacct.stat applied to
    /// cpuacct.usage), seconds.
    pub user_s: Option<f64>,
    /// System CPU time (v2 system_usec; v1 the system share of cpuacct.stat applied to
    /// cpuacct.usage), seconds.
    pub system_s: Option<f64>,
    /// Enforcement periods in which the group was throttled (nr_throttled).
    pub throttled_periods: Option<u64>,
    /// Time throttled (v2 throttled_usec; v1 throttled_time), seconds, summed over CPUs: each
    /// CPU's run queue adds the time it spent throttled, so with several CPUs this can exceed
    /// the wall time.
    pub throttled_s: Option<f64>,
}

/// Memory of the whole group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryStats {
    /// Highest usage seen (v2 memory.peak; v1 memory.max_usage_in_bytes), bytes.
    pub peak_bytes: Option<u64>,
    /// Times the group hit its limit and reclaim failed (v2 memory.events `oom`; v1: not counted).
    pub oom_events: Option<u64>,
    /// Processes killed by the OOM killer (v2 memory.events `oom_kill`; v1 memory.oom_control `oom_kill`).
    pub oom_kills: Option<u64>,
    /// v1 only: highest TCP socket buffer usage (memory.kmem.tcp.max_usage_in_bytes), a counter
    /// apart from `peak_bytes` that the kernel keeps only once its limit is set (with `--mem`).
    /// `None` on v2, where socket buffers are part of memory.peak, and on v1 without `--mem`.
    pub tcp_peak_bytes: Option<u64>,
    /// Times the group went over memory.high and was throttled into reclaim (v2 memory.events
    /// `high`; v1 has no such counter).
    pub high_events: Option<u64>,
    /// Highest swap usage (v2 memory.swap.peak, Linux 6.5+). v1 keeps no swap peak: `None`
    /// there (see `memsw_peak_bytes`).
    pub swap_peak_bytes: Option<u64>,
    /// v1 only: highest memory+swap usage (memory.memsw.max_usage_in_bytes, with swap
    /// accounting). Not a swap peak: the two peaks need not fall at the same moment.
    pub memsw_peak_bytes: Option<u64>,
    /// What memory was made of at the sample nearest the peak (the sample with the highest
    /// usage): every figure `None` in a run without samples (`--samples`, `--plot`).
    pub at_peak: MemoryBreakdown,
}

/// What a group's memory is made of at one moment (memory.stat), bytes: each sample's breakdown,
/// and the report's `memory.at_peak`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryBreakdown {
    /// Anonymous memory (heap, stacks, private mappings).
    pub anon_bytes: Option<u64>,
    /// Page cache, shmem and tmpfs included.
    pub file_bytes: Option<u64>,
    /// Kernel memory charged to the group (slab, stacks, page tables…).
    pub kernel_bytes: Option<u64>,
    /// Socket buffers.
    pub sock_bytes: Option<u64>,
    /// Shared memory and tmpfs (part of `file_bytes`).
    pub shmem_bytes: Option<u64>,
}

/// Tasks of the whole group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PidsStats {
    /// Highest number of tasks at once (pids.peak).
    pub peak: Option<u64>,
    /// Forks refused because pids.max was reached (pids.events `max`).
    pub limit_hits: Option<u64>,
}

/// Block I/O of the whole group, summed over devices (v2 io.stat; v1
/// blkio.throttle.io_service_bytes_recursive and io_serviced_recursive).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IoStats {
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    pub read_ops: Option<u64>,
    pub write_ops: Option<u64>,
}

/// Stall time of one resource (a `*.pressure` file's `total`, kept since the group was made, i.e.
/// for this run), seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pressure {
    /// Time at least one task of the group was stalled on the resource.
    pub some_s: Option<f64>,
    /// Time every non-idle task of the group was stalled at once.
    pub full_s: Option<f64>,
}

/// Pressure stall information (PSI) of the group: cpu.pressure, memory.pressure, io.pressure.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PressureStats {
    pub cpu: Pressure,
    pub memory: Pressure,
    pub io: Pressure,
}

/// Everything the report says about usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub io: IoStats,
    pub pressure: PressureStats,
}

/// What a group holds at one moment, for the sampler (`--samples`): cumulative counters (CPU
/// usage and throttling, io bytes, pressure totals) and the current memory and tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Now {
    /// `usage_s`, `throttled_periods`, `throttled_s` (the user/system split is not read).
    pub cpu: CpuStats,
    /// Memory in use (v2 memory.current; v1 memory.usage_in_bytes), bytes.
    pub memory_bytes: Option<u64>,
    pub memory: MemoryBreakdown,
    /// Tasks now (pids.current).
    pub pids: Option<u64>,
    pub io: IoStats,
    pub pressure: PressureStats,
}

/// Parses "key value" lines (cpu.stat, memory.events, pids.events, memory.oom_control, cpuacct.stat).
pub fn parse_keyed(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Parses a file holding one number (memory.peak, pids.peak, cpuacct.usage). `max` is not a number.
pub fn parse_single(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

const USEC: f64 = 1e6;

/// The figures wait4(2) gives for a run without a cgroup (rootless, no delegation): CPU time of
/// the child and every descendant that was reaped, which in a pid namespace is all of them once
/// its PID 1 is gone. Memory and tasks are not counted that way: unknown, not guessed.
pub fn from_rusage(r: &libc::rusage) -> Stats {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / USEC;
    let (user, system) = (tv(r.ru_utime), tv(r.ru_stime));
    Stats {
        cpu: CpuStats {
            usage_s: Some(user + system),
            user_s: Some(user),
            system_s: Some(system),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A fixture file from tests/fixtures (for the parsers' unit tests).
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> String {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    std::fs::read_to_string(format!("{p}{name}")).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rusage_gives_cpu_time_only() {
        // SAFETY: rusage is plain old data; all zeroes is a valid value.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        r.ru_utime = libc::timeval { tv_sec: 1, tv_usec: 500_000 };
        r.ru_stime = libc::timeval { tv_sec: 0, tv_usec: 250_000 };
        r.ru_maxrss = 1024;
        let s = from_rusage(&r);
        assert_eq!((s.cpu.usage_s, s.cpu.user_s, s.cpu.system_s), (Some(1.75), Some(1.5), Some(0.25)));
        assert_eq!((s.memory, s.pids, s.cpu.throttled_s), (MemoryStats::default(), PidsStats::default(), None));
    }
}
