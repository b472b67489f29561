//! Executes a mount plan (`plan.rs`) inside the child's new mount namespace.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::plan::Op;
use crate::sys;

/// Runs every operation in order; the first failure stops it with a message naming the operation.
pub fn execute(ops: &[Op]) -> Result<(), String> {
    // Bind sources are opened (O_PATH) before any mount of ours can cover them: a source under
    // /tmp must be the host's /tmp, not the fresh tmpfs this plan mounts there.
    let mut sources = Vec::new();
    for op in ops {
        let dev;
        let src = match op {
            Op::Bind { src, .. } | Op::IdmapBind { src, .. } => src,
            Op::Mask(_) => Path::new("/dev/null"),
            Op::Device { name, .. } => {
                dev = Path::new("/dev").join(name);
                &dev
            }
            _ => {
                sources.push(None);
                continue;
            }
        };
        sources.push(Some(open_path(src).map_err(|e| format!("bind source {}: {e}", src.display()))?));
    }
    for (op, src) in ops.iter().zip(sources) {
        run(op, src).map_err(|e| format!("{}: {e}", describe(op)))?;
    }
    Ok(())
}

/// The user namespaces of the idmapped binds in `ops` (by the parent, before clone: the maps are
/// written from outside), their fds set in the ops. Kept open until the child has cloned; the
/// child's exec closes them (close-on-exec).
pub fn make_idmaps(ops: &mut [Op]) -> crate::error::Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for op in ops.iter_mut() {
        if let Op::IdmapBind { maps, userns, dst, .. } = op {
            let uid = crate::userns::map_text(&maps.uids);
            let gid = crate::userns::map_text(&maps.gids);
            let fd = sys::userns_with_maps(&uid, &gid).map_err(|e| {
                crate::error::Error::container(format!(
                    "idmapped mount on {}: cannot make a user namespace with uid_map {uid:?} gid_map {gid:?}: {}",
                    dst.display(),
                    e.desc()
                ))
            })?;
            *userns = Some(fd.as_raw_fd());
            fds.push(fd);
        }
    }
    Ok(fds)
}

fn open_path(p: &Path) -> std::io::Result<OwnedFd> {
    let f = OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_CLOEXEC).open(p)?;
    Ok(f.into())
}

fn describe(op: &Op) -> String {
    let d = |p: &PathBuf| p.display().to_string();
    match op {
        Op::MakePrivate => "making / private".into(),
        Op::BindSelf(p) => format!("bind {} onto itself", d(p)),
        Op::Mkdir(p) => format!("creating mount target {}", d(p)),
        Op::Touch(p) => format!("creating mount target {}", d(p)),
        Op::Bind { src, dst, .. } => format!("bind {} on {}", d(src), d(dst)),
        Op::IdmapBind { src, dst, .. } => format!("idmapped bind {} on {}", d(src), d(dst)),
        Op::Proc(p) => format!("mount proc on {}", d(p)),
        Op::Sysfs(p) => format!("mount sysfs on {}", d(p)),
        Op::Tmpfs { dst, .. } => format!("mount tmpfs on {}", d(dst)),
        Op::Device { name, dst } => format!("bind /dev/{name} on {}", d(dst)),
        Op::Cgroup { dst, .. } => format!("mount the run's cgroup filesystem on {}", d(dst)),
        Op::Devpts(p) => format!("mount devpts on {}", d(p)),
        Op::Mqueue(p) => format!("mount mqueue on {}", d(p)),
        Op::Symlink { link, .. } => format!("symlink {}", d(link)),
        Op::ReadOnly(p) => format!("making {} read-only", d(p)),
        Op::NoDev(p) => format!("making {} nodev", d(p)),
        Op::PivotRoot(p) => format!("pivot_root into {}", d(p)),
        Op::Detach(p) => format!("detaching {}", d(p)),
        Op::Mask(p) => format!("masking {}", d(p)),
        Op::ReadOnlyPath(p) => format!("making {} read-only", d(p)),
        Op::Sysctl { path, value } => format!("writing {value:?} to {}", d(path)),
        Op::Mknod(n) => format!("making device {}", d(&n.path)),
        Op::Attrs { dst, .. } => format!("setting nosuid/noexec on {}", d(dst)),
        Op::Propagation { dst, kind } => format!("making {} {kind}", d(dst)),
        Op::Overlay { lower, dst, .. } => format!("mount overlay of {} layers on {}", lower.len(), d(dst)),
    }
}

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| format!("{} contains a NUL byte", p.display()))
}

