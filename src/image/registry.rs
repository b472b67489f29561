//! Pulls from a registry over the distribution HTTP API v2: the top document from
//! `/v2/REPO/manifests/REF`, then (through [`install`]) every other document and blob by digest.
//!
//! Transport: https, except plain http for loopback registries (`localhost`, `127.0.0.0/8`,
//! `[::1]`, which docker also treats as insecure) and for those named in [`Options::insecure`]
//! (`--insecure-registry HOST[:PORT]`, `SANDBOX_INSECURE_REGISTRIES`; a name without a port covers
//! every port of that host). Connect timeout 10 s, read timeout 30 s per read, configurable;
//! dropped connections, 429 and 5xx are tried again with a backoff, and a blob whose connection
//! drops is resumed by `Range` ([`retry`], [`transfer`]).
//!
//! Auth: requests go out anonymously until a `401` names a challenge: `Bearer` → a token from the
//! challenge's realm (`?service=…&scope=repository:REPO:pull`, with basic auth when there are
//! credentials), `Basic` → the credentials themselves. The resulting `Authorization` is kept for
//! the whole pull (every thread) and renewed once if a later request gets a 401. Redirects (blob
//! storage on another host) are followed here, and `Authorization` goes only to the registry's own
//! scheme, host and port.
//!
//! Nothing is trusted: the top document must hash to the pinned digest (or to the registry's
//! `Docker-Content-Digest`), and [`install`] verifies everything else.

pub mod auth;
pub mod login;
pub mod push;
pub mod retry;
mod transfer;

use std::io::Read;
use std::sync::Mutex;

use oci_spec::image::Descriptor;

pub use self::auth::Credentials;
pub use self::retry::Timeouts;
use super::digest;
use super::install::{self, Progress, Source};
use super::manifest::{self, Platform};
use super::reference::{self, Reference};
use super::store::{Image, Store};
use crate::error::{Error, Result};

/// How many redirects a request may take.
const MAX_REDIRECTS: usize = 5;
/// How much of an error body is read for its message.
const ERROR_BODY: u64 = 64 << 10;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Registries (`HOST[:PORT]`) spoken to over plain http.
    pub insecure: Vec<String>,
    /// Credentials for the registry pulled from; without them, the auth files are searched.
    pub creds: Option<Credentials>,
    /// Connect and read timeouts.
    pub timeouts: Timeouts,
}

impl Options {
    /// `SANDBOX_INSECURE_REGISTRIES`: a comma-separated list of `HOST[:PORT]`.
    pub fn insecure_from_env() -> Vec<String> {
        std::env::var("SANDBOX_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Checks an `--insecure-registry` value: `HOST[:PORT]`, no scheme, no path.
pub fn check_insecure(s: &str) -> Result<()> {
    let probe = format!("{s}/x");
    match Reference::parse(&probe) {
        Ok(r) if r.registry == s => Ok(()),
        _ => Err(Error::invalid("--insecure-registry", s, "HOST[:PORT], e.g. registry.lan:5000 (no scheme, no path)")),
    }
}

/// Splits `host:port`, `[v6]:port`, `host` into host and port.
fn split_host(registry: &str) -> (&str, Option<&str>) {
    if registry.starts_with('[') {
        if let Some(i) = registry.find(']') {
            return (&registry[..=i], registry[i + 1..].strip_prefix(':'));
        }
    }
    match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    }
}

/// Whether `registry` is spoken to over plain http: loopback, or listed in `insecure`.
pub fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    let (host, _) = split_host(registry);
    let loopback = host == "localhost"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback());
    loopback || insecure.iter().any(|i| i == registry || (split_host(i).1.is_none() && i == host))
}

/// Whether a token realm may get the user's credentials: over https, or when the registry itself
/// is spoken to over plain http (the user chose that). A registry on https cannot send them to
/// an http realm, where anyone on the path would read them.
fn creds_may_go_to(realm: &str, registry_origin: &str) -> bool {
    origin(realm).starts_with("https://") || registry_origin.starts_with("http://")
}

/// `scheme://host[:port]` of a URL, lower-cased: what `Authorization` is bound to.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{}://{}", scheme.to_ascii_lowercase(), auth.to_ascii_lowercase())
}

