//! `sandbox pull` against the real registry server (Debian's docker-registry, distribution 2.8) on
//! loopback, populated with skopeo from the test image's OCI layout; and against a tiny fake
//! registry (registry/fake.rs) for bearer tokens, redirects and error statuses. All traffic stays
//! on 127.0.0.1.

pub mod fake;
mod push;
mod resilience;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sandbox::image::Store;

use crate::harness::*;
use crate::oci::{self, Built};
use crate::require_root;

/// What one `sandbox pull` did.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `sandbox --root ROOT pull ARGS…` with a clean environment (no auth files, no insecure list
/// unless `env` sets them), killed if it takes more than two minutes.
pub fn pull(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    sandbox_cmd(root, "pull", args, env)
}

pub fn sandbox_cmd(root: &Path, sub: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(bin());
    c.arg("--root").arg(root).arg(sub).args(args);
    for v in ["SANDBOX_AUTH_FILE", "XDG_RUNTIME_DIR", "SANDBOX_INSECURE_REGISTRIES", "SANDBOX_ROOT"] {
        c.env_remove(v);
    }
    c.env("HOME", home.path()).envs(env.iter().copied());
    let child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("sandbox {sub} {args:?} took more than 120 s");
        }
    };
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The store at `root` lists no image and has nothing left in staging.
pub fn assert_untouched(root: &Path) {
    let s = Store::open(root).unwrap();
    assert!(s.names().unwrap().is_empty(), "an image was listed: {:?}", s.names());
    assert_no_staging(root);
}

pub fn assert_no_staging(root: &Path) {
    let left: Vec<_> = std::fs::read_dir(root.join("tmp")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A docker-registry serving from a tempdir on 127.0.0.1, killed (by pid) on drop.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tools these tests need, or `None` after saying which one is missing.
fn tools() -> Option<()> {
    for (bin, pkg) in [("docker-registry", "docker-registry"), ("skopeo", "skopeo")] {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            eprintln!("SKIPPED: {bin} is not installed (Debian package {pkg})");
            return None;
        }
    }
    Some(())
}

impl Registry {
    /// Starts one, with htpasswd auth for `user:pass` when given; `None` (said) without the tools.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        tools()?;
        let dir = tempfile::tempdir().unwrap();
        let mut auth_conf = String::new();
        if let Some((u, p)) = auth {
            let h = Command::new("htpasswd").args(["-Bbn", u, p]).output();
            let Ok(h) = h.as_ref().map(|h| &h.stdout).map_err(|_| ()) else {
                eprintln!("SKIPPED: htpasswd is not installed (Debian package apache2-utils)");
                return None;
            };
            std::fs::write(dir.path().join("htpasswd"), h).unwrap();
            auth_conf = format!(
                "auth:\n  htpasswd:\n    realm: sandbox-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            );
        }
        let port = free_port();
        let conf = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test\n{auth_conf}",
            dir.path().join("data").display()
        );
        let conf_path = dir.path().join("config.yml");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let reg = Registry { child, dir, port };
        let up = eventually(15.0, || http_status(port, "/v2/").is_some());
        assert!(up, "docker-registry did not answer on 127.0.0.1:{port}; log:\n{}", reg.log());
        Some(reg)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Pushes `layout:tag` (index.json's ref name) to REPO:TAG with skopeo, digests preserved.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str, creds: Option<&str>, all: bool) {
        let mut c = isolated_tool("skopeo");
        c.args(["--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false"]);
        if all {
            c.arg("--all");
        }
        if let Some(cr) = creds {
            c.args(["--dest-creds", cr]);
        }
        let out = c
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host()))
            .env("HOME", self.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo copy failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = &digest[7..];
        self.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

/// The status of `GET path` on 127.0.0.1:port, or `None` when nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut b = [0u8; 64];
    let n = s.read(&mut b).ok()?;
    String::from_utf8_lossy(&b[..n]).split(' ').nth(1)?.parse().ok()
}

/// A registry with the test image pushed as test/busybox:1, and the image; `None` when skipped.
fn with_test_image(auth: Option<(&str, &str)>) -> Option<(Registry, Built)> {
    let img = oci::test_image()?;
    let reg = Registry::start(auth)?;
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), "1");
    let creds = auth.map(|(u, p)| format!("{u}:{p}"));
    reg.push(layout.path(), "1", "test/busybox", creds.as_deref(), false);
    Some((reg, img))
}

/// The image is in the store at `root` under `name`, complete, with the files its layers hold.
fn assert_pulled(root: &Path, name: &str, img: &Built) {
    let s = Store::open(root).unwrap();
    let got = s.find(name).unwrap_or_else(|e| panic!("{name} not in the store: {e}"));
    assert_eq!(got.manifest_digest, img.manifest_digest());
    assert_eq!(got.config_digest(), img.config_digest());
    assert!(s.has_blob(&img.config_digest()) && s.has_blob(&img.manifest_digest()));
    for l in &img.layers {
        assert!(s.has_blob(&l.digest), "layer blob {}", l.digest);
        assert!(s.has_layer(&l.diff_id), "layer {} unpacked", l.diff_id);
    }
    let layer = |i: usize| s.layer_dir(&img.layers[i].diff_id).unwrap();
    assert_eq!(std::fs::read_to_string(layer(1).join("data/keep")).unwrap(), "kept\n");
    assert!(layer(0).join("bin/busybox").is_file());
    assert_eq!(std::fs::read_to_string(layer(2).join("etc/motd")).unwrap(), "layer three\n");
    assert_no_staging(root);
}

