//! sandbox as an OCI runtime (issue 15): `sandbox-runc` (a symlink to the binary) driven as
//! containerd's go-runc drives runc, on a busybox bundle with runc's default config.json.

use std::process::Command;

use crate::harness::*;
use crate::oci_bundle::{entries, Oci};
use crate::require_root;

#[test]
fn oci_create_waits_before_exec_until_start_then_kill_and_delete_leave_nothing() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sh", "-c", "echo started > /dev/shm/mark; exec sleep 30"]) else { return };
    let version = oci.runc(&["--version"]);
    let v = String::from_utf8_lossy(&version.stdout);
    assert!(v.starts_with("runc version ") && v.lines().next().unwrap().contains("sandbox"), "{v}");

    let pid_file = oci.dir.path().join("pid");
    let b = oci.bundle();
    let out = oci.runc(&["create", "--bundle", b.to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), "c1"]);
    assert!(out.status.success());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(oci.status("c1"), "created");
    // Created: the process exists but has not executed the command (still sandbox's code).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(!exe.to_string_lossy().contains("busybox"), "created but already executed: {exe:?}");
    let state: serde_json::Value = serde_json::from_slice(&oci.runc(&["state", "c1"]).stdout).unwrap();
    assert_eq!(state["pid"], pid);
    assert_eq!(state["bundle"], b.to_str().unwrap());

    // An id in use: refused, the first container untouched.
    assert!(!oci.runc(&["create", "--bundle", b.to_str().unwrap(), "c1"]).status.success());
    assert_eq!(oci.status("c1"), "created");

    assert!(oci.runc(&["start", "c1"]).status.success());
    assert_eq!(oci.status("c1"), "running");
    assert!(eventually(5.0, || std::fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|e| e.to_string_lossy().contains("busybox"))));
    let again = oci.runc(&["start", "c1"]);
    assert!(!again.status.success(), "start of a running container must fail");

    let listed = String::from_utf8_lossy(&oci.runc(&["list", "--format", "json"]).stdout).into_owned();
    assert!(listed.contains("\"c1\""), "{listed}");
    let busy = oci.runc(&["delete", "c1"]);
    assert!(!busy.status.success(), "delete of a running container without --force");

    assert!(oci.runc(&["kill", "c1", "KILL"]).status.success());
    assert!(eventually(5.0, || oci.status("c1") == "stopped"));
    let k = oci.runc(&["kill", "c1", "TERM"]);
    assert!(String::from_utf8_lossy(&k.stderr).contains("container not running"));
    assert!(oci.runc(&["delete", "c1"]).status.success());
    let gone = oci.runc(&["state", "c1"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("does not exist"));
    // Gone, or a zombie left for whoever adopted it when `create` exited to reap (an engine's
    // shim; here the host's pid 1, which may take a moment), as runc's init is.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')), "{stat}");
    let left: Vec<_> = crate::harness::state_left(&oci.root());
    assert!(left.is_empty(), "state left: {left:?}");
    assert!(entries(&oci.root().join("names")).is_empty());
}

#[test]
fn oci_delete_force_of_a_created_container_leaves_nothing() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["true"]) else { return };
    let b = oci.bundle();
    assert!(oci.runc(&["create", "--bundle", b.to_str().unwrap(), "c2"]).status.success());
    // runtime-spec: delete of a container that is not stopped is an error, created included.
    assert!(!oci.runc(&["delete", "c2"]).status.success());
    assert_eq!(oci.status("c2"), "created");
    let out = oci.runc(&["delete", "--force", "c2"]);
    assert!(out.status.success());
    assert!(!oci.runc(&["state", "c2"]).status.success());
    let left: Vec<_> = crate::harness::state_left(&oci.root());
    assert!(left.is_empty(), "state left: {left:?}");
}

