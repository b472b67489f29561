//! Content addressing: sha256 digests computed while bytes stream past, and their verification.
//! Nothing from a registry, an archive or a layer is used before its digest and size match.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// What a blob must be: its digest (`sha256:<hex>`) and, when known, its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub digest: String,
    pub size: Option<u64>,
}

impl Expected {
    pub fn new(digest: impl Into<String>, size: Option<u64>) -> Expected {
        Expected { digest: digest.into(), size }
    }

    /// From an OCI descriptor (digest and size are both required there).
    pub fn of(d: &oci_spec::image::Descriptor) -> Expected {
        Expected { digest: d.digest().to_string(), size: Some(d.size()) }
    }

    /// Checks a finished [`Hasher`] against this. `what` names the blob for the message.
    pub fn check(&self, got: &Hasher, what: &str) -> Result<()> {
        if let Some(size) = self.size {
            if got.len() != size {
                return Err(Error::Image(format!(
                    "{what} {}: expected {size} bytes, got {} (truncated or corrupt)",
                    self.digest,
                    got.len()
                )));
            }
        }
        let digest = got.digest();
        if digest != self.digest {
            return Err(Error::Image(format!("{what}: digest mismatch: expected {}, got {digest}", self.digest)));
        }
        Ok(())
    }
}

/// A running sha256 and byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn update(&mut self, b: &[u8]) {
        self.sha.update(b);
        self.len += b.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `sha256:<hex>` of everything so far.
    pub fn digest(&self) -> String {
        format!("sha256:{:x}", self.sha.clone().finalize())
    }
}

/// `sha256:<hex>` of a byte slice.
pub fn of_bytes(b: &[u8]) -> String {
    let mut h = Hasher::default();
    h.update(b);
    h.digest()
}

/// The hex part of a `sha256:` digest, checked to be one (it names files in the store).
pub fn hex(digest: &str) -> Result<&str> {
    crate::image::reference::check_digest(digest)
        .map(|()| &digest[7..])
        .ok_or_else(|| Error::invalid("digest", digest, "sha256: and 64 lower-case hex digits"))
}

/// A reader that hashes what passes through it.
pub struct HashReader<R> {
    pub inner: R,
    pub hasher: Hasher,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader { inner, hasher: Hasher::default() }
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Every blob and layer passes through here: where a Ctrl-C stops the work.
        crate::interrupt::check_io()?;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes what passes through it.
pub struct HashWriter<W> {
    pub inner: W,
    pub hasher: Hasher,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter { inner, hasher: Hasher::default() }
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::interrupt::check_io()?;
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_sizes_are_checked() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(of_bytes(b""), empty);
        let mut r = HashReader::new(&b"hello"[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        let good = Expected::new(of_bytes(b"hello"), Some(5));
        good.check(&r.hasher, "blob").unwrap();
        let short = Expected::new(of_bytes(b"hello"), Some(6));
        assert!(short.check(&r.hasher, "blob").unwrap_err().to_string().contains("truncated"));
        let other = Expected::new(empty, None);
        assert!(other.check(&r.hasher, "blob").unwrap_err().to_string().contains("digest mismatch"));
        assert_eq!(hex(empty).unwrap().len(), 64);
        assert!(hex("sha256:../../etc").is_err(), "digests name files: only hex passes");
    }
}
