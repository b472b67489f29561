//! Unpacked sizes of layers, recorded once when a layer is unpacked so that `images`, `inspect`
//! and `history` never walk a tree: ROOT/sizes/HEX holds the decimal byte count of
//! ROOT/layers/HEX (not a file inside the layer dir: that dir is an overlay lower layer, all of it
//! visible to runs). [`super::layer::unpack`] counts it from the tar entries as they land, at no
//! cost to a pull. A layer unpacked by an older sandbox has no record; its size is computed by a
//! walk on first use and recorded then (best effort: a read-only command that cannot write still
//! answers).
//!
//! The count is docker's (`directory.Size` of a layer's diff dir): the apparent size of every
//! entry that is not a directory (regular files, symlinks, device nodes), each inode once, so a
//! hard link adds nothing. Whiteouts (0/0 character devices) add nothing.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::digest;
use super::store::{Image, Store};
use crate::error::{Error, Result};

/// The directory of the size records, beside ROOT/layers.
pub const DIR: &str = "sizes";

/// Bytes in the tree at `dir`, counted as the module header says. Does not follow symlinks.
pub fn tree(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() <= 1 || seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

/// Records `bytes` as the unpacked size of layer `diff_id` (staged, then renamed into place).
pub fn record(store: &Store, diff_id: &str, bytes: u64) -> Result<()> {
    let dir = store.root().join(DIR);
    fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let tmp = store.staging(false)?;
    fs::write(tmp.path(), bytes.to_string()).map_err(|e| Error::io("cannot write", tmp.path(), e))?;
    tmp.persist(&dir.join(digest::hex(diff_id)?))?;
    Ok(())
}

/// The unpacked size of layer `diff_id`: its record, else a walk of its directory (recorded for
/// next time). 0 for a layer that is not unpacked.
pub fn layer(store: &Store, diff_id: &str) -> u64 {
    let Ok(hex) = digest::hex(diff_id) else { return 0 };
    let rec = store.root().join(DIR).join(hex);
    if let Some(n) = fs::read_to_string(&rec).ok().and_then(|s| s.trim().parse().ok()) {
        return n;
    }
    let Ok(dir) = store.layer_dir(diff_id) else { return 0 };
    if !dir.is_dir() {
        return 0;
    }
    let n = tree(&dir);
    let _ = record(store, diff_id, n);
    n
}

/// The unpacked size of an image: the sum of its layers' (docker's `Size`).
pub fn unpacked(store: &Store, img: &Image) -> u64 {
    img.diff_ids().iter().map(|d| layer(store, d)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_counts_files_and_symlinks_once_per_inode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("a/b")).unwrap();
        fs::write(p.join("a/b/f"), vec![0u8; 1000]).unwrap();
        fs::hard_link(p.join("a/b/f"), p.join("a/link")).unwrap();
        fs::write(p.join("g"), b"12345").unwrap();
        std::os::unix::fs::symlink("a/b/f", p.join("s")).unwrap();
        assert_eq!(tree(p), 1000 + 5 + "a/b/f".len() as u64);
    }
}
