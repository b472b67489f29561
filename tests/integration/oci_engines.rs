//! containerd driving sandbox-runc end to end (issue 15 item 4): containerd started by the test
//! with its own root, state and sockets under a temp dir, in a private mount namespace with a
//! tmpfs over /run (the shim's runc root and sockets are fixed under /run/containerd), stopped by
//! pid with every shim it started.
//!
//! containerd's runc shim learns that a task's init ended as its subreaper, by reaping the pid of
//! `--pid-file`: sandbox-runc's `create` clones the init as its own child (not its supervisor's)
//! so that it becomes the shim's, as runc's does. Before that, `ctr run` of a command that exits
//! waited forever and a killed task stayed RUNNING. The pod pair (`--with-ns`) joins the first
//! container's net and ipc namespaces by path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::*;
use crate::require_root;

/// The script the test runs inside `unshare -m`: containerd up, the checks, everything stopped by
/// pid (containerd, and each shim by its shim.pid). Prints `ok NAME` per check passed.
const SCRIPT: &str = r#"
set -u
T=$1; RUNC=$2; ROOTFS=$3; PART=$4
mount -t tmpfs -o mode=0755 sandbox-test-run /run || exit 90
cat > $T/config.toml <<C
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$T/c.sock"
[ttrpc]
  address = "$T/c.sock.ttrpc"
[debug]
  address = "$T/debug.sock"
C
containerd --config $T/config.toml > $T/containerd.log 2>&1 &
CPID=$!
stop() {
  # The shims this containerd started (their command line names its socket), by pid.
  for p in /proc/[0-9]*; do
    case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in
      *containerd-shim*"-address $T/c.sock"*) kill -KILL "${p#/proc/}" 2>/dev/null ;;
    esac
  done
  kill $CPID; wait $CPID
}
trap stop EXIT
for i in $(seq 200); do [ -S $T/c.sock ] && break; sleep 0.05; done
[ -S $T/c.sock ] || { echo "containerd did not start"; tail -5 $T/containerd.log; exit 91; }
C="timeout -k 2 20 ctr -a $T/c.sock"
R="--runc-binary $RUNC --cgroup="
if [ "$PART" = tasks ]; then
$C run $R --rootfs $ROOTFS t1 sh -c 'exit 3'; [ $? = 3 ] && echo "ok exit-code"
$C run $R -d --rootfs $ROOTFS t2 sleep 60 && echo "ok run-detached"
out=$($C task exec --exec-id e1 t2 sh -c 'echo in-exec; exit 4'); [ $? = 4 ] && [ "$out" = in-exec ] && echo "ok exec"
$C task kill -s KILL t2 && sleep 1 && $C task ls | grep -q 't2.*STOPPED' && echo "ok kill"
$C task rm t2 && $C c rm t2 && [ ! -e /run/containerd/runc/default/t2 ] && echo "ok delete"
# 137 also when timeout's KILL ends ctr: only a quick one is the OOM kill.
s=$SECONDS; $C run $R --memory-limit 33554432 --rootfs $ROOTFS t3 sh -c 'x=a; while :; do x=$x$x; done'
[ $? = 137 ] && [ $((SECONDS - s)) -lt 15 ] && echo "ok oom"
exit 0
fi
$C run $R -d --rootfs $ROOTFS t4 sleep 60
P=$($C task ls | awk '$1 == "t4" {print $2}')
$C run $R --with-ns network:/proc/$P/ns/net --with-ns ipc:/proc/$P/ns/ipc --rootfs $ROOTFS t5 \
  sh -c "[ \$(readlink /proc/self/ns/net) = $(readlink /proc/$P/ns/net) ] && [ \$(readlink /proc/self/ns/ipc) = $(readlink /proc/$P/ns/ipc) ]" \
  && echo "ok with-ns"
"#;

/// Runs SCRIPT's `part` (tasks or pod) against sandbox-runc; `None` when it cannot run here
/// (said loudly). The checks that passed, the containerd log, the temp dir.
fn containerd(part: &str) -> Option<(String, String, tempfile::TempDir)> {
    if !have_tools(&["containerd", "ctr", "containerd-shim-runc-v2"], "containerd") {
        return None;
    }
    let rootfs = busybox_rootfs()?;
    let dir = scratch_dir("containerd-");
    let t = dir.path();
    let runc: PathBuf = t.join("sandbox-runc");
    std::os::unix::fs::symlink(bin(), &runc).unwrap();
    // Bounded: a task whose end the shim never sees must not hold the test forever.
    let out = Command::new("timeout")
        .args(["-k", "5", "180", "unshare", "--mount", "--propagation", "private", "bash", "-c", SCRIPT, "script"])
        .arg(t)
        .arg(&runc)
        .arg(rootfs.path())
        .arg(part)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    if matches!(out.status.code(), Some(90 | 91)) {
        eprintln!("SKIPPED: containerd could not be started here: {text}");
        return None;
    }
    let log = std::fs::read_to_string(t.join("containerd.log")).unwrap_or_default();
    Some((text, log, dir))
}

#[test]
fn containerd_sees_the_init_end_exit_codes_kill_delete_exec_and_oom_through_sandbox_runc() {
    require_root!();
    let Some((text, log, dir)) = containerd("tasks") else { return };
    for check in ["exit-code", "run-detached", "exec", "kill", "delete", "oom"] {
        assert!(text.contains(&format!("ok {check}\n")), "containerd check {check} failed:\n{text}\n{log}");
    }
    assert!(!Path::new(&dir.path().join("state/io.containerd.runtime.v2.task/default/t2")).exists());
}

#[test]
fn containerd_pod_pair_joins_the_first_containers_net_and_ipc_through_sandbox_runc() {
    require_root!();
    let Some((text, log, _dir)) = containerd("pod") else { return };
    assert!(text.contains("ok with-ns\n"), "containerd check with-ns failed:\n{text}\n{log}");
}
