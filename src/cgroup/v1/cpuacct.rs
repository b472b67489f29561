//! cgroup v1 cpuacct controller: CPU time of the group (`cpuacct.usage`, `cpuacct.stat`,
//! `cpuacct.usage_user`, `cpuacct.usage_sys`).
//!
//! Kernel quirk: `cpuacct.usage_user`/`usage_sys` (Linux 4.7+) charge each stretch of run time
//! to user or system by the mode the task is in when it is accounted (a tick or a context
//! switch): sampled, not measured. Under CFS bandwidth (`--cpus`) the throttling interrupts land
//! in user mode far more often than their share, and user time came out up to 14.7% above what
//! getrusage (and /usr/bin/time) says, user + system above `usage`. `cpuacct.stat` instead runs
//! the same samples through cputime_adjust(), as getrusage does (Linux 4.11+): the split scaled
//! to the precise total. It is printed in USER_HZ ticks, so the report takes its user/system
//! *ratio* and applies it to `cpuacct.usage` (ns): the total stays exact and the split agrees
//! with getrusage to a tick.

use crate::cgroup::stats::{parse_keyed, parse_single, CpuStats};

/// CPU time from the cpuacct files and throttling from the cpu controller's `cpu.stat`.
pub fn stats(
    usage: Option<&str>,
    usage_user: Option<&str>,
    usage_sys: Option<&str>,
    cpuacct_stat: Option<&str>,
    cpu_stat: Option<&str>,
    user_hz: u64,
) -> CpuStats {
    let ns = |t: Option<&str>| t.and_then(parse_single).map(|v| v as f64 / 1e9);
    let ticks = cpuacct_stat.map(parse_keyed);
    let tick = |k: &str| ticks.as_ref().and_then(|m| m.get(k)).copied();
    let usage_s = ns(usage);
    let (user_s, system_s) = match (usage_s, tick("user"), tick("system")) {
        (Some(total), Some(u), Some(s)) if u + s > 0 => {
            let share = |t: u64| total * t as f64 / (u + s) as f64;
            (Some(share(u)), Some(share(s)))
        }
        // Under one tick of each (a run of a few ms): the sampled ns split, else the ticks.
        _ => (
            ns(usage_user).or_else(|| tick("user").map(|v| v as f64 / user_hz as f64)),
            ns(usage_sys).or_else(|| tick("system").map(|v| v as f64 / user_hz as f64)),
        ),
    };
    let (throttled_periods, throttled_s) = super::cpu::throttling(cpu_stat);
    CpuStats { usage_s, user_s, system_s, throttled_periods, throttled_s }
}

/// `cpuacct.usage` (nanoseconds): the group's CPU time so far.
pub fn usage(text: &str) -> Option<std::time::Duration> {
    text.trim().parse().ok().map(std::time::Duration::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn v1_user_system_split_of_cpuacct_stat_scaled_to_usage() {
        // cpuacct.stat says user 150, system 25 ticks: 6/7 and 1/7 of the precise 3.5 s usage,
        // whatever the sampled usage_user/usage_sys (here overstating user) say.
        let stat = fixture("v1/cpuacct.stat");
        let c = stats(Some("3500000000"), Some("3400000000"), Some("100000000"), Some(&stat), None, 100);
        assert_eq!(c.usage_s, Some(3.5));
        assert!((c.user_s.unwrap() - 3.0).abs() < 1e-9 && (c.system_s.unwrap() - 0.5).abs() < 1e-9, "{c:?}");
        assert_eq!(c.throttled_periods, None);
    }

    #[test]
    fn v1_cpu_falls_back_to_ns_files_then_ticks() {
        let cpu = fixture("v1/cpu.stat");
        // Both ticks 0 (a run of a few ms): the ns files.
        let zero = "user 0\nsystem 0\n";
        let c = stats(Some("3000000"), Some("2000000"), Some("1000000"), Some(zero), Some(&cpu), 100);
        assert_eq!((c.usage_s, c.user_s, c.system_s), (Some(0.003), Some(0.002), Some(0.001)));
        assert_eq!((c.throttled_periods, c.throttled_s), (Some(12), Some(0.5)));
        // No cpuacct.usage: the ticks as they are.
        let c = stats(None, None, None, Some(&fixture("v1/cpuacct.stat")), None, 100);
        assert_eq!((c.usage_s, c.user_s, c.system_s), (None, Some(1.5), Some(0.25)));
    }

    #[test]
    fn cpu_time_limit_reads_cpuacct_usage_in_ns() {
        assert_eq!(usage("3500000000\n"), Some(std::time::Duration::from_millis(3500)));
        assert_eq!(usage(""), None);
    }
}
