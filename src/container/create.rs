//! Phase 1 of a run, create: everything checked and built before anything exists (argv, mount
//! plan, seccomp filter, user namespace, stdio), then the child cloned into its namespaces and
//! the group made while it sets itself up. The child is left waiting for the go (the sync byte
//! that [`Created::start`] sends): it has not executed anything of the command yet.
//!
//! Cleanup is tied to guards, so every path (a setup error, a panic, a lost supervisor) kills the
//! child and removes the group.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Instant, SystemTime};

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, read, Pid};

use crate::cgroup::{self, Cgroup, Host};
use crate::child::{self, ChildSpec};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::sys::{self, Forked};
use crate::tty::Stdio;

/// Removes the group when dropped (error paths), or explicitly with [`GroupGuard::remove`].
/// Empty for a rootless run that has no cgroup (no delegation, no limits asked for).
pub(crate) struct GroupGuard(pub(crate) Option<Box<dyn Cgroup>>);

impl GroupGuard {
    pub(crate) fn get(&self) -> Option<&dyn Cgroup> {
        self.0.as_deref()
    }

    pub(crate) fn remove(mut self) -> Result<()> {
        self.0.take().map_or(Ok(()), |g| g.remove())
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.0.take().map(|g| g.remove()) {
            crate::run::warn(&e.to_string());
        }
    }
}

/// Restores the signal mask when dropped.
pub(crate) struct MaskGuard(pub(crate) SigSet);

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
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

/// Kills (SIGKILL: the whole pid namespace goes with its PID 1) and reaps the child when dropped,
/// unless it was already reaped.
pub(crate) struct ChildGuard {
    pub(crate) pid: Pid,
    /// Set once reaped.
    pub(crate) status: Option<WaitStatus>,
    /// What the child and the descendants it reaped used (wait4): the report's figures when
    /// there is no cgroup.
    pub(crate) rusage: Option<libc::rusage>,
    /// A child cloned as our parent's (an OCI container's init, `sys::clone_sibling`): the fd
    /// we follow it by, as we cannot wait4 it. Signals go through it, never to a reused pid.
    pub(crate) pidfd: Option<OwnedFd>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        match &self.pidfd {
            // Not ours to reap: its parent (the engine's shim) does.
            Some(fd) => {
                let _ = sys::pidfd_send_signal(fd, libc::SIGKILL);
            }
            None => {
                let _ = kill(self.pid, Signal::SIGKILL);
                let _ = waitpid(self.pid, None);
            }
        }
    }
}

/// The run's cgroup2 group made before the clone (Host::premake_unified), removed when dropped
/// until the run's group has adopted it.
struct Premade(Option<(std::path::PathBuf, std::fs::File)>);

