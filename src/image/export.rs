//! `image export`: an image of the store as an OCI image layout tar, which skopeo
//! (`oci-archive:`), podman and docker (`load`), umoci (once untarred) and `image import` read.
//!
//! ```text
//! oci-layout              {"imageLayoutVersion":"1.0.0"}
//! blobs/sha256/HEX        every layer blob, the config and the manifest, as stored
//! index.json              the manifest's descriptor, named: org.opencontainers.image.ref.name
//!                         (the tag, as skopeo and umoci use it) and io.containerd.image.name
//!                         (the whole reference, as containerd, docker and podman use it)
//! manifest.json           the `docker save` view of the same blobs, as docker 25+ writes it too
//! ```
//!
//! Every blob is verified while it is copied: a blob changed on disk since it was stored fails
//! the export, and no output file is left (it is written beside the target and renamed at the end).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::digest::{Expected, HashReader};
use super::manifest::{self, OCI_INDEX, OCI_MANIFEST};
use super::reference::Reference;
use super::store::{Image, Store};
use crate::error::{Error, Result};

/// Writes image `image` (a name or id prefix) as an OCI layout tar at `out`. Returns the image.
pub fn export(store: &Store, image: &str, out: &Path) -> Result<Image> {
    let img = store.find(image)?;
    let tmp = Partial(tmp_path(out));
    // A Ctrl-C that the copy loop does not see in time (a write blocked on a full disk, a lock
    // wait) must not leave the partial file either.
    let _cleanup = crate::interrupt::remove_on_interrupt(&tmp.0);
    // O_EXCL|O_NOFOLLOW: the name is guessable, and a link planted there must not be followed.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp.0)
        .map_err(|e| Error::io("cannot create the export", out, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    write_layout_to(store, &img, &mut w, out)?;
    // Errors name the target the user gave, not the temporary file beside it.
    let f = w.into_inner().map_err(|e| Error::io("cannot write the export to", out, e.into_error()))?;
    f.sync_all().map_err(|e| Error::io("cannot write the export to", out, e))?;
    crate::interrupt::commit(|| fs::rename(&tmp.0, out))?.map_err(|e| Error::io("cannot move into place", out, e))?;
    std::mem::forget(tmp);
    Ok(img)
}

/// `OUT.tmp-PID`, beside `out` (same filesystem: the rename is atomic).
fn tmp_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    out.with_file_name(name)
}

/// A file removed on drop: the output of an export that failed.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Writes `img` as an OCI layout tar to `w` (standard output), holding the store's shared lock
/// so that prune leaves its blobs alone meanwhile.
pub fn write_layout(store: &Store, img: &Image, w: &mut dyn Write) -> Result<()> {
    write_layout_to(store, img, w, Path::new("standard output"))
}

/// [`write_layout`], whose write errors name `target`.
pub fn write_layout_to(store: &Store, img: &Image, w: &mut dyn Write, target: &Path) -> Result<()> {
    let _shared = store.lock_shared()?;
    // Found before the lock was taken: an `rmi` and a prune may have removed it since.
    if !store.has_blob(&img.manifest_digest) {
        return Err(Error::image(format!(
            "image {} was removed from the store meanwhile (rmi, image prune)",
            img.name
        )));
    }
    // Both documents are read whole and verified again; the layers are verified as they stream.
    let manifest = store.read_blob(&img.manifest_digest)?;
    let config_digest = img.config_digest();
    let config = store.read_blob(&config_digest)?;
    let m: Value = serde_json::from_slice(&manifest)
        .map_err(|e| Error::image(format!("manifest {}: {e}", img.manifest_digest)))?;
    let c: Value = serde_json::from_slice(&config).map_err(|e| Error::image(format!("config {config_digest}: {e}")))?;
    let out_err = |e| Error::io("cannot write the export to", target, e);

    let mut b = tar::Builder::new(w);
    file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(out_err)?;
    dir(&mut b, "blobs/").map_err(out_err)?;
    dir(&mut b, "blobs/sha256/").map_err(out_err)?;
    let mut done: Vec<String> = vec![];
    for l in img.manifest.layers() {
        let d = l.digest().to_string();
        if done.contains(&d) {
            continue;
        }
        layer(store, &mut b, &Expected::of(l), target)?;
        done.push(d);
    }
    file(&mut b, &blob_name(&config_digest), &config).map_err(out_err)?;
    file(&mut b, &blob_name(&img.manifest_digest), &manifest).map_err(out_err)?;

    let r = Reference::parse(&img.name)?;
    let mut annotations = json!({ manifest::CONTAINERD_NAME: img.name });
    if let Some(t) = &r.tag {
        annotations[manifest::REF_NAME] = Value::String(t.clone());
    }
    let mut platform = json!({"architecture": c["architecture"], "os": c["os"]});
    if let Some(v) = c.get("variant") {
        platform["variant"] = v.clone();
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": m.get("mediaType").and_then(Value::as_str).unwrap_or(OCI_MANIFEST),
            "digest": img.manifest_digest,
            "size": manifest.len(),
            "platform": platform,
            "annotations": annotations,
        }],
    });
    let docker = json!([{
        "Config": blob_name(&config_digest),
        "RepoTags": r.tag.as_ref().map(|_| vec![familiar(&r)]).unwrap_or_default(),
        "Layers": img.manifest.layers().iter().map(|l| blob_name(l.digest().as_ref())).collect::<Vec<_>>(),
    }]);
    file(&mut b, "index.json", &serde_json::to_vec(&index).expect("JSON serializes")).map_err(out_err)?;
    file(&mut b, "manifest.json", &serde_json::to_vec(&docker).expect("JSON serializes")).map_err(out_err)?;
    b.into_inner().map_err(out_err)?.flush().map_err(out_err)?;
    Ok(())
}

