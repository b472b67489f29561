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
//! And v1 blk-throttle is flat: a parent's rule neither limits nor counts a child.
//!
//! So that every kernel counts the run, [`apply_accounting`] gives the run's own group a rule of
//! 1 TiB/s (never reached; small enough that pre-6.1 kernels' `bps * jiffies` cannot overflow)
//! for reads and writes on every disk blk-throttle is already set up on (the disks the root
//! lists): the rule changes nothing outside the group, and a disk not set up yet is left alone,
//! as a rule would set blk-throttle up on it for good (6.9+). The figures are known only when
//! every disk of the machine (/sys/block, empty ones aside) is one of those, and the group has
//! its rule or the root (which has none) shows counted I/O; else `None`, never a zero that
//! leaves out an uncounted disk. (`blkio.bfq.*` count only under the BFQ scheduler: not used.)

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

/// The rule that makes blk-throttle count a group without limiting it: 1 TiB/s.
const NO_LIMIT_BPS: u64 = 1 << 40;
const RULES: [&str; 2] = ["blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"];

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

/// The topmost ancestor of `dir` in the same hierarchy: the mount's root, or the nearest one we
/// can see. It has no throttle rule.
fn top(dir: &Path) -> &Path {
    let mut top = dir;
    while let Some(p) = top.parent().filter(|p| p.join("blkio.throttle.io_service_bytes").exists()) {
        top = p;
    }
    top
}

/// Whether blk-throttle counts I/O of groups without a rule here: the root shows I/O counted.
fn counts_without_rules(root: &str) -> bool {
    device_totals(root).iter().any(|&n| n > 0)
}

/// Whether the group has a throttle rule (ours, from [`apply_accounting`], or a limit).
fn has_rules(dir: &Path) -> bool {
    RULES.iter().any(|f| read(&dir.join(f)).is_some_and(|t| t.lines().any(|l| l.contains(':'))))
}

/// Gives the group `dir` a never-reached rule on every disk blk-throttle is set up on, so that
/// the kernel counts its I/O (see the module comment). Best effort: accounting, not a limit.
pub fn apply_accounting(dir: &Path) {
    let Some(root) = read(&top(dir).join("blkio.throttle.io_service_bytes")) else { return };
    for dev in listed(&root) {
        for f in RULES {
            let _ = std::fs::write(dir.join(f), format!("{dev} {NO_LIMIT_BPS}"));
        }
    }
}

/// The MAJ:MIN of every disk of the machine that has a size (/sys/block; partitions are not
/// listed there, and throttle rules are per whole disk).
pub fn disks() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/block") else { return vec![] };
    rd.flatten()
        .filter(|e| read(&e.path().join("size")).is_some_and(|s| s.trim() != "0"))
        .filter_map(|e| read(&e.path().join("dev")).map(|d| d.trim().to_string()))
        .collect()
}

/// The devices a blkio rwstat file lists.
fn listed(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [dev, "Total", _] if dev.contains(':') => Some(dev),
            _ => None,
        })
        .collect()
}

