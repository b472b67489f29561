//! `push`: an image of the store to a registry over the distribution API v2.
//!
//! For each blob (layers, then the config): `HEAD /v2/NAME/blobs/DIGEST`, skipped when the
//! registry has it; else a cross-repository mount (`POST …/blobs/uploads/?mount=D&from=REPO`) when
//! another image of the store came from a repository of the same registry and holds the blob
//! (answered `201`: done without sending a byte; `202`: the registry declined and opened an
//! upload, used as is); else an upload: monolithic (`POST`, then `PUT ?digest=` with the body) or
//! chunked (`PATCH` with `Content-Range` per chunk, then `PUT ?digest=`) for blobs of at least
//! [`PushOptions::chunk_size`]. Last, `PUT /v2/NAME/manifests/TAG` with the manifest as stored
//! and its media type: its digest does not change.
//!
//! Auth as for a pull ([`Client`]), but a bearer token asks for `repository:NAME:pull,push` (and
//! `repository:FROM:pull` for the repositories blobs are mounted from).
//!
//! The store's shared lock is held throughout: prune cannot remove a blob being sent.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_spec::image::Descriptor;

use super::{auth, creds_may_go_to, first_line, resolve, Client, Failure, Options};
use crate::error::{Error, Result};
use crate::image::install::Progress;
use crate::image::manifest;
use crate::image::reference::Reference;
use crate::image::store::{Image, Store};

/// How blobs are uploaded.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs of at least this many bytes go up in chunks of this size (`PATCH` each); smaller ones
    /// in one `PUT`.
    pub chunk_size: u64,
    /// Every blob in chunks, whatever its size.
    pub chunked: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions { chunk_size: 64 << 20, chunked: false }
    }
}

/// What happened to each blob, for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Pushed {
    pub manifest_digest: String,
    pub uploaded: usize,
    pub present: usize,
    pub mounted: usize,
    pub bytes: u64,
}

/// How many blobs go up at once.
const PARALLEL: usize = 3;

/// A request body: nothing, bytes, or a range of a file.
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    /// Path, offset, length, and the progress id its bytes count towards.
    File(&'a std::path::Path, u64, u64, usize),
}

/// Pushes `img` to `dest`. Blobs the store's other images came from on the same registry are
/// mounted from their repository where the registry allows it.
pub fn push(
    store: &Store,
    img: &Image,
    dest: &Reference,
    opts: &Options,
    popts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Pushed> {
    if dest.digest.as_deref().is_some_and(|d| d != img.manifest_digest) {
        return Err(Error::invalid(
            "push destination",
            &dest.to_string(),
            &format!("no digest, or the image's own ({})", img.manifest_digest),
        ));
    }
    let _shared = store.lock_shared()?;
    let client = Client::new(dest, opts)?;
    let manifest_body = store.read_blob(&img.manifest_digest)?;
    let v: serde_json::Value = serde_json::from_slice(&manifest_body)
        .map_err(|e| Error::image(format!("manifest {}: {e}", img.manifest_digest)))?;
    let media_type = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or(manifest::OCI_MANIFEST).to_string();

    let mut blobs: Vec<Descriptor> = vec![];
    for d in img.manifest.layers().iter().chain(std::iter::once(img.manifest.config())) {
        if !blobs.iter().any(|b| b.digest() == d.digest()) {
            blobs.push(d.clone());
        }
    }
    let sources = mount_sources(store, img, dest)?;
    let scopes: Vec<String> = std::iter::once(format!("repository:{}:pull,push", dest.repository))
        .chain(sources.iter().map(|(_, r)| format!("repository:{r}:pull")))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let p = Pusher { client: &client, store, popts, progress, scopes };

    let next = AtomicUsize::new(0);
    let result = Mutex::new(Ok(Pushed::default()));
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(blobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= blobs.len() || result.lock().unwrap().is_err() {
                    return;
                }
                if let Err(e) = crate::interrupt::check() {
                    *result.lock().unwrap() = Err(e);
                    return;
                }
                let d = &blobs[i];
                let from = sources.iter().find(|(b, _)| b == &d.digest().to_string()).map(|(_, r)| r.as_str());
                let what = if d.digest() == img.manifest.config().digest() { "config" } else { "layer" };
                let r = p.blob(d, from, what);
                let mut res = result.lock().unwrap();
                match (r, &mut *res) {
                    (Ok(how), Ok(sum)) => match how {
                        How::Present => sum.present += 1,
                        How::Mounted => sum.mounted += 1,
                        How::Uploaded => {
                            sum.uploaded += 1;
                            sum.bytes += d.size();
                        }
                    },
                    (Err(e), Ok(_)) => *res = Err(e),
                    _ => {}
                }
            });
        }
    });
    let mut sum = result.into_inner().unwrap()?;
    crate::interrupt::check()?;
    let target = dest.manifest_ref().to_string();
    let url = format!("{}/v2/{}/manifests/{target}", client.origin, dest.repository);
    let resp = p.send("PUT", &url, &[("Content-Type", &media_type)], Body::Bytes(&manifest_body), "the manifest")?;
    if let Some(d) = resp.header("Docker-Content-Digest").filter(|d| *d != img.manifest_digest) {
        return Err(Error::image(format!(
            "registry {} stored the manifest of {dest} as {d}, not as {}: it changed it",
            client.registry, img.manifest_digest
        )));
    }
    sum.manifest_digest = img.manifest_digest.clone();
    Ok(sum)
}

