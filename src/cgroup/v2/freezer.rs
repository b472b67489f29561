//! cgroup v2 freezer (Linux 5.2+): `cgroup.freeze` asks, `cgroup.events` says `frozen 1` once every
//! task of the group and of its descendants is stopped. A frozen task still dies of SIGKILL (and
//! cgroup.kill), so teardown needs no thaw on v2.

use std::path::Path;

use crate::cgroup::stats::parse_keyed;
use crate::cgroup::{freeze, read, write};
use crate::error::{Error, Result};

/// Freezes (`on`) or thaws the group `dir` and waits until the kernel reports it done.
pub fn set(dir: &Path, on: bool) -> Result<()> {
    let file = dir.join("cgroup.freeze");
    if !file.exists() {
        return Err(Error::Unsupported {
            limit: if on { "pause" } else { "unpause" },
            reason: format!("{} has no cgroup.freeze (the v2 freezer needs Linux 5.2)", dir.display()),
        });
    }
    write(&file, if on { "1" } else { "0" })?;
    freeze::wait(dir, if on { "frozen" } else { "thawed" }, !on, || state(dir) == Some(on))
}

/// Whether the group is frozen now (`cgroup.events` `frozen`); `None` without the file.
pub fn state(dir: &Path) -> Option<bool> {
    read(&dir.join("cgroup.events")).and_then(|t| frozen(&t))
}

/// The `frozen` key of a `cgroup.events` file.
pub fn frozen(events: &str) -> Option<bool> {
    parse_keyed(events).get("frozen").map(|v| *v == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn cgroup_events_frozen_key() {
        assert_eq!(frozen(&fixture("v2/cgroup.events")), Some(true));
        assert_eq!(frozen("populated 1\nfrozen 0\n"), Some(false));
        assert_eq!(frozen("populated 1\n"), None, "before Linux 5.2: no freezer");
    }

    #[test]
    fn freezing_writes_the_file_and_waits_for_the_event() {
        let t = tempfile::tempdir().unwrap();
        assert!(set(t.path(), true).unwrap_err().to_string().contains("no cgroup.freeze"));
        std::fs::write(t.path().join("cgroup.freeze"), "0").unwrap();
        // A fake group whose "kernel" already reports frozen.
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        set(t.path(), true).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("cgroup.freeze")).unwrap(), "1");
        assert_eq!(state(t.path()), Some(true));
    }
}
