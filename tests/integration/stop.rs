//! Stopping a run and keeping its report: signals to sandbox, the stop timeout, a signal storm,
//! a broken stderr, and the report file written atomically (never through a symlink, never
//! half).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::require_root;

fn signal(c: &Child, sig: i32) {
    // SAFETY: kill(2) to a child we started.
    unsafe { libc::kill(c.id() as i32, sig) };
}

/// Starts `sandbox PRE… run ARGS…` with its report in `report`; returns once the command
/// printed "ready" (when `ready`).
fn start(pre: &[&str], args: &[&str], report: &std::path::Path, ready: bool) -> Child {
    let mut child = Command::new(bin())
        .arg("--report-file")
        .arg(report)
        .args(pre)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if ready {
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
    }
    child
}

/// Waits at most `secs` for `child`; kills it (and fails) when it is still running then.
fn wait_within(child: &mut Child, secs: f64, what: &str) -> i32 {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs}s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_report(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// `timeout 1 sandbox run sleep 30` took 30 s: as PID 1 without a handler, sleep ignores the
/// forwarded SIGTERM, and sandbox never escalated.
#[test]
fn a_stop_ends_pid_1_without_a_handler_at_once() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r.json");
    let mut c = start(&[], &["sleep", "30"], &rf, false);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    signal(&c, libc::SIGTERM);
    let code = wait_within(&mut c, 3.0, "sandbox run sleep 30 after SIGTERM");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(code, 137);
    let r = read_report(&rf);
    assert_eq!(r["stopped"]["signal"], "SIGTERM");
    assert_eq!(r["stopped"]["killed"], true);
    assert_no_groups_of(c.id());
}

/// A command that handles SIGTERM and goes on is SIGKILLed, with everything in its group, once
/// --stop-timeout has passed.
#[test]
fn a_stop_escalates_to_sigkill_after_the_stop_timeout() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r.json");
    let script = "trap 'echo got' TERM; sleep 300 & echo ready; while :; do sleep 0.05; done";
    let mut c = start(&["--stop-timeout", "1s"], &["sh", "-c", script], &rf, true);
    let t = Instant::now();
    signal(&c, libc::SIGTERM);
    let code = wait_within(&mut c, 5.0, "a command that ignores SIGTERM");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(code, 137);
    let r = read_report(&rf);
    assert_eq!((r["stopped"]["signal"].as_str(), r["stopped"]["killed"].as_bool()), (Some("SIGTERM"), Some(true)));
    assert_eq!(r["exit_code"], 137);
    assert_no_groups_of(c.id());
}

/// A second Ctrl-C does not wait for the stop timeout.
#[test]
fn a_second_sigint_kills_at_once() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r.json");
    let script = "trap 'echo got' INT; echo ready; while :; do sleep 0.05; done";
    let mut c = start(&[], &["sh", "-c", script], &rf, true);
    signal(&c, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    assert!(c.try_wait().unwrap().is_none(), "the first SIGINT is only forwarded");
    let t = Instant::now();
    signal(&c, libc::SIGINT);
    assert_eq!(wait_within(&mut c, 3.0, "after a second SIGINT"), 137);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(read_report(&rf)["stopped"]["signal"], "SIGINT");
}

/// Under a SIGTERM storm 85 of 100 runs ended with 143 and an empty report: the forwarded
/// signals were unblocked after the event loop, and one arriving in the last ~1 ms killed
/// sandbox. Here every run is stormed from start to end, its last milliseconds included.
#[test]
fn a_signal_storm_never_kills_sandbox_before_its_report() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..30 {
        let rf = dir.path().join(format!("r{i}.json"));
        // The command handles TERM and HUP, and ends by itself a little later. The storm starts
        // once its handlers are in place (a PID 1 without one would be killed at once: see
        // a_stop_ends_pid_1_without_a_handler_at_once) and lasts until sandbox has exited.
        let script = "trap ':' TERM HUP; echo ready; i=0; while [ $i -lt 8 ]; do sleep 0.01; i=$((i+1)); done; exit 3";
        let mut c = start(&["--stop-timeout", "20s"], &["sh", "-c", script], &rf, true);
        assert!(blocks_sigterm(c.id()), "run {i}: sandbox does not block SIGTERM");
        let code = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st.code();
            }
            signal(&c, if i % 2 == 0 { libc::SIGTERM } else { libc::SIGHUP });
            std::thread::sleep(Duration::from_micros(200));
        };
        let r = read_report(&rf);
        assert_eq!(code, Some(3), "run {i}: sandbox itself was killed ({code:?})");
        assert_eq!(r["exit_code"], 3, "run {i}");
        assert_no_groups_of(c.id());
    }
}

