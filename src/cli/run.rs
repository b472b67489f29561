//! `sandbox run`: builds the library [`Config`] from the flags, runs it, prints the report and
//! returns the exit status.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use sandbox::config::{self, Config, Tty};
use sandbox::container::record::Recorder;
use sandbox::container::state::{self, LogDriver, Root, State};
use sandbox::image::container::{self, Container};
use sandbox::image::Store;
use sandbox::run::Engine;

use super::{Cli, ReportMode};

/// `run --help`'s closing section: each default of the hardening and the flag that relaxes it.
pub const HARDENING_HELP: &str = "\
Hardening, on by default, and how to relax it:
  capabilities   docker's default 14 (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
                 NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP), none inheritable or
                 ambient                                            --cap-add, --cap-drop
  no_new_privs   setuid binaries and file capabilities grant nothing   --allow-new-privs
  seccomp        an allowlist, as docker's default profile: keyrings, bpf, kexec, io_uring, AF_VSOCK
                 sockets and the other calls it denies fail with EPERM, calls it does not know with
                 ENOSYS; mount/unshare/setns need SYS_ADMIN, kcmp SYS_PTRACE, mbind SYS_NICE; no
                 i386/x32 ABI                                       --seccomp unconfined|PROFILE.json
  /proc, /sys    kcore keys timer_list sched_debug acpi scsi latency_stats /sys/firmware masked;
                 /proc/bus fs irq sys sysrq-trigger read-only       --privileged (all of the above off)
  host files     host view: fresh read-only /sys, minimal /dev, every mount nodev; /sys/fs/cgroup
                 shows only the run's group, read-only                --privileged (rw, host /sys /dev)
  fds, env       only 0-2 cross exec; signals default; a clean environment
                                                    --preserve-fds N, -e NAME, --env-file, --inherit-env
  stop           SIGTERM/INT/HUP forwarded, SIGKILL after 10s or a second SIGINT    --stop-timeout
  namespaces     pid mount uts ipc net (lo only) cgroup; propagation private both ways
  user namespace as root: none unless --userns auto|HOSTID[:COUNT] (root inside = those host ids);
                 as another user: always (your uid/gid are root inside). Rootless cgroup limits
                 need a delegated cgroup v2 group: systemd-run --user --scope -p Delegate=yes sandbox ...";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// pivot_root into DIR (old root unmounted), with a minimal /dev, a fresh /proc and read-only /sys
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    pub rootfs: Option<PathBuf>,
    /// Run an image from the store (see `sandbox images`): overlayfs over its layers with a fresh
    /// upper layer, its Env, Entrypoint/Cmd, WorkingDir and User applied
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Run an image made for this platform although this host is another (for binfmt_misc
    /// emulation): without it, an image for another OS/architecture is refused
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", requires = "image")]
    pub platform: Option<String>,
    /// The container's name, unique in the state root (default: generated, e.g. brave_curie).
    /// With --image its upper layer is kept under this name (for later runs and `sandbox commit`)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Run in the background: print the container's id once the command was executed and return;
    /// its supervisor keeps the output in a log (`sandbox logs`), the limits and the report
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// With -d: remove the container (state, log, report) when it stops
    #[arg(long, requires = "detach")]
    pub rm: bool,
    /// With -d: where the output goes: json-file (ID/log.jsonl, `sandbox logs`) or none
    #[arg(long, value_name = "json-file|none", default_value = "json-file", value_parser = ["json-file", "none"])]
    pub log_driver: String,
    /// With -d: the log's size cap, one rotation kept (default 10M)
    #[arg(long, value_name = "SIZE", requires = "detach")]
    pub log_max_size: Option<String>,
    /// Set an environment variable (NAME=VALUE; NAME alone copies your value); repeatable.
    /// The command never gets your whole environment: a host-view run keeps PATH HOME TERM LANG
    /// LC_* TZ USER LOGNAME SHELL, a --rootfs/--image run starts from PATH, HOSTNAME and HOME
    #[arg(long, short = 'e', value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file of NAME=VALUE (or NAME) lines; repeatable
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Pass your whole environment to the command (then --env-file and -e)
    #[arg(long)]
    pub inherit_env: bool,
    /// Working directory of the command (made if missing inside a root filesystem)
    #[arg(long, short = 'w', value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Run the command as USER[:GROUP] (names from the root filesystem's /etc/passwd, or numbers)
    #[arg(long, short = 'u', value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Replace the image's Entrypoint ("" clears it)
    #[arg(long, value_name = "CMD", requires = "image")]
    pub entrypoint: Option<String>,
    /// Hostname inside the sandbox (default: the run's id)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Make the command's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Bind-mount a host path: SRC[:DST][:ro]
    #[arg(long, value_name = "SRC:DST[:ro]")]
    pub bind: Vec<String>,
    /// Mount an empty tmpfs at DST, optionally with a size (DST:size=64M)
    #[arg(long, value_name = "DST[:size=N]")]
    pub tmpfs: Vec<String>,
    /// Size of /dev/shm (default 64M, as docker)
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Put a minimal init (reaper and signal forwarder) in front of the command as PID 1
    #[arg(long)]
    pub init: bool,
    /// Always give the command a pseudo-terminal (by default: only when stdin and stdout are both
    /// terminals)
    #[arg(long, short = 't', conflicts_with = "no_tty")]
    pub tty: bool,
    /// Never give the command a pseudo-terminal (a terminal on stdin, stdout or stderr is then
    /// relayed through a pipe: the command never holds it)
    #[arg(long)]
    pub no_tty: bool,
    /// Pass fds 3 .. 3+N-1 to the command (every other fd above 2 is closed)
    #[arg(long, value_name = "N")]
    pub preserve_fds: Option<String>,

    /// Add a capability to docker's default set (NET_ADMIN, CAP_SYS_PTRACE, ALL); repeatable
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Remove a capability from the set (or ALL); repeatable
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Let execve grant privileges again (setuid binaries, file capabilities): no_new_privs off
    #[arg(long)]
    pub allow_new_privs: bool,
    /// Seccomp filter: `default` (deny keyrings, bpf, kexec, module loading, io_uring, mounts and
    /// namespaces without CAP_SYS_ADMIN, …), `unconfined`, or a docker/OCI JSON profile
    #[arg(long, value_name = "default|unconfined|PATH", default_value = "default")]
    pub seccomp: String,
    /// Map the command's root to unprivileged host ids in a user namespace (root only):
    /// `auto` (your range in /etc/subuid and /etc/subgid), HOSTID, or HOSTID:COUNT. Files it
    /// creates belong to those ids on the host. Without root, sandbox always maps your own uid and
    /// gid to root inside
    #[arg(long, value_name = "auto|HOSTID[:COUNT]")]
    pub userns: Option<String>,
    /// Turn the hardening off: every capability, no masked or read-only /proc and /sys paths,
    /// no seccomp filter.
    /// The command is then root on the host in all but its namespaces.
    #[arg(long)]
    pub privileged: bool,
    /// The command and its arguments (with --image: replaces the image's Cmd)
    #[arg(
        required_unless_present = "image",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// Resolves `--image` into the run: the container (removed when dropped, unless named) and the
/// image's settings in `cfg`. Called after every other value was validated, so that a bad flag
/// leaves no container behind.
fn image_run(cli: &Cli, args: &RunArgs, image: &str, cfg: &mut Config) -> Result<Container, sandbox::Error> {
    if !nix::unistd::geteuid().is_root() || cfg.userns.is_some() {
        return Err(sandbox::Error::invalid(
            "--image",
            image,
            "a run as root without --userns (image runs in a user namespace are not supported yet)",
        ));
    }
    let platform = match &args.platform {
        Some(p) => sandbox::image::manifest::Platform::parse(p)?,
        None => sandbox::image::manifest::Platform::host(),
    };
    // A missing store is not created: there is nothing in it to run.
    let store = Store::open_existing(&cli.root)?.ok_or_else(|| {
        sandbox::Error::image(format!(
            "no image '{image}': no image store at {} (nothing pulled yet)",
            cli.root.display()
        ))
    })?;
    let img = store.find(image)?;
    // An image for another architecture would fail only at exec, as "Exec format error".
    sandbox::image::manifest::check_platform(&img.config, &platform, &img.name, "run")?;
    let hostname = cfg.hostname.clone().unwrap_or_else(|| cfg.id.clone());
    let s = container::settings(&img.config, &args.command, args.entrypoint.as_deref(), &[], &hostname)?;
    cfg.command = s.command;
    cfg.env = Some(environment(args, true, &hostname, &s.env)?);
    cfg.cwd = args.workdir.clone().or(s.cwd);
    cfg.user = args.user.clone().or(s.user);
    cfg.validate()?;
    let c = Container::create(&store, &img, args.name.as_deref(), &cfg.id)?;
    cfg.rootfs = Some(c.merged());
    cfg.layers = Some(c.layers(&store)?);
    Ok(c)
}

/// Translates the flags into a validated [`Config`].
pub fn config(cli: &Cli, args: &RunArgs) -> Result<Config, sandbox::Error> {
    let mut cfg = Config::new(args.command.iter().cloned());
    let l = &mut cfg.limits;
    l.memory_bytes = cli.mem.as_deref().map(config::parse_size).transpose()?;
    l.cpus = cli.cpus.as_deref().map(|c| config::parse_cpus(c, config::host_cpus())).transpose()?;
    l.pids = cli.pids.as_deref().map(config::parse_pids).transpose()?;
    l.timeout = cli.timeout.as_deref().map(config::parse_timeout).transpose()?;
    l.cpu_time = cli.cpu_time.as_deref().map(config::parse_cpu_time).transpose()?;
    limit_flags(cli, l)?;
    cfg.rootfs = match &args.rootfs {
        Some(r) => Some(r.canonicalize().map_err(|_| {
            sandbox::Error::invalid(
                "--rootfs",
                &r.display().to_string(),
                "an existing directory holding a root filesystem",
            )
        })?),
        None => None,
    };
    cfg.hostname = args.hostname.clone();
    cfg.read_only = args.read_only;
    cfg.binds = args.bind.iter().map(|b| config::parse_bind(b)).collect::<Result<_, _>>()?;
    cfg.tmpfs = args.tmpfs.iter().map(|t| config::parse_tmpfs(t)).collect::<Result<_, _>>()?;
    if let Some(v) = &args.shm_size {
        cfg.shm_size = config::parse_tmpfs_size("--shm-size", v)?;
    }
    if let Some(v) = &cli.stop_timeout {
        cfg.stop_timeout = config::parse_stop_timeout(v)?;
    }
    if let Some(v) = &args.preserve_fds {
        cfg.preserve_fds = config::parse_preserve_fds(v)?;
    }
    cfg.init = args.init;
    cfg.cgroup_parent = cli.cgroup_parent.clone();
    cfg.cgroup_root = cli.cgroup_root.clone();
    cfg.tty = match (args.tty, args.no_tty) {
        (true, _) => Tty::Always,
        (_, true) => Tty::Never,
        _ => Tty::Auto,
    };
    let names = |flag, v: &[String]| v.iter().map(|n| sandbox::caps::parse(flag, n)).collect::<Result<Vec<_>, _>>();
    cfg.capabilities =
        sandbox::caps::resolve(&names("--cap-add", &args.cap_add)?, &names("--cap-drop", &args.cap_drop)?);
    cfg.no_new_privs = !args.allow_new_privs;
    cfg.privileged = args.privileged;
    cfg.seccomp = sandbox::seccomp::policy_from_flag(&args.seccomp)?;
    if let Some(v) = &args.userns {
        let uid = nix::unistd::geteuid();
        let name = nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name);
        cfg.userns = Some(sandbox::userns::parse_flag(
            v,
            Path::new("/etc/subuid"),
            Path::new("/etc/subgid"),
            name.as_deref(),
            uid.as_raw(),
        )?);
    }
    cfg.cwd = args.workdir.clone();
    cfg.user = args.user.clone();
    let hostname = cfg.hostname.clone().unwrap_or_else(|| cfg.id.clone());
    cfg.env = Some(environment(args, cfg.rootfs.is_some(), &hostname, &[])?);
    // With --image the command may come from the image: image_run validates.
    if args.image.is_none() {
        cfg.validate()?;
    }
    Ok(cfg)
}

