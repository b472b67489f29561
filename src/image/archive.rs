//! `image import`: images from files. Three formats, each turned into the documents
//! [`install::install`] takes, so they enter the store by the same verified path as a pull:
//!
//! - an **OCI image layout**, as a directory or a tar of one (`oci-layout`, `index.json`,
//!   `blobs/sha256/…`): skopeo's `oci:`/`oci-archive:`, `docker save` since docker 25, buildkit;
//! - a **`docker save`** tar (`manifest.json` naming a config and layer tars by path): the layers
//!   get their digests here, and the image an OCI manifest made for it;
//! - a **root filesystem tarball** (`--name` required): one layer, a config made for it.
//!
//! A tar is first unpacked into a staging directory of the store (regular files, directories and
//! the symlinks `docker save` writes for repeated layers; entry names are checked like a layer's,
//! and files are opened with RESOLVE_IN_ROOT), removed when the import ends.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use oci_spec::image::Descriptor;
use serde::Deserialize;

use super::digest::{self, HashReader};
use super::install::{self, Progress, Source};
use super::layer::{self, Compression};
use super::manifest::{self, Platform};
use super::store::{Image, Store};
use super::tarstream;
use super::Reference;
use crate::error::{Error, Result};

/// Blobs in a directory (`blobs/<alg>/<hex>`), by path (`docker save`), or made here.
pub struct DirSource {
    root: OwnedFd,
    by_digest: HashMap<String, PathBuf>,
    /// Files the user named (a rootfs tarball), opened as given.
    direct: HashMap<String, PathBuf>,
    made: HashMap<String, Vec<u8>>,
}

impl DirSource {
    fn new(dir: &Path) -> Result<DirSource> {
        let root = layer::open_dir(dir).map_err(|e| Error::sys(format!("open {}", dir.display()), e))?;
        Ok(DirSource { root, by_digest: HashMap::new(), direct: HashMap::new(), made: HashMap::new() })
    }

    /// Opens `rel` inside the directory: symlinks and `..` resolve within it, never outside.
    fn open_file(&self, rel: &Path) -> io::Result<File> {
        Ok(File::from(layer::open_in(&self.root, rel, OFlag::O_RDONLY)?))
    }

    pub(super) fn read_small(&self, rel: &Path) -> Result<Vec<u8>> {
        let mut b = vec![];
        self.open_file(rel)
            .and_then(|f| f.take(manifest::MAX_DOCUMENT + 1).read_to_end(&mut b))
            .map_err(|e| Error::image(format!("{}: {e}", rel.display())))?;
        if b.len() as u64 > manifest::MAX_DOCUMENT {
            return Err(Error::image(format!("{} is larger than a manifest or config may be", rel.display())));
        }
        Ok(b)
    }
}

impl Source for DirSource {
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let d = desc.digest().to_string();
        if let Some(b) = self.made.get(&d) {
            return Ok(Box::new(io::Cursor::new(b.clone())));
        }
        if let Some(p) = self.direct.get(&d) {
            let f = File::open(p).map_err(|e| Error::io("cannot open", p, e))?;
            return Ok(Box::new(BufReader::with_capacity(1 << 20, f)));
        }
        let rel = match self.by_digest.get(&d) {
            Some(p) => p.clone(),
            None => Path::new("blobs").join(desc.digest().algorithm().to_string()).join(desc.digest().digest()),
        };
        let f = self.open_file(&rel).map_err(|e| Error::image(format!("blob {d} ({}): {e}", rel.display())))?;
        Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
    }
}

/// What `import` found and stored: each name and its image.
pub type Imported = Vec<Image>;

/// Imports `path` (a directory holding an OCI layout, or a tar: OCI layout, `docker save`, or a
/// root filesystem, plain or compressed). `name` names the image (required for a rootfs tar;
/// otherwise it replaces the archive's own names, and then the archive must hold one image).
pub fn import(store: &Store, path: &Path, name: Option<&str>, progress: &dyn Progress) -> Result<Imported> {
    import_with(store, path, &Options { name, tag: None }, progress)
}

/// What `image import` was asked for besides the archive.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options<'a> {
    /// The image's name (a rootfs tarball's, or one replacing the archive's own).
    pub name: Option<&'a str>,
    /// Only the image of an OCI layout that has this tag (or whole name).
    pub tag: Option<&'a str>,
}

