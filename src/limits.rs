//! The limit flags beyond `--mem`, `--cpus` and `--pids` (issue 13): CPU lists, weights, io rules
//! on a device and `--cgroup-conf FILE=VALUE`, parsed and checked before anything is created.
//! What each becomes in a group's files is the controllers' business (`cgroup::v1`, `cgroup::v2`).

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::Serialize;

use crate::config::parse_size;
use crate::error::Error;

/// One of the four throttles of `io.max` / `blkio.throttle.*_device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoKind {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl IoKind {
    pub fn flag(self) -> &'static str {
        match self {
            IoKind::ReadBps => "--io-read-bps",
            IoKind::WriteBps => "--io-write-bps",
            IoKind::ReadIops => "--io-read-iops",
            IoKind::WriteIops => "--io-write-iops",
        }
    }

    /// The key of a v2 `io.max` line.
    pub fn v2_key(self) -> &'static str {
        match self {
            IoKind::ReadBps => "rbps",
            IoKind::WriteBps => "wbps",
            IoKind::ReadIops => "riops",
            IoKind::WriteIops => "wiops",
        }
    }

    /// The v1 blkio file.
    pub fn v1_file(self) -> &'static str {
        match self {
            IoKind::ReadBps => "blkio.throttle.read_bps_device",
            IoKind::WriteBps => "blkio.throttle.write_bps_device",
            IoKind::ReadIops => "blkio.throttle.read_iops_device",
            IoKind::WriteIops => "blkio.throttle.write_iops_device",
        }
    }

    fn is_bytes(self) -> bool {
        matches!(self, IoKind::ReadBps | IoKind::WriteBps)
    }
}

/// A throttle on one whole disk: `--io-write-bps /dev/sdb:10M`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IoRule {
    /// As the user named it (a path or MAJ:MIN).
    pub device: String,
    pub major: u32,
    pub minor: u32,
    pub limit: IoKind,
    /// Bytes or operations per second.
    pub value: u64,
}

/// `--cgroup-conf FILE=VALUE`: a controller file of the run's group, written after sandbox's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CgroupConf {
    pub file: String,
    pub value: String,
}

/// Files sandbox writes itself (or that would move, kill, freeze or escape the run), with the
/// flag to use instead. `release_agent` and `notify_on_release` are CVE-2022-0492's escape.
pub const MANAGED: &[(&str, &str)] = &[
    ("cgroup.procs", "sandbox moves the command there itself"),
    ("cgroup.threads", "sandbox moves the command there itself"),
    ("tasks", "sandbox moves the command there itself"),
    ("cgroup.subtree_control", "the run's group holds the command: it cannot delegate"),
    ("cgroup.type", "the run's group is a domain group"),
    ("cgroup.kill", "sandbox ends the run itself"),
    ("cgroup.freeze", "a frozen run never ends"),
    ("cgroup.clone_children", "sandbox sets cpuset itself"),
    ("cgroup.event_control", "sandbox reads the counters itself"),
    ("notify_on_release", "a release agent runs on the host (CVE-2022-0492)"),
    ("release_agent", "a release agent runs on the host (CVE-2022-0492)"),
    ("memory.max", "use --mem"),
    ("memory.limit_in_bytes", "use --mem"),
    ("memory.kmem.tcp.limit_in_bytes", "set with --mem"),
    ("memory.high", "use --mem-high"),
    ("memory.soft_limit_in_bytes", "use --mem-high"),
    ("memory.swap.max", "use --swap"),
    ("memory.memsw.limit_in_bytes", "use --swap"),
    ("cpu.max", "use --cpus"),
    ("cpu.cfs_quota_us", "use --cpus"),
    ("cpu.cfs_period_us", "use --cpus"),
    ("cpu.weight", "use --cpu-weight"),
    ("cpu.weight.nice", "use --cpu-weight"),
    ("cpu.shares", "use --cpu-weight"),
    ("cpuset.cpus", "use --cpuset-cpus"),
    ("cpuset.mems", "use --cpuset-mems"),
    ("io.max", "use --io-read-bps, --io-write-bps, --io-read-iops, --io-write-iops"),
    ("io.weight", "use --io-weight"),
    ("io.bfq.weight", "use --io-weight"),
    ("blkio.weight", "use --io-weight"),
    ("blkio.bfq.weight", "use --io-weight"),
    ("blkio.throttle.read_bps_device", "use --io-read-bps"),
    ("blkio.throttle.write_bps_device", "use --io-write-bps"),
    ("blkio.throttle.read_iops_device", "use --io-read-iops"),
    ("blkio.throttle.write_iops_device", "use --io-write-iops"),
    ("pids.max", "use --pids"),
];

