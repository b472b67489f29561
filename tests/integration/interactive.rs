//! `sandbox run sh` on a terminal, driven through tmux like a person at a keyboard.

use std::process::Command;

use crate::harness::*;
use crate::require_root;

struct Tmux(String);

/// tmux with a server of the session's own (`-L`): tests starting and ending sessions at once
/// never share, or race to start or stop, one server.
fn tmux(session: &str) -> Command {
    let mut c = Command::new("tmux");
    c.args(["-L", session]);
    c
}

impl Tmux {
    fn keys(&self, keys: &[&str]) {
        let st = tmux(&self.0).args(["send-keys", "-t", &self.0]).args(keys).status().unwrap();
        assert!(st.success());
    }

    fn screen(&self) -> String {
        let o = tmux(&self.0).args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let mut s = String::new();
        let ok = eventually(10.0, || {
            s = self.screen();
            s.contains(text)
        });
        assert!(ok, "waited for {text:?}; screen:\n{s}");
        s
    }
}

/// A detached tmux session running `cmd` in a 100x30 terminal, or `None` (skipping loudly) when
/// tmux is not installed.
fn session(tag: &str, cmd: &[&str]) -> Option<Tmux> {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED {tag}: tmux is not installed (Debian package tmux)");
        return None;
    }
    let name = format!("sbx-{tag}-{}", std::process::id());
    // A server that is still exiting under the same name can refuse the session: try again.
    let ok = (0..5).any(|i| {
        std::thread::sleep(std::time::Duration::from_millis(100 * i));
        let st = tmux(&name).args(["new-session", "-d", "-s", &name, "-x", "100", "-y", "30"]).args(cmd).status();
        st.is_ok_and(|s| s.success())
    });
    assert!(ok, "tmux new-session failed 5 times");
    Some(Tmux(name))
}

impl Tmux {
    fn alive(&self) -> bool {
        tmux(&self.0)
            .args(["has-session", "-t", &self.0])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tmux(&self.0).args(["kill-session", "-t", &self.0]).stderr(std::process::Stdio::null()).status();
    }
}

#[test]
fn interactive_shell_gets_a_pty_with_job_control_and_ctrl_c() {
    require_root!();
    let _m = shared();
    let Some(t) = session("interactive", &["env", "PS1=in$ ", SANDBOX, "--report", "none", "run", "-e", "PS1", "sh"])
    else {
        return;
    };
    t.wait_for("in$");
    t.keys(&["echo pid=$$ tty=$(tty)", "Enter"]);
    let s = t.wait_for("pid=1 tty=/dev/pts/");
    assert!(!s.contains("not a tty"), "{s}");
    // Ctrl-C reaches the foreground job, not sandbox: the shell survives.
    t.keys(&["sleep 30", "Enter"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    t.keys(&["C-c"]);
    t.keys(&["echo alive-$((40+2))", "Enter"]);
    t.wait_for("alive-42");
    // Job control: a background job, listed and killed by job number.
    t.keys(&["sleep 40 &", "Enter"]);
    t.keys(&["jobs", "Enter"]);
    t.wait_for("Running");
    t.keys(&["kill %1; echo killed-$((2+2))", "Enter"]);
    t.wait_for("killed-4");
    // Line editing: a character typed then erased with backspace.
    t.keys(&["echo line$((3))X", "BSpace", "-edit", "Enter"]);
    t.wait_for("line3-edit");
    t.keys(&["exit 5", "Enter"]);
    assert!(eventually(5.0, || !t.alive()));
}

#[test]
fn init_on_a_terminal_puts_the_command_in_the_foreground() {
    require_root!();
    let _m = shared();
    // Regression: init's tcsetpgrp raised SIGTTOU and stopped the command before it ran.
    // Typed into an interactive shell, as a person would (job control in the outer shell).
    let Some(t) = session("init", &["bash", "--norc", "--noprofile"]) else { return };
    let cmd = format!("{SANDBOX} --report none run --init sh -c 'echo st''arted; read x; echo got-$x; sleep 30'; exit");
    t.keys(&[&cmd, "Enter"]);
    t.wait_for("\nstarted");
    t.keys(&["hello", "Enter"]);
    t.wait_for("got-hello");
    // Ctrl-C goes to the command's foreground group, not to init: the command dies, init follows.
    t.keys(&["C-c"]);
    assert!(eventually(5.0, || !t.alive()), "Ctrl-C ended the run: {}", t.screen());
}

#[test]
fn closing_the_terminal_ends_the_interactive_run() {
    require_root!();
    let _m = shared();
    // Regression: with its terminal gone, sandbox kept the shell (which ignores SIGHUP as PID 1)
    // and spun on the dead terminal.
    let marker = format!("hup-{}", std::process::id());
    let ps1 = format!("PS1={marker}$ ");
    let Some(t) = session("hup", &["env", &ps1, SANDBOX, "--report", "none", "run", "-e", "PS1", "sh"]) else { return };
    t.wait_for(&marker);
    let sandboxes = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("environ")).is_ok_and(|env| String::from_utf8_lossy(&env).contains(&marker))
            })
            .count()
    };
    assert!(sandboxes() >= 2, "sandbox and its shell carry the marker");
    drop(t);
    assert!(eventually(5.0, || sandboxes() == 0), "the run ended with its terminal");
}

#[test]
fn tiocsti_cannot_reach_the_outer_terminal() {
    require_root!();
    let _m = shared();
    // CVE-2017-5226: a command holding sandbox's terminal could push keystrokes into the shell
    // that runs after it. Its stdout here is a pipe (stdin is not a terminal), so TIOCSTI fails.
    let script = "import fcntl, os, termios, sys\n\
        print('tty' if os.isatty(1) else 'notty', flush=True)\n\
        try:\n    fcntl.ioctl(1, termios.TIOCSTI, b'X'); print('INJECTED')\n\
        except OSError as e: print('refused', e.errno)";
    let cmd = format!("{SANDBOX} --report none run python3 -c \"{script}\" </dev/null; sleep 30");
    let Some(t) = session("tiocsti", &["sh", "-c", &cmd]) else { return };
    let s = t.wait_for("refused");
    assert!(s.contains("notty") && !s.contains("INJECTED"), "{s}");
}
