//! `start`'s wake-up (issue 15 item 6): the supervisor keeps the start FIFO's read end open until
//! state.json says running, and `start` waits for POLLERR on its write end (or the supervisor's
//! pidfd) instead of polling state.json every 2 ms. These guard what that must not break: a
//! supervisor that dies while `start` waits does not leave `start` hanging, and the FIFO the
//! supervisor now holds longer never reaches the container's process.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::oci_bundle::Oci;
use crate::require_root;

fn supervisor_of(oci: &Oci, id: &str) -> i32 {
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.root().join(id).join("state.json")).unwrap()).unwrap();
    st["supervisor"]["pid"].as_i64().unwrap() as i32
}

/// Whether process `pid` has an fd open on a file named `name`.
fn holds(pid: i32, name: &str) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.flatten().any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains(name))))
        .unwrap_or(false)
}

#[test]
fn oci_start_returns_promptly_when_the_supervisor_is_killed_while_start_waits() {
    require_root!();
    let _m = shared();
    // startContainer runs after the supervisor read the go and before it records running: a
    // hook that sleeps holds the supervisor (and so `start`) there while we kill it.
    let Some(oci) = Oci::with(&["true"], |s| {
        s["hooks"] = serde_json::json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 8"]}],
        });
    }) else {
        return;
    };
    let id = "startkill";
    assert!(oci.create(id).status.success());
    let sup = supervisor_of(&oci, id);
    let fifo = oci.root().join(id).join("start.fifo");
    assert!(fifo.exists(), "a created container has its start FIFO");
    let t0 = Instant::now();
    let mut start = std::process::Command::new(&oci.runc)
        .args(["--root", oci.root().to_str().unwrap(), "start", id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The supervisor read the go (it unlinks the FIFO then) and runs the hook.
    assert!(eventually(5.0, || !Path::new(&fifo).exists()), "the supervisor never took the go");
    std::thread::sleep(Duration::from_millis(200));
    assert!(start.try_wait().unwrap().is_none(), "start returned before the supervisor recorded anything");
    // The supervisor this test's `create` forked, by its pid.
    assert!(std::process::Command::new("kill").args(["-KILL", &sup.to_string()]).status().unwrap().success());
    let killed = Instant::now();
    let ended = eventually(3.0, || start.try_wait().unwrap().is_some());
    let waited = killed.elapsed();
    if !ended {
        let _ = start.kill();
    }
    let _ = start.wait();
    let _ = oci.runc(&["delete", "--force", id]);
    assert!(
        ended,
        "start still waiting {waited:?} after its supervisor was SIGKILLed (started {:?} ago)",
        t0.elapsed()
    );
    assert!(waited < Duration::from_secs(2), "start took {waited:?} to notice its supervisor died");
    // Whatever start said, the container is not left running: stopped, and deletable.
    assert!(oci.left().is_empty(), "left: {:?}", oci.left());
}

#[test]
fn oci_start_fifo_is_never_open_in_the_container_process() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    let id = "fifofd";
    let pid_file = oci.path("pid");
    let b = oci.bundle();
    let out = oci.runc(&["create", "--bundle", b.to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let sup = supervisor_of(&oci, id);
    // Created: the supervisor holds the read end, the container's process must not.
    assert!(holds(sup, "start.fifo"), "the supervisor waits on the FIFO");
    assert!(!holds(pid, "start.fifo"), "the created container's process has the start FIFO open");
    assert!(oci.runc(&["start", id]).status.success());
    // `start` returned: the state says running and the supervisor let the FIFO go.
    assert_eq!(oci.status(id), "running");
    assert!(!holds(sup, "start.fifo"), "the supervisor still holds the start FIFO after start returned");
    assert!(!holds(pid, "start.fifo"), "the running container's process has the start FIFO open");
    assert!(oci.runc(&["delete", "--force", id]).status.success());
    assert!(oci.left().is_empty(), "left: {:?}", oci.left());
}

#[test]
fn oci_start_waits_for_the_running_state_without_sleep_polling() {
    require_root!();
    let _m = shared();
    if !have_tools(&["strace"], "strace") {
        return;
    }
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    let id = "nopoll";
    assert!(oci.create(id).status.success());
    // `start` under strace: before, it slept 2 ms between reads of state.json until the status
    // changed (two or three rounds: ~4 of its 5 ms). Now it sleeps in poll() until woken.
    let trace = oci.path("start.strace");
    let out = oci.runc_in(
        &["strace", "-f", "-e", "trace=nanosleep,clock_nanosleep", "-o", trace.to_str().unwrap()],
        &["start", id],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(oci.status(id), "running", "start returned before the state said running");
    let _ = oci.runc(&["delete", "--force", id]);
    let t = std::fs::read_to_string(&trace).unwrap();
    let sleeps: Vec<&str> = t.lines().filter(|l| l.contains("nanosleep(")).collect();
    assert!(sleeps.is_empty(), "start slept (polling) {} times:\n{}", sleeps.len(), sleeps.join("\n"));
}

#[test]
fn oci_created_process_is_in_every_hierarchy_of_its_group_before_start() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::new(&["sleep", "30"]) else { return };
    let id = "ingroup";
    assert!(oci.create(id).status.success());
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.root().join(id).join("state.json")).unwrap()).unwrap();
    let pid = st["process"]["pid"].as_i64().unwrap().to_string();
    // runtime-spec: created means in its cgroup. The child joins its group itself during create
    // (0 to v1 `tasks`; born in its cgroup2 group); the supervisor no longer moves it again.
    let paths = st["cgroup"]["paths"].as_object().cloned().unwrap_or_default();
    let missing: Vec<String> = paths
        .iter()
        .filter(|(_, dir)| {
            let procs =
                std::fs::read_to_string(Path::new(dir.as_str().unwrap()).join("cgroup.procs")).unwrap_or_default();
            !procs.lines().any(|l| l.trim() == pid)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let _ = oci.runc(&["delete", "--force", id]);
    if paths.is_empty() {
        eprintln!("SKIPPED oci_created_process_is_in_every_hierarchy_of_its_group_before_start: no group here");
        return;
    }
    assert!(missing.is_empty(), "the created process {pid} is not in its group of {missing:?}");
}
