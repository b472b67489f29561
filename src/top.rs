//! `sandbox top`: the processes of a container's group, as the host sees them and as the
//! container does: host pid, pid inside (the last NSpid of /proc/PID/status: the innermost pid
//! namespace, the container's), user, CPU time and share, RSS and command line.

use std::collections::HashMap;

use serde::Serialize;

use crate::cgroup::Cgroup;

/// One process of the group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Process {
    /// As the host sees it.
    pub pid: i32,
    /// As the container sees it (innermost pid namespace); `None` if the process is gone.
    pub pid_inside: Option<i32>,
    /// Real uid as the host sees it, and its name on the host (else the number).
    pub uid: Option<u32>,
    pub user: String,
    /// User + system CPU time so far, seconds.
    pub cpu_s: f64,
    /// `cpu_s` over the process's lifetime, 100 = one CPU (as ps(1)'s %CPU).
    pub cpu_percent: Option<f64>,
    /// Resident memory, bytes.
    pub rss_bytes: Option<u64>,
    /// Its command line; `[comm]` for one without (a kernel thread, a zombie).
    pub command: String,
}

/// Fields of /proc/PID/stat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    pub comm: String,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    /// Start after boot, clock ticks.
    pub start_ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

/// Parses /proc/PID/stat. The command name is in parentheses and may hold spaces and `)`: the
/// fields start after the last `) `.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let (comm, rest) = text[open + 1..].rsplit_once(") ")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // proc(5) numbers the fields from 1 (pid) and 2 (comm): field n is f[n - 3].
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat { comm: comm.to_string(), cpu_ticks: n(14)? + n(15)?, start_ticks: n(22)?, rss_pages: n(24)? })
}

/// The real uid and the innermost pid (last of NSpid) from /proc/PID/status.
pub fn parse_status(text: &str) -> (Option<u32>, Option<i32>) {
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k).map(str::split_whitespace));
    let uid = field("Uid:").and_then(|mut it| it.next()?.parse().ok());
    let ns_pid = field("NSpid:").and_then(|it| it.last()?.parse().ok());
    (uid, ns_pid)
}

/// A NUL-separated /proc/PID/cmdline as one line.
pub fn command_line(raw: &[u8], comm: &str) -> String {
    let parts: Vec<String> =
        raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    if parts.is_empty() {
        format!("[{comm}]")
    } else {
        parts.join(" ")
    }
}

/// The processes of `g` and of its subgroups, by host pid. One that exits while it is being read
/// is left out.
pub fn processes(g: &dyn Cgroup) -> Vec<Process> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (hz, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let (hz, page) = (hz.max(1) as f64, page.max(1) as u64);
    let uptime =
        crate::sys::read_small("/proc/uptime").ok().and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok());
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut out = Vec::new();
    for pid in crate::cgroup::members(g) {
        let Some(stat) = crate::sys::read_small(format!("/proc/{pid}/stat")).ok().and_then(|t| parse_stat(&t)) else {
            continue;
        };
        let (uid, pid_inside) =
            crate::sys::read_small(format!("/proc/{pid}/status")).map(|t| parse_status(&t)).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let user = match uid {
            Some(u) => names
                .entry(u)
                .or_insert_with(|| {
                    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u)).ok().flatten();
                    user.map(|x| x.name).unwrap_or_else(|| u.to_string())
                })
                .clone(),
            None => "?".into(),
        };
        let cpu_s = stat.cpu_ticks as f64 / hz;
        let age = uptime.map(|up| up - stat.start_ticks as f64 / hz).filter(|a| *a > 0.0);
        out.push(Process {
            pid,
            pid_inside,
            uid,
            user,
            cpu_s,
            cpu_percent: age.map(|a| cpu_s * 100.0 / a),
            rss_bytes: Some(stat.rss_pages * page),
            command: command_line(&cmdline, &stat.comm),
        });
    }
    out.sort_by_key(|p| p.pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/proc/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn proc_stat_fields_after_a_command_name_with_parentheses() {
        let s = parse_stat(&fixture("stat")).unwrap();
        assert_eq!(s, Stat { comm: "my prog) x".into(), cpu_ticks: 200, start_ticks: 1000, rss_pages: 2560 });
        assert_eq!(parse_stat("12 (x) S 1"), None, "truncated");
    }

    #[test]
    fn proc_status_uid_and_innermost_pid() {
        assert_eq!(parse_status(&fixture("status")), (Some(1000), Some(1)));
        assert_eq!(parse_status("Uid:\t0\t0\t0\t0\nNSpid:\t99\n"), (Some(0), Some(99)), "no pid namespace");
        assert_eq!(parse_status(""), (None, None));
    }

    #[test]
    fn command_lines_join_arguments_or_name_the_task() {
        assert_eq!(command_line(b"sleep\x0030\x00", "sleep"), "sleep 30");
        assert_eq!(command_line(b"", "kworker"), "[kworker]");
    }
}
