//! Capabilities the command keeps: docker's default set unless `--cap-add`/`--cap-drop` or
//! `--privileged` say otherwise. Resolution is pure (unit-tested); [`apply`] runs in the child
//! after its mounts (which need CAP_SYS_ADMIN) and before exec.

use caps::{CapSet, Capability, CapsHashSet};

use crate::error::Error;

/// What an OCI config sets on the command's process beyond sandbox's one capability set
/// (bounding): the four other sets, the umask and additional groups.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcessAttrs {
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
    pub umask: Option<u32>,
    pub additional_gids: Vec<u32>,
}

/// docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_NET_RAW,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_MKNOD,
    Capability::CAP_AUDIT_WRITE,
    Capability::CAP_SETFCAP,
];

/// A capability name as given to `--cap-add`/`--cap-drop`: `ALL`, `SYS_ADMIN` or `CAP_SYS_ADMIN`,
/// any case. `None` stands for ALL.
pub fn parse(flag: &'static str, name: &str) -> Result<Option<Capability>, Error> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(None);
    }
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    full.parse::<Capability>()
        .map(Some)
        .map_err(|_| Error::invalid(flag, name, "a capability name such as NET_ADMIN or CAP_SYS_PTRACE, or ALL"))
}

/// The set the command keeps, with docker's semantics: start from the default set (or everything
/// when ALL is added), remove the drops (everything when ALL is dropped), then add the adds.
pub fn resolve(add: &[Option<Capability>], drop: &[Option<Capability>]) -> CapsHashSet {
    let all: CapsHashSet = caps::all().into_iter().collect();
    let mut keep: CapsHashSet = if add.contains(&None) { all.clone() } else { DEFAULT.into_iter().collect() };
    if drop.contains(&None) {
        keep.clear();
    } else {
        for c in drop.iter().flatten() {
            keep.remove(c);
        }
    }
    for c in add.iter().flatten() {
        if !drop.contains(&Some(*c)) {
            keep.insert(*c);
        }
    }
    keep
}

/// Every capability, for `--privileged`.
pub fn all() -> CapsHashSet {
    caps::all().into_iter().collect()
}

/// Limits the calling process to `keep`: the bounding set loses the rest (so nothing exec'd later,
/// setuid binaries included, can regain them), inheritable and ambient are cleared.
pub fn apply(keep: &CapsHashSet) -> Result<(), String> {
    limit_bounding(keep)?;
    set_process(keep)
}

/// The first half of [`apply`]: drops from the bounding set what `keep` lacks. Needs CAP_SETPCAP,
/// so it goes before a switch to a non-root user (which empties the permitted set).
pub fn limit_bounding(keep: &CapsHashSet) -> Result<(), String> {
    // Every capability this crate knows, without probing which ones the kernel has first (41
    // PR_CAPBSET_READ calls cost ~100 µs of every start): one this kernel lacks answers EINVAL.
    for c in caps::all() {
        if keep.contains(&c) {
            continue;
        }
        match crate::sys::drop_bounding(c.index()) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(err) => return Err(format!("dropping {c} from the bounding set: {}", err.desc())),
        }
    }
    Ok(())
}

/// The second half of [`apply`]: permitted and effective become `keep` (as far as we hold it:
/// after a switch to a non-root user, nothing), inheritable and ambient empty.
pub fn set_process(keep: &CapsHashSet) -> Result<(), String> {
    let e = |what: &str, err: caps::errors::CapsError| format!("{what}: {err}");
    // What we do not hold cannot be kept (this environment, for one, lacks CAP_SYS_RESOURCE).
    let have = caps::read(None, CapSet::Permitted).map_err(|err| e("reading permitted", err))?;
    let set: CapsHashSet = keep.intersection(&have).copied().collect();
    // Effective must stay a subset of permitted, so it shrinks first.
    caps::set(None, CapSet::Effective, &set).map_err(|err| e("setting effective", err))?;
    caps::set(None, CapSet::Permitted, &set).map_err(|err| e("setting permitted", err))?;
    // Inheritable stays empty (CVE-2022-24769): root's exec still gets the bounding set as
    // permitted, but a non-root program cannot pick capabilities up through file inheritable bits.
    caps::clear(None, CapSet::Inheritable).map_err(|err| e("clearing inheritable", err))?;
    caps::clear(None, CapSet::Ambient).map_err(|err| e("clearing ambient", err))?;
    Ok(())
}

