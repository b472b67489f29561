//! The child side of a run: what happens between clone and exec, in this order:
//!
//! 1. die with sandbox (PR_SET_PDEATHSIG); in a user namespace, wait for the uid/gid maps and
//!    become root in it; set the hostname, bring `lo` up,
//! 2. execute the mount plan, connect stdio (own session; a pty from the run's own devpts,
//!    whose master goes to sandbox over the console socket), set the environment,
//! 3. wait until the parent has put us in the cgroup, unshare the cgroup namespace (our group
//!    becomes its root) and mount the cgroup filesystem as that namespace shows it, read-only,
//! 4. drop capabilities, set no_new_privs, load the seccomp filter,
//! 5. arm die-with-parent again (every credential change above disarmed it) and check sandbox is
//!    still there,
//! 6. exec the command with default signal actions, an empty mask and no fd above 2 but those
//!    `--preserve-fds` passes (or, with `--init`, fork it under a tiny init).
//!
//! Failures travel to the parent over a close-on-exec pipe as "<exit code>\n<message>": if exec
//! succeeds the pipe closes empty and the parent knows the command runs.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;
use nix::unistd;

use crate::plan::Op;
use crate::sys;

/// How the command's stdin/stdout/stderr are connected.
#[derive(Clone, Copy)]
pub enum ChildStdio {
    /// The same fds as sandbox's (none of them is a terminal).
    Inherit,
    /// The child allocates a pseudo-terminal in its own devpts (once its /dev is mounted), sends
    /// the master to sandbox over `console`, and makes the slave its stdin, stdout, stderr and
    /// controlling terminal, sized as sandbox's terminal.
    Pty { console: RawFd, size: Option<libc::winsize> },
    /// Each of sandbox's stdin, stdout, stderr that is a terminal is replaced by a pipe that
    /// sandbox relays, so the command never holds the outer terminal (TIOCSTI, CVE-2017-5226;
    /// termios changes that would outlive the run).
    Pipes { input: Option<RawFd>, out: Option<RawFd>, err: Option<RawFd> },
}

/// The child's name (comm) once its mounts are made and it waits for the go, with
/// [`ChildSpec::announce_ready`]; exec gives the command its own.
pub const READY_COMM: &str = "sandbox-ready";

/// Everything the child needs, prepared by the parent before clone.
pub struct ChildSpec {
    pub argv: Vec<CString>,
    pub hostname: String,
    /// Bring up `lo`: false when the network namespace is the runtime's own (shared).
    pub loopback: bool,
    pub ops: Vec<Op>,
    pub init: bool,
    pub stdio: ChildStdio,
    /// The child's end of the sync socket ("maps written", "the group is ready: join it, go
    /// on"). sandbox keeps its end open for the whole run, so a hang-up means sandbox is gone.
    pub sync_rd: RawFd,
    /// Write end of the error pipe (close-on-exec).
    pub err_wr: RawFd,
    /// With `--init`: where init writes the command's wait status.
    pub status_wr: Option<RawFd>,
    /// The parent's ends of the pipes and its signalfd/pty master: closed here.
    pub parent_fds: Vec<RawFd>,
    /// Capabilities the command keeps.
    pub capabilities: caps::CapsHashSet,
    /// Namespaces to join (setns) first, instead of the new ones of the clone: fd and type.
    pub join: Vec<(RawFd, libc::c_int)>,
    /// An OCI config's other capability sets, umask and additional groups.
    pub process: Option<crate::caps::ProcessAttrs>,
    pub no_new_privs: bool,
    /// The seccomp filter to load before exec, if any.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// Cloned into a new user namespace: the parent writes our maps, then one byte on `sync_rd`.
    pub userns: bool,
    /// The command's environment, exactly; HOME is added from the user's /etc/passwd entry (in
    /// the command's root) when missing, TERM (`term`) when the command has a pty.
    pub env: Vec<String>,
    /// TERM for a pty: the caller's, else xterm.
    pub term: String,
    /// `--preserve-fds`: fds 3 .. 3+N-1 stay open across exec.
    pub preserve_fds: u32,
    /// The cgroup filesystem view, mounted once in the cgroup namespace.
    pub cgroup_ops: Vec<Op>,
    /// Working directory, made if missing.
    pub cwd: Option<std::path::PathBuf>,
    /// `--user` / the image's User, resolved against the new root's /etc/passwd.
    pub user: Option<crate::user::Spec>,
    /// PR_SET_PDEATHSIG: die with sandbox. Not for an OCI container's init, whose parent is the
    /// `create` process (it exits at once) and then the engine's shim (sys::clone_sibling).
    pub die_with_parent: bool,
    /// [`crate::Config::announce_ready`].
    pub announce_ready: bool,
}

