#![allow(dead_code)] // each test module uses its own part of the builder
//! Test images built by the tests themselves: OCI image layouts (directories) with real layers made
//! from busybox-static, in any compression, with whiteouts, hard links, devices and xattrs.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn sha(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

impl Comp {
    pub fn media_type(self) -> &'static str {
        match self {
            Comp::None => "application/vnd.oci.image.layer.v1.tar",
            Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Comp::None => tar.to_vec(),
            Comp::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(tar).unwrap();
                e.finish().unwrap()
            }
            Comp::Zstd => zstd::encode_all(tar, 1).unwrap(),
        }
    }
}

/// One layer's tar, entry by entry.
pub struct LayerTar(tar::Builder<Vec<u8>>);

impl Default for LayerTar {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerTar {
    pub fn new() -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Complete);
        LayerTar(b)
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn file(mut self, path: &str, mode: u32, body: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, body.len() as u64);
        self.0.append_data(&mut h, path, body).unwrap();
        self
    }

    pub fn file_owned(mut self, path: &str, mode: u32, uid: u64, gid: u64, body: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, body.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.0.append_data(&mut h, path, body).unwrap();
        self
    }

    /// A regular file whose name is written into the header as is (the tar crate refuses `..`
    /// in names it sets itself): for layers that try to climb out.
    pub fn file_raw_name(mut self, path: &str, body: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, body.len() as u64);
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        self.0.append(&h, body).unwrap();
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn fifo(mut self, path: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Fifo, 0o600, 0);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn char_dev(mut self, path: &str, major: u32, minor: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    /// A regular file with a PAX `SCHILY.xattr.NAME` record.
    pub fn file_with_xattr(mut self, path: &str, body: &[u8], xattr: &str, value: &[u8]) -> Self {
        let key = format!("SCHILY.xattr.{xattr}");
        self.0.append_pax_extensions([(key.as_str(), value)]).unwrap();
        self.file(path, 0o644, body)
    }

    /// The busybox-static binary at bin/busybox with a symlink per applet, and the usual dirs.
    pub fn busybox(self) -> Option<Self> {
        let bb = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists())?;
        let body = std::fs::read(bb).unwrap();
        let list = std::process::Command::new(bb).arg("--list").output().unwrap();
        let mut t = self.dir("bin", 0o755).file("bin/busybox", 0o755, &body);
        for name in String::from_utf8_lossy(&list.stdout).lines().filter(|n| *n != "busybox") {
            t = t.symlink(&format!("bin/{name}"), "busybox");
        }
        for d in ["proc", "sys", "dev", "etc", "tmp", "root"] {
            t = t.dir(d, if d == "tmp" { 0o1777 } else { 0o755 });
        }
        Some(
            t.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\nfred:x:1234:4321::/home/fred:/bin/sh\n")
                .file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\nfreds:x:4321:\nextra:x:777:fred\n"),
        )
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// A layer as stored: compressed blob, its digest, and the diff_id of the uncompressed tar.
pub struct Layer {
    pub blob: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
    pub media_type: &'static str,
}

impl Layer {
    pub fn new(tar: Vec<u8>, comp: Comp) -> Layer {
        let blob = comp.compress(&tar);
        Layer { digest: sha(&blob), diff_id: sha(&tar), blob, media_type: comp.media_type() }
    }
}

/// A built image: its documents and layers.
pub struct Built {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Built {
    /// `config` is the image config's "config" object (Env, Cmd, WorkingDir, …).
    pub fn new(layers: Vec<Layer>, config: serde_json::Value) -> Built {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2026-11-23T00:00:00Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let ls: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.digest, "size": l.blob.len()}))
            .collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": ls,
        }))
        .unwrap();
        Built { layers, config, manifest }
    }

    pub fn manifest_digest(&self) -> String {
        sha(&self.manifest)
    }

    pub fn config_digest(&self) -> String {
        sha(&self.config)
    }

    /// Writes an OCI image layout at `dir`, its index naming the manifest `tag`
    /// (org.opencontainers.image.ref.name), as `skopeo copy oci:DIR:TAG` reads it.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> PathBuf {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |b: &[u8]| std::fs::write(blobs.join(&sha(b)[7..]), b).unwrap();
        for l in &self.layers {
            put(&l.blob);
        }
        put(&self.config);
        put(&self.manifest);
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": self.manifest_digest(), "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        dir.to_path_buf()
    }
}

/// A file capability (vfs_cap_data v2, effective) granting CAP_NET_RAW, as ping carries: an xattr
/// every filesystem here keeps (user.* is not kept by tmpfs before Linux 6.6, the VM lanes' /tmp).
pub const CAP_NET_RAW: [u8; 20] = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// The standard test image, or `None` (said loudly) without busybox-static: three layers, one of
/// each compression. Layer 1: busybox, /etc/passwd with user fred (1234:4321). Layer 2 (zstd):
/// /data/keep, /data/gone, /opq/old, a hard link, a fifo, a setuid file owned by
/// 1234:4321, /data/ping with a security.capability xattr. Layer 3 (uncompressed):
/// a whiteout of /data/gone, /opq made opaque with /opq/new, /etc/motd.
/// Config: Env FOO=bar and PATH, Entrypoint none, Cmd ["/bin/sh","-c","echo default-cmd"],
/// WorkingDir /data.
pub fn test_image() -> Option<Built> {
    let Some(base) = LayerTar::new().busybox() else {
        eprintln!("SKIPPED: busybox (Debian busybox-static) is not installed; this test builds its image from it");
        return None;
    };
    let l1 = Layer::new(base.finish(), Comp::Gzip);
    let l2 = LayerTar::new()
        .dir("data", 0o755)
        .file("data/keep", 0o644, b"kept\n")
        .file("data/gone", 0o644, b"deleted in layer 3\n")
        .hardlink("data/keep-link", "data/keep")
        .fifo("data/fifo")
        .file_owned("data/owned", 0o4750, 1234, 4321, b"setuid, owned by fred\n")
        .file_with_xattr("data/ping", b"x\n", "security.capability", &CAP_NET_RAW)
        .dir("opq", 0o755)
        .file("opq/old", 0o644, b"hidden by the opaque dir\n")
        .finish();
    let l2 = Layer::new(l2, Comp::Zstd);
    let l3 = LayerTar::new()
        .file("data/.wh.gone", 0o644, b"")
        .dir("opq", 0o755)
        .file("opq/.wh..wh..opq", 0o644, b"")
        .file("opq/new", 0o644, b"new\n")
        .file("etc/motd", 0o644, b"layer three\n")
        .finish();
    let l3 = Layer::new(l3, Comp::None);
    Some(Built::new(
        vec![l1, l2, l3],
        serde_json::json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FOO=bar"],
            "Cmd": ["/bin/sh", "-c", "echo default-cmd"],
            "WorkingDir": "/data",
            "Labels": {"org.example.test": "yes"},
        }),
    ))
}
