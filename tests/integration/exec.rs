//! `sandbox exec` (issue 14, item 4): a process started in a running container gets its
//! namespaces, cgroup, user, capabilities, no_new_privs and seccomp filter, and nothing more: no
//! capability, no syscall, no fd, no directory and no view of the host the container lacks.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use sandbox::container::{Root, Status};

use crate::harness::*;
use crate::require_root;

/// A running container: `sandbox run -d` in a temporary state root.
struct Running {
    state: tempfile::TempDir,
    name: String,
    /// The command as the host sees it.
    pid: i32,
    /// Its supervisor (the command's parent).
    supervisor: i32,
}

impl Running {
    /// `sandbox run -d RUN_ARGS… sh -c "SCRIPT; exit 0"`.
    fn start(run_args: &[&str], script: &str) -> Running {
        let state = state_root();
        let name = format!("exec-{}", sandbox::sys::random_id());
        // `; exit` keeps sh (dash would exec a last simple command in its place).
        let script = format!("{script}; exit 0");
        let r = Command::new(bin())
            .args(["--state-dir", state.path().to_str().unwrap(), "run", "-d", "--name", &name])
            .args(run_args)
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(0), "run -d: {}", String::from_utf8_lossy(&r.stderr));
        let c = Root::open(state.path()).find(&name).unwrap();
        let pid = c.state.process.expect("run -d returns once the command runs").pid;
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let supervisor = field(&st, "PPid").parse().unwrap();
        Running { state, name, pid, supervisor }
    }

    fn status(&mut self, status: Status) {
        Root::open(self.state.path()).find(&self.name).unwrap().update(|s| s.status = status).unwrap();
    }

    /// The container's group by controller ("" on v2), as its state records it.
    fn group(&self) -> BTreeMap<String, PathBuf> {
        let c = Root::open(self.state.path()).find(&self.name).unwrap();
        c.state.cgroup.expect("a run as root has a group").paths
    }

    /// `sandbox --state-dir STATE exec ARGS…` (ARGS name the container with `{}`).
    fn exec(&self, args: &[&str]) -> Run {
        self.exec_with(args, |_| {})
    }

    fn exec_with(&self, args: &[&str], setup: impl FnOnce(&mut Command)) -> Run {
        let mut full = vec!["--state-dir", self.state.path().to_str().unwrap(), "exec"];
        full.extend(args.iter().map(|a| if *a == "{}" { self.name.as_str() } else { a }));
        let mut cmd = Command::new(bin());
        cmd.args(&full).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        setup(&mut cmd);
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            report: None,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM: the supervisor ends the container and removes its group.
        // SAFETY: kill(2) takes integers; the pid is a process this test started.
        unsafe { libc::kill(self.supervisor, libc::SIGTERM) };
        let gone = eventually(15.0, || sandbox::exec::start_time(self.supervisor).is_none());
        if !std::thread::panicking() {
            assert!(gone, "the supervisor {} did not end", self.supervisor);
            assert_no_groups_of(self.supervisor as u32);
        }
    }
}

/// A /proc/PID/status field.
fn field(status: &str, key: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix(&format!("{key}:"))).unwrap_or_default().trim().to_string()
}

