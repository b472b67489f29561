//! `sandbox exec`: one more process in a running container, with what the container's command
//! has and nothing more.
//!
//! 1. The command is found by a pidfd, checked against its recorded start time (a pid reused by
//!    another process is never mistaken for it); a paused (frozen) container is refused.
//! 2. sandbox forks a helper that is not dumpable (CVE-2016-9962, CVE-2019-5736: nothing in the
//!    container may ptrace it or open its /proc/PID/exe, the host's sandbox binary, while it runs
//!    our code in the container's pid namespace), joins the container's group (v1: writes 0 to its
//!    `tasks` files) and its pid namespace, and forks the process (CLONE_PARENT: sandbox's child;
//!    on v2 born in the group, CLONE_INTO_CGROUP): its code never runs outside the limits, and the
//!    fork itself counts against the group's pids.max (EAGAIN at the limit).
//! 3. The process joins every other namespace of the command, the user namespace first (setns of
//!    the pidfd, Linux 5.8, in one call; else /proc/PID/ns/*), which also gives it the container's
//!    root and a working directory inside it: no directory of the host stays (CVE-2024-21626).
//! 4. Then what the run's child does (`crate::child`): stdio (a pty from the container's devpts),
//!    the environment, the working directory by path, the same capability sets, user, no_new_privs
//!    and seccomp filter (built from the container's config as the run built it), no fd above 2.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::PollTimeout;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{self, pipe2, Pid};

use crate::child::{self, ChildSpec, ChildStdio};
use crate::config::{Config, Tty};
use crate::error::{Error, Result};
use crate::sys::{self, Forked};
use crate::tty::Stdio;

/// The running container to exec into, as its state records it.
pub struct Target<'a> {
    /// Its name (or id), for messages.
    pub name: &'a str,
    /// The host pid of its command (or of its init) and that process's start time (field 22 of
    /// /proc/PID/stat, clock ticks since boot).
    pub pid: i32,
    pub start_time: u64,
    /// Its group's directories by controller ("" on v2).
    pub cgroups: &'a BTreeMap<String, PathBuf>,
    /// The run's config: capabilities, seccomp, no_new_privs, user, environment, working directory.
    pub config: &'a Config,
}

/// What to run there and how (`sandbox exec`'s flags).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub command: Vec<String>,
    /// `-e`/`--env-file` entries over the container's environment (`NAME` alone: the caller's value).
    pub env: Vec<String>,
    /// `-w`: else the container's working directory, else `/`.
    pub cwd: Option<PathBuf>,
    /// `-u USER[:GROUP]`: else the container's user.
    pub user: Option<String>,
    /// `-i`: sandbox's stdin goes to the process (else /dev/null, or the pty with `-t`).
    pub interactive: bool,
    /// `-t`: a pseudo-terminal from the container's devpts.
    pub tty: bool,
    /// `-d`: return once the command is executed; it stays, with /dev/null as stdio.
    pub detach: bool,
    /// With `detach`: the process keeps the caller's stdin, stdout and stderr instead of
    /// /dev/null (the OCI runtime's `exec -d`: the engine passes its fifos as the runtime's stdio).
    pub keep_stdio: bool,
    /// With `detach` and `tty`: the OCI runtime's `--console-socket` (connected): the master of
    /// the process's pty (from the container's devpts) is sent there, nothing is relayed.
    pub console: Option<std::os::fd::RawFd>,
    /// The OCI runtime's `exec --preserve-fds N`: the caller's fds 3 .. 3+N-1 are the process's
    /// (checked open by the caller before it opened anything of its own).
    pub preserve_fds: u32,
    /// A foreground exec's time limit (a createContainer/startContainer hook's `timeout`): past
    /// it the process is SIGKILLed and the exec fails with [`Error::Container`] saying so.
    pub timeout: Option<std::time::Duration>,
}

