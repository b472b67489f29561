//! The report's accounting keys of issue 13 against workloads whose truth is known: io bytes,
//! the termination reason of every ending, the run's start and end, and the user/system split.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use crate::harness::*;
use crate::require_root;

const EXT4: i64 = 0xEF53;
const XFS: i64 = 0x5846_5342;
const BTRFS: i64 = 0x9123_683E;

/// A writable directory on a real disk filesystem (not tmpfs, not 9p): /var/tmp on the host,
/// the scratch virtio disk tests/vm/init mounts at /mnt in the VM lanes.
fn disk_dir() -> Option<(tempfile::TempDir, PathBuf)> {
    for c in ["/var/tmp", "/mnt"] {
        let Ok(fs) = nix::sys::statfs::statfs(c) else { continue };
        if ![EXT4, XFS, BTRFS].contains(&fs.filesystem_type().0) {
            continue;
        }
        if let Ok(t) = tempfile::Builder::new().prefix("sandbox-io-").tempdir_in(c) {
            let p = t.path().to_path_buf();
            return Some((t, p));
        }
    }
    None
}

/// Whether v1 blk-throttle is set up on every disk here (the blkio root lists each one that has a
/// size): then sandbox gives the run's group a never-reached rule on each and the kernel counts
/// the run's I/O. Not on Linux 6.9+ before some group set a rule on each disk (see
/// src/cgroup/v1/blkio.rs).
fn v1_blkio_counts() -> bool {
    let root = std::fs::read_to_string("/sys/fs/cgroup/blkio/blkio.throttle.io_service_bytes").unwrap_or_default();
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default().trim().to_string();
    std::fs::read_dir("/sys/block").unwrap().flatten().filter(|e| read(e.path().join("size")) != "0").all(|e| {
        let dev = read(e.path().join("dev"));
        root.lines().any(|l| l.starts_with(&format!("{dev} ")))
    })
}

fn on_v2() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains("cgroup2"))
}

/// `dd … conv=fsync` of 64 MiB into a file on a disk: io.write_bytes must count all of it.
/// Where the kernel counts nothing (v1 on Linux 6.9+ without a throttle rule), the figures must
/// be null, never a made-up 0.
#[test]
fn io_write_bytes_counts_64_mib_written_with_fsync() {
    require_root!();
    let _m = shared();
    let Some((_keep, dir)) = disk_dir() else {
        eprintln!("SKIPPED io_write_bytes_counts_64_mib_written_with_fsync: no disk-backed writable /var/tmp or /mnt");
        return;
    };
    let file = dir.join("out");
    // v1 has no cgroup writeback: pages a flusher thread writes back before the fsync (a slow,
    // loaded VM with little RAM) are charged to the root group, not the run (the legacy lane once
    // counted 48 of 64 MiB). O_DIRECT writes are submitted by dd itself, so v1 counts them all;
    // v2 charges buffered writeback to the run's group, so it is checked with the page cache.
    let direct = if on_v2() { "" } else { " oflag=direct" };
    let dd = format!("dd if=/dev/zero of={} bs=1M count=64 conv=fsync{direct} 2>&1", file.display());
    let counts = on_v2() || v1_blkio_counts();
    let r = sandbox(&["run", "--bind", dir.to_str().unwrap(), "sh", "-c", &dd]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 64 << 20);
    let io = &r.report()["io"];
    assert!(io.is_object(), "the report has io figures (or nulls): {}", r.report());
    if !counts {
        for k in ["read_bytes", "write_bytes", "read_ops", "write_ops"] {
            assert!(io[k].is_null(), "blk-throttle counts nothing here: io.{k} must be null, not invented: {io}");
        }
        eprintln!(
            "SKIPPED io_write_bytes_counts_64_mib_written_with_fsync (the >= 64 MiB part): cgroup v1 on Linux {} \
             counts blkio.throttle.* only on disks some group has a throttle rule for (6.9+), not every disk here \
             has one, and sandbox does not set blk-throttle up on the host's disks for good: the report says null, \
             as it must. The legacy VM lane (6.1) checks the figure.",
            std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()
        );
        return;
    }
    eprintln!("io: {io}");
    let wb = io["write_bytes"].as_u64().unwrap_or_else(|| panic!("io.write_bytes known here: {io}"));
    assert!(wb >= 64 << 20, "64 MiB written with fsync, io.write_bytes {wb}: {io}");
    // Issue 13's target: within 1% of what was written (the journal is written by jbd2, which is
    // not in the run's group; the file's own metadata may add a few blocks).
    assert!(wb <= (64 << 20) + (64 << 20) / 100, "64 MiB written, io.write_bytes {wb} is more than 1% over: {io}");
    eprintln!("io.write_bytes {wb} for 67108864 written ({:+.3}%)", (wb as f64 / 67108864.0 - 1.0) * 100.0);
    assert!(io["write_ops"].as_u64().unwrap() > 0, "{io}");
    assert!(r.stderr.contains("\n  io      read "), "the human report has an io line: {}", r.stderr);
}

