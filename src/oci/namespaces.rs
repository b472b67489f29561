//! `linux` (besides resources): namespaces, uid/gid mappings, cgroupsPath, masked and read-only
//! paths, seccomp, sysctl, devices, labels; and `hooks`.

use std::collections::HashSet;

use oci_spec::runtime::{Hooks, Linux, LinuxNamespaceType as Ns};

use super::{invalid, unsupported};
use crate::config::Config;
use crate::error::Error;
use crate::userns::{IdMap, UserNs};

pub fn apply(linux: &Linux, cfg: &mut Config) -> Result<(), Error> {
    namespaces(linux, cfg)?;
    super::kernel::sysctl(linux, cfg)?;
    super::kernel::refuse_shared_writes(cfg)?;
    super::kernel::devices(linux, cfg)?;
    super::lsm::check(None, None, linux.mount_label().as_deref(), std::path::Path::new("/sys"))?;
    if let Some(p) = linux.cgroups_path() {
        super::cgroups_path::apply(p, cfg)?;
    }
    // Masked and read-only paths are applied beside sandbox's own lists (never fewer).
    let own = |p: &str| crate::plan::MASKED.contains(&p) || crate::plan::READ_ONLY.contains(&p);
    for (field, list, out) in [
        ("linux.maskedPaths", linux.masked_paths(), &mut cfg.masked_paths),
        ("linux.readonlyPaths", linux.readonly_paths(), &mut cfg.read_only_paths),
    ] {
        for p in list.iter().flatten() {
            let path = std::path::Path::new(p);
            if !path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(invalid(field, p, "absolute paths without '..'"));
            }
            if !own(p) {
                out.push(path.to_path_buf());
            }
        }
    }
    if let Some(s) = linux.seccomp() {
        let json = serde_json::to_string(s).map_err(|e| invalid("linux.seccomp", "", &e.to_string()))?;
        cfg.seccomp = crate::seccomp::Policy::Profile { path: "config.json linux.seccomp".into(), json };
    }
    match linux.rootfs_propagation().as_deref() {
        None | Some("") | Some("private") | Some("rprivate") => {}
        // Within the container's own mount namespace (made private first): no peer group of
        // the host's is joined, whatever the type.
        Some(p @ ("shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable")) => {
            cfg.rootfs_propagation = Some(p.to_string())
        }
        Some(p) => return Err(invalid("linux.rootfsPropagation", p, "shared, slave, private or unbindable (r… too)")),
    }
    for (field, set) in [
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.personality", linux.personality().is_some()),
        ("linux.timeOffsets", linux.time_offsets().is_some()),
    ] {
        if set {
            return Err(unsupported(field, "sandbox does not set it yet"));
        }
    }
    Ok(())
}

/// New namespaces, or another container's net, ipc, uts, pid or mount namespace joined by path (a
/// pod; a path to the runtime's own namespace is refused: container/create.rs). A net, ipc, uts
/// or pid type left out is shared with the runtime ([`Config::shared_namespaces`]); a config
/// without mount is refused. The cgroup namespace is always new (the cgroupfs view is made for
/// it), whether listed or not.
fn namespaces(linux: &Linux, cfg: &mut Config) -> Result<(), Error> {
    let list = linux.namespaces().clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for n in &list {
        let name = format!("{:?}", n.typ()).to_lowercase();
        if !seen.insert(n.typ()) {
            return Err(invalid("linux.namespaces", &name, "each namespace type once"));
        }
        if let Some(p) = n.path() {
            let field = format!("linux.namespaces {name} path");
            // A pod: the containers join the pause container's net, ipc and uts, and (shared pid
            // or mount namespace, as runc does) its pid or mount namespace. Never the host's
            // (container/create.rs). Joining a user or cgroup namespace is not done.
            let kind = match n.typ() {
                Ns::Network => "net",
                Ns::Ipc => "ipc",
                Ns::Uts => "uts",
                Ns::Pid => "pid",
                Ns::Mount => "mnt",
                _ => {
                    return Err(unsupported(
                        &field,
                        "sandbox joins existing net, ipc, uts, pid and mount namespaces only",
                    ))
                }
            };
            if !p.is_absolute() {
                return Err(invalid(&field, &p.display().to_string(), "an absolute path such as /proc/PID/ns/net"));
            }
            cfg.join_namespaces.push((kind.to_string(), p.clone()));
        }
        if n.typ() == Ns::Time {
            return Err(unsupported("linux.namespaces time", "sandbox does not make time namespaces"));
        }
    }
    // runtime-spec: a type left out is the runtime's own namespace of that type. Kubernetes'
    // hostNetwork, hostIPC and hostPID pods are made so (containerd's CRI drops the type).
    if !seen.contains(&Ns::Mount) {
        return Err(unsupported(
            "linux.namespaces without mount",
            "every sandbox container gets its own mount namespace, made private before its first mount, \
             so that nothing it mounts can change the host's mounts; add {\"type\": \"mount\"}",
        ));
    }
    for (ns, kind) in [(Ns::Network, "net"), (Ns::Ipc, "ipc"), (Ns::Uts, "uts"), (Ns::Pid, "pid")] {
        if !seen.contains(&ns) {
            cfg.shared_namespaces.push(kind.to_string());
        }
    }
    let maps = |field: &str, m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Result<Vec<IdMap>, Error> {
        let v: Vec<IdMap> = m
            .iter()
            .flatten()
            .map(|m| IdMap { inside: m.container_id(), outside: m.host_id(), count: m.size() })
            .collect();
        if v.iter().any(|m| m.count == 0) {
            return Err(invalid(field, "size 0", "mappings of at least one id"));
        }
        Ok(v)
    };
    let uids = maps("linux.uidMappings", linux.uid_mappings())?;
    let gids = maps("linux.gidMappings", linux.gid_mappings())?;
    if seen.contains(&Ns::User) && !cfg.join_namespaces.is_empty() {
        return Err(unsupported("linux.namespaces path", "joining namespaces together with a new user namespace"));
    }
    if seen.contains(&Ns::User) {
        if uids.is_empty() || gids.is_empty() {
            return Err(invalid("linux.uidMappings", "[]", "uid and gid mappings with a user namespace"));
        }
        cfg.userns = Some(UserNs { uids, gids, deny_setgroups: false });
    } else if !uids.is_empty() || !gids.is_empty() {
        return Err(invalid("linux.uidMappings", "…", "mappings only with a user namespace"));
    }
    Ok(())
}

/// Hooks: see [`super::hooks::check`].
pub fn check_hooks(hooks: &Option<Hooks>) -> Result<(), Error> {
    super::hooks::check(hooks)
}
