//! `spec [--bundle B]`: writes a default config.json (runc's, with terminal on, running `sh`
//! from ./rootfs); refuses to overwrite one that exists, as runc does.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// runc 1.1's `runc spec` output.
pub const DEFAULT: &str = include_str!("testdata/runc-default.json");

pub fn spec(bundle: &Path) -> Result<i32> {
    let path = bundle.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(DEFAULT).map_err(|e| Error::container(e.to_string()))?;
    v["ociVersion"] = super::runtime::OCI_VERSION.into();
    v["root"]["path"] = "rootfs".into();
    let body = serde_json::to_string_pretty(&v).map_err(|e| Error::container(e.to_string()))?;
    // O_EXCL|O_NOFOLLOW: an existing file (or a link) is never replaced.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::container(format!("File {} exists. Remove it first", path.display()))
            }
            _ => Error::io("cannot write", &path, e),
        })?;
    f.write_all(body.as_bytes()).map_err(|e| Error::io("cannot write", &path, e))?;
    Ok(0)
}
