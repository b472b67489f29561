//! cgroup v2: one directory, controllers enabled through the parent's cgroup.subtree_control.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod cpu;
mod cpuset;
pub(crate) mod devices;
mod freezer;
pub(crate) mod io;
mod memory;
pub(crate) mod pids;

use super::{read, teardown, write, Cgroup, Stats};
use crate::config::Limits;
use crate::error::{Error, Result};

pub struct V2 {
    dir: PathBuf,
}

/// Makes sure `controller` is enabled for children of `base`. Returns whether it is.
/// `flag`: the flag that needs it; a limit the user asked for that cannot be enabled is an error,
/// never ignored.
fn enable(base: &Path, controller: &str, flag: Option<&'static str>) -> Result<bool> {
    let listed = |f: &str| read(&base.join(f)).is_some_and(|t| t.split_whitespace().any(|c| c == controller));
    if listed("cgroup.subtree_control") {
        return Ok(true);
    }
    if !listed("cgroup.controllers") {
        if let Some(flag) = flag {
            return Err(Error::Unsupported {
                limit: flag,
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
        Err(e) if flag.is_some() => Err(Error::Unsupported {
            limit: flag.unwrap_or_default(),
            reason: format!("{e}; a v2 group with processes cannot delegate controllers: use --cgroup-parent"),
        }),
        Err(_) => Ok(false),
    }
}

/// The first flag of `asked` that is set: the one a missing controller is blamed on.
fn needed(asked: &[(&'static str, bool)]) -> Option<&'static str> {
    asked.iter().find(|(_, set)| *set).map(|(flag, _)| *flag)
}

/// cgroup v2's "no internal processes" rule: a group that holds processes cannot hand controllers
/// to its children. When `base` is such a group and every process in it is ours (sandbox and the
/// child it just cloned, as under `systemd-run --user --scope -p Delegate=yes sandbox …`), they
/// move into a leaf `sandbox-sup-<pid>` so that the run's group can have its limits. Nothing else
/// is ever moved: with other processes in `base` enabling fails and the error says why. The root
/// group (no cgroup.type) is exempt from the rule. The leaf holds sandbox until it exits; empty
/// then, it goes with the next run's gc (or with the delegated scope).
/// `also`: controllers beyond memory, cpu and pids the run needs (io, cpuset when limited).
fn vacate(base: &Path, ours: &[i32], also: &[&str]) -> Result<()> {
    let wanted = |c: &&str| {
        let has = |f: &str| read(&base.join(f)).is_some_and(|t| t.split_whitespace().any(|x| x == *c));
        has("cgroup.controllers") && !has("cgroup.subtree_control")
    };
    let procs = super::procs(base);
    if !base.join("cgroup.type").exists()
        || procs.is_empty()
        || procs.iter().any(|p| !ours.contains(p))
        || !["memory", "cpu", "pids"].iter().chain(also).any(wanted)
    {
        return Ok(());
    }
    let leaf = base.join(format!("sandbox-sup-{}", super::owner_suffix()));
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
    /// A live group from its directory (see Host::open).
    pub fn open(dir: &Path) -> V2 {
        V2 { dir: dir.to_path_buf() }
    }

    /// Creates `base/name` with `limits`. `ours`: the pids [`vacate`] may move out of `base`.
    pub fn create(base: &Path, name: &str, limits: &Limits, ours: &[i32]) -> Result<V2> {
        let l = limits;
        let also: Vec<&str> = [("io", l.io_weight.is_some() || !l.io.is_empty()), ("cpuset", l.wants_cpuset())]
            .into_iter()
            .filter_map(|(c, asked)| asked.then_some(c))
            .collect();
        vacate(base, ours, &also)?;
        let conf = "--cgroup-conf";
        let mem = enable(
            base,
            "memory",
            needed(&[
                ("--mem", l.memory_bytes.is_some()),
                ("--mem-high", l.memory_high.is_some()),
                ("--swap", l.swap_bytes.is_some()),
                (conf, l.conf_for("memory")),
            ]),
        )?;
        let cpu = enable(
            base,
            "cpu",
            needed(&[
                ("--cpus", l.cpus.is_some()),
                ("--cpu-weight", l.cpu_weight.is_some()),
                (conf, l.conf_for("cpu")),
            ]),
        )?;
        let pids = enable(base, "pids", needed(&[("--pids", l.pids.is_some()), (conf, l.conf_for("pids"))]))?;
        // Accounting (io.stat) wherever the parent allows; required for an io limit.
        let io_flag = l.io.first().map(|r| r.limit.flag()).unwrap_or("--io-read-bps");
        let io = enable(
            base,
            "io",
            needed(&[("--io-weight", l.io_weight.is_some()), (io_flag, !l.io.is_empty()), (conf, l.conf_for("io"))]),
        )?;
        if l.wants_cpuset() {
            let flag =
                needed(&[("--cpuset-cpus", l.cpuset_cpus.is_some()), ("--cpuset-mems", l.cpuset_mems.is_some())]);
            enable(base, "cpuset", flag.or(Some(conf)))?;
            cpuset::check(base, l)?;
        }
        // Any other controller a --cgroup-conf file belongs to (hugetlb, rdma, misc).
        for c in &l.cgroup_conf {
            let ctrl = c.file.split('.').next().unwrap_or_default();
            // devices: no controller on v2, a program (devices.rs).
            if !["memory", "cpu", "pids", "io", "cpuset", "cgroup", "devices"].contains(&ctrl) {
                enable(base, ctrl, Some(conf))?;
            }
        }
        let dir = base.join(name);
        std::fs::create_dir(&dir).map_err(|e| Error::io("cannot create cgroup", &dir, e))?;
        let g = V2 { dir };
        if let Err(e) = g.apply(limits, mem, cpu, pids, io) {
            super::undo(std::slice::from_ref(&g.dir));
            return Err(e);
        }
        Ok(g)
    }

    /// Writes the limits; a controller not enabled was not asked for (else `create` failed).
    fn apply(&self, limits: &Limits, mem: bool, cpu: bool, pids: bool, io: bool) -> Result<()> {
        if mem {
            memory::apply(&self.dir, limits)?;
        }
        if cpu {
            cpu::apply(&self.dir, limits.cpus, limits.cpu_weight)?;
        }
        if let (Some(n), true) = (limits.pids, pids) {
            pids::apply(&self.dir, n)?;
        }
        if io {
            io::apply(&self.dir, limits)?;
        }
        cpuset::apply(&self.dir, limits)?;
        let rest: Vec<_> = limits.cgroup_conf.iter().filter(|c| !devices::is_rule(c)).cloned().collect();
        super::write_conf(&rest, |_| Some(self.dir.clone()))?;
        // Last: a run without device rules (and `update`, which has none) leaves the program be.
        devices::apply(&self.dir, limits)
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

    fn now(&self) -> super::stats::Now {
        let f = |n: &str| read(&self.dir.join(n));
        let single = |n: &str| f(n).as_deref().and_then(super::stats::parse_single);
        super::stats::Now {
            cpu: f("cpu.stat").map(|t| cpu::stats(&t)).unwrap_or_default(),
            memory_bytes: single("memory.current"),
            memory: f("memory.stat").map(|t| memory::breakdown(&t)).unwrap_or_default(),
            pids: single("pids.current"),
            io: f("io.stat").map(|t| io::stats(&t)).unwrap_or_default(),
            pressure: super::pressure::stats([self.dir.as_path()]),
        }
    }

    fn cpu_usage(&self) -> Option<std::time::Duration> {
        cpu::usage(&read(&self.dir.join("cpu.stat"))?)
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

    fn freeze(&self, on: bool) -> Result<()> {
        freezer::set(&self.dir, on)
    }

    fn frozen(&self) -> Option<bool> {
        freezer::state(&self.dir)
    }

    fn configured(&self) -> super::Configured {
        let single = |n: &str| read(&self.dir.join(n)).as_deref().and_then(super::stats::parse_single);
        super::Configured { memory_max: single("memory.max"), pids_max: single("pids.max") }
    }

    fn update(&self, limits: &Limits) -> Result<()> {
        let l = limits;
        let has = |f: &str| Some(self.dir.join(f));
        let io_weight = ["io.weight", "io.bfq.weight"].iter().map(|f| self.dir.join(f)).find(|f| f.exists());
        super::update::check_files(&[
            ("--mem", l.memory_bytes.is_some(), has("memory.max")),
            ("--mem-high", l.memory_high.is_some(), has("memory.high")),
            ("--swap", l.swap_bytes.is_some(), has("memory.swap.max")),
            ("--cpus", l.cpus.is_some(), has("cpu.max")),
            ("--cpu-weight", l.cpu_weight.is_some(), has("cpu.weight")),
            ("--pids", l.pids.is_some(), has("pids.max")),
            ("--io-weight", l.io_weight.is_some(), io_weight.or(has("io.weight"))),
            ("--io-read-bps", !l.io.is_empty(), has("io.max")),
            ("--cpuset-cpus", l.cpuset_cpus.is_some(), has("cpuset.cpus")),
            ("--cpuset-mems", l.cpuset_mems.is_some(), has("cpuset.mems")),
        ])?;
        // A list the parent may not use: the kernel's EINVAL would say less (apply writes them).
        if let Some(parent) = self.dir.parent() {
            cpuset::check(parent, l)?;
        }
        let usage = read(&self.dir.join("memory.current"));
        super::update::check_memory(l, usage.as_deref().and_then(super::stats::parse_single))?;
        let files = [
            "memory.max",
            "memory.high",
            "memory.swap.max",
            "cpu.max",
            "cpu.weight",
            "pids.max",
            "io.weight",
            "io.bfq.weight",
            "io.max",
            "cpuset.cpus",
            "cpuset.mems",
        ];
        let saved = super::update::Saved::read(files.iter().map(|f| self.dir.join(f)));
        let io_max = self.dir.join("io.max");
        let resets = super::update::io_resets(
            &saved,
            l,
            |_| io_max.clone(),
            |d| format!("{d} rbps=max wbps=max riops=max wiops=max"),
        );
        // Only the controllers a limit was given for: the files of the others stay as they are.
        let mem = l.memory_bytes.is_some() || l.memory_high.is_some() || l.swap_bytes.is_some();
        let cpu = l.cpus.is_some() || l.cpu_weight.is_some();
        let io = l.io_weight.is_some() || !l.io.is_empty();
        saved.guard(&resets, || self.apply(l, mem, cpu, l.pids.is_some(), io))
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
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            cpus: Some(0.5),
            pids: Some(20),
            timeout: None,
            ..Default::default()
        };
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
    fn a_cpuset_outside_the_parents_set_is_refused_before_the_group_is_made() {
        let t = fake_base("cpuset cpu memory pids", "cpuset cpu memory pids");
        std::fs::write(t.path().join("cpuset.cpus.effective"), "0-1\n").unwrap();
        let l = Limits { cpuset_cpus: Some("7".into()), ..Default::default() };
        let e = V2::create(t.path(), "g", &l, &[]).err().unwrap().to_string();
        assert_eq!(e, "invalid --cpuset-cpus '7': expected CPUs the run's parent group may use: 0-1");
        assert!(!t.path().join("g").exists(), "no group made");
        let e = V2::create(t.path(), "g", &Limits { io_weight: Some(5), ..Default::default() }, &[]);
        assert!(e.err().unwrap().to_string().contains("--io-weight: the io controller is not available"));
    }

    #[test]
    fn new_limits_go_to_their_v2_files() {
        use crate::limits::{CgroupConf, IoKind, IoRule};
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        for f in ["memory.swap.max", "io.weight", "io.bfq.weight", "memory.oom.group"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let rule = |limit, value| IoRule { device: "/dev/loop0".into(), major: 7, minor: 0, limit, value };
        let l = Limits {
            memory_bytes: Some(64 << 20),
            memory_high: Some(48 << 20),
            swap_bytes: Some(16 << 20),
            cpu_weight: Some(200),
            cpuset_cpus: Some("1".into()),
            cpuset_mems: Some("0".into()),
            io_weight: Some(1000),
            io: vec![rule(IoKind::WriteBps, 1 << 20), rule(IoKind::ReadIops, 100)],
            cgroup_conf: vec![CgroupConf { file: "memory.oom.group".into(), value: "1".into() }],
            ..Default::default()
        };
        let g = V2 { dir: dir.to_path_buf() };
        g.apply(&l, true, true, true, true).unwrap();
        let r = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(r("memory.max"), "67108864");
        assert_eq!(r("memory.high"), "50331648");
        assert_eq!(r("memory.swap.max"), "16777216", "--swap instead of 0");
        assert_eq!(r("cpu.weight"), "200");
        assert_eq!((r("cpuset.cpus"), r("cpuset.mems")), ("1".into(), "0".into()));
        assert_eq!((r("io.weight"), r("io.bfq.weight")), ("1000".into(), "181".into()));
        assert_eq!(r("io.max"), "7:0 wbps=1048576 riops=100");
        assert_eq!(r("memory.oom.group"), "1");
        // A file the group does not have: refused, naming it.
        let bad = Limits { cgroup_conf: vec![CgroupConf { file: "memory.nope".into(), value: "1".into() }], ..l };
        let e = g.apply(&bad, true, true, true, true).unwrap_err().to_string();
        assert!(e.starts_with("invalid --cgroup-conf 'memory.nope=1'") && e.contains("has no memory.nope"), "{e}");
    }

    #[test]
    fn our_own_processes_leave_a_busy_base_for_a_leaf_and_nobody_elses_do() {
        let t = fake_base("memory pids", "");
        std::fs::write(t.path().join("cgroup.type"), "domain\n").unwrap();
        let ours = [std::process::id() as i32, 4242];
        std::fs::write(t.path().join("cgroup.procs"), "4242\n").unwrap();
        let leaf = t.path().join(format!("sandbox-sup-{}", crate::cgroup::owner_suffix()));
        vacate(t.path(), &ours, &[]).unwrap();
        assert!(leaf.is_dir(), "the child (ours) moved to a leaf");
        std::fs::remove_dir_all(&leaf).unwrap();
        std::fs::write(t.path().join("cgroup.procs"), "4242\n1\n").unwrap();
        vacate(t.path(), &ours, &[]).unwrap();
        assert!(!leaf.exists(), "pid 1 is not ours: nothing moves");
        std::fs::remove_file(t.path().join("cgroup.type")).unwrap();
        std::fs::write(t.path().join("cgroup.procs"), "4242\n").unwrap();
        vacate(t.path(), &ours, &[]).unwrap();
        assert!(!leaf.exists(), "the root group has no rule to escape");
        // memory and pids already handed down, io not: only an io limit is a reason to move.
        let t = fake_base("memory pids io", "memory pids");
        std::fs::write(t.path().join("cgroup.type"), "domain\n").unwrap();
        std::fs::write(t.path().join("cgroup.procs"), "4242\n").unwrap();
        let leaf = t.path().join(format!("sandbox-sup-{}", crate::cgroup::owner_suffix()));
        vacate(t.path(), &ours, &[]).unwrap();
        assert!(!leaf.exists(), "no io limit: io accounting is not worth a move");
        vacate(t.path(), &ours, &["io"]).unwrap();
        assert!(leaf.is_dir(), "an io limit needs io handed down");
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
