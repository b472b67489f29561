//! The parts of `linux.resources` that sandbox's [`crate::Limits`] has no field for, written as
//! the group's files by name (the engine's `--cgroup-conf` path: each file must exist in the
//! group, or the run is refused naming it). Where the host's cgroup version has no such file the
//! field is refused, naming it: never ignored.

use oci_spec::runtime::LinuxResources;

use super::{invalid, unsupported};
use crate::error::Error;
use crate::limits::CgroupConf;

pub fn apply(r: &LinuxResources, v1: bool, out: &mut Vec<CgroupConf>) -> Result<(), Error> {
    let mut put = |file: &str, value: String| out.push(CgroupConf { file: file.into(), value });
    let only_v1 = |field: &str| unsupported(field, "cgroup v2 has no such setting (this host runs cgroup v2)");
    if let Some(m) = r.memory() {
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(invalid("linux.resources.memory.swappiness", &s.to_string(), "0 to 100"));
            }
            if !v1 {
                return Err(only_v1("linux.resources.memory.swappiness"));
            }
            put("memory.swappiness", s.to_string());
        }
        if m.disable_oom_killer() == Some(true) {
            if !v1 {
                return Err(only_v1("linux.resources.memory.disableOOMKiller"));
            }
            put("memory.oom_control", "1".into());
        }
    }
    if let Some(c) = r.cpu() {
        // v1: the exact shares (the engine's weight is converted and would round them).
        if let Some(shares) = c.shares().filter(|s| *s > 0 && v1) {
            put("cpu.shares", shares.clamp(2, 262_144).to_string());
        }
        // The exact quota and period (the engine's --cpus is their ratio, over its own period).
        if let Some(q) = c.quota().filter(|q| *q > 0) {
            let period = c.period().unwrap_or(100_000);
            if !(1_000..=1_000_000).contains(&period) {
                return Err(invalid("linux.resources.cpu.period", &period.to_string(), "1000 to 1000000 (µs)"));
            }
            if v1 {
                put("cpu.cfs_period_us", period.to_string());
                put("cpu.cfs_quota_us", q.to_string());
            } else {
                put("cpu.max", format!("{q} {period}"));
            }
        }
        // The period before the runtime: the kernel checks runtime against it.
        for (field, file, v) in [
            ("linux.resources.cpu.realtimePeriod", "cpu.rt_period_us", c.realtime_period().map(|v| v as i64)),
            ("linux.resources.cpu.realtimeRuntime", "cpu.rt_runtime_us", c.realtime_runtime()),
        ] {
            if let Some(v) = v {
                if !v1 {
                    return Err(only_v1(field));
                }
                put(file, v.to_string());
            }
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight() {
            if !(10..=1000).contains(&w) {
                return Err(invalid("linux.resources.blockIO.weight", &w.to_string(), "10 to 1000"));
            }
            put(if v1 { "blkio.weight" } else { "io.weight" }, w.to_string());
        }
        if let Some(w) = b.leaf_weight() {
            // CFQ's; gone from kernels since 5.0 (with CFQ): the group has no such file and the
            // run is refused naming it.
            if !v1 {
                return Err(only_v1("linux.resources.blockIO.leafWeight"));
            }
            put("blkio.leaf_weight", w.to_string());
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                let dev = format!("{}:{}", d.major(), d.minor());
                put(if v1 { "blkio.weight_device" } else { "io.weight" }, format!("{dev} {w}"));
            }
        }
        let lists = [
            (b.throttle_read_bps_device(), "blkio.throttle.read_bps_device", "rbps"),
            (b.throttle_write_bps_device(), "blkio.throttle.write_bps_device", "wbps"),
            (b.throttle_read_iops_device(), "blkio.throttle.read_iops_device", "riops"),
            (b.throttle_write_iops_device(), "blkio.throttle.write_iops_device", "wiops"),
        ];
        for (list, v1_file, v2_key) in lists {
            for d in list.iter().flatten() {
                let dev = format!("{}:{}", d.major(), d.minor());
                if v1 {
                    put(v1_file, format!("{dev} {}", d.rate()));
                } else {
                    put("io.max", format!("{dev} {v2_key}={}", d.rate()));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(json: &str, v1: bool) -> Result<Vec<String>, Error> {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        let mut out = vec![];
        apply(&r, v1, &mut out)?;
        Ok(out.into_iter().map(|c| format!("{}={}", c.file, c.value)).collect())
    }

    #[test]
    fn v1_files_carry_exact_values() {
        let j = r#"{"memory":{"swappiness":10,"disableOOMKiller":true},"cpu":{"shares":1024,"quota":50000,"period":500000,"realtimePeriod":1000000,"realtimeRuntime":950000},
                   "blockIO":{"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#;
        assert_eq!(
            conf(j, true).unwrap(),
            [
                "memory.swappiness=10",
                "memory.oom_control=1",
                "cpu.shares=1024",
                "cpu.cfs_period_us=500000",
                "cpu.cfs_quota_us=50000",
                "cpu.rt_period_us=1000000",
                "cpu.rt_runtime_us=950000",
                "blkio.throttle.read_bps_device=8:0 1048576"
            ]
        );
    }

    #[test]
    fn v1_only_settings_are_refused_on_v2_naming_the_field() {
        let e = conf(r#"{"memory":{"swappiness":10}}"#, false).unwrap_err().to_string();
        assert!(e.contains("linux.resources.memory.swappiness"), "{e}");
        let io = conf(r#"{"blockIO":{"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":10}]}}"#, false).unwrap();
        assert_eq!(io, ["io.max=8:0 wiops=10"]);
    }
}
