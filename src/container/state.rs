//! The state root: what every container is, written where any `sandbox` command can read it.
//!
//! ```text
//! ROOT/                    --state-dir, $SANDBOX_STATE_DIR, /run/sandbox (root) or
//!                          $XDG_RUNTIME_DIR/sandbox; mode 0700
//!     lock                 flock while a container is created or removed (names stay unique)
//!     names/NAME -> ID48   a symlink per name, made under that lock, to the id's first 48 hex
//!                          digits (see [`NAME_LINK_LEN`]; older versions wrote all 64)
//!     .spare/XXXXXXXXXXXX  removed containers' directories, emptied, for the next ones (`spare`)
//!     ID/                  64 hex digits (`ID[..12]` is the short id: the run's id, hostname, cgroup)
//!         state.json       [`State`], replaced atomically (exchanged with .state.json.next)
//!         .state.json.next the update's new text before the exchange, the old one after it
//!         lock             flock held by the supervisor for its whole life: free while the status
//!                          is not `stopped` means the supervisor was lost
//!         update.lock      flock of every writer of state.json (read, change, write)
//!         log.jsonl(.1)    the command's output (`run -d`), written by the supervisor only
//!         report.json      the final report, once stopped
//! ```
//!
//! Readers never lock: state.json is always a whole file. Every command that reads a container
//! through [`Root::find`] or [`Root::list`] first settles a lost supervisor ([`Container::check`]).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::times::{rfc3339, rfc3339_opt};
use crate::config::Config;
use crate::error::{Error, Result};

/// The environment variable naming the state root (the `--state-dir` flag wins over it).
pub const ENV: &str = "SANDBOX_STATE_DIR";
/// What [`Container::check`] records as the reason when the supervisor is gone.
pub const SUPERVISOR_LOST: &str = "supervisor lost";

/// A container's status, as docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Registered, the command not yet executed.
    Created,
    Running,
    /// Frozen (cgroup freezer).
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use super::process::{parse_stat, Process};

/// A container's cgroup, as [`crate::cgroup::Cgroup`] gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupState {
    /// 1 (legacy and hybrid hosts) or 2.
    pub version: u8,
    /// The group's directory (on v1 the memory controller's).
    pub path: PathBuf,
    /// Every directory of the group by controller ("" on v2).
    pub paths: BTreeMap<String, PathBuf>,
}

/// Where a detached container's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// ID/log.jsonl, one JSON object per chunk (docker's json-file).
    #[default]
    JsonFile,
    /// Nothing kept.
    None,
}

/// docker's json-file default cap, one rotation.
pub const DEFAULT_LOG_MAX_SIZE: u64 = 10 << 20;

/// Everything state.json says about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// 64 hex digits; [`State::short_id`] is the run's id (report, hostname, cgroup name).
    pub id: String,
    pub name: String,
    pub status: Status,
    /// `run -d`: the supervisor is a detached process, the output goes to the log.
    pub detached: bool,
    /// `--image`: the image's name as given.
    pub image: Option<String>,
    /// What the container runs with (limits, mounts, hardening, environment).
    pub config: Config,
    /// The command as the host sees it (PID 1 of the container), once cloned.
    pub process: Option<Process>,
    /// The process that owns the container: `run` itself, or `run -d`'s detached supervisor.
    pub supervisor: Process,
    /// The container's group, once made (`None` also for a rootless run without one).
    pub cgroup: Option<CgroupState>,
    pub log_driver: LogDriver,
    pub log_max_size: u64,
    /// `--rm`: the directory goes when the container stops.
    pub auto_remove: bool,
    /// The command has a pseudo-terminal (its master stays with the supervisor).
    pub tty: bool,
    #[serde(with = "rfc3339")]
    pub created_at: SystemTime,
    #[serde(with = "rfc3339_opt", default)]
    pub started_at: Option<SystemTime>,
    #[serde(with = "rfc3339_opt", default)]
    pub finished_at: Option<SystemTime>,
    /// What `sandbox run` would have exited with (the report's exit_code), once stopped.
    pub exit_code: Option<i32>,
    /// Why it stopped: the report's termination_reason (exit, signal, timeout, cpu-time, oom,
    /// stopped), [`SUPERVISOR_LOST`], or a setup error's message.
    pub reason: Option<String>,
    /// A `stop` asked before the command's pid was recorded (its grace in ms): the supervisor
    /// acts on it as it records the pid (see `control::request_stop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_request: Option<i32>,
}

