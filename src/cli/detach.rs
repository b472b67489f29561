//! `run -d`: the front forks the container's supervisor and returns once the command was
//! executed (printing the id), or fails as a foreground run would (125/126/127, nothing left).

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::Result;
use sandbox::container::detach::{self, Front};
use sandbox::container::logs::LogWriter;
use sandbox::container::record::Recorder;
use sandbox::container::{Container, LogDriver};
use sandbox::image::container::Container as ImageContainer;
use sandbox::run::Engine;

use super::samples::Sampling;
use super::Cli;

/// Starts the detached run. Never returns in the supervisor (it exits when the container
/// stops); in the front, exits at once: what the front holds (the supervisor lock, the image
/// container's lock) is shared with the supervisor and must not be released by a destructor.
pub fn start(
    cli: &Cli,
    cfg: sandbox::Config,
    mut container: Container,
    image: Option<ImageContainer>,
    sampling: Option<Sampling>,
    report_dir: Option<OwnedFd>,
    hide: Vec<PathBuf>,
) -> Result<i32> {
    let id = container.id().to_string();
    let front = detach::spawn(|notify| {
        let log = match container.state.log_driver {
            LogDriver::JsonFile => LogWriter::create(&container.dir, container.state.log_max_size).ok(),
            LogDriver::None => None,
        };
        let attach = if container.state.tty { sandbox::container::attach::listen(&container.dir).ok() } else { None };
        // `stop` and `ps` find this process as the supervisor from the created record on.
        let mut recorder = Recorder::new(&mut container, true, Some(notify)).supervised_here();
        let engine = Engine {
            observer: Some(&mut recorder),
            detached: Some(sandbox::run::Detached { log, attach }),
            hide,
            ..Engine::default()
        };
        let result = match &sampling {
            Some(s) => super::samples::run(&cfg, s, engine),
            None => sandbox::run::run_with(&cfg, engine).map_err(Into::into),
        };
        let code = match &result {
            Ok(r) => super::run::print_report(cli, r, report_dir.as_ref()),
            Err(e) => e.downcast_ref::<sandbox::Error>().map_or(125, sandbox::Error::exit_code),
        };
        let summary = result.as_ref().map_err(|e| (code, sandbox::error::chain(e.chain())));
        recorder.finish(&summary);
        drop(image);
        code
    })?;
    match front {
        Front::Started => {
            println!("{id}");
            std::process::exit(0)
        }
        Front::Failed(code, msg) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "sandbox: {msg}");
            std::process::exit(code)
        }
    }
}