/// A `Location` against the URL it came from: absolute, or an absolute path.
fn resolve(base: &str, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        Some(location.to_string())
    } else if location.starts_with("//") {
        Some(format!("{}:{location}", base.split_once("://")?.0))
    } else if location.starts_with('/') {
        Some(format!("{}{location}", origin(base)))
    } else {
        None
    }
}

/// What a request fetches, for its error messages.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    Manifest(&'a str),
    Blob(&'a str),
}

/// A request's failure before it is turned into an [`Error`] ([`Client::retrying`] decides from
/// it whether to try again).
pub enum Failure {
    /// The registry answered with this status.
    Status(u16, Box<ureq::Response>),
    /// No answer: the URL asked for and what went wrong (timeouts included).
    Transport(String, Box<ureq::Transport>),
    Other(Error),
}

/// A client for one repository of one registry, for one pull.
pub struct Client {
    agent: ureq::Agent,
    /// `https://registry.example:5000`.
    origin: String,
    /// As the reference names it (`docker.io`, `127.0.0.1:5000`).
    registry: String,
    repository: String,
    creds: Option<Credentials>,
    /// The `Authorization` value in use, once a challenge asked for one.
    auth: Mutex<Option<String>>,
    timeouts: Timeouts,
}

impl Client {
    pub fn new(r: &Reference, opts: &Options) -> Result<Client> {
        let scheme = if is_insecure(&r.registry, &opts.insecure) { "http" } else { "https" };
        // docker.io is the name; its API is served from registry-1.
        let host = if r.registry == reference::DEFAULT_REGISTRY { "registry-1.docker.io" } else { &r.registry };
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => auth::lookup(&r.registry, &auth::auth_files(), std::env::var_os("SANDBOX_AUTH_FILE").is_some())?,
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(opts.timeouts.connect)
            .timeout_read(opts.timeouts.read)
            .redirects(0)
            .user_agent(concat!("sandbox/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent,
            origin: origin(&format!("{scheme}://{host}")),
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            creds,
            auth: Mutex::new(None),
            timeouts: opts.timeouts,
        })
    }

