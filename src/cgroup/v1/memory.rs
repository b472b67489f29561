//! cgroup v1 memory controller: `memory.limit_in_bytes` (with memsw and the TCP buffer counter),
//! `--mem-high` as `memory.soft_limit_in_bytes`, `--swap` in memsw, and the figures read from `memory.max_usage_in_bytes`, `memory.oom_control` and
//! `memory.kmem.tcp.*`.

use std::path::Path;

use crate::cgroup::stats::{parse_keyed, parse_single, MemoryBreakdown, MemoryStats};
use crate::cgroup::write;
use crate::config::Limits;
use crate::error::{Error, Result};

/// Writes `--mem`, `--mem-high` and `--swap` to the group's memory directory `dir`.
pub fn apply(dir: &Path, limits: &Limits) -> Result<()> {
    // v1's soft limit: unlike v2's memory.high it does not throttle the group, it only marks it
    // first in line for reclaim when the whole machine runs short (docker's --memory-reservation).
    if let Some(high) = limits.memory_high {
        write(&dir.join("memory.soft_limit_in_bytes"), &high.to_string())?;
    }
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let Some(bytes) = limits.memory_bytes else {
        if limits.swap_bytes.is_some() {
            return Err(Error::Unsupported {
                limit: "--swap",
                reason: "cgroup v1 limits memory and swap together (memory.memsw.limit_in_bytes): give --mem too"
                    .into(),
            });
        }
        return Ok(());
    };
    // memsw (memory+swap) equal to the limit: no swap beyond it, so the limit is real; with
    // --swap, the limit plus the swap. Absent when the kernel has no swap accounting.
    let memsw_value = match limits.swap_bytes {
        Some(swap) if memsw.exists() => Some(bytes.saturating_add(swap)),
        Some(_) => {
            return Err(Error::Unsupported {
                limit: "--swap",
                reason: format!(
                    "{} has no memory.memsw.limit_in_bytes: this kernel does not account swap (swapaccount=0)",
                    dir.display()
                ),
            })
        }
        None if memsw.exists() => Some(bytes),
        None => None,
    };
    // The kernel keeps memsw ≥ the memory limit at every write (EINVAL otherwise): raising the
    // limit of a live group (`update`) above its memsw must write memsw first, as runc does. A
    // new group's memsw is unlimited: the limit goes first.
    let old_memsw = crate::cgroup::read(&memsw).and_then(|t| parse_single(&t)).unwrap_or(u64::MAX);
    let limit_file = dir.join("memory.limit_in_bytes");
    if let Some(v) = memsw_value.filter(|_| bytes > old_memsw) {
        write(&memsw, &v.to_string())?;
        write(&limit_file, &bytes.to_string())?;
    } else {
        write(&limit_file, &bytes.to_string())?;
        if let Some(v) = memsw_value {
            write(&memsw, &v.to_string())?;
        }
    }
    // v1 charges TCP socket buffers to a counter of their own, and only once its limit
    // is set (memcg "tcpmem_active"); before that they were not charged at all and a
    // command under --mem 32M pinned over 1 GiB of loopback TCP buffers. The same figure
    // bounds them: a run may then hold up to the limit in memory plus the limit in TCP
    // buffers. (v2 charges sockets to memory.current: nothing to do there.)
    let tcp = dir.join("memory.kmem.tcp.limit_in_bytes");
    if tcp.exists() {
        write(&tcp, &bytes.to_string())?;
    }
    Ok(())
}

/// The "no limit" value of a v1 page counter (PAGE_COUNTER_MAX pages of 4 KiB, in bytes).
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// A `memory.limit_in_bytes` value; `None` for the kernel's "no limit" (PAGE_COUNTER_MAX pages).
pub fn limit(text: &str) -> Option<u64> {
    parse_single(text).filter(|v| *v < V1_UNLIMITED)
}

/// The memory files a v1 report reads, as the kernel has them (`None`: no such file).
#[derive(Default)]
pub struct Files<'a> {
    pub max_usage: Option<&'a str>,
    pub oom_control: Option<&'a str>,
    pub tcp_limit: Option<&'a str>,
    pub tcp_max_usage: Option<&'a str>,
    pub memsw_max_usage: Option<&'a str>,
}

