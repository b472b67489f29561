//! `commit --change`: Dockerfile instructions applied to the new image's config, as `docker
//! commit --change` applies them: `CMD`/`ENTRYPOINT` in JSON-array (exec) or shell form (which
//! becomes `/bin/sh -c …`), `ENV`/`LABEL` as `KEY=VALUE …` (quotes and backslashes as a
//! Dockerfile reads them) or the legacy `KEY VALUE`, `EXPOSE PORT[/PROTO] …` (ranges too),
//! `VOLUME` as a JSON array or words, `USER`, `WORKDIR` (relative to the current one) and
//! `STOPSIGNAL`. Instructions are case-insensitive. As in a Dockerfile, an `ENTRYPOINT` clears the
//! inherited `Cmd` unless a `CMD` came before it. Variables (`$FOO`) are not expanded.
//!
//! Every change is parsed before anything is read or written: a bad one refuses the commit whole.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// What `--change` accepts, for error messages.
pub const VALID: &str = "one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR \
     with its argument in Dockerfile syntax, e.g. 'ENV KEY=VALUE' or 'CMD [\"sh\", \"-c\", \"echo hi\"]'";

/// One parsed instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(Vec<(String, String)>),
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    StopSignal(String),
    User(String),
    Volume(Vec<String>),
    Workdir(String),
}

fn bad(s: &str, expected: &str) -> Error {
    Error::Invalid { what: "--change", value: s.to_string(), expected: expected.to_string() }
}

/// Parses one `--change` value.
pub fn parse(s: &str) -> Result<Change> {
    let t = s.trim();
    let (kw, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let rest = rest.trim();
    let kw = kw.to_ascii_uppercase();
    if !matches!(
        kw.as_str(),
        "CMD" | "ENTRYPOINT" | "ENV" | "EXPOSE" | "LABEL" | "STOPSIGNAL" | "USER" | "VOLUME" | "WORKDIR"
    ) {
        return Err(bad(s, VALID));
    }
    if rest.is_empty() {
        return Err(bad(s, &format!("{kw} with an argument ({VALID})")));
    }
    Ok(match kw.as_str() {
        "CMD" => Change::Cmd(command(rest)),
        "ENTRYPOINT" => Change::Entrypoint(command(rest)),
        "ENV" => Change::Env(pairs(s, rest, "ENV KEY=VALUE … or ENV KEY VALUE")?),
        "LABEL" => Change::Label(pairs(s, rest, "LABEL KEY=VALUE … or LABEL KEY VALUE")?),
        "EXPOSE" => Change::Expose(
            words(s, rest)?.iter().map(|w| port(w).ok_or_else(|| bad(s, EXPOSE))).collect::<Result<_>>()?,
        ),
        "VOLUME" => {
            let v = json_array(rest).map_or_else(|| words(s, rest), Ok)?;
            if v.iter().any(|p| p.is_empty()) {
                return Err(bad(s, "VOLUME with non-empty paths"));
            }
            Change::Volume(v)
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" => {
            let w = words(s, rest)?;
            let [one] = w.as_slice() else {
                return Err(bad(s, &format!("{kw} with exactly one argument")));
            };
            match kw.as_str() {
                "USER" => Change::User(one.clone()),
                "WORKDIR" => Change::Workdir(one.clone()),
                _ if signal_ok(one) => Change::StopSignal(one.clone()),
                _ => return Err(bad(s, "STOPSIGNAL with a signal name or number (SIGTERM, TERM, 15, SIGRTMIN+3)")),
            }
        }
        _ => unreachable!("matched above"),
    })
}

const EXPOSE: &str = "EXPOSE PORT[/PROTO] … with ports 1-65535 (or ranges START-END) and PROTO tcp, udp or sctp";

/// A JSON array of strings (exec form), or `None`.
fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

/// Exec form, or (as docker does for anything that is not a JSON array of strings) shell form.
fn command(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

/// Splits at unquoted whitespace; "…" (backslash escapes inside), '…' (literal) and a backslash
/// outside quotes work as in a Dockerfile.
fn words(s: &str, rest: &str) -> Result<Vec<String>> {
    let mut out = vec![];
    let mut cur: Option<String> = None;
    let mut it = rest.chars();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => out.extend(cur.take()),
            '\\' => cur.get_or_insert_with(String::new).push(it.next().unwrap_or('\\')),
            '"' | '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match it.next() {
                        None => return Err(bad(s, &format!("a closing {c} quote"))),
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => w.push(it.next().unwrap_or('\\')),
                        Some(x) => w.push(x),
                    }
                }
            }
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    Ok(out)
}

/// `K=V …`, or the legacy `K V…` (one pair, the value the rest of the line).
fn pairs(s: &str, rest: &str, form: &str) -> Result<Vec<(String, String)>> {
    let first = words(s, rest)?.into_iter().next().unwrap_or_default();
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).ok_or_else(|| bad(s, form))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words(s, rest)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(bad(s, form)),
        })
        .collect()
}

