//! `commit --change`: Dockerfile instructions applied to the new image's config, as `docker
//! commit --change` applies them: `CMD`/`ENTRYPOINT` in JSON-array (exec) or shell form (which
//! becomes `/bin/sh -c …`), `ENV`/`LABEL` as `KEY=VALUE …` (quotes and backslashes as a
//! Dockerfile reads them) or the legacy `KEY VALUE`, `EXPOSE PORT[/PROTO] …` (ranges too),
//! `VOLUME` as a JSON array or words, `USER`, `WORKDIR` (relative to the current one) and
//! `STOPSIGNAL`. Instructions are case-insensitive. As in a Dockerfile, an `ENTRYPOINT` clears the
//! inherited `Cmd` unless a `CMD` came before it. `$VAR`, `${VAR}`, `${VAR:-default}` and
//! `${VAR:+alt}` expand, as docker expands them, in every instruction but `CMD`, `ENTRYPOINT` and
//! JSON arrays, against the image's Env as the changes before have left it (`ENV PATH=$PATH:/x`);
//! not inside single quotes, nor after a backslash.
//!
//! Every change is parsed before anything is read or written, and applied once to the base config
//! before the layer is written: a bad one refuses the commit whole.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// What `--change` accepts, for error messages.
pub const VALID: &str = "one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR \
     with its argument in Dockerfile syntax, e.g. 'ENV KEY=VALUE' or 'CMD [\"sh\", \"-c\", \"echo hi\"]'";

/// One `--change`, its syntax checked; resolved against the config when applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change(String);

/// A change resolved: its words split and its variables expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
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

/// A variable's value (`None`: unset).
type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

fn bad(s: &str, expected: &str) -> Error {
    Error::Invalid { what: "--change", value: s.to_string(), expected: expected.to_string() }
}

/// Parses one `--change` value. Its variables are given a placeholder value here (the real ones
/// are known only against a config).
pub fn parse(s: &str) -> Result<Change> {
    resolve(s, &|_| Some("1".into()))?;
    Ok(Change(s.to_string()))
}

