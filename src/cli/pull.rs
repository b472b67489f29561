//! `sandbox pull REF`: fetches an image from a registry into the store, with a progress bar per
//! layer on a terminal (one line per finished layer otherwise).

use std::io::IsTerminal;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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
or else in $XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json (podman/docker login).
A registry gets 10 s to accept the connection and 30 s for each read (--registry-timeout or
$SANDBOX_REGISTRY_TIMEOUT, CONNECT[,READ]); a dropped connection, 429 or 5xx is tried again up to 4
times (0.5 s, 1 s, 2 s apart, or as Retry-After asks), and a blob resumes where it stopped (Range).
Without a terminal, each layer prints a line at least every 5 s while it downloads.")]
pub struct PullArgs {
    /// The image: [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST]
    pub reference: String,
    /// The platform to pick from a multi-platform image (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// No progress output; only the final line
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The registry flags pull and push share.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Credentials for the registry (instead of the auth files)
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// Speak plain http to this registry; repeatable
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Connect and read timeouts for the registry, e.g. 10,30 or 5s,2m [default: 10,30]
    #[arg(long = "registry-timeout", value_name = "CONNECT[,READ]")]
    pub registry_timeout: Option<String>,
}

impl RegistryArgs {
    /// The options for a [`registry::Client`] (with $SANDBOX_INSECURE_REGISTRIES and
    /// $SANDBOX_REGISTRY_TIMEOUT), checked before the store is touched.
    pub fn options(&self) -> Result<Options> {
        let mut insecure = self.insecure_registry.clone();
        insecure.extend(Options::insecure_from_env());
        for i in &insecure {
            registry::check_insecure(i)?;
        }
        let creds = self.creds.as_deref().map(Credentials::parse).transpose()?;
        let timeouts = match &self.registry_timeout {
            Some(t) => registry::Timeouts::parse(t, "--registry-timeout")?,
            None => registry::Timeouts::from_env()?.unwrap_or_default(),
        };
        Ok(Options { insecure, creds, timeouts })
    }
}

pub fn pull(cli: &Cli, args: &PullArgs) -> Result<i32> {
    let r = Reference::parse(&args.reference)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let opts = args.registry.options()?;
    let img = Store::create_with(&cli.root, |store| {
        if args.quiet {
            registry::pull(store, &r, &opts, &platform, &install::Quiet)
        } else {
            let bars = Bars::new(std::io::stderr().is_terminal());
            registry::pull(store, &r, &opts, &platform, &bars)
        }
    })?;
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

/// One bar per layer under a [`MultiProgress`] on a terminal; plain lines otherwise (a line per
/// layer at least every [`INTERVAL`] while it downloads, with bytes, total and rate, and one when
/// it ends). Pulls and imports show the same.
pub(super) struct Bars {
    multi: Option<MultiProgress>,
    /// Per blob: its bar (terminal) or its short digest and bytes so far (plain).
    blobs: Arc<Mutex<Vec<Blob>>>,
    /// Plain: the thread printing the lines between, stopped (by dropping the sender) on drop.
    ticker: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

/// How often a layer that is still downloading prints a line without a terminal.
/// `SANDBOX_PROGRESS_INTERVAL_MS` (not documented: for tests) overrides it.
const INTERVAL: Duration = Duration::from_secs(5);

struct Blob {
    bar: Option<ProgressBar>,
    name: String,
    total: u64,
    done: u64,
    /// Plain: still downloading; when its last line was printed and how far it was then.
    active: bool,
    last_line: Instant,
    done_at_last_line: u64,
}

impl Bars {
    pub(super) fn new(terminal: bool) -> Bars {
        let multi = terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let blobs = Arc::new(Mutex::new(vec![]));
        let ticker = (!terminal).then(|| {
            let interval = std::env::var("SANDBOX_PROGRESS_INTERVAL_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(INTERVAL, Duration::from_millis);
            let (tx, rx) = mpsc::channel::<()>();
            let blobs = blobs.clone();
            let t = std::thread::spawn(move || tick(&blobs, &rx, interval));
            (tx, t)
        });
        Bars { multi, blobs, ticker }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some((tx, t)) = self.ticker.take() {
            drop(tx);
            let _ = t.join();
        }
    }
}

/// Until `stop` disconnects: every layer still downloading whose last line is `interval` old
/// gets a line (a stalled one too: its rate then says 0 B/s).
fn tick(blobs: &Mutex<Vec<Blob>>, stop: &mpsc::Receiver<()>, interval: Duration) {
    let step = (interval / 4).clamp(Duration::from_millis(20), Duration::from_millis(500));
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(step) {
        let mut v = blobs.lock().unwrap();
        for b in v.iter_mut().filter(|b| b.active && b.last_line.elapsed() >= interval) {
            let secs = b.last_line.elapsed().as_secs_f64();
            let rate = ((b.done - b.done_at_last_line) as f64 / secs) as u64;
            let total = if b.total > 0 {
                format!(" / {} ({}%)", HumanBytes(b.total), b.done * 100 / b.total)
            } else {
                String::new()
            };
            eprintln!("{}: {}{total}, {}/s", b.name, HumanBytes(b.done), HumanBytes(rate));
            b.last_line = Instant::now();
            b.done_at_last_line = b.done;
        }
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
        let active = bar.is_none();
        v.push(Blob { bar, name, total, done: 0, active, last_line: Instant::now(), done_at_last_line: 0 });
        v.len() - 1
    }

    fn advance(&self, id: usize, bytes: u64) {
        let mut v = self.blobs.lock().unwrap();
        let b = &mut v[id];
        b.done += bytes;
        // Downloaded: what follows (unpacking) is not a download that stalls.
        b.active &= b.total == 0 || b.done < b.total;
        if let Some(bar) = &b.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&self, id: usize, how: &str) {
        let mut v = self.blobs.lock().unwrap();
        let b = &mut v[id];
        b.active = false;
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
