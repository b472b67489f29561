//! config.json `hooks` (runtime-spec config.md#posix-platform-hooks): host commands run at points
//! of the lifecycle with the container's State JSON on stdin.
//!
//! - `prestart` (deprecated) and `createRuntime`: by `create`, once the container's namespaces
//!   exist and before its process may exec (status created). A failure fails `create`: the
//!   container is stopped and removed, as if `delete` had run.
//! - `poststart`: by `start`, after the process was started (status running). A failure is a
//!   warning; the lifecycle goes on.
//! - `poststop`: by `delete`, after the container is gone. A failure is a warning.
//! - `createContainer`: by `create`, after createRuntime, once the container's root is made
//!   (pivot_root done) and before its process may exec; `startContainer`: by `start`, before the
//!   command is executed. Both run in the container: its namespaces (the path is resolved in its
//!   mount namespace), its group, and never with more than its process has (its user,
//!   capabilities, no_new_privs and seccomp filter, as an `exec`): the binary is the image's, and
//!   a hostile image must not get the runtime's privileges through it (runc runs createContainer
//!   as root with every capability). A failure fails `create` (nothing is left) or `start`.
//!   Their `timeout` (seconds) SIGKILLs the hook's process and fails create or start; what it
//!   started in the container is ended with the container.
//!
//! A host hook runs as the runtime (root on the host, as with runc: its path is the config's, possibly
//! inside the bundle), with exactly its `env`, in its own process group; `timeout` (seconds) ends
//! that whole group with SIGKILL, so a hung hook leaves nothing behind.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use super::invalid;
use crate::error::Error;

/// Checks the hooks of a config before anything is created.
pub fn check(hooks: &Option<Hooks>) -> Result<(), Error> {
    let Some(h) = hooks else { return Ok(()) };
    for (field, list) in [
        ("hooks.createContainer", h.create_container()),
        ("hooks.startContainer", h.start_container()),
        ("hooks.prestart", h.prestart()),
        ("hooks.createRuntime", h.create_runtime()),
        ("hooks.poststart", h.poststart()),
        ("hooks.poststop", h.poststop()),
    ] {
        for (i, hook) in list.iter().flatten().enumerate() {
            let at = format!("{field}[{i}]");
            if !hook.path().is_absolute() {
                return Err(invalid(&format!("{at}.path"), &hook.path().display().to_string(), "an absolute path"));
            }
            if let Some(t) = hook.timeout().filter(|t| *t <= 0) {
                return Err(invalid(&format!("{at}.timeout"), &t.to_string(), "a number of seconds greater than 0"));
            }
            for e in hook.env().iter().flatten() {
                if !e.contains('=') {
                    return Err(invalid(&format!("{at}.env"), e, "KEY=VALUE"));
                }
            }
        }
    }
    Ok(())
}

/// The hooks of `kind` (a runtime-spec hook name: "prestart", "createRuntime", …) from the `hooks`
/// object a container recorded at create time.
pub fn of_kind(hooks: &serde_json::Value, kind: &str) -> Vec<Hook> {
    hooks.get(kind).and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}

/// Whether a config has hooks that run in the container (createContainer, startContainer).
pub fn any_in_container(hooks: &Option<Hooks>) -> bool {
    hooks.as_ref().is_some_and(|h| {
        [h.create_container(), h.start_container()].iter().any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
    })
}

/// Runs `hooks` of `kind` in the container `target` names, as an `exec` there would run
/// (namespaces, group, its process's user, capabilities and filters; the hook's env exactly, cwd
/// /), `state` on stdin, stdout to stderr. Stops at the first failure and returns it.
pub fn run_in_container(
    kind: &str,
    hooks: &[Hook],
    state: &serde_json::Value,
    target: &crate::exec::Target,
) -> Result<(), Error> {
    for (i, h) in hooks.iter().enumerate() {
        let fail = |why: String| Error::container(format!("{kind} hook {i} ({}) failed: {why}", h.path().display()));
        let mut cfg = target.config.clone();
        cfg.env = Some(h.env().clone().unwrap_or_default());
        cfg.cwd = Some("/".into());
        let mut command = vec![h.path().display().to_string()];
        command.extend(h.args().iter().flatten().skip(1).cloned());
        let t = crate::exec::Target { config: &cfg, ..*target };
        let timeout = h.timeout().map(|t| Duration::from_secs(t as u64));
        let opts = crate::exec::Options { command, interactive: true, timeout, ..Default::default() };
        let code = with_state_on_stdin(state, || crate::exec::exec(&t, &opts)).map_err(|e| fail(e.to_string()))?;
        if code != 0 {
            return Err(fail(format!("it exited with status {code}")));
        }
    }
    Ok(())
}