/// The limits of issue 13 beyond --mem, --cpus and --pids: parsed and checked (devices exist,
/// files are not sandbox's own) before anything is created.
fn limit_flags(cli: &Cli, l: &mut sandbox::Limits) -> Result<(), sandbox::Error> {
    use sandbox::limits::{self, IoKind};
    let size = |flag: &'static str, v: &str| {
        config::parse_size(v).map_err(|_| {
            sandbox::Error::invalid(flag, v, "a number of bytes with an optional binary suffix K, M, G, T, e.g. 200M")
        })
    };
    l.memory_high = cli.mem_high.as_deref().map(|v| size("--mem-high", v)).transpose()?;
    l.swap_bytes = match cli.swap.as_deref() {
        // 0 is the default (no swap beside --mem), accepted as such.
        Some(v) if v.trim() == "0" => Some(0),
        Some(v) => Some(size("--swap", v)?),
        None => None,
    };
    l.cpu_weight = cli.cpu_weight.as_deref().map(|v| limits::parse_weight("--cpu-weight", v)).transpose()?;
    l.io_weight = cli.io_weight.as_deref().map(|v| limits::parse_weight("--io-weight", v)).transpose()?;
    let list = |flag, v: &Option<String>| {
        v.as_deref().map(|s| limits::parse_list(flag, s).map(|set| limits::format_list(&set))).transpose()
    };
    l.cpuset_cpus = list("--cpuset-cpus", &cli.cpuset_cpus)?;
    l.cpuset_mems = list("--cpuset-mems", &cli.cpuset_mems)?;
    for (kind, values) in [
        (IoKind::ReadBps, &cli.io_read_bps),
        (IoKind::WriteBps, &cli.io_write_bps),
        (IoKind::ReadIops, &cli.io_read_iops),
        (IoKind::WriteIops, &cli.io_write_iops),
    ] {
        for v in values {
            l.io.push(limits::parse_io_rule(kind, v)?);
        }
    }
    l.cgroup_conf = cli.cgroup_conf.iter().map(|c| limits::parse_cgroup_conf(c)).collect::<Result<_, _>>()?;
    if let (Some(high), Some(max), Some(v)) = (l.memory_high, l.memory_bytes, &cli.mem_high) {
        if high > max {
            let why = format!("a size at most --mem ({})", cli.mem.as_deref().unwrap_or_default());
            return Err(sandbox::Error::invalid("--mem-high", v, &why));
        }
    }
    Ok(())
}

