//! A small harness: run the real `sandbox` binary, parse its JSON report, check nothing is left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub const SANDBOX: &str = env!("CARGO_BIN_EXE_sandbox");

/// The binary under test: `SANDBOX_TEST_BIN` when set (to show a regression test failing on an
/// older build), else the one cargo built.
pub fn bin() -> String {
    std::env::var("SANDBOX_TEST_BIN").unwrap_or_else(|_| SANDBOX.to_string())
}

/// Every `sandbox` this test binary starts, however it is started, uses a state root of its own
/// (never the host's /run/sandbox): set before main, while the process is single-threaded.
/// Mode 1777 with names/ alike, so that the rootless tests (setpriv to nobody) can register
/// their runs there too. Lifecycle tests use a fresh root each ([`state_root`]).
#[used]
#[link_section = ".init_array"]
static INIT_STATE_DIR: extern "C" fn() = init_state_dir;

extern "C" fn init_state_dir() {
    use std::os::unix::fs::PermissionsExt;
    // In the VM lanes the target directory is a read-only 9p mount: there /var/tmp (never /tmp,
    // which host-view containers replace with their own).
    let mut dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("state-{}", std::process::id()));
    if std::fs::create_dir_all(dir.join("names")).is_err() {
        dir = PathBuf::from(format!("/var/tmp/sandbox-test-state-{}", std::process::id()));
        let _ = std::fs::create_dir_all(dir.join("names"));
    }
    for d in [dir.clone(), dir.join("names")] {
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777));
    }
    std::env::set_var("SANDBOX_STATE_DIR", &dir);
}

/// A fresh state root for one test (removed when dropped).
/// In the VM lanes the target directory is a read-only 9p mount: there the root goes to /var/tmp
/// (a tmpfs in the VM), never to /tmp, which host-view containers replace with their own.
pub fn state_root() -> tempfile::TempDir {
    scratch_dir("state-")
}

/// A fresh temp dir named `prefix…` (removed when dropped): in the target's tmp, or in /var/tmp
/// where that is read-only (the VM lanes' 9p checkout); never /tmp, which host-view containers
/// replace with their own.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let dir = |d: &str| tempfile::Builder::new().prefix(prefix).tempdir_in(d);
    dir(env!("CARGO_TARGET_TMPDIR")).or_else(|_| dir("/var/tmp")).unwrap()
}

/// Whether every one of `tools` is on PATH; if not, says loudly which is missing and which Debian
/// package has it (tests/deps.sh installs it), and the caller skips.
pub fn have_tools(tools: &[&str], package: &str) -> bool {
    for tool in tools {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
        if found.map_or(true, |o| !o.status.success()) {
            eprintln!("SKIPPED: {tool} is not installed (Debian: apt-get install {package}; tests/deps.sh does)");
            return false;
        }
    }
    true
}

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
    sandbox_as(&[], args)
}

/// The same, started through `prefix` (e.g. `setpriv --reuid …`, which execs sandbox in place).
pub fn sandbox_as(prefix: &[&str], args: &[&str]) -> Run {
    sandbox_with(prefix, args, |_| {})
}

/// The same, with `setup` adjusting the command first (environment, extra fds, signal dispositions).
pub fn sandbox_with(prefix: &[&str], args: &[&str], setup: impl FnOnce(&mut Command)) -> Run {
    let dir = tempfile::tempdir().unwrap();
    // A non-root sandbox must be able to write its report there.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let rf = dir.path().join("report.json");
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    cmd.arg("--report-file").arg(&rf).args(args).stdin(Stdio::null());
    setup(&mut cmd);
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

/// The uid the rootless tests run as (nobody: exists everywhere, owns nothing).
pub const NOBODY: &str = "65534";

/// `setpriv` arguments that turn a root test into an unprivileged caller, or `None` (the caller
/// skips loudly, with the reason printed here) when this kernel refuses unprivileged user
/// namespaces or setpriv is missing.
pub fn as_nobody() -> Option<Vec<&'static str>> {
    let prefix = vec!["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
    let ok = Command::new(prefix[0]).args(&prefix[1..]).args(["unshare", "-U", "true"]).status();
    if !ok.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: `setpriv … unshare -U true` fails: no setpriv or no unprivileged user namespaces here");
        return None;
    }
    Some(prefix)
}

/// Every cgroup directory whose name says it belongs to sandbox process `pid`.
pub fn groups_of(pid: u32) -> Vec<PathBuf> {
    let suffix = format!("-{pid}");
    cgroup_dirs_where(|name| name.starts_with("sandbox-") && name.ends_with(&suffix))
}