#[test]
fn oci_run_passes_the_callers_stdio_and_exit_status() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sh", "-c", "echo out; echo err >&2; exit 3"]) else { return };
    let b = oci.bundle();
    let out = oci.runc(&["run", "--bundle", b.to_str().unwrap(), "c3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    assert!(!oci.runc(&["state", "c3"]).status.success(), "run deletes the container");
}

#[test]
fn oci_bad_bundle_is_refused_with_a_json_log_line_and_nothing_created() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["true"]) else { return };
    let log = oci.dir.path().join("log.json");
    let empty = oci.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = oci.runc(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        empty.to_str().unwrap(),
        "c4",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("config.json"), "{line}");
    // An unknown ociVersion major and a slash in the id: refused too, nothing registered.
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oci.bundle().join("config.json")).unwrap()).unwrap();
    spec["ociVersion"] = "2.0.0".into();
    std::fs::write(empty.join("config.json"), spec.to_string()).unwrap();
    let out = oci.runc(&["create", "--bundle", empty.to_str().unwrap(), "c4"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ociVersion '2.0.0'"));
    let out = oci.runc(&["create", "--bundle", oci.bundle().to_str().unwrap(), "a/b"]);
    assert!(!out.status.success());
    let left: Vec<_> = crate::harness::state_left(&oci.root());
    assert!(left.is_empty(), "state left: {left:?}");
}

/// The shim's part, as containerd's runc shim and podman's conmon play it: a child subreaper that
/// runs `create` and `start`, then learns the init ended by reaping the pid of `--pid-file`.
const SUBREAPER_SHIM: &str = r#"
import ctypes, os, signal, subprocess, sys
runc, root, bundle, pidfile, out = sys.argv[1:6]
assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
def rc(*a):
    subprocess.run([runc, "--root", root, *a], check=True, stdin=subprocess.DEVNULL)
rc("create", "--bundle", bundle, "--pid-file", pidfile, "c1")
pid = int(open(pidfile).read())
rc("start", "c1")
signal.alarm(20)
try:
    _, st = os.waitpid(pid, 0)
    res = "reaped %d" % os.waitstatus_to_exitcode(st)
except ChildProcessError:
    res = "not my child: parent %s" % open("/proc/%d/stat" % pid).read().split()[3]
open(out, "w").write(res)
"#;

/// containerd's shim and conmon see a container end only by reaping its init: before, the init
/// was the child of sandbox's supervisor, so `ctr run` of a command that exits hung and a killed
/// task stayed running (tests/integration/oci_engines.rs drives containerd itself).
#[test]
fn oci_init_is_reaped_by_the_engines_subreaper_as_runcs_is() {
    require_root!();
    if Command::new("python3").arg("-V").output().map_or(true, |o| !o.status.success()) {
        eprintln!("SKIPPED: python3 is not installed (it plays the shim, a child subreaper)");
        return;
    }
    let Some(oci) = Oci::new(&["sh", "-c", "exit 3"]) else { return };
    let (pid_file, out) = (oci.dir.path().join("pid"), oci.dir.path().join("shim.out"));
    let f = |n: &str| std::fs::File::create(oci.dir.path().join(n)).unwrap();
    let status = Command::new("python3")
        .args(["-c", SUBREAPER_SHIM])
        .args([oci.dir.path().join("sandbox-runc"), oci.root(), oci.bundle(), pid_file, out.clone()])
        .stdin(std::process::Stdio::null())
        .stdout(f("shim.stdout"))
        .stderr(f("shim.stderr"))
        .status()
        .unwrap();
    let said = std::fs::read_to_string(&out).unwrap_or_default();
    let err = std::fs::read_to_string(oci.dir.path().join("shim.stderr")).unwrap_or_default();
    assert!(status.success(), "the shim failed: {said}\n{err}");
    assert_eq!(said, "reaped 3", "{err}");
    // The supervisor saw it end too: stopped, and delete leaves nothing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while oci.status("c1") != "stopped" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(oci.status("c1"), "stopped");
    // Its status, which it can no longer wait4 for, from the kernel (PIDFD_INFO_EXIT, Linux 6.15).
    let release = nix::sys::utsname::uname().unwrap().release().to_string_lossy().into_owned();
    let v: Vec<u32> = release.split(['.', '-']).take(2).map(|x| x.parse().unwrap_or(0)).collect();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.root().join("c1/state.json")).unwrap()).unwrap();
    if v >= vec![6, 15] {
        assert_eq!(record["exit_code"], 3, "{record}");
    } else {
        eprintln!("NOTE: kernel {release} has no PIDFD_INFO_EXIT: the record's exit status is unknown");
    }
    assert!(oci.runc(&["delete", "c1"]).status.success());
    assert!(!oci.root().join("c1").exists());
}