fn reason(args: &[&str]) -> (serde_json::Value, String) {
    let r = sandbox(args);
    (r.report()["termination_reason"].clone(), r.stderr)
}

/// One verdict per ending, as a judge needs it.
#[test]
fn termination_reason_names_exit_signal_timeout_oom_and_stop() {
    require_root!();
    let _m = shared();
    assert_eq!(reason(&["run", "sh", "-c", "exit 3"]).0, "exit");
    // With --init the command is not PID 1, so it can die of an ordinary signal.
    assert_eq!(reason(&["run", "--init", "sh", "-c", "kill -TERM $$"]).0, "signal");
    assert_eq!(reason(&["--timeout", "300ms", "run", "sleep", "10"]).0, "timeout");
    let (oom, err) = reason(&["--mem", "32M", "run", "dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"]);
    assert_eq!(oom, "oom", "{err}");

    // A stop: SIGTERM to sandbox while the command runs.
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r.json");
    let mut c = Command::new(bin())
        .arg("--report-file")
        .arg(&rf)
        .args(["--report", "none", "run", "sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // SAFETY: kill(2) of the sandbox this test started.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let _ = c.wait().unwrap();
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&rf).unwrap()).unwrap();
    assert_eq!(rep["termination_reason"], "stopped", "{rep}");
    assert_no_groups_of(c.id());
}

/// started_at and ended_at are RFC 3339, in order, around the run, wall_time_s apart.
#[test]
fn started_at_is_not_after_ended_at() {
    require_root!();
    let _m = shared();
    let before = SystemTime::now();
    let r = sandbox(&["run", "sleep", "0.2"]);
    let after = SystemTime::now();
    let rep = r.report();
    let t = |k: &str| {
        let s = rep[k].as_str().unwrap_or_else(|| panic!("{k}: {rep}"));
        assert!(s.ends_with('Z') && s.contains('T'), "{k} is RFC 3339 UTC: {s}");
        humantime::parse_rfc3339(s).unwrap()
    };
    let (start, end) = (t("started_at"), t("ended_at"));
    // The report keeps microseconds: allow for the truncation.
    let us = Duration::from_micros(1);
    assert!(before <= start + us && start <= end && end <= after, "{before:?} {start:?} {end:?} {after:?}");
    let wall = rep["wall_time_s"].as_f64().unwrap();
    let span = end.duration_since(start).unwrap().as_secs_f64();
    assert!((span - wall).abs() < 1e-5 && wall >= 0.2, "ended_at - started_at {span} vs wall {wall}");
}

/// The user/system split against getrusage, as /usr/bin/time inside the run reports it, on a
/// CPU burner under --cpus 0.5. On v1 the report took cpuacct.usage_user/usage_sys, which are
/// tick-sampled: under CFS throttling user time came out several % too high (3.17 s against
/// /usr/bin/time's 3.02 s), user above the total. Now within 1% (+ /usr/bin/time's 10 ms).
#[test]
fn v1_user_time_under_cpus_is_not_overstated() {
    require_root!();
    let _m = exclusive();
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("SKIPPED v1_user_time_under_cpus_is_not_overstated: no /usr/bin/time (Debian package time)");
        return;
    }
    // About 1.5 s of CPU in dash, all of it in user mode (a fifth of it in the VM lanes, where TCG
    // makes it ten times slower or more).
    let n = if std::env::var_os("SANDBOX_TEST_IN_VM").is_some() { 300_000 } else { 1_500_000 };
    let burn = format!("i=0; while [ $i -lt {n} ]; do i=$((i+1)); done");
    let r = sandbox(&["--cpus", "0.5", "run", "/usr/bin/time", "-f", "TIME %U %S", "sh", "-c", &burn]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r.stderr.lines().find(|l| l.starts_with("TIME ")).unwrap_or_else(|| panic!("{}", r.stderr));
    let f: Vec<f64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    let (tu, ts) = (f[0], f[1]);
    let cpu = &r.report()["cpu"];
    let (user, system, usage) =
        (cpu["user_s"].as_f64().unwrap(), cpu["system_s"].as_f64().unwrap(), cpu["usage_s"].as_f64().unwrap());
    eprintln!("report user {user:.3} system {system:.3} usage {usage:.3}; /usr/bin/time user {tu:.2} system {ts:.2}");
    assert!(user + system <= usage * 1.001 + 1e-6, "user + system above the total: {cpu}");
    let tol = 0.01 * tu + 0.011;
    assert!((user - tu).abs() <= tol, "user {user:.3} vs /usr/bin/time {tu:.2} (±{tol:.3}): {cpu}");
    assert!((system - ts).abs() <= 0.01 * tu + 0.011, "system {system:.3} vs /usr/bin/time {ts:.2}: {cpu}");
}

/// The pressure figures are the run's own stall time wherever the kernel has PSI: on pure v2 from
/// the run's group, on a hybrid host from the group sandbox also makes in the controller-less
/// cgroup2 at /sys/fs/cgroup/unified (there they were null: v1 groups have no pressure files).
/// Pure v1 (or `psi=0`): null, and these tests skip.
fn psi_or_skip(test: &str) -> bool {
    if cgroup2_with_psi().is_none() {
        eprintln!("SKIPPED {test}: no PSI here (no /proc/pressure, or no cgroup2 hierarchy): pressure is null");
        return false;
    }
    true
}