#[test]
fn exec_process_gets_no_capability_syscall_or_privilege_beyond_the_containers() {
    require_root!();
    let _m = shared();
    let c = Running::start(
        &["--cap-drop", "ALL", "--cap-add", "CHOWN", "--cap-add", "KILL", "--cap-add", "NET_BIND_SERVICE"],
        "sleep 60",
    );
    let theirs = std::fs::read_to_string(format!("/proc/{}/status", c.pid)).unwrap();
    let r = c.exec(&["{}", "cat", "/proc/self/status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"] {
        assert_eq!(field(&r.stdout, key), field(&theirs, key), "{key} differs from the container's command");
    }
    assert_eq!(field(&r.stdout, "NoNewPrivs"), "1");
    assert_eq!(field(&r.stdout, "Seccomp"), "2", "the seccomp filter is loaded");
    assert_eq!(field(&theirs, "CapEff"), "0000000000000421", "the container's own set: CHOWN KILL NET_BIND_SERVICE");
    // The same filter: a call the default profile denies without CAP_SYS_ADMIN fails as it does in
    // the run (unshare(2) needs no capability for a user namespace: only the filter stops it).
    let r = c.exec(&["{}", "unshare", "-U", "true"]);
    assert_ne!(r.code, 0, "unshare -U ran in exec: {}", r.stderr);
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
    // Another user: the container's bounding set, nothing effective.
    let r = c.exec(&["-u", "65534", "{}", "sh", "-c", "grep -E '^(Uid|CapEff)' /proc/self/status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("65534\t65534\t65534\t65534") && r.stdout.contains("CapEff:\t0000000000000000"),
        "{}",
        r.stdout
    );
}

#[test]
fn exec_sees_the_containers_proc_root_and_hostname_not_the_hosts() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let c = Running::start(&["--rootfs", root.path().to_str().unwrap()], "sleep 60");
    let r = c.exec(&[
        "{}",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'; ls /; hostname",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("sh -c sleep 60"), "pid 1 is the container's command: {}", r.stdout);
    let procs: u32 = lines[1].parse().unwrap();
    assert!(procs <= 5, "only the container's processes: {procs}");
    assert!(lines.contains(&"bin") && !lines.contains(&"home") && !lines.contains(&"usr"), "{}", r.stdout);
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(lines.last().copied(), Some(host_name.trim()), "the container's hostname");
}

#[test]
fn no_host_fd_or_directory_reaches_the_exec_process() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let c = Running::start(&["--rootfs", root.path().to_str().unwrap()], "sleep 60");
    // CVE-2024-21626: an fd of a host directory (here: fd 7, the host's /, not close-on-exec, as a
    // careless caller might leave one) and the caller's working directory must not reach the
    // process: through either, `..` leads out of the container.
    let leaky = |cmd: &mut Command| {
        cmd.current_dir("/usr");
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let fd = libc::open(c"/".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                if fd >= 0 && fd != 7 {
                    libc::dup2(fd, 7);
                }
                Ok(())
            });
        }
    };
    // The exec'd process itself lists its fds: 0-2 and the directory ls reads.
    let r = c.exec_with(&["{}", "ls", "-l", "/proc/self/fd"], leaky);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fds: Vec<(String, String)> = r
        .stdout
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(a, b)| (a.rsplit(' ').next().unwrap().to_string(), b.to_string()))
        .collect();
    let extra: Vec<_> =
        fds.iter().filter(|(n, t)| !["0", "1", "2"].contains(&n.as_str()) && !t.ends_with("/fd")).collect();
    assert!(fds.len() >= 3 && extra.is_empty(), "fds beyond stdio: {extra:?}\n{}", r.stdout);
    let r = c.exec_with(&["{}", "sh", "-c", "readlink /proc/$$/cwd; readlink /proc/$$/root"], leaky);
    assert_eq!((r.code, r.stdout.as_str()), (0, "/\n/\n"), "the container's root and working directory: {}", r.stderr);
    let r = c.exec_with(&["{}", "ls"], leaky);
    assert!(
        r.stdout.lines().any(|l| l == "bin") && !r.stdout.contains("lib"),
        "cwd is the container's root: {}",
        r.stdout
    );
}

