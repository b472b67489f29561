//! The OCI lifecycle on sandbox's engine: `create` forks the container's supervisor (as `run -d`)
//! and returns once the process waits before exec (status created); `start`, from another
//! process, releases it through a FIFO in the container's state directory (runc's exec.fifo);
//! `state`, `kill`, `delete`, `list` read and act through the state root.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::container::record::{write_atomic, Recorder};
use crate::container::supervise::Observer;
use crate::container::{control, Container, LogDriver, Root, State, Status};
use crate::error::{Error, Result};

/// The FIFO a created container's supervisor reads its go from.
const START_FIFO: &str = "start.fifo";
/// What `state` reports beside sandbox's state.json: the bundle and the annotations.
const OCI_FILE: &str = "oci.json";

/// The runtime-spec version of the State and features sandbox writes.
pub const OCI_VERSION: &str = "1.2.0";

fn not_exist(id: &str) -> Error {
    Error::container(format!("container {id} does not exist"))
}

/// Container `id` of the state root (exactly that id: no prefix matching as `sandbox ps` does).
pub fn find(root: &Path, id: &str) -> Result<Container> {
    super::validate_id(id)?;
    if !root.join(id).join("state.json").is_file() {
        return Err(not_exist(id));
    }
    let mut c = Container::load(root, id).map_err(|_| not_exist(id))?;
    c.check();
    Ok(c)
}

/// What `create` was asked for besides the bundle.
#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Where the pty master goes with process.terminal (runc's --console-socket).
    pub console_socket: Option<PathBuf>,
}

/// `create`: the bundle loaded and checked (nothing exists if that fails), the container
/// registered, its supervisor forked; returns when the process waits before exec. The caller's
/// stdin, stdout and stderr are the container's. The caller must be single-threaded.
pub fn create(root_dir: &Path, bundle: &Path, id: &str, opts: &CreateOpts) -> Result<i32> {
    let b = super::load(bundle, id)?;
    let console =
        super::files::console_for(b.config.tty == crate::config::Tty::Always, opts.console_socket.as_deref())?;
    let root = Root::create(root_dir)?;
    if root_dir.join(id).exists() {
        return Err(Error::container(format!("container with id {id} already exists")));
    }
    let mut cfg = b.config.clone();
    cfg.preserve_fds = opts.preserve_fds;
    let name = if crate::image::container::check_name(id).is_ok() { id.to_string() } else { String::new() };
    let mut st = State::new(id.to_string(), name, cfg.clone());
    st.detached = true;
    st.log_driver = LogDriver::None;
    let mut container = root.register(st)?;
    // The group's parents that do not exist yet (a cgroupsPath's), removed by `delete`.
    let parents = match super::cgroups_path::make_parents(&cfg) {
        Ok(p) => p,
        Err(e) => {
            let _ = container.remove_dir();
            return Err(e);
        }
    };
    let oci = serde_json::json!({
        "bundle": b.dir,
        "annotations": b.spec.annotations().clone().unwrap_or_default(),
        "hooks": b.spec.hooks(),
        "cgroupParents": parents,
        "noProcess": b.spec.process().is_none(),
    });
    let setup = (|| {
        write_atomic(&container.dir.join(OCI_FILE), oci.to_string().as_bytes())?;
        nix::unistd::mkfifo(&container.dir.join(START_FIFO), nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::sys("mkfifo", e))?;
        // Inherited by the supervisor and the container (raising one needs CAP_SYS_RESOURCE).
        super::process::set_rlimits(&b.rlimits)?;
        super::process::set_oom_score_adj(b.oom_score_adj)
    })();
    if let Err(e) = setup {
        let _ = container.remove_dir();
        super::cgroups_path::remove_parents(&parents);
        return Err(e);
    }
    let hide = vec![root_dir.to_path_buf()];
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
    // SAFETY: the caller is single-threaded (the OCI front-end starts no thread before this), so
    // the child has every lock it may need; it runs the engine and leaves with exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", e))? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            // Its own session: the engine's process group or terminal going does not end it.
            let _ = crate::sys::detach_session();
            std::process::exit(supervise(&mut container, &cfg, wr, hide, console))
        }
        nix::unistd::ForkResult::Parent { .. } => {
            drop(wr);
            // Not to EOF: the container's process, cloned before it is told, holds the write end
            // until it execs. "ok PID\n" is complete; a failure is written when it is gone.
            let mut said = String::new();
            let mut f = std::fs::File::from(rd);
            let mut buf = [0u8; 512];
            while !(said.starts_with("ok ") && said.ends_with('\n')) {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => said.push_str(&String::from_utf8_lossy(&buf[..n])),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if let Some(pid) = said.strip_prefix("ok ").map(str::trim_end) {
                if let Some(p) = &opts.pid_file {
                    let pid =
                        pid.parse().map_err(|_| Error::container(format!("bad pid from the supervisor: {pid}")))?;
                    super::files::write_pid_file(p, pid)?;
                }
                return Ok(0);
            }
            let msg = said.split_once('\n').map_or("the container's supervisor ended before it was created", |m| m.1);
            // The supervisor removed the container and its group; the parents made here go too.
            wait_gone(&root_dir.join(id));
            super::cgroups_path::remove_parents(&parents);
            // runtime-spec: a failed prestart/createRuntime hook stops the container and the
            // lifecycle goes on at delete, whose poststop hooks run (warnings only), as runc's
            // destroy does for any failed create.
            let hooks = super::hooks::of_kind(&oci["hooks"], "poststop");
            super::hooks::run_warn("poststop", &hooks, &super::hooks::state(id, &oci, "stopped", 0));
            Err(Error::container(msg.to_string()))
        }
    }
}

