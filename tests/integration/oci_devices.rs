//! `linux.resources.devices` (issue 15): the device cgroup rules every engine's config carries.
//! On cgroup v1 they are the run's devices group; on v2 a BPF device program on the run's group.
//! The same tests run on both: a hybrid host and the legacy VM lane are v1, the unified lane v2.

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
    // cgroup v2 (v1: the devices group): the BPF program denies it, as runc's does.
    eprintln!("device cgroup: {}", if v1 { "v1 devices group" } else { "cgroup v2 BPF program" });
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

/// A config with the standard deny-all rules, /dev/null denied, and `script` run by the host's
/// python3 (bound read-only with /usr) or busybox.
fn bundle_with(script: &str, rules: &str, python: bool, caps: &[&str]) -> Option<Oci> {
    let oci = bundle(script, rules)?;
    let file = oci.bundle().join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for set in ["bounding", "effective", "permitted"] {
        for c in caps {
            spec["process"]["capabilities"][set].as_array_mut().unwrap().push((*c).into());
        }
    }
    if python {
        let root = PathBuf::from(spec["root"]["path"].as_str().unwrap());
        for l in ["lib", "lib64"] {
            std::os::unix::fs::symlink(format!("usr/{l}"), root.join(l)).unwrap();
        }
        std::fs::create_dir(root.join("usr")).unwrap();
        let usr =
            serde_json::json!({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]});
        spec["mounts"].as_array_mut().unwrap().push(usr);
        spec["process"]["args"] = serde_json::json!(["/usr/bin/python3", "-c", script]);
    }
    std::fs::write(&file, spec.to_string()).unwrap();
    Some(oci)
}

/// Attack: root in a container with CAP_MKNOD makes a node the rules do not allow ('m' denied
/// for char devices here), to open it. mknod itself fails with EPERM (v1: the devices group; v2:
/// the BPF program; before it, nothing on v2 stopped the mknod), while /dev/null, allowed,
/// opens for reading and writing.
#[test]
fn oci_mknod_of_a_device_the_rules_deny_fails_with_eperm() {
    require_root!();
    let _m = shared();
    let rules = CONTAINERD.replace(
        r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}]"#,
        r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"},{"allow":false,"type":"c","access":"m"}]"#,
    );
    let script = "echo x > /dev/null && cat /dev/null && echo null-rw; mknod /dev/mem2 c 1 1 && echo MADE; echo done";
    let Some(oci) = bundle_with(script, &rules, false, &["CAP_MKNOD"]) else { return };
    let b = oci.bundle();
    let out = oci.runc(&["run", "--bundle", b.to_str().unwrap(), "dev6"]);
    let (stdout, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "null-rw\ndone\n", "/dev/null rw allowed, the mknod denied: {err}");
    assert!(err.contains("Operation not permitted"), "mknod fails with EPERM: {err}");
}

/// Attack: root in the container (no CAP_SYS_ADMIN, CAP_BPF or CAP_NET_ADMIN; its cgroupfs
/// read-only) tries to lift the device rules with bpf(2): list the programs on its group
/// (BPF_PROG_QUERY), get one by guessing ids (BPF_PROG_GET_FD_BY_ID), detach it
/// (BPF_PROG_DETACH), load and attach an allow-everything program beside it (BPF_PROG_LOAD,
/// BPF_PROG_ATTACH; with ALLOW_MULTI every program must allow anyway). Every call fails, and
/// /dev/null, which the rules deny, still fails with EPERM afterwards.
#[test]
fn oci_container_root_cannot_detach_or_replace_the_device_program_with_bpf() {
    require_root!();
    let _m = shared();
    if !std::path::Path::new("/usr/bin/python3").is_file() {
        eprintln!("SKIPPED: no /usr/bin/python3 to make the bpf(2) calls from inside");
        return;
    }
    let deny_null = CONTAINERD.replace(
        r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}]"#,
        r#"{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
    );
    let script = r#"
import ctypes, os, struct, platform
libc = ctypes.CDLL(None, use_errno=True)
NR = {'x86_64': 321, 'aarch64': 280}[platform.machine()]
def bpf(cmd, data):
    buf = ctypes.create_string_buffer(data, 128)
    r = libc.syscall(NR, cmd, buf, 128)
    return r, ctypes.get_errno()
try:
    fd = os.open('/sys/fs/cgroup', os.O_RDONLY | os.O_DIRECTORY)
except OSError as e:
    print('cgroupfs', e.errno)
    fd = os.open('/', os.O_RDONLY)
