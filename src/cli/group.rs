//! What `pause`, `unpause`, `update`, `stats` and `top` share: the container a name stands for in
//! the state root, and its live cgroup.

use sandbox::cgroup::Cgroup;
use sandbox::container::{Container, Root, Status};
use sandbox::Error;

use super::Cli;

/// The container `name` (a name, an id or a unique id prefix): `no such container` and
/// `ambiguous container` are errors (exit 125).
pub fn find(cli: &Cli, name: &str) -> Result<Container, Error> {
    Root::open(&cli.state_root()).find(name)
}

/// The group of `c`, which must be live (running or paused): `what` names the operation for
/// the message about a stopped one.
pub fn live(c: &Container, what: &str) -> Result<Box<dyn Cgroup>, Error> {
    if !matches!(c.state.status, Status::Running | Status::Paused) {
        return Err(Error::container(format!(
            "cannot {what} container {}: it is {}, not running",
            c.name(),
            c.state.status
        )));
    }
    open(c)
}

/// The group of `c` as its state recorded it.
pub fn open(c: &Container) -> Result<Box<dyn Cgroup>, Error> {
    let Some(cg) = &c.state.cgroup else {
        return Err(Error::container(format!(
            "container {} has no cgroup (it runs without one: rootless, no delegated cgroup)",
            c.name()
        )));
    };
    sandbox::cgroup::open(cg.version, &cg.paths)
}
