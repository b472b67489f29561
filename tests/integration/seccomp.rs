//! The default seccomp allowlist, seen from inside a run: what docker's profile denies answers
//! EPERM, what our table does not know answers ENOSYS, calls docker ties to a capability follow
//! that capability, and ordinary programs still run.

use std::collections::HashMap;

use crate::harness::*;
use crate::require_root;

/// Prints "<label> <ok|ERRNO>" for each argument "label:nr[:arg,arg,...]" (numbers in any base;
/// `pid` is the caller's pid), made as a raw syscall.
const SYSCALLS_PY: &str = r#"
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for spec in sys.argv[1:]:
    label, nr, *rest = spec.split(":")
    args = [os.getpid() if a == "pid" else int(a, 0) for a in rest[0].split(",")] if rest else []
    r = libc.syscall(ctypes.c_long(int(nr, 0)), *[ctypes.c_ulong(a) for a in args])
    e = ctypes.get_errno()
    print(label, "ok" if r >= 0 else errno.errorcode.get(e, str(e)))
"#;

/// Runs the probe with sandbox `flags`; the result of each labelled call.
fn syscalls(flags: &[&str], calls: &[&str]) -> HashMap<String, String> {
    let mut a = vec!["run"];
    a.extend(flags);
    a.extend(["python3", "-c", SYSCALLS_PY]);
    a.extend(calls);
    let r = sandbox(&a);
    assert_eq!(r.code, 0, "sandbox {a:?}: {}", r.stderr);
    let got: HashMap<String, String> =
        r.stdout.lines().filter_map(|l| l.split_once(' ')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(got.len(), calls.len(), "every call answered: {}", r.stdout);
    got
}

fn python3_missing() -> bool {
    let ok = std::process::Command::new("python3").arg("-c").arg("pass").status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: python3 is not installed; these tests probe syscalls with python3's ctypes");
    }
    !ok
}

#[test]
fn vsock_and_alg_sockets_cannot_be_created() {
    require_root!();
    let _m = shared();
    if python3_missing() {
        return;
    }
    // socket(family, type, 0). AF_VSOCK reaches the hypervisor's side of a VM (this host is one);
    // AF_ALG is the kernel crypto API docker's profile also shuts. The family is an int: set
    // high bits must not smuggle 40 past the filter (docker's 64-bit `> 40` rule lets them).
    let calls = [
        "vsock:41:40,1,0",
        "vsock-dgram:41:40,2,0",
        "vsock-high-bits:41:0x100000028,1,0",
        "alg:41:38,5,0",
        "unix:41:1,1,0",
        "inet:41:2,1,0",
        "inet6:41:10,2,0",
        "netlink:41:16,3,0",
    ];
    for flags in [&[][..], &["--cap-add", "ALL"][..], &["--cap-add", "SYS_ADMIN"][..]] {
        let got = syscalls(flags, &calls);
        for c in ["vsock", "vsock-dgram", "vsock-high-bits", "alg"] {
            assert_eq!(got[c], "EPERM", "{c} with {flags:?}: {got:?}");
        }
        for c in ["unix", "inet", "inet6", "netlink"] {
            assert_eq!(got[c], "ok", "{c} with {flags:?}: {got:?}");
        }
    }
    // Unconfined and --privileged: the kernel decides (a socket, or EAFNOSUPPORT without the module).
    for flags in [&["--seccomp", "unconfined"][..], &["--privileged"][..]] {
        let got = syscalls(flags, &calls[..2]);
        assert_ne!(got["vsock"], "EPERM", "{flags:?}: {got:?}");
    }
}

#[test]
fn unknown_syscalls_answer_enosys() {
    require_root!();
    let _m = shared();
    if python3_missing() {
        return;
    }
    // Calls newer than our table (open_tree_attr 467, file_getattr 468, file_setattr 469, listns
    // 470): the kernel may have them, but a filter that does not know a call must not let it
    // through; ENOSYS (not EPERM) lets libc fall back to the older call it replaces.
    let new = [
        "open_tree_attr:467:0,0,0,0,0",
        "file_getattr:468:0,0,0,0,0",
        "file_setattr:469:0,0,0,0,0",
        "listns:470:0,0,0,0",
    ];
    let free = syscalls(&["--seccomp", "unconfined"], &new);
    let in_kernel: Vec<&str> =
        new.iter().map(|c| c.split(':').next().unwrap()).filter(|c| free[*c] != "ENOSYS").collect();
    if in_kernel.is_empty() {
        eprintln!("NOTE: this kernel has none of syscalls 467-470: their ENOSYS below is the kernel's own");
    }
    let mut calls = vec!["unassigned:1000", "hole:400", "past-the-end:480"];
    calls.extend(new);
    // Calls x86_64 has that docker's profile does not allow answer EPERM, even those the kernel
    // itself answers ENOSYS (afs_syscall) or refuses for lack of a capability (kexec_load).
    calls.extend(["afs_syscall:183", "kexec_load:246:0,0,0,0", "keyctl:250:0,0,0,0"]);
    let got = syscalls(&[], &calls);
    for c in calls[..calls.len() - 3].iter().map(|c| c.split(':').next().unwrap()) {
        assert_eq!(got[c], "ENOSYS", "{c}: {got:?} (unconfined: {free:?})");
    }
    for c in ["afs_syscall", "kexec_load", "keyctl"] {
        assert_eq!(got[c], "EPERM", "{c}: {got:?}");
    }
}

