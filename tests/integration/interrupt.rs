//! Interrupted work leaves nothing (issue 12, item 2): SIGINT, SIGTERM and SIGHUP stop `pull`,
//! `image import` and `image export` with one line and exit 128+N, and remove their staging; what
//! a SIGKILLed pull staged is removed by the next command that writes the store, and counted by
//! prune. The registry here stalls in the middle of a layer, as a hung one does.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::oci::{self, Built, Comp, Layer, LayerTar};
use crate::require_root;

/// A registry on 127.0.0.1 serving `img` as `test/big:v1` that sends the first `stall_at` bytes
/// of each layer and then nothing more (the connection stays open) until dropped.
struct Stalling {
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Drop for Stalling {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn stalling_registry(img: Arc<Built>, stall_at: usize) -> Stalling {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(120);
        while !stop2.load(Ordering::SeqCst) && Instant::now() < end {
            let Ok((s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let (img, stop3) = (img.clone(), stop2.clone());
            std::thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                let mut s2 = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let (body, kind, stall): (&[u8], &str, bool) = if path == "/v2/test/big/manifests/v1" {
                    (&img.manifest, "application/vnd.oci.image.manifest.v1+json", false)
                } else if path == format!("/v2/test/big/blobs/{}", img.config_digest()) {
                    (&img.config, "application/octet-stream", false)
                } else if let Some(l) = img.layers.iter().find(|l| path == format!("/v2/test/big/blobs/{}", l.digest)) {
                    (&l.blob, "application/octet-stream", true)
                } else {
                    (b"{}", "application/json", false)
                };
                let status = if body == b"{}" { "404 Not Found" } else { "200 OK" };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: {kind}\r\nDocker-Content-Digest: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len(),
                    oci::sha(body)
                );
                let _ = s2.write_all(head.as_bytes());
                let _ = s2.write_all(if stall { &body[..stall_at.min(body.len())] } else { body });
                let _ = s2.flush();
                while stall && !stop3.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
    });
    Stalling { stop, port }
}

/// A one-layer image (uncompressed) of `mib` MiB of not-quite-constant data.
fn big_image(mib: usize) -> Built {
    let body: Vec<u8> = (0..mib << 20).map(|i| (i / 4096) as u8 ^ (i as u8)).collect();
    let tar = LayerTar::new().dir("data", 0o755).file("data/big", 0o644, &body).finish();
    Built::new(vec![Layer::new(tar, Comp::None)], serde_json::json!({"Cmd": ["/bin/true"]}))
}

/// `sandbox --root ROOT ARGS…` (the binary under test), stdout to `stdout`, stderr piped.
fn spawn(root: &Path, args: &[&str], stdout: Stdio) -> Child {
    let mut c = Command::new(bin());
    c.arg("--root").arg(root).args(args);
    for v in ["SANDBOX_AUTH_FILE", "XDG_RUNTIME_DIR", "SANDBOX_INSECURE_REGISTRIES", "SANDBOX_ROOT"] {
        c.env_remove(v);
    }
    c.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped()).spawn().unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Waits up to `secs` for `child`; its exit code (-N: killed by signal N), stderr and how long it
/// took. Killed (SIGKILL) and reported as a failure if it does not end in time.
fn finish(mut child: Child, secs: u64) -> (i32, String, Duration) {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            use std::os::unix::process::ExitStatusExt;
            eprintln!("ended {:?} after the signal", t.elapsed());
            return (st.code().unwrap_or_else(|| -st.signal().unwrap_or(0)), err, t.elapsed());
        }
        if t.elapsed() > Duration::from_secs(secs) {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
            panic!("sandbox did not stop within {secs} s of the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bytes under a path.
fn du(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else { return 0 };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p).map(|rd| rd.flatten().map(|e| du(&e.path())).sum()).unwrap_or(0)
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// Waits (up to 60 s) until `f` holds; false if it never does.
fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    eventually(60.0, &mut f)
}

/// The interrupt's one line: exactly one line on stderr after the progress lines, naming it.
fn assert_one_interrupt_line(err: &str, what: &str) {
    eprintln!("stderr: {err}");
    let last: Vec<&str> = err.lines().filter(|l| l.starts_with("sandbox:")).collect();
    assert_eq!(last.len(), 1, "one message line: {err}");
    assert!(last[0].contains("interrupted") && last[0].contains(what), "{err}");
}

/// Starts a pull of a 12 MiB layer from a registry that stalls after 6 MiB, and waits until the
/// pull has staged some of it.
fn stalled_pull(root: &Path) -> Option<(Child, Stalling)> {
    let img = Arc::new(big_image(12));
    let reg = stalling_registry(img, 6 << 20);
    let name = format!("127.0.0.1:{}/test/big:v1", reg.port);
    let child = spawn(root, &["pull", &name], Stdio::null());
    let staged = wait_for(|| du(&root.join("tmp")) >= 4 << 20);
    assert!(staged, "the pull staged nothing: {:?}", entries(&root.join("tmp")));
    // All that was sent has been read: the pull now waits in a read that never returns.
    std::thread::sleep(Duration::from_millis(500));
    Some((child, reg))
}

#[test]
fn sigint_stops_a_pull_stalled_on_a_hung_registry_at_once_and_keeps_no_staging() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let Some((child, _reg)) = stalled_pull(root.path()) else { return };
    signal(&child, libc::SIGINT);
    let (code, err, took) = finish(child, 10);
    assert_eq!(code, 130, "{err}");
    assert_one_interrupt_line(&err, "pull of 127.0.0.1:");
    assert!(took < Duration::from_millis(1500), "took {took:?} to stop");
    assert_eq!(entries(&root.path().join("tmp")), Vec::<PathBuf>::new(), "staging left behind");
    assert_eq!(entries(&root.path().join("layers")), Vec::<PathBuf>::new());
    assert!(sandbox::image::Store::open(root.path()).unwrap().names().unwrap().is_empty());
}

#[test]
fn staging_of_a_sigkilled_pull_is_removed_by_the_next_import_and_counted_by_prune() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let tmp = root.path().join("tmp");
    // Killed: nothing of sandbox runs, its staging stays for now.
    let Some((child, reg)) = stalled_pull(root.path()) else { return };
    signal(&child, libc::SIGKILL);
    let (code, _, _) = finish(child, 10);
    assert_eq!(code, -libc::SIGKILL);
    drop(reg);
    let left = du(&tmp);
    assert!(left >= 4 << 20, "staged: {left}");
    // Any next write of the store sweeps it: here an import of a small image.
    let layout = tempfile::tempdir().unwrap();
    big_image(1).write_layout(layout.path(), "v1");
    let imp =
        spawn(root.path(), &["image", "import", layout.path().to_str().unwrap(), "--name", "small:1"], Stdio::null());
    let (code, err, _) = finish(imp, 60);
    assert_eq!(code, 0, "{err}");
    assert_eq!(entries(&tmp), Vec::<PathBuf>::new(), "the dead pull's staging is still there");

    // And prune, first to run after a kill, says it freed it.
    let Some((child, reg)) = stalled_pull(root.path()) else { return };
    signal(&child, libc::SIGKILL);
    finish(child, 10);
    drop(reg);
    let left = du(&tmp);
    let out = Command::new(bin()).arg("--root").arg(root.path()).args(["image", "prune"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    let freed = stdout.rsplit("freed ").next().unwrap().trim();
    let freed: bytesize::ByteSize = freed.parse().unwrap_or_else(|e| panic!("{stdout}: {e}"));
    assert!(freed.as_u64() >= left * 9 / 10, "staged {left} bytes, prune says: {stdout}");
    assert_eq!(entries(&tmp), Vec::<PathBuf>::new());
}

/// An OCI layout tar of one `mib` MiB uncompressed layer, made with tar(1) (fast in a debug build).
fn big_archive(dir: &Path, mib: usize) -> PathBuf {
    let l = dir.join("layout");
    let blobs = l.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    let sh = |cmd: &str| {
        let out = Command::new("sh").arg("-c").arg(cmd).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    sh(&format!("head -c {mib}M /dev/zero | tr '\\0' x > content/big && tar cf layer.tar -C content big"));
    let layer = format!("sha256:{}", sh("sha256sum layer.tar | cut -d' ' -f1"));
    let size = std::fs::metadata(dir.join("layer.tar")).unwrap().len();
    std::fs::rename(dir.join("layer.tar"), blobs.join(&layer[7..])).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": oci::sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": size}],
    }))
    .unwrap();
    for b in [&config, &manifest] {
        std::fs::write(blobs.join(&oci::sha(b)[7..]), b).unwrap();
    }
    std::fs::write(l.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": oci::sha(&manifest),
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(l.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    sh("tar cf big.tar -C layout . && rm -rf layout content");
    dir.join("big.tar")
}

#[test]
fn sigterm_mid_import_of_a_big_archive_exits_143_and_leaves_nothing() {
    require_root!();
    let _m = shared();
    let work = tempfile::tempdir().unwrap();
    let tar = big_archive(work.path(), 300);
    let root = tempfile::tempdir().unwrap();
    let child = spawn(root.path(), &["image", "import", tar.to_str().unwrap(), "--name", "big:1"], Stdio::null());
    assert!(wait_for(|| du(&root.path().join("tmp")) >= 32 << 20), "the import staged nothing");
    signal(&child, libc::SIGTERM);
    let (code, err, took) = finish(child, 10);
    assert_eq!(code, 143, "{err}");
    assert_one_interrupt_line(&err, "import of");
    assert!(took < Duration::from_millis(1500), "took {took:?} to stop");
    assert_eq!(entries(&root.path().join("tmp")), Vec::<PathBuf>::new(), "staging left behind");
    assert_eq!(entries(&root.path().join("layers")), Vec::<PathBuf>::new());
    assert!(sandbox::image::Store::open(root.path()).unwrap().names().unwrap().is_empty());
}

#[test]
fn sigint_mid_export_to_a_file_leaves_no_partial_output_and_sighup_stops_export_to_stdout() {
    require_root!();
    let _m = shared();
    let root = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    big_image(2).write_layout(layout.path(), "v1");
    let imp =
        spawn(root.path(), &["image", "import", layout.path().to_str().unwrap(), "--name", "ex:1"], Stdio::null());
    let (code, err, _) = finish(imp, 60);
    assert_eq!(code, 0, "{err}");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("ex.tar");
    {
        // The export holds its partial output while it waits for the store (held here, as a
        // prune would): the signal comes while it exists.
        let store = sandbox::image::Store::open(root.path()).unwrap();
        let _held = store.lock_exclusive().unwrap();
        let child = spawn(root.path(), &["image", "export", "ex:1", out.to_str().unwrap()], Stdio::null());
        assert!(wait_for(|| !entries(out_dir.path()).is_empty()), "no partial output appeared");
        std::thread::sleep(Duration::from_millis(100));
        signal(&child, libc::SIGINT);
        let (code, err, took) = finish(child, 10);
        assert_eq!(code, 130, "{err}");
        assert_one_interrupt_line(&err, "export of ex:1");
        assert!(took < Duration::from_millis(1500), "took {took:?} to stop");
        assert_eq!(entries(out_dir.path()), Vec::<PathBuf>::new(), "partial output left behind");
    }
    // To a pipe nobody reads: the export blocks on a full pipe, and SIGHUP still stops it.
    let child = spawn(root.path(), &["image", "export", "ex:1", "-"], Stdio::piped());
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGHUP);
    let (code, err, _) = finish(child, 10);
    assert_eq!(code, 129, "{err}");
    assert_one_interrupt_line(&err, "export of ex:1");
    assert_eq!(entries(&root.path().join("tmp")), Vec::<PathBuf>::new());
}

