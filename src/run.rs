//! One run, start to finish: clone into new namespaces → make the cgroup while the child sets up
//! its mounts → move the child into the group → let it exec → wait (forwarding signals, relaying
//! the pty, enforcing the timeout and the CPU time, ending a stop) → stats → cleanup → report.
//!
//! Cleanup is tied to guards, so every path (normal exit, OOM kill, timeout, a setup error,
//! a panic) kills the child and removes the group.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, read, Pid};

use crate::cgroup::{self, Cgroup, Host};
use crate::child::{self, ChildSpec};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::report::{CgroupReport, Ending, Outcome, Report, Stopped};
use crate::sys::{self, Forked};
use crate::tty::Stdio;

/// The signals sent to sandbox that are passed on to the command.
pub fn forwarded_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        s.add(sig);
    }
    s
}

/// Removes the group when dropped (error paths), or explicitly with [`GroupGuard::remove`].
/// Empty for a rootless run that has no cgroup (no delegation, no limits asked for).
struct GroupGuard(Option<Box<dyn Cgroup>>);

impl GroupGuard {
    fn get(&self) -> Option<&dyn Cgroup> {
        self.0.as_deref()
    }

    fn remove(mut self) -> Result<()> {
        self.0.take().map_or(Ok(()), |g| g.remove())
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.0.take().map(|g| g.remove()) {
            warn(&e.to_string());
        }
    }
}

/// A warning on stderr; a closed or broken stderr is not an error of the run.
pub fn warn(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "sandbox: warning: {msg}");
}

/// Restores the signal mask when dropped.
pub(crate) struct MaskGuard(pub(crate) SigSet);

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Kills (SIGKILL: the whole pid namespace goes with its PID 1) and reaps the child when dropped,
/// unless it was already reaped.
struct ChildGuard {
    pid: Pid,
    /// Set once reaped.
    status: Option<WaitStatus>,
    /// What the child and the descendants it reaped used (wait4): the report's figures when
    /// there is no cgroup.
    rusage: Option<libc::rusage>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// The capabilities a run's command keeps and its seccomp filter, from its config: the command's
/// and every process `exec` starts in its container get exactly these.
pub(crate) fn restrictions(cfg: &Config) -> Result<(caps::CapsHashSet, Option<crate::seccomp::Filter>)> {
    let capabilities = if cfg.privileged { crate::caps::all() } else { cfg.capabilities.clone() };
    let policy = if cfg.privileged { &crate::seccomp::Policy::Unconfined } else { &cfg.seccomp };
    let seccomp = crate::seccomp::build(policy, &capabilities)?;
    Ok((capabilities, seccomp))
}

/// Runs `cfg` and returns its report. Sandbox's own failures are errors (exit 125), as are a
/// command that cannot be found (127) or executed (126).
///
/// The calling process must be single-threaded (the child is cloned without re-exec), and the
/// forwarded signals and SIGCHLD are blocked for the duration of the call.
pub fn run(cfg: &Config) -> Result<Report> {
    run_inner(cfg, None)
}

/// Runs `cfg` like [`run`] and samples its group every `interval` (at least
/// [`crate::samples::MIN_INTERVAL`]) from the start of the command to its end: `on_sample` gets
/// each [`Sample`](crate::samples::Sample) as it is taken, on the calling thread, from the run's
/// event loop (keep it short: the loop also relays the command's stdio). The report's
/// `memory.at_peak` is then the breakdown of the sample with the highest memory usage. A run
/// without a cgroup (rootless, no delegation) has nothing to sample: `on_sample` is not called.
///
/// ```no_run
/// let cfg = sandbox::Config::new(["sleep", "1"]);
/// let mut peak = 0;
/// let interval = std::time::Duration::from_millis(100);
/// let report = sandbox::run::run_sampled(&cfg, interval, &mut |s| peak = peak.max(s.memory_bytes.unwrap_or(0)))?;
/// # Ok::<(), sandbox::Error>(())
/// ```
pub fn run_sampled(
    cfg: &Config,
    interval: Duration,
    on_sample: &mut dyn FnMut(&crate::samples::Sample),
) -> Result<Report> {
    if interval < crate::samples::MIN_INTERVAL {
        let v = humantime::format_duration(interval).to_string();
        return Err(Error::invalid("--sample-interval", &v, "a duration of at least 10ms, e.g. 100ms or 1s"));
    }
    run_inner(cfg, Some((interval, on_sample)))
}

/// The sampling of a run: its interval and what gets each sample.
type Sampling<'a> = (Duration, &'a mut dyn FnMut(&crate::samples::Sample));