fn run(op: &Op, src: Option<OwnedFd>) -> Result<(), String> {
    let none: Option<&str> = None;
    let e = |e: nix::Error| e.desc().to_string();
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match op {
        Op::MakePrivate => mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).map_err(e),
        Op::BindSelf(p) => mount(Some(p), p, none, MsFlags::MS_BIND | MsFlags::MS_REC, none).map_err(e),
        Op::Mkdir(p) => make_target(p, true),
        Op::Touch(p) => make_target(p, false),
        Op::Bind { dst, read_only, recursive, .. } => {
            let fd = src.expect("bind sources are opened up front");
            let from = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let rec = if *recursive { MsFlags::MS_REC } else { MsFlags::empty() };
            mount(Some(from.as_str()), dst, none, MsFlags::MS_BIND | rec, none).map_err(e)?;
            match read_only {
                Some(ro) => sys::set_read_only(&cstr(dst)?, *ro, true).map_err(e),
                None => Ok(()),
            }
        }
        Op::IdmapBind { src: path, dst, read_only, recursive, userns, .. } => {
            let fd = src.expect("bind sources are opened up front");
            let ns = userns.expect("idmap user namespaces are made before clone");
            sys::idmapped_bind(fd.as_raw_fd(), &cstr(dst)?, *recursive, ns).map_err(|err| match err {
                nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM | nix::errno::Errno::ENOSYS => format!(
                    "the filesystem of {} does not support idmapped mounts here (mount_setattr MOUNT_ATTR_IDMAP: {})",
                    path.display(),
                    err.desc()
                ),
                err => err.desc().to_string(),
            })?;
            match read_only {
                Some(ro) => sys::set_read_only(&cstr(dst)?, *ro, true).map_err(e),
                None => Ok(()),
            }
        }
        Op::Proc(p) => mount(Some("proc"), p, Some("proc"), nodev, none).map_err(e),
        Op::Sysfs(p) => mount(Some("sysfs"), p, Some("sysfs"), nodev | MsFlags::MS_RDONLY, none).map_err(e),
        Op::Tmpfs { dst, mode, size } => {
            let mut data = format!("mode={mode:o}");
            if let Some(b) = size {
                data.push_str(&format!(",size={b}"));
            }
            // /dev/shm's source reads "shm" in mountinfo, as docker's and runc's do.
            let source = if dst.ends_with("dev/shm") { "shm" } else { "tmpfs" };
            mount(Some(source), dst, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(data.as_str()))
                .map_err(e)
        }
        Op::Device { dst, .. } => {
            make_target(dst, false)?;
            let fd = src.expect("device sources are opened up front");
            let from = format!("/proc/self/fd/{}", fd.as_raw_fd());
            mount(Some(from.as_str()), dst, none, MsFlags::MS_BIND, none).map_err(e)?;
            // The bind copies its source mount's flags, nodev included once the host view made
            // every mount nodev: this one node, and only it, may be opened; read-only, so that
            // its inode (the host's) cannot be chmod'ed or chown'ed through it.
            sys::device_bind_attrs(&cstr(dst)?).map_err(e)
        }
        Op::Cgroup { dst, v1_controllers } => {
            let (fstype, data) = match v1_controllers {
                Some(c) => ("cgroup", Some(c.as_str())),
                None => ("cgroup2", None),
            };
            mount(Some(fstype), dst, Some(fstype), nodev, data).map_err(e)
        }
        Op::Devpts(p) => mount(
            Some("devpts"),
            p,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )
        .map_err(e),
        Op::Mqueue(p) => mount(Some("mqueue"), p, Some("mqueue"), nodev, none).map_err(e),
        Op::Symlink { target, link } => std::os::unix::fs::symlink(target, link).map_err(|e| e.to_string()),
        Op::ReadOnly(p) => sys::set_read_only(&cstr(p)?, true, true).map_err(e),
        Op::NoDev(p) => sys::set_nodev(&cstr(p)?).map_err(e),
        Op::PivotRoot(root) => pivot(root).map_err(e),
        Op::Detach(p) => {
            let _ = umount2(p, MntFlags::MNT_DETACH);
            Ok(())
        }
        Op::Mask(p) => match std::fs::metadata(p) {
            Err(_) => Ok(()),
            Ok(m) if m.is_dir() => {
                let ro = MsFlags::MS_RDONLY | nodev;
                mount(Some("tmpfs"), p, Some("tmpfs"), ro, Some("size=0,mode=555")).map_err(e)
            }
            Ok(_) => {
                let fd = src.expect("/dev/null is opened up front");
                let from = format!("/proc/self/fd/{}", fd.as_raw_fd());
                mount(Some(from.as_str()), p, none, MsFlags::MS_BIND, none).map_err(e)?;
                sys::mask_bind_attrs(&cstr(p)?).map_err(e)
            }
        },
        Op::Overlay { lower, upper, dst } => {
            let data = crate::plan::overlay_options(lower, upper.as_ref());
            let flags = if upper.is_some() { MsFlags::empty() } else { MsFlags::MS_RDONLY };
            mount(Some("overlay"), dst, Some("overlay"), flags, Some(data.as_str())).map_err(e)
        }
        Op::Sysctl { path, value } => OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, value.as_bytes()))
            .map_err(|e| e.to_string()),
        Op::Mknod(n) => mknod(n),
        Op::Attrs { dst, nosuid, noexec, recursive } => {
            sys::set_nosuid_noexec(&cstr(dst)?, *nosuid, *noexec, *recursive).map_err(e)
        }
        Op::Propagation { dst, kind } => {
            let flag = match kind.trim_start_matches('r') {
                "shared" => MsFlags::MS_SHARED,
                "slave" => MsFlags::MS_SLAVE,
                "unbindable" => MsFlags::MS_UNBINDABLE,
                _ => MsFlags::MS_PRIVATE,
            };
            let rec = if kind.starts_with('r') { MsFlags::MS_REC } else { MsFlags::empty() };
            mount(none, dst, none, flag | rec, none).map_err(e)
        }
        Op::ReadOnlyPath(p) => {
            if std::fs::symlink_metadata(p).is_err() {
                return Ok(());
            }
            mount(Some(p), p, none, MsFlags::MS_BIND | MsFlags::MS_REC, none).map_err(e)?;
            sys::set_read_only(&cstr(p)?, true, true).map_err(e)
        }
    }
}

