//! The command line: clap definitions and their translation into a library [`Config`].
//! One file per subcommand; this file holds the flags shared by all of them.

pub mod attach;
pub mod commit;
pub mod detach;
pub mod exec;
pub mod gc;
pub mod group;
pub mod history;
pub mod image;
pub mod images;
pub mod inspect;
pub mod login;
pub mod logs;
pub mod pause;
pub mod plot;
pub mod ps;
pub mod pull;
pub mod push;
pub mod report;
pub mod rm;
pub mod run;
pub mod samples;
pub mod save;
pub mod show;
pub mod stats;
pub mod stop;
pub mod tag;
pub mod top;
pub mod update;
pub mod wait;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Limit and report flags work before or after `run`.

Exit status:
  the command's own exit code
  128+N  the command died of signal N (137: SIGKILL, e.g. an OOM kill)
  124    --timeout or --cpu-time expired
  125    sandbox itself failed (bad flag or value, setup error)
  126    the command is not executable
  127    the command was not found";

#[derive(Debug, Parser)]
#[command(name = "sandbox", version, about = "Run a program in its own Linux namespaces under cgroup limits \
and report exactly what it used", after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// The same command line with `run` as its only subcommand: `sandbox run` is the command whose
/// start-up is timed (bench/startup.sh), and clap builds every subcommand's arguments of a
/// parser before it parses anything (~7% of a run's user time with 30 subcommands). Whatever
/// this parser accepts, [`Cli`] reads the same way (the same globals, the same `run`); whatever
/// it refuses (another subcommand, --help, --version, a bad flag) goes to [`Cli`] for its
/// answer, so nothing but the time differs.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, about = "Run a program in its own Linux namespaces under cgroup limits \
and report exactly what it used", after_help = AFTER_HELP, propagate_version = true)]
struct RunCli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: RunOnly,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum RunOnly {
    #[command(after_help = run::HARDENING_HELP)]
    Run(run::RunArgs),
}

impl Cli {
    /// Parses the process's arguments: the `run` fast path first when an argument is `run`.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        Cli::parse_from_args(std::env::args_os().collect())
    }

    fn parse_from_args(argv: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        if argv.iter().skip(1).any(|a| a == "run") {
            if let Ok(RunCli { globals, command: RunOnly::Run(args) }) = RunCli::try_parse_from(&argv) {
                return Ok(Cli { globals, command: Command::Run(args) });
            }
        }
        Cli::try_parse_from(argv)
    }
}

impl std::ops::Deref for Cli {
    type Target = Globals;
    fn deref(&self) -> &Globals {
        &self.globals
    }
}