/// A command line as exec's argv: refused (exit 125, quoted) when an argument holds a NUL byte.
pub(crate) fn argv(command: &[String]) -> crate::error::Result<Vec<CString>> {
    command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| crate::error::Error::invalid("command", &command.join(" "), "arguments without NUL bytes"))
}

/// Reports a failure to the parent and exits with `code`.
pub fn fail(err_wr: RawFd, code: i32, msg: &str) -> ! {
    let m = format!("{code}\n{msg}");
    // SAFETY: writing a live buffer to a pipe fd we own.
    unsafe { libc::write(err_wr, m.as_ptr().cast(), m.len()) };
    sys::exit_now(code)
}

/// Runs in the cloned child; never returns.
pub fn main(spec: &ChildSpec) -> ! {
    for fd in &spec.parent_fds {
        let _ = unistd::close(*fd);
    }
    let setup = |what: &str, e: Errno| fail(spec.err_wr, 125, &format!("{what}: {}", e.desc()));
    if spec.die_with_parent {
        if let Err(e) = sys::die_with_parent() {
            setup("prctl(PR_SET_PDEATHSIG)", e);
        }
    }
    if spec.userns {
        if let Err(e) = become_root(spec.sync_rd) {
            setup("becoming root in the user namespace", e);
        }
    }
    for (fd, kind) in &spec.join {
        // SAFETY: the fd is one of the namespace files the parent opened for us (kept open
        // until the clone); setns checks that it is a namespace of that type (EINVAL otherwise).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
        if let Err(e) = nix::sched::setns(fd, nix::sched::CloneFlags::from_bits_truncate(*kind)) {
            setup("joining a namespace of linux.namespaces (setns)", e);
        }
    }
    // Empty: a joined uts namespace whose hostname the config leaves alone.
    if !spec.hostname.is_empty() {
        if let Err(e) = unistd::sethostname(&spec.hostname) {
            setup("sethostname", e);
        }
    }
    if spec.loopback {
        if let Err(e) = sys::loopback_up() {
            setup("bringing up lo", e);
        }
    }
    if let Err(m) = crate::mounts::execute(&spec.ops) {
        fail(spec.err_wr, 125, &m);
    }
    if let Err(e) = connect_stdio(&spec.stdio) {
        setup("connecting stdio", e);
    }
    apply_environment(spec);
    // Made if missing inside a root filesystem (as docker does for WorkingDir), never on the
    // host's own files.
    enter_cwd(spec, spec.ops.iter().any(|o| matches!(o, Op::PivotRoot(_))));
    // Meanwhile the parent moves us into the cgroup: the first migration waits for an RCU grace
    // period (cgroup_threadgroup_rwsem), so our own setup above overlaps that wait. The command's
    // code runs only after this point. EOF means the parent died or gave up: stop here.
    // The parent may hand us its group's `tasks` files to move ourselves: a single task moving
    // itself skips cgroup_threadgroup_rwsem, whose write side waits for an RCU grace period
    // (~8 ms here) when the parent writes our pid to cgroup.procs (kernel/cgroup,
    // cgroup_procs_write_start). Cgroup::join_files decides; the command cannot run before this.
    if spec.announce_ready {
        // What the OCI supervisor waits for before it runs createContainer hooks in our mount
        // namespace: the root is ours now (pivot_root done), nothing of the command has run.
        if let Err(e) = sys::set_comm(READY_COMM) {
            setup("prctl(PR_SET_NAME)", e);
        }
    }
    let (go, files) = wait_for_go(spec.sync_rd);
    for fd in files {
        if let Err(e) = unistd::write(&fd, b"0") {
            setup("joining the run's cgroup (writing 0 to tasks)", e);
        }
    }
    // Now our group becomes the root of the cgroup namespace.
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
        setup("unshare(CLONE_NEWCGROUP)", e);
    }
    // The cgroupfs as that namespace shows it: our own group and nothing above or beside it.
    // In a user namespace the kernel may refuse a v1 hierarchy: /sys/fs/cgroup then stays the
    // empty directory of our fresh sysfs, which is contained as well.
    if let Err(m) = crate::mounts::execute(&spec.cgroup_ops) {
        if !spec.userns {
            fail(spec.err_wr, 125, &m);
        }
        let _ = nix::mount::umount2("/sys/fs/cgroup", nix::mount::MntFlags::MNT_DETACH);
    }
    // The OCI `create`: in our group and cgroup namespace now, as a created container is (the
    // validation suite's linux_ns_nopath reads it before `start`); we say so, then wait for start.
    if go == b'g' {
        if let Err(e) = sys::send_fds(spec.sync_rd, b'c', &[]) {
            setup("telling the runtime the container is created", e);
        }
        drop(wait_for_parent(spec.sync_rd));
    }
    restrict(spec);
    last_checks(spec, spec.die_with_parent);
    if spec.init {
        crate::init::run(spec)
    }
    exec(spec)
}

