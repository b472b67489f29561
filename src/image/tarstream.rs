//! Reading the tar streams other tools write, as leniently as `umoci unpack` and podman, and
//! saying clearly what is not a tar stream sandbox reads.
//!
//! - **A last entry without its padding.** umoci 0.4.7 (Debian 12) `umoci insert` closes its
//!   layer without padding the last file to 512 bytes and without the two end-of-archive blocks
//!   (a known umoci bug, fixed upstream in 0.4.8 by closing the tar writer). Go's archive/tar
//!   reads such a stream to its end; the tar crate fails with "unexpected EOF during skip".
//!   [`Padded`] supplies the missing zeros after the real end, and [`End::check`] still refuses
//!   an entry whose *body* the stream cut short: only padding is ever made up. The bytes it
//!   makes up are never hashed: callers hash the stream below it, so a diff_id verifies the
//!   layer exactly as it was written.
//! - **Compressions sandbox does not read** (xz, bzip2, ...) are named by their magic bytes
//!   instead of failing deep in the tar parser with a message full of binary.
//! - **Messages** quoting bytes of an archive (names, malformed headers) are made printable.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

const BLOCK: u64 = 512;

/// What sandbox reads, for messages about what it does not.
pub const READS: &str = "sandbox reads gzip, zstd and uncompressed tar";

/// Compressions recognized by their magic bytes but not read: their name, for messages. A tar
/// header (whose first file could be named `BZh9…`) is never taken for one.
pub fn unsupported_compression(head: &[u8]) -> Option<&'static str> {
    if is_tar_header(head) {
        return None;
    }
    Some(match head {
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => "xz",
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => "bzip2",
        [0x04, 0x22, 0x4d, 0x18, ..] => "lz4",
        [b'L', b'Z', b'I', b'P', ..] => "lzip",
        [0x89, b'L', b'Z', b'O', ..] => "lzop",
        [0x1f, 0x9d, ..] => "compress (.Z)",
        [b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c, ..] => "7-zip",
        [b'P', b'K', 0x03, 0x04, ..] => "zip",
        // lzma-alone has no magic; its usual header (lc/lp/pb 0x5d, a power-of-two dictionary).
        [0x5d, 0x00, 0x00, _, _, 0xff | 0x00, ..] => "lzma",
        _ => return None,
    })
}

/// Whether `head` starts with a tar header whose checksum is right.
fn is_tar_header(head: &[u8]) -> bool {
    let Some(h) = head.get(..BLOCK as usize) else { return false };
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == ' ' || c == '\0'), 8) else {
        return false;
    };
    let sum: u32 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u32 }).sum();
    sum == want
}

/// The error for data compressed as `kind`, which `what` (a layer, a file) is.
pub fn unsupported_error(what: &str, kind: &str) -> String {
    format!("{what} is {kind}-compressed; {READS}")
}

/// Where the real stream ended, shared between a [`Padded`] reader and its reader's checks.
#[derive(Clone, Default)]
pub struct End(Rc<Cell<Option<u64>>>);

impl End {
    /// Refuses an entry whose body (`size` bytes from offset `start`) goes past the real end:
    /// its missing bytes would be zeros [`Padded`] made up.
    pub fn check(&self, start: u64, size: u64) -> Result<(), String> {
        match self.0.get() {
            Some(end) if start + size > end => Err(format!(
                "truncated: the archive ends {} bytes into this entry's {size}-byte body",
                end.saturating_sub(start)
            )),
            _ => Ok(()),
        }
    }
}

/// A tar stream that, once `inner` ends, yields zeros up to the next 512-byte block and then
/// two zero blocks (the end-of-archive marker). Nothing changes for a well-formed archive: the
/// tar reader stops at its own end-of-archive blocks before `inner` runs out.
pub struct Padded<R> {
    inner: R,
    pos: u64,
    end: End,
    fill: u64,
}

impl<R: Read> Padded<R> {
    pub fn new(inner: R) -> Padded<R> {
        Padded { inner, pos: 0, end: End::default(), fill: 0 }
    }

    pub fn end(&self) -> End {
        self.end.clone()
    }
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.end.0.get().is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 {
                self.pos += n as u64;
                return Ok(n);
            }
            self.end.0.set(Some(self.pos));
            self.fill = (BLOCK - self.pos % BLOCK) % BLOCK + 2 * BLOCK;
        }
        let n = (buf.len() as u64).min(self.fill) as usize;
        buf[..n].fill(0);
        self.fill -= n as u64;
        Ok(n)
    }
}

/// A tar parser's error, printable. The tar crate quotes a malformed header's bytes ("numeric
/// field did not have utf-8 text: <binary> when getting cksum for <binary>"): only its gist is kept.
pub fn tar_message(msg: &str) -> String {
    if msg.starts_with("numeric field") || msg.contains("when getting cksum for") {
        return "a malformed tar header (not a tar archive, or a damaged one)".to_string();
    }
    printable(msg)
}