/// [`set_process`] with the sets an OCI config names: inheritable first (while we hold
/// CAP_SETPCAP and everything), then effective and permitted, then ambient (a capability can
/// only be ambient while permitted and inheritable). What we do not hold is left out (the
/// kernel refuses it). A non-root user keeps them too: the child set keep-caps before setresuid.
/// Inheritable and ambient are only ever what the config asks (CVE-2022-24769: never a default).
pub fn set_process_sets(attrs: &ProcessAttrs) -> Result<(), String> {
    let e = |what: &str, err: caps::errors::CapsError| format!("{what}: {err}");
    let have = caps::read(None, CapSet::Permitted).map_err(|err| e("reading permitted", err))?;
    let held = |s: &CapsHashSet| -> CapsHashSet { s.intersection(&have).copied().collect() };
    let (inh, perm) = (held(&attrs.inheritable), held(&attrs.permitted));
    let eff: CapsHashSet = attrs.effective.intersection(&perm).copied().collect();
    caps::clear(None, CapSet::Ambient).map_err(|err| e("clearing ambient", err))?;
    caps::set(None, CapSet::Inheritable, &inh).map_err(|err| e("setting inheritable", err))?;
    caps::set(None, CapSet::Effective, &eff).map_err(|err| e("setting effective", err))?;
    caps::set(None, CapSet::Permitted, &perm).map_err(|err| e("setting permitted", err))?;
    for c in attrs.ambient.iter().filter(|c| perm.contains(c) && inh.contains(c)) {
        caps::raise(None, CapSet::Ambient, *c).map_err(|err| e(&format!("raising ambient {c}"), err))?;
    }
    // Keep-caps (set for the switch of user) is cleared on exec anyway; no later setuid keeps.
    caps::securebits::set_keepcaps(false).map_err(|err| e("clearing keep-caps", err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(names: &[&str]) -> Vec<Option<Capability>> {
        names.iter().map(|n| parse("--cap-add", n).unwrap()).collect()
    }

    #[test]
    fn names_in_any_form() {
        assert_eq!(parse("--cap-add", "sys_admin").unwrap(), Some(Capability::CAP_SYS_ADMIN));
        assert_eq!(parse("--cap-add", "CAP_NET_ADMIN").unwrap(), Some(Capability::CAP_NET_ADMIN));
        assert_eq!(parse("--cap-drop", "all").unwrap(), None);
        let e = parse("--cap-add", "FLY").unwrap_err().to_string();
        assert!(e.contains("'FLY'") && e.contains("NET_ADMIN"), "{e}");
    }

    #[test]
    fn docker_semantics() {
        let default: CapsHashSet = DEFAULT.into_iter().collect();
        assert_eq!(resolve(&[], &[]), default);
        let r = resolve(&p(&["SYS_PTRACE"]), &p(&["NET_RAW"]));
        assert!(r.contains(&Capability::CAP_SYS_PTRACE) && !r.contains(&Capability::CAP_NET_RAW));
        assert_eq!(resolve(&[], &p(&["ALL"])), CapsHashSet::new());
        assert_eq!(resolve(&p(&["CHOWN"]), &p(&["ALL"])), CapsHashSet::from([Capability::CAP_CHOWN]));
        let r = resolve(&p(&["ALL"]), &p(&["SYS_ADMIN"]));
        assert!(r.contains(&Capability::CAP_SYS_MODULE) && !r.contains(&Capability::CAP_SYS_ADMIN));
    }
}