/// The command's environment (and TERM for a pty when it has none).
pub(crate) fn apply_environment(spec: &ChildSpec) {
    set_environment(&spec.env);
    if matches!(spec.stdio, ChildStdio::Pty { .. }) && std::env::var_os("TERM").is_none() {
        std::env::set_var("TERM", &spec.term);
    }
}

/// Enters the working directory, by path in the command's own root (never through a descriptor
/// that came from outside: CVE-2024-21626), making it first when `create`.
pub(crate) fn enter_cwd(spec: &ChildSpec, create: bool) {
    if let Some(dir) = &spec.cwd {
        let made = if create { std::fs::create_dir_all(dir) } else { Ok(()) };
        if let Err(e) = made.and_then(|()| std::env::set_current_dir(dir)) {
            fail(spec.err_wr, 125, &format!("working directory {}: {e}", dir.display()));
        }
    }
}

/// Puts the command under its restrictions, in the order that keeps our own remaining steps
/// possible: the seccomp filter, the bounding set, the user, the process's capability sets,
/// no_new_privs. What a run's command gets and what `exec` gives a process in the same container.
pub(crate) fn restrict(spec: &ChildSpec) {
    let setup = |what: &str, e: Errno| fail(spec.err_wr, 125, &format!("{what}: {}", e.desc()));
    // Last privileged steps done: from here on the command's limits. Without no_new_privs,
    // loading a filter needs CAP_SYS_ADMIN, so it goes before the capabilities are dropped;
    // with it, as late as possible, so a profile cannot break our own remaining steps.
    let load = |f: &Option<crate::seccomp::Filter>| {
        if let Some(Err(e)) = f.as_ref().map(|f| f.load()) {
            fail(spec.err_wr, 125, &format!("loading the seccomp filter: {e}"));
        }
    };
    if !spec.no_new_privs {
        load(&spec.seccomp);
    }
    // Bounding set, then the user (which needs CAP_SETUID and empties permitted and effective
    // for a non-root uid, as in any setuid(2) without keep-caps), then the process's own sets.
    if let Err(m) = crate::caps::limit_bounding(&spec.capabilities) {
        fail(spec.err_wr, 125, &format!("capabilities: {m}"));
    }
    match &spec.user {
        Some(u) => {
            let extra = spec.process.as_ref().map_or(&[][..], |p| &p.additional_gids[..]);
            // An OCI config gives a non-root user capabilities: permitted must survive setresuid
            // (keep-caps, as runc does); set_process_sets then trims it to what the config names.
            if spec.process.is_some() {
                if let Err(e) = caps::securebits::set_keepcaps(true) {
                    fail(spec.err_wr, 125, &format!("capabilities: PR_SET_KEEPCAPS: {e}"));
                }
            }
            if let Err(m) = switch_user(u, extra) {
                fail(spec.err_wr, 125, &m);
            }
        }
        None => default_home(),
    }
    let set = match &spec.process {
        Some(p) => crate::caps::set_process_sets(p),
        None => crate::caps::set_process(&spec.capabilities),
    };
    if let Err(m) = set {
        fail(spec.err_wr, 125, &format!("capabilities: {m}"));
    }
    if let Some(mask) = spec.process.as_ref().and_then(|p| p.umask) {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask as libc::mode_t));
    }
    if spec.no_new_privs {
        if let Err(e) = sys::no_new_privs() {
            setup("prctl(PR_SET_NO_NEW_PRIVS)", e);
        }
        load(&spec.seccomp);
    }
}

