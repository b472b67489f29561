//! The runc commands engines call besides the lifecycle (issue 15 item 1): exec (process.json
//! and inline), ps, update, pause/resume, events --stats, features, spec; and what they must
//! not allow (an exec with more than the container has, a pid file through a planted link).

use std::path::Path;

use crate::harness::*;
use crate::oci_bundle::{entries, Oci};
use crate::require_root;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The runc default capabilities (those of src/oci/testdata/runc-default.json).
const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

fn process_json(args: &[&str], caps: &[&str]) -> String {
    serde_json::json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin"],
        "cwd": "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": true
    })
    .to_string()
}

#[test]
fn oci_exec_ps_pause_update_events_drive_a_running_container_as_engines_do() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    let b = oci.bundle();
    assert!(oci.runc(&["create", "--bundle", b.to_str().unwrap(), "c5"]).status.success());
    assert!(oci.runc(&["start", "c5"]).status.success());
    let init: i32 = json(&oci.runc(&["state", "c5"]))["pid"].as_i64().unwrap() as i32;

    // Inline form: the command's stdout and exit status are exec's.
    let out = oci.runc(&["exec", "c5", "sh", "-c", "echo hi; exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");

    // containerd's shim: --process FILE --detach --pid-file P; the process keeps running.
    let p = oci.dir.path().join("process.json");
    std::fs::write(&p, process_json(&["sh", "-c", "echo from-process > /dev/shm/p; exec sleep 20"], &CAPS)).unwrap();
    let pid_file = oci.dir.path().join("exec.pid");
    let out = oci.runc(&[
        "exec",
        "--process",
        p.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c5",
    ]);
    assert!(out.status.success());
    let epid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(eventually(5.0, || std::fs::read_link(format!("/proc/{epid}/exe"))
        .is_ok_and(|e| e.to_string_lossy().contains("busybox"))));
    let out = oci.runc(&["exec", "c5", "cat", "/dev/shm/p"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-process\n");

    let pids: Vec<i64> = json(&oci.runc(&["ps", "--format", "json", "c5"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(pids.contains(&(init as i64)) && pids.contains(&(epid as i64)), "{pids:?} lacks {init} or {epid}");

    assert!(oci.runc(&["pause", "c5"]).status.success());
    assert_eq!(oci.status("c5"), "paused");
    let refused = oci.runc(&["exec", "c5", "true"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("paused"));
    assert!(oci.runc(&["resume", "c5"]).status.success());
    assert_eq!(oci.status("c5"), "running");

    let r = oci.dir.path().join("resources.json");
    std::fs::write(&r, r#"{"memory":{"limit":67108864},"pids":{"limit":50}}"#).unwrap();
    assert!(oci.runc(&["update", "--resources", r.to_str().unwrap(), "c5"]).status.success());
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.root().join("c5/state.json")).unwrap()).unwrap();
    let cg = &st["cgroup"]["paths"];
    let (mem, pids_max) = match cg.get("memory").and_then(|v| v.as_str()) {
        Some(m) => (
            std::fs::read_to_string(Path::new(m).join("memory.limit_in_bytes")).unwrap(),
            std::fs::read_to_string(Path::new(cg["pids"].as_str().unwrap()).join("pids.max")).unwrap(),
        ),
        None => {
            let d = Path::new(cg[""].as_str().unwrap());
            (
                std::fs::read_to_string(d.join("memory.max")).unwrap(),
                std::fs::read_to_string(d.join("pids.max")).unwrap(),
            )
        }
    };
    assert_eq!(mem.trim(), "67108864");
    assert_eq!(pids_max.trim(), "50");

    let ev = json(&oci.runc(&["events", "--stats", "c5"]));
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 67108864);
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 2, "{ev}");
    assert!(ev["data"]["sandbox"]["memory"].is_object(), "sandbox's figures: {ev}");

    assert!(oci.runc(&["kill", "--all", "c5", "KILL"]).status.success());
    assert!(eventually(5.0, || oci.status("c5") == "stopped"));
    let gone = oci.runc(&["exec", "c5", "true"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("container not running"));
    assert!(oci.runc(&["delete", "c5"]).status.success());
    assert!(!Path::new(&format!("/proc/{epid}/exe")).exists(), "the exec'd process is gone");
}

#[test]
fn oci_exec_process_asking_for_capabilities_the_container_lacks_is_refused() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    let b = oci.bundle();
    assert!(oci.runc(&["create", "--bundle", b.to_str().unwrap(), "c6"]).status.success());
    assert!(oci.runc(&["start", "c6"]).status.success());
    let p = oci.dir.path().join("process.json");
    let mut caps = CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    std::fs::write(&p, process_json(&["sh", "-c", "touch /dev/shm/escalated"], &caps)).unwrap();
    let out = oci.runc(&["exec", "--process", p.to_str().unwrap(), "c6"]);
    assert!(!out.status.success(), "an exec with CAP_SYS_ADMIN the container lacks ran");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CAP_SYS_ADMIN"));
    let check = oci.runc(&["exec", "c6", "sh", "-c", "test -e /dev/shm/escalated && echo ran || echo no"]);
    assert_eq!(String::from_utf8_lossy(&check.stdout), "no\n");
    // The container's own set: accepted, and the process has no more than that.
    std::fs::write(&p, process_json(&["sh", "-c", "grep CapEff /proc/self/status"], &CAPS)).unwrap();
    let out = oci.runc(&["exec", "--process", p.to_str().unwrap(), "c6"]);
    assert!(out.status.success());
    let eff = String::from_utf8_lossy(&out.stdout);
    let mask = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
    // CAP_KILL 5, CAP_NET_BIND_SERVICE 10, CAP_AUDIT_WRITE 29.
    assert_eq!(mask & !((1 << 5) | (1 << 10) | (1 << 29)), 0, "{eff}");
    assert!(oci.runc(&["delete", "--force", "c6"]).status.success());
}

/// Red-team 19: `exec --process` with rlimits above the container's (NOFILE 1024 in its config)
/// got them (runc sets whatever process.json lists): an exec gets at most the container's.
#[test]
fn oci_exec_process_asking_for_rlimits_above_the_containers_is_refused() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    let b = oci.bundle();
    assert!(oci.runc(&["create", "--bundle", b.to_str().unwrap(), "c9"]).status.success());
    assert!(oci.runc(&["start", "c9"]).status.success());
    let p = oci.dir.path().join("process.json");
    let with = |hard: u64| {
        let mut j: serde_json::Value = serde_json::from_str(&process_json(&["sh", "-c", "ulimit -Hn"], &CAPS)).unwrap();
        j["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard}]);
        std::fs::write(&p, j.to_string()).unwrap();
        oci.runc(&["exec", "--process", p.to_str().unwrap(), "c9"])
    };
    let out = with(8192);
    assert!(!out.status.success(), "an exec raised NOFILE to 8192: {}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("above the container's 1024"), "{out:?}");
    let out = with(512);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "512\n");
    assert!(oci.runc(&["delete", "--force", "c9"]).status.success());
}

#[test]
fn oci_pid_file_through_a_planted_symlink_does_not_write_the_links_target() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["true"]) else { return };
    let victim = oci.dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let pid_file = oci.dir.path().join("init.pid");
    // Links at the pid file's temp name (the old writer's `init.sandbox-tmp`) and at the path.
    std::os::unix::fs::symlink(&victim, oci.dir.path().join("init.sandbox-tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, &pid_file).unwrap();
    let b = oci.bundle();
    let out = oci.runc(&["create", "--bundle", b.to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), "c7"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "root wrote through a planted link");
    assert!(out.status.success());
    assert!(!std::fs::symlink_metadata(&pid_file).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(&pid_file).unwrap().parse::<i32>().is_ok());
    assert!(oci.runc(&["delete", "--force", "c7"]).status.success());
}

#[test]
fn oci_features_and_spec_print_what_engines_read() {
    require_root!();
    let Some(oci) = Oci::new(&["true"]) else { return };
    let f = json(&oci.runc(&["features"]));
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n == "network"));
    let dir = oci.dir.path().join("spec");
    std::fs::create_dir(&dir).unwrap();
    assert!(oci.runc(&["spec", "--bundle", dir.to_str().unwrap()]).status.success());
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    let again = oci.runc(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(!again.status.success(), "spec must not overwrite config.json");
    assert!(entries(&dir).len() == 1);
}

/// Receives one fd sent with SCM_RIGHTS on `conn` (what containerd's and conmon's console
/// receivers do).
fn recv_fd(conn: &std::os::unix::net::UnixStream) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    sandbox::sys::recv_fds(conn.as_raw_fd()).ok()??.1.pop()
}

fn terminal_bundle(oci: &Oci) {
    let path = oci.bundle().join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = true.into();
    std::fs::write(&path, spec.to_string()).unwrap();
}

#[test]
fn oci_terminal_master_goes_to_the_console_socket_during_create() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sh", "-c", "tty; echo hello-console; sleep 1"]) else { return };
    terminal_bundle(&oci);
    let sock = oci.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let b = oci.bundle();
    // A terminal without the socket: refused, nothing created.
    let out = oci.runc(&["create", "--bundle", b.to_str().unwrap(), "c8"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--console-socket"));
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(&conn)
    });
    let out = oci.runc(&["create", "--bundle", b.to_str().unwrap(), "--console-socket", sock.to_str().unwrap(), "c8"]);
    assert!(out.status.success());
    let master = receiver.join().unwrap().expect("no pty master on the console socket");
    assert_eq!(oci.status("c8"), "created");
    assert!(oci.runc(&["start", "c8"]).status.success());
    let mut text = String::new();
    let mut f = std::fs::File::from(master);
    let mut buf = [0u8; 256];
    // Until the container's side closes (EIO) or the words are there.
    while !text.contains("hello-console") {
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(text.contains("/dev/pts/") && text.contains("hello-console"), "{text:?}");
    assert!(eventually(10.0, || oci.status("c8") == "stopped"));
    assert!(oci.runc(&["delete", "c8"]).status.success());
}

#[test]
fn oci_console_socket_through_a_symlink_is_refused_and_nothing_created() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["true"]) else { return };
    terminal_bundle(&oci);
    // A link planted where the engine's socket should be, to another listener: root must not
    // hand the container's terminal to whoever listens there.
    let other = oci.dir.path().join("other.sock");
    let listener = std::os::unix::net::UnixListener::bind(&other).unwrap();
    listener.set_nonblocking(true).unwrap();
    let link = oci.dir.path().join("console.sock");
    std::os::unix::fs::symlink(&other, &link).unwrap();
    let b = oci.bundle();
    let out = oci.runc(&["create", "--bundle", b.to_str().unwrap(), "--console-socket", link.to_str().unwrap(), "c9"]);
    assert!(listener.accept().is_err(), "the runtime connected through the planted link");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--console-socket"));
    let left: Vec<_> = crate::harness::state_left(&oci.root());
    assert!(left.is_empty(), "state left: {left:?}");
}

