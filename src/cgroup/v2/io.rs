//! cgroup v2 io controller: `--io-weight` (`io.weight`, `io.bfq.weight`), the throttles of
//! `--io-{read,write}-{bps,iops}` (`io.max`), and what the group read and wrote, from `io.stat`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cgroup::stats::IoStats;
use crate::cgroup::write;
use crate::config::Limits;
use crate::error::{Error, Result};

/// Writes the io limits to the group `dir`.
pub fn apply(dir: &Path, limits: &Limits) -> Result<()> {
    if let Some(w) = limits.io_weight {
        // io.weight: the iocost controller (CONFIG_BLK_CGROUP_IOCOST); io.bfq.weight: the BFQ
        // scheduler, 1-1000. Either counts only on disks that use it; both are written.
        let files: Vec<(&str, u64)> = [("io.weight", w), ("io.bfq.weight", to_bfq(w))]
            .into_iter()
            .filter(|(f, _)| dir.join(f).exists())
            .collect();
        if files.is_empty() {
            return Err(Error::Unsupported {
                limit: "--io-weight",
                reason: format!(
                    "{} has neither io.weight (iocost) nor io.bfq.weight (BFQ): this kernel weighs no io",
                    dir.display()
                ),
            });
        }
        for (f, v) in files {
            write(&dir.join(f), &v.to_string())?;
        }
    }
    for line in io_max_lines(&limits.io) {
        write(&dir.join("io.max"), &line)?;
    }
    Ok(())
}

/// One `io.max` line per disk: `MAJ:MIN rbps=N wbps=N riops=N wiops=N` (the keys asked for).
pub fn io_max_lines(rules: &[crate::limits::IoRule]) -> Vec<String> {
    let mut by_dev: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    for r in rules {
        by_dev.entry((r.major, r.minor)).or_default().push(format!("{}={}", r.limit.v2_key(), r.value));
    }
    by_dev.into_iter().map(|((ma, mi), kv)| format!("{ma}:{mi} {}", kv.join(" "))).collect()
}

/// A weight of 1-10000 (default 100) on BFQ's scale of 1-1000 (default 100), piecewise linear
/// so that default maps to default and the ends to the ends (as systemd maps IOWeight=).
pub fn to_bfq(w: u64) -> u64 {
    scale(w, (1, 100, 10000), (1, 100, 1000))
}

/// Maps `w` from the range (min, default, max) `from` onto `to`, each half linearly.
pub fn scale(w: u64, from: (u64, u64, u64), to: (u64, u64, u64)) -> u64 {
    let w = w.clamp(from.0, from.2);
    if w <= from.1 {
        to.0 + (w - from.0) * (to.1 - to.0) / (from.1 - from.0)
    } else {
        to.1 + (w - from.1) * (to.2 - to.1) / (from.2 - from.1)
    }
}

/// Sums `io.stat` over devices: lines `MAJ:MIN rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…`.
/// A device line without figures (a device the group has a blkg on but no I/O stats yet) adds
/// nothing. `io.stat` counts the whole subtree, including groups already removed.
pub fn stats(io_stat: &str) -> IoStats {
    let (mut rb, mut wb, mut rio, mut wio) = (0, 0, 0, 0);
    for field in io_stat.lines().flat_map(|l| l.split_whitespace().skip(1)) {
        let Some((k, v)) = field.split_once('=') else { continue };
        let Ok(v) = v.parse::<u64>() else { continue };
        match k {
            "rbytes" => rb += v,
            "wbytes" => wb += v,
            "rios" => rio += v,
            "wios" => wio += v,
            _ => {}
        }
    }
    IoStats { read_bytes: Some(rb), write_bytes: Some(wb), read_ops: Some(rio), write_ops: Some(wio) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn io_stat_is_summed_over_devices() {
        let io = stats(&fixture("v2/io.stat"));
        let want = IoStats {
            read_bytes: Some(1048576 + 4096),
            write_bytes: Some(64 << 20),
            read_ops: Some(13),
            write_ops: Some(530),
        };
        assert_eq!(io, want);
        // The file exists and is empty: the group did no I/O, a real zero.
        assert_eq!(stats("").write_bytes, Some(0));
    }

    #[test]
    fn io_weight_keeps_default_and_ends_on_bfqs_scale() {
        assert_eq!([to_bfq(1), to_bfq(50), to_bfq(100), to_bfq(5050), to_bfq(10000)], [1, 50, 100, 550, 1000]);
    }

    #[test]
    fn io_max_has_one_line_per_disk() {
        use crate::limits::{IoKind, IoRule};
        let r = |maj, kind, value| IoRule { device: "x".into(), major: maj, minor: 0, limit: kind, value };
        let lines =
            io_max_lines(&[r(8, IoKind::WriteBps, 1 << 20), r(7, IoKind::ReadIops, 100), r(8, IoKind::ReadBps, 4096)]);
        assert_eq!(lines, ["7:0 riops=100", "8:0 wbps=1048576 rbps=4096"]);
    }
}
