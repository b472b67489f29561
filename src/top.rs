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
    /// Real uid as the host sees it.
    pub uid: Option<u32>,
    /// Real uid as the container sees it (through its user namespace's uid_map).
    pub uid_inside: Option<u32>,
    /// The name of `uid_inside` in the container's own /etc/passwd (else the number): what `ps`
    /// inside shows. The host's names would be wrong for an image (its uid 100 is not the host's).
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
    let mut passwds: HashMap<(u64, u64), HashMap<u32, String>> = HashMap::new();
    let mut out = Vec::new();
    for pid in crate::cgroup::members(g) {
        let Some(stat) = crate::sys::read_small(format!("/proc/{pid}/stat")).ok().and_then(|t| parse_stat(&t)) else {
            continue;
        };
        let (uid, pid_inside) =
            crate::sys::read_small(format!("/proc/{pid}/status")).map(|t| parse_status(&t)).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let map = crate::sys::read_small(format!("/proc/{pid}/uid_map")).unwrap_or_default();
        let uid_inside = uid.and_then(|u| uid_in_namespace(&map, u));
        let user = match uid_inside {
            Some(u) => {
                let names = root_id(pid).map(|key| passwds.entry(key).or_insert_with(|| passwd_of(pid)));
                names.and_then(|n| n.get(&u).cloned()).unwrap_or_else(|| u.to_string())
            }
            None => "?".into(),
        };
        let cpu_s = stat.cpu_ticks as f64 / hz;
        let age = uptime.map(|up| up - stat.start_ticks as f64 / hz).filter(|a| *a > 0.0);
        out.push(Process {
            pid,
            pid_inside,
            uid,
            uid_inside,
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

/// Host uid `host` as a user namespace whose /proc/PID/uid_map (as the host reads it: `inside
/// outside count` lines) is `map` sees it; `None` if unmapped (then it is the overflow uid there).
pub fn uid_in_namespace(map: &str, host: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u64> = l.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        let &[inside, outside, count] = f.as_slice() else { return None };
        let h = u64::from(host);
        (outside <= h && h < outside + count).then(|| (h - outside + inside) as u32)
    })
}

/// The device and inode of process `pid`'s root directory: processes with the same root share
/// one /etc/passwd.
fn root_id(pid: i32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/root")).ok()?;
    Some((m.dev(), m.ino()))
}

/// The user names of process `pid`'s /etc/passwd, read inside its root. The container owns that
/// file: it is opened with openat2 RESOLVE_IN_ROOT from /proc/PID/root, so that an absolute or
/// `..` symlink there resolves in the container, never to a host file (as with the `docker cp`
/// symlink attacks, CVE-2018-15664); only a regular file (a FIFO would block `top`), at most 1 MiB.
fn passwd_of(pid: i32) -> HashMap<u32, String> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let read = || -> Option<String> {
        let root = crate::image::layer::open_dir(std::path::Path::new(&format!("/proc/{pid}/root"))).ok()?;
        let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY;
        let fd = crate::image::layer::open_in(&root, std::path::Path::new("etc/passwd"), flags).ok()?;
        let f = std::fs::File::from(fd);
        let t = f.metadata().ok()?.file_type();
        if !t.is_file() || t.is_fifo() {
            return None;
        }
        let mut text = String::new();
        f.take(1 << 20).read_to_string(&mut text).ok()?;
        Some(text)
    };
    parse_passwd(&read().unwrap_or_default())
}

/// uid -> name from passwd(5) text (the first entry of a uid wins, as getpwuid's).
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let mut f = l.split(':');
        if let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) {
            if let (false, Ok(uid)) = (name.is_empty(), uid.trim().parse::<u32>()) {
                out.entry(uid).or_insert_with(|| name.to_string());
            }
        }
    }
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

    #[test]
    fn host_uids_through_a_uid_map_and_names_from_passwd() {
        assert_eq!(uid_in_namespace("         0          0 4294967295\n", 1000), Some(1000), "no user namespace");
        let map = "0 100000 65536\n";
        assert_eq!(uid_in_namespace(map, 100000), Some(0));
        assert_eq!(uid_in_namespace(map, 100070), Some(70));
        assert_eq!(uid_in_namespace(map, 0), None, "host root is unmapped there");
        let p = parse_passwd(
            "# c\nroot:x:0:0:r:/root:/bin/sh\nboss:x:0:0::/:/bin/sh\nweb:x:70:70::/:/bin/false\nbad:x:zz\n",
        );
        assert_eq!((p[&0].as_str(), p[&70].as_str(), p.len()), ("root", "web", 2));
    }
}
