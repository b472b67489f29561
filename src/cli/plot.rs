//! `sandbox plot SAMPLES -o FILE.svg`: draws a run recorded with `--samples` (JSON Lines or CSV).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A samples file written by `sandbox --samples FILE run …`
    pub samples: PathBuf,
    /// The SVG to write
    #[arg(long, short = 'o', value_name = "FILE.svg")]
    pub output: PathBuf,
}

pub fn plot(args: &PlotArgs) -> Result<i32> {
    super::samples::check_svg("--output", &args.output)?;
    let text = std::fs::read_to_string(&args.samples)
        .map_err(|e| sandbox::Error::io("cannot read", args.samples.clone(), e))?;
    let rec = sandbox::samples::parse(&text)
        .map_err(|why| sandbox::Error::invalid("SAMPLES", &args.samples.display().to_string(), &why))?;
    let svg = sandbox::plot::svg(&rec).map_err(|e| anyhow::anyhow!("cannot draw the plot: {e}"))?;
    std::fs::write(&args.output, svg).with_context(|| format!("cannot write {}", args.output.display()))?;
    Ok(0)
}