#[test]
fn pull_by_tag_and_by_digest() {
    require_root!();
    let _m = shared();
    let Some((reg, img)) = with_test_image(None) else { return };
    let root = tempfile::tempdir().unwrap();
    let name = format!("{}/test/busybox:1", reg.host());
    let r = pull(root.path(), &[&name], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_pulled(root.path(), &name, &img);
    let short = &img.config_digest()[7..19];
    assert!(r.stdout.starts_with(&format!("pulled {name} (id {short}, 3 layers, ")), "{}", r.stdout);
    // stderr is not a terminal: one line per layer.
    for l in &img.layers {
        assert!(r.stderr.contains(&format!("layer {}: done", &l.digest[7..19])), "{}", r.stderr);
    }

    let root = tempfile::tempdir().unwrap();
    let by_digest = format!("{}/test/busybox@{}", reg.host(), img.manifest_digest());
    let r = pull(root.path(), &["--quiet", &by_digest], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "--quiet: {}", r.stderr);
    assert_pulled(root.path(), &by_digest, &img);

    // A digest the registry does not have for this repository.
    let other = format!("{}/test/busybox@sha256:{}", reg.host(), "0".repeat(64));
    let r = pull(root.path(), &[&other], &[]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("manifest sha256:000") && r.stderr.contains("not found"), "{}", r.stderr);

    if let Some(why) = run_image_unsupported() {
        eprintln!("SKIPPED run --image part: {why}");
        return;
    }
    let r = sandbox_cmd(root.path(), "run", &["--report", "none", "--image", &by_digest, "cat", "/data/keep"], &[]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "kept\n"), "{}", r.stderr);
}

/// Why `run --image` cannot be checked here, if it cannot.
fn run_image_unsupported() -> Option<&'static str> {
    let out = Command::new(SANDBOX).args(["run", "--help"]).output().unwrap();
    (!String::from_utf8_lossy(&out.stdout).contains("--image")).then_some("this build has no run --image")
}

/// Layer blob GETs in the registry's access log.
fn layer_gets(reg: &Registry, img: &Built) -> usize {
    let log = reg.log();
    img.layers.iter().map(|l| log.matches(&format!("GET /v2/test/busybox/blobs/{}", l.digest)).count()).sum()
}

#[test]
fn second_pull_is_already_present_and_concurrent_pulls_agree() {
    require_root!();
    let _m = shared();
    let Some((reg, img)) = with_test_image(None) else { return };
    let name = format!("{}/test/busybox:1", reg.host());
    let root = tempfile::tempdir().unwrap();
    let r = pull(root.path(), &[&name], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fetched = layer_gets(&reg, &img);
    assert_eq!(fetched, 3, "each layer fetched once:\n{}", reg.log());
    let r = pull(root.path(), &[&name], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr.matches("already present").count(), 3, "{}", r.stderr);
    assert_eq!(layer_gets(&reg, &img), fetched, "no layer fetched again:\n{}", reg.log());
    assert_pulled(root.path(), &name, &img);

    // Two pulls of one image into one fresh store at once.
    let root = tempfile::tempdir().unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| pull(root.path(), &[&name], &[]));
        let b = s.spawn(|| pull(root.path(), &[&name], &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.stderr, b.stderr);
    assert_pulled(root.path(), &name, &img);
    let s = Store::open(root.path()).unwrap();
    assert_eq!(s.names().unwrap().len(), 1);
    assert_eq!(std::fs::read_dir(root.path().join("layers")).unwrap().count(), 3, "each layer unpacked once");
}

/// An image for linux/arm64: one layer with /data/arch.
pub fn arm64_image() -> Built {
    let l = oci::Layer::new(
        oci::LayerTar::new().dir("data", 0o755).file("data/arch", 0o644, b"arm64\n").finish(),
        oci::Comp::Gzip,
    );
    let mut b = Built::new(vec![l], serde_json::json!({"Cmd": ["/bin/sh"]}));
    let mut config: serde_json::Value = serde_json::from_slice(&b.config).unwrap();
    config["architecture"] = "arm64".into();
    b.config = serde_json::to_vec(&config).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&b.manifest).unwrap();
    m["config"]["digest"] = oci::sha(&b.config).into();
    m["config"]["size"] = b.config.len().into();
    b.manifest = serde_json::to_vec(&m).unwrap();
    b
}

