//! Containers that live on their own (issue 14): run -d, ps, logs, stop, kill, wait, rm, report,
//! inspect, names, a lost supervisor, and the state root out of the command's reach. Each test
//! has a fresh state root; whatever it leaves is removed (`rm -f`) when it ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::require_root;

/// A fresh state root; every container still in it is removed with `rm -f` on drop.
pub(crate) struct States(tempfile::TempDir);

impl States {
    pub(crate) fn new() -> States {
        States(state_root())
    }

    pub(crate) fn dir(&self) -> &Path {
        self.0.path()
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.env("SANDBOX_STATE_DIR", self.dir()).args(args).stdin(Stdio::null());
        c
    }

    /// Runs `sandbox ARGS…` to its end.
    pub(crate) fn sb(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            report: None,
        }
    }

    /// `run -d ARGS…`: the id it printed (asserting it succeeded).
    pub(crate) fn detach(&self, args: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        let r = self.sb(&a);
        assert_eq!(r.code, 0, "run -d {args:?}: {}", r.stderr);
        r.stdout.trim().to_string()
    }

    /// The state.json of container `id` (64 hex digits).
    pub(crate) fn state(&self, id: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir().join(id).join("state.json")).unwrap()).unwrap()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        std::fs::read_dir(self.dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64)
            .collect()
    }
}

impl Drop for States {
    fn drop(&mut self) {
        let ids = self.ids();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(ids.iter().map(String::as_str));
            let _ = self.cmd(&a).output();
        }
    }
}

/// The cgroup directories and the command's process of a container, from its state.
pub(crate) fn footprint(state: &Value) -> (Vec<PathBuf>, Option<(i32, u64)>) {
    let dirs = state["cgroup"]["paths"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_str()).map(PathBuf::from).collect())
        .unwrap_or_default();
    let p = &state["process"];
    let proc = p["pid"].as_i64().map(|pid| (pid as i32, p["start_time"].as_u64().unwrap()));
    (dirs, proc)
}

/// Whether process (pid, start time) still runs (not a zombie, not a reused pid).
pub(crate) fn alive((pid, start): (i32, u64)) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let rest = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    !matches!(f[0], "Z" | "X") && f[19].parse::<u64>().ok() == Some(start)
}

/// Nothing left of a container: no process, no group, no state directory.
pub(crate) fn assert_gone(s: &States, id: &str, state: &Value) {
    let (dirs, proc) = footprint(state);
    assert!(!dirs.is_empty(), "the container had a group: {state}");
    for d in &dirs {
        assert!(eventually(5.0, || !d.exists()), "group {} left", d.display());
    }
    if let Some(p) = proc {
        assert!(eventually(5.0, || !alive(p)), "process {p:?} left");
    }
    assert!(!s.dir().join(id).exists(), "state directory left");
}

#[test]
fn run_d_returns_at_once_and_logs_keep_stdout_and_stderr_apart() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let t = Instant::now();
    let id = s.detach(&[
        "--name",
        "apart",
        "sh",
        "-c",
        "echo out; echo err >&2; sleep 0.3; printf 'a\\nb\\nc\\n'; sleep 30",
    ]);
    assert!(t.elapsed() < Duration::from_secs(3), "run -d waited for the command: {:?}", t.elapsed());
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(s.state(&id)["status"], "running");
    assert!(eventually(5.0, || s.sb(&["logs", "apart"]).stdout.contains("c\n")));
    let l = s.sb(&["logs", "apart"]);
    assert_eq!((l.code, l.stdout.as_str(), l.stderr.as_str()), (0, "out\na\nb\nc\n", "err\n"));
    let l = s.sb(&["logs", "--tail", "2", &id[..12]]);
    assert_eq!(l.stdout, "b\nc\n");
    let l = s.sb(&["logs", "-t", "apart"]);
    let first = l.stdout.lines().next().unwrap();
    let (ts, line) = first.split_once(' ').unwrap();
    assert!(ts.ends_with('Z') && ts.contains('T') && line == "out", "{first}");
    let l = s.sb(&["logs", "--since", "1h", "apart"]);
    assert_eq!(l.stdout, "out\na\nb\nc\n");
    let l = s.sb(&["logs", "--since", "2999-01-01T00:00:00Z", "apart"]);
    assert_eq!((l.code, l.stdout.as_str()), (0, ""));
    // -f follows until the container stops.
    let id2 = s.detach(&["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"]);
    let t = Instant::now();
    let l = s.sb(&["logs", "-f", &id2]);
    assert_eq!((l.code, l.stdout.as_str()), (0, "1\n2\n3\n"), "{}", l.stderr);
    assert!(t.elapsed() < Duration::from_secs(5), "logs -f did not end with the container: {:?}", t.elapsed());
}

