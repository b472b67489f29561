//! `linux.cgroupsPath` → where the container's group is made (runtime-spec config-linux.md):
//! - absolute (`/a/b/ID`): exactly that group, relative to each hierarchy's root, as runc does;
//! - relative (`a/b/ID`): below the invoking process's own cgroup in each hierarchy (never at a
//!   controller root it does not own);
//! - with `--systemd-cgroup`, systemd's `slice:prefix:name`: the cgroupfs path systemd would use
//!   (`a-b.slice` → `/a.slice/a-b.slice`, `prefix-name.scope`) when systemd is not running, and a
//!   clear error when it is (sandbox does not ask systemd for units).
//!
//! The parents the runtime makes for it are recorded and removed (when empty) on `delete`.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{invalid, unsupported};
use crate::config::Config;
use crate::error::Error;

static SYSTEMD: AtomicBool = AtomicBool::new(false);

/// `--systemd-cgroup` was given.
pub fn set_systemd(on: bool) {
    SYSTEMD.store(on, Ordering::Relaxed);
}

/// Sets `cfg.cgroup_parent` and `cfg.cgroup_name` from a cgroupsPath.
pub fn apply(path: &Path, cfg: &mut Config) -> Result<(), Error> {
    let s = path.to_string_lossy().into_owned();
    let (rel, absolute) = if SYSTEMD.load(Ordering::Relaxed) {
        (systemd(&s)?, true)
    } else if s.contains(':') {
        return Err(invalid(
            "linux.cgroupsPath",
            &s,
            "a path (the systemd form slice:prefix:name needs --systemd-cgroup)",
        ));
    } else {
        (s.trim_start_matches('/').to_string(), path.is_absolute())
    };
    let p = Path::new(&rel);
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(invalid("linux.cgroupsPath", &s, "a path without '.' or '..' components"));
    }
    let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        // "/" or "": sandbox's default group below our own cgroup.
        return Ok(());
    };
    let parent = p.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    cfg.cgroup_parent = Some(match (absolute, parent.is_empty()) {
        (true, _) => format!("/{parent}"),
        (false, true) => "./".to_string(),
        (false, false) => format!("./{parent}"),
    });
    cfg.cgroup_name = Some(name);
    Ok(())
}

/// `slice:prefix:name` → the cgroupfs path (without the leading slash) systemd gives that scope.
fn systemd(s: &str) -> Result<String, Error> {
    let parts: Vec<&str> = s.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid("linux.cgroupsPath", s, "slice:prefix:name with --systemd-cgroup"));
    };
    if Path::new("/run/systemd/system").is_dir() {
        return Err(unsupported(
            "--systemd-cgroup",
            "systemd is running and sandbox does not create systemd units: run without --systemd-cgroup and give cgroupsPath as a path",
        ));
    }
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    if !slice.ends_with(".slice")
        || slice.contains('/')
        || name.is_empty()
        || name.contains('/')
        || prefix.contains('/')
    {
        return Err(invalid("linux.cgroupsPath", s, "slice:prefix:name, the slice ending in .slice, no '/'"));
    }
    // systemd's expansion: "a-b-c.slice" lives in /a.slice/a-b.slice/a-b-c.slice; "-.slice" is the root.
    let mut dirs = Vec::new();
    if slice != "-.slice" {
        let stem = &slice[..slice.len() - ".slice".len()];
        if stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
            return Err(invalid(
                "linux.cgroupsPath",
                s,
                "a slice name as systemd allows (no leading, trailing or double '-')",
            ));
        }
        let mut acc = String::new();
        for part in stem.split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            dirs.push(format!("{acc}.slice"));
        }
    }
    dirs.push(if prefix.is_empty() { format!("{name}.scope") } else { format!("{prefix}-{name}.scope") });
    Ok(dirs.join("/"))
}