fn run_inner(cfg: &Config, sampling: Option<Sampling>) -> Result<Report> {
    cfg.validate()?;
    let argv = cfg
        .command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::invalid("command", &cfg.command.join(" "), "arguments without NUL bytes"))?;
    let ops = crate::plan::build(cfg);
    // Built before anything is created: a bad profile leaves nothing behind.
    let (capabilities, seccomp) = restrictions(cfg)?;
    let rootless = !sys::is_root();
    let userns = user_namespace(cfg, rootless)?;
    // The fds passed on purpose must be open: else one of our own pipes could take a number in
    // 3 .. 3+N-1 and reach the command.
    if let Some(fd) = (3..3 + cfg.preserve_fds as i32).find(|fd| !sys::fd_is_open(*fd)) {
        return Err(Error::invalid(
            "--preserve-fds",
            &cfg.preserve_fds.to_string(),
            &format!("a count of fds that are open from fd 3 on (fd {fd} is not open)"),
        ));
    }
    let env = cfg.env.clone().unwrap_or_else(|| crate::env::default_for(cfg));
    let host = Host::detect(&cfg.cgroup_root)?;
    let cgroup_ops = crate::plan::cgroup_view(cfg, &host.hierarchies(&cfg.limits));
    let mut stdio = Stdio::prepare(cfg.tty)?;

    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e));
    let (sync_wr, sync_rd) = sys::socketpair_seqpacket().map_err(|e| Error::sys("socketpair", e))?;
    let (err_rd, err_wr) = pipe()?;
    let status = if cfg.init { Some(pipe()?) } else { None };

    // Signals are blocked before clone so none is lost between clone and the event loop; they
    // are read from a signalfd. The child restores the old mask right before exec.
    let mut blocked = forwarded_signals();
    blocked.add(Signal::SIGCHLD);
    let mut old_mask = SigSet::empty();
    // The child resets every signal and its mask before exec (sys::default_signals).
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut old_mask))
        .map_err(|e| Error::sys("sigprocmask", e))?;
    let _mask = MaskGuard(old_mask);
    let sfd = SignalFd::with_flags(&blocked, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;

    let mut parent_fds = stdio.parent_fds();
    parent_fds.extend([sync_wr.as_raw_fd(), err_rd.as_raw_fd(), sfd.as_fd().as_raw_fd()]);
    if let Some((rd, _)) = &status {
        parent_fds.push(rd.as_raw_fd());
    }
    let spec = ChildSpec {
        argv,
        hostname: cfg.hostname.clone().unwrap_or_else(|| cfg.id.clone()),
        ops,
        init: cfg.init,
        stdio: stdio.child,
        sync_rd: sync_rd.as_raw_fd(),
        err_wr: err_wr.as_raw_fd(),
        status_wr: status.as_ref().map(|(_, w)| w.as_raw_fd()),
        parent_fds,
        capabilities,
        no_new_privs: cfg.no_new_privs,
        seccomp,
        userns: userns.is_some(),
        env,
        term: std::env::var("TERM").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "xterm".into()),
        preserve_fds: cfg.preserve_fds,
        cgroup_ops,
        cwd: cfg.cwd.clone(),
        user: cfg.user.as_deref().map(crate::user::Spec::parse).transpose()?,
    };

    let start = Instant::now();
    let started_at = SystemTime::now();
    let flags = sys::CLONE_FLAGS | if userns.is_some() { libc::CLONE_NEWUSER } else { 0 };
    let pid = match sys::clone_fork(flags).map_err(|e| Error::sys("clone", e))? {
        Forked::Child => child::main(&spec),
        Forked::Parent(pid) => pid,
    };
    let mut child = ChildGuard { pid, status: None, rusage: None };
    drop((sync_rd, err_wr));
    let status_rd = status.map(|(rd, _wr)| rd);
    stdio.close_child_ends();
    // The child waits for its uid/gid maps before anything that creates a file or checks an owner.
    if let Some(ns) = &userns {
        crate::userns::write_maps(pid.as_raw(), ns)?;
        let _ = sys::send_fds(sync_wr.as_raw_fd(), b'u', &[]);
    }

    // The group is made while the child sets up its namespaces (mounts, lo, hostname): the two
    // overlap instead of adding up. Any error here kills the child (ChildGuard) and undoes the
    // group (GroupGuard), so a bad --cgroup-parent or a missing controller still leaves nothing.
    let parent = cfg.cgroup_parent.as_deref();
    // Groups left by a sandbox that was SIGKILLed: gone before we add ours.
    host.gc(parent);
    // On v2, sandbox and the child may have to leave the parent group for a leaf so that it can
    // hand controllers down (the "no internal processes" rule): only these two pids, never others.
    let ours = [std::process::id() as i32, pid.as_raw()];
    let group = match host.create(parent, &cgroup::group_name(&cfg.id), &cfg.limits, &ours) {
        Ok(g) => GroupGuard(Some(g)),
        // A non-root caller without a delegated cgroup: fine without limits (the report then
        // comes from wait4), an error that says how to get delegation with them.
        Err(e) if rootless => match cfg.limits.cgroup_flags() {
            flags if flags.is_empty() => GroupGuard(None),
            flags => return Err(Error::NoDelegation { limits: flags.join(" "), cause: e.to_string() }),
        },
        Err(e) => return Err(e),
    };

    // The child does not exec until it has read the sync byte, which it gets only once it is in
    // the group: the command never runs unlimited. If the child failed in its own setup, its
    // message (read by check_exec) explains more than our failure to move it, so it goes first.
    // sync_wr stays open until the run ends: the child checks, after its last credential change,
    // that it has not hung up (sandbox died before die-with-parent was armed again).
    let added = group.get().map_or(Ok(vec![]), |g| g.join_files(pid.as_raw()));
    if let Ok(files) = &added {
        let fds: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
        let _ = sys::send_fds(sync_wr.as_raw_fd(), b'x', &fds);
    }
    if added.is_err() {
        drop(sync_wr);
        check_exec(&err_rd)?;
        added?;
        unreachable!("add_pid failed");
    }
    stdio.receive_master();

    let deadline = cfg.limits.timeout.map(|t| start + t);
    // Only with a group: without one there is nothing to read.
    let mut sampler = sampling
        .filter(|_| group.get().is_some())
        .map(|(interval, f)| crate::samples::Sampler::new(interval, start, f));
    let (timed_out, cpu_time_out, stopped) =
        wait(&mut child, &sfd, &err_rd, &mut stdio, group.get(), deadline, sampler.as_mut(), cfg)?;
    drop(sync_wr);
    // Whatever the child wrote before it died (all its write ends are closed once it is reaped).
    check_exec(&err_rd)?;
    let elapsed = start.elapsed();
    let wall = elapsed.as_secs_f64();
    // From the monotonic clock: a wall-clock step during the run cannot put the end first.
    let ended_at = started_at + elapsed;
    stdio.drain();
    stdio.restore_terminal();
    let mut ending = child_ending(child.status);
    if let Some(raw) = status_rd.and_then(|fd| read_status(&fd)) {
        ending = Ending::from_raw(raw);
    }

    let (stats, cg) = match group.get() {
        Some(g) => (
            g.stats(),
            Some(CgroupReport {
                version: g.version(),
                path: g.path().display().to_string(),
                paths: g.paths().into_iter().map(|(k, v)| (k, v.display().to_string())).collect(),
            }),
        ),
        None => (child.rusage.as_ref().map(cgroup::stats::from_rusage).unwrap_or_default(), None),
    };
    group.remove()?;
    let mut stats = stats;
    if let Some(s) = &sampler {
        stats.memory.at_peak = s.at_peak();
    }
    let outcome = Outcome { ending, timed_out, cpu_time_out, stopped, wall_time_s: wall, started_at, ended_at };
    Ok(Report::new(cfg, outcome, cg, stats))
}

