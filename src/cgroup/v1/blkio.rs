//! cgroup v1 blkio controller: what the group read and wrote, from
//! `blkio.throttle.io_service_bytes_recursive` and `blkio.throttle.io_serviced_recursive` (the
//! `_recursive` variants count the group's subgroups too, as v2's io.stat does).
//!
//! Kernel quirk: these counters are kept by blk-throttle, and which I/O they count has changed
//! with the kernel version:
//! - before 5.16, and 6.2 to 6.8 ("blk-throttle: Fix io statistics for cgroup v1"): every bio;
//! - 5.16 to 6.1 ("block: move blk-throtl fast path inline"): only bios of a group that has a
//!   throttle rule itself or above it (Debian 12's 6.1 counts nothing without one);
//! - 6.9+ ("blk-throttle: delay initialization until configuration"): every bio, but only on a
//!   disk some group has set a rule for; other disks are listed nowhere.
//!
//! So a zero is believed only when this kernel visibly counts I/O of groups without a rule: the
//! hierarchy's root (which has no rule) lists a device with a non-zero total. Otherwise a group
//! that shows no I/O gets `None`, never a made-up zero. I/O to a disk that is not counted is
//! missing from the sum. (`blkio.bfq.*` count only on disks using the BFQ scheduler: not used.)

use std::path::Path;

use crate::cgroup::read;
use crate::cgroup::stats::IoStats;

/// The file counting bytes, and the one counting operations.
const BYTES: &str = "blkio.throttle.io_service_bytes_recursive";
const OPS: &str = "blkio.throttle.io_serviced_recursive";

/// Parses a blkio rwstat file: lines `MAJ:MIN Read|Write|Sync|Async|Discard|Total N` per device,
/// then `Total N`. Returns (devices listed, sum of Read, sum of Write).
pub fn parse(text: &str) -> (usize, u64, u64) {
    let (mut devices, mut read, mut write) = (0, 0, 0);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [dev, kind, n] = f[..] else { continue };
        let Ok(n) = n.parse::<u64>() else { continue };
        if !dev.contains(':') {
            continue;
        }
        match kind {
            "Read" => read += n,
            "Write" => write += n,
            "Total" => devices += 1,
            _ => {}
        }
    }
    (devices, read, write)
}

/// Parses a blkio rwstat file into its device totals: the `MAJ:MIN Total N` lines.
fn device_totals(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [dev, "Total", n] if dev.contains(':') => n.parse().ok(),
            _ => None,
        })
        .collect()
}

/// Whether blk-throttle counts I/O of groups without a throttle rule: the topmost ancestor of
/// `dir` in the same hierarchy (the mount's root, or the nearest one we can see), which has no
/// rule, lists a device with I/O counted.
fn counts_without_rules(dir: &Path) -> bool {
    let file = "blkio.throttle.io_service_bytes";
    let mut top = dir;
    while let Some(p) = top.parent().filter(|p| p.join(file).exists()) {
        top = p;
    }
    read(&top.join(file)).is_some_and(|t| device_totals(&t).iter().any(|&n| n > 0))
}

/// The group `dir`'s I/O; all `None` when blk-throttle counts nothing on this kernel.
pub fn stats(dir: &Path) -> IoStats {
    let (Some(bytes), Some(ops)) = (read(&dir.join(BYTES)), read(&dir.join(OPS))) else {
        return IoStats::default();
    };
    let ((_, rb, wb), (_, ro, wo)) = (parse(&bytes), parse(&ops));
    if rb + wb + ro + wo == 0 && !counts_without_rules(dir) {
        return IoStats::default();
    }
    IoStats { read_bytes: Some(rb), write_bytes: Some(wb), read_ops: Some(ro), write_ops: Some(wo) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn blkio_rwstat_files_are_summed_over_devices() {
        assert_eq!(parse(&fixture("v1/blkio.throttle.io_service_bytes_recursive")), (2, 1052672, 67108864));
        assert_eq!(parse(&fixture("v1/blkio.throttle.io_serviced_recursive")), (2, 13, 530));
        assert_eq!(parse("Total 0\n"), (0, 0, 0));
    }

    #[test]
    fn blkio_figures_only_where_blk_throttle_counts() {
        let t = tempfile::tempdir().unwrap();
        let g = t.path().join("sandbox-x-1");
        std::fs::create_dir(&g).unwrap();
        let w = |p: &Path, f: &str, text: &str| std::fs::write(p.join(f), text).unwrap();
        for f in [BYTES, OPS, "blkio.throttle.io_service_bytes"] {
            w(&g, f, "Total 0\n");
        }
        // Linux 6.9+ with no throttle rule on any disk: the root lists no device either.
        w(t.path(), "blkio.throttle.io_service_bytes", "Total 0\n");
        assert_eq!(stats(&g), IoStats::default(), "nothing counted: unknown, not zero");
        // Linux 5.16-6.1: the root lists its disks, but counts nothing without a rule.
        w(t.path(), "blkio.throttle.io_service_bytes", "254:0 Read 0\n254:0 Write 0\n254:0 Total 0\nTotal 0\n");
        w(&g, BYTES, "254:0 Read 0\n254:0 Write 0\n254:0 Total 0\nTotal 0\n");
        assert_eq!(stats(&g), IoStats::default(), "listed but not counted: unknown, not zero");
        // The root's own I/O is counted: so would ours be; a group without I/O did none.
        w(t.path(), "blkio.throttle.io_service_bytes", "254:0 Read 5\n254:0 Total 5\nTotal 5\n");
        assert_eq!(stats(&g).write_bytes, Some(0));
        w(&g, BYTES, &fixture("v1/blkio.throttle.io_service_bytes_recursive"));
        w(&g, OPS, &fixture("v1/blkio.throttle.io_serviced_recursive"));
        let io = stats(&g);
        assert_eq!(
            (io.read_bytes, io.write_bytes, io.read_ops, io.write_ops),
            (Some(1052672), Some(64 << 20), Some(13), Some(530))
        );
        assert_eq!(stats(&t.path().join("absent")), IoStats::default());
    }
}
