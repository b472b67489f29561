//! The accounting report: what the command did and what it used, against its limits.
//! Rendered for people (stderr) and as JSON (stderr or `--report-file`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

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
    /// A stop signal reached sandbox while the command ran.
    pub stopped: Option<Stopped>,
    pub wall_time_s: f64,
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
}

impl From<&Limits> for LimitsReport {
    fn from(l: &Limits) -> Self {
        LimitsReport {
            memory_bytes: l.memory_bytes,
            cpus: l.cpus,
            pids: l.pids,
            timeout_s: l.timeout.map(|d| d.as_secs_f64()),
        }
    }
}

/// The report of one run. JSON keys are part of the interface: see README "Report format".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub id: String,
    pub command: Vec<String>,
    /// What sandbox exits with: the command's code, 128+N for signal N, 124 on timeout.
    pub exit_code: i32,
    /// The signal that ended the command, if one did.
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// How the run was stopped, `null` when it was not.
    pub stopped: Option<Stopped>,
    /// The OOM killer killed a process of the sandbox (memory limit reached).
    pub oom_killed: bool,
    pub wall_time_s: f64,
    /// `null` for a rootless run without a cgroup: then only CPU time is known (from wait4).
    pub cgroup: Option<CgroupReport>,
    pub limits: LimitsReport,
    #[serde(flatten)]
    pub stats: Stats,
}

impl Report {
    pub fn new(cfg: &Config, outcome: Outcome, cgroup: Option<CgroupReport>, stats: Stats) -> Report {
        let Outcome { ending, timed_out, stopped, wall_time_s } = outcome;
        let (exit_code, signal) = match ending {
            _ if timed_out => (124, if let Ending::Signaled(s) = ending { Some(s) } else { None }),
            Ending::Exited(c) => (c, None),
            Ending::Signaled(s) => (128 + s, Some(s)),
        };
        Report {
            id: cfg.id.clone(),
            command: cfg.command.clone(),
            exit_code,
            signal,
            timed_out,
            stopped,
            oom_killed: stats.memory.oom_kills.unwrap_or(0) > 0,
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
        let how = if self.timed_out {
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
        let cpu_lim = self.limits.cpus.map_or("no limit".into(), |c| format!("limit {c} CPU"));
        let _ = writeln!(
            s,
            "  cpu     {} (user {}, system {}), {:.2} CPU on average, {cpu_lim}; throttled {} period(s), {}",
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
            "  memory  peak {} {}; OOM kills {}{}",
            opt(m.peak_bytes, bytes),
            self.limits.memory_bytes.map_or("(no limit)".into(), |b| format!("of limit {}", bytes(b))),
            opt(m.oom_kills, |v| v.to_string()),
            // v1 only: TCP buffers have their own counter there, outside the peak.
            m.tcp_peak_bytes.map_or(String::new(), |t| format!("; TCP buffers peak {}", bytes(t))),
        );
        let p = &self.stats.pids;
        let _ = writeln!(
            s,
            "  pids    peak {} {}; forks refused {}",
            opt(p.peak, |v| v.to_string()),
            self.limits.pids.map_or("(no limit)".into(), |n| format!("of limit {n}")),
            opt(p.limit_hits, |v| v.to_string()),
        );
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
                tcp_peak_bytes: None,
            },
            pids: PidsStats { peak: Some(20), limit_hits: Some(hits) },
        };
        let mut cfg = Config::new(["sh", "-c", "x"]);
        cfg.id = "abc".into();
        cfg.limits = Limits {
            memory_bytes: Some(32 << 20),
            cpus: Some(0.5),
            pids: Some(20),
            timeout: Some(std::time::Duration::from_secs(10)),
        };
        let cg = CgroupReport { version: 1, path: "/sys/fs/cgroup/memory/sandbox-x-1".into(), paths: BTreeMap::new() };
        Report::new(&cfg, Outcome { ending, timed_out, stopped: None, wall_time_s: 3.0 }, Some(cg), stats)
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
                Some(o) => keys.extend(o.keys().map(|s| format!("{k}.{s}"))),
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
            "exit_code",
            "id",
            "limits.cpus",
            "limits.memory_bytes",
            "limits.pids",
            "limits.timeout_s",
            "memory.oom_events",
            "memory.oom_kills",
            "memory.peak_bytes",
            "memory.tcp_peak_bytes",
            "oom_killed",
            "pids.limit_hits",
            "pids.peak",
            "signal",
            "stopped",
            "timed_out",
            "wall_time_s",
        ];
        assert_eq!(keys, want);
        assert_eq!(v["limits"]["timeout_s"], 10.0);
        assert!(v["signal"].is_null());
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
