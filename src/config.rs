//! What a run was asked to do, validated: the command, its limits and its view of the filesystem.
//!
//! Everything here is pure: parsing of the user's values (sizes, CPU counts, pid counts, durations,
//! bind specs) happens before anything is created, so a bad value leaves nothing behind.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The cgroup limits of a run. `None` means "not limited" (the report still shows usage).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (memory.max / memory.limit_in_bytes); swap is limited to zero beside it.
    pub memory_bytes: Option<u64>,
    /// CPU bandwidth in CPUs (0.5 = half of one CPU): cpu.max / cpu.cfs_quota_us.
    pub cpus: Option<f64>,
    /// Maximum number of tasks (processes and threads) in the group: pids.max.
    pub pids: Option<u64>,
    /// Wall-clock limit; when it expires everything in the sandbox is killed and sandbox exits 124.
    pub timeout: Option<Duration>,
    /// CPU time of the whole run (every process of the group, cpu.stat usage_usec / cpuacct.usage):
    /// when it is used up everything is killed and sandbox exits 124 (`--cpu-time`).
    pub cpu_time: Option<Duration>,
    /// Memory above which the group is throttled and reclaimed (v2 memory.high; v1
    /// memory.soft_limit_in_bytes, reclaimed to only under global pressure): `--mem-high`.
    pub memory_high: Option<u64>,
    /// Swap the group may use (v2 memory.swap.max; v1 memsw = memory + swap): `--swap`. `None`:
    /// none beside `--mem`.
    pub swap_bytes: Option<u64>,
    /// CPU weight 1-10000 (v2 cpu.weight; v1 cpu.shares as runc converts): `--cpu-weight`.
    pub cpu_weight: Option<u64>,
    /// CPUs and memory nodes the command may use, canonical lists (cpuset.cpus, cpuset.mems).
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// io weight 1-10000 (v2 io.weight/io.bfq.weight; v1 blkio.weight/blkio.bfq.weight).
    pub io_weight: Option<u64>,
    /// Throttles per disk (v2 io.max; v1 blkio.throttle.*_device).
    pub io: Vec<crate::limits::IoRule>,
    /// `--cgroup-conf FILE=VALUE`, in order, written after everything else.
    pub cgroup_conf: Vec<crate::limits::CgroupConf>,
}

impl Limits {
    /// The flags of the limits that need a cgroup (`--timeout` does not).
    pub fn cgroup_flags(&self) -> Vec<&'static str> {
        [
            (self.memory_bytes.is_some(), "--mem"),
            (self.cpus.is_some(), "--cpus"),
            (self.pids.is_some(), "--pids"),
            (self.cpu_time.is_some(), "--cpu-time"),
            (self.memory_high.is_some(), "--mem-high"),
            (self.swap_bytes.is_some(), "--swap"),
            (self.cpu_weight.is_some(), "--cpu-weight"),
            (self.cpuset_cpus.is_some(), "--cpuset-cpus"),
            (self.cpuset_mems.is_some(), "--cpuset-mems"),
            (self.io_weight.is_some(), "--io-weight"),
            (!self.io.is_empty(), "--io-*-bps/iops"),
            (!self.cgroup_conf.is_empty(), "--cgroup-conf"),
        ]
        .into_iter()
        .filter_map(|(set, flag)| set.then_some(flag))
        .collect()
    }

    /// Whether the run needs a cpuset group (v1 makes one only then).
    pub fn wants_cpuset(&self) -> bool {
        self.cpuset_cpus.is_some() || self.cpuset_mems.is_some() || self.conf_for("cpuset")
    }

    /// Whether a `--cgroup-conf` file belongs to `controller` (its name's prefix).
    pub fn conf_for(&self, controller: &str) -> bool {
        self.cgroup_conf.iter().any(|c| c.file.split('.').next() == Some(controller))
    }

    /// Checks the limits against each other: `--mem-high` at most `--mem` (docker refuses a
    /// reservation above the limit too).
    pub fn check(&self) -> Result<(), Error> {
        if let (Some(high), Some(max)) = (self.memory_high, self.memory_bytes) {
            if high > max {
                return Err(Error::invalid(
                    "--mem-high",
                    &high.to_string(),
                    &format!("a size at most --mem ({max} bytes)"),
                ));
            }
        }
        Ok(())
    }
}

/// A bind mount requested with `--bind SRC:DST[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub read_only: bool,
    #[serde(default)]
    pub opts: MountOpts,
}

