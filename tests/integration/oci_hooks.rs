//! config.json hooks that run in the container (runtime-spec: createContainer after createRuntime
//! once the root is made, startContainer before the command is executed): their path is the
//! container's, the State JSON is on their stdin, a failure fails create (nothing left) or start;
//! and an image's hook binary gets nothing of the host (never more than the container has).

use std::path::Path;

use crate::harness::*;
use crate::oci_bundle::Oci;
use crate::require_root;

/// A hook running `/NAME` of the container's root with PATH=/bin.
fn hook(name: &str, args: &[&str]) -> serde_json::Value {
    let mut argv = vec![format!("/{name}")];
    argv.extend(args.iter().map(|s| s.to_string()));
    serde_json::json!({"path": format!("/{name}"), "args": argv, "env": ["PATH=/bin"]})
}

/// Writes an executable shell script `NAME` at the root of the container's rootfs.
fn script(oci: &Oci, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = oci.rootfs.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn oci_create_and_start_container_hooks_run_in_the_container_with_the_state_on_stdin() {
    require_root!();
    let _m = shared();
    let Some(oci) = Oci::sh("cat /order; echo cmd", |s| {
        s["hooks"] =
            serde_json::json!({"createContainer": [hook("hc", &["c"])], "startContainer": [hook("hs", &["s"])]});
    }) else {
        return;
    };
    script(&oci, "hc", "cat > /hc.json; echo create-$1 >> /order");
    script(&oci, "hs", "cat > /hs.json; echo start-$1 >> /order");
    assert!(oci.create("hk").status.success());
    let root = oci.rootfs.path();
    let order = || std::fs::read_to_string(root.join("order")).unwrap_or_default();
    assert_eq!(order(), "create-c\n", "createContainer ran at create (and startContainer not yet)");
    let created: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("hc.json")).unwrap()).unwrap();
    assert_eq!((created["id"].as_str(), created["status"].as_str()), (Some("hk"), Some("creating")), "{created}");
    assert_eq!(created["bundle"].as_str(), oci.bundle().to_str());
    assert!(oci.runc(&["start", "hk"]).status.success());
    assert!(eventually(5.0, || oci.status("hk") == "stopped"));
    let started: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("hs.json")).unwrap()).unwrap();
    assert_eq!(started["status"], "created", "{started}");
    assert_eq!(order(), "create-c\nstart-s\n");
    let log = std::fs::read_dir(oci.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("out"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    let _ = oci.runc(&["delete", "hk"]);
    // The command's stdout is the engine's (create's): it saw both hooks done before it ran.
    assert!(log.contains("create-c\nstart-s\ncmd\n"), "{log}");
    assert!(oci.left().is_empty(), "{:?}", oci.left());
}

#[test]
fn oci_failing_create_container_hook_fails_create_and_leaves_nothing_start_container_fails_start() {
    require_root!();
    let _m = shared();
    let Some(oci) =
        Oci::sh("echo ran > /ran", |s| s["hooks"] = serde_json::json!({"createContainer": [hook("no", &[])]}))
    else {
        return;
    };
    script(&oci, "no", "exit 3");
    let out = oci.create("hf");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("createContainer hook 0 (/no) failed"), "{err}");
    assert!(eventually(5.0, || oci.left().is_empty()), "state left: {:?}", oci.left());

    oci.edit(|s| s["hooks"] = serde_json::json!({"startContainer": [hook("no", &[])]}));
    assert!(oci.create("hs").status.success());
    let out = oci.runc(&["start", "hs"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("startContainer hook 0 (/no) failed"), "{err}");
    assert_eq!(oci.status("hs"), "stopped");
    assert!(!oci.rootfs.path().join("ran").exists(), "the command ran after its startContainer hook failed");
    assert!(oci.runc(&["delete", "hs"]).status.success());
    assert!(oci.left().is_empty(), "{:?}", oci.left());
}

/// The attack: the image supplies the hook binary (the path is resolved in the container), so a
/// hostile image would run code from inside the container as the runtime does its hooks: as
/// root with every capability (runc), from which a mknod of the host's disk or a new mount leads
/// out. The hook must run in the container's mount namespace (a host path given to it is not
/// there) and with no more capabilities than the container's own process.
#[test]
fn oci_image_supplied_create_container_hook_gets_no_host_files_and_no_more_caps_than_the_container() {
    require_root!();
    let _m = shared();
    let host = tempfile::tempdir().unwrap();
    let target = host.path().join("pwned");
    let t = target.to_str().unwrap().to_string();
    let Some(oci) = Oci::sh("grep CapEff /proc/self/status", |s| {
        s["hooks"] = serde_json::json!({"createContainer": [hook("evil", &[&t])]});
    }) else {
        return;
    };
    script(
        &oci,
        "evil",
        "echo pwned > \"$1\" 2>/dev/null; mkdir -p \"${1%/*}\" 2>/dev/null; echo x > \"$1\" 2>/dev/null
         mknod /evil-disk b 8 0 2>/dev/null && echo mknod-ok >> /report
         grep CapEff /proc/self/status >> /report; readlink /proc/self/ns/mnt >> /report",
    );
    let r = oci.run("evil");
    let report = std::fs::read_to_string(oci.rootfs.path().join("report")).unwrap_or_default();
    eprintln!("hook report: {report}");
    assert!(!Path::new(&t).exists(), "the image's hook wrote the host path {t}");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!report.is_empty(), "the createContainer hook did not run");
    assert!(!report.contains("mknod-ok"), "the image's hook made a block device node: {report}");
    let container_caps = r.stdout.trim();
    assert!(report.lines().any(|l| l.trim() == container_caps), "hook {report} vs container {container_caps}");
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert!(!report.contains(host_mnt.to_str().unwrap()), "the hook ran in the host's mount namespace");
}