/// The flags every subcommand takes (before or after its name).
#[derive(Debug, clap::Args)]
pub struct Globals {
    /// Memory limit: bytes with an optional binary suffix (64M, 1.5G, 512k, 1048576); swap is disabled
    #[arg(long, global = true, value_name = "SIZE")]
    pub mem: Option<String>,
    /// CPU bandwidth in CPUs, a decimal from 0.01 to this host's CPU count (0.5 = half a CPU)
    #[arg(long, global = true, value_name = "N")]
    pub cpus: Option<String>,
    /// Maximum number of processes and threads (≥ 1)
    #[arg(long, global = true, value_name = "N")]
    pub pids: Option<String>,
    /// Memory above which the command is throttled and reclaimed (v2 memory.high; v1 soft limit,
    /// reclaimed only when the host runs short; docker's --memory-reservation); at most --mem
    #[arg(long, global = true, value_name = "SIZE")]
    pub mem_high: Option<String>,
    /// Swap the command may use beside --mem (v2 memory.swap.max; v1: memory+swap = --mem + SIZE,
    /// needs --mem); default 0
    #[arg(long, global = true, value_name = "SIZE")]
    pub swap: Option<String>,
    /// CPU weight against other groups, 1-10000, default 100 (v2 cpu.weight; v1 cpu.shares as
    /// runc converts: 100 = 1024 shares; docker's --cpu-shares)
    #[arg(long, global = true, value_name = "N")]
    pub cpu_weight: Option<String>,
    /// CPUs the command may run on, e.g. 0-1,3 (cpuset.cpus; within the parent group's set)
    #[arg(long, global = true, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the command may allocate on, e.g. 0 (cpuset.mems)
    #[arg(long, global = true, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// io weight against other groups, 1-10000, default 100 (v2 io.weight / io.bfq.weight; v1
    /// blkio.weight / blkio.bfq.weight; docker's --blkio-weight)
    #[arg(long, global = true, value_name = "N")]
    pub io_weight: Option<String>,
    /// Read bytes per second from a disk: DEV:RATE, DEV a path or MAJ:MIN (/dev/sdb:10M); repeatable
    #[arg(long, global = true, value_name = "DEV:RATE")]
    pub io_read_bps: Vec<String>,
    /// Write bytes per second to a disk: DEV:RATE; repeatable (docker's --device-write-bps)
    #[arg(long, global = true, value_name = "DEV:RATE")]
    pub io_write_bps: Vec<String>,
    /// Read operations per second from a disk: DEV:N; repeatable
    #[arg(long, global = true, value_name = "DEV:N")]
    pub io_read_iops: Vec<String>,
    /// Write operations per second to a disk: DEV:N; repeatable
    #[arg(long, global = true, value_name = "DEV:N")]
    pub io_write_iops: Vec<String>,
    /// Write VALUE to a controller file of the run's group before the command starts
    /// (memory.oom.group=1); not one sandbox manages itself; repeatable (podman's flag)
    #[arg(long, global = true, value_name = "FILE=VALUE")]
    pub cgroup_conf: Vec<String>,
    /// Kill everything and exit 124 after this long (10s, 1m30s, 500ms)
    #[arg(long, global = true, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// CPU time for the whole run, all processes and CPUs together (30s, 1m, 500ms): when it is
    /// used up everything is killed and sandbox exits 124 (cgroup cpu usage; overshoot ≤ 50 ms)
    #[arg(long, global = true, value_name = "DURATION", allow_hyphen_values = true)]
    pub cpu_time: Option<String>,
    /// After SIGTERM, SIGINT or SIGHUP to sandbox (forwarded to the command), SIGKILL everything
    /// once this long has passed (default 10s, as `docker stop`); a second SIGINT kills at once
    #[arg(long, global = true, value_name = "DURATION")]
    pub stop_timeout: Option<String>,
    /// Accounting report on stderr after the command ends
    #[arg(long, global = true, value_enum, default_value_t = ReportMode::Human)]
    pub report: ReportMode,
    /// Also write the JSON report to this file
    #[arg(long, global = true, value_name = "PATH")]
    pub report_file: Option<PathBuf>,
    /// Record usage over time: a sample of the run's group every --sample-interval from start to
    /// end (CPU, memory and its breakdown, tasks, io, throttling, pressure), as JSON Lines, or CSV
    /// when FILE ends in .csv
    #[arg(long, global = true, value_name = "FILE")]
    pub samples: Option<PathBuf>,
    /// Time between samples (default 100ms, at least 10ms)
    #[arg(long, global = true, value_name = "DURATION")]
    pub sample_interval: Option<String>,
    /// After the run, draw its usage over time (memory, CPU, tasks, io against the limits) as an
    /// SVG; `sandbox plot` draws a --samples file later
    #[arg(long, global = true, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Create the run's cgroup under this path (relative to the hierarchy root) instead of under
    /// sandbox's own cgroup
    #[arg(long, global = true, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// The image store's state root
    #[arg(long, global = true, value_name = "DIR", env = "SANDBOX_ROOT", default_value = sandbox::image::store::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// The containers' state root (default /run/sandbox as root, else $XDG_RUNTIME_DIR/sandbox)
    #[arg(long, global = true, value_name = "DIR", env = "SANDBOX_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where the cgroup filesystems are mounted
    #[arg(long, global = true, value_name = "DIR", default_value = "/sys/fs/cgroup", hide = true)]
    pub cgroup_root: PathBuf,
}

impl Globals {
    /// The containers' state root: `--state-dir`, $SANDBOX_STATE_DIR or the default.
    pub fn state_root(&self) -> std::path::PathBuf {
        sandbox::container::state::root_dir(self.state_dir.as_deref())
    }
}

/// `--format` of the listing commands (images, ps, stats, top): a table, or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportMode {
    Human,
    Json,
    None,
}

