//! Every raw system call sandbox makes that nix does not wrap, in one place.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

pub mod bpf;
mod idmap;
mod process;
pub use idmap::*;
pub use process::*;

/// The namespaces a run gets at clone time. The cgroup namespace is unshared later, by the child,
/// once the parent has moved it into its group, so that the group is the namespace's root.
pub const CLONE_FLAGS: libc::c_int =
    libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET;

/// Whether we run as root (effective uid 0): root makes cgroups and may map any ids; anyone else
/// runs rootless.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Asks the kernel to SIGKILL us when the thread that forked us exits: if sandbox is killed, the
/// command (PID 1 of its namespace, so every process in it) dies with it.
pub fn die_with_parent() -> nix::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no pointers involved.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) }).map(drop)
}

/// PR_CAPBSET_DROP: removes capability number `cap` from the bounding set (EINVAL: this kernel
/// does not know it).
pub fn drop_bounding(cap: u8) -> nix::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }).map(drop)
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

pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub(crate) const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
pub(crate) struct MountAttr {
    pub(crate) attr_set: u64,
    pub(crate) attr_clr: u64,
    pub(crate) propagation: u64,
    pub(crate) userns_fd: u64,
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

/// ioctl(NS_GET_NSTYPE) (Linux 4.11): the CLONE_NEW* type of the namespace file `fd` (ENOTTY: it
/// is not a namespace file).
pub fn ns_type(fd: &impl AsRawFd) -> nix::Result<libc::c_int> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)
                                                 // SAFETY: an ioctl without an argument on an fd we hold.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) })
}

/// nosuid and/or noexec on the mount at `path` (and every mount below it with `recursive`).
pub fn set_nosuid_noexec(path: &CStr, nosuid: bool, noexec: bool, recursive: bool) -> nix::Result<()> {
    let set = if nosuid { MOUNT_ATTR_NOSUID } else { 0 } | if noexec { MOUNT_ATTR_NOEXEC } else { 0 };
    mount_setattr(path, set, 0, recursive)
}

/// A device node's own bind mount (not below it): nodev cleared, read-only, nosuid, noexec. The
/// node can be opened for reading and writing, but its inode, the host's, cannot be changed
/// through it (chmod 000 /dev/null would break the host).
pub fn device_bind_attrs(path: &CStr) -> nix::Result<()> {
    mount_setattr(path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NODEV, false)
}

/// A masking bind of /dev/null over a file: read-only, nodev, nosuid, noexec (the host's
/// /dev/null stays unchangeable through it).
pub fn mask_bind_attrs(path: &CStr) -> nix::Result<()> {
    mount_setattr(path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV, 0, false)
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

/// Reads a small kernel file (procfs, cgroupfs, sysfs) whole: one open and a read or two into a
/// page-sized buffer. std's read_to_string first stats the file for a size hint, which is 0 for
/// these, then grows its buffer from 32 bytes: five to eight syscalls where two or three do.
/// The buffer is on the stack (its pages are there already) and only what was read is copied to
/// the heap: a 16 KiB heap buffer per read cost a run's report ~25 fresh heap pages (a page
/// fault each, ~1.6 µs in this VM), and zeroing it every time.
pub fn read_small(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut chunk = [0u8; 4096];
    let mut out = Vec::new();
    loop {
        let n = loop {
            match f.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(out).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
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

/// A connected pair of close-on-exec SOCK_SEQPACKET unix sockets (the console socket between the
/// child and sandbox).
pub fn socketpair_seqpacket() -> nix::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a live array of two ints for the kernel to fill.
    Errno::result(unsafe {
        libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
    })?;
    // SAFETY: both fds were just returned to us and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one byte and `fds` (at most [`MAX_FDS`]) over the unix socket `sock` (SCM_RIGHTS).
pub fn send_fds(sock: RawFd, byte: u8, fds: &[RawFd]) -> nix::Result<()> {
    let mut b = [byte];
    let mut iov = libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: msghdr is plain old data; all-zero is valid before we fill it.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let mut cbuf = [0u64; CMSG_WORDS];
    if !fds.is_empty() {
        let n = fds.len().min(MAX_FDS);
        let bytes = (n * std::mem::size_of::<RawFd>()) as u32;
        // SAFETY: CMSG_SPACE is a pure size computation; it fits cbuf for n <= MAX_FDS.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(bytes) } as usize;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        // SAFETY: msg points at cbuf, large enough for n fds; CMSG_FIRSTHDR and CMSG_DATA stay
        // inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            for (i, fd) in fds.iter().take(n).enumerate() {
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>().add(i), *fd);
            }
        }
    }
    // SAFETY: msg and everything it points at are alive for the call.
    Errno::result(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) }).map(drop)
}

/// The most fds one [`send_fds`] carries.
pub const MAX_FDS: usize = 8;
const CMSG_WORDS: usize = 8;

