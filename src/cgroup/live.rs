//! What a live group uses now, for `sandbox stats` (and `ps`): one [`Reading`] of the cgroup files,
//! and [`Live`] figures from two readings (CPU % needs an interval). The files are those a run's
//! samples read ([`Cgroup::now`], [`crate::samples::Sample`]), plus the limits the group has now
//! and the pressure averages the kernel keeps.

use std::time::Instant;

use serde::Serialize;

use super::pressure::{avg10s, Avg10};
use super::stats::Now;
use super::{Cgroup, Configured};
use crate::samples::Sample;

/// The group's files at one moment.
#[derive(Debug, Clone)]
pub struct Reading {
    pub at: Instant,
    pub now: Now,
    pub configured: Configured,
    pub avg10: Avg10,
    pub frozen: Option<bool>,
}

/// Reads the group's usage, limits and pressure.
pub fn read(g: &dyn Cgroup) -> Reading {
    let at = Instant::now();
    let now = g.now();
    // Pressure files exist on v2 and on v1 kernels built to add them: the first group that has
    // them (a stat each, not three failed opens per v1 hierarchy).
    let paths = g.paths();
    let avg10 = match now.pressure.cpu.some_s {
        Some(_) => paths.values().find(|d| d.join("cpu.pressure").exists()).map(|d| avg10s(d)).unwrap_or_default(),
        // `now` found no pressure file in any of the group's directories.
        None => Avg10::default(),
    };
    Reading { at, now, configured: g.configured(), avg10, frozen: g.frozen() }
}

/// What `stats` shows of one container (JSON keys as named). `None` (`null`): the kernel has no
/// such figure for this group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Live {
    /// CPU used over the interval between the two readings, 100 = one whole CPU (as docker).
    pub cpu_percent: Option<f64>,
    /// CPU time of the whole group so far, seconds.
    pub cpu_usage_s: Option<f64>,
    /// Memory in use (v2 memory.current; v1 memory.usage_in_bytes).
    pub memory_bytes: Option<u64>,
    /// The group's memory limit, or the machine's memory when it has none (as docker shows it).
    pub memory_limit_bytes: Option<u64>,
    /// Whether `memory_limit_bytes` is the group's own limit (false: the machine's memory).
    pub memory_limited: bool,
    pub memory_percent: Option<f64>,
    pub pids: Option<u64>,
    /// pids.max; `None`: no limit.
    pub pids_limit: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    /// PSI `some avg10` (percent of the last 10 s stalled) of cpu, memory and io; v2 only.
    pub pressure_avg10: Avg10,
    /// Whether the group is frozen (`pause`); `None` without a freezer.
    pub frozen: Option<bool>,
}

/// The figures of `b`, with CPU % over the time since `a` (`a` = `b`: no CPU %).
/// `host_memory`: the machine's memory, shown as the limit of a group without one.
pub fn between(a: &Reading, b: &Reading, host_memory: Option<u64>) -> Live {
    let first = Sample::from_now(0.0, &a.now, None);
    let s = Sample::from_now(b.at.duration_since(a.at).as_secs_f64(), &b.now, Some(&first));
    let limit = b.configured.memory_max;
    let shown = limit.or(host_memory);
    let percent = match (s.memory_bytes, shown) {
        (Some(m), Some(l)) if l > 0 => Some(m as f64 * 100.0 / l as f64),
        _ => None,
    };
    Live {
        cpu_percent: s.cpu_rate.map(|r| r * 100.0),
        cpu_usage_s: s.cpu_usage_s,
        memory_bytes: s.memory_bytes,
        memory_limit_bytes: shown,
        memory_limited: limit.is_some(),
        memory_percent: percent,
        pids: s.pids,
        pids_limit: b.configured.pids_max,
        io_read_bytes: s.io_read_bytes,
        io_write_bytes: s.io_write_bytes,
        pressure_avg10: b.avg10.clone(),
        frozen: b.frozen,
    }
}

/// MemTotal of /proc/meminfo, bytes.
pub fn host_memory() -> Option<u64> {
    let t = crate::sys::read_small("/proc/meminfo").ok()?;
    meminfo_total(&t)
}

fn meminfo_total(meminfo: &str) -> Option<u64> {
    let kib: u64 =
        meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::CpuStats;

    fn reading(at: Instant, cpu_s: f64, mem: u64, limit: Option<u64>) -> Reading {
        Reading {
            at,
            now: Now {
                cpu: CpuStats { usage_s: Some(cpu_s), ..Default::default() },
                memory_bytes: Some(mem),
                pids: Some(3),
                ..Default::default()
            },
            configured: Configured { memory_max: limit, pids_max: Some(20) },
            avg10: Avg10 { cpu: Some(1.5), ..Default::default() },
            frozen: Some(false),
        }
    }

    #[test]
    fn cpu_percent_over_the_interval_and_memory_against_the_limit() {
        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_millis(500);
        let l = between(&reading(t0, 10.0, 0, None), &reading(t1, 10.25, 16 << 20, Some(64 << 20)), Some(1 << 30));
        assert!((l.cpu_percent.unwrap() - 50.0).abs() < 1e-9, "{l:?}");
        assert_eq!((l.memory_limit_bytes, l.memory_limited), (Some(64 << 20), true));
        assert_eq!(l.memory_percent, Some(25.0));
        assert_eq!((l.pids, l.pids_limit, l.pressure_avg10.cpu), (Some(3), Some(20), Some(1.5)));
        // No limit: the machine's memory, as docker shows it; one reading: no CPU %.
        let r = reading(t1, 1.0, 1 << 29, None);
        let l = between(&r, &r, Some(1 << 30));
        assert_eq!((l.memory_limit_bytes, l.memory_limited, l.memory_percent), (Some(1 << 30), false, Some(50.0)));
        assert_eq!(l.cpu_percent, None);
    }

    #[test]
    fn meminfo_total_in_bytes() {
        assert_eq!(meminfo_total("MemTotal:       24546108 kB\nMemFree: 1 kB\n"), Some(24_546_108 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
    }
}
