//! `linux.resources.devices` (issue 15): the device cgroup rules every engine's config carries.
//! On cgroup v1 they are the run's devices group; on v2 a list is accepted only when it denies
//! nothing the container's /dev has (sandbox loads no device program yet).

use std::path::PathBuf;

use crate::harness::*;
use crate::oci_bundle::Oci;
use crate::require_root;

/// containerd's default rules (oci.WithDefaultUnixDevices): deny all, then the standard nodes.
const CONTAINERD: &str = r#"[{"allow":false,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":8,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":7,"access":"rwm"},{"allow":true,"type":"c","major":5,"minor":0,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":9,"access":"rwm"},
    {"allow":true,"type":"c","major":5,"minor":1,"access":"rwm"},{"allow":true,"type":"c","major":136,"access":"rwm"},
    {"allow":true,"type":"c","major":5,"minor":2,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}]"#;

/// A bundle running `script` with `rules` as linux.resources.devices.
fn bundle(script: &str, rules: &str) -> Option<Oci> {
    let oci = Oci::new(&["sh", "-c", script])?;
    let file = oci.bundle().join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    spec["linux"]["resources"]["devices"] = serde_json::from_str(rules).unwrap();
    std::fs::write(&file, spec.to_string()).unwrap();
    Some(oci)
}

/// Our own group in the host's v1 devices hierarchy, `None` (and a SKIPPED line) without one.
fn devices_base() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let cg = own.lines().find_map(|l| l.split_once(":devices:").map(|(_, p)| p.to_string()));
    let base = cg.map(|cg| PathBuf::from("/sys/fs/cgroup/devices").join(cg.trim_start_matches('/')));
    if base.as_ref().map_or(true, |b| !b.join("devices.list").is_file()) {
        eprintln!("SKIPPED: no cgroup v1 devices hierarchy here (cgroup v2 has no device files)");
        return None;
    }
    base
}

/// The run groups of container `id` under `base` (sandbox-ID-PID).
fn groups(base: &std::path::Path, id: &str) -> Vec<String> {
    let mine = |n: &String| n.starts_with(&format!("sandbox-{id}-"));
    let mut v: Vec<String> = crate::oci_bundle::entries(base).into_iter().filter(mine).collect();
    v.sort();
    v
}

#[test]
fn oci_containerd_default_device_rules_are_accepted_and_the_container_runs() {
    require_root!();
    let _m = shared();
    let script = "echo x > /dev/null && head -c 4 /dev/urandom | wc -c && cat /dev/null && echo ok";
    let Some(oci) = bundle(script, CONTAINERD) else { return };
    let b = oci.bundle();
    let out = oci.runc(&["run", "--bundle", b.to_str().unwrap(), "dev1"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "4\nok\n");
}

#[test]
fn oci_device_rule_denying_dev_null_makes_it_fail_with_eperm_inside() {
    require_root!();
    let _m = shared();
    let v1 = std::path::Path::new("/sys/fs/cgroup/devices/devices.list").is_file();
    let deny_null = CONTAINERD.replace(
        r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}]"#,
        r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
    );
    let Some(oci) = bundle("cat /dev/null && echo opened; head -c 1 /dev/zero | wc -c", &deny_null) else { return };
    let b = oci.bundle();
    let out = oci.runc(&["run", "--bundle", b.to_str().unwrap(), "dev2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if !v1 {
        // cgroup v2: no device program yet, so a rule that would deny a node of /dev is refused.
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("/dev/null") && err.contains("cgroup v2"), "refused naming the node: {err}");
        assert!(!oci.runc(&["state", "dev2"]).status.success(), "nothing created");
        return;
    }
    assert!(err.contains("Operation not permitted"), "cat /dev/null must fail with EPERM: {err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n", "/dev/zero stays allowed");
}

#[test]
fn oci_device_group_is_made_with_the_rules_and_removed_after_delete() {
    require_root!();
    let _m = shared();
    let Some(base) = devices_base() else { return };
    let Some(oci) = bundle("sleep 1000", CONTAINERD) else { return };
    let b = oci.bundle();
    for (id, started) in [("dev3", false), ("dev4", true)] {
        let before = groups(&base, id);
        assert!(oci.runc(&["create", "--bundle", b.to_str().unwrap(), id]).status.success());
        // Whatever ends the test, the container does not outlive it.
        struct Gone<'a>(&'a Oci, &'a str);
        impl Drop for Gone<'_> {
            fn drop(&mut self) {
                let _ = self.0.runc(&["delete", "--force", self.1]);
            }
        }
        let _gone = Gone(&oci, id);
        let now = groups(&base, id);
        let made: Vec<_> = now.iter().filter(|g| !before.contains(g)).collect();
        assert_eq!(made.len(), 1, "one devices group for the container: {now:?}");
        let list = std::fs::read_to_string(base.join(made[0]).join("devices.list")).unwrap();
        assert!(list.contains("c 1:3 rwm") && !list.contains("a *:* rwm"), "rules applied: {list}");
        if started {
            // Running, then ended by a signal: a plain delete of the stopped container.
            assert!(oci.runc(&["start", id]).status.success());
            assert!(oci.runc(&["kill", id, "KILL"]).status.success());
            let t = std::time::Instant::now();
            while oci.status(id) != "stopped" && t.elapsed().as_secs() < 10 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert!(oci.runc(&["delete", id]).status.success());
        } else {
            // A created container, deleted by force (what an engine does when start fails).
            assert!(oci.runc(&["delete", "--force", id]).status.success());
        }
        assert_eq!(groups(&base, id), before, "nothing left in the devices hierarchy after delete of {id}");
    }
}

/// Attack: a config whose rules allow every device, and CAP_MKNOD, to make /dev/mem (c 1:1) and
/// read the host's memory. The rules only narrow: the node it makes lands on a nodev mount (the
/// container's /dev tmpfs, its rootfs), so opening it fails whatever the device cgroup says.
#[test]
fn oci_device_rules_allowing_everything_do_not_open_a_node_made_with_cap_mknod() {
    require_root!();
    let _m = shared();
    let script = "mknod /dev/mem2 c 1 1 && echo made; head -c 1 /dev/mem2 && echo READ; \
                  mknod /mem3 c 1 1 && head -c 1 /mem3 && echo READ; echo done";
    let Some(oci) = bundle(script, r#"[{"allow":true,"access":"rwm"}]"#) else { return };
    let file = oci.bundle().join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for set in ["bounding", "effective", "permitted"] {
        spec["process"]["capabilities"][set].as_array_mut().unwrap().push("CAP_MKNOD".into());
    }
    spec["root"]["readonly"] = false.into();
    std::fs::write(&file, spec.to_string()).unwrap();
    let b = oci.bundle();
    let out = oci.runc(&["run", "--bundle", b.to_str().unwrap(), "dev5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("made") && stdout.ends_with("done\n"), "the container ran and made the node: {stdout}");
    assert!(!stdout.contains("READ"), "a node made inside must never open: {stdout}");
}
