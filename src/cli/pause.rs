//! `sandbox pause NAME…` / `sandbox unpause NAME…`: freeze and thaw every process of a container
//! through the cgroup freezer (v2 cgroup.freeze, v1 the freezer controller), as docker does. The
//! state says `paused` once the kernel reports the group frozen.

use anyhow::Result;
use clap::Args;
use sandbox::container::Status;
use sandbox::Error;

use super::Cli;

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Containers: names, ids or unique id prefixes
    #[arg(required = true, value_name = "NAME")]
    pub containers: Vec<String>,
}

/// Pauses (`on`) or unpauses each container in turn; the first failure stops (those before it
/// stay as they were made), exit 125.
pub fn pause(cli: &Cli, args: &PauseArgs, on: bool) -> Result<i32> {
    for name in &args.containers {
        let mut c = super::group::find(cli, name)?;
        let verb = if on { "pause" } else { "unpause" };
        let group = super::group::live(&c, verb)?;
        // Checked and changed under the state's lock: two `pause` at once cannot both freeze,
        // and the supervisor's own changes (the command ending) are not lost.
        let display = c.name().to_string();
        let done = c.update(|s| {
            let (from, to) = if on { (Status::Running, Status::Paused) } else { (Status::Paused, Status::Running) };
            if s.status != from {
                let why = match (on, s.status) {
                    (true, Status::Paused) => "it is already paused".to_string(),
                    (false, Status::Running) => "it is not paused".to_string(),
                    (_, st) => format!("it is {st}"),
                };
                return Err(Error::container(format!("cannot {verb} container {display}: {why}")));
            }
            group.freeze(on)?;
            s.status = to;
            Ok(())
        })?;
        done?;
        println!("{name}");
    }
    Ok(0)
}
