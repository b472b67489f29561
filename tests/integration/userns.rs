//! User namespaces: `--userns` as root, and rootless runs (a non-root caller mapped to root inside),
//! with and without a delegated cgroup v2 subtree.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;
use crate::require_root;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, id: u32) {
    std::os::unix::fs::chown(p, Some(id), Some(id)).unwrap();
}

#[test]
fn userns_maps_root_to_an_unprivileged_range_and_files_show_it_outside() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    // A directory the mapped root owns, and one the host's root owns.
    for d in ["data", "host"] {
        std::fs::create_dir(root.path().join(d)).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    chown(data.path(), 100000);
    let host_owned = tempfile::tempdir().unwrap();
    chmod(host_owned.path(), 0o755);
    let script = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map | tr -s ' ' | sed 's/^ //'; \
                  touch /data/made && echo made; touch /host/x 2>/dev/null && echo ESCAPED-host-write; \
                  grep CapEff /proc/self/status | cut -f2";
    let r = sandbox(&[
        "run",
        "--userns",
        "100000:65536",
        "--rootfs",
        root.path().to_str().unwrap(),
        "--bind",
        &format!("{}:/data", data.path().display()),
        "--bind",
        &format!("{}:/host", host_owned.path().display()),
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let l: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(&l[..5], ["0", "0", "0 100000 65536", "0 100000 65536", "made"], "{}", r.stdout);
    // Root inside, with docker's capabilities, which count only in the sandbox's own namespaces.
    assert_eq!(l[5], "00000000a80425fb", "{}", r.stdout);
    let made = std::fs::metadata(data.path().join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (100000, 100000), "the file's owner outside is the mapped root");
    assert!(!host_owned.path().join("x").exists(), "CAP_DAC_OVERRIDE in a user namespace must not reach host files");
    assert!(r.report()["cgroup"]["path"].is_string(), "root still makes the run's cgroup");
}

#[test]
fn userns_values_are_checked_before_anything_is_made() {
    require_root!();
    let _m = shared();
    for bad in ["0", "0:65536", "100000:0", "abc", "4294967295"] {
        let r = sandbox(&["run", "--userns", bad, "true"]);
        assert_eq!(r.code, 125, "--userns {bad}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("invalid --userns '{bad}'")) && r.stderr.contains("auto"), "{}", r.stderr);
    }
    // `auto` reads the caller's range from /etc/subuid; which branch runs depends on the host,
    // and both are checked. Nothing here changes /etc/subuid.
    let has_range = std::fs::read_to_string("/etc/subuid")
        .is_ok_and(|t| t.lines().any(|l| l.starts_with("root:") || l.starts_with("0:")));
    let r = sandbox(&["run", "--userns", "auto", "cat", "/proc/self/uid_map"]);
    if has_range {
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stdout.split_whitespace().nth(1).is_some_and(|o| o == "0"), "not host root: {}", r.stdout);
    } else {
        assert_eq!(r.code, 125, "{}", r.stderr);
        assert!(r.stderr.contains("has no range for root") && r.stderr.contains("--add-subuids"), "{}", r.stderr);
    }
}

#[test]
fn rootless_run_maps_the_caller_to_root_and_reports_without_a_cgroup() {
    require_root!();
    let _m = shared();
    let (Some(nobody), Some(root)) = (as_nobody(), busybox_rootfs()) else {
        eprintln!("SKIPPED rootless run: see above");
        return;
    };
    chmod(root.path(), 0o755);
    let script = "id -u; tr -s ' ' < /proc/self/uid_map | sed 's/^ //'; grep NoNewPrivs /proc/self/status | cut -f2; \
                  echo $$; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3";
    let r = sandbox_as(&nobody, &["run", "--rootfs", root.path().to_str().unwrap(), "sh", "-c", script]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.stdout, format!("0\n0 {NOBODY} 1\n1\n1\n"), "root inside, pid 1, no_new_privs");
    let rep = r.report();
    assert!(rep["cgroup"].is_null(), "no delegated cgroup here: {rep}");
    assert!(rep["cpu"]["usage_s"].as_f64().is_some_and(|u| u > 0.0), "CPU time from wait4: {rep}");
    assert!(rep["memory"]["peak_bytes"].is_null(), "unknown, not invented: {rep}");
    assert_eq!(rep["exit_code"], 3);
}

#[test]
fn rootless_limits_without_delegation_fail_clearly_and_leave_nothing() {
    require_root!();
    let _m = shared();
    let Some(nobody) = as_nobody() else { return };
    if v2_only() && own_v2_group_is_delegated_to_nobody() {
        eprintln!("SKIPPED: this cgroup is delegated to nobody, so limits would work");
        return;
    }
    let r = sandbox_as(&nobody, &["--mem", "64M", "--pids", "10", "run", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    for want in ["cannot apply --mem --pids as a non-root user", "systemd-run --user --scope -p Delegate=yes"] {
        assert!(r.stderr.contains(want), "{want:?} missing: {}", r.stderr);
    }
    assert!(r.report.is_none(), "no report for a run that never started");
    // A timeout needs no cgroup.
    let r = sandbox_as(&nobody, &["--timeout", "5s", "run", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // --userns is root's: a non-root caller can map only itself, which sandbox already does.
    let r = sandbox_as(&nobody, &["run", "--userns", "100000:65536", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("no --userns as a non-root user"), "{}", r.stderr);
}

fn v2_only() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn own_v2_dir() -> PathBuf {
    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/").trim_start_matches('/').to_string();
    Path::new("/sys/fs/cgroup").join(own)
}

fn own_v2_group_is_delegated_to_nobody() -> bool {
    std::fs::metadata(own_v2_dir()).is_ok_and(|m| m.uid() == 65534)
}

/// Removes the delegated test group (and the supervisor leaf inside) on every path.
struct Delegated(PathBuf);

impl Drop for Delegated {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.0) {
            for e in rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn rootless_limits_use_a_delegated_v2_subtree() {
    require_root!();
    let _m = shared();
    let Some(nobody) = as_nobody() else { return };
    if !v2_only() {
        eprintln!("SKIPPED rootless delegation: needs a pure cgroup v2 host (the unified VM lane runs it)");
        return;
    }
    // What `systemd-run --user --scope -p Delegate=yes` gives: a group of our own cgroup, owned by
    // the user, holding the user's sandbox process and nothing else.
    let parent = own_v2_dir();
    let have = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    if !["memory", "pids"].iter().all(|c| have.split_whitespace().any(|x| x == *c))
        && std::fs::write(parent.join("cgroup.subtree_control"), "+memory +pids").is_err()
    {
        eprintln!("SKIPPED rootless delegation: cannot enable memory and pids below {}", parent.display());
        return;
    }
    let dir = Delegated(parent.join(format!("sandbox-deleg-test-{}", std::process::id())));
    std::fs::create_dir(&dir.0).unwrap();
    for f in ["", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
        chown(&dir.0.join(f), 65534);
    }
    let rf = tempfile::tempdir().unwrap();
    chmod(rf.path(), 0o777);
    let report = rf.path().join("r.json");
    // Root moves the shell into the delegated group, then it becomes nobody and runs sandbox.
    let cmd = format!(
        "echo $$ > {}/cgroup.procs && exec {} {SANDBOX} --report-file {} --mem 32M --pids 10 run tail /dev/zero",
        dir.0.display(),
        nobody.join(" "),
        report.display()
    );
    let out = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "killed by the OOM killer: {stderr}");
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["oom_killed"], true, "{rep}");
    let path = rep["cgroup"]["path"].as_str().unwrap();
    assert!(Path::new(path).starts_with(&dir.0), "the run's group is in the delegated subtree: {path}");
    assert!(!Path::new(path).exists(), "the run's group is removed");
    // sandbox and its child had to leave the delegated group for a leaf (no internal processes);
    // the leaf is all that stays, empty, until the next run's gc or the scope's end.
    let left: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.len() == 1 && left[0].starts_with("sandbox-sup-"), "{left:?}");
    assert_eq!(std::fs::read_to_string(dir.0.join(&left[0]).join("cgroup.procs")).unwrap(), "");
}
