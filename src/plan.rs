//! The filesystem a command sees, as a list of mount operations built before anything runs
//! (bubblewrap's approach): the plan is pure data, unit-tested, then executed by `mounts.rs`
//! inside the child's new mount namespace.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// One step of the plan. Paths are as seen before pivot_root (host paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `mount --make-rprivate /`: nothing we mount propagates back to the host, nothing of the
    /// host's later mounts propagates in. Always first.
    MakePrivate,
    /// Recursive bind of a directory onto itself, so that it is a mount point (pivot_root needs one).
    BindSelf(PathBuf),
    /// Create a directory mount target if missing, refusing symlinks in the path.
    Mkdir(PathBuf),
    /// Create an empty file mount target if missing, refusing symlinks in the path.
    Touch(PathBuf),
    /// Recursive bind mount. `read_only: Some(x)` sets (or clears) read-only on it afterwards.
    Bind {
        src: PathBuf,
        dst: PathBuf,
        read_only: Option<bool>,
        recursive: bool,
    },
    /// [`Op::Bind`] as an idmapped mount (open_tree, mount_setattr MOUNT_ATTR_IDMAP, move_mount)
    /// through a user namespace with `maps`; `userns` is its fd, made by the parent before clone
    /// ([`crate::mounts::make_idmaps`]).
    IdmapBind {
        src: PathBuf,
        dst: PathBuf,
        read_only: Option<bool>,
        recursive: bool,
        maps: crate::userns::UserNs,
        userns: Option<std::os::fd::RawFd>,
    },
    /// nosuid and/or noexec on the mount at `dst` (and below it with `recursive`).
    Attrs {
        dst: PathBuf,
        nosuid: bool,
        noexec: bool,
        recursive: bool,
    },
    /// A propagation type (`shared`, `rslave`, …) on the mount at `dst`. Everything here is in
    /// the run's own mount namespace, made private first: no peer group reaches the host.
    Propagation {
        dst: PathBuf,
        kind: String,
    },
    /// A fresh proc for the new pid namespace.
    Proc(PathBuf),
    /// A fresh sysfs for the new network namespace, read-only.
    Sysfs(PathBuf),
    /// nosuid, nodev; `size` in bytes (`None`: the kernel's default).
    Tmpfs {
        dst: PathBuf,
        mode: u32,
        size: Option<u64>,
    },
    /// A device node of the minimal /dev: an empty file at `dst`, the host's `/dev/NAME` bound
    /// onto it, and nodev cleared on that one bind (everything around it is nodev).
    Device {
        name: &'static str,
        dst: PathBuf,
    },
    /// The cgroup filesystem at `dst` as the run's cgroup namespace shows it: rooted at the run's
    /// own group. Mounted after the child has entered that namespace (see [`cgroup_view`]).
    /// cgroup2, or one v1 hierarchy (its controllers, e.g. `cpu,cpuacct`).
    Cgroup {
        dst: PathBuf,
        v1_controllers: Option<String>,
    },
    /// A private devpts instance (newinstance), so the command sees only its own ptys.
    Devpts(PathBuf),
    /// A POSIX message queue filesystem (of the run's own ipc namespace), for an OCI config
    /// that mounts /dev/mqueue.
    Mqueue(PathBuf),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    /// Read-only on this mount and every mount below it.
    ReadOnly(PathBuf),
    /// nodev on this mount and every mount below it.
    NoDev(PathBuf),
    /// Detach the mount at this path and everything below it (best effort: in a user namespace
    /// the kernel keeps mounts it locked together, and the next mount covers them).
    Detach(PathBuf),
    /// pivot_root into the directory; the old root is detached and gone.
    PivotRoot(PathBuf),
    /// Hide a kernel interface: /dev/null over a file, an empty read-only tmpfs over a directory.
    /// Skipped when the path does not exist on this kernel.
    Mask(PathBuf),
    /// Bind a path onto itself read-only (recursively). Skipped when it does not exist.
    ReadOnlyPath(PathBuf),
    /// Write `value` to a /proc/sys file (of the fresh proc, before /proc/sys turns read-only):
    /// the kernel parameter of the child's own namespaces.
    Sysctl {
        path: PathBuf,
        value: String,
    },
    /// mknod a device node (or FIFO) on the /dev tmpfs, then, for a device, its own bind with
    /// nodev cleared (the tmpfs is nodev), as for [`Op::Device`].
    Mknod(crate::config::DeviceNode),
    /// overlayfs at `dst`: `lower` top first; read-only without `upper` (an intermediate of a
    /// stack, see [`overlay`]).
    Overlay {
        lower: Vec<PathBuf>,
        upper: Option<(PathBuf, PathBuf)>,
        dst: PathBuf,
    },
}

