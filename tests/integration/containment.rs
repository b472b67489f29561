//! Limits that the command cannot jam or slip: subgroups it makes inside its own group (with
//! CAP_SYS_ADMIN) are killed and removed with it, by teardown and by gc; TCP socket buffers count
//! against --mem on v1 too.
//!
//! These tests clean up after themselves even when sandbox does not (so they can be shown failing
//! on old code without leaving groups on the host): leftovers are killed and removed depth-first
//! here, and the test fails saying what was left.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::*;
use crate::require_root;

/// Mounts cgroupfs inside the run's cgroup namespace at /media (a --tmpfs), where the run's own
/// group is the root, makes `sub/subsub` in every hierarchy the run has a group in, puts a live
/// process in each of `sub` and `sub/subsub`, and prints "ready". On v1 one mount per controller
/// set (pids, memory, cpu and cpuacct apart or co-mounted); on pure v2 one cgroup2 mount.
const JAM: &str = r#"
set -e
jam() {
  mkdir -p "$1/sub/subsub"
  sleep 1000 & echo $! > "$1/sub/subsub/cgroup.procs"
  sleep 1000 & echo $! > "$1/sub/cgroup.procs"
}
sets=$(cut -d: -f2 /proc/self/cgroup | grep -xE 'memory|pids|cpu|cpuacct|cpu,cpuacct' || true)
if [ -n "$sets" ]; then
  for c in $sets; do mkdir -p "/media/$c"; mount -t cgroup -o "$c" none "/media/$c"; jam "/media/$c"; done
  # Hybrid: the run's own group in the cgroup2 at unified/ too. Only where the mount's root is not
  # the host's root cgroup (which has no cgroup.events): a build without that group roots it there.
  if grep -q '^0::' /proc/self/cgroup && mkdir -p /media/v2 && mount -t cgroup2 none /media/v2 2>/dev/null; then
    if [ -e /media/v2/cgroup.events ]; then jam /media/v2; fi
  fi
else
  mkdir -p /media/v2; mount -t cgroup2 none /media/v2; jam /media/v2
fi
echo ready
"#;

