//! sandbox-runc gaps closed in stop 20 (issue 15): `exec --preserve-fds`, and a created
//! container ended by a plain TERM (from `kill` or to its supervisor) as runc's is.

use crate::harness::*;
use crate::oci_bundle::Oci;
use crate::require_root;

/// `exec --preserve-fds 1`: the engine's fd 3 (here a file the test opened) is the process's fd 3,
/// as with runc (podman passes its sd-notify socket and `--preserve-fds` listeners this way).
#[test]
fn oci_exec_preserve_fds_passes_fd_3_into_the_exec_process() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    assert!(oci.create("pf").status.success());
    assert!(oci.runc(&["start", "pf"]).status.success());
    let file = oci.path("passed");
    std::fs::write(&file, "through-fd-3\n").unwrap();
    let redirect = format!("exec \"$@\" 3<{}", file.display());
    let out =
        oci.runc_in(&["sh", "-c", &redirect, "sh"], &["exec", "--preserve-fds", "1", "pf", "sh", "-c", "cat <&3"]);
    let _ = oci.runc(&["delete", "--force", "pf"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through-fd-3\n");
}

/// The attack: `exec --preserve-fds 3` with fds 3..5 closed in the caller. Had the runtime opened
/// its own files first (the state lock, the init's pidfd, a cgroup directory: CVE-2024-21626's
/// leaked directory fd), they would take those numbers and be passed into the container, where a
/// directory fd of the host leads out (`openat(fd, "../../..")`). It must be refused, nothing run.
#[test]
fn oci_exec_preserve_fds_over_closed_fds_never_hands_the_runtimes_own_fds_to_the_container() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    assert!(oci.create("pfx").status.success());
    assert!(oci.runc(&["start", "pfx"]).status.success());
    let probe = "for f in 3 4 5; do readlink /proc/self/fd/$f; done; echo ran";
    let out = oci.runc_in(
        &["sh", "-c", "exec \"$@\" 3<&- 4<&- 5<&-", "sh"],
        &["exec", "--preserve-fds", "3", "pfx", "sh", "-c", probe],
    );
    let _ = oci.runc(&["delete", "--force", "pfx"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('/') || stdout.lines().all(|l| l == "ran"), "host fds reached the container: {stdout}");
    assert!(!out.status.success() && !stdout.contains("ran"), "must be refused: {stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("fd 3 is not open"));
}

/// `kill ID TERM` of a created container (what a shim sends first on `ctr task kill`, podman on
/// `stop` of a created one): its process is sandbox's setup code, PID 1 of its namespace with no
/// handler, so the kernel dropped the TERM and the container stayed created for ever. runc's init
/// dies of it. The container must end (stopped) and delete leave nothing.
#[test]
fn oci_kill_term_of_a_created_container_stops_it_and_delete_leaves_nothing() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    assert!(oci.create("ct").status.success());
    let pid = oci.state("ct")["pid"].as_i64().unwrap();
    assert!(oci.runc(&["kill", "ct", "TERM"]).status.success());
    let stopped = eventually(5.0, || oci.status("ct") == "stopped");
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    let del = oci.runc(&["delete", "ct"]);
    if !stopped {
        let _ = oci.runc(&["delete", "--force", "ct"]);
    }
    assert!(stopped, "a created container ignored kill TERM");
    assert!(!alive || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z ")));
    assert!(del.status.success(), "{}", String::from_utf8_lossy(&del.stderr));
    assert!(oci.left().is_empty(), "state left: {:?}", oci.left());
}

/// A SIGTERM to a created container's supervisor (a shim or systemd stopping it; the supervisor
/// is the container's owner) ended nothing: its signalfd was read only once the command ran. It
/// must end the container, as it does a running one's.
#[test]
fn oci_sigterm_to_a_created_containers_supervisor_ends_the_container() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    assert!(oci.create("cs").status.success());
    let st = std::fs::read_to_string(oci.root().join("cs/state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    let sup = v["supervisor"]["pid"].as_i64().expect("the supervisor's pid in state.json") as i32;
    let pid = oci.state("cs")["pid"].as_i64().unwrap();
    // SAFETY: kill(2) of the supervisor this test's create started.
    unsafe { libc::kill(sup, libc::SIGTERM) };
    let stopped = eventually(5.0, || oci.runc(&["state", "cs"]).status.success() && oci.status("cs") == "stopped");
    let init_gone =
        eventually(5.0, || std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z ")));
    let _ = oci.runc(&["delete", "--force", "cs"]);
    assert!(stopped && init_gone, "SIGTERM to the supervisor of a created container ended nothing");
    assert!(oci.left().is_empty(), "state left: {:?}", oci.left());
}
