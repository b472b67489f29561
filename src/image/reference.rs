//! Image references as docker and the distribution spec write them:
//! `[REGISTRY[:PORT]/]REPOSITORY[:TAG][@DIGEST]`, normalized as docker does (`alpine` is
//! `docker.io/library/alpine:latest`).
//!
//! The grammar follows github.com/distribution/reference: path components are lower-case
//! alphanumerics joined by `.`, `_`, `__` or runs of `-`; the first component is a registry when it
//! holds a `.` or a `:` or is `localhost`; tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; the whole
//! name is at most 255 characters.

use std::fmt;

use crate::error::{Error, Result};

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;

const HELP: &str = "an image reference [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST], NAME in lower case \
     (letters, digits, and . _ __ - between them, components separated by /), e.g. alpine:3.20, \
     127.0.0.1:5000/library/busybox:latest";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (and port): `docker.io`, `127.0.0.1:5000`, `localhost`.
    pub registry: String,
    /// Repository path within the registry: `library/alpine`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `sha256:<64 hex>` when pinned by digest.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = || Error::invalid("image reference", s, HELP);
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                check_digest(d).ok_or_else(bad)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it belongs to a registry port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(bad());
        }
        if let Some(t) = &tag {
            check_tag(t).ok_or_else(bad)?;
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                check_registry(first).ok_or_else(bad)?;
                (first.to_string(), path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        if !path.split('/').all(is_component) {
            return Err(bad());
        }
        let repository =
            if registry == DEFAULT_REGISTRY && !path.contains('/') { format!("library/{path}") } else { path };
        let tag = if tag.is_none() && digest.is_none() { Some(DEFAULT_TAG.to_string()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// The repository as docker prints it: `alpine` for docker.io/library/alpine, `user/x` for
    /// docker.io/user/x, `REGISTRY/REPO` elsewhere.
    pub fn familiar_repository(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// What a manifest request names: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or(DEFAULT_TAG)
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/alpine:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn check_tag(t: &str) -> Option<()> {
    let ok = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    (!b.is_empty() && b.len() <= 128 && ok(b[0]) && b[1..].iter().all(|&x| ok(x) || x == b'.' || x == b'-'))
        .then_some(())
}

/// Host names made of `[A-Za-z0-9]` and inner `-`, dot-separated, with an optional port, or a
/// bracketed IPv6 address.
fn check_registry(r: &str) -> Option<()> {
    let (host, port) = if let Some(v6) = r.strip_prefix('[') {
        let (addr, rest) = v6.split_once(']')?;
        addr.parse::<std::net::Ipv6Addr>().ok()?;
        (None, rest.strip_prefix(':'))
    } else {
        match r.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(r), None),
        }
    };
    if let Some(p) = port {
        p.parse::<u16>().ok()?;
    }
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    };
    match host {
        Some(h) if !h.split('.').all(label) => None,
        _ => Some(()),
    }
}

/// `sha256:` and 64 lower-case hex digits (the only algorithm sandbox verifies).
pub fn check_digest(d: &str) -> Option<()> {
    let hex = d.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x))).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_normalization() {
        assert_eq!(full("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(full("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(full("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(full("docker.io/alpine"), "docker.io/library/alpine:latest");
        assert_eq!(full("quay.io/coreos/etcd:v3.5"), "quay.io/coreos/etcd:v3.5");
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        let r = Reference::parse("127.0.0.1:5000/library/busybox:1.36").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("127.0.0.1:5000", "library/busybox"));
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        let r = Reference::parse("localhost/x").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost", "x"));
        assert_eq!(full("registry.example:5000/library/alpine:3.20"), "registry.example:5000/library/alpine:3.20");
        assert_eq!(full("[::1]:5000/a/b"), "[::1]:5000/a/b:latest");
        // A port-less name with a tag: the ':' after the last '/' is the tag.
        assert_eq!(Reference::parse("localhost:5000/a").unwrap().tag.as_deref(), Some("latest"));
    }

    #[test]
    fn digests_pin_and_replace_the_default_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("alpine@{d}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (None, Some(d.as_str())));
        assert_eq!(r.manifest_ref(), d);
        let r = Reference::parse(&format!("alpine:3.20@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("3.20"));
        assert_eq!(r.manifest_ref(), d, "the digest wins");
    }

    #[test]
    fn invalid_references_are_refused_with_the_value_quoted() {
        let long = "a".repeat(256);
        for bad in [
            "",
            "Alpine",
            "alpine:",
            ":tag",
            "alpine::1",
            "a//b",
            "/alpine",
            "alpine/",
            "-alpine",
            "alp--ine-",
            "a..b",
            "a___b",
            "alpine:-x",
            "alpine@sha256:abc",
            "alpine@md5:0123456789abcdef0123456789abcdef",
            "reg.example:99999/a",
            "bad_host.example/a",
            long.as_str(),
        ] {
            let e = Reference::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("REGISTRY"), "{bad}: {e}");
        }
        assert!(Reference::parse("a--b").is_ok() && Reference::parse("a__b.c_d").is_ok());
    }
}
