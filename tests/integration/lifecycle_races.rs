//! Lifecycle edges (issue 14): what `wait` says of a container whose supervisor was lost, a
//! `stop` that comes while `run -d` is still starting, many commands on one container at once,
//! `top`'s user names as the container sees them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::detach::{alive, assert_gone, footprint, States};
use crate::harness::*;
use crate::require_root;

/// A lost supervisor took the command's exit status with it: `wait` must not print a number a
/// script would take for one (it printed 255, docker's "could not wait" code, on stdout).
#[test]
fn wait_of_a_lost_supervisor_prints_no_made_up_exit_code() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let id = s.detach(&["--name", "lost", "--mem", "32M", "sleep", "100"]);
    let st = s.state(&id);
    let sup = st["supervisor"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) of the supervisor this test started (its pid from the state it wrote).
    unsafe { libc::kill(sup, libc::SIGKILL) };
    let (_, proc) = footprint(&st);
    assert!(eventually(5.0, || !alive(proc.unwrap())), "the command outlived its supervisor");
    let w = s.sb(&["wait", "lost"]);
    assert_eq!(w.stdout, "", "a made-up exit code on stdout");
    assert_eq!(w.code, 125, "{}", w.stderr);
    assert!(w.stderr.contains("lost: exit status unknown: supervisor lost"), "{}", w.stderr);
    // A known code beside it is still printed, in order.
    s.detach(&["--name", "fine", "sh", "-c", "exit 3"]);
    let w = s.sb(&["wait", "fine", "lost"]);
    assert_eq!((w.code, w.stdout.as_str()), (125, "3\n"), "{}", w.stderr);
    assert_eq!(s.state(&id)["exit_code"], Value::Null);
}

/// A `stop` between `run -d` registering the container and its supervisor recording the
/// command's pid signalled `run -d`'s front process (the supervisor named in the state until the
/// fork wrote its own; its signals not blocked: SIGTERM killed it) or waited out grace + 5 s for a
/// supervisor that never heard of it. The window is a few ms: the test holds the front there with
/// SIGSTOP as soon as the name is registered, and lets it go on 200 ms after the stop was issued.
#[test]
fn stop_while_run_d_is_starting_is_as_quick_as_any_stop() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let mut early = 0;
    for i in 0..8 {
        let name = format!("early{i}");
        let front = s.cmd(&["run", "-d", "--name", &name, "sleep", "100"]).stdout(Stdio::piped()).spawn().unwrap();
        let pid = front.id() as i32;
        let link = s.dir().join("names").join(&name);
        while std::fs::symlink_metadata(&link).is_err() {
            std::hint::spin_loop();
        }
        // SAFETY: kill(2) of the `run -d` this test spawned (it is not reaped before the wait below).
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        // The link holds the id's first 48 hex digits (a fast symlink; older versions: all 64).
        let target = std::fs::read_link(&link).unwrap().to_string_lossy().into_owned();
        let st = s.state(&s.ids().into_iter().find(|i| i.starts_with(&target)).unwrap());
        let caught = st["process"].is_null() && st["supervisor"]["pid"].as_i64() == Some(pid as i64);
        early += caught as u32;
        let t = Instant::now();
        let stop = s.cmd(&["stop", "-t", "1", &name]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let r = stop.wait_with_output().unwrap();
        let took = t.elapsed();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert!(took < Duration::from_millis(2500), "stop of {name} took {took:?} (caught early: {caught})");
        let out = front.wait_with_output().unwrap();
        // The front printed the id (the stop ended the command before or after it ran) or
        // failed cleanly; it is never killed by the stop's signal.
        assert!(out.status.code().is_some(), "run -d was killed: {:?}", out.status);
        let ps = s.sb(&["ps", "-a", "--format", "json"]);
        assert!(!ps.stdout.contains("\"running\""), "{}", ps.stdout);
    }
    eprintln!("{early} of 8 stops came before the command's pid was recorded");
    assert!(early > 0, "no stop came early enough to test the race");
}