/// `80`, `53/udp`, `8000-8010/tcp` → `80/tcp`…; `None` when malformed.
fn port(w: &str) -> Option<String> {
    let (p, proto) = w.split_once('/').unwrap_or((w, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    let num = |x: &str| x.parse::<u16>().ok().filter(|n| *n > 0);
    match p.split_once('-') {
        None => Some(format!("{}/{proto}", num(p)?)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then(|| format!("{a}-{b}/{proto}"))
        }
    }
}

fn signal_ok(s: &str) -> bool {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    if let Some(off) = name.strip_prefix("SIGRTMIN+").or_else(|| name.strip_prefix("SIGRTMAX-")) {
        return off.parse::<u8>().is_ok_and(|n| n <= 30);
    }
    name == "SIGRTMIN" || name == "SIGRTMAX" || name.parse::<nix::sys::signal::Signal>().is_ok()
}

/// `base` joined with `p`, `.` and `..` resolved, always absolute.
fn workdir(base: &str, p: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    let joined = if p.starts_with('/') { p.to_string() } else { format!("{base}/{p}") };
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Applies `changes`, in order, to an image config document (its `config` object).
pub fn apply(doc: &mut Value, changes: &[Change]) -> Result<()> {
    let root = doc.as_object_mut().ok_or_else(|| Error::image("the image config is not a JSON object"))?;
    let c = root.entry("config").or_insert_with(|| json!({}));
    if !c.is_object() {
        *c = json!({});
    }
    let c = c.as_object_mut().expect("made an object above");
    let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    let mut cmd_set = false;
    for ch in changes {
        match ch {
            Change::Cmd(v) => {
                c.insert("Cmd".into(), strings(v));
                cmd_set = true;
            }
            Change::Entrypoint(v) => {
                c.insert("Entrypoint".into(), strings(v));
                if !cmd_set {
                    c.remove("Cmd");
                }
            }
            Change::Env(kv) => {
                let env = c.entry("Env").or_insert_with(|| json!([]));
                if !env.is_array() {
                    *env = json!([]);
                }
                let env = env.as_array_mut().expect("made an array above");
                for (k, v) in kv {
                    let entry = Value::String(format!("{k}={v}"));
                    let same = |e: &Value| e.as_str().is_some_and(|e| e.split_once('=').map_or(e, |x| x.0) == k);
                    match env.iter_mut().find(|e| same(e)) {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
            }
            Change::Label(kv) => {
                let m = object(c, "Labels");
                for (k, v) in kv {
                    m.insert(k.clone(), Value::String(v.clone()));
                }
            }
            Change::Expose(ports) => {
                let m = object(c, "ExposedPorts");
                for p in ports {
                    m.insert(p.clone(), json!({}));
                }
            }
            Change::Volume(paths) => {
                let m = object(c, "Volumes");
                for p in paths {
                    m.insert(p.clone(), json!({}));
                }
            }
            Change::User(u) => {
                c.insert("User".into(), Value::String(u.clone()));
            }
            Change::Workdir(w) => {
                let cur = c.get("WorkingDir").and_then(Value::as_str).unwrap_or("/").to_string();
                c.insert("WorkingDir".into(), Value::String(workdir(&cur, w)));
            }
            Change::StopSignal(s) => {
                c.insert("StopSignal".into(), Value::String(s.clone()));
            }
        }
    }
    Ok(())
}

fn object<'a>(c: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = c.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("made an object above")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Change {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn sv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }
    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn exec_and_shell_forms() {
        assert_eq!(p(r#"CMD ["echo", "a b"]"#), Change::Cmd(sv(&["echo", "a b"])));
        assert_eq!(p("cmd echo hi"), Change::Cmd(sv(&["/bin/sh", "-c", "echo hi"])));
        // Not a JSON array of strings: shell form, as docker falls back.
        assert_eq!(p("CMD [1, 2]"), Change::Cmd(sv(&["/bin/sh", "-c", "[1, 2]"])));
        assert_eq!(p(r#"ENTRYPOINT ["/bin/app"]"#), Change::Entrypoint(sv(&["/bin/app"])));
        assert_eq!(p("  Entrypoint   /bin/app -x "), Change::Entrypoint(sv(&["/bin/sh", "-c", "/bin/app -x"])));
        assert_eq!(p(r#"VOLUME ["/a", "/b c"]"#), Change::Volume(sv(&["/a", "/b c"])));
        assert_eq!(p("VOLUME /a /b"), Change::Volume(sv(&["/a", "/b"])));
    }

    #[test]
    fn env_and_label_pairs_with_quotes_and_the_legacy_form() {
        assert_eq!(
            p(r#"ENV A=1 B="two words" C='it''s' D=a\ b"#),
            Change::Env(kv(&[("A", "1"), ("B", "two words"), ("C", "its"), ("D", "a b")]))
        );
        assert_eq!(p("ENV PATH /usr/bin:/bin  x"), Change::Env(kv(&[("PATH", "/usr/bin:/bin  x")])));
        assert_eq!(p(r#"ENV Q="a \"q\" b""#), Change::Env(kv(&[("Q", r#"a "q" b"#)])));
        assert_eq!(p("ENV E="), Change::Env(kv(&[("E", "")])));
        assert_eq!(p(r#"LABEL org.x="y z" v=1"#), Change::Label(kv(&[("org.x", "y z"), ("v", "1")])));
    }

    #[test]
    fn ports_users_workdirs_and_signals() {
        assert_eq!(p("EXPOSE 80 53/udp 8000-8002/TCP"), Change::Expose(sv(&["80/tcp", "53/udp", "8000-8002/tcp"])));
        assert_eq!(p("USER 1000:1000"), Change::User("1000:1000".into()));
        assert_eq!(p("WORKDIR /srv/app"), Change::Workdir("/srv/app".into()));
        assert_eq!(p("STOPSIGNAL SIGINT"), Change::StopSignal("SIGINT".into()));
        assert_eq!(p("STOPSIGNAL 9"), Change::StopSignal("9".into()));
        assert_eq!(p("stopsignal SIGRTMIN+3"), Change::StopSignal("SIGRTMIN+3".into()));
        assert_eq!(workdir("/data", "x/../y/./z"), "/data/y/z");
        assert_eq!(workdir("/data", "/abs"), "/abs");
        assert_eq!(workdir("/", ".."), "/");
    }

    #[test]
    fn unknown_and_malformed_instructions_are_refused_with_the_valid_ones() {
        for s in ["FROM busybox", "RUN echo", "ONBUILD RUN x", "", "ENVX A=1", "HEALTHCHECK NONE"] {
            let e = parse(s).unwrap_err().to_string();
            assert!(e.contains(&format!("'{s}'")) && e.contains("CMD, ENTRYPOINT, ENV"), "{s}: {e}");
        }
        for (s, says) in [
            ("ENV", "ENV with an argument"),
            ("ENV A", "ENV KEY=VALUE"),
            ("ENV A=1 =2", "ENV KEY=VALUE"),
            ("LABEL a=\"open", "closing \" quote"),
            ("EXPOSE 0", "EXPOSE PORT"),
            ("EXPOSE 70000", "EXPOSE PORT"),
            ("EXPOSE 80/icmp", "EXPOSE PORT"),
            ("EXPOSE 90-80", "EXPOSE PORT"),
            ("USER a b", "exactly one"),
            ("STOPSIGNAL SIGNOPE", "STOPSIGNAL with a signal"),
            ("STOPSIGNAL 99", "STOPSIGNAL with a signal"),
            ("VOLUME [\"\"]", "non-empty"),
        ] {
            let e = parse(s).unwrap_err().to_string();
            assert!(e.contains(&format!("invalid --change '{s}'")) && e.contains(says), "{s}: {e}");
        }
    }

    #[test]
    fn apply_sets_replaces_and_clears_as_a_dockerfile_would() {
        let base = || {
            json!({"architecture": "amd64", "config": {
                "Env": ["PATH=/bin", "FOO=bar"], "Cmd": ["sh"], "WorkingDir": "/data", "Labels": {"a": "1"}
            }})
        };
        let mut d = base();
        let ch: Vec<Change> = [
            "ENV FOO=baz NEW=1",
            "LABEL b=2",
            "EXPOSE 80",
            "VOLUME /v",
            "USER fred",
            "WORKDIR sub",
            "STOPSIGNAL SIGINT",
            r#"ENTRYPOINT ["/bin/app"]"#,
        ]
        .iter()
        .map(|s| p(s))
        .collect();
        apply(&mut d, &ch).unwrap();
        let c = &d["config"];
        assert_eq!(c["Env"], json!(["PATH=/bin", "FOO=baz", "NEW=1"]));
        assert_eq!(c["Labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(c["Volumes"], json!({"/v": {}}));
        assert_eq!((c["User"].as_str(), c["WorkingDir"].as_str()), (Some("fred"), Some("/data/sub")));
        assert_eq!(c["StopSignal"], "SIGINT");
        assert_eq!(c["Entrypoint"], json!(["/bin/app"]));
        assert!(c.get("Cmd").is_none(), "an ENTRYPOINT clears the inherited Cmd: {c}");
        assert_eq!(d["architecture"], "amd64", "the rest of the document is kept");

        // A CMD before the ENTRYPOINT stays, as in a Dockerfile.
        let mut d = base();
        apply(&mut d, &[p("CMD [\"-v\"]"), p("ENTRYPOINT [\"/bin/app\"]")]).unwrap();
        assert_eq!(
            (d["config"]["Cmd"].clone(), d["config"]["Entrypoint"].clone()),
            (json!(["-v"]), json!(["/bin/app"]))
        );

        // A config without a "config" object gets one.
        let mut d = json!({"rootfs": {}});
        apply(&mut d, &[p("WORKDIR rel")]).unwrap();
        assert_eq!(d["config"]["WorkingDir"], "/rel");
    }
}
