//! `sandbox tag SOURCE TARGET`: another name for an image already in the store, as `docker tag`.

use anyhow::Result;
use clap::Args;
use sandbox::image::Reference;

use super::{show, Cli};

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: a name or an id prefix
    pub source: String,
    /// The new name: NAME[:TAG] (a name already in use moves to this image)
    pub target: String,
}

pub fn tag(cli: &Cli, args: &TagArgs) -> Result<i32> {
    // The target is checked before the store is looked at: a bad one changes nothing.
    let r = Reference::parse(&args.target)?;
    if r.digest.is_some() {
        return Err(sandbox::Error::invalid(
            "target image reference",
            &args.target,
            "a name with an optional tag, without @sha256: (a digest names content, not a tag)",
        )
        .into());
    }
    let (store, img) = show::find(cli, &args.source)?;
    // Store::tag checks the content complete and writes the name under one hold of the locks.
    store.tag(&r.to_string(), &img.manifest_digest)?;
    Ok(0)
}