/// `s` with control characters escaped and undecodable bytes (U+FFFD, what a lossy decoding of
/// binary leaves) shown as `?`, cut at 200 characters: safe to print whatever the archive held.
pub fn printable(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == 200 {
            out.push('…');
            break;
        }
        match c {
            '\u{fffd}' => out.push('?'),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of files (name, body) written by the tar crate, with its end blocks.
    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (n, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, n, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Reads every entry's body as layer.rs does, checking each against the real end.
    fn read_all(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut p = Padded::new(bytes);
        let end = p.end();
        let mut ar = tar::Archive::new(&mut p as &mut dyn Read);
        let mut out = vec![];
        for e in ar.entries().map_err(|e| e.to_string())? {
            let mut e = e.map_err(|e| e.to_string())?;
            let mut body = vec![];
            e.read_to_end(&mut body).map_err(|e| e.to_string())?;
            end.check(e.raw_file_position(), e.size())?;
            out.push((e.path().unwrap().display().to_string(), body));
        }
        Ok(out)
    }

    #[test]
    fn a_last_entry_without_padding_or_end_blocks_reads_like_umoci_unpack() {
        let full = tar_of(&[("a", b"first"), ("b", b"hello")]);
        // umoci 0.4.7 `insert`: header + 5 bytes of body, then nothing.
        let cut = &full[..512 + 512 + 512 + 5];
        assert!(tar::Archive::new(cut).entries().unwrap().any(|e| e.is_err()), "the tar crate alone refuses it");
        let got = read_all(cut).unwrap();
        assert_eq!(got, vec![("a".into(), b"first".to_vec()), ("b".into(), b"hello".to_vec())]);
        // Padding present, end blocks missing; and a whole archive: the same.
        assert_eq!(read_all(&full[..512 * 4]).unwrap(), got);
        assert_eq!(read_all(&full).unwrap(), got);
    }

    /// A layer Debian 12's umoci 0.4.7 wrote: `umoci insert --image L:t f /f` with f = "hello".
    const UMOCI_LAYER: &[u8] = include_bytes!("testdata/umoci-0.4.7-insert-layer.tar.gz");

    #[test]
    fn the_layer_debian_umoci_0_4_7_inserts_reads() {
        let mut tar = vec![];
        flate2::read::GzDecoder::new(UMOCI_LAYER).read_to_end(&mut tar).unwrap();
        assert_eq!(tar.len(), 512 + 5, "the fixture: one header and an unpadded 5-byte body");
        assert_eq!(read_all(&tar).unwrap(), vec![("f".to_string(), b"hello".to_vec())]);
    }

    #[test]
    fn a_last_entry_cut_inside_its_body_is_refused() {
        let full = tar_of(&[("a", &[7u8; 1000])]);
        for cut in [512 + 1, 512 + 999, 512 + 512, 512 + 700] {
            let e = read_all(&full[..cut]).unwrap_err();
            assert!(e.contains("truncated") && e.contains("1000-byte body"), "{cut}: {e}");
        }
        assert_eq!(read_all(&full[..512 + 1000]).unwrap()[0].1, vec![7u8; 1000]);
        // A header cut short is refused by the tar reader (its checksum fails).
        assert!(read_all(&full[..100]).is_err());
    }

    #[test]
    fn compressions_not_read_are_named_by_their_magic() {
        assert_eq!(unsupported_compression(b"\xfd7zXZ\x00\x00"), Some("xz"));
        assert_eq!(unsupported_compression(b"BZh91AY&SY"), Some("bzip2"));
        assert_eq!(unsupported_compression(b"\x04\x22\x4d\x18"), Some("lz4"));
        assert_eq!(unsupported_compression(b"\x1f\x8b\x08"), None, "gzip is read");
        assert_eq!(unsupported_compression(b"\x28\xb5\x2f\xfd"), None, "zstd is read");
        assert_eq!(unsupported_compression(b"etc/\0\0\0"), None);
        let named_like_bzip2 = tar_of(&[("BZh91AY", b"x")]);
        assert_eq!(unsupported_compression(&named_like_bzip2), None, "a tar header is a tar header");
        let e = unsupported_error("layer sha256:ab", "xz");
        assert_eq!(e, "layer sha256:ab is xz-compressed; sandbox reads gzip, zstd and uncompressed tar");
    }

    #[test]
    fn a_malformed_header_is_not_quoted() {
        let garbage: Vec<u8> = (0..2048u32).map(|i| (i * 7919 % 251) as u8 | 0x80).collect();
        let Some(Err(e)) = tar::Archive::new(&garbage[..]).entries().unwrap().next() else { panic!("garbage read") };
        assert_eq!(tar_message(&e.to_string()), "a malformed tar header (not a tar archive, or a damaged one)");
        assert_eq!(tar_message("archive header checksum mismatch"), "archive header checksum mismatch");
    }

    #[test]
    fn printable_escapes_what_a_terminal_would_interpret() {
        assert_eq!(printable("a\u{1b}[2Jb\n\u{fffd}\u{fffd}é"), "a\\u{1b}[2Jb\\n??é");
        assert_eq!(printable(&"x".repeat(300)).chars().count(), 201);
    }
}
