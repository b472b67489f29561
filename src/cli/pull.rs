//! `sandbox pull REF`: fetches an image from a registry into the store, with a progress bar per
//! layer on a terminal (one line per finished layer otherwise).

use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::Result;
use clap::Args;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sandbox::image::install::{self, Progress};
use sandbox::image::manifest::Platform;
use sandbox::image::registry::{self, Credentials, Options};
use sandbox::image::{Reference, Store};

use super::Cli;

#[derive(Debug, Args)]
#[command(after_help = "\
Registries are spoken to over https, except loopback ones (localhost, 127.0.0.0/8, [::1]) and those
named by --insecure-registry or $SANDBOX_INSECURE_REGISTRIES (comma-separated HOST[:PORT]; both
apply), which use plain http. Credentials: --creds, else the registry's entry in $SANDBOX_AUTH_FILE,
or else in $XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json (podman/docker login).")]
pub struct PullArgs {
    /// The image: [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST]
    pub reference: String,
    /// The platform to pick from a multi-platform image (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Credentials for the registry (instead of the auth files)
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// Speak plain http to this registry; repeatable
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// No progress output; only the final line
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn pull(cli: &Cli, args: &PullArgs) -> Result<i32> {
    let r = Reference::parse(&args.reference)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let mut insecure = args.insecure_registry.clone();
    insecure.extend(Options::insecure_from_env());
    for i in &insecure {
        registry::check_insecure(i)?;
    }
    let creds = args.creds.as_deref().map(Credentials::parse).transpose()?;
    let opts = Options { insecure, creds };
    let store = Store::open(&cli.root)?;
    let img = if args.quiet {
        registry::pull(&store, &r, &opts, &platform, &install::Quiet)?
    } else {
        let bars = Bars::new(std::io::stderr().is_terminal());
        registry::pull(&store, &r, &opts, &platform, &bars)?
    };
    println!(
        "pulled {} (id {}, {} layer{}, {})",
        img.name,
        img.short_id(),
        img.manifest.layers().len(),
        if img.manifest.layers().len() == 1 { "" } else { "s" },
        HumanBytes(img.size())
    );
    Ok(0)
}

/// One bar per layer under a [`MultiProgress`] on a terminal; plain lines otherwise. Pulls and
/// imports show the same.
pub(super) struct Bars {
    multi: Option<MultiProgress>,
    /// Per blob: its bar (terminal) or its short digest and bytes so far (plain).
    blobs: Mutex<Vec<Blob>>,
}

struct Blob {
    bar: Option<ProgressBar>,
    name: String,
    done: u64,
}

impl Bars {
    pub(super) fn new(terminal: bool) -> Bars {
        let multi = terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Bars { multi, blobs: Mutex::new(vec![]) }
    }
}

impl Progress for Bars {
    fn start(&self, what: &str, digest: &str, total: u64) -> usize {
        let short: String = digest.trim_start_matches("sha256:").chars().take(12).collect();
        let name = format!("{what} {short}");
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(total));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(name.clone());
            b
        });
        let mut v = self.blobs.lock().unwrap();
        v.push(Blob { bar, name, done: 0 });
        v.len() - 1
    }

    fn advance(&self, id: usize, bytes: u64) {
        let mut v = self.blobs.lock().unwrap();
        let b = &mut v[id];
        b.done += bytes;
        if let Some(bar) = &b.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&self, id: usize, how: &str) {
        let v = self.blobs.lock().unwrap();
        let b = &v[id];
        match &b.bar {
            Some(bar) => {
                bar.set_style(ProgressStyle::with_template("{prefix} {msg}").expect("a valid template"));
                let msg = if how == "done" { format!("{how} ({})", HumanBytes(b.done)) } else { how.to_string() };
                bar.finish_with_message(msg);
            }
            None if how == "done" => eprintln!("{}: {how} ({})", b.name, HumanBytes(b.done)),
            None => eprintln!("{}: {how}", b.name),
        }
    }
}
