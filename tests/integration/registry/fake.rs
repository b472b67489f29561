//! A tiny fake registry on 127.0.0.1 (one thread, one request per connection) for what the real
//! server cannot be made to do here: bearer tokens (docker-registry wants signed JWTs), redirects
//! to another origin, error statuses, and a bad network: a connection dropped mid-body, a
//! registry that hangs or trickles, `Range` honoured or ignored. Every request is recorded with
//! the body bytes actually sent and when it came.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{assert_untouched, pull};
use crate::harness::*;
use crate::oci::{self, Built};
use crate::require_root;

/// A request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub auth: Option<String>,
    /// The `Range` header, as sent.
    pub range: Option<String>,
    /// Body bytes written before the answer ended (or was cut).
    pub sent: usize,
    pub at: Instant,
    /// Other headers (names lower-cased), and the body (by Content-Length).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    /// N of `Range: bytes=N-`.
    pub fn range_start(&self) -> Option<usize> {
        self.range.as_deref()?.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this many body bytes (a dropped connection).
    pub cut: Option<usize>,
    /// Say nothing for this long before the head (a hung registry).
    pub hang: Option<Duration>,
    /// Send the body this many bytes at a time, with this pause between (a slow registry).
    pub pace: Option<(usize, Duration)>,
}

impl Resp {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Resp {
        Resp { status, headers: vec![], body: body.into(), cut: None, hang: None, pace: None }
    }

    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn cut(mut self, after: usize) -> Resp {
        self.cut = Some(after);
        self
    }

    pub fn hang(mut self, d: Duration) -> Resp {
        self.hang = Some(d);
        self
    }

    pub fn pace(mut self, chunk: usize, pause: Duration) -> Resp {
        self.pace = Some((chunk.max(1), pause));
        self
    }

    /// `body` from byte `from` as a `206` (what a registry supporting ranges answers).
    pub fn partial(body: &[u8], from: usize) -> Resp {
        let range = format!("bytes {from}-{}/{}", body.len().saturating_sub(1), body.len());
        Resp::new(206, &body[from.min(body.len())..]).header("Content-Range", &range)
    }
}

/// Sleeps `d` in small steps, returning early once `stop` is set.
fn nap(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10).min(end - Instant::now()));
    }
}

/// A running fake: stopped and joined on drop; every request it saw in `seen`.
pub struct Fake {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub seen: Arc<Mutex<Vec<Req>>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A listener on a free loopback port, and the port.
pub fn bind() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

/// Serves `handler` on `l` until dropped (or three minutes pass), each connection on a thread of
/// its own (a hung answer does not hold up the next request).
pub fn serve(l: TcpListener, handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Fake {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(vec![]));
    let (stop2, seen2) = (stop.clone(), seen.clone());
    let handler = Arc::new(handler);
    l.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(180);
        let mut conns = vec![];
        while !stop2.load(Ordering::SeqCst) && Instant::now() < end {
            match l.accept() {
                Ok((s, _)) => {
                    let (h, stop3, seen3) = (handler.clone(), stop2.clone(), seen2.clone());
                    conns.push(std::thread::spawn(move || answer(s, &*h, &stop3, &seen3)));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        stop2.store(true, Ordering::SeqCst);
        for c in conns {
            let _ = c.join();
        }
    });
    Fake { stop, thread: Some(thread), seen }
}

/// One connection: reads the request (recorded at once), writes `handler`'s answer as it says
/// (hung, cut, paced), counting the body bytes sent into the record.
fn answer(mut s: TcpStream, handler: &dyn Fn(&Req) -> Resp, stop: &AtomicBool, seen: &Mutex<Vec<Req>>) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split(' ').nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let method = line.split(' ').next().unwrap_or("GET").to_string();
    let mut req = Req {
        method,
        path: path.into(),
        query: query.into(),
        auth: None,
        range: None,
        sent: 0,
        at: Instant::now(),
        headers: vec![],
        body: vec![],
    };
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                req.auth = Some(v.trim().to_string());
            }
            if k.eq_ignore_ascii_case("range") {
                req.range = Some(v.trim().to_string());
            }
            req.headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = req.headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok());
    if let Some(n) = len {
        req.body = vec![0; n];
        if std::io::Read::read_exact(&mut r, &mut req.body).is_err() {
            return;
        }
    }
    let idx = {
        let mut v = seen.lock().unwrap();
        v.push(req.clone());
        v.len() - 1
    };
    let resp = handler(&req);
    if let Some(d) = resp.hang {
        nap(d, stop);
    }
    let mut head =
        format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", resp.status, resp.body.len());
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let body = &resp.body[..resp.cut.unwrap_or(usize::MAX).min(resp.body.len())];
    let (chunk, pause) = resp.pace.unwrap_or((body.len().max(1), Duration::ZERO));
    if s.write_all(head.as_bytes()).is_ok() {
        for c in body.chunks(chunk) {
            if stop.load(Ordering::SeqCst) || s.write_all(c).is_err() {
                break;
            }
            seen.lock().unwrap()[idx].sent += c.len();
            nap(pause, stop);
        }
    }
    // A cut answer: the connection closes here (s dropped) with the body unfinished.
}

