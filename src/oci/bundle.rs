//! Loading a bundle: config.json parsed with oci-spec's runtime types, checked (ociVersion major,
//! root, process) and mapped part by part onto a [`Config`].

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::invalid;
use crate::config::Config;
use crate::error::Error;

/// A loaded bundle: the spec as written, and what sandbox will run.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    pub spec: Spec,
    pub config: Config,
    /// `process.rlimits`, set on the runtime before the container is created (inherited).
    pub rlimits: Vec<super::process::Rlimit>,
    /// `process.oomScoreAdj`, set on the runtime before the container is created (inherited).
    pub oom_score_adj: Option<i32>,
}

/// The runtime-spec major version sandbox implements.
pub const OCI_MAJOR: u64 = 1;

/// Container ids: what runc accepts (letters, digits, `_ + - .`), at most 1024 bytes, no `.`/`..`;
/// an id names a directory of the state root, so a slash would escape it.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        // Not starting with '.': the state root's own entries do (.spare, .new-ID, .rm-ID).
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "container id",
            id,
            "1 to 1024 letters, digits, '_', '+', '-' or '.', not starting with '.'",
        ))
    }
}

/// Reads `BUNDLE/config.json` and maps it for container `id`. Nothing is created.
pub fn load(bundle: &Path, id: &str) -> Result<Bundle, Error> {
    validate_id(id)?;
    let dir = std::path::absolute(bundle).map_err(|e| Error::io("cannot resolve bundle", bundle, e))?;
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read the bundle's config", &path, e))?;
    let spec: Spec = serde_json::from_str(&text)
        .map_err(|e| Error::Container(format!("config.json: {} is not a valid runtime spec: {e}", path.display())))?;
    let config = to_config(&spec, &dir, id)?;
    let no = no_process();
    let process = spec.process().as_ref().unwrap_or(&no);
    let rlimits = super::process::rlimits(process)?;
    let oom_score_adj = process.oom_score_adj();
    if let Some(v) = oom_score_adj.filter(|v| !(-1000..=1000).contains(v)) {
        return Err(invalid("process.oomScoreAdj", &v.to_string(), "-1000 to 1000"));
    }
    Ok(Bundle { dir, spec, config, rlimits, oom_score_adj })
}

/// Checks ociVersion: a semantic version whose major is ours.
pub fn check_version(v: &str) -> Result<(), Error> {
    let major = v.split('.').next().and_then(|m| m.parse::<u64>().ok());
    let parts = v.split(['-', '+']).next().unwrap_or("").split('.').count();
    match major {
        Some(OCI_MAJOR) if parts == 3 => Ok(()),
        _ => Err(invalid("ociVersion", v, "a runtime-spec version 1.x.y (sandbox implements 1.2)")),
    }
}

/// What a container created without `process` waits before: never executed (`start` refuses).
fn no_process() -> oci_spec::runtime::Process {
    let mut p = oci_spec::runtime::Process::default();
    p.set_terminal(Some(false));
    p.set_args(Some(vec!["/".into()]));
    p
}

/// The whole mapping: every part of the spec onto `Config`, refusing what cannot be honoured.
pub fn to_config(spec: &Spec, dir: &Path, id: &str) -> Result<Config, Error> {
    check_version(spec.version())?;
    let root = spec.root().as_ref().ok_or_else(|| invalid("root", "", "root.path, the container's root filesystem"))?;
    let rootfs = if root.path().is_absolute() { root.path().clone() } else { dir.join(root.path()) };
    if !rootfs.is_dir() {
        return Err(invalid("root.path", &rootfs.display().to_string(), "an existing directory"));
    }
    // runtime-spec: process is optional at create; `start` of such a container is an error
    // (runtime::start). The container waits before a placeholder that is never executed.
    let placeholder = no_process();
    let process = spec.process().as_ref().unwrap_or(&placeholder);
    let mut cfg = Config::new(Vec::<String>::new());
    cfg.id = id.to_string();
    cfg.rootfs = Some(rootfs);
    cfg.read_only = root.readonly().unwrap_or(false);
    cfg.hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        super::kernel::domainname(d, &mut cfg)?;
    }
    super::process::apply(process, &mut cfg)?;
    super::mounts::apply(spec.mounts().as_deref().unwrap_or(&[]), dir, &mut cfg)?;
    super::namespaces::check_hooks(spec.hooks())?;
    cfg.announce_ready = super::hooks::any_in_container(spec.hooks());
    match spec.linux() {
        Some(linux) => {
            super::namespaces::apply(linux, &mut cfg)?;
            if let Some(r) = linux.resources() {
                super::resources::apply(r, &mut cfg)?;
            }
        }
        None => return Err(invalid("linux", "", "the linux section (sandbox runs Linux containers)")),
    }
    cfg.validate()?;
    Ok(cfg)
}
