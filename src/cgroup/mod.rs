//! One cgroup per run, on cgroup v2 or v1/hybrid behind one interface.
//!
//! Groups are created only below the cgroup the invoking process is already in (per controller on
//! v1, as runc does) or below `--cgroup-parent`. A group is named `sandbox-<id>-<owner pid>`: the
//! owner pid lets `gc` tell a stale group (its sandbox is gone) from one a live run is using.
//!
//! All paths come in through [`Host`], so tests build a fake cgroupfs in a tempdir.

pub mod detect;
mod freeze;
mod gc;
pub mod live;
pub(crate) mod pressure;
pub mod stats;
mod teardown;
mod update;
mod v1;
pub(crate) mod v2;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use detect::Layout;
pub use stats::Stats;

use crate::config::Limits;
use crate::error::{Error, Result};

/// The v1 controllers a run uses: limits on memory, cpu and pids; accounting from cpuacct and
/// blkio (and its io limits); cpuset for `--cpuset-*` only; freezer for `pause`/`unpause`. blkio,
/// cpuset and freezer are optional: a host without them (or whose group we cannot see) runs
/// without, io figures unknown, and refuses their limits (and `pause`). devices only for an OCI
/// config's device rules (v1/devices.rs), optional as well.
pub const V1_CONTROLLERS: [&str; 8] = ["memory", "cpu", "cpuacct", "pids", "blkio", "cpuset", "freezer", "devices"];
const V1_OPTIONAL: [&str; 4] = ["blkio", "cpuset", "freezer", "devices"];

/// CFS period used for `--cpus` (the kernel's default, as docker uses).
pub const CPU_PERIOD_US: u64 = 100_000;

/// A run's cgroup, whatever the layout.
pub trait Cgroup {
    /// 1 or 2.
    fn version(&self) -> u8;
    /// The group's directory (on v1: the memory controller's, else the first).
    fn path(&self) -> &Path;
    /// Every directory of the group, by controller ("" on v2).
    fn paths(&self) -> BTreeMap<String, PathBuf>;
    /// Moves a process into the group (all its controllers).
    fn add_pid(&self, pid: i32) -> Result<()>;
    /// Moves the child `pid` into the group, or returns files (a v1 group's `tasks`, opened for
    /// writing) for the child to write "0" to itself: a task moving itself skips the RCU grace
    /// period the parent's write to cgroup.procs waits for. v1 returns the files; v2 moves it here
    /// (there "0" to cgroup.procs still locks the thread group, and cgroup.threads cannot cross
    /// domains).
    fn join_files(&self, pid: i32) -> Result<Vec<std::fs::File>>;
    /// What the group used, from the kernel's stat files.
    fn stats(&self) -> Stats;
    /// What the group holds now, for one sample: only the files a sample needs.
    fn now(&self) -> stats::Now;
    /// CPU time used so far by everything in the group (v2 cpu.stat usage_usec, v1
    /// cpuacct.usage), read from one file: what `--cpu-time` polls. `None` if unreadable.
    fn cpu_usage(&self) -> Option<std::time::Duration>;
    /// SIGKILLs everything in the group and in every group below it (cgroup.kill where the kernel
    /// has it), as a command with CAP_SYS_ADMIN may have made subgroups.
    fn kill(&self);
    /// Kills what is left and removes the group with its subgroups, depth-first, retrying while
    /// the kernel reports a group busy.
    fn remove(&self) -> Result<()>;
    /// Freezes (`true`: `pause`) or thaws (`unpause`) every task of the group and its subgroups,
    /// and returns once the kernel says it is done (v2 cgroup.freeze, v1 the freezer controller).
    fn freeze(&self, on: bool) -> Result<()>;
    /// Whether the group is frozen now; `None` where it has no freezer.
    fn frozen(&self) -> Option<bool>;
    /// The memory and pids limits the group has now (`None`: none, or unknown).
    fn configured(&self) -> Configured;
    /// Writes the limits set in `limits` (the others stay) to the live group, all or nothing: see
    /// [`update`]. Refuses a memory limit below the group's current usage.
    fn update(&self, limits: &Limits) -> Result<()>;
}

/// The limits a live group has now, as `stats` shows them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Configured {
    /// v2 memory.max; v1 memory.limit_in_bytes. `None`: unlimited.
    pub memory_max: Option<u64>,
    /// pids.max. `None`: unlimited.
    pub pids_max: Option<u64>,
}