/// A device node of an OCI config on the /dev tmpfs: made with its mode and owner; a device (not
/// a FIFO) gets its own bind with nodev cleared, so that it, and only it, can be opened.
fn mknod(n: &crate::config::DeviceNode) -> Result<(), String> {
    use nix::sys::stat::{Mode, SFlag};
    let e = |err: nix::errno::Errno| err.desc().to_string();
    let kind = match n.kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let dev = if n.kind == 'p' { 0 } else { nix::sys::stat::makedev(n.major, n.minor) };
    // The /dev tmpfs is ours and fresh: the parent was made without symlinks; mknod does not
    // follow one at the last component (EEXIST).
    nix::sys::stat::mknod(&n.path, kind, Mode::from_bits_truncate(n.mode), dev).map_err(e)?;
    nix::unistd::fchownat(
        None,
        &n.path,
        Some(nix::unistd::Uid::from_raw(n.uid)),
        Some(nix::unistd::Gid::from_raw(n.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(e)?;
    // mknod applied the umask.
    nix::sys::stat::fchmodat(
        None,
        &n.path,
        Mode::from_bits_truncate(n.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(e)?;
    if n.kind != 'p' {
        mount(Some(&n.path), &n.path, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(e)?;
        sys::device_bind_attrs(&cstr(&n.path)?).map_err(e)?;
    }
    Ok(())
}

/// pivot_root(".", "."): the old root ends up stacked on the new one and is detached right away,
/// so no path leads back to the host's filesystem (no put_old directory needed, as runc does).
fn pivot(root: &Path) -> nix::Result<()> {
    nix::unistd::chdir(root)?;
    nix::unistd::pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")
}

/// Creates a mount target (directory or empty file) and any missing parents, refusing to follow a
/// symlink anywhere in the path: a rootfs could otherwise point a target at the host's files
/// (the class of CVE-2019-19921 / CVE-2021-30465 in runc). One openat2(RESOLVE_NO_SYMLINKS)
/// checks an existing path; only the missing tail is walked and created.
fn make_target(path: &Path, dir: bool) -> Result<(), String> {
    match sys::exists_without_symlinks(&cstr(path)?) {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::ELOOP) => {
            return Err(format!("refusing to create a mount target through a symlink: {}", path.display()))
        }
        Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(format!("{}: {}", path.display(), e.desc())),
    }
    if let Some(parent) = path.parent().filter(|p| *p != Path::new("/")) {
        make_target(parent, true)?;
    }
    let r = if dir {
        std::fs::DirBuilder::new().mode(0o755).create(path)
    } else {
        OpenOptions::new().write(true).create_new(true).mode(0o644).open(path).map(drop)
    };
    match r {
        // Created meanwhile, or a dangling symlink (create_new refuses to follow it).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match std::fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_symlink() => Ok(()),
            _ => Err(format!("refusing to create a mount target through a symlink: {}", path.display())),
        },
        r => r.map_err(|e| format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_targets_are_created_without_following_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        make_target(&root.join("a/b/c"), true).unwrap();
        assert!(root.join("a/b/c").is_dir());
        make_target(&root.join("a/file"), false).unwrap();
        assert!(root.join("a/file").is_file());
        make_target(&root.join("a/file"), false).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        let err = make_target(&root.join("evil/x"), true).unwrap_err();
        assert!(err.contains("symlink"), "{err}");
        assert!(!Path::new("/etc/x").exists());
        // An existing target reached through a symlink, and a dangling symlink as the target.
        assert!(make_target(&root.join("evil/passwd"), false).unwrap_err().contains("symlink"));
        std::os::unix::fs::symlink("/nonexistent-target", root.join("dangling")).unwrap();
        assert!(make_target(&root.join("dangling"), false).unwrap_err().contains("symlink"));
        assert!(!Path::new("/nonexistent-target").exists());
    }
}