    /// `registry/repository`, for messages.
    fn repo(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The top document `r` names, verified: its media type (from Content-Type) and body.
    pub fn top_document(&self, r: &Reference) -> Result<(String, Vec<u8>)> {
        let want = r.manifest_ref();
        let path = format!("/v2/{}/manifests/{want}", self.repository);
        let resp = self.get(&path, true, Target::Manifest(want))?;
        let media_type = resp.header("Content-Type").unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
        let header_digest = resp.header("Docker-Content-Digest").map(str::to_string);
        let too_big =
            || Error::image(format!("the manifest of {r} is larger than {} bytes: refused", manifest::MAX_DOCUMENT));
        if resp.header("Content-Length").and_then(|l| l.parse::<u64>().ok()).is_some_and(|l| l > manifest::MAX_DOCUMENT)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        resp.into_reader()
            .take(manifest::MAX_DOCUMENT + 1)
            .read_to_end(&mut body)
            .map_err(|e| Error::image(format!("reading the manifest of {r} from {}: {e}", self.registry)))?;
        if body.len() as u64 > manifest::MAX_DOCUMENT {
            return Err(too_big());
        }
        let got = digest::of_bytes(&body);
        let expected = match (&r.digest, &header_digest) {
            (Some(d), _) => Some((d.as_str(), "the reference pins")),
            (None, Some(h)) if h.starts_with("sha256:") => {
                Some((h.as_str(), "the registry's Docker-Content-Digest says"))
            }
            _ => None,
        };
        if let Some((want, who)) = expected {
            if got != want {
                return Err(Error::image(format!(
                    "the manifest of {r} from {}: digest mismatch: {who} {want}, the body is {got}",
                    self.registry
                )));
            }
        }
        Ok((media_type, body))
    }

    /// GETs `path` on the registry: authenticating on a challenge, following redirects, trying
    /// again on a dropped connection, 429 or 5xx.
    fn get(&self, path: &str, manifest: bool, target: Target) -> Result<ureq::Response> {
        self.get_with(path, manifest, target, None)
    }

    /// [`Client::get`], from byte `range` on when given.
    fn get_with(&self, path: &str, manifest: bool, target: Target, range: Option<u64>) -> Result<ureq::Response> {
        let url = format!("{}{path}", self.origin);
        let accept = manifest.then(|| manifest::ACCEPT.join(", "));
        let mut challenged = false;
        loop {
            let sent = self.auth.lock().unwrap().clone();
            let mut tries = 0;
            let answer = self.retrying(|| {
                tries += 1;
                self.follow(&url, accept.as_deref(), sent.as_deref(), range)
            });
            match answer {
                Ok(r) => return Ok(r),
                Err(Failure::Status(401, r)) if !challenged && r.header("WWW-Authenticate").is_some() => {
                    challenged = true;
                    self.authenticate(&r, sent.as_deref())?;
                }
                Err(Failure::Status(code, r)) => {
                    let e = self.status_error(code, *r, target);
                    return Err(if tries > 1 { Error::image(format!("{e} (tried {tries} times)")) } else { e });
                }
                Err(Failure::Transport(url, t)) => {
                    let e = self.unreachable(&url, &t);
                    return Err(if tries > 1 { Error::image(format!("{e} (tried {tries} times)")) } else { e });
                }
                Err(Failure::Other(e)) => return Err(e),
            }
        }
    }

    /// One GET and its redirects; `auth` goes only to the registry's own origin.
    fn follow(
        &self,
        url: &str,
        accept: Option<&str>,
        auth: Option<&str>,
        range: Option<u64>,
    ) -> Result<ureq::Response, Failure> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            if let Some(from) = range {
                req = req.set("Range", &format!("bytes={from}-"));
            }
            if let Some(a) = auth.filter(|_| origin(&url) == self.origin) {
                req = req.set("Authorization", a);
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(code, r)) => return Err(Failure::Status(code, Box::new(r))),
                Err(ureq::Error::Transport(t)) => return Err(Failure::Transport(url, Box::new(t))),
            };
            if !(300..400).contains(&resp.status()) {
                return Ok(resp);
            }
            let loc = resp.header("Location").unwrap_or("");
            url = resolve(&url, loc).ok_or_else(|| {
                Failure::Other(Error::image(format!(
                    "registry {}: a redirect (HTTP {}) to an unusable location '{loc}'",
                    self.registry,
                    resp.status()
                )))
            })?;
        }
        Err(Failure::Other(Error::image(format!(
            "registry {}: more than {MAX_REDIRECTS} redirects for {url}",
            self.registry
        ))))
    }

    /// A request that got no answer: the host, and for a timeout which one and how long.
    pub fn unreachable(&self, url: &str, t: &ureq::Transport) -> Error {
        let host = origin(url);
        let host = host.split_once("://").map_or(host.as_str(), |(_, h)| h);
        if retry::io_kind(t) == Some(std::io::ErrorKind::TimedOut) {
            let (what, limit) = if t.kind() == ureq::ErrorKind::ConnectionFailed {
                ("could not connect within", self.timeouts.connect)
            } else {
                ("did not answer within", self.timeouts.read)
            };
            let which = if t.kind() == ureq::ErrorKind::ConnectionFailed { "connect" } else { "read" };
            return Error::image(format!(
                "registry {host} {what} {} ({which} timeout; set it with --registry-timeout CONNECT[,READ] or \
                 SANDBOX_REGISTRY_TIMEOUT)",
                humantime::format_duration(limit)
            ));
        }
        let why = t.message().map(str::to_string).unwrap_or_else(|| t.kind().to_string());
        let cause = match std::error::Error::source(t) {
            Some(s) => format!("{why}: {s}"),
            None => why,
        };
        Error::image(format!("cannot reach registry {host}: {cause}"))
    }

    /// Answers a 401's challenge: stores the `Authorization` to use from now on. `sent` is what
    /// the refused request carried; when another thread has replaced it meanwhile, that is used.
    fn authenticate(&self, resp: &ureq::Response, sent: Option<&str>) -> Result<()> {
        let mut cache = self.auth.lock().unwrap();
        if cache.as_deref() != sent {
            return Ok(());
        }
        let challenges = auth::parse_challenges(&resp.all("WWW-Authenticate"));
        let denied = || self.auth_error(401);
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = c.params.get("realm").filter(|r| r.starts_with("http://") || r.starts_with("https://"));
            let realm = realm.ok_or_else(|| {
                Error::image(format!("registry {}: a Bearer challenge without a usable realm", self.registry))
            })?;
            let scope = format!("repository:{}:pull", self.repository);
            let mut req = self.agent.get(realm).query("scope", &scope);
            if let Some(s) = c.params.get("service") {
                req = req.query("service", s);
            }
            if let Some(cr) = self.creds.as_ref().filter(|_| creds_may_go_to(realm, &self.origin)) {
                req = req.set("Authorization", &cr.basic());
            }
            let token_error =
                |why: String| Error::image(format!("registry {}: token from {realm}: {why}", self.registry));
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(401 | 403, _)) => return Err(denied()),
                Err(ureq::Error::Status(code, r)) => {
                    return Err(token_error(format!("HTTP {code}: {}", first_line(r))))
                }
                Err(ureq::Error::Transport(t)) => return Err(self.unreachable(realm, &t)),
            };
            let mut body = Vec::new();
            resp.into_reader().take(1 << 20).read_to_end(&mut body).map_err(|e| token_error(e.to_string()))?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| token_error(format!("not JSON: {e}")))?;
            let token = ["token", "access_token"]
                .iter()
                .find_map(|k| v.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
                .ok_or_else(|| token_error("no \"token\" in the answer".into()))?;
            *cache = Some(format!("Bearer {token}"));
            Ok(())
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            let creds = self.creds.as_ref().ok_or_else(denied)?;
            *cache = Some(creds.basic());
            Ok(())
        } else {
            Err(denied())
        }
    }

    fn auth_error(&self, code: u16) -> Error {
        let repo = self.repo();
        let registry = &self.registry;
        match (&self.creds, code) {
            (Some(c), 401) => Error::image(format!(
                "registry {registry} refused the credentials of user '{}' for {repo}: authentication denied \
                 (HTTP 401); check --creds or log in again",
                c.user
            )),
            (Some(c), _) => Error::image(format!(
                "registry {registry} denied user '{}' access to {repo}: access denied (HTTP {code}); check \
                 the repository name, --creds or log in as another user",
                c.user
            )),
            (None, 401) => Error::image(format!(
                "registry {registry} requires authentication for {repo}: authentication required (HTTP 401); \
                 use --creds USER:PASS or log in (docker login / podman login, or $SANDBOX_AUTH_FILE)"
            )),
            (None, _) => Error::image(format!(
                "registry {registry} denied anonymous access to {repo}: access denied (HTTP {code}); check the \
                 repository name, or use --creds USER:PASS or log in"
            )),
        }
    }

    /// Whether the registry says the repository itself does not exist (a manifest's 404 does not
    /// tell; the tag list does).
    fn repository_unknown(&self) -> bool {
        let url = format!("{}/v2/{}/tags/list", self.origin, self.repository);
        let auth = self.auth.lock().unwrap().clone();
        match self.follow(&url, None, auth.as_deref(), None) {
            Err(Failure::Status(404, r)) => first_line(*r).contains("NAME_UNKNOWN"),
            _ => false,
        }
    }

    fn status_error(&self, code: u16, resp: ureq::Response, target: Target) -> Error {
        let repo = self.repo();
        match code {
            401 | 403 => self.auth_error(code),
            404 => {
                let body = first_line(resp);
                if body.contains("NAME_UNKNOWN") || matches!(target, Target::Manifest(_)) && self.repository_unknown() {
                    return Error::image(format!("repository {repo} not found (name unknown)"));
                }
                match target {
                    Target::Manifest(m) if m.starts_with("sha256:") => {
                        Error::image(format!("manifest {m} not found in repository {repo} (manifest unknown)"))
                    }
                    Target::Manifest(t) => {
                        Error::image(format!("tag '{t}' not found in repository {repo} (manifest unknown)"))
                    }
                    Target::Blob(d) => Error::image(format!("blob {d} not found in repository {repo} (blob unknown)")),
                }
            }
            429 => {
                // Retry-After is seconds or an HTTP date.
                let after = match resp.header("Retry-After").map(str::trim) {
                    Some(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => format!("; retry after {a} s"),
                    Some(a) if !a.is_empty() => format!("; retry after {a}"),
                    _ => String::new(),
                };
                Error::image(format!("registry {}: too many requests (HTTP 429){after}", self.registry))
            }
            500..=599 => {
                let text = resp.status_text().to_string();
                Error::image(format!(
                    "registry error: {} answered HTTP {code} {text} for {repo}: {}",
                    self.registry,
                    first_line(resp)
                ))
            }
            _ => Error::image(format!(
                "registry {}: unexpected HTTP {code} for {repo}: {}",
                self.registry,
                first_line(resp)
            )),
        }
    }
}