// Parsed once per process: the size of the largest variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in new pid, mount, uts, ipc, net and cgroup namespaces under the limits
    #[command(after_help = run::HARDENING_HELP)]
    Run(run::RunArgs),
    /// Run another command in a running container: its namespaces, cgroup, user, capabilities,
    /// no_new_privs and seccomp filter, its environment plus -e
    Exec(exec::ExecArgs),
    /// List containers: ID NAME IMAGE/COMMAND STATUS CPU% MEM/LIMIT PIDS (running; -a: all)
    Ps(ps::PsArgs),
    /// Print a detached container's output (stdout to stdout, stderr to stderr)
    Logs(logs::LogsArgs),
    /// Stop containers: SIGTERM, then SIGKILL to everything in them after the grace
    Stop(stop::StopArgs),
    /// Send a signal to containers' commands (default KILL)
    Kill(stop::KillArgs),
    /// Wait for containers to stop and print their exit codes (125 and a message for one whose
    /// supervisor was lost: its exit status is unknown)
    Wait(wait::WaitArgs),
    /// Connect this terminal to a `run -d -t` container's pty (ctrl-p ctrl-q detaches)
    Attach(attach::AttachArgs),
    /// Print a stopped container's final report (--report json for JSON)
    Report(report::ReportArgs),
    /// Remove the groups left by a sandbox that was killed (what is still in them is killed) and
    /// settle containers whose supervisor is gone
    Gc,
    /// Pull an image from a registry (HTTP API v2) into the store
    Pull(pull::PullArgs),
    /// List the images in the store, with their compressed and unpacked sizes
    Images(images::ImagesArgs),
    /// Give an image in the store another name
    Tag(tag::TagArgs),
    /// Show containers (state, config, mounts, limits, cgroup, report) or images as JSON
    Inspect(inspect::InspectArgs),
    /// Show an image's history: what made each layer, and its size
    History(history::HistoryArgs),
    /// Push an image to a registry (HTTP API v2)
    Push(push::PushArgs),
    /// Check credentials against a registry and save them for pull and push
    Login(login::LoginArgs),
    /// Remove a registry's saved credentials
    Logout(login::LogoutArgs),
    /// Write images as a `docker save` archive (docker-archive)
    Save(save::SaveArgs),
    /// Load images from a docker-archive or OCI archive (file or stdin)
    Load(save::LoadArgs),
    /// Remove image names; content goes with `image prune`
    Rmi(images::RmiArgs),
    /// Turn a kept container's changes (`run --name`) into a new image
    Commit(commit::CommitArgs),
    /// Remove containers (-f: running ones too, killed first) and kept image containers
    Rm(rm::RmArgs),
    /// Import, export and prune images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Draw a run recorded with --samples as an SVG (memory, CPU, tasks, io against the limits)
    Plot(plot::PlotArgs),
    /// Freeze every process of running containers (cgroup freezer)
    Pause(pause::PauseArgs),
    /// Thaw paused containers
    Unpause(pause::PauseArgs),
    /// Change the limits of running containers (--mem, --mem-high, --swap, --cpus, --cpu-weight,
    /// --pids, --io-*; as `run` takes them)
    Update(update::UpdateArgs),
    /// Live CPU %, memory / limit, tasks, block I/O and pressure of running containers
    Stats(stats::StatsArgs),
    /// The processes of a running container
    Top(top::TopArgs),
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

impl Command {
    /// What a command that stages files is doing, for the line printed when SIGINT, SIGTERM or
    /// SIGHUP stops it (`None`: the signals keep their default actions, or `run` forwards them).
    pub fn interruptible_task(&self) -> Option<String> {
        match self {
            Command::Pull(a) => Some(format!("pull of {}", a.reference)),
            Command::Commit(a) => Some(format!("commit of {} as {}", a.container, a.reference)),
            Command::Image(image::ImageCommand::Import { path, .. }) => Some(format!("import of {}", path.display())),
            Command::Image(image::ImageCommand::Export { image, output }) if output.as_os_str() == "-" => {
                Some(format!("export of {image}"))
            }
            Command::Image(image::ImageCommand::Export { image, output }) => {
                Some(format!("export of {image} to {}", output.display()))
            }
            Command::Push(a) => Some(format!("push of {}", a.image)),
            Command::Save(a) if a.output.as_os_str() == "-" => Some(format!("save of {}", a.images.join(" "))),
            Command::Save(a) => Some(format!("save of {} to {}", a.images.join(" "), a.output.display())),
            Command::Load(a) => Some(format!("load of {}", a.input.display())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `run` fast path reads every command line exactly as the full parser does, and leaves
    /// the ones it refuses (help, version, errors, other subcommands) to it.
    #[test]
    fn run_fast_path_parses_as_the_full_parser() {
        let lines: &[&[&str]] = &[
            &["run", "/bin/true"],
            &["--mem", "64M", "--cpus", "0.5", "--pids", "20", "run", "--rootfs", "/r", "/bin/true"],
            &["run", "--mem", "64M", "-e", "A=1", "--report", "json", "--", "sh", "-c", "echo run"],
            &["--report", "none", "run", "--name", "run", "--init", "run"],
            &["--state-dir", "run", "run", "x"],
            &["exec", "c1", "run"],
            &["ps", "-a"],
            &["run", "--no-such-flag", "x"],
            &["run", "--help"],
            &["run", "--version"],
            &["--timeout", "run"],
            &["image", "import", "run"],
        ];
        for line in lines {
            let argv: Vec<std::ffi::OsString> =
                std::iter::once("sandbox").chain(line.iter().copied()).map(Into::into).collect();
            let fast = Cli::parse_from_args(argv.clone());
            let full = Cli::try_parse_from(&argv);
            match (fast, full) {
                (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{line:?}"),
                (Err(a), Err(b)) => {
                    assert_eq!((a.kind(), a.to_string()), (b.kind(), b.to_string()), "{line:?}")
                }
                (a, b) => panic!("{line:?}: fast path {a:?}, full parser {b:?}"),
            }
        }
    }
}