/// Where this host's cgroup hierarchies are and where the invoking process sits in them.
#[derive(Debug, Clone)]
pub struct Host {
    pub layout: Layout,
    /// The cgroup filesystem root, normally /sys/fs/cgroup.
    pub root: PathBuf,
    /// v1 mounts by controller (empty on a pure v2 host).
    pub v1: BTreeMap<String, detect::V1Mount>,
    /// This process's cgroup per controller ("" for v2).
    pub own: BTreeMap<String, String>,
    /// Hybrid hosts: our own cgroup in the controller-less cgroup2 at `unified/`, under which each
    /// run also gets a group, only for its pressure files (see [`unified_base`]). `None` elsewhere.
    pub unified: Option<PathBuf>,
}

impl Host {
    /// Reads the layout (statfs of `root`) and /proc/self/{mountinfo,cgroup}.
    pub fn detect(root: &Path) -> Result<Host> {
        let layout = Layout::detect(root)?;
        let read = |p: &str| crate::sys::read_small(p).map_err(|e| Error::io("cannot read", p, e));
        let mountinfo = match layout {
            Layout::Unified => String::new(),
            _ => read("/proc/self/mountinfo")?,
        };
        let v1 = detect::v1_mounts(&mountinfo);
        let own = detect::own_cgroups(&read("/proc/self/cgroup")?);
        let unified = match layout {
            Layout::Hybrid => unified_base(root, &mountinfo, &own),
            _ => None,
        };
        Ok(Host { layout, root: root.to_path_buf(), v1, own, unified })
    }

    /// The version of the hierarchy that carries the resource controllers.
    pub fn version(&self) -> u8 {
        if self.layout == Layout::Unified {
            2
        } else {
            1
        }
    }

    /// The hierarchies a run's group lives in, as the command's /sys/fs/cgroup shows them. cpuset
    /// only when `limits` make a group there: the command's cgroup namespace is rooted at its own
    /// group in each hierarchy, and in one without a group that is sandbox's (the host's root).
    pub fn hierarchies(&self, limits: &Limits) -> crate::plan::CgroupHierarchies {
        if self.layout == Layout::Unified {
            return crate::plan::CgroupHierarchies::V2;
        }
        let mut names: Vec<String> = vec![];
        // Not freezer: the command's view stays what it was before `pause` existed.
        let shown = |c: &&str| {
            *c != "freezer"
                && (*c != "cpuset" || limits.wants_cpuset())
                && (*c != "devices" || v1::wants_devices(limits))
        };
        for c in V1_CONTROLLERS.into_iter().filter(shown) {
            if let Some(n) = self.v1.get(c).map(|m| m.controllers.join(",")).filter(|n| !names.contains(n)) {
                names.push(n);
            }
        }
        crate::plan::CgroupHierarchies::V1(names)
    }

    /// The directories under which a run's group is made: one on v2, one per controller on v1.
    /// `parent` (from `--cgroup-parent`) is relative to the hierarchy root, or with a leading `./`
    /// (an OCI relative cgroupsPath) to our own cgroup in each hierarchy; default: our own cgroup.
    pub fn bases(&self, parent: Option<&str>) -> Result<BTreeMap<String, PathBuf>> {
        let pick = |key: &str| {
            let own = self.own.get(key).cloned().unwrap_or_else(|| "/".into());
            match parent {
                Some(p) if p.starts_with("./") => format!("{}/{}", own.trim_end_matches('/'), &p[2..]),
                Some(p) => format!("/{}", p.trim_start_matches('/')),
                None => own,
            }
        };
        let mut out = BTreeMap::new();
        if self.layout == Layout::Unified {
            out.insert(String::new(), self.root.join(pick("").trim_start_matches('/')));
            return Ok(out);
        }
        for c in V1_CONTROLLERS {
            let Some(m) = self.v1.get(c) else { continue };
            let cg = pick(c);
            let dir = detect::under_mount(&m.mount_point, &m.root, &cg);
            if dir.is_none() && V1_OPTIONAL.contains(&c) {
                continue;
            }
            let dir = dir.ok_or_else(|| Error::Unsupported {
                limit: "cgroups",
                reason: format!("cgroup {cg} of the {c} controller is not visible under {}", m.mount_point.display()),
            })?;
            out.insert(c.to_string(), dir);
        }
        Ok(out)
    }

