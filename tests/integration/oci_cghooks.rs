//! sandbox-runc (issue 15): cgroupsPath naming the container's group exactly (relative ones below
//! our own cgroup, everything made removed by delete), exact cpu quota/period, and the hooks
//! (State JSON on stdin, failure semantics, timeouts that leave nothing).

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::oci_bundle::Oci;
use crate::require_root;

/// The pids hierarchy's directory of our own cgroup (v1), or our cgroup2 directory (pure v2).
fn own_pids_dir() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let line = |prefix: &str| text.lines().find_map(|l| l.split_once(prefix).map(|(_, p)| p.to_string()));
    if Path::new("/sys/fs/cgroup/pids/pids.max").exists() || Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        let own = line(":pids:")?;
        return Some(Path::new("/sys/fs/cgroup/pids").join(own.trim_start_matches('/')));
    }
    let own = line("0::")?;
    Some(Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/')))
}

fn pid_of(state: &serde_json::Value) -> i64 {
    state["pid"].as_i64().unwrap()
}

#[test]
fn oci_relative_cgroups_path_is_the_group_below_our_own_cgroup_and_delete_removes_what_it_made() {
    require_root!();
    let _m = shared();
    let Some(own) = own_pids_dir() else {
        eprintln!("SKIPPED: no pids cgroup of our own found in /proc/self/cgroup");
        return;
    };
    let top = format!("sbx-rel-{}", std::process::id());
    let id = format!("rel{}", std::process::id());
    let Some(oci) = Oci::with(&["sleep", "60"], |s| {
        s["linux"]["cgroupsPath"] = format!("{top}/inner/{id}").into();
        s["linux"]["resources"] = serde_json::json!({"pids": {"limit": 77}});
    }) else {
        return;
    };
    let out = oci.create(&id);
    assert!(out.status.success(), "a relative cgroupsPath must be accepted");
    let group = own.join(&top).join("inner").join(&id);
    let pid = pid_of(&oci.state(&id));
    // The created process is in that very group, not a sandbox-named one below it.
    let procs = std::fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
    let pids_max = std::fs::read_to_string(group.join("pids.max")).unwrap_or_default();
    let runc_delete = oci.runc(&["delete", "--force", &id]);
    assert!(runc_delete.status.success());
    assert!(procs.lines().any(|l| l == pid.to_string()), "pid {pid} not in {}: {procs:?}", group.display());
    assert_eq!(pids_max.trim(), "77");
    assert!(!own.join(&top).exists(), "delete must remove the parents it made: {} is left", own.join(&top).display());
}

#[test]
fn oci_absolute_cgroups_path_is_the_group_itself_with_exact_cpu_quota_and_period() {
    require_root!();
    let _m = shared();
    let Some(own) = own_pids_dir() else {
        eprintln!("SKIPPED: no pids cgroup of our own found in /proc/self/cgroup");
        return;
    };
    // Absolute (from the hierarchy's root) but below our own cgroup: nothing outside it is made.
    let root = if own.starts_with("/sys/fs/cgroup/pids") {
        Path::new("/sys/fs/cgroup/pids")
    } else {
        Path::new("/sys/fs/cgroup")
    };
    let id = format!("abs{}", std::process::id());
    let rel = own.strip_prefix(root).unwrap().join(format!("sbx-abs-{}", std::process::id()));
    let Some(oci) = Oci::with(&["sleep", "60"], |s| {
        s["linux"]["cgroupsPath"] = format!("/{}/{id}", rel.display()).into();
        s["linux"]["resources"] = serde_json::json!({"pids": {"limit": 55}, "cpu": {"quota": 50000, "period": 500000}});
    }) else {
        return;
    };
    let out = oci.create(&id);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let group = root.join(&rel).join(&id);
    let pids_max = std::fs::read_to_string(group.join("pids.max")).unwrap_or_default();
    let cpu = if root.ends_with("pids") {
        let d = Path::new("/sys/fs/cgroup/cpu").join(group.strip_prefix(root).unwrap());
        let r = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default().trim().to_string();
        format!("{} {}", r("cpu.cfs_quota_us"), r("cpu.cfs_period_us"))
    } else {
        std::fs::read_to_string(group.join("cpu.max")).unwrap_or_default().trim().to_string()
    };
    assert!(oci.runc(&["delete", "--force", &id]).status.success());
    assert_eq!(pids_max.trim(), "55", "the group must be {} itself", group.display());
    assert_eq!(cpu, "50000 500000", "quota and period as given, not their ratio over 100000");
    assert!(!root.join(&rel).exists(), "{} is left", root.join(&rel).display());
}

fn hook(out: &Path, timeout: Option<u32>) -> serde_json::Value {
    let mut h = serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("{{ cat; echo; echo \"$HOOK_ENV\"; }} > {}", out.display())],
        "env": ["HOOK_ENV=given"],
    });
    if let Some(t) = timeout {
        h["timeout"] = t.into();
    }
    h
}

fn read_state(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (json, env) = text.split_once('\n').unwrap_or((&text, ""));
    assert_eq!(env.trim(), "given", "a hook gets the env of its config");
    serde_json::from_str(json).unwrap()
}