/// What one mount's data may hold: a page, less its NUL (the kernel copies one page of options).
const MOUNT_DATA_MAX: usize = 4095;
/// Lower layers one overlay mount accepts (OVL_MAX_STACK).
const OVERLAY_MAX_LOWER: usize = 500;

/// The options of an overlay mount. Redirects, metacopy and the inode index stay off whatever
/// the module's defaults: the upper dir must hold whole files and plain whiteouts, the format
/// `commit` turns back into an OCI layer (as docker's overlay2 driver does).
pub fn overlay_options(lower: &[PathBuf], upper: Option<&(PathBuf, PathBuf)>) -> String {
    // `:` separates lower dirs and `,` options: both are escaped with a backslash in paths.
    let esc = |p: &Path| {
        let s = p.to_string_lossy();
        s.replace('\\', "\\\\").replace(':', "\\:").replace(',', "\\,")
    };
    let lower: Vec<String> = lower.iter().map(|p| esc(p)).collect();
    let mut o = format!("lowerdir={}", lower.join(":"));
    if let Some((up, work)) = upper {
        o.push_str(&format!(",upperdir={},workdir={}", esc(up), esc(work)));
    }
    o.push_str(",index=off,redirect_dir=off,metacopy=off");
    o
}

/// The mounts that put `layers` (bottom first) at `dst`. One overlay when the options fit in a
/// page; otherwise runs of layers are first joined into read-only overlays under `layers.stack`,
/// which the top overlay stacks (overlayfs allows one level of overlay-on-overlay:
/// FILESYSTEM_MAX_STACK_DEPTH is 2).
pub fn overlay(layers: &crate::config::Layers, dst: &Path) -> Vec<Op> {
    let upper = Some((layers.upper.clone(), layers.work.clone()));
    let top_first: Vec<PathBuf> = layers.lower.iter().rev().cloned().collect();
    let fits = |l: &[PathBuf], up: Option<&(PathBuf, PathBuf)>| {
        l.len() <= OVERLAY_MAX_LOWER && overlay_options(l, up).len() <= MOUNT_DATA_MAX
    };
    if fits(&top_first, upper.as_ref()) {
        return vec![Op::Overlay { lower: top_first, upper, dst: dst.to_path_buf() }];
    }
    let mut ops = vec![];
    let mut joined = vec![];
    let mut run: Vec<PathBuf> = vec![];
    // Greedy, bottom up, so that each run is a contiguous slice of the stack.
    let flush = |run: &mut Vec<PathBuf>, ops: &mut Vec<Op>, joined: &mut Vec<PathBuf>| match run.len() {
        0 => {}
        1 => joined.push(run.pop().unwrap()),
        _ => {
            let at = layers.stack.join(ops.len().to_string());
            ops.push(Op::Mkdir(at.clone()));
            run.reverse();
            ops.push(Op::Overlay { lower: std::mem::take(run), upper: None, dst: at.clone() });
            joined.push(at);
        }
    };
    for l in &layers.lower {
        let mut next: Vec<PathBuf> = run.iter().rev().cloned().collect();
        next.insert(0, l.clone());
        if !run.is_empty() && !fits(&next, None) {
            flush(&mut run, &mut ops, &mut joined);
        }
        run.push(l.clone());
    }
    flush(&mut run, &mut ops, &mut joined);
    joined.reverse();
    ops.push(Op::Overlay { lower: joined, upper, dst: dst.to_path_buf() });
    ops
}

/// Paths hidden from the command (docker's and runc's defaults): kernel memory, keyrings, timer
/// and scheduler internals that leak host information or help attacks.
pub const MASKED: [&str; 8] = [
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/acpi",
    "/proc/scsi",
    "/proc/latency_stats",
    "/sys/firmware",
];

