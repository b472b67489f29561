//! `commit`: a kept container's upper directory becomes an OCI layer on top of its image.
//!
//! The upper dir is walked without following symlinks, names sorted, so the same changes give the
//! same layer bytes. overlayfs's own markers turn back into OCI's: a 0/0 character device (or a
//! zero-size file carrying `trusted.overlay.whiteout`) becomes `.wh.NAME`, a directory with
//! `trusted.overlay.opaque=y` gets a `DIR/.wh..wh..opq` entry. Every other xattr is kept as a PAX
//! `SCHILY.xattr.*` record except overlayfs's (`trusted.overlay.*`: what a container could forge
//! through the escaped names must not become real markers in a layer) and `security.selinux`
//! (a label of this host's policy). Files hard-linked within the upper dir become tar `Link`
//! entries. Sockets cannot be archived and are left out, as docker does.
//!
//! The tar is gzip-compressed while both streams are hashed (diff_id and blob digest in one
//! pass), staged under ROOT/tmp and moved into ROOT/blobs; the new layer is then unpacked from
//! that blob through the same [`Store::unpack_layer`] every pulled layer goes through, so the new
//! image runs at once. Config and manifest are the base image's, with the layer appended.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tar::{EntryType, Header};

use super::change::Change;
use super::container::Container;
use super::digest::HashWriter;
use super::layer::{Compression, OPAQUE_XATTR};
use super::manifest::{DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST};
use super::store::{Image, Store};
use super::whiteout;
use super::Reference;
use crate::error::{Error, Result};
use crate::sys;

/// The media type of the layers commit writes.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The history entry's `created_by`.
pub const CREATED_BY: &str = "sandbox commit";

/// overlayfs's private xattrs (never copied into a layer).
const OVERLAY_XATTRS: &str = "trusted.overlay.";
/// Kernel 6.7+: a zero-size regular file with this xattr is a whiteout (on nested overlays).
const WHITEOUT_XATTR: &str = "trusted.overlay.whiteout";
/// Features sandbox mounts with off (plan.rs); an upper dir using them cannot be read file by file.
const REFUSED_XATTRS: [&str; 2] = ["trusted.overlay.redirect", "trusted.overlay.metacopy"];

/// A layer written by [`write_layer`]: its blob digest and size, and its diff_id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
}

/// Commits kept container `container` as image `reference` (a new name, or a new version of an
/// existing one); `message` goes into the history entry's comment, `changes` (`--change`) into
/// its config. Returns the new image.
pub fn commit(
    store: &Store,
    container: &str,
    reference: &str,
    message: Option<&str>,
    changes: &[Change],
) -> Result<Image> {
    let r = Reference::parse(reference)?;
    if r.digest.is_some() {
        return Err(Error::invalid(
            "image reference",
            reference,
            "a name with an optional tag, without @sha256: (the new image's digest is not known yet)",
        ));
    }
    let name = r.to_string();
    // Held until the image is tagged: no run may change the upper dir while it is read.
    let c = Container::open_kept(store, container)?;
    let shared = store.lock_shared()?;
    let base = store.load(&c.meta.image, &c.meta.manifest).map_err(|e| {
        Error::image(format!("container '{container}': its image {} ({}): {e}", c.meta.image, c.meta.manifest))
    })?;
    // A --change that fails against the base config fails before any layer is written.
    super::change::check(&store.read_blob(&base.config_digest())?, changes)?;
    let layer = store_layer(store, &c.upper())?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut config = new_config(&store.read_blob(&base.config_digest())?, &layer.diff_id, &now, message)?;
    if !changes.is_empty() {
        let mut doc: Value = serde_json::from_slice(&config).expect("new_config writes JSON");
        super::change::apply(&mut doc, changes)?;
        config = serde_json::to_vec(&doc).expect("JSON values serialize");
    }
    let config_digest = store.put_bytes(&config)?;
    let manifest = new_manifest(
        &store.read_blob(&base.manifest_digest)?,
        (&config_digest, config.len() as u64),
        &layer,
        (&base.name, &base.manifest_digest),
    )?;
    let manifest_digest = store.put_bytes(&manifest)?;
    // Named before the shared lock goes: prune must never see this content unreferenced.
    let img = store.tag(&name, &manifest_digest)?;
    drop(shared);
    drop(c);
    Ok(img)
}