fn pressure(rep: &serde_json::Value, res: &str) -> Option<f64> {
    rep["pressure"][res]["some_s"].as_f64()
}

/// A memory hog at a tight --mem: the kernel reclaims against the limit before the OOM kill, and
/// reclaim is a memory stall (v1's limit reclaim enters it too, counted in the cgroup2 group).
#[test]
fn memory_hog_at_its_limit_shows_memory_pressure_on_hybrid_too() {
    require_root!();
    let _m = shared();
    if !psi_or_skip("memory_hog_at_its_limit_shows_memory_pressure_on_hybrid_too") {
        return;
    }
    let r = sandbox(&["--mem", "32M", "run", "dd", "if=/dev/zero", "of=/dev/null", "bs=48M", "count=1"]);
    let rep = r.report();
    assert_eq!(rep["termination_reason"], "oom", "{}", r.stderr);
    let some = pressure(rep, "memory");
    assert!(some.is_some_and(|s| s > 0.0), "memory.pressure some after reclaim at the limit: {}", rep["pressure"]);
}

/// Two busy loops under --cpus 0.5: one waits while the other runs (and both while throttled),
/// so cpu.pressure's `some` grows; the samples carry the same figures as they go.
#[test]
fn two_busy_loops_under_half_a_cpu_show_cpu_pressure_in_report_and_samples() {
    require_root!();
    let _m = shared();
    if !psi_or_skip("two_busy_loops_under_half_a_cpu_show_cpu_pressure_in_report_and_samples") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sf = dir.path().join("s.jsonl");
    let busy = "yes >/dev/null & a=$!; yes >/dev/null & b=$!; sleep 1; kill $a $b";
    let r = sandbox(&["--cpus", "0.5", "--samples", sf.to_str().unwrap(), "run", "sh", "-c", busy]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep = r.report();
    let cpu = pressure(rep, "cpu");
    assert!(cpu.is_some_and(|s| s > 0.05), "cpu.pressure some of two loops on half a CPU: {}", rep["pressure"]);
    assert!(pressure(rep, "memory").is_some() && pressure(rep, "io").is_some(), "known, if 0: {}", rep["pressure"]);
    let text = std::fs::read_to_string(&sf).unwrap();
    let samples: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("t_s").is_some())
        .collect();
    assert!(samples.len() >= 5, "{text}");
    let series: Vec<Option<f64>> = samples.iter().map(|s| s["pressure_cpu_some_s"].as_f64()).collect();
    assert!(series.iter().all(|v| v.is_some()), "every sample has cpu pressure: {series:?}");
    assert!(series.windows(2).all(|w| w[0] <= w[1]), "a total never goes down: {series:?}");
    assert!(series.last().unwrap().unwrap() > 0.05, "{series:?}");
    assert!(samples.iter().all(|s| s["pressure_memory_some_s"].as_f64().is_some()), "{text}");
}

/// On a hybrid host the run's cgroup2 group sits under sandbox's own cgroup there, is named in
/// the report, and is gone after every ending: exit, timeout, OOM kill, and bad input (exit 125,
/// nothing created: the harness checks every hierarchy for groups of the sandbox's pid).
#[test]
fn hybrid_runs_cgroup2_group_is_ours_and_gone_after_every_ending() {
    require_root!();
    let _m = shared();
    let Some(at) = cgroup2_with_psi().filter(|p| p.ends_with("unified")) else {
        eprintln!("SKIPPED hybrid_runs_cgroup2_group_is_ours_and_gone_after_every_ending: not a hybrid host with PSI");
        return;
    };
    let own = cgroup2_of("self");
    let base = at.join(own.trim_start_matches('/'));
    for args in [
        &["run", "sh", "-c", "grep '^0::' /proc/self/cgroup"][..],
        &["--timeout", "300ms", "run", "sleep", "10"],
        &["--mem", "32M", "run", "dd", "if=/dev/zero", "of=/dev/null", "bs=48M", "count=1"],
    ] {
        let r = sandbox(args);
        let rep = r.report();
        let dir = rep["cgroup"]["paths"]["unified"].as_str().unwrap_or_else(|| panic!("{args:?}: {}", rep["cgroup"]));
        let dir = Path::new(dir);
        assert_eq!(dir.parent(), Some(base.as_path()), "under our own cgroup2 group {own}: {}", dir.display());
        assert!(dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("sandbox-{}-", rep["id"].as_str().unwrap())));
        assert!(!dir.exists(), "{args:?} left {}", dir.display());
        if args[0] == "run" {
            // The command's cgroup namespace is rooted at its own group there too.
            assert_eq!(r.stdout, "0::/\n");
        }
    }
    let r = sandbox(&["--mem", "64M", "--cgroup-conf", "memory.no_such_file=1", "run", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("memory.no_such_file"), "{}", r.stderr);
}
