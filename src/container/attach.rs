//! ROOT/ID/attach.sock: the socket of a `run -d -t` container's supervisor that `sandbox attach`
//! connects to (see `tty_attach.rs` for the supervisor's side).
//!
//! A socket path is limited to 107 bytes (sun_path), and ROOT/ID alone may take more (64 hex
//! digits for the id): both ends go through the directory's fd, `/proc/self/fd/N/attach.sock`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use crate::error::{Error, Result};

const NAME: &str = "attach.sock";

fn via_fd<T>(dir: &Path, f: impl FnOnce(String) -> std::io::Result<T>) -> Result<T> {
    let d = std::fs::File::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
    f(format!("/proc/self/fd/{}/{NAME}", d.as_raw_fd())).map_err(|e| Error::io("attach socket", dir.join(NAME), e))
}

/// The supervisor's listening socket (non-blocking, close-on-exec), made in the container's
/// directory (mode 0700: only the state root's owner can connect).
pub fn listen(dir: &Path) -> Result<OwnedFd> {
    let l = via_fd(dir, UnixListener::bind)?;
    l.set_nonblocking(true).map_err(|e| Error::io("attach socket", dir.join(NAME), e))?;
    Ok(OwnedFd::from(l))
}

/// `sandbox attach`'s connection to the supervisor.
pub fn connect(dir: &Path) -> Result<UnixStream> {
    via_fd(dir, UnixStream::connect)
}
