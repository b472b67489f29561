//! cgroup v1 cpu controller: `--cpus` as CFS bandwidth (`cpu.cfs_quota_us`/`cpu.cfs_period_us`)
//! and throttling from `cpu.stat`.

use std::path::Path;

use crate::cgroup::stats::parse_keyed;
use crate::cgroup::{write, CPU_PERIOD_US};
use crate::error::Result;

/// Writes `--cpus` to the group's cpu directory `dir`.
pub fn apply(dir: &Path, cpus: f64) -> Result<()> {
    let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
    write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
    write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())
}

/// `cpu.stat`: (periods throttled, seconds throttled).
pub fn throttling(cpu_stat: Option<&str>) -> (Option<u64>, Option<f64>) {
    let m = cpu_stat.map(parse_keyed);
    let periods = m.as_ref().and_then(|m| m.get("nr_throttled").copied());
    let secs = m.as_ref().and_then(|m| m.get("throttled_time")).map(|v| *v as f64 / 1e9);
    (periods, secs)
}