/// [`import`] with every option. `path` `-` reads the archive (a tar: OCI layout, `docker save`
/// or rootfs) from stdin, spooled into the store's staging directory first: telling the kinds
/// apart reads the archive twice.
pub fn import_with(store: &Store, path: &Path, opts: &Options, progress: &dyn Progress) -> Result<Imported> {
    // Checked here, normalized where used: a repository alone names a layout's several tags.
    if let Some(n) = opts.name {
        Reference::parse(n)?;
    }
    let name = opts.name;
    if path.as_os_str() == "-" {
        if io::IsTerminal::is_terminal(&io::stdin()) {
            return Err(Error::invalid("import path", "-", "an archive piped into stdin (stdin is a terminal)"));
        }
        let spool = store.staging(false)?;
        let mut out = File::create(spool.path()).map_err(|e| Error::io("cannot create", spool.path(), e))?;
        io::copy(&mut io::stdin().lock(), &mut out)
            .map_err(|e| Error::image(format!("reading the archive from stdin: {e}")))?;
        drop(out);
        return import_tar(store, spool.path(), "-", name, opts.tag, progress);
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
    if meta.is_dir() {
        if !path.join("oci-layout").exists() {
            return Err(Error::invalid(
                "import path",
                &path.display().to_string(),
                "an OCI image layout directory (with oci-layout and index.json), or a tar file",
            ));
        }
        return super::layout::import(store, &DirSource::new(path)?, name, opts.tag, progress);
    }
    import_tar(store, path, &path.display().to_string(), name, opts.tag, progress)
}

/// Imports the tar file `path`, called `label` in messages.
fn import_tar(
    store: &Store,
    path: &Path,
    label: &str,
    name: Option<&str>,
    tag: Option<&str>,
    progress: &dyn Progress,
) -> Result<Imported> {
    let mut f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    // Most often a pipe from a command that failed: not an image without files.
    if f.metadata().map_err(|e| Error::io("cannot read", path, e))?.len() == 0 {
        let what = if label == "-" { "stdin" } else { label };
        return Err(Error::image(format!("{what} is empty: there is no archive to import")));
    }
    let kind = sniff_tar(&mut f, label)?;
    if tag.is_some() && kind != TarKind::Layout {
        return Err(Error::invalid(
            "--tag",
            tag.unwrap_or_default(),
            "a tag of an OCI layout (this archive is not one)",
        ));
    }
    match kind {
        TarKind::Layout | TarKind::DockerSave => {
            let stage = store.staging(true)?;
            unpack_archive(&mut f, stage.path()).map_err(|e| Error::image(format!("{label}: {e}")))?;
            let src = DirSource::new(stage.path())?;
            if kind == TarKind::Layout {
                super::layout::import(store, &src, name, tag, progress)
            } else {
                docker_save(store, src, name, progress)
            }
        }
        TarKind::Rootfs => {
            let Some(name) = name else {
                return Err(Error::image(format!(
                    "{label} is a root filesystem tarball (it has neither an oci-layout nor a manifest.json), \
                     which names no image: give it one with --name NAME[:TAG]"
                )));
            };
            let name = Reference::parse(name)?.to_string();
            rootfs(store, path, label, &name, progress).map(|i| vec![i])
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TarKind {
    Layout,
    DockerSave,
    Rootfs,
}

/// How `f` is compressed (sniffed from its first bytes); leaves it at its start.
fn compression_of(f: &mut File) -> io::Result<Compression> {
    let mut head = [0u8; 4];
    let n = f.read(&mut head)?;
    f.rewind()?;
    Ok(Compression::sniff(&head[..n]))
}

/// The tar stream of `f`, decompressed (`docker save | gzip` is common), from its start. A last
/// entry without its padding reads (see tarstream.rs).
fn tar_stream(f: &mut File) -> io::Result<tarstream::Padded<Box<dyn Read + Send + '_>>> {
    let c = compression_of(f)?;
    Ok(tarstream::Padded::new(c.decoder(BufReader::with_capacity(1 << 20, f)).map_err(io::Error::other)?))
}

/// Tells the three kinds apart by the archive's top-level entries (read without unpacking).
/// `label` names the archive in errors.
fn sniff_tar(f: &mut File, label: &str) -> Result<TarKind> {
    let mut head = [0u8; 512];
    let n = read_head(f, &mut head).map_err(|e| Error::image(format!("{label}: {e}")))?;
    if let Some(kind) = tarstream::unsupported_compression(&head[..n]) {
        return Err(Error::image(tarstream::unsupported_error(label, kind)));
    }
    let bad = |e: io::Error| {
        Error::image(format!(
            "{label} is not a tar archive (plain, gzip or zstd compressed): {}",
            layer::read_error(&e)
        ))
    };
    let mut kind = TarKind::Rootfs;
    {
        let mut ar = tar::Archive::new(tar_stream(f).map_err(bad)?);
        for e in ar.entries().map_err(bad)? {
            let e = e.map_err(bad)?;
            let p = e.path().map_err(bad)?;
            let p = p.strip_prefix("./").unwrap_or(&p);
            if p == Path::new("oci-layout") {
                kind = TarKind::Layout;
                break;
            }
            if p == Path::new("manifest.json") {
                kind = TarKind::DockerSave;
            }
        }
    }
    f.rewind().map_err(|e| Error::image(format!("{label}: {e}")))?;
    Ok(kind)
}

/// Reads up to `buf.len()` bytes from the start of `f`, then rewinds it.
fn read_head(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    f.rewind()?;
    Ok(n)
}

/// Unpacks an OCI layout or `docker save` tar: files, directories and relative symlinks only.
fn unpack_archive(f: &mut File, dst: &Path) -> Result<(), String> {
    let mut stream = tar_stream(f).map_err(|e| layer::read_error(&e))?;
    let end = stream.end();
    let mut ar = tar::Archive::new(&mut stream);
    for e in ar.entries().map_err(|e| layer::read_error(&e))? {
        let mut e = e.map_err(|e| layer::read_error(&e))?;
        let raw = e.path().map_err(|e| e.to_string())?.into_owned();
        let at = |m: String| format!("entry {}: {m}", tarstream::printable(&raw.to_string_lossy()));
        let rel = super::whiteout::relative(&raw).map_err(|e| at(e.to_string()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let out = dst.join(&rel);
        // Parents are made by name, so none may be a symlink an earlier entry made: that could
        // lead out of the staging directory.
        let mut p = dst.to_path_buf();
        for c in rel.parent().into_iter().flat_map(|r| r.components()) {
            p.push(c);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => return Err(at("a parent directory is a symlink".into())),
                Ok(m) if !m.is_dir() => return Err(at("a parent is not a directory".into())),
                Ok(_) => {}
                Err(_) => std::fs::create_dir(&p).map_err(|e| at(e.to_string()))?,
            }
        }
        if std::fs::symlink_metadata(&out).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(&out).map_err(|e| at(e.to_string()))?;
        }
        match e.header().entry_type() {
            tar::EntryType::Directory => match std::fs::create_dir(&out) {
                Err(err) if !out.is_dir() => return Err(at(err.to_string())),
                _ => {}
            },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // create_new is O_EXCL: never writes through a symlink.
                let mut w = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&out)
                    .map_err(|e| at(e.to_string()))?;
                io::copy(&mut e, &mut w).map_err(|e| at(e.to_string()))?;
                end.check(e.raw_file_position(), e.size()).map_err(&at)?;
            }
            // docker save links a layer tar that repeats an earlier one; opened in-root later.
            tar::EntryType::Symlink => {
                let target = e.link_name().map_err(|e| e.to_string())?.ok_or_else(|| at("no target".into()))?;
                std::os::unix::fs::symlink(&*target, &out).map_err(|e| at(e.to_string()))?;
            }
            // Metadata records (PAX, GNU long names) are read by the tar crate itself.
            t if t.is_pax_global_extensions() || t.is_pax_local_extensions() => {}
            other => return Err(at(format!("unexpected entry type {other:?} in an image archive"))),
        }
    }
    Ok(())
}

/// One image of a `docker save` manifest.json.
#[derive(Deserialize)]
struct SaveEntry {
    #[serde(rename = "Config")]
    config: PathBuf,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<PathBuf>,
}

/// A `docker save` archive: each image's config and layer tars get digests, and an OCI manifest.
fn docker_save(store: &Store, mut src: DirSource, name: Option<&str>, progress: &dyn Progress) -> Result<Imported> {
    let body = src.read_small(Path::new("manifest.json"))?;
    let entries: Vec<SaveEntry> =
        serde_json::from_slice(&body).map_err(|e| Error::image(format!("manifest.json: {e}")))?;
    if entries.is_empty() || (name.is_some() && entries.len() > 1) {
        return Err(Error::image(format!(
            "manifest.json lists {} images; import needs one when --name is given, and at least one",
            entries.len()
        )));
    }
    let mut out = vec![];
    for e in entries {
        let config = src.read_small(&e.config)?;
        let config_digest = digest::of_bytes(&config);
        let mut layers = vec![];
        for l in &e.layers {
            let f = src.open_file(l).map_err(|err| Error::image(format!("layer {}: {err}", l.display())))?;
            let mut r = HashReader::new(BufReader::with_capacity(1 << 20, f));
            let mut head = [0u8; 4];
            let n = r.read(&mut head).map_err(|err| Error::image(format!("layer {}: {err}", l.display())))?;
            if let Some(kind) = tarstream::unsupported_compression(&head[..n]) {
                return Err(Error::image(tarstream::unsupported_error(&format!("layer {}", l.display()), kind)));
            }
            io::copy(&mut r, &mut io::sink()).map_err(|err| Error::image(format!("layer {}: {err}", l.display())))?;
            let d = r.hasher.digest();
            layers.push(serde_json::json!({
                "mediaType": Compression::sniff(&head[..n]).oci_media_type(),
                "digest": d, "size": r.hasher.len(),
            }));
            src.by_digest.insert(d, l.clone());
        }
        let m = manifest_for(&config, &config_digest, layers);
        src.made.insert(config_digest, config);
        let names: Vec<String> = match name {
            Some(n) => vec![Reference::parse(n)?.to_string()],
            None => e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse(t).map(|r| r.to_string()))
                .collect::<Result<_>>()?,
        };
        let Some((first, rest)) = names.split_first() else {
            return Err(Error::image(format!(
                "image {} in manifest.json has no RepoTags: give --name",
                e.config.display()
            )));
        };
        let img = install::install(store, &src, manifest::OCI_MANIFEST, m, &Platform::host(), first, progress)?;
        for n in rest {
            out.push(store.tag(n, &img.manifest_digest)?);
        }
        out.push(img);
    }
    Ok(out)
}

