//! Red-team 19: holes found in the OCI additions of 625044f (sysctl and hostname with namespaces
//! joined by path; the cgroupsPath ones are in redteam19_cgroups.rs). Named after the attack, each
//! failed on that commit.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::*;
use crate::require_root;

struct Bundle {
    _rootfs: tempfile::TempDir,
    dir: tempfile::TempDir,
    runc: PathBuf,
}

impl Bundle {
    fn new(edit: impl FnOnce(&mut serde_json::Value)) -> Option<Bundle> {
        let rootfs = busybox_rootfs()?;
        let dir = tempfile::tempdir().unwrap();
        let runc = dir.path().join("sandbox-runc");
        std::os::unix::fs::symlink(bin(), &runc).unwrap();
        std::fs::create_dir(dir.path().join("bundle")).unwrap();
        let mut spec: serde_json::Value =
            serde_json::from_str(include_str!("../../src/oci/testdata/runc-default.json")).unwrap();
        spec["root"]["path"] = rootfs.path().to_str().unwrap().into();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(["true"]);
        edit(&mut spec);
        std::fs::write(dir.path().join("bundle/config.json"), spec.to_string()).unwrap();
        Some(Bundle { _rootfs: rootfs, dir, runc })
    }
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
    let Some(b) = Bundle::new(|s| {
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