/// Runs `f` with `state` readable on fd 0 and fd 1 going to fd 2 (what an exec's process
/// inherits), both restored after.
fn with_state_on_stdin<T>(
    state: &serde_json::Value,
    f: impl FnOnce() -> crate::error::Result<T>,
) -> crate::error::Result<T> {
    use nix::unistd::{dup, dup2};
    use std::os::fd::AsRawFd;
    let sys = |what: &str, e| Error::sys(what, e);
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| sys("pipe2", e))?;
    // The State is small (well under a pipe's 64 KiB): written whole before the hook reads.
    std::fs::File::from(wr).write_all(state.to_string().as_bytes()).map_err(|e| Error::container(e.to_string()))?;
    let saved = [dup(0).map_err(|e| sys("dup", e))?, dup(1).map_err(|e| sys("dup", e))?];
    let _ = nix::fcntl::fcntl(saved[0], nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    let _ = nix::fcntl::fcntl(saved[1], nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    let moved = dup2(rd.as_raw_fd(), 0).and_then(|_| dup2(2, 1));
    let r = match moved {
        Ok(_) => f(),
        Err(e) => Err(sys("dup2", e)),
    };
    let _ = dup2(saved[0], 0);
    let _ = dup2(saved[1], 1);
    let _ = nix::unistd::close(saved[0]);
    let _ = nix::unistd::close(saved[1]);
    r
}

/// Runs `hooks` in order with `state` on stdin; stops at the first failure and returns it.
pub fn run_all(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<(), Error> {
    for (i, h) in hooks.iter().enumerate() {
        run(h, state)
            .map_err(|why| Error::container(format!("{kind} hook {i} ({}) failed: {why}", h.path().display())))?;
    }
    Ok(())
}

/// Runs every hook of the list; a failure is a warning on stderr (poststart, poststop).
pub fn run_warn(kind: &str, hooks: &[Hook], state: &serde_json::Value) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(why) = run(h, state) {
            eprintln!("sandbox-runc: warning: {kind} hook {i} ({}) failed: {why}", h.path().display());
        }
    }
}

fn run(h: &Hook, state: &serde_json::Value) -> Result<(), String> {
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    // stdout would be the container's (create's caller's): the hook's goes to stderr, the log.
    let out = std::io::stderr().as_fd_owned();
    cmd.stdin(Stdio::piped()).stdout(out.map_or(Stdio::null(), Stdio::from)).stderr(Stdio::inherit());
    // Its own group: a timeout ends the hook and whatever it started.
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    let pid = child.id() as i32;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin may close it: EPIPE is not its failure.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    // A timeout too long for the clock (i64::MAX seconds is valid JSON) is none: no panic.
    let deadline = h.timeout().and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("it ended with {st}")),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // The group we made for it (pgid = its pid), then the hook itself, reaped.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("it did not end within its timeout of {} s and was killed", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

trait DupFd {
    fn as_fd_owned(&self) -> Option<std::os::fd::OwnedFd>;
}

impl DupFd for std::io::Stderr {
    fn as_fd_owned(&self) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned().ok()
    }
}

/// The State a hook reads: as `state` reports it, with the status the hook's point implies.
pub fn state(id: &str, oci: &serde_json::Value, status: &str, pid: i32) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": super::runtime::OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": oci["bundle"],
        "annotations": oci["annotations"].as_object().cloned().unwrap_or_default(),
    })
}
