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
