//! Phase 3 of a run, supervise: the event loop of the process that owns the container (`sandbox
//! run` itself, or `run -d`'s detached supervisor). Until the child is reaped it forwards
//! signals, relays stdio (to the terminal or into the log), enforces the deadline and the CPU
//! time, takes samples and ends a stop.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::PollTimeout;
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;

use super::create::{check_exec, ChildGuard};
use crate::cgroup::Cgroup;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::report::Stopped;
use crate::sys;
use crate::tty::{Ready, Stdio};

/// Who hears about a run's phases: the state root's record of a container. Every method has a
/// default that does nothing (a library run without state).
pub trait Observer {
    /// Phase 1 done: the child is cloned (host pid `pid`) and its group made; it waits for the go.
    fn created(&mut self, _pid: i32, _group: Option<&dyn Cgroup>) -> Result<()> {
        Ok(())
    }
    /// The command was executed.
    fn started(&mut self) {}
    /// A child that is not ours ended and the kernel did not tell how (before Linux 6.15, or not
    /// reaped by its parent in time): the report's exit status is not the command's.
    fn status_unknown(&mut self) {}
}

/// The `ssi_code` of a stop signal sent by `sandbox stop` (sigqueue: SI_QUEUE), whose `ssi_int`
/// is the grace in milliseconds (instead of `--stop-timeout`).
pub const STOP_GRACE_CODE: i32 = libc::SI_QUEUE;

/// The observer of a run nobody records.
pub struct NoObserver;
impl Observer for NoObserver {}

/// How the loop ended: whether the deadline expired, whether the CPU time was used up (whichever
/// came first: the other is no longer checked) and how the run was stopped, if it was.
pub(crate) struct Ended {
    pub(crate) timed_out: bool,
    pub(crate) cpu_time_out: bool,
    pub(crate) stopped: Option<Stopped>,
}

/// The signals that stop a run: forwarded, then SIGKILL for everything after `--stop-timeout`.
const STOP_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// A stop in progress.
struct Stop {
    report: Stopped,
    /// When everything is killed if the command has not exited.
    deadline: Option<Instant>,
}

