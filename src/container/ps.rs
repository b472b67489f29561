//! One line of `sandbox ps` per container, from its state.json and a few files of its group:
//! what `ps` prints, and what `stats` can reuse.

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::state::{Container, Status};

/// A container as `ps` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    pub name: String,
    /// The image, or the command line.
    pub image: Option<String>,
    pub command: String,
    pub status: Status,
    /// "running 5s", "stopped (0) 2m ago", "stopped (supervisor lost)".
    pub status_text: String,
    /// CPU time over the container's life so far, as a percentage of one CPU.
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub pids: Option<u64>,
    /// The command's host pid while it runs.
    pub pid: Option<i32>,
    pub created_at: String,
}

impl Row {
    /// Reads the row of `c`: its group only while it runs.
    pub fn of(c: &Container) -> Row {
        let s = &c.state;
        let live = matches!(s.status, Status::Running | Status::Paused);
        let dir = |ctrl: &str| -> Option<&Path> {
            let cg = s.cgroup.as_ref().filter(|_| live)?;
            cg.paths.get(if cg.version == 2 { "" } else { ctrl }).map(|p| p.as_path())
        };
        let v2 = s.cgroup.as_ref().is_some_and(|c| c.version == 2);
        let num = |d: Option<&Path>, f: &str| -> Option<u64> {
            crate::sys::read_small(d?.join(f)).ok().and_then(|t| t.trim().parse().ok())
        };
        let (memory, usage_ns) = if v2 {
            let usec = crate::sys::read_small(dir("").map(|d| d.join("cpu.stat")).unwrap_or_default())
                .ok()
                .and_then(|t| crate::cgroup::stats::parse_keyed(&t).get("usage_usec").copied());
            (num(dir(""), "memory.current"), usec.map(|u| u * 1000))
        } else {
            (num(dir("memory"), "memory.usage_in_bytes"), num(dir("cpuacct"), "cpuacct.usage"))
        };
        let pids = num(dir(if v2 { "" } else { "pids" }), "pids.current");
        let since = s.started_at.and_then(|t| SystemTime::now().duration_since(t).ok());
        let cpu_percent = match (usage_ns, since) {
            (Some(ns), Some(d)) if !d.is_zero() => Some(ns as f64 / 1e9 / d.as_secs_f64() * 100.0),
            _ => None,
        };
        let ago = |t: Option<SystemTime>| {
            t.and_then(|t| SystemTime::now().duration_since(t).ok()).map(short_duration).unwrap_or_default()
        };
        let status_text = match s.status {
            Status::Running => format!("running {}", ago(s.started_at)),
            Status::Paused => format!("paused {}", ago(s.started_at)),
            Status::Created => "created".to_string(),
            Status::Stopped => match (s.exit_code, s.reason.as_deref()) {
                (_, Some(r)) if r == super::state::SUPERVISOR_LOST => format!("stopped ({r})"),
                (Some(code), _) => format!("stopped ({code}) {} ago", ago(s.finished_at)),
                (None, _) => "stopped".to_string(),
            },
        };
        Row {
            id: s.id.clone(),
            name: s.name.clone(),
            image: s.image.clone(),
            command: s.config.command.join(" "),
            status: s.status,
            status_text,
            cpu_percent: if live { cpu_percent } else { None },
            memory_bytes: memory,
            memory_limit_bytes: s.config.limits.memory_bytes,
            pids,
            pid: s.process.filter(|_| live).map(|p| p.pid),
            created_at: humantime::format_rfc3339_seconds(s.created_at).to_string(),
        }
    }
}

/// `3s`, `4m`, `2h`, `5d`: the largest whole unit, as docker's "Up 4 minutes" shortened.
pub fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}