/// The blob of `img` named by `digest` (config or layer).
pub fn blob<'a>(img: &'a Built, digest: &str) -> Option<&'a [u8]> {
    if digest == img.config_digest() {
        return Some(&img.config);
    }
    img.layers.iter().find(|l| l.digest == digest).map(|l| &l.blob[..])
}

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn bearer_token_flow_and_redirects_keep_credentials_to_the_registry() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let img = Arc::new(img);
    let (reg_l, port) = bind();
    let (cdn_l, cdn_port) = bind();
    let i2 = img.clone();
    // Layers live on "another host" (another origin: same address, other port).
    let cdn = serve(cdn_l, move |r| match r.path.strip_prefix("/blob/").and_then(|d| blob(&i2, d)) {
        Some(b) => Resp::new(200, b),
        None => Resp::new(404, "no"),
    });
    let i3 = img.clone();
    let reg = serve(reg_l, move |r| {
        let authed = r.auth.as_deref() == Some("Bearer t0k3n");
        let challenge = format!(
            r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake registry",scope="repository:test/r:pull""#
        );
        if r.path == "/token" {
            let q = r.query.replace("%3A", ":").replace("%2F", "/").replace("%20", " ").replace('+', " ");
            let scope_ok = q.contains("scope=repository:test/r:pull") && q.contains("service=fake registry");
            return if scope_ok {
                Resp::new(200, r#"{"token":"t0k3n","expires_in":300}"#)
            } else {
                Resp::new(400, r.query.clone())
            };
        }
        if !authed {
            return Resp::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header("WWW-Authenticate", &challenge);
        }
        if r.path == "/v2/test/r/manifests/v1" {
            return Resp::new(200, i3.manifest.clone())
                .header("Content-Type", MANIFEST_TYPE)
                .header("Docker-Content-Digest", &i3.manifest_digest());
        }
        if let Some(d) = r.path.strip_prefix("/v2/test/r/blobs/") {
            // The config by a same-origin redirect (credentials kept), layers to the cdn.
            return if d == i3.config_digest() {
                Resp::new(307, "").header("Location", &format!("/storage/{d}"))
            } else {
                Resp::new(307, "").header("Location", &format!("http://127.0.0.1:{cdn_port}/blob/{d}?sig=x"))
            };
        }
        match r.path.strip_prefix("/storage/").and_then(|d| blob(&i3, d)) {
            Some(b) => Resp::new(200, b),
            None => Resp::new(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#),
        }
    });
    let root = tempfile::tempdir().unwrap();
    let name = format!("127.0.0.1:{port}/test/r:v1");
    let r = pull(root.path(), &[&name], &[]);
    assert_eq!(r.code, 0, "{}\n{:#?}", r.stderr, reg.seen.lock().unwrap());
    let seen = reg.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|q| q.path == "/token").count(), 1, "one token for the whole pull: {seen:#?}");
    assert!(seen.iter().filter(|q| q.path.starts_with("/v2/test/r/blobs/")).all(|q| q.auth.is_some()));
    assert!(seen.iter().any(|q| q.path.starts_with("/storage/") && q.auth.is_some()), "same origin: kept");
    let cdn_seen = cdn.seen.lock().unwrap().clone();
    assert_eq!(cdn_seen.len(), 3, "{cdn_seen:#?}");
    assert!(cdn_seen.iter().all(|q| q.auth.is_none()), "credentials went to another origin: {cdn_seen:#?}");
    assert!(sandbox::image::Store::open(root.path()).unwrap().find(&name).is_ok());
}

