//! Namespace types left out of linux.namespaces (runtime-spec: the runtime's own; Kubernetes'
//! hostNetwork, hostIPC and hostPID pods): net, ipc, uts and pid are shared, mount is refused, and
//! nothing is written into a shared namespace (hostname, domainname, its sysctls).
//!
//! No test here shares anything of the real host's: the runtime runs inside namespaces the test
//! makes with `unshare` (a private mount namespace always), and each check compares the
//! container's /proc/self/ns/* with that wrapper's.

use crate::harness::*;
use crate::oci_bundle::{Oci, Ran};
use crate::require_root;

const NS: [&str; 4] = ["net", "ipc", "uts", "pid"];

/// Prints the wrapper's net, ipc, uts and pid namespaces, a `---` line, then runs the runtime
/// (`"$0" "$@"`: sandbox-runc --root STATE ARGS…) and prints its exit code as `rc=N`.
const SHOW_THEN_RUN: &str =
    "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done; echo ---; \"$0\" \"$@\"; echo rc=$?";

/// The container's script: its namespaces, one per line, then `---`.
const SHOW_NS: &str = "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done; echo ---";

/// `unshare FLAGS… sh -c SHOW_THEN_RUN sandbox-runc --root STATE run --bundle B ID`: the wrapper's
/// namespaces, and what the container printed.
fn run_wrapped(b: &Oci, flags: &[&str], id: &str) -> (Vec<String>, Ran) {
    let mut wrap = vec!["unshare"];
    wrap.extend(flags);
    wrap.extend(["sh", "-c", SHOW_THEN_RUN]);
    let bundle = b.bundle();
    let r = Ran::from(b.runc_in(&wrap, &["run", "--bundle", bundle.to_str().unwrap(), id]));
    let outer = r.stdout.lines().take(4).map(String::from).collect();
    (outer, r)
}

/// The namespace lines the container printed (after the wrapper's `---`).
fn inner(r: &Ran) -> Vec<String> {
    r.stdout.lines().skip(5).take(4).map(String::from).collect()
}

