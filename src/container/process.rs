//! A process as the state root records it: pid and start time, so that a reused pid is never
//! taken for it (signals go through a pidfd opened and then checked).

use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

/// A process as the host sees it: its pid and its start time (clock ticks after boot,
/// /proc/PID/stat field 22), which together name one process even after the pid is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    pub start_time: u64,
}

impl Process {
    /// Process `pid` as it is now, `None` if there is none (or only a zombie).
    pub fn of(pid: i32) -> Option<Process> {
        let stat = crate::sys::read_small(format!("/proc/{pid}/stat")).ok()?;
        let (state, start_time) = parse_stat(&stat)?;
        (!matches!(state, 'Z' | 'X')).then_some(Process { pid, start_time })
    }

    /// This process itself.
    pub fn me() -> Process {
        Process::of(std::process::id() as i32).unwrap_or(Process { pid: std::process::id() as i32, start_time: 0 })
    }

    /// Whether this very process still runs (not a zombie, not another one with its pid).
    pub fn is_alive(&self) -> bool {
        Process::of(self.pid).is_some_and(|p| p == *self)
    }

    /// A pidfd for this very process: opened, then checked against the start time, so that the fd
    /// names this process and no later one with its number. `None` if it is gone (or the kernel
    /// has no pidfd_open: < 5.3).
    pub fn pidfd(&self) -> Option<OwnedFd> {
        let fd = crate::sys::pidfd_open(self.pid).ok()?;
        self.is_alive().then_some(fd)
    }

    /// Sends `sig` to this very process. Returns false if it is gone. Through a pidfd where the
    /// kernel has them (no race with pid reuse at all), else kill(2) after the start-time check.
    pub fn signal(&self, sig: i32) -> bool {
        match crate::sys::pidfd_open(self.pid) {
            Ok(fd) => self.is_alive() && crate::sys::pidfd_send_signal(&fd, sig).is_ok(),
            // SAFETY: kill(2) takes integers; the start time was checked just before.
            Err(_) => self.is_alive() && unsafe { libc::kill(self.pid, sig) } == 0,
        }
    }
}

impl Process {
    /// Sends `sig` with an integer `value` (sigqueue) to this very process; false if it is gone
    /// or the kernel has no pidfds (< 5.3).
    pub fn signal_value(&self, sig: i32, value: i32) -> bool {
        match crate::sys::pidfd_open(self.pid) {
            Ok(fd) => self.is_alive() && crate::sys::pidfd_send_signal_value(&fd, sig, value).is_ok(),
            Err(_) => false,
        }
    }
}

/// The state letter and the start time (field 22) of a /proc/PID/stat line. The command name
/// (field 2) may hold spaces and parentheses: fields are counted after its last `)`.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3 (state); the start time is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

/// The wait status of process `p` while it is a zombie (not yet reaped by its parent):
/// /proc/PID/stat field 52, `exit_code` (Linux 3.5+), "in the form reported by waitpid". The
/// start time must match: a pid reaped and reused meanwhile is another process. `None` when it
/// is not (or no longer) that zombie.
pub fn zombie_status(p: &Process) -> Option<i32> {
    let stat = crate::sys::read_small(format!("/proc/{}/stat", p.pid)).ok()?;
    let (state, start) = parse_stat(&stat)?;
    if state != 'Z' || start != p.start_time {
        return None;
    }
    let (_, rest) = stat.rsplit_once(") ")?;
    // rest starts at field 3.
    rest.split_ascii_whitespace().nth(52 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn zombie_status_is_field_52_after_the_last_paren() {
        let mut f: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        f[0] = "Z".into();
        f[52 - 3] = "768".into();
        let stat = format!("42 (a) b) {}\n", f.join(" "));
        let (_, rest) = stat.rsplit_once(") ").unwrap();
        assert_eq!(super::parse_stat(&stat), Some(('Z', 22)));
        assert_eq!(rest.split_ascii_whitespace().nth(52 - 3), Some("768"));
    }
}
