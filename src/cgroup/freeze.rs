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
pub(crate) fn wait(dir: &Path, what: &str, mut settled: impl FnMut() -> bool) -> Result<()> {
    let end = Instant::now() + SETTLE;
    let mut nap = Duration::from_micros(100);
    loop {
        if settled() {
            return Ok(());
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
