//! `update --resources FILE|- ID`: new limits for a running container from a runtime-spec
//! LinuxResources JSON (what containerd's shim and podman pass), through the same mapping as
//! config.json's linux.resources ([`super::resources`]) and sandbox's all-or-nothing cgroup
//! update ([`crate::cgroup::Cgroup::update`]: a memory limit below the current usage is refused,
//! a write the kernel refuses puts the files written before it back). The state keeps the
//! limits the container now has.

use std::path::{Path, PathBuf};

use super::runtime::find;
use crate::container::Status;
use crate::error::{Error, Result};

pub fn update(root: &Path, id: &str, resources: Option<&PathBuf>) -> Result<i32> {
    let Some(f) = resources else {
        return Err(Error::invalid("update", id, "--resources FILE (or - for stdin): a LinuxResources JSON"));
    };
    let text = if f.as_os_str() == "-" {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut s).map_err(|e| Error::io("cannot read", "-", e))?;
        s
    } else {
        std::fs::read(f).map_err(|e| Error::io("cannot read", f, e))?
    };
    let r: oci_spec::runtime::LinuxResources = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid("--resources", &f.display().to_string(), &format!("a runtime-spec LinuxResources JSON ({e})"))
    })?;
    // Only the fields given: the mapping writes into an empty config's limits.
    let mut cfg = crate::Config::new(["-"]);
    super::resources::apply(&r, &mut cfg)?;
    let mut new = cfg.limits;
    // The device rules go apart (update_devices below), completed with the container's own nodes.
    new.cgroup_conf.retain(|c| !is_device_rule(c));
    for (field, given) in [
        ("cpu.cpus", new.cpuset_cpus.is_some()),
        ("cpu.mems", new.cpuset_mems.is_some()),
        ("unified", !new.cgroup_conf.is_empty()),
    ] {
        if given {
            return Err(Error::container(format!(
                "update: linux.resources.{field} cannot be changed on a live container yet"
            )));
        }
    }
    let mut c = find(root, id)?;
    if !matches!(c.state.status, Status::Running | Status::Paused | Status::Created) {
        return Err(Error::container(format!("cannot update container {id}: container not running")));
    }
    let Some(cg) = c.state.cgroup.clone() else {
        return Err(Error::container(format!("cannot update container {id}: it has no cgroup")));
    };
    let group = crate::cgroup::open(cg.version, &cg.paths)?;
    // New device rules replace the old list: on v2 a new program replaces the container's (the
    // old one stays until the new one is attached); on v1 they are written to its devices group,
    // on top of the old list (the same when the list starts with deny-all, as engines' lists do).
    let mut devices = vec![];
    if let Some(d) = r.devices().as_ref().filter(|d| !d.is_empty()) {
        super::resources_devices::apply(d, &c.state.config.devices, &mut devices)?;
    }
    let done = c.update(|s| {
        group.update(&new)?;
        if !devices.is_empty() {
            crate::cgroup::update_devices(cg.version, &cg.paths, &devices)?;
            s.config.limits.cgroup_conf.retain(|c| !is_device_rule(c));
            s.config.limits.cgroup_conf.extend(devices.iter().cloned());
        }
        merge(&mut s.config.limits, &new);
        Ok::<(), Error>(())
    })?;
    done.map(|_| 0)
}

fn is_device_rule(c: &crate::limits::CgroupConf) -> bool {
    c.file == "devices.allow" || c.file == "devices.deny"
}

/// The limits given in `new` replace those of `old`; io rules replace those of the same disk and
/// kind (as `sandbox update` keeps them).
fn merge(old: &mut crate::Limits, new: &crate::Limits) {
    macro_rules! take {
        ($($f:ident),*) => { $( if new.$f.is_some() { old.$f = new.$f.clone(); } )* };
    }
    take!(memory_bytes, memory_high, swap_bytes, cpus, cpu_weight, pids, io_weight);
    for r in &new.io {
        old.io.retain(|o| !(o.major == r.major && o.minor == r.minor && o.limit == r.limit));
        old.io.push(r.clone());
    }
}