/// The namespaces exec joins, in the order the /proc/PID/ns fallback joins them.
const NAMESPACES: [(&str, libc::c_int); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("pid", libc::CLONE_NEWPID),
    ("net", libc::CLONE_NEWNET),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// The start time of process `pid` (field 22 of /proc/PID/stat), `None` when there is none.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = sys::read_small(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the group is frozen (v2 cgroup.freeze, v1 freezer.state): a process that joined it
/// would stop before running anything.
fn paused(cgroups: &BTreeMap<String, PathBuf>) -> bool {
    cgroups.iter().any(|(ctrl, dir)| match ctrl.as_str() {
        "" => crate::cgroup::read(&dir.join("cgroup.freeze")).is_some_and(|v| v.trim() == "1"),
        "freezer" => crate::cgroup::read(&dir.join("freezer.state")).is_some_and(|v| v.trim() != "THAWED"),
        _ => false,
    })
}

fn not_running(name: &str) -> Error {
    Error::Container(format!("container {name} is not running"))
}

/// The namespaces of `pid` that are not ours: those to join.
fn namespaces(pid: i32, name: &str) -> Result<libc::c_int> {
    let mut flags = 0;
    for (ns, flag) in NAMESPACES {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{ns}")).map_err(|_| not_running(name))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{ns}"));
        if !ours.is_ok_and(|o| (o.dev(), o.ino()) == (theirs.dev(), theirs.ino())) {
            flags |= flag;
        }
    }
    Ok(flags)
}

/// What the helper and the process need besides the [`ChildSpec`].
struct Entry {
    pidfd: OwnedFd,
    pid: i32,
    /// The namespaces to join (CLONE_NEW* flags).
    flags: libc::c_int,
    /// v1: the group's `tasks` files, opened for writing (the helper writes 0 to each).
    tasks: Vec<OwnedFd>,
    /// v2: the group's directory, for CLONE_INTO_CGROUP.
    cgroup_dir: Option<OwnedFd>,
    /// The helper writes the process's pid here.
    pid_wr: OwnedFd,
    detach: bool,
    /// Detached, with the caller's stdio instead of /dev/null.
    keep_stdio: bool,
    /// Without `-i` or `-t`: stdin is the container's /dev/null.
    null_stdin: bool,
    name: String,
}

/// Opens what joining the group takes, on the host's cgroupfs, before anything is forked.
fn open_group(cgroups: &BTreeMap<String, PathBuf>) -> Result<(Vec<OwnedFd>, Option<OwnedFd>)> {
    let open = |path: PathBuf, dir: bool| {
        let mut o = std::fs::OpenOptions::new();
        let flags = if dir { libc::O_DIRECTORY } else { 0 };
        o.read(dir).write(!dir).custom_flags(flags | libc::O_CLOEXEC);
        o.open(&path).map(OwnedFd::from).map_err(|e| Error::io("cannot open", path, e))
    };
    if let Some(dir) = cgroups.get("") {
        return Ok((vec![], Some(open(dir.clone(), true)?)));
    }
    let mut seen = std::collections::BTreeSet::new();
    // A hybrid run's cgroup2 group ("unified", for its pressure files) has no `tasks` file: the
    // process joins it through cgroup.procs (0: itself), as the run's child does.
    let tasks = cgroups
        .iter()
        .filter(|(_, d)| seen.insert(d.to_path_buf()))
        .map(|(c, d)| open(d.join(if c == "unified" { "cgroup.procs" } else { "tasks" }), false));
    Ok((tasks.collect::<Result<_>>()?, None))
}

/// Kills and reaps the process when dropped (error paths), unless it was reaped or let go.
struct ProcessGuard(Option<Pid>);

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// Runs `opts.command` in the container `target` and returns its exit status as `run` does (the
/// code, 128+N for signal N; 126/127 as errors); with `detach`, 0 once it is executed.
///
/// The calling process must be single-threaded (the helper is forked without re-exec).
pub fn exec(target: &Target, opts: &Options) -> Result<i32> {
    run(target, opts).map(|(code, _)| code)
}

/// `exec` with `detach`: the host pid of the process once it is executed (the OCI runtime's
/// `exec -d --pid-file`). The caller's parent (or its subreaper) reaps it.
pub fn spawn(target: &Target, opts: &Options) -> Result<i32> {
    let opts = Options { detach: true, ..opts.clone() };
    run(target, &opts).map(|(_, pid)| pid)
}

