//! `sandbox attach NAME`: connects this terminal to a `run -d -t` container's pty, held by its
//! supervisor (ROOT/ID/attach.sock). Ctrl-P Ctrl-Q detaches (docker's keys) and leaves the
//! container running; when the command ends, `attach` exits with its exit code. The output still
//! goes to the container's log as well. The pty takes this terminal's size, and follows it.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg};
use sandbox::container::{attach, control, Root};

use super::Cli;

/// docker's default detach keys: ctrl-p ctrl-q.
const DETACH: [u8; 2] = [0x10, 0x11];

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The container: a name, an id or a unique id prefix (run with -d -t)
    #[arg(value_name = "NAME")]
    pub container: String,
}

pub fn attach(cli: &Cli, args: &AttachArgs) -> Result<i32> {
    let root = Root::open(&cli.state_root());
    let mut c = root.find(&args.container)?;
    let name = &args.container;
    if !c.state.is_live() {
        return Err(sandbox::Error::container(format!("container {name} is not running")).into());
    }
    if !c.state.tty {
        let why = format!("container {name} has no terminal to attach to (start it with run -d -t; `sandbox logs -f {name}` follows its output)");
        return Err(sandbox::Error::container(why).into());
    }
    let sock = attach::connect(&c.dir)
        .map_err(|e| sandbox::Error::container(format!("cannot attach to container {name}: {e}")))?;
    // First the pty's master, to give it this terminal's size now and on each SIGWINCH.
    let master = sandbox::sys::recv_fds(sock.as_raw_fd()).ok().flatten().and_then(|(_, mut fds)| fds.pop());
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
    }
    let winch = saved.as_ref().and(master.as_ref()).and_then(|m| {
        resize(m);
        let mut set = SigSet::empty();
        set.add(Signal::SIGWINCH);
        set.thread_block().ok()?;
        SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok().map(|sfd| (sfd, m))
    });
    let detached = relay(&sock, winch.as_ref().map(|(sfd, m)| (sfd, *m)));
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, t);
    }
    if detached {
        eprintln!("sandbox: detached from {name} (it still runs)");
        return Ok(0);
    }
    // The supervisor closed the connection: the command ended (or the supervisor is gone).
    control::wait_stopped(&mut c, Some(Instant::now() + Duration::from_secs(10)));
    Ok(match c.state.exit_code {
        Some(code) => code,
        None => {
            eprintln!(
                "sandbox: attach: {name}: exit status unknown: {}",
                c.state.reason.as_deref().unwrap_or("still running")
            );
            125
        }
    })
}

/// Copies stdin to the socket and the socket to stdout until the socket ends (false) or the
/// detach keys are typed (true). stdin at EOF stops only that direction.
fn relay(sock: &std::os::unix::net::UnixStream, winch: Option<(&SignalFd, &OwnedFd)>) -> bool {
    let mut stdin_open = true;
    // The first detach key was the last byte read: the second may come in the next read.
    let mut half = false;
    let (mut sock_r, mut sock_w) = (sock, sock);
    let mut out = std::io::stdout();
    let mut buf = [0u8; 16384];
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if let Some((sfd, _)) = winch {
            fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        let w = usize::from(winch.is_some());
        let (sock_ready, winch_ready) = (ready(&fds[0]), w == 1 && ready(&fds[1]));
        let in_ready = stdin_open && fds.get(1 + w).is_some_and(ready);
        drop(fds);
        if let (true, Some((sfd, m))) = (winch_ready, winch) {
            while let Ok(Some(_)) = sfd.read_signal() {}
            resize(m);
        }
        if sock_ready {
            match sock_r.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
        if in_ready {
            let n = nix::unistd::read(stdin.as_raw_fd(), &mut buf).unwrap_or(0);
            if n == 0 {
                stdin_open = false;
                continue;
            }
            let data = &buf[..n];
            let mut end = n;
            let mut found = false;
            for (i, &b) in data.iter().enumerate() {
                if half && b == DETACH[1] {
                    end = i.saturating_sub(1);
                    found = true;
                    break;
                }
                half = b == DETACH[0];
            }
            // Everything before the keys goes (a ctrl-p at the end of the previous read was
            // already sent: the keys are not held back, unlike docker's).
            let _ = sock_w.write_all(&data[..end]);
            if found {
                return true;
            }
        }
    }
}

/// This terminal's size to the container's pty.
fn resize(master: &OwnedFd) {
    if let Some(ws) = sandbox::sys::window_size(0) {
        sandbox::sys::set_window_size(master.as_raw_fd(), &ws);
    }
}