/// SIGKILLs every task under `dir` and removes it depth-first: the test's own cleanup of what an
/// old sandbox left (bounded, never outside a `sandbox-*-<pid>` group of a sandbox we started).
fn scrub(dir: &Path) {
    let mut all = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if let Ok(rd) = std::fs::read_dir(&all[i]) {
            all.extend(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
        i += 1;
    }
    for _ in 0..100 {
        let pids: Vec<i32> = all
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| t.lines().filter_map(|l| l.parse().ok()).collect::<Vec<i32>>())
            .collect();
        if pids.is_empty() {
            break;
        }
        for p in pids {
            // SAFETY: kill(2); the pid is in a group of a sandbox this test started.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for d in all.iter().rev() {
        for _ in 0..50 {
            if std::fs::remove_dir(d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// The groups sandbox `pid` left (with their subgroups), after scrubbing them off the host.
fn left_and_scrubbed(pid: u32) -> Vec<PathBuf> {
    let left = groups_of(pid);
    left.iter().for_each(|g| scrub(g));
    assert_no_groups_of(pid);
    left
}

/// Runs `sandbox --report-file F ARGS…` like the harness, but scrubs leftovers instead of
/// panicking first, and returns them.
fn run_jammed(args: &[&str]) -> (Run, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("report.json");
    let child = Command::new(SANDBOX)
        .arg("--report-file")
        .arg(&rf)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let left = left_and_scrubbed(pid);
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: std::fs::read_to_string(&rf).ok().and_then(|t| serde_json::from_str(&t).ok()),
    };
    (run, left)
}

#[test]
fn mkdir_inside_its_own_group_cannot_jam_teardown() {
    require_root!();
    let _m = shared();
    // --privileged: the command may mount cgroupfs. It exits at once; its processes in the
    // subgroups die with its pid namespace, the empty subgroups stay for teardown.
    let script = format!("{JAM}\nexit 0");
    let (r, left) = run_jammed(&["run", "--privileged", "--tmpfs", "/media", "sh", "-c", &script]);
    assert!(r.stdout.contains("ready"), "the attack ran: {}\n{}", r.stdout, r.stderr);
    assert!(left.is_empty(), "groups left behind: {left:?}\n{}", r.stderr);
    assert_eq!(r.code, 0, "the command's status, not a teardown failure: {}", r.stderr);
    assert_eq!(r.report()["exit_code"], 0, "a report, as for any run");
    assert!(!r.stderr.contains("cannot remove"), "{}", r.stderr);
}

#[test]
fn live_processes_in_subgroups_are_killed_with_the_run_on_timeout() {
    require_root!();
    let _m = shared();
    // CAP_SYS_ADMIN without --privileged; the command and its subgroups' processes stay alive
    // until --timeout kills the whole tree. 8 s: the set-up alone took over 2 s in a TCG VM lane.
    let script = format!("{JAM}\nsleep 1000");
    let t = std::time::Instant::now();
    let (r, left) = run_jammed(&[
        "--timeout",
        "8s",
        "run",
        "--cap-add",
        "SYS_ADMIN",
        "--seccomp",
        "unconfined",
        "--tmpfs",
        "/media",
        "sh",
        "-c",
        &script,
    ]);
    assert!(r.stdout.contains("ready"), "the attack ran: {}\n{}", r.stdout, r.stderr);
    assert!(left.is_empty(), "groups left behind: {left:?}\n{}", r.stderr);
    assert_eq!(r.code, 124, "{}", r.stderr);
    assert_eq!(r.report()["timed_out"], true);
    assert!(t.elapsed().as_secs_f64() < 20.0, "teardown is bounded: {:?}", t.elapsed());
}

/// Host processes whose command line is `sleep <marker>`.
fn sleeps(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == format!("sleep\0{marker}\0").as_bytes())
        })
        .collect()
}

#[test]
fn stale_group_with_subgroups_and_leftover_processes_is_killed_and_removed_by_gc() {
    require_root!();
    // Exclusive: every run collects stale groups first; no other run may do it for us here.
    let _m = exclusive();
    let mut sb = Command::new(SANDBOX)
        .args(["--report", "none", "run", "--privileged", "--tmpfs", "/media", "sh", "-c"])
        .arg(format!("{JAM}\nsleep 1000"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sb.stdout.take().unwrap()).read_line(&mut line).unwrap();
    // SIGKILLed sandbox: it cannot clean up; its command dies with it (PR_SET_PDEATHSIG).
    // SAFETY: kill(2) to a child we started.
    unsafe { libc::kill(sb.id() as i32, libc::SIGKILL) };
    sb.wait().unwrap();
    let stale = groups_of(sb.id());
    if line != "ready\n" || stale.is_empty() {
        left_and_scrubbed(sb.id());
        panic!("setup failed: printed {line:?}, stale groups {stale:?}");
    }
    // A leftover process in the deepest subgroup of every hierarchy (one that got there some
    // other way, or survived): a host process this test started.
    let marker = format!("7373.{}", std::process::id());
    let mut leftover = Command::new("sleep").arg(&marker).spawn().unwrap();
    let mut placed = 0;
    for g in &stale {
        let deep = g.join("sub/subsub/cgroup.procs");
        if deep.exists() && std::fs::write(&deep, leftover.id().to_string()).is_ok() {
            placed += 1;
        }
    }
    let gc = Command::new(SANDBOX).arg("gc").output().unwrap();
    let gc_out = String::from_utf8_lossy(&gc.stdout).into_owned();
    let survived = leftover.try_wait().unwrap().is_none() && !sleeps(&marker).is_empty();
    if survived {
        let _ = leftover.kill();
    }
    let status = leftover.wait().unwrap();
    let left = left_and_scrubbed(sb.id());
    assert!(placed > 0, "the leftover process went into a subgroup of {stale:?}");
    assert!(left.is_empty(), "gc left {left:?}; gc said: {gc_out}{}", String::from_utf8_lossy(&gc.stderr));
    assert!(!survived, "gc killed the leftover process");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
    assert!(gc.status.success());
    assert!(gc_out.contains(&format!("-{}", sb.id())), "gc lists what it removed: {gc_out}");
}

/// Pins kernel memory in loopback TCP buffers: a listener in the sandbox's own network namespace
/// that never reads, 64 clients with 32 MiB socket buffers writing until the kernel takes no more.
/// Prints "pinned N" (bytes written and never read: all of it sits in socket buffers) as it goes.
const TCP_PIN: &str = r#"
import socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 25)
srv.bind(("127.0.0.1", 0)); srv.listen(128)
port = srv.getsockname()[1]
conns, peers, total, shown = [], [], 0, 0
for _ in range(64):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 25)
    c.connect(("127.0.0.1", port))
    c.setblocking(False)
    conns.append(c)
    peers.append(srv.accept()[0])
