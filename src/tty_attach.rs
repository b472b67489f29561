//! `run -d -t`: the supervisor keeps the command's pty master and listens on ROOT/ID/attach.sock
//! (inside the container's 0700 directory: only the state root's owner reaches it). `sandbox
//! attach` connects there: what the command writes goes to the log and to the attached client,
//! what the client sends goes to the pty. One client at a time: a new one takes over. A client
//! that stops reading is dropped after 100 ms (the log still has everything): it can never hold
//! the supervisor, and with it the deadline or a stop. The client gets the master itself first
//! (SCM_RIGHTS) to set the window size; it has the container's terminal anyway.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use std::os::unix::net::UnixListener;

use nix::errno::Errno;
use nix::unistd::read;

use super::{flush, wait_writable, Pair, Stdio};

/// The `dst` of the pair that stands for the listening socket: readable means a client waits.
pub(super) const ACCEPT: RawFd = -2;

/// How long the command's output may wait for a client that does not read.
const CLIENT_LIMIT: Duration = Duration::from_millis(100);

#[derive(Default)]
pub(super) struct Attach {
    pub(super) listener: Option<UnixListener>,
    client: Option<OwnedFd>,
}

impl Attach {
    pub(super) fn is_client(&self, fd: RawFd) -> bool {
        self.client.as_ref().is_some_and(|c| c.as_raw_fd() == fd)
    }

    pub(super) fn listener_fd(&self) -> Option<RawFd> {
        self.listener.as_ref().map(|l| l.as_raw_fd())
    }
}

impl Stdio {
    /// Polls the attach socket from now on (once the master is there).
    pub(super) fn listen(&mut self) {
        if let Some(l) = self.attach.listener_fd() {
            self.pairs.push(Pair::relay(l, ACCEPT));
        }
    }

    /// Takes the client that is waiting; it replaces the one attached before.
    pub(super) fn accept(&mut self) {
        let (Some(l), Some(m)) = (self.attach.listener.as_ref(), self.master) else { return };
        // std's accept is accept4 with SOCK_CLOEXEC.
        let Ok((stream, _)) = l.accept() else { return };
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let fd = OwnedFd::from(stream);
        // The master goes to the client first, for its window size (TIOCSWINSZ on it reaches
        // the command as SIGWINCH): one byte with SCM_RIGHTS, before any output.
        if crate::sys::send_fds(fd.as_raw_fd(), 0, &[m]).is_err() {
            return;
        }
        self.drop_client();
        self.pairs.push(Pair::relay(fd.as_raw_fd(), m));
        self.attach.client = Some(fd);
    }

    /// Pair `i`, the client's input, is ready: into the pty. EOF closes only this direction (the
    /// client keeps the output: `attach < file`); an error drops the client.
    pub(super) fn pump_client_input(&mut self, i: usize) -> bool {
        let p = &mut self.pairs[i];
        if !p.pending.is_empty() {
            flush(p);
            return false;
        }
        let mut buf = [0u8; 4096];
        match read(p.src, &mut buf) {
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Ok(0) => p.open = false,
            Err(_) => self.drop_client(),
            Ok(n) => {
                p.pending.extend_from_slice(&buf[..n]);
                flush(p);
            }
        }
        false
    }

    /// The command's output, for the attached client (if any).
    pub(super) fn send_to_client(&mut self, buf: &[u8]) {
        let Some(fd) = self.attach.client.as_ref().map(|c| c.as_raw_fd()) else { return };
        let end = Instant::now() + CLIENT_LIMIT;
        let mut rest = buf;
        while !rest.is_empty() {
            // MSG_NOSIGNAL: a client gone is an error here, not a SIGPIPE for the supervisor.
            match crate::sys::send_nosignal(fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) if wait_writable(fd, end) => {}
                Err(_) => return self.drop_client(),
            }
        }
    }

    /// Closes the client and the pair that read from it (its fd number may be reused at once).
    fn drop_client(&mut self) {
        let Some(c) = self.attach.client.take() else { return };
        let fd = c.as_raw_fd();
        for p in self.pairs.iter_mut().filter(|p| p.src == fd && p.dst != ACCEPT) {
            p.open = false;
            p.pending.clear();
        }
    }
}
