//! The child side of a run: what happens between clone and exec, in this order:
//!
//! 1. die with sandbox (PR_SET_PDEATHSIG); in a user namespace, wait for the uid/gid maps and
//!    become root in it; set the hostname, bring `lo` up,
//! 2. execute the mount plan, connect stdio (own session, own pty when interactive),
//! 3. wait until the parent has put us in the cgroup, unshare the cgroup namespace (our group
//!    becomes its root),
//! 4. drop capabilities, set no_new_privs, load the seccomp filter,
//! 5. restore the signal mask and exec the command (or, with `--init`, fork it under a tiny init).
//!
//! Failures travel to the parent over a close-on-exec pipe as "<exit code>\n<message>": if exec
//! succeeds the pipe closes empty and the parent knows the command runs.

use std::ffi::CString;
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd;

use crate::plan::Op;
use crate::sys;

/// How the command's stdin/stdout/stderr are connected.
pub enum ChildStdio {
    /// The same fds as sandbox's (none of them is a terminal).
    Inherit,
    /// A pseudo-terminal slave becomes stdin, stdout, stderr and the controlling terminal.
    Pty { slave: RawFd },
    /// sandbox's stdout/stderr is a terminal but stdin is not: the command writes into pipes that
    /// sandbox copies out, so it never holds the outer terminal (TIOCSTI, CVE-2017-5226).
    Pipes { out: Option<RawFd>, err: Option<RawFd> },
}

/// Everything the child needs, prepared by the parent before clone.
pub struct ChildSpec {
    pub argv: Vec<CString>,
    pub hostname: String,
    pub ops: Vec<Op>,
    pub init: bool,
    pub stdio: ChildStdio,
    /// Read end of the "you are in the cgroup, go on" pipe.
    pub sync_rd: RawFd,
    /// Write end of the error pipe (close-on-exec).
    pub err_wr: RawFd,
    /// With `--init`: where init writes the command's wait status.
    pub status_wr: Option<RawFd>,
    /// The parent's ends of the pipes and its signalfd/pty master: closed here.
    pub parent_fds: Vec<RawFd>,
    /// The signal mask to restore before exec.
    pub old_mask: SigSet,
    /// Capabilities the command keeps.
    pub capabilities: caps::CapsHashSet,
    pub no_new_privs: bool,
    /// The seccomp filter to load before exec, if any.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// Cloned into a new user namespace: the parent writes our maps, then one byte on `sync_rd`.
    pub userns: bool,
    /// The command's environment (`None`: sandbox's own).
    pub env: Option<Vec<String>>,
    /// Working directory, made if missing.
    pub cwd: Option<std::path::PathBuf>,
    /// `--user` / the image's User, resolved against the new root's /etc/passwd.
    pub user: Option<crate::user::Spec>,
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
    if let Err(e) = sys::die_with_parent() {
        setup("prctl(PR_SET_PDEATHSIG)", e);
    }
    if spec.userns {
        if let Err(e) = become_root(spec.sync_rd) {
            setup("becoming root in the user namespace", e);
        }
    }
    if let Err(e) = unistd::sethostname(&spec.hostname) {
        setup("sethostname", e);
    }
    if let Err(e) = sys::loopback_up() {
        setup("bringing up lo", e);
    }
    if let Err(m) = crate::mounts::execute(&spec.ops) {
        fail(spec.err_wr, 125, &m);
    }
    if let Err(e) = connect_stdio(&spec.stdio) {
        setup("connecting stdio", e);
    }
    if let Some(env) = &spec.env {
        set_environment(env);
    }
    if let Some(dir) = &spec.cwd {
        // Made if missing inside a root filesystem (as docker does for WorkingDir), never on the
        // host's own files.
        let pivoted = spec.ops.iter().any(|o| matches!(o, Op::PivotRoot(_)));
        let made = if pivoted { std::fs::create_dir_all(dir) } else { Ok(()) };
        if let Err(e) = made.and_then(|()| std::env::set_current_dir(dir)) {
            fail(spec.err_wr, 125, &format!("working directory {}: {e}", dir.display()));
        }
    }
    // Meanwhile the parent moves us into the cgroup: the first migration waits for an RCU grace
    // period (cgroup_threadgroup_rwsem), so our own setup above overlaps that wait. The command's
    // code runs only after this point. EOF means the parent died or gave up: stop here.
    wait_for_parent(spec.sync_rd);
    let _ = unistd::close(spec.sync_rd);
    // Now our group becomes the root of the cgroup namespace.
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
        setup("unshare(CLONE_NEWCGROUP)", e);
    }
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
    if let Some(u) = &spec.user {
        if let Err(m) = switch_user(u, spec.env.is_some()) {
            fail(spec.err_wr, 125, &m);
        }
    }
    if let Err(m) = crate::caps::set_process(&spec.capabilities) {
        fail(spec.err_wr, 125, &format!("capabilities: {m}"));
    }
    if spec.no_new_privs {
        if let Err(e) = sys::no_new_privs() {
            setup("prctl(PR_SET_NO_NEW_PRIVS)", e);
        }
        load(&spec.seccomp);
    }
    if spec.init {
        crate::init::run(spec)
    }
    exec(spec)
}

/// Blocks until the parent sends one byte on the sync pipe (maps written, or: in the cgroup).
/// EOF means the parent died or gave up: the child stops there.
fn wait_for_parent(sync_rd: RawFd) {
    let mut b = [0u8; 1];
    if !matches!(unistd::read(sync_rd, &mut b), Ok(1)) {
        sys::exit_now(125);
    }
}

/// Waits for the parent to write our uid/gid maps, then takes uid and gid 0 of the namespace (as
/// root caller we were unmapped: "nobody"). The supplementary groups go too, where the kernel lets
/// us: a host group kept there (root's gid 0) would still open the host files of that group.
/// A rootless map has setgroups denied and keeps the caller's groups, as `unshare -r` does.
fn become_root(sync_rd: RawFd) -> nix::Result<()> {
    wait_for_parent(sync_rd);
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

/// Becomes `user` as resolved in the new root. Sets HOME from /etc/passwd when the command's
/// environment (an image's) has none.
fn switch_user(user: &crate::user::Spec, image_env: bool) -> Result<(), String> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let r = user.resolve(&read("/etc/passwd"), &read("/etc/group"))?;
    let groups: Vec<unistd::Gid> = r.groups.iter().map(|g| unistd::Gid::from_raw(*g)).collect();
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
    if image_env && std::env::var_os("HOME").is_none() {
        std::env::set_var("HOME", r.home.as_deref().unwrap_or("/"));
    }
    Ok(())
}

/// A new session (no way back to sandbox's terminal through /dev/tty) and the stdio fds.
fn connect_stdio(stdio: &ChildStdio) -> nix::Result<()> {
    unistd::setsid()?;
    match *stdio {
        ChildStdio::Inherit => {}
        ChildStdio::Pty { slave } => {
            sys::set_controlling_tty(slave)?;
            for fd in 0..3 {
                unistd::dup2(slave, fd)?;
            }
            if slave > 2 {
                unistd::close(slave)?;
            }
        }
        ChildStdio::Pipes { out, err } => {
            for (src, dst) in [(out, 1), (err, 2)] {
                if let Some(fd) = src {
                    unistd::dup2(fd, dst)?;
                    unistd::close(fd)?;
                }
            }
        }
    }
    Ok(())
}

/// Restores the signal mask and execs the command; on failure reports 126 or 127.
pub fn exec(spec: &ChildSpec) -> ! {
    sys::default_sigpipe();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&spec.old_mask), None);
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
