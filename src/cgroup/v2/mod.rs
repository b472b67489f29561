//! cgroup v2: one directory, controllers enabled through the parent's cgroup.subtree_control.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod cpu;
mod io;
mod memory;
pub(crate) mod pids;

use super::{read, teardown, write, Cgroup, Stats};
use crate::config::Limits;
use crate::error::{Error, Result};

pub struct V2 {
    dir: PathBuf,
}

/// Makes sure `controller` is enabled for children of `base`. Returns whether it is.
/// A limit the user asked for that cannot be enabled is an error, never ignored.
fn enable(base: &Path, controller: &str, required: bool) -> Result<bool> {
    let listed = |f: &str| read(&base.join(f)).is_some_and(|t| t.split_whitespace().any(|c| c == controller));
    if listed("cgroup.subtree_control") {
        return Ok(true);
    }
    if !listed("cgroup.controllers") {
        if required {
            return Err(Error::Unsupported {
                limit: limit_name(controller),
                reason: format!(
                    "the {controller} controller is not available in {} (see its cgroup.controllers); \
                     enable it in the parent's cgroup.subtree_control or use --cgroup-parent",
                    base.display()
                ),
            });
        }
        return Ok(false);
    }
    match write(&base.join("cgroup.subtree_control"), &format!("+{controller}")) {
        Ok(()) => Ok(true),
        // EBUSY here is the "no internal processes" rule: `base` itself holds processes.
        Err(e) if required => Err(Error::Unsupported {
            limit: limit_name(controller),
            reason: format!("{e}; a v2 group with processes cannot delegate controllers: use --cgroup-parent"),
        }),
        Err(_) => Ok(false),
    }
}

fn limit_name(controller: &str) -> &'static str {
    match controller {
        "memory" => "--mem",
        "cpu" => "--cpus",
        _ => "--pids",
    }
}

/// cgroup v2's "no internal processes" rule: a group that holds processes cannot hand controllers
/// to its children. When `base` is such a group and every process in it is ours (sandbox and the
/// child it just cloned, as under `systemd-run --user --scope -p Delegate=yes sandbox …`), they
/// move into a leaf `sandbox-sup-<pid>` so that the run's group can have its limits. Nothing else
/// is ever moved: with other processes in `base` enabling fails and the error says why. The root
/// group (no cgroup.type) is exempt from the rule. The leaf holds sandbox until it exits; empty
/// then, it goes with the next run's gc (or with the delegated scope).
fn vacate(base: &Path, ours: &[i32]) -> Result<()> {
    let wanted = |c: &&str| {
        let has = |f: &str| read(&base.join(f)).is_some_and(|t| t.split_whitespace().any(|x| x == *c));
        has("cgroup.controllers") && !has("cgroup.subtree_control")
    };
    let procs = super::procs(base);
    if !base.join("cgroup.type").exists()
        || procs.is_empty()
        || procs.iter().any(|p| !ours.contains(p))
        || !["memory", "cpu", "pids"].iter().any(wanted)
    {
        return Ok(());
    }
    let leaf = base.join(format!("sandbox-sup-{}", std::process::id()));
    match std::fs::create_dir(&leaf) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::io("cannot create cgroup", &leaf, e));
        }
        _ => {}
    }
    for p in procs {
        write(&leaf.join("cgroup.procs"), &p.to_string())?;
    }
    Ok(())
}

impl V2 {
    /// Creates `base/name` with `limits`. `ours`: the pids [`vacate`] may move out of `base`.
    pub fn create(base: &Path, name: &str, limits: &Limits, ours: &[i32]) -> Result<V2> {
        vacate(base, ours)?;
        let mem = enable(base, "memory", limits.memory_bytes.is_some())?;
        let cpu = enable(base, "cpu", limits.cpus.is_some())?;
        let pids = enable(base, "pids", limits.pids.is_some())?;
        // Accounting only for now (io.stat): enabled where the parent allows, never required.
        enable(base, "io", false)?;
        let dir = base.join(name);
        std::fs::create_dir(&dir).map_err(|e| Error::io("cannot create cgroup", &dir, e))?;
        let g = V2 { dir };
        if let Err(e) = g.apply(limits, mem, cpu, pids) {
            super::undo(std::slice::from_ref(&g.dir));
            return Err(e);
        }
        Ok(g)
    }

    fn apply(&self, limits: &Limits, mem: bool, cpu: bool, pids: bool) -> Result<()> {
        if let (Some(bytes), true) = (limits.memory_bytes, mem) {
            memory::apply(&self.dir, bytes)?;
        }
        if let (Some(c), true) = (limits.cpus, cpu) {
            cpu::apply(&self.dir, c)?;
        }
        if let (Some(n), true) = (limits.pids, pids) {
            pids::apply(&self.dir, n)?;
        }
        Ok(())
    }
}