/// Writes the layer of `upper` into the store (blob and unpacked layer dir).
pub fn store_layer(store: &Store, upper: &Path) -> Result<NewLayer> {
    let tmp = store.staging(false)?;
    let f = File::create(tmp.path()).map_err(|e| Error::io("cannot create", tmp.path(), e))?;
    let compressed = HashWriter::new(BufWriter::with_capacity(1 << 20, f));
    let gz = flate2::GzBuilder::new().write(compressed, flate2::Compression::default());
    let mut plain = HashWriter::new(gz);
    write_layer(upper, &mut plain)?;
    let diff_id = plain.hasher.digest();
    let io_err = |e| Error::io("cannot write the new layer", tmp.path(), e);
    let mut compressed = plain.inner.finish().map_err(io_err)?;
    compressed.flush().map_err(io_err)?;
    let layer = NewLayer { digest: compressed.hasher.digest(), size: compressed.hasher.len(), diff_id };
    drop(compressed);
    tmp.persist(&store.blob_path(&layer.digest)?)?;
    store.unpack_layer(&layer.digest, LAYER_MEDIA_TYPE, &layer.diff_id)?;
    Ok(layer)
}

/// Writes the OCI layer tar (uncompressed) of overlay upper dir `upper` to `w`.
pub fn write_layer(upper: &Path, w: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    let mut links = HashMap::new();
    walk(&mut b, upper, Path::new(""), &mut links)?;
    b.into_inner().map_err(|e| Error::io("cannot write the new layer", upper, e))?;
    Ok(())
}

type Builder<'a> = tar::Builder<&'a mut dyn Write>;