    /// Creates the run's group named `name` with `limits` applied. On error nothing is left.
    /// `ours`: sandbox's own processes, which on v2 may move to a leaf (see [`v2::V2::create`]).
    /// `premade`: the hybrid run's cgroup2 group was made by this run ([`Host::premake_unified`]
    /// returned it), so create adopts it; otherwise a group already there is refused.
    pub fn create(
        &self,
        parent: Option<&str>,
        name: &str,
        limits: &Limits,
        ours: &[i32],
        premade: bool,
    ) -> Result<Box<dyn Cgroup>> {
        let bases = self.bases(parent)?;
        Ok(match self.layout {
            Layout::Unified => Box::new(v2::V2::create(&bases[""], name, limits, ours)?),
            _ => {
                let unified = self.unified_dir(parent, name).map(|d| (d, premade));
                Box::new(v1::V1::create(&bases, unified, name, limits)?)
            }
        })
    }

    /// Hybrid hosts: the run's group in the cgroup2 at `unified/`, always below our own group
    /// there (see [`unified_base`]), at the whole of its path: `parent` (`./a/b` or `/a/b`) then
    /// `name`, so that cgroupsPaths `rA/c1` and `rB/c1` get two groups, not one shared `c1`
    /// (red-team 19, hole 1). Where that parent does not exist there (a `--cgroup-parent` that
    /// names a v1 group; an OCI cgroupsPath's parents are made by cgroups_path::make_parents),
    /// directly below our own group as before.
    pub fn unified_dir(&self, parent: Option<&str>, name: &str) -> Option<PathBuf> {
        let own = self.unified.as_ref()?;
        let rel = parent.unwrap_or("").trim_start_matches("./").trim_matches('/');
        let under = own.join(rel);
        Some(if rel.is_empty() || !under.is_dir() { own.join(name) } else { under.join(name) })
    }