#[test]
fn oci_exec_terminal_master_goes_to_the_console_socket() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    let b = oci.bundle();
    assert!(oci.runc(&["create", "--bundle", b.to_str().unwrap(), "c10"]).status.success());
    assert!(oci.runc(&["start", "c10"]).status.success());
    let sock = oci.dir.path().join("exec-console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        recv_fd(&conn)
    });
    let pid_file = oci.dir.path().join("exec.pid");
    let p = oci.dir.path().join("process.json");
    let mut process: serde_json::Value =
        serde_json::from_str(&process_json(&["sh", "-c", "tty; echo exec-console; sleep 1"], &CAPS)).unwrap();
    process["terminal"] = true.into();
    std::fs::write(&p, process.to_string()).unwrap();
    let out = oci.runc(&[
        "exec",
        "--process",
        p.to_str().unwrap(),
        "--detach",
        "--console-socket",
        sock.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c10",
    ]);
    assert!(out.status.success());
    let master = receiver.join().unwrap().expect("no pty master on the console socket");
    let mut text = String::new();
    let mut f = std::fs::File::from(master);
    let mut buf = [0u8; 256];
    while !text.contains("exec-console") {
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(text.contains("/dev/pts/") && text.contains("exec-console"), "{text:?}");
    assert!(oci.runc(&["delete", "--force", "c10"]).status.success());
}

/// Red-team 19: a `run` whose command is missing failed at start and left a "stopped" container
/// in the state root (runc removes it: nobody asked for one to delete).
#[test]
fn oci_run_whose_start_fails_leaves_no_container() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["/bin/no-such-command"]) else { return };
    let b = oci.bundle();
    let out = oci.runc(&["run", "--bundle", b.to_str().unwrap(), "c10"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-command"), "{out:?}");
    let list = oci.runc(&["list", "-q"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout), "", "a container was left behind");
}
