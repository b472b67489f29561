//! The command's environment. Never the caller's whole environment (tokens, keys, agent sockets):
//!
//! - host view: only PATH, HOME, TERM, LANG, LC_*, TZ, USER, LOGNAME and SHELL of the caller;
//! - `--rootfs` and `--image`: docker's default PATH and HOSTNAME (HOME from the user's entry in
//!   the root's /etc/passwd and TERM when there is a pty are added by the child), then the image's
//!   Env;
//! - then `--env-file` lines and `-e` values, in that order; `-e NAME` alone copies the caller's
//!   value, as docker does. `--inherit-env` starts from everything instead.

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};

/// docker's default PATH.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a host-view run keeps of the caller's environment.
fn host_view_keeps(name: &str) -> bool {
    matches!(name, "PATH" | "HOME" | "TERM" | "LANG" | "TZ" | "USER" | "LOGNAME" | "SHELL") || name.starts_with("LC_")
}

/// The caller's environment as `NAME=VALUE` (a variable that is not UTF-8 is left out).
pub fn caller() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some(format!("{}={}", k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The environment a run starts from: the host view's few variables of `caller`, or a root
/// filesystem's defaults.
pub fn base(rootfs: bool, hostname: &str, caller: &[String]) -> Vec<String> {
    if rootfs {
        return vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    }
    caller.iter().filter(|kv| kv.split_once('=').is_some_and(|(k, _)| host_view_keeps(k))).cloned().collect()
}

/// The environment of a run whose [`Config::env`] is `None`.
pub fn default_for(cfg: &Config) -> Vec<String> {
    let hostname = cfg.hostname.clone().unwrap_or_else(|| cfg.id.clone());
    base(cfg.rootfs.is_some(), &hostname, &caller())
}

/// Applies `NAME=VALUE` and `NAME` entries (from `-e` or an env file) in order: each replaces the
/// variable of that name; `NAME` alone takes the caller's value, or nothing when it has none.
pub fn apply(vars: &mut Vec<String>, entries: &[String], caller: &[String]) {
    for e in entries {
        let value = match e.split_once('=') {
            Some(_) => Some(e.clone()),
            None => caller.iter().find(|kv| kv.split_once('=').is_some_and(|(k, _)| k == e)).cloned(),
        };
        let Some(kv) = value else { continue };
        let name = kv.split('=').next().unwrap_or_default().to_string();
        vars.retain(|v| v.split('=').next() != Some(name.as_str()));
        vars.push(kv);
    }
}

/// Checks one `-e` value: `NAME=VALUE` or `NAME`, with a non-empty name and no NUL byte.
pub fn check_entry(flag: &'static str, e: &str) -> Result<()> {
    let name = e.split('=').next().unwrap_or_default();
    if name.is_empty() || e.contains('\0') || name.chars().any(char::is_whitespace) {
        return Err(Error::invalid(flag, e, "NAME=VALUE, or NAME to copy the caller's value"));
    }
    Ok(())
}

/// Reads an `--env-file`: `NAME=VALUE` or `NAME` lines (docker's format: no quoting, the value is
/// the rest of the line); blank lines and lines starting with `#` are skipped.
pub fn read_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read(path).map_err(|e| {
        Error::invalid("--env-file", &format!("{} ({e})", path.display()), "a readable file of NAME=VALUE lines")
    })?;
    let text = String::from_utf8(text).map_err(|_| {
        Error::invalid("--env-file", &path.display().to_string(), "a UTF-8 text file of NAME=VALUE lines")
    })?;
    parse_file(&text).map_err(|(n, line)| {
        Error::invalid(
            "--env-file",
            &format!("{}:{n}: {line}", path.display()),
            "NAME=VALUE or NAME on each line (blank lines and # comments are skipped)",
        )
    })
}

/// The entries of an env file's text, or the first bad line (1-based) and its text.
fn parse_file(text: &str) -> std::result::Result<Vec<String>, (usize, String)> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if check_entry("--env-file", t).is_err() {
            return Err((i + 1, line.to_string()));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn host_view_keeps_only_the_harmless_few() {
        let caller =
            v(&["PATH=/bin", "AWS_SECRET_ACCESS_KEY=x", "LC_ALL=C", "SSH_AUTH_SOCK=/s", "HOME=/root", "TERM=xterm"]);
        assert_eq!(base(false, "h", &caller), v(&["PATH=/bin", "LC_ALL=C", "HOME=/root", "TERM=xterm"]));
        assert_eq!(base(true, "h", &caller), v(&[DEFAULT_PATH, "HOSTNAME=h"]));
    }

    #[test]
    fn entries_replace_and_a_bare_name_copies_the_callers_value() {
        let caller = v(&["TOKEN=abc", "A=1"]);
        let mut vars = v(&["PATH=/bin", "A=0"]);
        apply(&mut vars, &v(&["A=2", "TOKEN", "MISSING", "B=x=y"]), &caller);
        assert_eq!(vars, v(&["PATH=/bin", "A=2", "TOKEN=abc", "B=x=y"]));
    }

    #[test]
    fn env_files_skip_comments_and_name_a_bad_line() {
        assert_eq!(parse_file("# c\n\nA=1\n  B=2 3\nC\n").unwrap(), v(&["A=1", "B=2 3", "C"]));
        assert_eq!(parse_file("B = 2").unwrap_err().0, 1, "docker refuses whitespace in a name");
        assert_eq!(parse_file("A=1\n=nope\n").unwrap_err(), (2, "=nope".to_string()));
        assert!(check_entry("-e", "=x").is_err());
        assert!(check_entry("-e", "A B=x").is_err());
        assert!(check_entry("-e", "A=b c").is_ok());
    }
}
