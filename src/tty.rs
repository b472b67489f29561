//! The command's standard streams and the relay that copies between them and sandbox's own.
//!
//! The command never gets a descriptor of the outer terminal, in any mode, so it can neither push
//! input into it with TIOCSTI (CVE-2017-5226, the bubblewrap escape) nor change its modes or read
//! it after sandbox exits:
//!
//! - a **pseudo-terminal** when stdin and stdout are both terminals (like `docker run -it`), or
//!   always with `-t`. It is allocated by the child from the run's own devpts instance (as runc's
//!   console socket does), so `tty` and ttyname(3) work inside; the child hands the master to
//!   sandbox over a socket. sandbox's terminal goes to raw mode and back.
//! - otherwise each of stdin, stdout and stderr that is a **terminal** becomes a pipe that sandbox
//!   relays; the others (files, pipes, /dev/null) are passed as they are, so `sandbox run cat f >
//!   copy` copies bytes exactly.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::{isatty, pipe2, read, write};

use crate::child::ChildStdio;
use crate::config::Tty;
use crate::container::logs::LogWriter;
use crate::error::{Error, Result};
use crate::sys;

#[path = "tty_attach.rs"]
mod attach;

/// One copy direction: bytes readable on `src` go to `dst`.
struct Pair {
    src: RawFd,
    dst: RawFd,
    open: bool,
    /// `src` is our own fd (pty master or pipe read end), safe to make non-blocking when draining.
    owned_src: bool,
    /// `dst` is our own non-blocking fd: what it does not take now waits here, and `src` is not
    /// read again until it is written (a command that does not read cannot stall the relay).
    pending: Vec<u8>,
    /// The write end of the command's stdin pipe: closed when `src` ends, so the command sees EOF.
    close_dst: Option<OwnedFd>,
    /// A detached run's output: what is read from `src` goes into the log as this stream (1 or
    /// 2), not to `dst`.
    log: Option<u8>,
}

impl Pair {
    /// A plain relay from `src` (not ours) to `dst`: open, nothing pending, no log.
    fn relay(src: RawFd, dst: RawFd) -> Pair {
        Pair { src, dst, open: true, owned_src: false, pending: vec![], close_dst: None, log: None }
    }
}

/// What [`Stdio::wait`] found ready.
pub struct Ready {
    /// A signal is queued on the signalfd.
    pub signals: bool,
    /// The error pipe has data (the child failed) or EOF (the command was executed).
    pub exec_result: bool,
    /// The relay pairs to pump.
    pub pumps: Vec<usize>,
}

/// The parent's side of the command's stdio.
pub struct Stdio {
    pub child: ChildStdio,
    /// fds that only the child needs (pipe ends, its console socket): closed in the parent after clone.
    child_fds: Vec<OwnedFd>,
    /// fds that only the parent needs (pipe ends, console socket, master): closed in the child.
    parent_fds: Vec<OwnedFd>,
    pairs: Vec<Pair>,
    /// With a pty: our end of the console socket until the master arrives, then the master.
    console: Option<OwnedFd>,
    master: Option<RawFd>,
    /// Terminal modes to restore at the end (sandbox's terminal in raw mode, or any terminal the
    /// relay reads from or writes to).
    saved: Vec<(RawFd, Termios)>,
    raw: bool,
    /// A detached run's log (`run -d`): written by the supervisor only.
    log: Option<LogWriter>,
    /// A detached run with a pty: the master stays here (not relayed anywhere but the log).
    detached: bool,
    /// The file status flags of sandbox's 0, 1 and 2: a command that shares them (no terminal
    /// in between) may set O_NONBLOCK on them, which would then stay with the caller's pipe and
    /// make the report's own write fail. Put back before the report.
    status_flags: Vec<(RawFd, OFlag)>,
    /// sandbox's stdin goes to the command (always for `run`; `exec` only with `-i`).
    input: bool,
    /// `run -d -t`: the socket `sandbox attach` connects to, and the attached client.
    attach: attach::Attach,
}

