//! A blob's body that survives a dropped connection: when the connection is lost (reset, closed
//! before `Content-Length` bytes, or silent for the read timeout after bytes had come), the blob
//! is asked for again from where it stopped, with `Range: bytes=N-`. A registry that supports
//! ranges answers `206` and only the rest is sent again; one that does not answers `200` with the
//! whole blob, whose first N bytes (already written and hashed) are read and dropped: a restart.
//! Either way the bytes that reach the store are checked against the blob's digest and size as a
//! whole, so a registry that changed the blob between two answers fails the pull.
//!
//! The reconnects follow the request's rules ([`super::retry`]): up to `TRIES` tries in a row
//! without a byte gained, with the same backoff; a try that brings bytes starts the count again.
//! Other read errors (an interrupted read included) are passed up as they are.

use std::io::{self, Read};

use super::retry::{self, TRIES};
use super::{Client, Target};
use crate::error::Error;

/// Reads a blob from `client`, resuming on a dropped connection.
pub(super) struct Resuming<'a> {
    client: &'a Client,
    path: String,
    manifest: bool,
    digest: String,
    /// The blob's size, when the descriptor gives it: an EOF before it is a dropped connection.
    size: Option<u64>,
    /// Bytes handed out so far.
    pos: u64,
    inner: Box<dyn Read + Send + 'a>,
    /// Failed tries in a row (without a byte gained).
    failures: u32,
    /// Bytes came on the current connection.
    gained: bool,
}

impl<'a> Resuming<'a> {
    pub(super) fn new(
        client: &'a Client,
        path: String,
        manifest: bool,
        digest: String,
        size: Option<u64>,
        first: ureq::Response,
    ) -> Resuming<'a> {
        Resuming {
            client,
            path,
            manifest,
            digest,
            size,
            pos: 0,
            inner: Box::new(first.into_reader()),
            failures: 0,
            gained: false,
        }
    }

    /// Asks for the rest from `pos`; positions the new body there (206: as sent, 200: by
    /// skipping what was read already).
    fn reopen(&mut self) -> io::Result<()> {
        let target = if self.manifest { Target::Manifest(&self.digest) } else { Target::Blob(&self.digest) };
        let resp = self.client.get_range(&self.path, self.manifest, target, self.pos).map_err(io::Error::other)?;
        let mut body: Box<dyn Read + Send> = match resp.status() {
            206 => {
                let start = resp.header("Content-Range").and_then(range_start);
                if start != Some(self.pos) {
                    return Err(io::Error::other(self.client.image_error(format!(
                        "asked for blob {} from byte {}, it sent a range starting at {}",
                        self.digest,
                        self.pos,
                        resp.header("Content-Range").unwrap_or("(no Content-Range)")
                    ))));
                }
                Box::new(resp.into_reader())
            }
            _ => {
                let mut r = resp.into_reader();
                let skipped = io::copy(&mut (&mut r).take(self.pos), &mut io::sink())?;
                if skipped != self.pos {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "restarted body shorter than before"));
                }
                Box::new(r)
            }
        };
        std::mem::swap(&mut self.inner, &mut body);
        self.gained = false;
        Ok(())
    }

    /// Whether a read error is a lost connection worth resuming after.
    fn resumable(&self, e: &io::Error) -> bool {
        use io::ErrorKind::*;
        match e.kind() {
            // A stall after bytes had come on this connection; a registry silent from the start
            // (no byte since the reconnect) fails with the timeout's message.
            TimedOut | WouldBlock => self.gained,
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => true,
            // ureq's chunked decoder reports a cut-off body this way.
            InvalidInput | InvalidData | Other => e.to_string().contains("chunk"),
            _ => false,
        }
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            self.client.image_error(format!(
                "no data for {} while fetching blob {} (read timeout; set it with --registry-timeout or \
                 SANDBOX_REGISTRY_TIMEOUT)",
                humantime::format_duration(self.client.timeouts.read),
                self.digest
            )),
        )
    }
}

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let why = match self.inner.read(buf) {
                Ok(0) if !buf.is_empty() && self.size.is_some_and(|s| self.pos < s) => {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed before the whole blob came")
                }
                Ok(n) => {
                    if n > 0 {
                        self.pos += n as u64;
                        self.gained = true;
                        self.failures = 0;
                    }
                    return Ok(n);
                }
                Err(e) if self.resumable(&e) => e,
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                    return Err(self.timed_out())
                }
                Err(e) => return Err(e),
            };
            self.failures += 1;
            if self.failures >= TRIES {
                return Err(io::Error::new(
                    why.kind(),
                    self.client.image_error(format!(
                        "blob {}: the connection was lost {TRIES} times in a row at byte {} ({why})",
                        self.digest, self.pos
                    )),
                ));
            }
            retry::pause(retry::backoff(self.failures));
            self.reopen()?;
        }
    }
}

/// The first byte of `Content-Range: bytes FIRST-LAST/TOTAL`.
fn range_start(v: &str) -> Option<u64> {
    v.trim().strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

impl Client {
    /// GETs `path` from byte `from` (`Range: bytes=FROM-`; from 0: no Range header), through
    /// authentication, redirects and [`Client::retrying`]. The answer is `200` or `206`.
    pub(super) fn get_range(
        &self,
        path: &str,
        manifest: bool,
        target: Target,
        from: u64,
    ) -> Result<ureq::Response, Error> {
        self.get_with(path, manifest, target, (from > 0).then_some(from))
    }

    /// An error about this registry: `registry HOST: …`.
    pub(super) fn image_error(&self, msg: String) -> Error {
        Error::image(format!("registry {}: {msg}", self.registry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_starts() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/1"), Some(0));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
