//! `ps [--format table|json] ID`: the host pids of every process in the container's group
//! (go-runc's `Ps` reads the JSON array; the table form is `ps -ef`-like pid lines).

use std::path::Path;

use super::runtime::find;
use crate::error::{Error, Result};

/// The host pids of the container `id`, sorted (from cgroup.procs of its group).
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let c = find(root, id)?;
    let Some(cg) = &c.state.cgroup else {
        return Err(Error::container(format!("container {id} has no cgroup: cannot list its processes")));
    };
    if !c.state.is_live() {
        return Ok(vec![]);
    }
    let g = crate::cgroup::open(cg.version, &cg.paths)?;
    let mut pids = crate::cgroup::members(g.as_ref());
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

pub fn ps(root: &Path, id: &str, format: &str) -> Result<i32> {
    let pids = pids(root, id)?;
    if format == "json" {
        println!("{}", serde_json::Value::from(pids));
    } else {
        println!("PID\tCMD");
        for p in pids {
            let cmd = crate::sys::read_small(format!("/proc/{p}/cmdline"))
                .map(|s| s.replace('\0', " ").trim_end().to_string())
                .unwrap_or_default();
            println!("{p}\t{cmd}");
        }
    }
    Ok(0)
}
