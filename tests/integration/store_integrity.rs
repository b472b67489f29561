//! The image store under damage and concurrency (issue 12): a damaged entry is reported by name
//! and skipped, `rmi` removes it, `image prune` mends or removes what is damaged and says so;
//! store commands interleaved in many processes never lose or corrupt an image; a command
//! waiting for the store lock says who holds it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::image_run::sb;
use crate::oci::{self, Built, Comp, Layer, LayerTar};
use crate::registry::fake::{bind, serve, Resp};
use crate::require_root;

/// A two-layer image: busybox (the layer every test image shares) and /id holding `id`.
fn small_image(id: &str) -> Option<Built> {
    let Some(base) = LayerTar::new().busybox() else {
        eprintln!("SKIPPED: busybox (Debian busybox-static) is not installed; the test images are built from it");
        return None;
    };
    let top = LayerTar::new().file("id", 0o644, format!("{id}\n").as_bytes()).finish();
    Some(Built::new(
        vec![Layer::new(base.finish(), Comp::Gzip), Layer::new(top, Comp::None)],
        serde_json::json!({"Cmd": ["cat", "/id"], "Env": ["PATH=/bin"]}),
    ))
}

fn import(root: &Path, img: &Built, name: &str) {
    let layout = tempfile::tempdir().unwrap();
    img.write_layout(layout.path(), name);
    let r = sb(root, &["image", "import", layout.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "import {name}: {}", r.stderr);
}

fn hex(d: &str) -> &str {
    d.trim_start_matches("sha256:")
}

/// The store is whole: every blob matches its digest, every name's manifest, config, layer blobs
/// and unpacked layers exist, nothing is left in tmp/, and every named image runs.
fn assert_consistent(root: &Path) {
    for e in std::fs::read_dir(root.join("blobs/sha256")).unwrap().flatten() {
        let b = std::fs::read(e.path()).unwrap();
        assert_eq!(hex(&oci::sha(&b)), e.file_name().to_str().unwrap(), "a blob does not match its digest");
    }
    let idx: serde_json::Value = std::fs::read(root.join("images.json"))
        .map_or(serde_json::json!({"images": {}}), |b| serde_json::from_slice(&b).unwrap());
    let blob = |d: &str| std::fs::read(root.join("blobs/sha256").join(hex(d)));
    for (name, e) in idx["images"].as_object().unwrap() {
        let m = e["manifest"].as_str().unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(m).unwrap_or_else(|e| panic!("{name}: manifest {m}: {e}"))).unwrap();
        let cd = manifest["config"]["digest"].as_str().unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(cd).unwrap_or_else(|e| panic!("{name}: config {cd}: {e}"))).unwrap();
        for l in manifest["layers"].as_array().unwrap() {
            let d = l["digest"].as_str().unwrap();
            assert!(root.join("blobs/sha256").join(hex(d)).is_file(), "{name}: layer blob {d} is gone");
        }
        for d in config["rootfs"]["diff_ids"].as_array().unwrap() {
            let d = d.as_str().unwrap();
            assert!(root.join("layers").join(hex(d)).is_dir(), "{name}: layer {d} is not unpacked");
        }
        let r = sb(root, &["run", "--image", name, "true"]);
        assert_eq!(r.code, 0, "{name} does not run: {}", r.stderr);
    }
    let left: Vec<_> = std::fs::read_dir(root.join("tmp")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
}

const HEALTHY: &str = "localhost/test/healthy:1";
const DAMAGED: &str = "localhost/test/damaged:1";

#[derive(Debug, Clone, Copy)]
enum Damage {
    ManifestGone,
    ConfigCorrupt,
    LayerDirGone,
    LayerBlobGone,
    EntryGarbage,
}