/// A hook that never ends (a hostile image's, or one waiting on something that never comes) must
/// not hold `create` or `start` for ever: runtime-spec's hook `timeout` applies to the hooks that
/// run in the container too. Its process is SIGKILLed at the timeout and the operation fails
/// saying so; a failed create leaves nothing.
#[test]
fn oci_hung_container_hook_is_killed_at_its_timeout_and_fails_create_or_start() {
    require_root!();
    let _m = shared();
    let timed = |kind: &str| {
        let mut h = hook("hang", &[]);
        h["timeout"] = serde_json::json!(1);
        serde_json::json!({ kind: [h] })
    };
    let Some(oci) = Oci::sh("echo ran > /ran", |s| s["hooks"] = timed("createContainer")) else {
        return;
    };
    script(&oci, "hang", "exec sleep 30");
    let t0 = std::time::Instant::now();
    let out = oci.create("ht");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(t0.elapsed().as_secs() < 15, "create took {:?}: the hook's timeout was not applied", t0.elapsed());
    assert!(!out.status.success() && err.contains("createContainer hook 0 (/hang) failed"), "{err}");
    assert!(err.contains("timeout of 1 s"), "{err}");
    assert!(eventually(5.0, || oci.left().is_empty()), "state left: {:?}", oci.left());

    oci.edit(|s| s["hooks"] = timed("startContainer"));
    assert!(oci.create("hs").status.success());
    let t0 = std::time::Instant::now();
    let out = oci.runc(&["start", "hs"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(t0.elapsed().as_secs() < 15, "start took {:?}: the hook's timeout was not applied", t0.elapsed());
    assert!(!out.status.success() && err.contains("startContainer hook 0 (/hang) failed"), "{err}");
    assert!(err.contains("timeout of 1 s"), "{err}");
    assert!(!oci.rootfs.path().join("ran").exists(), "the command ran after its startContainer hook failed");
    let _ = oci.runc(&["delete", "--force", "hs"]);
    assert!(eventually(5.0, || oci.left().is_empty()), "state left: {:?}", oci.left());
}

/// `start` gave up after a fixed 10 s and reported success while a startContainer hook allowed
/// more by its timeout still ran: the container was still created, and poststart hooks were told
/// it was running. It now waits as long as the startContainer hooks' timeouts allow (plus its 10 s),
/// and only a container that has really started makes `start` succeed.
#[test]
fn oci_start_waits_out_a_start_container_hook_longer_than_ten_seconds_within_its_timeout() {
    require_root!();
    let _m = shared();
    let mut h = hook("slow", &[]);
    h["timeout"] = serde_json::json!(30);
    let Some(oci) = Oci::sh("echo ran > /ran", |s| s["hooks"] = serde_json::json!({ "startContainer": [h] })) else {
        return;
    };
    script(&oci, "slow", "exec sleep 12");
    assert!(oci.create("slow").status.success());
    let t0 = std::time::Instant::now();
    let out = oci.runc(&["start", "slow"]);
    let took = t0.elapsed();
    let status = oci.status("slow");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(took.as_secs_f64() >= 11.5, "start returned after {took:?}, before its 12 s hook ended");
    assert_ne!(status, "created", "start succeeded but the container is still created");
    assert!(eventually(5.0, || oci.rootfs.path().join("ran").exists()), "the command never ran");
    let _ = oci.runc(&["delete", "--force", "slow"]);
    assert!(eventually(5.0, || oci.left().is_empty()), "state left: {:?}", oci.left());
}

/// A hook's `timeout` is any positive JSON integer: i64::MAX seconds made `Instant + Duration`
/// overflow and the supervisor panic, so `create` failed ("the container's supervisor ended
/// before it was created") and left a stopped record. Too long for the clock now means no limit.
#[test]
fn oci_hook_timeouts_too_long_for_the_clock_are_no_limit_not_a_panic() {
    require_root!();
    let _m = shared();
    let huge = |name: &str| {
        let mut h = hook(name, &[]);
        h["timeout"] = serde_json::json!(i64::MAX);
        h
    };
    let mut host = huge("ignored");
    host["path"] = serde_json::json!("/bin/true");
    host["args"] = serde_json::json!(["true"]);
    let hooks = serde_json::json!({ "prestart": [host.clone()], "createRuntime": [host], "createContainer": [huge("ok")], "startContainer": [huge("ok")] });
    let Some(oci) = Oci::sh("echo ran > /ran", |s| s["hooks"] = hooks) else {
        return;
    };
    script(&oci, "ok", "exit 0");
    let out = oci.create("huge");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = oci.runc(&["start", "huge"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(eventually(5.0, || oci.rootfs.path().join("ran").exists()), "the command never ran");
    let _ = oci.runc(&["delete", "--force", "huge"]);
    assert!(eventually(5.0, || oci.left().is_empty()), "state left: {:?}", oci.left());
}
