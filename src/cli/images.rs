//! `sandbox images`, `sandbox rmi` and the pruning behind `sandbox image prune`.

use anyhow::Result;
use clap::Args;

use super::Cli;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Image names or ids
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn images(_cli: &Cli) -> Result<i32> {
    anyhow::bail!("sandbox images is not written yet")
}

pub fn rmi(_cli: &Cli, _args: &RmiArgs) -> Result<i32> {
    anyhow::bail!("sandbox rmi is not written yet")
}

pub fn prune(_cli: &Cli) -> Result<i32> {
    anyhow::bail!("sandbox image prune is not written yet")
}
