//! `login` / `logout`: the credentials `pull` and `push` read, kept in the auth file they search
//! first ([`auth::auth_files`]): `$SANDBOX_AUTH_FILE` when set, else podman's
//! `$XDG_RUNTIME_DIR/containers/auth.json`, else docker's `~/.docker/config.json`.
//!
//! Login checks the credentials against the registry (`GET /v2/` with them) before anything is
//! written. The file is rewritten whole: a new file beside it (mode 0600, `O_EXCL`), synced, then
//! renamed over it, so a reader never sees half a file and a crash leaves the old one. Every
//! other key of the file (`credHelpers`, other registries) is kept as it was.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::push::token;
use super::{auth, first_line, Client, Credentials, Options};
use crate::error::{Error, Result};
use crate::image::reference::Reference;

/// The file `login` writes: the first that `pull` looks at.
pub fn login_file() -> Result<PathBuf> {
    auth::auth_files().into_iter().next().ok_or_else(|| {
        Error::image("no auth file to write: set $SANDBOX_AUTH_FILE, $XDG_RUNTIME_DIR or $HOME".to_string())
    })
}

/// Checks a registry name (`HOST[:PORT]`, or `docker.io`).
pub fn check_registry(registry: &str) -> Result<Reference> {
    match Reference::parse(&format!("{registry}/login-check")) {
        Ok(r) if r.registry == registry => Ok(r),
        _ => Err(Error::invalid(
            "registry",
            registry,
            "HOST[:PORT], e.g. registry.lan:5000 or docker.io (no scheme, no path)",
        )),
    }
}

/// Records `creds` for `registry` in `file` (replacing any entry for the same registry).
pub fn store(file: &Path, registry: &str, creds: &Credentials) -> Result<()> {
    let mut v = read(file)?;
    let auths = auths(&mut v, file)?;
    remove_aliases(auths, registry);
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.user, creds.pass));
    auths.insert(registry.to_string(), serde_json::json!({ "auth": enc }));
    write(file, &v)
}

/// Removes the entry of `registry` from `file`; false when it had none (the file is then left
/// alone).
pub fn remove(file: &Path, registry: &str) -> Result<bool> {
    if !file.exists() {
        return Ok(false);
    }
    let mut v = read(file)?;
    let auths = auths(&mut v, file)?;
    if !remove_aliases(auths, registry) {
        return Ok(false);
    }
    write(file, &v)?;
    Ok(true)
}

/// Removes every key naming `registry`; whether there was one.
fn remove_aliases(auths: &mut Map<String, Value>, registry: &str) -> bool {
    let names = auth::aliases(registry);
    let keys: Vec<String> = auths.keys().filter(|k| names.contains(&auth::key_host(k))).cloned().collect();
    for k in &keys {
        auths.remove(k);
    }
    !keys.is_empty()
}

fn read(file: &Path) -> Result<Value> {
    let mut body = vec![];
    match std::fs::File::open(file) {
        Ok(f) => {
            f.take(16 << 20).read_to_end(&mut body).map_err(|e| Error::io("cannot read the auth file", file, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(serde_json::json!({})),
        Err(e) => return Err(Error::io("cannot read the auth file", file, e)),
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(&body).map_err(|e| Error::image(format!("auth file {}: not JSON: {e}", file.display())))
}

fn auths<'a>(v: &'a mut Value, file: &Path) -> Result<&'a mut Map<String, Value>> {
    let top =
        v.as_object_mut().ok_or_else(|| Error::image(format!("auth file {}: not a JSON object", file.display())))?;
    top.entry("auths").or_insert_with(|| Value::Object(Map::new()));
    top.get_mut("auths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Error::image(format!("auth file {}: \"auths\" is not an object", file.display())))
}

/// Replaces `file` by `v`: a 0600 file beside it, synced, renamed over it.
fn write(file: &Path, v: &Value) -> Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{}", std::process::id(), crate::sys::random_id()));
    let tmp = file.with_file_name(name);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        let mut body = serde_json::to_vec_pretty(v).expect("JSON serializes");
        body.push(b'\n');
        f.write_all(&body)?;
        f.sync_all()
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("cannot write the auth file", &tmp, e));
    }
    std::fs::rename(&tmp, file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("cannot replace the auth file", file, e)
    })
}

/// Checks credentials against `GET /v2/` of `registry`: `Ok` when it accepts them (or asks for
/// none).
pub fn verify_login(registry: &str, opts: &Options) -> Result<()> {
    let r = check_registry(registry)?;
    let c = Client::new(&r, opts)?;
    let url = format!("{}/v2/", c.origin);
    let get = |auth: Option<&str>| {
        let mut req = c.agent.get(&url);
        if let Some(a) = auth {
            req = req.set("Authorization", a);
        }
        req.call().map_err(Box::new)
    };
    let denied = || login_denied(&c);
    let resp = match get(None).map_err(|e| *e) {
        Ok(_) => return Ok(()),
        Err(ureq::Error::Status(401, r)) => r,
        Err(ureq::Error::Status(code, r)) => {
            return Err(Error::image(format!("registry {registry}: GET /v2/ answered HTTP {code}: {}", first_line(r))))
        }
        Err(ureq::Error::Transport(t)) => return Err(c.unreachable(&url, &t)),
    };
    let challenges = auth::parse_challenges(&resp.all("WWW-Authenticate"));
    let authz = if let Some(ch) = challenges.iter().find(|ch| ch.scheme == "bearer") {
        token(&c, ch, &[])?
    } else {
        c.creds.as_ref().ok_or_else(denied)?.basic()
    };
    match get(Some(&authz)).map_err(|e| *e) {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(401 | 403, _)) => Err(denied()),
        Err(ureq::Error::Status(code, r)) => {
            Err(Error::image(format!("registry {registry}: GET /v2/ answered HTTP {code}: {}", first_line(r))))
        }
        Err(ureq::Error::Transport(t)) => Err(c.unreachable(&url, &t)),
    }
}

/// A registry (or its token server) refused the credentials a login checks.
pub(super) fn login_denied(c: &Client) -> Error {
    Error::image(format!(
        "registry {} refused the credentials of user '{}': login failed (HTTP 401)",
        c.registry,
        c.creds.as_ref().map(|c| c.user.as_str()).unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_remove_keep_other_entries_and_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/auth.json");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, r#"{"auths":{"other:1":{"auth":"eDp5"},"https://index.docker.io/v1/":{"auth":"eDp5"}},"credHelpers":{"a":"b"}}"#).unwrap();
        let c = Credentials { user: "alice".into(), pass: "s:ecret".into() };
        store(&f, "docker.io", &c).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        let got = auth::lookup("docker.io", std::slice::from_ref(&f), true).unwrap().unwrap();
        assert_eq!(got, c);
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(v["credHelpers"]["a"], "b");
        assert!(v["auths"].get("https://index.docker.io/v1/").is_none(), "the alias was replaced: {v}");
        assert!(v["auths"].get("other:1").is_some());
        assert!(remove(&f, "docker.io").unwrap());
        assert!(!remove(&f, "docker.io").unwrap());
        assert!(auth::lookup("docker.io", std::slice::from_ref(&f), true).unwrap().is_none());
        assert!(auth::lookup("other:1", std::slice::from_ref(&f), true).unwrap().is_some());
        let left: Vec<_> = std::fs::read_dir(f.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
        let fresh = d.path().join("new/dir/config.json");
        store(&fresh, "127.0.0.1:5000", &c).unwrap();
        assert_eq!(auth::lookup("127.0.0.1:5000", &[fresh], true).unwrap().unwrap().user, "alice");
    }
}