impl Premade {
    fn remove(&mut self) {
        if let Some((dir, f)) = self.0.take() {
            drop(f);
            // The child was killed and reaped before this runs (ChildGuard drops first); an
            // exiting task can keep the group busy for a moment.
            for _ in 0..100 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
}

impl Drop for Premade {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A created container: the child cloned, in its namespaces, its group made, waiting for the go.
/// Fields drop in order: the group is removed (what is in it killed), then the child reaped,
/// then the terminal restored and the signal mask put back.
pub(crate) struct Created {
    pub(crate) group: GroupGuard,
    pub(crate) child: ChildGuard,
    pub(crate) stdio: Stdio,
    /// Our end of the sync socket: open until the run ends (the child checks, after its last
    /// credential change, that it has not hung up: sandbox died before die-with-parent was armed
    /// again).
    pub(crate) sync_wr: Option<OwnedFd>,
    /// The child's setup or exec error, EOF once the command was executed.
    pub(crate) err_rd: OwnedFd,
    /// With `--init`: the command's wait status.
    pub(crate) status_rd: Option<OwnedFd>,
    pub(crate) sfd: SignalFd,
    /// The files the child writes "0" to, to join its group itself (v1 `tasks`).
    join: Vec<std::fs::File>,
    pub(crate) start: Instant,
    pub(crate) started_at: SystemTime,
    _mask: MaskGuard,
}

/// Creates the container for `cfg` with `stdio` (see [`Stdio::prepare`] and
/// [`Stdio::detached`]): nothing runs of the command until [`Created::start`].
/// `hide`: host directories the command must not see in a host-view run (the state root).
/// `sibling`: the child is cloned as our parent's child (an OCI runtime's `create`: the engine's
/// shim reaps it), followed through a pidfd.
pub(crate) fn create(cfg: &Config, mut stdio: Stdio, hide: &[std::path::PathBuf], sibling: bool) -> Result<Created> {
    cfg.validate()?;
    // Namespaces shared with us (an OCI config that leaves the type out): no new one at clone,
    // and nothing of ours is set there (validate refused a hostname or sysctl for them).
    let shared = cfg.shared_namespaces.iter().filter_map(|k| ns_flag(k)).fold(0, |f, n| f | n);
    if shared & libc::CLONE_NEWNS != 0 {
        return Err(Error::invalid("shared namespace", "mnt", "net, ipc, uts or pid: every run has its own mounts"));
    }
    // The command's end kills its whole pid namespace only when it is PID 1 of a new one: with
    // sandbox's own, PR_SET_PDEATHSIG would leave its children running if sandbox died. Only an
    // OCI container may share it: its supervisor kills its whole group when the process ends.
    if shared & libc::CLONE_NEWPID != 0 && !sibling {
        return Err(Error::invalid("shared namespace", "pid", "a new pid namespace for a supervised run"));
    }
    let argv = child::argv(&cfg.command)?;
    let mut ops = crate::plan::build(cfg);
    // Alive until the child is cloned: its idmapped binds attach through them.
    let _idmaps = crate::mounts::make_idmaps(&mut ops)?;
    // The state root stays out of the command's view of the host's files: a command that is
    // root inside (DAC_OVERRIDE) could otherwise rewrite its own state or report there.
    if cfg.rootfs.is_none() {
        ops.extend(hide.iter().filter(|d| d.is_dir()).map(|d| crate::plan::Op::Mask(d.clone())));
    }
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

    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e));
    let (sync_wr, sync_rd) = sys::socketpair_seqpacket().map_err(|e| Error::sys("socketpair", e))?;
    let (err_rd, err_wr) = pipe()?;
    let status = if cfg.init { Some(pipe()?) } else { None };

    // Signals are blocked before clone so none is lost between clone and the event loop; they
    // are read from a signalfd. The child restores the old mask right before exec.
    let mut blocked = crate::run::forwarded_signals();
    blocked.add(Signal::SIGCHLD);
    let mut old_mask = SigSet::empty();
    // The child resets every signal and its mask before exec (sys::default_signals).
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut old_mask))
        .map_err(|e| Error::sys("sigprocmask", e))?;
    let mask = MaskGuard(old_mask);
    let sfd = SignalFd::with_flags(&blocked, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;

    let mut parent_fds = stdio.parent_fds();
    parent_fds.extend([sync_wr.as_raw_fd(), err_rd.as_raw_fd(), sfd.as_fd().as_raw_fd()]);
    if let Some((rd, _)) = &status {
        parent_fds.push(rd.as_raw_fd());
    }
    // Namespaces joined by path: opened now (a missing path fails before anything runs), set
    // by the child first thing; the clone does not make new ones of those types.
    let mut joined = Vec::new();
    for (kind, path) in &cfg.join_namespaces {
        let Some(flag) = ns_flag(kind) else {
            return Err(Error::invalid("namespace to join", kind, "net, ipc, uts, pid or mnt"));
        };
        let f = std::fs::File::open(path).map_err(|e| Error::io("cannot open the namespace", path, e))?;
        // The type is checked here, before anything exists: a path of another type (or not a
        // namespace at all) is the config's error, not a failure of the created container.
        if sys::ns_type(&f) != Ok(flag) {
            return Err(Error::container(format!(
                "config.json: invalid linux.namespaces {kind} path '{}': expected a {kind} namespace file such as /proc/PID/ns/{kind}",
                path.display()
            )));
        }
        // Never the runtime's own (or PID 1's) namespace: that is the host's, and the container
        // would share its network, hostname or IPC, and write its sysctls and hostname there
        // (red-team 19: `/proc/self/ns/net` with `net.ipv4.ip_forward` set it on the host).
        // sandbox never shares a host namespace; runc refuses the same (isHostNetNS).
        if let Some(own) = host_namespace(&f, kind) {
            return Err(Error::container(format!(
                "config.json: invalid linux.namespaces {kind} path '{}': it is {own}'s own {kind} namespace (the host's); \
                 sandbox only joins another container's namespaces, never the host's",
                path.display()
            )));
        }
        joined.push((OwnedFd::from(f), flag));
    }
    let joins_uts = joined.iter().any(|(_, f)| *f == libc::CLONE_NEWUTS);
    let hostname = match &cfg.hostname {
        Some(h) => h.clone(),
        None if joins_uts || shared & libc::CLONE_NEWUTS != 0 => String::new(),
        None => cfg.id.clone(),
    };
    let spec = ChildSpec {
        argv,
        hostname,
        // The runtime's own network namespace (the host's) is left as it is.
        loopback: shared & libc::CLONE_NEWNET == 0,
        // A pid namespace is joined by us, for the clone (setns sets the namespace of our
        // children, never our own): the child is born in it.
        join: joined.iter().filter(|(_, f)| *f != libc::CLONE_NEWPID).map(|(fd, f)| (fd.as_raw_fd(), *f)).collect(),
        ops,
        init: cfg.init,
        stdio: stdio.child,
        sync_rd: sync_rd.as_raw_fd(),
        err_wr: err_wr.as_raw_fd(),
        status_wr: status.as_ref().map(|(_, w)| w.as_raw_fd()),
        parent_fds,
        capabilities,
        process: if cfg.privileged { None } else { cfg.process.clone() },
        no_new_privs: cfg.no_new_privs,
        seccomp,
        userns: userns.is_some(),
        env,
        term: std::env::var("TERM").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "xterm".into()),
        preserve_fds: cfg.preserve_fds,
        cgroup_ops,
        cwd: cfg.cwd.clone(),
        user: cfg.user.as_deref().map(crate::user::Spec::parse).transpose()?,
        die_with_parent: !sibling,
        announce_ready: cfg.announce_ready,
    };

    let start = Instant::now();
    let started_at = SystemTime::now();
    let flags = joined.iter().fold(sys::CLONE_FLAGS & !shared, |f, (_, j)| f & !j)
        | if userns.is_some() { libc::CLONE_NEWUSER } else { 0 };
    // Hybrid hosts: the child is born in the run's cgroup2 group (its pressure files), not moved
    // there. The guard removes that group on every error path until the run's group adopts it
    // (declared before the child's guard, so dropped after it: the child is reaped first).
    // Not rootless: a run that goes on without its group (no delegation) could not remove it.
    let group_name = cfg.cgroup_name.clone().unwrap_or_else(|| cgroup::group_name(&cfg.id));
    let parent = cfg.cgroup_parent.as_deref();
    let mut premade = Premade(if rootless { None } else { host.premake_unified(parent, &group_name) });
    let pid_ns = joined.iter().find(|(_, f)| *f == libc::CLONE_NEWPID).map(|(fd, _)| fd.as_raw_fd());
    let _back = match pid_ns {
        Some(fd) => Some(PidNsForChildren::enter(fd)?),
        None => None,
    };
    let forked = match (&premade.0, sibling) {
        (Some((_, dir)), true) => match sys::clone_sibling(flags, Some(dir.as_raw_fd())) {
            Err(nix::errno::Errno::E2BIG | nix::errno::Errno::EINVAL) => {
                premade.remove();
                sys::clone_sibling(flags, None)
            }
            r => r,
        },
        (None, true) => sys::clone_sibling(flags, None),
        (Some((_, dir)), false) => match sys::clone_into_cgroup(flags, dir.as_raw_fd()) {
            Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG | nix::errno::Errno::EINVAL) => {
                premade.remove();
                sys::clone_fork(flags).map(|f| (f, None))
            }
            r => r.map(|f| (f, None)),
        },
        (None, false) => sys::clone_fork(flags).map(|f| (f, None)),
    };
    let (pid, pidfd) = match forked.map_err(|e| Error::sys("clone", e))? {
        (Forked::Child, _) => child::main(&spec),
        (Forked::Parent(pid), pidfd) => (pid, pidfd),
    };
    drop(_back);
    let child = ChildGuard { pid, status: None, rusage: None, pidfd };
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
    // Groups left by a sandbox that was SIGKILLed: gone before we add ours.
    host.gc(parent);
    // On v2, sandbox and the child may have to leave the parent group for a leaf so that it can
    // hand controllers down (the "no internal processes" rule): only these two pids, never others.
    let ours = [std::process::id() as i32, pid.as_raw()];
    let group = match host.create(parent, &group_name, &cfg.limits, &ours, premade.0.is_some()) {
        Ok(g) => {
            premade.0 = None; // the run's group has it now
            GroupGuard(Some(g))
        }
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
    let join = match group.get().map_or(Ok(vec![]), |g| g.join_files(pid.as_raw())) {
        Ok(files) => files,
        Err(e) => {
            drop(sync_wr);
            check_exec(&err_rd)?;
            return Err(e);
        }
    };
    Ok(Created {
        group,
        child,
        stdio,
        sync_wr: Some(sync_wr),
        err_rd,
        status_rd,
        sfd,
        join,
        start,
        started_at,
        _mask: mask,
    })
}

