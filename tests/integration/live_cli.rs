//! `pause`, `unpause`, `update`, `stats` and `top` on the command line, against containers of a
//! temporary state root. Until `run -d` writes state, each container is a foreground run started
//! in the background (cgroup_ops::Running) that the test registers in the root itself, holding its
//! supervisor lock as `run` would.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sandbox::container::{CgroupState, Container, Process, Root, State, Status};

use crate::cgroup_ops::{Running, SHELL};
use crate::harness::*;
use crate::require_root;

/// A running container `name` in the state root `root` for `r`.
fn register(root: &std::path::Path, name: &str, r: &Running) -> Container {
    let mut s = State::new(sandbox::container::state::new_id(), name.into(), sandbox::Config::new(["sh"]));
    s.status = Status::Running;
    s.process = Process::of(r.pid);
    s.cgroup =
        Some(CgroupState { version: r.group.version(), path: r.group.path().to_path_buf(), paths: r.group.paths() });
    Root::create(root).unwrap().register(s).unwrap()
}

/// `sandbox --state-dir ROOT ARGS…`: (exit code, stdout, stderr).
fn cli(root: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).arg("--state-dir").arg(root).args(args).stdin(Stdio::null()).output().unwrap();
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), s(&out.stdout), s(&out.stderr))
}

fn status(root: &std::path::Path, name: &str) -> Status {
    Root::open(root).find(name).unwrap().state.status
}

#[test]
fn pause_stops_the_container_accruing_cpu_and_unpause_resumes_it() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let r = Running::start(&["--mem", "64M"], "echo ready; while :; do :; done");
    let _c = register(root.path(), "spin", &r);
    let spin = |r: &Running| {
        let a = r.usage();
        std::thread::sleep(Duration::from_millis(300));
        r.usage() - a
    };
    let (code, out, err) = cli(root.path(), &["pause", "spin"]);
    assert_eq!((code, out.as_str()), (0, "spin\n"), "{err}");
    assert_eq!(status(root.path(), "spin"), Status::Paused);
    std::thread::sleep(Duration::from_millis(50));
    let used = spin(&r);
    assert!(used < Duration::from_millis(5), "paused, it used {used:?} of CPU in 300 ms");
    let (code, _, err) = cli(root.path(), &["pause", "spin"]);
    assert_eq!(code, 125);
    assert!(err.contains("cannot pause container spin: it is already paused"), "{err}");
    let (code, _, err) = cli(root.path(), &["unpause", "spin"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status(root.path(), "spin"), Status::Running);
    assert!(spin(&r) > Duration::from_millis(10), "unpaused, it runs again");
    let (code, _, err) = cli(root.path(), &["unpause", "spin"]);
    assert_eq!(code, 125);
    assert!(err.contains("it is not paused"), "{err}");
}

