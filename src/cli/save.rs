//! `sandbox save IMAGE... -o FILE|-` (docker-archive) and `sandbox load [-i FILE|-]`.

use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use sandbox::image::Store;

use super::Cli;

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images: names or id prefixes
    #[arg(required = true)]
    pub images: Vec<String>,
    /// The tar file to write (replaced only once complete), or - for stdout
    #[arg(long, short = 'o')]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The archive (docker-archive, OCI layout tar, compressed or not), or - for stdin (default)
    #[arg(long, short = 'i', default_value = "-")]
    pub input: PathBuf,
    /// No progress output
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// A file removed on drop unless kept.
struct Partial(PathBuf, bool);

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

pub fn save(cli: &Cli, args: &SaveArgs) -> Result<i32> {
    // Read-only on the store: a mistyped --root is not created.
    let store = super::show::existing(cli, &format!("image '{}'", args.images[0]))?;
    let images = args.images.iter().map(|i| store.find(i)).collect::<Result<Vec<_>, sandbox::Error>>()?;
    if args.output.as_os_str() == "-" {
        if std::io::stdout().is_terminal() {
            return Err(sandbox::Error::invalid(
                "--output",
                "-",
                "a file, or - with stdout redirected (not a terminal)",
            )
            .into());
        }
        let mut out = std::io::stdout().lock();
        sandbox::image::save::write_archive(&store, &images, &mut out)?;
    } else {
        write_file(&store, &images, &args.output)?;
    }
    for img in &images {
        eprintln!("saved {} (id {})", img.name, img.short_id());
    }
    Ok(0)
}

fn write_file(store: &Store, images: &[sandbox::image::Image], out: &Path) -> Result<()> {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    let tmp = Partial(out.with_file_name(name), false);
    // Removed by the interrupt watcher if a signal stops us where no copy loop polls.
    let _cleanup = sandbox::interrupt::remove_on_interrupt(&tmp.0);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp.0)
        .map_err(|e| sandbox::Error::io("cannot create", &tmp.0, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    sandbox::image::save::write_archive(store, images, &mut w)?;
    w.flush().map_err(|e| sandbox::Error::io("cannot write", &tmp.0, e))?;
    let f = w.into_inner().map_err(|e| sandbox::Error::io("cannot write", &tmp.0, e.into_error()))?;
    f.sync_all().map_err(|e| sandbox::Error::io("cannot write", &tmp.0, e))?;
    sandbox::interrupt::commit(|| std::fs::rename(&tmp.0, out))?
        .map_err(|e| sandbox::Error::io("cannot move into place", out, e))?;
    let mut tmp = tmp;
    tmp.1 = true;
    Ok(())
}

pub fn load(cli: &Cli, args: &LoadArgs) -> Result<i32> {
    let quiet = sandbox::image::install::Quiet;
    let bars = super::pull::Bars::new(std::io::stderr().is_terminal());
    let progress: &dyn sandbox::image::install::Progress = if args.quiet { &quiet } else { &bars };
    // `-` (stdin) is spooled into the store's staging by the import code itself. As for import, a
    // store this load created goes again if the load fails.
    let opts = sandbox::image::archive::Options { name: None, tag: None };
    let imported = Store::create_with(&cli.root, |store| {
        sandbox::image::archive::import_with(store, &args.input, &opts, progress)
    })?;
    for img in imported {
        println!("Loaded image: {} (id {})", img.name, img.short_id());
    }
    Ok(0)
}