/// Item 8: `ps`, `stats --no-stream`, `exec`, `inspect`, `stop` and `wait` on one container from
/// several threads at once never corrupt its state: state.json always parses, the container ends
/// stopped with its command's exit code, and `rm` leaves nothing.
#[test]
fn concurrent_commands_on_one_container_never_corrupt_its_state() {
    require_root!();
    let _m = shared();
    let s = States::new();
    let id =
        s.detach(&["--name", "busy", "--mem", "64M", "sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"]);
    let st = s.state(&id);
    let state_file = s.dir().join(&id).join("state.json");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        let readers: Vec<_> = [
            vec!["ps", "-a", "--format", "json"],
            vec!["stats", "--no-stream", "--format", "json"],
            vec!["exec", "busy", "true"],
            vec!["inspect", "busy"],
            vec!["exec", "busy", "sh", "-c", "echo hi"],
        ]
        .into_iter()
        .map(|args| {
            let (s, done) = (&s, &done);
            sc.spawn(move || {
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = s.sb(&args);
                    // exec into a container that is stopping may be refused; never anything else.
                    assert!(r.code == 0 || args[0] == "exec", "{args:?}: {} {}", r.code, r.stderr);
                    assert!(!r.stderr.contains("state.json"), "{args:?}: {}", r.stderr);
                    n += 1;
                }
                n
            })
        })
        .collect();
        let parser = sc.spawn(|| {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let text = std::fs::read_to_string(&state_file).unwrap();
                serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("state.json: {e}: {text}"));
                n += 1;
            }
            n
        });
        // The readers stop on every path: an assertion failing below would otherwise leave them
        // looping (and loading the machine) while the scope waits for them, for ever.
        struct Done<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stop_readers = Done(&done);
        std::thread::sleep(Duration::from_millis(1500));
        let stoppers: Vec<_> = (0..3).map(|_| sc.spawn(|| s.sb(&["stop", "-t", "5", "busy"]))).collect();
        let waiter = sc.spawn(|| s.sb(&["wait", "busy"]));
        for st in stoppers {
            let r = st.join().unwrap();
            assert_eq!((r.code, r.stdout.as_str()), (0, "busy\n"), "{}", r.stderr);
        }
        let w = waiter.join().unwrap();
        assert_eq!((w.code, w.stdout.as_str()), (0, "7\n"), "{}", w.stderr);
        std::thread::sleep(Duration::from_millis(300));
        drop(stop_readers);
        let counts: Vec<u32> = readers.into_iter().map(|t| t.join().unwrap()).collect();
        eprintln!("commands run alongside: {counts:?}; state.json parsed {} times", parser.join().unwrap());
        assert!(counts.iter().all(|&c| c >= 2), "{counts:?}");
    });
    let end = s.state(&id);
    assert_eq!((end["status"].as_str(), end["exit_code"].as_i64()), (Some("stopped"), Some(7)), "{end}");
    assert_eq!(s.sb(&["rm", "busy"]).code, 0);
    assert_gone(&s, &id, &st);
    let left = state_left(s.dir());
    assert!(left.is_empty(), "left in the state root: {left:?}");
}