#[test]
fn multi_arch_index_picks_the_platform() {
    require_root!();
    let _m = shared();
    let Some(amd) = oci::test_image() else { return };
    let Some(reg) = Registry::start(None) else { return };
    let arm = arm64_image();
    let layout = tempfile::tempdir().unwrap();
    // Both images' blobs, then an index of the two as the layout's tag "multi".
    arm.write_layout(layout.path(), "arm");
    amd.write_layout(layout.path(), "amd");
    let desc = |b: &Built, arch: &str| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": b.manifest_digest(),
            "size": b.manifest.len(), "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc(&amd, "amd64"), desc(&arm, "arm64")]}))
    .unwrap();
    std::fs::write(layout.path().join("blobs/sha256").join(&oci::sha(&index)[7..]), &index).unwrap();
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": oci::sha(&index), "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    std::fs::write(layout.path().join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    reg.push(layout.path(), "multi", "test/busybox", None, true);
    let name = format!("{}/test/busybox:multi", reg.host());

    let root = tempfile::tempdir().unwrap();
    let r = pull(root.path(), &["--platform", "linux/s390x", &name], &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("linux/s390x") && r.stderr.contains("linux/amd64, linux/arm64"), "{}", r.stderr);
    assert_untouched(root.path());

    let r = pull(root.path(), &["--platform", "linux/arm64", &name], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = Store::open(root.path()).unwrap();
    let got = s.find(&name).unwrap();
    assert_eq!(got.manifest_digest, arm.manifest_digest());
    let d = s.layer_dir(&arm.layers[0].diff_id).unwrap();
    assert_eq!(std::fs::read_to_string(d.join("data/arch")).unwrap(), "arm64\n");

    let r = pull(root.path(), &[&name], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want = if cfg!(target_arch = "aarch64") { &arm } else { &amd };
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert_eq!(s.find(&name).unwrap().manifest_digest, want.manifest_digest(), "the host's platform by default");
    }
}

#[test]
fn errors_are_clear_exit_125_and_leave_the_store_alone() {
    require_root!();
    let _m = shared();
    let Some((reg, img)) = with_test_image(None) else { return };
    let root = tempfile::tempdir().unwrap();
    let h = reg.host();
    let closed = format!("127.0.0.1:{}/test/busybox:1", free_port());
    let cases: [(String, &[&str]); 4] = [
        (format!("{h}/test/busybox:nope"), &["tag 'nope' not found in repository", "test/busybox"]),
        (format!("{h}/no/such:1"), &["repository 127.0.0.1:", "/no/such not found"]),
        (closed.clone(), &["cannot reach registry 127.0.0.1:", "refused"]),
        ("127.0.0.1:5000/Bad::ref".to_string(), &["invalid image reference '127.0.0.1:5000/Bad::ref'"]),
    ];
    for (what, want) in cases {
        let r = pull(root.path(), &[&what], &[]);
        assert_eq!(r.code, 125, "{what}: {}", r.stderr);
        eprintln!("{what}: {}", r.stderr.trim());
        for w in want {
            assert!(r.stderr.contains(w), "{what}: wanted '{w}' in: {}", r.stderr);
        }
        assert_untouched(root.path());
    }
    // A layer blob corrupted inside the registry (same size, other bytes).
    let f = reg.blob_file(&img.layers[0].digest);
    let mut b = std::fs::read(&f).unwrap();
    let mid = b.len() / 2;
    b[mid..mid + 16].iter_mut().for_each(|x| *x ^= 0xff);
    std::fs::write(&f, b).unwrap();
    let r = pull(root.path(), &[&format!("{h}/test/busybox:1")], &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("digest mismatch") && r.stderr.contains(&img.layers[0].digest), "{}", r.stderr);
    assert_untouched(root.path());
    assert!(!Store::open(root.path()).unwrap().has_blob(&img.layers[0].digest), "the corrupt blob is not kept");
}

#[test]
fn basic_auth_with_creds_and_auth_file() {
    require_root!();
    let _m = shared();
    let Some((reg, img)) = with_test_image(Some(("tester", "s3cret"))) else { return };
    let name = format!("{}/test/busybox:1", reg.host());
    let root = tempfile::tempdir().unwrap();
    let r = pull(root.path(), &[&name], &[]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("authentication required") && r.stderr.contains("--creds"), "{}", r.stderr);
    let r = pull(root.path(), &["--creds", "tester:wrong", &name], &[]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("authentication denied") && r.stderr.contains("user 'tester'"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong"), "the password is never printed: {}", r.stderr);
    assert_untouched(root.path());

    let r = pull(root.path(), &["--creds", "tester:s3cret", &name], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_pulled(root.path(), &name, &img);

    let root = tempfile::tempdir().unwrap();
    let auth = root.path().join("auth.json");
    // "tester:s3cret", as `podman login` writes it.
    let file = format!(r#"{{"auths":{{"{}":{{"auth":"dGVzdGVyOnMzY3JldA=="}}}}}}"#, reg.host());
    std::fs::write(&auth, file).unwrap();
    let r = pull(root.path(), &[&name], &[("SANDBOX_AUTH_FILE", auth.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_pulled(root.path(), &name, &img);
}
