//! `linux.resources` → [`crate::Limits`]: memory (limit, swap, reservation), cpu (shares, quota /
//! period, cpus, mems), pids, unified, devices (resources_devices.rs). The rest is refused, naming the field.

use oci_spec::runtime::LinuxResources;

use super::{invalid, unsupported};
use crate::config::Config;
use crate::error::Error;
use crate::limits::CgroupConf;

pub fn apply(r: &LinuxResources, cfg: &mut Config) -> Result<(), Error> {
    // What only one cgroup version has a file for (v1: exact cpu.shares, swappiness, the OOM
    // killer switch, realtime; v2: io.max) goes through the group's files by name.
    // The layout alone (statfs): not the whole Host (mountinfo and our own groups), which only
    // `create` needs.
    let v1 = crate::cgroup::Layout::detect(&cfg.cgroup_root).is_ok_and(|l| l != crate::cgroup::Layout::Unified);
    super::resources_files::apply(r, v1, &mut cfg.limits.cgroup_conf)?;
    let l = &mut cfg.limits;
    if let Some(m) = r.memory() {
        // -1 is "unlimited" in the spec.
        let pos = |v: Option<i64>| v.filter(|v| *v >= 0).map(|v| v as u64);
        l.memory_bytes = pos(m.limit());
        if let Some(swap) = pos(m.swap()) {
            // OCI's swap is memory+swap (v1 memsw); sandbox's --swap is the swap alone.
            let mem = l.memory_bytes.ok_or_else(|| {
                invalid("linux.resources.memory.swap", &swap.to_string(), "a swap limit only beside memory.limit")
            })?;
            if swap < mem {
                return Err(invalid(
                    "linux.resources.memory.swap",
                    &swap.to_string(),
                    "memory+swap, at least memory.limit",
                ));
            }
            l.swap_bytes = Some(swap - mem);
        } else if m.swap() == Some(-1) {
            return Err(unsupported(
                "linux.resources.memory.swap -1",
                "sandbox always bounds swap beside a memory limit",
            ));
        }
        l.memory_high = pos(m.reservation());
        // kernel and kernelTCP are deprecated by runtime-spec 1.2 ("runtimes MAY ignore"), as
        // runc does: kernel memory is part of memory.limit on cgroup v2 and since Linux 5.4's
        // removal of separate kmem limits on v1. They bound nothing beyond the memory limit.
        for (field, set) in [
            ("linux.resources.memory.useHierarchy", m.use_hierarchy() == Some(false)),
            ("linux.resources.memory.checkBeforeUpdate", m.check_before_update() == Some(true)),
        ] {
            if set {
                return Err(unsupported(field, "sandbox does not set it"));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s > 0) {
            // runc's conversion of v1 shares [2, 262144] to v2 weight [1, 10000].
            let shares = shares.clamp(2, 262_144);
            l.cpu_weight = Some(1 + ((shares - 2) * 9999) / 262_142);
        }
        if let Some(q) = c.quota().filter(|q| *q > 0) {
            l.cpus = Some(q as f64 / c.period().unwrap_or(100_000) as f64);
        }
        l.cpuset_cpus = c.cpus().clone().filter(|s| !s.is_empty());
        l.cpuset_mems = c.mems().clone().filter(|s| !s.is_empty());
        for (field, set) in [
            ("linux.resources.cpu.idle", c.idle().is_some_and(|i| i != 0)),
            ("linux.resources.cpu.burst", c.burst().is_some()),
        ] {
            if set {
                return Err(unsupported(field, "sandbox does not set it"));
            }
        }
    }
    if let Some(p) = r.pids() {
        l.pids = (p.limit() > 0).then_some(p.limit() as u64);
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (file, value) in keys {
            if file.contains('/') || file.starts_with('.') {
                return Err(invalid("linux.resources.unified", file, "a cgroup file name"));
            }
            l.cgroup_conf.push(CgroupConf { file: file.clone(), value: value.clone() });
        }
    }
    // The device cgroup (see resources_devices.rs): v1 files; on v2 a BPF program.
    if let Some(devs) = r.devices() {
        super::resources_devices::apply(devs, &cfg.devices, &mut cfg.limits.cgroup_conf)?;
    }
    for (field, set) in [
        ("linux.resources.hugepageLimits", r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())),
        ("linux.resources.network", r.network().is_some()),
        ("linux.resources.rdma", r.rdma().as_ref().is_some_and(|h| !h.is_empty())),
    ] {
        if set {
            return Err(unsupported(field, "sandbox does not set it yet"));
        }
    }
    Ok(())
}
