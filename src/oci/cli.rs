//! The runc command line (what containerd's go-runc and podman's conmon call), on [`super::runtime`].
//!
//! sandbox is this runtime when invoked as `sandbox-runc` (a symlink to the same binary, see
//! README): one binary to install, and the supervisor of each container is a fork of it.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::runtime::{self, CreateOpts};
use crate::error::{Error, Result};

#[derive(Parser, Debug)]
#[command(
    name = "sandbox-runc",
    disable_version_flag = true,
    about = "sandbox as an OCI runtime (the runc command line)"
)]
pub struct Cli {
    /// State root of the containers (runc's --root).
    #[arg(long, global = true, default_value = "/run/sandbox-runc")]
    pub root: PathBuf,
    /// Append errors (and with --debug, debug lines) to this file.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// text or json (one JSON object per line: level, msg, time).
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[arg(long, global = true)]
    pub debug: bool,
    /// cgroupsPath is slice:prefix:name (systemd's form).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// true, false or auto (sandbox decides from its uid either way).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Print the version (first line `runc version …`, as go-runc parses it).
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// `defer`: a subcommand's arguments are built only when it is the one invoked (or for help).
/// Every OCI command is its own process start (an engine runs create, start and delete for
/// each container), and clap built all fifteen subcommands' arguments before parsing one;
/// deferred, a start runs 17 % fewer user-space instructions (callgrind, 2026-12-02).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Cmd {
    /// Create a container: its process waits before exec until `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create, start and wait for a container; exits with its status.
    Run(CreateArgs),
    /// The runtime-spec State of a container, as JSON.
    State { id: String },
    /// Send a signal (a number or a name, default SIGTERM) to the container's process.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped or created container (a running one with --force).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List the containers.
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run one more process in a running container (--process FILE, or inline: ID CMD…).
    Exec(super::exec::ExecArgs),
    /// The host pids of the container's processes.
    Ps {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
    },
    /// New limits for a running container from a LinuxResources JSON (--resources FILE or -).
    Update {
        #[arg(short, long)]
        resources: Option<PathBuf>,
        id: String,
    },
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// The runtime-spec features JSON of this runtime.
    Features,
    /// Write a default config.json into the bundle directory.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// The container's usage as JSON (runc's stats event, with sandbox's figures in data.sandbox).
    Events {
        #[arg(long)]
        stats: bool,
        #[arg(long)]
        interval: Option<String>,
        id: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// `run -d`: return once started.
    #[arg(short, long)]
    pub detach: bool,
    pub id: String,
}

/// The entry point when invoked as `sandbox-runc`: returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if cli.version {
        let v = env!("CARGO_PKG_VERSION");
        let _ = write!(
            std::io::stdout(),
            "runc version {v} (sandbox {v})\nspec: {}\nruntime: sandbox\n",
            runtime::OCI_VERSION
        );
        return 0;
    }
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            log_error(&cli, &e.to_string());
            1
        }
    }
}

