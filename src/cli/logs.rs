//! `sandbox logs [-f] [--tail N] [-t] [--since WHEN] NAME`: a detached container's output, its
//! stdout to stdout and its stderr to stderr, byte for byte.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::Args;
use sandbox::container::logs::{self, Entry};
use sandbox::container::{LogDriver, Root};

use super::Cli;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines (all: the default)
    #[arg(long, value_name = "N")]
    pub tail: Option<String>,
    /// Prefix each line with its time (RFC 3339, nanoseconds)
    #[arg(long, short = 't')]
    pub timestamps: bool,
    /// Only output since this time: a duration ago (10m, 1h30m) or an RFC 3339 time
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// The container: name, id or unique id prefix
    pub container: String,
}

pub fn logs(cli: &Cli, args: &LogsArgs) -> Result<i32> {
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| sandbox::Error::invalid("--tail", v, "a whole number of lines, e.g. 20, or `all`"))?,
        ),
    };
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let root = Root::open(&cli.state_root());
    let mut c = root.find(&args.container)?;
    if !c.state.detached {
        return Err(sandbox::Error::container(format!(
            "logs are kept only for detached containers (run -d): {} runs in the foreground, its output goes \
             where its `sandbox run` sends it",
            c.name()
        ))
        .into());
    }
    if c.state.log_driver == LogDriver::None {
        return Err(sandbox::Error::container(format!("logs are not kept for {} (--log-driver none)", c.name())).into());
    }
    let keep = |e: &Entry| since.map_or(true, |s| e.time().is_some_and(|t| t >= s));
    let mut first: Vec<Entry> = logs::read_all(&c.dir).into_iter().filter(keep).collect();
    if let Some(n) = tail {
        first.drain(..first.len().saturating_sub(n));
    }
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let mut print = |e: &Entry| {
        let mut bytes = e.bytes();
        if args.timestamps {
            let mut b = format!("{} ", e.t).into_bytes();
            b.append(&mut bytes);
            bytes = b;
        }
        let w: &mut dyn Write = if e.stream == "stderr" { &mut err } else { &mut out };
        let ok = w.write_all(&bytes).and_then(|()| w.flush());
        ok.is_ok()
    };
    for e in &first {
        if !print(e) {
            return Ok(0);
        }
    }
    if !args.follow {
        return Ok(0);
    }
    // Follow: from the end of what was printed, through a rotation (a new file: its inode
    // changed), until the supervisor is gone and the last lines are read.
    let path = c.log_path();
    let inode = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let mut ino = inode(&path);
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    loop {
        let done = !c.supervisor_alive();
        let now = inode(&path);
        if now != ino {
            // Rotated: the rest of the old file is log.jsonl.1 from `offset` on.
            let (rest, _) = logs::read_from(&c.dir.join("log.jsonl.1"), offset);
            for e in rest.iter().filter(|e| keep(e)) {
                if !print(e) {
                    return Ok(0);
                }
            }
            ino = now;
            offset = 0;
        }
        let (new, next) = logs::read_from(&path, offset);
        offset = next;
        for e in new.iter().filter(|e| keep(e)) {
            if !print(e) {
                return Ok(0);
            }
        }
        if done || !c.dir.exists() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
        let _ = c.reload();
    }
}

/// `--since`: `10m` (that long ago) or an RFC 3339 time.
fn parse_since(v: &str) -> Result<SystemTime, sandbox::Error> {
    let bad = || sandbox::Error::invalid("--since", v, "a duration ago such as 10m or 1h30m, or an RFC 3339 time");
    if let Ok(d) = humantime::parse_duration(v.trim()) {
        return SystemTime::now().checked_sub(d).ok_or_else(bad);
    }
    humantime::parse_rfc3339_weak(v.trim()).map_err(|_| bad())
}