fn run(target: &Target, opts: &Options) -> Result<(i32, i32)> {
    let cfg = target.config;
    if opts.command.is_empty() {
        return Err(Error::invalid("command", "", "a command to run in the container, e.g. `sandbox exec web sh`"));
    }
    let argv = child::argv(&opts.command)?;
    let user = opts.user.as_deref().or(cfg.user.as_deref()).map(crate::user::Spec::parse).transpose()?;
    for e in &opts.env {
        crate::env::check_entry("--env", e)?;
    }
    if let Some(dir) = &opts.cwd {
        crate::config::check_abs("--workdir", dir)?;
    }
    // Exactly what the run's command got.
    let (capabilities, seccomp) = crate::container::create::restrictions(cfg)?;

    // The pidfd first, then the start time: if it matches, the pidfd is the container's process.
    let pidfd = sys::pidfd_open(target.pid).map_err(|_| not_running(target.name))?;
    if start_time(target.pid) != Some(target.start_time) {
        return Err(not_running(target.name));
    }
    if paused(target.cgroups) {
        return Err(Error::Container(format!("container {} is paused, unpause it first", target.name)));
    }
    let flags = namespaces(target.pid, target.name)?;
    let (tasks, cgroup_dir) = open_group(target.cgroups)?;
    let mut env = cfg.env.clone().unwrap_or_else(|| crate::env::default_for(cfg));
    crate::env::apply(&mut env, &opts.env, &crate::env::caller());
    let cwd = opts.cwd.clone().or_else(|| cfg.cwd.clone()).unwrap_or_else(|| "/".into());
    let mode = if opts.tty { Tty::Always } else { Tty::Never };
    let mut stdio = match (opts.detach, opts.console) {
        (_, Some(_)) => Some(Stdio::prepare_with(Tty::Always, false)?),
        (true, None) => None,
        (false, None) => Some(Stdio::prepare_with(mode, opts.interactive)?),
    };

    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e));
    let (sync_wr, sync_rd) = sys::socketpair_seqpacket().map_err(|e| Error::sys("socketpair", e))?;
    let (err_rd, err_wr) = pipe()?;
    let (pid_rd, pid_wr) = pipe()?;
    // As in a run: signals are read from a signalfd and passed on; the process starts with
    // the default actions and an empty mask (child::exec).
    let mut blocked = crate::run::forwarded_signals();
    blocked.add(Signal::SIGCHLD);
    let mut old_mask = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut old_mask))
        .map_err(|e| Error::sys("sigprocmask", e))?;
    let _mask = crate::container::create::MaskGuard(old_mask);
    let sfd = SignalFd::with_flags(&blocked, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;

    let mut parent_fds = stdio.as_ref().map(Stdio::parent_fds).unwrap_or_default();
    parent_fds.extend([sync_wr.as_raw_fd(), err_rd.as_raw_fd(), pid_rd.as_raw_fd(), sfd.as_fd().as_raw_fd()]);
    let spec = ChildSpec {
        argv,
        hostname: String::new(),
        loopback: false,
        join: vec![],
        ops: vec![],
        init: false,
        stdio: stdio.as_ref().map_or(ChildStdio::Inherit, |s| s.child),
        sync_rd: sync_rd.as_raw_fd(),
        err_wr: err_wr.as_raw_fd(),
        status_wr: None,
        parent_fds,
        capabilities,
        process: if cfg.privileged { None } else { cfg.process.clone() },
        no_new_privs: cfg.no_new_privs,
        seccomp,
        userns: flags & libc::CLONE_NEWUSER != 0,
        env,
        term: std::env::var("TERM").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "xterm".into()),
        preserve_fds: opts.preserve_fds,
        cgroup_ops: vec![],
        cwd: Some(cwd),
        user,
        die_with_parent: !opts.detach,
        announce_ready: false,
    };
    let entry = Entry {
        pidfd,
        pid: target.pid,
        flags,
        tasks,
        cgroup_dir,
        pid_wr,
        detach: opts.detach,
        keep_stdio: opts.keep_stdio || opts.console.is_some(),
        null_stdin: !opts.interactive && !opts.tty && !opts.keep_stdio && opts.console.is_none(),
        name: target.name.to_string(),
    };
    let helper = match sys::clone_fork(0).map_err(|e| Error::sys("fork", e))? {
        Forked::Child => helper(&spec, &entry),
        Forked::Parent(pid) => pid,
    };
    drop((sync_rd, err_wr, entry));
    if let Some(s) = stdio.as_mut() {
        s.close_child_ends();
    }
    let mut b = [0u8; 4];
    let got = matches!(unistd::read(pid_rd.as_raw_fd(), &mut b), Ok(4));
    let _ = waitpid(helper, None);
    if !got {
        crate::container::create::check_exec(&err_rd)?;
        return Err(Error::ChildSetup("the exec helper ended without starting the process".into()));
    }
    let pid = Pid::from_raw(i32::from_ne_bytes(b));
    let mut guard = ProcessGuard(Some(pid));
    if opts.detach {
        // The master comes before exec (the process allocates it while setting up its stdio).
        if let (Some(sock), Some(s)) = (opts.console, stdio.as_mut()) {
            if !s.forward_master(sock)? {
                crate::container::create::check_exec(&err_rd)?;
                return Err(Error::ChildSetup("the exec'd process ended before its terminal was made".into()));
            }
        }
        // Executed or failed: either way the process has not long to go. Let go, it stays.
        crate::container::create::check_exec(&err_rd)?;
        guard.0 = None;
        return Ok((0, pid.as_raw()));
    }
    let stdio = stdio.as_mut().expect("a foreground exec has stdio");
    stdio.receive_master();
    // A timeout too long for the clock (an OCI hook's may be i64::MAX seconds) is none.
    let deadline = opts.timeout.and_then(|t| std::time::Instant::now().checked_add(t).map(|d| (d, t)));
    let status = relay(pid, &sfd, &err_rd, stdio, deadline)?;
    guard.0 = None;
    drop(sync_wr);
    crate::container::create::check_exec(&err_rd)?;
    stdio.drain();
    stdio.restore_terminal();
    let code = match status {
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        WaitStatus::Exited(_, c) => c,
        _ => 125,
    };
    Ok((code, pid.as_raw()))
}

