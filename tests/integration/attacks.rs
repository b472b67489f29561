//! Regression tests named after the attacks an outside review used to break containment: each
//! one tries the attack as a hostile root command would, and fails if it works.
//! Every attempt that would change the host on a build without the fix is checked harmlessly
//! first (e.g. "is this the host's cgroupfs?") and only then tried.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::harness::*;
use crate::require_root;

/// Leaves `file` open as fd `n` in the sandbox process (as `exec 7</` in a shell would).
fn with_fd(cmd: &mut Command, n: i32, file: std::fs::File) {
    // SAFETY: dup2 is async-signal-safe; `file` is moved into the closure and stays open.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec: clear it either way.
            if libc::dup2(file.as_raw_fd(), n) < 0 || libc::fcntl(n, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn open_dir(p: &str) -> std::fs::File {
    std::fs::File::open(p).unwrap()
}

/// CVE-2024-21626 class: `exec 7</; sandbox run --rootfs R …` reached the host's root through
/// /proc/self/fd/7, in every mode.
#[test]
fn inherited_fds_do_not_reach_the_command() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let r = root.path().to_str().unwrap();
    let script = "ls /proc/self/fd | tr '\\n' ' '; echo; \
                  [ -n \"$(ls /proc/self/fd/7/ 2>/dev/null)\" ] && echo ESCAPED-fd7; echo done";
    let modes: [&[&str]; 5] = [
        &[],
        &["--rootfs", r],
        &["--init", "--rootfs", r],
        &["--userns", "100000:65536", "--rootfs", r],
        &["--init", "--user", "65534", "--rootfs", r],
    ];
    for flags in modes {
        let mut args = vec!["run"];
        args.extend(flags);
        args.extend(["sh", "-c", script]);
        let run = sandbox_with(&[], &args, |c| with_fd(c, 7, open_dir("/")));
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
        assert!(!run.stdout.contains("ESCAPED"), "{flags:?}: {}", run.stdout);
        // ls itself holds fd 3 (the directory it lists).
        let fds: Vec<&str> = run.stdout.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(fds, ["0", "1", "2", "3"], "{flags:?}: only stdio reaches the command");
    }
}

/// `--preserve-fds N` passes fds 3 .. 3+N-1 on purpose (runc's flag), and nothing above them.
#[test]
fn preserve_fds_passes_exactly_the_fds_asked_for() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in");
    std::fs::write(&f, "passed\n").unwrap();
    let args = ["run", "--preserve-fds", "1", "sh", "-c", "cat <&3; [ -e /proc/self/fd/4 ] && echo LEAKED-4; echo ok"];
    let run = sandbox_with(&[], &args, |c| {
        let a = std::fs::File::open(&f).unwrap();
        let b = std::fs::File::open(&f).unwrap();
        // SAFETY: dup2 is async-signal-safe; the files are moved into the closure.
        unsafe {
            c.pre_exec(move || {
                // Out of the way first: either file may already sit at 3 or 4.
                let (a, b) =
                    (libc::fcntl(a.as_raw_fd(), libc::F_DUPFD, 10), libc::fcntl(b.as_raw_fd(), libc::F_DUPFD, 10));
                libc::dup2(a, 3);
                libc::dup2(b, 4);
                libc::close(a);
                libc::close(b);
                Ok(())
            });
        }
    });
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "passed\nok\n");
}

/// A background job's SIGINT (ignored by its shell), nohup's SIGHUP, a blocked signal: none of
/// it may stay with the command, or even --init could not deliver SIGINT.
#[test]
fn signals_the_caller_ignores_or_blocks_are_default_in_the_command() {
    require_root!();
    let _m = shared();
    for init in [false, true] {
        let mut args = vec!["run"];
        if init {
            args.push("--init");
        }
        args.extend(["cat", "/proc/self/status"]);
        let run = sandbox_with(&[], &args, |c| {
            // SAFETY: signal(2) and sigprocmask(2) are async-signal-safe.
            unsafe {
                c.pre_exec(|| {
                    libc::signal(libc::SIGINT, libc::SIG_IGN);
                    libc::signal(libc::SIGHUP, libc::SIG_IGN);
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGUSR1);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    Ok(())
                });
            }
        });
        assert_eq!(run.code, 0, "{}", run.stderr);
        for key in ["SigIgn:", "SigBlk:"] {
            let v = run.stdout.lines().find_map(|l| l.strip_prefix(key)).unwrap().trim();
            assert_eq!(v, "0000000000000000", "init={init}: {key} {v}");
        }
    }
}

