//! A run of an image: its directory under ROOT/containers (upper, work, merged, stack), the image
//! config applied to the run (Env, Entrypoint/Cmd, WorkingDir, User), and its end: removed after
//! the run, or kept with `--name` for a later run or `commit`.
//!
//! ```text
//! ROOT/containers/NAME/      kept (`run --name NAME`)
//! ROOT/containers/.ID/       one run's, emptied into a spare when it ends (or removed by prune,
//!                            if sandbox was killed)
//! ROOT/containers/.spare-X/  an empty skeleton the next unnamed run renames to its own (at most
//!                            4; prune removes them)
//!     container.json         image name, manifest digest, layer diff_ids
//!     lock                   flock held for the whole run: "in use"
//!     upper/ work/ merged/ stack/
//! ```

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use super::store::{remove_all, Image, Store};
use crate::config::Layers;
use crate::error::{Error, Result};

/// What ROOT/containers/*/container.json says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// The image's name when the container was made.
    pub image: String,
    pub manifest: String,
    /// The image's layers, bottom first.
    pub layers: Vec<String>,
}

/// A container held for a run (its lock taken). Dropped: removed unless kept.
pub struct Container {
    pub name: String,
    pub dir: PathBuf,
    pub kept: bool,
    pub meta: Meta,
    lock: Option<Flock<File>>,
}

/// The default PATH for images whose Env has none (docker's).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Container names: docker's rule. A leading `.` is reserved for unnamed runs.
pub fn check_name(n: &str) -> Result<()> {
    let b = n.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("--name", n, "a letter or digit, then letters, digits, '_', '.' or '-' (at most 128)"))
    }
}

fn lock(dir: &Path, wait: bool) -> Result<Option<Flock<File>>> {
    let p = dir.join("lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| Error::io("cannot open", &p, e))?;
    if wait {
        return Flock::lock(f, FlockArg::LockExclusive)
            .map(Some)
            .map_err(|(_, e)| Error::sys(format!("flock {}", p.display()), e));
    }
    // A busy lock is a run's only if it stays busy: `images`, `rmi` and `prune` probe it (see
    // `in_use`) by taking it for a moment, and a commit or rm that met such a probe was refused
    // as "in use by a run" (1 in 360 commands of the store's concurrency test).
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(250);
    let mut f = f;
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(Some(l)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if std::time::Instant::now() >= deadline => return Ok(None),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) => {
                f = back;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err((_, e)) => return Err(Error::sys(format!("flock {}", p.display()), e)),
        }
    }
}

/// Whether a run (or a commit, or an rm) holds the container's lock. Never creates the lock
/// file: `rm` runs without the store lock, and a lock file made again inside a directory it is
/// removing made its rmdir fail ("Directory not empty"; seen with rm beside prune, issue 12).
fn in_use(dir: &Path) -> bool {
    let Ok(f) = File::open(dir.join("lock")) else { return false };
    matches!(Flock::lock(f, FlockArg::LockExclusiveNonblock), Err((_, nix::errno::Errno::EWOULDBLOCK)))
}

fn read_meta(dir: &Path) -> Result<Meta> {
    let p = dir.join("container.json");
    let b = fs::read(&p).map_err(|e| Error::io("cannot read", &p, e))?;
    serde_json::from_slice(&b).map_err(|e| Error::image(format!("{}: {e}", p.display())))
}

