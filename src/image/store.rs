//! The content-addressed image store under a state root (`--root`, `SANDBOX_ROOT`, default
//! /var/lib/sandbox):
//!
//! ```text
//! ROOT/blobs/sha256/HEX     manifests, configs and layer archives, by digest, verified
//! ROOT/layers/HEX/          each layer unpacked once, by its diff_id (uncompressed digest),
//!                           whiteouts as overlayfs expects them; shared by every image using it
//! ROOT/sizes/HEX            the unpacked size of ROOT/layers/HEX, in bytes (size.rs)
//! ROOT/containers/NAME/     a run's upper, work and merged dirs (container.rs)
//! ROOT/images.json          name -> manifest digest
//! ROOT/tmp/PID-START-N/     staging: everything is written here first, then renamed into place;
//!                           one directory per process, flocked by it (staging.rs), so what a
//!                           killed process left is known stale and removed by the next one
//! ROOT/lock                 flock: shared by writers of blobs and layers, exclusive for rmi/prune
//! ROOT/index.lock           flock: exclusive while images.json is rewritten by a tag
//! ROOT/{lock,index.lock}.holders/PID-RANDOM   who holds each lock (lock.rs): a waiter names them
//! ```
//!
//! Concurrency: blobs and layers are content-addressed and land by rename(2), so two pulls of the
//! same image race harmlessly (the loser's copy is dropped); images.json is rewritten whole, by
//! rename. A name is written under the same shared hold that installed its content (prune, which
//! takes the lock exclusively, can never run between the two and delete content a name is about
//! to point at); taggers exclude each other with ROOT/index.lock; rmi and prune hold the
//! exclusive lock, so no tagger runs beside them. A failure leaves only a staging entry, removed
//! on drop. Readers that take no lock (`find`, `images_checked`) look again before they call an
//! entry damaged: an rmi and a prune may just have removed it.
//!
//! Damage (content changed or deleted behind the store's back) is per name: images.json entries
//! are parsed one by one, [`Store::check`] says what one image lacks, `images` skips and names
//! the damaged ones, and prune mends the store first (fsck.rs).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde::{Deserialize, Serialize};

use super::digest::{self, Expected, HashReader};
use super::layer;
use super::staging;
use crate::error::{Error, Result};

pub const DEFAULT_ROOT: &str = "/var/lib/sandbox";

/// An open store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// This process's staging directory, made (and stale ones swept) by the first staging().
    owned: Arc<Mutex<Option<Arc<staging::Owned>>>>,
}

pub use super::lock::Lock;

/// A staging file or directory under ROOT/tmp, removed on drop unless [`Staging::keep`] was called.
pub struct Staging {
    path: PathBuf,
    keep: bool,
    /// The directory it lives in stays while it does.
    _owner: Arc<staging::Owned>,
}

impl Staging {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames it to `dst`. Returns false (and drops ours) when `dst` already exists: someone else
    /// put the same content there first.
    pub fn persist(mut self, dst: &Path) -> Result<bool> {
        // Not once a stop was asked for: the interrupt watcher may be removing it.
        match crate::interrupt::commit(|| fs::rename(&self.path, dst))? {
            Ok(()) => {
                self.keep = true;
                Ok(true)
            }
            Err(e) if dst.exists() && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => Ok(false),
            Err(e) => Err(Error::io("cannot move into place", dst, e)),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            remove_all(&self.path);
        }
    }
}

/// Removes a file or a directory tree, ignoring what is already gone.
pub fn remove_all(p: &Path) {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// ROOT/images.json.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// Full reference (`docker.io/library/alpine:3.20`) -> entry. Kept as JSON values: one
    /// unreadable entry is reported (and kept until `rmi` or `image prune`), not fatal to all.
    images: BTreeMap<String, serde_json::Value>,
}

/// The manifest digest of one images.json entry, or what is wrong with it.
fn entry_manifest(v: &serde_json::Value) -> std::result::Result<String, String> {
    let e: Entry =
        serde_json::from_value(v.clone()).map_err(|e| format!("its images.json entry is unreadable: {e}"))?;
    digest::hex(&e.manifest).map_err(|e| format!("its images.json entry is unreadable: {e}"))?;
    Ok(e.manifest)
}

