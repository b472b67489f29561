//! Every raw system call sandbox makes that nix does not wrap, in one place.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// The namespaces a run gets at clone time. The cgroup namespace is unshared later, by the child,
/// once the parent has moved it into its group, so that the group is the namespace's root.
pub const CLONE_FLAGS: libc::c_int =
    libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET;

/// Whether we run as root (effective uid 0): root makes cgroups and may map any ids; anyone else
/// runs rootless.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

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

/// Asks the kernel to SIGKILL us when the thread that forked us exits: if sandbox is killed, the
/// command (PID 1 of its namespace, so every process in it) dies with it.
pub fn die_with_parent() -> nix::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no pointers involved.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) }).map(drop)
}

/// PR_SET_NO_NEW_PRIVS: execve can no longer grant privileges (setuid/setgid bits, file
/// capabilities); also what lets an unprivileged process install a seccomp filter.
pub fn no_new_privs() -> nix::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

/// Installs a classic-BPF seccomp filter on the calling thread (stacked on any before it).
/// Requires no_new_privs or CAP_SYS_ADMIN.
pub fn load_bpf(prog: &[libc::sock_filter]) -> nix::Result<()> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies the program.
    let r = unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const libc::sock_fprog) };
    Errno::result(r).map(drop)
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) (Linux 5.12): sets or clears read-only on the mount at `path` and, with
/// `recursive`, on every mount below it in one call. A plain MS_REMOUNT|MS_BIND would change only
/// the top mount and leave submounts (/dev, /run, …) writable.
pub fn set_read_only(path: &CStr, read_only: bool, recursive: bool) -> nix::Result<()> {
    let (set, clr) = if read_only { (MOUNT_ATTR_RDONLY, 0) } else { (0, MOUNT_ATTR_RDONLY) };
    mount_setattr(path, set, clr, recursive)
}

/// Sets nodev on the mount at `path` and every mount below it: device nodes there cannot be
/// opened, whoever made them.
pub fn set_nodev(path: &CStr) -> nix::Result<()> {
    mount_setattr(path, MOUNT_ATTR_NODEV, 0, true)
}

fn mount_setattr(path: &CStr, attr_set: u64, attr_clr: u64, recursive: bool) -> nix::Result<()> {
    let attr = MountAttr { attr_set, attr_clr, propagation: 0, userns_fd: 0 };
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: path is a valid C string, attr a live struct of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// Brings the loopback interface of the current network namespace up (SIOCSIFFLAGS IFF_UP).
pub fn loopback_up() -> nix::Result<()> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = Errno::result(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write an ifreq we own, named "lo".
    unsafe {
        Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req))?;
    }
    Ok(())
}

/// Whether `path` exists and every component of it is a plain directory entry (no symlink),
/// in one openat2(2) with RESOLVE_NO_SYMLINKS. `Err(ENOENT)`: something is missing;
/// `Err(ELOOP)`: a component is a symlink.
pub fn exists_without_symlinks(path: &CStr) -> nix::Result<()> {
    // SAFETY: open_how is plain old data; all-zero is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: path is a valid C string and how a live open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: fd was just returned to us.
    drop(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    Ok(())
}

/// Makes `fd` (a pty slave) the controlling terminal of the calling session leader.
pub fn set_controlling_tty(fd: RawFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }).map(drop)
}

/// The window size of the terminal on `fd`, if it is one.
pub fn window_size(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: winsize is plain old data; TIOCGWINSZ fills it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: ws is a live winsize.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

/// Sets the window size of the terminal on `fd` (the kernel then signals SIGWINCH inside).
pub fn set_window_size(fd: RawFd, ws: &libc::winsize) {
    // SAFETY: ws is a live winsize; failure is harmless.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws) };
}

/// 12 hex digits from getrandom(2): a run's id.
pub fn random_id() -> String {
    let mut b = [0u8; 6];
    // SAFETY: b is a writable buffer of the length given.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // getrandom cannot fail for 6 bytes after boot; fall back to time and pid regardless.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let v = t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32);
        b.copy_from_slice(&v.to_le_bytes()[..6]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Restores SIGPIPE's default action. The Rust runtime ignores SIGPIPE in sandbox itself, and an
/// ignored signal survives execve: without this, `yes | head` inside would see EPIPE instead of
/// dying quietly (std::process::Command does the same reset).
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Exits immediately, without running atexit handlers or flushing stdio buffers inherited from
/// the parent (a forked child must not flush the parent's buffered output twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// lsetxattr(2): sets an extended attribute on `path` without following a final symlink.
pub fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: both strings are valid C strings; value is a live slice of the length passed.
    let r = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    Errno::result(r).map(drop)
}

/// lgetxattr(2): an extended attribute of `path` (not following a final symlink); `None` when
/// it has none of that name.
pub fn lgetxattr(path: &CStr, name: &CStr) -> nix::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings; buf is a live buffer of the length passed.
        let r = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(r) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(Some(buf));
            }
            Err(Errno::ENODATA) => return Ok(None),
            Err(Errno::ERANGE) if buf.len() < 1 << 16 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// llistxattr(2): the names of `path`'s extended attributes (not following a final symlink).
pub fn llistxattr(path: &CStr) -> nix::Result<Vec<std::ffi::CString>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        // SAFETY: a valid C string and a live buffer of the length passed.
        let r = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(r) {
            Ok(n) => break n as usize,
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(Errno::ENOTSUP) => return Ok(vec![]),
            Err(e) => return Err(e),
        }
    };
    Ok(buf[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| std::ffi::CString::new(s).expect("split at NUL"))
        .collect())
}