/// Paths the command may read but not write: sysctls, sysrq, irq affinity, bus and fs settings.
pub const READ_ONLY: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The masking and read-only operations for a root at `root`, unless `--privileged`.
fn protect(cfg: &Config, root: &Path, ops: &mut Vec<Op>) {
    if cfg.privileged {
        return;
    }
    ops.extend(MASKED.iter().map(|p| Op::Mask(inside(root, Path::new(p)))));
    ops.extend(READ_ONLY.iter().map(|p| Op::ReadOnlyPath(inside(root, Path::new(p)))));
    // An OCI config's own lists, beside ours (a path in both is masked twice: harmless).
    ops.extend(cfg.masked_paths.iter().map(|p| Op::Mask(inside(root, p))));
    ops.extend(cfg.read_only_paths.iter().map(|p| Op::ReadOnlyPath(inside(root, p))));
}

/// The device nodes of the minimal /dev with `--rootfs` (bound from the host's /dev, as bwrap does).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// `dst` (absolute inside the sandbox) as a host path under `root`.
fn inside(root: &Path, dst: &Path) -> PathBuf {
    root.join(dst.strip_prefix("/").unwrap_or(dst))
}

/// Builds the mount plan for a run.
pub fn build(cfg: &Config) -> Vec<Op> {
    let mut ops = vec![Op::MakePrivate];
    if let (Some(layers), Some(root)) = (&cfg.layers, &cfg.rootfs) {
        ops.extend(overlay(layers, root));
    }
    match &cfg.rootfs {
        None => host_view(cfg, &mut ops),
        Some(root) => rootfs_view(cfg, root, &mut ops),
    }
    ops
}

/// The host's files through a private mount namespace, contained like a root filesystem: our
/// own /proc, /tmp, a fresh read-only /sys, the minimal /dev, and nodev on every host mount, so
/// that neither a host device node nor one the command makes (CAP_MKNOD) can be opened. Nothing
/// is created on the host's filesystem: bind and tmpfs targets must exist. `--privileged` keeps
/// the host's /sys and /dev (docker's --privileged gives every device too).
fn host_view(cfg: &Config, ops: &mut Vec<Op>) {
    let root = Path::new("/");
    if cfg.read_only {
        ops.push(Op::ReadOnly(root.into()));
    }
    if !cfg.privileged {
        ops.push(Op::NoDev(root.into()));
    }
    ops.push(Op::Proc("/proc".into()));
    sysctl(cfg, root, ops);
    if !cfg.privileged {
        // In place of the host's /sys and its submounts (the host's cgroupfs, debugfs,
        // securityfs, bpf, …): detached where the kernel lets us, covered where it does not (the
        // command has no mount calls to uncover them: seccomp, no SYS_ADMIN).
        ops.push(Op::Detach("/sys".into()));
        ops.push(Op::Sysfs("/sys".into()));
    }
    protect(cfg, root, ops);
    ops.push(Op::Tmpfs { dst: "/tmp".into(), mode: 0o1777, size: None });
    if cfg.privileged {
        ops.push(Op::Tmpfs { dst: "/dev/shm".into(), mode: 0o1777, size: Some(cfg.shm_size) });
    } else {
        dev_view(cfg, root, ops);
    }
    let later = user_mounts(cfg, root, ops, false);
    ops.extend(later);
}