    /// Hybrid hosts: makes the run's cgroup2 group (see [`unified_base`]) before the child is
    /// cloned, and opens it, so that the child is born in it (CLONE_INTO_CGROUP) rather than
    /// moved there, which would wait for an RCU grace period (~5-9 ms). [`Host::create`] then
    /// adopts the directory. `None` where there is no such group, or it cannot be made (then the
    /// run goes on without it, as create would).
    ///
    /// `Some` only when this call made the directory: a group already there (someone else's, or
    /// another container's) is never returned, and [`Host::create`] then refuses it.
    pub fn premake_unified(&self, parent: Option<&str>, name: &str) -> Option<(PathBuf, std::fs::File)> {
        let dir = self.unified_dir(parent, name)?;
        std::fs::create_dir(&dir).ok()?;
        let open = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(&dir);
        match open {
            Ok(f) => Some((dir, f)),
            Err(_) => {
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    }

    /// The group of a live run from its directories (as [`Cgroup::paths`] gave them when it was
    /// made, e.g. recorded in a container's state): `pause`, `update`, `stats` and `top` work on it.
    pub fn open(&self, paths: &BTreeMap<String, PathBuf>) -> Result<Box<dyn Cgroup>> {
        open(self.version(), paths)
    }

    /// The directories of the run group that process `pid` is in (from /proc/PID/cgroup): on v1
    /// only the hierarchies where it is in a group named like ours (`sandbox-*`), so that a
    /// hierarchy where the run made no group (cpuset without a cpuset limit) is never taken for it.
    pub fn group_of(&self, pid: i32) -> Result<BTreeMap<String, PathBuf>> {
        let f = format!("/proc/{pid}/cgroup");
        let text = crate::sys::read_small(&f).map_err(|e| Error::io("cannot read", &f, e))?;
        let theirs = detect::own_cgroups(&text);
        let ours = |cg: &str| cg.rsplit('/').next().is_some_and(|n| owner_pid(n).is_some());
        let mut out = BTreeMap::new();
        if self.layout == Layout::Unified {
            if let Some(cg) = theirs.get("").filter(|c| ours(c)) {
                out.insert(String::new(), self.root.join(cg.trim_start_matches('/')));
            }
            return Ok(out);
        }
        for c in V1_CONTROLLERS {
            let (Some(m), Some(cg)) = (self.v1.get(c), theirs.get(c)) else { continue };
            if let Some(dir) = detect::under_mount(&m.mount_point, &m.root, cg).filter(|_| ours(cg)) {
                out.insert(c.to_string(), dir);
            }
        }
        Ok(out)
    }
}

/// Where a hybrid host's runs get their group in the cgroup2 at `root/unified`: the directory of
/// our own cgroup there (the `0::` line of /proc/self/cgroup), never anywhere else, and only when
/// the kernel has PSI (/proc/pressure; not with `psi=0`) and we may make a group there. A cgroup2
/// group has cpu/memory/io.pressure and cpu.stat without any controller enabled, which is how
/// systemd gets them on such hosts: the v1 groups have no pressure files. Joining it also roots
/// the run's cgroup namespace at that group in the cgroup2 hierarchy, where before it was rooted
/// at ours (the host's root here): a command with CAP_SYS_ADMIN that mounted cgroup2 saw every
/// group of the host and could move itself into any of them.
fn unified_base(root: &Path, mountinfo: &str, own: &BTreeMap<String, String>) -> Option<PathBuf> {
    let m = detect::cgroup2_mount(mountinfo, &root.join("unified"))?;
    let dir = detect::under_mount(&m.mount_point, &m.root, own.get("")?)?;
    let ok = Path::new("/proc/pressure").is_dir() && nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok();
    ok.then_some(dir)
}

/// The group of a live run from its cgroup version and directories by controller (as
/// [`Cgroup::version`] and [`Cgroup::paths`] gave them when it was made, e.g. recorded in a
/// container's state): `pause`, `update`, `stats` and `top` work on it.
pub fn open(version: u8, paths: &BTreeMap<String, PathBuf>) -> Result<Box<dyn Cgroup>> {
    let Some(first) = paths.values().next() else {
        return Err(Error::Unsupported { limit: "cgroups", reason: "the container has no cgroup".into() });
    };
    Ok(match version {
        2 => Box::new(v2::V2::open(first)),
        _ => Box::new(v1::V1::open(paths)),
    })
}

/// New device rules (devices.allow/deny entries) for a live group (`update`): on v2 a new device
/// program replaces the group's; on v1 the entries are written to its devices group, which exists
/// only when it was made with rules.
pub fn update_devices(
    version: u8,
    paths: &BTreeMap<String, PathBuf>,
    rules: &[crate::limits::CgroupConf],
) -> Result<()> {
    let l = Limits { cgroup_conf: rules.to_vec(), ..Default::default() };
    let dir = paths.get(if version == 2 { "" } else { "devices" });
    match (version, dir) {
        (2, Some(dir)) => v2::devices::apply(dir, &l),
        (1, Some(dir)) => v1::apply_devices(dir, &l),
        _ => Err(Error::Unsupported {
            limit: "linux.resources.devices",
            reason: "the container was created without device rules, so it has no devices group (cgroup v1)".into(),
        }),
    }
}

/// SIGKILLs everything in the groups at `dirs` and below them (cgroup.kill where the kernel has
/// it), for a group known only by its directories: a container's, from its state file.
pub fn kill_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) {
    for d in freezer_first(dirs) {
        if !teardown::write_kill(d) {
            teardown::kill_tree(d);
        }
    }
}

/// `dirs` with a v1 freezer group first: a task the v1 freezer froze (`pause`) dies of SIGKILL
/// only once thawed, which killing its freezer group does (teardown::kill_tree_within); killing
/// another hierarchy's group first would wait for it in vain.
fn freezer_first<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Vec<&'a Path> {
    let mut v: Vec<&Path> = dirs.into_iter().collect();
    v.sort_by_key(|d| !d.join("freezer.state").exists());
    v
}

/// Kills what is left in the groups at `dirs` and removes them with their subgroups, depth-first.
/// A directory already gone is fine.
pub fn remove_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let mut res = Ok(());
    for d in freezer_first(dirs) {
        if let Err(e) = teardown::remove_tree(d) {
            res = Err(e);
        }
    }
    res
}

/// The group name for run `id` owned by this process.
pub fn group_name(id: &str) -> String {
    format!("sandbox-{id}-{}", owner_suffix())
}

/// The inode of the initial pid namespace (PROC_PID_INIT_INO, include/linux/proc_ns.h).
pub(crate) const INITIAL_PID_NS: u64 = 0xEFFF_FFFC;

/// This process's pid namespace (the inode of /proc/self/ns/pid), read once.
pub(crate) fn own_pid_namespace() -> Option<u64> {
    static NS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
    })
}

