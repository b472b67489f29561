//! Layer archives: decompression by media type, and unpacking a tar stream into a layer
//! directory that overlayfs can use as a lower layer.
//!
//! Safety: every entry is created relative to a directory fd opened with openat2(2)
//! RESOLVE_IN_ROOT, so neither `..` nor a symlink unpacked earlier (absolute or relative) can lead
//! a later entry out of the layer (the class of CVE-2018-15664 / CVE-2019-14271; `..` is refused
//! lexically first, in whiteout.rs). The final component is never followed: an existing entry of
//! that name is removed and the new one created with O_EXCL|O_NOFOLLOW.
//!
//! Whiteouts become what overlayfs reads: `.wh.NAME` a 0/0 character device NAME, `.wh..wh..opq`
//! the `trusted.overlay.opaque=y` xattr on its directory (both need root, as overlayfs does).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmodat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::tarstream;
use super::whiteout::{self, Entry};
use crate::error::{Error, Result};
use crate::sys;

pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From an OCI or Docker layer media type; anything else is refused by name.
    pub fn from_media_type(m: &str) -> Result<Compression> {
        Ok(match m {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            _ => {
                return Err(Error::invalid(
                    "layer media type",
                    m,
                    "an OCI or Docker layer type: application/vnd.oci.image.layer.v1.tar[+gzip|+zstd] or \
                     application/vnd.docker.image.rootfs.diff.tar[.gzip]",
                ))
            }
        })
    }

    /// From the first bytes of a blob (archives without media types: `docker save`, rootfs tars).
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The OCI media type of a layer compressed this way.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// A reader of the data `r` holds, compressed this way. Data that is in fact compressed in a
    /// way sandbox does not read (an xz blob under a gzip or tar media type) fails on the first
    /// read with an error naming that compression, not with the decoder's or tar parser's.
    pub fn decoder<'a, R: io::BufRead + Send + 'a>(self, mut r: R) -> Result<Box<dyn Read + Send + 'a>> {
        let head = r.fill_buf().map_err(|e| Error::image(format!("reading: {e}")))?;
        if let Some(kind) = tarstream::unsupported_compression(head) {
            return Ok(Box::new(Unsupported(kind)));
        }
        Ok(match self {
            Compression::None => Box::new(r),
            // Multi-member: some tools write a gzip stream per chunk.
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(|e| Error::image(format!("zstd: {e}")))?)
            }
        })
    }
}

/// A reader of data compressed in a way sandbox does not read: fails, naming it.
struct Unsupported(&'static str);

impl Read for Unsupported {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::InvalidData, UnsupportedCompression(self.0)))
    }
}

/// The error [`Unsupported`] reads fail with; [`read_error`] prints it without decoration.
#[derive(Debug)]
struct UnsupportedCompression(&'static str);

impl std::fmt::Display for UnsupportedCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-compressed data; {}", self.0, tarstream::READS)
    }
}

impl std::error::Error for UnsupportedCompression {}

/// A read error of a tar stream, printable: an unsupported compression as itself, anything else
/// (the tar parser quotes the bytes it could not read) with its binary escaped.
pub fn read_error(e: &io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<UnsupportedCompression>()) {
        Some(u) => u.to_string(),
        None => format!("reading the archive: {}", tarstream::tar_message(&e.to_string())),
    }
}

/// Unpacks the tar stream `r` into the existing, empty directory `dst`. Errors name the entry. A
/// last entry without its padding is read (umoci 0.4.7; see tarstream.rs), one cut short is not.
/// Returns the unpacked size, counted as size.rs counts a tree (file and symlink target lengths,
/// hard links nothing), so that no walk of the new tree is needed to record it.
pub fn unpack(r: &mut dyn Read, dst: &Path) -> Result<u64, String> {
    let mut bytes = 0;
    let root = open_dir(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    let mut padded = tarstream::Padded::new(r);
    let end = padded.end();
    let mut ar = tar::Archive::new(&mut padded as &mut dyn Read);
    let mut dir_times = Vec::new();
    // The entry before this one: its body is checked against the real end once it was read.
    let mut last: Option<(PathBuf, u64, u64)> = None;
    let check = |last: &Option<(PathBuf, u64, u64)>| match last {
        Some((p, start, size)) => {
            end.check(*start, *size).map_err(|m| format!("entry {}: {m}", tarstream::printable(&p.to_string_lossy())))
        }
        None => Ok(()),
    };
    for entry in ar.entries().map_err(|e| read_error(&e))? {
        let mut e = entry.map_err(|e| read_error(&e))?;
        check(&last)?;
        let path = e.path().map_err(|e| format!("entry name: {e}"))?.into_owned();
        last = Some((path.clone(), e.raw_file_position(), e.size()));
        let at = |m: String| format!("entry {}: {m}", tarstream::printable(&path.to_string_lossy()));
        match whiteout::classify(&path).map_err(|e| e.to_string())? {
            Entry::Opaque(dir) => {
                let fd = mkdir_all(&root, &dir).map_err(|e| at(e.desc().into()))?;
                set_xattr(fd.as_raw_fd(), None, OPAQUE_XATTR, b"y").map_err(|e| at(format!("{OPAQUE_XATTR}: {e}")))?;
            }
            Entry::Whiteout(target) => {
                let (parent, name) = open_parent(&root, &target).map_err(&at)?;
                remove(parent.as_raw_fd(), name).map_err(|e| at(e.desc().into()))?;
                mknodat(Some(parent.as_raw_fd()), name, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| at(format!("whiteout: {}", e.desc())))?;
            }
            Entry::Plain(rel) => {
                bytes += match e.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => e.size(),
                    tar::EntryType::Symlink => e.link_name_bytes().map_or(0, |l| l.len() as u64),
                    _ => 0,
                };
                let made = create(&root, &rel, &mut e).map_err(&at);
                // A body cut short reads as made-up zeros: that is the error, not what follows.
                check(&last)?;
                if let Some(t) = made? {
                    dir_times.push(t);
                }
            }
        }
    }
    check(&last)?;
    // Directory times last: every entry created inside a directory changed its mtime.
    for (rel, mtime) in dir_times.into_iter().rev() {
        if rel.as_os_str().is_empty() {
            let _ = set_mtime(root.as_raw_fd(), OsStr::new("."), mtime);
            continue;
        }
        let (parent, name) = open_parent(&root, &rel)?;
        let _ = set_mtime(parent.as_raw_fd(), name, mtime);
    }
    Ok(bytes)
}

