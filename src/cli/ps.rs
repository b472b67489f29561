//! `sandbox ps`: the containers of the state root, one line each (running ones; -a: all).

use anyhow::Result;
use clap::Args;
use sandbox::container::ps::Row;
use sandbox::container::{Root, Status};

use super::{Cli, Format};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show stopped containers too
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Only the ids (12 digits), one a line
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// table or json (an array of objects)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn ps(cli: &Cli, args: &PsArgs) -> Result<i32> {
    let root = Root::open(&cli.state_root());
    let list: Vec<_> = root.list().into_iter().filter(|c| args.all || c.state.status != Status::Stopped).collect();
    let mut out = String::new();
    if args.quiet {
        for c in &list {
            out.push_str(c.state.short_id());
            out.push('\n');
        }
        return super::show::print(&out).map(|()| 0);
    }
    let rows: Vec<Row> = list.iter().map(Row::of).collect();
    if args.format == Format::Json {
        return super::show::print(&(serde_json::to_string_pretty(&rows)? + "\n")).map(|()| 0);
    }
    out.push_str(&table(&rows));
    super::show::print(&out).map(|()| 0)
}

/// The table: ID NAME IMAGE/COMMAND STATUS CPU% MEM/LIMIT PIDS, columns as wide as their values.
pub fn table(rows: &[Row]) -> String {
    let mut lines = vec![["ID", "NAME", "IMAGE/COMMAND", "STATUS", "CPU%", "MEM/LIMIT", "PIDS"].map(String::from)];
    for r in rows {
        let what = match &r.image {
            Some(i) => format!("{i} {}", r.command),
            None => r.command.clone(),
        };
        let mut what: String = what.chars().take(30).collect();
        if r.command.chars().count() > 30 {
            what.push('…');
        }
        let size = |b: Option<u64>| b.map_or("-".to_string(), |b| bytesize::ByteSize(b).to_string_as(true));
        let mem = match (r.memory_bytes, r.memory_limit_bytes) {
            (None, _) => "-".to_string(),
            (m, Some(l)) => format!("{} / {}", size(m), size(Some(l))),
            (m, None) => size(m),
        };
        lines.push([
            r.id[..12].to_string(),
            r.name.clone(),
            what,
            r.status_text.clone(),
            r.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%")),
            mem,
            r.pids.map_or("-".into(), |p| p.to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..7).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
