//! Taking content out of the store: `rmi` removes names (refused while a container uses the
//! image), `image prune` removes what nothing references any more. Both hold the store's
//! exclusive lock, which every writer of content holds shared, so a pull or a run being set up is
//! never pruned from under itself.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use super::container;
use super::digest;
use super::fsck;
use super::staging::{self, du};
use super::store::{remove_all, Store};
use crate::error::{Error, Result};

/// Removes the names `what` (references or id prefixes, as [`Store::find`] takes them). A name
/// whose image a container (running, or kept with `--name`) uses is refused unless another name
/// still points at that image. All names are checked before any is removed.
pub fn rmi(store: &Store, what: &[String]) -> Result<Vec<String>> {
    let _l = store.lock_exclusive()?;
    let entries = store.entries()?;
    let names = store.names()?;
    let containers = container::list(store)?;
    // Name -> its manifest digest (None: its entry is unreadable).
    let mut gone: Vec<(String, Option<String>)> = vec![];
    for w in what {
        // The exact name first, damaged or not (a damaged image must be removable by name).
        let full = super::Reference::parse(w).map(|r| r.to_string()).ok();
        let exact =
            entries.iter().find(|(n, _)| Some(n) == full.as_ref()).or_else(|| entries.iter().find(|(n, _)| n == w));
        let targets: Vec<(String, Option<String>)> = match exact {
            Some((n, m)) => vec![(n.clone(), m.clone().ok())],
            // An id names every name of that image.
            None => {
                let img = store.find(w)?;
                names
                    .iter()
                    .filter(|(_, m)| *m == img.manifest_digest)
                    .map(|(n, m)| (n.clone(), Some(m.clone())))
                    .collect()
            }
        };
        for (n, m) in targets {
            if !gone.iter().any(|(g, _)| *g == n) {
                gone.push((n, m));
            }
        }
    }
    for (n, m) in &gone {
        let Some(m) = m else { continue };
        let others = names.iter().any(|(n2, m2)| m2 == m && !gone.iter().any(|(g, _)| g == n2));
        if others {
            continue;
        }
        let users: Vec<String> = containers
            .iter()
            .filter(|(_, meta, _)| meta.as_ref().is_some_and(|c| c.manifest == *m))
            .map(|(c, _, running)| container::describe(store, c, *running))
            .collect();
        if !users.is_empty() {
            return Err(Error::image(format!(
                "image {n} is in use by {}: remove a kept container first (`sandbox rm NAME`) or wait for the run \
                 to end",
                users.join(", ")
            )));
        }
    }
    for (n, _) in &gone {
        store.untag(n)?;
    }
    Ok(gone.into_iter().map(|(n, _)| n).collect())
}

/// What [`prune`] removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub blobs: usize,
    pub layers: usize,
    pub containers: usize,
    pub bytes: u64,
    /// What was damaged and how it was mended or removed, by name (see fsck.rs).
    pub repairs: Vec<String>,
}

/// Removes blobs and layers that no image and no container uses, unnamed containers whose run
/// is gone (sandbox was killed), and stale staging entries; first repairs what is damaged
/// ([`fsck::repair`]).
pub fn prune(store: &Store) -> Result<Pruned> {
    let suspects = fsck::suspect_blobs(store)?;
    let _l = store.lock_exclusive()?;
    let mut p = Pruned::default();
    if !fsck::repair(store, &suspects, &mut p)? {
        return Ok(p);
    }
    let mut blobs: HashSet<String> = HashSet::new();
    let mut layers: HashSet<String> = HashSet::new();
    let keep_manifest = |store: &Store, m: &str, blobs: &mut HashSet<String>, layers: &mut HashSet<String>| {
        blobs.insert(digest::hex(m)?.to_string());
        let img = store.load(m, m)?;
        blobs.insert(digest::hex(&img.config_digest())?.to_string());
        for l in img.manifest.layers() {
            blobs.insert(digest::hex(l.digest().as_ref())?.to_string());
        }
        for d in img.diff_ids() {
            layers.insert(digest::hex(&d)?.to_string());
        }
        Ok::<(), Error>(())
    };
    for (_, m) in store.names()? {
        keep_manifest(store, &m, &mut blobs, &mut layers)?;
    }
    let cdir = store.root().join("containers");
    for (name, meta, running) in container::list(store)? {
        if name.starts_with('.') && !running {
            p.bytes += du(&cdir.join(&name));
            remove_all(&cdir.join(&name));
            p.containers += 1;
            continue;
        }
        if let Some(meta) = meta {
            // A kept container's image may have lost its name: its content stays for commit.
            let _ = keep_manifest(store, &meta.manifest, &mut blobs, &mut layers);
            for d in &meta.layers {
                layers.insert(digest::hex(d)?.to_string());
            }
        }
    }
    let sweep = |dir: &Path, keep: &HashSet<String>, n: &mut usize, bytes: &mut u64| -> Result<()> {
        for e in fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?.flatten() {
            if !keep.contains(e.file_name().to_string_lossy().as_ref()) {
                *bytes += du(&e.path());
                fsck::discard(store, &e.path());
                *n += 1;
            }
        }
        Ok(())
    };
    sweep(&store.root().join("blobs/sha256"), &blobs, &mut p.blobs, &mut p.bytes)?;
    sweep(&store.root().join("layers"), &layers, &mut p.layers, &mut p.bytes)?;
    // What a killed sandbox left in staging (its directory's flock is free), counted as freed.
    p.bytes += staging::sweep(&store.root().join("tmp"));
    // A layer's size record goes with it (not counted as a layer of its own).
    sweep(&store.root().join(super::size::DIR), &layers, &mut 0, &mut p.bytes)?;
    Ok(p)
}
