//! cgroup v2 cpu controller: `--cpus` as `cpu.max`, `--cpu-weight` as `cpu.weight`, and CPU time
//! and throttling from `cpu.stat`.

use std::path::Path;

use crate::cgroup::stats::{parse_keyed, CpuStats};
use crate::cgroup::{write, CPU_PERIOD_US};
use crate::error::Result;

/// Writes `--cpus` and `--cpu-weight` to the group `dir`.
pub fn apply(dir: &Path, cpus: Option<f64>, weight: Option<u64>) -> Result<()> {
    if let Some(cpus) = cpus {
        let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
        write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
    }
    if let Some(w) = weight {
        write(&dir.join("cpu.weight"), &w.to_string())?;
    }
    Ok(())
}

/// cgroup v2 `cpu.stat`.
pub fn stats(cpu_stat: &str) -> CpuStats {
    let m = parse_keyed(cpu_stat);
    let secs = |k: &str| m.get(k).map(|v| *v as f64 / 1e6);
    CpuStats {
        usage_s: secs("usage_usec"),
        user_s: secs("user_usec"),
        system_s: secs("system_usec"),
        throttled_periods: m.get("nr_throttled").copied(),
        throttled_s: secs("throttled_usec"),
    }
}

/// `usage_usec` of a v2 `cpu.stat`: the group's CPU time so far (present without the cpu
/// controller too: the core accounts it).
pub fn usage(cpu_stat: &str) -> Option<std::time::Duration> {
    let v = cpu_stat.lines().find_map(|l| l.strip_prefix("usage_usec "))?;
    v.trim().parse().ok().map(std::time::Duration::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn v2_cpu_stat_in_seconds() {
        let c = stats(&fixture("v2/cpu.stat"));
        assert_eq!(c.usage_s, Some(1.5));
        assert_eq!(c.user_s, Some(1.25));
        assert_eq!(c.system_s, Some(0.25));
        assert_eq!(c.throttled_periods, Some(27));
        assert_eq!(c.throttled_s, Some(2.7));
    }

    #[test]
    fn cpu_time_limit_reads_usage_usec_alone() {
        use std::time::Duration;
        assert_eq!(usage(&fixture("v2/cpu.stat")), Some(Duration::from_micros(1_500_000)));
        assert_eq!(usage("user_usec 5\nsystem_usec 1\n"), None);
        assert_eq!(usage("usage_usec x\n"), None);
    }
}
