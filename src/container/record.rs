//! The state root's record of a run: an [`Observer`] that writes a container's phases into its
//! state.json, and the end of a detached run (report.json, status stopped, `--rm`).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::time::SystemTime;

use super::state::{CgroupState, Container, Process, Status};
use super::supervise::Observer;
use crate::cgroup::Cgroup;
use crate::error::{Error, Result};
use crate::report::Report;

/// Records a run in its container's state.
pub struct Recorder<'a> {
    pub container: &'a mut Container,
    /// Write status `created` (with pid and group) as soon as the child exists (a detached run).
    /// A foreground run writes them with `running`: one atomic write less on its start-up path.
    write_created: bool,
    /// `run -d`: the pipe to the front process, told "ok" once the command was executed.
    notify: Option<OwnedFd>,
    pending: Option<(Option<Process>, Option<CgroupState>)>,
    /// The command was executed.
    pub started: bool,
    /// A forked supervisor (`run -d`, the OCI `create`) records itself as the supervisor with
    /// the created record instead of with an update of its own (one atomic write less on
    /// `create`'s path). Until then the state names the front process, which waits for the
    /// child; a `stop` meanwhile is queued in the state (`control::request_stop`).
    supervisor: Option<Process>,
}

impl<'a> Recorder<'a> {
    pub fn new(container: &'a mut Container, write_created: bool, notify: Option<OwnedFd>) -> Recorder<'a> {
        Recorder { container, write_created, notify, pending: None, started: false, supervisor: None }
    }

    /// The forked supervisor: this process is recorded as the container's supervisor with the
    /// created record (only a recorder that writes one: `write_created`).
    pub fn supervised_here(mut self) -> Self {
        assert!(self.write_created, "supervised_here needs a recorder that writes the created record");
        self.supervisor = Some(Process::me());
        self
    }

    /// The end of a detached run: report.json written, status stopped with the exit code and the
    /// reason, the front told of an error before exec. With `--rm` the container goes.
    pub fn finish(&mut self, result: &std::result::Result<&Report, (i32, String)>) {
        if !self.started && self.container.state.detached {
            // As a foreground run that failed: nothing left (the group is gone already), and the
            // front process is told only once that is so.
            let _ = self.container.remove_dir();
            if let Some(fd) = self.notify.take() {
                let mut f = std::fs::File::from(fd);
                let _ = match result {
                    Err((code, msg)) => write!(f, "{code}\n{msg}"),
                    // Ended before exec without an error: a `stop` (or the deadline) came first.
                    Ok(r) => write!(
                        f,
                        "{}\nthe container ended before its command ran: {}",
                        r.exit_code,
                        serde_json::to_value(r.termination_reason)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default()
                    ),
                };
            }
            return;
        }
        if let Ok(r) = result {
            let body = format!("{}\n", r.to_json());
            let _ = write_atomic(&self.container.dir.join("report.txt"), r.to_human().as_bytes());
            let _ = write_atomic(&self.container.report_path(), body.as_bytes());
        }
        let _ = self.container.update(|s| {
            s.status = Status::Stopped;
            s.finished_at = Some(SystemTime::now());
            match result {
                Ok(r) => {
                    s.exit_code = Some(r.exit_code);
                    let reason = serde_json::to_value(r.termination_reason).ok();
                    s.reason = reason.and_then(|v| v.as_str().map(String::from));
                }
                Err((code, msg)) => {
                    s.exit_code = Some(*code);
                    s.reason = Some(msg.clone());
                }
            }
        });
        if self.container.state.auto_remove {
            if let Some(code) = self.container.state.exit_code {
                let _ = write_atomic(&self.container.exit_record(), code.to_string().as_bytes());
            }
            let _ = self.container.remove_dir();
        }
    }
}

impl Observer for Recorder<'_> {
    fn created(&mut self, pid: i32, group: Option<&dyn Cgroup>) -> Result<()> {
        let cg = group.map(|g| CgroupState { version: g.version(), path: g.path().to_path_buf(), paths: g.paths() });
        let process = Process::of(pid);
        if self.write_created {
            let supervisor = self.supervisor.take();
            let asked = self.container.update(|s| {
                if let Some(me) = supervisor {
                    s.supervisor = me;
                }
                s.process = process;
                s.cgroup = cg;
                s.stop_request.take()
            })?;
            stop_if_asked(asked);
        } else {
            self.pending = Some((process, cg));
        }
        Ok(())
    }

    fn started(&mut self) {
        self.started = true;
        let pending = self.pending.take();
        let asked = self.container.update(|s| {
            if let Some((p, cg)) = pending {
                s.process = p;
                s.cgroup = cg;
            }
            if s.status == Status::Created {
                s.status = Status::Running;
            }
            s.started_at = Some(SystemTime::now());
            s.stop_request.take()
        });
        stop_if_asked(asked.ok().flatten());
        if let Some(fd) = self.notify.take() {
            let mut f = std::fs::File::from(fd);
            let _ = f.write_all(b"ok");
        }
    }
}

/// A `stop` that came before the command's pid was recorded (`control::request_stop`): the
/// supervisor sends it to itself as `sandbox stop` would have (SIGTERM carrying the grace). Its
/// signals are blocked by now (since before the clone), so the event loop reads it from its
/// signalfd: before exec it ends the run at once, after exec it is an ordinary stop.
fn stop_if_asked(grace_ms: Option<i32>) {
    if let Some(ms) = grace_ms {
        let me = Process::me();
        // Without pidfds (< 5.3): a plain SIGTERM, the container's own --stop-timeout applies.
        let _ = me.signal_value(libc::SIGTERM, ms) || me.signal(libc::SIGTERM);
    }
}

/// Writes `path` atomically: a new file beside it, renamed over it.
pub fn write_atomic(path: &std::path::Path, body: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(body)?;
        replace_file(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| Error::io("cannot write", path, e))
}

/// Puts the new file `tmp` in place of `path` atomically (a reader sees the old file or the new
/// one), and removes `tmp`. Exchanged with the old file (RENAME_EXCHANGE) and the old one
/// unlinked, not renamed over it: ext4 (`auto_da_alloc`, the default) allocates and starts
/// writing out a file renamed over another at once, and with `-o discard` the unlink that
/// removes the container later waits for a synchronous discard of that block (stack:
/// `blkdev_issue_discard < ext4_free_blocks`). A run's record, written and removed within
/// seconds, then never reaches the disk: 1.7 ms → 0.16 ms per update on this host's ext4
/// `/run`. A filesystem without the exchange (EINVAL) or no old file (ENOENT): a plain rename.
pub(crate) fn replace_file(tmp: &std::path::Path, path: &std::path::Path) -> std::io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags};
    match renameat2(None, tmp, None, path, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => {
            // `tmp` now holds the old contents.
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
            std::fs::rename(tmp, path)
        }
        Err(e) => Err(e.into()),
    }
}
