//! `sandbox wait NAME…`: blocks until each container stops, printing its exit code.

use anyhow::Result;
use clap::Args;
use sandbox::container::{control, Root};

use super::Cli;

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers: names, ids or unique id prefixes
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn wait(cli: &Cli, args: &WaitArgs) -> Result<i32> {
    let root = Root::open(&cli.state_root());
    let mut found = args.containers.iter().map(|n| root.find(n)).collect::<Result<Vec<_>, _>>()?;
    for c in found.iter_mut() {
        control::wait_stopped(c, None);
        // A container whose supervisor was lost has no exit code: 255, as docker's for one it
        // could not wait for.
        println!("{}", c.state.exit_code.unwrap_or(255));
    }
    Ok(0)
}