#[test]
fn exec_process_is_in_the_containers_cgroup_and_under_its_memory_limit() {
    require_root!();
    let _m = shared();
    let c = Running::start(&["--mem", "32M"], "sleep 60");
    // From inside: the cgroup namespace is rooted at the container's group, which it is in.
    let r = c.exec(&["{}", "cat", "/proc/self/cgroup"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let theirs = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid)).unwrap();
    let mem = |t: &str| t.lines().find(|l| l.contains(":memory:") || l.starts_with("0::")).map(str::to_string);
    assert_eq!(mem(&r.stdout).as_deref().map(|l| l.rsplit(':').next().unwrap()), Some("/"), "{}", r.stdout);
    // From outside: a detached process is in the very group of the command.
    let marker = "7.4321";
    let r = c.exec(&["-d", "{}", "sleep", marker]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    let mut pid = 0;
    assert!(eventually(5.0, || {
        pid = procs_named("sleep", marker).first().copied().unwrap_or(0);
        pid != 0
    }));
    let ours = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(mem(&ours), mem(&theirs), "the exec'd process is in the container's group");
    // SAFETY: kill(2) takes integers; the pid is a process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    // The limit holds for it: 256 MiB in a 32 MiB group is an OOM kill.
    let r = c.exec(&["{}", "dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"]);
    assert_eq!(r.code, 137, "dd was not OOM-killed: {}", r.stderr);
}

#[test]
fn exec_cannot_exceed_the_containers_pids_limit() {
    require_root!();
    let _m = shared();
    // Three tasks: sh and two sleeps.
    let c = Running::start(&["--pids", "3"], "sleep 60 & sleep 60.5");
    let pids = |c: &Running| {
        let g = c.group();
        let dir = g.get("pids").or(g.get("")).unwrap().clone();
        std::fs::read_to_string(dir.join("pids.current")).unwrap().trim().parse::<u32>().unwrap()
    };
    assert!(eventually(5.0, || pids(&c) == 3), "pids.current = {}", pids(&c));
    let r = c.exec(&["{}", "true"]);
    assert_eq!(r.code, 125, "exec ran beyond --pids 3: {}", r.stderr);
    assert!(r.stderr.contains("pids limit"), "{}", r.stderr);
    assert_eq!(pids(&c), 3);
}

#[test]
fn exec_returns_the_commands_status_env_workdir_and_user() {
    require_root!();
    let _m = shared();
    let c = Running::start(&["-e", "FROM_RUN=1"], "sleep 60");
    assert_eq!(c.exec(&["{}", "sh", "-c", "exit 7"]).code, 7);
    assert_eq!(c.exec(&["{}", "sh", "-c", "kill -TERM $$"]).code, 143);
    let r = c.exec(&["{}", "no-such-command-here"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert_eq!(c.exec(&["{}", "/etc/passwd"]).code, 126);
    let r = c.exec(&[
        "-e",
        "X=y",
        "-w",
        "/tmp",
        "-u",
        "65534:65534",
        "{}",
        "sh",
        "-c",
        "echo $FROM_RUN $X; pwd; id -u; id -g",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1 y\n/tmp\n65534\n65534\n");
    let r = c.exec(&["-i", "{}", "cat"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn exec_gives_a_pty_from_the_containers_devpts_and_forwards_signals() {
    require_root!();
    let _m = shared();
    let c = Running::start(&[], "sleep 60");
    let r = c.exec(&["-t", "{}", "sh", "-c", "tty; stat -c %d /dev/pts/ptmx; stat -c %d /dev/pts"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("/dev/pts/"), "{}", r.stdout);
    let host_pts = std::fs::metadata("/dev/pts").map(|m| std::os::unix::fs::MetadataExt::dev(&m)).unwrap();
    let theirs: Vec<&str> = r.stdout.lines().map(str::trim).collect();
    assert_ne!(theirs[2], host_pts.to_string(), "the container's own devpts, not the host's: {}", r.stdout);
    // SIGTERM to sandbox goes to the process.
    let mut front = Command::new(bin())
        .args(["--state-dir", c.state.path().to_str().unwrap(), "exec", &c.name, "sleep", "30.25"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(5.0, || !procs_named("sleep", "30.25").is_empty()));
    // SAFETY: kill(2) takes integers; the pid is a process this test started.
    unsafe { libc::kill(front.id() as i32, libc::SIGTERM) };
    assert_eq!(front.wait().unwrap().code(), Some(143));
}

#[test]
fn exec_refuses_unknown_stopped_paused_and_gone_containers_and_bad_users() {
    require_root!();
    let _m = shared();
    let mut c = Running::start(&[], "sleep 60");
    let r = c.exec(&["nope-not-here", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("no such container: \"nope-not-here\""), "{}", r.stderr);
    let r = c.exec(&["-u", "a:b:c", "{}", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid --user 'a:b:c'"), "{}", r.stderr);
    let r = c.exec(&["-u", "no-such-user", "{}", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("'no-such-user'"), "{}", r.stderr);
    c.status(Status::Paused);
    let r = c.exec(&["{}", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains(&format!("container {} is paused, unpause it first", c.name)), "{}", r.stderr);
    c.status(Status::Stopped);
    let r = c.exec(&["{}", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains(&format!("container {} is not running", c.name)), "{}", r.stderr);
    // Recorded as running, but its command is gone (and its pid may be another process's now).
    c.status(Status::Running);
    // SAFETY: kill(2) takes integers; the pid is a process this test started.
    unsafe { libc::kill(c.pid, libc::SIGKILL) };
    assert!(eventually(5.0, || sandbox::exec::start_time(c.pid).is_none()));
    let r = c.exec(&["{}", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("is not running"), "{}", r.stderr);
}

#[test]
fn exec_into_a_user_namespace_is_the_containers_unprivileged_root() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let c = Running::start(&["--userns", "100000:65536", "--rootfs", root.path().to_str().unwrap()], "sleep 60");
    let theirs = std::fs::read_to_string(format!("/proc/{}/status", c.pid)).unwrap();
    let r = c.exec(&["{}", "sh", "-c", "cat /proc/self/uid_map; id -u; cat /proc/$$/status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"], "{}", r.stdout);
    assert_eq!(lines[1], "0", "root inside");
    for key in ["CapEff", "CapBnd", "NoNewPrivs", "Seccomp"] {
        assert_eq!(field(&r.stdout, key), field(&theirs, key), "{key}");
    }
    // Outside, the process is the container's unprivileged host uid, as its command is.
    let marker = "8.2468";
    assert_eq!(c.exec(&["-d", "{}", "sleep", marker]).code, 0);
    let mut pid = 0;
    assert!(eventually(5.0, || {
        pid = procs_named("sleep", marker).first().copied().unwrap_or(0);
        pid != 0
    }));
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(field(&st, "Uid").split_whitespace().next(), Some("100000"), "{st}");
    assert_eq!(field(&st, "Uid"), field(&theirs, "Uid"));
    // SAFETY: kill(2) takes integers; the pid is a process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

#[test]
fn a_signal_sent_as_the_exec_process_starts_is_not_lost() {
    require_root!();
    let _m = shared();
    let c = Running::start(&[], "sleep 60");
    // SIGTERM right when the command appears: sandbox's poll has just woken for the error pipe's
    // EOF (exec done), and a signal read then must still be passed on, not dropped.
    for i in 0..20 {
        let marker = format!("30.{i:02}7");
        let mut front = Command::new(bin())
            .args(["--state-dir", c.state.path().to_str().unwrap(), "exec", &c.name, "sleep", &marker])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while procs_named("sleep", &marker).is_empty() && std::time::Instant::now() < end {}
        // SAFETY: kill(2) takes integers; the pid is a process this test started.
        unsafe { libc::kill(front.id() as i32, libc::SIGTERM) };
        let code = eventually(5.0, || front.try_wait().unwrap().is_some());
        if !code {
            for p in procs_named("sleep", &marker) {
                // SAFETY: kill(2) takes integers; the pid is a process this test started.
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
            }
        }
        assert_eq!(front.wait().unwrap().code(), Some(143), "round {i}: the SIGTERM did not reach the process");
    }
}
