//! The library's error type. Every variant carries what a user needs to act: the value, the path,
//! the file written and what was written to it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-supplied value is not valid. Rendered as: invalid --mem '64X': expected …
    #[error("invalid {what} '{value}': expected {expected}")]
    Invalid { what: &'static str, value: String, expected: String },

    /// A file (a cgroup file, a uid_map) could not be written; carries the value written.
    #[error("cannot write '{value}' to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },

    /// Any other I/O on a named path.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A requested limit cannot be enforced on this host.
    #[error("cannot apply {limit}: {reason}")]
    Unsupported { limit: &'static str, reason: String },

    /// A non-root caller asked for cgroup limits but may not manage any cgroup.
    #[error(
        "cannot apply {limits} as a non-root user: {cause}. Cgroup limits need a cgroup v2 subtree delegated \
         to you: run sandbox inside one, e.g. `systemd-run --user --scope -p Delegate=yes sandbox …`, \
         or run without --mem, --cpus and --pids"
    )]
    NoDelegation { limits: String, cause: String },

    /// A system call failed while setting up the sandbox.
    #[error("{0}: {1}")]
    Sys(String, #[source] nix::Error),

    /// The seccomp filter could not be built.
    #[error("seccomp: {0}")]
    Seccomp(String),

    /// Setup inside the sandbox failed before the command ran.
    #[error("sandbox setup failed: {0}")]
    ChildSetup(String),

    /// An image, its store, a layer or a registry: what went wrong, with the name or digest.
    #[error("{0}")]
    Image(String),

    /// SIGINT, SIGTERM or SIGHUP asked the work to stop (crate::interrupt); main prints the line.
    #[error("interrupted")]
    Interrupted,

    /// The command could not be executed (126: not executable, 127: not found).
    #[error("{message}")]
    Exec { code: i32, message: String },
}

impl Error {
    pub fn invalid(what: &'static str, value: &str, expected: &str) -> Error {
        Error::Invalid { what, value: value.to_string(), expected: expected.to_string() }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { action, path: path.into(), source }
    }

    pub fn image(msg: impl Into<String>) -> Error {
        Error::Image(msg.into())
    }

    pub fn sys(what: impl Into<String>, e: nix::Error) -> Error {
        Error::Sys(what.into(), e)
    }

    /// The exit status sandbox uses for this error: 126/127 for exec failures, 125 for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            _ => 125,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
