//! What other commands do to a container: stop, kill, wait for it, remove it. Each acts through
//! the state root only (the supervisor's pid and start time, the group's directories), never on
//! a process that merely reused a pid.

use std::time::{Duration, Instant};

use super::state::{Container, Status};
use crate::error::{Error, Result};

/// How often a waiting command looks again.
const POLL: Duration = Duration::from_millis(10);

/// Asks the supervisor to stop the container: SIGTERM to the command (its PID 1), SIGKILL to
/// everything in its group after `grace`. Returns once it has stopped. A stopped container is
/// left as it is (docker's `stop` succeeds on one too).
pub fn stop(c: &mut Container, grace: Duration) -> Result<()> {
    request_stop(c, grace)?;
    await_stop(c, grace);
    Ok(())
}

/// The first half of [`stop`], to stop many at once: SIGTERM to the supervisor carrying the
/// grace (sigqueue's value), which forwards it to the command and SIGKILLs the group after the grace (the
/// report then says "stopped"). A supervisor that is gone is settled by [`Container::check`].
pub fn request_stop(c: &mut Container, grace: Duration) -> Result<()> {
    if !c.state.is_live() {
        return Ok(());
    }
    let ms = grace.as_millis().min(i32::MAX as u128) as i32;
    // Until the command's pid is recorded, the supervisor named in the state may still be `run
    // -d`'s front (the fork has not yet written its own pid) and may not yet have its signals
    // blocked: a SIGTERM would kill that process, not stop the container, and the stop would
    // wait out grace + 5 s. The request is written in the state instead; the supervisor reads it
    // when it records the pid. Both happen under update.lock, so one of them sees the other.
    if c.state.process.is_none() {
        let queued = c.update(|s| {
            let queue = s.process.is_none() && s.is_live();
            if queue {
                s.stop_request = Some(ms);
            }
            queue
        });
        if queued.unwrap_or(false) || !c.state.is_live() {
            return Ok(());
        }
    }
    let sent = c.state.supervisor.signal_value(libc::SIGTERM, ms)
        // Without pidfds (< 5.3): a plain SIGTERM, the container's own --stop-timeout applies.
        || c.state.supervisor.signal(libc::SIGTERM);
    if !sent {
        c.check();
    } else if c.state.status == Status::Paused {
        // As docker does: signalled, then thawed, so that the command runs its SIGTERM handler
        // within the grace (a frozen task cannot) instead of waiting it out for SIGKILL.
        thaw(c);
    }
    Ok(())
}

/// Thaws a paused container's group and records it running again.
fn thaw(c: &mut Container) {
    let Some(cg) = c.state.cgroup.clone() else { return };
    let _ = c.update(|s| {
        if s.status == Status::Paused {
            if let Ok(g) = crate::cgroup::open(cg.version, &cg.paths) {
                if g.freeze(false).is_ok() {
                    s.status = Status::Running;
                }
            }
        }
    });
}

/// The second half of [`stop`]: waits for the supervisor to end. It enforces the grace itself;
/// this bound only covers one that hangs (then the group is killed from here).
pub fn await_stop(c: &mut Container, grace: Duration) {
    if !wait_stopped(c, Some(Instant::now() + grace + Duration::from_secs(5))) {
        c.kill_group();
        wait_stopped(c, Some(Instant::now() + Duration::from_secs(5)));
    }
}

/// Sends `sig` to the container's command (its PID 1): refused unless it is running (or paused:
/// SIGKILL reaches a frozen group). SIGKILL goes to everything in the group.
pub fn kill(c: &Container, sig: i32) -> Result<()> {
    let live = matches!(c.state.status, Status::Running | Status::Paused);
    let Some(p) = c.state.process.filter(|p| live && p.is_alive()) else {
        return Err(Error::container(format!("container {} is not running", c.name())));
    };
    if !p.signal(sig) {
        return Err(Error::container(format!("container {} is not running", c.name())));
    }
    if sig == libc::SIGKILL {
        c.kill_group();
    }
    Ok(())
}

/// Waits until the container's supervisor is gone (its lock free), or `deadline`. Returns
/// whether it is gone; `c.state` is then the last state (the directory may be gone with `--rm`).
pub fn wait_stopped(c: &mut Container, deadline: Option<Instant>) -> bool {
    // Woken the moment the supervisor exits (its pidfd) rather than at the next tick: an OCI
    // `delete` right after the container's process ended waited for the supervisor's last
    // writes in 10 ms steps. Dropped once it fired (the recorded supervisor may be another
    // process, e.g. the `create` front before the supervisor recorded itself): ticks then.
    let mut sup = c.state.supervisor.pidfd();
    loop {
        if !c.supervisor_alive() {
            if c.reload().is_err() {
                // Removed (`--rm`): its exit code was kept beside it.
                let code = std::fs::read_to_string(c.exit_record()).ok().and_then(|t| t.trim().parse().ok());
                if code.is_some() {
                    c.state.exit_code = code;
                    c.state.status = Status::Stopped;
                }
            }
            c.check();
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        match &sup {
            Some(fd) => {
                use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
                use std::os::fd::AsFd;
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                if matches!(poll(&mut fds, PollTimeout::from(POLL.as_millis() as u16)), Ok(n) if n > 0) {
                    sup = None;
                }
            }
            None => std::thread::sleep(POLL),
        }
    }
}

/// Removes a container: refused while it runs unless `force`, which kills it first (SIGKILL to
/// its group; the supervisor writes its end and exits). Its group, state, log and report go.
pub fn remove(c: &mut Container, force: bool) -> Result<()> {
    if c.state.is_live() && c.supervisor_alive() {
        if !force {
            return Err(Error::container(format!(
                "cannot remove container {}: it is {} (in use); stop it first (`sandbox stop {}`) or use rm -f",
                c.name(),
                c.state.status,
                c.name()
            )));
        }
        c.kill_group();
        if let Some(p) = c.state.process {
            p.signal(libc::SIGKILL);
        }
        if !wait_stopped(c, Some(Instant::now() + Duration::from_secs(10))) {
            // A supervisor that does not end: it goes too (its own process, by pid and start time).
            c.state.supervisor.signal(libc::SIGKILL);
            wait_stopped(c, Some(Instant::now() + Duration::from_secs(5)));
        }
    }
    c.check();
    crate::cgroup::remove_dirs(c.state.cgroup_dirs())?;
    c.remove_dir()
}
