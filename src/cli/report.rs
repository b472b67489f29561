//! `sandbox report NAME`: a stopped container's final report, as a foreground run prints it
//! (`--report json` for the JSON).

use anyhow::Result;
use clap::Args;
use sandbox::container::Root;

use super::{Cli, ReportMode};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The container: name, id or unique id prefix
    pub container: String,
}

pub fn report(cli: &Cli, args: &ReportArgs) -> Result<i32> {
    let root = Root::open(&cli.state_root());
    let c = root.find(&args.container)?;
    let file = match cli.report {
        ReportMode::Json => c.report_path(),
        _ => c.dir.join("report.txt"),
    };
    let text = std::fs::read_to_string(&file).map_err(|_| {
        let why = match c.state.reason.as_deref() {
            _ if c.state.is_live() => format!("it is {}: the report is written when it stops", c.state.status),
            Some(r) => format!("it ended without one ({r})"),
            None => "it has none".to_string(),
        };
        sandbox::Error::container(format!("no report for container {}: {why}", c.name()))
    })?;
    super::show::print(&text)?;
    Ok(0)
}