#[test]
fn update_below_memory_usage_is_refused_on_the_command_line_and_nothing_changes() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let r = Running::start(&["--mem", "64M", "--pids", "50"], SHELL);
    let _c = register(root.path(), "web", &r);
    let (code, _, err) = cli(root.path(), &["update", "--mem", "4k", "--pids", "9", "web"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("below the container's current memory usage") && err.contains("nothing was changed"), "{err}");
    assert_eq!(r.group.configured().memory_max, Some(64 << 20), "limit unchanged");
    assert_eq!(r.group.configured().pids_max, Some(50), "no other limit written either");
    let limits = Root::open(root.path()).find("web").unwrap().state.config.limits;
    assert_eq!((limits.memory_bytes, limits.pids), (None, None), "state unchanged");
    let (code, _, err) = cli(root.path(), &["update", "--mem", "128M", "--cpus", "0.5", "web"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r.group.configured().memory_max, Some(128 << 20));
    let limits = Root::open(root.path()).find("web").unwrap().state.config.limits;
    assert_eq!((limits.memory_bytes, limits.cpus), (Some(128 << 20), Some(0.5)), "the state keeps the new limits");
}

#[test]
fn update_pids_on_the_command_line_makes_the_next_fork_fail() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let mut r = Running::start(&["--mem", "64M", "--pids", "50"], SHELL);
    let _c = register(root.path(), "forky", &r);
    assert_eq!(r.ask("(true)"), "ok");
    let n = sandbox::cgroup::live::read(r.group.as_ref()).now.pids.unwrap() + 1;
    let (code, _, err) = cli(root.path(), &["update", "--pids", &n.to_string(), "forky"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r.ask("(true)"), "fail", "a fork beyond --pids {n}");
}

#[test]
fn stats_json_figures_match_the_kernel_files() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let r = Running::start(&["--mem", "64M", "--pids", "20"], "echo ready; while :; do :; done");
    let _c = register(root.path(), "busy", &r);
    let (code, out, err) = cli(root.path(), &["stats", "--no-stream", "--format", "json", "--interval", "500ms"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{out}");
    let j = &lines[0];
    assert_eq!((j["name"].as_str(), j["status"].as_str()), (Some("busy"), Some("running")));
    let cpu = j["cpu_percent"].as_f64().unwrap();
    // At most one CPU, give or take the VM lanes' clocks (TCG: 114 % seen).
    assert!(cpu > 5.0 && cpu < 130.0, "one busy loop: {cpu}%");
    assert_eq!(j["memory_limit_bytes"].as_u64(), Some(64 << 20));
    let p = r.group.paths();
    let file = |ctrl: &str, v1: &str, v2: &str| match p.get(ctrl) {
        Some(d) => std::fs::read_to_string(d.join(v1)).unwrap(),
        None => std::fs::read_to_string(r.group.path().join(v2)).unwrap(),
    };
    let mem: u64 = file("memory", "memory.usage_in_bytes", "memory.current").trim().parse().unwrap();
    let m = j["memory_bytes"].as_u64().unwrap();
    assert!(m > 0 && m.abs_diff(mem) < 4 << 20, "memory {m} vs the file's {mem}");
    assert_eq!(j["pids"].as_u64(), file("pids", "pids.current", "pids.current").trim().parse().ok());
    assert_eq!(j["pids_limit"].as_u64(), Some(20));
    // The table: a header and a row.
    let (code, out, _) = cli(root.path(), &["stats", "--no-stream", "busy"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("CONTAINER ID") && out.lines().nth(1).unwrap().contains("busy"), "{out}");
    assert!(out.contains("64.0 MiB"), "{out}");
}

#[test]
fn top_shows_the_command_as_pid_1_inside() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let r = Running::start(&["--mem", "64M"], SHELL);
    let _c = register(root.path(), "tops", &r);
    let (code, out, err) = cli(root.path(), &["top", "tops"]);
    assert_eq!(code, 0, "{err}");
    let first = out.lines().find(|l| l.split_whitespace().next() == Some(&r.pid.to_string())).expect(&out);
    let cols: Vec<&str> = first.split_whitespace().collect();
    assert_eq!((cols[1], cols[2]), ("1", "root"), "{out}");
    assert!(first.contains("sh -c echo ready"), "{out}");
}

#[test]
fn live_operations_refuse_unknown_and_stopped_containers_and_change_nothing() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let r = Running::start(&["--mem", "64M"], SHELL);
    let mut c = register(root.path(), "gone", &r);
    for args in
        [&["pause", "nosuch"][..], &["update", "--mem", "1G", "nosuch"], &["top", "nosuch"], &["stats", "nosuch"]]
    {
        let (code, _, err) = cli(root.path(), args);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains("no such container: \"nosuch\""), "{args:?}: {err}");
    }
    c.update(|s| s.status = Status::Stopped).unwrap();
    let (code, _, err) = cli(root.path(), &["pause", "gone"]);
    assert_eq!(code, 125);
    assert!(err.contains("cannot pause container gone: it is stopped, not running"), "{err}");
    assert_eq!(r.group.frozen(), Some(false), "not frozen");
    let (code, _, err) = cli(root.path(), &["update", "--mem", "1G", "gone"]);
    assert_eq!(code, 125, "{err}");
    assert_eq!(r.group.configured().memory_max, Some(64 << 20));
    let (code, _, err) = cli(root.path(), &["update", "--timeout", "1s", "gone"]);
    assert_eq!(code, 125);
    assert!(err.contains("`update` changes only --mem"), "{err}");
}

/// issue 14 item 9: `stats --no-stream` with 100 containers ≤ 200 ms. 100 real groups (runs of
/// `sleep`), one state root; the time of the whole command.
#[test]
fn stats_no_stream_of_100_containers_within_200_ms() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let runs: Vec<Running> =
        (0..100).map(|_| Running::start(&["--mem", "32M", "--pids", "20"], "echo ready; exec sleep 60")).collect();
    let _cs: Vec<Container> =
        runs.iter().enumerate().map(|(i, r)| register(root.path(), &format!("c{i}"), r)).collect();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let (code, out, err) = cli(root.path(), &["stats", "--no-stream", "--format", "json"]);
        best = best.min(t.elapsed());
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 100);
    }
    eprintln!("MEASURED stats --no-stream, 100 containers: {best:?} (best of 3, {})", bin());
    let mut ps = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let (code, out, _) = cli(root.path(), &["ps"]);
        ps = ps.min(t.elapsed());
        assert_eq!((code, out.lines().count()), (0, 101));
    }
    eprintln!("MEASURED ps, 100 containers: {ps:?} (best of 3; the engine's, not asserted here)");
    // The figure is for a release build
    // (SANDBOX_TEST_BIN=target/x86_64-unknown-linux-gnu/release/sandbox); a debug build only has
    // to stay within 1 s.
    // Under QEMU/TCG (the VM lanes, ~10 times slower) a debug build took 1.09 s: 3 s there.
    let bound = if bin().contains("/release/") {
        200
    } else if std::env::var_os("SANDBOX_TEST_IN_VM").is_some() {
        3000
    } else {
        1000
    };
    assert!(best <= Duration::from_millis(bound), "{best:?}");
}

