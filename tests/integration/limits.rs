//! Each limit enforced by the kernel and reported from its counters.

use crate::harness::*;
use crate::require_root;

#[test]
fn fork_bomb_is_held_at_pids_max() {
    require_root!();
    let _m = shared();
    // The shell waits out the bomb with builtins only: `sleep` would need a fork, which the bomb
    // wins whenever it holds all 20 pids at that moment, and dash exits 2 on a failed fork (seen
    // in the unified VM lane under load: "Cannot fork").
    let wait = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done";
    let script = format!("b(){{ b|b& }}; b; {wait}; echo survived");
    // The timeout only bounds a broken run: the loop shares the CPU with 19 forking shells, and in
    // the legacy TCG lane on a slow day it took over 20 s (exit 124, 2026-12-02, twice).
    let r = sandbox(&["--pids", "20", "--timeout", "120s", "run", "sh", "-c", &script]);
    assert_eq!(r.code, 0, "the shell outlives its bomb: {}", r.stderr);
    assert!(r.stdout.contains("survived"));
    let rep = r.report();
    assert_eq!(rep["limits"]["pids"], 20);
    assert_eq!(rep["pids"]["peak"], 20, "{rep}");
    assert!(rep["pids"]["limit_hits"].as_u64().unwrap() > 0, "{rep}");
    assert!(r.stderr.contains("pids limit hit"), "human report says so: {}", r.stderr);
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    require_root!();
    let _m = shared();
    // dd with a 256 MiB block allocates and fills a 256 MiB buffer.
    let r = sandbox(&["--mem", "32M", "run", "dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"]);
    let rep = r.report();
    assert_eq!(r.code, 137, "{}", r.stderr);
    assert_eq!(rep["exit_code"], 137);
    assert_eq!(rep["signal"], 9);
    assert_eq!(rep["oom_killed"], true);
    assert!(rep["memory"]["oom_kills"].as_u64().unwrap() >= 1, "{rep}");
    let peak = rep["memory"]["peak_bytes"].as_u64().unwrap();
    assert!(peak <= 32 << 20 && peak > 16 << 20, "peak {peak} at the limit");
    assert_eq!(rep["limits"]["memory_bytes"], 32u64 << 20);
    assert!(r.stderr.contains("OOM kill"), "{}", r.stderr);
}

#[test]
fn memory_limit_allows_what_fits() {
    require_root!();
    let _m = shared();
    let r = sandbox(&["--mem", "64M", "run", "dd", "if=/dev/zero", "of=/dev/null", "bs=16M", "count=1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.report()["oom_killed"], false);
    assert!(r.report()["memory"]["peak_bytes"].as_u64().unwrap() >= 16 << 20);
}

#[test]
fn two_busy_loops_under_half_a_cpu_get_half_a_cpu() {
    require_root!();
    let _m = exclusive();
    let r =
        sandbox(&["--cpus", "0.5", "--timeout", "4s", "run", "sh", "-c", "while :; do :; done & while :; do :; done"]);
    let rep = r.report();
    assert_eq!(r.code, 124, "{}", r.stderr);
    let usage = rep["cpu"]["usage_s"].as_f64().unwrap();
    let wall = rep["wall_time_s"].as_f64().unwrap();
    let share = usage / wall;
    assert!(wall >= 3.0, "ran at least 3 s: {wall}");
    assert!((share - 0.5).abs() <= 0.5 * 0.15, "CPU share {share:.3} not within 15% of 0.5 ({rep})");
    assert!(rep["cpu"]["throttled_periods"].as_u64().unwrap() > 0, "{rep}");
    assert!(rep["cpu"]["throttled_s"].as_f64().unwrap() > 0.0, "{rep}");
    let user = rep["cpu"]["user_s"].as_f64().unwrap();
    assert!(user > usage * 0.5, "busy loops run in user mode: {rep}");
}

#[test]
fn report_carries_limits_and_counters() {
    require_root!();
    let _m = shared();
    let r = sandbox(&[
        "--mem",
        "64M",
        "--cpus",
        "1",
        "--pids",
        "50",
        "--timeout",
        "30s",
        "--report",
        "json",
        "run",
        "true",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = r.report();
    let stderr_json: serde_json::Value = serde_json::from_str(&r.stderr).expect("--report json prints JSON on stderr");
    assert_eq!(stderr_json["id"], rep["id"]);
    assert_eq!(rep["command"], serde_json::json!(["true"]));
    let l = &rep["limits"];
    assert_eq!(
        (&l["memory_bytes"], &l["cpus"], &l["pids"], &l["timeout_s"]),
        (&serde_json::json!(67108864u64), &serde_json::json!(1.0), &serde_json::json!(50), &serde_json::json!(30.0))
    );
    for k in ["memory_high_bytes", "swap_bytes", "cpu_weight", "cpuset_cpus", "cpuset_mems", "io_weight"] {
        assert!(l[k].is_null(), "limits.{k} not asked for: {l}");
    }
    assert_eq!((&l["io"], &l["cgroup_conf"]), (&serde_json::json!([]), &serde_json::json!([])));
    assert_eq!((rep["timed_out"].as_bool(), rep["oom_killed"].as_bool()), (Some(false), Some(false)));
    assert!(rep["signal"].is_null());
    let v = rep["cgroup"]["version"].as_u64().unwrap();
    let on_v2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains("cgroup2"));
    assert_eq!(v, if on_v2 { 2 } else { 1 });
    assert!(rep["cgroup"]["path"].as_str().unwrap().starts_with("/sys/fs/cgroup/"));
    for k in ["usage_s", "user_s", "system_s", "throttled_s"] {
        assert!(rep["cpu"][k].as_f64().is_some(), "cpu.{k} from the kernel: {rep}");
    }
    assert!(rep["memory"]["peak_bytes"].as_u64().unwrap() > 0);
    assert_eq!(rep["pids"]["peak"], 1);
    assert_eq!(rep["pids"]["limit_hits"], 0);
    if v == 2 {
        assert_eq!(rep["memory"]["oom_events"], 0, "v2 counts OOM events");
    }
    let r = sandbox(&["--report", "none", "run", "true"]);
    assert_eq!(r.stderr, "", "--report none prints nothing");
}

/// The keys of a JSON object, nested ones as "a.b".
fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut out = vec![];
    for (k, val) in v.as_object().unwrap() {
        match val.as_object() {
            Some(o) if k != "paths" => out.extend(o.keys().map(|s| format!("{k}.{s}"))),
            _ => out.push(k.clone()),
        }
    }
    out.sort();
    out
}

#[test]
fn library_example_returns_the_same_report_as_the_cli() {
    require_root!();
    let _m = shared();
    let exe = std::path::Path::new(SANDBOX).parent().unwrap().join("examples/library");
    if !exe.exists() {
        eprintln!("SKIPPED library example test: {} not built (cargo test --all-targets builds it)", exe.display());
        return;
    }
    let out = std::process::Command::new(&exe).args(["sh", "-c", "exit 4"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let lib: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli = sandbox(&["--mem", "64M", "--cpus", "0.5", "--pids", "20", "run", "sh", "-c", "exit 4"]);
    assert_eq!(keys(&lib), keys(cli.report()));
    assert_eq!(lib["limits"], cli.report()["limits"]);
    assert_eq!(lib["exit_code"], 4);
}
