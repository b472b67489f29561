//! The files the runtime writes or opens as root at paths the engine names: `--pid-file` and
//! `--console-socket`. Neither follows a symbolic link: the engine's directories are its own,
//! but a path that a container could reach (a bind-mounted bundle directory) must not let a
//! link planted there turn root's write into one on a host file of the container's choosing
//! (the class of CVE-2019-16884 / CVE-2021-30465: a path resolved by the runtime, raced by the
//! container).

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `pid` to `path` as runc does (no newline), atomically: a fresh temp file beside it,
/// created with O_EXCL|O_NOFOLLOW (a link planted at the temp name makes it fail, never
/// followed), renamed over `path` (rename replaces a link at `path`, never writes through it).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("--pid-file", &path.display().to_string(), "a file path (not a directory)"))?;
    let tmp = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| Error::io("cannot write the pid file", &tmp, e))?;
    let done = f.write_all(pid.to_string().as_bytes()).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("cannot write the pid file", path, e));
    }
    Ok(())
}

/// Connects to the engine's console socket: the path is opened O_PATH|O_NOFOLLOW (a link is
/// refused: ELOOP) and must be a socket; the connection goes through that very inode
/// (/proc/self/fd/N), so a rename between the check and the connect changes nothing.
pub fn connect_console_socket(path: &Path) -> Result<std::os::unix::net::UnixStream> {
    let bad = |why: String| Error::invalid("--console-socket", &path.display().to_string(), &why);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| bad(format!("a unix socket that is not a symbolic link ({e})")))?;
    let fd = OwnedFd::from(f);
    let meta = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| bad(format!("a unix socket ({e})")))?;
    use std::os::unix::fs::FileTypeExt;
    if !meta.file_type().is_socket() {
        return Err(bad("a unix socket".into()));
    }
    std::os::unix::net::UnixStream::connect(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| bad(format!("a unix socket that accepts connections ({e})")))
}

/// process.terminal and `--console-socket` go together (as runc requires): the connection to the
/// socket when the container gets a terminal, an error naming what is missing otherwise.
pub fn console_for(terminal: bool, socket: Option<&Path>) -> Result<Option<OwnedFd>> {
    match (terminal, socket) {
        (true, Some(p)) => Ok(Some(OwnedFd::from(connect_console_socket(p)?))),
        (false, None) => Ok(None),
        (true, None) => Err(super::unsupported(
            "process.terminal true",
            "without --console-socket (the engine's end of the terminal); set it false to pass stdio",
        )),
        (false, Some(p)) => Err(Error::invalid(
            "--console-socket",
            &p.display().to_string(),
            "only with process.terminal true in config.json",
        )),
    }
}