/// Parses `--cgroup-conf FILE=VALUE`. FILE is a plain file name (`memory.oom.group`): no path,
/// never one sandbox manages.
pub fn parse_cgroup_conf(s: &str) -> Result<CgroupConf, Error> {
    let help = "FILE=VALUE, FILE a controller file of the run's group such as memory.oom.group=1";
    let Some((file, value)) = s.split_once('=') else {
        return Err(Error::invalid("--cgroup-conf", s, help));
    };
    if let Some((_, why)) = MANAGED.iter().find(|(f, _)| *f == file) {
        return Err(Error::invalid(
            "--cgroup-conf",
            s,
            &format!("a controller file sandbox does not manage itself ({file}: {why})"),
        ));
    }
    let plain = !file.is_empty()
        && !file.starts_with('.')
        && file.contains('.')
        && file.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !plain || value.contains('\0') {
        return Err(Error::invalid("--cgroup-conf", s, help));
    }
    let c = CgroupConf { file: file.into(), value: value.into() };
    // A device rule is checked here, the same for v1 (the kernel's EINVAL later) and v2 (compiled).
    if crate::cgroup::v2::devices::is_rule(&c) {
        crate::cgroup::v2::devices::parse(&c)?;
    }
    Ok(c)
}

/// Parses a CPU or memory-node list (`0-3,5`), as cpuset.cpus takes it.
pub fn parse_list(flag: &'static str, s: &str) -> Result<BTreeSet<u32>, Error> {
    let bad = || Error::invalid(flag, s, "a list of numbers and ranges such as 0-3,5");
    let mut out = BTreeSet::new();
    for part in s.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |t: &str| t.trim().parse::<u32>().ok().filter(|v| *v < 1 << 16);
        let (Some(a), Some(b)) = (num(a), num(b)) else {
            return Err(bad());
        };
        if a > b {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    Ok(out)
}

/// The canonical form of a list: `0-3,5`.
pub fn format_list(set: &BTreeSet<u32>) -> String {
    let mut parts: Vec<String> = vec![];
    let mut it = set.iter().copied().peekable();
    while let Some(a) = it.next() {
        let mut b = a;
        while it.peek() == Some(&(b + 1)) {
            b = it.next().unwrap();
        }
        parts.push(if a == b { a.to_string() } else { format!("{a}-{b}") });
    }
    parts.join(",")
}

/// Checks a requested list against the parent group's effective one (`cpuset.cpus.effective`,
/// v1 `cpuset.effective_cpus`): the kernel would refuse the others (EINVAL), after the group was made.
pub fn check_subset(flag: &'static str, asked: &str, effective: &str) -> Result<(), Error> {
    let want = parse_list(flag, asked)?;
    let have = parse_list(flag, effective).unwrap_or_default();
    if !want.is_subset(&have) {
        let what = if flag == "--cpuset-cpus" { "CPUs" } else { "memory nodes" };
        return Err(Error::invalid(
            flag,
            asked,
            &format!("{what} the run's parent group may use: {}", effective.trim()),
        ));
    }
    Ok(())
}

/// Parses a weight (`--cpu-weight`, `--io-weight`): a whole number from 1 to 10000, default 100,
/// as cgroup v2's cpu.weight and io.weight.
pub fn parse_weight(flag: &'static str, s: &str) -> Result<u64, Error> {
    match s.trim().parse::<u64>() {
        Ok(v) if (1..=10000).contains(&v) => Ok(v),
        _ => Err(Error::invalid(flag, s, "a whole number from 1 to 10000 (100 is the default share), e.g. 200")),
    }
}

/// Parses `DEV:RATE` for `kind`: DEV a block device path or MAJ:MIN of a whole disk, RATE bytes
/// (binary suffixes, as `--mem`) or operations per second.
pub fn parse_io_rule(kind: IoKind, s: &str) -> Result<IoRule, Error> {
    let rate_help = if kind.is_bytes() {
        "DEV:RATE, DEV a block device path or MAJ:MIN, RATE bytes per second with an optional binary \
         suffix K, M, G (e.g. /dev/sdb:10M)"
    } else {
        "DEV:N, DEV a block device path or MAJ:MIN, N operations per second (a whole number ≥ 1, e.g. /dev/sdb:100)"
    };
    let Some((dev, rate)) = s.rsplit_once(':') else {
        return Err(Error::invalid(kind.flag(), s, rate_help));
    };
    let value =
        if kind.is_bytes() { parse_size(rate).ok() } else { rate.trim().parse::<u64>().ok().filter(|v| *v >= 1) };
    let Some(value) = value else {
        return Err(Error::invalid(kind.flag(), s, rate_help));
    };
    let (major, minor) = resolve_device(kind.flag(), s, dev, Path::new("/sys/dev/block"))?;
    Ok(IoRule { device: dev.into(), major, minor, limit: kind, value })
}

/// MAJ:MIN of `dev` (a path to a block device node, or MAJ:MIN itself), checked against `sys`
/// (/sys/dev/block): it exists and is a whole disk. The kernel takes io limits on whole disks only
/// (blkg_conf_open_bdev refuses a partition with ENODEV).
fn resolve_device(flag: &'static str, s: &str, dev: &str, sys: &Path) -> Result<(u32, u32), Error> {
    let numbers = dev.split_once(':').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let (major, minor) = match numbers {
        Some(n) => n,
        None => {
            let md = std::fs::metadata(dev).ok().filter(|m| m.file_type().is_block_device());
            let Some(md) = md else {
                let why = format!("a block device path or MAJ:MIN of a whole disk ({dev} is not a block device)");
                return Err(Error::invalid(flag, s, &why));
            };
            let rdev = md.rdev();
            (libc::major(rdev), libc::minor(rdev))
        }
    };
    let node = sys.join(format!("{major}:{minor}"));
    if !node.exists() {
        let why = format!("a block device of this host (there is no {major}:{minor} in {})", sys.display());
        return Err(Error::invalid(flag, s, &why));
    }
    if node.join("partition").exists() {
        let why = format!("a whole disk: {dev} ({major}:{minor}) is a partition, the kernel limits whole disks only");
        return Err(Error::invalid(flag, s, &why));
    }
    Ok((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_print_canonically() {
        let l = parse_list("--cpuset-cpus", "0-2, 5,7-8,1").unwrap();
        assert_eq!(format_list(&l), "0-2,5,7-8");
        assert_eq!(format_list(&parse_list("--cpuset-cpus", "3").unwrap()), "3");
        for bad in ["", "a", "3-1", "1,,2", "-1", "0-", "99999"] {
            let e = parse_list("--cpuset-cpus", bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("0-3,5"), "{e}");
        }
    }

    #[test]
    fn a_list_outside_the_parents_set_is_refused_naming_the_set() {
        check_subset("--cpuset-cpus", "0-1", "0-1\n").unwrap();
        check_subset("--cpuset-mems", "0", "0\n").unwrap();
        let e = check_subset("--cpuset-cpus", "7", "0-1\n").unwrap_err().to_string();
        assert_eq!(e, "invalid --cpuset-cpus '7': expected CPUs the run's parent group may use: 0-1");
    }

    #[test]
    fn weights_are_one_to_ten_thousand() {
        assert_eq!(parse_weight("--cpu-weight", "1").unwrap(), 1);
        assert_eq!(parse_weight("--cpu-weight", "10000").unwrap(), 10000);
        for bad in ["0", "10001", "-5", "1.5", "high", ""] {
            let e = parse_weight("--cpu-weight", bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("1 to 10000"), "{e}");
        }
    }

    #[test]
    fn io_rules_take_a_device_path_or_maj_min_and_a_rate() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("7:0")).unwrap();
        std::fs::create_dir_all(t.path().join("8:1")).unwrap();
        std::fs::write(t.path().join("8:1/partition"), "1\n").unwrap();
        assert_eq!(resolve_device("--io-read-bps", "x", "7:0", t.path()).unwrap(), (7, 0));
        let e = resolve_device("--io-read-bps", "8:1:1M", "8:1", t.path()).unwrap_err().to_string();
        assert!(e.contains("'8:1:1M'") && e.contains("partition"), "{e}");
        let e = resolve_device("--io-read-bps", "9:9:1M", "9:9", t.path()).unwrap_err().to_string();
        assert!(e.contains("no 9:9"), "{e}");
        // A path that is not a block device, and a rate that is not one.
        let e = parse_io_rule(IoKind::WriteBps, "/nonexistent:1M").unwrap_err().to_string();
        assert!(e.starts_with("invalid --io-write-bps '/nonexistent:1M'") && e.contains("not a block device"), "{e}");
        let e = parse_io_rule(IoKind::ReadBps, "/dev/vda:fast").unwrap_err().to_string();
        assert!(e.contains("'/dev/vda:fast'") && e.contains("RATE bytes per second"), "{e}");
        let e = parse_io_rule(IoKind::ReadIops, "/dev/vda:0").unwrap_err().to_string();
        assert!(e.contains("operations per second"), "{e}");
        let e = parse_io_rule(IoKind::ReadIops, "nocolon").unwrap_err().to_string();
        assert!(e.contains("'nocolon'"), "{e}");
        let e = parse_io_rule(IoKind::WriteBps, "/dev/null:1M").unwrap_err().to_string();
        assert!(e.contains("/dev/null is not a block device"), "a character device: {e}");
    }

    #[test]
    fn io_rule_of_a_real_disk() {
        // Any whole disk this machine has, by path and by number.
        let Some(disk) = std::fs::read_dir("/sys/block").ok().and_then(|mut d| d.next()).and_then(|e| e.ok()) else {
            eprintln!("SKIPPED io_rule_of_a_real_disk: no /sys/block");
            return;
        };
        let name = disk.file_name().to_string_lossy().into_owned();
        let dev = std::fs::read_to_string(disk.path().join("dev")).unwrap();
        let r = parse_io_rule(IoKind::WriteIops, &format!("{}:100", dev.trim())).unwrap();
        assert_eq!((format!("{}:{}", r.major, r.minor), r.value), (dev.trim().to_string(), 100));
        if Path::new(&format!("/dev/{name}")).exists() {
            let r2 = parse_io_rule(IoKind::WriteBps, &format!("/dev/{name}:1.5M")).unwrap();
            assert_eq!((r2.major, r2.minor, r2.value), (r.major, r.minor, 3 << 19));
        }
    }

    #[test]
    fn cgroup_conf_refuses_what_sandbox_manages_and_paths() {
        let c = parse_cgroup_conf("memory.oom.group=1").unwrap();
        assert_eq!((c.file.as_str(), c.value.as_str()), ("memory.oom.group", "1"));
        assert_eq!(parse_cgroup_conf("cpu.idle=").unwrap().value, "");
        let e = parse_cgroup_conf("cgroup.procs=1").unwrap_err().to_string();
        assert!(e.starts_with("invalid --cgroup-conf 'cgroup.procs=1'") && e.contains("does not manage"), "{e}");
        assert!(parse_cgroup_conf("memory.max=1G").unwrap_err().to_string().contains("use --mem"));
        assert!(parse_cgroup_conf("release_agent=/x").unwrap_err().to_string().contains("CVE-2022-0492"));
        for bad in ["../../release_agent=x", "memory.max/../x=1", "noequals", "=1", "nodot=1", ".hidden=1"] {
            let e = parse_cgroup_conf(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }
}