/// Until the process is reaped: pass signals on (SIGWINCH resizes the pty), relay stdio, and
/// read the error pipe until exec (a setup or exec failure ends the wait with its message). Past
/// `deadline` the process is SIGKILLed, reaped, and the wait fails saying so.
fn relay(
    pid: Pid,
    sfd: &SignalFd,
    err_rd: &OwnedFd,
    stdio: &mut Stdio,
    deadline: Option<(std::time::Instant, std::time::Duration)>,
) -> Result<WaitStatus> {
    let mut exec_pending = true;
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some((at, limit)) => match at.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => {
                    // Rounded up, so the poll never wakes just before the deadline for nothing.
                    PollTimeout::try_from(left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
                _ => {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    return Err(Error::Container(format!(
                        "it did not end within its timeout of {} s and was killed",
                        limit.as_secs_f64()
                    )));
                }
            },
        };
        let ready = stdio.wait(sfd.as_fd(), exec_pending.then(|| err_rd.as_fd()), timeout)?;
        let (err_ready, pumps) = (ready.exec_result, ready.pumps);
        if err_ready {
            crate::container::create::check_exec(err_rd)?;
            exec_pending = false;
        }
        for i in pumps {
            if stdio.pump(i) {
                // The outer terminal is gone: nobody can use or end this session any more.
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
        // Every queued signal, whatever woke the poll: the signalfd is non-blocking, and one that
        // came in after the poll returned for another fd must not wait for the next wake-up.
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(Signal::SIGWINCH) if stdio.resize() => {}
                Ok(s) => {
                    let _ = kill(pid, s);
                }
            }
        }
        match sys::wait4_nohang(pid) {
            Ok(Some((st, _))) => return Ok(st),
            Ok(None) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("wait4", e)),
        }
    }
}

/// Joins the namespaces in `flags` of the process behind `e.pidfd`: with the pidfd in one call,
/// or on a kernel before 5.8 (EINVAL) through /proc/PID/ns, every file opened before the first
/// join (after the mount namespace, /proc is the container's and PID means another process).
fn join(e: &Entry, flags: libc::c_int) -> nix::Result<()> {
    match sys::setns(e.pidfd.as_raw_fd(), flags) {
        Err(Errno::EINVAL) => {}
        r => return r,
    }
    let files = NAMESPACES
        .iter()
        .filter(|(_, f)| flags & f != 0)
        .map(|(ns, f)| {
            let path = format!("/proc/{}/ns/{ns}", e.pid);
            std::fs::File::open(path)
                .map(|file| (file, *f))
                .map_err(|err| Errno::from_raw(err.raw_os_error().unwrap_or(0)))
        })
        .collect::<nix::Result<Vec<_>>>()?;
    files.iter().try_for_each(|(file, f)| sys::setns(file.as_raw_fd(), *f))
}

