//! Registry authentication: `WWW-Authenticate` challenges, credentials from `--creds` or from the
//! auth files docker and podman write, and the `Authorization` values made from them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, Result};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:***)", self.user)
    }
}

impl Credentials {
    /// `USER:PASS` (the password may contain `:`).
    pub fn parse(s: &str) -> Result<Credentials> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials { user: u.into(), pass: p.into() }),
            _ => Err(Error::Invalid { what: "--creds", value: "(hidden)".into(), expected: "USER:PASS".into() }),
        }
    }

    /// `Basic base64(user:pass)`.
    pub fn basic(&self) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.user, self.pass)))
    }
}

/// One challenge of a `WWW-Authenticate` header: its scheme (lower case) and parameters (names in
/// lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses every challenge in `WWW-Authenticate` values (RFC 7235): `Bearer realm="…",
/// service="…",scope="a,b"`, `Basic realm=x`. Quoted values may hold commas and `\"`.
pub fn parse_challenges(headers: &[&str]) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = vec![];
    for h in headers {
        let mut s = h.trim();
        while !s.is_empty() {
            s = s.trim_start_matches([',', ' ', '\t']);
            // A token: either a new scheme or a parameter name.
            let end = s.find(|c: char| c == '=' || c == ',' || c.is_whitespace()).unwrap_or(s.len());
            let token = &s[..end];
            if token.is_empty() {
                break;
            }
            let rest = s[end..].trim_start();
            if let Some(v) = rest.strip_prefix('=').filter(|_| !out.is_empty()) {
                let v = v.trim_start();
                let (value, after) = if let Some(q) = v.strip_prefix('"') {
                    let mut val = String::new();
                    let mut chars = q.char_indices();
                    let mut stop = q.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, n)) = chars.next() {
                                    val.push(n);
                                }
                            }
                            '"' => {
                                stop = i + 1;
                                break;
                            }
                            c => val.push(c),
                        }
                    }
                    (val, &q[stop..])
                } else {
                    let e = v.find(',').unwrap_or(v.len());
                    (v[..e].trim().to_string(), &v[e..])
                };
                out.last_mut().unwrap().params.insert(token.to_ascii_lowercase(), value);
                s = after;
            } else {
                out.push(Challenge { scheme: token.to_ascii_lowercase(), params: BTreeMap::new() });
                s = rest;
            }
        }
    }
    out
}

/// The auth files looked at, in order: `$SANDBOX_AUTH_FILE` alone when set, else podman's
/// `$XDG_RUNTIME_DIR/containers/auth.json` and docker's `~/.docker/config.json`.
pub fn auth_files() -> Vec<PathBuf> {
    if let Some(f) = std::env::var_os("SANDBOX_AUTH_FILE").filter(|f| !f.is_empty()) {
        return vec![PathBuf::from(f)];
    }
    let mut v = vec![];
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        v.push(Path::new(&d).join("containers/auth.json"));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        v.push(Path::new(&h).join(".docker/config.json"));
    }
    v
}

/// The host[:port] an `auths` key names: keys may carry a scheme and a path
/// (`https://index.docker.io/v1/`).
pub(super) fn key_host(k: &str) -> &str {
    let k = k.split_once("://").map_or(k, |(_, r)| r);
    k.split('/').next().unwrap_or(k)
}

/// The names a registry goes by in auth files (docker.io has several).
pub(super) fn aliases(registry: &str) -> Vec<&str> {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            vec!["docker.io", "index.docker.io", "registry-1.docker.io"]
        }
        r => vec![r],
    }
}