/// `top` named users from the host's /etc/passwd: wrong for a container (an image's uid 70 is
/// not the host's) and blind to a user namespace. It must show the container's own names for
/// the uid the container sees, the number when its passwd has none, and never follow the
/// container's symlinks to a host file.
#[test]
fn top_names_users_from_the_containers_passwd_not_the_hosts() {
    require_root!();
    let _m = shared();
    let Some(plain) = busybox_rootfs() else { return };
    let Some(mapped) = busybox_rootfs() else { return };
    let Some(planted) = busybox_rootfs() else { return };
    let passwd = "boss:x:0:0::/:/bin/sh\nctr:x:4321:4321::/:/bin/sh\n";
    for r in [&plain, &mapped] {
        std::fs::create_dir(r.path().join("etc")).unwrap();
        std::fs::write(r.path().join("etc/passwd"), passwd).unwrap();
    }
    // A decoy outside the container, and a passwd link pointing at it by its host path.
    let decoy = tempfile::tempdir().unwrap();
    std::fs::write(decoy.path().join("passwd"), "leaked:x:0:0::/:/bin/sh\n").unwrap();
    std::fs::create_dir(planted.path().join("etc")).unwrap();
    std::os::unix::fs::symlink(decoy.path().join("passwd"), planted.path().join("etc/passwd")).unwrap();
    let s = States::new();
    let root = |t: &tempfile::TempDir| t.path().to_str().unwrap().to_string();
    s.detach(&["--name", "plain", "--rootfs", &root(&plain), "-u", "ctr", "sleep", "100"]);
    s.detach(&["--name", "plainroot", "--rootfs", &root(&plain), "sleep", "100"]);
    s.detach(&["--name", "mapped", "--rootfs", &root(&mapped), "--userns", "300000", "sleep", "100"]);
    s.detach(&["--name", "planted", "--rootfs", &root(&planted), "sleep", "100"]);
    let user_of = |name: &str| {
        let r = s.sb(&["top", name, "--format", "json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        let p = &v.as_array().unwrap()[0];
        (p["user"].as_str().unwrap().to_string(), p["uid"].as_u64(), p["uid_inside"].as_u64())
    };
    assert_eq!(user_of("plain"), ("ctr".into(), Some(4321), Some(4321)), "a uid the host does not know");
    assert_eq!(user_of("plainroot").0, "boss", "root as the container names it");
    assert_eq!(user_of("mapped"), ("boss".into(), Some(300000), Some(0)), "through the user namespace");
    assert_eq!(user_of("planted").0, "0", "the container's symlink led to a host file");
    let table = s.sb(&["top", "plain"]);
    assert!(table.stdout.lines().nth(1).is_some_and(|l| l.contains(" ctr ")), "{}", table.stdout);
    for n in ["plain", "plainroot", "mapped", "planted"] {
        assert_eq!(s.sb(&["rm", "-f", n]).code, 0);
    }
}

/// `update --cpuset-cpus/--cpuset-mems` change the CPUs and memory nodes of a running container
/// (they were refused: "`update` changes only …"); a malformed list or one its parent group may
/// not use is refused with exit 125 quoting the value, nothing changed.
#[test]
fn update_cpuset_moves_a_running_container_and_refuses_bad_lists() {
    require_root!();
    let _m = shared();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("SKIPPED update_cpuset_moves_a_running_container_and_refuses_bad_lists: needs 2 CPUs");
        return;
    }
    let s = States::new();
    let id = s.detach(&["--name", "pinned", "--cpuset-cpus", "0", "sleep", "100"]);
    let pid = s.state(&id)["process"]["pid"].as_i64().unwrap();
    let allowed = |key: &str| {
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        st.lines().find_map(|l| l.strip_prefix(key)).unwrap().trim().to_string()
    };
    assert_eq!(allowed("Cpus_allowed_list:"), "0");
    let r = s.sb(&["update", "--cpuset-cpus", "1", "pinned"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "pinned\n"), "{}", r.stderr);
    assert_eq!(allowed("Cpus_allowed_list:"), "1");
    let r = s.sb(&["update", "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "pinned"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((allowed("Cpus_allowed_list:"), allowed("Mems_allowed_list:")), ("0-1".into(), "0".into()));
    assert_eq!(s.state(&id)["config"]["limits"]["cpuset_cpus"], "0-1", "the state keeps the new list");
    for (flag, bad) in [("--cpuset-cpus", "1-x"), ("--cpuset-cpus", "4096"), ("--cpuset-mems", "63")] {
        let r = s.sb(&["update", flag, bad, "pinned"]);
        assert_eq!(r.code, 125, "{flag} {bad}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("'{bad}'")), "the value is quoted: {}", r.stderr);
        assert_eq!(allowed("Cpus_allowed_list:"), "0-1", "nothing changed");
    }
    // A container started without a list: v2 changes it; v1 has no cpuset group for it and says so.
    s.detach(&["--name", "free", "sleep", "100"]);
    let r = s.sb(&["update", "--cpuset-cpus", "1", "free"]);
    assert!(
        r.code == 0 || (r.code == 125 && r.stderr.contains("started without --cpuset-cpus")),
        "{} {}",
        r.code,
        r.stderr
    );
    for n in ["pinned", "free"] {
        assert_eq!(s.sb(&["rm", "-f", n]).code, 0);
    }
}

/// `run -d -t` keeps the command's pty with its supervisor; `sandbox attach` connects to it: what
/// it sends reaches the command, what the command prints comes back (and still goes to the log),
/// it exits with the command's exit code, and ctrl-p ctrl-q detaches leaving the container running.
#[test]
fn attach_connects_to_a_detached_pty_and_detaches_with_ctrl_p_ctrl_q() {
    require_root!();
    let _m = shared();
    let s = States::new();
    s.detach(&["-t", "--name", "talk", "sh", "-c", "echo ready; read x; echo got-$x; exit 5"]);
    assert!(eventually(5.0, || s.sb(&["logs", "talk"]).stdout.contains("ready")), "no output logged");
    let mut a =
        s.cmd(&["attach", "talk"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    use std::io::Write;
    a.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = a.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("got-hello"), "{stdout}");
    assert!(s.sb(&["logs", "talk"]).stdout.contains("got-hello"), "the log missed what attach saw");

    s.detach(&["-t", "--name", "stay", "sleep", "100"]);
    let mut a =
        s.cmd(&["attach", "stay"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut input = a.stdin.take().unwrap();
    input.write_all(b"\x10\x11").unwrap();
    let t = Instant::now();
    let out = a.wait_with_output().unwrap();
    drop(input);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(t.elapsed() < Duration::from_secs(3), "detach took {:?}", t.elapsed());
    let ps = s.sb(&["ps", "--format", "json"]);
    assert!(ps.stdout.contains("\"running\"") && ps.stdout.contains("stay"), "{}", ps.stdout);
    // From a terminal (script(1) makes one, 33x101): the container's pty takes its size.
    if Path::new("/usr/bin/script").exists() {
        let line = format!("stty rows 33 cols 101; {} attach stay", bin());
        let mut c = Command::new("/usr/bin/script");
        c.args(["-qfec", &line, "/dev/null"]).env("SANDBOX_STATE_DIR", s.dir());
        let mut t = c.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut input = t.stdin.take().unwrap();
        // The keys only once attach has its terminal in raw mode (it sets the size right after):
        // typed earlier, the line discipline of script's pty would eat ctrl-q (IXON's START) and
        // attach would wait for the command to end (seen in the slow VM lanes).
        let size = || s.sb(&["exec", "stay", "sh", "-c", "stty size < /proc/1/fd/0"]).stdout.trim().to_string();
        let sized = eventually(30.0, || size() == "33 101");
        let _ = input.write_all(b"\x10\x11");
        let out = t.wait_with_output().unwrap();
        drop(input);
        assert!(sized, "the container's pty never took the terminal's size: {}", size());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let ps = s.sb(&["ps", "--format", "json"]);
        assert!(ps.stdout.contains("\"running\"") && ps.stdout.contains("stay"), "{}", ps.stdout);
    } else {
        eprintln!("SKIPPED (part): /usr/bin/script is not installed: the window size is not checked");
    }
    // Without a terminal there is nothing to attach to: a message, 125.
    s.detach(&["--name", "plain", "sleep", "100"]);
    let r = s.sb(&["attach", "plain"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("no terminal"), "{}", r.stderr);
    for n in ["talk", "stay", "plain"] {
        s.sb(&["rm", "-f", n]);
    }
}
