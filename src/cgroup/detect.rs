//! Where the cgroup hierarchies are and where this process sits in them.
//!
//! The layout is classified the way runc and youki do it: statfs(2) of /sys/fs/cgroup says cgroup2
//! (pure v2) or tmpfs (v1, "hybrid" when a cgroup2 is also mounted at /sys/fs/cgroup/unified).
//! /proc/self/mountinfo then says where each v1 controller is mounted (possibly co-mounted, as
//! `cpu,cpuacct`), and /proc/self/cgroup where this process is in each hierarchy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The three layouts a host can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup2 at the root: every controller in one tree.
    Unified,
    /// v1 controllers plus an (often controller-less) cgroup2 at `unified/`.
    Hybrid,
    /// Only v1 hierarchies.
    Legacy,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

impl Layout {
    /// Classifies from the filesystem magic of `root` and of `root/unified` (if it exists).
    pub fn from_magic(root: i64, unified: Option<i64>) -> Option<Layout> {
        match (root, unified) {
            (CGROUP2_SUPER_MAGIC, _) => Some(Layout::Unified),
            (TMPFS_MAGIC, Some(CGROUP2_SUPER_MAGIC)) => Some(Layout::Hybrid),
            (TMPFS_MAGIC, _) => Some(Layout::Legacy),
            _ => None,
        }
    }

    /// statfs(2) of `root` (normally /sys/fs/cgroup).
    pub fn detect(root: &Path) -> Result<Layout> {
        let magic = |p: &Path| nix::sys::statfs::statfs(p).map(|s| s.filesystem_type().0);
        let r = magic(root).map_err(|e| Error::sys(format!("statfs {}", root.display()), e))?;
        let u = magic(&root.join("unified")).ok();
        Layout::from_magic(r, u).ok_or_else(|| Error::Unsupported {
            limit: "cgroups",
            reason: format!("{} is neither cgroup2 nor a tmpfs of cgroup v1 mounts", root.display()),
        })
    }
}

/// One cgroup v1 mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    /// Where it is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.
    pub mount_point: PathBuf,
    /// The cgroup that is the mount's root (`/` on a host, `/docker/abc` in a container).
    pub root: String,
    /// Controllers bound to this hierarchy.
    pub controllers: Vec<String>,
}

/// Unescapes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4]).ok().and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v1 mounts listed in a mountinfo text, by controller name.
pub fn v1_mounts(mountinfo: &str) -> BTreeMap<String, V1Mount> {
    let mut out = BTreeMap::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || post[0] != "cgroup" {
            continue;
        }
        let controllers: Vec<String> = post[2]
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro" | "xattr") && !o.starts_with("release_agent"))
            .map(str::to_string)
            .collect();
        let m = V1Mount { mount_point: PathBuf::from(unescape(pre[4])), root: unescape(pre[3]), controllers };
        for c in &m.controllers {
            out.entry(c.clone()).or_insert_with(|| m.clone());
        }
    }
    out
}

/// The cgroup2 mount at `at` (a hybrid host's `/sys/fs/cgroup/unified`) from a mountinfo text: its
/// mount point and root (`controllers` empty), or `None` when nothing of type cgroup2 is there.
pub fn cgroup2_mount(mountinfo: &str, at: &Path) -> Option<V1Mount> {
    mountinfo.lines().rev().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        (pre.len() >= 5 && post.split(' ').next() == Some("cgroup2") && Path::new(&unescape(pre[4])) == at)
            .then(|| V1Mount { mount_point: at.to_path_buf(), root: unescape(pre[3]), controllers: vec![] })
    })
}

/// This process's cgroup per hierarchy from /proc/self/cgroup: controller name → path; the v2
/// entry (`0::/path`) is keyed by the empty string.
pub fn own_cgroups(proc_self_cgroup: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in proc_self_cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            out.insert(String::new(), path.to_string());
        }
        for c in ctrls.split(',').filter(|c| !c.is_empty()) {
            out.insert(c.to_string(), path.to_string());
        }
    }
    out
}