#[test]
fn run_d_with_a_tty_logs_what_the_pty_shows() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let id = s.detach(&["-t", "sh", "-c", "tty; echo hi"]);
    assert_eq!(s.sb(&["wait", &id]).stdout, "0\n");
    let l = s.sb(&["logs", &id]);
    assert!(l.stdout.contains("/dev/pts/0\r\n") && l.stdout.contains("hi\r\n"), "{:?}", l.stdout);
}

#[test]
fn run_d_of_a_missing_command_exits_127_and_leaves_nothing() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let r = s.sb(&["run", "-d", "--name", "missing", "--mem", "32M", "no-such-command-x"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(r.stderr.contains("command not found: 'no-such-command-x'"), "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert!(s.ids().is_empty(), "state left: {:?}", s.ids());
    assert!(std::fs::read_dir(s.dir().join("names")).unwrap().next().is_none(), "name left");
    // The name is free again.
    let id = s.detach(&["--name", "missing", "true"]);
    assert_eq!(s.sb(&["wait", "missing"]).stdout, "0\n", "{id}");
    let r = s.sb(&["run", "-d", "/etc/passwd"]);
    assert_eq!(r.code, 126, "{}", r.stderr);
}

#[test]
fn ps_lists_running_containers_all_with_a_ids_only_with_q_and_json() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let run = s.detach(&["--name", "up", "--mem", "32M", "--pids", "20", "sleep", "60"]);
    let done = s.detach(&["--name", "done", "true"]);
    assert_eq!(s.sb(&["wait", "done"]).stdout, "0\n");
    let ps = s.sb(&["ps"]);
    let lines: Vec<&str> = ps.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", ps.stdout);
    for col in ["ID", "NAME", "IMAGE/COMMAND", "STATUS", "CPU%", "MEM/LIMIT", "PIDS"] {
        assert!(lines[0].contains(col), "{}", lines[0]);
    }
    assert!(lines[1].starts_with(&run[..12]) && lines[1].contains(" up ") && lines[1].contains("running"));
    assert!(lines[1].contains("/ 32.0 MiB"), "{}", lines[1]);
    let all = s.sb(&["ps", "-a"]).stdout;
    assert!(all.contains(&done[..12]) && all.contains("stopped (0)"), "{all}");
    assert_eq!(s.sb(&["ps", "-q"]).stdout, format!("{}\n", &run[..12]));
    assert_eq!(s.sb(&["ps", "-aq"]).stdout.lines().count(), 2);
    let j: Value = serde_json::from_str(&s.sb(&["ps", "--format", "json"]).stdout).unwrap();
    let row = &j[0];
    assert_eq!(
        (row["id"].as_str(), row["name"].as_str(), row["status"].as_str()),
        (Some(&run[..]), Some("up"), Some("running"))
    );
    assert_eq!(row["memory_limit_bytes"], 32 << 20);
    assert!(row["pids"].as_u64().is_some() && row["pid"].as_i64().is_some(), "{row}");
}

#[test]
fn two_runs_racing_for_one_name_one_wins_the_other_exits_125_and_leaves_nothing() {
    require_root!();
    let _m = shared();
    let s = States::new();
    for round in 0..5 {
        let name = format!("race{round}");
        let kids: Vec<_> = (0..2)
            .map(|_| {
                s.cmd(&["run", "-d", "--name", &name, "sleep", "30"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<_> = kids.into_iter().map(|k| k.wait_with_output().unwrap()).collect();
        let mut codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap()).collect();
        codes.sort();
        assert_eq!(codes, vec![0, 125], "round {round}");
        let winner = outs.iter().find(|o| o.status.success()).unwrap();
        let loser = outs.iter().find(|o| !o.status.success()).unwrap();
        let id = String::from_utf8_lossy(&winner.stdout).trim().to_string();
        let msg = String::from_utf8_lossy(&loser.stderr);
        assert!(msg.contains(&format!("name \"{name}\" is already in use by {id}")), "{msg}");
        assert_eq!(s.ids().iter().filter(|i| s.state(i)["name"] == name.as_str()).count(), 1);
    }
    assert_eq!(s.ids().len(), 5, "the losers left nothing");
}

#[test]
fn unknown_and_ambiguous_names_exit_125_and_change_nothing() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let id = s.detach(&["--name", "real", "true"]);
    assert_eq!(s.sb(&["wait", "real"]).stdout, "0\n");
    // A second (stopped) container whose id shares the first 3 digits.
    let twin: String =
        id[..3].to_string() + &id[3..].chars().map(|c| if c == 'f' { 'e' } else { 'f' }).collect::<String>();
    let mut st = s.state(&id);
    st["id"] = twin.clone().into();
    st["name"] = "twin".into();
    std::fs::create_dir(s.dir().join(&twin)).unwrap();
    std::fs::write(s.dir().join(&twin).join("state.json"), st.to_string()).unwrap();
    for cmd in [vec!["stop"], vec!["kill"], vec!["wait"], vec!["rm"], vec!["logs"], vec!["inspect"], vec!["report"]] {
        let mut a = cmd.clone();
        a.push(&id[..3]);
        let r = s.sb(&a);
        assert_eq!(r.code, 125, "{a:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("ambiguous container \"{}\": it matches ", &id[..3])),
            "{a:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(&id[..12]) && r.stderr.contains(&twin[..12]), "{}", r.stderr);
        let mut a = cmd.clone();
        a.push("nosuch");
        let r = s.sb(&a);
        assert_eq!(r.code, 125, "{a:?}: {}", r.stderr);
        assert!(r.stderr.contains("no such container: \"nosuch\""), "{a:?}: {}", r.stderr);
    }
    assert_eq!(s.ids().len(), 2, "nothing removed");
    assert_eq!(s.sb(&["inspect", &id[..4]]).code, 0, "a longer prefix is unique");
}

#[test]
fn stop_of_a_command_that_ignores_sigterm_kills_it_after_the_grace_and_the_report_says_stopped() {
    require_root!();
    let _m = shared();
    let s = States::new();
    // With --init the command is not PID 1: SIGTERM reaches it, and it ignores it.
    let id = s.detach(&["--init", "--name", "stubborn", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]);
    let before = s.state(&id);
    let t = Instant::now();
    let r = s.sb(&["stop", "-t", "2", "stubborn"]);
    let took = t.elapsed();
    assert_eq!((r.code, r.stdout.as_str()), (0, "stubborn\n"), "{}", r.stderr);
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(4), "stop took {took:?}");
    let st = s.state(&id);
    assert_eq!(
        (st["status"].as_str(), st["reason"].as_str(), st["exit_code"].as_i64()),
        (Some("stopped"), Some("stopped"), Some(137))
    );
    let rep: Value = serde_json::from_str(&s.sb(&["--report", "json", "report", "stubborn"]).stdout).unwrap();
    assert_eq!(rep["termination_reason"], "stopped");
    assert_eq!(rep["stopped"]["killed"], true);
    let human = s.sb(&["report", "stubborn"]).stdout;
    assert!(human.contains("stopped by SIGTERM (then SIGKILL)"), "{human}");
    let (dirs, proc) = footprint(&before);
    assert!(dirs.iter().all(|d| !d.exists()) && !alive(proc.unwrap()));
    // A stopped container: stop says so and succeeds, as docker's.
    let r = s.sb(&["stop", "stubborn"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "stubborn\n"));
}

#[test]
fn kill_sends_the_signal_and_wait_prints_the_exit_code() {
    require_root!();
    let _m = shared();
    let s = States::new();
    s.detach(&["--name", "k", "sh", "-c", "trap 'echo got USR1; exit 7' USR1; while :; do sleep 0.05; done"]);
    assert!(eventually(5.0, || s.state(&s.ids()[0])["status"] == "running"));
    std::thread::sleep(Duration::from_millis(200));
    let r = s.sb(&["kill", "-s", "USR1", "k"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "k\n"), "{}", r.stderr);
    let w = s.sb(&["wait", "k"]);
    assert_eq!((w.code, w.stdout.as_str()), (0, "7\n"));
    assert_eq!(s.sb(&["logs", "k"]).stdout, "got USR1\n");
    let r = s.sb(&["kill", "k"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("container k is not running"), "{}", r.stderr);
    let r = s.sb(&["kill", "-s", "NOPE", "k"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid --signal 'NOPE'"), "{}", r.stderr);
    // --timeout is enforced by the supervisor.
    s.detach(&["--name", "late", "--timeout", "1s", "sleep", "100"]);
    assert_eq!(s.sb(&["wait", "late"]).stdout, "124\n");
}

#[test]
fn rm_refuses_a_running_container_without_f_and_then_leaves_no_group_state_or_process() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let id = s.detach(&["--name", "busy", "--mem", "32M", "--pids", "20", "sh", "-c", "sleep 100 & sleep 100"]);
    let st = s.state(&id);
    let r = s.sb(&["rm", "busy"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("cannot remove container busy: it is running"), "{}", r.stderr);
    assert_eq!(s.state(&id)["status"], "running", "nothing changed");
    let r = s.sb(&["rm", "-f", "busy"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "busy\n"), "{}", r.stderr);
    assert_gone(&s, &id, &st);
    assert_eq!(s.sb(&["ps", "-aq"]).stdout, "");
    // A stopped one goes without -f, its log and report with it.
    let id = s.detach(&["--name", "quick", "echo", "hi"]);
    let st = s.state(&id);
    s.sb(&["wait", "quick"]);
    assert!(s.dir().join(&id).join("log.jsonl").exists() && s.dir().join(&id).join("report.json").exists());
    assert_eq!(s.sb(&["rm", "quick"]).code, 0);
    assert_gone(&s, &id, &st);
    // --rm: gone by itself; a wait still gets its exit code.
    let id = s.detach(&["--rm", "--name", "gone", "sh", "-c", "sleep 0.5; exit 4"]);
    assert_eq!(s.sb(&["wait", "gone"]).stdout, "4\n");
    assert!(eventually(5.0, || !s.dir().join(&id).exists()), "--rm left the state");
}

#[test]
fn a_sigkilled_supervisor_takes_its_container_along_and_ps_or_gc_mark_it_supervisor_lost() {
    require_root!();
    let _m = shared();
    for via in ["ps", "gc"] {
        let s = States::new();
        let id = s.detach(&["--name", "orphan", "--mem", "32M", "sh", "-c", "sleep 100 & sleep 100"]);
        let st = s.state(&id);
        let sup = st["supervisor"]["pid"].as_i64().unwrap() as i32;
        // SAFETY: kill(2) of the supervisor this test started (its pid from the state it wrote).
        unsafe { libc::kill(sup, libc::SIGKILL) };
        let (dirs, proc) = footprint(&st);
        assert!(eventually(5.0, || !alive(proc.unwrap())), "the command outlived its supervisor");
        let r = s.sb(&[via, "-a"][..if via == "ps" { 2 } else { 1 }]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        if via == "ps" {
            assert!(r.stdout.contains("stopped (supervisor lost)"), "{}", r.stdout);
        } else {
            assert!(r.stdout.contains("supervisor lost"), "{}", r.stdout);
        }
        let now = s.state(&id);
        assert_eq!((now["status"].as_str(), now["reason"].as_str()), (Some("stopped"), Some("supervisor lost")));
        for d in &dirs {
            assert!(!d.exists(), "group {} left", d.display());
        }
        let w = s.sb(&["wait", "orphan"]);
        assert_eq!((w.code, w.stdout.as_str()), (125, ""), "its exit status went with its supervisor: {}", w.stderr);
        assert_eq!(s.sb(&["rm", "orphan"]).code, 0);
        assert!(s.ids().is_empty());
    }
}

#[test]
fn the_log_rotates_once_at_log_max_size_and_log_driver_none_keeps_nothing() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let id = s.detach(&[
        "--log-max-size",
        "64K",
        "sh",
        "-c",
        "i=0; while [ $i -lt 8000 ]; do echo line $i; i=$((i+1)); done",
    ]);
    assert_eq!(s.sb(&["wait", &id]).stdout, "0\n");
    let cur = std::fs::metadata(s.dir().join(&id).join("log.jsonl")).unwrap().len();
    let old = std::fs::metadata(s.dir().join(&id).join("log.jsonl.1")).unwrap().len();
    assert!(cur <= 64 << 10 && old <= 64 << 10, "log {cur} and log.1 {old} over 64K");
    assert!(!s.dir().join(&id).join("log.jsonl.2").exists());
    let out = s.sb(&["logs", &id]).stdout;
    assert!(out.ends_with("line 7999\n"), "the newest lines are kept");
    let id = s.detach(&["--name", "mute", "--log-driver", "none", "echo", "secret"]);
    assert_eq!(s.sb(&["wait", "mute"]).stdout, "0\n");
    let r = s.sb(&["logs", "mute"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("logs are not kept for mute (--log-driver none)"), "{}", r.stderr);
    assert!(!s.dir().join(&id).join("log.jsonl").exists());
    let r = s.sb(&["run", "-d", "--log-driver", "syslog", "true"]);
    assert_eq!(r.code, 125);
    assert!(s.ids().len() == 2, "a bad value creates nothing");
}

#[test]
fn a_foreground_run_shows_in_ps_while_it_runs_and_is_gone_after() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let mut fg = s.cmd(&["--report", "none", "run", "--name", "fg", "sleep", "1.5"]).spawn().unwrap();
    assert!(eventually(5.0, || s.sb(&["ps"]).stdout.contains(" fg ")), "not listed while running");
    assert!(eventually(5.0, || s.sb(&["inspect", "fg"]).stdout.contains("\"running\"")));
    let i = s.sb(&["inspect", "fg"]);
    let j: Value = serde_json::from_str(&i.stdout).unwrap();
    assert_eq!(j[0]["State"]["Status"], "running");
    assert_eq!(j[0]["State"]["Detached"], false);
    assert!(j[0]["State"]["Pid"].as_i64().is_some());
    assert!(fg.wait().unwrap().success());
    assert_eq!(s.sb(&["ps", "-a"]).stdout.lines().count(), 1, "only the header");
    assert!(s.ids().is_empty());
    // `sandbox stop` reaches a foreground run too (its supervisor is `sandbox run` itself).
    let mut fg = s.cmd(&["--report", "none", "run", "--name", "fg2", "sleep", "30"]).spawn().unwrap();
    assert!(eventually(5.0, || s.sb(&["ps"]).stdout.contains(" fg2 ")));
    assert!(eventually(5.0, || s.sb(&["inspect", "fg2"]).stdout.contains("\"running\"")));
    assert_eq!(s.sb(&["stop", "fg2"]).code, 0);
    let st = fg.wait().unwrap();
    assert_eq!(st.code(), Some(137), "PID 1 without a handler is killed at once");
}

#[test]
fn inspect_and_report_show_config_state_cgroup_and_the_final_report() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let id = s.detach(&["--name", "ins", "--mem", "48M", "--pids", "30", "-e", "FOO=bar", "sleep", "30"]);
    let j: Value = serde_json::from_str(&s.sb(&["inspect", "ins"]).stdout).unwrap();
    let c = &j[0];
    assert_eq!((c["Id"].as_str(), c["Name"].as_str()), (Some(id.as_str()), Some("ins")));
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["Limits"]["memory_bytes"], 48 << 20);
    assert_eq!(c["Config"]["limits"]["pids"], 30);
    assert!(c["Config"]["env"].as_array().unwrap().iter().any(|e| e == "FOO=bar"));
    assert!(c["Cgroup"]["paths"].as_object().is_some_and(|m| !m.is_empty()));
    assert!(c["Report"].is_null());
    let r = s.sb(&["report", "ins"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("no report for container ins: it is running"), "{}", r.stderr);
    s.sb(&["stop", "-t", "0", "ins"]);
    let j: Value = serde_json::from_str(&s.sb(&["inspect", "ins"]).stdout).unwrap();
    assert_eq!(j[0]["Report"]["id"].as_str(), Some(&id[..12]), "the report's id is the short id");
    assert_eq!(j[0]["State"]["ExitCode"], 137);
    let h = s.sb(&["report", "ins"]).stdout;
    assert!(h.starts_with(&format!("sandbox {}: `sleep 30`", &id[..12])), "{h}");
}

/// Item 8: many detached containers at once, all listed, all stopped within the grace + 2 s,
/// nothing left after rm.
#[test]
fn a_hundred_detached_containers_are_listed_stopped_within_the_grace_and_removed_without_trace() {
    require_root!();
    let _m = shared();
    let s = States::new();
    const N: usize = 100;
    let t = Instant::now();
    let ids: Vec<String> = (0..N)
        .map(|i| {
            // Half handle SIGTERM (and end at once), half ignore it behind --init (killed at the
            // end of the grace).
            let script = if i % 2 == 0 { "trap 'exit 0' TERM; sleep 1000 & wait" } else { "trap '' TERM; sleep 1000" };
            let mut a = vec!["--mem", "32M", "--pids", "20"];
            if i % 2 == 1 {
                a.push("--init");
            }
            a.extend(["sh", "-c", script]);
            s.detach(&a)
        })
        .collect();
    eprintln!("{N} detached runs started in {:?}", t.elapsed());
    let states: Vec<Value> = ids.iter().map(|i| s.state(i)).collect();
    let t = Instant::now();
    let q = s.sb(&["ps", "-q"]);
    eprintln!("ps -q with {N} containers: {:?}", t.elapsed());
    assert_eq!(q.stdout.lines().count(), N, "{}", q.stderr);
    let listed: Vec<&str> = q.stdout.lines().collect();
    let mut a = vec!["stop", "-t", "3"];
    a.extend(listed.iter().copied());
    let t = Instant::now();
    let r = s.sb(&a);
    let took = t.elapsed();
    eprintln!("stop of {N}: {took:?}");
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The bound, grace + 2 s, on a real kernel. Under QEMU/TCG (the VM lanes) everything
    // runs ~10 times slower (the 100 runs took 45 s to start, ps 0.3 s): stop of 100 took 7.7 s
    // there; on a slower machine (2026-12-01: 65 s to start the 100, whole lanes 2,400 s against
    // 1,560) it took 16.5 s in both lanes while the host's took 3.3 s. So the lanes allow grace +
    // 20 s: they check that every container ends and nothing is left, the host checks the time.
    let bound = if std::env::var_os("SANDBOX_TEST_IN_VM").is_some() { 23 } else { 5 };
    assert!(took < Duration::from_secs(bound), "stop took {took:?}, more than the grace + {} s", bound - 3);
    assert_eq!(s.sb(&["ps", "-q"]).stdout, "");
    let mut a = vec!["rm"];
    a.extend(listed.iter().copied());
    assert_eq!(s.sb(&a).code, 0);
    for (id, st) in ids.iter().zip(&states) {
        assert_gone(&s, id, st);
    }
    assert!(std::fs::read_dir(s.dir().join("names")).unwrap().next().is_none(), "names left");
}

/// Attack: a command that is root inside its container rewrites its own state and report (to
/// say it was stopped cleanly, or to point the group at another one for `rm` to kill) and forges
/// log lines. The state root is not in its view (an empty read-only tmpfs covers it), and the
/// log is written only by the supervisor from the command's pipes.
#[test]
fn a_hostile_command_cannot_forge_its_state_report_or_log() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let dir = s.dir().to_str().unwrap().to_string();
    let script = format!(
        "exec 2>/dev/null; ls -A {dir} | wc -l; for f in {dir}/*/state.json {dir}/*/report.json; do echo '{{}}' > $f && echo FORGED $f; done; \
         mkdir {dir}/x && echo FORGED mkdir; echo '{{\"stream\":\"stderr\",\"log\":\"fake\"}}'; exit 3"
    );
    let id = s.detach(&["--name", "hostile", "sh", "-c", &script]);
    assert_eq!(s.sb(&["wait", "hostile"]).stdout, "3\n");
    let out = s.sb(&["logs", "hostile"]);
    assert!(!out.stdout.contains("FORGED"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().next(), Some("0"), "the state root looked empty inside");
    assert_eq!(out.stderr, "", "a forged line is logged as the stdout text it is");
    assert!(out.stdout.contains("{\"stream\":\"stderr\",\"log\":\"fake\"}"));
    let st = s.state(&id);
    assert_eq!((st["id"].as_str(), st["exit_code"].as_i64()), (Some(id.as_str()), Some(3)));
    let rep: Value = serde_json::from_str(&s.sb(&["--report", "json", "report", "hostile"]).stdout).unwrap();
    assert_eq!(rep["exit_code"], 3);
}

/// Item 8: supervisors SIGKILLed at random moments of their lives (while the container is being
/// created, just started, or long running): after `gc` nothing is left: no group, no process, no
/// container that still says it runs.
#[test]
fn supervisors_killed_at_random_moments_leave_nothing_after_gc() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let marker = format!("4242.{}", std::process::id());
    let mut sups = vec![];
    for i in 0..12u64 {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
        let delay = Duration::from_micros((seed ^ (i * 7919)) % 150_000);
        let before = s.ids();
        let mut front = s.cmd(&["run", "-d", "--mem", "32M", "--pids", "20", "sh", "-c"]);
        front.arg(format!("sleep {marker} & sleep {marker}")).stdout(Stdio::null()).stderr(Stdio::null());
        let mut front = front.spawn().unwrap();
        std::thread::sleep(delay);
        // The new container's supervisor, as soon as it has said who it is.
        let mut sup = None;
        eventually(5.0, || {
            let new: Vec<String> = s.ids().into_iter().filter(|i| !before.contains(i)).collect();
            sup = new.first().and_then(|id| {
                let st: Value =
                    serde_json::from_str(&std::fs::read_to_string(s.dir().join(id).join("state.json")).ok()?).ok()?;
                let p = st["supervisor"]["pid"].as_i64()? as i32;
                (p != front.id() as i32).then_some(p)
            });
            sup.is_some()
        });
        let Some(pid) = sup else {
            // It ended before it could be caught (a failure would have left nothing either).
            front.wait().unwrap();
            continue;
        };
        // SAFETY: kill(2) of the supervisor this test started (its pid from the state it wrote).
        unsafe { libc::kill(pid, libc::SIGKILL) };
        front.wait().unwrap();
        sups.push(pid as u32);
    }
    assert!(sups.len() >= 6, "only {} supervisors caught", sups.len());
    let gc = s.sb(&["gc"]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    for pid in &sups {
        assert!(groups_of(*pid).is_empty(), "groups of supervisor {pid} left: {:?}", groups_of(*pid));
    }
    assert!(
        eventually(5.0, || procs_named("sleep", &marker).is_empty()),
        "commands left: {:?}",
        procs_named("sleep", &marker)
    );
    for id in s.ids() {
        let st = s.state(&id);
        assert_eq!((st["status"].as_str(), st["reason"].as_str()), (Some("stopped"), Some("supervisor lost")), "{st}");
    }
    assert_eq!(s.sb(&["ps", "-q"]).stdout, "", "nothing listed as running");
}

/// A `stop` that races `run -d` while its supervisor has not yet recorded itself (the state still
/// names the front process until the created record): the stop is queued in the state or reaches
/// the supervisor, never the front alone. Every container ends within the grace: stopped with
/// its record, or, stopped before its command ran, gone as a failed run is (the front says so
/// and fails); no group or process is left either way.
#[test]
fn a_stop_racing_a_detached_runs_creation_ends_it_and_leaves_nothing() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let marker = format!("60.{}", std::process::id());
    let (mut recorded, mut gone) = (0, 0);
    for i in 0..12 {
        let name = format!("race{i}");
        let front = s
            .cmd(&["run", "-d", "--name", &name, "sleep", &marker])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // As soon as the name exists (a link to the ID, relative to the root: not followed here):
        // the supervisor is forked or about to be.
        let link = s.dir().join("names").join(&name);
        let t = Instant::now();
        while link.symlink_metadata().is_err() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_micros(100));
        }
        // The link holds the id's first 48 hex digits.
        let id48 = std::fs::read_link(&link).expect("named").to_string_lossy().into_owned();
        let t = Instant::now();
        let r = s.sb(&["stop", "-t", "1", &name]);
        assert_eq!(r.code, 0, "stop {name}: {}", r.stderr);
        assert!(t.elapsed() < Duration::from_secs(8), "stop {name} took {:?}", t.elapsed());
        let out = front.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if let Some(id) = s.ids().into_iter().find(|i| i.starts_with(&id48)) {
            recorded += 1;
            let w = s.sb(&["wait", &name]);
            assert_eq!(w.code, 0, "wait {name}: {}", w.stderr);
            let st = s.state(&id);
            assert_eq!(st["status"], "stopped", "{name}: {st}");
        } else {
            gone += 1;
            assert!(!out.status.success() && err.contains("ended before its command ran"), "{name}: {err}");
            assert!(link.symlink_metadata().is_err(), "{name}: the name outlives its container");
        }
        let prefix = format!("sandbox-{}-", &id48[..12]);
        let groups = cgroup_dirs_where(|n| n.starts_with(&prefix));
        assert!(groups.is_empty(), "{name}: groups left: {groups:?}");
    }
    assert!(
        eventually(5.0, || procs_named("sleep", &marker).is_empty()),
        "commands left: {:?}",
        procs_named("sleep", &marker)
    );
    eprintln!("{recorded} stopped with their record, {gone} stopped before their command ran");
}