ids = (ctypes.c_uint32 * 8)()
print('query', *bpf(16, struct.pack('IIIIQI', fd, 6, 0, 0, ctypes.addressof(ids), 8)))
prog = 0
for i in range(1, 500):
    r, e = bpf(13, struct.pack('I', i))
    if r >= 0:
        print('GOT', i)
        prog = r
        break
print('getfd', r, e)
print('detach', *bpf(9, struct.pack('IIII', fd, prog, 6, 0)))
ib = ctypes.create_string_buffer(struct.pack('<BBhi', 0xb4, 0, 0, 1) + struct.pack('<BBhi', 0x95, 0, 0, 0))
lic = ctypes.create_string_buffer(b'GPL')
r, e = bpf(5, struct.pack('IIQQ', 15, 2, ctypes.addressof(ib), ctypes.addressof(lic)))
print('load', r, e)
if r >= 0:
    print('ATTACH', *bpf(8, struct.pack('IIII', fd, r, 6, 2)))
try:
    open('/dev/null').read()
    print('NULL OPENED')
except OSError as x:
    print('null', x.errno)
"#;
    let Some(oci) = bundle_with(script, &deny_null, true, &[]) else { return };
    let b = oci.bundle();
    let out = oci.runc(&["run", "--bundle", b.to_str().unwrap(), "dev7"]);
    let (stdout, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("inside:\n{stdout}");
    assert!(stdout.contains("\nnull 1\n") || stdout.starts_with("null 1\n"), "/dev/null still EPERM: {stdout} {err}");
    for bad in ["GOT", "ATTACH", "NULL OPENED", "detach 0", "load 3", "load 4", "load 5"] {
        assert!(!stdout.contains(bad), "{bad}: {stdout}");
    }
    assert!(stdout.contains("detach -1") && stdout.contains("load -1"), "{stdout}");
}

/// `update --resources` with device rules (what an engine sends to take a device away from a
/// running container): the new list replaces the old one at once, on v2 by a new program that
/// replaces the container's (the old one would still allow /dev/null: ALLOW_MULTI programs are
/// all asked, so a program left behind could only deny more, never less; here it must be gone
/// for the second update to allow /dev/null again).
#[test]
fn oci_update_with_device_rules_replaces_the_containers_rules_while_it_runs() {
    require_root!();
    let _m = shared();
    let Some(oci) = bundle("sleep 60", CONTAINERD) else { return };
    let b = oci.bundle();
    assert!(oci.runc(&["create", "--bundle", b.to_str().unwrap(), "dev8"]).status.success());
    struct Gone<'a>(&'a Oci);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            let _ = self.0.runc(&["delete", "--force", "dev8"]);
        }
    }
    let _gone = Gone(&oci);
    assert!(oci.runc(&["start", "dev8"]).status.success());
    let null = || {
        let out = oci.runc(&["exec", "dev8", "sh", "-c", "cat /dev/null && echo opened"]);
        (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    assert_eq!(null().0, "opened\n");
    let deny_null = CONTAINERD.replace(
        r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},"#,
        r#"{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"},"#,
    );
    let r = b.join("resources.json");
    for (rules, want) in [(deny_null.as_str(), false), (CONTAINERD, true)] {
        std::fs::write(&r, format!(r#"{{"devices":{rules}}}"#)).unwrap();
        let out = oci.runc(&["update", "--resources", r.to_str().unwrap(), "dev8"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (stdout, err) = null();
        if want {
            assert_eq!(stdout, "opened\n", "allowed again: the earlier program is gone: {err}");
        } else {
            assert!(stdout.is_empty() && err.contains("Operation not permitted"), "{stdout} {err}");
        }
    }
}

/// `sandbox run --cgroup-conf devices.deny=…` restricts devices the same on v1 (a devices group)
/// and v2 (the device program; before, v2 refused it as a file the group lacks), and a
/// malformed rule exits 125 quoting it.
#[test]
fn run_with_a_cgroup_conf_device_deny_gets_eperm_on_v1_and_v2_alike() {
    require_root!();
    let _m = shared();
    let r = sandbox(&[
        "--cgroup-conf",
        "devices.deny=c 1:3 rw",
        "run",
        "sh",
        "-c",
        "cat /dev/null; head -c 1 /dev/zero | wc -c",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1\n", "/dev/zero stays allowed: {}", r.stderr);
    assert!(r.stderr.contains("/dev/null: Operation not permitted"), "{}", r.stderr);
    let r = sandbox(&["--cgroup-conf", "devices.deny=c 1:3 rx", "run", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("devices.deny=c 1:3 rx"), "{}", r.stderr);
}