/// Receives what [`send_fds`] sent: the byte and the fds (close-on-exec), or `None` when the peer
/// closed without sending.
pub fn recv_fds(sock: RawFd) -> nix::Result<Option<(u8, Vec<OwnedFd>)>> {
    let mut b = [0u8; 1];
    let mut iov = libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: 1 };
    let mut cbuf = [0u64; CMSG_WORDS];
    loop {
        // SAFETY: msghdr is plain old data; all-zero is valid before we fill it.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // SAFETY: msg points at live buffers of the sizes given.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match Errno::result(n) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(_) => {}
        }
        let mut fds = vec![];
        // SAFETY: the kernel filled msg; CMSG_FIRSTHDR returns null or a header inside cbuf.
        let c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        // SAFETY: c, when not null, points at a complete control header in cbuf, whose data
        // holds (cmsg_len - CMSG_LEN(0)) / 4 fds just installed in our table: ours now.
        unsafe {
            if !c.is_null() && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>().add(i))));
                }
            }
        }
        return Ok(Some((b[0], fds)));
    }
}

/// Allocates a pseudo-terminal from the devpts instance at /dev/ptmx as the caller sees it (the
/// run's own, once its /dev is mounted): the master, unlocked, and its slave opened through the
/// master (TIOCGPTPEER, Linux 4.13), never by a path another process could swap.
pub fn open_pty() -> nix::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: a plain open of a constant path.
    let m =
        Errno::result(unsafe { libc::open(c"/dev/ptmx".as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: m was just returned to us.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int we own.
    Errno::result(unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &unlock) })?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let s =
        Errno::result(unsafe { libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: s was just returned to us.
    Ok((master, unsafe { OwnedFd::from_raw_fd(s) }))
}

/// close_range(2) (Linux 5.9; CLOSE_RANGE_CLOEXEC 5.11): with `cloexec`, marks fds `first`..=`last`
/// close-on-exec instead of closing them now (what the child does right before exec, so that its
/// error pipe still works if exec fails).
pub fn close_range(first: u32, last: u32, cloexec: bool) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let flags = if cloexec { CLOSE_RANGE_CLOEXEC } else { 0 };
    // SAFETY: close_range takes integers only.
    match Errno::result(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) }) {
        Ok(_) => Ok(()),
        // An older kernel, or a --seccomp profile that denies it: one fd at a time, up to the
        // open-files limit (no fd can be at or above it).
        Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL) => {
            let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or(1 << 16, |(soft, _)| soft.min(1 << 20)) as u32;
            for fd in first..=last.min(limit) {
                // SAFETY: fcntl/close on an fd number; one that is not open just fails.
                unsafe {
                    if cloexec {
                        libc::fcntl(fd as RawFd, libc::F_SETFD, libc::FD_CLOEXEC);
                    } else {
                        libc::close(fd as RawFd);
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Clears close-on-exec on `fd` (an fd passed on purpose with `--preserve-fds`).
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    // SAFETY: F_SETFD takes an integer.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// PR_SET_NAME: this thread's comm (at most 15 bytes are kept).
pub fn set_comm(name: &str) -> nix::Result<()> {
    let c = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from the pointer.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Whether `fd` is open in this process.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only inspects the fd table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// PR_SET_DUMPABLE 0: /proc/PID/{fd,mem,environ,…} and ptrace of this process need
/// CAP_SYS_PTRACE, which docker's default set does not have.
pub fn not_dumpable() -> nix::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
}

/// Every signal back to its default action and an empty signal mask: what the command starts
/// with, whatever sandbox's caller ignored (a background job's SIGINT, nohup's SIGHUP) or blocked.
pub fn default_signals() {
    // The kernel's sigaction, straight: glibc's refuses its reserved signals 32 and 33, which a
    // caller may still have ignored.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler code; `dfl` is a live struct of the kernel's layout
        // and the size passed is that of the kernel's sigset (8 bytes).
        unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, &dfl as *const KernelSigaction, 0usize, 8usize) };
    }
    // SAFETY: an empty set, fully initialized by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Whether the parent holding the write end of the pipe `rd` has gone (every writer closed):
/// POLLHUP on the read end, without waiting.
pub fn writer_gone(rd: RawFd) -> bool {
    let mut p = libc::pollfd { fd: rd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one live pollfd, no timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLHUP != 0
}

/// flock(2) on `fd`: exclusive or shared, waiting or not. `Ok(false)`: not taken because another
/// open file description holds a conflicting lock (only with `nonblock`).
pub fn flock(fd: RawFd, exclusive: bool, nonblock: bool) -> nix::Result<bool> {
    let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH } | if nonblock { libc::LOCK_NB } else { 0 };
    loop {
        // SAFETY: flock takes an fd and integer flags.
        match Errno::result(unsafe { libc::flock(fd, op) }) {
            Ok(_) => return Ok(true),
            Err(Errno::EWOULDBLOCK) => return Ok(false),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// send(2) with MSG_NOSIGNAL: a peer that closed its end is EPIPE, never a SIGPIPE for us.
pub fn send_nosignal(fd: RawFd, buf: &[u8]) -> nix::Result<usize> {
    // SAFETY: buf is a valid slice for its length; fd is only read by the kernel.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    Errno::result(n).map(|n| n as usize)
}
