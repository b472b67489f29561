//! The command's standard streams: a pseudo-terminal when sandbox runs on one (like
//! `docker run -it`), pipes when only the output is a terminal, sandbox's own fds otherwise; and
//! the relay that copies between them.
//!
//! The command never gets a descriptor of the outer terminal, so it cannot push input into it with
//! TIOCSTI (CVE-2017-5226, the bubblewrap escape) or read it after sandbox exits.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::{isatty, pipe2, read, write};

use crate::child::ChildStdio;
use crate::config::Tty;
use crate::error::{Error, Result};
use crate::sys;

/// One copy direction: bytes readable on `src` go to `dst`.
struct Pair {
    src: RawFd,
    dst: RawFd,
    open: bool,
    /// Our own fd (pty master or pipe read end), safe to make non-blocking when draining.
    owned: bool,
}

/// The parent's side of the command's stdio.
pub struct Stdio {
    pub child: ChildStdio,
    /// fds that only the child needs (pty slave, pipe write ends): closed in the parent after clone.
    child_fds: Vec<OwnedFd>,
    /// fds that only the parent needs (pty master, pipe read ends): closed in the child.
    parent_fds: Vec<OwnedFd>,
    pairs: Vec<Pair>,
    master: Option<RawFd>,
    raw: Option<RawMode>,
}

/// Puts sandbox's terminal in raw mode and restores it when dropped (every path, errors included).
struct RawMode(Termios);

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.0);
    }
}

fn cloexec(fd: &OwnedFd) -> Result<()> {
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| Error::sys("fcntl", e))?;
    Ok(())
}

fn tty(fd: RawFd) -> bool {
    isatty(fd).unwrap_or(false)
}

impl Stdio {
    pub fn prepare(mode: Tty) -> Result<Stdio> {
        let mut s = Stdio {
            child: ChildStdio::Inherit,
            child_fds: vec![],
            parent_fds: vec![],
            pairs: vec![],
            master: None,
            raw: None,
        };
        if mode == Tty::Auto && tty(0) {
            let ws = sys::window_size(0);
            let pty = nix::pty::openpty(ws.as_ref(), None).map_err(|e| Error::sys("openpty", e))?;
            cloexec(&pty.master)?;
            cloexec(&pty.slave)?;
            let stdin = std::io::stdin();
            let saved = termios::tcgetattr(&stdin).map_err(|e| Error::sys("tcgetattr", e))?;
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(&stdin, SetArg::TCSADRAIN, &raw).map_err(|e| Error::sys("tcsetattr", e))?;
            s.raw = Some(RawMode(saved));
            let m = pty.master.as_raw_fd();
            s.master = Some(m);
            s.child = ChildStdio::Pty { slave: pty.slave.as_raw_fd() };
            s.pairs.push(Pair { src: 0, dst: m, open: true, owned: false });
            s.pairs.push(Pair { src: m, dst: 1, open: true, owned: true });
            s.child_fds.push(pty.slave);
            s.parent_fds.push(pty.master);
        } else if tty(1) || tty(2) {
            let mut ends = [None, None];
            for (i, fd) in [1, 2].into_iter().enumerate() {
                if tty(fd) {
                    let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
                    ends[i] = Some(w.as_raw_fd());
                    s.pairs.push(Pair { src: r.as_raw_fd(), dst: fd, open: true, owned: true });
                    s.child_fds.push(w);
                    s.parent_fds.push(r);
                }
            }
            s.child = ChildStdio::Pipes { out: ends[0], err: ends[1] };
        }
        Ok(s)
    }

    /// The parent's fds, for the child to close.
    pub fn parent_fds(&self) -> Vec<RawFd> {
        self.parent_fds.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// Closes the child's ends in the parent (after clone): EOF and EIO then mean the child is done.
    pub fn close_child_ends(&mut self) {
        self.child_fds.clear();
    }

    /// Sources to poll, as (index, fd).
    pub fn sources(&self) -> Vec<(usize, BorrowedFd<'_>)> {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.open)
            // SAFETY: every src is either fd 0 or an fd owned by self, alive as long as self.
            .map(|(i, p)| (i, unsafe { BorrowedFd::borrow_raw(p.src) }))
            .collect()
    }

    /// Copies what is readable on source `i` (poll said so, so one read does not block).
    /// Returns true when sandbox's own terminal hung up: in raw mode a read of 0 or EIO on it
    /// means the terminal is gone, and the session should end as an ssh session does.
    pub fn pump(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 16384];
        let p = &mut self.pairs[i];
        match read(p.src, &mut buf) {
            Ok(0) | Err(_) => {
                p.open = false;
                p.src == 0 && self.raw.is_some()
            }
            Ok(n) => {
                write_all(p.dst, &buf[..n]);
                false
            }
        }
    }

    /// After the command exited: copies what is still buffered in our pipes and pty.
    pub fn drain(&mut self) {
        for i in 0..self.pairs.len() {
            if !(self.pairs[i].open && self.pairs[i].owned) {
                continue;
            }
            let _ = fcntl(self.pairs[i].src, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
            while self.pairs[i].open {
                let mut buf = [0u8; 16384];
                match read(self.pairs[i].src, &mut buf) {
                    Ok(0) | Err(_) => self.pairs[i].open = false,
                    Ok(n) => write_all(self.pairs[i].dst, &buf[..n]),
                }
            }
        }
    }

    /// SIGWINCH: gives the command's pty the outer terminal's new size. Returns false when there
    /// is no pty (the signal is then forwarded like any other).
    pub fn resize(&self) -> bool {
        match (self.master, sys::window_size(0)) {
            (Some(m), Some(ws)) => {
                sys::set_window_size(m, &ws);
                true
            }
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Restores the outer terminal (before the report is printed).
    pub fn restore_terminal(&mut self) {
        self.raw = None;
    }
}

fn write_all(fd: RawFd, mut buf: &[u8]) {
    // SAFETY: fd is one of 1, 2 or a pty master owned by Stdio, open during the copy.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !buf.is_empty() {
        match write(fd.as_fd(), buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}