/// The group `dir`'s I/O; all `None` unless the kernel counts it on every one of `disks` (the
/// machine's disks, listed only when the cheaper checks pass: the /sys/block scan is a dozen
/// opens at the end of every run, and on a host without blk-throttle it decides nothing).
pub fn stats(dir: &Path, disks: &std::cell::OnceCell<Vec<String>>) -> IoStats {
    let (Some(bytes), Some(ops)) = (read(&dir.join(BYTES)), read(&dir.join(OPS))) else {
        return IoStats::default();
    };
    // Read once here, for both checks below.
    let root = read(&top(dir).join("blkio.throttle.io_service_bytes")).unwrap_or_default();
    let ((_, rb, wb), (_, ro, wo)) = (parse(&bytes), parse(&ops));
    if !(has_rules(dir) || counts_without_rules(&root)) {
        return IoStats::default();
    }
    let set_up = listed(&root);
    if !disks.get_or_init(self::disks).iter().all(|d| set_up.contains(&d.as_str())) {
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
        let vda = std::cell::OnceCell::from(vec!["254:0".to_string()]);
        let t = tempfile::tempdir().unwrap();
        let g = t.path().join("sandbox-x-1");
        std::fs::create_dir(&g).unwrap();
        let w = |p: &Path, f: &str, text: &str| std::fs::write(p.join(f), text).unwrap();
        for f in [BYTES, OPS, "blkio.throttle.io_service_bytes"] {
            w(&g, f, "Total 0\n");
        }
        // Linux 6.9+ with no throttle rule on any disk: the root lists no device either.
        w(t.path(), "blkio.throttle.io_service_bytes", "Total 0\n");
        assert_eq!(stats(&g, &vda), IoStats::default(), "nothing counted: unknown, not zero");
        // Decided without the machine's disks: /sys/block is not listed (a dozen opens a run).
        let unlisted = std::cell::OnceCell::new();
        assert_eq!(stats(&g, &unlisted), IoStats::default());
        assert!(unlisted.get().is_none(), "the disks were listed for nothing");
        // Linux 5.16-6.1: the root lists its disks, but counts nothing without a rule.
        w(t.path(), "blkio.throttle.io_service_bytes", "254:0 Read 0\n254:0 Write 0\n254:0 Total 0\nTotal 0\n");
        w(&g, BYTES, "254:0 Read 0\n254:0 Write 0\n254:0 Total 0\nTotal 0\n");
        assert_eq!(stats(&g, &vda), IoStats::default(), "listed but not counted: unknown, not zero");
        // The root's own I/O is counted: so would ours be; a group without I/O did none.
        w(t.path(), "blkio.throttle.io_service_bytes", "254:0 Read 5\n254:0 Total 5\nTotal 5\n");
        assert_eq!(stats(&g, &vda).write_bytes, Some(0));
        w(&g, BYTES, &fixture("v1/blkio.throttle.io_service_bytes_recursive"));
        w(&g, OPS, &fixture("v1/blkio.throttle.io_serviced_recursive"));
        let io = stats(&g, &vda);
        assert_eq!(
            (io.read_bytes, io.write_bytes, io.read_ops, io.write_ops),
            (Some(1052672), Some(64 << 20), Some(13), Some(530))
        );
        assert_eq!(stats(&t.path().join("absent"), &vda), IoStats::default());
        // A disk blk-throttle is not set up on (6.9+): its I/O is not counted, the sum is unknown.
        let two = std::cell::OnceCell::from(vec!["254:0".to_string(), "253:0".to_string()]);
        assert_eq!(stats(&g, &two), IoStats::default(), "an uncounted disk: unknown, not a partial sum");
    }

    #[test]
    fn accounting_rules_only_on_disks_blk_throttle_is_set_up_on() {
        let vda = vec!["254:0".to_string(), "7:0".to_string()];
        let t = tempfile::tempdir().unwrap();
        let g = t.path().join("sandbox-x-1");
        std::fs::create_dir(&g).unwrap();
        let root_file = t.path().join("blkio.throttle.io_service_bytes");
        std::fs::write(&root_file, "Total 0\n").unwrap();
        std::fs::write(g.join("blkio.throttle.io_service_bytes"), "Total 0\n").unwrap();
        // Linux 6.9+ with no disk set up: no rule written (it would set the disk up for good).
        apply_accounting(&g);
        assert!(!g.join(RULES[1]).exists());
        // Linux 6.1 lists its disks and counts nothing without a rule: the group gets one per disk.
        std::fs::write(&root_file, "254:0 Read 0\n254:0 Total 0\n7:0 Total 0\nTotal 0\n").unwrap();
        apply_accounting(&g);
        // (A real rule file keeps one line per device; the fake keeps the last write.)
        assert_eq!(std::fs::read_to_string(g.join(RULES[1])).unwrap(), "7:0 1099511627776");
        for f in [BYTES, OPS] {
            std::fs::write(g.join(f), "254:0 Write 0\n254:0 Total 0\nTotal 0\n").unwrap();
        }
        assert_eq!(
            stats(&g, &std::cell::OnceCell::from(vda.clone())).write_bytes,
            Some(0),
            "a group with a rule is counted: its zero is real"
        );
    }
}