/// sandbox's own fd `fd` as a destination the relay never blocks on: a new open file description
/// of the same terminal or pipe (through /proc/self/fd), non-blocking, so that a terminal that
/// stops reading (a dead ssh link) cannot hold the event loop, and with it the timeout and a stop.
/// Regular files (whose offset a new description would not share) and anything that cannot be
/// reopened stay as they are: writes to them do not block for long.
fn own_destination(fd: RawFd, keep: &mut Vec<OwnedFd>) -> RawFd {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let path = format!("/proc/self/fd/{fd}");
    let Ok(meta) = std::fs::metadata(&path) else { return fd };
    if !(meta.file_type().is_char_device() || meta.file_type().is_fifo()) {
        return fd;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => {
            let owned: OwnedFd = f.into();
            let raw = owned.as_raw_fd();
            keep.push(owned);
            raw
        }
        Err(_) => fd,
    }
}

fn tty(fd: RawFd) -> bool {
    isatty(fd).unwrap_or(false)
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))
}

fn nonblocking(fd: RawFd) {
    let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
}

impl Stdio {
    /// Nothing connected yet: the command inherits sandbox's stdio.
    fn unconnected(detached: bool, input: bool) -> Stdio {
        Stdio {
            child: ChildStdio::Inherit,
            child_fds: vec![],
            parent_fds: vec![],
            pairs: vec![],
            console: None,
            master: None,
            saved: vec![],
            raw: false,
            log: None,
            detached,
            status_flags: vec![],
            input,
            attach: attach::Attach::default(),
        }
    }

    /// Decides how stdio is connected for `mode` and prepares sandbox's side.
    pub fn prepare(mode: Tty) -> Result<Stdio> {
        Stdio::prepare_with(mode, true)
    }

