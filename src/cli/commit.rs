//! `sandbox commit CONTAINER REF`: a kept container's upper directory becomes a new layer on top
//! of its image, and a new image.

use anyhow::Result;
use clap::Args;
use sandbox::image::change;

use super::Cli;

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The container, as named with `run --image IMAGE --name CONTAINER`
    pub container: String,
    /// The new image's name: NAME[:TAG] (an existing name moves to the new image)
    pub reference: String,
    /// The commit message: the new layer's history comment and the image's Comment
    #[arg(long, short = 'm')]
    pub message: Option<String>,
    /// A Dockerfile instruction applied to the new image's config (repeatable): CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR, e.g. 'ENV A=1', 'CMD ["sh"]'
    #[arg(long, short = 'c', value_name = "INSTRUCTION")]
    pub change: Vec<String>,
}

pub fn commit(cli: &Cli, args: &CommitArgs) -> Result<i32> {
    // Every --change is parsed before the store is opened: a bad one leaves everything as it was.
    let changes = args.change.iter().map(|c| change::parse(c)).collect::<Result<Vec<_>, _>>()?;
    let store = super::show::existing(cli, &format!("container '{}'", args.container))?;
    let img =
        sandbox::image::commit::commit(&store, &args.container, &args.reference, args.message.as_deref(), &changes)?;
    println!("{} {}", img.name, img.short_id());
    Ok(0)
}
