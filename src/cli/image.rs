//! `sandbox image import|export|prune`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::Cli;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a `docker save` tar, an OCI layout (directory or tar) or a rootfs tarball (--name)
    Import {
        /// The archive or directory
        path: PathBuf,
        /// Name the image (required for a rootfs tarball; overrides the archive's own names)
        #[arg(long)]
        name: Option<String>,
    },
    /// Write an image as an OCI image layout tar (skopeo, podman and umoci read it)
    Export {
        image: String,
        /// The tar file to write
        output: PathBuf,
    },
    /// Remove blobs, layers and stale containers that no image or kept container uses
    Prune,
}

pub fn image(cli: &Cli, c: &ImageCommand) -> Result<i32> {
    match c {
        ImageCommand::Import { path, name } => {
            let store = sandbox::image::Store::open(&cli.root)?;
            for img in sandbox::image::archive::import(&store, path, name.as_deref(), &sandbox::image::install::Quiet)?
            {
                println!("imported {} (id {}, {} layer(s))", img.name, img.short_id(), img.manifest.layers().len());
            }
            Ok(0)
        }
        ImageCommand::Export { .. } => anyhow::bail!("sandbox image export is not written yet"),
        ImageCommand::Prune => super::images::prune(cli),
    }
}