/// What an OCI config's mount options add to a bind or tmpfs: its place among the config's
/// mounts, a non-recursive bind, nosuid/noexec, and a propagation type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountOpts {
    /// The mount's index in config.json: binds and tmpfs mounts are made in that order.
    pub seq: u32,
    /// `bind` (this mount only) rather than `rbind`.
    pub non_recursive: bool,
    pub nosuid: bool,
    pub noexec: bool,
    /// `shared`, `rslave`, `private`, `unbindable`… (checked by the OCI front-end).
    pub propagation: Option<String>,
    /// A tmpfs's `mode=` (default 1777).
    pub mode: Option<u32>,
    /// An idmapped bind (runtime-spec `uidMappings`/`gidMappings`): files owned by `inside` on
    /// the source are seen as `outside` (one user namespace's maps; no setgroups).
    #[serde(default)]
    pub idmap: Option<crate::userns::UserNs>,
}

/// An image's root filesystem: overlayfs over unpacked layers with a per-container upper dir
/// (see `image::container`). The merged view is the run's `rootfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layers {
    /// Layer directories, bottom first.
    pub lower: Vec<PathBuf>,
    /// Where the command's changes go.
    pub upper: PathBuf,
    /// overlayfs's work directory (same filesystem as `upper`).
    pub work: PathBuf,
    /// A directory for the mount points of intermediate overlays, when an image has more layers
    /// than one overlay mount's options can name.
    pub stack: PathBuf,
}

/// How the command's standard streams are connected. Whatever the mode, the command never holds
/// a descriptor of the outer terminal: without a pty, each of sandbox's stdin, stdout and stderr
/// that is a terminal is relayed through a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tty {
    /// A pseudo-terminal when sandbox's stdin and stdout are both terminals (like `docker run -it`).
    #[default]
    Auto,
    /// Always a pseudo-terminal (`-t`), even when stdin or stdout is a pipe or a file.
    Always,
    /// Never a pseudo-terminal (`--no-tty`).
    Never,
}

/// A device node an OCI config's linux.devices makes in the command's /dev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// Absolute inside the sandbox, below /dev (checked by the OCI front-end).
    pub path: PathBuf,
    /// `c` (or `u`), `b` or `p`.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// An extra tmpfs mount: `--tmpfs DST[:size=N]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub dst: PathBuf,
    /// Its size limit in bytes (`None`: the kernel's default, half of RAM; the memory limit
    /// still counts what is written there).
    pub size: Option<u64>,
    #[serde(default)]
    pub opts: MountOpts,
}