/// The command's environment (see `sandbox::env`): the clean base for the mode (or the caller's
/// whole one with --inherit-env), `image` (an image's Env), the env files, then `-e`.
fn environment(args: &RunArgs, rootfs: bool, hostname: &str, image: &[String]) -> Result<Vec<String>, sandbox::Error> {
    let caller = sandbox::env::caller();
    let mut vars = if args.inherit_env { caller.clone() } else { sandbox::env::base(rootfs, hostname, &caller) };
    sandbox::env::apply(&mut vars, image, &caller);
    for f in &args.env_file {
        sandbox::env::apply(&mut vars, &sandbox::env::read_file(f)?, &caller);
    }
    for e in &args.env {
        sandbox::env::check_entry("--env", e)?;
    }
    sandbox::env::apply(&mut vars, &args.env, &caller);
    Ok(vars)
}

/// Checks an output file sandbox writes after the run (`--report-file`, `--plot`) before anything
/// is created: its directory exists and is writable, and PATH is not a directory. Returns the
/// directory, opened (O_PATH): the file goes into that very directory after the run, whatever a
/// command that can write above it (the host view, a bind) does to the path meanwhile (a symlink
/// swapped in for a directory would otherwise lead the write elsewhere).
pub fn open_output_dir(flag: &'static str, p: &Path) -> Result<std::os::fd::OwnedFd, sandbox::Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let bad = |why: &str| sandbox::Error::invalid(flag, &p.display().to_string(), why);
    let dir = report_dir(p);
    if p.is_dir() || p.file_name().is_none() {
        return Err(bad("a file path, not a directory"));
    }
    if !dir.is_dir() || nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(bad("a path in an existing directory you may write to"));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|_| bad("a path in an existing directory you may write to"))?;
    Ok(f.into())
}

