//! `sandbox top NAME`: the processes of a running container: pid as the host sees it and as the
//! container does, user, CPU time and share over its life, resident memory, command line.

use anyhow::Result;
use clap::Args;

use super::Cli;
use super::Format;

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container: a name, an id or a unique id prefix
    #[arg(value_name = "NAME")]
    pub container: String,
    /// Output: a table, or one JSON array
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn top(cli: &Cli, args: &TopArgs) -> Result<i32> {
    let c = super::group::find(cli, &args.container)?;
    let group = super::group::live(&c, "list the processes of")?;
    let procs = sandbox::top::processes(group.as_ref());
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&procs)?);
        return Ok(0);
    }
    println!(
        "{:>8}  {:>10}  {:<10}  {:>9}  {:>5}  {:>10}  COMMAND",
        "PID", "PID INSIDE", "USER", "TIME", "%CPU", "RSS"
    );
    for p in procs {
        let inside = p.pid_inside.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let rss = p.rss_bytes.map(|v| bytesize::ByteSize::b(v).to_string_as(true)).unwrap_or_else(|| "-".into());
        let pct = p.cpu_percent.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        println!(
            "{:>8}  {:>10}  {:<10}  {:>9}  {:>5}  {:>10}  {}",
            p.pid,
            inside,
            p.user,
            cpu_time(p.cpu_s),
            pct,
            rss,
            p.command
        );
    }
    Ok(0)
}

/// CPU time as ps(1) shows it: minutes:seconds.hundredths.
fn cpu_time(secs: f64) -> String {
    format!("{}:{:05.2}", (secs / 60.0) as u64, secs % 60.0)
}