/// The cgroup directories (every hierarchy, up to 5 levels deep) whose name passes `pred`; a
/// match is not searched below.
pub fn cgroup_dirs_where(pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
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
            if pred(&name) {
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

/// A busybox root filesystem in a tempdir, or `None` without busybox (said here, loudly: the
/// caller just returns).
pub fn busybox_rootfs() -> Option<tempfile::TempDir> {
    let Some(bb) = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()) else {
        eprintln!("SKIPPED: busybox (Debian busybox-static) is not installed; this test needs a busybox rootfs");
        return None;
    };
    let t = tempfile::tempdir().unwrap();
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // The mount targets an image has: root in a user namespace may not create them in a rootfs
    // owned by the host's root.
    for d in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir(t.path().join(d)).unwrap();
    }
    std::fs::copy(bb, bin.join("busybox")).unwrap();
    let list = Command::new(bb).arg("--list").output().unwrap();
    for name in String::from_utf8_lossy(&list.stdout).lines().filter(|n| *n != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(name));
    }
    Some(t)
}

/// A busybox rootfs in which the host's /usr (bound read-only with [`USR_RO`]) runs: python3,
/// setpriv and their libraries, through the merged-/usr links lib -> usr/lib, lib64 -> usr/lib64.
pub fn usr_rootfs() -> Option<tempfile::TempDir> {
    let t = busybox_rootfs()?;
    for l in ["lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), t.path().join(l)).unwrap();
    }
    std::fs::create_dir(t.path().join("usr")).unwrap();
    Some(t)
}

pub const USR_RO: &str = "/usr:/usr:ro";

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

/// Processes whose argv[0] is `name` and whose arguments contain `marker`.
pub fn procs_named(name: &str, marker: &str) -> Vec<u32> {
    let prefix = format!("{name}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.starts_with(prefix.as_bytes()) && String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

/// `tool` (skopeo, podman) in a mount namespace of its own, with empty tmpfs over /run and over
/// /var/lib/containers (/var/lib where that does not exist): as root, containers/image keeps a
/// blob-info cache in /var/lib/containers/cache and podman its runtime state under /run, which
/// they would otherwise create or change on the host. Paths the tests pass live elsewhere (temp
/// dirs), so the tool sees everything it is given.
pub fn isolated_tool(tool: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        r#"lib=/var/lib/containers; [ -d $lib ] || lib=/var/lib
mount -t tmpfs -o mode=0755 sandbox-test-run /run && mount -t tmpfs -o mode=0700 sandbox-test-lib "$lib" && exec "$0" "$@""#,
        tool,
    ]);
    c
}

/// The cgroup2 hierarchy a run's group has its pressure files in, when the kernel has PSI
/// (/proc/pressure): /sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on a hybrid host. `None`
/// on pure v1 or with `psi=0`, where the report's pressure is null.
pub fn cgroup2_with_psi() -> Option<PathBuf> {
    const CGROUP2: i64 = 0x6367_7270;
    let is_cgroup2 = |p: &str| nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 == CGROUP2);
    if !Path::new("/proc/pressure").is_dir() {
        return None;
    }
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].into_iter().find(|p| is_cgroup2(p)).map(PathBuf::from)
}

/// A process's cgroup in the cgroup2 hierarchy (the `0::` line of /proc/PID/cgroup).
pub fn cgroup2_of(pid: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/").to_string()
}

/// What is left in a state root besides its lock and names/: every entry but `.spare`, and of
/// `.spare` (removed containers' directories kept for the next ones) each spare that holds more
/// than a spare keeps (its lock files and state.json), as `.spare/X: [its files]`.
pub fn state_left(root: &Path) -> Vec<String> {
    const KEPT: [&str; 4] = ["lock", "update.lock", "state.json", ".state.json.next"];
    let names = |p: &Path| -> Vec<String> {
        std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    let mut left: Vec<String> =
        names(root).into_iter().filter(|n| n != "lock" && n != "names" && n != ".spare").collect();
    for spare in names(&root.join(".spare")) {
        let extra: Vec<String> =
            names(&root.join(".spare").join(&spare)).into_iter().filter(|f| !KEPT.contains(&f.as_str())).collect();
        if !extra.is_empty() {
            left.push(format!(".spare/{spare}: {extra:?}"));
        }
    }
    left
}
