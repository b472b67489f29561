//! pids controller: `pids.max`, and `pids.peak`/`pids.events` (the same files on v1 and v2).

use std::path::Path;

use crate::cgroup::stats::{parse_keyed, parse_single, PidsStats};
use crate::cgroup::write;
use crate::error::Result;

/// Writes `--pids` to the group `dir`.
pub fn apply(dir: &Path, n: u64) -> Result<()> {
    write(&dir.join("pids.max"), &n.to_string())
}

/// `pids.peak` and `pids.events`.
pub fn stats(peak: Option<&str>, events: Option<&str>) -> PidsStats {
    PidsStats {
        peak: peak.and_then(parse_single),
        limit_hits: events.map(|e| parse_keyed(e).get("max").copied().unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_events_max_counts_refused_forks() {
        let p = stats(Some("20\n"), Some("max 1234\n"));
        assert_eq!((p.peak, p.limit_hits), (Some(20), Some(1234)));
        assert_eq!(stats(Some("max\n"), Some("")).peak, None);
        assert_eq!(stats(None, Some("")).limit_hits, Some(0));
    }
}