/// The credentials for `registry` in the first of `files` that has an entry for it. Missing files
/// are skipped, except a `$SANDBOX_AUTH_FILE` asked for by name (`required`); unreadable or
/// malformed ones are errors naming the file.
pub fn lookup(registry: &str, files: &[PathBuf], required: bool) -> Result<Option<Credentials>> {
    let names = aliases(registry);
    for f in files {
        let body = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(e) => return Err(Error::io("cannot read the auth file", f, e)),
        };
        let bad = |why: String| Error::image(format!("auth file {}: {why}", f.display()));
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else { continue };
        let Some(entry) = auths.iter().find(|(k, _)| names.contains(&key_host(k))).map(|(_, e)| e) else {
            continue;
        };
        if let Some(a) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|e| bad(format!("the \"auth\" of {registry} is not base64: {e}")))?;
            let s = String::from_utf8(raw).map_err(|_| bad(format!("the \"auth\" of {registry} is not UTF-8")))?;
            return Credentials::parse(&s)
                .map(Some)
                .map_err(|_| bad(format!("the \"auth\" of {registry} is not base64(USER:PASS)")));
        }
        let field = |n: &str| entry.get(n).and_then(|x| x.as_str()).map(str::to_string);
        if let (Some(user), Some(pass)) = (field("username"), field("password")) {
            return Ok(Some(Credentials { user, pass }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_commas_inside_quotes() {
        let c = parse_challenges(&[
            r#"Bearer realm="https://auth.example/token?a=1",service="registry.example",scope="repository:a/b:pull,push""#,
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.example/token?a=1");
        assert_eq!(c[0].params["service"], "registry.example");
        assert_eq!(c[0].params["scope"], "repository:a/b:pull,push");
    }

    #[test]
    fn basic_unquoted_several_challenges_and_escapes() {
        let c = parse_challenges(&[r#"Basic realm=Registry, Bearer Realm="x\"y", error="invalid_token""#]);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!((c[0].scheme.as_str(), c[0].params["realm"].as_str()), ("basic", "Registry"));
        assert_eq!((c[1].scheme.as_str(), c[1].params["realm"].as_str()), ("bearer", "x\"y"));
        assert_eq!(c[1].params["error"], "invalid_token");
        let c = parse_challenges(&["Basic", r#"Bearer realm = "r" , service=s"#]);
        assert_eq!(c.len(), 2);
        assert!(c[0].params.is_empty());
        assert_eq!((c[1].params["realm"].as_str(), c[1].params["service"].as_str()), ("r", "s"));
        assert!(parse_challenges(&[""]).is_empty());
        // An unterminated quote takes the rest, and nothing panics.
        assert_eq!(parse_challenges(&[r#"Bearer realm="abc"#])[0].params["realm"], "abc");
    }

    #[test]
    fn creds_parse_and_encode() {
        let c = Credentials::parse("user:pa:ss").unwrap();
        assert_eq!((c.user.as_str(), c.pass.as_str()), ("user", "pa:ss"));
        assert_eq!(Credentials::parse("aladdin:opensesame").unwrap().basic(), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
        for bad in ["nopass", ":secret", ""] {
            let e = Credentials::parse(bad).unwrap_err().to_string();
            assert!(e.contains("USER:PASS") && !e.contains("secret") && !e.contains("nopass"), "{e}");
        }
        assert!(!format!("{c:?}").contains("pa:ss"), "Debug hides the password");
    }

    #[test]
    fn auth_files_are_searched_in_order_by_host_and_alias() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("auth.json");
        let b = d.path().join("config.json");
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(&a, format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{}"}}}}}}"#, enc("alice:a"))).unwrap();
        std::fs::write(
            &b,
            format!(
                r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{}"}},"https://index.docker.io/v1/":{{"auth":"{}"}},
                "reg.example":{{"username":"carol","password":"c"}}}}}}"#,
                enc("bob:b"),
                enc("dave:d")
            ),
        )
        .unwrap();
        let missing = d.path().join("missing.json");
        let files = vec![missing.clone(), a.clone(), b.clone()];
        let get = |r: &str| lookup(r, &files, false).unwrap().map(|c| c.user);
        assert_eq!(get("127.0.0.1:5000").as_deref(), Some("alice"), "the first file with the host wins");
        assert_eq!(get("docker.io").as_deref(), Some("dave"), "docker.io's v1 key");
        assert_eq!(get("reg.example").as_deref(), Some("carol"), "username/password fields");
        assert_eq!(get("127.0.0.1:5001"), None, "the port is part of the name");
        let e = lookup("x", &[missing], true).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
        std::fs::write(&a, "{nope").unwrap();
        let e = lookup("x", &files, false).unwrap_err().to_string();
        assert!(e.contains("auth.json") && e.contains("not JSON"), "{e}");
        std::fs::write(&a, r#"{"auths":{"h":{"auth":"!!"}}}"#).unwrap();
        assert!(lookup("h", &files, false).unwrap_err().to_string().contains("base64"));
    }
}
