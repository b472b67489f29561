//! The store's flocks (ROOT/lock, ROOT/index.lock) and who holds them.
//!
//! Each holder records itself in `ROOT/<lock>.holders/PID-RANDOM` ("PID STARTTIME MODE ARGV") for
//! as long as it holds the lock, so that a process that has to wait can say whom it waits for
//! (issue 12: `rmi` and `image prune` waited silently for as long as a pull held the store and
//! looked hung). Shared holders are many at once: each has its own record, and a waiter names
//! them all. A record outlives a SIGKILLed holder; it is ignored once its pid is gone or has been
//! reused (the start time differs), and removed by the next exclusive holder, who by definition
//! is alone.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// How long a waiter stays silent before it names the holders.
const QUIET: Duration = Duration::from_secs(1);

/// A held flock; released (and its holder record removed) on drop.
pub struct Lock {
    flock: Option<Flock<File>>,
    record: Option<PathBuf>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // The record goes first: a waiter must never be told about a holder that has let go.
        if let Some(r) = self.record.take() {
            let _ = fs::remove_file(r);
        }
        self.flock.take();
    }
}

/// Takes the flock on `ROOT/file`, shared or exclusive. Blocks; after [`QUIET`] it says on
/// stderr that it waits for `what`, and for whom.
pub fn take(root: &Path, file: &str, exclusive: bool, what: &str) -> Result<Lock> {
    let p = root.join(file);
    let open = || {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| Error::io("cannot open", &p, e))
    };
    let (now, block) = if exclusive {
        (FlockArg::LockExclusiveNonblock, FlockArg::LockExclusive)
    } else {
        (FlockArg::LockSharedNonblock, FlockArg::LockShared)
    };
    let err = |e: Errno| Error::sys(format!("flock {}", p.display()), e);
    // No helper thread to block in while this one keeps time: `run` clones its child without
    // exec and must stay single-threaded (run.rs). Non-blocking tries for the quiet second, then
    // one word, then a blocking wait.
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut f = open()?;
    let flock = loop {
        match Flock::lock(f, now) {
            Ok(l) => break l,
            Err((g, Errno::EWOULDBLOCK)) => f = g,
            Err((_, e)) => return Err(err(e)),
        }
        if start.elapsed() >= QUIET {
            eprintln!("sandbox: waiting for {what}: {}", describe(&holders(root, file)));
            break Flock::lock(f, block).map_err(|(_, e)| err(e))?;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    Ok(Lock { flock: Some(flock), record: record(root, file, exclusive) })
}

/// Writes our holder record (best effort: a record that cannot be written only makes a waiter
/// less informative). An exclusive holder first removes every other record: they are stale.
fn record(root: &Path, file: &str, exclusive: bool) -> Option<PathBuf> {
    let dir = root.join(format!("{file}.holders"));
    if exclusive {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    let _ = fs::DirBuilder::new().mode(0o700).create(&dir);
    let pid = std::process::id();
    let path = dir.join(format!("{pid}-{}", crate::sys::random_id()));
    let line = format!(
        "{pid} {} {} {}\n",
        start_time(pid).unwrap_or(0),
        if exclusive { "exclusive" } else { "shared" },
        argv_summary(std::env::args())
    );
    let mut f = OpenOptions::new().create_new(true).write(true).mode(0o600).open(&path).ok()?;
    match f.write_all(line.as_bytes()) {
        Ok(()) => Some(path),
        Err(_) => {
            let _ = fs::remove_file(&path);
            None
        }
    }
}

/// A live holder of a lock, as its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub exclusive: bool,
    pub argv: String,
}

/// The live holders of `ROOT/file`, one per process, by pid.
pub fn holders(root: &Path, file: &str) -> Vec<Holder> {
    let mut out: Vec<Holder> = vec![];
    for e in fs::read_dir(root.join(format!("{file}.holders"))).into_iter().flatten().flatten() {
        let Ok(s) = fs::read_to_string(e.path()) else { continue };
        let mut f = s.trim_end().splitn(4, ' ');
        let (Some(pid), Some(start), Some(mode)) = (f.next(), f.next(), f.next()) else { continue };
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else { continue };
        // Gone, or the pid now names another process.
        if start_time(pid) != Some(start) || out.iter().any(|h| h.pid == pid) {
            continue;
        }
        out.push(Holder { pid, exclusive: mode == "exclusive", argv: f.next().unwrap_or("").to_string() });
    }
    out.sort_by_key(|h| h.pid);
    out
}

/// "pid 1234 (sandbox pull debian) holds it", "pids 1 (…), 2 (…) hold it".
pub fn describe(hs: &[Holder]) -> String {
    let one = |h: &Holder| format!("{} ({})", h.pid, h.argv);
    match hs {
        [] => "another process holds it (it left no record: an older sandbox?)".to_string(),
        [h] => format!("pid {} holds it", one(h)),
        _ => format!("pids {} hold it", hs.iter().map(one).collect::<Vec<_>>().join(", ")),
    }
}

/// The start time of a process in clock ticks since boot (/proc/PID/stat field 22): with the
/// pid, it names one process even after the pid is reused.
fn start_time(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    s[s.rfind(')')? + 1..].split_whitespace().nth(19)?.parse().ok()
}

/// Flags whose value may be a secret (a password, `--creds USER:PASS`, an environment variable
/// of a run): their value is masked in the holder record, which other commands print.
const SECRET_FLAGS: [&str; 6] = ["-p", "--password", "--password-stdin", "--creds", "-e", "--env"];

/// The command line, short: the program's file name and its arguments, secret values masked,
/// cut at 100 characters.
fn argv_summary(args: impl Iterator<Item = String>) -> String {
    let mut out: Vec<String> = vec![];
    let mut mask_next = false;
    for (i, a) in args.enumerate() {
        let secret_flag = |f: &str| SECRET_FLAGS.contains(&f) || f.contains("password") || f.contains("token");
        let a = if i == 0 {
            Path::new(&a).file_name().map_or(a.clone(), |n| n.to_string_lossy().into_owned())
        } else if mask_next {
            "***".to_string()
        } else if let Some((k, _)) = a.split_once('=').filter(|(k, _)| k.starts_with('-') && secret_flag(k)) {
            format!("{k}=***")
        } else if let Some((k, _)) = a.split_once('=').filter(|(k, _)| k.contains("password")) {
            format!("{k}=***")
        } else {
            a
        };
        mask_next = i > 0 && a != "--password-stdin" && secret_flag(&a) && !a.contains('=');
        out.push(a.replace(['\n', '\r'], " "));
    }
    let s = out.join(" ");
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(99).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> String {
        argv_summary(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn argv_summary_masks_passwords_and_keeps_the_command() {
        assert_eq!(v(&["/usr/bin/sandbox", "pull", "debian"]), "sandbox pull debian");
        assert_eq!(v(&["sandbox", "login", "-p", "hunter2", "r"]), "sandbox login -p *** r");
        assert_eq!(v(&["sandbox", "login", "--password", "x", "r"]), "sandbox login --password *** r");
        assert_eq!(v(&["sandbox", "login", "--password=x", "r"]), "sandbox login --password=*** r");
        assert_eq!(v(&["sandbox", "pull", "--creds", "u:pw", "r"]), "sandbox pull --creds *** r");
        assert_eq!(v(&["sandbox", "push", "--creds=u:pw", "r"]), "sandbox push --creds=*** r");
        assert_eq!(
            v(&["sandbox", "run", "-e", "TOKEN=x", "--env=K=v", "--image", "i"]),
            "sandbox run -e *** --env=*** --image i"
        );
        assert_eq!(v(&["sandbox", "login", "--password-stdin", "r"]), "sandbox login --password-stdin r");
        assert!(v(&["sandbox", &"a".repeat(300)]).ends_with('…'));
    }

    #[test]
    fn a_waiter_names_every_live_holder_and_ignores_dead_ones() {
        let t = tempfile::tempdir().unwrap();
        let a = take(t.path(), "lock", false, "x").unwrap();
        let b = take(t.path(), "lock", false, "x").unwrap();
        let dir = t.path().join("lock.holders");
        // A record left by a process that is gone.
        fs::write(dir.join("999999999-x"), "999999999 1 exclusive sandbox gone\n").unwrap();
        let hs = holders(t.path(), "lock");
        assert_eq!(hs.len(), 1, "{hs:?}");
        assert_eq!(hs[0].pid, std::process::id());
        assert!(describe(&hs).starts_with(&format!("pid {} (", std::process::id())), "{}", describe(&hs));
        drop((a, b));
        assert!(holders(t.path(), "lock").is_empty());
        // An exclusive holder clears stale records.
        let _c = take(t.path(), "lock", true, "x").unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }
}
