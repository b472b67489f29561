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
    /// User CPU time (v2 user_usec; v1 cpuacct.usage_user or cpuacct.stat user), seconds.
    pub user_s: Option<f64>,
    /// System CPU time (v2 system_usec; v1 cpuacct.usage_sys or cpuacct.stat system), seconds.
    pub system_s: Option<f64>,
    /// Enforcement periods in which the group was throttled (nr_throttled).
    pub throttled_periods: Option<u64>,
    /// Total time throttled (v2 throttled_usec; v1 throttled_time), seconds.
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
}

/// Tasks of the whole group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PidsStats {
    /// Highest number of tasks at once (pids.peak).
    pub peak: Option<u64>,
    /// Forks refused because pids.max was reached (pids.events `max`).
    pub limit_hits: Option<u64>,
}

/// Everything the report says about usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
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