    /// [`Stdio::prepare`], and without `input` sandbox's stdin is left alone: not relayed, not made
    /// raw (`exec` without `-i`; the process's stdin is then /dev/null, or its pty with `-t`).
    pub fn prepare_with(mode: Tty, input: bool) -> Result<Stdio> {
        let mut s = Stdio::unconnected(false, input);
        s.status_flags = (0..3)
            .filter_map(|fd| fcntl(fd, FcntlArg::F_GETFL).ok().map(|f| (fd, OFlag::from_bits_truncate(f))))
            .collect();
        let pty = match mode {
            Tty::Always => true,
            Tty::Auto => tty(0) && tty(1),
            Tty::Never => false,
        };
        for fd in 0..3 {
            if tty(fd) && !s.saved.iter().any(|(f, _)| *f == fd) {
                if let Ok(t) = termios::tcgetattr(unsafe_borrow(fd)) {
                    s.saved.push((fd, t));
                }
            }
        }
        if pty {
            let (ours, theirs) = sys::socketpair_seqpacket().map_err(|e| Error::sys("socketpair", e))?;
            s.child = ChildStdio::Pty { console: theirs.as_raw_fd(), size: sys::window_size(0) };
            s.parent_fds.push(ours.try_clone().map_err(|e| Error::io("dup", "console socket", e))?);
            s.console = Some(ours);
            s.child_fds.push(theirs);
            if let Some((_, saved)) = s.saved.iter().find(|(fd, _)| *fd == 0 && input) {
                let mut raw = saved.clone();
                termios::cfmakeraw(&mut raw);
                termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &raw)
                    .map_err(|e| Error::sys("tcsetattr", e))?;
                s.raw = true;
            }
            return Ok(s);
        }
        let mut ends = [None, None, None];
        for (fd, end) in ends.iter_mut().enumerate() {
            let fd = fd as RawFd;
            if !tty(fd) || (fd == 0 && !input) {
                continue;
            }
            let (r, w) = pipe()?;
            if fd == 0 {
                *end = Some(r.as_raw_fd());
                nonblocking(w.as_raw_fd());
                s.pairs.push(Pair {
                    src: 0,
                    dst: w.as_raw_fd(),
                    open: true,
                    owned_src: false,
                    pending: vec![],
                    close_dst: None,
                    log: None,
                });
                s.child_fds.push(r);
                s.parent_fds.push(w.try_clone().map_err(|e| Error::io("dup", "stdin pipe", e))?);
                s.pairs.last_mut().unwrap().close_dst = Some(w);
            } else {
                *end = Some(w.as_raw_fd());
                let dst = own_destination(fd, &mut s.parent_fds);
                s.pairs.push(Pair {
                    src: r.as_raw_fd(),
                    dst,
                    open: true,
                    owned_src: true,
                    pending: vec![],
                    close_dst: None,
                    log: None,
                });
                s.child_fds.push(w);
                s.parent_fds.push(r);
            }
        }
        if ends.iter().any(Option::is_some) {
            s.child = ChildStdio::Pipes { input: ends[0], out: ends[1], err: ends[2] };
        }
        Ok(s)
    }

    /// The stdio of a detached run (`run -d`): stdin is /dev/null; stdout and stderr are pipes
    /// whose bytes go into `log`, or /dev/null without one (`--log-driver none`). With `pty`
    /// the command gets a pseudo-terminal whose master stays with the supervisor (its output is
    /// logged as stdout).
    pub fn detached(pty: bool, log: Option<LogWriter>, attach: Option<OwnedFd>) -> Result<Stdio> {
        let null = |write: bool| {
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(libc::O_CLOEXEC)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| Error::io("cannot open", "/dev/null", e))
        };
        use std::os::unix::fs::OpenOptionsExt;
        let mut s = Stdio::unconnected(true, false);
        if pty {
            let (ours, theirs) = sys::socketpair_seqpacket().map_err(|e| Error::sys("socketpair", e))?;
            s.child = ChildStdio::Pty { console: theirs.as_raw_fd(), size: None };
            s.parent_fds.push(ours.try_clone().map_err(|e| Error::io("dup", "console socket", e))?);
            s.console = Some(ours);
            s.child_fds.push(theirs);
            s.log = log;
            s.attach.listener = attach.map(std::os::unix::net::UnixListener::from);
            return Ok(s);
        }
        let input = null(false)?;
        let mut ends = [Some(input.as_raw_fd()), None, None];
        s.child_fds.push(input);
        for stream in [1u8, 2] {
            let (r, w) = if log.is_some() { pipe()? } else { (null(false)?, null(true)?) };
            ends[stream as usize] = Some(w.as_raw_fd());
            s.child_fds.push(w);
            if log.is_some() {
                let src = r.as_raw_fd();
                s.pairs.push(Pair {
                    src,
                    dst: -1,
                    open: true,
                    owned_src: true,
                    pending: vec![],
                    close_dst: None,
                    log: Some(stream),
                });
                s.parent_fds.push(r);
            }
        }
        s.log = log;
        s.child = ChildStdio::Pipes { input: ends[0], out: ends[1], err: ends[2] };
        Ok(s)
    }

    /// Whether the command gets a pseudo-terminal.
    pub fn is_pty(&self) -> bool {
        matches!(self.child, ChildStdio::Pty { .. })
    }

    /// The parent's fds, for the child to close.
    pub fn parent_fds(&self) -> Vec<RawFd> {
        let mut v: Vec<RawFd> = self.parent_fds.iter().map(|f| f.as_raw_fd()).collect();
        v.extend(self.pairs.iter().filter_map(|p| p.close_dst.as_ref().map(|f| f.as_raw_fd())));
        v.extend(self.attach.listener_fd());
        v
    }

    /// Closes the child's ends in the parent (after clone): EOF and EIO then mean the child is done.
    pub fn close_child_ends(&mut self) {
        self.child_fds.clear();
    }

    /// With a pty: waits for the master the child allocated in its devpts and starts relaying
    /// through it. Without one the child may have failed before sending it (its error says why).
    pub fn receive_master(&mut self) {
        let Some(sock) = self.console.take() else { return };
        let Ok(Some((_, mut fds))) = sys::recv_fds(sock.as_raw_fd()) else { return };
        let Some(master) = fds.pop() else { return };
        let m = master.as_raw_fd();
        nonblocking(m);
        self.master = Some(m);
        if self.detached {
            let log = self.log.is_some().then_some(1);
            // With an attach socket the master is read even without a log: a client may want it.
            let open = log.is_some() || self.attach.listener.is_some();
            let p = Pair { src: m, dst: -1, open, owned_src: true, pending: vec![], close_dst: None, log: Some(1) };
            self.pairs.push(p);
            self.parent_fds.push(master);
            self.listen();
            return;
        }
        if self.input {
            self.pairs.push(Pair::relay(0, m));
        }
        let out = own_destination(1, &mut self.parent_fds);
        self.pairs.push(Pair {
            src: m,
            dst: out,
            open: true,
            owned_src: true,
            pending: vec![],
            close_dst: None,
            log: None,
        });
        self.parent_fds.push(master);
    }

    /// The OCI runtime's `--console-socket`: the master the child allocated goes to the engine
    /// over `sock` (SCM_RIGHTS, as runc sends it) and nothing is relayed here. `false` when the
    /// child sent none (it failed first: its error pipe says why).
    pub fn forward_master(&mut self, sock: RawFd) -> Result<bool> {
        let Some(ours) = self.console.take() else { return Ok(false) };
        let Ok(Some((_, mut fds))) = sys::recv_fds(ours.as_raw_fd()) else { return Ok(false) };
        let Some(master) = fds.pop() else { return Ok(false) };
        sys::send_fds(sock, b'p', &[master.as_raw_fd()])
            .map_err(|e| Error::sys("sendmsg(SCM_RIGHTS) to the console socket", e))?;
        Ok(true)
    }

    /// What to poll, as (pair index, fd, events): a pair with bytes pending waits for its
    /// destination to take them, the others for input.
    pub fn sources(&self) -> Vec<(usize, BorrowedFd<'_>, PollFlags)> {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.open)
            .map(|(i, p)| {
                let (fd, ev) =
                    if p.pending.is_empty() { (p.src, PollFlags::POLLIN) } else { (p.dst, PollFlags::POLLOUT) };
                // SAFETY: every fd here is 0, 1, 2 or an fd owned by self, alive as long as self.
                (i, unsafe { BorrowedFd::borrow_raw(fd) }, ev)
            })
            .collect()
    }

    /// One wait of an event loop: until a signal is queued on `sfd`, the error pipe `err_rd` (given
    /// until the command is executed) has its news, or a relay source is ready, for at most
    /// `timeout`. Returns what is ready; the pairs to [`Stdio::pump`].
    pub fn wait(&self, sfd: BorrowedFd, err_rd: Option<BorrowedFd>, timeout: PollTimeout) -> Result<Ready> {
        let sources = self.sources();
        let mut fds = vec![PollFd::new(sfd, PollFlags::POLLIN)];
        fds.extend(err_rd.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        let first_source = fds.len();
        fds.extend(sources.iter().map(|(_, fd, ev)| PollFd::new(*fd, *ev)));
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        Ok(Ready {
            signals: ready(&fds[0]),
            exec_result: err_rd.is_some() && ready(&fds[1]),
            pumps: fds
                .iter()
                .skip(first_source)
                .zip(sources.iter())
                .filter(|(p, _)| ready(p))
                .map(|(_, s)| s.0)
                .collect(),
        })
    }

    /// Moves bytes for pair `i` (poll said it is ready, so nothing here blocks for long).
    /// Returns true when sandbox's own terminal hung up: in raw mode a read of 0 or EIO on it
    /// means the terminal is gone, and the session should end as an ssh session does.
    pub fn pump(&mut self, i: usize) -> bool {
        let raw = self.raw;
        if self.pairs[i].dst == attach::ACCEPT {
            self.accept();
            return false;
        }
        let p = &mut self.pairs[i];
        if let Some(stream) = p.log {
            let mut buf = [0u8; 16384];
            match read(p.src, &mut buf) {
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Ok(0) | Err(_) => p.open = false,
                Ok(n) => {
                    if let Some(l) = self.log.as_mut() {
                        l.write(stream, &buf[..n]);
                    }
                    self.send_to_client(&buf[..n]);
                }
            }
            return false;
        }
        if self.attach.is_client(p.src) {
            return self.pump_client_input(i);
        }
        if !p.pending.is_empty() {
            flush(p);
            return false;
        }
        let mut buf = [0u8; 16384];
        match read(p.src, &mut buf) {
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => false,
            Ok(0) | Err(_) => {
                p.open = false;
                p.close_dst = None;
                p.src == 0 && raw
            }
            Ok(n) => {
                p.pending.extend_from_slice(&buf[..n]);
                flush(p);
                false
            }
        }
    }

    /// After the command exited: copies what is still buffered in our pipes and pty, for at
    /// most [`DRAIN_LIMIT`] when a destination stops taking it.
    pub fn drain(&mut self) {
        let end = std::time::Instant::now() + DRAIN_LIMIT;
        let mut last = vec![];
        for p in self.pairs.iter_mut().filter(|p| p.open && p.owned_src) {
            nonblocking(p.src);
            if let Some(stream) = p.log {
                let mut buf = [0u8; 16384];
                loop {
                    match read(p.src, &mut buf) {
                        Ok(n) if n > 0 => {
                            if let Some(l) = self.log.as_mut() {
                                l.write(stream, &buf[..n]);
                            }
                            last.extend_from_slice(&buf[..n]);
                        }
                        Err(Errno::EINTR) => continue,
                        _ => break,
                    }
                }
                p.open = false;
                continue;
            }
            loop {
                if !p.pending.is_empty() {
                    flush(p);
                    if !p.pending.is_empty() && !wait_writable(p.dst, end) {
                        break;
                    }
                    continue;
                }
                let mut buf = [0u8; 16384];
                match read(p.src, &mut buf) {
                    Ok(n) if n > 0 => p.pending.extend_from_slice(&buf[..n]),
                    Err(Errno::EINTR) => continue,
                    _ => break,
                }
            }
            p.open = false;
        }
        self.send_to_client(&last);
    }

    /// SIGWINCH: gives the command's pty the outer terminal's new size. Returns false when there
    /// is no pty (the signal is then forwarded like any other).
    pub fn resize(&self) -> bool {
        if !self.is_pty() {
            return false;
        }
        if let (Some(m), Some(ws)) = (self.master, sys::window_size(0)) {
            sys::set_window_size(m, &ws);
        }
        true
    }

    /// Restores the outer terminal's modes and the status flags of 0, 1, 2 (before the report
    /// is printed).
    pub fn restore_terminal(&mut self) {
        for (fd, f) in self.status_flags.drain(..) {
            let _ = fcntl(fd, FcntlArg::F_SETFL(f));
        }
        for (fd, t) in self.saved.drain(..).rev() {
            let _ = termios::tcsetattr(unsafe_borrow(fd), SetArg::TCSADRAIN, &t);
        }
        self.raw = false;
    }
}