/// Creates one entry with its metadata; directories return their (path, mtime) to set at the end.
fn create(root: &OwnedFd, rel: &Path, e: &mut tar::Entry<&mut dyn Read>) -> Result<Option<(PathBuf, u64)>, String> {
    let h = e.header();
    let kind = h.entry_type();
    let mode = Mode::from_bits_truncate(h.mode().map_err(|e| e.to_string())? & 0o7777);
    let (uid, gid) = (h.uid().map_err(|e| e.to_string())?, h.gid().map_err(|e| e.to_string())?);
    let mtime = h.mtime().unwrap_or(0);
    let (dev_major, dev_minor) = (h.device_major().ok().flatten(), h.device_minor().ok().flatten());
    let link = e.link_name().map_err(|e| e.to_string())?.map(|l| l.into_owned());
    let d = |e: Errno| e.desc().to_string();

    // The layer root itself ("./"): metadata only.
    let (parent, name) = if rel.as_os_str().is_empty() {
        (root.try_clone().map_err(|e| e.to_string())?, OsStr::new("."))
    } else {
        open_parent(root, rel)?
    };
    let pfd = parent.as_raw_fd();
    use tar::EntryType as T;
    match kind {
        T::Directory => {
            if rel.as_os_str().is_empty() {
            } else {
                match mkdirat(Some(pfd), name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) if is_dir(pfd, name) => {}
                    Err(Errno::EEXIST) => {
                        remove(pfd, name).map_err(d)?;
                        mkdirat(Some(pfd), name, Mode::from_bits_truncate(0o700)).map_err(d)?;
                    }
                    Err(e) => return Err(d(e)),
                }
            }
        }
        T::Regular | T::Continuous => {
            remove(pfd, name).map_err(d)?;
            let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = nix::fcntl::openat(Some(pfd), name, flags, Mode::from_bits_truncate(0o600)).map_err(d)?;
            // SAFETY: openat just returned this fd; File owns it from here.
            let mut f = unsafe { File::from_raw_fd(fd) };
            io::copy(e, &mut f).map_err(|e| format!("writing: {e}"))?;
        }
        T::Symlink => {
            let target = link.ok_or("a symlink without a target")?;
            remove(pfd, name).map_err(d)?;
            symlinkat(&target, Some(pfd), name).map_err(d)?;
        }
        T::Link => {
            let target = link.ok_or("a hard link without a target")?;
            let target = whiteout::relative(&target).map_err(|e| e.to_string())?;
            let (tparent, tname) = open_parent(root, &target)?;
            remove(pfd, name).map_err(d)?;
            linkat(Some(tparent.as_raw_fd()), tname, Some(pfd), name, nix::fcntl::AtFlags::empty())
                .map_err(|e| format!("hard link to {}: {}", target.display(), e.desc()))?;
            // A hard link shares its target's inode and metadata: nothing more to set.
            return Ok(None);
        }
        T::Char | T::Block | T::Fifo => {
            let k = match kind {
                T::Char => SFlag::S_IFCHR,
                T::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let dev = libc::makedev(dev_major.unwrap_or(0), dev_minor.unwrap_or(0));
            remove(pfd, name).map_err(d)?;
            mknodat(Some(pfd), name, k, mode, dev).map_err(d)?;
        }
        other => return Err(format!("unsupported tar entry type {other:?}")),
    }
    let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    fchownat(Some(pfd), name, Some(Uid::from_raw(uid as u32)), Some(Gid::from_raw(gid as u32)), nofollow)
        .map_err(|e| format!("chown: {}", e.desc()))?;
    if let Some(exts) = e.pax_extensions().map_err(|e| e.to_string())? {
        for x in exts.flatten() {
            if let Some(attr) = x.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                // overlayfs's own markers (redirect, metacopy, origin, opaque) are made here from
                // whiteouts only: a layer carrying them could steer the overlay's lookups.
                if attr.starts_with("trusted.overlay.") {
                    continue;
                }
                set_xattr(pfd, Some(name), attr, x.value_bytes()).map_err(|e| format!("xattr {attr}: {e}"))?;
            }
        }
    }
    if kind == T::Symlink {
        // Symlinks have no mode of their own; their time is set without following them.
        let _ = set_mtime(pfd, name, mtime);
        return Ok(None);
    }
    // After chown, which clears setuid and setgid bits.
    fchmodat(Some(pfd), name, mode, FchmodatFlags::FollowSymlink).map_err(|e| format!("chmod: {}", e.desc()))?;
    if kind == T::Directory {
        return Ok(Some((rel.to_path_buf(), mtime)));
    }
    set_mtime(pfd, name, mtime).map_err(|e| format!("utimensat: {}", e.desc()))?;
    Ok(None)
}

