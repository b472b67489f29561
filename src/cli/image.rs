//! `sandbox images`, `sandbox rmi`, `sandbox image import|export|prune`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Cli;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Image names or ids
    #[arg(required = true)]
    pub images: Vec<String>,
}

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

pub fn images(_cli: &Cli) -> Result<i32> {
    anyhow::bail!("sandbox images is not written yet")
}

pub fn rmi(_cli: &Cli, _args: &RmiArgs) -> Result<i32> {
    anyhow::bail!("sandbox rmi is not written yet")
}

pub fn image(_cli: &Cli, _c: &ImageCommand) -> Result<i32> {
    anyhow::bail!("sandbox image is not written yet")
}