#[test]
fn oci_hooks_get_the_state_on_stdin_at_their_point_of_the_lifecycle() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let (pre, cr, post, stop) =
        (dir.path().join("pre"), dir.path().join("cr"), dir.path().join("post"), dir.path().join("stop"));
    let Some(oci) = Oci::with(&["sleep", "60"], |s| {
        s["annotations"] = serde_json::json!({"org.example": "v"});
        s["hooks"] = serde_json::json!({
            "prestart": [hook(&pre, Some(5))],
            "createRuntime": [hook(&cr, None)],
            "poststart": [hook(&post, Some(5))],
            "poststop": [hook(&stop, Some(5))],
        });
    }) else {
        return;
    };
    let id = "hooks1";
    assert!(oci.create(id).status.success());
    let pid = pid_of(&oci.state(id));
    for (file, status) in [(&pre, "created"), (&cr, "created")] {
        let st = read_state(file);
        assert_eq!(st["status"], status);
        assert_eq!(st["pid"], pid);
        assert_eq!(st["id"], id);
        assert_eq!(st["bundle"], oci.path("bundle").to_str().unwrap());
        assert_eq!(st["annotations"]["org.example"], "v");
    }
    assert!(!post.exists(), "poststart runs only at start");
    assert!(oci.runc(&["start", id]).status.success());
    let st = read_state(&post);
    assert_eq!((st["status"].as_str(), st["pid"].as_i64()), (Some("running"), Some(pid)));
    assert!(!stop.exists(), "poststop runs only at delete");
    assert!(oci.runc(&["delete", "--force", id]).status.success());
    assert_eq!(read_state(&stop)["status"], "stopped");
}

#[test]
fn oci_failing_prestart_hook_fails_create_runs_nothing_and_leaves_nothing() {
    require_root!();
    let _m = shared();
    let Some(own) = own_pids_dir() else { return };
    let top = format!("sbx-hookfail-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let stopped = dir.path().join("stopped");
    let Some(oci) = Oci::with(&["sleep", "60"], |s| {
        s["linux"]["cgroupsPath"] = format!("{top}/c").into();
        s["process"]["args"] = serde_json::json!(["sh", "-c", format!("touch {}", ran.display())]);
        s["hooks"] = serde_json::json!({
            "prestart": [{"path": "/bin/false", "args": ["false"]}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", stopped.display())]}],
        });
    }) else {
        return;
    };
    let out = oci.create("hookfail");
    assert!(!out.status.success(), "a failing prestart hook must fail create");
    assert!(String::from_utf8_lossy(&out.stderr).contains("prestart hook 0"), "the error names the hook");
    let st = oci.runc(&["state", "hookfail"]);
    assert!(String::from_utf8_lossy(&st.stderr).contains("does not exist"), "the container must be gone");
    assert!(!ran.exists(), "the container's process must never run");
    // The lifecycle goes on at delete: poststop runs (runtime-spec, prestart).
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&stopped).unwrap()).unwrap();
    assert_eq!(st["status"], "stopped");
    assert!(!own.join(&top).exists(), "its cgroup and parents must be gone: {} is left", own.join(&top).display());
}

#[test]
fn oci_hung_hook_is_killed_at_its_timeout_with_what_it_started() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let bg = dir.path().join("bg");
    let Some(oci) = Oci::with(&["sleep", "60"], |s| {
        s["hooks"] = serde_json::json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("sleep 1000 & echo $! > {}; sleep 1000", bg.display())],
            "timeout": 1,
        }]});
    }) else {
        return;
    };
    let t = Instant::now();
    let out = oci.create("hung");
    assert!(!out.status.success(), "a hook past its timeout fails create");
    assert!(t.elapsed() < Duration::from_secs(10), "create took {:?}", t.elapsed());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeout"), "the error says why");
    let bg_pid: i32 = std::fs::read_to_string(&bg).unwrap().trim().parse().unwrap();
    // Killed with its group: gone, or at most a zombie being reaped by init.
    std::thread::sleep(Duration::from_millis(100));
    let alive = std::fs::read_to_string(format!("/proc/{bg_pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| !r.starts_with('Z')));
    assert!(!alive, "the hook's background process {bg_pid} must be killed with it");
    assert!(String::from_utf8_lossy(&oci.runc(&["state", "hung"]).stderr).contains("does not exist"));
}

#[test]
fn oci_config_without_process_creates_but_start_fails_and_the_container_stops() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::with(&["sleep", "60"], |s| {
        s.as_object_mut().unwrap().remove("process");
    }) else {
        return;
    };
    // runtime-spec: process is OPTIONAL in config.json; `start` MUST fail without it.
    assert!(oci.create("noproc").status.success(), "create must accept a config without process");
    let out = oci.runc(&["start", "noproc"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process"), "the error says why");
    assert_eq!(oci.state("noproc")["status"], "stopped");
    assert!(oci.runc(&["delete", "noproc"]).status.success(), "a stopped container is deleted without --force");
}
