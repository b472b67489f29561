//! cgroup v1 cpu controller: `--cpus` as CFS bandwidth (`cpu.cfs_quota_us`/`cpu.cfs_period_us`),
//! `--cpu-weight` as `cpu.shares`, and throttling from `cpu.stat`.

use std::path::Path;

use crate::cgroup::stats::parse_keyed;
use crate::cgroup::{write, CPU_PERIOD_US};
use crate::error::Result;

/// Writes `--cpus` and `--cpu-weight` to the group's cpu directory `dir`.
pub fn apply(dir: &Path, cpus: Option<f64>, weight: Option<u64>) -> Result<()> {
    if let Some(cpus) = cpus {
        let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
        write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
        write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
    }
    if let Some(w) = weight {
        write(&dir.join("cpu.shares"), &shares_of_weight(w).to_string())?;
    }
    Ok(())
}

/// runc's conversion of cgroup v1 cpu.shares (2-262144, default 1024) to cgroup v2 cpu.weight
/// (1-10000, default 100), as opencontainers/cgroups ConvertCPUSharesToCgroupV2Value has it since
/// runc 1.3.2 (opencontainers/cgroups#20; the linear one before it mapped 1024 to 39): with
/// l = log2(shares), weight = ceil(10^((l² + 125·l) / 612 − 7/34)). Quadratic in the logarithms,
/// so that 2, 1024 and 262144 map to 1, 100 and 10000.
pub fn weight_of_shares(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    let l = (shares as f64).log2();
    // 7/34 = 126/612: one division, so that whole powers of two (2, 1024, 262144) give whole
    // exponents (0, 2, 4) and 10^2 is 100, not 100.00000000000001 rounded up to 101.
    let exponent = (l * l + 125.0 * l - 126.0) / 612.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

/// `--cpu-weight` on v1: the cpu.shares that runc's conversion turns into `weight`, so that
/// `docker run --cpu-shares S` on a v2 host and `sandbox --cpu-weight W` on a v1 host agree. Of the
/// shares that convert to `weight` (the conversion rounds up), the greatest: the one whose exact
/// value is nearest `weight`, so 100 gives 1024 and 10000 gives 262144. The conversion is
/// monotonic: a binary search over 2-262144 finds it exactly.
pub fn shares_of_weight(weight: u64) -> u64 {
    // The least shares converting to more than `weight`, minus one.
    let (mut lo, mut hi) = (2u64, 262_145u64);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if weight_of_shares(mid) > weight {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    (lo - 1).clamp(2, 262_144)
}

/// `cpu.stat`: (periods throttled, seconds throttled).
pub fn throttling(cpu_stat: Option<&str>) -> (Option<u64>, Option<f64>) {
    let m = cpu_stat.map(parse_keyed);
    let periods = m.as_ref().and_then(|m| m.get("nr_throttled").copied());
    let secs = m.as_ref().and_then(|m| m.get("throttled_time")).map(|v| *v as f64 / 1e9);
    (periods, secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_shares_conversion_keeps_the_defaults_and_ends() {
        // The values opencontainers/cgroups' test table has for the new formula.
        assert_eq!(weight_of_shares(2), 1);
        assert_eq!(weight_of_shares(1024), 100);
        assert_eq!(weight_of_shares(262_144), 10_000);
        assert_eq!((shares_of_weight(1), shares_of_weight(100), shares_of_weight(10_000)), (2, 1024, 262_144));
        // Every weight round-trips to itself where a whole number of shares converts to it, else
        // (a few low weights the curve skips) to the one below; the shares are the greatest that
        // do, and grow with the weight.
        let mut last = 0;
        for w in 1..=10_000 {
            let s = shares_of_weight(w);
            let back = weight_of_shares(s);
            assert!(back <= w && (s == 262_144 || weight_of_shares(s + 1) > w), "weight {w} -> shares {s} -> {back}");
            assert!(s >= last, "monotonic at {w}");
            last = s;
        }
        assert_eq!(weight_of_shares(shares_of_weight(500)), 500);
    }
}