impl State {
    /// A new container's state, status `created`, owned by this process.
    pub fn new(id: String, name: String, config: Config) -> State {
        State {
            id,
            name,
            status: Status::Created,
            detached: false,
            image: None,
            config,
            process: None,
            supervisor: Process::me(),
            cgroup: None,
            log_driver: LogDriver::JsonFile,
            log_max_size: DEFAULT_LOG_MAX_SIZE,
            auto_remove: false,
            tty: false,
            created_at: SystemTime::now(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            reason: None,
            stop_request: None,
        }
    }

    /// The first 12 hex digits, as docker shows ids.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// Running or paused (or created): not stopped.
    pub fn is_live(&self) -> bool {
        self.status != Status::Stopped
    }

    /// The group's directories (none without a group).
    pub fn cgroup_dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = self.cgroup.iter().flat_map(|c| c.paths.values().map(PathBuf::as_path)).collect();
        dirs.dedup();
        dirs
    }
}

/// A new container id: 64 hex digits from getrandom(2), as docker's.
pub fn new_id() -> String {
    let mut id: String = (0..6).map(|_| crate::sys::random_id()).collect();
    id.truncate(64);
    id
}

/// The state root to use: `flag` (`--state-dir`), else $SANDBOX_STATE_DIR, else /run/sandbox for
/// root and $XDG_RUNTIME_DIR/sandbox (or /run/user/UID/sandbox) for anyone else.
pub fn root_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(f) = flag {
        return f.to_path_buf();
    }
    if let Some(e) = std::env::var_os(ENV).filter(|e| !e.is_empty()) {
        return PathBuf::from(e);
    }
    if crate::sys::is_root() {
        return PathBuf::from("/run/sandbox");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|e| !e.is_empty()) {
        Some(x) => Path::new(&x).join("sandbox"),
        None => PathBuf::from(format!("/run/user/{}/sandbox", nix::unistd::geteuid())),
    }
}