/// docker's default `--shm-size`.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;
/// `docker stop`'s default grace period.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete, validated description of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// The run's id: names its cgroup and is its default hostname.
    pub id: String,
    /// The command and its arguments (looked up in PATH inside the sandbox).
    pub command: Vec<String>,
    pub limits: Limits,
    /// Hostname inside the sandbox (default: the id).
    pub hostname: Option<String>,
    /// Root filesystem directory to pivot_root into; `None` shows the host's files.
    pub rootfs: Option<PathBuf>,
    /// With an image: the layers mounted (overlayfs) on `rootfs` before anything else.
    pub layers: Option<Layers>,
    /// The command's environment, exactly (`NAME=VALUE`); `None`: the clean default of
    /// [`crate::env::default_for`] (never the caller's whole environment).
    pub env: Option<Vec<String>>,
    /// The command's working directory (created if missing); `None`: `/` with a rootfs, else
    /// sandbox's own.
    pub cwd: Option<PathBuf>,
    /// `USER[:GROUP]` (names or numbers) to run the command as, looked up in the root
    /// filesystem's /etc/passwd and /etc/group; `None`: root.
    pub user: Option<String>,
    /// Make the command's root filesystem read-only (recursively).
    pub read_only: bool,
    pub binds: Vec<Bind>,
    /// Extra tmpfs mounts (absolute paths inside the sandbox).
    pub tmpfs: Vec<Tmpfs>,
    /// The size of /dev/shm in bytes (`--shm-size`, docker's 64M by default).
    pub shm_size: u64,
    /// How long a stop (SIGTERM, SIGINT or SIGHUP to sandbox, forwarded) may take before
    /// everything in the run is SIGKILLed (`--stop-timeout`).
    pub stop_timeout: Duration,
    /// `--preserve-fds N`: fds 3 .. 3+N-1 of the caller are passed to the command on purpose;
    /// every other fd above 2 is closed before exec.
    pub preserve_fds: u32,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals.
    pub init: bool,
    /// Cgroup parent, relative to the hierarchy root (or, starting with `./`, to the invoking
    /// process's own cgroup in each hierarchy); default: the invoking process's own cgroup.
    pub cgroup_parent: Option<String>,
    /// The run group's exact name below the parent (an OCI cgroupsPath's last component), instead
    /// of sandbox's `sandbox-ID-PID`.
    pub cgroup_name: Option<String>,
    /// Where the cgroup filesystems are mounted (normally /sys/fs/cgroup).
    pub cgroup_root: PathBuf,
    pub tty: Tty,
    /// Capabilities the command keeps (docker's default set unless changed).
    pub capabilities: caps::CapsHashSet,
    /// Set PR_SET_NO_NEW_PRIVS before exec (default on; `--allow-new-privs` turns it off).
    pub no_new_privs: bool,
    /// `--privileged`: all capabilities, no masked or read-only /proc and /sys paths, no seccomp.
    pub privileged: bool,
    /// The seccomp filter (default: our denylist).
    pub seccomp: crate::seccomp::Policy,
    /// `--userns`: map the command's root to these host ids (root only). A non-root caller always
    /// gets its own ids mapped to root, whatever this says.
    pub userns: Option<crate::userns::UserNs>,
    /// Paths masked beside sandbox's own list (an OCI config's linux.maskedPaths).
    #[serde(default)]
    pub masked_paths: Vec<PathBuf>,
    /// Paths made read-only beside sandbox's own list (an OCI config's linux.readonlyPaths).
    #[serde(default)]
    pub read_only_paths: Vec<PathBuf>,
    /// Mount an mqueue filesystem at /dev/mqueue (an OCI config's mount of it).
    #[serde(default)]
    pub mqueue: bool,
    /// The command's process: capability sets beyond bounding (an OCI config's effective,
    /// permitted, inheritable, ambient), umask and additional groups; `None`: sandbox's own.
    #[serde(default)]
    pub process: Option<crate::caps::ProcessAttrs>,
    /// Kernel parameters set in the command's own namespaces (an OCI config's linux.sysctl,
    /// checked to be namespaced), as `net.ipv4.ip_forward` = `1`.
    #[serde(default)]
    pub sysctl: Vec<(String, String)>,
    /// Device nodes made in the command's /dev (an OCI config's linux.devices).
    #[serde(default)]
    pub devices: Vec<DeviceNode>,
    /// The propagation of the command's root mount (an OCI config's linux.rootfsPropagation):
    /// within the run's own mount namespace, which never propagates to the host's.
    #[serde(default)]
    pub rootfs_propagation: Option<String>,
    /// Existing namespaces the command joins instead of new ones (an OCI config's namespaces
    /// with a `path`: a pod's containers share its net, ipc and uts): `net`, `ipc` or `uts`.
    #[serde(default)]
    pub join_namespaces: Vec<(String, PathBuf)>,
    /// Namespace types the command shares with sandbox instead of getting new ones (an OCI config
    /// that leaves the type out of linux.namespaces: Kubernetes' hostNetwork, hostIPC and hostPID
    /// pods): `net`, `ipc`, `uts` or `pid`. Never `mnt`: every run gets its own mount namespace,
    /// private before its first mount. No hostname, loopback or sysctl is written into a shared
    /// one. `sandbox run` always makes them all new.
    #[serde(default)]
    pub shared_namespaces: Vec<String>,
    /// The OCI runtime runs hooks in the container (createContainer, startContainer): the child
    /// names itself `sandbox-ready` (comm) once its root is made, before it waits for the go.
    #[serde(default)]
    pub announce_ready: bool,
}

impl Config {
    /// A configuration with a fresh random id and no limits, for `command`.
    pub fn new<S: Into<String>>(command: impl IntoIterator<Item = S>) -> Config {
        Config {
            id: crate::sys::random_id(),
            command: command.into_iter().map(Into::into).collect(),
            limits: Limits::default(),
            hostname: None,
            rootfs: None,
            layers: None,
            env: None,
            cwd: None,
            user: None,
            read_only: false,
            binds: Vec::new(),
            tmpfs: Vec::new(),
            shm_size: DEFAULT_SHM_SIZE,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            preserve_fds: 0,
            init: false,
            cgroup_parent: None,
            cgroup_name: None,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            tty: Tty::Never,
            capabilities: crate::caps::DEFAULT.into_iter().collect(),
            no_new_privs: true,
            privileged: false,
            seccomp: crate::seccomp::Policy::Default,
            userns: None,
            masked_paths: Vec::new(),
            read_only_paths: Vec::new(),
            mqueue: false,
            process: None,
            sysctl: Vec::new(),
            devices: Vec::new(),
            rootfs_propagation: None,
            join_namespaces: Vec::new(),
            shared_namespaces: Vec::new(),
            announce_ready: false,
        }
    }