/// `blobs/sha256/HEX`.
fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// A reference as docker prints it: `alpine:3.20`, `fred/tool:1`, `quay.io/x/y:2`.
fn familiar(r: &Reference) -> String {
    format!("{}:{}", r.familiar_repository(), r.tag.as_deref().unwrap_or("latest"))
}

/// A tar header as every archive sandbox writes has it: root-owned, mtime 0 (reproducible).
pub(super) fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn dir(b: &mut tar::Builder<&mut dyn Write>, name: &str) -> io::Result<()> {
    b.append_data(&mut header(tar::EntryType::Directory, 0o755, 0), name, io::empty())
}

pub(super) fn file(b: &mut tar::Builder<&mut dyn Write>, name: &str, body: &[u8]) -> io::Result<()> {
    b.append_data(&mut header(tar::EntryType::Regular, 0o644, body.len() as u64), name, body)
}

/// A reader that remembers whether it failed: tells a read error of the source from a write
/// error of the target when both come out of one `append_data`.
struct Source<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        self.failed |= r.is_err();
        r
    }
}

/// Copies one layer blob into the archive, checking its size first and its digest as it streams.
fn layer(store: &Store, b: &mut tar::Builder<&mut dyn Write>, want: &Expected, target: &Path) -> Result<()> {
    let p = store.blob_path(&want.digest)?;
    let f = File::open(&p).map_err(|e| Error::io("cannot open layer blob", &p, e))?;
    let len = f.metadata().map_err(|e| Error::io("cannot stat", &p, e))?.len();
    let size = want.size.unwrap_or(len);
    let corrupt = |why: String| Error::image(format!("layer blob {} in the store is corrupt ({why})", p.display()));
    if len != size {
        return Err(corrupt(format!("{len} bytes, the manifest says {size}")));
    }
    let mut r = Source { inner: HashReader::new(f.take(size)), failed: false };
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    b.append_data(&mut h, blob_name(&want.digest), &mut r).map_err(|e| {
        if r.failed {
            Error::io("cannot read layer blob", p.clone(), e)
        } else {
            Error::io("cannot write the export to", target, e)
        }
    })?;
    let r = r.inner;
    if r.hasher.len() != size || r.hasher.digest() != want.digest {
        return Err(corrupt(format!("digest {}, expected {}", r.hasher.digest(), want.digest)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_and_temporary_paths() {
        let f = |s: &str| familiar(&Reference::parse(s).unwrap());
        assert_eq!(f("alpine"), "alpine:latest");
        assert_eq!(f("test/committed:1"), "test/committed:1");
        assert_eq!(f("127.0.0.1:5000/a/b:2"), "127.0.0.1:5000/a/b:2");
        let t = tmp_path(Path::new("/x/out.tar"));
        assert!(t.to_str().unwrap().starts_with("/x/out.tar.tmp-"), "{t:?}");
        assert_eq!(blob_name(&format!("sha256:{}", "a".repeat(64))), format!("blobs/sha256/{}", "a".repeat(64)));
    }
}
