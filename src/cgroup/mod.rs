//! One cgroup per run, on cgroup v2 or v1/hybrid behind one interface.
//!
//! Groups are created only below the cgroup the invoking process is already in (per controller on
//! v1, as runc does) or below `--cgroup-parent`. A group is named `sandbox-<id>-<owner pid>`: the
//! owner pid lets `gc` tell a stale group (its sandbox is gone) from one a live run is using.
//!
//! All paths come in through [`Host`], so tests build a fake cgroupfs in a tempdir.

pub mod detect;
mod pressure;
pub mod stats;
mod teardown;
mod v1;
pub(crate) mod v2;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use detect::Layout;
pub use stats::Stats;

use crate::config::Limits;
use crate::error::{Error, Result};

/// The v1 controllers a run uses: limits on memory, cpu and pids; accounting from cpuacct and
/// blkio (and its io limits); cpuset for `--cpuset-*` only. blkio and cpuset are optional: a host
/// without them (or whose group we cannot see) runs without, io figures unknown, and refuses
/// their limits.
pub const V1_CONTROLLERS: [&str; 6] = ["memory", "cpu", "cpuacct", "pids", "blkio", "cpuset"];
const V1_OPTIONAL: [&str; 2] = ["blkio", "cpuset"];

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
    /// period the parent's write to cgroup.procs waits for. Both v1 and v2 move it here for now
    /// (see V1::join_files).
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
}

impl Host {
    /// Reads the layout (statfs of `root`) and /proc/self/{mountinfo,cgroup}.
    pub fn detect(root: &Path) -> Result<Host> {
        let layout = Layout::detect(root)?;
        let read = |p: &str| crate::sys::read_small(p).map_err(|e| Error::io("cannot read", p, e));
        let v1 = match layout {
            Layout::Unified => BTreeMap::new(),
            _ => detect::v1_mounts(&read("/proc/self/mountinfo")?),
        };
        let own = detect::own_cgroups(&read("/proc/self/cgroup")?);
        Ok(Host { layout, root: root.to_path_buf(), v1, own })
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
        for c in V1_CONTROLLERS.into_iter().filter(|c| *c != "cpuset" || limits.wants_cpuset()) {
            if let Some(n) = self.v1.get(c).map(|m| m.controllers.join(",")).filter(|n| !names.contains(n)) {
                names.push(n);
            }
        }
        crate::plan::CgroupHierarchies::V1(names)
    }

    /// The directories under which a run's group is made: one on v2, one per controller on v1.
    /// `parent` (from `--cgroup-parent`) is relative to the hierarchy root; default: our own cgroup.
    pub fn bases(&self, parent: Option<&str>) -> Result<BTreeMap<String, PathBuf>> {
        let pick = |key: &str| {
            let p = parent.map(|p| format!("/{}", p.trim_start_matches('/')));
            p.or_else(|| self.own.get(key).cloned()).unwrap_or_else(|| "/".into())
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
    pub fn create(&self, parent: Option<&str>, name: &str, limits: &Limits, ours: &[i32]) -> Result<Box<dyn Cgroup>> {
        let bases = self.bases(parent)?;
        Ok(match self.layout {
            Layout::Unified => Box::new(v2::V2::create(&bases[""], name, limits, ours)?),
            _ => Box::new(v1::V1::create(&bases, name, limits)?),
        })
    }

    /// Removes stale groups: named `sandbox-*-<pid>` (runs, and the `sandbox-sup-<pid>` leaves of
    /// v2 supervisors) whose owner pid is gone. Whatever is still in one, subgroups included (a
    /// command may have made them), is killed and removed depth-first: only groups with our name
    /// pattern and a dead owner, so only groups we made. Returns the directories removed.
    pub fn gc(&self, parent: Option<&str>) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let Ok(bases) = self.bases(parent) else {
            return removed;
        };
        let mut seen = std::collections::BTreeSet::new();
        for base in bases.values().filter(|b| seen.insert(b.to_path_buf())) {
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(owner) = owner_pid(&name) else {
                    continue;
                };
                if alive(owner) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let dir = e.path();
                if teardown::remove_tree(&dir).is_ok() {
                    removed.push(dir);
                }
            }
        }
        removed
    }
}

/// SIGKILLs everything in the groups at `dirs` and below them (cgroup.kill where the kernel has
/// it), for a group known only by its directories: a container's, from its state file.
pub fn kill_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) {
    for d in dirs {
        if !teardown::write_kill(d) {
            teardown::kill_tree(d);
        }
    }
}

/// Kills what is left in the groups at `dirs` and removes them with their subgroups, depth-first.
/// A directory already gone is fine.
pub fn remove_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let mut res = Ok(());
    for d in dirs {
        if let Err(e) = teardown::remove_tree(d) {
            res = Err(e);
        }
    }
    res
}

/// Whether process `pid` exists and is not a zombie (a SIGKILLed sandbox whose parent has not
/// reaped it yet is gone for our purposes).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The group name for run `id` owned by this process.
pub fn group_name(id: &str) -> String {
    format!("sandbox-{id}-{}", std::process::id())
}

/// The owner pid of a group named by [`group_name`].
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("sandbox-")?;
    rest.rsplit_once('-')?.1.parse().ok()
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
    }

    fn fake_v1(tmp: &Path) -> Host {
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
        Host { layout: Layout::Hybrid, root: tmp.into(), v1, own }
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
    fn gc_removes_only_groups_whose_owner_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_v1(tmp.path());
        let live = tmp.path().join(format!("pids/sandbox-a-{}", std::process::id()));
        let dead = tmp.path().join("pids/sandbox-b-999999999");
        let other = tmp.path().join("pids/not-ours-999999999");
        for d in [&live, &dead, &other] {
            std::fs::create_dir(d).unwrap();
        }
        let removed = host.gc(None);
        assert_eq!(removed, vec![dead.clone()]);
        assert!(live.exists() && other.exists() && !dead.exists());
    }

    #[test]
    fn gc_removes_nested_stale_groups_depth_first_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_v1(tmp.path());
        // A command with CAP_SYS_ADMIN made subgroups in its run's group (see teardown.rs).
        let dead_mem = tmp.path().join("memory/user/sandbox-b-999999999");
        let dead_pids = tmp.path().join("pids/sandbox-b-999999999");
        let live = tmp.path().join(format!("pids/sandbox-a-{}", std::process::id()));
        let other = tmp.path().join("pids/not-ours-999999999");
        for g in [&dead_mem, &dead_pids, &live, &other] {
            std::fs::create_dir_all(g.join("sub/subsub")).unwrap();
        }
        std::fs::create_dir_all(dead_pids.join("sub2")).unwrap();
        let mut removed = host.gc(None);
        removed.sort();
        assert_eq!(removed, vec![dead_mem.clone(), dead_pids.clone()]);
        assert!(!dead_mem.exists() && !dead_pids.exists());
        assert!(live.join("sub/subsub").exists(), "a live run's subgroups are its own");
        assert!(other.join("sub/subsub").exists(), "not named by us: never touched");
    }
}
