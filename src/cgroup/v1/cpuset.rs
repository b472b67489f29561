//! cgroup v1 cpuset controller: `--cpuset-cpus`, `--cpuset-mems`. A group is made in this hierarchy
//! only when one of them (or a `--cgroup-conf cpuset.*` file) is asked for.
//!
//! Kernel quirk: a new v1 cpuset group starts with empty `cpuset.cpus` and `cpuset.mems` (unless
//! its parent has `cgroup.clone_children`, which is not ours to set), and a task cannot join it
//! (ENOSPC) until both are set: they are filled from the parent's (as runc does) or the lists asked.

use std::path::Path;

use crate::cgroup::{read, write};
use crate::config::Limits;
use crate::error::Result;
use crate::limits::check_subset;

/// Refuses a list the parent `base` does not have, before the group is made.
pub fn check(base: &Path, limits: &Limits) -> Result<()> {
    for (flag, asked, file) in [
        ("--cpuset-cpus", &limits.cpuset_cpus, "cpuset.effective_cpus"),
        ("--cpuset-mems", &limits.cpuset_mems, "cpuset.effective_mems"),
    ] {
        if let (Some(asked), Some(eff)) = (asked, read(&base.join(file))) {
            check_subset(flag, asked, &eff)?;
        }
    }
    Ok(())
}

/// Fills the new group `dir` (under `base`): the lists asked, else the parent's.
pub fn apply(base: &Path, dir: &Path, limits: &Limits) -> Result<()> {
    for (asked, file) in [(&limits.cpuset_cpus, "cpuset.cpus"), (&limits.cpuset_mems, "cpuset.mems")] {
        let value = match asked {
            Some(v) => v.clone(),
            None => read(&base.join(file)).unwrap_or_default().trim().to_string(),
        };
        write(&dir.join(file), &value)?;
    }
    Ok(())
}
