//! `--init`: a minimal PID 1 in front of the command (as `docker run --init` puts tini there).
//!
//! PID 1 of a pid namespace gets only the signals it has a handler for, so a command that installs
//! none ignores SIGTERM and leaves zombies unreaped. This init keeps every forwarded signal
//! blocked and takes them with sigwait (blocked signals are queued even to PID 1), forwards them
//! to the command, reaps every orphan, and exits when the command does, handing sandbox the
//! command's raw wait status through a pipe.
//!
//! The command must not be able to forge that status: init holds no fd but the status pipe (at
//! fd 3; not even stdio), and is not dumpable, so /proc/1/fd, /proc/1/mem and ptrace need
//! CAP_SYS_PTRACE, which the command does not have unless `--cap-add SYS_PTRACE` gives it.

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{self, ForkResult, Pid};

use crate::child::{exec, fail, ChildSpec};
use crate::sys;

pub fn run(spec: &ChildSpec) -> ! {
    let tty = matches!(spec.stdio, crate::child::ChildStdio::Pty { .. });
    // Set again after every credential change of the child (each may reset it); the command's
    // exec resets it for the command alone.
    if let Err(e) = sys::not_dumpable() {
        fail(spec.err_wr, 125, &format!("init: prctl(PR_SET_DUMPABLE): {}", e.desc()));
    }
    // SAFETY: the process is single-threaded (it is the freshly cloned child of a single-threaded
    // sandbox), so fork cannot leave a lock held by another thread.
    match unsafe { unistd::fork() } {
        Err(e) => fail(spec.err_wr, 125, &format!("init: fork: {}", e.desc())),
        Ok(ForkResult::Child) => {
            if tty {
                // Own process group in the foreground of the pty: Ctrl-C goes to the command and
                // its jobs, not to init. tcsetpgrp from a background group raises SIGTTOU, which
                // would stop us: block it for the call (exec restores the original mask).
                let mut ttou = SigSet::empty();
                ttou.add(Signal::SIGTTOU);
                let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None);
                let _ = unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
                let _ = unistd::tcsetpgrp(std::io::stdin(), unistd::getpid());
            }
            exec(spec)
        }
        Ok(ForkResult::Parent { child }) => supervise(child, keep_only_status(spec.status_wr)),
    }
}

/// Closes every fd of init but the status pipe, which moves to fd 3: stdio, the error pipe (the
/// command's exec closes its own copy), anything the caller passed.
fn keep_only_status(status_wr: Option<i32>) -> Option<i32> {
    let kept = status_wr.and_then(|fd| unistd::dup2(fd, 3).ok());
    let _ = sys::close_range(if kept.is_some() { 4 } else { 3 }, u32::MAX, false);
    for fd in 0..3 {
        let _ = unistd::close(fd);
    }
    kept
}

fn supervise(child: Pid, status_wr: Option<i32>) -> ! {
    let mut set = crate::run::forwarded_signals();
    set.add(Signal::SIGCHLD);
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        // Reap everything that has exited: the command and any orphan reparented to us.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => finish(status_wr, code << 8),
                Ok(WaitStatus::Signaled(pid, s, core)) if pid == child => {
                    finish(status_wr, s as i32 | if core { 0x80 } else { 0 })
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

/// Hands the raw wait status to sandbox and exits; the kernel then kills what is left in the
/// namespace.
fn finish(status_wr: Option<i32>, raw: i32) -> ! {
    if let Some(fd) = status_wr {
        let b = raw.to_ne_bytes();
        // SAFETY: writing a live 4-byte buffer to a pipe fd we own.
        unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
    }
    sys::exit_now(0)
}
