//! `process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`: empty means none and is
//! ignored; a label asks for confinement and is never dropped silently. sandbox applies neither
//! LSM yet, so a label is refused, and the error says whether the host could have enforced it:
//! on a host without the LSM no runtime can (runc fails there too, later and less clearly).

use std::path::Path;

use super::unsupported;
use crate::error::Error;

/// Whether the host's kernel runs AppArmor (the module's `enabled` parameter reads `Y`).
fn apparmor_enabled(sys: &Path) -> bool {
    std::fs::read_to_string(sys.join("module/apparmor/parameters/enabled")).is_ok_and(|s| s.trim() == "Y")
}

/// Whether SELinux is mounted (selinuxfs at /sys/fs/selinux).
fn selinux_enabled(sys: &Path) -> bool {
    sys.join("fs/selinux/enforce").exists()
}

/// The refusal for a non-empty label of `lsm` in `field`.
fn refuse(field: &str, value: &str, lsm: &str, host_has_it: bool) -> Error {
    let why = if host_has_it {
        format!("sandbox does not apply {lsm} labels yet ({value:?}); leave it empty")
    } else {
        format!("this host has no {lsm} (the kernel does not run it), so {value:?} cannot be enforced; leave it empty")
    };
    unsupported(field, &why)
}

/// Checks the labels of a config against the host whose sysfs is at `sys` (normally /sys).
pub fn check(
    apparmor: Option<&str>,
    selinux: Option<&str>,
    mount_label: Option<&str>,
    sys: &Path,
) -> Result<(), Error> {
    if let Some(p) = apparmor.filter(|s| !s.is_empty()) {
        return Err(refuse("process.apparmorProfile", p, "AppArmor", apparmor_enabled(sys)));
    }
    for (field, v) in [("process.selinuxLabel", selinux), ("linux.mountLabel", mount_label)] {
        if let Some(l) = v.filter(|s| !s.is_empty()) {
            return Err(refuse(field, l, "SELinux", selinux_enabled(sys)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_labels_are_ignored_and_others_say_whether_the_host_has_the_lsm() {
        let t = tempfile::tempdir().unwrap();
        assert!(check(Some(""), Some(""), Some(""), t.path()).is_ok());
        assert!(check(None, None, None, t.path()).is_ok());
        let e = check(Some("acme"), None, None, t.path()).unwrap_err().to_string();
        assert!(e.contains("process.apparmorProfile") && e.contains("no AppArmor") && e.contains("\"acme\""), "{e}");
        std::fs::create_dir_all(t.path().join("module/apparmor/parameters")).unwrap();
        std::fs::write(t.path().join("module/apparmor/parameters/enabled"), "Y\n").unwrap();
        let e = check(Some("acme"), None, None, t.path()).unwrap_err().to_string();
        assert!(e.contains("does not apply AppArmor labels yet"), "{e}");
        let e = check(None, None, Some("system_u:object_r:x:s0"), t.path()).unwrap_err().to_string();
        assert!(e.contains("linux.mountLabel") && e.contains("no SELinux"), "{e}");
    }
}