/// Whether the command, PID 1 of its pid namespace, would act on `sig` now: it has a handler for
/// it, or blocks it (then it is queued). PID 1 gets no signal it has no handler for: the kernel
/// drops it, so a stop would wait its whole timeout for nothing. (Our --init always acts: it
/// takes every forwarded signal with sigwait, during which /proc shows them unblocked.)
fn acts_on(pid: Pid, sig: Signal) -> bool {
    let Ok(status) = sys::read_small(format!("/proc/{pid}/status")) else { return true };
    let mask = |key: &str| {
        status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    let bit = 1u64 << (sig as i32 - 1);
    match (mask("SigCgt:"), mask("SigBlk:")) {
        (Some(c), Some(b)) => (c | b) & bit != 0,
        _ => true,
    }
}

/// SIGKILL for the command and everything in its group: killing PID 1 kills its whole pid
/// namespace; the group kill catches anything that is in the group some other way.
fn kill_all(child: Pid, group: Option<&dyn Cgroup>) {
    let _ = kill(child, Signal::SIGKILL);
    if let Some(g) = group {
        g.kill();
    }
}

/// The event loop: until the child is reaped, forward signals, relay stdio, enforce the deadline
/// and the CPU time (see `cputime`: the group's usage is read only when it could have run out) and
/// end a stop. The error pipe is polled too: until the command is executed sandbox must still
/// answer signals and the deadline, and a setup or exec failure ends the wait with its message.
#[allow(clippy::too_many_arguments)]
pub(crate) fn supervise(
    child: &mut ChildGuard,
    sfd: &SignalFd,
    err_rd: &OwnedFd,
    stdio: &mut Stdio,
    group: Option<&dyn Cgroup>,
    deadline: Option<Instant>,
    mut sampler: Option<&mut crate::samples::Sampler>,
    cfg: &Config,
    observer: &mut dyn Observer,
) -> Result<Ended> {
    let mut timed_out = false;
    let mut cpu_time_out = false;
    let mut budget = crate::cputime::CpuBudget::new(&cfg.limits, Instant::now());
    let mut stop: Option<Stop> = None;
    let mut exec_pending = true;
    loop {
        let now = Instant::now();
        // The sampler is one more deadline of this loop: no thread, no timer fd.
        if let (Some(s), Some(g)) = (sampler.as_deref_mut(), group) {
            if s.next <= now {
                s.take(g, now);
            }
        }
        if !timed_out && !cpu_time_out && deadline.is_some_and(|d| d <= now) {
            timed_out = true;
            kill_all(child.pid, group);
        }
        if let Some(b) = budget.as_mut().filter(|b| !timed_out && !cpu_time_out && b.next() <= now) {
            if b.check(group.and_then(|g| g.cpu_usage()), Instant::now()) {
                cpu_time_out = true;
                kill_all(child.pid, group);
            }
        }
        if let Some(s) = stop.as_mut().filter(|s| s.deadline.is_some_and(|d| d <= now)) {
            s.deadline = None;
            s.report.killed = true;
            kill_all(child.pid, group);
        }
        let ended = timed_out || cpu_time_out;
        let next = [
            deadline.filter(|_| !ended),
            budget.as_ref().filter(|_| !ended).map(|b| b.next()),
            stop.as_ref().and_then(|s| s.deadline),
            sampler.as_ref().map(|s| s.next),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = match next {
            Some(d) => {
                // Rounded up: waking before `d` would only loop once more for nothing.
                let left = d.saturating_duration_since(now).min(Duration::from_secs(3600));
                PollTimeout::try_from(left.as_micros().div_ceil(1000).max(1) as i32).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        // The error pipe only until exec: after EOF it would report POLLHUP forever.
        let Ready { signals: sig_ready, exec_result: err_ready, pumps: ready } =
            stdio.wait(sfd.as_fd(), exec_pending.then(|| err_rd.as_fd()), timeout)?;
        if err_ready {
            // Data means the child failed and is exiting, EOF that the command was executed:
            // either way reading to EOF does not block for long.
            check_exec(err_rd)?;
            exec_pending = false;
            observer.started();
        }
        for i in ready {
            if stdio.pump(i) {
                // The outer terminal is gone: nobody can use or end this session any more.
                let _ = kill(child.pid, Signal::SIGKILL);
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGCHLD);
                match sig {
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH if stdio.resize() => {}
                    s if STOP_SIGNALS.contains(&s) => match &mut stop {
                        // A second Ctrl-C: the user does not want to wait.
                        Some(st) if s == Signal::SIGINT => {
                            st.deadline = None;
                            st.report.killed = true;
                            kill_all(child.pid, group);
                        }
                        Some(_) => {
                            let _ = kill(child.pid, s);
                        }
                        None => {
                            // A stop before the command was even executed ends the run at once:
                            // the child is still our own setup code, and nothing is there to stop
                            // gracefully.
                            let acts = !exec_pending && (cfg.init || acts_on(child.pid, s));
                            // `sandbox stop -t`: the grace comes with the signal.
                            let grace = if info.ssi_code == STOP_GRACE_CODE && info.ssi_int >= 0 {
                                Duration::from_millis(info.ssi_int as u64)
                            } else {
                                cfg.stop_timeout
                            };
                            let _ = kill(child.pid, s);
                            let mut st = Stop {
                                report: Stopped { signal: s.as_str().to_string(), killed: false },
                                deadline: Some(Instant::now() + grace),
                            };
                            if !acts || grace.is_zero() {
                                st.deadline = None;
                                st.report.killed = true;
                                kill_all(child.pid, group);
                            }
                            stop = Some(st);
                        }
                    },
                    s => {
                        let _ = kill(child.pid, s);
                    }
                }
            }
        }
        match sys::wait4_nohang(child.pid) {
            Ok(None) => {}
            Ok(Some((st, usage))) => {
                // The last sample: the group's counters with everything the command did.
                if let (Some(s), Some(g)) = (sampler.as_deref_mut(), group) {
                    s.take(g, Instant::now());
                }
                child.status = Some(st);
                child.rusage = Some(usage);
                return Ok(Ended { timed_out, cpu_time_out, stopped: stop.map(|s| s.report) });
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("wait4", e)),
        }
    }
}

/// The loop of a child that is not ours ([`crate::run::Engine::sibling`]: an OCI container's
/// init, reaped by the engine's shim): told it started by the error pipe's EOF, that it ended by
/// its pidfd. Its wait status: /proc/PID/stat's exit_code while it is a zombie, else the kernel's
/// exit information once its parent reaped it (PIDFD_INFO_EXIT, Linux 6.15); unknown if both
/// miss it (reaped at once on an older kernel: the engine has it anyway, from its own wait).
pub(crate) fn follow(child: &mut ChildGuard, err_rd: &OwnedFd, observer: &mut dyn Observer) -> Result<Ended> {
    use nix::poll::{poll, PollFd, PollFlags};
    let Some(pidfd) = child.pidfd.as_ref() else {
        return Err(Error::container("no pidfd for the container's process"));
    };
    // Named by pid and start time while it lives: its status is read from /proc while it is a
    // zombie, before its parent (the engine, or whoever adopted it) reaps it.
    let process = super::Process::of(child.pid.as_raw());
    let mut exec_pending = true;
    loop {
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if exec_pending {
            fds.push(PollFd::new(err_rd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        let exited = ready(&fds[0]);
        if fds.get(1).is_some_and(ready) {
            check_exec(err_rd)?;
            exec_pending = false;
            observer.started();
        }
        if !exited {
            continue;
        }
        let until = Instant::now() + Duration::from_secs(5);
        while child.status.is_none() && Instant::now() < until {
            // Reaped already: the kernel kept its status for the pidfd (Linux 6.15+). Still a
            // zombie: /proc has it. A parent that reaps slowly (pid 1 of some hosts) costs nothing.
            let kept = sys::pidfd_exit_status(pidfd);
            let raw = match kept {
                Ok(Some(raw)) => Some(raw),
                _ => process.as_ref().and_then(super::process::zombie_status),
            };
            match raw {
                Some(raw) => child.status = nix::sys::wait::WaitStatus::from_raw(child.pid, raw).ok(),
                // Reaped on a kernel that keeps nothing for the pidfd: gone.
                None if kept.is_err() => break,
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        if child.status.is_none() {
            observer.status_unknown();
        }
        return Ok(Ended { timed_out: false, cpu_time_out: false, stopped: None });
    }
}