/// How a group's name ends to say which process owns it: its pid, and outside the initial pid
/// namespace also that namespace (`1203-ns4026532345`). A pid means something only in its own
/// pid namespace: a sandbox inside a container (or `unshare -p`) named its groups with a pid that,
/// read by the host's gc, was some other process or none, so the host killed its live runs as
/// stale, or (as PID 1 of its namespace, `-1`) kept its groups for ever once it was SIGKILLed.
pub(crate) fn owner_suffix() -> String {
    let pid = std::process::id();
    match own_pid_namespace() {
        Some(ns) if ns != INITIAL_PID_NS => format!("{pid}-ns{ns}"),
        _ => pid.to_string(),
    }
}

/// The owner of a group named by [`group_name`]: its pid, and its pid namespace when the name
/// says (`None`: the initial one, or a name of a sandbox from before the namespace was named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub pid: u32,
    pub pid_ns: Option<u64>,
}

/// The owner of a group named `sandbox-…-<pid>[-ns<inode>]`.
pub fn owner(name: &str) -> Option<Owner> {
    let rest = name.strip_prefix("sandbox-")?;
    let (rest, pid_ns) = match rest.rsplit_once("-ns").and_then(|(r, ns)| Some((r, ns.parse::<u64>().ok()?))) {
        Some((r, ns)) => (r, Some(ns)),
        None => (rest, None),
    };
    Some(Owner { pid: rest.rsplit_once('-')?.1.parse().ok()?, pid_ns })
}

/// The owner pid of a group named by [`group_name`].
pub fn owner_pid(name: &str) -> Option<u32> {
    owner(name).map(|o| o.pid)
}

/// Writes `value` to a cgroup file; the error names the file and the value.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Writes the `--cgroup-conf` files, each into the group's directory for its controller (its
/// name's prefix; `dir_for` gives `None` when the run has no group there). A file the group does
/// not have is refused: the value would otherwise create a plain file nobody reads (fake
/// cgroupfs) or fail with a bare ENOENT/EACCES.
pub(crate) fn write_conf(conf: &[crate::limits::CgroupConf], dir_for: impl Fn(&str) -> Option<PathBuf>) -> Result<()> {
    for c in conf {
        let ctrl = c.file.split('.').next().unwrap_or_default();
        let spec = format!("{}={}", c.file, c.value);
        let Some(dir) = dir_for(ctrl) else {
            let why = format!("a file of a controller the run's group has ({ctrl} is not one of them)");
            return Err(Error::invalid("--cgroup-conf", &spec, &why));
        };
        let path = dir.join(&c.file);
        if !path.is_file() {
            let why = format!("a file of the run's group ({} has no {})", dir.display(), c.file);
            return Err(Error::invalid("--cgroup-conf", &spec, &why));
        }
        write(&path, &c.value)?;
    }
    Ok(())
}

/// Reads a cgroup file, `None` when the kernel does not have it.
pub(crate) fn read(path: &Path) -> Option<String> {
    crate::sys::read_small(path).ok()
}

