//! The accounting report: what the command did and what it used, against its limits.
//! Rendered for people (stderr) and as JSON (stderr or `--report-file`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use std::time::SystemTime;

use serde::Serialize;

use crate::cgroup::Stats;
use crate::config::{Config, Limits};

/// How the command ended, as waitpid(2) said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
}

impl Ending {
    /// Decodes a raw wait status (as `--init` hands it over).
    pub fn from_raw(status: i32) -> Ending {
        if libc::WIFSIGNALED(status) {
            Ending::Signaled(libc::WTERMSIG(status))
        } else {
            Ending::Exited(libc::WEXITSTATUS(status))
        }
    }
}

/// How a run ended, as the parent saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ending: Ending,
    /// `--timeout` expired and sandbox killed the command.
    pub timed_out: bool,
    /// `--cpu-time` was used up and sandbox killed the command.
    pub cpu_time_out: bool,
    /// A stop signal reached sandbox while the command ran.
    pub stopped: Option<Stopped>,
    pub wall_time_s: f64,
    /// When the command was started (the clone) and when it was seen to end (wall clock).
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
}

/// The single verdict on how a run ended (JSON: `exit`, `signal`, `timeout`, `cpu-time`, `oom`,
/// `stopped`). When several apply, the first of: stopped, cpu-time, timeout (sandbox's own
/// decisions to end the run), oom (the kernel's), signal, exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TerminationReason {
    /// The command exited by itself (any code).
    Exit,
    /// A signal killed the command (not one sandbox sent for a limit, not the OOM killer).
    Signal,
    /// `--timeout` (wall time) ran out.
    Timeout,
    /// `--cpu-time` (CPU time of the whole run) was used up.
    CpuTime,
    /// The OOM killer killed a process of the run (memory limit reached).
    Oom,
    /// sandbox was asked to stop (SIGTERM, SIGINT, SIGHUP) and ended the command.
    Stopped,
}

/// RFC 3339 with microseconds, UTC (`2026-11-30T15:44:47.123456Z`).
fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_micros(*t))
}

/// A run that was stopped: SIGTERM, SIGINT or SIGHUP to sandbox, forwarded to the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stopped {
    /// The signal sandbox got and forwarded, e.g. "SIGTERM".
    pub signal: String,
    /// Everything was then SIGKILLed: the command outlived `--stop-timeout`, a second SIGINT
    /// came, or the command, as PID 1 without a handler for the signal, would never see it.
    pub killed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CgroupReport {
    /// 1 (legacy and hybrid hosts) or 2.
    pub version: u8,
    /// The group's directory (on v1, the memory controller's).
    pub path: String,
    /// Every directory of the group by controller (v1 has one per hierarchy).
    pub paths: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitsReport {
    pub memory_bytes: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    pub timeout_s: Option<f64>,
    pub cpu_time_s: Option<f64>,
    pub memory_high_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
    pub cpu_weight: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub io_weight: Option<u64>,
    /// One entry per `--io-*` rule: device (as given), major, minor, limit, value.
    pub io: Vec<crate::limits::IoRule>,
    /// `--cgroup-conf` files as written, in order: file, value.
    pub cgroup_conf: Vec<crate::limits::CgroupConf>,
}

impl From<&Limits> for LimitsReport {
    fn from(l: &Limits) -> Self {
        LimitsReport {
            memory_bytes: l.memory_bytes,
            cpus: l.cpus,
            pids: l.pids,
            timeout_s: l.timeout.map(|d| d.as_secs_f64()),
            cpu_time_s: l.cpu_time.map(|d| d.as_secs_f64()),
            memory_high_bytes: l.memory_high,
            swap_bytes: l.swap_bytes,
            cpu_weight: l.cpu_weight,
            cpuset_cpus: l.cpuset_cpus.clone(),
            cpuset_mems: l.cpuset_mems.clone(),
            io_weight: l.io_weight,
            io: l.io.clone(),
            cgroup_conf: l.cgroup_conf.clone(),
        }
    }
}

/// The report of one run. JSON keys are part of the interface: see README "Report format".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub id: String,
    pub command: Vec<String>,
    /// What sandbox exits with: the command's code, 128+N for signal N, 124 when --timeout or
    /// --cpu-time ran out.
    pub exit_code: i32,
    /// The signal that ended the command, if one did.
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// How the run was stopped, `null` when it was not.
    pub stopped: Option<Stopped>,
    /// The OOM killer killed a process of the sandbox (memory limit reached).
    pub oom_killed: bool,
    /// The one verdict: see [`TerminationReason`].
    pub termination_reason: TerminationReason,
    /// When the command started and ended, RFC 3339 (UTC) in JSON.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: SystemTime,
    #[serde(serialize_with = "rfc3339")]
    pub ended_at: SystemTime,
    pub wall_time_s: f64,
    /// `null` for a rootless run without a cgroup: then only CPU time is known (from wait4).
    pub cgroup: Option<CgroupReport>,
    pub limits: LimitsReport,
    #[serde(flatten)]
    pub stats: Stats,
}

