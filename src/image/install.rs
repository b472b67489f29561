//! The one path by which content enters the store, whatever its source (a registry, a `docker
//! save` archive, an OCI layout): index → platform's manifest → config → layers, each blob
//! verified against its descriptor before use, each layer unpacked once, the name tagged last.
//! A failure anywhere leaves the store as it was (staged files are dropped) plus at most some
//! complete, verified blobs and layers, which `image prune` removes if nothing uses them.

use std::io::Read;
use std::sync::Mutex;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::digest::{self, Expected};
use super::manifest::{self, Kind, Platform};
use super::store::{Image, Store};
use crate::error::{Error, Result};

/// Where blobs come from.
pub trait Source: Sync {
    /// Opens the blob `desc` names. What it yields is verified by the caller.
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>>;
}

/// Told of each blob's progress (the CLI draws bars; the library default says nothing).
pub trait Progress: Sync {
    /// A blob starts: `total` bytes (0 when unknown). Returns the id used for its updates.
    fn start(&self, _what: &str, _digest: &str, _total: u64) -> usize {
        0
    }
    fn advance(&self, _id: usize, _bytes: u64) {}
    /// Done, with a word on how (`done`, `already present`).
    fn finish(&self, _id: usize, _how: &str) {}
}

/// No progress output.
pub struct Quiet;
impl Progress for Quiet {}

/// A reader that reports how much has passed through it.
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    id: usize,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(self.id, n as u64);
        Ok(n)
    }
}

/// How many layers are fetched and unpacked at once.
const PARALLEL: usize = 3;

/// Reads a whole small document (index, manifest, config) from `src` and verifies it.
pub fn fetch_document(src: &dyn Source, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
    if desc.size() > manifest::MAX_DOCUMENT {
        return Err(Error::image(format!(
            "{what} {} is {} bytes, more than a {what} may be",
            desc.digest(),
            desc.size()
        )));
    }
    let mut body = Vec::new();
    src.open(desc)?
        .take(manifest::MAX_DOCUMENT + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::image(format!("reading {what} {}: {e}", desc.digest())))?;
    let mut h = digest::Hasher::default();
    h.update(&body);
    Expected::of(desc).check(&h, what)?;
    Ok(body)
}

/// Installs the image whose top document (an index or a manifest, of `media_type`, already read
/// and verified by the caller) is `top`, choosing `platform` in an index, and tags it `name`
/// (a full reference). Returns the image as stored. A single-platform image is taken whatever
/// its platform (imports: `run --image` checks it); see [`install_for_platform`].
pub fn install(
    store: &Store,
    src: &dyn Source,
    media_type: &str,
    top: Vec<u8>,
    platform: &Platform,
    name: &str,
    progress: &dyn Progress,
) -> Result<Image> {
    install_checked(store, src, media_type, top, platform, name, progress, false)
}

/// [`install`], refusing a single-platform image whose config is for another platform than
/// `platform` once its config is read, before any layer is fetched (`pull`, as docker does).
pub fn install_for_platform(
    store: &Store,
    src: &dyn Source,
    media_type: &str,
    top: Vec<u8>,
    platform: &Platform,
    name: &str,
    progress: &dyn Progress,
) -> Result<Image> {
    install_checked(store, src, media_type, top, platform, name, progress, true)
}

#[allow(clippy::too_many_arguments)]
fn install_checked(
    store: &Store,
    src: &dyn Source,
    media_type: &str,
    top: Vec<u8>,
    platform: &Platform,
    name: &str,
    progress: &dyn Progress,
    check_platform: bool,
) -> Result<Image> {
    let shared = store.lock_shared()?;
    let (mut media_type, mut body) = (media_type.to_string(), top);
    // Chosen from an index by its platform, or the image's only one (checked below).
    let mut single = true;
    // An index may point at another index; two levels are plenty.
    for _ in 0..3 {
        if manifest::kind(&media_type, &body)? == Kind::Manifest {
            break;
        }
        single = false;
        let index = ImageIndex::from_reader(&body[..]).map_err(|e| Error::image(format!("image index: {e}")))?;
        let desc = manifest::select(&index, platform)?.clone();
        body = fetch_document(src, &desc, "manifest")?;
        media_type = desc.media_type().to_string();
    }
    if manifest::kind(&media_type, &body)? != Kind::Manifest {
        return Err(Error::image("image indexes nested more than three deep".to_string()));
    }
    let m = ImageManifest::from_reader(&body[..]).map_err(|e| Error::image(format!("image manifest: {e}")))?;
    let config_body = fetch_document(src, m.config(), "config")?;
    let config = ImageConfiguration::from_reader(&config_body[..])
        .map_err(|e| Error::image(format!("image config {}: {e}", m.config().digest())))?;
    if check_platform && single {
        manifest::check_platform(&config, platform, name, "pull")?;
    }
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != m.layers().len() {
        return Err(Error::image(format!(
            "the manifest lists {} layers but the config {} diff_ids",
            m.layers().len(),
            diff_ids.len()
        )));
    }
    // Unknown layer media types and malformed digests fail before any byte is fetched.
    for (l, d) in m.layers().iter().zip(diff_ids) {
        super::layer::Compression::from_media_type(l.media_type().as_ref())?;
        digest::hex(l.digest().as_ref())?;
        digest::hex(d)?;
    }

    let jobs: Vec<(&Descriptor, &String)> = m.layers().iter().zip(diff_ids).collect();
    let next = Mutex::new(0usize);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(jobs.len()) {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    if *n >= jobs.len() || first_error.lock().unwrap().is_some() {
                        return;
                    }
                    *n += 1;
                    *n - 1
                };
                let (l, diff_id) = jobs[i];
                if let Err(e) = layer(store, src, l, diff_id, progress) {
                    first_error.lock().unwrap().get_or_insert(e);
                    return;
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let cd = store.put_bytes(&config_body)?;
    debug_assert_eq!(cd, m.config().digest().to_string());
    let md = store.put_bytes(&body)?;
    // Named before the shared lock goes: prune must never see this content unreferenced.
    let img = store.tag(name, &md);
    drop(shared);
    img
}

/// One layer: fetched (unless its blob is here) and unpacked (unless its diff_id is here).
fn layer(store: &Store, src: &dyn Source, l: &Descriptor, diff_id: &str, progress: &dyn Progress) -> Result<()> {
    let digest = l.digest().to_string();
    let id = progress.start("layer", &digest, l.size());
    // The blob is kept even when an identical layer is already unpacked (from another image,
    // compressed differently): export and commit hand out this image's own blobs.
    if store.has_layer(diff_id) && store.has_blob(&digest) {
        progress.finish(id, "already present");
        return Ok(());
    }
    if !store.has_blob(&digest) {
        let mut r = Counting { inner: src.open(l)?, progress, id };
        store.put_blob(&mut r, &Expected::of(l), "layer")?;
    }
    store.unpack_layer(&digest, l.media_type().as_ref(), diff_id)?;
    progress.finish(id, "done");
    Ok(())
}