#[test]
fn error_statuses_become_clear_messages() {
    require_root!();
    let _m = shared();
    let (l, port) = bind();
    let fake = serve(l, move |r| match r.path.as_str() {
        // Longer than sandbox waits for: the error at once, saying how long.
        "/v2/a/manifests/busy" => Resp::new(429, "slow down").header("Retry-After", "3600"),
        "/v2/a/manifests/broken" => Resp::new(500, "\nboom: storage backend down\nsecond line"),
        "/v2/a/manifests/forbidden" => Resp::new(403, r#"{"errors":[{"code":"DENIED"}]}"#),
        "/v2/a/manifests/lying" => Resp::new(200, r#"{"schemaVersion":2,"config":{},"layers":[]}"#)
            .header("Content-Type", MANIFEST_TYPE)
            .header("Docker-Content-Digest", &format!("sha256:{}", "1".repeat(64))),
        "/v2/a/manifests/loop" => Resp::new(302, "").header("Location", "/v2/a/manifests/loop"),
        "/v2/a/manifests/challenge" => Resp::new(401, "").header("WWW-Authenticate", r#"Basic realm="fake""#),
        _ => Resp::new(404, r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
    });
    let root = tempfile::tempdir().unwrap();
    let h = format!("127.0.0.1:{port}");
    let cases: [(&str, &[&str]); 6] = [
        ("busy", &["too many requests", "429", "retry after 3600 s"]),
        ("broken", &["registry error", "HTTP 500", "boom: storage backend down", "(tried 4 times)"]),
        ("forbidden", &["access denied", "403", "--creds"]),
        ("lying", &["digest mismatch", "Docker-Content-Digest"]),
        ("loop", &["more than 5 redirects"]),
        ("challenge", &["authentication required", "--creds"]),
    ];
    for (tag, want) in cases {
        let r = pull(root.path(), &[&format!("{h}/a:{tag}")], &[]);
        assert_eq!(r.code, 125, "{tag}: {}", r.stderr);
        eprintln!("{tag}: {}", r.stderr.trim());
        for w in want {
            assert!(r.stderr.contains(w), "{tag}: wanted '{w}' in: {}", r.stderr);
        }
        assert!(!r.stderr.contains("second line"), "only the first line of a body: {}", r.stderr);
        assert_untouched(root.path());
    }
    // Bad flags fail before any request, naming the flag (never echoing a password).
    let bad: [(&[&str], &str); 3] = [
        (&["--insecure-registry", "http://reg.lan"], "invalid --insecure-registry 'http://reg.lan'"),
        (&["--creds", "nocolonsecret"], "invalid --creds '(hidden)': expected USER:PASS"),
        (&["--platform", "linux"], "invalid --platform 'linux'"),
    ];
    for (flags, want) in bad {
        let mut args = flags.to_vec();
        let name = format!("{h}/a:busy");
        args.push(&name);
        let r = pull(root.path(), &args, &[]);
        assert_eq!(r.code, 125, "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(want) && !r.stderr.contains("nocolonsecret"), "{flags:?}: {}", r.stderr);
    }
    let seen = fake.seen.lock().unwrap().iter().filter(|q| q.path.ends_with("/busy")).count();
    assert_eq!(seen, 1, "only the 429 case reached the registry, once (a Retry-After of an hour is not waited)");
    let broken = fake.seen.lock().unwrap().iter().filter(|q| q.path.ends_with("/broken")).count();
    assert_eq!(broken, 4, "a 500 is tried 4 times in all");
}