/// An OCI manifest for `config` and layer descriptors (JSON values).
fn manifest_for(config: &[u8], config_digest: &str, layers: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": layers,
    }))
    .expect("a manifest serializes")
}

/// A root filesystem tarball as a one-layer image with a config made for it.
fn rootfs(store: &Store, path: &Path, label: &str, name: &str, progress: &dyn Progress) -> Result<Image> {
    let err = |e: io::Error| Error::image(format!("{label}: {e}"));
    let mut f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let comp = compression_of(&mut f).map_err(err)?;
    // One pass for both digests: the blob's (compressed) and the diff_id (the tar's).
    let mut outer = HashReader::new(BufReader::with_capacity(1 << 20, f));
    let mut inner = HashReader::new(comp.decoder(BufReader::new(&mut outer))?);
    io::copy(&mut inner, &mut io::sink()).map_err(err)?;
    let diff_id = inner.hasher.digest();
    drop(inner);
    io::copy(&mut outer, &mut io::sink()).map_err(err)?;
    let (blob_digest, size) = (outer.hasher.digest(), outer.hasher.len());
    let host = Platform::host();
    // docker import dates the image and its one history entry alike (`history` shows it).
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let config = serde_json::to_vec(&serde_json::json!({
        "created": created,
        "architecture": host.arch, "os": host.os,
        "config": {"Env": [super::container::DEFAULT_PATH]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": format!("sandbox image import {label}")}],
    }))
    .expect("a config serializes");
    let config_digest = digest::of_bytes(&config);
    let layer = serde_json::json!({"mediaType": comp.oci_media_type(), "digest": blob_digest, "size": size});
    let m = manifest_for(&config, &config_digest, vec![layer]);
    let mut src = DirSource::new(store.root())?;
    src.direct.insert(blob_digest, path.to_path_buf());
    src.made.insert(config_digest, config);
    install::install(store, &src, manifest::OCI_MANIFEST, m, &host, name, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_told_apart_by_their_entries() {
        let dir = tempfile::tempdir().unwrap();
        let tar_of = |names: &[&str]| {
            let mut b = tar::Builder::new(Vec::new());
            for n in names {
                let mut h = tar::Header::new_gnu();
                h.set_size(2);
                h.set_mode(0o644);
                b.append_data(&mut h, n, &b"{}"[..]).unwrap();
            }
            let p = dir.path().join(names.join("_").replace('/', "-"));
            std::fs::write(&p, b.into_inner().unwrap()).unwrap();
            File::open(p).unwrap()
        };
        assert_eq!(sniff_tar(&mut tar_of(&["blobs/x", "./oci-layout", "index.json"]), "t").unwrap(), TarKind::Layout);
        assert_eq!(sniff_tar(&mut tar_of(&["abc/layer.tar", "manifest.json"]), "t").unwrap(), TarKind::DockerSave);
        assert_eq!(sniff_tar(&mut tar_of(&["etc/passwd", "bin/sh"]), "t").unwrap(), TarKind::Rootfs);
        // Compressed archives are read through their decompressor: `docker save | gzip`.
        let mut plain = tar_of(&["abc/layer.tar", "manifest.json"]);
        let mut tar = vec![];
        plain.read_to_end(&mut tar).unwrap();
        let gz = dir.path().join("gz");
        let mut e = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &tar).unwrap();
        e.finish().unwrap();
        assert_eq!(sniff_tar(&mut File::open(&gz).unwrap(), "t").unwrap(), TarKind::DockerSave);
    }
}
