//! cgroup v1 (legacy and hybrid hosts): one directory per controller hierarchy, each nested under
//! the invoking process's own cgroup of that controller. Co-mounted controllers (`cpu,cpuacct`)
//! share one directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod blkio;
mod cpu;
mod cpuacct;
mod cpuset;
mod devices;
mod freezer;
mod memory;
mod pids;

use super::{read, teardown, write, Cgroup, Stats};
use crate::config::Limits;
use crate::error::{Error, Result};

pub struct V1 {
    /// controller → group directory.
    dirs: BTreeMap<String, PathBuf>,
    /// Each directory once, in creation order.
    unique: Vec<PathBuf>,
    primary: PathBuf,
    /// The run's group in a hybrid host's cgroup2 (also in `unique`, last): no controller, read
    /// for its pressure files only. See [`super::Host::unified`].
    unified: Option<PathBuf>,
    /// The machine's disks (blkio::disks), read once for the samples of a run.
    disks: std::cell::OnceCell<Vec<String>>,
    /// The child was cloned into `unified` (CLONE_INTO_CGROUP): it does not join it.
    born_in_unified: bool,
}

/// Whether a run with `limits` has a group in the devices hierarchy.
pub fn wants_devices(limits: &Limits) -> bool {
    devices::wanted(limits)
}

/// Writes the device rules of `limits` to the devices group `dir`, in order (`update`).
pub fn apply_devices(dir: &Path, limits: &Limits) -> Result<()> {
    devices::apply(dir, limits)
}

impl V1 {
    /// `bases`: controller → directory to create the group under; `unified`: the run's cgroup2
    /// group on a hybrid host, if any (see Host::unified_dir), and whether this run already made
    /// it before the clone (Host::premake_unified).
    pub fn create(
        bases: &BTreeMap<String, PathBuf>,
        unified: Option<(PathBuf, bool)>,
        name: &str,
        limits: &Limits,
    ) -> Result<V1> {
        // Invariant: sandbox never kills or removes a group it did not create (red-team 19,
        // hole 1: a cgroupsPath naming someone else's cgroup2 group got it adopted as "made
        // before the clone", and teardown SIGKILLed its processes and removed it). A cgroup2
        // group already there that this run did not make is refused, before anything is made;
        // the v1 groups below are refused the same way by create_dir's EEXIST.
        if let Some((dir, false)) = &unified {
            if dir.exists() {
                return Err(Error::io(
                    "cannot create cgroup",
                    dir,
                    std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ));
            }
        }
        let l = limits;
        let conf = "--cgroup-conf";
        let io_flag = l.io.first().map(|r| r.limit.flag()).unwrap_or("--io-read-bps");
        for (flag, ctrl, asked) in [
            ("--mem", "memory", l.memory_bytes.is_some()),
            ("--mem-high", "memory", l.memory_high.is_some()),
            ("--swap", "memory", l.swap_bytes.is_some()),
            ("--cpus", "cpu", l.cpus.is_some()),
            ("--cpu-weight", "cpu", l.cpu_weight.is_some()),
            ("--pids", "pids", l.pids.is_some()),
            ("--cpu-time", "cpuacct", l.cpu_time.is_some()),
            ("--io-weight", "blkio", l.io_weight.is_some()),
            (io_flag, "blkio", !l.io.is_empty()),
            ("--cpuset-cpus", "cpuset", l.cpuset_cpus.is_some()),
            ("--cpuset-mems", "cpuset", l.cpuset_mems.is_some()),
            (conf, "cpuset", l.conf_for("cpuset")),
            ("linux.resources.devices", "devices", devices::wanted(l)),
        ] {
            if asked && !bases.contains_key(ctrl) {
                return Err(Error::Unsupported {
                    limit: flag,
                    reason: format!("no cgroup v1 hierarchy has the {ctrl} controller mounted"),
                });
            }
        }
        if let (Some(base), true) = (bases.get("cpuset"), l.wants_cpuset()) {
            cpuset::check(base, l)?;
        }
        let mut dirs = BTreeMap::new();
        let mut unique: Vec<PathBuf> = Vec::new();
        let made = |c: &str| (c != "cpuset" || l.wants_cpuset()) && (c != "devices" || devices::wanted(l));
        for (ctrl, base) in bases.iter().filter(|(c, _)| made(c)) {
            let dir = base.join(name);
            if !unique.contains(&dir) {
                if let Err(e) = std::fs::create_dir(&dir) {
                    super::undo(&unique);
                    return Err(Error::io("cannot create cgroup", &dir, e));
                }
                unique.push(dir.clone());
            }
            dirs.insert(ctrl.clone(), dir);
        }
        let primary = dirs.get("memory").or_else(|| unique.first()).cloned().unwrap_or_default();
        let mut g = V1 { dirs, unique, primary, unified: None, disks: Default::default(), born_in_unified: false };
        // A fresh cpuset group takes no task before its lists are set (see cpuset.rs).
        let filled = match (bases.get("cpuset"), g.dirs.get("cpuset")) {
            (Some(base), Some(dir)) => cpuset::apply(base, dir, limits),
            _ => Ok(()),
        };
        if let Err(e) = filled.and_then(|()| g.apply(limits)) {
            super::undo(&g.unique);
            return Err(e);
        }
        // Last, once the limits are set: a bad value leaves nothing, there either. Only accounting
        // (pressure) depends on it, so a failure is a warning and the figures stay null.
        // A directory this run made before the clone (Host::premake_unified; `premade`) has the
        // child born in it: adopted, and not joined again (see join_files). Only that one: a
        // directory made by anyone else was refused above, and one appearing since is an error.
        if let Some((dir, premade)) = unified {
            match if premade { Ok(()) } else { std::fs::create_dir(&dir) } {
                Ok(()) => {
                    g.unique.push(dir.clone());
                    g.unified = Some(dir);
                    g.born_in_unified = premade;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    super::undo(&g.unique);
                    return Err(Error::io("cannot create cgroup", &dir, e));
                }
                Err(e) => crate::run::warn(&format!("cannot create cgroup {} (pressure unknown): {e}", dir.display())),
            }
        }
        Ok(g)
    }

