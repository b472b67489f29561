//! cgroup v1 cpuacct controller: CPU time of the group (`cpuacct.usage`, `cpuacct.usage_user`,
//! `cpuacct.usage_sys`, `cpuacct.stat`).

use crate::cgroup::stats::{parse_keyed, parse_single, CpuStats};

/// CPU time from the cpuacct files and throttling from the cpu controller's `cpu.stat`.
/// `usage_user`/`usage_sys` are in ns (kernel ≥ 4.7); without them `cpuacct.stat` gives
/// user/system in USER_HZ ticks.
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
    let tick = |k: &str| ticks.as_ref().and_then(|m| m.get(k)).map(|v| *v as f64 / user_hz as f64);
    let (throttled_periods, throttled_s) = super::cpu::throttling(cpu_stat);
    CpuStats {
        usage_s: ns(usage),
        user_s: ns(usage_user).or_else(|| tick("user")),
        system_s: ns(usage_sys).or_else(|| tick("system")),
        throttled_periods,
        throttled_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn v1_cpu_prefers_ns_files_and_falls_back_to_ticks() {
        let stat = fixture("v1/cpu.stat");
        let c = stats(Some("3000000000"), Some("2000000000"), Some("1000000000"), None, Some(&stat), 100);
        assert_eq!((c.usage_s, c.user_s, c.system_s), (Some(3.0), Some(2.0), Some(1.0)));
        assert_eq!((c.throttled_periods, c.throttled_s), (Some(12), Some(0.5)));
        let c = stats(Some("1"), None, None, Some(&fixture("v1/cpuacct.stat")), None, 100);
        assert_eq!((c.user_s, c.system_s), (Some(1.5), Some(0.25)));
        assert_eq!(c.throttled_periods, None);
    }
}
