//! `sandbox wait NAME…`: blocks until each container stops, printing its exit code (one line
//! each). A container whose supervisor was lost (SIGKILLed) has none to print: its line is left
//! out, the reason goes to stderr and `wait` exits with 125.

use anyhow::Result;
use clap::Args;
use sandbox::container::{control, Root};

use super::Cli;

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers: names, ids or unique id prefixes
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn wait(cli: &Cli, args: &WaitArgs) -> Result<i32> {
    let root = Root::open(&cli.state_root());
    let mut found = args.containers.iter().map(|n| root.find(n)).collect::<Result<Vec<_>, _>>()?;
    let mut status = 0;
    for (c, name) in found.iter_mut().zip(&args.containers) {
        control::wait_stopped(c, None);
        match c.state.exit_code {
            Some(code) => println!("{code}"),
            // A lost supervisor took the command's exit status with it (its parent: nobody else
            // can reap it). Printing a made-up number (docker's 255, or 137 for "killed") would
            // be a guess a script cannot tell from a real exit code: nothing on stdout, the
            // reason on stderr, and `wait` exits with 125.
            None => {
                eprintln!(
                    "sandbox: wait: {name}: exit status unknown: {} (its command was killed with it, SIGKILL, unless \
                     it had ended just before)",
                    c.state.reason.as_deref().unwrap_or(sandbox::container::state::SUPERVISOR_LOST)
                );
                status = 125;
            }
        }
    }
    Ok(status)
}