impl Report {
    pub fn new(cfg: &Config, outcome: Outcome, cgroup: Option<CgroupReport>, stats: Stats) -> Report {
        let Outcome { ending, timed_out, cpu_time_out, stopped, wall_time_s, started_at, ended_at } = outcome;
        let (exit_code, signal) = match ending {
            _ if timed_out || cpu_time_out => (124, if let Ending::Signaled(s) = ending { Some(s) } else { None }),
            Ending::Exited(c) => (c, None),
            Ending::Signaled(s) => (128 + s, Some(s)),
        };
        let oom_killed = stats.memory.oom_kills.unwrap_or(0) > 0;
        let termination_reason = match ending {
            _ if stopped.is_some() => TerminationReason::Stopped,
            _ if cpu_time_out => TerminationReason::CpuTime,
            _ if timed_out => TerminationReason::Timeout,
            _ if oom_killed => TerminationReason::Oom,
            Ending::Signaled(_) => TerminationReason::Signal,
            Ending::Exited(_) => TerminationReason::Exit,
        };
        Report {
            id: cfg.id.clone(),
            command: cfg.command.clone(),
            exit_code,
            signal,
            timed_out,
            stopped,
            oom_killed,
            termination_reason,
            started_at,
            ended_at,
            wall_time_s,
            cgroup,
            limits: (&cfg.limits).into(),
            stats,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    /// The report for people: one line on how it ended, one per resource against its limit.
    pub fn to_human(&self) -> String {
        let mut s = String::new();
        let cmd = self.command.join(" ");
        let how = if self.termination_reason == TerminationReason::CpuTime {
            format!("used up its CPU time limit ({}) and was killed", secs(self.limits.cpu_time_s.unwrap_or(0.0)))
        } else if self.timed_out {
            format!("timed out after {} and was killed", secs(self.limits.timeout_s.unwrap_or(0.0)))
        } else if let Some(sig) = self.signal {
            format!("was killed by signal {sig} ({})", signal_name(sig))
        } else {
            format!("exited with code {}", self.exit_code)
        };
        let how = match &self.stopped {
            Some(st) if st.killed => format!("was stopped by {} (then SIGKILL) and {how}", st.signal),
            Some(st) => format!("was stopped by {} and {how}", st.signal),
            None => how,
        };
        let _ = writeln!(s, "sandbox {}: `{cmd}` {how} (wall time {})", self.id, secs(self.wall_time_s));
        if self.oom_killed {
            let lim = self.limits.memory_bytes.map(bytes).unwrap_or_else(|| "its".into());
            let n = self.stats.memory.oom_kills.unwrap_or(0);
            let _ = writeln!(s, "  OOM kill: the memory limit ({lim}) was reached; the kernel killed {n} process(es)");
        }
        if self.stats.pids.limit_hits.unwrap_or(0) > 0 {
            let _ = writeln!(
                s,
                "  pids limit hit: {} fork(s) refused at the limit of {}",
                self.stats.pids.limit_hits.unwrap_or(0),
                self.limits.pids.map_or("?".into(), |p| p.to_string())
            );
        }
        let c = &self.stats.cpu;
        let mut cpu_lim = self.limits.cpus.map_or("no limit".into(), |c| format!("limit {c} CPU"));
        if let Some(t) = self.limits.cpu_time_s {
            let _ = write!(cpu_lim, ", CPU time limit {}", secs(t));
        }
        if let Some(w) = self.limits.cpu_weight {
            let _ = write!(cpu_lim, ", weight {w}");
        }
        if let Some(c) = &self.limits.cpuset_cpus {
            let _ = write!(cpu_lim, ", on CPUs {c}");
        }
        let _ = writeln!(
            s,
            "  cpu     {} (user {}, system {}), {:.2} CPU on average, {cpu_lim}; throttled {} period(s), {} summed over CPUs",
            opt(c.usage_s, secs),
            opt(c.user_s, secs),
            opt(c.system_s, secs),
            c.usage_s.map_or(0.0, |u| if self.wall_time_s > 0.0 { u / self.wall_time_s } else { 0.0 }),
            opt(c.throttled_periods, |v| v.to_string()),
            opt(c.throttled_s, secs),
        );
        let m = &self.stats.memory;
        let _ = writeln!(
            s,
            "  memory  peak {} {}{}; OOM kills {}{}{}{}",
            opt(m.peak_bytes, bytes),
            self.limits.memory_bytes.map_or("(no limit)".into(), |b| format!("of limit {}", bytes(b))),
            self.limits.memory_high_bytes.map_or(String::new(), |b| format!(" (high {})", bytes(b))),
            opt(m.oom_kills, |v| v.to_string()),
            // v1 only: TCP buffers have their own counter there, outside the peak.
            m.tcp_peak_bytes.map_or(String::new(), |t| format!("; TCP buffers peak {}", bytes(t))),
            m.high_events.filter(|&n| n > 0).map_or(String::new(), |n| format!("; over memory.high {n} time(s)")),
            m.swap_peak_bytes.filter(|&b| b > 0).map_or(String::new(), |b| format!("; swap peak {}", bytes(b))),
        );
        let p = &self.stats.pids;
        let _ = writeln!(
            s,
            "  pids    peak {} {}; forks refused {}",
            opt(p.peak, |v| v.to_string()),
            self.limits.pids.map_or("(no limit)".into(), |n| format!("of limit {n}")),
            opt(p.limit_hits, |v| v.to_string()),
        );
        let io = &self.stats.io;
        if [io.read_bytes, io.write_bytes, io.read_ops, io.write_ops].iter().any(|v| v.unwrap_or(0) > 0) {
            let _ = writeln!(
                s,
                "  io      read {} ({} ops), written {} ({} ops)",
                opt(io.read_bytes, bytes),
                opt(io.read_ops, |v| v.to_string()),
                opt(io.write_bytes, bytes),
                opt(io.write_ops, |v| v.to_string()),
            );
        }
        let pr = &self.stats.pressure;
        let stalls: Vec<String> = [("cpu", &pr.cpu), ("memory", &pr.memory), ("io", &pr.io)]
            .iter()
            .filter(|(_, p)| p.some_s.unwrap_or(0.0) > 0.0 || p.full_s.unwrap_or(0.0) > 0.0)
            .map(|(n, p)| format!("{n} some {} full {}", opt(p.some_s, secs), opt(p.full_s, secs)))
            .collect();
        if !stalls.is_empty() {
            let _ = writeln!(s, "  stalled {}", stalls.join(", "));
        }
        match &self.cgroup {
            Some(c) => writeln!(s, "  cgroup  v{} {}", c.version, c.path),
            None => {
                writeln!(s, "  cgroup  none (rootless, no delegated cgroup): CPU time from wait4, the rest unknown")
            }
        }
        .ok();
        s
    }
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "unknown".into())
}

fn secs(v: f64) -> String {
    format!("{v:.3}s")
}

fn bytes(b: u64) -> String {
    bytesize::ByteSize::b(b).to_string_as(true)
}

/// The conventional name of a signal number.
pub fn signal_name(sig: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("unknown signal")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::{CpuStats, MemoryStats, PidsStats};

    fn sample(ending: Ending, timed_out: bool, oom: u64, hits: u64) -> Report {
        let stats = Stats {
            cpu: CpuStats {
                usage_s: Some(1.5),
                user_s: Some(1.0),
                system_s: Some(0.5),
                throttled_periods: Some(3),
                throttled_s: Some(0.25),
            },
            memory: MemoryStats {
                peak_bytes: Some(32 << 20),
                oom_events: Some(oom),
                oom_kills: Some(oom),
                ..Default::default()
            },
            pids: PidsStats { peak: Some(20), limit_hits: Some(hits) },
            ..Default::default()
        };
        let mut cfg = Config::new(["sh", "-c", "x"]);
        cfg.id = "abc".into();
        cfg.limits = Limits {
            memory_bytes: Some(32 << 20),
            cpus: Some(0.5),
            pids: Some(20),
            timeout: Some(std::time::Duration::from_secs(10)),
            ..Default::default()
        };
        let cg = CgroupReport { version: 1, path: "/sys/fs/cgroup/memory/sandbox-x-1".into(), paths: BTreeMap::new() };
        let started_at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let ended_at = started_at + std::time::Duration::from_millis(3000);
        let outcome =
            Outcome { ending, timed_out, cpu_time_out: false, stopped: None, wall_time_s: 3.0, started_at, ended_at };
        Report::new(&cfg, outcome, Some(cg), stats)
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(sample(Ending::Exited(3), false, 0, 0).exit_code, 3);
        let r = sample(Ending::Signaled(9), false, 1, 0);
        assert_eq!((r.exit_code, r.signal, r.oom_killed), (137, Some(9), true));
        let r = sample(Ending::Signaled(9), true, 0, 0);
        assert_eq!((r.exit_code, r.timed_out), (124, true));
        assert_eq!(Ending::from_raw(7 << 8), Ending::Exited(7));
        assert_eq!(Ending::from_raw(15), Ending::Signaled(15));
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let v: serde_json::Value = serde_json::from_str(&sample(Ending::Exited(0), false, 0, 0).to_json()).unwrap();
        let mut keys = vec![];
        for (k, val) in v.as_object().unwrap() {
            match val.as_object() {
                Some(o) => {
                    for (k2, v2) in o {
                        match v2.as_object() {
                            Some(o2) if k != "cgroup" => keys.extend(o2.keys().map(|s| format!("{k}.{k2}.{s}"))),
                            _ => keys.push(format!("{k}.{k2}")),
                        }
                    }
                }
                None => keys.push(k.clone()),
            }
        }
        keys.sort();
        let want = [
            "cgroup.path",
            "cgroup.paths",
            "cgroup.version",
            "command",
            "cpu.system_s",
            "cpu.throttled_periods",
            "cpu.throttled_s",
            "cpu.usage_s",
            "cpu.user_s",
            "ended_at",
            "exit_code",
            "id",
            "io.read_bytes",
            "io.read_ops",
            "io.write_bytes",
            "io.write_ops",
            "limits.cgroup_conf",
            "limits.cpu_time_s",
            "limits.cpu_weight",
            "limits.cpus",
            "limits.cpuset_cpus",
            "limits.cpuset_mems",
            "limits.io",
            "limits.io_weight",
            "limits.memory_bytes",
            "limits.memory_high_bytes",
            "limits.pids",
            "limits.swap_bytes",
            "limits.timeout_s",
            "memory.at_peak.anon_bytes",
            "memory.at_peak.file_bytes",
            "memory.at_peak.kernel_bytes",
            "memory.at_peak.shmem_bytes",
            "memory.at_peak.sock_bytes",
            "memory.high_events",
            "memory.memsw_peak_bytes",
            "memory.oom_events",
            "memory.oom_kills",
            "memory.peak_bytes",
            "memory.swap_peak_bytes",
            "memory.tcp_peak_bytes",
            "oom_killed",
            "pids.limit_hits",
            "pids.peak",
            "pressure.cpu.full_s",
            "pressure.cpu.some_s",
            "pressure.io.full_s",
            "pressure.io.some_s",
            "pressure.memory.full_s",
            "pressure.memory.some_s",
            "signal",
            "started_at",
            "stopped",
            "termination_reason",
            "timed_out",
            "wall_time_s",
        ];
        assert_eq!(keys, want);
        assert_eq!(v["started_at"], "2027-01-15T08:00:00.000000Z");
        assert_eq!(v["ended_at"], "2027-01-15T08:00:03.000000Z");
        assert!(v["io"]["write_bytes"].is_null() && v["pressure"]["io"]["some_s"].is_null(), "unknown is null");
        assert_eq!(v["limits"]["timeout_s"], 10.0);
        assert!(v["signal"].is_null());
    }

    #[test]
    fn one_termination_reason_per_run() {
        let reason = |r: Report| serde_json::to_value(r.termination_reason).unwrap();
        assert_eq!(reason(sample(Ending::Exited(3), false, 0, 0)), "exit");
        assert_eq!(reason(sample(Ending::Signaled(15), false, 0, 0)), "signal");
        assert_eq!(reason(sample(Ending::Signaled(9), false, 1, 0)), "oom");
        assert_eq!(reason(sample(Ending::Exited(137), false, 1, 0)), "oom", "a shell whose child was OOM-killed");
        assert_eq!(reason(sample(Ending::Signaled(9), true, 1, 0)), "timeout", "sandbox's own kill goes first");
        let mut r = sample(Ending::Signaled(9), true, 0, 0);
        let cfg = Config::new(["x"]);
        let outcome = Outcome {
            ending: Ending::Signaled(9),
            timed_out: true,
            cpu_time_out: false,
            stopped: Some(Stopped { signal: "SIGTERM".into(), killed: true }),
            wall_time_s: 1.0,
            started_at: r.started_at,
            ended_at: r.ended_at,
        };
        r = Report::new(&cfg, outcome, None, Stats::default());
        assert_eq!(reason(r), "stopped");
        assert_eq!(serde_json::to_value(TerminationReason::CpuTime).unwrap(), "cpu-time");
    }

    #[test]
    fn cpu_time_limit_is_its_own_verdict_with_exit_124() {
        let mut cfg = Config::new(["burn"]);
        cfg.limits.cpu_time = Some(std::time::Duration::from_secs(1));
        let t = SystemTime::UNIX_EPOCH;
        let outcome = Outcome {
            ending: Ending::Signaled(9),
            timed_out: false,
            cpu_time_out: true,
            stopped: None,
            wall_time_s: 0.5,
            started_at: t,
            ended_at: t,
        };
        let r = Report::new(&cfg, outcome, None, Stats::default());
        assert_eq!((r.exit_code, r.timed_out), (124, false));
        assert_eq!(serde_json::to_value(r.termination_reason).unwrap(), "cpu-time");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["limits"]["cpu_time_s"], 1.0);
        let h = r.to_human();
        assert!(h.contains("used up its CPU time limit (1.000s) and was killed"), "{h}");
        assert!(h.contains("CPU time limit 1.000s"), "{h}");
    }