chunk = b"x" * 65536
end, idle = time.time() + 10, time.time()
while time.time() < end and time.time() - idle < 1.5:
    moved = False
    for c in conns:
        if time.time() > end:
            break
        try:
            total += c.send(chunk)
            moved = True
        except (BlockingIOError, InterruptedError):
            pass
    if moved:
        idle = time.time()
    else:
        time.sleep(0.05)
    if total - shown >= 1 << 20 or not moved:
        shown = total
        print("pinned", total, flush=True)
print("pinned", total, flush=True)
"#;

#[test]
fn tcp_buffers_count_against_the_memory_limit() {
    require_root!();
    let _m = shared();
    let r = sandbox(&["--mem", "32M", "--timeout", "20s", "run", "python3", "-c", TCP_PIN]);
    let pinned = r.stdout.lines().filter_map(|l| l.strip_prefix("pinned ")?.parse::<u64>().ok()).max();
    let Some(pinned) = pinned else { panic!("the script did not run: {}\n{}", r.stdout, r.stderr) };
    let rep = r.report();
    eprintln!(
        "tcp_buffers: cgroup v{} exit {} pinned {} MiB, memory peak {}, tcp peak {}",
        rep["cgroup"]["version"],
        r.code,
        pinned >> 20,
        rep["memory"]["peak_bytes"],
        rep["memory"]["tcp_peak_bytes"]
    );
    // v2 charges socket buffers to the group with reclaim (GFP_KERNEL) from send(2): the writer
    // may be OOM-killed, or (the unified TCG lane, 6.1: no OOM kill, as a charge above order 3
    // skips it; the writer spends all its time in reclaim, sock 28 MiB of memory.current 32 MiB)
    // be so slow that --timeout ends it. Either way what it pinned stays bounded.
    assert!(r.code == 0 || rep["oom_killed"] == true || rep["timed_out"] == true, "{}", r.stderr);
    assert!(pinned > 1 << 20, "the attack ran: {pinned} bytes queued");
    // Before: 1015 MiB on this v1 host under --mem 32M (47 MiB in the 2 GiB legacy VM, where the
    // kernel's global tcp_mem stops it). The payload cannot exceed what is charged: at most the
    // limit, plus the few pages the kernel charges without asking (tcp peak 32.2 MiB here).
    assert!(pinned <= 40 << 20, "{} MiB pinned in TCP buffers under --mem 32M", pinned >> 20);
    if rep["cgroup"]["version"] == 1 {
        let tcp = rep["memory"]["tcp_peak_bytes"].as_u64();
        assert!(tcp.is_some_and(|t| t > 1 << 20 && t <= 40 << 20), "v1 reports its TCP peak: {rep}");
    } else {
        assert!(rep["memory"]["tcp_peak_bytes"].is_null(), "v2: part of memory.peak: {rep}");
    }
}