/// The helper: forked by sandbox, never returns. Joins the group and the pid namespace, forks
/// the process as sandbox's child and hands sandbox its pid.
fn helper(spec: &ChildSpec, e: &Entry) -> ! {
    for fd in &spec.parent_fds {
        let _ = unistd::close(*fd);
    }
    let setup = |what: &str, err: Errno| child::fail(spec.err_wr, 125, &format!("{what}: {}", err.desc()));
    if let Err(err) = sys::not_dumpable() {
        setup("prctl(PR_SET_DUMPABLE)", err);
    }
    // v1: a single task moving itself (tasks, not cgroup.procs) skips the RCU grace period of
    // cgroup_threadgroup_rwsem. Migration does not check pids.max: the fork below does.
    for fd in &e.tasks {
        if let Err(err) = unistd::write(fd, b"0") {
            setup(&format!("joining container {}'s cgroup", e.name), err);
        }
        let _ = unistd::close(fd.as_raw_fd());
    }
    if let Err(err) = join(e, libc::CLONE_NEWPID & e.flags) {
        setup(&format!("joining container {}'s pid namespace", e.name), err);
    }
    match sys::clone_parent(e.cgroup_dir.as_ref().map(|d| d.as_raw_fd())) {
        Ok(Forked::Child) => process(spec, e),
        Ok(Forked::Parent(pid)) => {
            let b = pid.as_raw().to_ne_bytes();
            let _ = unistd::write(&e.pid_wr, &b);
            sys::exit_now(0)
        }
        Err(Errno::EAGAIN) => child::fail(
            spec.err_wr,
            125,
            &format!("cannot start a process in container {}: its pids limit is reached (fork: EAGAIN)", e.name),
        ),
        Err(err) => setup("clone3", err),
    }
}

/// The process: in the group and the pid namespace from birth; joins the other namespaces, sets
/// itself up as the run's child does and execs.
fn process(spec: &ChildSpec, e: &Entry) -> ! {
    // Not ours to keep: the group's directory (a host fd: CVE-2024-21626) and the pid pipe.
    if let Some(d) = &e.cgroup_dir {
        let _ = unistd::close(d.as_raw_fd());
    }
    let _ = unistd::close(e.pid_wr.as_raw_fd());
    let setup = |what: &str, err: Errno| child::fail(spec.err_wr, 125, &format!("{what}: {}", err.desc()));
    if !e.detach {
        if let Err(err) = sys::die_with_parent() {
            setup("prctl(PR_SET_PDEATHSIG)", err);
        }
    }
    match join(e, e.flags & !libc::CLONE_NEWPID) {
        Err(Errno::ESRCH) => child::fail(spec.err_wr, 125, &format!("container {} is not running", e.name)),
        Err(err) => setup(&format!("joining container {}'s namespaces", e.name), err),
        Ok(()) => {}
    }
    let _ = unistd::close(e.pidfd.as_raw_fd());
    if spec.userns {
        if let Err(err) = child::take_root() {
            setup("becoming root in the container's user namespace", err);
        }
    }
    // Stdio from inside: /dev/null and the pty are the container's.
    if let Err(err) = child::connect_stdio(&spec.stdio) {
        setup("connecting stdio", err);
    }
    if (e.detach && !e.keep_stdio) || e.null_stdin {
        let null = match std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
            Ok(f) => OwnedFd::from(f),
            Err(err) => child::fail(spec.err_wr, 125, &format!("opening the container's /dev/null: {err}")),
        };
        for fd in if e.detach && !e.keep_stdio { 0..3 } else { 0..1 } {
            if let Err(err) = unistd::dup2(null.as_raw_fd(), fd) {
                setup("connecting stdio", err);
            }
        }
    }
    child::apply_environment(spec);
    child::enter_cwd(spec, false);
    child::restrict(spec);
    child::last_checks(spec, !e.detach);
    child::exec(spec)
}