impl Cgroup for V2 {
    fn version(&self) -> u8 {
        2
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    fn paths(&self) -> BTreeMap<String, PathBuf> {
        BTreeMap::from([(String::new(), self.dir.clone())])
    }

    fn add_pid(&self, pid: i32) -> Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn join_files(&self, pid: i32) -> Result<Vec<std::fs::File>> {
        self.add_pid(pid).map(|()| vec![])
    }

    fn stats(&self) -> Stats {
        let f = |n: &str| read(&self.dir.join(n));
        Stats {
            cpu: f("cpu.stat").map(|t| cpu::stats(&t)).unwrap_or_default(),
            memory: memory::stats(
                f("memory.peak").as_deref(),
                f("memory.events").as_deref(),
                f("memory.swap.peak").as_deref(),
            ),
            pids: pids::stats(f("pids.peak").as_deref(), f("pids.events").as_deref()),
            // No io.stat: the io controller is not enabled for the group, nothing is counted.
            io: f("io.stat").map(|t| io::stats(&t)).unwrap_or_default(),
            pressure: super::pressure::stats([self.dir.as_path()]),
        }
    }

    fn kill(&self) {
        // cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks included; older
        // kernels get the loop over every descendant.
        if !teardown::write_kill(&self.dir) {
            teardown::kill_tree(&self.dir);
        }
    }

    fn remove(&self) -> Result<()> {
        teardown::remove_tree(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_base(controllers: &str, enabled: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(t.path().join("cgroup.subtree_control"), enabled).unwrap();
        t
    }

    #[test]
    fn limits_go_to_the_v2_files() {
        let t = fake_base("cpuset cpu io memory pids", "");
        let limits = Limits { memory_bytes: Some(64 << 20), cpus: Some(0.5), pids: Some(20), timeout: None };
        let g = V2::create(t.path(), "sandbox-x-1", &limits, &[]).unwrap();
        let r = |f: &str| std::fs::read_to_string(g.path().join(f)).unwrap();
        assert_eq!(r("memory.max"), "67108864");
        assert_eq!(r("cpu.max"), "50000 100000");
        assert_eq!(r("pids.max"), "20");
        // The fake parent keeps only the last write, which shows the controllers were enabled.
        assert_eq!(std::fs::read_to_string(t.path().join("cgroup.subtree_control")).unwrap(), "+io");
    }

    #[test]
    fn a_missing_controller_is_an_error_only_when_its_limit_is_asked_for() {
        let t = fake_base("cpu pids", "cpu pids");
        let err = V2::create(t.path(), "g", &Limits { memory_bytes: Some(1 << 20), ..Default::default() }, &[]);
        let msg = err.err().unwrap().to_string();
        assert!(msg.contains("--mem") && msg.contains("memory controller is not available"), "{msg}");
        assert!(!t.path().join("g").exists(), "nothing half made");
        let g = V2::create(t.path(), "g", &Limits { pids: Some(5), ..Default::default() }, &[]).unwrap();
        assert!(!g.path().join("memory.max").exists());
    }

    #[test]
    fn our_own_processes_leave_a_busy_base_for_a_leaf_and_nobody_elses_do() {
        let t = fake_base("memory pids", "");
        std::fs::write(t.path().join("cgroup.type"), "domain\n").unwrap();
        let ours = [std::process::id() as i32, 4242];
        std::fs::write(t.path().join("cgroup.procs"), "4242\n").unwrap();
        let leaf = t.path().join(format!("sandbox-sup-{}", std::process::id()));
        vacate(t.path(), &ours).unwrap();
        assert!(leaf.is_dir(), "the child (ours) moved to a leaf");
        std::fs::remove_dir_all(&leaf).unwrap();
        std::fs::write(t.path().join("cgroup.procs"), "4242\n1\n").unwrap();
        vacate(t.path(), &ours).unwrap();
        assert!(!leaf.exists(), "pid 1 is not ours: nothing moves");
        std::fs::remove_file(t.path().join("cgroup.type")).unwrap();
        std::fs::write(t.path().join("cgroup.procs"), "4242\n").unwrap();
        vacate(t.path(), &ours).unwrap();
        assert!(!leaf.exists(), "the root group has no rule to escape");
    }

    #[test]
    fn stats_from_fake_files() {
        let t = fake_base("", "");
        let dir = t.path();
        let fx = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2/");
        std::fs::copy(format!("{fx}cpu.stat"), dir.join("cpu.stat")).unwrap();
        std::fs::copy(format!("{fx}memory.events"), dir.join("memory.events")).unwrap();
        std::fs::write(dir.join("memory.peak"), "4096\n").unwrap();
        std::fs::write(dir.join("pids.peak"), "3\n").unwrap();
        std::fs::write(dir.join("pids.events"), "max 0\n").unwrap();
        let s = V2 { dir: dir.to_path_buf() }.stats();
        assert_eq!(s.memory.peak_bytes, Some(4096));
        assert_eq!(s.memory.oom_kills, Some(1));
        assert_eq!(s.cpu.throttled_periods, Some(27));
        assert_eq!((s.pids.peak, s.pids.limit_hits), (Some(3), Some(0)));
    }
}