/// setresuid/setresgid (and becoming root in a user namespace) cleared the parent-death signal:
/// arm it again (`die_with_parent`), then make sure sandbox did not die before that (the write
/// end of the sync socket is open in sandbox until the run ends). Closes our end.
pub(crate) fn last_checks(spec: &ChildSpec, die_with_parent: bool) {
    if die_with_parent {
        if let Err(e) = sys::die_with_parent() {
            fail(spec.err_wr, 125, &format!("prctl(PR_SET_PDEATHSIG): {}", e.desc()));
        }
    }
    if sys::writer_gone(spec.sync_rd) {
        sys::exit_now(125);
    }
    let _ = unistd::close(spec.sync_rd);
}

/// Blocks until the parent sends a message on the sync socket (maps written, or: the group is
/// ready, with the v1 `tasks` files to join it by). EOF means the parent died or gave up: the
/// child stops there.
fn wait_for_parent(sync_rd: RawFd) -> Vec<std::os::fd::OwnedFd> {
    match sys::recv_fds(sync_rd) {
        Ok(Some((_, fds))) => fds,
        _ => sys::exit_now(125),
    }
}

/// The first go after the setup: b'x' (start now) or b'g' (the OCI `create`: join the group and
/// the cgroup namespace, answer b'c', then wait for the start), with the v1 `tasks` files.
fn wait_for_go(sync_rd: RawFd) -> (u8, Vec<std::os::fd::OwnedFd>) {
    match sys::recv_fds(sync_rd) {
        Ok(Some((go, fds))) => (go, fds),
        _ => sys::exit_now(125),
    }
}

/// Waits for the parent to write our uid/gid maps, then takes uid and gid 0 of the namespace (as
/// root caller we were unmapped: "nobody"). The supplementary groups go too, where the kernel lets
/// us: a host group kept there (root's gid 0) would still open the host files of that group.
/// A rootless map has setgroups denied and keeps the caller's groups, as `unshare -r` does.
fn become_root(sync_rd: RawFd) -> nix::Result<()> {
    drop(wait_for_parent(sync_rd));
    take_root()
}

/// uid and gid 0 of the user namespace we are in, and no supplementary group where the kernel
/// lets us drop them.
pub(crate) fn take_root() -> nix::Result<()> {
    let root_gid = unistd::Gid::from_raw(0);
    unistd::setresgid(root_gid, root_gid, root_gid)?;
    match unistd::setgroups(&[]) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let root = unistd::Uid::from_raw(0);
    unistd::setresuid(root, root, root)
}

/// Replaces the environment (we are single-threaded: nothing else reads it meanwhile), so that
/// execvp searches the command's own PATH.
fn set_environment(env: &[String]) {
    for (k, _) in std::env::vars_os() {
        std::env::remove_var(k);
    }
    for kv in env {
        if let Some((k, v)) = kv.split_once('=') {
            std::env::set_var(k, v);
        }
    }
}

/// A file of the command's root that we read as root before exec (/etc/passwd, /etc/group): the
/// root is the command's to shape, so only a regular file, at most 4 MiB of it, and a FIFO must not
/// hang us (O_NONBLOCK), nor /dev/zero behind a symlink fill memory. Anything else reads as empty.
fn root_file(path: &str) -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    const MAX: u64 = 4 << 20;
    let Ok(f) = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)
    else {
        return String::new();
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let mut s = String::new();
    let _ = f.take(MAX).read_to_string(&mut s);
    s
}

