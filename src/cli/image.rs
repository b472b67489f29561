//! `sandbox image import|export|prune`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::Cli;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a `docker save` tar, an OCI layout (directory or tar) or a rootfs tarball (--name)
    Import {
        /// The archive or directory, or - to read a tar from stdin
        path: PathBuf,
        /// Name the image (required for a rootfs tarball; overrides the archive's own names). For
        /// an OCI layout of several tags, a repository alone: each image keeps its tag
        #[arg(long)]
        name: Option<String>,
        /// Import only the image of an OCI layout with this tag (or whole name)
        #[arg(long)]
        tag: Option<String>,
    },
    /// Write an image as an OCI image layout tar (skopeo, podman, docker load and umoci read it)
    Export {
        /// The image: a name or an id prefix
        image: String,
        /// The tar file to write (replaced only once complete), or - for stdout
        output: PathBuf,
    },
    /// Remove blobs, layers and stale containers that no image or kept container uses
    Prune,
}

pub fn image(cli: &Cli, c: &ImageCommand) -> Result<i32> {
    match c {
        ImageCommand::Import { path, name, tag } => {
            let bars = super::pull::Bars::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
            let opts = sandbox::image::archive::Options { name: name.as_deref(), tag: tag.as_deref() };
            let imported = sandbox::image::Store::create_with(&cli.root, |store| {
                sandbox::image::archive::import_with(store, path, &opts, &bars)
            })?;
            for img in imported {
                println!("imported {} (id {}, {} layer(s))", img.name, img.short_id(), img.manifest.layers().len());
            }
            Ok(0)
        }
        ImageCommand::Export { image, output } => {
            // Read-only: a missing store is not created (nor the output written).
            let (store, img) = super::show::find(cli, image)?;
            if output.as_os_str() == "-" {
                let mut out = std::io::stdout().lock();
                sandbox::image::export::write_layout(&store, &img, &mut out)?;
                eprintln!("exported {} (id {})", img.name, img.short_id());
            } else {
                let img = sandbox::image::export::export(&store, image, output)?;
                println!("exported {} (id {}) to {}", img.name, img.short_id(), output.display());
            }
            Ok(0)
        }
        ImageCommand::Prune => super::images::prune(cli),
    }
}
