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
    let done = f.write_all(pid.to_string().as_bytes()).and_then(|_| {
        // An old pid file (engines reuse the path) is exchanged and unlinked rather than renamed
        // over: on ext4 a file renamed over another is written out at once (auto_da_alloc), and
        // with `-o discard` removing it later waits for a synchronous discard
        // (container::record::replace_file). Anything else at `path` is replaced as before.
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file()) {
            crate::container::record::replace_file(&tmp, path)
        } else {
            std::fs::rename(&tmp, path)
        }
    });
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

#[cfg(test)]
mod tests {
    use super::write_pid_file;

    #[test]
    fn a_pid_file_replaces_an_old_one_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("init.pid");
        write_pid_file(&p, 41).unwrap();
        write_pid_file(&p, 42).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "42");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["init.pid"]);
    }

    #[test]
    fn a_pid_file_path_that_is_a_directory_is_refused_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("init.pid");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("kept"), "x").unwrap();
        assert!(write_pid_file(&p, 42).is_err());
        assert!(p.join("kept").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
