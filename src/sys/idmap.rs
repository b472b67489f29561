//! Idmapped bind mounts (Linux 5.12+; runtime-spec 1.1 `uidMappings`/`gidMappings` of a mount):
//! a user namespace holding the mount's maps, and the clone of a tree attached with those maps.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::{MountAttr, AT_RECURSIVE};

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A user namespace whose uid_map and gid_map are `uid_map` and `gid_map` (text as in
/// /proc/PID/uid_map), as an fd: a child is cloned into a new one, its maps written from here,
/// its /proc/PID/ns/user opened, then it is let go and reaped. No process of it stays.
/// The caller must be single-threaded ([`super::clone_fork`]) and have CAP_SETUID/CAP_SETGID.
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> nix::Result<OwnedFd> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let pid = match super::clone_fork(libc::CLONE_NEWUSER)? {
        super::Forked::Child => {
            drop(wr);
            // Blocks until the parent closes its end (done with our maps), then leaves.
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(rd.as_raw_fd(), &mut b);
            super::exit_now(0)
        }
        super::Forked::Parent(pid) => pid,
    };
    drop(rd);
    let made = (|| {
        let put = |file: &str, text: &str| {
            std::fs::write(format!("/proc/{pid}/{file}"), text)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        };
        put("uid_map", uid_map)?;
        put("gid_map", gid_map)?;
        std::fs::File::open(format!("/proc/{pid}/ns/user"))
            .map(OwnedFd::from)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    })();
    drop(wr);
    let _ = nix::sys::wait::waitpid(pid, None);
    made
}

/// Attaches a clone of the tree at `src` (an O_PATH fd; with `recursive` its submounts too) at
/// `dst`, its files' owners seen through the user namespace `userns`: open_tree(OPEN_TREE_CLONE),
/// mount_setattr(MOUNT_ATTR_IDMAP), move_mount. EINVAL from mount_setattr: the filesystem does
/// not support idmapped mounts (or the tree is not a bind of one).
pub fn idmapped_bind(src: RawFd, dst: &CStr, recursive: bool, userns: RawFd) -> nix::Result<()> {
    let rec = if recursive { AT_RECURSIVE } else { 0 };
    let empty = c"";
    // SAFETY: open_tree(2) with a valid fd and an empty C string; the result is owned at once.
    let tree = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            src,
            empty.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint | rec,
        )
    })?;
    // SAFETY: open_tree returned a new fd that nobody else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    let attr = MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns as u64 };
    // SAFETY: mount_setattr(2) on the detached tree; attr is a live struct of the size passed.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | rec,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    // SAFETY: move_mount(2) of the tree onto dst, a valid C string.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}