fn set_mtime(dir: RawFd, name: &OsStr, mtime: u64) -> nix::Result<()> {
    let t = TimeSpec::new(mtime as i64, 0);
    utimensat(Some(dir), name, &t, &t, UtimensatFlags::NoFollowSymlink)
}

fn is_dir(dir: RawFd, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Removes `name` in `dir` whatever it is (a directory with its contents); absent is fine.
fn remove(dir: RawFd, name: &OsStr) -> nix::Result<()> {
    match unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => {
            // std's remove_dir_all opens each level with O_NOFOLLOW (the CVE-2022-21658 fix); the
            // path goes through our directory fd, so it stays inside the layer.
            let p = Path::new("/proc/self/fd").join(dir.to_string()).join(name);
            std::fs::remove_dir_all(p).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        }
        Err(e) => Err(e),
    }
}

/// Opens directory `p` as an O_PATH handle, for the `*at` calls and [`open_in`].
pub(crate) fn open_dir(p: &Path) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: open just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `rel` with `root` as `/` (openat2 RESOLVE_IN_ROOT): `..` and symlinks, absolute or
/// relative, resolve inside the root, never outside it.
pub(crate) fn open_in(root: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let p: &Path = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    let fd = openat2(root.as_raw_fd(), p, OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(resolve))?;
    // SAFETY: openat2 just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens directory `rel` inside the layer.
fn open_in_root(root: &OwnedFd, rel: &Path) -> nix::Result<OwnedFd> {
    open_in(root, rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// The directory holding `rel` (created if missing, inside the root) and `rel`'s last component.
fn open_parent<'a>(root: &OwnedFd, rel: &'a Path) -> Result<(OwnedFd, &'a OsStr), String> {
    let name = rel.file_name().ok_or_else(|| format!("'{}' names no entry", rel.display()))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    let fd = mkdir_all(root, parent).map_err(|e| format!("parent directory {}: {}", parent.display(), e.desc()))?;
    Ok((fd, name))
}

/// Opens directory `rel` inside the root, creating what is missing (0755, as tar does for
/// directories the archive does not list).
fn mkdir_all(root: &OwnedFd, rel: &Path) -> nix::Result<OwnedFd> {
    match open_in_root(root, rel) {
        Err(Errno::ENOENT) => {}
        r => return r,
    }
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().ok_or(Errno::ENOENT)?;
    let pfd = mkdir_all(root, parent)?;
    match mkdirat(Some(pfd.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, rel)
}

/// Sets an xattr on `name` in `dir` (or on `dir` itself), never following a final symlink.
fn set_xattr(dir: RawFd, name: Option<&OsStr>, attr: &str, value: &[u8]) -> Result<(), String> {
    // Without a name, `/.`: lsetxattr on the bare /proc/self/fd/N would act on the magic link
    // itself (EOPNOTSUPP), not on the directory it stands for.
    let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
    p.extend_from_slice(name.map_or(&b"."[..], |n| n.as_bytes()));
    let path = CString::new(p).map_err(|_| "NUL in name".to_string())?;
    let attr = CString::new(attr).map_err(|_| "NUL in xattr name".to_string())?;
    sys::lsetxattr(&path, &attr, value).map_err(|e| e.desc().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_map_to_decompressors_and_unknown_ones_are_refused() {
        use Compression::*;
        assert_eq!(Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+gzip").unwrap(), Gzip);
        assert_eq!(Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(), Zstd);
        assert_eq!(Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(), Gzip);
        assert_eq!(Compression::from_media_type("application/vnd.oci.image.layer.v1.tar").unwrap(), None);
        let e = Compression::from_media_type("application/x-rar").unwrap_err().to_string();
        assert!(e.contains("'application/x-rar'") && e.contains("vnd.oci.image.layer"), "{e}");
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Gzip);
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Zstd);
        assert_eq!(Compression::sniff(b"etc/"), None);
    }
}
