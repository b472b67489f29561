//! A bad network between sandbox and a registry (the fake one): connections dropped mid-blob are
//! resumed by `Range` (or restarted where the registry ignores it), `503`/`429` are tried again
//! after `Retry-After` or a backoff, a hung registry fails after the read timeout with a message
//! naming it, and a slow one shows progress without a terminal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fake::{bind, blob, serve, Fake, Req, Resp, MANIFEST_TYPE};
use super::{assert_untouched, pull};
use crate::harness::*;
use crate::oci::{self, Built};
use crate::require_root;

/// A fake registry serving `img` as `test/r:v1`. `answer(request, blob, n)` makes each blob's
/// answer, `n` being how many times that blob was asked for before. Returns the fake and the
/// reference to pull.
fn image_registry(
    img: &Arc<Built>,
    answer: impl Fn(&Req, &[u8], usize) -> Resp + Send + Sync + 'static,
) -> (Fake, String) {
    let (l, port) = bind();
    let img = img.clone();
    let counts: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let fake = serve(l, move |r| {
        if r.path == "/v2/test/r/manifests/v1" {
            return Resp::new(200, img.manifest.clone())
                .header("Content-Type", MANIFEST_TYPE)
                .header("Docker-Content-Digest", &img.manifest_digest());
        }
        let Some(d) = r.path.strip_prefix("/v2/test/r/blobs/") else { return Resp::new(404, "no") };
        let Some(b) = blob(&img, d) else { return Resp::new(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#) };
        let n = {
            let mut c = counts.lock().unwrap();
            let n = c.entry(d.to_string()).or_default();
            *n += 1;
            *n - 1
        };
        answer(r, b, n)
    });
    (fake, format!("127.0.0.1:{port}/test/r:v1"))
}

type Flags<'a> = &'a [&'a str];
type Env<'a> = &'a [(&'a str, &'a str)];

/// The largest layer of `img`: its digest and size.
fn big_layer(img: &Built) -> (String, usize) {
    let l = img.layers.iter().max_by_key(|l| l.blob.len()).unwrap();
    (l.digest.clone(), l.blob.len())
}

fn requests_for(fake: &Fake, digest: &str) -> Vec<Req> {
    fake.seen.lock().unwrap().iter().filter(|q| q.path.ends_with(digest)).cloned().collect()
}

/// The pulled blob is in the store, whole and matching its digest.
fn assert_stored(root: &std::path::Path, name: &str, digest: &str) {
    let s = sandbox::image::Store::open(root).unwrap();
    assert!(s.find(name).is_ok(), "{name} not tagged");
    let b = std::fs::read(s.blob_path(digest).unwrap()).unwrap();
    assert_eq!(oci::sha(&b), digest);
    super::assert_no_staging(root);
}

#[test]
fn a_blob_whose_connection_drops_resumes_by_range_and_each_byte_comes_once() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let img = Arc::new(img);
    let (big, len) = big_layer(&img);
    let big2 = big.clone();
    let (fake, name) = image_registry(&img, move |r, b, n| {
        if n == 0 && r.path.ends_with(&big2) {
            return Resp::new(200, b).cut(b.len() / 2);
        }
        match r.range_start() {
            Some(from) => Resp::partial(b, from),
            None => Resp::new(200, b),
        }
    });
    let root = tempfile::tempdir().unwrap();
    let r = pull(root.path(), &[&name], &[]);
    let reqs = requests_for(&fake, &big);
    assert_eq!(r.code, 0, "{}\n{reqs:#?}", r.stderr);
    assert_eq!(reqs.len(), 2, "one drop, one resume: {reqs:#?}");
    assert_eq!(reqs[0].range, None);
    assert_eq!(reqs[1].range_start(), Some(len / 2), "resumed where it stopped: {reqs:#?}");
    assert_eq!(reqs.iter().map(|q| q.sent).sum::<usize>(), len, "every byte sent once: {reqs:#?}");
    assert_stored(root.path(), &name, &big);
}

#[test]
fn a_blob_that_stalls_midway_resumes_after_the_read_timeout() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let img = Arc::new(img);
    let (big, len) = big_layer(&img);
    let big2 = big.clone();
    // Half the blob, then silence for a minute on that connection.
    let (fake, name) = image_registry(&img, move |r, b, n| match r.range_start() {
        _ if n == 0 && r.path.ends_with(&big2) => Resp::new(200, b).pace(b.len() / 2, Duration::from_secs(60)),
        Some(from) => Resp::partial(b, from),
        None => Resp::new(200, b),
    });
    let root = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let r = pull(root.path(), &["--registry-timeout", "5,1", &name], &[]);
    let took = t.elapsed();
    let reqs = requests_for(&fake, &big);
    assert_eq!(r.code, 0, "{}\n{reqs:#?}", r.stderr);
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[1].range_start(), Some(len / 2), "{reqs:#?}");
    assert!(took < Duration::from_secs(10), "resumed after the 1 s read timeout, took {took:?}");
    assert_stored(root.path(), &name, &big);
}

