//! `run -d`: the front process forks a supervisor per container (no central daemon) and waits
//! only until the command was executed.
//!
//! The supervisor is a plain fork of `sandbox run` (no re-exec): its own session (setsid), no
//! parent-death signal, stdin, stdout and stderr on /dev/null. It inherits the supervisor lock of
//! the container (ID/lock: the lock lives as long as any process holds its open file), runs the
//! same engine as a foreground run, and tells the front through a pipe: "ok" once the command
//! was executed, or the exit status and message of a failure (after it removed everything).

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::unistd::{fork, ForkResult};

use crate::error::{Error, Result};

/// In the front: what the supervisor said.
pub enum Front {
    /// The command runs.
    Started,
    /// The supervisor failed before the command ran: exit status and message.
    Failed(i32, String),
}

/// Forks the supervisor, which runs `supervisor(notify)` and exits with what it returns. Returns
/// in the front once the supervisor wrote to (or closed) `notify`.
///
/// The caller must be single-threaded.
pub fn spawn(supervisor: impl FnOnce(OwnedFd) -> i32) -> Result<Front> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
    // SAFETY: the caller is single-threaded, so the child has every lock it may need; it runs
    // the engine (which clones without exec as well) and leaves with exit.
    match unsafe { fork() }.map_err(|e| Error::sys("fork", e))? {
        ForkResult::Child => {
            drop(rd);
            let _ = crate::sys::detach_session();
            if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                for fd in 0..3 {
                    let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
                }
            }
            let code = supervisor(wr);
            std::process::exit(code)
        }
        ForkResult::Parent { .. } => {
            drop(wr);
            let mut said = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut said);
            if said == "ok" {
                return Ok(Front::Started);
            }
            Ok(match said.split_once('\n') {
                Some((code, msg)) => Front::Failed(code.parse().unwrap_or(125), msg.to_string()),
                None => Front::Failed(125, "the container's supervisor ended before the command ran".into()),
            })
        }
    }
}