/// The state root.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// The root at `dir`, created (mode 0700) if missing: what `run` uses.
    pub fn create(dir: &Path) -> Result<Root> {
        if !dir.is_dir() {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(|e| Error::io("cannot create the state root", parent, e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("cannot create the state root", dir, e)),
            }
        }
        match fs::DirBuilder::new().mode(0o700).create(dir.join("names")) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("cannot create", dir.join("names"), e)),
        }
        Ok(Root { dir: dir.to_path_buf() })
    }

    /// The root at `dir` as it is, never created: readers (ps, logs, …) see an empty root.
    pub fn open(dir: &Path) -> Root {
        Root { dir: dir.to_path_buf() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every container id (a directory with 64 hex digits for a name), unsorted.
    pub fn ids(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(&self.dir) else { return vec![] };
        rd.flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect()
    }

    /// Every container, oldest first, each [`Container::check`]ed. A directory that vanished or
    /// whose state cannot be read (one being created or removed this instant) is skipped.
    pub fn list(&self) -> Vec<Container> {
        let mut out: Vec<Container> = self
            .ids()
            .into_iter()
            .filter_map(|id| Container::load(&self.dir, &id).ok())
            .map(|mut c| {
                c.check();
                c
            })
            .filter(|c| c.dir.exists())
            .collect();
        out.sort_by(|a, b| a.state.created_at.cmp(&b.state.created_at).then(a.state.id.cmp(&b.state.id)));
        out
    }

    /// The container named `query`: a whole id, a name, or a unique prefix of an id (docker's
    /// order). Errors: `no such container: "x"`, `ambiguous container "x": it matches ID, ID`.
    pub fn find(&self, query: &str) -> Result<Container> {
        let mut c = self.find_unchecked(query)?;
        c.check();
        Ok(c)
    }

    fn find_unchecked(&self, query: &str) -> Result<Container> {
        let not_found = || Error::container(format!("no such container: {query:?}"));
        if query.is_empty() || query.contains('/') || query.starts_with('.') {
            return Err(not_found());
        }
        let ids = self.ids();
        if ids.iter().any(|i| i == query) {
            return Container::load(&self.dir, query).map_err(|_| not_found());
        }
        if let Ok(target) = fs::read_link(self.dir.join("names").join(query)) {
            if let Some(id) = ids.iter().find(|i| links_to(&target, i)) {
                return Container::load(&self.dir, id).map_err(|_| not_found());
            }
        }
        let q = query.to_ascii_lowercase();
        let mut hits: Vec<&String> = ids.iter().filter(|i| i.starts_with(&q)).collect();
        hits.sort();
        match hits.as_slice() {
            [] => Err(not_found()),
            [one] => Container::load(&self.dir, one).map_err(|_| not_found()),
            many => {
                let list: Vec<&str> = many.iter().map(|i| &i[..12]).collect();
                Err(Error::container(format!("ambiguous container {query:?}: it matches {}", list.join(", "))))
            }
        }
    }

    /// Registers a new container: reserves its name (refused with `name "x" is already in use by
    /// ID` while another container, stopped or not, has it), writes its directory and state and
    /// takes the supervisor lock, held by the returned [`Container`] (and by every process that
    /// inherits its fd: a forked supervisor). Nothing is left behind on error.
    /// An empty name is replaced by a generated one (`adjective_scientist`) not in use.
    pub fn register(&self, mut state: State) -> Result<Container> {
        if !state.name.is_empty() {
            crate::image::container::check_name(&state.name)?;
        }
        let _guard = self.lock()?;
        if state.name.is_empty() {
            state.name = (0..100)
                .map(super::names::generate)
                .find(|n| fs::symlink_metadata(self.dir.join("names").join(n)).is_err())
                .unwrap_or_else(|| state.short_id().to_string());
        }
        let link = self.dir.join("names").join(&state.name);
        let holder = fs::read_link(&link).map(|t| self.resolve_name_link(&t));
        match holder {
            Ok(Some(other)) if self.dir.join(&other).join("state.json").exists() => {
                return Err(Error::container(format!(
                    "name {:?} is already in use by {}: remove that container (`sandbox rm {}`) or choose another \
                     name",
                    state.name, other, state.name
                )));
            }
            // Left by a container removed halfway (a killed `rm`): free.
            Ok(_) => {
                let _ = fs::remove_file(&link);
            }
            Err(_) => {}
        }
        let tmp = self.dir.join(format!(".new-{}", state.id));
        let dir = self.dir.join(&state.id);
        let made = (|| -> Result<OwnedFd> {
            // A spare directory (a removed container's, its lock already taken) or a new one.
            let lock = match super::spare::take(&self.dir, &tmp) {
                Some(lock) => lock,
                None => {
                    fs::DirBuilder::new().mode(0o700).create(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
                    let lock = open_lock(&tmp.join("lock"), true)?;
                    if !crate::sys::flock(lock.as_raw_fd(), true, true).unwrap_or(false) {
                        return Err(Error::container(format!("cannot lock {}", tmp.join("lock").display())));
                    }
                    lock
                }
            };
            // Written in place: the directory is out of sight (.new-ID) until the rename below,
            // so no reader can see a partial file, and a run is one file creation cheaper.
            write_new_state(&tmp, &state)?;
            fs::rename(&tmp, &dir).map_err(|e| Error::io("cannot rename", &tmp, e))?;
            std::os::unix::fs::symlink(name_link(&state.id), &link)
                .map_err(|e| Error::io("cannot create", &link, e))?;
            Ok(lock)
        })();
        match made {
            Ok(lock) => Ok(Container { dir, state, root: self.dir.clone(), lock: Some(lock) }),
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Removes what a `run` or `rm` killed halfway left: ROOT/.new-ID and ROOT/.rm-ID
    /// directories (under the root's lock: none is in use then), names whose container is gone.
    pub fn remove_leftovers(&self) {
        let Ok(_guard) = self.lock() else { return };
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(".new-") || n.starts_with(".rm-") {
                    let _ = fs::remove_dir_all(e.path());
                }
                // Exit codes of `--rm` containers, kept a minute for a late `wait`.
                let old = e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
                if n.starts_with(".exit-") && old.is_some_and(|d| d > std::time::Duration::from_secs(60)) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.dir.join("names")) {
            let ids = self.ids();
            for e in rd.flatten() {
                let id = fs::read_link(e.path()).ok().and_then(|t| ids.iter().find(|i| links_to(&t, i)));
                let stale = id.map_or(true, |id| !self.dir.join(id).join("state.json").exists());
                if stale {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// The id a name link's target names, if that container exists.
    fn resolve_name_link(&self, target: &Path) -> Option<String> {
        self.ids().into_iter().find(|i| links_to(target, i))
    }

    /// The root's lock, held while a container is registered or removed.
    fn lock(&self) -> Result<OwnedFd> {
        let fd = open_lock(&self.dir.join("lock"), true)?;
        crate::sys::flock(fd.as_raw_fd(), true, false).map_err(|e| Error::sys("flock on the state root", e))?;
        Ok(fd)
    }
}

/// How many hex digits of the id a name link holds. A symlink whose target is shorter than 60
/// bytes lives in its inode (ext4's "fast" symlink); the whole id (64) took a data block, and with
/// `-o discard` the unlink at the end of every run waited for a synchronous discard of it
/// (`blkdev_issue_discard < ext4_free_blocks`): 1.1 ms of a foreground run on this host's ext4
/// `/run`, against 0.02 ms now. 48 hex digits (192 random bits) name one id as surely as 64.
pub const NAME_LINK_LEN: usize = 48;

/// The target of the name link of container `id`.
fn name_link(id: &str) -> &str {
    &id[..NAME_LINK_LEN.min(id.len())]
}

/// Whether a name link's `target` names container `id`: its first [`NAME_LINK_LEN`] digits, or
/// the whole id (links made by older versions).
fn links_to(target: &Path, id: &str) -> bool {
    let t = target.as_os_str().as_encoded_bytes();
    t.len() >= NAME_LINK_LEN.min(id.len()) && id.as_bytes().starts_with(t)
}

/// Opens a lock file read-only (flock needs no more), creating it if asked (mode 0644: in a state
/// root shared by several users, each can take the locks; the root itself is 0700 by default).
pub(super) fn open_lock(path: &Path, create: bool) -> Result<OwnedFd> {
    let flags = if create { libc::O_CREAT } else { 0 };
    OpenOptions::new()
        .read(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | flags)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::io("cannot open", path, e))
}

/// The text of state.json (written with one write).
fn state_json(state: &State) -> Result<Vec<u8>> {
    let mut body = serde_json::to_vec_pretty(state).map_err(|e| Error::container(format!("state.json: {e}")))?;
    body.push(b'\n');
    Ok(body)
}

/// The update's new state.json, written beside it and exchanged with it: the old one is then
/// this file, rewritten by the next update (under update.lock), not deleted and made again.
pub(super) const NEXT_STATE: &str = ".state.json.next";

/// Writes `body` into `path` from its start and cuts it there: created if missing (never through
/// a link). An existing file keeps its inode (see `spare`).
fn rewrite_file(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(body)?;
    f.set_len(body.len() as u64)
}

/// Writes the first state.json of a directory nobody sees yet (ROOT/.new-ID, perhaps a spare's).
fn write_new_state(dir: &Path, state: &State) -> Result<()> {
    let path = dir.join("state.json");
    rewrite_file(&path, &state_json(state)?).map_err(|e| Error::io("cannot write", path, e))
}

/// Writes ID/state.json atomically (the caller holds update.lock): [`NEXT_STATE`] rewritten, then
/// exchanged with state.json (RENAME_EXCHANGE). A reader sees the old file or the new one whole;
/// one that opened the old file just before and reads it only after the next update rewrote it
/// may see a torn text, which `read_state` reads again.
fn write_state(dir: &Path, state: &State) -> Result<()> {
    let body = state_json(state)?;
    let next = dir.join(NEXT_STATE);
    let path = dir.join("state.json");
    // No fsync: the exchange is what makes the update atomic for readers and against a crash of
    // any process. The state lives as long as the machine's boot (the default root is in /run, a
    // tmpfs): after a power loss there is no container to describe. An fsync per phase cost
    // ~0.7 ms of a foreground run's start-up on a disk-backed root.
    let res = rewrite_file(&next, &body).and_then(|_| {
        use nix::fcntl::{renameat2, RenameFlags};
        match renameat2(None, &next, None, &path, RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => Ok(()),
            // No exchange on this filesystem: renamed over it (the next update makes a new file).
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => fs::rename(&next, &path),
            Err(e) => Err(e.into()),
        }
    });
    res.map_err(|e| Error::io("cannot write", path, e))
}

/// One container of the state root, as last read.
#[derive(Debug)]
pub struct Container {
    /// ROOT/ID.
    pub dir: PathBuf,
    pub state: State,
    root: PathBuf,
    /// The supervisor lock, when this process holds it (it registered the container).
    lock: Option<OwnedFd>,
}

impl Container {
    /// Reads ROOT/ID/state.json.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let dir = root.join(id);
        let state = read_state(&dir)?;
        Ok(Container { dir, state, root: root.to_path_buf(), lock: None })
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// ID/log.jsonl (its one rotation: log.jsonl.1).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log.jsonl")
    }

    /// ID/report.json, written when the container stops.
    pub fn report_path(&self) -> PathBuf {
        self.dir.join("report.json")
    }

    /// The final report, once stopped (`None` before, or after a lost supervisor).
    pub fn report(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&fs::read_to_string(self.report_path()).ok()?).ok()
    }

    /// Reads state.json again.
    pub fn reload(&mut self) -> Result<()> {
        self.state = read_state(&self.dir)?;
        Ok(())
    }

    /// Changes the state under the writers' lock: reads the current file, applies `f`, writes it
    /// atomically, and keeps the result in `self.state`. Concurrent writers (the supervisor, stop,
    /// rm, gc, pause…) never lose each other's changes. Returns what `f` returned.
    pub fn update<T>(&mut self, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let lock = open_lock(&self.dir.join("update.lock"), true)?;
        crate::sys::flock(lock.as_raw_fd(), true, false).map_err(|e| Error::sys("flock update.lock", e))?;
        let mut state = read_state(&self.dir)?;
        let out = f(&mut state);
        write_state(&self.dir, &state)?;
        self.state = state;
        Ok(out)
    }

    /// Whether the supervisor still holds ID/lock (a free lock: it is gone, whatever its pid says).
    pub fn supervisor_alive(&self) -> bool {
        if self.lock.is_some() {
            return true;
        }
        let Ok(fd) = open_lock(&self.dir.join("lock"), false) else { return false };
        // The shared lock is refused while the supervisor holds its exclusive one.
        !crate::sys::flock(fd.as_raw_fd(), false, true).unwrap_or(false)
    }

    /// Settles a lost supervisor: a container not stopped whose supervisor lock is free is marked
    /// stopped with reason "supervisor lost", and what is left in its group (only its own group)
    /// is killed and the group removed; with `--rm`, and for a foreground run (removed at its end
    /// anyway), the container goes. Returns whether it did.
    pub fn check(&mut self) -> bool {
        if !self.state.is_live() || self.supervisor_alive() {
            return false;
        }
        // Its command died with the supervisor (PR_SET_PDEATHSIG: SIGKILL) unless it had ended
        // just before: its status went with its parent, and exit_code stays unknown. One still
        // running (the death signal not yet delivered) is SIGKILLed below: 128 + 9, as docker's.
        let killed = self.process_alive().then_some(128 + libc::SIGKILL);
        let lost = self.update(|s| {
            if s.status == Status::Stopped {
                return false;
            }
            s.status = Status::Stopped;
            s.exit_code = killed;
            s.reason = Some(SUPERVISOR_LOST.into());
            s.finished_at = Some(SystemTime::now());
            true
        });
        if !matches!(lost, Ok(true)) || self.supervisor_alive() {
            return false;
        }
        self.kill_group();
        if let Some(p) = self.state.process {
            p.signal(libc::SIGKILL);
        }
        let _ = crate::cgroup::remove_dirs(self.state.cgroup_dirs());
        // A foreground run is removed at its end anyway (as `run --rm`): so it is when lost.
        if self.state.auto_remove || !self.state.detached {
            let _ = self.remove_dir();
        }
        true
    }

    /// SIGKILLs everything in the container's group (cgroup.kill where the kernel has it).
    pub fn kill_group(&self) {
        crate::cgroup::kill_dirs(self.state.cgroup_dirs());
    }

    /// Whether the command still runs (the very process, not one that reused its pid).
    pub fn process_alive(&self) -> bool {
        self.state.process.is_some_and(|p| p.is_alive())
    }

    /// Removes the container's name and directory (logs and report with it). The caller makes
    /// sure it is stopped and its group gone.
    pub fn remove_dir(&self) -> Result<()> {
        let root = Root::open(&self.root);
        let _guard = root.lock()?;
        let link = self.root.join("names").join(&self.state.name);
        if fs::read_link(&link).is_ok_and(|t| links_to(&t, &self.state.id)) {
            let _ = fs::remove_file(&link);
        }
        // Out of sight first: a reader never sees a half-removed directory.
        let gone = self.root.join(format!(".rm-{}", self.state.id));
        match fs::rename(&self.dir, &gone) {
            Ok(()) if super::spare::keep(&self.root, &gone) => Ok(()),
            Ok(()) => fs::remove_dir_all(&gone).map_err(|e| Error::io("cannot remove", &gone, e)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("cannot remove", &self.dir, e)),
        }
    }

    /// ROOT/.exit-ID: the exit code of a `--rm` container, written just before its directory
    /// goes, for a `wait` that sees it gone (removed by `gc` after a minute).
    pub fn exit_record(&self) -> PathBuf {
        self.root.join(format!(".exit-{}", self.state.id))
    }

    /// The supervisor lock this process holds, to keep across a fork (the supervisor inherits
    /// it; the lock lives while any process has the fd open).
    pub fn lock_fd(&self) -> Option<&OwnedFd> {
        self.lock.as_ref()
    }

    /// Gives up this process's hold on the supervisor lock (after a fork: the supervisor keeps it).
    pub fn release_lock(&mut self) {
        self.lock = None;
    }
}

/// Reads DIR/state.json. A torn text (see `write_state`) is read again. In ROOT/ID, a state of
/// another id is a spare directory taken by a newer container since it was opened: this one is
/// gone (not found).
fn read_state(dir: &Path) -> Result<State> {
    let path = dir.join("state.json");
    // Any ROOT/ID (an OCI id too: its directory is reused as well), not ROOT/.new-ID.
    let id = dir.file_name().and_then(|n| n.to_str()).filter(|n| !n.starts_with('.'));
    let mut attempt = 0;
    loop {
        let text = fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        // Blanked as its directory became a spare: that container is gone.
        if id.is_some() && text.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(Error::io("cannot read", &path, ErrorKind::NotFound.into()));
        }
        match serde_json::from_slice::<State>(&text) {
            Ok(s) if id.is_some_and(|id| s.id != id) => {
                return Err(Error::io("cannot read", &path, ErrorKind::NotFound.into()));
            }
            Ok(s) => return Ok(s),
            Err(_) if attempt < 3 => attempt += 1,
            Err(e) => return Err(Error::container(format!("{}: {e}", path.display()))),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
