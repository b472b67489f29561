//! Stopping cleanly on SIGINT, SIGTERM and SIGHUP in the commands that write files (`pull`,
//! `image import`, `image export`, `commit`, `push`, `save`, `load`): one line on stderr, exit 128+N
//! (130, 143, 129), and no staging file left behind.
//!
//! How: main blocks the three signals before any thread starts and calls [`watch`], whose thread
//! takes them with sigwait(2) (a disposition of SIG_IGN, as `nohup` sets, still wins: an ignored
//! signal is never pending). The thread sets a flag that the copy loops poll through [`check`] /
//! [`check_io`] (the hashing readers and writers of the image store call it on every buffer), so
//! the work unwinds through its own error path and its Drop guards remove what it staged; main
//! then prints the line ([`finish`]). A thread can be stuck where no loop polls: a read from a
//! registry that stopped sending, a wait for the store lock, a write to a full pipe. So after
//! [`GRACE`] the watcher stops the process itself: it removes every path registered with
//! [`remove_on_interrupt`] (the process's staging directory, an export's partial output) and
//! exits. Renames that make work visible run through [`commit`]: one in flight completes before
//! that cleanup starts, and none starts after the flag is set, so a half-removed staging
//! directory can never be renamed into the store.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::error::{Error, Result};

/// How long the work has to unwind itself before the watcher removes its files and exits.
pub const GRACE: Duration = Duration::from_millis(400);

/// The signal received (0: none yet).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Set by whoever ends the process first: main through [`finish`], or the watcher.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Read-held by a [`commit`] in flight, write-held by the watcher's cleanup.
static COMMIT: RwLock<()> = RwLock::new(());
/// What to remove if the process is stopped: (id, path).
static CLEANUP: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// What is being done, for the message: `pull of docker.io/library/alpine:3.20`.
static TASK: Mutex<String> = Mutex::new(String::new());

/// The signals handled here.
pub fn signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        s.add(sig);
    }
    s
}

/// Starts the watcher thread. The caller has [`signals`] blocked, and so does every thread
/// started after it (they inherit the mask); `task` says what is being done.
pub fn watch(task: &str) {
    set_task(task);
    let spawned = std::thread::Builder::new().name("interrupt".into()).spawn(|| {
        let Ok(sig) = signals().wait() else { return };
        SIGNAL.store(sig as i32, Ordering::SeqCst);
        std::thread::sleep(GRACE);
        stop(sig)
    });
    if let Err(e) = spawned {
        // Without the watcher the signals must end the process as they always did.
        eprintln!("sandbox: warning: cannot watch for interrupts ({e}); Ctrl-C will leave staging files");
        let _ = signals().thread_unblock();
    }
}

/// Names the work for the message (`pull of NAME`, `export of NAME to OUT`).
pub fn set_task(task: &str) {
    *TASK.lock().unwrap_or_else(|e| e.into_inner()) = task.to_string();
}

/// The signal that asked us to stop, if one did.
pub fn requested() -> Option<Signal> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// `Err(Error::Interrupted)` once a stop was asked for.
pub fn check() -> Result<()> {
    match requested() {
        Some(_) => Err(Error::Interrupted),
        None => Ok(()),
    }
}

/// [`check`] for `Read`/`Write` implementations. Not `ErrorKind::Interrupted`: std's copy
/// loops retry that one.
pub fn check_io() -> io::Result<()> {
    match requested() {
        Some(_) => Err(io::Error::other(Error::Interrupted)),
        None => Ok(()),
    }
}

/// Runs `f`, which makes work visible (a rename into the store or onto an export's target),
/// unless a stop was asked for first. The watcher's cleanup waits for one that is running.
pub fn commit<T>(f: impl FnOnce() -> T) -> Result<T> {
    let _held = COMMIT.read().unwrap_or_else(|e| e.into_inner());
    check()?;
    Ok(f())
}

/// A path removed if the process is stopped while this guard lives (dropping it forgets the
/// path; removing it on the ordinary error path stays the owner's job).
#[must_use]
pub struct Cleanup(u64);

pub fn remove_on_interrupt(p: &Path) -> Cleanup {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).push((id, p.to_path_buf()));
    Cleanup(id)
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.0);
    }
}

/// The one line an interrupted command ends with.
pub fn message(sig: Signal) -> String {
    let task = TASK.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let task = if task.is_empty() { "the command".to_string() } else { task };
    format!("interrupted by {sig}: {task} stopped; its partial files were removed")
}

/// 128 + the signal's number, as a shell reports a death by that signal.
pub fn exit_code(sig: Signal) -> i32 {
    128 + sig as i32
}

/// Called by main once the command has returned, before it exits: the watcher then stands down.
/// Removes what is still registered and returns the signal if one asked us to stop.
pub fn finish() -> Option<Signal> {
    if EXITING.swap(true, Ordering::SeqCst) {
        // The watcher is removing the files and will exit.
        loop {
            std::thread::park();
        }
    }
    let sig = requested();
    if sig.is_some() {
        remove_registered();
    }
    sig
}

fn remove_registered() {
    let paths: Vec<PathBuf> =
        CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, p)| p.clone()).collect();
    for p in paths {
        // A thread still writing there may add an entry under our feet: try again.
        for _ in 0..5 {
            remove_all(&p);
            if std::fs::symlink_metadata(&p).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The watcher's way out: the work did not end within [`GRACE`].
fn stop(sig: Signal) {
    if EXITING.swap(true, Ordering::SeqCst) {
        return; // main is on its way out
    }
    // Waits for a rename in flight; any later one sees the flag and is not made.
    let _held = COMMIT.write().unwrap_or_else(|e| e.into_inner());
    remove_registered();
    // Written to fd 2 directly: a worker may hold std's stderr lock (a progress line) forever.
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: fd 2 stays open for the life of the process; ManuallyDrop never closes it.
    let mut err = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(2) });
    let _ = err.write_all(format!("sandbox: {}\n", message(sig)).as_bytes());
    // SAFETY: _exit(2) ends the process at once; nothing after it runs. exit(3) is not used: it
    // would run atexit handlers while other threads are still at work.
    unsafe { libc::_exit(exit_code(sig)) }
}

/// Removes a file or a directory tree, ignoring what is already gone.
fn remove_all(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_registration() {
        assert_eq!(exit_code(Signal::SIGINT), 130);
        assert_eq!(exit_code(Signal::SIGTERM), 143);
        assert_eq!(exit_code(Signal::SIGHUP), 129);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        let g = remove_on_interrupt(&p);
        assert!(CLEANUP.lock().unwrap().iter().any(|(_, q)| *q == p));
        drop(g);
        assert!(!CLEANUP.lock().unwrap().iter().any(|(_, q)| *q == p));
        assert!(check().is_ok() && check_io().is_ok() && commit(|| 1).unwrap() == 1);
    }
}