/// Parses `s`, expanding its variables through `vars`.
pub fn resolve(s: &str, vars: Vars) -> Result<Op> {
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
        "CMD" => Op::Cmd(command(rest)),
        "ENTRYPOINT" => Op::Entrypoint(command(rest)),
        "ENV" => Op::Env(pairs(s, rest, vars, "ENV KEY=VALUE … or ENV KEY VALUE")?),
        "LABEL" => Op::Label(pairs(s, rest, vars, "LABEL KEY=VALUE … or LABEL KEY VALUE")?),
        "EXPOSE" => Op::Expose(
            words(s, rest, vars)?.iter().map(|w| port(w).ok_or_else(|| bad(s, EXPOSE))).collect::<Result<_>>()?,
        ),
        "VOLUME" => {
            let v = json_array(rest).map_or_else(|| words(s, rest, vars), Ok)?;
            if v.iter().any(|p| p.is_empty()) {
                return Err(bad(s, "VOLUME with non-empty paths"));
            }
            Op::Volume(v)
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" => {
            let w = words(s, rest, vars)?;
            let [one] = w.as_slice() else {
                return Err(bad(s, &format!("{kw} with exactly one argument")));
            };
            match kw.as_str() {
                "USER" => Op::User(one.clone()),
                "WORKDIR" => Op::Workdir(one.clone()),
                _ if signal_ok(one) => Op::StopSignal(one.clone()),
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
/// outside quotes work as in a Dockerfile; variables expand outside single quotes.
fn words(s: &str, rest: &str, vars: Vars) -> Result<Vec<String>> {
    process(s, rest, vars, true)
}

/// [`words`]' rules over the whole of `text`, whitespace kept (`split` false) or splitting.
fn process(s: &str, text: &str, vars: Vars, split: bool) -> Result<Vec<String>> {
    let mut out = vec![];
    let mut cur: Option<String> = None;
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if split && c.is_whitespace() => out.extend(cur.take()),
            '\\' => cur.get_or_insert_with(String::new).push(it.next().unwrap_or('\\')),
            '$' => {
                let w = cur.get_or_insert_with(String::new);
                w.push_str(&expand(s, &mut it, vars)?);
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match it.next() {
                        None => return Err(bad(s, "a closing ' quote")),
                        Some('\'') => break,
                        Some(x) => w.push(x),
                    }
                }
            }
            '"' => {
                cur.get_or_insert_with(String::new);
                loop {
                    match it.next() {
                        None => return Err(bad(s, "a closing \" quote")),
                        Some('"') => break,
                        Some('\\') => {
                            let x = it.next().unwrap_or('\\');
                            cur.as_mut().expect("started above").push(x);
                        }
                        Some('$') => {
                            let v = expand(s, &mut it, vars)?;
                            cur.as_mut().expect("started above").push_str(&v);
                        }
                        Some(x) => cur.as_mut().expect("started above").push(x),
                    }
                }
            }
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    Ok(out)
}

/// After a `$`: `NAME`, `{NAME}`, `{NAME:-default}`, `{NAME:+alt}`; a lone `$` stays.
fn expand(s: &str, it: &mut std::iter::Peekable<std::str::Chars>, vars: Vars) -> Result<String> {
    let name_char = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    if it.peek() == Some(&'{') {
        it.next();
        let mut inner = String::new();
        loop {
            match it.next() {
                None => return Err(bad(s, "a closing } after ${")),
                Some('}') => break,
                Some(c) => inner.push(c),
            }
        }
        let (name, op) = match inner.find(":-").or_else(|| inner.find(":+")) {
            Some(i) => (&inner[..i], Some((&inner[i..i + 2], &inner[i + 2..]))),
            None => (inner.as_str(), None),
        };
        if name.is_empty() || !name.chars().all(|c| name_char(&c)) {
            return Err(bad(s, "${NAME}, ${NAME:-DEFAULT} or ${NAME:+ALT} with NAME letters, digits and _"));
        }
        let v = vars(name).filter(|v| !v.is_empty());
        return Ok(match op {
            None => v.unwrap_or_default(),
            Some((":-", d)) => v.unwrap_or_else(|| d.to_string()),
            Some((_, alt)) => v.map(|_| alt.to_string()).unwrap_or_default(),
        });
    }
    let mut name = String::new();
    while let Some(c) = it.next_if(name_char) {
        name.push(c);
    }
    Ok(if name.is_empty() { "$".into() } else { vars(&name).unwrap_or_default() })
}

/// `K=V …`, or the legacy `K V…` (one pair, the value the rest of the line).
fn pairs(s: &str, rest: &str, vars: Vars, form: &str) -> Result<Vec<(String, String)>> {
    let first = words(s, rest, vars)?.into_iter().next().unwrap_or_default();
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).ok_or_else(|| bad(s, form))?;
        let v = process(s, v.trim(), vars, false)?.concat();
        return Ok(vec![(k.to_string(), v)]);
    }
    words(s, rest, vars)?
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

/// Applies `changes` to a copy of config document `base`: what would fail against it (a variable
/// that expands to a bad port) fails before a commit writes anything.
pub fn check(base: &[u8], changes: &[Change]) -> Result<()> {
    let mut doc: Value =
        serde_json::from_slice(base).map_err(|e| Error::image(format!("the base image's config: {e}")))?;
    apply(&mut doc, changes)
}

/// Applies `changes`, in order, to an image config document (its `config` object), each one's
/// variables expanded against the Env the changes before it left.
pub fn apply(doc: &mut Value, changes: &[Change]) -> Result<()> {
    let root = doc.as_object_mut().ok_or_else(|| Error::image("the image config is not a JSON object"))?;
    let c = root.entry("config").or_insert_with(|| json!({}));
    if !c.is_object() {
        *c = json!({});
    }
    let c = c.as_object_mut().expect("made an object above");
    let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    let mut cmd_set = false;
    for Change(text) in changes {
        let env: Vec<String> = c
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let vars = |name: &str| {
            env.iter().rev().find_map(|e| e.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
        };
        match &resolve(text, &vars)? {
            Op::Cmd(v) => {
                c.insert("Cmd".into(), strings(v));
                cmd_set = true;
            }
            Op::Entrypoint(v) => {
                c.insert("Entrypoint".into(), strings(v));
                if !cmd_set {
                    c.remove("Cmd");
                }
            }
            Op::Env(kv) => {
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
            Op::Label(kv) => {
                let m = object(c, "Labels");
                for (k, v) in kv {
                    m.insert(k.clone(), Value::String(v.clone()));
                }
            }
            Op::Expose(ports) => {
                let m = object(c, "ExposedPorts");
                for p in ports {
                    m.insert(p.clone(), json!({}));
                }
            }
            Op::Volume(paths) => {
                let m = object(c, "Volumes");
                for p in paths {
                    m.insert(p.clone(), json!({}));
                }
            }
            Op::User(u) => {
                c.insert("User".into(), Value::String(u.clone()));
            }
            Op::Workdir(w) => {
                let cur = c.get("WorkingDir").and_then(Value::as_str).unwrap_or("/").to_string();
                c.insert("WorkingDir".into(), Value::String(workdir(&cur, w)));
            }
            Op::StopSignal(s) => {
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

    /// Parsed (checked), then resolved with no variables set.
    fn p(s: &str) -> Op {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        resolve(s, &|_| None).unwrap()
    }
    fn change(s: &str) -> Change {
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
        assert_eq!(p(r#"CMD ["echo", "a b"]"#), Op::Cmd(sv(&["echo", "a b"])));
        assert_eq!(p("cmd echo hi"), Op::Cmd(sv(&["/bin/sh", "-c", "echo hi"])));
        // Not a JSON array of strings: shell form, as docker falls back.
        assert_eq!(p("CMD [1, 2]"), Op::Cmd(sv(&["/bin/sh", "-c", "[1, 2]"])));
        assert_eq!(p(r#"ENTRYPOINT ["/bin/app"]"#), Op::Entrypoint(sv(&["/bin/app"])));
        assert_eq!(p("  Entrypoint   /bin/app -x "), Op::Entrypoint(sv(&["/bin/sh", "-c", "/bin/app -x"])));
        assert_eq!(p(r#"VOLUME ["/a", "/b c"]"#), Op::Volume(sv(&["/a", "/b c"])));
        assert_eq!(p("VOLUME /a /b"), Op::Volume(sv(&["/a", "/b"])));
    }

    #[test]
    fn env_and_label_pairs_with_quotes_and_the_legacy_form() {
        assert_eq!(
            p(r#"ENV A=1 B="two words" C='it''s' D=a\ b"#),
            Op::Env(kv(&[("A", "1"), ("B", "two words"), ("C", "its"), ("D", "a b")]))
        );
        assert_eq!(p("ENV PATH /usr/bin:/bin  x"), Op::Env(kv(&[("PATH", "/usr/bin:/bin  x")])));
        assert_eq!(p(r#"ENV Q="a \"q\" b""#), Op::Env(kv(&[("Q", r#"a "q" b"#)])));
        assert_eq!(p("ENV E="), Op::Env(kv(&[("E", "")])));
        assert_eq!(p(r#"LABEL org.x="y z" v=1"#), Op::Label(kv(&[("org.x", "y z"), ("v", "1")])));
    }

    #[test]
    fn variables_expand_against_the_env_the_changes_before_left() {
        let mut d = json!({"config": {"Env": ["PATH=/bin", "HOME=/root"], "Cmd": ["sh"]}});
        let ch: Vec<Change> = [
            "ENV PATH=$PATH:/opt/bin OLD=${PATH}",
            "ENV DIR=${UNSET:-/srv} ALT=${HOME:+set} NONE=${UNSET:+x}",
            "WORKDIR $DIR/app",
            "LABEL home=\"$HOME\" raw='$HOME' esc=\\$HOME lone=a$",
            "ENV legacy $HOME and more",
            "CMD echo $HOME",
        ]
        .iter()
        .map(|s| change(s))
        .collect();
        apply(&mut d, &ch).unwrap();
        let cf = &d["config"];
        assert_eq!(
            cf["Env"],
            json!([
                "PATH=/bin:/opt/bin",
                "HOME=/root",
                "OLD=/bin",
                "DIR=/srv",
                "ALT=set",
                "NONE=",
                "legacy=/root and more"
            ]),
            "an instruction's pairs all see the Env before it"
        );
        assert_eq!(cf["WorkingDir"], "/srv/app");
        assert_eq!(cf["Labels"], json!({"home": "/root", "raw": "$HOME", "esc": "$HOME", "lone": "a$"}));
        assert_eq!(cf["Cmd"], json!(["/bin/sh", "-c", "echo $HOME"]), "the shell expands CMD at run time");
        for bad in ["ENV A=${B", "ENV A=${}", "ENV A=${B C}"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("}"), "{bad}: {e}");
        }
        // Known only against the config: a variable that makes a bad port fails in check().
        let e = check(br#"{"config": {"Env": ["P=http"]}}"#, &[change("EXPOSE $P")]).unwrap_err().to_string();
        assert!(e.contains("'EXPOSE $P'") && e.contains("EXPOSE PORT"), "{e}");
    }

    #[test]
    fn ports_users_workdirs_and_signals() {
        assert_eq!(p("EXPOSE 80 53/udp 8000-8002/TCP"), Op::Expose(sv(&["80/tcp", "53/udp", "8000-8002/tcp"])));
        assert_eq!(p("USER 1000:1000"), Op::User("1000:1000".into()));
        assert_eq!(p("WORKDIR /srv/app"), Op::Workdir("/srv/app".into()));
        assert_eq!(p("STOPSIGNAL SIGINT"), Op::StopSignal("SIGINT".into()));
        assert_eq!(p("STOPSIGNAL 9"), Op::StopSignal("9".into()));
        assert_eq!(p("stopsignal SIGRTMIN+3"), Op::StopSignal("SIGRTMIN+3".into()));
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
        .map(|s| change(s))
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
        apply(&mut d, &[change("CMD [\"-v\"]"), change("ENTRYPOINT [\"/bin/app\"]")]).unwrap();
        assert_eq!(
            (d["config"]["Cmd"].clone(), d["config"]["Entrypoint"].clone()),
            (json!(["-v"]), json!(["/bin/app"]))
        );

        // A config without a "config" object gets one.
        let mut d = json!({"rootfs": {}});
        apply(&mut d, &[change("WORKDIR rel")]).unwrap();
        assert_eq!(d["config"]["WorkingDir"], "/rel");
    }
}