/// Every run first removes stale groups beside its own: `sandbox-<id>-<pid>` whose owner pid is
/// gone. A sandbox started in another pid namespace with its own /proc (`unshare -p
/// --mount-proc`, a CI job in a container whose cgroup view includes runs of the host) sees no
/// such pid for a live run of the host: it took the run for stale, spent seconds on v1 groups it
/// could not empty (their members read as pid 0 from there) and then SIGKILLed the run through
/// its cgroup2 group's cgroup.kill (found as stray 137s and slow starts of tests running beside
/// the podman test).
#[test]
fn a_sandbox_in_another_pid_namespace_never_kills_a_live_run_it_cannot_see() {
    require_root!();
    let _m = shared();
    let script = "trap 'echo survived; exit 0' TERM; sleep 30 & wait";
    let outer = Command::new(bin())
        .args(["--report", "none", "run", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let owner = outer.id();
    // Ended on every path (a failed assertion included): sandbox forwards the TERM to sh.
    struct Outer(std::process::Child);
    impl Drop for Outer {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), nix::sys::signal::SIGTERM);
            let _ = self.0.wait();
        }
    }
    let mut outer = Outer(outer);
    assert!(eventually(5.0, || !groups_of(owner).is_empty()), "the outer run made no group");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t = std::time::Instant::now();
    let inner = Command::new("timeout")
        .args(["-k", "2", "20", "unshare", "-m", "--propagation", "private", "-p", "-f", "--mount-proc"])
        .args([bin().as_str(), "--report", "none", "run", "true"])
        .output()
        .unwrap();
    let took = t.elapsed();
    let alive = outer.0.try_wait().unwrap().is_none();
    let mut stdout = outer.0.stdout.take().unwrap();
    let code = {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(owner as i32), nix::sys::signal::SIGTERM);
        outer.0.wait().unwrap().code()
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
    let out = (code, text);
    let why = String::from_utf8_lossy(&inner.stderr);
    assert!(inner.status.success(), "the run in another pid namespace: {:?} after {took:?}: {why}", inner.status);
    assert!(alive, "the live run was killed by a sandbox in another pid namespace");
    assert!(took < std::time::Duration::from_secs(5), "the run in another pid namespace took {took:?}");
    assert_eq!(out.0, Some(0), "{}", out.1);
    assert!(out.1.contains("survived"), "{}", out.1);
    assert_no_groups_of(owner);
}

