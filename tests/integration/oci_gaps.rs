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
    let Some(oci) = Oci::running(&["sleep", "30"], "pf") else { return };
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
    let Some(oci) = Oci::running(&["sleep", "30"], "pfx") else { return };
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

/// An idmapped bind of a host directory whose files are owned by `owner` (uidMappings and
/// gidMappings {containerID: owner, hostID: 0}): the container runs `script` over it at /mnt/id.
fn idmapped(owner: u32, script: &str) -> Option<(Oci, tempfile::TempDir, crate::oci_bundle::Ran)> {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "mine\n").unwrap();
    std::fs::write(host.path().join("root-secret"), "secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(host.path().join("root-secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    for p in [host.path().to_path_buf(), host.path().join("f")] {
        std::os::unix::fs::chown(&p, Some(owner), Some(owner)).unwrap();
    }
    let src = host.path().to_str().unwrap().to_string();
    let map = serde_json::json!([{"containerID": owner, "hostID": 0, "size": 1}]);
    let oci = Oci::sh(script, |s| {
        s["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/mnt/id", "type": "bind", "source": src,
            "options": ["rbind"], "uidMappings": map, "gidMappings": map
        }));
    })?;
    let r = oci.run("idm");
    if r.code != 0 && r.stderr.contains("does not support idmapped mounts") {
        eprintln!("SKIPPED: this filesystem has no idmapped mounts: {}", r.stderr);
        return None;
    }
    Some((oci, host, r))
}

/// runtime-spec 1.1 idmapped mounts: a host directory owned by 1000 is seen as root's in the
/// container (no user namespace needed), and what root makes there is 1000's on the host.
#[test]
fn oci_idmapped_bind_shows_files_of_uid_1000_as_root_inside() {
    require_root!();
    let _m = shared();
    let script = "stat -c %u:%g /mnt/id/f; echo new > /mnt/id/made; stat -c %u /mnt/id/made";
    let Some((_oci, host, r)) = idmapped(1000, script) else { return };
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0:0\n0\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(host.path().join("made")).unwrap().uid(), 1000, "written back as 1000");
}

/// The attack: root in the container, through an idmapped bind, plants a root-owned setuid file
/// on the host or reads a root-only host file. The mapping maps only 1000: the container's root
/// creates files as 1000 on the host (never 0), and the host's root-owned files are nobody's
/// inside (unreadable without CAP_DAC_OVERRIDE, which runc's default set lacks).
#[test]
fn oci_idmapped_bind_never_lets_the_container_plant_root_owned_files_or_read_root_only_ones() {
    require_root!();
    let _m = shared();
    let script = "cp /bin/busybox /mnt/id/suid && chmod 4755 /mnt/id/suid; \
                  cat /mnt/id/root-secret 2>/dev/null || echo denied; stat -c %u /mnt/id/root-secret";
    let Some((_oci, host, r)) = idmapped(1000, script) else { return };
    assert_eq!(r.code, 0, "{}", r.stderr);
    use std::os::unix::fs::MetadataExt;
    let planted = std::fs::metadata(host.path().join("suid")).unwrap();
    assert_ne!(planted.uid(), 0, "a root-owned file planted on the host");
    assert_eq!(planted.uid(), 1000);
    assert!(!r.stdout.contains("secret"), "read a root-only host file: {}", r.stdout);
    assert_eq!(r.stdout, "denied\n65534\n");
}