impl Container {
    /// Makes (or, for a kept container of the same image, reopens) the container of a run of
    /// `image`: `name` keeps it, else it is `.ID` and goes when the run ends.
    pub fn create(store: &Store, image: &Image, name: Option<&str>, id: &str) -> Result<Container> {
        if let Some(n) = name {
            check_name(n)?;
        }
        let dir_name = name.map_or_else(|| format!(".{id}"), str::to_string);
        let dir = store.root().join("containers").join(&dir_name);
        let meta =
            Meta { image: image.name.clone(), manifest: image.manifest_digest.clone(), layers: image.diff_ids() };
        // Shared store lock while the container is being made: prune sees it whole or not at all.
        let _shared = store.lock_shared()?;
        // Under the lock, so that an rmi and a prune that ran since the image was found are
        // noticed here. All of it, not only the layers: another image may keep those, and a
        // container whose manifest is gone cannot be committed (seen in
        // interleaved_store_commands_never_lose_or_corrupt_an_image).
        if let Err(problem) = store.check(&image.name, &image.manifest_digest) {
            return Err(Error::image(format!("image {} is gone from the store (pruned?): {problem}", image.name)));
        }
        // An unnamed run first takes a spare skeleton that an earlier run left (see `recycle`).
        let spare = name.is_none() && claim_spare(&store.root().join("containers"), &dir);
        let fresh = match if spare { Ok(()) } else { fs::create_dir(&dir) } {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && name.is_some() => false,
            Err(e) => return Err(Error::io("cannot create the container directory", &dir, e)),
        };
        // Not kept until whole: a failure below removes what was made.
        let mut c = Container { name: dir_name, dir, kept: false, meta, lock: None };
        if !fresh {
            // Not ours to remove, whatever happens next.
            c.kept = true;
            c.lock = lock(&c.dir, false)?;
            if c.lock.is_none() {
                return Err(Error::image(format!("container '{}' is in use by another run", c.name)));
            }
            let old = read_meta(&c.dir)?;
            if old.manifest != c.meta.manifest {
                return Err(Error::image(format!(
                    "container '{}' exists with image {} ({}); run that image, or remove it with `sandbox rm {}`",
                    c.name, old.image, old.manifest, c.name
                )));
            }
            c.meta = old;
            return Ok(c);
        }
        // Blocking: a spare is renamed by a run that still holds its lock for a moment.
        c.lock = lock(&c.dir, true)?;
        // Who holds it, for `rmi`'s message about an unnamed run (best effort: only a message).
        if let Some(l) = &c.lock {
            let _ = l.set_len(0).and_then(|()| {
                std::os::unix::fs::FileExt::write_at(&**l, format!("{}\n", std::process::id()).as_bytes(), 0)
            });
        }
        for d in ["upper", "work", "merged", "stack"].iter().filter(|_| !spare) {
            let p = c.dir.join(d);
            fs::create_dir(&p).map_err(|e| Error::io("cannot create", &p, e))?;
        }
        let p = c.dir.join("container.json");
        fs::write(&p, serde_json::to_vec(&c.meta).expect("meta serializes"))
            .map_err(|e| Error::io("cannot write", &p, e))?;
        c.kept = name.is_some();
        Ok(c)
    }

    /// The overlay the run mounts at [`Container::merged`].
    pub fn layers(&self, store: &Store) -> Result<Layers> {
        Ok(Layers {
            lower: self.meta.layers.iter().map(|d| store.layer_dir(d)).collect::<Result<_>>()?,
            upper: self.dir.join("upper"),
            work: self.dir.join("work"),
            stack: self.dir.join("stack"),
        })
    }

    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Opens a kept container for `commit` or `rm`: it must exist and not be in use.
    pub fn open_kept(store: &Store, name: &str) -> Result<Container> {
        check_name(name)?;
        let dir = store.root().join("containers").join(name);
        if !dir.join("container.json").exists() {
            return Err(Error::image(format!(
                "no container '{name}' in {} (containers are kept with `run --image IMAGE --name {name}`)",
                store.root().display()
            )));
        }
        let lock = lock(&dir, false)?;
        if lock.is_none() {
            return Err(Error::image(format!("container '{name}' is in use by a run")));
        }
        Ok(Container { name: name.to_string(), meta: read_meta(&dir)?, dir, kept: true, lock })
    }

    /// Removes the container now (kept or not).
    pub fn remove(mut self) {
        self.kept = false;
    }

    /// `sandbox rm`: removes kept container `name`, refused while a run uses it. Unlike a drop,
    /// says what could not be removed.
    pub fn remove_kept(store: &Store, name: &str) -> Result<()> {
        let mut c = Container::open_kept(store, name)?;
        // Its lock stays held (the open file) until the directory is gone.
        fs::remove_dir_all(&c.dir).map_err(|e| Error::io("cannot remove the container directory", &c.dir, e))?;
        c.kept = true;
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.kept && !recycle(&self.dir) {
            remove_all(&self.dir);
        }
        drop(self.lock.take());
    }
}

/// Spare skeletons are `containers/.spare-RANDOM`: an unnamed run's directory, emptied.
const SPARE: &str = ".spare-";
/// At most this many are kept (about as many as runs that end at once).
const MAX_SPARES: usize = 4;

