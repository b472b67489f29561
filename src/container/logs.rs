//! A detached container's output: ID/log.jsonl, written by its supervisor only, one JSON object
//! per line of output (docker's json-file):
//!
//! ```text
//! {"t":"2026-11-30T19:20:01.123456789Z","stream":"stdout","log":"hello\n"}
//! {"t":"2026-11-30T19:20:01.123500000Z","stream":"stderr","b64":"/w=="}
//! ```
//!
//! `log` holds a line (or the last part of a read that did not end with one) when it is UTF-8;
//! other bytes are kept exactly, base64 in `b64`. When the file would grow past the cap it is
//! renamed to log.jsonl.1 (the one rotation, replacing the previous one) and a new one begun.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When the supervisor read it, RFC 3339 with nanoseconds, UTC.
    pub t: String,
    /// "stdout" or "stderr".
    pub stream: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub b64: Option<String>,
}

impl Entry {
    /// The bytes the command wrote.
    pub fn bytes(&self) -> Vec<u8> {
        match (&self.log, &self.b64) {
            (Some(l), _) => l.as_bytes().to_vec(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default(),
            _ => vec![],
        }
    }

    pub fn time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.t).ok()
    }
}

/// The supervisor's writer.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl LogWriter {
    /// Creates DIR/log.jsonl (mode 0600) capped at `max` bytes.
    pub fn create(dir: &Path, max: u64) -> Result<LogWriter> {
        let path = dir.join("log.jsonl");
        let file = open(&path)?;
        Ok(LogWriter { path, file, size: 0, max })
    }

    /// Logs what stream 1 (stdout) or 2 (stderr) gave: one entry per line. A write that fails
    /// (disk full) loses those bytes, never the run. The file is rotated before the entry that
    /// would take it past the cap, so neither file passes it (but by one entry longer than it).
    pub fn write(&mut self, stream: u8, bytes: &[u8]) {
        let t = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        let name = if stream == 2 { "stderr" } else { "stdout" };
        let mut out = Vec::new();
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            let (log, b64) = match std::str::from_utf8(piece) {
                Ok(s) => (Some(s.to_string()), None),
                Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(piece))),
            };
            let e = Entry { t: t.clone(), stream: name.into(), log, b64 };
            let Ok(mut line) = serde_json::to_vec(&e) else { continue };
            line.push(b'\n');
            let used = self.size + out.len() as u64;
            if used > 0 && used + line.len() as u64 > self.max {
                self.flush(&mut out);
                self.rotate();
            }
            out.extend_from_slice(&line);
        }
        self.flush(&mut out);
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        if !out.is_empty() && self.file.write_all(out).is_ok() {
            self.size += out.len() as u64;
        }
        out.clear();
    }

    fn rotate(&mut self) {
        let old = self.path.with_extension("jsonl.1");
        if std::fs::rename(&self.path, &old).is_ok() {
            if let Ok(f) = open(&self.path) {
                self.file = f;
                self.size = 0;
            }
        }
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))
}

/// Reads the entries of `path` from byte `offset` on; returns them and the offset after the last
/// whole line (a line being written is left for the next read).
pub fn read_from(path: &Path, offset: u64) -> (Vec<Entry>, u64) {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else { return (vec![], offset) };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return (vec![], offset);
    }
    let mut r = BufReader::new(f);
    let mut pos = offset;
    let mut out = vec![];
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) if line.ends_with(b"\n") => {
                pos += n as u64;
                if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                    out.push(e);
                }
            }
            Ok(_) => break,
        }
    }
    (out, pos)
}

/// Every entry of a container's log, the rotated part first.
pub fn read_all(dir: &Path) -> Vec<Entry> {
    let mut all = read_from(&dir.join("log.jsonl.1"), 0).0;
    all.extend(read_from(&dir.join("log.jsonl"), 0).0);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_bytes_that_are_not_utf8_survive_and_the_log_rotates_once() {
        let t = tempfile::tempdir().unwrap();
        let mut w = LogWriter::create(t.path(), 300).unwrap();
        w.write(1, b"one\ntwo");
        w.write(2, b"\xff\xfe bad\n");
        let got = read_all(t.path());
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].log.as_deref(), got[1].log.as_deref()), (Some("one\n"), Some("two")));
        assert_eq!((got[2].stream.as_str(), got[2].bytes()), ("stderr", b"\xff\xfe bad\n".to_vec()));
        for i in 0..20 {
            w.write(1, format!("line {i}\n").as_bytes());
        }
        let cur = std::fs::metadata(t.path().join("log.jsonl")).unwrap().len();
        let old = std::fs::metadata(t.path().join("log.jsonl.1")).unwrap().len();
        assert!(cur <= 300 && old <= 300, "{cur} {old}");
        let all = read_all(t.path());
        assert_eq!(all.last().unwrap().log.as_deref(), Some("line 19\n"));
    }
}
