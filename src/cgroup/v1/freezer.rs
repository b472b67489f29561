//! cgroup v1 freezer controller: `freezer.state` THAWED, FREEZING (under way) or FROZEN. Unlike
//! v2, a task frozen by the v1 freezer does not die of SIGKILL until it is thawed: teardown thaws
//! the freezer group after signalling (see V1::kill).

use std::path::Path;

use crate::cgroup::{freeze, read, write};
use crate::error::Result;

/// Freezes (`on`) or thaws the group `dir` and waits until `freezer.state` says so. A freeze that
/// does not settle is undone (runc does the same) so that the group is not left half frozen.
pub fn set(dir: &Path, on: bool) -> Result<()> {
    let file = dir.join("freezer.state");
    let want = if on { "FROZEN" } else { "THAWED" };
    write(&file, want)?;
    // Re-writing FROZEN while FREEZING makes the kernel retry the tasks it could not stop yet.
    let waited = freeze::wait(dir, want, !on, || {
        let now = state(dir);
        if on && now == Some(State::Freezing) {
            let _ = write(&file, want);
        }
        now == Some(if on { State::Frozen } else { State::Thawed })
    });
    if waited.is_err() && on {
        let _ = write(&file, "THAWED");
    }
    waited
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Thawed,
    Freezing,
    Frozen,
}

/// `freezer.state` of `dir`; `None` without the file.
pub fn state(dir: &Path) -> Option<State> {
    read(&dir.join("freezer.state")).and_then(|t| parse(&t))
}

/// Parses a `freezer.state` file.
pub fn parse(text: &str) -> Option<State> {
    match text.trim() {
        "THAWED" => Some(State::Thawed),
        "FREEZING" => Some(State::Freezing),
        "FROZEN" => Some(State::Frozen),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezer_state_values() {
        assert_eq!(parse("FROZEN\n"), Some(State::Frozen));
        assert_eq!(parse("FREEZING\n"), Some(State::Freezing));
        assert_eq!(parse("THAWED\n"), Some(State::Thawed));
        assert_eq!(parse(""), None);
    }

    #[test]
    fn thawing_a_fake_group_writes_thawed() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("freezer.state"), "FROZEN\n").unwrap();
        set(t.path(), false).unwrap();
        assert_eq!(state(t.path()), Some(State::Thawed));
        // On a plain file the write is what is read back: FROZEN, as the kernel says once done.
        set(t.path(), true).unwrap();
        assert_eq!(state(t.path()), Some(State::Frozen));
    }
}
