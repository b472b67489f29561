//! A small harness: run the real `sandbox` binary, parse its JSON report, check nothing is left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub const SANDBOX: &str = env!("CARGO_BIN_EXE_sandbox");

/// Timing-sensitive tests (CPU share) take this exclusively; every other test shares it.
static MACHINE: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

/// Skips (loudly) unless we are root: these tests create namespaces and cgroups.
#[macro_export]
macro_rules! require_root {
    () => {
        if !nix_is_root() {
            eprintln!("SKIPPED {}: needs root (creates namespaces and cgroups)", module_path!());
            return;
        }
    };
}

pub fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The result of one `sandbox` invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<serde_json::Value>,
}

impl Run {
    pub fn report(&self) -> &serde_json::Value {
        self.report.as_ref().unwrap_or_else(|| panic!("no JSON report; stderr:\n{}", self.stderr))
    }
}

/// Runs `sandbox ARGS…` with `--report-file` and no stdin, waits, checks no group is left.
pub fn sandbox(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("report.json");
    let mut cmd = Command::new(SANDBOX);
    cmd.arg("--report-file").arg(&rf).args(args).stdin(Stdio::null());
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out: Output = child.wait_with_output().unwrap();
    assert_no_groups_of(pid);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: std::fs::read_to_string(&rf).ok().and_then(|t| serde_json::from_str(&t).ok()),
    }
}

/// Every cgroup directory whose name says it belongs to sandbox process `pid`.
pub fn groups_of(pid: u32) -> Vec<PathBuf> {
    let suffix = format!("-{pid}");
    let mut found = vec![];
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("sandbox-") && name.ends_with(&suffix) {
                found.push(e.path());
            } else if depth < 4 {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    found
}

pub fn assert_no_groups_of(pid: u32) {
    let left = groups_of(pid);
    assert!(left.is_empty(), "cgroups left behind by sandbox pid {pid}: {left:?}");
}

/// A busybox root filesystem in a tempdir, or `None` (the caller skips loudly) without busybox.
pub fn busybox_rootfs() -> Option<tempfile::TempDir> {
    let bb = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists())?;
    let t = tempfile::tempdir().unwrap();
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(bb, bin.join("busybox")).unwrap();
    let list = Command::new(bb).arg("--list").output().unwrap();
    for name in String::from_utf8_lossy(&list.stdout).lines().filter(|n| *n != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(name));
    }
    Some(t)
}

/// Waits until `f` is true or `secs` pass.
pub fn eventually(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}
