//! `sandbox commit CONTAINER REF`: a kept container's upper directory becomes a new layer on top
//! of its image, and a new image.

use anyhow::Result;
use clap::Args;

use super::Cli;

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The container, as named with `run --image IMAGE --name CONTAINER`
    pub container: String,
    /// The new image's name: NAME[:TAG] (an existing name moves to the new image)
    pub reference: String,
    /// A comment for the new layer's history entry
    #[arg(long, short = 'm')]
    pub message: Option<String>,
}

pub fn commit(cli: &Cli, args: &CommitArgs) -> Result<i32> {
    let store = sandbox::image::Store::open(&cli.root)?;
    let img = sandbox::image::commit::commit(&store, &args.container, &args.reference, args.message.as_deref())?;
    println!("{} {}", img.name, img.short_id());
    Ok(0)
}
