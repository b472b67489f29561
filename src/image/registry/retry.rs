//! How long a registry may take, and what is tried again.
//!
//! Timeouts: 10 s to connect, 30 s for any read (the response head, or the next bytes of a body),
//! set by `--registry-timeout CONNECT[,READ]` or `SANDBOX_REGISTRY_TIMEOUT` (the flag wins). A
//! timeout ends the pull at once with a message naming the registry and which timeout it was:
//! a registry that does not answer is not asked three more times. (A body that stalls after
//! bytes have come is resumed, as a dropped connection is: see `transfer.rs`.)
//!
//! Retries: a dropped connection (reset, closed before the whole answer) and the answers `429`
//! and `5xx` are tried again, [`TRIES`] times in all, waiting 0.5 s, 1 s, 2 s between tries, or
//! what the answer's `Retry-After` (seconds) asks, when that is at most [`MAX_RETRY_AFTER`]; a
//! registry asking for a longer wait gets the error at once, which says how long it asked for.

use std::time::Duration;

use super::{Client, Failure};
use crate::error::{Error, Result};

/// Tries of one request in all (the first and the retries).
pub const TRIES: u32 = 4;
/// The first wait between tries; it doubles each time.
pub const BACKOFF: Duration = Duration::from_millis(500);
/// The longest `Retry-After` waited for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Connect and read timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { connect: Duration::from_secs(10), read: Duration::from_secs(30) }
    }
}

const TIMEOUT_SYNTAX: &str = "CONNECT[,READ]: durations such as 10, 2.5, 10s or 500ms (seconds by default), \
                              each above 0 and at most 1h; e.g. 10,30";

impl Timeouts {
    /// `CONNECT[,READ]`; without READ, the read timeout keeps its default. `what` names the
    /// flag or variable in the error.
    pub fn parse(s: &str, what: &'static str) -> Result<Timeouts> {
        let bad = || Error::invalid(what, s, TIMEOUT_SYNTAX);
        let one = |v: &str| -> Result<Duration> {
            let v = v.trim();
            let d = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                v.parse::<f64>().ok().filter(|f| f.is_finite()).map(Duration::from_secs_f64)
            } else {
                humantime::parse_duration(v).ok()
            };
            d.filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600)).ok_or_else(bad)
        };
        let mut t = Timeouts::default();
        match s.split_once(',') {
            Some((c, r)) => {
                t.connect = one(c)?;
                t.read = one(r)?;
            }
            None => t.connect = one(s)?,
        }
        Ok(t)
    }

    /// `SANDBOX_REGISTRY_TIMEOUT`, when set.
    pub fn from_env() -> Result<Option<Timeouts>> {
        match std::env::var("SANDBOX_REGISTRY_TIMEOUT") {
            Ok(v) => Timeouts::parse(&v, "SANDBOX_REGISTRY_TIMEOUT").map(Some),
            Err(_) => Ok(None),
        }
    }
}

/// The wait before try `tries + 1`, after `tries` failed: 0.5 s, 1 s, 2 s, …
pub fn backoff(tries: u32) -> Duration {
    BACKOFF * 2u32.pow(tries.saturating_sub(1).min(10))
}

/// Waits `d` between two tries. One function, so that an interrupt (Ctrl-C) can be made to cut
/// the wait short in one place.
pub fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// What a `Retry-After` asks: seconds (an HTTP date is not read; the backoff is used instead).
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let v = value?.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| Duration::from_secs(v.parse().unwrap_or(u64::MAX)))
}

/// Whether a failed request may be tried again, and after how long.
/// Whether trying `f`'s request again may help (what [`Client::retrying`] tries again).
pub(super) fn may_retry(f: &Failure) -> bool {
    retry_wait(f, 1).is_some()
}

fn retry_wait(f: &Failure, tries: u32) -> Option<Duration> {
    match f {
        Failure::Status(429 | 500..=599, r) => match retry_after(r.header("Retry-After")) {
            Some(d) if d > MAX_RETRY_AFTER => None,
            Some(d) => Some(d),
            None => Some(backoff(tries)),
        },
        Failure::Transport(_, t) if dropped(t) => Some(backoff(tries)),
        _ => None,
    }
}

/// A connection that was made and then lost (not refused, not timed out).
fn dropped(t: &ureq::Transport) -> bool {
    t.kind() == ureq::ErrorKind::Io && io_kind(t) != Some(std::io::ErrorKind::TimedOut)
}

/// The kind of the I/O error under a transport error.
pub(super) fn io_kind(t: &ureq::Transport) -> Option<std::io::ErrorKind> {
    let mut s = std::error::Error::source(t);
    while let Some(e) = s {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        s = e.source();
    }
    None
}

impl Client {
    /// Runs `attempt` (one request, sent again from scratch each time) until it succeeds, fails
    /// in a way that trying again cannot help, or [`TRIES`] tries have failed: dropped
    /// connections, `429` and `5xx` are tried again after a backoff or the `Retry-After` asked
    /// for. Returns the last failure. For every request to the registry (pull and push).
    pub fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T, Failure> {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt() {
                Ok(v) => return Ok(v),
                Err(f) => match retry_wait(&f, tries) {
                    Some(wait) if tries < TRIES => pause(wait),
                    _ => return Err(f),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_timeouts_parse_and_bad_ones_name_the_syntax() {
        let t = Timeouts::parse("5", "--registry-timeout").unwrap();
        assert_eq!((t.connect, t.read), (Duration::from_secs(5), Duration::from_secs(30)));
        let t = Timeouts::parse("2.5,500ms", "--registry-timeout").unwrap();
        assert_eq!((t.connect, t.read), (Duration::from_millis(2500), Duration::from_millis(500)));
        for bad in ["", "0", "x", "5,", ",5", "1,2,3", "2h", "-1"] {
            let e = Timeouts::parse(bad, "--registry-timeout").unwrap_err().to_string();
            assert!(e.contains(&format!("invalid --registry-timeout '{bad}'")) && e.contains("CONNECT[,READ]"), "{e}");
        }
    }

    #[test]
    fn backoff_doubles_and_retry_after_is_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
    }
}
