//! The `sandbox` binary: parses the command line and hands it to the library. Errors are printed
//! with their whole chain; sandbox's own failures exit 125, as docker's and podman's do.

mod cli;

use clap::CommandFactory;

use cli::{Cli, Command};

fn main() {
    // First of all, before anything is parsed or created: the signals `run` forwards are only
    // ever read from its signalfd, so none of them, at any moment of a run (its last
    // milliseconds included), can end sandbox before the report is written and the group
    // removed. Other subcommands get their default actions back below.
    let mut forwarded = sandbox::run::forwarded_signals();
    forwarded.add(nix::sys::signal::Signal::SIGCHLD);
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&forwarded), None);
    // Invoked as `sandbox-runc` (a symlink to this binary): the OCI runtime command line that
    // containerd, podman and Kubernetes call (sandbox::oci::cli).
    if std::env::args_os()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n == "sandbox-runc"))
        .unwrap_or(false)
    {
        std::process::exit(sandbox::oci::cli::main());
    }
    let cli = match Cli::parse_args() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if !matches!(cli.command, Command::Run(_) | Command::Exec(_)) {
        // Commands that stage files keep SIGINT, SIGTERM and SIGHUP blocked for the interrupt
        // watcher, which stops them cleanly (sandbox::interrupt); no thread has started yet, so
        // every one inherits the mask.
        let task = cli.command.interruptible_task();
        let mut unblock = forwarded;
        if task.is_some() {
            for sig in sandbox::interrupt::signals().iter() {
                unblock.remove(sig);
            }
        }
        let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_UNBLOCK, Some(&unblock), None);
        if let Some(task) = task {
            sandbox::interrupt::watch(&task);
        }
    }
    let result = match &cli.command {
        Command::Run(args) => cli::run::run(&cli, args),
        Command::Exec(args) => cli::exec::exec(&cli, args),
        Command::Gc => cli::gc::gc(&cli),
        Command::Ps(args) => cli::ps::ps(&cli, args),
        Command::Logs(args) => cli::logs::logs(&cli, args),
        Command::Stop(args) => cli::stop::stop(&cli, args),
        Command::Kill(args) => cli::stop::kill(&cli, args),
        Command::Wait(args) => cli::wait::wait(&cli, args),
        Command::Attach(args) => cli::attach::attach(&cli, args),
        Command::Report(args) => cli::report::report(&cli, args),
        Command::Pull(args) => cli::pull::pull(&cli, args),
        Command::Images(args) => cli::images::images(&cli, args),
        Command::Tag(args) => cli::tag::tag(&cli, args),
        Command::Inspect(args) => cli::inspect::inspect(&cli, args),
        Command::History(args) => cli::history::history(&cli, args),
        Command::Push(args) => cli::push::push(&cli, args),
        Command::Login(args) => cli::login::login(args),
        Command::Logout(args) => cli::login::logout(args),
        Command::Save(args) => cli::save::save(&cli, args),
        Command::Load(args) => cli::save::load(&cli, args),
        Command::Rmi(args) => cli::images::rmi(&cli, args),
        Command::Commit(args) => cli::commit::commit(&cli, args),
        Command::Rm(args) => cli::rm::rm(&cli, args),
        Command::Image(c) => cli::image::image(&cli, c),
        Command::Plot(args) => cli::plot::plot(args),
        Command::Pause(args) => cli::pause::pause(&cli, args, true),
        Command::Unpause(args) => cli::pause::pause(&cli, args, false),
        Command::Update(args) => cli::update::update(&cli, args),
        Command::Stats(args) => cli::stats::stats(&cli, args),
        Command::Top(args) => cli::top::top(&cli, args),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "sandbox", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()).map(|_| 0).map_err(Into::into)
        }
    };
    // Interrupted: the work's error (a read cut short) is not what the user needs to hear.
    if let (Some(sig), Err(_)) = (sandbox::interrupt::finish(), &result) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "sandbox: {}", sandbox::interrupt::message(sig));
        std::process::exit(sandbox::interrupt::exit_code(sig));
    }
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            use std::io::Write;
            // A closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "sandbox: {}", sandbox::error::chain(e.chain()));
            let code = e.downcast_ref::<sandbox::Error>().map_or(125, sandbox::Error::exit_code);
            std::process::exit(code);
        }
    }
}
