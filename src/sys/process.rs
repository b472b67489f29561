//! Process creation and control: clone/clone3 (fork semantics, into a cgroup, as our parent's
//! child), wait4, pidfds, setns, sessions. Part of [`super`], the one place for raw syscalls.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// wait4(2) with WNOHANG: the child's status and what it used (with the descendants it reaped),
/// or `None` while it runs.
pub fn wait4_nohang(pid: Pid) -> nix::Result<Option<(nix::sys::wait::WaitStatus, libc::rusage)>> {
    let mut status = 0;
    // SAFETY: rusage is plain old data, fully written by the kernel when wait4 returns a pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals of the right types.
    let r = unsafe { libc::wait4(pid.as_raw(), &mut status, libc::WNOHANG, &mut usage) };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        _ => Ok(Some((nix::sys::wait::WaitStatus::from_raw(pid, status)?, usage))),
    }
}

/// Whether we are in the parent or the child after [`clone_fork`].
pub enum Forked {
    Parent(Pid),
    Child,
}

/// clone(2) with fork semantics (no new stack: the child continues here on a copy of ours) and
/// new namespaces. This is what lets sandbox set the child up directly, without re-executing
/// itself as Go runtimes must.
///
/// The caller must be single-threaded: the child gets a copy of the address space in which only
/// the calling thread exists, so any lock another thread held would stay locked forever.
pub fn clone_fork(flags: libc::c_int) -> nix::Result<Forked> {
    // SAFETY: with a null stack pointer, clone behaves as fork(2): the child resumes on a private
    // copy of the caller's stack. The caller is single-threaded (documented above), so no lock is
    // held by a thread that does not exist in the child.
    let ret = unsafe {
        libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Like [`clone_fork`], with the child born in the cgroup2 group open at `cgroup`
/// (clone3 CLONE_INTO_CGROUP, Linux 5.7+): no migration afterwards, so no wait for the RCU grace
/// period that writing to cgroup.procs takes (cgroup_threadgroup_rwsem). Errors as clone3's
/// (ENOSYS, E2BIG, EINVAL on older kernels): the caller falls back to [`clone_fork`].
pub fn clone_into_cgroup(flags: libc::c_int, cgroup: RawFd) -> nix::Result<Forked> {
    clone3(CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..Default::default()
    })
}

/// clone3(2) with `args` and no stack: fork semantics.
fn clone3(args: CloneArgs) -> nix::Result<Forked> {
    // SAFETY: with no stack, clone3 behaves as fork(2): the child resumes on a private copy of
    // the caller's stack. args is a live struct of the size passed. Every caller is
    // single-threaded (as for clone_fork), so no lock is held by a thread missing in the child.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// clone3's CLONE_INTO_CGROUP flag (Linux 5.7; not in libc's constants).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3's argument (linux/sched.h struct clone_args, CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// pidfd_open(2) (Linux 5.3): an fd that names process `pid` for as long as it is held, whatever
/// later takes the number. `ENOSYS` on older kernels.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; the fd it returns is owned by nobody else.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    match fd {
        -1 => Err(Errno::last()),
        // SAFETY: a fresh fd from the kernel, owned here only.
        fd => Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
    }
}

/// pidfd_send_signal(2) (Linux 5.1): `sig` to the process `pidfd` names, never to a process that
/// reused its number.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: no siginfo (null), flags 0; the fd is a live pidfd.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, 0usize, 0u32) };
    Errno::result(r).map(drop)
}

/// setsid(2) then PR_SET_PDEATHSIG 0: a detached supervisor in its own session, not tied to the
/// process that started it.
pub fn detach_session() -> nix::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: PR_SET_PDEATHSIG takes an integer signal number (0: none).
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) }).map(drop)
}

/// setns(2): joins the namespace `fd` names (a /proc/PID/ns file, `flags` 0 or its type), or with
/// a pidfd (Linux 5.8) every namespace of that process in `flags` at once, the user namespace
/// first, atomically: all of them or none.
pub fn setns(fd: RawFd, flags: libc::c_int) -> nix::Result<()> {
    // SAFETY: setns takes an fd and integer flags.
    Errno::result(unsafe { libc::setns(fd, flags) }).map(drop)
}

