//! The store's staging area, ROOT/tmp: one directory per process, `PID-START-N` (START: the
//! process's start time in clock ticks since boot, from /proc/PID/stat, so that a reused pid is
//! not taken for the owner), flocked by its owner for as long as it lives.
//!
//! The kernel drops the flock when its owner dies, however it dies: a directory whose lock can be
//! taken was left by a process that was SIGKILLed (or lost power) and is removed by the next
//! process that stages anything ([`sweep`]: pull, import, commit, rmi, tag) and by prune, which
//! counts it in what it freed. A directory is created before it is locked; in that instant its
//! lock is free, so a sweeper first spares a directory whose named owner is alive (and the owner
//! waits for the lock in case a sweeper holds it while it looks).
//! Entries from older versions (`PID-RANDOM` files and directories directly in ROOT/tmp) are
//! removed once their pid is gone, as before.

use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use super::store::remove_all;
use crate::error::{Error, Result};
use crate::interrupt;

/// This process's staging directory, removed (then unlocked) on drop; also removed by the
/// interrupt watcher if the process is stopped.
pub struct Owned {
    dir: PathBuf,
    _lock: Flock<File>,
    _cleanup: interrupt::Cleanup,
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned").field("dir", &self.dir).finish()
    }
}

impl Owned {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        remove_all(&self.dir);
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Creates and locks a staging directory for this process under `tmp`.
pub fn create(tmp: &Path) -> Result<Owned> {
    let pid = std::process::id();
    let start = start_time(pid).unwrap_or(0);
    let dir = tmp.join(format!("{pid}-{start}-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
    fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let cleanup = interrupt::remove_on_interrupt(&dir);
    let lock = File::open(&dir)
        .map_err(|e| Error::io("cannot open", &dir, e))
        .and_then(|f| {
            // Blocking: a sweeper may hold it for the instant it takes to see that we are alive.
            Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::sys(format!("flock {}", dir.display()), e))
        })
        .inspect_err(|_| remove_all(&dir))?;
    Ok(Owned { dir, _lock: lock, _cleanup: cleanup })
}

/// Removes the staging entries under `tmp` whose owner is gone; returns the bytes freed.
pub fn sweep(tmp: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(tmp) else { return 0 };
    let mut freed = 0;
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if owner_alive(&name) {
            continue;
        }
        // Held while the entry is removed: two sweepers never remove the same tree at once. A
        // held lock whose owner we cannot see (another pid namespace sharing the store) is alive.
        let mut _held = None;
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let Ok(f) = File::open(&path) else { continue };
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => _held = Some(l),
                Err(_) => continue, // its owner is alive
            }
        }
        freed += du(&path);
        remove_all(&path);
    }
    freed
}

/// Whether the process a staging entry's name (`PID-START-N`, or `PID-RANDOM` from older
/// versions) names is still running.
fn owner_alive(name: &str) -> bool {
    let mut parts = name.split('-');
    let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else { return false };
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return false;
    }
    match (parts.next(), parts.next()) {
        // This layout: alive if the pid still belongs to the process that made it.
        (Some(start), Some(_)) => start.parse::<u64>().ok() == start_time(pid),
        // An older version's entry: its pid is all there is to go by.
        _ => true,
    }
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Bytes in a file or tree (not following symlinks).
pub fn du(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else { return 0 };
    if !m.is_dir() {
        return m.len();
    }
    fs::read_dir(p).map(|rd| rd.flatten().map(|e| du(&e.path())).sum()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_directories_go_and_live_ones_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let ours = create(tmp.path()).unwrap();
        // A dead owner's directory (pid 0 never names a process here) and an older version's file.
        let dead = tmp.path().join("999999999-1-0");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("blob"), vec![0u8; 1000]).unwrap();
        fs::write(tmp.path().join("999999999-abcdef012345"), b"x").unwrap();
        // Our pid but another start time: a reused pid, so stale (and unlocked).
        let reused = tmp.path().join(format!("{}-1-0", std::process::id()));
        fs::create_dir(&reused).unwrap();
        assert!(sweep(tmp.path()) >= 1001);
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(left, vec![ours.dir().to_path_buf()]);
        let dir = ours.dir().to_path_buf();
        drop(ours);
        assert!(!dir.exists());
        assert!(start_time(std::process::id()).is_some());
    }
}