/// The error on stderr and, with --log, appended to the log file: a line of text, or with
/// `--log-format json` one JSON object (the shim keeps the last error line).
fn log_error(cli: &Cli, msg: &str) {
    let line = if cli.log_format == "json" {
        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
    } else {
        format!("sandbox-runc: {msg}")
    };
    let _ = writeln!(std::io::stderr(), "{line}");
    if let Some(p) = &cli.log {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn unblock_signals() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

fn dispatch(cli: &Cli) -> Result<i32> {
    super::cgroups_path::set_systemd(cli.systemd_cgroup);
    let Some(cmd) = &cli.command else {
        return Err(Error::container("a command is needed: create, start, run, state, kill, delete, list, exec, ps, update, pause, resume, features, spec, events"));
    };
    let root = &cli.root;
    match cmd {
        Cmd::Create(a) | Cmd::Run(a) => {
            let opts = CreateOpts {
                pid_file: a.pid_file.clone(),
                preserve_fds: a.preserve_fds,
                console_socket: a.console_socket.clone(),
            };
            runtime::create(root, &a.bundle, &a.id, &opts)?;
            if matches!(cmd, Cmd::Create(_)) {
                return Ok(0);
            }
            unblock_signals();
            // As runc: a `run` whose start fails (e.g. its command is missing) leaves no
            // container behind; nobody asked for one to delete.
            if let Err(e) = runtime::start(root, &a.id) {
                let _ = runtime::delete(root, &a.id, true);
                return Err(e);
            }
            if a.detach {
                return Ok(0);
            }
            let code = runtime::wait(root, &a.id)?;
            runtime::delete(root, &a.id, true)?;
            Ok(code)
        }
        other => {
            unblock_signals();
            match other {
                Cmd::Start { id } => runtime::start(root, id).map(|_| 0),
                Cmd::State { id } => {
                    let v = runtime::state(root, id)?;
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    Ok(0)
                }
                Cmd::Kill { all, id, signal } => runtime::kill(root, id, parse_signal(signal)?, *all).map(|_| 0),
                Cmd::Delete { force, id } => runtime::delete(root, id, *force).map(|_| 0),
                Cmd::List { format, quiet } => {
                    let all = runtime::list(root);
                    if *quiet {
                        all.iter().for_each(|c| println!("{}", c["id"].as_str().unwrap_or("")));
                    } else if format == "json" {
                        println!("{}", serde_json::Value::from(all));
                    } else {
                        println!("{:<24} {:<8} {:<8} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
                        for c in &all {
                            println!(
                                "{:<24} {:<8} {:<8} {:<40} {}",
                                c["id"].as_str().unwrap_or(""),
                                c["pid"].to_string(),
                                c["status"].as_str().unwrap_or(""),
                                c["bundle"].as_str().unwrap_or(""),
                                c["created"].as_str().unwrap_or("")
                            );
                        }
                    }
                    Ok(0)
                }
                Cmd::Exec(a) => super::exec::exec(root, a),
                Cmd::Ps { format, id } => super::ps::ps(root, id, format),
                Cmd::Update { resources, id } => super::update::update(root, id, resources.as_ref()),
                Cmd::Pause { id } => super::pause::pause(root, id, true),
                Cmd::Resume { id } => super::pause::pause(root, id, false),
                Cmd::Features => {
                    println!("{}", serde_json::to_string_pretty(&super::features::features()).unwrap_or_default());
                    Ok(0)
                }
                Cmd::Spec { bundle } => super::spec::spec(bundle),
                Cmd::Events { stats, interval, id } => super::events::events(root, id, *stats, interval.as_deref()),
                Cmd::Create(_) | Cmd::Run(_) => unreachable!(),
            }
        }
    }
}

/// A signal as a number or a name (`KILL`, `SIGKILL`, `9`).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::invalid("signal", s, "a signal number (1-64) or name, e.g. KILL or SIGTERM"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Builds every deferred subcommand and checks clap's invariants.
        Cli::command().debug_assert();
    }

    /// With the subcommands deferred, the global flags still reach them wherever they stand, as
    /// engines pass them (before the subcommand) and people type them (after it).
    #[test]
    fn global_flags_reach_deferred_subcommands_before_and_after_the_name() {
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("sandbox-runc").chain(args.iter().copied()));
        for args in [
            &["--root", "/r", "--log-format", "json", "delete", "-f", "c1"][..],
            &["delete", "--root", "/r", "-f", "--log-format", "json", "c1"][..],
        ] {
            let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.root, PathBuf::from("/r"), "{args:?}");
            assert_eq!(cli.log_format, "json", "{args:?}");
            assert!(matches!(cli.command, Some(Cmd::Delete { force: true, ref id }) if id == "c1"), "{args:?}");
        }
        let create = parse(&["create", "--bundle", "/b", "--pid-file", "/p", "--preserve-fds", "2", "c2"]).unwrap();
        assert!(matches!(create.command, Some(Cmd::Create(ref a))
            if a.bundle == std::path::Path::new("/b") && a.pid_file.as_deref() == Some(std::path::Path::new("/p")) && a.preserve_fds == 2 && a.id == "c2"));
        let err = parse(&["delete", "--no-such-flag", "c1"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(parse(&["kill", "c1", "KILL", "extra"]).is_err());
    }
}
