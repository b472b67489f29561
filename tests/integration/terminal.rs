//! sandbox on a terminal: a pty only when stdin and stdout are both terminals (or -t), TERM and
//! ttyname(3) right inside, and the outer terminal never in the command's hands.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use nix::sys::termios;

use crate::harness::*;
use crate::require_root;

/// A terminal for sandbox's stdin (and stdout when `out` is None); returns the master, the
/// slave, and what the command wrote to `out`.
struct Term {
    master: OwnedFd,
    slave: OwnedFd,
}

fn term() -> Term {
    let p = nix::pty::openpty(None, None).unwrap();
    Term { master: p.master, slave: p.slave }
}

/// Runs sandbox with stdin (and stdout/stderr unless `out` is given) on the terminal `t`.
/// Returns (exit code, what arrived on the terminal, the contents of `out`).
fn on_terminal(t: &Term, args: &[&str], out: Option<&std::path::Path>) -> (i32, String, Vec<u8>) {
    let dup = || Stdio::from(t.slave.try_clone().unwrap());
    let mut cmd = Command::new(bin());
    cmd.args(["--report", "none"]).args(args).stdin(dup()).stderr(dup());
    match out {
        Some(p) => cmd.stdout(Stdio::from(std::fs::File::create(p).unwrap())),
        None => cmd.stdout(dup()),
    };
    let mut child = cmd.spawn().unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    // What the terminal shows (the master is non-blocking for the read: all of it is buffered).
    nix::fcntl::fcntl(t.master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
    let mut shown = vec![];
    let _ = std::fs::File::from(t.master.try_clone().unwrap()).read_to_end(&mut shown);
    let file = out.map(|p| std::fs::read(p).unwrap()).unwrap_or_default();
    (code, String::from_utf8_lossy(&shown).into_owned(), file)
}

/// `sandbox run cat bin > copy` from a terminal changed the file (`\n` → `\r\n`): the command got
/// a pty although its output was a file.
#[test]
fn output_redirected_from_a_terminal_is_not_mangled() {
    require_root!();
    let _m = shared();
    let t = term();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("out");
    let (code, _, file) = on_terminal(&t, &["run", "sh", "-c", "printf 'a\\nb\\0c\\n'; tty; true"], Some(&f));
    assert_eq!(code, 0);
    assert_eq!(file, b"a\nb\0c\nnot a tty\n", "bytes exactly, and no pty");
}

/// With a pty, TERM was unset inside and `tty` said "not a tty" in a --rootfs (the pty came
/// from the host's devpts, which the command cannot see).
#[test]
fn a_pty_comes_from_the_runs_own_devpts_with_term_set() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let t = term();
    let script = "tty; echo TERM=$TERM";
    let (code, shown, _) =
        on_terminal(&t, &["run", "--rootfs", root.path().to_str().unwrap(), "sh", "-c", script], None);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("/dev/pts/0"), "{shown}");
    let term = shown.split("TERM=").nth(1).unwrap_or("");
    assert!(!term.starts_with(['\r', '\n']), "TERM is set inside: {shown}");
}

/// With --no-tty the command held the outer terminal itself, and termios changes it made
/// (`stty -echo`, raw mode) outlived the run.
#[test]
fn no_tty_keeps_the_outer_terminal_out_of_the_commands_hands() {
    require_root!();
    let _m = shared();
    let t = term();
    let before = termios::tcgetattr(t.slave.as_fd()).unwrap();
    let script = "stty -echo raw 2>/dev/null && echo CHANGED; [ -t 0 ] && echo STDIN-IS-A-TTY; echo done";
    let (code, shown, _) = on_terminal(&t, &["run", "--no-tty", "sh", "-c", script], None);
    assert_eq!(code, 0, "{shown}");
    let after = termios::tcgetattr(t.slave.as_fd()).unwrap();
    assert_eq!(before.local_flags, after.local_flags, "echo/icanon changed: {shown}");
    assert_eq!(before.input_flags, after.input_flags);
    assert!(!shown.contains("CHANGED") && !shown.contains("STDIN-IS-A-TTY"), "{shown}");
    assert!(shown.contains("done"), "{shown}");
}

/// While the outer terminal stopped reading (a dead ssh link), sandbox blocked writing to it:
/// neither --timeout nor a stop could end the run.
#[test]
fn a_terminal_that_stops_reading_cannot_hold_off_the_timeout() {
    require_root!();
    let _m = shared();
    let t = term();
    let dup = || Stdio::from(t.slave.try_clone().unwrap());
    let mut child = Command::new(bin())
        .args(["--report", "human", "--timeout", "2s", "run", "sh", "-c"])
        .arg("head -c 300000 /dev/zero | tr '\\0' x; sleep 100")
        .stdin(dup())
        .stdout(dup())
        .stderr(dup())
        .spawn()
        .unwrap();
    // The master is never read.
    let start = std::time::Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sandbox still running 20 s into a 2 s timeout");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(code, Some(124));
    drop(t);
}
