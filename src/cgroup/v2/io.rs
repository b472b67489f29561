//! cgroup v2 io controller: what the group read and wrote, from `io.stat`.

use crate::cgroup::stats::IoStats;

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
}