/// HOME for a command that runs as root and has none: root's entry in the command's
/// /etc/passwd, else `/` (docker's rule).
fn default_home() {
    if std::env::var_os("HOME").is_some() {
        return;
    }
    let passwd = root_file("/etc/passwd");
    let home = crate::user::Spec::parse("0")
        .ok()
        .and_then(|s| s.resolve(&passwd, "").ok())
        .and_then(|r| r.home)
        .unwrap_or_else(|| "/".into());
    std::env::set_var("HOME", home);
}

/// Becomes `user` as resolved in the new root. Sets HOME from /etc/passwd when the command's
/// environment has none.
fn switch_user(user: &crate::user::Spec, additional: &[u32]) -> Result<(), String> {
    let r = user.resolve(&root_file("/etc/passwd"), &root_file("/etc/group"))?;
    let mut groups: Vec<unistd::Gid> = r.groups.iter().map(|g| unistd::Gid::from_raw(*g)).collect();
    // An OCI config's process.user.additionalGids, beside the user's /etc/group entries.
    for g in additional.iter().map(|g| unistd::Gid::from_raw(*g)) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let e = |what: &str, err: Errno| format!("switching to user {}:{}: {what}: {}", r.uid, r.gid, err.desc());
    match unistd::setgroups(&groups) {
        // A rootless map denies setgroups: the caller's groups stay, as with `unshare -r`.
        Ok(()) | Err(Errno::EPERM) => {}
        Err(err) => return Err(e("setgroups", err)),
    }
    let gid = unistd::Gid::from_raw(r.gid);
    unistd::setresgid(gid, gid, gid).map_err(|err| e("setresgid", err))?;
    let uid = unistd::Uid::from_raw(r.uid);
    unistd::setresuid(uid, uid, uid).map_err(|err| e("setresuid", err))?;
    if std::env::var_os("HOME").is_none() {
        std::env::set_var("HOME", r.home.as_deref().unwrap_or("/"));
    }
    Ok(())
}

/// A new session (no way back to sandbox's terminal through /dev/tty) and the stdio fds.
pub(crate) fn connect_stdio(stdio: &ChildStdio) -> nix::Result<()> {
    unistd::setsid()?;
    match *stdio {
        ChildStdio::Inherit => {}
        ChildStdio::Pty { console, size } => {
            let (master, slave) = sys::open_pty()?;
            if let Some(ws) = size {
                sys::set_window_size(master.as_raw_fd(), &ws);
            }
            sys::send_fds(console, b'm', &[master.as_raw_fd()])?;
            drop(master);
            let _ = unistd::close(console);
            sys::set_controlling_tty(slave.as_raw_fd())?;
            for fd in 0..3 {
                unistd::dup2(slave.as_raw_fd(), fd)?;
            }
        }
        ChildStdio::Pipes { input, out, err } => {
            for (src, dst) in [(input, 0), (out, 1), (err, 2)] {
                if let Some(fd) = src {
                    unistd::dup2(fd, dst)?;
                    unistd::close(fd)?;
                }
            }
        }
    }
    Ok(())
}

/// Execs the command with every signal at its default action, an empty mask, and no fd above 2
/// but the ones `--preserve-fds` passes (CVE-2024-21626: an inherited fd of the host's root or
/// network namespace would lead out); on failure reports 126 or 127.
pub fn exec(spec: &ChildSpec) -> ! {
    let keep = 3 + spec.preserve_fds;
    for fd in 3..keep {
        let _ = sys::clear_cloexec(fd as RawFd);
    }
    // Close-on-exec rather than closed: the error pipe must still work if exec fails.
    if let Err(e) = sys::close_range(keep, u32::MAX, true) {
        fail(spec.err_wr, 125, &format!("close_range: {}", e.desc()));
    }
    sys::default_signals();
    let err = match unistd::execvp(&spec.argv[0], &spec.argv) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let name = spec.argv[0].to_string_lossy();
    let (code, msg) = match err {
        Errno::ENOENT | Errno::ENOTDIR => (127, format!("command not found: '{name}' ({})", err.desc())),
        _ => (126, format!("cannot execute '{name}': {}", err.desc())),
    };
    fail(spec.err_wr, code, &msg)
}