/// The parent directories of the container's group that do not exist yet, in every hierarchy,
/// made now (outermost first) and returned so that `delete` (or a failed `create`) removes them.
pub fn make_parents(cfg: &Config) -> Result<Vec<PathBuf>, Error> {
    let Some(parent) = cfg.cgroup_parent.as_deref() else { return Ok(vec![]) };
    let host = crate::cgroup::Host::detect(&cfg.cgroup_root)?;
    let mut made = Vec::new();
    let mut bases = host.bases(Some(parent))?;
    // Hybrid hosts: the group's parents in the cgroup2 too (below our own group there, see
    // Host::unified_dir), so that its cgroup2 group has the whole path, as in every v1 hierarchy.
    let rel = parent.trim_start_matches("./").trim_matches('/');
    if let (Some(own), false) = (host.unified.as_ref(), rel.is_empty()) {
        bases.insert("unified".into(), own.join(rel));
    }
    for (ctrl, base) in &bases {
        let mut missing: Vec<&Path> = base.ancestors().take_while(|a| !a.exists()).collect();
        missing.reverse();
        for dir in missing {
            // cgroup v2: a new group has only the controllers its parent hands down. Best effort:
            // a parent holding processes cannot (EBUSY, "no internal processes"), and the
            // container's group then reports which limit lacks its controller. Only in groups
            // made here: an existing parent's subtree_control is not ours to change.
            if let Some(parent) = dir.parent().filter(|p| ctrl.is_empty() && made.iter().any(|m| m == p)) {
                enable_all(parent);
            }
            if let Err(e) = std::fs::create_dir(dir) {
                remove_parents(&made);
                return Err(Error::io("cannot create cgroup", dir, e));
            }
            made.push(dir.to_path_buf());
            // A new v1 cpuset group has no CPUs and no memory nodes: its children could hold no
            // task. It gets its parent's, as runc does.
            if ctrl == "cpuset" {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let from = dir.parent().map(|p| p.join(f));
                    let v = from.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
                    if let Err(e) = crate::cgroup::write(&dir.join(f), v.trim()) {
                        remove_parents(&made);
                        return Err(e);
                    }
                }
            }
        }
    }
    Ok(made)
}

fn enable_all(parent: &Path) {
    let have = std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
    for c in have.split_whitespace() {
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), format!("+{c}"));
    }
}

/// Removes the parents [`make_parents`] made, innermost first, each only if empty (rmdir).
pub fn remove_parents(made: &[PathBuf]) {
    for dir in made.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(p: &str) -> (Option<String>, Option<String>) {
        let mut cfg = Config::new(Vec::<String>::new());
        apply(Path::new(p), &mut cfg).unwrap();
        (cfg.cgroup_parent, cfg.cgroup_name)
    }

    #[test]
    fn absolute_and_relative_paths_name_the_group_exactly() {
        assert_eq!(of("/cgrouptest/c1"), (Some("/cgrouptest".into()), Some("c1".into())));
        assert_eq!(of("/c1"), (Some("/".into()), Some("c1".into())));
        assert_eq!(of("testdir/cgrouptest/c1"), (Some("./testdir/cgrouptest".into()), Some("c1".into())));
        assert_eq!(of("c1"), (Some("./".into()), Some("c1".into())));
        assert_eq!(of("/"), (None, None));
    }

    #[test]
    fn dot_dot_and_colons_are_refused() {
        let mut cfg = Config::new(Vec::<String>::new());
        assert!(apply(Path::new("../../etc"), &mut cfg).is_err());
        assert!(apply(Path::new("/a/../b"), &mut cfg).is_err());
        assert!(apply(Path::new("system.slice:p:n"), &mut cfg).is_err());
    }

    #[test]
    fn systemd_slices_expand_as_systemd_does() {
        if Path::new("/run/systemd/system").is_dir() {
            eprintln!("SKIPPED systemd_slices_expand_as_systemd_does: systemd runs here, the form is refused");
            return;
        }
        assert_eq!(systemd_path("machine-pod1.slice:cri:abc"), "machine.slice/machine-pod1.slice/cri-abc.scope");
        assert_eq!(systemd_path(":sandbox:abc"), "system.slice/sandbox-abc.scope");
        assert_eq!(systemd_path("-.slice::abc"), "abc.scope");
    }

    fn systemd_path(s: &str) -> String {
        systemd(s).unwrap()
    }
}