    /// Checks what can be checked before anything is created.
    pub fn validate(&self) -> Result<(), Error> {
        if self.command.is_empty() {
            return Err(Error::invalid("command", "", "a command to run, e.g. `sandbox run sh`"));
        }
        if let Some(root) = &self.rootfs {
            if !root.is_dir() {
                return Err(Error::invalid(
                    "--rootfs",
                    &root.display().to_string(),
                    "an existing directory holding a root filesystem",
                ));
            }
        }
        for t in &self.tmpfs {
            check_abs("--tmpfs", &t.dst)?;
        }
        if let Some(c) = &self.cwd {
            check_abs("--workdir", c)?;
        }
        if let Some(u) = &self.user {
            crate::user::Spec::parse(u)?;
        }
        for e in self.env.iter().flatten() {
            if !e.contains('=') || e.starts_with('=') || e.contains('\0') {
                return Err(Error::invalid("--env", e, "NAME=VALUE"));
            }
        }
        if self.preserve_fds > MAX_PRESERVE_FDS {
            return Err(Error::invalid("--preserve-fds", &self.preserve_fds.to_string(), PRESERVE_HELP));
        }
        for b in &self.binds {
            check_abs("--bind", &b.dst)?;
        }
        self.limits.check()?;
        if let Some(h) = &self.hostname {
            if h.is_empty() || h.len() > 64 {
                return Err(Error::invalid("--hostname", h, "1 to 64 characters"));
            }
        }
        self.check_shared()
    }

    /// Whether the command shares sandbox's own namespace of `kind` (`net`, `ipc`, `uts`, `pid`).
    pub fn shares(&self, kind: &str) -> bool {
        self.shared_namespaces.iter().any(|k| k == kind)
    }

    /// [`Config::shared_namespaces`]: known types only, never the mount namespace, and nothing
    /// written into a shared one (the OCI layer refuses the same with the config's field names).
    fn check_shared(&self) -> Result<(), Error> {
        for k in &self.shared_namespaces {
            if !["net", "ipc", "uts", "pid"].contains(&k.as_str()) {
                return Err(Error::invalid("shared namespace", k, "net, ipc, uts or pid (never mnt)"));
            }
        }
        if let Some(h) = self.hostname.as_ref().filter(|_| self.shares("uts")) {
            return Err(Error::invalid("--hostname", h, "no hostname with the host's uts namespace"));
        }
        match self.sysctl.iter().find(|(k, _)| crate::oci::kernel::namespace_of(k).is_some_and(|n| self.shares(n))) {
            Some((k, _)) => Err(Error::invalid("sysctl", k, "a sysctl of a namespace the command does not share")),
            None => Ok(()),
        }
    }
}

const PRESERVE_HELP: &str = "a whole number of fds from 0 to 1024, counted from fd 3";
const MAX_PRESERVE_FDS: u32 = 1024;

/// Parses `--preserve-fds N`.
pub fn parse_preserve_fds(s: &str) -> Result<u32, Error> {
    match s.trim().parse::<u32>() {
        Ok(n) if n <= MAX_PRESERVE_FDS => Ok(n),
        _ => Err(Error::invalid("--preserve-fds", s, PRESERVE_HELP)),
    }
}

/// Parses `--stop-timeout` (humantime; `0s` kills at once).
pub fn parse_stop_timeout(s: &str) -> Result<Duration, Error> {
    humantime::parse_duration(s.trim())
        .map_err(|_| Error::invalid("--stop-timeout", s, "a duration such as 10s, 500ms or 0s (kill at once)"))
}

/// Parses a tmpfs size (`--shm-size`, `--tmpfs DST:size=N`): binary suffixes as `--mem`, at
/// least one page.
pub fn parse_tmpfs_size(flag: &'static str, s: &str) -> Result<u64, Error> {
    let help = "a size of at least 4K with an optional binary suffix K, M, G (1K = 1024), e.g. 64M";
    match parse_size(s) {
        Ok(b) if b >= 4096 => Ok(b),
        _ => Err(Error::invalid(flag, s, help)),
    }
}