/// The caller's tokens and keys stayed in the environment of `--rootfs` runs.
#[test]
fn the_callers_secrets_stay_outside() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let r = root.path().to_str().unwrap();
    let env = |c: &mut Command| {
        c.env("SANDBOX_TEST_SECRET", "hunter2").env("LANG", "C.UTF-8").env("TERM", "dumb");
    };
    let run = sandbox_with(&[], &["run", "--rootfs", r, "--hostname", "box", "env"], env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut vars: Vec<&str> =
        run.stdout.lines().filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=")).collect();
    vars.sort();
    assert_eq!(vars, ["HOME=/", "HOSTNAME=box", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);

    // Host view keeps the harmless few.
    let run = sandbox_with(&[], &["run", "env"], env);
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    assert!(run.stdout.contains("LANG=C.UTF-8\n") && run.stdout.contains("PATH="), "{}", run.stdout);

    // On purpose: -e NAME copies, --env-file, --inherit-env.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vars");
    std::fs::write(&file, "# comment\nFROM_FILE=1\nSANDBOX_TEST_SECRET\n").unwrap();
    let args = ["run", "--rootfs", r, "-e", "SANDBOX_TEST_SECRET", "env"];
    assert!(sandbox_with(&[], &args, env).stdout.contains("SANDBOX_TEST_SECRET=hunter2\n"));
    let args = ["run", "--rootfs", r, "--env-file", file.to_str().unwrap(), "-e", "FROM_FILE=2", "env"];
    let out = sandbox_with(&[], &args, env).stdout;
    assert!(out.contains("FROM_FILE=2\n") && out.contains("SANDBOX_TEST_SECRET=hunter2\n"), "{out}");
    assert!(sandbox_with(&[], &["run", "--inherit-env", "env"], env).stdout.contains("SANDBOX_TEST_SECRET=hunter2"));
}

/// `echo $$ > /sys/fs/cgroup/pids/cgroup.procs` in host view left the limits (fork 20 under
/// --pids 5, touch 96 MiB under --mem 32M) while the report still said `pids peak 5`.
/// Checked without writing first: on a build where /sys/fs/cgroup is the host's, the test fails
/// before it could move anything.
#[test]
fn host_view_cannot_leave_its_cgroup() {
    require_root!();
    let _m = shared();
    let script = r#"
        if [ -f /sys/fs/cgroup/pids.max ]; then d=/sys/fs/cgroup; else d=/sys/fs/cgroup/pids; fi
        echo "max=$(cat $d/pids.max)"
        if [ "$(cat $d/pids.max)" != 5 ] || ! grep -q " /sys/fs/cgroup[^ ]* ro," /proc/self/mountinfo; then
            echo HOST-CGROUPFS-VISIBLE; exit 0
        fi
        grep " /sys/fs/cgroup" /proc/self/mountinfo | grep -v " ro," && echo WRITABLE-MOUNT
        (echo $$ > $d/cgroup.procs) 2>/dev/null && echo ESCAPED-procs
        mkdir $d/sub 2>/dev/null && echo ESCAPED-mkdir
        (echo max > $d/pids.max) 2>/dev/null && echo ESCAPED-limit
        echo done
    "#;
    let run = sandbox(&["--pids", "5", "run", "sh", "-c", script]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "max=5\ndone\n", "only the run's own group, read-only");
}

/// The host's sysfs was writable from host view (/sys/power/state, cpu online, THP). The write
/// tried here puts back the value already there, so even where it works it changes nothing.
#[test]
fn host_view_sysfs_is_fresh_and_read_only() {
    require_root!();
    let _m = shared();
    let script = r#"
        grep -q " /sys ro,.* - sysfs " /proc/self/mountinfo || { echo SYSFS-WRITABLE; exit 0; }
        f=/sys/kernel/mm/transparent_hugepage/enabled
        if [ -f $f ]; then cur=$(sed 's/.*\[\(.*\)\].*/\1/' $f); (echo $cur > $f) 2>/dev/null && echo ESCAPED-thp; fi
        [ -e /sys/fs/cgroup/unified/cgroup.procs ] && echo HOST-UNIFIED-VISIBLE
        ls /sys/kernel/debug 2>/dev/null | grep -q . && echo HOST-DEBUGFS-VISIBLE
        echo done
    "#;
    let run = sandbox(&["run", "sh", "-c", script]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "done\n");
}

/// Host view showed the host's /dev: /dev/kmsg, /dev/vsock, /dev/userfaultfd (a working
/// userfaultfd although the filter denies the syscall), block devices, the outer terminal's pts.
#[test]
fn host_view_has_only_the_minimal_dev() {
    require_root!();
    let _m = shared();
    let run = sandbox(&["run", "sh", "-c", "ls -A /dev | tr '\\n' ' '; echo; ls -A /dev/pts | tr '\\n' ' '"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut lines = run.stdout.lines();
    let dev: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let want =
        ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"];
    assert_eq!(dev, want);
    assert_eq!(lines.next().unwrap_or("").trim(), "ptmx", "a devpts of its own: no host terminal");
}

/// Detaches a loop device when dropped.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// Host block devices were writable from host view even with --read-only (shown on a loop
/// device; here one the test attaches to a scratch file and detaches).
#[test]
fn block_devices_cannot_be_written_even_with_read_only() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let img = dir.path().join("disk");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let out = Command::new("losetup").args(["-f", "--show"]).arg(&img).output();
    let Some(dev) =
        out.ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    else {
        eprintln!(
            "SKIPPED block_devices_cannot_be_written_even_with_read_only: losetup cannot attach a loop device here"
        );
        return;
    };
    let _l = Loop(dev.clone());
    let script = format!("[ -b {dev} ] && (printf XXXX > {dev}) 2>/dev/null && echo WROTE; echo done");
    let run = sandbox(&["run", "--read-only", "sh", "-c", &script]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "done\n");
    assert!(std::fs::read(&img).unwrap().iter().all(|b| *b == 0), "the disk was written");
}

/// A device node the command makes (CAP_MKNOD is in docker's default set) on a writable host
/// mount opened the device: every writable mount is nodev.
#[test]
fn device_nodes_made_on_writable_host_mounts_cannot_be_opened() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let bind = format!("{}:/mnt", dir.path().display());
    let script = "mknod /mnt/zero c 1 5 && head -c1 /mnt/zero >/dev/null 2>&1 && echo OPENED-bind; \
                  grep -E ' / (rw|ro),' /proc/self/mountinfo | grep -qv nodev && echo ROOT-ALLOWS-DEVICES; echo done";
    let run = sandbox(&["run", "--bind", &bind, "sh", "-c", script]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "done\n");
}

/// `printf '\0\0\0\0' > /proc/1/fd/9; exit 3` under --init wrote a forged "exit 0" into the
/// status pipe init held, and sandbox reported 0.
#[test]
fn init_status_cannot_be_forged() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let script = "for f in /proc/1/fd/*; do printf '\\0\\0\\0\\0' > $f; done 2>/dev/null; \
                  for f in /proc/1/fd/*; do readlink $f; done 2>/dev/null | grep -q . && echo INIT-FDS-VISIBLE; exit 3";
    let run = sandbox(&["run", "--init", "--rootfs", root.path().to_str().unwrap(), "sh", "-c", script]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.report()["exit_code"], 3);
    assert!(!run.stdout.contains("INIT-FDS-VISIBLE"), "{}", run.stdout);
    let run = sandbox(&["run", "--init", "sh", "-c", "grep -c . /proc/1/environ 2>/dev/null || echo denied"]);
    assert_eq!(run.stdout, "denied\n", "init is not dumpable");
}

