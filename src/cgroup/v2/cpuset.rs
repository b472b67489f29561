//! cgroup v2 cpuset controller: `--cpuset-cpus` and `--cpuset-mems` (`cpuset.cpus`, `cpuset.mems`),
//! checked first against what the parent group may use (`cpuset.cpus.effective`).

use std::path::Path;

use crate::cgroup::{read, write};
use crate::config::Limits;
use crate::error::Result;
use crate::limits::check_subset;

/// Refuses a list the parent `base` does not have, before the group is made.
pub fn check(base: &Path, limits: &Limits) -> Result<()> {
    for (flag, asked, file) in [
        ("--cpuset-cpus", &limits.cpuset_cpus, "cpuset.cpus.effective"),
        ("--cpuset-mems", &limits.cpuset_mems, "cpuset.mems.effective"),
    ] {
        if let (Some(asked), Some(eff)) = (asked, read(&base.join(file))) {
            check_subset(flag, asked, &eff)?;
        }
    }
    Ok(())
}

/// Writes the lists to the group `dir`.
pub fn apply(dir: &Path, limits: &Limits) -> Result<()> {
    if let Some(c) = &limits.cpuset_cpus {
        write(&dir.join("cpuset.cpus"), c)?;
    }
    if let Some(m) = &limits.cpuset_mems {
        write(&dir.join("cpuset.mems"), m)?;
    }
    Ok(())
}
