//! Exit statuses, signals, timeouts, bad input and cleanup on every ending.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::harness::*;
use crate::require_root;

#[test]
fn exit_status_is_the_commands_own_code() {
    require_root!();
    let _m = shared();
    let r = sandbox(&["run", "sh", "-c", "exit 3"]);
    assert_eq!((r.code, r.report()["exit_code"].as_i64()), (3, Some(3)));
}

#[test]
fn death_by_signal_exits_128_plus_n() {
    require_root!();
    let _m = shared();
    // A fault signal is forced even on PID 1.
    let r = sandbox(&["run", "python3", "-c", "import ctypes; ctypes.string_at(0)"]);
    assert_eq!(r.code, 139, "{}", r.stderr);
    assert_eq!(r.report()["signal"], 11);
    // With --init the command is not PID 1, so it can die of an ordinary signal.
    let r = sandbox(&["run", "--init", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(r.code, 143, "{}", r.stderr);
    assert_eq!(r.report()["signal"], 15);
}

#[test]
fn not_found_is_127_and_not_executable_is_126() {
    require_root!();
    let _m = shared();
    let r = sandbox(&["run", "no-such-command-xyz"]);
    assert_eq!(r.code, 127);
    assert!(r.stderr.contains("'no-such-command-xyz'"), "names the command: {}", r.stderr);
    let r = sandbox(&["run", "/etc/passwd"]);
    assert_eq!(r.code, 126);
    assert!(r.stderr.contains("'/etc/passwd'"), "{}", r.stderr);
    let r = sandbox(&["run", "--init", "no-such-command-xyz"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
}

#[test]
fn timeout_kills_everything_and_exits_124() {
    require_root!();
    let _m = shared();
    let t = std::time::Instant::now();
    let r = sandbox(&["--timeout", "1s", "run", "sh", "-c", "sleep 60 & sleep 60"]);
    assert_eq!(r.code, 124, "{}", r.stderr);
    assert!(t.elapsed().as_secs_f64() < 5.0);
    let rep = r.report();
    assert_eq!(rep["timed_out"], true);
    assert_eq!(rep["exit_code"], 124);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
}

#[test]
fn bad_input_exits_125_quoting_the_value_and_creates_nothing() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let bad_env = dir.path().join("env");
    std::fs::write(&bad_env, "A=1\n=x\n").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--mem", "64X", "run", "true"], "'64X'"),
        (&["--mem", "0", "run", "true"], "'0'"),
        (&["--cpus", "0", "run", "true"], "'0'"),
        (&["--cpus", "999", "run", "true"], "'999'"),
        (&["--cpus", "half", "run", "true"], "'half'"),
        (&["--pids", "0", "run", "true"], "'0'"),
        (&["--timeout", "ten", "run", "true"], "'ten'"),
        (&["run", "--bind", "/nonexistent-src:/x", "true"], "'/nonexistent-src:/x'"),
        (&["run", "--rootfs", "/nonexistent-root", "true"], "'/nonexistent-root'"),
        (&["run", "--tmpfs", "relative", "true"], "'relative'"),
        (&["--no-such-flag", "run", "true"], "--no-such-flag"),
        (&["run", "--env-file", "/nonexistent-env", "true"], "'/nonexistent-env"),
        (&["run", "--env-file", bad_env.to_str().unwrap(), "true"], ":2: =x'"),
        (&["run", "-e", "=x", "true"], "'=x'"),
        (&["run", "--preserve-fds", "-1", "true"], "'-1'"),
        (&["run", "--preserve-fds", "900", "true"], "is not open)"),
        (&["--stop-timeout", "abc", "run", "true"], "'abc'"),
        (&["run", "--shm-size", "0", "true"], "'0'"),
        (&["run", "--tmpfs", "/media:size=lots", "true"], "'lots'"),
        (&["run", "--tmpfs", "/media:mode=1", "true"], "'/media:mode=1'"),
        (&["run", "-t", "--no-tty", "true"], "--no-tty"),
        (&["run"], "COMMAND"),
    ];
    for (args, quoted) in cases {
        let r = sandbox(args);
        assert_eq!(r.code, 125, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(quoted), "{args:?} must quote {quoted}: {}", r.stderr);
        assert!(r.report.is_none(), "{args:?}: no report file is left");
    }
    // Limits are accepted after `run` too.
    let r = sandbox(&["run", "--pids", "0", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
}

/// Starts `sandbox … run sh -c SCRIPT` with stdout piped; returns once the script printed "ready".
fn start_ready(pre: &[&str], script: &str) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(bin())
        .args(pre)
        .args(["--report", "none", "run", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (child, out)
}

#[test]
fn signals_sent_to_sandbox_reach_the_command() {
    require_root!();
    let _m = shared();
    for sig in ["INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "WINCH"] {
        let script = format!("trap 'echo got-{sig}; exit 7' {sig}; echo ready; while :; do sleep 0.05; done");
        let (mut child, mut out) = start_ready(&[], &script);
        let n = nix_signal(sig);
        // SAFETY: kill(2) to a child we started.
        unsafe { libc::kill(child.id() as i32, n) };
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("got-{sig}"));
        assert_eq!(child.wait().unwrap().code(), Some(7), "{sig}");
        assert_no_groups_of(child.id());
    }
}

fn nix_signal(name: &str) -> i32 {
    match name {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => libc::SIGWINCH,
    }
}

#[test]
fn init_forwards_signals_to_a_command_without_handlers() {
    require_root!();
    let _m = shared();
    // `sleep` installs no handler: as PID 1 it would ignore SIGTERM, so sandbox kills it at once
    // (see stop.rs); behind --init it dies of the SIGTERM itself.

    let mut c = Command::new(SANDBOX)
        .args(["--report", "none", "run", "--init", "sh", "-c", "echo ready; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap()).read_line(&mut line).unwrap();
    // SAFETY: kill(2) to a child we started.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    assert_eq!(c.wait().unwrap().code(), Some(143));
    assert_no_groups_of(c.id());
}

#[test]
fn sigkilled_sandbox_takes_its_command_along_and_gc_removes_the_group() {
    require_root!();
    // Exclusive: every run collects stale groups first, and no other run may do it for us here.
    let _m = exclusive();
    let marker = format!("4242.{}", std::process::id());
    let (mut child, _out) = start_ready(&[], &format!("sleep {marker} & echo ready; sleep {marker}"));
    let both = eventually(5.0, || procs_named("sleep", &marker).len() == 2);
    if !both {
        let _ = child.kill();
    }
    assert!(both, "two sleeps inside: {:?}", procs_named("sleep", &marker));
    // SAFETY: kill(2) to a child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(eventually(5.0, || procs_named("sleep", &marker).is_empty()), "the command died with sandbox");
    let left = groups_of(child.id());
    assert!(!left.is_empty(), "a SIGKILLed sandbox cannot clean up: its group stays");
    let gc = Command::new(SANDBOX).arg("gc").output().unwrap();
    assert!(gc.status.success());
    let removed = String::from_utf8_lossy(&gc.stdout).into_owned();
    assert!(removed.contains(&format!("-{}", child.id())));
    assert_no_groups_of(child.id());
    // On a hybrid host the run had a group in the cgroup2 at unified/ too (for its pressure
    // files): gc finds it under our own cgroup there and removes it with the rest.
    if let Some(at) = cgroup2_with_psi().filter(|p| p.ends_with("unified")) {
        let there: Vec<_> = left.iter().filter(|g| g.starts_with(&at)).collect();
        assert_eq!(there.len(), 1, "one cgroup2 group among those left: {left:?}");
        assert!(removed.contains(&there[0].display().to_string()), "gc removed it: {removed}");
    }
}

#[test]
fn sigpipe_is_default_in_the_command() {
    require_root!();
    let _m = shared();
    // The Rust runtime ignores SIGPIPE; an ignored signal survives exec unless reset.
    for init in [false, true] {
        let mut args = vec!["run"];
        if init {
            args.push("--init");
        }
        args.extend(["sh", "-c", "yes | head -n 1"]);
        let r = sandbox(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stderr.contains("Broken pipe"), "yes saw EPIPE instead of dying of SIGPIPE: {}", r.stderr);
    }
}

#[test]
fn run_help_explains_each_hardening_default_and_its_relaxing_flag() {
    // No root needed: this is the CLI's text.
    let out = std::process::Command::new(SANDBOX).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "--cap-add",
        "--cap-drop",
        "--allow-new-privs",
        "--seccomp unconfined",
        "--privileged",
        "--userns auto",
        "sysrq-trigger",
        "Delegate=yes",
    ] {
        assert!(help.contains(want), "run --help lacks {want:?}:\n{help}");
    }
}
