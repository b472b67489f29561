//! cgroup v1 devices controller: the OCI config's `linux.resources.devices` rules, carried as
//! `devices.deny` / `devices.allow` entries of the run's cgroup conf (src/oci/resources_devices.rs)
//! and written here in their order. The run has a group in this hierarchy only when there are
//! rules: without, it stays in sandbox's own (the host's) devices group, and its nodev mounts and
//! minimal /dev are what keep host devices out of reach (see plan.rs).

use std::path::Path;

use crate::cgroup::write;
use crate::config::Limits;
use crate::error::Result;
use crate::limits::CgroupConf;

/// Whether an entry is a device rule.
pub fn is_rule(c: &CgroupConf) -> bool {
    c.file == "devices.allow" || c.file == "devices.deny"
}

/// Whether the run needs a devices group.
pub fn wanted(l: &Limits) -> bool {
    l.cgroup_conf.iter().any(is_rule)
}

/// Writes the rules, in order, to the group `dir`. The kernel refuses (EPERM) an allow beyond the
/// parent group's list: a rule never gives more than sandbox itself has.
pub fn apply(dir: &Path, l: &Limits) -> Result<()> {
    l.cgroup_conf.iter().filter(|c| is_rule(c)).try_for_each(|c| write(&dir.join(&c.file), &c.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_written_in_order() {
        let t = tempfile::tempdir().unwrap();
        let mut l = Limits::default();
        assert!(!wanted(&l));
        for (file, value) in [("devices.deny", "a"), ("devices.allow", "c 1:3 rwm"), ("memory.swappiness", "1")] {
            l.cgroup_conf.push(CgroupConf { file: file.into(), value: value.into() });
        }
        assert!(wanted(&l));
        apply(t.path(), &l).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("devices.deny")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(t.path().join("devices.allow")).unwrap(), "c 1:3 rwm");
        assert!(!t.path().join("memory.swappiness").exists());
    }
}
