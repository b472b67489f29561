//! cgroup v1 pids controller: `pids.max`; its `pids.peak`/`pids.events` are the v2 files.

use std::path::Path;

pub use crate::cgroup::v2::pids::stats;
use crate::cgroup::write;
use crate::error::Result;

/// Writes `--pids` to the group's pids directory `dir`.
pub fn apply(dir: &Path, n: u64) -> Result<()> {
    write(&dir.join("pids.max"), &n.to_string())
}