/// Parses `--tmpfs DST[:size=N]`.
pub fn parse_tmpfs(s: &str) -> Result<Tmpfs, Error> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    let mut t = Tmpfs { dst: PathBuf::from(dst), size: None, opts: MountOpts::default() };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", v)) => t.size = Some(parse_tmpfs_size("--tmpfs", v)?),
            _ => return Err(Error::invalid("--tmpfs", s, "DST or DST:size=N, e.g. /scratch:size=64M")),
        }
    }
    check_abs("--tmpfs", &t.dst)?;
    Ok(t)
}

pub(crate) fn check_abs(flag: &'static str, p: &std::path::Path) -> Result<(), Error> {
    if !p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(Error::invalid(flag, &p.display().to_string(), "an absolute path without `..`"));
    }
    Ok(())
}

const SIZE_HELP: &str =
    "a number of bytes with an optional binary suffix K, M, G or T (1K = 1024), e.g. 64M, 1.5G, 512k, 1048576";

/// Parses a memory size: `64M`, `1.5G`, `512k`, `1048576`, `2GiB`. Suffixes are binary (as docker's).
pub fn parse_size(s: &str) -> Result<u64, Error> {
    let bad = || Error::invalid("--mem", s, SIZE_HELP);
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.starts_with('.') && num.len() == 1 {
        return Err(bad());
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let bytes = if num.contains('.') {
        let v: f64 = num.parse().map_err(|_| bad())?;
        (v * (1u64 << shift) as f64).round()
    } else {
        let v: u64 = num.parse().map_err(|_| bad())?;
        v.checked_mul(1u64 << shift).ok_or_else(bad)? as f64
    };
    if !(1.0..=(i64::MAX as f64)).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Parses `--cpus`: a positive decimal, at least 0.01 and at most `host_cpus`.
pub fn parse_cpus(s: &str, host_cpus: usize) -> Result<f64, Error> {
    let help = format!("a decimal number of CPUs from 0.01 to {host_cpus} (this host's CPU count), e.g. 0.5");
    let v: f64 = s.trim().parse().map_err(|_| Error::invalid("--cpus", s, &help))?;
    if !v.is_finite() || v < 0.01 || v > host_cpus as f64 {
        return Err(Error::invalid("--cpus", s, &help));
    }
    Ok(v)
}

/// Parses `--pids`: a whole number ≥ 1.
pub fn parse_pids(s: &str) -> Result<u64, Error> {
    match s.trim().parse::<u64>() {
        Ok(v) if v >= 1 && v <= i32::MAX as u64 => Ok(v),
        _ => Err(Error::invalid("--pids", s, "a whole number of processes, at least 1, e.g. 20")),
    }
}

/// Parses `--timeout` in humantime form: `10s`, `1m30s`, `500ms`.
pub fn parse_timeout(s: &str) -> Result<Duration, Error> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(Error::invalid("--timeout", s, "a positive duration such as 10s, 1m30s or 500ms")),
    }
}

/// Parses `--cpu-time` in humantime form (`30s`, `1m`, `500ms`): a positive duration.
pub fn parse_cpu_time(s: &str) -> Result<Duration, Error> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(Error::invalid(
            "--cpu-time",
            s,
            "a positive duration of CPU time such as 30s, 1m30s or 500ms (summed over all processes and CPUs)",
        )),
    }
}

/// Parses `--bind SRC:DST[:ro|:rw]`; DST defaults to SRC when only one path is given.
pub fn parse_bind(s: &str) -> Result<Bind, Error> {
    let bad = || Error::invalid("--bind", s, "SRC:DST[:ro], two absolute paths, e.g. /data:/data:ro");
    let mut parts: Vec<&str> = s.split(':').collect();
    let read_only = match parts.last() {
        Some(&"ro") if parts.len() >= 2 => {
            parts.pop();
            true
        }
        Some(&"rw") if parts.len() >= 2 => {
            parts.pop();
            false
        }
        _ => false,
    };
    let (src, dst) = match parts.as_slice() {
        [src] => (*src, *src),
        [src, dst] => (*src, *dst),
        _ => return Err(bad()),
    };
    if src.is_empty() || !dst.starts_with('/') {
        return Err(bad());
    }
    let src = PathBuf::from(src);
    if !src.exists() {
        return Err(Error::invalid("--bind", s, "a source path that exists on the host"));
    }
    let src = src.canonicalize().map_err(|_| bad())?;
    Ok(Bind { src, dst: PathBuf::from(dst), read_only, opts: MountOpts::default() })
}

/// The number of CPUs online on this host.
pub fn host_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 {
        1
    } else {
        n as usize
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
