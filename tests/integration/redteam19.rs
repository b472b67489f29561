//! Red-team 19: holes found in the OCI additions of 625044f: a cgroupsPath naming a cgroup2 group
//! sandbox did not create (hybrid hosts), and sysctls/hostname written into a namespace joined by
//! path that is the runtime's own. Each test is named after the attack and fails on 625044f.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;
use crate::oci_bundle::Oci;
use crate::require_root;

/// Two containers whose cgroupsPaths differ only above their last component (`rA/c1`, `rB/c1`):
/// distinct groups in every v1 hierarchy, but one and the same cgroup2 group (our own directory
/// there joined with the last component only). The second adopted the first's group, and when it
/// ended its teardown SIGKILLed the first container.
#[test]
fn oci_cgroups_paths_sharing_a_last_component_never_kill_each_others_container() {
    require_root!();
    let _m = shared();
    if own_unified_dir().is_none() {
        eprintln!(
            "SKIPPED oci_cgroups_paths_sharing_a_last_component_never_kill_each_others_container: not a hybrid host"
        );
        return;
    }
    let leaf = format!("rt19c-{}", std::process::id());
    let Some(a) = Oci::with(&["true"], |s| {
        s["linux"]["cgroupsPath"] = format!("rt19A/{leaf}").into();
        s["process"]["args"] = serde_json::json!(["sleep", "60"]);
    }) else {
        return;
    };
    let b = Oci::with(&["true"], |s| s["linux"]["cgroupsPath"] = format!("rt19B/{leaf}").into()).unwrap();
    assert!(a.create("rt19a").status.success());
    assert!(a.runc(&["start", "rt19a"]).status.success());
    let _ = b.run("rt19b");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = a.state("rt19a")["status"].clone();
    let _ = a.runc(&["delete", "-f", "rt19a"]);
    assert_eq!(status, "running", "container B (cgroupsPath rt19B/{leaf}) ending killed container A (rt19A/{leaf})");
}

/// Our own directory in a hybrid host's cgroup2 (/sys/fs/cgroup/unified), where sandbox puts the
/// cgroup2 half of a container's group, named by the last component of cgroupsPath.
fn own_unified_dir() -> Option<PathBuf> {
    let u = Path::new("/sys/fs/cgroup/unified");
    if !u.join("cgroup.procs").exists() {
        return None;
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(u.join(own.trim_start_matches('/')))
}

/// cgroupsPath's last component naming a cgroup2 group that already exists (someone else's, with
/// a process in it): sandbox adopted it as "made before the clone" (premake_unified), then its
/// teardown SIGKILLed everything in that group's subtree and removed it. With the runtime in the
/// root cgroup2 group, `"cgroupsPath": "x/system.slice"` would kill every service. A group the
/// runtime did not make must be refused (or at least never adopted, killed or removed).
#[test]
fn oci_cgroups_path_naming_an_existing_cgroup2_group_never_kills_or_removes_it() {
    require_root!();
    let _m = shared();
    let Some(own) = own_unified_dir() else {
        eprintln!(
            "SKIPPED oci_cgroups_path_naming_an_existing_cgroup2_group_never_kills_or_removes_it: not a hybrid host"
        );
        return;
    };
    let name = format!("rt19-victim-{}", std::process::id());
    let victim_dir = own.join(&name);
    std::fs::create_dir(&victim_dir).unwrap();
    let mut victim = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(victim_dir.join("cgroup.procs"), victim.id().to_string()).unwrap();
    let Some(b) = Oci::with(&["true"], |s| s["linux"]["cgroupsPath"] = name.clone().into()) else {
        let _ = victim.kill();
        let _ = victim.wait();
        let _ = std::fs::remove_dir(&victim_dir);
        return;
    };
    let _ = b.run("rt19cg");
    let alive = victim.try_wait().unwrap().is_none();
    let kept = victim_dir.is_dir();
    let _ = victim.kill();
    let _ = victim.wait();
    let _ = std::fs::remove_dir(&victim_dir);
    assert!(alive, "sandbox-runc SIGKILLed a process in the cgroup2 group {victim_dir:?} it did not create");
    assert!(kept, "sandbox-runc removed the cgroup2 group {victim_dir:?} it did not create");
}

/// A config that joins the runtime's own (here: the host's) network and uts namespaces by path
/// (/proc/self/ns/net, as a pod config pointing at the wrong pid would) and sets net.* /
/// kernel.domainname sysctls and a hostname: kernel.rs lets net.*, kernel.domainname through as
/// "namespaced: changes the container, never the host", but the joined namespace IS the host's, so
/// the host's ip_forward, domain name and hostname were rewritten. runc refuses these
/// (validator: isHostNetNS for net.*, IsPrivate(NEWUTS) for hostname and kernel.domainname).
/// The runtime runs in a fresh `unshare --net --uts` here, standing in for the host.
#[test]
fn oci_sysctl_and_hostname_never_written_into_the_runtimes_own_joined_namespaces() {
    require_root!();
    let _m = shared();
    if Command::new("unshare").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED oci_sysctl_and_hostname_never_written_into_the_runtimes_own_joined_namespaces: no unshare(1)"
        );
        return;
    }
    // The "host": a net+uts pair made by unshare; the runtime is run inside it, then a shell in
    // the same namespaces reports what the container's setup left there.
    let Some(b) = Oci::with(&["true"], |s| {
        s["linux"]["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "mount"},
            {"type": "network", "path": "/proc/self/ns/net"},
            {"type": "uts", "path": "/proc/self/ns/uts"},
        ]);
        s["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1", "kernel.domainname": "rt19.evil"});
        s["hostname"] = "rt19-pwned".into();
    }) else {
        return;
    };
    let script = format!(
        "{} --root {} run --bundle {} rt19ns >/dev/null 2>&1; echo rc=$?; \
         cat /proc/sys/net/ipv4/ip_forward; hostname; cat /proc/sys/kernel/domainname",
        b.runc.display(),
        b.dir.path().join("state").display(),
        b.dir.path().join("bundle").display()
    );
    let out = Command::new("unshare").args(["--net", "--uts", "sh", "-c", &script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("in the runtime's own namespaces after run: {text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[1], "0", "net.ipv4.ip_forward written into the runtime's own (the host's) network namespace");
    assert_ne!(lines[2], "rt19-pwned", "hostname set in the runtime's own (the host's) uts namespace");
    assert_ne!(lines[3], "rt19.evil", "kernel.domainname written into the runtime's own (the host's) uts namespace");
    assert_ne!(lines[0], "rc=0", "a config setting sysctls/hostname in the host's namespaces must be refused");
}
