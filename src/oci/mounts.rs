//! `mounts`: the standard ones are sandbox's own (already hardened: nosuid, nodev, noexec, /sys
//! and /sys/fs/cgroup read-only), binds become [`Bind`]s, other tmpfs mounts [`Tmpfs`]; any
//! other type or an option sandbox would not apply is refused, naming the mount.

use std::path::Path;

use oci_spec::runtime::Mount;

use super::{invalid, unsupported};
use crate::config::{Bind, Config, Tmpfs};
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
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(unsupported(&field, "idmapped mounts are not supported yet"));
        }
        if let Some((_, std_type)) = STANDARD.iter().find(|(d, _)| Path::new(d) == dst) {
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
        if is_bind {
            cfg.binds.push(bind(&field, m, &opts, bundle)?);
        } else if typ == "tmpfs" {
            let mut size = None;
            for o in &opts {
                match *o {
                    "nosuid" | "nodev" | "rw" | "relatime" | "strictatime" | "noatime" => {}
                    o if o.starts_with("size=") => size = Some(parse_size(&field, &o[5..])?),
                    o if o.starts_with("mode=") => {}
                    o => return Err(unsupported(&format!("{field} option {o:?}"), "sandbox's tmpfs is nosuid,nodev")),
                }
            }
            cfg.tmpfs.push(Tmpfs { dst: dst.clone(), size });
        } else {
            return Err(unsupported(&field, &format!("mount type {typ:?} (sandbox mounts bind and tmpfs)")));
        }
    }
    Ok(())
}

fn bind(field: &str, m: &Mount, opts: &[&str], bundle: &Path) -> Result<Bind, Error> {
    let src = m.source().as_ref().ok_or_else(|| invalid(field, "", "a source for the bind mount"))?;
    let src = if src.is_absolute() { src.clone() } else { bundle.join(src) };
    let mut read_only = false;
    let mut recursive = false;
    for o in opts {
        match *o {
            "rbind" => recursive = true,
            "bind" => {}
            "ro" => read_only = true,
            "rw" | "private" | "rprivate" => {}
            // sandbox binds are recursive and keep the source's flags: dropping a stricter
            // option would give the container more than the config allows.
            o => {
                return Err(unsupported(
                    &format!("{field} option {o:?}"),
                    "sandbox binds take bind, rbind, ro, rw, rprivate",
                ))
            }
        }
    }
    if !recursive {
        return Err(unsupported(&format!("{field} option \"bind\""), "sandbox binds are recursive: use rbind"));
    }
    Ok(Bind { src, dst: m.destination().clone(), read_only })
}

/// Sizes in mount options: bytes, or with k/m/g (tmpfs's units).
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