/// Joins a cgroup path (absolute within its hierarchy) under a mount whose root is `mount_root`.
/// Returns `None` when the path is not visible through that mount.
pub fn under_mount(mount_point: &Path, mount_root: &str, cgroup: &str) -> Option<PathBuf> {
    let rel = if mount_root == "/" {
        cgroup.trim_start_matches('/')
    } else {
        let rest = cgroup.strip_prefix(mount_root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest.trim_start_matches('/')
    };
    Some(if rel.is_empty() { mount_point.to_path_buf() } else { mount_point.join(rel) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mountinfo/");
        std::fs::read_to_string(format!("{p}{name}")).unwrap()
    }

    #[test]
    fn layout_from_statfs_magic() {
        assert_eq!(Layout::from_magic(CGROUP2_SUPER_MAGIC, None), Some(Layout::Unified));
        assert_eq!(Layout::from_magic(TMPFS_MAGIC, Some(CGROUP2_SUPER_MAGIC)), Some(Layout::Hybrid));
        assert_eq!(Layout::from_magic(TMPFS_MAGIC, Some(TMPFS_MAGIC)), Some(Layout::Legacy));
        assert_eq!(Layout::from_magic(TMPFS_MAGIC, None), Some(Layout::Legacy));
        assert_eq!(Layout::from_magic(0xEF53, None), None);
    }

    #[test]
    fn hybrid_host_mounts_each_controller_apart() {
        let m = v1_mounts(&fixture("hybrid"));
        assert_eq!(m["memory"].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(m["cpu"].mount_point, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(m["cpuacct"].mount_point, Path::new("/sys/fs/cgroup/cpuacct"));
        assert_eq!(m["name=systemd"].controllers, vec!["name=systemd"]);
        assert!(!m.contains_key(""), "the cgroup2 mount is not a v1 controller");
        let own = own_cgroups(&fixture("hybrid.cgroup"));
        assert_eq!(own["memory"], "/process_api/02a0a7382442ef3f83831b0a28d89688");
        assert_eq!(own["pids"], "/");
        assert_eq!(own[""], "/");
    }

    #[test]
    fn hybrid_host_has_its_cgroup2_at_unified() {
        let at = Path::new("/sys/fs/cgroup/unified");
        let m = cgroup2_mount(&fixture("hybrid"), at).unwrap();
        assert_eq!((m.mount_point.as_path(), m.root.as_str()), (at, "/"));
        assert_eq!(cgroup2_mount(&fixture("legacy"), at), None);
        assert_eq!(cgroup2_mount(&fixture("hybrid"), Path::new("/sys/fs/cgroup")), None);
    }

    #[test]
    fn legacy_host_comounts_cpu_and_cpuacct() {
        let m = v1_mounts(&fixture("legacy"));
        assert_eq!(m["cpu"], m["cpuacct"]);
        assert_eq!(m["cpu"].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m["cpu"].controllers, vec!["cpu", "cpuacct"]);
        let own = own_cgroups(&fixture("legacy.cgroup"));
        assert_eq!(own["cpuacct"], "/user.slice");
        let p = under_mount(&m["memory"].mount_point, &m["memory"].root, &own["memory"]).unwrap();
        assert_eq!(p, Path::new("/sys/fs/cgroup/memory/user.slice/user-1000.slice/session-2.scope"));
    }

    #[test]
    fn unified_host_has_no_v1_mounts() {
        assert!(v1_mounts(&fixture("unified")).is_empty());
        assert_eq!(own_cgroups(&fixture("unified.cgroup"))[""], "/user.slice/user-1000.slice/session-2.scope");
    }

    #[test]
    fn container_mount_roots_are_stripped() {
        let m = v1_mounts(&fixture("container-v1"));
        let own = own_cgroups(&fixture("container-v1.cgroup"));
        let mem = &m["memory"];
        assert_eq!(mem.root, "/docker/abc");
        assert_eq!(
            under_mount(&mem.mount_point, &mem.root, &own["memory"]).unwrap(),
            Path::new("/sys/fs/cgroup/memory/inner")
        );
        assert_eq!(under_mount(&mem.mount_point, &mem.root, "/docker/abc").unwrap(), mem.mount_point);
        assert_eq!(under_mount(&mem.mount_point, &mem.root, "/docker/abcd"), None);
        assert_eq!(under_mount(&mem.mount_point, &mem.root, "/other"), None);
    }

    #[test]
    fn octal_escapes_in_mount_points() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }
}
