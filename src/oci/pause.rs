//! `pause ID` / `resume ID`: freeze and thaw every process of the container through the cgroup
//! freezer (v2 cgroup.freeze, v1 the freezer controller); `state` then says `paused`.

use std::path::Path;

use super::runtime::find;
use crate::container::Status;
use crate::error::{Error, Result};

pub fn pause(root: &Path, id: &str, on: bool) -> Result<i32> {
    let mut c = find(root, id)?;
    let verb = if on { "pause" } else { "resume" };
    let Some(cg) = c.state.cgroup.clone() else {
        return Err(Error::container(format!("cannot {verb} container {id}: it has no cgroup")));
    };
    let group = crate::cgroup::open(cg.version, &cg.paths)?;
    // Checked and changed under the state's lock: the supervisor's own change (the command
    // ending) is not lost, two pauses cannot both freeze.
    let done = c.update(|s| {
        let (from, to) = if on { (Status::Running, Status::Paused) } else { (Status::Paused, Status::Running) };
        if s.status != from {
            let why = match s.status {
                Status::Stopped | Status::Created => "container not running".to_string(),
                st => format!("it is {st}"),
            };
            return Err(Error::container(format!("cannot {verb} container {id}: {why}")));
        }
        group.freeze(on)?;
        s.status = to;
        Ok(())
    })?;
    done.map(|_| 0)
}
