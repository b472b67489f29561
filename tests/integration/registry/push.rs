//! `push`, `login`/`logout`, `save`/`load` against the real docker-registry on 127.0.0.1 (basic
//! auth through htpasswd), the fake registry (bearer tokens with push scope), and what podman,
//! skopeo and umoci make of what sandbox writes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use sandbox::image::Store;

use super::fake::{bind, serve, Resp};
use super::{assert_no_staging, pull, sandbox_cmd, with_test_image, Out, Registry};
use crate::harness::*;
use crate::oci::{self, Built};
use crate::require_root;

/// `sandbox --root ROOT SUB ARGS…` with `stdin` piped in, the environment as [`sandbox_cmd`] sets it.
fn with_stdin(root: &Path, sub: &str, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Out {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(bin());
    c.arg("--root").arg(root).arg(sub).args(args);
    for v in ["SANDBOX_AUTH_FILE", "XDG_RUNTIME_DIR", "SANDBOX_INSECURE_REGISTRIES", "SANDBOX_ROOT"] {
        c.env_remove(v);
    }
    c.env("HOME", home.path()).envs(env.iter().copied());
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut i = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let t = std::thread::spawn(move || {
        let _ = i.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    t.join().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tool(bin: &str) -> bool {
    let ok = Command::new("sh").args(["-c", &format!("command -v {bin}")]).stdout(Stdio::null()).status().unwrap();
    if !ok.success() {
        eprintln!("SKIPPED part: {bin} is not installed (tests/deps.sh installs it)");
    }
    ok.success()
}

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// podman with a store of its own under `dir` (vfs, no systemd): nothing of the host's is used.
fn podman(dir: &Path) -> Command {
    let mut c = isolated_tool("podman");
    c.arg("--root").arg(dir.join("root")).arg("--runroot").arg(dir.join("run"));
    c.args(["--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs"]);
    // Its network config and temporary state too (it made /etc/containers/networks and /run/libpod).
    c.arg("--network-config-dir").arg(dir.join("net")).arg("--tmpdir").arg(dir.join("tmp"));
    c.env("HOME", dir).env("XDG_RUNTIME_DIR", dir).env("XDG_CONFIG_HOME", dir);
    c
}

/// skopeo's copy of `src` as an OCI layout, unpacked by umoci; the test image's files are there.
fn umoci_reads(src: &str, creds: Option<&str>, img: &Built) {
    if !tool("umoci") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let layout = d.path().join("oci");
    let mut c = isolated_tool("skopeo");
    c.args(["--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false"]);
    if let Some(cr) = creds {
        c.args(["--src-creds", cr]);
    }
    run(c.arg(src).arg(format!("oci:{}:x", layout.display())).env("HOME", d.path()));
    let idx = std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(idx.contains(&img.manifest_digest()), "skopeo kept the manifest digest: {idx}");
    let bundle = d.path().join("bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:x", layout.display())).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("data/keep")).unwrap(), "kept\n");
    assert_eq!(std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(), "layer three\n");
    assert!(!rootfs.join("data/gone").exists(), "the whiteout applied");
}

/// The test image with every layer gzip-compressed: umoci 0.4 reads no zstd layers.
fn gzip_only(img: &Built) -> Built {
    let layers = img
        .layers
        .iter()
        .map(|l| {
            let tar = match l.media_type {
                m if m.ends_with("+zstd") => zstd::decode_all(&l.blob[..]).unwrap(),
                m if m.ends_with("+gzip") => {
                    let mut t = vec![];
                    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&l.blob[..]), &mut t).unwrap();
                    t
                }
                _ => l.blob.clone(),
            };
            oci::Layer::new(tar, oci::Comp::Gzip)
        })
        .collect();
    let config: serde_json::Value = serde_json::from_slice(&img.config).unwrap();
    Built::new(layers, config["config"].clone())
}