/// clone3(2) with fork semantics and CLONE_PARENT: the new process is our parent's child (its
/// SIGCHLD and wait status go there), in the pid namespace set for our children and, with
/// `cgroup` (a cgroup v2 directory fd, CLONE_INTO_CGROUP, Linux 5.7), born in that group: never
/// outside it, and counted against its pids.max by the fork itself (EAGAIN at the limit).
///
/// The caller must be single-threaded, as for [`clone_fork`].
pub fn clone_parent(cgroup: Option<RawFd>) -> nix::Result<Forked> {
    let mut args = CloneArgs { flags: libc::CLONE_PARENT as u64, ..Default::default() };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    clone3(args)
}

/// clone3(2) with fork semantics, new namespaces (`flags`), CLONE_PARENT and CLONE_PIDFD: the new
/// process is our parent's child, not ours. An OCI engine's shim (containerd's, conmon) is a child
/// subreaper that learns a container's init ended by reaping it: the init must become its child
/// once `create` exits, as with runc, so it cannot be our supervisor's child. With `cgroup` (a
/// cgroup v2 directory fd) it is born in that group (CLONE_INTO_CGROUP, Linux 5.7). Returns, in
/// the parent, a pidfd for the child: we cannot wait4 it, we follow it through that fd.
///
/// The caller must be single-threaded, as for [`clone_fork`].
pub fn clone_sibling(flags: libc::c_int, cgroup: Option<RawFd>) -> nix::Result<(Forked, Option<OwnedFd>)> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags as u32 as u64 | libc::CLONE_PARENT as u64 | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    match clone3(args)? {
        Forked::Child => Ok((Forked::Child, None)),
        // SAFETY: with CLONE_PIDFD the kernel stored a fresh pidfd in `pidfd`, owned here only.
        parent => Ok((parent, (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }))),
    }
}

/// struct pidfd_info of linux/pidfd.h (PIDFD_INFO_SIZE_VER0, 64 bytes).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    ids: [u32; 11],
    exit_code: i32,
}

/// PIDFD_INFO_EXIT (Linux 6.15).
const PIDFD_INFO_EXIT: u64 = 1 << 3;
/// PIDFD_GET_INFO: _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11, struct pidfd_info).
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// The wait status of the exited process `pidfd` names (ioctl PIDFD_GET_INFO with
/// PIDFD_INFO_EXIT, Linux 6.15): how a process that is not our child ended. `Ok(None)` while the
/// kernel has no exit information for it (still running, or not yet reaped by its parent);
/// ENOTTY/EINVAL on older kernels.
pub fn pidfd_exit_status(pidfd: &OwnedFd) -> nix::Result<Option<i32>> {
    let mut info = PidfdInfo { mask: PIDFD_INFO_EXIT, ..Default::default() };
    // SAFETY: PIDFD_GET_INFO reads and writes a struct pidfd_info of the size encoded in the
    // request; `info` is a live local of that size and layout.
    let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO as _, &mut info as *mut PidfdInfo) };
    match r {
        -1 => match Errno::last() {
            // Reaped and its exit information gone with it: unknown, not an error of ours.
            Errno::ESRCH => Ok(None),
            e => Err(e),
        },
        _ => Ok((info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code)),
    }
}

/// The siginfo of a queued signal (SI_QUEUE) as the kernel lays it out on 64-bit Linux (x86_64,
/// aarch64, riscv64): signo, errno, code, then the `_rt` member of the union at offset 16: pid,
/// uid, the value. 128 bytes in all.
#[repr(C)]
struct QueuedSiginfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    pid: i32,
    uid: u32,
    value: u64,
    _rest: [u8; 96],
}

/// Sends `sig` with the integer `value` (sigqueue(3)'s sival_int, read back as the signalfd's
/// `ssi_int`, `ssi_code` SI_QUEUE) to the process `pidfd` names (pidfd_send_signal(2), Linux 5.1).
/// `sandbox stop -t` passes the grace to the supervisor this way: one system call, no state to
/// write first.
pub fn pidfd_send_signal_value(pidfd: &OwnedFd, sig: i32, value: i32) -> nix::Result<()> {
    let info = QueuedSiginfo {
        signo: sig,
        errno: 0,
        code: libc::SI_QUEUE,
        _pad: 0,
        pid: std::process::id() as i32,
        uid: nix::unistd::getuid().as_raw(),
        value: value as u32 as u64,
        _rest: [0; 96],
    };
    // SAFETY: `info` is a live, fully initialized 128-byte siginfo of the layout the kernel
    // copies (copy_siginfo_from_user); the kernel checks si_signo == sig and si_code < 0.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, &info as *const QueuedSiginfo, 0u32)
    };
    Errno::result(r).map(drop)
}