/// A name whose image cannot be used, and why: `images` reports and skips it; `rmi` and
/// `image prune` remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub name: String,
    /// Its manifest digest, when its entry is readable.
    pub manifest: Option<String>,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    manifest: String,
}

/// An image in the store, its manifest and config read and verified.
#[derive(Debug, Clone)]
pub struct Image {
    /// The full reference it is stored under.
    pub name: String,
    pub manifest_digest: String,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
}

impl Image {
    /// The config's digest: the image id, as docker counts it.
    pub fn config_digest(&self) -> String {
        self.manifest.config().digest().to_string()
    }

    /// The first 12 hex digits of the id.
    pub fn short_id(&self) -> String {
        let d = self.config_digest();
        d.trim_start_matches("sha256:").chars().take(12).collect()
    }

    /// diff_ids, bottom layer first.
    pub fn diff_ids(&self) -> Vec<String> {
        self.config.rootfs().diff_ids().clone()
    }

    /// Compressed size of config and layers (what a pull transfers).
    pub fn size(&self) -> u64 {
        self.manifest.config().size() + self.manifest.layers().iter().map(|l| l.size()).sum::<u64>()
    }
}

impl Store {
    /// Opens (creating as needed) the store at `root`. Directories are 0700: layers hold setuid
    /// binaries and device nodes that only the sandboxes may reach.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["", "blobs/sha256", "layers", super::size::DIR, "containers", "tmp"] {
            let p = root.join(d);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&p)
                .map_err(|e| Error::io("cannot create the image store directory", &p, e))?;
        }
        let root = root.canonicalize().map_err(|e| Error::io("cannot open the image store", root, e))?;
        Ok(Store { root, owned: Arc::default() })
    }

    /// Runs `f` on the store at `root`, created as needed. When `f` fails and this call created
    /// the store, its empty skeleton goes again: bad input leaves no trace (an empty store would
    /// also read as "nothing pulled" and hide a mistyped `--root`). Only empty directories and
    /// lock files are removed, so whatever another process put there meanwhile stays.
    pub fn create_with<T, E: From<Error>>(root: &Path, f: impl FnOnce(&Store) -> Result<T, E>) -> Result<T, E> {
        let fresh = !root.join("blobs/sha256").is_dir();
        let out = Store::open(root).map_err(E::from).and_then(|store| f(&store));
        if out.is_err() && fresh {
            remove_empty_skeleton(root);
        }
        out
    }

    /// Opens the store at `root` for reading only: `None` when there is none (no ROOT/blobs), and
    /// nothing is created, so a mistyped `--root` leaves no trace.
    pub fn open_existing(root: &Path) -> Result<Option<Store>> {
        if !root.join("blobs/sha256").is_dir() {
            return Ok(None);
        }
        let root = root.canonicalize().map_err(|e| Error::io("cannot open the image store", root, e))?;
        Ok(Some(Store { root, owned: Arc::default() }))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Held while adding content: prune waits for it.
    pub fn lock_shared(&self) -> Result<Lock> {
        super::lock::take(&self.root, "lock", false, "the image store")
    }

    /// Held while removing content or names (rmi, prune).
    pub fn lock_exclusive(&self) -> Result<Lock> {
        super::lock::take(&self.root, "lock", true, "the image store")
    }

    /// Held by a tag while it rewrites images.json, beside the shared lock.
    fn lock_index(&self) -> Result<Lock> {
        super::lock::take(&self.root, "index.lock", true, "the image index")
    }

    /// A fresh, empty staging path under ROOT/tmp (`dir`: created as a directory).
    pub fn staging(&self, dir: bool) -> Result<Staging> {
        let owner = {
            let mut o = self.owned.lock().unwrap_or_else(|e| e.into_inner());
            match &*o {
                Some(owner) => owner.clone(),
                None => {
                    // The first write of this process: what killed ones left goes first.
                    staging::sweep(&self.root.join("tmp"));
                    o.insert(Arc::new(staging::create(&self.root.join("tmp"))?)).clone()
                }
            }
        };
        let path = owner.dir().join(crate::sys::random_id());
        if dir {
            fs::DirBuilder::new().mode(0o755).create(&path).map_err(|e| Error::io("cannot create", &path, e))?;
        }
        Ok(Staging { path, keep: false, _owner: owner })
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(digest::hex(digest)?))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.exists())
    }

    /// Copies `r` into the store, verifying digest and size against `expect`. `what` names the
    /// blob in errors ("layer", "config", …). Already present: returns at once without reading.
    pub fn put_blob(&self, r: &mut dyn Read, expect: &Expected, what: &str) -> Result<PathBuf> {
        let dst = self.blob_path(&expect.digest)?;
        if dst.exists() {
            return Ok(dst);
        }
        let tmp = self.staging(false)?;
        let f = File::create(tmp.path()).map_err(|e| Error::io("cannot create", tmp.path(), e))?;
        let mut w = digest::HashWriter::new(std::io::BufWriter::with_capacity(1 << 20, f));
        // A reader that yields more than the expected size is cut off there: a registry cannot
        // make us write an unbounded file.
        let limit = expect.size.map_or(u64::MAX, |s| s + 1);
        std::io::copy(&mut r.take(limit), &mut w)
            .map_err(|e| Error::image(format!("reading {what} {}: {e}", expect.digest)))?;
        w.flush().map_err(|e| Error::io("cannot write", tmp.path(), e))?;
        expect.check(&w.hasher, what)?;
        tmp.persist(&dst)?;
        Ok(dst)
    }

    /// Stores bytes sandbox made itself (manifests, configs); returns their digest.
    pub fn put_bytes(&self, b: &[u8]) -> Result<String> {
        let d = digest::of_bytes(b);
        self.put_blob(&mut &b[..], &Expected::new(d.clone(), Some(b.len() as u64)), "blob")?;
        Ok(d)
    }

    /// Reads a (small) blob whole, verifying its digest again: a blob changed on disk is not used.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        let b = fs::read(&p).map_err(|e| Error::io("cannot read blob", &p, e))?;
        if digest::of_bytes(&b) != digest {
            return Err(Error::image(format!("blob {} in the store is corrupt (digest mismatch)", p.display())));
        }
        Ok(b)
    }

    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(digest::hex(diff_id)?))
    }

    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_dir(diff_id).is_ok_and(|p| p.is_dir())
    }

    /// Unpacks blob `blob` (compressed as `media_type` says) into ROOT/layers/<diff_id>,
    /// verifying that the uncompressed stream's digest is `diff_id`. Nothing stays on a mismatch.
    pub fn unpack_layer(&self, blob: &str, media_type: &str, diff_id: &str) -> Result<PathBuf> {
        let dst = self.layer_dir(diff_id)?;
        if dst.is_dir() {
            return Ok(dst);
        }
        let compression = layer::Compression::from_media_type(media_type)?;
        let src = self.blob_path(blob)?;
        let f = File::open(&src).map_err(|e| Error::io("cannot open layer", &src, e))?;
        let stage = self.staging(true)?;
        let mut hashed = HashReader::new(compression.decoder(std::io::BufReader::with_capacity(1 << 20, f))?);
        let bytes = layer::unpack(&mut hashed, stage.path()).map_err(|e| Error::image(format!("layer {blob}: {e}")))?;
        // The archive's end-of-file blocks and any padding count towards the digest too.
        std::io::copy(&mut hashed, &mut std::io::sink())
            .map_err(|e| Error::image(format!("layer {blob}: decompressing: {e}")))?;
        Expected::new(diff_id, None).check(&hashed.hasher, &format!("layer {blob} (uncompressed)"))?;
        // Recorded before the layer lands, so that a layer in place always has its size.
        super::size::record(self, diff_id, bytes)?;
        stage.persist(&dst)?;
        Ok(dst)
    }

    fn read_index(&self) -> Result<Index> {
        let p = self.root.join("images.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::image(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(Error::io("cannot read", &p, e)),
        }
    }

    /// Rewrites images.json; the caller holds the exclusive lock.
    fn write_index(&self, idx: &Index) -> Result<()> {
        let tmp = self.staging(false)?;
        let body = serde_json::to_vec_pretty(idx).expect("the index serializes");
        fs::write(tmp.path(), body).map_err(|e| Error::io("cannot write", tmp.path(), e))?;
        let dst = self.root.join("images.json");
        crate::interrupt::commit(|| fs::rename(tmp.path(), &dst))?.map_err(|e| Error::io("cannot replace", &dst, e))?;
        Ok(())
    }

    /// Points `name` (a full reference) at a manifest, after checking that the manifest, its config
    /// and all its layers are complete in the store: an image is never listed half-made. Takes
    /// the shared lock itself (a caller that just installed the content must still hold its own
    /// shared lock when it calls this: prune cannot run in between) and the index lock.
    pub fn tag(&self, name: &str, manifest_digest: &str) -> Result<Image> {
        let _shared = self.lock_shared()?;
        let img = self.load(name, manifest_digest)?;
        for d in img.diff_ids() {
            if !self.has_layer(&d) {
                return Err(Error::image(format!("image {name}: layer {d} is not unpacked")));
            }
        }
        let _index = self.lock_index()?;
        let mut idx = self.read_index()?;
        idx.images.insert(name.to_string(), serde_json::json!(Entry { manifest: manifest_digest.to_string() }));
        self.write_index(&idx)?;
        Ok(img)
    }

    /// Removes a name; the caller holds the exclusive lock. Content stays until prune.
    pub fn untag(&self, name: &str) -> Result<()> {
        let mut idx = self.read_index()?;
        if idx.images.remove(name).is_none() {
            return Err(Error::image(format!("no image named {name} in {}", self.root.display())));
        }
        self.write_index(&idx)
    }

    /// Every (name, manifest digest) in the store whose entry is readable.
    pub fn names(&self) -> Result<Vec<(String, String)>> {
        Ok(self.entries()?.into_iter().filter_map(|(k, v)| Some((k, v.ok()?))).collect())
    }

    /// Every name in images.json with its manifest digest, or what is wrong with its entry.
    pub fn entries(&self) -> Result<Vec<(String, std::result::Result<String, String>)>> {
        Ok(self.read_index()?.images.into_iter().map(|(k, v)| (k.clone(), entry_manifest(&v))).collect())
    }

    /// Every image, loaded; fails on the first damaged one (see [`Store::images_checked`]).
    pub fn images(&self) -> Result<Vec<Image>> {
        self.names()?.into_iter().map(|(n, m)| self.load(&n, &m)).collect()
    }

    /// Every image whose content is whole (manifest and config verified, every layer blob
    /// present at its size, every layer unpacked), and every damaged name apart. Fails only
    /// when images.json as a whole is unreadable.
    pub fn images_checked(&self) -> Result<(Vec<Image>, Vec<Damaged>)> {
        let (mut ok, mut bad) = (vec![], vec![]);
        for (name, m) in self.entries()? {
            match m {
                Err(problem) => bad.push(Damaged { name, manifest: None, problem }),
                Ok(m) => match self.check(&name, &m) {
                    Ok(img) => ok.push(img),
                    // Without the lock, an `rmi` and a prune may have just removed it (then it
                    // is gone from images.json now), or an import made it whole again.
                    Err(problem) => match self.entries()?.into_iter().find(|(n, _)| *n == name) {
                        Some((_, Ok(m2))) if m2 == m => match self.check(&name, &m) {
                            Ok(img) => ok.push(img),
                            Err(_) => bad.push(Damaged { name, manifest: Some(m), problem }),
                        },
                        _ => {}
                    },
                },
            }
        }
        Ok((ok, bad))
    }

    /// Loads an image and checks that all its content is in the store; the problem otherwise.
    pub fn check(&self, name: &str, manifest_digest: &str) -> std::result::Result<Image, String> {
        let missing = |what: &str, d: &str| format!("its {what} {d} is missing");
        if !self.has_blob(manifest_digest) {
            return Err(missing("manifest", manifest_digest));
        }
        let mb = self.read_blob(manifest_digest).map_err(|e| e.to_string())?;
        let manifest =
            ImageManifest::from_reader(&mb[..]).map_err(|e| format!("its manifest {manifest_digest}: {e}"))?;
        let cd = manifest.config().digest().to_string();
        if digest::hex(&cd).is_ok() && !self.has_blob(&cd) {
            return Err(missing("config", &cd));
        }
        let img = self.load(name, manifest_digest).map_err(|e| e.to_string())?;
        for (l, d) in img.manifest.layers().iter().zip(img.diff_ids()) {
            let p = self.blob_path(l.digest().as_ref()).map_err(|e| e.to_string())?;
            match fs::metadata(&p) {
                Err(_) => return Err(missing("layer blob", l.digest().as_ref())),
                Ok(m) if m.len() != l.size() => {
                    return Err(format!("its layer blob {} is {} bytes, not {}", l.digest(), m.len(), l.size()))
                }
                Ok(_) => {}
            }
            if !self.has_layer(&d) {
                return Err(format!("its layer {d} is not unpacked"));
            }
        }
        Ok(img)
    }

    /// Reads and verifies a manifest and its config.
    pub fn load(&self, name: &str, manifest_digest: &str) -> Result<Image> {
        let mb = self.read_blob(manifest_digest)?;
        let manifest = ImageManifest::from_reader(&mb[..])
            .map_err(|e| Error::image(format!("manifest {manifest_digest} of {name}: {e}")))?;
        let cd = manifest.config().digest().to_string();
        let config = ImageConfiguration::from_reader(&self.read_blob(&cd)?[..])
            .map_err(|e| Error::image(format!("config {cd} of {name}: {e}")))?;
        if config.rootfs().diff_ids().len() != manifest.layers().len() {
            return Err(Error::image(format!(
                "image {name}: the manifest has {} layers but the config {} diff_ids",
                manifest.layers().len(),
                config.rootfs().diff_ids().len()
            )));
        }
        Ok(Image { name: name.to_string(), manifest_digest: manifest_digest.to_string(), manifest, config })
    }

    /// Finds an image by reference (`alpine:3.20`, normalized as docker does) or by a prefix of
    /// its id (at least 4 hex digits, unique).
    pub fn find(&self, what: &str) -> Result<Image> {
        let entries = self.entries()?;
        let full = super::Reference::parse(what).map(|r| r.to_string()).ok();
        // The exact name, even one that is not a valid reference (a damaged entry's).
        if let Some((n, m)) =
            entries.iter().find(|(n, _)| Some(n) == full.as_ref()).or_else(|| entries.iter().find(|(n, _)| n == what))
        {
            let damaged = |problem: String| {
                Error::image(format!(
                    "image {n} is damaged: {problem} (`sandbox rmi {n}` or `sandbox image prune` removes the name)"
                ))
            };
            let m = m.clone().map_err(damaged)?;
            match self.load(n, &m) {
                Ok(img) => return Ok(img),
                // Without the lock, an `rmi` and a prune may have just removed it: then the
                // name is gone too, and "no image" below is the answer.
                Err(e) => {
                    if self.names()?.iter().any(|(n2, m2)| n2 == n && *m2 == m) {
                        return self.load(n, &m).map_err(|_| damaged(self.check(n, &m).err().unwrap_or(e.to_string())));
                    }
                }
            }
        }
        let names = self.names()?;
        let prefix = what.trim_start_matches("sha256:");
        if prefix.len() >= 4 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits: Vec<Image> = vec![];
            // A damaged image has no id to match: skipped (`images` reports it).
            for (n, m) in &names {
                let Ok(img) = self.load(n, m) else { continue };
                if img.config_digest()[7..].starts_with(prefix) && !hits.iter().any(|h| h.manifest_digest == *m) {
                    hits.push(img);
                }
            }
            match hits.len() {
                1 => return Ok(hits.pop().unwrap()),
                0 => {}
                _ => return Err(Error::image(format!("image id prefix '{what}' is ambiguous"))),
            }
        }
        super::Reference::parse(what)?;
        Err(Error::image(format!(
            "no image '{what}' in {} (see `sandbox images`; `sandbox pull {what}` fetches it)",
            self.root.display()
        )))
    }
}

/// Removes a store that holds nothing: its empty directories, its lock files, then `root`; stops
/// at the first directory that is not empty.
fn remove_empty_skeleton(root: &Path) {
    for d in ["blobs/sha256", "blobs", "layers", super::size::DIR, "containers", "tmp"] {
        if fs::remove_dir(root.join(d)).is_err() && root.join(d).exists() {
            return;
        }
    }
    for holders in ["lock.holders", "index.lock.holders"] {
        if let Ok(rd) = fs::read_dir(root.join(holders)) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        let _ = fs::remove_dir(root.join(holders));
    }
    for f in ["lock", "index.lock"] {
        let _ = fs::remove_file(root.join(f));
    }
    let _ = fs::remove_dir(root);
}