#[test]
fn a_registry_ignoring_range_gets_the_blob_restarted_and_verified_whole() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let img = Arc::new(img);
    let (big, len) = big_layer(&img);
    let big2 = big.clone();
    // Range is ignored: every answer is the whole blob, from byte 0.
    let (fake, name) = image_registry(&img, move |r, b, n| {
        if n == 0 && r.path.ends_with(&big2) {
            Resp::new(200, b).cut(b.len() / 3)
        } else {
            Resp::new(200, b)
        }
    });
    let root = tempfile::tempdir().unwrap();
    let r = pull(root.path(), &[&name], &[]);
    let reqs = requests_for(&fake, &big);
    assert_eq!(r.code, 0, "{}\n{reqs:#?}", r.stderr);
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[1].range_start(), Some(len / 3), "a resume was asked for: {reqs:#?}");
    assert_eq!(reqs[1].sent, len, "answered from 0: {reqs:#?}");
    assert_stored(root.path(), &name, &big);
}

#[test]
fn status_503_and_429_are_retried_after_retry_after_and_a_backoff() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let img = Arc::new(img);
    let (l, port) = bind();
    let i2 = img.clone();
    let manifests = Mutex::new(0usize);
    let fake = serve(l, move |r| {
        if r.path == "/v2/test/r/manifests/v1" {
            let mut n = manifests.lock().unwrap();
            *n += 1;
            return match *n {
                1 => Resp::new(503, "busy").header("Retry-After", "2"),
                2 => Resp::new(429, "slow down"),
                _ => Resp::new(200, i2.manifest.clone())
                    .header("Content-Type", MANIFEST_TYPE)
                    .header("Docker-Content-Digest", &i2.manifest_digest()),
            };
        }
        match r.path.strip_prefix("/v2/test/r/blobs/").and_then(|d| blob(&i2, d)) {
            Some(b) => Resp::new(200, b),
            None => Resp::new(404, "no"),
        }
    });
    let root = tempfile::tempdir().unwrap();
    let name = format!("127.0.0.1:{port}/test/r:v1");
    let r = pull(root.path(), &[&name], &[]);
    let seen: Vec<Req> = fake.seen.lock().unwrap().iter().filter(|q| q.path.contains("/manifests/")).cloned().collect();
    assert_eq!(r.code, 0, "{}\n{seen:#?}", r.stderr);
    assert_eq!(seen.len(), 3, "{seen:#?}");
    let gap1 = seen[1].at - seen[0].at;
    let gap2 = seen[2].at - seen[1].at;
    assert!(gap1 >= Duration::from_millis(1900), "Retry-After: 2 honoured: waited {gap1:?}");
    assert!(gap2 >= Duration::from_millis(900) && gap2 < Duration::from_secs(5), "backoff 1 s: waited {gap2:?}");
    assert!(sandbox::image::Store::open(root.path()).unwrap().find(&name).is_ok());
}

