//! What a group used, as the kernel counted it, and the parsers for the stat files it comes from.
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
const NSEC: f64 = 1e9;

/// cgroup v2 `cpu.stat`.
pub fn v2_cpu(cpu_stat: &str) -> CpuStats {
    let m = parse_keyed(cpu_stat);
    let secs = |k: &str| m.get(k).map(|v| *v as f64 / USEC);
    CpuStats {
        usage_s: secs("usage_usec"),
        user_s: secs("user_usec"),
        system_s: secs("system_usec"),
        throttled_periods: m.get("nr_throttled").copied(),
        throttled_s: secs("throttled_usec"),
    }
}

/// cgroup v2 `memory.peak` and `memory.events`.
pub fn v2_memory(peak: Option<&str>, events: Option<&str>) -> MemoryStats {
    let ev = events.map(parse_keyed);
    MemoryStats {
        peak_bytes: peak.and_then(parse_single),
        oom_events: ev.as_ref().and_then(|m| m.get("oom").copied()),
        oom_kills: ev.as_ref().and_then(|m| m.get("oom_kill").copied()),
        tcp_peak_bytes: None,
    }
}

/// `pids.peak` and `pids.events` (the same files on v1 and v2).
pub fn pids(peak: Option<&str>, events: Option<&str>) -> PidsStats {
    PidsStats {
        peak: peak.and_then(parse_single),
        limit_hits: events.map(|e| parse_keyed(e).get("max").copied().unwrap_or(0)),
    }
}

/// cgroup v1 cpuacct + cpu files. `usage_user`/`usage_sys` are in ns (kernel ≥ 4.7); without them
/// `cpuacct.stat` gives user/system in USER_HZ ticks.
pub fn v1_cpu(
    usage: Option<&str>,
    usage_user: Option<&str>,
    usage_sys: Option<&str>,
    cpuacct_stat: Option<&str>,
    cpu_stat: Option<&str>,
    user_hz: u64,
) -> CpuStats {
    let ns = |t: Option<&str>| t.and_then(parse_single).map(|v| v as f64 / NSEC);
    let ticks = cpuacct_stat.map(parse_keyed);
    let tick = |k: &str| ticks.as_ref().and_then(|m| m.get(k)).map(|v| *v as f64 / user_hz as f64);
    let throttle = cpu_stat.map(parse_keyed);
    CpuStats {
        usage_s: ns(usage),
        user_s: ns(usage_user).or_else(|| tick("user")),
        system_s: ns(usage_sys).or_else(|| tick("system")),
        throttled_periods: throttle.as_ref().and_then(|m| m.get("nr_throttled").copied()),
        throttled_s: throttle.as_ref().and_then(|m| m.get("throttled_time")).map(|v| *v as f64 / NSEC),
    }
}

/// The "no limit" value of a v1 page counter (PAGE_COUNTER_MAX pages of 4 KiB, in bytes).
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// cgroup v1 `memory.max_usage_in_bytes`, `memory.oom_control` and the TCP buffer counter
/// (`memory.kmem.tcp.limit_in_bytes`, `memory.kmem.tcp.max_usage_in_bytes`). The TCP peak counts
/// only with a limit set: without one the kernel does not charge sockets and its 0 would be made up.
pub fn v1_memory(
    max_usage: Option<&str>,
    oom_control: Option<&str>,
    tcp_limit: Option<&str>,
    tcp_max_usage: Option<&str>,
) -> MemoryStats {
    let tcp_counted = tcp_limit.and_then(parse_single).is_some_and(|l| l < V1_UNLIMITED);
    MemoryStats {
        peak_bytes: max_usage.and_then(parse_single),
        oom_events: None,
        oom_kills: oom_control.and_then(|t| parse_keyed(t).get("oom_kill").copied()),
        tcp_peak_bytes: tcp_max_usage.and_then(parse_single).filter(|_| tcp_counted),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
        std::fs::read_to_string(format!("{p}{name}")).unwrap()
    }

    #[test]
    fn v2_cpu_stat_in_seconds() {
        let c = v2_cpu(&fixture("v2/cpu.stat"));
        assert_eq!(c.usage_s, Some(1.5));
        assert_eq!(c.user_s, Some(1.25));
        assert_eq!(c.system_s, Some(0.25));
        assert_eq!(c.throttled_periods, Some(27));
        assert_eq!(c.throttled_s, Some(2.7));
    }

    #[test]
    fn v2_memory_events_and_peak() {
        let m = v2_memory(Some("33554432\n"), Some(&fixture("v2/memory.events")));
        let want =
            MemoryStats { peak_bytes: Some(33554432), oom_events: Some(2), oom_kills: Some(1), tcp_peak_bytes: None };
        assert_eq!(m, want);
        let m = v2_memory(None, None);
        assert_eq!(m, MemoryStats::default());
    }

    #[test]
    fn pids_events_max_counts_refused_forks() {
        let p = pids(Some("20\n"), Some("max 1234\n"));
        assert_eq!((p.peak, p.limit_hits), (Some(20), Some(1234)));
        assert_eq!(pids(Some("max\n"), Some("")).peak, None);
        assert_eq!(pids(None, Some("")).limit_hits, Some(0));
    }

    #[test]
    fn v1_cpu_prefers_ns_files_and_falls_back_to_ticks() {
        let stat = fixture("v1/cpu.stat");
        let c = v1_cpu(Some("3000000000"), Some("2000000000"), Some("1000000000"), None, Some(&stat), 100);
        assert_eq!((c.usage_s, c.user_s, c.system_s), (Some(3.0), Some(2.0), Some(1.0)));
        assert_eq!((c.throttled_periods, c.throttled_s), (Some(12), Some(0.5)));
        let c = v1_cpu(Some("1"), None, None, Some(&fixture("v1/cpuacct.stat")), None, 100);
        assert_eq!((c.user_s, c.system_s), (Some(1.5), Some(0.25)));
        assert_eq!(c.throttled_periods, None);
    }

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

    #[test]
    fn v1_memory_oom_control() {
        let m = v1_memory(Some("1048576\n"), Some(&fixture("v1/memory.oom_control")), None, None);
        let want =
            MemoryStats { peak_bytes: Some(1048576), oom_events: None, oom_kills: Some(3), tcp_peak_bytes: None };
        assert_eq!(m, want);
    }

    #[test]
    fn v1_tcp_peak_only_where_the_kernel_counts_it() {
        let tcp = |limit: &str| v1_memory(None, None, Some(limit), Some("4096\n")).tcp_peak_bytes;
        assert_eq!(tcp("33554432\n"), Some(4096));
        // No limit set: the kernel charges no socket to the group, so its 0 would be made up.
        assert_eq!(tcp("9223372036854771712\n"), None);
        assert_eq!(v1_memory(None, None, None, None).tcp_peak_bytes, None);
    }
}