#[test]
fn push_with_basic_auth_login_mounts_across_repositories_and_skopeo_reads_it() {
    require_root!();
    let _m = shared();
    let Some((reg, img)) = with_test_image(Some(("alice", "s3cret"))) else { return };
    let root = tempfile::tempdir().unwrap();
    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("containers/auth.json");
    let env = [("SANDBOX_AUTH_FILE", auth_file.to_str().unwrap())];
    let h = reg.host();

    // A wrong password is refused by the registry and nothing is written.
    let r = with_stdin(root.path(), "login", &["-u", "alice", "--password-stdin", &h], &env, b"wrong\n");
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("refused the credentials of user 'alice'"), "{}", r.stderr);
    assert!(!auth_file.exists(), "a failed login wrote the auth file");
    let r = with_stdin(root.path(), "login", &["-u", "alice", "--password-stdin", &h], &env, b"s3cret\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Login Succeeded"), "{}", r.stdout);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777, 0o600);
    // skopeo (and podman) read the file sandbox wrote.
    run(isolated_tool("skopeo")
        .args(["inspect", "--tls-verify=false", "--authfile"])
        .arg(&auth_file)
        .arg(format!("docker://{h}/test/busybox:1")));

    // Pull (the credentials from the file), then push under another repository: every blob is
    // mounted from test/busybox, none uploaded.
    let src = format!("{h}/test/busybox:1");
    let r = pull(root.path(), &["-q", &src], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dest = format!("{h}/test/pushed:2");
    let r = sandbox_cmd(root.path(), "push", &[&src, &dest], &env);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, reg.log());
    assert!(r.stdout.contains(&format!("pushed {dest} ({}: 0 uploaded", img.manifest_digest())), "{}", r.stdout);
    assert!(r.stdout.contains("4 mounted"), "config and 3 layers mounted: {}", r.stdout);
    assert!(r.stderr.contains("mounted from test/busybox"), "{}", r.stderr);
    assert!(reg.log().contains("mount=sha256"), "{}", reg.log());
    // Again: every blob is already there.
    let r = sandbox_cmd(root.path(), "push", &["-q", &src, &dest], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0 uploaded (0 B), 4 already present, 0 mounted"), "{}", r.stdout);
    let inspect = run(isolated_tool("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds", "alice:s3cret"])
        .arg(format!("docker://{dest}"))
        .env("HOME", auth_dir.path()));
    assert_eq!(inspect.as_bytes(), &img.manifest[..], "the manifest went up byte for byte");
    // (umoci 0.4 reads no zstd layer, which this image has: it reads what the next test pushes.)

    // Logout: the entry goes, and push is refused without it, naming what to do.
    let r = sandbox_cmd(root.path(), "logout", &[&h], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!std::fs::read_to_string(&auth_file).unwrap().contains(&h));
    let r = sandbox_cmd(root.path(), "push", &[&src, &format!("{h}/test/third:1")], &env);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("requires authentication") && r.stderr.contains("log in"), "{}", r.stderr);
    let r = sandbox_cmd(root.path(), "push", &["--creds", "alice:wrong", &src, &format!("{h}/test/third:1")], &env);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("refused the credentials of user 'alice'"), "{}", r.stderr);
    assert_no_staging(root.path());
}