#[test]
fn kcmp_mbind_set_mempolicy_move_pages_need_their_capability() {
    require_root!();
    let _m = shared();
    if python3_missing() {
        return;
    }
    // kcmp(self, self, KCMP_VM) compares address spaces, a way to probe other processes' layout;
    // pidfd_getfd steals a descriptor; process_madvise acts on another process's memory; the NUMA
    // calls steer memory placement. Arguments are harmless (length 0, fd -1): with the capability
    // the kernel answers them (0 or its own error), never the filter's EPERM.
    let ptrace = ["kcmp:312:pid,pid,1,0,0", "pidfd_getfd:438:0xffffffff,0,0", "process_madvise:440:0xffffffff,0,0,0,0"];
    let nice = [
        "mbind:237:0,0,0,0,0,0",
        "set_mempolicy:238:0,0,0",
        "get_mempolicy:239:0,0,0,0,0",
        "move_pages:279:0,0,0,0,0,0",
        "set_mempolicy_home_node:450:0,0,0,0",
    ];
    let all: Vec<&str> = ptrace.iter().chain(&nice).copied().collect();
    let label = |c: &&str| c.split(':').next().unwrap().to_string();
    let got = syscalls(&[], &all);
    for c in all.iter().map(label) {
        assert_eq!(got[&c], "EPERM", "{c} by default: {got:?}");
    }
    for (cap, open, closed) in [("SYS_PTRACE", &ptrace[..], &nice[..]), ("SYS_NICE", &nice[..], &ptrace[..])] {
        let got = syscalls(&["--cap-add", cap], &all);
        for c in open.iter().map(label) {
            assert_ne!(got[&c], "EPERM", "{c} with {cap}: {got:?}");
        }
        for c in closed.iter().map(label) {
            assert_eq!(got[&c], "EPERM", "{c} with {cap} only: {got:?}");
        }
    }
}

/// Threads (glibc tries clone3 first and falls back to clone on our ENOSYS), processes, pipes,
/// sockets on loopback, epoll through asyncio, memory maps, shared memory.
const ORDINARY_PY: &str = r#"
import asyncio, hashlib, json, mmap, multiprocessing, os, socket, sqlite3, subprocess, tempfile, threading
out = []
ts = [threading.Thread(target=lambda i=i: out.append(hashlib.sha256(b"x" * i).hexdigest())) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
assert len(out) == 8
assert subprocess.run(["sh", "-c", "echo $((6*7))"], capture_output=True, text=True).stdout == "42\n"
with multiprocessing.Pool(2) as p:
    assert p.map(abs, [-1, -2, 3]) == [1, 2, 3]
a, b = socket.socketpair(); a.send(b"hi"); assert b.recv(2) == b"hi"
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname()); conn, _ = s.accept(); c.send(b"ok"); assert conn.recv(2) == b"ok"
async def main():
    await asyncio.sleep(0.01)
    return 1
assert asyncio.run(main()) == 1
m = mmap.mmap(-1, 1 << 20); m[0:3] = b"abc"; assert m[0:3] == b"abc"
with tempfile.TemporaryDirectory() as d:
    db = sqlite3.connect(os.path.join(d, "t.db")); db.execute("create table t(x)"); db.commit()
assert len(os.getrandom(16)) == 16
print("python ok", json.dumps(sorted(os.sched_getaffinity(0)) != []))
"#;

#[test]
fn ordinary_programs_still_run_under_the_allowlist() {
    require_root!();
    let _m = shared();
    // A shell and coreutils, on the host view; the filter is in place (Seccomp: 2).
    let sh = "set -e; grep -q '^Seccomp:.*2' /proc/self/status; echo abc | sed s/b/B/ | tr a A; \
              ls / >/dev/null; date +%s >/dev/null; sort -r /etc/passwd | head -1 >/dev/null; \
              (sleep 0.05 &); wait; find /etc -maxdepth 1 -name passwd; stat -c %s /etc/hostname >/dev/null; echo sh ok";
    let r = sandbox(&["run", "sh", "-c", sh]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "ABc\n/etc/passwd\nsh ok\n"), "{}", r.stderr);
    if !python3_missing() {
        // With docker's default capabilities (the compile-time program) and with one added that
        // the program looks at (a program built at run time).
        for flags in [&[][..], &["--cap-add", "SYS_PTRACE"][..]] {
            let mut a = vec!["run"];
            a.extend(flags);
            a.extend(["python3", "-c", ORDINARY_PY]);
            let r = sandbox(&a);
            assert_eq!(r.code, 0, "{flags:?}: {}", r.stderr);
            assert_eq!(r.stdout, "python ok true\n", "{flags:?}: {}", r.stderr);
        }
    }
    // Busybox in its own root: applets exec, fork, read /proc.
    let Some(root) = busybox_rootfs() else { return };
    let script = "echo x | md5sum | cut -c1-8; ps | grep -c ps >/dev/null; ls /proc/self/fd >/dev/null; \
                  seq 1 100 | sort -n | tail -1; top -bn1 >/dev/null; echo busybox ok";
    let r = sandbox(&["run", "--rootfs", root.path().to_str().unwrap(), "/bin/sh", "-c", script]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "401b30e3\n100\nbusybox ok\n"), "{}", r.stderr);
}