/// The reverse of the test above: the host's gc read the pid in the name of a group made by a
/// sandbox inside a child pid namespace (a container, `unshare -p`) as a host pid. That pid was
/// some other process or none: when none, the host took the live run for stale and killed it.
/// The inner sandbox here gets a pid that no host process has (ns_last_pid), and the host's
/// `sandbox gc` runs while its command does. Groups now name their owner's pid namespace.
#[test]
fn the_host_gc_never_kills_a_live_run_of_a_sandbox_in_a_child_pid_namespace() {
    require_root!();
    let _m = shared();
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
    let n = (1000..pid_max).rev().find(|p| !Path::new(&format!("/proc/{p}")).exists()).unwrap();
    let script = format!(
        "echo {} > /proc/sys/kernel/ns_last_pid && {} --report none run sh -c 'sleep 2; echo inner-done'; echo rc=$?",
        n - 1,
        bin()
    );
    let inner = Command::new("timeout")
        .args(["-k", "2", "30", "unshare", "-m", "--propagation", "private", "-p", "-f", "--mount-proc"])
        .args(["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (plain, named) = (format!("-{n}"), format!("-{n}-ns"));
    let ours = |name: &str| name.starts_with("sandbox-") && (name.ends_with(&plain) || name.contains(&named));
    let made = eventually(5.0, || !cgroup_dirs_where(ours).is_empty());
    let gc = Command::new(bin()).arg("gc").output().unwrap();
    let out = inner.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        made,
        "the inner sandbox (pid {n} of its namespace) made no group: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert!(text.contains("inner-done") && text.contains("rc=0"), "the host's gc killed the inner run: {text}");
    assert!(cgroup_dirs_where(ours).is_empty(), "{:?}", cgroup_dirs_where(ours));
}

/// A sandbox that is PID 1 of its pid namespace (a container's entry point) named its groups
/// `sandbox-<id>-1`; SIGKILLed, it took its namespace and its run with it, but every gc on the
/// host saw its own PID 1 alive and kept those groups for ever. Named with their pid namespace,
/// they are removed once no process is left in it. The inner sandbox keeps its state records
/// apart, as one in a container does (its own /run): the host's gc finds its groups by name only.
#[test]
fn a_sigkilled_sandbox_that_was_pid_1_of_its_namespace_leaves_no_group_after_gc() {
    require_root!();
    let _m = shared();
    let records = state_root();
    let mut inner = Command::new("unshare")
        .env("SANDBOX_STATE_DIR", records.path())
        .args(["-m", "--propagation", "private", "-p", "-f", "--mount-proc", bin().as_str()])
        .args(["--report", "none", "run", "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sandbox, group) = inner_run(inner.id());
    let (Some(sandbox), Some(group)) = (sandbox, group) else {
        let _ = inner.kill();
        let _ = inner.wait();
        panic!("the inner sandbox's run made no group");
    };
    let dirs = cgroup_dirs_where(|n| n == group);
    assert!(!dirs.is_empty(), "{group}");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(sandbox as i32), nix::sys::signal::SIGKILL);
    let _ = inner.wait();
    let gc = Command::new(bin()).arg("gc").output().unwrap();
    let left = cgroup_dirs_where(|n| n == group);
    // Whatever this left (empty, its processes died with their namespace) goes, pass or fail.
    for d in &left {
        let _ = std::fs::remove_dir(d);
    }
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert!(left.is_empty(), "the host's gc kept the groups of a SIGKILLed PID 1 sandbox: {left:?}");
}

/// The sandbox that `unshare … -f` (pid `unshare`) started as its namespace's PID 1, and the name
/// of its run's group (a descendant of that sandbox is in it), once both exist (5 s at most).
fn inner_run(unshare: u32) -> (Option<u32>, Option<String>) {
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    let mut sandbox = None;
    let mut group = None;
    eventually(5.0, || {
        sandbox = children(unshare).first().copied();
        let mut todo = sandbox.map(&children).unwrap_or_default();
        while let Some(p) = todo.pop() {
            let cg = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
            group =
                cg.lines().filter_map(|l| l.rsplit('/').next()).find(|n| n.starts_with("sandbox-")).map(String::from);
            if group.is_some() {
                return true;
            }
            todo.extend(children(p));
        }
        false
    });
    (sandbox, group)
}

/// gc judged a run named with another pid namespace stale when no process it could see was in
/// that namespace. But reading a process's /proc/PID/ns/pid needs ptrace access, and a gc (or any
/// `sandbox run`, which starts with one) without CAP_SYS_PTRACE (a systemd unit's bounding set,
/// `capsh --drop`) cannot read it for a run's non-dumpable sandbox: the namespace looked empty and
/// gc SIGKILLed the live run. A namespace it cannot see into is now never judged empty.
#[test]
fn a_gc_without_cap_sys_ptrace_never_kills_a_live_run_in_a_child_pid_namespace() {
    require_root!();
    let _m = shared();
    if !have_tools(&["setpriv"], "util-linux") {
        return;
    }
    let records = state_root();
    let inner = Command::new("timeout")
        .env("SANDBOX_STATE_DIR", records.path())
        .args([
            "-k",
            "2",
            "30",
            "unshare",
            "-m",
            "--propagation",
            "private",
            "-p",
            "-f",
            "--mount-proc",
            bin().as_str(),
        ])
        .args(["--report", "none", "run", "sh", "-c", "sleep 3; echo inner-done"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `timeout` runs unshare, which forks the sandbox: the walk starts at unshare.
    let mut unshare = None;
    eventually(5.0, || {
        unshare = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", inner.id()))
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()));
        unshare.is_some()
    });
    let group = unshare.and_then(|u| inner_run(u).1);
    let gc =
        Command::new("setpriv").args(["--bounding-set", "-sys_ptrace", "--", bin().as_str(), "gc"]).output().unwrap();
    let out = inner.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(group.is_some(), "the inner run made no group: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert!(
        text.contains("inner-done") && out.status.success(),
        "a gc without CAP_SYS_PTRACE killed the inner run ({:?}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let group = group.unwrap();
    assert!(eventually(5.0, || cgroup_dirs_where(|n| n == group).is_empty()), "{group} left");
}
