//! `exec`: one more process in a running container, on sandbox's own exec engine
//! ([`crate::exec`]: pidfd-checked target, non-dumpable helper, the container's group, namespaces,
//! capabilities, no_new_privs and seccomp filter).
//!
//! The process is a runtime-spec Process (`--process FILE`, what containerd's shim and conmon
//! pass) or the inline form (`exec ID CMD…` with `--cwd`, `--env`, `--user`). It can never get
//! more than the container has: capabilities beyond the container's are refused (runc grants
//! whatever process.json lists: an engine bug or a compromised client would escalate), and
//! no_new_privs stays on when the container has it. `--detach` returns once the command is
//! executed, the process keeping the runtime's stdio (the engine's fifos) and reaped by the
//! runtime's parent (the shim, a subreaper), as with runc.

use std::path::{Path, PathBuf};

use super::process::Rlimit;
use super::runtime::find;
use crate::container::Status;
use crate::error::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// A runtime-spec Process JSON file ("-": stdin) instead of the inline command.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the command is executed; it keeps this runtime's stdio.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// A pseudo-terminal for the process.
    #[arg(short, long)]
    pub tty: bool,
    /// Inline form: the working directory.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Inline form: NAME=VALUE over the container's environment (repeatable).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Inline form: UID[:GID].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Inline form: keep (or add) no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The process the container gets: its config with the process's fields over it.
fn process_config(base: &crate::Config, a: &ExecArgs) -> Result<(crate::Config, bool, Vec<Rlimit>)> {
    let mut cfg = base.clone();
    let mut tty = a.tty;
    let mut rlimits = Vec::new();
    match (&a.process, a.command.is_empty()) {
        (Some(_), false) => {
            return Err(Error::container("exec: give --process FILE or a command, not both".to_string()));
        }
        (None, true) => {
            return Err(Error::invalid("exec", &a.id, "a container id and a command, or --process FILE"));
        }
        (Some(f), true) => {
            let text = if f.as_os_str() == "-" {
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
                    .map_err(|e| Error::io("cannot read", Path::new("-"), e))?;
                s
            } else {
                std::fs::read(f).map_err(|e| Error::io("cannot read", f, e))?
            };
            let mut p: oci_spec::runtime::Process = serde_json::from_slice(&text).map_err(|e| {
                Error::invalid("--process", &f.display().to_string(), &format!("a runtime-spec Process as JSON ({e})"))
            })?;
            tty |= p.terminal() == Some(true);
            p.set_terminal(Some(false));
            super::process::apply(&p, &mut cfg)?;
            rlimits = super::process::rlimits(&p)?;
        }
        (None, false) => {
            cfg.command = a.command.clone();
            let mut env = cfg.env.clone().unwrap_or_else(|| crate::env::default_for(&cfg));
            for e in &a.env {
                crate::env::check_entry("--env", e)?;
            }
            crate::env::apply(&mut env, &a.env, &crate::env::caller());
            cfg.env = Some(env);
            if let Some(c) = &a.cwd {
                crate::config::check_abs("--cwd", c)?;
                cfg.cwd = Some(c.clone());
            }
            if let Some(u) = &a.user {
                crate::user::Spec::parse(u)?;
                cfg.user = Some(u.clone());
            }
            cfg.no_new_privs |= a.no_new_privs;
        }
    }
    // Never more than the container has.
    let extra: Vec<String> = cfg.capabilities.difference(&base.capabilities).map(|c| c.to_string()).collect();
    if !extra.is_empty() && !base.privileged {
        let mut extra = extra;
        extra.sort();
        return Err(Error::container(format!(
            "exec: capabilities the container does not have: {} (an exec gets at most the container's)",
            extra.join(", ")
        )));
    }
    cfg.no_new_privs |= base.no_new_privs;
    Ok((cfg, tty, rlimits))
}

pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    // As for create: the fds passed on purpose must be open before we open anything, else one of
    // our own (the state lock, the pidfd, a cgroup directory: CVE-2024-21626) could take a number
    // in 3 .. 3+N-1 and reach the container.
    if let Some(fd) = (3..3 + a.preserve_fds as i32).find(|fd| !crate::sys::fd_is_open(*fd)) {
        return Err(Error::invalid(
            "--preserve-fds",
            &a.preserve_fds.to_string(),
            &format!("a count of fds that are open from fd 3 on (fd {fd} is not open)"),
        ));
    }
    let c = find(root, &a.id)?;
    let (cfg, tty, rlimits) = process_config(&c.state.config, a)?;
    // As for create: a terminal goes to the engine's console socket (when detached).
    let console = match (tty && a.detach, &a.console_socket) {
        (true, None) => return Err(Error::container("exec: -t with --detach needs --console-socket".to_string())),
        (false, Some(p)) if !tty => {
            return Err(Error::invalid("--console-socket", &p.display().to_string(), "only with -t (a terminal)"))
        }
        (false, Some(_)) => return Err(Error::container("exec: --console-socket needs --detach".to_string())),
        (true, Some(p)) => Some(super::files::connect_console_socket(p)?),
        (false, None) => None,
    };
    let process = match (c.state.status, c.state.process) {
        (Status::Paused, _) => return Err(Error::container(format!("container {} is paused, resume it first", a.id))),
        (Status::Running, Some(p)) if c.process_alive() => p,
        _ => return Err(Error::container(format!("container {} is not running: container not running", a.id))),
    };
    // Never more than the container has: a hard limit above its PID 1's is refused (runc sets
    // whatever process.json lists, from the host's root; red-team 19 raised NOFILE 64 to 8192).
    let container = super::process::hard_limits(process.pid)
        .ok_or_else(|| Error::container(format!("container {} is not running: container not running", a.id)))?;
    for l in &rlimits {
        let max = container.get(l.resource as usize).copied().unwrap_or(u64::MAX);
        if l.hard > max {
            return Err(Error::container(format!(
                "exec: process.rlimits {:?} hard {} is above the container's {max} (an exec gets at most the container's)",
                l.resource, l.hard
            )));
        }
    }
    super::process::set_rlimits(&rlimits)?;
    let cgroups = c.state.cgroup.as_ref().map(|g| g.paths.clone()).unwrap_or_default();
    let target = crate::exec::Target {
        name: &a.id,
        pid: process.pid,
        start_time: process.start_time,
        cgroups: &cgroups,
        config: &cfg,
    };
    let opts = crate::exec::Options {
        command: cfg.command.clone(),
        tty,
        interactive: !tty,
        detach: a.detach,
        keep_stdio: a.detach,
        console: console.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        preserve_fds: a.preserve_fds,
        ..Default::default()
    };
    if a.detach {
        let pid = crate::exec::spawn(&target, &opts)?;
        if let Some(p) = &a.pid_file {
            super::files::write_pid_file(p, pid)?;
        }
        return Ok(0);
    }
    if a.pid_file.is_some() {
        return Err(Error::container("exec: --pid-file needs --detach (the pid is known once executed)".to_string()));
    }
    crate::exec::exec(&target, &opts)
}