/// Whether process `pid` has SIGTERM blocked.
fn blocks_sigterm(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let blk =
        status.lines().find_map(|l| l.strip_prefix("SigBlk:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    blk.is_some_and(|b| b & (1 << (libc::SIGTERM - 1)) != 0)
}

/// `sandbox --report-file r.json run sh -c 'exit 3' 2>&1 | true` exited 134 (a panic writing
/// to the broken stderr, then abort) and left r.json empty.
#[test]
fn a_broken_stderr_never_aborts_and_the_report_is_still_written() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r.json");
    let (rd, wr) = nix::unistd::pipe().unwrap();
    drop(rd);
    let mut c = Command::new(bin())
        .arg("--report-file")
        .arg(&rf)
        .args(["run", "sh", "-c", "exit 3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(wr))
        .spawn()
        .unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(3));
    assert_eq!(read_report(&rf)["exit_code"], 3);
}

/// `--report-file` wrote through a symlink planted at its path, truncated an earlier report at
/// the start of every run, and left a 0-byte file when the run did not finish.
#[test]
fn the_report_file_is_replaced_atomically_never_through_a_symlink() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let rf = dir.path().join("r.json");
    std::os::unix::fs::symlink(&victim, &rf).unwrap();
    let out = Command::new(bin()).arg("--report-file").arg(&rf).args(["run", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "written through the symlink");
    assert!(std::fs::symlink_metadata(&rf).unwrap().file_type().is_file());
    assert_eq!(read_report(&rf)["exit_code"], 0);

    // A run that does not finish (SIGKILL of sandbox, a command that cannot start) leaves the
    // earlier report as it was, and no temporary file.
    let before = std::fs::read_to_string(&rf).unwrap();
    let mut c = start(&[], &["sh", "-c", "echo ready; sleep 30"], &rf, true);
    assert_eq!(std::fs::read_to_string(&rf).unwrap(), before, "the report was touched while the run ran");
    c.kill().unwrap();
    c.wait().unwrap();
    let out = Command::new(bin()).arg("--report-file").arg(&rf).args(["run", "no-such-command-x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(std::fs::read_to_string(&rf).unwrap(), before);
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let gc = Command::new(bin()).arg("gc").output().unwrap();
    assert!(gc.status.success());
}

/// A report path under a directory the command can write (through a bind) was resolved again
/// after the run: a symlink swapped in for that directory sent root's write anywhere.
#[test]
fn the_report_file_stays_in_the_directory_checked_before_the_run() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let out = tempfile::tempdir_in("/var/tmp").unwrap();
    let victim = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::create_dir(out.path().join("sub")).unwrap();
    std::fs::create_dir(root.path().join("out")).unwrap();
    std::fs::write(victim.path().join("report.json"), "ORIGINAL").unwrap();
    let rf = out.path().join("sub/report.json");
    let bind = format!("{}:/out", out.path().display());
    let script = format!("mv /out/sub /out/sub.old && ln -s {} /out/sub", victim.path().display());
    let r = root.path().to_str().unwrap();
    let st = Command::new(bin())
        .arg("--report-file")
        .arg(&rf)
        .args(["--report", "none", "run", "--rootfs", r, "--bind", &bind, "sh", "-c", &script])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    assert_eq!(std::fs::read_to_string(victim.path().join("report.json")).unwrap(), "ORIGINAL");
    assert_eq!(read_report(&out.path().join("sub.old/report.json"))["exit_code"], 0, "in the directory checked");
}

/// A command that set O_NONBLOCK on the stderr it shares with sandbox, and filled the pipe, made
/// the report's write fail: the flags stayed on the caller's pipe.
#[test]
fn the_command_cannot_leave_the_shared_stderr_non_blocking() {
    require_root!();
    let _m = shared();
    let script = "import fcntl, os\n\
                  for fd in (1, 2):\n    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)\n\
                  try:\n    while True: os.write(2, b'x' * 4096)\nexcept BlockingIOError: pass\n";
    let mut c = Command::new(bin())
        .args(["run", "python3", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = c.stderr.take().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let mut all = vec![];
    std::io::Read::read_to_end(&mut err, &mut all).unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(0));
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.contains("exited with code 0"),
        "the report is lost: {} bytes, ends {:?}",
        all.len(),
        &text[text.len().saturating_sub(80)..]
    );
}