/// Damages `img` (imported as DAMAGED) in the store at `root`; returns what prune must say.
fn damage(root: &Path, img: &Built, how: Damage) -> String {
    let blobs = root.join("blobs/sha256");
    let top = &img.layers[1];
    match how {
        Damage::ManifestGone => {
            std::fs::remove_file(blobs.join(hex(&img.manifest_digest()))).unwrap();
            format!("dropped the name {DAMAGED}: its manifest {} is missing", img.manifest_digest())
        }
        Damage::ConfigCorrupt => {
            std::fs::write(blobs.join(hex(&img.config_digest())), b"{\"not\":\"the config\"}").unwrap();
            format!("removed blob {}: its content does not match its digest", img.config_digest())
        }
        Damage::LayerDirGone => {
            std::fs::remove_dir_all(root.join("layers").join(hex(&top.diff_id))).unwrap();
            format!("unpacked layer {} of {DAMAGED} again", top.diff_id)
        }
        Damage::LayerBlobGone => {
            std::fs::remove_file(blobs.join(hex(&top.digest))).unwrap();
            format!("dropped the name {DAMAGED}: its layer blob {} is missing", top.digest)
        }
        Damage::EntryGarbage => {
            let p = root.join("images.json");
            let mut idx: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            idx["images"][DAMAGED] = serde_json::json!({"manifest": 42});
            std::fs::write(&p, serde_json::to_vec(&idx).unwrap()).unwrap();
            format!("dropped the name {DAMAGED}: its images.json entry is unreadable")
        }
    }
}

/// Issue 12: one missing blob made `images`, `rmi` and `image prune` fail (exit 125, "cannot
/// read blob …") for the whole store. Each kind of damage here hits one image of two.
#[test]
fn a_damaged_image_is_reported_by_name_skipped_removable_and_repaired_by_prune() {
    require_root!();
    let _m = shared();
    let (Some(good), Some(bad)) = (small_image("healthy"), small_image("damaged")) else { return };
    let hows = [
        Damage::ManifestGone,
        Damage::ConfigCorrupt,
        Damage::LayerDirGone,
        Damage::LayerBlobGone,
        Damage::EntryGarbage,
    ];
    for how in hows {
        let stores: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut said = String::new();
        for s in &stores {
            import(s.path(), &good, HEALTHY);
            import(s.path(), &bad, DAMAGED);
            said = damage(s.path(), &bad, how);
            let r = sb(s.path(), &["images"]);
            assert_eq!(r.code, 0, "{how:?}: images failed for the whole store: {}", r.stderr);
            assert!(r.stdout.contains("localhost/test/healthy"), "{how:?}: {}", r.stdout);
            assert!(!r.stdout.contains("localhost/test/damaged"), "{how:?}: listed: {}", r.stdout);
            assert!(r.stderr.contains(&format!("image {DAMAGED} is damaged")), "{how:?}: {}", r.stderr);
            let r = sb(s.path(), &["run", "--image", HEALTHY]);
            assert_eq!((r.code, r.stdout.as_str()), (0, "healthy\n"), "{how:?}: {}", r.stderr);
        }
        // One store: rmi of the damaged name.
        let r = sb(stores[0].path(), &["rmi", DAMAGED]);
        assert_eq!(r.code, 0, "{how:?}: rmi: {}", r.stderr);
        let r = sb(stores[0].path(), &["images"]);
        assert!(r.code == 0 && r.stderr.is_empty() && r.stdout.contains("healthy"), "{how:?}: {}", r.stderr);
        // The other: prune says what it did, by name, and leaves a whole store.
        let r = sb(stores[1].path(), &["image", "prune"]);
        assert_eq!(r.code, 0, "{how:?}: prune: {}", r.stderr);
        eprintln!("{how:?}: prune said:\n{}", r.stdout.trim_end());
        assert!(r.stdout.contains(&said), "{how:?}: wanted '{said}' in:\n{}", r.stdout);
        let r = sb(stores[1].path(), &["images"]);
        assert!(r.code == 0 && r.stderr.is_empty(), "{how:?}: still damaged: {}", r.stderr);
        assert_eq!(r.stdout.contains("localhost/test/damaged"), matches!(how, Damage::LayerDirGone), "{}", r.stdout);
        let r = sb(stores[0].path(), &["image", "prune"]);
        assert_eq!(r.code, 0, "{how:?}: prune after rmi: {}", r.stderr);
        for s in &stores {
            assert_consistent(s.path());
        }
        // Nothing more to mend: a second prune reports no repair.
        let r = sb(stores[1].path(), &["image", "prune"]);
        assert_eq!(r.stdout.lines().count(), 1, "{how:?}: {}", r.stdout);
    }
    // images.json unreadable as a whole: `images` says so; prune sets it aside and removes nothing.
    let root = tempfile::tempdir().unwrap();
    import(root.path(), &good, HEALTHY);
    std::fs::write(root.path().join("images.json"), b"{garbage").unwrap();
    let r = sb(root.path(), &["images"]);
    assert!(r.code == 125 && r.stderr.contains("images.json"), "{}", r.stderr);
    let r = sb(root.path(), &["image", "prune"]);
    assert!(r.code == 0 && r.stdout.contains("set aside images.json"), "{}\n{}", r.stdout, r.stderr);
    assert!(root.path().join("blobs/sha256").join(hex(&good.manifest_digest())).exists(), "content was kept");
    let r = sb(root.path(), &["images"]);
    assert!(r.code == 0 && r.stderr.is_empty(), "{}", r.stderr);
}

