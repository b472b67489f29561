//! `--cpu-time`: the CPU time of the whole run (every process of its group, on every CPU), checked
//! from the event loop of `run::wait` without a thread and with few wake-ups.
//!
//! The group cannot spend CPU time faster than the CPUs it may run on: after reading the usage,
//! the loop sleeps for `remaining / cpus`, and cannot have overshot when it wakes. Under `--cpus`
//! the bandwidth controller bounds it too, but only per period: within one period the group may
//! burn a whole period's quota on all its CPUs at once, so the bound is
//! `usage(T) ≤ min(cpus·T, rate·T + quota)`. The sleeps shrink as the budget runs out (a loop that
//! uses all its CPUs is killed on the second or third check); a command that sleeps is looked at
//! every `budget / cpus`.
//!
//! Kernel quirk: the cgroup's usage (v2 cpu.stat usage_usec, v1 cpuacct.usage) is brought up to
//! date for a running task only at a scheduler tick or a context switch (update_curr), so a read
//! may lag by up to one tick per CPU: the overshoot is one tick plus the time to notice and kill.

use std::time::{Duration, Instant};

use crate::config::Limits;

/// Checks shorter than this are rounded up: the group could overshoot by `cpus` times it at most
/// (2 ms on a 2-CPU host), and a poll timeout has millisecond steps anyway.
const MIN_STEP: Duration = Duration::from_millis(1);

/// The longest single sleep (the poll timeout is an i32 of milliseconds).
const MAX_STEP: Duration = Duration::from_secs(3600);

/// The CPU-time budget of a run and when to look at it next.
#[derive(Debug, Clone)]
pub struct CpuBudget {
    budget: Duration,
    speed: Speed,
    next: Instant,
    /// How many times the usage was read (the wake-ups this limit cost).
    pub checks: u64,
}

/// How fast a group can spend CPU time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed {
    /// CPUs it may run on: the host's online CPUs, fewer with `--cpuset-cpus`.
    pub cpus: f64,
    /// With `--cpus` (and no burst set with `--cgroup-conf cpu.max.burst`): CPUs of bandwidth,
    /// and the quota of one period, which it may spend at once.
    pub quota: Option<(f64, Duration)>,
}

impl Speed {
    /// The speed limits of a run with `limits` on a host with `host_cpus` online CPUs.
    pub fn of(limits: &Limits, host_cpus: usize) -> Speed {
        let cpuset = limits
            .cpuset_cpus
            .as_deref()
            .and_then(|l| crate::limits::parse_list("--cpuset-cpus", l).ok())
            .map(|s| s.len())
            .filter(|n| *n > 0);
        let cpus = cpuset.unwrap_or(host_cpus).min(host_cpus).max(1) as f64;
        // A burst lets the group spend more than one period's quota at once: then only the CPUs bound it.
        let burst = limits.cgroup_conf.iter().any(|c| c.file == "cpu.max.burst" || c.file == "cpu.cfs_burst_us");
        let period = Duration::from_micros(crate::cgroup::CPU_PERIOD_US);
        let quota = limits.cpus.filter(|_| !burst).map(|r| (r, period.mul_f64(r)));
        Speed { cpus, quota }
    }

    /// The longest the group can run before it could have spent `remaining`.
    pub fn time_to_spend(&self, remaining: Duration) -> Duration {
        let by_cpus = remaining.div_f64(self.cpus);
        let by_quota = self.quota.map_or(Duration::ZERO, |(rate, q)| remaining.saturating_sub(q).div_f64(rate));
        by_cpus.max(by_quota).clamp(MIN_STEP, MAX_STEP)
    }
}

impl CpuBudget {
    /// The budget of `limits`, if it has one, first checked at `now`.
    pub fn new(limits: &Limits, now: Instant) -> Option<CpuBudget> {
        let budget = limits.cpu_time?;
        Some(CpuBudget { budget, speed: Speed::of(limits, crate::config::host_cpus()), next: now, checks: 0 })
    }

    /// When the usage must be read next.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Takes the group's usage read at `now`: true when the budget is used up, else the next check
    /// is scheduled. An unreadable usage (None) is looked at again as if nothing had been spent.
    pub fn check(&mut self, used: Option<Duration>, now: Instant) -> bool {
        self.checks += 1;
        let used = used.unwrap_or_default();
        if used >= self.budget {
            return true;
        }
        self.next = now + self.speed.time_to_spend(self.budget - used);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn cpu_time_sleeps_never_let_the_group_overshoot() {
        // Two CPUs: 1 s left cannot be spent in less than 0.5 s.
        let s = Speed { cpus: 2.0, quota: None };
        assert_eq!(s.time_to_spend(ms(1000)), ms(500));
        assert_eq!(s.time_to_spend(Duration::from_micros(10)), MIN_STEP, "rounded up to a poll step");
        // --cpus 0.5: a 50 ms quota per 100 ms period, which may be spent at once on both CPUs.
        let s = Speed { cpus: 2.0, quota: Some((0.5, ms(50))) };
        assert_eq!(s.time_to_spend(ms(1050)), ms(2000));
        assert_eq!(s.time_to_spend(ms(60)), ms(30), "near the end the CPUs bound it");
    }

    #[test]
    fn cpu_time_speed_comes_from_cpuset_and_quota() {
        let l = Limits { cpus: Some(1.5), cpuset_cpus: Some("1".into()), ..Default::default() };
        assert_eq!(Speed::of(&l, 2), Speed { cpus: 1.0, quota: Some((1.5, ms(150))) });
        assert_eq!(Speed::of(&Limits::default(), 8).cpus, 8.0);
        let burst = crate::limits::CgroupConf { file: "cpu.max.burst".into(), value: "100000".into() };
        let l = Limits { cpus: Some(0.5), cgroup_conf: vec![burst], ..Default::default() };
        assert_eq!(Speed::of(&l, 2).quota, None, "a burst breaks the per-period bound");
    }

    #[test]
    fn cpu_time_budget_is_used_up_at_the_limit() {
        let t = Instant::now();
        let l = Limits { cpu_time: Some(ms(1000)), ..Default::default() };
        let mut b = CpuBudget::new(&l, t).unwrap();
        assert_eq!(b.next(), t, "first look at once");
        assert!(!b.check(Some(ms(400)), t));
        assert!(b.next() > t);
        assert!(b.check(Some(ms(1000)), t));
        assert_eq!(b.checks, 2);
        assert!(CpuBudget::new(&Limits::default(), t).is_none());
    }
}