#[test]
fn a_hung_registry_fails_after_the_read_timeout_naming_registry_and_timeout() {
    require_root!();
    let _m = shared();
    let (l, port) = bind();
    let _fake = serve(l, |_| Resp::new(200, "").hang(Duration::from_secs(60)));
    let root = tempfile::tempdir().unwrap();
    let name = format!("127.0.0.1:{port}/test/r:v1");
    let runs: [(Flags, Env); 2] =
        [(&["--registry-timeout", "5,1"], &[]), (&[], &[("SANDBOX_REGISTRY_TIMEOUT", "5,1")])];
    for (flags, env) in runs {
        let mut args = flags.to_vec();
        args.push(&name);
        let t = Instant::now();
        let r = pull(root.path(), &args, env);
        let took = t.elapsed();
        eprintln!("{flags:?} {env:?}: {took:?}: {}", r.stderr.trim());
        assert_eq!(r.code, 125, "{flags:?} {env:?}: {}", r.stderr);
        let want = format!("registry 127.0.0.1:{port} did not answer within 1s (read timeout");
        assert!(r.stderr.contains(&want), "{flags:?} {env:?}: wanted '{want}' in: {}", r.stderr);
        assert!(took < Duration::from_secs(4), "{flags:?} {env:?}: took {took:?}, not tried again");
        assert_untouched(root.path());
    }
    let bad: [(Flags, Env, &str); 3] = [
        (&["--registry-timeout", "0"], &[], "invalid --registry-timeout '0'"),
        (&["--registry-timeout", "5,soon"], &[], "invalid --registry-timeout '5,soon'"),
        (&[], &[("SANDBOX_REGISTRY_TIMEOUT", "x")], "invalid SANDBOX_REGISTRY_TIMEOUT 'x'"),
    ];
    for (flags, env, want) in bad {
        let mut args = flags.to_vec();
        args.push(&name);
        let r = pull(root.path(), &args, env);
        assert_eq!(r.code, 125, "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(want) && r.stderr.contains("CONNECT[,READ]"), "{flags:?}: {}", r.stderr);
        assert_untouched(root.path());
    }
}

#[test]
fn a_registry_that_accepts_no_connection_fails_after_the_connect_timeout() {
    require_root!();
    let _m = shared();
    // A listener whose accept queue (backlog 0) is filled by one connection nobody accepts: the
    // kernel drops further SYNs, so a connect hangs as it does to a firewalled host.
    // SAFETY: plain socket calls on a descriptor this test owns and closes.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as u16;
    addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_in of the given length; fd is ours.
    unsafe {
        assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        assert_eq!(libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len), 0);
    }
    let port = u16::from_be(addr.sin_port);
    let _filler = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let probe = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300));
    if probe.is_ok() {
        eprintln!("SKIPPED: this kernel accepted a connection beyond a full backlog; no hanging connect to test");
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd) };
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let name = format!("127.0.0.1:{port}/test/r:v1");
    let t = Instant::now();
    let r = pull(root.path(), &["--registry-timeout", "1,5", &name], &[]);
    let took = t.elapsed();
    eprintln!("{took:?}: {}", r.stderr.trim());
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    assert_eq!(r.code, 125, "{}", r.stderr);
    let want = format!("registry 127.0.0.1:{port} could not connect within 1s (connect timeout");
    assert!(r.stderr.contains(&want), "wanted '{want}' in: {}", r.stderr);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_untouched(root.path());
}

#[test]
fn pull_without_a_terminal_prints_each_layers_progress_while_it_downloads() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let img = Arc::new(img);
    let (big, len) = big_layer(&img);
    let big2 = big.clone();
    // The big layer trickles in over about 2 s; a line is due every 300 ms.
    let (_fake, name) = image_registry(&img, move |r, b, _| {
        if r.path.ends_with(&big2) {
            Resp::new(200, b).pace(b.len() / 10 + 1, Duration::from_millis(200))
        } else {
            Resp::new(200, b)
        }
    });
    let root = tempfile::tempdir().unwrap();
    let r = pull(root.path(), &[&name], &[("SANDBOX_PROGRESS_INTERVAL_MS", "300")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    eprintln!("{}", r.stderr);
    let short = &big[7..19];
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with(&format!("layer {short}:"))).collect();
    let done = lines.iter().position(|l| l.contains(": done")).unwrap_or_else(|| panic!("no end line: {}", r.stderr));
    let during = &lines[..done];
    assert!(during.len() >= 3, "a line at least every 300 ms over ~2 s, got {during:?}\n{}", r.stderr);
    for l in during {
        // `layer HEX: 512 KiB / 1.02 MiB (49%), 250.3 KiB/s`
        let (bytes, rest) = l.split_once(": ").unwrap().1.split_once(" / ").unwrap_or_else(|| panic!("{l}"));
        assert!(bytes.ends_with('B') && rest.contains("%), ") && rest.ends_with("B/s"), "{l}");
    }
    assert!(lines[done].contains(&format!("{}", indicatif::HumanBytes(len as u64))), "{}", lines[done]);
}
