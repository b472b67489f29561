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

    /// A container of the state root (`sandbox::container`): not found, ambiguous, a name in use,
    /// not in the status an operation needs. Exit 125.
    #[error("{0}")]
    Container(String),

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

    pub fn container(msg: impl Into<String>) -> Error {
        Error::Container(msg.into())
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

/// An error and its causes as one line, `outer: cause: cause`, each cause once: a cause whose text
/// the message already shows (our variants print their `#[source]`, anyhow's context does not) is
/// not repeated. What `main` prints; `{:#}` would show an OS error twice ("No such file or
/// directory (os error 2): No such file or directory (os error 2)").
pub fn chain<'a>(errors: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut out = String::new();
    for e in errors {
        let s = e.to_string();
        if s.is_empty() || out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_os_error_appears_once_in_a_message() {
        let os = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = Error::io("cannot write", "/x/out.tar", os());
        let text = chain(std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| e.source()));
        assert_eq!(text, format!("cannot write /x/out.tar: {}", os()));
        // Through anyhow context, as the CLI wraps library errors.
        let a = anyhow::Error::new(Error::io("cannot read", "/y", os())).context("cannot load the image");
        let text = chain(a.chain());
        assert_eq!(text.matches("os error 28").count(), 1, "{text}");
        assert!(text.starts_with("cannot load the image: cannot read /y: "), "{text}");
        assert_eq!(format!("{a:#}").matches("os error 28").count(), 2, "what {{:#}} printed");
        let w = Error::Write { path: "/c/memory.max".into(), value: "1".into(), source: os() };
        let text = chain(std::iter::successors(Some(&w as &(dyn std::error::Error + 'static)), |e| e.source()));
        assert_eq!(text.matches("os error 28").count(), 1, "{text}");
        let s = Error::sys("mount /proc", nix::errno::Errno::EPERM);
        let text = chain(std::iter::successors(Some(&s as &(dyn std::error::Error + 'static)), |e| e.source()));
        assert_eq!(text.matches("EPERM").count(), 1, "{text}");
    }
}