/// Waits (at most 5 s) until a failed container's directory is gone: its supervisor removes it,
/// and its group before that.
fn wait_gone(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The supervisor: the engine with an observer that reports "created" to the front and waits for
/// the go. Its exit status is the container's.
fn supervise(
    c: &mut Container,
    cfg: &crate::Config,
    notify: OwnedFd,
    hide: Vec<PathBuf>,
    console: Option<OwnedFd>,
) -> i32 {
    let fifo = c.dir.join(START_FIFO);
    let mut obs = OciObserver {
        recorder: Recorder::new(c, true, None).supervised_here(),
        notify: Some(notify),
        fifo,
        held: None,
        status_unknown: false,
    };
    let engine =
        crate::run::Engine { observer: Some(&mut obs), hide, console, sibling: true, ..crate::run::Engine::default() };
    let result = crate::run::run_with(cfg, engine);
    let code = match &result {
        Ok(r) => r.exit_code,
        Err(e) => e.exit_code(),
    };
    let summary = result.as_ref().map_err(|e| (code, e.to_string()));
    match (&summary, obs.notify.take()) {
        (Err((code, msg)), Some(fd)) => {
            let _ = write!(std::fs::File::from(fd), "{code}\n{msg}");
        }
        // After `create` returned: the caller's stderr (the engine's log) is where it is seen.
        (Err((_, msg)), None) => {
            let _ = writeln!(std::io::stderr(), "sandbox-runc: container {}: {msg}", obs.recorder.container.id());
        }
        _ => {}
    }
    let _ = std::fs::remove_file(&obs.fifo);
    obs.recorder.finish(&summary);
    if obs.status_unknown {
        // The engine reaped it and has the status; ours would be made up.
        let _ = obs.recorder.container.update(|s| {
            s.exit_code = None;
            s.reason = Some("exited; status unknown here (its parent, the engine, reaped it)".into());
        });
    }
    // A `start` waiting for the outcome (a failed startContainer hook, an exec that failed):
    // the state is written, it may read it now.
    drop(obs.held.take());
    code
}

impl OciObserver<'_> {
    /// Runs the hooks of `kind` (createContainer, startContainer) in the container (hooks.rs).
    fn in_container(&self, kind: &str, oci: &serde_json::Value, pid: i32) -> Result<()> {
        let hooks = super::hooks::of_kind(&oci["hooks"], kind);
        if hooks.is_empty() {
            return Ok(());
        }
        let c = &self.recorder.container;
        let status = if kind == "createContainer" { "creating" } else { "created" };
        let st = super::hooks::state(c.id(), oci, status, pid);
        let process = crate::container::Process::of(pid)
            .ok_or_else(|| Error::container("the container's process ended before its hooks ran".to_string()))?;
        let cgroups = c.state.cgroup.as_ref().map(|g| g.paths.clone()).unwrap_or_default();
        let target = crate::exec::Target {
            name: c.id(),
            pid,
            start_time: process.start_time,
            cgroups: &cgroups,
            config: &c.state.config,
        };
        super::hooks::run_in_container(kind, &hooks, &st, &target)
    }
}

