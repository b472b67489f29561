//! Hardening: what root inside the sandbox must not be able to do, and the flags that relax it.

use crate::harness::*;
use crate::require_root;

/// docker's default capability set as a mask (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
/// SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP).
const DOCKER_DEFAULT: u64 = 0xa80425fb;

fn status_field(out: &str, key: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_default()
}

#[test]
fn default_capabilities_are_dockers_and_no_new_privs_is_set() {
    require_root!();
    let _m = shared();
    let r = sandbox(&["run", "cat", "/proc/self/status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        let v = u64::from_str_radix(&status_field(&r.stdout, set), 16).unwrap();
        assert_eq!(v, DOCKER_DEFAULT, "{set} {v:x}");
    }
    assert_eq!(status_field(&r.stdout, "CapInh:"), "0000000000000000", "CVE-2022-24769");
    assert_eq!(status_field(&r.stdout, "CapAmb:"), "0000000000000000");
    assert_eq!(status_field(&r.stdout, "NoNewPrivs:"), "1");
}

#[test]
fn escapes_through_mounts_namespaces_modules_and_sysrq_fail() {
    require_root!();
    let _m = shared();
    // mount(8) is setuid root on Debian: with no_new_privs and a reduced bounding set it gains
    // nothing either.
    let script = r#"
        mount -t proc proc /mnt 2>/dev/null && echo ESCAPED-proc
        mount -t sysfs sysfs /mnt 2>/dev/null && echo ESCAPED-sysfs
        mount -t tmpfs tmpfs /mnt 2>/dev/null && echo ESCAPED-tmpfs
        unshare -m true 2>/dev/null && echo ESCAPED-unshare
        nsenter -t 1 -m true 2>/dev/null && echo ESCAPED-setns
        [ -e /proc/sysrq-trigger ] && (echo h > /proc/sysrq-trigger) 2>/dev/null && echo ESCAPED-sysrq
        (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo ESCAPED-sysctl
        [ -n "$(head -c1 /proc/kcore 2>/dev/null)" ] && echo ESCAPED-kcore
        [ -n "$(head -c1 /proc/keys 2>/dev/null)" ] && echo ESCAPED-keys
        [ -n "$(ls /sys/firmware 2>/dev/null)" ] && echo ESCAPED-firmware
        python3 /dev/stdin <<'PY'
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall(175, 0, 0, b"")  # init_module(NULL, 0, ""): EPERM unless CAP_SYS_MODULE
e = ctypes.get_errno()
print("no-module-support" if e == errno.ENOSYS else "ESCAPED-init_module" if e != errno.EPERM else "module-denied")
PY
        echo done
    "#;
    // As root, as a user-namespaced root, and rootless (as nobody, where the kernel allows it).
    let mut ways: Vec<(Vec<&str>, Vec<&str>)> = vec![(vec![], vec![]), (vec![], vec!["--userns", "100000:65536"])];
    ways.extend(as_nobody().map(|p| (p, vec![])));
    for (prefix, flags) in ways {
        let mut args = vec!["run"];
        args.extend(&flags);
        args.extend(["sh", "-c", script]);
        let r = sandbox_as(&prefix, &args);
        assert_eq!(r.code, 0, "{prefix:?} {flags:?}: {}", r.stderr);
        assert!(!r.stdout.contains("ESCAPED"), "{prefix:?} {flags:?}: {}", r.stdout);
        assert!(r.stdout.ends_with("done\n"), "{prefix:?} {flags:?}: {}", r.stdout);
    }
}

#[test]
fn host_abstract_unix_sockets_are_out_of_reach() {
    require_root!();
    let _m = shared();
    use std::os::linux::net::SocketAddrExt;
    let name = format!("sandbox-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let probe = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect('\\0{name}'); print('ESCAPED')\nexcept OSError as e: print('refused', e.errno)"
    );
    // The same probe outside reaches it (so the test can fail).
    let outside = std::process::Command::new("python3").args(["-c", &probe]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&outside.stdout).trim(), "ESCAPED");
    let r = sandbox(&["run", "python3", "-c", &probe]);
    assert!(r.stdout.starts_with("refused"), "{} {}", r.stdout, r.stderr);
}

#[test]
fn cap_flags_and_privileged_relax_the_defaults() {
    require_root!();
    let _m = shared();
    let r = sandbox(&[
        "run",
        "--cap-add",
        "SYS_ADMIN",
        "--cap-drop",
        "net_raw",
        "sh",
        "-c",
        "mount -t tmpfs t /mnt && echo mounted; grep CapEff /proc/self/status",
    ]);
    assert!(r.stdout.contains("mounted"), "{}", r.stderr);
    let eff = u64::from_str_radix(&status_field(&r.stdout, "CapEff:"), 16).unwrap();
    assert_eq!(eff, (DOCKER_DEFAULT | 1 << 21) & !(1 << 13), "SYS_ADMIN (21) added, NET_RAW (13) dropped");
    let r = sandbox(&["run", "--cap-drop", "ALL", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(status_field(&r.stdout, "CapEff:"), "0000000000000000");
    let r = sandbox(&[
        "run",
        "--privileged",
        "--allow-new-privs",
        "sh",
        "-c",
        "grep NoNewPrivs /proc/self/status; mount -t tmpfs t /mnt && echo mounted",
    ]);
    assert_eq!(status_field(&r.stdout, "NoNewPrivs:"), "0");
    assert!(r.stdout.contains("mounted"), "{}", r.stderr);
    let r = sandbox(&["run", "--cap-add", "FLY", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("'FLY'"), "{}", r.stderr);
}

fn probe(args: &[&str]) -> std::collections::HashMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seccomp/probe.py");
    let mut a = vec!["run"];
    a.extend(args);
    a.extend(["python3", script]);
    let r = sandbox(&a);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.lines().filter_map(|l| l.split_once(' ')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn default_seccomp_filter_denies_with_eperm() {
    require_root!();
    let _m = shared();
    let got = probe(&[]);
    for call in [
        "keyctl",
        "add_key",
        "bpf",
        "kexec_load",
        "open_by_handle_at",
        "finit_module",
        "io_uring_setup",
        "unshare",
        "setns",
        "clone-newns",
        "personality-norandom",
        "x32-getpid",
        "i386-getpid",
    ] {
        assert_eq!(got.get(call).map(String::as_str), Some("EPERM"), "{call}: {got:?}");
    }
    assert_eq!(got["clone3"], "ENOSYS", "clone3 falls back to the inspectable clone");
    assert_eq!(got["personality-query"], "ok");
    // The same probe unconfined: the calls reach the kernel (which may refuse them for other
    // reasons, never with the filter's EPERM for these). Not bpf: with
    // kernel.unprivileged_bpf_disabled (Debian's default) the kernel itself says EPERM without CAP_BPF.
    let free = probe(&["--seccomp", "unconfined"]);
    for call in ["keyctl", "io_uring_setup", "clone3", "personality-norandom", "i386-getpid"] {
        assert_ne!(free.get(call).map(String::as_str), Some("EPERM"), "{call} unconfined: {free:?}");
    }
    // With CAP_SYS_ADMIN kept, namespaces are the capability's business, not the filter's.
    let admin = probe(&["--cap-add", "SYS_ADMIN"]);
    assert_eq!(admin["unshare"], "ok", "{admin:?}");
}

#[test]
fn seccomp_profile_from_a_file_and_bad_profiles() {
    require_root!();
    let _m = shared();
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seccomp/deny-mkdir.json");
    let r = sandbox(&[
        "run",
        "--seccomp",
        profile,
        "sh",
        "-c",
        "mkdir /tmp/d 2>&1; echo rc=$?; touch /tmp/f && echo touched",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Operation not permitted") && r.stdout.contains("touched"), "{}", r.stdout);
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
    let r = sandbox(&["run", "--seccomp", bad.path().to_str().unwrap(), "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("SCMP_ACT_SOMETIMES") && r.report.is_none(), "{}", r.stderr);
}

const ESCAPE_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/escape/escape.py");

/// The escape script's "<attempt> <outcome>" lines, after checking that none says ESCAPED.
fn attempts(r: &Run, expected: usize) -> Vec<String> {
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("ESCAPED"), "{}", r.stdout);
    let lines: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), expected, "every attempt ran: {}", r.stdout);
    lines
}

#[test]
fn chroot_and_pivot_root_escapes_from_rootfs_fail() {
    require_root!();
    let _m = shared();
    let Some(root) = usr_rootfs() else { return };
    // A file that exists on the host but not in the rootfs: found after an escape, not before.
    let host = tempfile::tempdir().unwrap();
    let marker = host.path().join("host-marker");
    std::fs::write(&marker, "host").unwrap();
    std::fs::copy(ESCAPE_PY, root.path().join("escape.py")).unwrap();
    let root_s = root.path().to_str().unwrap();
    let m = marker.to_str().unwrap();
    let r = sandbox(&["run", "--rootfs", root_s, "--bind", USR_RO, "python3", "/escape.py", "chroot", m]);
    let lines = attempts(&r, 4);
    assert_eq!(lines[0], "chroot contained");
    assert_eq!(lines[1], "pivot_root EPERM", "needs CAP_SYS_ADMIN");
    // With every capability (but still no seccomp exemption for pivot_root's namespace games),
    // the chroot climb still ends at the rootfs: the old root was detached, not hidden.
    let r = sandbox(&[
        "run",
        "--rootfs",
        root_s,
        "--bind",
        USR_RO,
        "--cap-add",
        "ALL",
        "python3",
        "/escape.py",
        "chroot",
        m,
    ]);
    let lines = attempts(&r, 4);
    assert_eq!(lines[0], "chroot contained");
}

#[test]
fn ptrace_and_signals_cannot_reach_a_host_process() {
    require_root!();
    let _m = shared();
    let mut host = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let pid = host.id().to_string();
    for extra in [&[][..], &["--cap-add", "SYS_PTRACE", "--cap-add", "KILL"][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend(["python3", ESCAPE_PY, "ptrace", &pid]);
        let lines = attempts(&sandbox(&args), 4);
        // The host pid does not exist in the sandbox's pid namespace.
        assert_eq!(lines[..3], ["ptrace-attach ESRCH", "ptrace-seize ESRCH", "kill ESRCH"], "{extra:?}");
    }
    assert!(host.try_wait().unwrap().is_none(), "the host process is untouched");
    let _ = host.kill();
    let _ = host.wait();
}

#[test]
fn setuid_binaries_regain_no_capabilities() {
    require_root!();
    let _m = shared();
    let Some(root) = usr_rootfs() else { return };
    // A setuid-root program that shows what it got: cat of its own /proc/self/status.
    let suid = root.path().join("suidcat");
    std::fs::copy("/usr/bin/cat", &suid).unwrap();
    std::fs::set_permissions(&suid, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rootfs", root.path().to_str().unwrap(), "--bind", USR_RO];
        args.extend_from_slice(extra);
        args.extend(["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "/suidcat", "/proc/self/status"]);
        let r = sandbox(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let uids = status_field(&r.stdout, "Uid:").split_whitespace().collect::<Vec<_>>().join(" ");
        (uids, u64::from_str_radix(&status_field(&r.stdout, "CapEff:"), 16).unwrap())
    };
    // Default (no_new_privs): exec of a setuid binary changes nothing.
    assert_eq!(run(&[]), ("1000 1000 1000 1000".to_string(), 0));
    // --allow-new-privs: it becomes root again, yet only within the bounding set.
    let (uids, eff) = run(&["--allow-new-privs"]);
    assert_eq!(uids, "1000 0 0 0");
    assert_eq!(eff, DOCKER_DEFAULT, "capabilities dropped from the bounding set stay dropped: {eff:x}");
}

/// With no device cgroup, a node the command makes with CAP_MKNOD (docker's defaults have it) in
/// its root filesystem must not open: `b 8 0` there would be the host's disk.
#[test]
fn device_nodes_made_in_a_rootfs_cannot_be_opened() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let root_s = root.path().to_str().unwrap();
    // c 1 3 is /dev/null: harmless if the test fails, and writable when it opens.
    let script = "mknod /tmp/n c 1 3 && echo made; echo x > /tmp/n && echo opened; echo x > /dev/null && echo devnull";
    let r = sandbox(&["run", "--rootfs", root_s, "sh", "-c", script]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "made\ndevnull\n", "{}", r.stderr);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    let _ = std::fs::remove_file(root.path().join("tmp/n"));
    // --privileged lifts it (as docker's does): the same node opens.
    let r = sandbox(&["run", "--privileged", "--rootfs", root_s, "sh", "-c", script]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "made\nopened\ndevnull\n"), "{}", r.stderr);
}