    /// The directories whose pressure files are read, the cgroup2 group first (where upstream
    /// kernels have them).
    fn pressure_dirs(&self) -> impl Iterator<Item = &Path> {
        self.unified.iter().chain(&self.unique).map(|d| d.as_path())
    }

    /// A live group from its directories by controller (see Host::open).
    pub fn open(paths: &BTreeMap<String, PathBuf>) -> V1 {
        // A hybrid run's cgroup2 group is recorded as "unified" (see paths()): not a controller.
        let mut dirs = paths.clone();
        let unified = dirs.remove("unified");
        let mut unique: Vec<PathBuf> = Vec::new();
        for d in dirs.values().chain(&unified) {
            if !unique.contains(d) {
                unique.push(d.clone());
            }
        }
        let primary = dirs.get("memory").or_else(|| unique.first()).cloned().unwrap_or_default();
        // The machine's disks once per process, not once per group: `stats` opens every
        // container's group, and listing /sys/block was half of its opens.
        static DISKS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let disks = std::cell::OnceCell::new();
        let _ = disks.set(DISKS.get_or_init(blkio::disks).clone());
        V1 { dirs, unique, primary, unified, disks, born_in_unified: false }
    }

    /// Each directory once, the freezer's first: a task the v1 freezer froze dies of SIGKILL only
    /// once thawed (teardown::kill_tree_within thaws), and every other group of the run stays busy
    /// until then.
    fn teardown_order(&self) -> Vec<&PathBuf> {
        let freezer = self.dirs.get("freezer");
        freezer.into_iter().chain(self.unique.iter().filter(|d| Some(*d) != freezer)).collect()
    }

    fn file(&self, ctrl: &str, name: &str) -> Option<PathBuf> {
        self.dirs.get(ctrl).map(|d| d.join(name))
    }

    fn apply(&self, limits: &Limits) -> Result<()> {
        if let Some(dir) = self.dirs.get("memory") {
            memory::apply(dir, limits)?;
        }
        if let Some(dir) = self.dirs.get("cpu") {
            cpu::apply(dir, limits.cpus, limits.cpu_weight)?;
        }
        if let (Some(n), Some(dir)) = (limits.pids, self.dirs.get("pids")) {
            pids::apply(dir, n)?;
        }
        if let Some(dir) = self.dirs.get("blkio") {
            // The never-reached accounting rule first; the user's rules then replace it per device.
            blkio::apply_accounting(dir);
            blkio::apply(dir, limits)?;
        }
        if let Some(dir) = self.dirs.get("devices") {
            devices::apply(dir, limits)?;
        }
        // The device rules were written above, in order (v2 has no such files: a --cgroup-conf
        // devices.* there is refused by write_conf as a file the group lacks).
        let rest: Vec<_> = limits.cgroup_conf.iter().filter(|c| !devices::is_rule(c)).cloned().collect();
        super::write_conf(&rest, |ctrl| self.dirs.get(ctrl).cloned())
    }
}