/// Waits until the container's process has made its root and waits for the go (it names itself
/// child::READY_COMM then), or fails when it ended first (its setup failed).
fn wait_ready(pid: i32, child: Option<&OwnedFd>) -> Result<()> {
    let comm = format!("/proc/{pid}/comm");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim_end() == crate::child::READY_COMM) {
            return Ok(());
        }
        let died = child.is_some_and(|c| {
            let mut fds = [nix::poll::PollFd::new(c.as_fd(), nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0)
        });
        if died || Instant::now() >= deadline {
            return Err(Error::container("the container's process ended before its root was made".to_string()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

struct OciObserver<'a> {
    recorder: Recorder<'a>,
    notify: Option<OwnedFd>,
    fifo: PathBuf,
    /// The start FIFO's read end, kept open after the go was read until the state says running
    /// (or stopped): `start` polls its write end, woken (POLLERR) when this closes, instead of
    /// polling state.json. CLOEXEC, and opened after the clone: the container never has it.
    held: Option<std::fs::File>,
    status_unknown: bool,
}

impl Observer for OciObserver<'_> {
    fn created(&mut self, pid: i32, group: Option<&dyn Cgroup>) -> Result<()> {
        self.recorder.created(pid, group)?;
        // runtime-spec: a created container's process is in its cgroup (the suite reads
        // /proc/PID/cgroup then). It is already: `Created::settle` had it join its group (0
        // written to v1 `tasks` by itself, CLONE_INTO_CGROUP for cgroup2) before it answered.
        // Moving it again from here, as before, only cost the first write to a v1 cgroup.procs
        // an RCU grace period (cgroup_threadgroup_rwsem's write side: 5-20 ms on this host).
        // Opened before the front hears "created": from then on `start` finds a reader.
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.fifo)
            .map_err(|e| Error::io("cannot open", &self.fifo, e))?;
        // prestart and createRuntime: the namespaces exist, the process has not exec'd. A failure
        // fails `create` (the engine then kills the process and removes the group).
        let oci = read_oci(&self.recorder.container.dir);
        let st = super::hooks::state(self.recorder.container.id(), &oci, "created", pid);
        for kind in ["prestart", "createRuntime"] {
            super::hooks::run_all(kind, &super::hooks::of_kind(&oci["hooks"], kind), &st)?;
        }
        let child = crate::container::Process::of(pid).and_then(|p| p.pidfd());
        // createContainer: in the container, once its root is made (runtime-spec: after
        // pivot_root, the path resolved in its mount namespace). A failure fails `create`.
        let in_container = self.recorder.container.state.config.announce_ready;
        if in_container {
            wait_ready(pid, child.as_ref())?;
        }
        self.in_container("createContainer", &oci, pid)?;
        if let Some(fd) = self.notify.take() {
            let _ = writeln!(std::fs::File::from(fd), "ok {pid}");
        }
        // From here the engine knows the container: whatever happens to it, it stays (stopped,
        // with the reason) until `delete`, instead of vanishing as a failed `run -d` does.
        self.recorder.container.state.detached = false;
        wait_for_start(&fifo, child.as_ref())?;
        let _ = std::fs::remove_file(&self.fifo);
        self.held = Some(fifo);
        // startContainer: in the container, before its command is executed. A failure fails
        // `start` (the container is stopped, with the hook's error as its reason).
        self.in_container("startContainer", &oci, pid)
    }

    fn started(&mut self) {
        self.recorder.started();
        // state.json says running: `start` wakes (see `held`).
        drop(self.held.take());
    }

    fn status_unknown(&mut self) {
        self.status_unknown = true;
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// Blocks until `start` writes its byte into the FIFO, or fails when the container's process
/// died first (`kill ID KILL`, `delete --force` of a created container).
///
/// A stop signal to the supervisor (SIGTERM, SIGINT, SIGHUP: a shim or systemd ending it) ends
/// the container too, as it does a running one: before, the engine's signalfd only read them once
/// started, so a created container ignored a plain TERM to its supervisor.
fn wait_for_start(fifo: &std::fs::File, child: Option<&OwnedFd>) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::{SigSet, Signal};
    let mut stops = SigSet::empty();
    [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP].into_iter().for_each(|s| stops.add(s));
    // Blocked already by the engine (its signalfd reads them); a second signalfd sees them too.
    let _ = stops.thread_block();
    let sfd = nix::sys::signalfd::SignalFd::with_flags(
        &stops,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| Error::sys("signalfd", e))?;
    loop {
        let mut fds = vec![PollFd::new(fifo.as_fd(), PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(c) = child {
            fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        if let Ok(Some(info)) = sfd.read_signal() {
            let name = Signal::try_from(info.ssi_signo as i32).map_or("a stop signal", |s| s.as_str());
            return Err(Error::container(format!("stopped by {name} before start")));
        }
        let died = fds.get(2).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let ready = fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
        if ready {
            let mut b = [0u8; 1];
            if let Ok(1) = nix::unistd::read(fifo.as_raw_fd(), &mut b) {
                return Ok(());
            }
            // A writer that went without a byte: POLLHUP until the next one; wait a little.
            std::thread::sleep(Duration::from_millis(10));
        }
        if died {
            return Err(Error::container("the container's process ended before start"));
        }
    }
}

/// `start`: the go for a created container; returns once its command was executed.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let mut c = find(root, id)?;
    if c.state.status != Status::Created {
        return Err(Error::container(format!("cannot start container {id}: it is {}, not created", c.state.status)));
    }
    let oci = read_oci(&c.dir);
    if oci["noProcess"] == true {
        // runtime-spec: `start` without `process` is an error; the container is stopped (its
        // placeholder never runs) so that `delete` finds it stopped.
        let _ = kill(root, id, libc::SIGKILL, true);
        control::wait_stopped(&mut c, Some(Instant::now() + Duration::from_secs(5)));
        return Err(Error::container(format!("cannot start container {id}: its config.json has no process")));
    }
    let fifo = c.dir.join(START_FIFO);
    // Without a reader (no supervisor waiting) this fails at once with ENXIO: never blocks.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|_| Error::container(format!("cannot start container {id}: it is not waiting to start")))?;
    f.write_all(b"s").map_err(|e| Error::io("cannot write", &fifo, e))?;
    // 10 s for the supervisor to record running, plus what the startContainer hooks, which run
    // before the command, may take by their timeouts; one without a timeout may take any time
    // (the supervisor's death still wakes us). Before, a fixed 10 s let `start` report success
    // while a longer hook still ran, the container still created.
    let hooks = super::hooks::of_kind(&oci["hooks"], "startContainer");
    let hook_time = hooks.iter().try_fold(Duration::ZERO, |sum, h| {
        h.timeout().map(|t| sum.saturating_add(Duration::from_secs(t.max(0) as u64)))
    });
    const FOREVER: Duration = Duration::from_secs(u32::MAX as u64);
    let wait = hook_time.map_or(FOREVER, |t| t.saturating_add(Duration::from_secs(10))).min(FOREVER);
    let deadline = Instant::now() + wait;
    // Woken when the supervisor closes the FIFO's read end, which it holds until state.json says
    // running or stopped, or when it dies (its pidfd; its death closes the FIFO as well). Before,
    // this polled state.json every 2 ms: ~4 of the 5 ms `start` took.
    let sup = c.state.supervisor.pidfd();
    let mut woken = false;
    while Instant::now() < deadline {
        if !woken {
            woken = wait_readers_gone(&f, sup.as_ref(), deadline);
        } else {
            // A reader that stays (not ours: none is known): the old poll, as a fallback.
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = c.reload();
        if c.state.status != Status::Created || !c.supervisor_alive() {
            break;
        }
    }
    drop(f);
    c.check();
    match (c.state.status, &c.state.reason) {
        (Status::Stopped, Some(r)) if c.state.started_at.is_none() => Err(Error::container(r.clone())),
        (Status::Created, _) => Err(Error::container(format!(
            "container {id} was told to start but is still created after {} s",
            wait.as_secs()
        ))),
        _ => {
            // poststart: the process was started (it may have ended already: the status is the
            // hook's point's, running). A failure is a warning (runtime-spec).
            let pid = c.state.process.map_or(0, |p| p.pid);
            let hooks = super::hooks::of_kind(&oci["hooks"], "poststart");
            super::hooks::run_warn("poststart", &hooks, &super::hooks::state(id, &oci, "running", pid));
            Ok(())
        }
    }
}

/// Waits until the FIFO written through `f` has no reader left (POLLERR on a pipe's write end)
/// or the supervisor (`sup`, its pidfd) is gone, or `deadline`. Returns whether it was woken.
fn wait_readers_gone(f: &std::fs::File, sup: Option<&OwnedFd>, deadline: Instant) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        // No events asked: POLLERR and POLLHUP are always reported (POLLOUT would be at once).
        let mut fds = vec![PollFd::new(f.as_fd(), PollFlags::empty())];
        if let Some(s) = sup {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 10_000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(n) if n > 0 => return true,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}

fn read_oci(dir: &Path) -> serde_json::Value {
    std::fs::read(dir.join(OCI_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// The runtime-spec status of a container.
pub fn oci_status(c: &Container) -> &'static str {
    match c.state.status {
        Status::Created => "created",
        Status::Running if !c.process_alive() => "stopped",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Stopped => "stopped",
    }
}

/// `state`: the runtime-spec State of a container.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let c = find(root, id)?;
    Ok(state_of(&c))
}

pub fn state_of(c: &Container) -> serde_json::Value {
    let oci: serde_json::Value =
        std::fs::read(c.dir.join(OCI_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let status = oci_status(c);
    let mut v = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": c.id(),
        "status": status,
        "bundle": oci["bundle"],
        "annotations": oci["annotations"].as_object().cloned().unwrap_or_default(),
    });
    if status != "stopped" {
        if let Some(p) = c.state.process {
            v["pid"] = p.pid.into();
        }
    } else {
        v["pid"] = 0.into();
    }
    v
}

/// `kill`: `sig` to the container's process (to everything in its group with `all`).
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let c = find(root, id)?;
    let live = matches!(c.state.status, Status::Created | Status::Running | Status::Paused);
    let Some(p) = c.state.process.filter(|p| live && p.is_alive()) else {
        return Err(Error::container(format!("container {id} is not running: container not running")));
    };
    // A created container's process is still sandbox's setup code, waiting for the go: as PID 1
    // of its pid namespace it gets no signal it has no handler for, so a TERM from the engine was
    // dropped and the container stayed created. runc's init (Go) dies of any signal whose default
    // is to end a process: so does ours, with SIGKILL (nothing of the command ran to clean up).
    let sig = if c.state.status == Status::Created && ends_a_process(sig) { libc::SIGKILL } else { sig };
    if all && sig == libc::SIGKILL {
        // Everything in the group is killed, the init with it: whoever adopted the init (a
        // subreaper, or PID 1) may reap it before the signal below, which then finds no process
        // (the legacy VM lane saw "container not running" here). The kill was done all the same.
        c.kill_group();
        let _ = p.signal(sig);
        return Ok(());
    }
    if !p.signal(sig) {
        return Err(Error::container(format!("container {id} is not running: container not running")));
    }
    Ok(())
}

/// Whether `sig`'s default action ends a process (all but the ignored and the stopping ones).
fn ends_a_process(sig: i32) -> bool {
    ![
        libc::SIGCHLD,
        libc::SIGCONT,
        libc::SIGURG,
        libc::SIGWINCH,
        libc::SIGSTOP,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ]
    .contains(&sig)
}

/// `delete`: a stopped container goes with its group and state; a created, running or paused
/// one only with `force` (killed first).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let mut c = find(root, id)?;
    let status = oci_status(&c);
    // runtime-spec: deleting a container that is not stopped is an error (created included).
    if matches!(status, "created" | "running" | "paused") && !force {
        return Err(Error::container(format!("cannot delete container {id} that is not stopped: {status}")));
    }
    let oci = read_oci(&c.dir);
    control::remove(&mut c, true)?;
    let parents: Vec<PathBuf> = serde_json::from_value(oci["cgroupParents"].clone()).unwrap_or_default();
    super::cgroups_path::remove_parents(&parents);
    // poststop: after the container is gone; a failure is a warning (runtime-spec).
    let hooks = super::hooks::of_kind(&oci["hooks"], "poststop");
    super::hooks::run_warn("poststop", &hooks, &super::hooks::state(id, &oci, "stopped", 0));
    Ok(())
}

/// `list`: every container of the root.
pub fn list(root: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else { return out };
    let mut ids: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && root.join(n).join("state.json").is_file())
        .collect();
    ids.sort();
    for id in ids {
        let Ok(c) = find(root, &id) else { continue };
        let mut v = state_of(&c);
        v["created"] = humantime::format_rfc3339(c.state.created_at).to_string().into();
        out.push(v);
    }
    out
}

/// `run`'s wait: the container's process is our child (cloned as the `create` process's, which
/// this is: see `sys::clone_sibling`), so we reap it and have its status; then until the
/// supervisor has recorded the end.
pub fn wait(root: &Path, id: &str) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    let mut c = find(root, id)?;
    let own = c.state.process.map(|p| loop {
        match waitpid(nix::unistd::Pid::from_raw(p.pid), None) {
            Ok(WaitStatus::Exited(_, code)) => break Some(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => break Some(128 + sig as i32),
            Err(nix::errno::Errno::EINTR) => {}
            _ => break None,
        }
    });
    control::wait_stopped(&mut c, None);
    Ok(own.flatten().or(c.state.exit_code).unwrap_or(255))
}
