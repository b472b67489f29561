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