/// For each blob of `img`: a repository of `dest`'s registry it may be mounted from (another
/// image of the store, named in that registry, holds it).
fn mount_sources(store: &Store, img: &Image, dest: &Reference) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = vec![];
    for (name, m) in store.names()? {
        let Ok(r) = Reference::parse(&name) else { continue };
        if r.registry != dest.registry || r.repository == dest.repository {
            continue;
        }
        // A damaged entry is no reason to fail a push: it just offers no mount.
        let Ok(other) = store.load(&name, &m) else { continue };
        let theirs: Vec<String> = other
            .manifest
            .layers()
            .iter()
            .chain(std::iter::once(other.manifest.config()))
            .map(|d| d.digest().to_string())
            .collect();
        for d in img.manifest.layers().iter().chain(std::iter::once(img.manifest.config())) {
            let d = d.digest().to_string();
            if theirs.contains(&d) && !out.iter().any(|(b, _)| *b == d) {
                out.push((d, r.repository.clone()));
            }
        }
    }
    Ok(out)
}

enum How {
    Present,
    Mounted,
    Uploaded,
}

struct Pusher<'a> {
    client: &'a Client,
    store: &'a Store,
    popts: &'a PushOptions,
    progress: &'a dyn Progress,
    scopes: Vec<String>,
}

