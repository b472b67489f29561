//! `sandbox gc`: removes the groups of sandboxes that are gone (e.g. SIGKILLed), subgroups too;
//! what is still in them is killed. Containers of the state root whose supervisor is gone are
//! marked stopped ("supervisor lost"), what is left in their groups killed, the groups removed.

use anyhow::Result;

use super::Cli;

pub fn gc(cli: &Cli) -> Result<i32> {
    let host = sandbox::cgroup::Host::detect(&cli.cgroup_root)?;
    for dir in host.gc(cli.cgroup_parent.as_deref()) {
        println!("removed {}", dir.display());
    }
    let root = sandbox::container::Root::open(&cli.state_root());
    for id in root.ids() {
        if let Ok(mut c) = sandbox::container::Container::load(root.dir(), &id) {
            if c.check() {
                println!("container {} ({}): supervisor lost, stopped", c.state.short_id(), c.name());
            }
        }
    }
    root.remove_leftovers();
    Ok(0)
}