/// Takes a spare skeleton as `dst` (rename(2): two runs cannot take the same one).
fn claim_spare(containers: &Path, dst: &Path) -> bool {
    let Ok(rd) = fs::read_dir(containers) else { return false };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(SPARE))
        .any(|e| fs::rename(e.path(), dst).is_ok())
}

/// Empties an unnamed run's directory and keeps it as a spare for the next run, instead of
/// removing it. Each run would otherwise create and delete its seven directories and files, and
/// on ext4 without a journal every new inode scans past those deleted in the last minute
/// (`recently_deleted`): half of an image run's start-up cost in a loop of short runs. The upper
/// and work dirs are emptied whole. False when the directory should simply be removed.
fn recycle(dir: &Path) -> bool {
    let Some(containers) = dir.parent() else { return false };
    let spares = || {
        fs::read_dir(containers)
            .map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(SPARE)).count())
            .unwrap_or(MAX_SPARES)
    };
    if spares() >= MAX_SPARES {
        return false;
    }
    for sub in ["upper", "work", "stack"] {
        let Ok(rd) = fs::read_dir(dir.join(sub)) else { return false };
        for e in rd.flatten() {
            remove_all(&e.path());
        }
    }
    let empty = |p: &str| fs::read_dir(dir.join(p)).is_ok_and(|mut rd| rd.next().is_none());
    // An empty container.json: a spare names no image (rmi and prune skip it).
    let spare = containers.join(format!("{SPARE}{}", crate::sys::random_id()));
    let kept = ["upper", "work", "merged", "stack"].iter().all(|p| empty(p))
        && fs::write(dir.join("container.json"), b"").is_ok()
        && fs::rename(dir, &spare).is_ok();
    // Runs that ended at once may all have counted fewer than the most: the surplus goes.
    if kept && spares() > MAX_SPARES {
        remove_all(&spare);
    }
    kept
}

/// How a user knows the container `name` (a [`list`] entry) in a message: a `run --name` name as
/// it is, an unnamed run by the pid of the sandbox running it (its `.ID` is never shown).
pub fn describe(store: &Store, name: &str, running: bool) -> String {
    if !name.starts_with('.') {
        return if running { format!("'{name}' (running)") } else { format!("'{name}'") };
    }
    if !running {
        return "the leftover of an unnamed run that was killed (`sandbox image prune` removes it)".to_string();
    }
    let pid = fs::read_to_string(store.root().join("containers").join(name).join("lock")).unwrap_or_default();
    match pid.trim().parse::<u32>() {
        Ok(p) => format!("an unnamed run (pid {p})"),
        Err(_) => "an unnamed run".to_string(),
    }
}

