//! `sandbox run sh` on a terminal, driven through tmux like a person at a keyboard.

use std::process::Command;

use crate::harness::*;
use crate::require_root;

struct Tmux(String);

impl Tmux {
    fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux").args(["send-keys", "-t", &self.0]).args(keys).status().unwrap();
        assert!(st.success());
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
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

impl Tmux {
    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).stderr(std::process::Stdio::null()).status();
    }
}

#[test]
fn interactive_shell_gets_a_pty_with_job_control_and_ctrl_c() {
    require_root!();
    let _m = shared();
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED interactive test: tmux is not installed (Debian package tmux)");
        return;
    }
    let name = format!("sbx-test-{}", std::process::id());
    let st = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "100",
            "-y",
            "30",
            "env",
            "PS1=in$ ",
            SANDBOX,
            "--report",
            "none",
            "run",
            "sh",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let t = Tmux(name);
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
    // TIOCSTI into the terminal we hold works on *our* pty only; nothing reaches the outer one.
    t.keys(&["exit 5", "Enter"]);
    assert!(eventually(5.0, || !t.alive()));
}

#[test]
fn init_on_a_terminal_puts_the_command_in_the_foreground() {
    require_root!();
    let _m = shared();
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED init tty test: tmux is not installed (Debian package tmux)");
        return;
    }
    // Regression: init's tcsetpgrp raised SIGTTOU and stopped the command before it ran.
    let name = format!("sbx-init-{}", std::process::id());
    // Typed into an interactive shell, as a person would (job control in the outer shell).
    let st = Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "100", "-y", "30", "bash", "--norc", "--noprofile"])
        .status()
        .unwrap();
    assert!(st.success());
    let t = Tmux(name);
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
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED terminal hangup test: tmux is not installed (Debian package tmux)");
        return;
    }
    // Regression: with its terminal gone, sandbox kept the shell (which ignores SIGHUP as PID 1)
    // and spun on the dead terminal.
    let name = format!("sbx-hup-{}", std::process::id());
    let marker = format!("hup-{}", std::process::id());
    let st = Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "100", "-y", "30", "env", &format!("PS1={marker}$ ")])
        .args([SANDBOX, "--report", "none", "run", "sh"])
        .status()
        .unwrap();
    assert!(st.success());
    let t = Tmux(name);
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