/// One directory of the upper dir (`rel` from its root), entries sorted by name.
fn walk(b: &mut Builder, upper: &Path, rel: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    let dir = upper.join(rel);
    let mut names: Vec<OsString> = fs::read_dir(&dir)
        .map_err(|e| Error::io("cannot list", &dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io("cannot list", &dir, e))?;
    names.sort();
    for n in names {
        let rel = rel.join(&n);
        let path = upper.join(&rel);
        let md = fs::symlink_metadata(&path).map_err(|e| Error::io("cannot stat", &path, e))?;
        if made_mount_point(&rel, &path, &md) {
            continue;
        }
        entry(b, &path, &rel, &md, links).map_err(|e| match e {
            Error::Image(m) => Error::image(format!("{}: {m}", path.display())),
            e => e,
        })?;
        if md.is_dir() {
            walk(b, upper, &rel, links)?;
        }
    }
    Ok(())
}

/// A mount point a run made in a root that lacks it (plan.rs: /proc, /sys, /dev), still empty:
/// sandbox's, not a change of the command's, so it stays out of the layer (docker keeps these in
/// a separate init layer for the same reason).
fn made_mount_point(rel: &Path, path: &Path, md: &Metadata) -> bool {
    ["proc", "sys", "dev"].iter().any(|m| rel == Path::new(m))
        && md.is_dir()
        && fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// The archive entry (or entries) for one upper-dir file at `rel`.
fn entry(
    b: &mut Builder,
    path: &Path,
    rel: &Path,
    md: &Metadata,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let ft = md.file_type();
    let xattrs = xattrs(path)?;
    let mut pax: Vec<(String, Vec<u8>)> = vec![];
    let mut opaque = false;
    for (k, v) in xattrs {
        if REFUSED_XATTRS.contains(&k.as_str()) {
            return Err(Error::image(format!(
                "has the overlayfs xattr {k} (redirect_dir or metacopy): this upper directory was not made by a \
                 sandbox run and cannot be committed"
            )));
        }
        if k == OPAQUE_XATTR && ft.is_dir() {
            opaque = v == b"y";
        } else if k == WHITEOUT_XATTR && ft.is_file() && md.len() == 0 {
            return whiteout_entry(b, rel, md);
        } else if !k.starts_with(OVERLAY_XATTRS) && k != "security.selinux" {
            pax.push((format!("SCHILY.xattr.{k}"), v));
        }
    }
    let io = |e| Error::io("cannot write the new layer", rel, e);
    if ft.is_char_device() && md.rdev() == 0 {
        return whiteout_entry(b, rel, md);
    }
    if rel.file_name().is_some_and(|n| n.as_bytes().starts_with(whiteout::PREFIX.as_bytes())) {
        // In a layer this name would delete something instead of being a file: OCI has no escape.
        return Err(Error::image(format!(
            "a file named {}* cannot be stored in an OCI layer (the prefix marks deletions); rename or remove it",
            whiteout::PREFIX
        )));
    }
    let mut h = header(md);
    let mut name = rel.as_os_str().as_bytes().to_vec();
    let mut data: Box<dyn Read> = Box::new(io::empty());
    let mut link: Option<Vec<u8>> = None;
    if ft.is_dir() {
        h.set_entry_type(EntryType::Directory);
        name.push(b'/');
    } else if ft.is_symlink() {
        h.set_entry_type(EntryType::Symlink);
        link =
            Some(fs::read_link(path).map_err(|e| Error::io("cannot read link", path, e))?.into_os_string().into_vec());
    } else if let Some(first) = (md.nlink() > 1).then(|| links.get(&(md.dev(), md.ino()))).flatten() {
        // Another name of a file already in the archive: its metadata and xattrs came with it.
        h.set_entry_type(EntryType::Link);
        link = Some(first.as_os_str().as_bytes().to_vec());
        pax.clear();
    } else if ft.is_file() {
        h.set_entry_type(EntryType::Regular);
        h.set_size(md.len());
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| Error::io("cannot open", path, e))?;
        data = Box::new(Exact { inner: f.take(md.len()), left: md.len() });
    } else if ft.is_char_device() || ft.is_block_device() {
        h.set_entry_type(if ft.is_char_device() { EntryType::Char } else { EntryType::Block });
        h.set_device_major(libc::major(md.rdev())).map_err(io)?;
        h.set_device_minor(libc::minor(md.rdev())).map_err(io)?;
    } else if ft.is_fifo() {
        h.set_entry_type(EntryType::Fifo);
    } else {
        // A socket: it means nothing once its listener is gone, and tar has no type for it.
        return Ok(());
    }
    if md.nlink() > 1 && !ft.is_dir() && h.entry_type() != EntryType::Link {
        links.insert((md.dev(), md.ino()), rel.to_path_buf());
    }
    append(b, h, &name, link.as_deref(), pax, &mut data).map_err(io)?;
    if opaque {
        let mut h = header(md);
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        let name = whiteout::oci_opaque_for(rel).into_os_string().into_vec();
        append(b, h, &name, None, vec![], &mut io::empty()).map_err(io)?;
    }
    Ok(())
}

/// `DIR/.wh.NAME`, an empty file, for an overlayfs whiteout at `rel`.
fn whiteout_entry(b: &mut Builder, rel: &Path, md: &Metadata) -> Result<()> {
    let mut h = header(md);
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    let name = whiteout::oci_whiteout_for(rel).into_os_string().into_vec();
    append(b, h, &name, None, vec![], &mut io::empty()).map_err(|e| Error::io("cannot write the new layer", rel, e))
}

/// A ustar header with `md`'s mode (incl. setuid, setgid, sticky), owner and mtime; size 0.
fn header(md: &Metadata) -> Header {
    let mut h = Header::new_ustar();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid().into());
    h.set_gid(md.gid().into());
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// Appends one entry, with a PAX header first when it has xattrs or a name or link target longer
/// than ustar holds.
fn append(
    b: &mut Builder,
    mut h: Header,
    name: &[u8],
    link: Option<&[u8]>,
    mut pax: Vec<(String, Vec<u8>)>,
    data: &mut dyn Read,
) -> io::Result<()> {
    if h.set_path(Path::new(std::ffi::OsStr::from_bytes(name))).is_err() {
        pax.push(("path".into(), name.to_vec()));
        // Readers without PAX support see the first 100 bytes.
        let old = h.as_old_mut();
        let n = name.len().min(old.name.len());
        old.name[..n].copy_from_slice(&name[..n]);
    }
    if let Some(l) = link {
        if h.set_link_name_literal(l).is_err() {
            pax.push(("linkpath".into(), l.to_vec()));
            h.set_link_name_literal(&l[..100])?;
        }
    }
    b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    h.set_cksum();
    b.append(&h, data)
}

/// A file's contents, failing if they are not exactly the size its header announced (a file that
/// changed while read would otherwise shift every later entry of the archive).
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was archived"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// `path`'s xattrs (not following a symlink), sorted by name.
fn xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::image("NUL in a file name".to_string()))?;
    let e = |what: &str, err: nix::Error| Error::image(format!("{what}: {}", err.desc()));
    let mut out = vec![];
    for n in sys::llistxattr(&c).map_err(|err| e("listing xattrs", err))? {
        let Some(v) = sys::lgetxattr(&c, &n).map_err(|err| e("reading xattrs", err))? else { continue };
        let k = n.into_string().map_err(|n| Error::image(format!("xattr name {:?} is not UTF-8", n.into_cstring())))?;
        out.push((k, v));
    }
    out.sort();
    Ok(out)
}