/// Every container directory: (name, meta, in use by a run). Unreadable ones have no meta.
pub fn list(store: &Store) -> Result<Vec<(String, Option<Meta>, bool)>> {
    let dir = store.root().join("containers");
    let mut out = vec![];
    for e in fs::read_dir(&dir).map_err(|e| Error::io("cannot list", &dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let in_use = in_use(&e.path());
        out.push((name, read_meta(&e.path()).ok(), in_use));
    }
    Ok(out)
}

/// The command, environment, working directory and user of a run of `config`, with the user's
/// overrides applied as docker applies them: a command replaces Cmd, `--entrypoint` replaces
/// Entrypoint (and drops Cmd), `--env` adds to or replaces Env, `--workdir` and `--user` win.
#[derive(Debug)]
pub struct Settings {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
}

pub fn settings(
    config: &ImageConfiguration,
    command: &[String],
    entrypoint: Option<&str>,
    env: &[String],
    hostname: &str,
) -> Result<Settings> {
    let c = config.config().clone().unwrap_or_default();
    let ep: Vec<String> = match entrypoint {
        Some("") => vec![],
        Some(e) => vec![e.to_string()],
        None => c.entrypoint().clone().unwrap_or_default(),
    };
    let args = if !command.is_empty() {
        command.to_vec()
    } else if entrypoint.is_some() {
        vec![]
    } else {
        c.cmd().clone().unwrap_or_default()
    };
    let full: Vec<String> = ep.into_iter().chain(args).collect();
    if full.is_empty() {
        return Err(Error::invalid("command", "", "a command: the image has neither Entrypoint nor Cmd"));
    }
    // The image's own values are checked here, so that an error blames the image, not a flag.
    let bad = |what: &str, v: &str, expected: &str| Error::image(format!("the image's {what} '{v}' is not {expected}"));
    let mut vars: Vec<String> = c.env().clone().unwrap_or_default();
    if let Some(v) = vars.iter().find(|v| !v.contains('=') || v.starts_with('=') || v.contains('\0')) {
        return Err(bad("Env entry", v, "NAME=VALUE"));
    }
    if !vars.iter().any(|v| v.starts_with("PATH=")) {
        vars.insert(0, DEFAULT_PATH.to_string());
    }
    vars.push(format!("HOSTNAME={hostname}"));
    override_env(&mut vars, env);
    let cwd = c.working_dir().as_ref().filter(|w| !w.is_empty()).map(PathBuf::from);
    if let Some(w) = cwd.as_ref().filter(|w| !w.is_absolute()) {
        return Err(bad("WorkingDir", &w.display().to_string(), "an absolute path"));
    }
    let user = c.user().as_ref().filter(|u| !u.is_empty()).cloned();
    if let Some(u) = &user {
        crate::user::Spec::parse(u).map_err(|_| bad("User", u, "USER[:GROUP] with ids up to 2147483647"))?;
    }
    Ok(Settings { command: full, env: vars, cwd, user })
}

/// `NAME=VALUE` overrides, as `--env` applies them: each replaces the variable of that name.
pub fn override_env(vars: &mut Vec<String>, overrides: &[String]) {
    for kv in overrides {
        let key = kv.split('=').next().unwrap_or_default();
        vars.retain(|v| v.split('=').next() != Some(key));
        vars.push(kv.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> ImageConfiguration {
        let body = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{json}}}"#
        );
        ImageConfiguration::from_reader(body.as_bytes()).unwrap()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entrypoint_cmd_and_overrides_follow_docker() {
        let c = config(
            r#"{"Entrypoint":["/bin/tini","--"],"Cmd":["sh"],"Env":["A=1","PATH=/bin"],"WorkingDir":"/w","User":"fred"}"#,
        );
        let r = settings(&c, &[], None, &[], "h").unwrap();
        assert_eq!(r.command, s(&["/bin/tini", "--", "sh"]));
        assert_eq!(r.env, s(&["A=1", "PATH=/bin", "HOSTNAME=h"]));
        assert_eq!((r.cwd, r.user), (Some(PathBuf::from("/w")), Some("fred".to_string())));
        let r = settings(&c, &s(&["ls", "-l"]), None, &s(&["A=2", "B=3"]), "h").unwrap();
        assert_eq!(r.command, s(&["/bin/tini", "--", "ls", "-l"]), "a command replaces Cmd only");
        assert_eq!(r.env, s(&["PATH=/bin", "HOSTNAME=h", "A=2", "B=3"]));
        let r = settings(&c, &[], Some("/bin/echo"), &[], "h").unwrap();
        assert_eq!(r.command, s(&["/bin/echo"]), "--entrypoint drops the image's Cmd");
        let r = settings(&c, &s(&["x"]), Some(""), &[], "h").unwrap();
        assert_eq!(r.command, s(&["x"]), "an empty --entrypoint clears it");
        for (json, want) in [
            (r#"{"Cmd":["x"],"Env":["NOEQUALS"]}"#, "the image's Env entry 'NOEQUALS' is not NAME=VALUE"),
            (r#"{"Cmd":["x"],"WorkingDir":"rel"}"#, "the image's WorkingDir 'rel' is not an absolute path"),
            (r#"{"Cmd":["x"],"User":"4294967295"}"#, "the image's User '4294967295'"),
        ] {
            let e = settings(&config(json), &[], None, &[], "h").unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn defaults_and_missing_commands() {
        let c = config(r#"{}"#);
        let e = settings(&c, &[], None, &[], "h").unwrap_err().to_string();
        assert!(e.contains("neither Entrypoint nor Cmd"), "{e}");
        let r = settings(&c, &s(&["true"]), None, &[], "h").unwrap();
        assert_eq!(r.env[0], DEFAULT_PATH);
        assert_eq!((r.cwd, r.user), (None, None));
        assert!(check_name("work").is_ok() && check_name("a.b-c_1").is_ok());
        for bad in ["", ".hidden", "-x", "a/b", "a b"] {
            assert!(check_name(bad).unwrap_err().to_string().contains(&format!("'{bad}'")));
        }
    }
}
