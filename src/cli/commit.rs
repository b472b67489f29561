//! `sandbox commit CONTAINER REF`: a kept container's upper directory becomes a new layer on top
//! of its image, and a new image.

use anyhow::Result;
use clap::Args;

use super::Cli;

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The container, as named with `run --name`
    pub container: String,
    /// The new image's name
    pub reference: String,
}

pub fn commit(_cli: &Cli, _args: &CommitArgs) -> Result<i32> {
    anyhow::bail!("sandbox commit is not written yet")
}
