//! `sandbox gc`: removes the groups of sandboxes that are gone (e.g. SIGKILLed), subgroups too;
//! what is still in them is killed.

use anyhow::Result;

use super::Cli;

pub fn gc(cli: &Cli) -> Result<i32> {
    let host = sandbox::cgroup::Host::detect(&cli.cgroup_root)?;
    for dir in host.gc(cli.cgroup_parent.as_deref()) {
        println!("removed {}", dir.display());
    }
    Ok(0)
}
