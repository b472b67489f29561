//! `sandbox stop [-t SECS] NAME…` and `sandbox kill [-s SIG] NAME…`.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use sandbox::container::{control, Root};

use super::Cli;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds between SIGTERM and SIGKILL (default: the container's --stop-timeout, 10s)
    #[arg(long, short = 't', value_name = "SECS")]
    pub time: Option<String>,
    /// Containers: names, ids or unique id prefixes
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal: a name (TERM, SIGUSR1) or a number (default KILL)
    #[arg(long, short = 's', value_name = "SIG", default_value = "KILL")]
    pub signal: String,
    /// Containers: names, ids or unique id prefixes
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Stops each (all at once: the graces run together), printing each name as given once stopped.
/// Every name is found first: an unknown one stops nothing.
pub fn stop(cli: &Cli, args: &StopArgs) -> Result<i32> {
    let grace = args
        .time
        .as_deref()
        .map(|t| {
            t.trim().parse::<u64>().map(Duration::from_secs).map_err(|_| {
                sandbox::Error::invalid("--time", t, "a whole number of seconds, e.g. 10 (0: SIGKILL at once)")
            })
        })
        .transpose()?;
    let root = Root::open(&cli.state_root());
    let mut found = args.containers.iter().map(|n| root.find(n)).collect::<Result<Vec<_>, _>>()?;
    // SIGTERM to every supervisor first, then wait for each: 100 containers stop within one grace.
    for c in found.iter_mut() {
        let g = grace.unwrap_or(c.state.config.stop_timeout);
        control::request_stop(c, g)?;
    }
    for (c, name) in found.iter_mut().zip(&args.containers) {
        let g = grace.unwrap_or(c.state.config.stop_timeout);
        control::await_stop(c, g);
        println!("{name}");
    }
    Ok(0)
}

pub fn kill(cli: &Cli, args: &KillArgs) -> Result<i32> {
    let sig = parse_signal(&args.signal)?;
    let root = Root::open(&cli.state_root());
    let found = args.containers.iter().map(|n| root.find(n)).collect::<Result<Vec<_>, _>>()?;
    for (c, name) in found.iter().zip(&args.containers) {
        control::kill(c, sig)?;
        println!("{name}");
    }
    Ok(0)
}

/// A signal by name (KILL, SIGKILL, usr1) or number 1-64.
pub fn parse_signal(s: &str) -> Result<i32, sandbox::Error> {
    let bad = || sandbox::Error::invalid("--signal", s, "a signal name such as TERM, SIGUSR1, KILL or a number 1-64");
    if let Ok(n) = s.trim().parse::<i32>() {
        return if (1..=64).contains(&n) { Ok(n) } else { Err(bad()) };
    }
    let up = s.trim().to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<nix::sys::signal::Signal>().map(|s| s as i32).map_err(|_| bad())
}
