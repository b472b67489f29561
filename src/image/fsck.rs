//! Repairs of a damaged store, run by `image prune` under the exclusive lock before it sweeps
//! (issue 12: one missing blob made `images`, `rmi` and `prune` fail for the whole store).
//!
//! What can be mended is mended, what cannot is removed, each said by name in
//! [`Pruned::repairs`]: a blob whose content does not match its digest is removed; a name whose
//! content is gone or corrupt is dropped, unless the only thing missing is an unpacked layer
//! whose blob is still there (it is unpacked again); entries of blobs/ and layers/ that are not
//! blobs or layers are removed. Content is removed by a rename into ROOT/tmp first, so a prune
//! killed half-way never leaves half a layer under its name (the next operation removes the rest
//! from tmp/, where a free flock marks it stale). Blobs are hashed before the exclusive lock is
//! taken (they never change once in place), so that a large store does not stall pulls and runs.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::digest::Hasher;
use super::prune::Pruned;
use super::staging::du;
use super::store::{remove_all, Store};
use crate::error::{Error, Result};

/// Removes `p` (a file or a tree) from the store: renamed into staging, then deleted.
pub fn discard(store: &Store, p: &Path) {
    match store.staging(false) {
        Ok(s) if fs::rename(p, s.path()).is_ok() => drop(s),
        _ => remove_all(p),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The sha256 of a file, streamed.
fn file_digest(p: &Path) -> std::io::Result<String> {
    let mut f = File::open(p)?;
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(h.digest()),
            n => h.update(&buf[..n]),
        }
    }
}

/// Checks and mends the store; false when images.json as a whole was unreadable (it is set
/// aside, and the caller must not sweep: which content the lost names used is unknown).
/// `suspects`: from [`suspect_blobs`], before the lock.
pub fn repair(store: &Store, suspects: &[Suspect], p: &mut Pruned) -> Result<bool> {
    if let Err(e) = store.entries() {
        let idx = store.root().join("images.json");
        let aside = store.root().join(format!(
            "images.json.damaged-{}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
        ));
        fs::rename(&idx, &aside).map_err(|e| Error::io("cannot move aside", &idx, e))?;
        p.repairs.push(format!(
            "set aside images.json as {} ({e}): every name is lost; nothing else was removed this time",
            aside.display()
        ));
        return Ok(false);
    }
    blobs(store, suspects, p);
    names(store, p)?;
    let dir = store.root().join("layers");
    for e in fs::read_dir(&dir).map_err(|e| Error::io("cannot list", &dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_hex64(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            p.bytes += du(&e.path());
            discard(store, &e.path());
            p.layers += 1;
            p.repairs.push(format!("removed layers/{name}: not a layer directory"));
        }
    }
    Ok(true)
}

/// A blob that failed its check: its file (by inode, so that it is never confused with a
/// blob that lands under the same name later) and why.
pub struct Suspect {
    path: PathBuf,
    ino: u64,
    why: String,
}

/// Hashes every blob; returns those that do not match their name. Blobs are immutable once in
/// place, so this runs before prune takes the exclusive lock: hashing a large store must not
/// hold up every pull and run meanwhile.
pub fn suspect_blobs(store: &Store) -> Result<Vec<Suspect>> {
    let dir = store.root().join("blobs/sha256");
    let mut out = vec![];
    for e in fs::read_dir(&dir).map_err(|e| Error::io("cannot list", &dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let why = if !is_hex64(&name) || !e.file_type().is_ok_and(|t| t.is_file()) {
            format!("removed blobs/sha256/{name}: not a blob")
        } else {
            match file_digest(&e.path()) {
                Ok(d) if d[7..] == name => continue,
                Ok(_) => format!("removed blob sha256:{name}: its content does not match its digest"),
                // Removed meanwhile (by an earlier prune): nothing to do.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => format!("removed blob sha256:{name}: unreadable ({err})"),
            }
        };
        let Ok(m) = fs::symlink_metadata(e.path()) else { continue };
        out.push(Suspect { path: e.path(), ino: m.ino(), why });
    }
    Ok(out)
}

/// Removes the suspects that are still there, the same files.
fn blobs(store: &Store, suspects: &[Suspect], p: &mut Pruned) {
    for s in suspects {
        if fs::symlink_metadata(&s.path).is_ok_and(|m| m.ino() == s.ino) {
            p.bytes += du(&s.path);
            discard(store, &s.path);
            p.blobs += 1;
            p.repairs.push(s.why.clone());
        }
    }
}

/// Every name is checked; a missing unpacked layer is unpacked again from its blob; a name that
/// stays damaged is dropped.
fn names(store: &Store, p: &mut Pruned) -> Result<()> {
    let mut drop_names = vec![];
    for (name, m) in store.entries()? {
        let problem = match m {
            Err(problem) => problem,
            Ok(m) => match store.check(&name, &m) {
                Ok(_) => continue,
                Err(problem) => match relayer(store, &name, &m, p) {
                    true => match store.check(&name, &m) {
                        Ok(_) => continue,
                        Err(problem) => problem,
                    },
                    false => problem,
                },
            },
        };
        p.repairs.push(format!("dropped the name {name}: {problem}"));
        drop_names.push(name);
    }
    for n in drop_names {
        store.untag(&n)?;
    }
    Ok(())
}

/// Unpacks the layers of an image that are missing but whose blobs are whole; true if any was.
fn relayer(store: &Store, name: &str, m: &str, p: &mut Pruned) -> bool {
    let Ok(img) = store.load(name, m) else { return false };
    let mut any = false;
    for (l, d) in img.manifest.layers().iter().zip(img.diff_ids()) {
        if store.has_layer(&d) || !store.has_blob(l.digest().as_ref()) {
            continue;
        }
        match store.unpack_layer(l.digest().as_ref(), l.media_type().as_ref(), &d) {
            Ok(_) => {
                p.repairs.push(format!("unpacked layer {d} of {name} again (it was missing)"));
                any = true;
            }
            Err(e) => p.repairs.push(format!("could not unpack layer {d} of {name} again: {e}")),
        }
    }
    any
}