/// The first line of an error body (at most 200 characters), for a message.
fn first_line(resp: ureq::Response) -> String {
    let mut b = Vec::new();
    let _ = resp.into_reader().take(ERROR_BODY).read_to_end(&mut b);
    let s = String::from_utf8_lossy(&b);
    let line = s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("(no body)");
    line.chars().take(200).collect()
}

impl Source for Client {
    /// Manifests (the platform's, under an index) from /manifests, everything else from /blobs.
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let d = desc.digest().to_string();
        digest::hex(&d)?;
        let manifest = manifest::ACCEPT.contains(&desc.media_type().to_string().as_str());
        let path = format!("/v2/{}/{}/{d}", self.repository, if manifest { "manifests" } else { "blobs" });
        let target = if manifest { Target::Manifest(&d) } else { Target::Blob(&d) };
        let first = self.get(&path, manifest, target)?;
        Ok(Box::new(transfer::Resuming::new(self, path, manifest, d, Some(desc.size()), first)))
    }
}

/// Pulls `r` into `store`: the top document, then everything [`install`] needs. The image is
/// tagged with the full reference.
pub fn pull(
    store: &Store,
    r: &Reference,
    opts: &Options,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<Image> {
    let client = Client::new(r, opts)?;
    let (media_type, top) = client.top_document(r)?;
    install::install_for_platform(store, &client, &media_type, top, platform, &r.to_string(), progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_a_plain_http_realm_only_from_a_plain_http_registry() {
        assert!(creds_may_go_to("https://auth.example/token", "https://reg.example"));
        assert!(!creds_may_go_to("http://auth.example/token", "https://reg.example"));
        assert!(!creds_may_go_to("HTTP://auth.example/token", "https://reg.example"));
        assert!(creds_may_go_to("http://127.0.0.1:9/token", "http://127.0.0.1:5000"));
    }

    #[test]
    fn loopback_and_listed_registries_are_plain_http() {
        let none: Vec<String> = vec![];
        for r in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "[::1]"] {
            assert!(is_insecure(r, &none), "{r}");
        }
        for r in ["docker.io", "registry.lan:5000", "10.0.0.1:5000", "128.0.0.1", "[::2]:5000"] {
            assert!(!is_insecure(r, &none), "{r}");
        }
        let list = vec!["registry.lan:5000".to_string(), "10.0.0.1".to_string()];
        assert!(is_insecure("registry.lan:5000", &list));
        assert!(!is_insecure("registry.lan:5001", &list), "a port given is a port required");
        assert!(!is_insecure("registry.lan", &list));
        assert!(is_insecure("10.0.0.1:5000", &list) && is_insecure("10.0.0.1", &list), "no port: every port");
        for ok in ["registry.lan:5000", "10.0.0.1", "[::1]:5000", "localhost"] {
            check_insecure(ok).unwrap();
        }
        for bad in ["http://registry.lan", "registry.lan/x", "", "a b"] {
            assert!(check_insecure(bad).unwrap_err().to_string().contains("HOST[:PORT]"), "{bad}");
        }
    }

    #[test]
    fn origins_and_redirect_locations() {
        assert_eq!(origin("http://127.0.0.1:5000/v2/x?y"), "http://127.0.0.1:5000");
        assert_eq!(origin("HTTPS://Reg.Example/v2/"), "https://reg.example");
        assert_ne!(origin("http://127.0.0.1:5000/a"), origin("http://127.0.0.1:5001/a"));
        assert_eq!(resolve("http://h:1/v2/a", "/b?c").as_deref(), Some("http://h:1/b?c"));
        assert_eq!(resolve("https://h/v2/a", "//cdn/b").as_deref(), Some("https://cdn/b"));
        assert_eq!(resolve("http://h/v2/a", "https://s3/x").as_deref(), Some("https://s3/x"));
        assert_eq!(resolve("http://h/v2/a", "relative"), None);
    }
}