#[test]
fn push_chunked_and_monolithic_uploads_are_pulled_by_podman_and_unpacked_by_umoci() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let img = gzip_only(&img);
    let Some(b) = Registry::start(None) else { return };
    let root = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), "1");
    let src = "local/gz:1";
    let r = sandbox_cmd(root.path(), "image", &["import", "--name", src, layout.path().to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Nothing to mount from (no image of the store comes from that registry); every blob in
    // 4 KiB chunks.
    let chunked = format!("{}/c/chunked:1", b.host());
    let r = sandbox_cmd(root.path(), "push", &["--chunked", "--chunk-size", "4k", src, &chunked], &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, b.log());
    assert!(r.stdout.contains("4 uploaded"), "{}", r.stdout);
    let patches = b.log().matches("\"PATCH /v2/c/chunked/blobs/uploads/").count();
    let biggest = img.layers.iter().map(|l| l.blob.len()).max().unwrap();
    assert!(patches > biggest / 4096, "{patches} PATCH requests for a {biggest}-byte layer:\n{}", b.log());
    // Monolithic: one PUT with the body per blob, no PATCH.
    let mono = format!("{}/m/mono:1", b.host());
    let r = sandbox_cmd(root.path(), "push", &[src, &mono], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(b.log().matches("\"PATCH /v2/m/mono/").count(), 0, "{}", b.log());
    for dest in [&chunked, &mono] {
        umoci_reads(&format!("docker://{dest}"), None, &img);
        if !tool("podman") {
            continue;
        }
        let d = tempfile::tempdir().unwrap();
        let out = podman(d.path()).args(["pull", "--tls-verify=false", dest]).output().unwrap();
        if !out.status.success() {
            panic!("podman pull {dest}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let id = run(podman(d.path()).args(["image", "inspect", "--format", "{{.Id}} {{.Digest}}", dest]));
        assert!(id.contains(&img.config_digest()[7..]) && id.contains(&img.manifest_digest()), "{id}");
    }
}

#[test]
fn push_with_bearer_token_asks_for_push_scope_and_sends_the_manifest_with_its_type() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let root = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), "1");
    let r =
        sandbox_cmd(root.path(), "image", &["import", "--name", "fake/src:1", layout.path().to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (l, port) = bind();
    let blobs: Arc<Mutex<Vec<String>>> = Arc::default();
    let b2 = blobs.clone();
    let fake = serve(l, move |r| {
        if r.path == "/token" {
            let q = r.query.replace("%3A", ":").replace("%2C", ",").replace("%2F", "/");
            // A login asks for no scope; a push for pull,push on its repository.
            let scope_ok = !q.contains("scope=") || q.contains("scope=repository:team/app:pull,push");
            let ok = r.auth.as_deref() == Some("Basic Ym9iOnB3") && scope_ok;
            return if ok { Resp::new(200, r#"{"token":"pu5h"}"#) } else { Resp::new(401, r.query.clone()) };
        }
        if r.auth.as_deref() != Some("Bearer pu5h") {
            let c = format!(
                r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:team/app:pull,push""#
            );
            return Resp::new(401, "{}").header("WWW-Authenticate", &c);
        }
        let p = r.path.as_str();
        match r.method.as_str() {
            "GET" if p == "/v2/" => Resp::new(200, "{}"),
            "HEAD" => Resp::new(404, ""),
            "POST" if p == "/v2/team/app/blobs/uploads/" => Resp::new(202, "").header("Location", "/upload/1?_state=s"),
            "PUT" if p == "/upload/1" => {
                let d = r.query.split("digest=").nth(1).unwrap_or("").replace("%3A", ":");
                if oci::sha(&r.body) != d {
                    return Resp::new(400, "DIGEST_INVALID");
                }
                b2.lock().unwrap().push(d.clone());
                Resp::new(201, "").header("Docker-Content-Digest", &d)
            }
            "PUT" if p == "/v2/team/app/manifests/v9" => {
                let ct = r.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str());
                if ct != Some("application/vnd.oci.image.manifest.v1+json") {
                    return Resp::new(400, "MANIFEST_INVALID");
                }
                Resp::new(201, "").header("Docker-Content-Digest", &oci::sha(&r.body))
            }
            _ => Resp::new(404, "{}"),
        }
    });
    let dest = format!("127.0.0.1:{port}/team/app:v9");
    let r = sandbox_cmd(root.path(), "push", &["--creds", "bob:pw", "fake/src:1", &dest], &[]);
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(
        r.code,
        0,
        "{}\n{:#?}",
        r.stderr,
        seen.iter().map(|q| (&q.method, &q.path, &q.query)).collect::<Vec<_>>()
    );
    assert!(r.stdout.contains("4 uploaded"), "{}", r.stdout);
    // login through the token server: a wrong password is refused, the right one saved.
    let auth = tempfile::tempdir().unwrap();
    let auth_file = auth.path().join("auth.json");
    let env = [("SANDBOX_AUTH_FILE", auth_file.to_str().unwrap())];
    let h = format!("127.0.0.1:{port}");
    let r = with_stdin(root.path(), "login", &["-u", "bob", "--password-stdin", &h], &env, b"nope\n");
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("refused the credentials of user 'bob'"), "{}", r.stderr);
    assert!(!auth_file.exists());
    let r = with_stdin(root.path(), "login", &["-u", "bob", "--password-stdin", &h], &env, b"pw\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(&auth_file).unwrap().contains(&h));
    let mut got = blobs.lock().unwrap().clone();
    got.sort();
    let mut want: Vec<String> = img.layers.iter().map(|l| l.digest.clone()).chain([img.config_digest()]).collect();
    want.sort();
    assert_eq!(got, want);
    let tokens = seen.iter().filter(|q| q.path == "/token").count();
    assert!(tokens <= 3, "a token per racing thread at most, not per request: {tokens}");
    let m = seen.iter().find(|q| q.method == "PUT" && q.path.ends_with("/manifests/v9")).unwrap();
    assert_eq!(m.body, img.manifest, "the manifest as stored");
}

#[test]
fn save_is_loaded_by_podman_skopeo_and_load_from_a_file_and_stdin() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let root = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), "1");
    let r =
        sandbox_cmd(root.path(), "image", &["import", "--name", "saved/img:3", layout.path().to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("img.tar");
    let r = sandbox_cmd(root.path(), "save", &["-o", tar.to_str().unwrap(), "saved/img:3"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 1, "no temporary file beside the output: {names:?}");

    // The docker-archive layout: manifest.json, repositories, the config, layer.tar per diff_id.
    let mut a = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let entries: Vec<String> = a.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    for want in ["manifest.json".to_string(), "repositories".into(), format!("{}.json", &img.config_digest()[7..])] {
        assert!(entries.contains(&want), "{want} in {entries:?}");
    }
    for l in &img.layers {
        assert!(entries.contains(&format!("{}/layer.tar", &l.diff_id[7..])), "{entries:?}");
    }

    let inspect =
        run(isolated_tool("skopeo").args(["inspect", "--config"]).arg(format!("docker-archive:{}", tar.display())));
    assert!(inspect.contains("FOO=bar"), "{inspect}");
    if tool("podman") {
        let d = tempfile::tempdir().unwrap();
        let o = run(podman(d.path()).arg("load").arg("-i").arg(&tar));
        assert!(o.contains("saved/img:3"), "{o}");
        // The name as podman stored it ("docker.io/saved/img:3"): a short name is resolved
        // through registries.conf, which differs between hosts (the VM lanes' podman missed it).
        let loaded = o.lines().find_map(|l| l.trim().strip_prefix("Loaded image:")).map(str::trim);
        let loaded = loaded.unwrap_or("saved/img:3");
        let id = run(podman(d.path()).args(["image", "inspect", "--format", "{{.Id}}", loaded]));
        assert_eq!(id.trim(), &img.config_digest()[7..], "podman sees the same image id");
    }

    // Back into sandbox: from the file, then from stdin; the same image id.
    let fresh = tempfile::tempdir().unwrap();
    let r = sandbox_cmd(fresh.path(), "load", &["-i", tar.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Loaded image: docker.io/saved/img:3"), "{}", r.stdout);
    let s = Store::open(fresh.path()).unwrap();
    assert_eq!(s.find("saved/img:3").unwrap().config_digest(), img.config_digest());
    let fresh = tempfile::tempdir().unwrap();
    let r = with_stdin(fresh.path(), "load", &[], &[], &std::fs::read(&tar).unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(Store::open(fresh.path()).unwrap().find("saved/img:3").unwrap().config_digest(), img.config_digest());
    assert_no_staging(fresh.path());
    // `save -` to a pipe, and an OCI archive (`image export -`) loaded from stdin.
    let r = sandbox_cmd(root.path(), "save", &["-o", "-", "saved/img:3"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fresh = tempfile::tempdir().unwrap();
    let oci_tar = out.path().join("oci.tar");
    let r = sandbox_cmd(root.path(), "image", &["export", "saved/img:3", oci_tar.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = with_stdin(fresh.path(), "load", &["-i", "-"], &[], &std::fs::read(&oci_tar).unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_no_staging(fresh.path());
}

#[test]
fn bad_push_login_save_load_input_exits_125_and_leaves_nothing() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let env = [("SANDBOX_AUTH_FILE", auth.to_str().unwrap())];
    let port = super::free_port().to_string();
    let nowhere = format!("127.0.0.1:{port}");
    // push and save only read the store: a mistyped --root is not created.
    let missing = dir.path().join("no-store");
    let no_tar = dir.path().join("missing.tar");
    let no_tar = no_tar.to_str().unwrap();
    for (sub, args) in [("push", &["x:1"][..]), ("save", &["-o", "-", "x:1"][..]), ("load", &["-i", no_tar][..])] {
        let r = sandbox_cmd(&missing, sub, args, &env);
        assert_eq!(r.code, 125, "{sub}: {}", r.stderr);
        assert!(r.stderr.contains("no image store") || r.stderr.contains("missing.tar"), "{sub}: {}", r.stderr);
        assert!(!missing.exists(), "{sub} left a store at a mistyped --root");
    }
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("push", vec!["no/such:1".into()], "no image 'no/such:1'"),
        ("push", vec!["no/such:1".into(), "Bad Dest".into()], "invalid image reference 'Bad Dest'"),
        ("push", vec!["--chunk-size".into(), "0".into(), "x".into()], "invalid --chunk-size '0'"),
        (
            "login",
            vec!["-u".into(), "a".into(), "http://reg/x".into(), "-p".into(), "b".into()],
            "invalid registry 'http://reg/x'",
        ),
        ("login", vec!["-u".into(), "a".into(), nowhere.clone()], "--password-stdin"),
        ("login", vec!["-u".into(), "a".into(), "-p".into(), "b".into(), nowhere.clone()], "cannot reach registry"),
        ("logout", vec!["bad registry".into()], "invalid registry"),
        (
            "save",
            vec!["-o".into(), dir.path().join("no/dir/x.tar").to_str().unwrap().into(), "no/such".into()],
            "no image 'no/such'",
        ),
        ("load", vec!["-i".into(), dir.path().join("missing.tar").to_str().unwrap().into()], "missing.tar"),
    ];
    for (sub, args, want) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sandbox_cmd(root.path(), sub, &a, &env);
        assert_eq!(r.code, 125, "{sub} {args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{sub} {args:?}: wanted '{want}' in: {}", r.stderr);
        super::assert_untouched(root.path());
        assert!(!auth.exists(), "{sub} {args:?} wrote the auth file");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "{sub} {args:?} left {left:?}");
    }
}

/// `sandbox --root ROOT ARGS…` started, stdout to a pipe, stderr piped.
fn spawn(root: &Path, args: &[&str]) -> std::process::Child {
    let mut c = Command::new(bin());
    c.arg("--root").arg(root).args(args);
    for v in ["SANDBOX_AUTH_FILE", "XDG_RUNTIME_DIR", "SANDBOX_INSECURE_REGISTRIES", "SANDBOX_ROOT"] {
        c.env_remove(v);
    }
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Sends `sig` and waits (at most 10 s) for the end: exit code and stderr.
fn interrupt(mut child: std::process::Child, sig: i32) -> (i32, String) {
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("not stopped 10 s after the signal");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn sigint_stops_a_push_hung_on_the_registry_and_sigterm_a_save_leaving_no_output() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let root = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), "1");
    let r = sandbox_cmd(root.path(), "image", &["import", "--name", "int/img:1", layout.path().to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The registry takes the upload, then never answers it.
    let (l, port) = bind();
    let fake = serve(l, |r| match r.method.as_str() {
        "HEAD" => Resp::new(404, ""),
        "POST" => Resp::new(202, "").header("Location", "/upload/1"),
        _ => Resp::new(201, "").hang(std::time::Duration::from_secs(60)),
    });
    let child = spawn(root.path(), &["push", "int/img:1", &format!("127.0.0.1:{port}/int/img:1")]);
    let hung = eventually(20.0, || fake.seen.lock().unwrap().iter().any(|q| q.method == "PUT"));
    assert!(hung, "no upload reached the registry");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, err) = interrupt(child, libc::SIGINT);
    assert_eq!(code, 130, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("sandbox:")).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].contains("interrupted") && lines[0].contains("push of int/img:1"), "{err}");
    assert_no_staging(root.path());

    // A save waiting for the store (held here, as a prune would) holds its partial output: a
    // SIGTERM removes it.
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("s.tar");
    let store = Store::open(root.path()).unwrap();
    let held = store.lock_exclusive().unwrap();
    let child = spawn(root.path(), &["save", "-o", tar.to_str().unwrap(), "int/img:1"]);
    let partial = eventually(20.0, || std::fs::read_dir(out.path()).unwrap().count() > 0);
    assert!(partial, "no partial output appeared");
    let (code, err) = interrupt(child, libc::SIGTERM);
    drop(held);
    assert_eq!(code, 143, "{err}");
    assert!(err.contains("save of int/img:1"), "{err}");
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "partial output left: {left:?}");
}

#[test]
fn push_tries_an_upload_again_after_503_429_and_502_as_pull_does() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let root = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), "1");
    let r =
        sandbox_cmd(root.path(), "image", &["import", "--name", "fake/src:1", layout.path().to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (l, port) = bind();
    let stored: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s2, n) = (stored.clone(), Arc::new(Mutex::new((0, 0, 0))));
    let fake = serve(l, move |r| {
        let p = r.path.as_str();
        let mut n = n.lock().unwrap();
        match r.method.as_str() {
            "HEAD" => Resp::new(404, ""),
            // The first upload is refused for a moment (429 with Retry-After), as a busy registry does.
            "POST" if p == "/v2/team/app/blobs/uploads/" => {
                n.0 += 1;
                if n.0 == 1 {
                    return Resp::new(429, "TOOMANYREQUESTS").header("Retry-After", "1");
                }
                Resp::new(202, "").header("Location", &format!("/upload/{}", n.0))
            }
            "PUT" if p.starts_with("/upload/") => {
                n.1 += 1;
                // The first blob's body is lost behind a 503 from a proxy: the upload starts again.
                if n.1 == 1 {
                    return Resp::new(503, "upstream went away");
                }
                let d = r.query.split("digest=").nth(1).unwrap_or("").replace("%3A", ":");
                if oci::sha(&r.body) != d {
                    return Resp::new(400, "DIGEST_INVALID");
                }
                s2.lock().unwrap().push(d.clone());
                Resp::new(201, "").header("Docker-Content-Digest", &d)
            }
            "PUT" if p == "/v2/team/app/manifests/v1" => {
                n.2 += 1;
                if n.2 == 1 {
                    return Resp::new(502, "bad gateway");
                }
                Resp::new(201, "").header("Docker-Content-Digest", &oci::sha(&r.body))
            }
            _ => Resp::new(404, "{}"),
        }
    });
    let dest = format!("127.0.0.1:{port}/team/app:v1");
    let r = sandbox_cmd(root.path(), "push", &["fake/src:1", &dest], &[]);
    let seen = fake.seen.lock().unwrap().clone();
    let calls: Vec<_> = seen.iter().map(|q| (q.method.clone(), q.path.clone())).collect();
    assert_eq!(r.code, 0, "{}\n{calls:#?}", r.stderr);
    let mut got = stored.lock().unwrap().clone();
    got.sort();
    got.dedup();
    let mut want: Vec<String> = img.layers.iter().map(|l| l.digest.clone()).chain([img.config_digest()]).collect();
    want.sort();
    want.dedup();
    assert_eq!(got, want, "every blob stored once verified");
    let manifest_puts = calls.iter().filter(|(m, p)| m == "PUT" && p.contains("/manifests/")).count();
    assert_eq!(manifest_puts, 2, "the manifest was sent again after the 502: {calls:#?}");
    // A registry that keeps failing still fails, after 4 tries, saying so.
    let (l, port) = bind();
    let _f = serve(l, |r| match r.method.as_str() {
        "HEAD" => Resp::new(404, ""),
        _ => Resp::new(500, "broken"),
    });
    let r = sandbox_cmd(root.path(), "push", &["fake/src:1", &format!("127.0.0.1:{port}/team/app:v1")], &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("HTTP 500") && r.stderr.contains("tried 4 times"), "{}", r.stderr);
}