/// The pids in a group's cgroup.procs.
pub(crate) fn procs(dir: &Path) -> Vec<i32> {
    read(&dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Every process of the group `g` and of its subgroups (cgroup.procs of the subtree).
pub fn members(g: &dyn Cgroup) -> Vec<i32> {
    let mut pids: Vec<i32> = teardown::subtree(g.path()).iter().flat_map(|d| procs(d)).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// rmdir(2) that retries while the kernel still reports the group busy (dying tasks, EBUSY).
pub(crate) fn rmdir_retry(dir: &Path) -> Result<()> {
    let mut wait = Duration::from_micros(500);
    let mut last = None;
    for _ in 0..16 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(200));
    }
    Err(Error::io("cannot remove cgroup", dir, last.unwrap()))
}

/// Removes directories already created, newest first (error-path cleanup of a half-made group).
pub(crate) fn undo(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = rmdir_retry(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_carry_the_owner_pid() {
        let n = group_name("abc123");
        assert_eq!(owner_pid(&n), Some(std::process::id()));
        assert_eq!(owner_pid("sandbox-abc-17"), Some(17));
        assert_eq!(owner_pid("sandbox-abc"), None);
        assert_eq!(owner_pid("other-abc-17"), None);
        // Outside the initial pid namespace the name carries that namespace too.
        assert_eq!(owner("sandbox-abc-17-ns4026532345"), Some(Owner { pid: 17, pid_ns: Some(4026532345) }));
        assert_eq!(owner("sandbox-abc-17"), Some(Owner { pid: 17, pid_ns: None }));
        // An id may hold "-ns" itself.
        assert_eq!(owner("sandbox-my-ns12-77"), Some(Owner { pid: 77, pid_ns: None }));
        assert_eq!(owner("sandbox-a-ns5-77-ns99"), Some(Owner { pid: 77, pid_ns: Some(99) }));
        assert_eq!(owner("sandbox-abc-ns99"), None);
        let own = owner(&n).unwrap();
        assert_eq!(own.pid_ns.is_some(), own_pid_namespace() != Some(INITIAL_PID_NS), "{n}");
    }

    pub(super) fn fake_v1(tmp: &Path) -> Host {
        let mut v1 = BTreeMap::new();
        for c in ["memory", "cpu", "cpuacct", "pids"] {
            let mp = tmp.join(c);
            std::fs::create_dir_all(mp.join("user")).unwrap();
            v1.insert(c.into(), detect::V1Mount { mount_point: mp, root: "/".into(), controllers: vec![c.into()] });
        }
        let own = [("memory", "/user"), ("cpu", "/"), ("cpuacct", "/"), ("pids", "/")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Host { layout: Layout::Hybrid, root: tmp.into(), v1, own, unified: None }
    }

    #[test]
    fn v1_groups_nest_under_our_own_cgroup_per_controller() {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_v1(tmp.path());
        let b = host.bases(None).unwrap();
        assert_eq!(b["memory"], tmp.path().join("memory/user"));
        assert_eq!(b["pids"], tmp.path().join("pids"));
        let b = host.bases(Some("jobs")).unwrap();
        assert_eq!(b["memory"], tmp.path().join("memory/jobs"));
    }

    #[test]
    fn hybrid_runs_get_a_cgroup2_group_too_made_last_and_removed_with_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let mut host = fake_v1(tmp.path());
        let base = tmp.path().join("unified");
        std::fs::create_dir(&base).unwrap();
        host.unified = Some(base.clone());
        // A bad value leaves nothing, in the cgroup2 hierarchy either.
        let bad = Limits { swap_bytes: Some(1), ..Default::default() };
        assert!(host.create(None, "sandbox-x-1", &bad, &[], false).is_err());
        assert!(!base.join("sandbox-x-1").exists());
        let g = host.create(None, "sandbox-x-1", &Limits::default(), &[], false).unwrap();
        assert_eq!(g.paths()["unified"], base.join("sandbox-x-1"));
        assert!(base.join("sandbox-x-1").is_dir());
        g.remove().unwrap();
        assert!(!base.join("sandbox-x-1").exists() && !tmp.path().join("pids/sandbox-x-1").exists());
        // gc looks there too, under our own cgroup even with --cgroup-parent.
        let dead = base.join("sandbox-b-999999999");
        std::fs::create_dir_all(dead.join("sub")).unwrap();
        assert_eq!(host.gc(Some("jobs")), vec![dead.clone()]);
        assert!(!dead.exists());
    }

    #[test]
    fn the_cgroup2_base_is_our_own_group_there_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let at = tmp.path().join("unified");
        std::fs::create_dir_all(at.join("user/me")).unwrap();
        std::fs::create_dir_all(at.join("me")).unwrap();
        let line = |root: &str| format!("41 31 0:38 {root} {} rw,relatime - cgroup2 cgroup2 rw\n", at.display());
        let own = |p: &str| BTreeMap::from([(String::new(), p.to_string())]);
        if !Path::new("/proc/pressure").is_dir() {
            assert_eq!(unified_base(tmp.path(), &line("/"), &own("/user/me")), None, "no PSI: no group");
            return;
        }
        assert_eq!(unified_base(tmp.path(), &line("/"), &own("/user/me")), Some(at.join("user/me")));
        // A container's mount rooted at its own cgroup: the path under it.
        assert_eq!(unified_base(tmp.path(), &line("/user"), &own("/user/me")), Some(at.join("me")));
        // Our cgroup is not visible through the mount, or there is no 0:: line: nowhere else.
        assert_eq!(unified_base(tmp.path(), &line("/other"), &own("/user/me")), None);
        assert_eq!(unified_base(tmp.path(), &line("/"), &BTreeMap::new()), None);
        // Not a cgroup2 there (legacy): nothing.
        assert_eq!(unified_base(tmp.path(), &line("/").replace(" cgroup2 ", " tmpfs "), &own("/")), None);
    }
}