/// Reads the error pipe to EOF: empty means the command was executed.
pub(crate) fn check_exec(err_rd: &OwnedFd) -> Result<()> {
    let mut msg = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read(err_rd.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => msg.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("reading the child's status", e)),
        }
    }
    if msg.is_empty() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&msg);
    let (code, message) = text.split_once('\n').unwrap_or(("125", &text));
    match code.parse::<i32>() {
        Ok(c @ (126 | 127)) => Err(Error::Exec { code: c, message: message.to_string() }),
        _ => Err(Error::ChildSetup(message.to_string())),
    }
}

fn read_status(fd: &OwnedFd) -> Option<i32> {
    let mut b = [0u8; 4];
    matches!(read(fd.as_raw_fd(), &mut b), Ok(4)).then(|| i32::from_ne_bytes(b))
}

fn child_ending(status: Option<WaitStatus>) -> Ending {
    match status {
        Some(WaitStatus::Signaled(_, s, _)) => Ending::Signaled(s as i32),
        Some(WaitStatus::Exited(_, c)) => Ending::Exited(c),
        _ => Ending::Exited(125),
    }
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
/// end a stop. Returns whether the deadline expired, whether the CPU time was used up (whichever
/// came first: the other is no longer checked) and how the run was stopped, if it was.
/// The error pipe is polled too: until the command is executed sandbox must still answer signals
/// and the deadline, and a setup or exec failure ends the wait with its message.
#[allow(clippy::too_many_arguments)]
fn wait(
    child: &mut ChildGuard,
    sfd: &SignalFd,
    err_rd: &OwnedFd,
    stdio: &mut Stdio,
    group: Option<&dyn Cgroup>,
    deadline: Option<Instant>,
    mut sampler: Option<&mut crate::samples::Sampler>,
    cfg: &Config,
) -> Result<(bool, bool, Option<Stopped>)> {
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
        let sources = stdio.sources();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        // The error pipe only until exec: after EOF it would report POLLHUP forever.
        if exec_pending {
            fds.push(PollFd::new(err_rd.as_fd(), PollFlags::POLLIN));
        }
        let first_source = fds.len();
        fds.extend(sources.iter().map(|(_, fd, ev)| PollFd::new(*fd, *ev)));
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready: Vec<usize> = fds
            .iter()
            .skip(first_source)
            .zip(sources.iter())
            .filter(|(p, _)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, (i, _, _))| *i)
            .collect();
        let sig_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let err_ready = exec_pending && fds[1].revents().is_some_and(|r| !r.is_empty());
        drop(fds);
        drop(sources);
        if err_ready {
            // Data means the child failed and is exiting, EOF that the command was executed:
            // either way reading to EOF does not block for long.
            check_exec(err_rd)?;
            exec_pending = false;
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
                            let _ = kill(child.pid, s);
                            let mut st = Stop {
                                report: Stopped { signal: s.as_str().to_string(), killed: false },
                                deadline: Some(Instant::now() + cfg.stop_timeout),
                            };
                            if !acts || cfg.stop_timeout.is_zero() {
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
                return Ok((timed_out, cpu_time_out, stop.map(|s| s.report)));
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("wait4", e)),
        }
    }
}

/// The user namespace of a run: `--userns` as asked (root only), or for a non-root caller its own
/// ids mapped to root inside, without which it could make none of the other namespaces.
fn user_namespace(cfg: &Config, rootless: bool) -> Result<Option<crate::userns::UserNs>> {
    if !rootless {
        return Ok(cfg.userns.clone());
    }
    let own = crate::userns::UserNs::own(nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    match &cfg.userns {
        Some(ns) if *ns != own => Err(Error::invalid(
            "--userns",
            &crate::userns::map_text(&ns.uids).trim().replace('\n', ", "),
            "no --userns as a non-root user: sandbox already maps your own uid and gid to root inside, \
             and the kernel lets an unprivileged process map nothing else",
        )),
        _ => Ok(Some(own)),
    }
}
