//! Namespaces of an OCI container (issue 15, items 2 and 3: the validation suite's linux_ns_path
//! and linux_ns_nopath): pid and mount namespaces joined by path, never the host's; the cgroup
//! namespace of a container that is only `created`.

use std::process::{Command, Stdio};

use crate::harness::*;
use crate::oci_bundle::{Oci, Ran};
use crate::require_root;

fn ns(pid: i64, n: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap().display().to_string()
}

/// The process of a container in the state root of `b` (it must exist).
fn pid_of(b: &Oci, id: &str) -> i64 {
    b.state(id)["pid"].as_i64().unwrap()
}

/// Kills and reaps a helper process on every path.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn oci_pod_container_joins_another_containers_pid_and_mount_namespaces_by_path() {
    require_root!();
    let _m = shared();
    let Some(pause) = Oci::sh("exec sleep 30", |_| {}) else { return };
    let out = Ran::from(pause.create("pause"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pid = pid_of(&pause, "pause");
    // A mount namespace that is not the host's (a private copy, as the suite's `unshare --mount`):
    // the container's mounts and pivot_root happen there.
    let holder = Holder(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let hpid = holder.0.id() as i64;
    assert!(eventually(5.0, || ns(hpid, "mnt") != ns(std::process::id() as i64, "mnt")), "unshare made no namespace");
    let Some(app) =
        Oci::sh("readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; echo $$; cat /proc/1/cmdline", |s| {
            for n in s["linux"]["namespaces"].as_array_mut().unwrap() {
                match n["type"].as_str().unwrap() {
                    "pid" => n["path"] = format!("/proc/{pid}/ns/pid").into(),
                    "mount" => n["path"] = format!("/proc/{hpid}/ns/mnt").into(),
                    _ => {}
                }
            }
        })
    else {
        return;
    };
    let r = app.run("app");
    // Read before the pause container goes (its /proc entry with it).
    let pause_init = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    let (pause_pid_ns, holder_mnt) = (ns(pid, "pid"), ns(hpid, "mnt"));
    pause.runc(&["delete", "--force", "pause"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let l: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(l.len(), 4, "{l:?}");
    assert_eq!(l[0], pause_pid_ns, "joined the pause container's pid namespace");
    assert_eq!(l[1], holder_mnt, "joined the given mount namespace");
    assert_ne!(l[2], "1", "not the init of the joined pid namespace");
    assert_eq!(l[3], pause_init, "the pause container's process is pid 1 there");
    assert_ne!(ns(std::process::id() as i64, "pid"), l[0], "the host's pid namespace is untouched");
}

#[test]
fn oci_attack_joining_the_hosts_pid_or_mount_namespace_by_path_is_refused() {
    require_root!();
    let _m = shared();
    for (typ, path) in [("pid", "/proc/self/ns/pid"), ("mount", "/proc/self/ns/mnt")] {
        let Some(b) = Oci::sh("echo ran", |s| {
            for n in s["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == typ {
                    n["path"] = path.into();
                }
            }
        }) else {
            return;
        };
        let r = b.run("host");
        assert_ne!(r.code, 0, "{typ} {path}: accepted");
        assert!(!r.stdout.contains("ran"), "{typ} {path}: the process ran");
        assert!(r.stderr.contains("(the host's)"), "{typ} {path}: {}", r.stderr);
    }
}

#[test]
fn oci_created_container_is_in_its_own_cgroup_namespace_before_start() {
    require_root!();
    let _m = shared();
    let Some(b) = Oci::sh("exec sleep 30", |_| {}) else { return };
    let out = Ran::from(b.create("cg"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pid = pid_of(&b, "cg");
    let (theirs, ours) = (ns(pid, "cgroup"), ns(std::process::id() as i64, "cgroup"));
    let status = b.status("cg");
    b.runc(&["delete", "--force", "cg"]);
    assert_eq!(status, "created");
    assert_ne!(theirs, ours, "a created container already has its own cgroup namespace (runtime-spec; runc's does)");
}