impl Pusher<'_> {
    fn blob(&self, d: &Descriptor, from: Option<&str>, what: &str) -> Result<How> {
        let c = self.client;
        let digest = d.digest().to_string();
        let id = self.progress.start(what, &digest, d.size());
        let head = format!("{}/v2/{}/blobs/{digest}", c.origin, c.repository);
        if self.exists(&head, &digest)? {
            self.progress.finish(id, "already present");
            return Ok(How::Present);
        }
        // A dropped connection, 429 or 5xx anywhere in the upload starts it again from its POST
        // (a half-sent upload cannot be trusted to continue), with pull's backoff.
        let what_d = format!("{what} {digest}");
        let how = self.retried("the upload", &what_d, || self.upload(d, from, &digest, id, &what_d))?;
        match how {
            How::Mounted => self.progress.finish(id, &format!("mounted from {}", from.unwrap_or(""))),
            _ => self.progress.finish(id, "pushed"),
        }
        Ok(how)
    }

    /// One try at uploading (or mounting) a blob the registry does not have.
    fn upload(
        &self,
        d: &Descriptor,
        from: Option<&str>,
        digest: &str,
        id: usize,
        what_d: &str,
    ) -> Result<How, Failure> {
        let c = self.client;
        let uploads = format!("{}/v2/{}/blobs/uploads/", c.origin, c.repository);
        let (post, mounting) = match from {
            Some(f) => (format!("{uploads}?mount={digest}&from={f}"), true),
            None => (uploads, false),
        };
        let resp = self.try_send("POST", &post, &[], Body::None, what_d)?;
        if mounting && resp.status() == 201 {
            return Ok(How::Mounted);
        }
        let mut location = self.location(&post, &resp).map_err(Failure::Other)?;
        let path = self.store.blob_path(digest).map_err(Failure::Other)?;
        let len = std::fs::metadata(&path).map_err(|e| Failure::Other(Error::io("cannot read blob", &path, e)))?.len();
        if len != d.size() {
            return Err(Failure::Other(Error::image(format!(
                "blob {} in the store is corrupt ({len} bytes, the manifest says {})",
                path.display(),
                d.size()
            ))));
        }
        let chunk = self.popts.chunk_size.max(1);
        if self.popts.chunked || len >= chunk {
            let mut off = 0;
            while off < len {
                let n = chunk.min(len - off);
                let range = format!("{off}-{}", off + n - 1);
                let r = self.try_send(
                    "PATCH",
                    &location,
                    &[("Content-Type", "application/octet-stream"), ("Content-Range", &range)],
                    Body::File(&path, off, n, id),
                    what_d,
                )?;
                location = self.location(&location, &r).map_err(Failure::Other)?;
                off += n;
            }
            let put = with_digest(&location, digest);
            self.try_send("PUT", &put, &[], Body::None, what_d)?;
        } else {
            let put = with_digest(&location, digest);
            self.try_send(
                "PUT",
                &put,
                &[("Content-Type", "application/octet-stream")],
                Body::File(&path, 0, len, id),
                what_d,
            )?;
        }
        Ok(How::Uploaded)
    }

    /// Whether `HEAD url` finds the blob.
    fn exists(&self, url: &str, digest: &str) -> Result<bool> {
        match self.client.retrying(|| self.request("HEAD", url, &[], Body::None)) {
            Ok(_) => Ok(true),
            Err(Failure::Status(404, _)) => Ok(false),
            Err(Failure::Status(code, r)) => Err(self.client.status_error(code, *r, super::Target::Blob(digest))),
            Err(Failure::Transport(u, t)) => Err(self.client.unreachable(&u, &t)),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// The upload URL a `202` names.
    fn location(&self, base: &str, resp: &ureq::Response) -> Result<String> {
        let loc = resp.header("Location").unwrap_or("");
        resolve(base, loc).ok_or_else(|| {
            Error::image(format!(
                "registry {}: an upload answer (HTTP {}) without a usable Location ('{loc}')",
                self.client.registry,
                resp.status()
            ))
        })
    }

    /// A request, tried again on a dropped connection, 429 or 5xx (it must be one that can be
    /// sent again as it is: the manifest's PUT); a failure is an error naming `what`.
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body,
        what: &str,
    ) -> Result<ureq::Response> {
        self.retried(method, what, || self.try_send(method, url, headers, body, what))
    }

    /// `attempt` under [`Client::retrying`]; its last failure as an error that says how many
    /// tries it took, as a pull's does.
    fn retried<T>(&self, method: &str, what: &str, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T> {
        let mut tries = 0;
        self.client
            .retrying(|| {
                tries += 1;
                attempt()
            })
            .map_err(|f| {
                let again = tries > 1 && !matches!(f, Failure::Other(_));
                let e = self.fail(f, method, what);
                if again {
                    Error::image(format!("{e} (tried {tries} times)"))
                } else {
                    e
                }
            })
    }

    /// One request of an upload: a failure that trying again may mend stays a [`Failure`] for the
    /// retry loop; any other becomes its error at once.
    fn try_send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body,
        what: &str,
    ) -> Result<ureq::Response, Failure> {
        self.request(method, url, headers, body).map_err(|f| {
            if super::retry::may_retry(&f) {
                f
            } else {
                Failure::Other(self.fail(f, method, what))
            }
        })
    }

    /// The error a failed request becomes.
    fn fail(&self, f: Failure, method: &str, what: &str) -> Error {
        match f {
            Failure::Status(code @ (401 | 403), _) => self.client.auth_error(code),
            Failure::Status(code, r) => Error::image(format!(
                "registry {} refused {method} of {what} for {}: HTTP {code}: {}",
                self.client.registry,
                self.client.repo(),
                first_line(*r)
            )),
            Failure::Transport(u, t) => self.client.unreachable(&u, &t),
            Failure::Other(e) => e,
        }
    }

    /// One request, answering a 401's challenge once (with push scope) and sending it again.
    fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<ureq::Response, Failure> {
        let mut challenged = false;
        loop {
            let sent = self.client.auth.lock().unwrap().clone();
            let mut req = self.client.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = sent.as_deref().filter(|_| super::origin(url) == self.client.origin) {
                req = req.set("Authorization", a);
            }
            let r = match body {
                Body::None => req.set("Content-Length", "0").send_bytes(&[]),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File(p, off, n, id) => {
                    let mut f = File::open(p).map_err(|e| Failure::Other(Error::io("cannot open blob", p, e)))?;
                    f.seek(SeekFrom::Start(off)).map_err(|e| Failure::Other(Error::io("cannot read blob", p, e)))?;
                    let counted = Counted { inner: f.take(n), progress: self.progress, id };
                    req.set("Content-Length", &n.to_string()).send(std::io::BufReader::with_capacity(1 << 20, counted))
                }
            };
            match r {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, r)) if !challenged && r.header("WWW-Authenticate").is_some() => {
                    challenged = true;
                    self.authenticate(&r, sent.as_deref()).map_err(Failure::Other)?;
                }
                Err(ureq::Error::Status(code, r)) => return Err(Failure::Status(code, Box::new(r))),
                Err(ureq::Error::Transport(t)) => return Err(Failure::Transport(url.to_string(), Box::new(t))),
            }
        }
    }

    /// As [`Client::authenticate`], with the push scopes.
    fn authenticate(&self, resp: &ureq::Response, sent: Option<&str>) -> Result<()> {
        let c = self.client;
        let mut cache = c.auth.lock().unwrap();
        if cache.as_deref() != sent {
            return Ok(());
        }
        let challenges = auth::parse_challenges(&resp.all("WWW-Authenticate"));
        if let Some(ch) = challenges.iter().find(|ch| ch.scheme == "bearer") {
            *cache = Some(token(c, ch, &self.scopes)?);
            Ok(())
        } else if challenges.iter().any(|ch| ch.scheme == "basic") {
            let creds = c.creds.as_ref().ok_or_else(|| c.auth_error(401))?;
            *cache = Some(creds.basic());
            Ok(())
        } else {
            Err(c.auth_error(401))
        }
    }
}

