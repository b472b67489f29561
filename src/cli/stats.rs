//! `sandbox stats [NAME…]`: what running containers use, from their cgroup files: CPU % over the
//! refresh interval (100 % = one CPU), memory / limit and %, tasks / limit, block I/O, and PSI
//! `some avg10` of cpu, memory and io (v2). Refreshes in place on a terminal, prints one block of
//! lines per refresh otherwise; `--no-stream` prints one; `--format json` one JSON object per
//! container per refresh.
//!
//! Every group is read, then one sleep, then every group again: the interval is paid once
//! whatever the number of containers (`stats --no-stream` with 100 of them: one 100 ms window).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use sandbox::cgroup::live::{self, Live, Reading};
use sandbox::cgroup::Cgroup;
use sandbox::container::{Root, Status};
use serde::Serialize;

use super::{Cli, Format};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Containers: names, ids or unique id prefixes (default: every running or paused one)
    #[arg(value_name = "NAME")]
    pub containers: Vec<String>,
    /// Print one reading and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Output: a table, or one JSON object per container (JSON Lines)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Time between refreshes, over which CPU % is measured (default 1s; with --no-stream 100ms)
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
}

/// One container being watched.
struct Target {
    id: String,
    name: String,
    status: Status,
    group: Option<Box<dyn Cgroup>>,
}

/// One line of `--format json`.
#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    name: &'a str,
    status: Status,
    #[serde(flatten)]
    live: Option<&'a Live>,
}

pub fn stats(cli: &Cli, args: &StatsArgs) -> Result<i32> {
    let interval = match &args.interval {
        Some(v) => sandbox::config::parse_timeout(v)
            .map_err(|_| sandbox::Error::invalid("--interval", v, "a positive duration such as 1s or 500ms"))?,
        None if args.no_stream => Duration::from_millis(100),
        None => Duration::from_secs(1),
    };
    let root = Root::open(&cli.state_root());
    // Named containers must exist now (125 otherwise); later refreshes drop those that end.
    let named: Vec<String> =
        args.containers.iter().map(|n| root.find(n).map(|c| c.id().to_string())).collect::<Result<_, _>>()?;
    let host_memory = live::host_memory();
    let terminal = !args.no_stream && std::io::stdout().is_terminal();
    let mut prev: HashMap<String, Reading> = HashMap::new();
    let mut first = true;
    loop {
        let targets = targets(&root, &named);
        if !first && targets.is_empty() && !named.is_empty() {
            return Ok(0);
        }
        if first {
            for t in &targets {
                if let Some(g) = &t.group {
                    prev.insert(t.id.clone(), live::read(g.as_ref()));
                }
            }
            std::thread::sleep(interval);
            first = false;
        }
        let mut rows: Vec<(&Target, Option<Live>)> = Vec::new();
        let mut next = HashMap::new();
        for t in &targets {
            let reading = t.group.as_ref().map(|g| live::read(g.as_ref()));
            let figures = reading.as_ref().map(|b| live::between(prev.get(&t.id).unwrap_or(b), b, host_memory));
            if let Some(r) = reading {
                next.insert(t.id.clone(), r);
            }
            rows.push((t, figures));
        }
        prev = next;
        print(&rows, args.format, terminal)?;
        if args.no_stream {
            return Ok(0);
        }
        std::thread::sleep(interval);
    }
}

/// The containers to show: those named (while they live), else every live one.
fn targets(root: &Root, named: &[String]) -> Vec<Target> {
    let all: Vec<_> =
        if named.is_empty() { root.list() } else { named.iter().filter_map(|id| root.find(id).ok()).collect() };
    all.into_iter()
        .filter(|c| matches!(c.state.status, Status::Running | Status::Paused))
        .map(|c| Target {
            id: c.id().to_string(),
            name: c.name().to_string(),
            status: c.state.status,
            group: super::group::open(&c).ok(),
        })
        .collect()
}

fn print(rows: &[(&Target, Option<Live>)], format: Format, terminal: bool) -> std::io::Result<()> {
    let mut out = String::new();
    if format == Format::Json {
        for (t, l) in rows {
            let line = Line { id: &t.id, name: &t.name, status: t.status, live: l.as_ref() };
            out.push_str(&serde_json::to_string(&line).unwrap_or_default());
            out.push('\n');
        }
    } else {
        if terminal {
            // Home and clear: the table is redrawn in place.
            out.push_str("\x1b[H\x1b[2J");
        }
        out.push_str(&format!(
            "{:<12}  {:<20}  {:>7}  {:>21}  {:>6}  {:>9}  {:>19}  {}\n",
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS", "BLOCK I/O", "PSI CPU/MEM/IO"
        ));
        for (t, l) in rows {
            out.push_str(&row(t, l.as_ref()));
            out.push('\n');
        }
    }
    let mut so = std::io::stdout().lock();
    so.write_all(out.as_bytes())?;
    so.flush()
}

fn row(t: &Target, l: Option<&Live>) -> String {
    let b = |v: Option<u64>| v.map(|v| bytesize::ByteSize::b(v).to_string_as(true)).unwrap_or_else(|| "-".into());
    let pct = |v: Option<f64>| v.map(|v| format!("{v:.2}%")).unwrap_or_else(|| "-".into());
    let id = &t.id[..t.id.len().min(12)];
    let Some(l) = l else {
        return format!("{id:<12}  {:<20}  (no cgroup)", t.name);
    };
    let cpu = if t.status == Status::Paused { "paused".to_string() } else { pct(l.cpu_percent) };
    let pids = match (l.pids, l.pids_limit) {
        (Some(p), Some(m)) => format!("{p} / {m}"),
        (Some(p), None) => p.to_string(),
        _ => "-".into(),
    };
    let p = &l.pressure_avg10;
    let psi = match (p.cpu, p.memory, p.io) {
        (None, None, None) => "-".into(),
        (c, m, i) => {
            let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
            format!("{}/{}/{}", f(c), f(m), f(i))
        }
    };
    format!(
        "{id:<12}  {:<20}  {:>7}  {:>21}  {:>6}  {:>9}  {:>19}  {psi}",
        t.name,
        cpu,
        format!("{} / {}", b(l.memory_bytes), b(l.memory_limit_bytes)),
        pct(l.memory_percent),
        pids,
        format!("{} / {}", b(l.io_read_bytes), b(l.io_write_bytes)),
    )
}