/// After `kill -9` of sandbox, `run --rootfs R --user nobody sleep 4242` kept running with no
/// timeout (setresuid cleared the parent-death signal), and its cgroup stayed.
#[test]
fn a_sigkilled_sandbox_takes_user_switched_runs_along() {
    require_root!();
    // Exclusive: gc at the end must find this group stale, and no other run may collect it first.
    let _m = exclusive();
    let Some(root) = busybox_rootfs() else { return };
    let r = root.path().to_str().unwrap();
    // (prefix, flags): rootless last, where the kernel allows unprivileged user namespaces.
    let mut modes: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![], vec!["--user", "65534", "--rootfs", r]),
        (vec![], vec!["--userns", "100000:65536", "--rootfs", r]),
        (vec![], vec!["--init", "--user", "65534", "--rootfs", r]),
        (vec![], vec!["--user", "65534"]),
    ];
    // The rootless caller must be able to reach the rootfs.
    std::fs::set_permissions(root.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    modes.extend(as_nobody().map(|p| (p, vec!["--rootfs", r])));
    for (i, (prefix, flags)) in modes.iter().enumerate() {
        let marker = format!("42{i}.{}", std::process::id());
        // setpriv execs sandbox in place: the pid is sandbox's.
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        let mut child = cmd
            .args(["--report", "none", "run"])
            .args(flags)
            .args(["sleep", &marker])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let started = eventually(10.0, || !procs_named("sleep", &marker).is_empty());
        // SAFETY: kill(2) to a child we started.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        assert!(started, "{prefix:?} {flags:?}: the command never started");
        let gone = eventually(1.0, || procs_named("sleep", &marker).is_empty());
        for p in procs_named("sleep", &marker) {
            // Ours to end: a process this test started.
            // SAFETY: kill(2) of a pid we just found running our marker.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        assert!(gone, "{prefix:?} {flags:?}: the command outlived a SIGKILLed sandbox");
        let gc = Command::new(bin()).arg("gc").output().unwrap();
        assert!(gc.status.success());
        assert_no_groups_of(child.id());
    }
}

/// /dev/shm and --tmpfs mounts had no size: a command could fill memory through them.
#[test]
fn shm_and_tmpfs_mounts_have_a_size() {
    require_root!();
    let _m = shared();
    let df = "df -k /dev/shm /media | tail -n 2 | awk '{print $2}' | tr '\\n' ' '";
    let run = sandbox(&["run", "--tmpfs", "/media:size=1M", "sh", "-c", df]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.split_whitespace().collect::<Vec<_>>(), ["65536", "1024"], "docker's 64M /dev/shm and 1M");
    let run = sandbox(&["run", "--shm-size", "1M", "sh", "-c", "head -c 2M /dev/zero > /dev/shm/x || echo full"]);
    assert!(run.stdout.contains("full"), "{}", run.stdout);
}

/// The minimal /dev's nodes and the /dev/null binds over masked /proc files were writable binds
/// of the host's inodes: `chmod 000 /dev/null` inside would have broken the host. Tried here with
/// the values the host already has (a no-op but for ctime, which must not move).
#[test]
fn host_device_nodes_cannot_be_changed_through_the_sandbox() {
    require_root!();
    let _m = shared();
    use std::os::unix::fs::MetadataExt;
    let Some(root) = busybox_rootfs() else { return };
    let ctime = |p: &str| std::fs::metadata(p).map(|m| (m.ctime(), m.ctime_nsec())).unwrap();
    let script = "for f in /dev/null /dev/zero /dev/urandom /proc/keys /proc/kcore; do \
                  [ -e $f ] && chmod 666 $f 2>/dev/null && echo CHANGED-$f; chown 0:0 $f 2>/dev/null && echo CHOWNED-$f; done; \
                  echo x > /dev/null && head -c1 /dev/zero | wc -c";
    let before = [ctime("/dev/null"), ctime("/dev/zero"), ctime("/dev/urandom")];
    for flags in [vec![], vec!["--rootfs", root.path().to_str().unwrap()]] {
        let mut args = vec!["run"];
        args.extend(&flags);
        args.extend(["sh", "-c", script]);
        let run = sandbox(&args);
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
        assert_eq!(run.stdout.trim(), "1", "{flags:?}: the nodes still work, and nothing changed: {}", run.stdout);
    }
    assert_eq!(before, [ctime("/dev/null"), ctime("/dev/zero"), ctime("/dev/urandom")], "a host node was changed");
}

/// An /etc/passwd that is a FIFO hung the run's setup forever; one that is a link to /dev/zero
/// read until memory ran out (as root, before the filter): the rootfs is the command's to shape.
#[test]
fn a_hostile_passwd_cannot_hang_or_exhaust_the_setup() {
    require_root!();
    let _m = shared();
    let Some(root) = busybox_rootfs() else { return };
    let etc = root.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    nix::unistd::mkfifo(&etc.join("passwd"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", etc.join("group")).unwrap();
    let r = root.path().to_str().unwrap();
    let t = std::time::Instant::now();
    // (The command itself must not read them either: busybox's `id` would wait on the FIFO.)
    let args = [
        "--timeout",
        "20s",
        "--mem",
        "64M",
        "run",
        "--rootfs",
        r,
        "--user",
        "1000",
        "grep",
        "^Uid",
        "/proc/self/status",
    ];
    let run = sandbox(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("Uid:\t1000\t"), "{}", run.stdout);
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "{:?}", t.elapsed());
}

/// A group the attack below aims at: made next to the run's group, under the test's own cgroup in
/// the cgroup2 hierarchy (never elsewhere), removed when dropped (waiting for an escaped shell).
struct Decoy(std::path::PathBuf);

impl Drop for Decoy {
    fn drop(&mut self) {
        for _ in 0..250 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("WARNING: could not remove the decoy group {}", self.0.display());
    }
}

/// `mount -t cgroup2 none /x; echo $$ > /x/<other group>/cgroup.procs` with CAP_SYS_ADMIN: on a
/// hybrid host the run had no group in the cgroup2 hierarchy, so its cgroup namespace was rooted
/// at sandbox's own group there (the host's root on these machines), and the command could see
/// every group of the host and move itself into any of them. Now it joins a group of its own
/// there before exec and sees nothing beside it. The target is a decoy the test makes next to
/// the run's group, so even where the attack works it moves the command only into that.
#[test]
fn hostile_command_cannot_move_itself_into_another_cgroup2_group() {
    require_root!();
    let _m = shared();
    let Some(at) = cgroup2_with_psi() else {
        eprintln!("SKIPPED hostile_command_cannot_move_itself_into_another_cgroup2_group: no cgroup2 with PSI here");
        return;
    };
    let name = format!("attack-decoy-{}", std::process::id());
    let decoy = Decoy(at.join(cgroup2_of("self").trim_start_matches('/')).join(&name));
    std::fs::create_dir(&decoy.0).unwrap();
    let script = format!(
        r#"
        mkdir -p /media/u && mount -t cgroup2 none /media/u || {{ echo NO-MOUNT; exit 1; }}
        d=$(find /media/u -maxdepth 4 -type d -name {name} | head -n 1)
        if [ -n "$d" ]; then
            echo SEES-DECOY
            (echo $$ > "$d/cgroup.procs") 2>/dev/null && echo ESCAPED
        fi
        (echo $$ > /media/u/cgroup.procs) 2>/dev/null || echo OWN-ROOT-REFUSED
        grep '^0::' /proc/self/cgroup
        echo done
    "#
    );
    let run = sandbox(&["run", "--privileged", "--tmpfs", "/media", "sh", "-c", &script]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let procs = std::fs::read_to_string(decoy.0.join("cgroup.procs")).unwrap_or_default();
    assert_eq!(run.stdout, "0::/\ndone\n", "only its own group is visible; the decoy had {procs:?}");
}

/// SIGKILL racing the child's cgroup join. On v1 the child moves itself (writes 0 to each
/// hierarchy's `tasks`, skipping the RCU grace period the parent's cgroup.procs write waits for);
/// the legacy VM lane (Debian 6.1) once hung there, parent and child in a soft lockup. Kills
/// sandbox, or its whole process group, at spread-out moments after its child appears, for a few
/// seconds: every run must end promptly and leave no group behind (bench/kill-during-join.py is
/// the long version, with where each kill landed).
#[test]
fn sigkill_racing_the_childs_cgroup_self_join_hangs_nothing() {
    require_root!();
    // Exclusive: gc at the end collects these runs' groups, and no other test's.
    let _m = exclusive();
    let Some(root) = busybox_rootfs() else { return };
    let r = root.path().to_str().unwrap();
    let modes: [&[&str]; 3] = [
        &["--mem", "64M", "--pids", "20", "run", "--user", "65534", "--rootfs", r, "true"],
        &["--mem", "64M", "--pids", "20", "run", "--user", "65534", "/bin/true"],
        &["--cpus", "0.5", "run", "--init", "--rootfs", r, "true"],
    ];
    let children = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(4);
    let mut pids = vec![];
    let mut i = 0u64;
    while std::time::Instant::now() < end || i < 20 {
        let mut child = Command::new(bin())
            .args(["--report", "none"])
            .args(modes[i as usize % modes.len()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        pids.push(pid);
        // From the clone on, 0..2 ms in 50 µs steps: the join is in there on this host.
        let t = std::time::Instant::now();
        while children(pid).is_empty() && t.elapsed().as_secs() < 2 {}
        let wait = std::time::Duration::from_micros(i * 7919 % 41 * 50);
        let t = std::time::Instant::now();
        while t.elapsed() < wait {}
        // SAFETY: kill(2) of a process, or process group, that this test started.
        unsafe { libc::kill(if i % 3 == 0 { -(pid as i32) } else { pid as i32 }, libc::SIGKILL) };
        let ended = eventually(10.0, || child.try_wait().unwrap().is_some());
        if !ended {
            let stack = std::fs::read_to_string(format!("/proc/{pid}/stack")).unwrap_or_default();
            let kid = children(pid);
            let kstack = kid.split_whitespace().next().map(|k| std::fs::read_to_string(format!("/proc/{k}/stack")));
            panic!("run {i}: sandbox {pid} still there 10 s after SIGKILL: stack {stack}; child {kid}: {kstack:?}");
        }
        i += 1;
    }
    // The commands die with sandbox (die-with-parent); gc then removes their groups.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let gc = Command::new(bin()).arg("gc").output().unwrap();
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    for pid in pids {
        assert_no_groups_of(pid);
    }
    eprintln!("{i} runs killed");
}
