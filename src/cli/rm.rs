//! `sandbox rm NAME…`: removes kept containers (their upper layers go with them).

use anyhow::Result;
use clap::Args;

use super::Cli;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Container names, as given to `run --name`
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Removes each in turn; the first failure stops (those before it are gone).
pub fn rm(cli: &Cli, args: &RmArgs) -> Result<i32> {
    let store = super::show::existing(cli, &format!("container '{}'", args.containers[0]))?;
    for name in &args.containers {
        sandbox::image::container::Container::remove_kept(&store, name)?;
        println!("{name}");
    }
    Ok(0)
}