    #[test]
    fn human_report_shows_io_and_stalls_only_when_non_zero() {
        let mut r = sample(Ending::Exited(0), false, 0, 0);
        let h = r.to_human();
        assert!(!h.contains("  io ") && !h.contains("stalled"), "{h}");
        assert!(h.contains("summed over CPUs"), "{h}");
        r.stats.io = crate::cgroup::stats::IoStats {
            read_bytes: Some(0),
            write_bytes: Some(64 << 20),
            read_ops: Some(0),
            write_ops: Some(64),
        };
        r.stats.pressure.memory.some_s = Some(0.25);
        r.stats.pressure.memory.full_s = Some(0.125);
        r.stats.pressure.cpu.some_s = Some(0.0);
        r.stats.memory.high_events = Some(12);
        let h = r.to_human();
        assert!(h.contains("  io      read 0 B (0 ops), written 64.0 MiB (64 ops)"), "{h}");
        assert!(h.contains("  stalled memory some 0.250s full 0.125s\n"), "only the non-zero resource: {h}");
        assert!(h.contains("over memory.high 12 time(s)"), "{h}");
        assert_eq!(h.lines().count(), 7, "one line per resource: {h}");
    }

    #[test]
    fn human_report_shows_the_new_limits_beside_their_figures() {
        let mut r = sample(Ending::Exited(0), false, 0, 0);
        r.limits.memory_high_bytes = Some(16 << 20);
        r.limits.cpu_weight = Some(200);
        r.limits.cpuset_cpus = Some("0-1".into());
        let h = r.to_human();
        assert!(h.contains("peak 32.0 MiB of limit 32.0 MiB (high 16.0 MiB);"), "{h}");
        assert!(h.contains("limit 0.5 CPU, weight 200, on CPUs 0-1;"), "{h}");
    }

    #[test]
    fn human_report_names_oom_timeout_and_pids_hits_in_words() {
        let h = sample(Ending::Signaled(9), false, 1, 40).to_human();
        assert!(h.contains("killed by signal 9 (SIGKILL)"), "{h}");
        assert!(h.contains("OOM kill: the memory limit (32.0 MiB) was reached"), "{h}");
        assert!(h.contains("pids limit hit: 40 fork(s) refused at the limit of 20"), "{h}");
        assert!(h.contains("peak 32.0 MiB of limit 32.0 MiB"), "{h}");
        assert!(h.contains("peak 20 of limit 20"), "{h}");
        assert!(h.contains("limit 0.5 CPU"), "{h}");
        let h = sample(Ending::Signaled(9), true, 0, 0).to_human();
        assert!(h.contains("timed out after 10.000s"), "{h}");
        assert!(!h.contains("OOM kill:") && !h.contains("pids limit hit"), "{h}");
    }
}