/// cgroup v1 `memory.max_usage_in_bytes`, `memory.oom_control`, `memory.memsw.max_usage_in_bytes`
/// and the TCP buffer counter (`memory.kmem.tcp.limit_in_bytes`, `memory.kmem.tcp.max_usage_in_bytes`).
/// The TCP peak counts only with a limit set: without one the kernel does not charge sockets and
/// its 0 would be made up. v1 has no memory.high events and no swap peak (memsw is memory+swap).
pub fn stats(f: &Files) -> MemoryStats {
    let tcp_counted = f.tcp_limit.and_then(parse_single).is_some_and(|l| l < V1_UNLIMITED);
    MemoryStats {
        peak_bytes: f.max_usage.and_then(parse_single),
        oom_events: None,
        oom_kills: f.oom_control.and_then(|t| parse_keyed(t).get("oom_kill").copied()),
        tcp_peak_bytes: f.tcp_max_usage.and_then(parse_single).filter(|_| tcp_counted),
        high_events: None,
        swap_peak_bytes: None,
        memsw_peak_bytes: f.memsw_max_usage.and_then(parse_single),
        at_peak: MemoryBreakdown::default(),
    }
}

/// cgroup v1 `memory.stat` (the hierarchical `total_*` keys) and `memory.kmem.usage_in_bytes`:
/// anon is `total_rss`, file `total_cache` (shmem included, as on v2), shmem `total_shmem`. v1
/// counts socket buffers apart (memory.kmem.tcp.*): `sock_bytes` is unknown.
pub fn breakdown(memory_stat: &str, kmem_usage: Option<&str>) -> MemoryBreakdown {
    let m = parse_keyed(memory_stat);
    let k = |k: &str| m.get(k).copied();
    MemoryBreakdown {
        anon_bytes: k("total_rss"),
        file_bytes: k("total_cache"),
        kernel_bytes: kmem_usage.and_then(parse_single),
        sock_bytes: None,
        shmem_bytes: k("total_shmem"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn v1_memory_stat_breakdown_uses_the_hierarchical_totals() {
        let b = breakdown(&fixture("v1/memory.stat"), Some("1572864\n"));
        let want = MemoryBreakdown {
            anon_bytes: Some(26_214_400),
            file_bytes: Some(8_388_608),
            kernel_bytes: Some(1_572_864),
            sock_bytes: None,
            shmem_bytes: Some(2_097_152),
        };
        assert_eq!(b, want);
    }

    #[test]
    fn v1_memory_oom_control() {
        let oom = fixture("v1/memory.oom_control");
        let f = Files {
            max_usage: Some("1048576\n"),
            oom_control: Some(&oom),
            memsw_max_usage: Some("2097152\n"),
            ..Default::default()
        };
        let want = MemoryStats {
            peak_bytes: Some(1048576),
            oom_kills: Some(3),
            memsw_peak_bytes: Some(2097152),
            ..Default::default()
        };
        assert_eq!(stats(&f), want, "no high events, no swap peak on v1");
    }

    #[test]
    fn raising_a_live_limit_above_memsw_writes_memsw_first() {
        // A plain-file group cannot show the order; the end state and the "no limit" value can.
        let t = tempfile::tempdir().unwrap();
        let w = |f: &str, v: &str| std::fs::write(t.path().join(f), v).unwrap();
        w("memory.limit_in_bytes", "67108864\n");
        w("memory.memsw.limit_in_bytes", "67108864\n");
        apply(t.path(), &Limits { memory_bytes: Some(512 << 20), ..Default::default() }).unwrap();
        let r = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap();
        assert_eq!(
            (r("memory.limit_in_bytes"), r("memory.memsw.limit_in_bytes")),
            ("536870912".into(), "536870912".into())
        );
        assert_eq!(limit("9223372036854771712\n"), None);
        assert_eq!(limit("67108864\n"), Some(64 << 20));
    }

    #[test]
    fn v1_tcp_peak_only_where_the_kernel_counts_it() {
        let tcp = |limit: &str| {
            stats(&Files { tcp_limit: Some(limit), tcp_max_usage: Some("4096\n"), ..Default::default() }).tcp_peak_bytes
        };
        assert_eq!(tcp("33554432\n"), Some(4096));
        // No limit set: the kernel charges no socket to the group, so its 0 would be made up.
        assert_eq!(tcp("9223372036854771712\n"), None);
        assert_eq!(stats(&Files::default()).tcp_peak_bytes, None);
    }
}