impl Cgroup for V1 {
    fn version(&self) -> u8 {
        1
    }

    fn path(&self) -> &Path {
        &self.primary
    }

    fn paths(&self) -> BTreeMap<String, PathBuf> {
        let mut p = self.dirs.clone();
        if let Some(u) = &self.unified {
            p.insert("unified".into(), u.clone());
        }
        p
    }

    fn add_pid(&self, pid: i32) -> Result<()> {
        self.unique.iter().try_for_each(|d| write(&d.join("cgroup.procs"), &pid.to_string()))
    }

    fn join_files(&self, _pid: i32) -> Result<Vec<std::fs::File>> {
        // The child moves itself: the parent's write of its pid to cgroup.procs waits for an RCU
        // grace period (cgroup_threadgroup_rwsem, ~5-8 ms); a single task writing 0 to `tasks`
        // skips that lock. A hybrid run's cgroup2 group has no `tasks`: the child writes 0 to its
        // cgroup.procs, last, which does take that lock (and so waits for a grace period when
        // none is under way); joining it from the clone (CLONE_INTO_CGROUP) would not.
        self.unique
            .iter()
            .filter(|d| !(self.born_in_unified && self.unified.as_ref() == Some(*d)))
            .map(|d| {
                let p = d.join(if self.unified.as_ref() == Some(d) { "cgroup.procs" } else { "tasks" });
                std::fs::OpenOptions::new().write(true).open(&p).map_err(|e| Error::io("cannot open", p, e))
            })
            .collect()
    }

    fn stats(&self) -> Stats {
        let f = |ctrl: &str, n: &str| self.file(ctrl, n).and_then(|p| read(&p));
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let cpu = if self.dirs.contains_key("cpuacct") {
            cpuacct::stats(
                f("cpuacct", "cpuacct.usage").as_deref(),
                f("cpuacct", "cpuacct.usage_user").as_deref(),
                f("cpuacct", "cpuacct.usage_sys").as_deref(),
                f("cpuacct", "cpuacct.stat").as_deref(),
                f("cpu", "cpu.stat").as_deref(),
                hz,
            )
        } else {
            Default::default()
        };
        Stats {
            cpu,
            memory: memory::stats(&memory::Files {
                max_usage: f("memory", "memory.max_usage_in_bytes").as_deref(),
                oom_control: f("memory", "memory.oom_control").as_deref(),
                tcp_limit: f("memory", "memory.kmem.tcp.limit_in_bytes").as_deref(),
                tcp_max_usage: f("memory", "memory.kmem.tcp.max_usage_in_bytes").as_deref(),
                memsw_max_usage: f("memory", "memory.memsw.max_usage_in_bytes").as_deref(),
            }),
            pids: pids::stats(f("pids", "pids.peak").as_deref(), f("pids", "pids.events").as_deref()),
            io: self.dirs.get("blkio").map(|d| blkio::stats(d, &self.disks)).unwrap_or_default(),
            // Upstream kernels give v1 groups no pressure files (some builds do): the cgroup2 one.
            pressure: super::pressure::stats(self.pressure_dirs()),
        }
    }

    fn now(&self) -> super::stats::Now {
        use super::stats::{parse_single, CpuStats, Now};
        let f = |ctrl: &str, n: &str| self.file(ctrl, n).and_then(|p| read(&p));
        let usage_s = f("cpuacct", "cpuacct.usage").as_deref().and_then(parse_single).map(|ns| ns as f64 / 1e9);
        let (throttled_periods, throttled_s) = cpu::throttling(f("cpu", "cpu.stat").as_deref());
        let breakdown = |t: String| memory::breakdown(&t, f("memory", "memory.kmem.usage_in_bytes").as_deref());
        Now {
            cpu: CpuStats { usage_s, throttled_periods, throttled_s, ..Default::default() },
            memory_bytes: f("memory", "memory.usage_in_bytes").as_deref().and_then(parse_single),
            memory: f("memory", "memory.stat").map(breakdown).unwrap_or_default(),
            pids: f("pids", "pids.current").as_deref().and_then(parse_single),
            io: self.dirs.get("blkio").map(|d| blkio::stats(d, &self.disks)).unwrap_or_default(),
            pressure: super::pressure::stats(self.pressure_dirs()),
        }
    }

