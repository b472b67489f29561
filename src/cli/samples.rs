//! `--samples FILE`, `--sample-interval` and `--plot FILE.svg` of `sandbox run`: checked before
//! anything is created, then the samples written line by line as the run's event loop takes them,
//! and the plot drawn once the run has ended.

use std::io::LineWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sandbox::samples::{self, Header, Recording, Sample, Summary, Writer};

use super::Cli;

/// What `run` samples and where it goes.
pub struct Sampling {
    pub interval: Duration,
    pub file: Option<PathBuf>,
    /// `--plot` and its directory, opened before the run (see [`super::run::open_output_dir`]).
    pub plot: Option<(PathBuf, std::os::fd::OwnedFd)>,
}

/// An output path in an existing directory, not a directory itself.
pub fn check_output(flag: &'static str, p: &Path, expected: &str) -> Result<(), sandbox::Error> {
    let dir = super::run::report_dir(p);
    if p.is_dir() || p.file_name().is_none() || !dir.is_dir() {
        return Err(sandbox::Error::invalid(flag, &p.display().to_string(), expected));
    }
    Ok(())
}

/// `--plot` must name an .svg file: plotters' SVG backend is the only one built in.
pub fn check_svg(flag: &'static str, p: &Path) -> Result<(), sandbox::Error> {
    if !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")) {
        let expected = "a file name ending in .svg (only SVG is supported)";
        return Err(sandbox::Error::invalid(flag, &p.display().to_string(), expected));
    }
    check_output(flag, p, "a .svg file path in an existing directory")
}

/// Checks the flags; `None` when the run is not sampled.
pub fn check(cli: &Cli) -> Result<Option<Sampling>, sandbox::Error> {
    let interval = cli.sample_interval.as_deref().map(samples::parse_interval).transpose()?;
    if let Some(p) = &cli.samples {
        check_output("--samples", p, "a file path (FILE.jsonl, or FILE.csv for CSV) in an existing directory")?;
    }
    let plot = match &cli.plot {
        Some(p) => {
            check_svg("--plot", p)?;
            Some((p.clone(), super::run::open_output_dir("--plot", p)?))
        }
        None => None,
    };
    if cli.samples.is_none() && cli.plot.is_none() {
        return Ok(None);
    }
    Ok(Some(Sampling { interval: interval.unwrap_or(samples::DEFAULT_INTERVAL), file: cli.samples.clone(), plot }))
}

/// Runs `cfg` with samples going to the file and kept for the plot.
pub fn run(cfg: &sandbox::Config, s: &Sampling, engine: sandbox::run::Engine) -> Result<sandbox::Report> {
    let header = Header::new(cfg, s.interval);
    let mut writer = match &s.file {
        Some(p) => {
            let f = std::fs::File::create(p).with_context(|| format!("cannot create --samples {}", p.display()))?;
            let w = Writer::new(LineWriter::new(f), samples::is_csv(p), &header);
            Some(w.with_context(|| format!("cannot write --samples {}", p.display()))?)
        }
        None => None,
    };
    let mut kept: Vec<Sample> = Vec::new();
    let mut write_err: Option<std::io::Error> = None;
    let keep = s.plot.is_some();
    let mut take = |x: &Sample| {
        if let (Some(w), None) = (writer.as_mut(), &write_err) {
            write_err = w.sample(x).err();
        }
        if keep {
            kept.push(x.clone());
        }
    };
    let engine = sandbox::run::Engine {
        sampling: Some((s.interval, &mut take)),
        observer: engine.observer.map(|o| o as &mut dyn sandbox::run::Observer),
        detached: engine.detached,
        hide: engine.hide,
        console: engine.console,
        sibling: engine.sibling,
    };
    let report = sandbox::run::run_with(cfg, engine)?;
    // The command's exit status stays sandbox's: a file that could not be written is a warning.
    let summary = Summary::of(&report);
    if let (Some(w), Some(p)) = (writer, &s.file) {
        if let Some(e) = write_err.or_else(|| w.finish(&summary).err()) {
            sandbox::run::warn(&format!("cannot write --samples {}: {e}", p.display()));
        }
    }
    if let Some((p, dir)) = &s.plot {
        let rec = Recording { header, samples: kept, summary: Some(summary) };
        let written = sandbox::plot::svg(&rec)
            .map_err(std::io::Error::other)
            .and_then(|svg| super::run::write_output_file(dir, p, svg.as_bytes()));
        if let Err(e) = written {
            sandbox::run::warn(&format!("cannot write --plot {}: {e}", p.display()));
        }
    }
    Ok(report)
}
