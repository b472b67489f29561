//! `linux.sysctl`, `linux.devices` and `domainname`: kernel state the container gets in its own
//! namespaces and /dev. A config that reaches past them is refused, nothing created: a sysctl
//! that is not namespaced (kernel.core_pattern runs a host program as root on every crash), a
//! key that walks out of /proc/sys, a device path outside /dev.

use std::path::{Component, Path};

use oci_spec::runtime::{Linux, LinuxDeviceType};

use super::invalid;
use crate::config::{Config, DeviceNode};
use crate::error::Error;

/// The ipc namespace's sysctls (runc's list, from ipc_namespace's sysctl table).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace whose sysctl `key` is (`ipc`, `net`, `uts`): writing it changes that namespace
/// only. `None`: a sysctl of the whole kernel, never written.
pub fn namespace_of(key: &str) -> Option<&'static str> {
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some("ipc")
    } else if key.starts_with("net.") {
        Some("net")
    } else if key == "kernel.domainname" || key == "kernel.hostname" {
        Some("uts")
    } else {
        None
    }
}

/// Whether `key` belongs to a namespace (ipc, network, uts) rather than the whole kernel.
pub fn namespaced(key: &str) -> bool {
    namespace_of(key).is_some()
}

/// What would be written into a namespace the container shares with the runtime (a type left
/// out of linux.namespaces, i.e. the host's): hostname, domainname and that namespace's sysctls
/// are refused, as runc refuses them ("not allowed in the host's network namespace"), instead of
/// changing the host's hostname or net.ipv4.ip_forward.
pub fn refuse_shared_writes(cfg: &Config) -> Result<(), Error> {
    let why = |ns: &str| {
        let ty = if ns == "net" { "network" } else { ns };
        format!(
            "nothing of the {ns} namespace without a new one: linux.namespaces has no {ty}, so the container \
             shares the runtime's (the host's) {ns} namespace; add {{\"type\": \"{ty}\"}}"
        )
    };
    if let Some(h) = cfg.hostname.as_ref().filter(|_| cfg.shares("uts")) {
        return Err(invalid("hostname", h, &why("uts")));
    }
    for (k, v) in &cfg.sysctl {
        let Some(ns) = namespace_of(k).filter(|ns| cfg.shares(ns)) else { continue };
        return Err(match k.as_str() {
            "kernel.domainname" => invalid("domainname", v, &why(ns)),
            _ => invalid("linux.sysctl", k, &why(ns)),
        });
    }
    Ok(())
}

/// A key is dot-separated names of letters, digits, `_` and `-`: no `/`, no empty part, so the
/// path it becomes stays below /proc/sys (`net.ipv4/../../kernel/core_pattern` is refused).
fn well_formed(key: &str) -> bool {
    !key.is_empty()
        && key
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

pub fn sysctl(linux: &Linux, cfg: &mut Config) -> Result<(), Error> {
    let mut keys: Vec<_> = linux.sysctl().iter().flatten().collect();
    keys.sort();
    for (k, v) in keys {
        if !well_formed(k) {
            return Err(invalid("linux.sysctl key", k, "dot-separated names such as net.ipv4.ip_forward"));
        }
        if !namespaced(k) {
            return Err(invalid(
                "linux.sysctl",
                k,
                "a sysctl of the container's own namespaces (net.*, fs.mqueue.*, the ipc kernel.msg*/sem/shm*, \
                 kernel.hostname/domainname): others change the host",
            ));
        }
        if v.contains('\n') {
            return Err(invalid(&format!("linux.sysctl {k}"), v, "one line"));
        }
        cfg.sysctl.push((k.clone(), v.clone()));
    }
    Ok(())
}

/// `domainname`: the NIS domain name of the container's own uts namespace.
pub fn domainname(d: &str, cfg: &mut Config) -> Result<(), Error> {
    if d.len() > 64 || d.contains(['\n', '\0']) {
        return Err(invalid("domainname", d, "at most 64 bytes on one line"));
    }
    cfg.sysctl.push(("kernel.domainname".into(), d.to_string()));
    Ok(())
}

/// Devices sandbox makes itself (bound from the host): a config listing one keeps ours.
const OWN: [&str; 6] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"];

pub fn devices(linux: &Linux, cfg: &mut Config) -> Result<(), Error> {
    for d in linux.devices().iter().flatten() {
        let p = d.path();
        let shown = p.display().to_string();
        let below_dev = p.is_absolute()
            && p.starts_with("/dev")
            && p != Path::new("/dev")
            && p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !below_dev {
            return Err(invalid("linux.devices path", &shown, "a path below /dev without '..'"));
        }
        if ["/dev/pts", "/dev/shm", "/dev/mqueue"].iter().any(|m| p.starts_with(m)) {
            return Err(invalid("linux.devices path", &shown, "a path outside sandbox's /dev mounts"));
        }
        if OWN.iter().any(|o| p == Path::new(o)) {
            continue;
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => 'p',
            t => return Err(invalid("linux.devices type", &format!("{t:?}"), "c, u, b or p")),
        };
        let (major, minor) = (d.major(), d.minor());
        if kind != 'p' && (major < 0 || minor < 0) {
            return Err(invalid("linux.devices", &format!("{shown} {major}:{minor}"), "a major and a minor number"));
        }
        let mode = d.file_mode().unwrap_or(0o666);
        if mode & !0o777 != 0 {
            return Err(invalid("linux.devices fileMode", &format!("{mode:o}"), "permission bits (at most 0777)"));
        }
        if cfg.devices.iter().any(|x| x.path == *p) {
            return Err(invalid("linux.devices path", &shown, "each path once"));
        }
        cfg.devices.push(DeviceNode {
            path: p.clone(),
            kind,
            major: major.max(0) as u64,
            minor: minor.max(0) as u64,
            mode,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(())
}