/// Drops the types `types` from the config's linux.namespaces.
fn without(s: &mut serde_json::Value, types: &[&str]) {
    s["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| !types.contains(&n["type"].as_str().unwrap()));
}

#[test]
fn oci_host_network_container_shares_only_the_wrapping_netns_and_leaves_its_lo_down() {
    require_root!();
    let _m = shared();
    // lo's flags through the container's own sysfs (mounted in the shared netns): 0x8 is down,
    // as `unshare -n` made it; sandbox brings lo up only in a network namespace of its own.
    let script = format!("{SHOW_NS}; cat /sys/class/net/lo/flags; hostname");
    let Some(b) = Oci::sh(&script, |s| without(s, &["network"])) else { return };
    let (outer, r) = run_wrapped(&b, &["-n", "-m", "--propagation", "private"], "hostnet");
    assert!(r.stdout.contains("rc=0"), "{}{}", r.stdout, r.stderr);
    let inner = inner(&r);
    assert_eq!(inner.len(), 4, "{}", r.stdout);
    assert_eq!(inner[0], outer[0], "the container shares the wrapper's network namespace");
    for i in 1..4 {
        assert_ne!(inner[i], outer[i], "{}: still a new one", NS[i]);
    }
    let rest: Vec<&str> = r.stdout.lines().skip(10).collect();
    assert_eq!(rest.first(), Some(&"0x8"), "lo of the shared netns left down: {rest:?}");
    assert_eq!(rest.get(1), Some(&"runc"), "the container's own uts namespace still gets the hostname");
    assert!(b.left().is_empty(), "{:?}", b.left());
}

#[test]
fn oci_host_pid_ipc_uts_container_gets_its_own_proc_with_the_masks_and_read_only_paths() {
    require_root!();
    let _m = shared();
    // What the container sees of /proc: its own mount of the shared pid namespace (PID 1 is the
    // wrapper's shell that started sandbox-runc, not the host's init), /proc/kcore masked,
    // /proc/sys read-only.
    let script = format!(
        "{SHOW_NS}; echo pid=$$; tr '\\0' ' ' </proc/1/cmdline; echo; hostname; cat /proc/kcore 2>/dev/null | wc -c; \
         (echo 1 >/proc/sys/kernel/shmmni) 2>/dev/null && echo sys-writable || echo sys-read-only; \
         grep -c ' /proc .* - proc ' /proc/self/mountinfo"
    );
    let Some(b) = Oci::sh(&script, |s| {
        without(s, &["network", "ipc", "uts", "pid"]);
        s["hostname"] = "".into();
    }) else {
        return;
    };
    let flags = ["-n", "-i", "-u", "-p", "-f", "--mount-proc", "-m", "--propagation", "private"];
    let (outer, r) = run_wrapped(&b, &flags, "hostpid");
    assert!(r.stdout.contains("rc=0"), "{}{}", r.stdout, r.stderr);
    assert_eq!(inner(&r), outer, "net, ipc, uts and pid are the wrapper's:\n{}", r.stdout);
    let rest: Vec<&str> = r.stdout.lines().skip(10).collect();
    assert!(rest[0].starts_with("pid=") && rest[0] != "pid=1", "not PID 1 of the shared pid namespace: {rest:?}");
    assert!(rest[1].contains("sandbox-runc"), "its /proc shows the shared pid namespace (wrapper's PID 1): {rest:?}");
    let host_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(rest[2], host_name, "the hostname of the shared uts namespace, unchanged");
    assert_eq!(rest[3].trim(), "0", "/proc/kcore is masked: {rest:?}");
    assert_eq!(rest[4], "sys-read-only", "{rest:?}");
    assert_eq!(rest[5], "1", "one proc mount at /proc: {rest:?}");
    assert!(b.left().is_empty(), "{:?}", b.left());
}

#[test]
fn oci_host_pid_container_exec_ps_kill_and_delete_end_every_process_through_its_cgroup() {
    require_root!();
    let _m = shared();
    let Some(b) = Oci::sh("sleep 1000 & sleep 1000 & wait", |s| without(s, &["pid"])) else { return };
    // The whole lifecycle inside one wrapper (its PID 1 is this script: when it ends, so does
    // everything in its pid namespace, which would hide a leftover).
    let script = r#"RUNC=$0; ROOT=$2; B=$PWD; r() { "$RUNC" --root "$ROOT" "$@"; }
        sleeps() { for p in /proc/[0-9]*; do tr '\0' ' ' <$p/cmdline 2>/dev/null; echo; done | grep -c '^sleep 1000'; }
        readlink /proc/self/ns/pid
        r create --bundle "$B" hp || { echo create-failed; exit 9; }
        r start hp || exit 8
        i=0; while [ "$(sleeps)" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
        echo sleeps-running=$(sleeps)
        r exec hp sh -c 'readlink /proc/self/ns/pid; readlink /proc/self/ns/net' | sed 's/^/exec:/'
        readlink /proc/self/ns/net | sed 's/^/wrapper-net:/'
        echo ps=$(r ps --format json hp)
        PID=$(r state hp | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
        echo cgroup=$( (grep ':pids:' /proc/$PID/cgroup || grep '^0::' /proc/$PID/cgroup) | head -1 | cut -d: -f3)
        r kill hp KILL
        i=0; while ! r state hp | grep -q '"stopped"' && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
        r state hp | grep -q '"stopped"' && echo stopped
        i=0; while [ "$(sleeps)" -gt 0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
        echo sleeps-left=$(sleeps)
        r delete hp && echo deleted"#;
    let r = Ran::from(
        b.runc_in(&["unshare", "-p", "-f", "--mount-proc", "-m", "--propagation", "private", "sh", "-c", script], &[]),
    );
    let line = |p: &str| r.stdout.lines().find_map(|l| l.strip_prefix(p)).map(str::to_string);
    assert!(!r.stdout.contains("create-failed"), "{}{}", r.stdout, r.stderr);
    let wrapper_pid_ns = r.stdout.lines().next().unwrap().to_string();
    assert_eq!(line("sleeps-running=").as_deref(), Some("2"), "{}", r.stdout);
    let exec: Vec<&str> = r.stdout.lines().filter_map(|l| l.strip_prefix("exec:")).collect();
    assert_eq!(exec.first(), Some(&wrapper_pid_ns.as_str()), "exec is in the shared pid namespace: {}", r.stdout);
    assert_ne!(exec.get(1).copied(), line("wrapper-net:").as_deref(), "exec joined the container's own netns");
    let ps = line("ps=").unwrap_or_default();
    let pids: Vec<i64> = serde_json::from_str(&ps).unwrap_or_default();
    assert!(pids.len() >= 3, "ps lists the init and both sleeps: {ps}");
    assert!(r.stdout.contains("\nstopped\n"), "kill of the init stops the container: {}", r.stdout);
    assert_eq!(line("sleeps-left=").as_deref(), Some("0"), "the init's children die with it: {}", r.stdout);
    assert!(r.stdout.contains("\ndeleted"), "{}{}", r.stdout, r.stderr);
    let cg = line("cgroup=").unwrap_or_default();
    assert!(cg.len() > 1, "{}", r.stdout);
    let dir = pids_hierarchy().join(cg.trim_start_matches('/'));
    assert!(!dir.exists(), "its group is gone: {}", dir.display());
    assert!(b.left().is_empty(), "{:?}", b.left());
}

#[test]
fn oci_attack_writing_hostname_or_sysctls_into_a_shared_namespace_or_sharing_mounts_is_refused() {
    require_root!();
    let _m = shared();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 5] = [
        ("mount", |s| without(s, &["mount"]), "own mount namespace"),
        ("hostname", |s| without(s, &["uts"]), "invalid hostname 'runc'"),
        (
            "domainname",
            |s| {
                without(s, &["uts"]);
                s["hostname"] = "".into();
                s["domainname"] = "evil".into();
            },
            "invalid domainname 'evil'",
        ),
        (
            "net-sysctl",
            |s| {
                without(s, &["network"]);
                s["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
            },
            "invalid linux.sysctl 'net.ipv4.ip_forward'",
        ),
        (
            "ipc-sysctl",
            |s| {
                without(s, &["ipc"]);
                s["linux"]["sysctl"] = serde_json::json!({"kernel.shmmax": "1"});
            },
            "invalid linux.sysctl 'kernel.shmmax'",
        ),
    ];
    for (name, edit, msg) in cases {
        let Some(b) = Oci::sh("echo ran", edit) else { return };
        let (_, r) = run_wrapped(&b, &["-n", "-i", "-u", "-m", "--propagation", "private"], name);
        assert!(!r.stdout.contains("rc=0") && r.stdout.contains("rc="), "{name}: accepted: {}", r.stdout);
        assert!(!r.stdout.contains("ran"), "{name}: the process ran");
        assert!(r.stderr.contains(msg), "{name}: {}", r.stderr);
        assert!(b.left().is_empty(), "{name}: left {:?}", b.left());
        let ours = format!("sandbox-{name}-");
        let groups = std::fs::read_dir(own_pids_group()).unwrap().flatten();
        assert!(!groups.into_iter().any(|e| e.file_name().to_string_lossy().starts_with(&ours)), "{name}: group left");
    }
}

/// The v1 pids hierarchy, or the v2 one (pure cgroup v2: the VM's unified lane).
fn pids_hierarchy() -> std::path::PathBuf {
    let v1 = std::path::Path::new("/sys/fs/cgroup/pids");
    if v1.is_dir() {
        v1.to_path_buf()
    } else {
        "/sys/fs/cgroup".into()
    }
}

/// This process's group in the pids hierarchy: where the runtime it starts makes its groups.
fn own_pids_group() -> std::path::PathBuf {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let rel = own
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))
        .or_else(|| own.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string)))
        .unwrap_or_default();
    pids_hierarchy().join(rel.trim_start_matches('/'))
}