/// The base config with `diff_id` appended, a history entry for it and a fresh `created`.
/// Everything else (Env, Cmd, Labels, unknown fields) is kept as it was.
pub fn new_config(base: &[u8], diff_id: &str, now: &str, message: Option<&str>) -> Result<Vec<u8>> {
    let bad = |e: &dyn std::fmt::Display| Error::image(format!("the base image's config: {e}"));
    let mut c: Value = serde_json::from_slice(base).map_err(|e| bad(&e))?;
    let obj = c.as_object_mut().ok_or_else(|| bad(&"not a JSON object"))?;
    let diff_ids = obj
        .get_mut("rootfs")
        .and_then(|r| r.get_mut("diff_ids"))
        .and_then(Value::as_array_mut)
        .ok_or_else(|| bad(&"no rootfs.diff_ids"))?;
    let layers = diff_ids.len();
    diff_ids.push(Value::String(diff_id.to_string()));
    let history = obj.entry("history").or_insert_with(|| json!([]));
    if !history.is_array() {
        *history = json!([]);
    }
    let h = history.as_array_mut().expect("made an array above");
    // One non-empty history entry per layer, as docker and buildkit expect: a base image that
    // recorded fewer gets blank ones in front (buildkit does the same).
    let recorded = h.iter().filter(|e| e.get("empty_layer").and_then(Value::as_bool) != Some(true)).count();
    if recorded < layers {
        h.splice(0..0, std::iter::repeat(json!({})).take(layers - recorded));
    }
    let mut entry = json!({"created": now, "created_by": CREATED_BY});
    if let Some(m) = message {
        entry["comment"] = Value::String(m.to_string());
    }
    h.push(entry);
    obj.insert("created".into(), Value::String(now.to_string()));
    // docker's image `comment` is the commit message (the base's does not carry over).
    match message {
        Some(m) => obj.insert("comment".into(), Value::String(m.to_string())),
        None => obj.remove("comment"),
    };
    Ok(serde_json::to_vec(&c).expect("JSON values serialize"))
}

