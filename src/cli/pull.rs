//! `sandbox pull REF`: fetches an image from a registry into the store.

use anyhow::Result;
use clap::Args;

use super::Cli;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST]
    pub reference: String,
}

pub fn pull(_cli: &Cli, _args: &PullArgs) -> Result<i32> {
    anyhow::bail!("sandbox pull is not written yet")
}