/// The attack: a hostPID container's root (runc's default capabilities, CAP_KILL among them)
/// sees every process of the shared pid namespace, the runtime's supervisor and the wrapper's
/// PID 1 included. Through /proc/PID/root, /proc/PID/cwd or /proc/PID/fd of one of them it would
/// read the host's files (the bundle's config.json is not in the container's root) or reach the
/// supervisor's status pipe (the fd numbers can be listed, as for any process of the same uid;
/// following or reading one of them is what must fail). The kernel's ptrace check must refuse every such open: the
/// supervisor and the wrapper keep capabilities the container does not have (commoncap), and
/// sandbox leaves nothing of its own reachable.
#[test]
fn oci_attack_host_pid_container_cannot_reach_the_runtime_or_host_through_proc_pid_root_or_fd() {
    require_root!();
    let _m = shared();
    let Some(b) = Oci::sh("", |s| without(s, &["pid"])) else { return };
    let bundle = b.bundle();
    let cfg = bundle.join("config.json");
    let script = format!(
        "own=$(cat /proc/self/cgroup); n=0; \
         for d in /proc/[0-9]*; do p=${{d#/proc/}}; \
           [ \"$(cat $d/cgroup 2>/dev/null)\" = \"$own\" ] && continue; n=$((n+1)); \
           cat $d/root{cfg} >/dev/null 2>&1 && echo LEAK-root-$p; \
           ls $d/cwd/ >/dev/null 2>&1 && echo LEAK-cwd-$p; \
           readlink $d/exe >/dev/null 2>&1 && echo LEAK-exe-$p; \
           readlink $d/fd/* 2>/dev/null | grep -q . && echo LEAK-fd-$p; \
           cat $d/environ >/dev/null 2>&1 && echo LEAK-environ-$p; \
         done; echo others=$n",
        cfg = cfg.display()
    );
    b.edit(|s| s["process"]["args"] = serde_json::json!(["sh", "-c", script]));
    let (_, r) = run_wrapped(&b, &["-p", "-f", "--mount-proc", "-m", "--propagation", "private"], "hostpid-attack");
    assert!(r.stdout.contains("rc=0"), "{}{}", r.stdout, r.stderr);
    let others = r.stdout.lines().find_map(|l| l.strip_prefix("others=")).unwrap_or("0");
    assert!(others.parse::<u32>().unwrap_or(0) >= 2, "the wrapper and the supervisor are visible: {}", r.stdout);
    assert!(!r.stdout.contains("LEAK"), "reached through /proc of another process:\n{}", r.stdout);
    assert!(b.left().is_empty(), "{:?}", b.left());
    // The probe itself works: given CAP_SYS_PTRACE, the same container does reach them.
    b.edit(|s| {
        for set in ["bounding", "effective", "permitted"] {
            s["process"]["capabilities"][set].as_array_mut().unwrap().push("CAP_SYS_PTRACE".into());
        }
    });
    let (_, r) = run_wrapped(&b, &["-p", "-f", "--mount-proc", "-m", "--propagation", "private"], "hostpid-ptrace");
    assert!(
        r.stdout.contains("LEAK-root-"),
        "the probe found nothing even with CAP_SYS_PTRACE:\n{}{}",
        r.stdout,
        r.stderr
    );
    assert!(b.left().is_empty(), "{:?}", b.left());
}
