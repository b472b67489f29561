//! One run, start to finish, in four phases a reader can follow:
//!
//! 1. **create** ([`crate::container::create`]): clone into new namespaces, make the cgroup while
//!    the child sets up its mounts; the child waits for the go;
//! 2. **start**: the go; the child joins its group and execs;
//! 3. **supervise** ([`crate::container::supervise`]): wait, forwarding signals, relaying stdio,
//!    enforcing the timeout and the CPU time, taking samples, ending a stop;
//! 4. **finish** (here): stats → cleanup → report.
//!
//! The same engine runs a foreground `sandbox run` and `run -d`'s detached supervisor; an
//! [`Observer`] records the phases in the state root. Cleanup is tied to guards, so every path
//! (normal exit, OOM kill, timeout, a setup error, a panic) kills the child and removes the group.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::read;

use crate::cgroup;
use crate::config::Config;
use crate::container::create::{check_exec, create, Created, GroupGuard};
pub use crate::container::supervise::Observer;
use crate::container::supervise::{supervise, Ended, NoObserver};
use crate::error::{Error, Result};
use crate::report::{CgroupReport, Ending, Outcome, Report};
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

/// A warning on stderr; a closed or broken stderr is not an error of the run.
pub fn warn(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "sandbox: warning: {msg}");
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
    run_inner(cfg, Some((interval, on_sample)))
}

/// The sampling of a run: its interval and what gets each sample.
pub type Sampling<'a> = (Duration, &'a mut dyn FnMut(&crate::samples::Sample));

/// What a run is besides its [`Config`]: how its stdio is connected, who records its phases,
/// what the command must not see. [`run`] uses the defaults: the caller's stdio (see
/// [`Stdio::prepare`]), no observer.
#[derive(Default)]
pub struct Engine<'a> {
    pub sampling: Option<Sampling<'a>>,
    /// Told when the container is created and started.
    pub observer: Option<&'a mut dyn Observer>,
    /// `run -d`: no terminal; the command's stdout and stderr go into this log (`None` in a
    /// detached run: to /dev/null), its stdin is /dev/null.
    pub detached: Option<Detached>,
    /// Host directories hidden from a host-view command (the state root).
    pub hide: Vec<std::path::PathBuf>,
    /// The OCI runtime's `--console-socket` (connected): the pty master goes there once the
    /// child made it, before `created` (containerd and conmon wait for it during `create`).
    pub console: Option<std::os::fd::OwnedFd>,
    /// The OCI runtime's `create`: the command is cloned as our parent's child (the engine's shim
    /// reaps it, as it does runc's) and only followed here (`supervise::follow`): no signal
    /// forwarding, deadline or samples, which the OCI config has no place for anyway.
    pub sibling: bool,
}

/// The stdio of a detached run.
pub struct Detached {
    pub log: Option<crate::container::logs::LogWriter>,
    /// `run -d -t`: the listening socket `sandbox attach` connects to (ROOT/ID/attach.sock).
    pub attach: Option<std::os::fd::OwnedFd>,
}

/// Runs `cfg` with the options of `engine`: create → start → supervise → finish.
pub fn run_with(cfg: &Config, mut engine: Engine) -> Result<Report> {
    if let Some((interval, _)) = engine.sampling.as_ref().filter(|(i, _)| *i < crate::samples::MIN_INTERVAL) {
        let v = humantime::format_duration(*interval).to_string();
        return Err(Error::invalid("--sample-interval", &v, "a duration of at least 10ms, e.g. 100ms or 1s"));
    }
    let mut none = NoObserver;
    let observer: &mut dyn Observer = match engine.observer.take() {
        Some(o) => o,
        None => &mut none,
    };
    let stdio = match engine.detached.take() {
        Some(d) => Stdio::detached(cfg.tty == crate::config::Tty::Always, d.log, d.attach)?,
        None => Stdio::prepare(cfg.tty)?,
    };
    let mut c = create(cfg, stdio, &engine.hide, engine.sibling)?;
    if let Some(sock) = engine.console.take() {
        use std::os::fd::AsRawFd;
        if !c.stdio.forward_master(sock.as_raw_fd())? {
            check_exec(&c.err_rd)?;
            return Err(Error::ChildSetup("the container's process ended before its terminal was made".into()));
        }
    }
    if engine.sibling {
        c.settle()?;
    }
    observer.created(c.child.pid.as_raw(), c.group.get())?;
    c.start();
    if engine.sibling {
        let ended = crate::container::supervise::follow(&mut c.child, &c.err_rd, observer)?;
        return finish(cfg, c, ended, None);
    }
    let deadline = cfg.limits.timeout.map(|t| c.start + t);
    // Only with a group: without one there is nothing to read.
    let mut sampler = engine
        .sampling
        .filter(|_| c.group.get().is_some())
        .map(|(interval, f)| crate::samples::Sampler::new(interval, c.start, f));
    let ended = supervise(
        &mut c.child,
        &c.sfd,
        &c.err_rd,
        &mut c.stdio,
        c.group.get(),
        deadline,
        sampler.as_mut(),
        cfg,
        observer,
    )?;
    finish(cfg, c, ended, sampler.as_ref())
}

fn run_inner(cfg: &Config, sampling: Option<Sampling>) -> Result<Report> {
    run_with(cfg, Engine { sampling, ..Engine::default() })
}

/// Phase 4, finish: what the child wrote before it died, the ending, the group's figures, the
/// group removed, the report.
fn finish(cfg: &Config, mut c: Created, ended: Ended, sampler: Option<&crate::samples::Sampler>) -> Result<Report> {
    drop(c.sync_wr.take());
    // Whatever the child wrote before it died (all its write ends are closed once it is reaped).
    check_exec(&c.err_rd)?;
    let elapsed = c.start.elapsed();
    let wall = elapsed.as_secs_f64();
    // From the monotonic clock: a wall-clock step during the run cannot put the end first.
    let ended_at = c.started_at + elapsed;
    c.stdio.drain();
    c.stdio.restore_terminal();
    let mut ending = child_ending(c.child.status);
    if let Some(raw) = c.status_rd.take().and_then(|fd| read_status(&fd)) {
        ending = Ending::from_raw(raw);
    }

    let group = std::mem::replace(&mut c.group, GroupGuard(None));
    let (stats, cg) = match group.get() {
        Some(g) => (
            g.stats(),
            Some(CgroupReport {
                version: g.version(),
                path: g.path().display().to_string(),
                paths: g.paths().into_iter().map(|(k, v)| (k, v.display().to_string())).collect(),
            }),
        ),
        None => (c.child.rusage.as_ref().map(cgroup::stats::from_rusage).unwrap_or_default(), None),
    };
    group.remove()?;
    let mut stats = stats;
    if let Some(s) = sampler {
        stats.memory.at_peak = s.at_peak();
    }
    let Ended { timed_out, cpu_time_out, stopped } = ended;
    let outcome =
        Outcome { ending, timed_out, cpu_time_out, stopped, wall_time_s: wall, started_at: c.started_at, ended_at };
    Ok(Report::new(cfg, outcome, cg, stats))
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