/// A blob's bytes on their way out, told to the progress as they are read.
struct Counted<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    id: usize,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        crate::interrupt::check_io()?;
        let n = self.inner.read(buf)?;
        self.progress.advance(self.id, n as u64);
        Ok(n)
    }
}

/// A bearer token for `scopes` from a challenge's realm (no scope: just a login check).
pub(super) fn token(c: &Client, ch: &auth::Challenge, scopes: &[String]) -> Result<String> {
    let realm = ch.params.get("realm").filter(|r| r.starts_with("http://") || r.starts_with("https://"));
    let realm = realm
        .ok_or_else(|| Error::image(format!("registry {}: a Bearer challenge without a usable realm", c.registry)))?;
    let mut req = c.agent.get(realm);
    for s in scopes {
        req = req.query("scope", s);
    }
    if let Some(s) = ch.params.get("service") {
        req = req.query("service", s);
    }
    if let Some(cr) = c.creds.as_ref().filter(|_| creds_may_go_to(realm, &c.origin)) {
        req = req.set("Authorization", &cr.basic());
    }
    let token_error = |why: String| Error::image(format!("registry {}: token from {realm}: {why}", c.registry));
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(401 | 403, _)) if scopes.is_empty() => return Err(super::login::login_denied(c)),
        Err(ureq::Error::Status(401 | 403, _)) => return Err(c.auth_error(401)),
        Err(ureq::Error::Status(code, r)) => return Err(token_error(format!("HTTP {code}: {}", first_line(r)))),
        Err(ureq::Error::Transport(t)) => return Err(c.unreachable(realm, &t)),
    };
    let mut body = Vec::new();
    resp.into_reader().take(1 << 20).read_to_end(&mut body).map_err(|e| token_error(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| token_error(format!("not JSON: {e}")))?;
    let t = ["token", "access_token"]
        .iter()
        .find_map(|k| v.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
        .ok_or_else(|| token_error("no \"token\" in the answer".into()))?;
    Ok(format!("Bearer {t}"))
}

/// An upload URL with `digest=D` added to its query.
fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_join_the_upload_query() {
        assert_eq!(
            with_digest("http://h/v2/a/blobs/uploads/u?_state=x", "sha256:1"),
            "http://h/v2/a/blobs/uploads/u?_state=x&digest=sha256:1"
        );
        assert_eq!(with_digest("http://h/u", "sha256:1"), "http://h/u?digest=sha256:1");
    }
}