/// The base manifest with the config replaced and the layer appended, as an OCI manifest (a
/// Docker schema 2 base is converted: the layer formats are the same, only the names differ).
pub fn new_manifest(base: &[u8], config: (&str, u64), layer: &NewLayer, base_ref: (&str, &str)) -> Result<Vec<u8>> {
    let bad = |e: &dyn std::fmt::Display| Error::image(format!("the base image's manifest: {e}"));
    let mut m: Value = serde_json::from_slice(base).map_err(|e| bad(&e))?;
    let obj = m.as_object_mut().ok_or_else(|| bad(&"not a JSON object"))?;
    let docker = obj.get("mediaType").and_then(Value::as_str) == Some(DOCKER_MANIFEST);
    obj.insert("mediaType".into(), Value::String(OCI_MANIFEST.into()));
    // Not a referrer of what the base referred to.
    obj.remove("subject");
    let config_type = match obj.get("config").and_then(|c| c.get("mediaType")).and_then(Value::as_str) {
        Some(t) if !docker => t.to_string(),
        _ => OCI_CONFIG.to_string(),
    };
    obj.insert("config".into(), json!({"mediaType": config_type, "digest": config.0, "size": config.1}));
    let layers = obj.get_mut("layers").and_then(Value::as_array_mut).ok_or_else(|| bad(&"no layers"))?;
    if docker {
        for l in layers.iter_mut() {
            let t = l.get("mediaType").and_then(Value::as_str).unwrap_or_default();
            let oci = match t {
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
                }
                t => Compression::from_media_type(t)?.oci_media_type(),
            };
            l["mediaType"] = Value::String(oci.into());
        }
    }
    layers.push(json!({"mediaType": LAYER_MEDIA_TYPE, "digest": layer.digest, "size": layer.size}));
    let ann = obj.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = ann.as_object_mut() {
        a.insert("org.opencontainers.image.base.name".into(), Value::String(base_ref.0.into()));
        a.insert("org.opencontainers.image.base.digest".into(), Value::String(base_ref.1.into()));
    }
    Ok(serde_json::to_vec(&m).expect("JSON values serialize"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    /// (path, type, mode, uid, link target, contents, xattrs) of every entry.
    type Row = (String, EntryType, u32, u64, Option<String>, Vec<u8>, Vec<(String, Vec<u8>)>);

    fn entries(tar: &[u8]) -> Vec<Row> {
        let mut ar = tar::Archive::new(tar);
        let mut out = vec![];
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut xattrs = vec![];
            if let Some(x) = e.pax_extensions().unwrap() {
                for x in x.flatten() {
                    if let Some(k) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        xattrs.push((k.to_string(), x.value_bytes().to_vec()));
                    }
                }
            }
            let h = e.header().clone();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
            let mut body = vec![];
            e.read_to_end(&mut body).unwrap();
            out.push((path, h.entry_type(), h.mode().unwrap(), h.uid().unwrap(), link, body, xattrs));
        }
        out
    }

    fn layer_of(dir: &Path) -> Vec<u8> {
        let mut out = vec![];
        write_layer(dir, &mut out).unwrap();
        out
    }

    fn find<'a>(rows: &'a [Row], path: &str) -> &'a Row {
        rows.iter().find(|r| r.0 == path).unwrap_or_else(|| panic!("no entry {path}: {:?}", names(rows)))
    }

    fn names(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.0.as_str()).collect()
    }

    #[test]
    fn files_links_modes_and_long_names_become_tar_entries() {
        let t = tempfile::tempdir().unwrap();
        let u = t.path();
        fs::create_dir(u.join("a")).unwrap();
        fs::set_permissions(u.join("a"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(u.join("a/file"), b"body").unwrap();
        fs::set_permissions(u.join("a/file"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(u.join("a/file"), u.join("a/hard")).unwrap();
        symlink("../x/y", u.join("a/link")).unwrap();
        let long_target = format!("/{}", "t".repeat(150));
        symlink(&long_target, u.join("a/longlink")).unwrap();
        fs::create_dir(u.join("b")).unwrap();
        nix::unistd::mkfifo(&u.join("b/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let long = "n".repeat(150);
        fs::write(u.join("b").join(&long), b"long").unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(u.join("b/sock")).unwrap();
        let c = CString::new(u.join("a/file").as_os_str().as_bytes()).unwrap();
        let user_xattr = sys::lsetxattr(&c, c"user.note", b"hi").is_ok();
        if !user_xattr {
            eprintln!("SKIPPED (part): this filesystem keeps no user.* xattrs");
        }

        let tar = layer_of(u);
        assert_eq!(tar, layer_of(u), "the same upper dir gives the same bytes");
        let rows = entries(&tar);
        assert_eq!(
            names(&rows),
            ["a/", "a/file", "a/hard", "a/link", "a/longlink", "b/", "b/fifo", &format!("b/{long}")],
            "sorted, parents first, no socket"
        );
        let a = find(&rows, "a/");
        assert_eq!((a.1, a.2), (EntryType::Directory, 0o750));
        let f = find(&rows, "a/file");
        assert_eq!((f.1, f.2, f.5.as_slice()), (EntryType::Regular, 0o4755, &b"body"[..]), "setuid kept");
        assert_eq!(f.3, u64::from(nix::unistd::geteuid().as_raw()));
        if user_xattr {
            assert_eq!(f.6, vec![("user.note".to_string(), b"hi".to_vec())]);
        }
        let h = find(&rows, "a/hard");
        assert_eq!((h.1, h.4.as_deref(), h.6.len()), (EntryType::Link, Some("a/file"), 0));
        assert_eq!(find(&rows, "a/link").4.as_deref(), Some("../x/y"), "symlink targets verbatim");
        assert_eq!(find(&rows, "a/longlink").4.as_deref(), Some(long_target.as_str()), "PAX linkpath");
        assert_eq!(find(&rows, "b/fifo").1, EntryType::Fifo);
        assert_eq!(find(&rows, &format!("b/{long}")).5, b"long", "PAX path");
    }

    #[test]
    fn whiteouts_opaque_dirs_devices_and_overlay_xattrs() {
        if !sys::is_root() {
            eprintln!("SKIPPED whiteouts_opaque_dirs_devices_and_overlay_xattrs: needs root (mknod, trusted.* xattrs)");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let u = t.path();
        let set = |p: &str, k: &std::ffi::CStr, v: &[u8]| {
            let c = CString::new(u.join(p).as_os_str().as_bytes()).unwrap();
            sys::lsetxattr(&c, k, v).unwrap();
        };
        use nix::sys::stat::{mknod, Mode, SFlag};
        fs::create_dir_all(u.join("d")).unwrap();
        mknod(&u.join("d/gone"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        mknod(&u.join("d/null"), SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), libc::makedev(1, 3)).unwrap();
        fs::write(u.join("d/xwh"), b"").unwrap();
        set("d/xwh", c"trusted.overlay.whiteout", b"");
        fs::write(u.join("d/ping"), b"x").unwrap();
        set("d/ping", c"security.capability", &[1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        set("d/ping", c"trusted.overlay.origin", b"junk");
        set("d/ping", c"trusted.other", b"kept");
        fs::create_dir_all(u.join("o")).unwrap();
        set("o", c"trusted.overlay.opaque", b"y");
        fs::write(u.join("o/y"), b"x\n").unwrap();
        fs::create_dir_all(u.join("p")).unwrap();
        set("p", c"trusted.overlay.opaque", b"x");

        let rows = entries(&layer_of(u));
        assert_eq!(
            names(&rows),
            ["d/", "d/.wh.gone", "d/null", "d/ping", "d/.wh.xwh", "o/", "o/.wh..wh..opq", "o/y", "p/"],
            "whiteouts renamed in place; only opaque=y is opaque"
        );
        let w = find(&rows, "d/.wh.gone");
        assert_eq!((w.1, w.5.len(), w.3), (EntryType::Regular, 0, 0));
        assert_eq!(find(&rows, "d/null").1, EntryType::Char);
        let p = &find(&rows, "d/ping").6;
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["security.capability", "trusted.other"], "overlayfs's own xattrs dropped");
        assert!(find(&rows, "o/").6.is_empty() && find(&rows, "p/").6.is_empty());

        // Round trip through the unpacker: the overlay markers come back.
        let back = tempfile::tempdir().unwrap();
        super::super::layer::unpack(&mut &layer_of(u)[..], back.path()).unwrap();
        let md = fs::symlink_metadata(back.path().join("d/gone")).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0);
        let o = CString::new(back.path().join("o").as_os_str().as_bytes()).unwrap();
        assert_eq!(sys::lgetxattr(&o, c"trusted.overlay.opaque").unwrap().as_deref(), Some(&b"y"[..]));

        fs::write(u.join(".wh.x"), b"").unwrap();
        let e = write_layer(u, &mut vec![]).unwrap_err().to_string();
        assert!(e.contains(".wh.x") && e.contains("cannot be stored"), "{e}");
        fs::remove_file(u.join(".wh.x")).unwrap();
        set("p", c"trusted.overlay.redirect", b"/elsewhere");
        let mut sink = vec![];
        let e = write_layer(u, &mut sink).unwrap_err().to_string();
        assert!(e.contains("trusted.overlay.redirect") && e.contains("/p"), "{e}");
    }

    #[test]
    fn config_and_manifest_grow_by_one_layer() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let base = json!({
            "architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": [d('a'), d('b')]},
            "history": [{"created_by": "ADD"}, {"created_by": "ENV", "empty_layer": true}],
        });
        let c = new_config(base.to_string().as_bytes(), &d('c'), "2026-11-24T00:00:00Z", Some("why")).unwrap();
        let c: Value = serde_json::from_slice(&c).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"], json!([d('a'), d('b'), d('c')]));
        assert_eq!(c["created"], "2026-11-24T00:00:00Z");
        assert_eq!(c["config"]["Cmd"], json!(["sh"]));
        let h = c["history"].as_array().unwrap();
        assert_eq!(h.len(), 4, "one blank entry pads the base's missing one: {h:?}");
        assert_eq!(h[0], json!({}));
        assert_eq!(h[3], json!({"created": "2026-11-24T00:00:00Z", "created_by": CREATED_BY, "comment": "why"}));

        let docker = json!({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('e'), "size": 1},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d('f'), "size": 2}],
        });
        let layer = NewLayer { digest: d('9'), size: 3, diff_id: d('c') };
        let m =
            new_manifest(docker.to_string().as_bytes(), (&d('8'), 7), &layer, ("docker.io/x/y:1", &d('7'))).unwrap();
        let m: Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(m["mediaType"], OCI_MANIFEST);
        assert_eq!(m["config"], json!({"mediaType": OCI_CONFIG, "digest": d('8'), "size": 7}));
        assert_eq!(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(m["layers"][1], json!({"mediaType": LAYER_MEDIA_TYPE, "digest": d('9'), "size": 3}));
        assert_eq!(m["annotations"]["org.opencontainers.image.base.digest"], d('7'));
    }
}
