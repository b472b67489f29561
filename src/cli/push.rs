//! `sandbox push IMAGE [DEST]`: sends an image of the store to a registry.

use anyhow::Result;
use clap::Args;
use indicatif::HumanBytes;
use sandbox::image::install::{self, Progress};
use sandbox::image::registry::push::{self, PushOptions};
use sandbox::image::Reference;

use super::pull::RegistryArgs;
use super::Cli;

#[derive(Debug, Args)]
#[command(after_help = "\
Blobs the registry has are skipped (HEAD); blobs another image of the store came from on the same
registry are mounted from that repository when the registry allows it; the rest are uploaded in one
request, or in chunks (PATCH) from --chunk-size up. Transport and credentials as for `pull`
(`sandbox login` writes them).")]
pub struct PushArgs {
    /// The image: a name or an id prefix
    pub image: String,
    /// Where to: REGISTRY[:PORT]/NAME[:TAG] (default: the image's own name)
    pub dest: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Upload every blob in chunks (PATCH with Content-Range)
    #[arg(long)]
    pub chunked: bool,
    /// Chunk size for chunked uploads; blobs at least this large are always chunked (default 64M)
    #[arg(long, value_name = "SIZE")]
    pub chunk_size: Option<String>,
    /// No progress output; only the final line
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn push(cli: &Cli, args: &PushArgs) -> Result<i32> {
    let mut popts = PushOptions { chunked: args.chunked, ..Default::default() };
    if let Some(s) = &args.chunk_size {
        popts.chunk_size = sandbox::config::parse_size(s).ok().filter(|n| *n > 0).ok_or_else(|| {
            sandbox::Error::invalid(
                "--chunk-size",
                s,
                "a size in bytes with an optional binary suffix (512k, 16M), > 0",
            )
        })?;
    }
    let dest = args.dest.as_deref().map(Reference::parse).transpose()?;
    let opts = args.registry.options()?;
    // Read-only on the store: a mistyped --root is not created.
    let (store, img) = super::show::find(cli, &args.image)?;
    let dest = match dest {
        Some(d) => d,
        None => Reference::parse(&img.name)?,
    };
    let bars;
    let progress: &dyn Progress = if args.quiet {
        &install::Quiet
    } else {
        bars = super::pull::Bars::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        &bars
    };
    let p = push::push(&store, &img, &dest, &opts, &popts, progress)?;
    println!(
        "pushed {dest} ({}: {} uploaded ({}), {} already present, {} mounted)",
        p.manifest_digest,
        p.uploaded,
        HumanBytes(p.bytes),
        p.present,
        p.mounted
    );
    Ok(0)
}