#[test]
fn sigint_mid_commit_exits_130_keeps_the_container_and_stages_nothing() {
    require_root!();
    let _m = shared();
    let Some(img) = oci::test_image() else { return };
    let root = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), "v1");
    let run = |args: &[&str]| {
        let c = spawn(root.path(), args, Stdio::null());
        let (code, err, _) = finish(c, 120);
        assert_eq!(code, 0, "{args:?}: {err}");
    };
    run(&["image", "import", layout.path().to_str().unwrap(), "--name", "base:1"]);
    // Random data: the gzip stream of the new layer grows as fast as it is read.
    run(&[
        "--report",
        "none",
        "run",
        "--image",
        "base:1",
        "--name",
        "c1",
        "sh",
        "-c",
        "head -c 41943040 /dev/urandom > /big",
    ]);
    let child = spawn(root.path(), &["commit", "c1", "new:1"], Stdio::null());
    assert!(wait_for(|| du(&root.path().join("tmp")) >= 4 << 20), "the commit staged nothing");
    signal(&child, libc::SIGINT);
    let (code, err, took) = finish(child, 10);
    assert_eq!(code, 130, "{err}");
    assert_one_interrupt_line(&err, "commit of c1 as new:1");
    assert!(took < Duration::from_millis(1500), "took {took:?} to stop");
    assert_eq!(entries(&root.path().join("tmp")), Vec::<PathBuf>::new(), "staging left behind");
    let names = sandbox::image::Store::open(root.path()).unwrap().names().unwrap();
    assert_eq!(names.len(), 1, "only base:1: {names:?}");
    // The container is kept, and no longer in use: rm takes it.
    run(&["rm", "c1"]);
}