impl Drop for Stdio {
    /// Every path, errors included, gives the terminal back as it was.
    fn drop(&mut self) {
        self.restore_terminal();
    }
}

fn unsafe_borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only called for fds 0, 1 and 2, open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Writes what `p` has pending: all of it to a blocking destination (sandbox's own 1 and 2, whose
/// file descriptions the caller shares and which must stay blocking), as much as it takes to one
/// of ours.
fn flush(p: &mut Pair) {
    if p.dst <= 2 {
        write_all(p.dst, &p.pending);
        p.pending.clear();
        return;
    }
    // SAFETY: dst is an fd owned by Stdio (pty master or pipe write end), open during the copy.
    let fd = unsafe { BorrowedFd::borrow_raw(p.dst) };
    while !p.pending.is_empty() {
        match write(fd.as_fd(), &p.pending) {
            Ok(n) => {
                p.pending.drain(..n);
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return,
            Err(_) => {
                // The command closed its end: nothing more goes there.
                p.pending.clear();
                p.open = false;
                p.close_dst = None;
                return;
            }
        }
    }
}

/// Writes `buf` to sandbox's own `fd` (the report on stderr) without blocking for longer than
/// `limit` on a terminal or pipe that stopped reading: what it has not taken by then is dropped.
/// Errors (a closed or broken stderr) are ignored: they are not the run's.
pub fn write_within(fd: RawFd, buf: &[u8], limit: std::time::Duration) {
    let mut keep = vec![];
    let dst = own_destination(fd, &mut keep);
    if dst == fd {
        write_all(fd, buf);
        return;
    }
    let end = std::time::Instant::now() + limit;
    let mut p = Pair { pending: buf.to_vec(), ..Pair::relay(-1, dst) };
    loop {
        flush(&mut p);
        if p.pending.is_empty() || !wait_writable(dst, end) {
            return;
        }
    }
}

/// How long the end of a run may wait for a destination that stopped reading.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits until `fd` takes more bytes or `end` passes; false at `end`.
fn wait_writable(fd: RawFd, end: std::time::Instant) -> bool {
    let left = end.saturating_duration_since(std::time::Instant::now());
    if left.is_zero() {
        return false;
    }
    // SAFETY: fd is owned by Stdio and open during the drain.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [nix::poll::PollFd::new(b, PollFlags::POLLOUT)];
    let ms = nix::poll::PollTimeout::try_from(left.as_millis().max(1) as i32).unwrap_or(nix::poll::PollTimeout::MAX);
    matches!(nix::poll::poll(&mut fds, ms), Ok(n) if n > 0)
}

fn write_all(fd: RawFd, mut buf: &[u8]) {
    // SAFETY: fd is 1, 2 or an fd owned by Stdio, open during the copy.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !buf.is_empty() {
        match write(fd.as_fd(), buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            // A closed or broken output (EPIPE: SIGPIPE is ignored in sandbox) drops the bytes;
            // the run goes on and its report is still written.
            Err(_) => return,
        }
    }
}