/// pivot_root into `root` with a minimal /dev, a fresh /proc and read-only /sys.
fn rootfs_view(cfg: &Config, root: &Path, ops: &mut Vec<Op>) {
    ops.push(Op::BindSelf(root.to_path_buf()));
    // With no device cgroup, nodev is what keeps a device node out of reach: one an image ships
    // (`b 8 0`: the host's disk) or one the command makes with CAP_MKNOD. /dev gets its own
    // tmpfs (nodev too) with the few devices bound in, each with nodev cleared on its own bind.
    if !cfg.privileged {
        ops.push(Op::NoDev(root.to_path_buf()));
    }
    // Mount targets are made before the root turns read-only (targets under /dev live on the
    // tmpfs mounted there later and are made then).
    for d in ["proc", "sys", "dev"] {
        ops.push(Op::Mkdir(root.join(d)));
    }
    let early = |dst: &Path| !dst.starts_with("/dev");
    for b in cfg.binds.iter().filter(|b| early(&b.dst)) {
        ops.push(target_op(&b.src, inside(root, &b.dst)));
    }
    for t in cfg.tmpfs.iter().filter(|t| early(&t.dst)) {
        ops.push(Op::Mkdir(inside(root, &t.dst)));
    }
    if cfg.read_only {
        ops.push(Op::ReadOnly(root.to_path_buf()));
    }
    // In the order of runc's and the runtime-tools' default config.json (/proc, /dev and what
    // lies below it, then /sys): the suite checks that /proc/self/mountinfo lists them so.
    ops.push(Op::Proc(root.join("proc")));
    sysctl(cfg, root, ops);
    dev_view(cfg, root, ops);
    ops.push(Op::Sysfs(root.join("sys")));
    protect(cfg, root, ops);
    let later = user_mounts(cfg, root, ops, true);
    ops.push(Op::PivotRoot(root.to_path_buf()));
    // pivot_root refuses a shared new root: its propagation comes after, then each mount's own
    // (which a recursive root type would otherwise overwrite). Paths as the command sees them.
    if let Some(kind) = &cfg.rootfs_propagation {
        ops.push(Op::Propagation { dst: "/".into(), kind: kind.clone() });
    }
    ops.extend(later);
}

/// The minimal /dev under `root`: a tmpfs with null zero full random urandom tty bound in, a
/// private devpts instance (its own ptys only, never the outer terminal's), ptmx, a sized
/// /dev/shm, and the fd links.
fn dev_view(cfg: &Config, root: &Path, ops: &mut Vec<Op>) {
    let dev = root.join("dev");
    ops.push(Op::Tmpfs { dst: dev.clone(), mode: 0o755, size: Some(DEV_SIZE) });
    for d in DEVICES {
        ops.push(Op::Device { name: d, dst: dev.join(d) });
    }
    ops.push(Op::Mkdir(dev.join("pts")));
    ops.push(Op::Devpts(dev.join("pts")));
    ops.push(Op::Symlink { target: "pts/ptmx".into(), link: dev.join("ptmx") });
    ops.push(Op::Mkdir(dev.join("shm")));
    ops.push(Op::Tmpfs { dst: dev.join("shm"), mode: 0o1777, size: Some(cfg.shm_size) });
    if cfg.mqueue {
        ops.push(Op::Mkdir(dev.join("mqueue")));
        ops.push(Op::Mqueue(dev.join("mqueue")));
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink { target: target.into(), link: dev.join(name) });
    }
    for d in &cfg.devices {
        let dst = inside(root, &d.path);
        if let Some(parent) = dst.parent().filter(|p| *p != dev) {
            ops.push(Op::Mkdir(parent.to_path_buf()));
        }
        ops.push(Op::Mknod(crate::config::DeviceNode { path: dst, ..d.clone() }));
    }
}

/// An OCI config's sysctls, written through the fresh /proc at `root`.
fn sysctl(cfg: &Config, root: &Path, ops: &mut Vec<Op>) {
    for (k, v) in &cfg.sysctl {
        let path = root.join("proc/sys").join(k.replace('.', "/"));
        ops.push(Op::Sysctl { path, value: v.clone() });
    }
}

/// /dev holds only mount points and links: a small cap keeps the command from filling memory there.
const DEV_SIZE: u64 = 64 << 10;