pub fn report_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Writes `body` into `dir` (opened before the run by [`open_output_dir`]) under PATH's file name,
/// atomically: a new file beside it (O_EXCL, never following a link), renamed over the name. A
/// symlink planted there is replaced, not followed (sandbox writes as root: followed, it would
/// let the command overwrite any file); a reader sees the old file or the new one, never a part.
pub fn write_output_file(dir: &std::os::fd::OwnedFd, p: &Path, body: &[u8]) -> std::io::Result<()> {
    use nix::fcntl::{openat, renameat, OFlag};
    use std::os::fd::{AsRawFd, FromRawFd};
    let name = p.file_name().unwrap_or_default();
    let tmp = format!(".{}.{}-{}.tmp", name.to_string_lossy(), std::process::id(), sandbox::sys::random_id());
    let d = Some(dir.as_raw_fd());
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(d, tmp.as_str(), flags, nix::sys::stat::Mode::from_bits_truncate(0o644))?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let written = f.write_all(body).and_then(|()| renameat(d, tmp.as_str(), d, name).map_err(std::io::Error::from));
    if written.is_err() {
        let _ = nix::unistd::unlinkat(d, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    written
}

pub fn run(cli: &Cli, args: &RunArgs) -> Result<i32> {
    let mut cfg = config(cli, args)?;
    // Before the image's container is made: a bad --plot or --sample-interval leaves nothing.
    let sampling = super::samples::check(cli)?;
    let log_max_size = match &args.log_max_size {
        Some(v) => config::parse_size(v).map_err(|_| {
            sandbox::Error::invalid("--log-max-size", v, "a size with an optional binary suffix K, M, G, e.g. 10M")
        })?,
        None => state::DEFAULT_LOG_MAX_SIZE,
    };
    // Checked before the run so that a bad path fails before anything is created; written only
    // after it, so that a run that never finishes leaves an earlier report as it was.
    let report_dir = cli.report_file.as_deref().map(|p| open_output_dir("--report-file", p)).transpose()?;
    // The container in the state root: its name reserved first (a name in use leaves nothing).
    let mut st = State::new(state::new_id(), args.name.clone().unwrap_or_default(), cfg.clone());
    cfg.id = st.short_id().to_string();
    st.config.id = cfg.id.clone();
    st.detached = args.detach;
    st.auto_remove = args.rm;
    st.image = args.image.clone();
    st.log_driver = if args.log_driver == "none" { LogDriver::None } else { LogDriver::JsonFile };
    st.log_max_size = log_max_size;
    st.tty = args.tty;
    let root_dir = cli.state_root();
    let mut container = match Root::create(&root_dir).and_then(|root| root.register(st)) {
        Ok(c) => Some(c),
        Err(e @ sandbox::Error::Container(_)) | Err(e @ sandbox::Error::Invalid { .. }) => return Err(e.into()),
        // A foreground run still runs without a usable state root (not listed by ps); a
        // detached one cannot exist without one.
        Err(e) if !args.detach => {
            sandbox::run::warn(&format!(
                "the run is not listed in the state root: {}",
                sandbox::error::chain([&e as _])
            ));
            None
        }
        Err(e) => return Err(e.into()),
    };
    // Held for the run: the container is removed when this drops, unless named.
    let image = match &args.image {
        Some(image) => match image_run(cli, args, image, &mut cfg) {
            Ok(c) => Some(c),
            Err(e) => {
                if let Some(c) = &container {
                    let _ = c.remove_dir();
                }
                return Err(e.into());
            }
        },
        None => None,
    };
    if let (Some(c), Some(_)) = (container.as_mut(), &args.image) {
        c.update(|s| s.config = cfg.clone())?;
    }
    let hide = vec![root_dir];
    if args.detach {
        let c = container.expect("a detached run has a container");
        return super::detach::start(cli, cfg, c, image, sampling, report_dir, hide);
    }
    let result = {
        let mut recorder = container.as_mut().map(|c| Recorder::new(c, false, None));
        let engine = Engine {
            observer: recorder.as_mut().map(|r| r as &mut dyn sandbox::run::Observer),
            hide,
            ..Engine::default()
        };
        match &sampling {
            Some(s) => super::samples::run(&cfg, s, engine),
            None => sandbox::run::run_with(&cfg, engine).map_err(Into::into),
        }
    };
    // A foreground run is removed when it ends (as docker run --rm): its report is printed.
    if let Some(c) = &container {
        let _ = c.remove_dir();
    }
    drop(image);
    let report = result?;
    Ok(print_report(cli, &report, report_dir.as_ref()))
}

/// Writes `--report-file` and prints the report as `--report` says; returns the exit status.
pub fn print_report(cli: &Cli, report: &sandbox::Report, report_dir: Option<&std::os::fd::OwnedFd>) -> i32 {
    // The file first: a closed or broken stderr (`2>&-`, `2>&1 | true`) loses only the copy there.
    let saved = match (&cli.report_file, report_dir) {
        (Some(p), Some(dir)) => write_output_file(dir, p, format!("{}\n", report.to_json()).as_bytes())
            .with_context(|| format!("cannot write --report-file {}", p.display())),
        _ => Ok(()),
    };
    // Never blocking for long on a terminal that stopped reading (a dead ssh link): sandbox
    // exits with the command's status within the limit whatever stderr does.
    let mut text = match cli.report {
        ReportMode::Human => report.to_human(),
        ReportMode::Json => format!("{}\n", report.to_json()),
        ReportMode::None => String::new(),
    };
    if let Err(e) = saved {
        // The command's status stays the exit status: the report could not be kept, said here.
        text.push_str(&format!("sandbox: {}\n", sandbox::error::chain(e.chain())));
    }
    sandbox::tty::write_within(2, text.as_bytes(), std::time::Duration::from_secs(2));
    report.exit_code
}