    fn cpu_usage(&self) -> Option<std::time::Duration> {
        let text = read(&self.file("cpuacct", "cpuacct.usage")?)?;
        cpuacct::usage(&text)
    }

    fn kill(&self) {
        // v1 has no cgroup.kill: every task of every descendant, until the subtree is empty. The
        // cgroup2 group has one (Linux 5.14+), which also stops forks racing the kill.
        if let Some(u) = &self.unified {
            teardown::write_kill(u);
        }
        for d in self.teardown_order() {
            teardown::kill_tree(d);
        }
    }

    fn remove(&self) -> Result<()> {
        let mut first_err = None;
        for d in self.teardown_order() {
            if let Err(e) = teardown::remove_tree(d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn freeze(&self, on: bool) -> Result<()> {
        let Some(dir) = self.dirs.get("freezer") else {
            return Err(Error::Unsupported {
                limit: if on { "pause" } else { "unpause" },
                reason: "the container's group has no freezer (no cgroup v1 hierarchy has the freezer controller \
                         mounted, or the container was started by a sandbox without pause)"
                    .into(),
            });
        };
        freezer::set(dir, on)
    }

    fn frozen(&self) -> Option<bool> {
        let dir = self.dirs.get("freezer")?;
        freezer::state(dir).map(|s| s != freezer::State::Thawed)
    }

    fn configured(&self) -> super::Configured {
        let f = |ctrl: &str, n: &str| self.file(ctrl, n).and_then(|p| read(&p));
        super::Configured {
            memory_max: f("memory", "memory.limit_in_bytes").and_then(|t| memory::limit(&t)),
            pids_max: f("pids", "pids.max").as_deref().and_then(super::stats::parse_single),
        }
    }

    fn update(&self, limits: &Limits) -> Result<()> {
        use crate::limits::IoKind;
        let l = limits;
        let file = |ctrl: &str, n: &str| self.file(ctrl, n);
        super::update::check_files(&[
            ("--mem", l.memory_bytes.is_some(), file("memory", "memory.limit_in_bytes")),
            ("--mem-high", l.memory_high.is_some(), file("memory", "memory.soft_limit_in_bytes")),
            ("--cpus", l.cpus.is_some(), file("cpu", "cpu.cfs_quota_us")),
            ("--cpu-weight", l.cpu_weight.is_some(), file("cpu", "cpu.shares")),
            ("--pids", l.pids.is_some(), file("pids", "pids.max")),
            ("--io-weight", l.io_weight.is_some(), self.dirs.get("blkio").cloned()),
            ("--io-read-bps", !l.io.is_empty(), self.dirs.get("blkio").cloned()),
        ])?;
        cpuset::check_update(self.dirs.get("cpuset").map(PathBuf::as_path), l)?;
        let usage = file("memory", "memory.usage_in_bytes").and_then(|p| read(&p));
        super::update::check_memory(l, usage.as_deref().and_then(super::stats::parse_single))?;
        let mut files: Vec<PathBuf> = [
            ("memory", "memory.limit_in_bytes"),
            ("memory", "memory.memsw.limit_in_bytes"),
            ("memory", "memory.soft_limit_in_bytes"),
            ("memory", "memory.kmem.tcp.limit_in_bytes"),
            ("cpu", "cpu.cfs_period_us"),
            ("cpu", "cpu.cfs_quota_us"),
            ("cpu", "cpu.shares"),
            ("pids", "pids.max"),
            ("blkio", "blkio.weight"),
            ("blkio", "blkio.bfq.weight"),
            ("cpuset", "cpuset.cpus"),
            ("cpuset", "cpuset.mems"),
        ]
        .iter()
        .filter_map(|(c, n)| file(c, n))
        .collect();
        let kinds = [IoKind::ReadBps, IoKind::WriteBps, IoKind::ReadIops, IoKind::WriteIops];
        files.extend(kinds.iter().filter_map(|k| file("blkio", k.v1_file())));
        let saved = super::update::Saved::read(files);
        let blkio = self.dirs.get("blkio").cloned().unwrap_or_default();
        let resets = super::update::io_resets(&saved, l, |k| blkio.join(k.v1_file()), |d| format!("{d} 0"));
        // The writers a run uses, but not blkio's accounting rule: it is there since the start and
        // would replace the user's own rules.
        saved.guard(&resets, || {
            if let (Some(dir), true) =
                (self.dirs.get("memory"), l.memory_bytes.is_some() || l.memory_high.is_some() || l.swap_bytes.is_some())
            {
                memory::apply(dir, l)?;
            }
            if let Some(dir) = self.dirs.get("cpu") {
                cpu::apply(dir, l.cpus, l.cpu_weight)?;
            }
            if let (Some(n), Some(dir)) = (l.pids, self.dirs.get("pids")) {
                pids::apply(dir, n)?;
            }
            if let Some(dir) = self.dirs.get("cpuset") {
                cpuset::update(dir, l)?;
            }
            match self.dirs.get("blkio") {
                Some(dir) => blkio::apply(dir, l),
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases(tmp: &Path, comounted: bool) -> BTreeMap<String, PathBuf> {
        let mut b = BTreeMap::new();
        for c in ["memory", "cpu", "cpuacct", "pids"] {
            let dir = if comounted && c.starts_with("cpu") { tmp.join("cpu,cpuacct") } else { tmp.join(c) };
            std::fs::create_dir_all(&dir).unwrap();
            b.insert(c.to_string(), dir);
        }
        b
    }

    #[test]
    fn limits_go_to_the_v1_files() {
        let t = tempfile::tempdir().unwrap();
        let b = bases(t.path(), false);
        let limits = Limits {
            memory_bytes: Some(32 << 20),
            cpus: Some(1.5),
            pids: Some(7),
            timeout: None,
            ..Default::default()
        };
        let g = V1::create(&b, None, "g", &limits).unwrap();
        let r = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(r("memory/g/memory.limit_in_bytes"), "33554432");
        assert_eq!(r("cpu/g/cpu.cfs_quota_us"), "150000");
        assert_eq!(r("cpu/g/cpu.cfs_period_us"), "100000");
        assert_eq!(r("pids/g/pids.max"), "7");
        assert_eq!(g.path(), t.path().join("memory/g"));
        assert_eq!(g.unique.len(), 4);
    }

    #[test]
    fn tcp_buffers_get_the_memory_limit_where_the_kernel_has_the_file() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("memory");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("memory.kmem.tcp.limit_in_bytes"), "9223372036854771712\n").unwrap();
        let g = V1 {
            dirs: BTreeMap::from([("memory".into(), dir.clone())]),
            unique: vec![dir.clone()],
            primary: dir,
            unified: None,
            disks: Default::default(),
            born_in_unified: false,
        };
        g.apply(&Limits { memory_bytes: Some(32 << 20), ..Default::default() }).unwrap();
        let r = |f: &str| std::fs::read_to_string(g.primary.join(f)).unwrap();
        assert_eq!(r("memory.kmem.tcp.limit_in_bytes"), "33554432");
        assert!(!g.primary.join("memory.memsw.limit_in_bytes").exists(), "absent files are not made");
    }

    #[test]
    fn new_limits_go_to_their_v1_files_and_cpuset_is_filled_from_the_parent() {
        use crate::limits::{IoKind, IoRule};
        let t = tempfile::tempdir().unwrap();
        let mut b = bases(t.path(), false);
        for c in ["blkio", "cpuset"] {
            std::fs::create_dir_all(t.path().join(c)).unwrap();
            b.insert(c.into(), t.path().join(c));
        }
        let w = |p: &str, v: &str| std::fs::write(t.path().join(p), v).unwrap();
        w("cpuset/cpuset.cpus", "0-1\n");
        w("cpuset/cpuset.effective_cpus", "0-1\n");
        w("cpuset/cpuset.mems", "0\n");
        // Without a cpuset limit no cpuset group is made.
        let g = V1::create(&b, None, "plain", &Limits::default()).unwrap();
        assert!(!g.paths().contains_key("cpuset") && !t.path().join("cpuset/plain").exists());
        // A CPU the parent does not have: refused before anything is made.
        let e = V1::create(&b, None, "g", &Limits { cpuset_cpus: Some("2".into()), ..Default::default() });
        assert!(e.err().unwrap().to_string().contains("'2'"));
        assert!(!t.path().join("memory/g").exists());
        let rule = IoRule { device: "7:0".into(), major: 7, minor: 0, limit: IoKind::WriteBps, value: 1 << 20 };
        let l = Limits {
            memory_bytes: Some(32 << 20),
            memory_high: Some(16 << 20),
            cpu_weight: Some(100),
            cpuset_cpus: Some("1".into()),
            io: vec![rule],
            ..Default::default()
        };
        V1::create(&b, None, "g", &l).unwrap();
        // Files the kernel has in a new group, which the fake one lacks until made here.
        w("memory/g/memory.memsw.limit_in_bytes", "x");
        w("blkio/g/blkio.bfq.weight", "x");
        let l = Limits { swap_bytes: Some(8 << 20), io_weight: Some(100), ..l };
        memory::apply(&t.path().join("memory/g"), &l).unwrap();
        blkio::apply(&t.path().join("blkio/g"), &l).unwrap();
        let r = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(r("memory/g/memory.soft_limit_in_bytes"), "16777216");
        assert_eq!(r("memory/g/memory.memsw.limit_in_bytes"), "41943040", "memory + swap");
        assert_eq!(r("cpu/g/cpu.shares"), "1024", "weight 100 is the default share");
        assert_eq!((r("cpuset/g/cpuset.cpus"), r("cpuset/g/cpuset.mems")), ("1".into(), "0".into()));
        assert_eq!(r("blkio/g/blkio.bfq.weight"), "100");
        assert_eq!(r("blkio/g/blkio.throttle.write_bps_device"), "7:0 1048576");
        // v1 has memory+swap only: --swap alone cannot be expressed.
        let e = V1::create(&b, None, "h", &Limits { swap_bytes: Some(1), ..Default::default() });
        assert!(e.err().unwrap().to_string().contains("give --mem too"));
        assert!(!t.path().join("memory/h").exists(), "undone");
    }

    #[test]
    fn comounted_controllers_share_one_directory() {
        let t = tempfile::tempdir().unwrap();
        let g = V1::create(&bases(t.path(), true), None, "g", &Limits::default()).unwrap();
        assert_eq!(g.unique.len(), 3);
        assert_eq!(g.paths()["cpu"], g.paths()["cpuacct"]);
    }

    #[test]
    fn a_failed_create_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let mut b = bases(t.path(), false);
        b.insert("pids".into(), t.path().join("missing/parent"));
        assert!(V1::create(&b, None, "g", &Limits::default()).is_err());
        for c in ["memory", "cpu", "cpuacct"] {
            assert!(!t.path().join(c).join("g").exists(), "{c} group left behind");
        }
        b.remove("memory");
        let e = V1::create(&b, None, "g", &Limits { memory_bytes: Some(1), ..Default::default() });
        assert!(e.err().unwrap().to_string().contains("--mem"));
    }

    /// Red-team 19, hole 1: a cgroup2 group already there that this run did not make (someone
    /// else's) is refused before any v1 group is made, and never adopted; one it made is adopted.
    #[test]
    fn an_existing_cgroup2_group_the_run_did_not_make_is_refused_not_adopted() {
        let t = tempfile::tempdir().unwrap();
        let b = bases(t.path(), false);
        let theirs = t.path().join("unified/victim");
        std::fs::create_dir_all(&theirs).unwrap();
        let e = V1::create(&b, Some((theirs.clone(), false)), "victim", &Limits::default());
        assert!(e.err().unwrap().to_string().contains("exists"));
        assert!(theirs.is_dir());
        for c in ["memory", "cpu", "cpuacct", "pids"] {
            assert!(!t.path().join(c).join("victim").exists(), "{c} group made before the refusal");
        }
        let g = V1::create(&b, Some((theirs.clone(), true)), "victim", &Limits::default()).unwrap();
        assert!(g.born_in_unified && g.unified.as_ref() == Some(&theirs));
    }
}