/// The cgroup filesystem the command sees at /sys/fs/cgroup, rooted at its own group by the
/// cgroup namespace and read-only (as docker mounts it; read-write with `--privileged`): it can
/// neither leave its group nor touch any other group of the host. v2: one cgroup2 mount. v1 and
/// hybrid: a tmpfs with one mount per hierarchy the run has a group in (`cpu,cpuacct` with the
/// usual `cpu` and `cpuacct` links), then read-only, all of it. Executed by the child after it
/// entered its cgroup namespace, i.e. after the pivot: paths are as the command sees them.
pub fn cgroup_view(cfg: &Config, hierarchies: &CgroupHierarchies) -> Vec<Op> {
    let at = PathBuf::from("/sys/fs/cgroup");
    // With --privileged the host view keeps the host's /sys, and cgroup2 refuses to be mounted
    // on a mount of its own superblock (EBUSY): the host's goes first. Elsewhere a no-op.
    let mut ops = vec![Op::Detach(at.clone())];
    match hierarchies {
        CgroupHierarchies::V2 => ops.push(Op::Cgroup { dst: at.clone(), v1_controllers: None }),
        CgroupHierarchies::V1(names) => {
            ops.push(Op::Tmpfs { dst: at.clone(), mode: 0o755, size: Some(DEV_SIZE) });
            for n in names {
                ops.push(Op::Mkdir(at.join(n)));
                ops.push(Op::Cgroup { dst: at.join(n), v1_controllers: Some(n.clone()) });
                if n.contains(',') {
                    for c in n.split(',') {
                        ops.push(Op::Symlink { target: n.into(), link: at.join(c) });
                    }
                }
            }
        }
    }
    if !cfg.privileged {
        ops.push(Op::ReadOnly(at));
    }
    ops
}

/// The cgroup hierarchies a run's group lives in, as [`cgroup_view`] mounts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupHierarchies {
    V2,
    /// The v1 hierarchies by their mount directory names (`memory`, `cpu,cpuacct`, `pids`).
    V1(Vec<String>),
}

fn target_op(src: &Path, dst: PathBuf) -> Op {
    if src.is_dir() {
        Op::Mkdir(dst)
    } else {
        Op::Touch(dst)
    }
}

/// `--bind` and `--tmpfs` (binds first, each in the order given), or an OCI config's in its
/// order, after our own mounts so that they can override them. Returns their propagation
/// operations, for after the pivot (paths as the command sees them).
fn user_mounts(cfg: &Config, root: &Path, ops: &mut Vec<Op>, rootfs: bool) -> Vec<Op> {
    let mut later = Vec::new();
    enum M<'a> {
        B(&'a crate::config::Bind),
        T(&'a crate::config::Tmpfs),
    }
    let mut all: Vec<M> = cfg.binds.iter().map(M::B).chain(cfg.tmpfs.iter().map(M::T)).collect();
    all.sort_by_key(|m| match m {
        M::B(b) => b.opts.seq,
        M::T(t) => t.opts.seq,
    });
    for m in all {
        let opts = match m {
            M::B(b) => &b.opts,
            M::T(t) => &t.opts,
        };
        let dst = match m {
            M::B(b) => inside(root, &b.dst),
            M::T(t) => inside(root, &t.dst),
        };
        match m {
            M::B(b) => {
                if rootfs && b.dst.starts_with("/dev") {
                    ops.push(target_op(&b.src, dst.clone()));
                }
                // Under --read-only a bind inherits read-only from where its source sits in our
                // namespace, so a writable bind must clear it explicitly.
                let read_only = if b.read_only {
                    Some(true)
                } else if cfg.read_only {
                    Some(false)
                } else {
                    None
                };
                let recursive = !opts.non_recursive;
                let src = b.src.clone();
                ops.push(match &opts.idmap {
                    Some(maps) => {
                        Op::IdmapBind { src, dst: dst.clone(), read_only, recursive, maps: maps.clone(), userns: None }
                    }
                    None => Op::Bind { src, dst: dst.clone(), read_only, recursive },
                });
                // A bind is a new mount with its source's flags: writable host directories allow devices.
                if !cfg.privileged {
                    ops.push(Op::NoDev(dst.clone()));
                }
            }
            M::T(t) => {
                if rootfs && t.dst.starts_with("/dev") {
                    ops.push(Op::Mkdir(dst.clone()));
                }
                ops.push(Op::Tmpfs { dst: dst.clone(), mode: opts.mode.unwrap_or(0o1777), size: t.size });
            }
        }
        if opts.nosuid || opts.noexec {
            let recursive = !opts.non_recursive;
            ops.push(Op::Attrs { dst: dst.clone(), nosuid: opts.nosuid, noexec: opts.noexec, recursive });
        }
        if let Some(kind) = &opts.propagation {
            let dst = match m {
                M::B(b) => b.dst.clone(),
                M::T(t) => t.dst.clone(),
            };
            later.push(Op::Propagation { dst, kind: kind.clone() });
        }
    }
    later
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
