//! cgroup v2 memory controller: `memory.max` (with `memory.swap.max`), `memory.high` and the
//! figures read from `memory.peak` and `memory.events`.

use std::path::Path;

use crate::cgroup::stats::{parse_keyed, parse_single, MemoryBreakdown, MemoryStats};
use crate::cgroup::write;
use crate::config::Limits;
use crate::error::{Error, Result};

/// Writes `--mem`, `--mem-high` and `--swap` to the group `dir`.
pub fn apply(dir: &Path, limits: &Limits) -> Result<()> {
    if let Some(bytes) = limits.memory_bytes {
        write(&dir.join("memory.max"), &bytes.to_string())?;
    }
    if let Some(high) = limits.memory_high {
        write(&dir.join("memory.high"), &high.to_string())?;
    }
    let swap = dir.join("memory.swap.max");
    match limits.swap_bytes {
        Some(s) if swap.exists() => write(&swap, &s.to_string())?,
        Some(_) => {
            return Err(Error::Unsupported {
                limit: "--swap",
                reason: format!(
                    "{} has no memory.swap.max: this kernel does not account swap (CONFIG_MEMCG_SWAP, swapaccount=0)",
                    dir.display()
                ),
            })
        }
        // Without this the group swaps instead of being OOM-killed: the limit would not be real.
        None if limits.memory_bytes.is_some() && swap.exists() => write(&swap, "0")?,
        None => {}
    }
    Ok(())
}

/// cgroup v2 `memory.peak`, `memory.events` and `memory.swap.peak` (Linux 6.5+).
pub fn stats(peak: Option<&str>, events: Option<&str>, swap_peak: Option<&str>) -> MemoryStats {
    let ev = events.map(parse_keyed);
    let event = |k: &str| ev.as_ref().and_then(|m| m.get(k).copied());
    MemoryStats {
        peak_bytes: peak.and_then(parse_single),
        oom_events: event("oom"),
        oom_kills: event("oom_kill"),
        tcp_peak_bytes: None,
        high_events: event("high"),
        swap_peak_bytes: swap_peak.and_then(parse_single),
        memsw_peak_bytes: None,
        at_peak: MemoryBreakdown::default(),
    }
}

/// cgroup v2 `memory.stat`: anon, file, kernel (Linux 5.18+; else unknown, not summed from its
/// parts), sock, shmem.
pub fn breakdown(memory_stat: &str) -> MemoryBreakdown {
    let m = parse_keyed(memory_stat);
    let k = |k: &str| m.get(k).copied();
    MemoryBreakdown {
        anon_bytes: k("anon"),
        file_bytes: k("file"),
        kernel_bytes: k("kernel"),
        sock_bytes: k("sock"),
        shmem_bytes: k("shmem"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn v2_memory_stat_breakdown() {
        let b = breakdown(&fixture("v2/memory.stat"));
        let want = MemoryBreakdown {
            anon_bytes: Some(26_214_400),
            file_bytes: Some(8_388_608),
            kernel_bytes: Some(1_572_864),
            sock_bytes: Some(4096),
            shmem_bytes: Some(2_097_152),
        };
        assert_eq!(b, want);
        assert_eq!(breakdown("anon 1\n").kernel_bytes, None, "no `kernel` (before 5.18): unknown");
    }

    #[test]
    fn v2_memory_events_and_peak() {
        let m = stats(Some("33554432\n"), Some(&fixture("v2/memory.events")), Some("8192\n"));
        let want = MemoryStats {
            peak_bytes: Some(33554432),
            oom_events: Some(2),
            oom_kills: Some(1),
            high_events: Some(7),
            swap_peak_bytes: Some(8192),
            ..Default::default()
        };
        assert_eq!(m, want);
        let m = stats(None, None, None);
        assert_eq!(m, MemoryStats::default());
    }
}
