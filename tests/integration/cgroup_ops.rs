//! The operations on a live run's group (issue 14, items 5 and 6) through the library: freeze and
//! thaw, limits changed under a running command, a stats snapshot and the process list. A
//! foreground `sandbox run` is started in the background; its group is found from
//! /proc/<command>/cgroup and worked on from this (multithreaded) test process: none of these
//! operations joins a namespace.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use sandbox::cgroup::{Cgroup, Host};

use crate::harness::*;
use crate::require_root;

/// A run in the background: its command reads lines from us (`ask`) and answers.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    pub group: Box<dyn Cgroup>,
    /// The command's host pid (the container's pid 1).
    pub pid: i32,
}

/// Each line read runs as `sh -c LINE`; the answer is `ok` or `fail`.
pub const SHELL: &str =
    "echo ready; while read c; do if sh -c \"$c\" >/dev/null 2>&1; then echo ok; else echo fail; fi; done";

impl Running {
    pub fn start(pre: &[&str], script: &str) -> Running {
        let mut child = Command::new(bin())
            .args(pre)
            .args(["--report", "none", "run", "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        let host = Host::detect(std::path::Path::new("/sys/fs/cgroup")).unwrap();
        // The command: the descendant of sandbox that is in a sandbox group.
        let mut todo = vec![child.id() as i32];
        let mut found = None;
        while let Some(p) = todo.pop() {
            let paths = host.group_of(p).unwrap_or_default();
            if !paths.is_empty() {
                found = Some((p, paths));
                break;
            }
            let kids = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
            todo.extend(kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()));
        }
        let (pid, paths) = found.expect("the command is in a sandbox group");
        Running { child, stdin, out, group: host.open(&paths).unwrap(), pid }
    }

    /// Sends `line` to the command's shell loop and returns its answer.
    pub fn ask(&mut self, line: &str) -> String {
        writeln!(self.stdin.as_mut().unwrap(), "{line}").unwrap();
        let mut a = String::new();
        self.out.read_line(&mut a).unwrap();
        a.trim().to_string()
    }

    /// Whether sandbox exits within `secs`.
    pub fn exits_within(&mut self, secs: f64) -> bool {
        eventually(secs, || self.child.try_wait().unwrap().is_some())
    }

    pub fn usage(&self) -> Duration {
        self.group.cpu_usage().expect("cpu usage readable")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL to the group (a frozen v1 group is thawed to let it die): sandbox sees its
        // command die, tears down and exits.
        self.group.kill();
        drop(self.stdin.take());
        let pid = self.child.id();
        let _ = self.child.wait();
        assert_no_groups_of(pid);
    }
}

#[test]
fn pause_freezes_the_whole_group_and_unpause_lets_it_run_again() {
    require_root!();
    let _m = shared();
    let r = Running::start(&["--mem", "64M"], "echo ready; while :; do :; done");
    let spin = |r: &Running| {
        let a = r.usage();
        std::thread::sleep(Duration::from_millis(300));
        r.usage() - a
    };
    assert!(spin(&r) > Duration::from_millis(10), "the loop runs");
    r.group.freeze(true).expect("pause");
    assert_eq!(r.group.frozen(), Some(true));
    // CPU time a task ran just before it froze may reach cpu.stat a little later (seen under
    // TCG in the v2 lane: 7 ms): the window starts once that settled.
    std::thread::sleep(Duration::from_millis(50));
    let frozen = spin(&r);
    assert!(frozen < Duration::from_millis(5), "paused, it still used {frozen:?} of CPU in 300 ms");
    r.group.freeze(false).expect("unpause");
    assert_eq!(r.group.frozen(), Some(false));
    assert!(spin(&r) > Duration::from_millis(10), "unpaused, the loop runs again");
    // Paused again: teardown must still end it (v1 frozen tasks die only once thawed).
    r.group.freeze(true).unwrap();
}

/// A container paused by the v1 freezer ignores SIGKILL until thawed: killing its groups in their
/// recorded order (blkio, cpu, … before freezer) waited the whole kill budget (5 s) per group.
#[test]
fn a_paused_container_dies_at_once_when_killed() {
    require_root!();
    let _m = shared();
    let mut r = Running::start(&["--mem", "64M"], "echo ready; while :; do :; done");
    r.group.freeze(true).unwrap();
    let paths = r.group.paths();
    let t = std::time::Instant::now();
    sandbox::cgroup::kill_dirs(paths.values().map(|p| p.as_path()));
    assert!(r.exits_within(3.0), "still running");
    assert!(t.elapsed() < Duration::from_secs(2), "killing a paused container took {:?}", t.elapsed());
}

#[test]
fn update_below_memory_usage_is_refused_and_changes_nothing() {
    require_root!();
    let _m = shared();
    let mut r = Running::start(&["--mem", "64M", "--pids", "50", "--cpus", "1"], SHELL);
    let limits_before = r.group.configured();
    assert_eq!(limits_before.memory_max, Some(64 << 20));
    let tiny = sandbox::Limits { memory_bytes: Some(4096), pids: Some(7), ..Default::default() };
    let e = r.group.update(&tiny).unwrap_err().to_string();
    assert!(e.contains("below the container's current memory usage") && e.contains("4.0 "), "{e}");
    assert_eq!(r.group.configured(), limits_before, "pids.max not written either");
    // A limit above: taken, on every file (v1: memsw raised first, else EINVAL).
    let more = sandbox::Limits { memory_bytes: Some(128 << 20), cpus: Some(0.5), ..Default::default() };
    r.group.update(&more).expect("update --mem 128M --cpus 0.5");
    assert_eq!(r.group.configured().memory_max, Some(128 << 20));
    let p = r.group.paths();
    let quota = match p.get("cpu") {
        Some(d) => std::fs::read_to_string(d.join("cpu.cfs_quota_us")).unwrap(),
        None => std::fs::read_to_string(r.group.path().join("cpu.max")).unwrap(),
    };
    assert!(quota.starts_with("50000"), "{quota}");
    assert_eq!(r.ask("true"), "ok");
}

#[test]
fn update_pids_makes_the_next_fork_fail() {
    require_root!();
    let _m = shared();
    let mut r = Running::start(&["--mem", "64M", "--pids", "50"], SHELL);
    assert_eq!(r.ask("(true)"), "ok");
    // One task more than now: the shell loop's `sh -c` fits, the subshell it forks does not (a
    // failed fork in the loop itself would end the loop).
    let now = sandbox::cgroup::live::read(r.group.as_ref()).now.pids.unwrap() + 1;
    r.group.update(&sandbox::Limits { pids: Some(now), ..Default::default() }).unwrap();
    assert_eq!(r.group.configured().pids_max, Some(now));
    assert_eq!(r.ask("(true)"), "fail", "a fork beyond pids.max {now}");
    r.group.update(&sandbox::Limits { pids: Some(now + 5), ..Default::default() }).unwrap();
    assert_eq!(r.ask("(true)"), "ok");
}

#[test]
fn stats_snapshot_matches_the_kernel_files() {
    require_root!();
    let _m = shared();
    let r = Running::start(&["--mem", "64M", "--pids", "20"], "echo ready; while :; do :; done");
    let a = sandbox::cgroup::live::read(r.group.as_ref());
    std::thread::sleep(Duration::from_millis(500));
    let b = sandbox::cgroup::live::read(r.group.as_ref());
    let l = sandbox::cgroup::live::between(&a, &b, sandbox::cgroup::live::host_memory());
    let cpu = l.cpu_percent.unwrap();
    // At most one CPU, give or take the VM lanes' clocks (TCG: 114 % seen).
    assert!(cpu > 5.0 && cpu < 130.0, "one busy loop: {cpu}%");
    assert_eq!((l.memory_limit_bytes, l.memory_limited), (Some(64 << 20), true));
    let p = r.group.paths();
    let file = |ctrl: &str, v1: &str, v2: &str| match p.get(ctrl) {
        Some(d) => std::fs::read_to_string(d.join(v1)).unwrap(),
        None => std::fs::read_to_string(r.group.path().join(v2)).unwrap(),
    };
    let mem: u64 = file("memory", "memory.usage_in_bytes", "memory.current").trim().parse().unwrap();
    let m = l.memory_bytes.unwrap();
    assert!(m > 0 && m.abs_diff(mem) < 4 << 20, "memory {m} vs the file's {mem}");
    assert!((l.memory_percent.unwrap() - m as f64 * 100.0 / (64 << 20) as f64).abs() < 1e-6);
    assert_eq!(l.pids, Some(file("pids", "pids.current", "pids.current").trim().parse().unwrap()));
    assert_eq!(l.pids_limit, Some(20));
    assert_eq!(l.frozen, Some(false));
    if r.group.version() == 2 {
        assert!(l.pressure_avg10.cpu.is_some(), "PSI on v2");
    }
    let json = serde_json::to_value(&l).unwrap();
    assert!(json["cpu_percent"].is_number() && json["pressure_avg10"].is_object(), "{json}");
}

#[test]
fn top_lists_the_command_as_pid_1_inside() {
    require_root!();
    let _m = shared();
    let mut r = Running::start(&["--mem", "64M"], SHELL);
    assert_eq!(r.ask("sleep 0"), "ok");
    let procs = sandbox::top::processes(r.group.as_ref());
    let first = procs.iter().find(|p| p.pid == r.pid).unwrap_or_else(|| panic!("{procs:?}"));
    assert_eq!(first.pid_inside, Some(1), "{procs:?}");
    assert_eq!(first.user, "root");
    assert!(first.command.starts_with("sh -c echo ready"), "{}", first.command);
    assert!(first.rss_bytes.unwrap() > 0);
    assert!(procs.iter().all(|p| p.pid_inside.is_some()));
}
