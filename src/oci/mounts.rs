//! `mounts`: the standard ones are sandbox's own (already hardened: nosuid, nodev, noexec, /sys
//! and /sys/fs/cgroup read-only), binds become [`Bind`]s, other tmpfs mounts [`Tmpfs`]; any
//! other type or an option sandbox would not apply is refused, naming the mount.

use std::path::Path;

use oci_spec::runtime::Mount;

use super::{invalid, unsupported};
use crate::config::{Bind, Config, MountOpts, Tmpfs};
use crate::error::Error;

/// Mounts every sandbox makes itself, with the type the spec gives them.
const STANDARD: [(&str, &str); 7] = [
    ("/proc", "proc"),
    ("/dev", "tmpfs"),
    ("/dev/pts", "devpts"),
    ("/dev/shm", "tmpfs"),
    ("/dev/mqueue", "mqueue"),
    ("/sys", "sysfs"),
    ("/sys/fs/cgroup", "cgroup"),
];

pub fn apply(mounts: &[Mount], bundle: &Path, cfg: &mut Config) -> Result<(), Error> {
    for (i, m) in mounts.iter().enumerate() {
        let field = format!("mounts[{i}] ({})", m.destination().display());
        let dst = m.destination();
        if !dst.is_absolute() {
            return Err(invalid(&field, &dst.display().to_string(), "an absolute destination"));
        }
        let opts: Vec<&str> = m.options().iter().flatten().map(String::as_str).collect();
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        let idmapped = m.uid_mappings().is_some()
            || m.gid_mappings().is_some()
            || opts.iter().any(|o| *o == "idmap" || *o == "ridmap");
        if idmapped && !is_bind {
            return Err(unsupported(&field, "idmapped mounts are bind mounts here (type bind, or option bind/rbind)"));
        }
        // podman binds a tmpfs of its own at /dev/shm (containers sharing an ipc namespace share
        // it): that bind goes over sandbox's /dev/shm, as any bind below /dev does.
        let shm_bind = is_bind && dst == Path::new("/dev/shm");
        if let Some((_, std_type)) = STANDARD.iter().find(|(d, _)| Path::new(d) == dst && !shm_bind) {
            let std_type = if *std_type == "cgroup" && typ == "cgroup2" { "cgroup2" } else { std_type };
            if typ != std_type || is_bind {
                return Err(unsupported(&field, &format!("sandbox mounts its own {std_type} there")));
            }
            cfg.mqueue |= dst == Path::new("/dev/mqueue");
            if dst == Path::new("/dev/shm") {
                if let Some(size) = opts.iter().find_map(|o| o.strip_prefix("size=")) {
                    cfg.shm_size = parse_size(&field, size)?;
                }
            }
            continue;
        }
        let seq = i as u32;
        if is_bind {
            cfg.binds.push(bind(&field, m, &opts, bundle, seq)?);
        } else if typ == "tmpfs" {
            let mut size = None;
            let mut mo = MountOpts { seq, ..Default::default() };
            for o in &opts {
                if common(o, &mut mo) {
                    continue;
                }
                match *o {
                    "nodev" | "rw" => {}
                    o if o.starts_with("size=") => size = Some(parse_size(&field, &o[5..])?),
                    o if o.starts_with("mode=") => {
                        let m = u32::from_str_radix(&o[5..], 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| invalid(&format!("{field} mode"), &o[5..], "an octal mode"))?;
                        mo.mode = Some(m);
                    }
                    o => return Err(unsupported(&format!("{field} option {o:?}"), "sandbox's tmpfs is nosuid,nodev")),
                }
            }
            cfg.tmpfs.push(Tmpfs { dst: dst.clone(), size, opts: mo });
        } else {
            return Err(unsupported(&field, &format!("mount type {typ:?} (sandbox mounts bind and tmpfs)")));
        }
    }
    Ok(())
}

/// Options any bind or tmpfs takes: propagation, nosuid, noexec, and the atime ones (which
/// change no access: taken as they come).
fn common(o: &str, mo: &mut MountOpts) -> bool {
    match o {
        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" | "unbindable" | "runbindable" => {
            mo.propagation = Some(o.to_string())
        }
        "nosuid" => mo.nosuid = true,
        "noexec" => mo.noexec = true,
        "relatime" | "norelatime" | "strictatime" | "nostrictatime" | "noatime" | "atime" | "nodiratime" => {}
        _ => return false,
    }
    true
}

fn bind(field: &str, m: &Mount, opts: &[&str], bundle: &Path, seq: u32) -> Result<Bind, Error> {
    let src = m.source().as_ref().ok_or_else(|| invalid(field, "", "a source for the bind mount"))?;
    let src = if src.is_absolute() { src.clone() } else { bundle.join(src) };
    let mut read_only = false;
    let mut recursive = false;
    let mut mo = MountOpts { seq, ..Default::default() };
    for o in opts {
        if common(o, &mut mo) {
            continue;
        }
        match *o {
            "rbind" | "ridmap" => recursive = true,
            "idmap" => {}
            "bind" | "rw" | "nodev" => {}
            "ro" => read_only = true,
            // tmpfs data a bind ignores (the suite's mounts pass them to every mount).
            o if o.starts_with("mode=") || o.starts_with("size=") => {}
            // suid, dev, exec…: sandbox binds are nodev and keep the source's flags otherwise;
            // dropping an option would give the container more or less than the config says.
            o => {
                return Err(unsupported(
                    &format!("{field} option {o:?}"),
                    "sandbox binds take bind, rbind, ro, rw, nosuid, noexec, nodev, atime and propagation options",
                ))
            }
        }
    }
    mo.non_recursive = !recursive;
    mo.idmap = idmap(field, m)?;
    Ok(Bind { src, dst: m.destination().clone(), read_only, opts: mo })
}

/// Sizes in mount options: bytes, or with k/m/g (tmpfs's units).
/// An idmapped bind's maps (runtime-spec 1.1 `uidMappings`/`gidMappings`, as runc and crun
/// read them: files owned by `containerID` on the source are seen as `hostID`). Both are needed:
/// sandbox has no container user namespace to take the other from (options idmap/ridmap alone).
fn idmap(field: &str, m: &Mount) -> Result<Option<crate::userns::UserNs>, Error> {
    let idmap_opt = m.options().iter().flatten().any(|o| o == "idmap" || o == "ridmap");
    let lines = |v: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Option<Vec<crate::userns::IdMap>> {
        v.as_ref().map(|v| {
            v.iter()
                .map(|l| crate::userns::IdMap { inside: l.container_id(), outside: l.host_id(), count: l.size() })
                .collect()
        })
    };
    match (lines(m.uid_mappings()), lines(m.gid_mappings())) {
        (None, None) if !idmap_opt => Ok(None),
        (Some(uids), Some(gids)) => {
            for (what, v) in [("uidMappings", &uids), ("gidMappings", &gids)] {
                if v.is_empty() || v.len() > 340 || v.iter().any(|l| l.count == 0 || l.inside.checked_add(l.count).is_none()) {
                    return Err(invalid(&format!("{field} {what}"), &format!("{v:?}"), "1 to 340 ranges of size > 0"));
                }
            }
            Ok(Some(crate::userns::UserNs { uids, gids, deny_setgroups: false }))
        }
        _ => Err(unsupported(
            field,
            "an idmapped mount needs both uidMappings and gidMappings (sandbox does not take them from a container user namespace)",
        )),
    }
}

fn parse_size(field: &str, s: &str) -> Result<u64, Error> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| invalid(&format!("{field} size"), s, "a size in bytes, or with k, m or g"))
}
