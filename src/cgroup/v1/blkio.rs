//! cgroup v1 blkio controller: what the group read and wrote, from
//! `blkio.throttle.io_service_bytes_recursive` and `blkio.throttle.io_serviced_recursive` (the
//! `_recursive` variants count the group's subgroups too, as v2's io.stat does).
//!
//! Kernel quirk: these counters are kept by blk-throttle, and since Linux 6.9 ("blk-throttle:
//! delay initialization until configuration") blk-throttle is set up on a disk only once some
//! group sets a throttle rule for it (`blkio.throttle.*_device`). Before that nothing is counted
//! on that disk, for any group, and the files list no line for it. The figures are therefore
//! reported only when the hierarchy's root lists at least one device (the root has a line for
//! every disk blk-throttle is active on); else they are unknown (`None`), never a made-up zero.
//! I/O to a disk without blk-throttle still goes uncounted when another disk has it.
//! (`blkio.bfq.*` count only on disks using the BFQ scheduler: not used.)

use std::path::Path;

use crate::cgroup::read;
use crate::cgroup::stats::IoStats;
use crate::cgroup::v2::io::scale;
use crate::cgroup::write;
use crate::config::Limits;
use crate::error::{Error, Result};

/// Writes `--io-weight` (blkio.weight of CFQ, 10-1000 default 500, gone since Linux 5.0; else
/// blkio.bfq.weight of BFQ, 1-1000 default 100) and the throttles (`blkio.throttle.*_device`,
/// one `MAJ:MIN N` line per rule) to the group's blkio directory `dir`. The weight goes from our
/// 1-10000 (default 100) scale piecewise linearly, default to default, as systemd maps it.
pub fn apply(dir: &Path, limits: &Limits) -> Result<()> {
    if let Some(w) = limits.io_weight {
        let file = [("blkio.weight", scale(w, (1, 100, 10000), (10, 500, 1000))), ("blkio.bfq.weight", to_bfq(w))]
            .into_iter()
            .find(|(f, _)| dir.join(f).exists());
        let Some((f, v)) = file else {
            return Err(Error::Unsupported {
                limit: "--io-weight",
                reason: format!(
                    "{} has neither blkio.weight (CFQ) nor blkio.bfq.weight (BFQ): this kernel weighs no io",
                    dir.display()
                ),
            });
        };
        write(&dir.join(f), &v.to_string())?;
    }
    for r in &limits.io {
        write(&dir.join(r.limit.v1_file()), &format!("{}:{} {}", r.major, r.minor, r.value))?;
    }
    Ok(())
}

fn to_bfq(w: u64) -> u64 {
    crate::cgroup::v2::io::to_bfq(w)
}

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

/// Whether blk-throttle counts on any disk: the topmost ancestor of `dir` in the same hierarchy
/// (the mount's root, or the nearest one we can see) lists a device.
fn counting(dir: &Path) -> bool {
    let file = "blkio.throttle.io_service_bytes";
    let mut top = dir;
    while let Some(p) = top.parent().filter(|p| p.join(file).exists()) {
        top = p;
    }
    read(&top.join(file)).is_some_and(|t| parse(&t).0 > 0)
}

/// The group `dir`'s I/O; all `None` when blk-throttle counts nothing on this kernel.
pub fn stats(dir: &Path) -> IoStats {
    let (Some(bytes), Some(ops)) = (read(&dir.join(BYTES)), read(&dir.join(OPS))) else {
        return IoStats::default();
    };
    let ((nb, rb, wb), (no, ro, wo)) = (parse(&bytes), parse(&ops));
    if nb + no == 0 && !counting(dir) {
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
        // blk-throttle active on a disk (the root lists it): a group without I/O did none.
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
