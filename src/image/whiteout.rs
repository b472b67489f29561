//! The two pieces of layer handling that decide safety and meaning before any byte is written:
//! where a tar entry's path lands in the layer directory, and whether it is a whiteout.
//!
//! OCI image spec, layer.md: `.wh.NAME` deletes NAME from the layers below; `.wh..wh..opq` in a
//! directory hides everything below it from lower layers. overlayfs says the same with a 0/0
//! character device named NAME and the `trusted.overlay.opaque=y` xattr on the directory.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

pub const PREFIX: &str = ".wh.";
pub const OPAQUE: &str = ".wh..wh..opq";

/// What a tar entry name means to the union of layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An ordinary file, directory, link or device at this relative path.
    Plain(PathBuf),
    /// `DIR/.wh.NAME`: NAME (at this relative path) is deleted.
    Whiteout(PathBuf),
    /// `DIR/.wh..wh..opq`: DIR (this relative path, empty for the root) is opaque.
    Opaque(PathBuf),
}

/// Classifies a tar entry path, after [`relative`] has made it safe.
pub fn classify(path: &Path) -> Result<Entry> {
    let rel = relative(path)?;
    // As bytes: a name need not be UTF-8 (`.wh.\xff` deletes `\xff`).
    let Some(name) = rel.file_name().map(|n| n.as_bytes()) else {
        return Ok(Entry::Plain(rel));
    };
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    if name == OPAQUE.as_bytes() {
        return Ok(Entry::Opaque(parent));
    }
    match name.strip_prefix(PREFIX.as_bytes()) {
        // `.wh.` alone, or `.wh..wh.x` (reserved prefix) name nothing that can be deleted.
        Some(target) if !target.is_empty() && !target.starts_with(PREFIX.as_bytes()) => {
            Ok(Entry::Whiteout(parent.join(OsStr::from_bytes(target))))
        }
        Some(_) => Err(Error::invalid("layer entry", &path.display().to_string(), "a whiteout naming a file")),
        None => Ok(Entry::Plain(rel)),
    }
}

/// A tar entry path as a path relative to the layer root, lexically: leading `/` and `./` dropped,
/// `..` refused wherever it appears (tar entries have no business climbing, even when the climb
/// would stay inside). Symlinks are not resolved here: extraction must open each parent without
/// following links out of the root (openat2 RESOLVE_IN_ROOT), which this cannot check.
pub fn relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::invalid(
                    "layer entry",
                    &path.display().to_string(),
                    "a path inside the layer (no `..` components)",
                ));
            }
        }
    }
    Ok(out)
}

/// The inverse, for commit: an overlay upper dir's whiteout (0/0 char device) at `rel` becomes
/// `DIR/.wh.NAME` in the new layer; an opaque directory gets `DIR/.wh..wh..opq` beside its entries.
pub fn oci_whiteout_for(rel: &Path) -> PathBuf {
    let mut name = OsString::from(PREFIX);
    name.push(rel.file_name().unwrap_or_default());
    rel.with_file_name(name)
}

pub fn oci_opaque_for(dir: &Path) -> PathBuf {
    dir.join(OPAQUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str) -> Entry {
        classify(Path::new(p)).unwrap()
    }

    #[test]
    fn whiteouts_and_opaque_directories() {
        assert_eq!(c("etc/.wh.passwd"), Entry::Whiteout("etc/passwd".into()));
        assert_eq!(c("./.wh.tmp"), Entry::Whiteout("tmp".into()));
        assert_eq!(c("usr/share/.wh..wh..opq"), Entry::Opaque("usr/share".into()));
        assert_eq!(c(".wh..wh..opq"), Entry::Opaque("".into()));
        assert_eq!(c("etc/passwd"), Entry::Plain("etc/passwd".into()));
        assert_eq!(c("etc/not.wh.file"), Entry::Plain("etc/not.wh.file".into()));
        assert_eq!(c("./"), Entry::Plain("".into()));
        let odd = Path::new(OsStr::from_bytes(b"d/.wh.\xff"));
        assert_eq!(classify(odd).unwrap(), Entry::Whiteout(Path::new(OsStr::from_bytes(b"d/\xff")).into()));
        assert_eq!(oci_whiteout_for(Path::new(OsStr::from_bytes(b"d/\xff"))), odd, "and back, byte for byte");
        for bad in ["etc/.wh.", "etc/.wh..wh.x"] {
            assert!(classify(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn climbing_paths_are_refused_and_absolute_ones_rooted() {
        assert_eq!(relative(Path::new("/etc/passwd")).unwrap(), PathBuf::from("etc/passwd"));
        assert_eq!(relative(Path::new("./a/./b")).unwrap(), PathBuf::from("a/b"));
        for bad in ["../etc/passwd", "a/../../b", "a/..", ".."] {
            let e = relative(Path::new(bad)).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("no `..`"), "{bad}: {e}");
        }
        assert!(classify(Path::new("a/../.wh.b")).is_err(), "whiteouts are checked too");
    }

    #[test]
    fn commit_turns_overlay_whiteouts_back_into_oci_names() {
        assert_eq!(oci_whiteout_for(Path::new("etc/passwd")), PathBuf::from("etc/.wh.passwd"));
        assert_eq!(oci_whiteout_for(Path::new("tmp")), PathBuf::from(".wh.tmp"));
        assert_eq!(oci_opaque_for(Path::new("usr/share")), PathBuf::from("usr/share/.wh..wh..opq"));
        // Round trip through classify.
        assert_eq!(c(oci_whiteout_for(Path::new("a/b")).to_str().unwrap()), Entry::Whiteout("a/b".into()));
    }
}