/// The same operations on a container started by `run -d` (the engine's state, its supervisor):
/// pause shows in `ps` and `stats`, update reaches the group, top shows pid 1 inside, and stop
/// of a paused container still ends it and leaves no group.
#[test]
fn detached_container_is_paused_updated_watched_and_stopped() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    let (code, id, err) =
        cli(d, &["--mem", "64M", "--pids", "20", "run", "-d", "--name", "det", "sh", "-c", "while :; do :; done"]);
    assert_eq!(code, 0, "{err}");
    let c = Root::open(d).find("det").unwrap();
    assert_eq!(c.id(), id.trim());
    let cg = c.state.cgroup.clone().expect("a group");
    let group = sandbox::cgroup::open(cg.version, &cg.paths).unwrap();
    assert_eq!(cli(d, &["pause", "det"]).0, 0);
    assert_eq!(group.frozen(), Some(true));
    let (_, ps, _) = cli(d, &["ps"]);
    assert!(ps.lines().nth(1).is_some_and(|l| l.contains("paused")), "{ps}");
    let (_, js, _) = cli(d, &["stats", "--no-stream", "--format", "json", "det"]);
    let j: serde_json::Value = serde_json::from_str(js.trim()).unwrap();
    assert_eq!((j["status"].as_str(), j["frozen"].as_bool()), (Some("paused"), Some(true)), "{js}");
    assert!(j["cpu_percent"].as_f64().unwrap() < 2.0, "paused: {js}");
    assert_eq!(cli(d, &["update", "--mem", "96M", "det"]).0, 0, "a paused container can be updated");
    assert_eq!(group.configured().memory_max, Some(96 << 20));
    assert_eq!(cli(d, &["unpause", "det"]).0, 0);
    let (code, top, err) = cli(d, &["top", "--format", "json", "det"]);
    assert_eq!(code, 0, "{err}");
    let procs: serde_json::Value = serde_json::from_str(&top).unwrap();
    assert_eq!(procs[0]["pid_inside"].as_i64(), Some(1), "{top}");
    assert_eq!(cli(d, &["pause", "det"]).0, 0);
    let t = Instant::now();
    assert_eq!(cli(d, &["stop", "-t", "1", "det"]).0, 0);
    assert!(t.elapsed() < Duration::from_secs(4), "stop of a paused container took {:?}", t.elapsed());
    let (code, _, err) = cli(d, &["pause", "det"]);
    assert_eq!(code, 125);
    assert!(err.contains("it is stopped, not running"), "{err}");
    assert_eq!(cli(d, &["rm", "det"]).0, 0);
    for p in cg.paths.values() {
        assert!(!p.exists(), "{} left", p.display());
    }
}

/// Without a terminal `stats` prints a block of lines per refresh, and ends (0) once the
/// containers it was given have stopped.
#[test]
fn stats_streams_lines_and_ends_when_its_containers_stop() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let r = Running::start(&["--mem", "64M"], "echo ready; exec sleep 60");
    let mut c = register(root.path(), "streamed", &r);
    let mut child = Command::new(bin())
        .arg("--state-dir")
        .arg(root.path())
        .args(["stats", "--interval", "200ms", "streamed"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = vec![];
    for _ in 0..4 {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut out, &mut l).unwrap();
        lines.push(l);
    }
    assert!(lines[0].starts_with("CONTAINER ID") && lines[2].starts_with("CONTAINER ID"), "{lines:?}");
    assert!(lines[1].contains("streamed") && lines[3].contains("streamed"), "{lines:?}");
    assert!(!lines.concat().contains('\x1b'), "no ANSI without a terminal");
    c.update(|s| s.status = Status::Stopped).unwrap();
    let ended = eventually(3.0, || child.try_wait().unwrap().is_some());
    if !ended {
        let _ = child.kill();
    }
    let st = child.wait().unwrap();
    assert!(ended && st.success(), "stats still running after its container stopped: {st:?}");
}

/// `stop` of a paused container: a frozen task cannot run its SIGTERM handler, so before the fix
/// the stop waited out the whole grace and ended the command with SIGKILL. As docker does, the
/// container is thawed once signalled: its handler runs and it ends at once, with its own status.
#[test]
fn stop_of_a_paused_container_lets_its_sigterm_handler_run() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    let script = "trap 'exit 7' TERM; while :; do sleep 0.05; done";
    let (code, _, err) = cli(d, &["run", "-d", "--init", "--name", "handler", "sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cli(d, &["pause", "handler"]).0, 0);
    let t = Instant::now();
    assert_eq!(cli(d, &["stop", "-t", "8", "handler"]).0, 0);
    let took = t.elapsed();
    let (_, code_out, _) = cli(d, &["wait", "handler"]);
    assert!(took < Duration::from_secs(4), "stop of a paused container took {took:?}: its handler did not run");
    assert_eq!(code_out.trim(), "7", "the command ended through its SIGTERM handler");
    assert_eq!(cli(d, &["rm", "handler"]).0, 0);
}
