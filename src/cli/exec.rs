//! `sandbox exec`: another process in a running container (see `sandbox::exec`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sandbox::container::{Root, Status};

use super::Cli;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open: sandbox's stdin goes to the process (else it reads /dev/null)
    #[arg(long, short = 'i')]
    pub interactive: bool,
    /// Give the process a pseudo-terminal, from the container's own devpts
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Return once the command is executed, printing nothing; it stays in the container with
    /// /dev/null as stdin, stdout and stderr
    #[arg(long, short = 'd', conflicts_with_all = ["interactive", "tty"])]
    pub detach: bool,
    /// Set an environment variable over the container's (NAME=VALUE; NAME alone copies your
    /// value); repeatable
    #[arg(long, short = 'e', value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file of NAME=VALUE (or NAME) lines; repeatable
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (default: the container's, else /)
    #[arg(long, short = 'w', value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Run as USER[:GROUP] (names from the container's /etc/passwd, or numbers; default: the
    /// container's user)
    #[arg(long, short = 'u', value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The container: its name, id or a unique prefix of its id
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn exec(cli: &Cli, args: &ExecArgs) -> Result<i32> {
    // Every value is checked before the container is looked at: a bad flag changes nothing.
    if let Some(u) = &args.user {
        sandbox::user::Spec::parse(u)?;
    }
    let mut env = vec![];
    for f in &args.env_file {
        env.extend(sandbox::env::read_file(f)?);
    }
    for e in &args.env {
        sandbox::env::check_entry("--env", e)?;
    }
    env.extend(args.env.iter().cloned());
    let c = Root::open(&cli.state_root()).find(&args.container)?;
    let s = &c.state;
    let refuse = |why: &str| sandbox::Error::container(format!("container {} is {why}", s.name));
    match (s.status, s.process) {
        (Status::Paused, _) => return Err(refuse("paused, unpause it first").into()),
        (Status::Running, Some(_)) => {}
        _ => return Err(refuse("not running").into()),
    }
    let process = s.process.expect("checked above");
    let cgroups = s.cgroup.as_ref().map(|g| g.paths.clone()).unwrap_or_default();
    let target = sandbox::exec::Target {
        name: &s.name,
        pid: process.pid,
        start_time: process.start_time,
        cgroups: &cgroups,
        config: &s.config,
    };
    let opts = sandbox::exec::Options {
        command: args.command.clone(),
        env,
        cwd: args.workdir.clone(),
        user: args.user.clone(),
        interactive: args.interactive,
        tty: args.tty,
        detach: args.detach,
        keep_stdio: false,
        console: None,
        preserve_fds: 0,
        timeout: None,
    };
    Ok(sandbox::exec::exec(&target, &opts)?)
}
