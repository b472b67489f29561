//! cgroup v1 cpuset controller: `--cpuset-cpus`, `--cpuset-mems`. A group is made in this hierarchy
//! only when one of them (or a `--cgroup-conf cpuset.*` file) is asked for.
//!
//! Kernel quirk: a new v1 cpuset group starts with empty `cpuset.cpus` and `cpuset.mems` (unless
//! its parent has `cgroup.clone_children`, which is not ours to set), and a task cannot join it
//! (ENOSPC) until both are set: they are filled from the parent's (as runc does) or the lists asked.

use std::path::Path;

use crate::cgroup::{read, write};
use crate::config::Limits;
use crate::error::{Error, Result};
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

/// `update --cpuset-*`: refuses it for a container made without a cpuset group (on v1 one is made
/// only for a run that asked for a list: moving a running container's tasks into a new group
/// would race with its forks), and a list the parent group may not use.
pub fn check_update(dir: Option<&Path>, limits: &Limits) -> Result<()> {
    let flag = match (&limits.cpuset_cpus, &limits.cpuset_mems) {
        (None, None) => return Ok(()),
        (Some(_), _) => "--cpuset-cpus",
        (None, Some(_)) => "--cpuset-mems",
    };
    match dir.and_then(Path::parent) {
        Some(base) => check(base, limits),
        None => Err(Error::Unsupported {
            limit: flag,
            reason: "the container was started without --cpuset-cpus or --cpuset-mems, and on cgroup v1 such a \
                     container has no cpuset group to change (start it with one, e.g. --cpuset-cpus 0-1)"
                .into(),
        }),
    }
}

/// Writes the lists given (only those) to the live group `dir`.
pub fn update(dir: &Path, limits: &Limits) -> Result<()> {
    for (asked, file) in [(&limits.cpuset_cpus, "cpuset.cpus"), (&limits.cpuset_mems, "cpuset.mems")] {
        if let Some(v) = asked {
            write(&dir.join(file), v)?;
        }
    }
    Ok(())
}