/// Issue 12: `rmi` and `image prune` waited silently for as long as a pull held the store, and
/// looked hung. A pull from a registry that stalls on a layer holds the store's shared lock;
/// prune must say within a few seconds that it waits and for whom, then finish once the pull is
/// done, the pulled image whole.
#[test]
fn waiting_for_the_store_lock_says_which_process_holds_it() {
    require_root!();
    let _m = shared();
    let Some(img) = small_image("slow") else { return };
    let img = Arc::new(img);
    let (l, port) = bind();
    let i2 = img.clone();
    let stalled = Arc::new(Mutex::new(false));
    let s2 = stalled.clone();
    let _fake = serve(l, move |r| {
        if r.path == "/v2/test/slow/manifests/1" {
            return Resp::new(200, i2.manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", &i2.manifest_digest());
        }
        let Some(d) = r.path.strip_prefix("/v2/test/slow/blobs/") else { return Resp::new(404, "no") };
        if d == i2.config_digest() {
            return Resp::new(200, i2.config.clone());
        }
        match i2.layers.iter().find(|l| l.digest == d) {
            Some(l) => {
                // The first layer request stalls for 4 s, while the pull holds the store.
                let first = !std::mem::replace(&mut *s2.lock().unwrap(), true);
                if first {
                    std::thread::sleep(Duration::from_secs(4));
                }
                Resp::new(200, l.blob.clone())
            }
            None => Resp::new(404, "no"),
        }
    });
    let root = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let name = format!("127.0.0.1:{port}/test/slow:1");
    let cmd = |args: &[&str]| {
        let mut c = Command::new(bin());
        c.arg("--root").arg(root.path()).args(args).env("HOME", home.path()).stdin(Stdio::null());
        for v in ["SANDBOX_AUTH_FILE", "XDG_RUNTIME_DIR", "SANDBOX_INSECURE_REGISTRIES", "SANDBOX_ROOT"] {
            c.env_remove(v);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let pull = cmd(&["pull", &name]).spawn().unwrap();
    let pull_pid = pull.id();
    assert!(eventually(20.0, || *stalled.lock().unwrap()), "the pull never asked for a layer");
    let t0 = Instant::now();
    let mut prune = cmd(&["image", "prune"]).spawn().unwrap();
    let mut err = prune.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let st = prune.wait().unwrap();
    let waited = t0.elapsed();
    let prune_err = reader.join().unwrap();
    let pulled = pull.wait_with_output().unwrap();
    assert_eq!(pulled.status.code(), Some(0), "pull: {}", String::from_utf8_lossy(&pulled.stderr));
    assert_eq!(st.code(), Some(0), "prune: {prune_err}");
    let want = format!(
        "sandbox: waiting for the image store: pid {pull_pid} (sandbox --root {} pull {name}) holds it",
        root.path().display()
    );
    eprintln!("prune waited {waited:?}; said: {}", prune_err.trim_end());
    assert!(prune_err.contains(&want), "wanted '{want}' on prune's stderr:\n{prune_err}");
    assert!(waited >= Duration::from_secs(1), "prune did not wait for the pull ({waited:?})");
    let r = sb(root.path(), &["run", "--image", &name]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "slow\n"), "{}", r.stderr);
    assert_consistent(root.path());
    let holders = std::fs::read_dir(root.path().join("lock.holders")).unwrap().count();
    assert_eq!(holders, 0, "a holder record outlived its lock");
}

/// Issue 12, item 1: prune, rmi, pull, import, run, commit and export, interleaved in any order, keep
/// the store consistent. Six workers, each in a loop of randomly chosen store commands on three
/// images (two share their base layer with the third; one is also pulled from a docker-registry
/// on loopback), for hundreds of rounds in all; every
/// command must succeed or fail only as a concurrent removal explains ("no image", "gone from
/// the store"), no prune may find anything to repair, and afterwards every named image runs,
/// every blob matches its digest, every referenced layer exists and tmp/ is empty.
#[test]
fn interleaved_store_commands_never_lose_or_corrupt_an_image() {
    require_root!();
    let _m = shared();
    let (Some(big), Some(a), Some(b)) = (oci::test_image(), small_image("a"), small_image("b")) else { return };
    let root = tempfile::tempdir().unwrap();
    let names = [crate::image_run::NAME, "localhost/test/a:1", "localhost/test/b:1"];
    let layouts: Vec<tempfile::TempDir> = [&big, &a, &b]
        .iter()
        .zip(names)
        .map(|(img, n)| {
            let d = tempfile::tempdir().unwrap();
            img.write_layout(d.path(), n);
            d
        })
        .collect();
    for l in &layouts {
        let r = sb(root.path(), &["image", "import", l.path().to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    // Image b also comes by pull from a docker-registry on loopback, when one can be started.
    let reg = crate::registry::Registry::start(None);
    let pulled = reg.as_ref().map(|reg| {
        let l = tempfile::tempdir().unwrap();
        b.write_layout(l.path(), "1");
        reg.push(l.path(), "1", "test/b", None, false);
        format!("{}/test/b:1", reg.host())
    });
    if pulled.is_none() {
        eprintln!("NOTE: no docker-registry: the stress test runs without pulls");
    }
    let (workers, rounds, budget) = (6usize, 60usize, Duration::from_secs(45));
    let t0 = Instant::now();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let layout_paths: Vec<String> = layouts.iter().map(|l| l.path().to_str().unwrap().to_string()).collect();
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (root, failures, done, layouts, pulled) =
                (root.path().to_path_buf(), failures.clone(), done.clone(), layout_paths.clone(), pulled.clone());
            std::thread::spawn(move || {
                let out = tempfile::tempdir().unwrap();
                let committed = format!("localhost/test/commit-{w}:1");
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                let mut next = |n: usize| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % n as u64) as usize
                };
                let fail = |what: String| failures.lock().unwrap().push(what);
                // A failure a concurrent rmi (and prune) explains.
                let removed = |r: &Run| {
                    r.code == 125
                        && ["no image", "is gone from the store", "removed from the store meanwhile"]
                            .iter()
                            .any(|m| r.stderr.contains(m))
                };
                for i in 0..rounds {
                    if t0.elapsed() > budget {
                        break;
                    }
                    let k = next(3);
                    let (name, check, want) = match next(5) {
                        4 => (pulled.as_deref().unwrap_or(names[2]), "cat /id", "b\n"),
                        3 => (committed.as_str(), "test -e /new && echo ok", "ok\n"),
                        0 => (names[0], "cat /data/keep", "kept\n"),
                        n => (names[n], "cat /id", if n == 1 { "a\n" } else { "b\n" }),
                    };
                    let op = next(14);
                    let tag = format!("worker {w} round {i} op {op} on {name}");
                    match op {
                        13 if pulled.is_some() => {
                            let r = sb(&root, &["pull", pulled.as_deref().unwrap()]);
                            if r.code != 0 {
                                fail(format!("{tag}: pull: {}", r.stderr));
                            }
                        }
                        0..=2 | 13 => {
                            let r = sb(&root, &["image", "import", &layouts[k]]);
                            if r.code != 0 {
                                fail(format!("{tag}: import: {}", r.stderr));
                            }
                        }
                        3..=5 => {
                            let r = sb(&root, &["run", "--image", name, "sh", "-c", check]);
                            if !(r.code == 0 && r.stdout == want || removed(&r)) {
                                fail(format!("{tag}: run: {} {:?} {}", r.code, r.stdout, r.stderr));
                            }
                        }
                        6 => {
                            let c = format!("c{w}-{i}");
                            let r = sb(&root, &["run", "--name", &c, "--image", names[k], "touch", "/new"]);
                            if r.code == 0 {
                                let r = sb(&root, &["commit", &c, &committed]);
                                if r.code != 0 {
                                    fail(format!("{tag}: commit: {}", r.stderr));
                                }
                            } else if !removed(&r) {
                                fail(format!("{tag}: run --name: {}", r.stderr));
                            }
                            let r = sb(&root, &["rm", &c]);
                            if r.code != 0 && !r.stderr.contains("no container") {
                                fail(format!("{tag}: rm: {}", r.stderr));
                            }
                        }
                        7 => {
                            let o = out.path().join("x.tar");
                            let r = sb(&root, &["image", "export", name, o.to_str().unwrap()]);
                            if !(r.code == 0 || removed(&r)) {
                                fail(format!("{tag}: export: {}", r.stderr));
                            }
                        }
                        8..=9 => {
                            let r = sb(&root, &["rmi", name]);
                            if !(r.code == 0 || removed(&r) || r.code == 125 && r.stderr.contains("in use by")) {
                                fail(format!("{tag}: rmi: {}", r.stderr));
                            }
                        }
                        10..=11 => {
                            let r = sb(&root, &["image", "prune"]);
                            if r.code != 0 || r.stdout.lines().count() != 1 {
                                fail(format!("{tag}: prune: {} {} {}", r.code, r.stdout, r.stderr));
                            }
                        }
                        _ => {
                            let r = sb(&root, &["images"]);
                            if r.code != 0 || !r.stderr.is_empty() {
                                fail(format!("{tag}: images: {} {}", r.code, r.stderr));
                            }
                        }
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rounds_done = done.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{rounds_done} rounds by {workers} workers in {:?}", t0.elapsed());
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} of {rounds_done} commands failed:\n{}", failures.len(), failures.join("\n"));
    if rounds_done < 150 {
        // A slow machine (the TCG VM lanes): the checks below still hold, on fewer rounds.
        eprintln!("NOTE: only {rounds_done} rounds ran in {budget:?}: a weak test of concurrency here");
    }
    assert_consistent(root.path());
    let r = sb(root.path(), &["images"]);
    assert!(r.code == 0 && r.stderr.is_empty(), "{}", r.stderr);
}

/// `rm` takes no store lock; prune's listing of containers used to create each one's lock file
/// again, inside a directory rm was removing, so that rm failed with "Directory not empty" (found
/// by the stress test above). Containers with many files keep rm busy while prune loops.
#[test]
fn rm_beside_a_looping_prune_removes_the_whole_container() {
    require_root!();
    let _m = shared();
    let Some(img) = small_image("rm") else { return };
    let root = tempfile::tempdir().unwrap();
    import(root.path(), &img, HEALTHY);
    let fill = "mkdir /d && cd /d && i=0; while [ $i -lt 3000 ]; do : > f$i; i=$((i+1)); done";
    let names: Vec<String> = (0..6).map(|i| format!("big{i}")).collect();
    for n in &names {
        let r = sb(root.path(), &["run", "--name", n, "--image", HEALTHY, "sh", "-c", fill]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pruner = {
        let (done, root) = (done.clone(), root.path().to_path_buf());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let r = sb(&root, &["image", "prune"]);
                assert_eq!(r.code, 0, "{}", r.stderr);
            }
        })
    };
    let mut failed = vec![];
    for n in &names {
        let r = sb(root.path(), &["rm", n]);
        if r.code != 0 {
            failed.push(format!("rm {n}: {}", r.stderr));
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    pruner.join().unwrap();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let left: Vec<_> = std::fs::read_dir(root.path().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "left: {left:?}");
}