impl Created {
    /// The OCI `create`: the child joins its group and makes its cgroup namespace now (as runc's
    /// created container is in both), answers, and then waits for [`Created::start`].
    pub(crate) fn settle(&mut self) -> Result<()> {
        let Some(sync) = &self.sync_wr else { return Ok(()) };
        let fds: Vec<i32> = self.join.iter().map(|f| f.as_raw_fd()).collect();
        let sent = sys::send_fds(sync.as_raw_fd(), b'g', &fds);
        self.join.clear();
        if sent.is_ok() {
            if let Ok(Some((b'c', _))) = sys::recv_fds(sync.as_raw_fd()) {
                return Ok(());
            }
        }
        check_exec(&self.err_rd)?;
        Err(Error::ChildSetup("the container's process ended before it was created".into()))
    }

    /// Phase 2, start: the go (the child joins its group if it must, finishes its setup and
    /// execs). With a pty, waits for the master the child allocates. Whether the command was
    /// executed is known from the error pipe, in the event loop.
    pub(crate) fn start(&mut self) {
        if let Some(sync) = &self.sync_wr {
            let fds: Vec<i32> = self.join.iter().map(|f| f.as_raw_fd()).collect();
            let _ = sys::send_fds(sync.as_raw_fd(), b'x', &fds);
        }
        self.join.clear();
        self.stdio.receive_master();
    }
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

/// The CLONE_NEW* flag of a namespace kind as /proc/PID/ns names it (`net`, `ipc`, `uts`, `pid`,
/// `mnt`).
fn ns_flag(kind: &str) -> Option<libc::c_int> {
    match kind {
        "net" => Some(libc::CLONE_NEWNET),
        "ipc" => Some(libc::CLONE_NEWIPC),
        "uts" => Some(libc::CLONE_NEWUTS),
        "pid" => Some(libc::CLONE_NEWPID),
        "mnt" => Some(libc::CLONE_NEWNS),
        _ => None,
    }
}

/// Whether the namespace file `f` is this process's or PID 1's namespace of `kind` (the same
/// nsfs inode): who it belongs to, or `None`.
fn host_namespace(f: &std::fs::File, kind: &str) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata().ok()?;
    [("sandbox", "/proc/self/ns"), ("PID 1", "/proc/1/ns")].into_iter().find_map(|(who, dir)| {
        let o = std::fs::metadata(format!("{dir}/{kind}")).ok()?;
        (o.dev() == m.dev() && o.ino() == m.ino()).then_some(who)
    })
}

/// A pid namespace joined by path (linux.namespaces pid path): setns(CLONE_NEWPID) makes it the
/// namespace of our next children only (pid_for_children), so the clone puts the container's
/// process there; dropping this sets it back to our own, for every later fork (hooks, exec).
struct PidNsForChildren(OwnedFd);

impl PidNsForChildren {
    fn enter(target: std::os::fd::RawFd) -> Result<Self> {
        let own =
            std::fs::File::open("/proc/self/ns/pid").map_err(|e| Error::io("cannot open", "/proc/self/ns/pid", e))?;
        // EINVAL: not a descendant of our own pid namespace (the kernel lets no process join
        // an ancestor's or a sibling's).
        sys::setns(target, libc::CLONE_NEWPID)
            .map_err(|e| Error::sys("joining the pid namespace of linux.namespaces (setns)", e))?;
        Ok(Self(OwnedFd::from(own)))
    }
}

impl Drop for PidNsForChildren {
    fn drop(&mut self) {
        let _ = sys::setns(self.0.as_raw_fd(), libc::CLONE_NEWPID);
    }
}
