//! Waiting for a freezer to settle, shared by v2 (`cgroup.freeze`/`cgroup.events`) and v1
//! (`freezer.state`): the write only asks; the kernel freezes the tasks one by one and says so in
//! a file that the caller polls (a task in an uninterruptible sleep, e.g. in a page fault on a
//! slow disk, delays it).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long `pause`/`unpause` wait for the kernel before giving up (runc retries for ~1 s per try).
pub const SETTLE: Duration = Duration::from_secs(5);

/// Polls `settled` (backing off from 100 µs to 20 ms) until it returns true or `SETTLE` has passed.
///
/// A group that is gone has ended: once thawed, its command can exit and its supervisor remove the
/// group before the first poll (`stop` of a paused container does exactly that), so a thaw
/// (`thaw`) is then done, and a freeze fails at once, instead of either polling a file that will
/// never come back for the whole `SETTLE`.
pub(crate) fn wait(dir: &Path, what: &str, thaw: bool, mut settled: impl FnMut() -> bool) -> Result<()> {
    let end = Instant::now() + SETTLE;
    let mut nap = Duration::from_micros(100);
    loop {
        if settled() {
            return Ok(());
        }
        if !dir.exists() {
            if thaw {
                return Ok(());
            }
            return Err(Error::io(
                "the group ended while it was being frozen",
                dir,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        if Instant::now() >= end {
            return Err(Error::io(
                "the kernel did not finish freezing or thawing",
                dir,
                std::io::Error::new(std::io::ErrorKind::TimedOut, format!("still not {what} after {SETTLE:?}")),
            ));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stop` of a paused container thaws it; the command then ends and its group is removed,
    /// maybe before the first poll. The old wait polled the vanished file for the whole SETTLE
    /// (CI: "stop of a paused container took 5.048149802s").
    #[test]
    fn a_group_removed_during_the_wait_ends_it_at_once() {
        let t = tempfile::tempdir().unwrap();
        let gone = t.path().join("gone");
        let started = Instant::now();
        assert!(wait(&gone, "thawed", true, || false).is_ok(), "a removed group is thawed");
        let err = wait(&gone, "frozen", false, || false).unwrap_err();
        assert!(err.to_string().contains("ended while it was being frozen"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1), "waited {:?}", started.elapsed());
    }
}
