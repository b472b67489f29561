//! `images` (sizes, -q, --format json), `tag`, `inspect`, `history` and `commit --change`/-m: what
//! a docker user types in the first hour, checked against the store's own bytes; and read-only
//! commands on a mistyped `--root` that must create nothing.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;

use crate::harness::*;
use crate::image_run::{leftovers, sb, store_with_test_image, NAME};
use crate::require_root;

/// docker's layer size: apparent sizes of non-directories, each inode once.
fn tree_size(dir: &Path) -> u64 {
    let (mut seen, mut total, mut stack) = (HashSet::new(), 0, vec![dir.to_path_buf()]);
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

fn json(r: &Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
}

/// Everything under a store's images.json, tmp/ and blobs/: what a refused command must not change.
fn snapshot(root: &Path) -> (Vec<u8>, Vec<String>) {
    let mut names: Vec<String> = ["tmp", "blobs/sha256", "layers"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten().flatten())
        .map(|e| e.path().display().to_string())
        .collect();
    names.sort();
    (std::fs::read(root.join("images.json")).unwrap_or_default(), names)
}

#[test]
fn images_shows_compressed_and_unpacked_sizes_in_binary_units_q_and_json() {
    require_root!();
    let _m = shared();
    let Some((root, img)) = store_with_test_image() else { return };
    let r = root.path();
    let compressed: u64 = img.layers.iter().map(|l| l.blob.len() as u64).sum::<u64>() + img.config.len() as u64;
    let unpacked: u64 = img.layers.iter().map(|l| tree_size(&r.join("layers").join(&l.diff_id[7..]))).sum();
    assert!(unpacked > compressed, "busybox compresses: {unpacked} vs {compressed}");

    let j = json(&sb(r, &["images", "--format", "json"]));
    let a = j.as_array().unwrap();
    assert_eq!(a.len(), 1, "{j}");
    let e = &a[0];
    assert_eq!(e["name"], NAME);
    assert_eq!((e["repository"].as_str(), e["tag"].as_str()), (Some("localhost/test/busybox"), Some("1")));
    assert_eq!(e["id"], img.config_digest());
    assert_eq!(e["digest"], img.manifest_digest());
    assert_eq!(e["created"], "2026-11-23T00:00:00Z");
    assert_eq!(e["platform"], "linux/amd64");
    assert_eq!(e["size_compressed"], compressed, "the manifest's layers and config: {e}");
    assert_eq!(e["size_unpacked"], unpacked, "the unpacked layer trees: {e}");

    // The table: binary units, both sizes.
    let t = sb(r, &["images"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert!(lines[0].contains("COMPRESSED") && lines[0].contains("UNPACKED"), "{}", t.stdout);
    let kib = |n: u64| format!("{:.2} KiB", n as f64 / 1024.0);
    let mib = |n: u64| format!("{:.2} MiB", n as f64 / 1048576.0);
    let shown = |n: u64| if n >= 1 << 20 { mib(n) } else { kib(n) };
    assert!(lines[1].contains(&shown(compressed)) && lines[1].contains(&shown(unpacked)), "{}", t.stdout);

    // Recorded at unpack time; a layer without its record (unpacked by an older sandbox) is
    // measured once and recorded again.
    std::fs::remove_dir_all(r.join("sizes")).unwrap();
    assert_eq!(json(&sb(r, &["images", "--format", "json"]))[0]["size_unpacked"], unpacked);
    assert_eq!(std::fs::read_dir(r.join("sizes")).unwrap().count(), 3, "re-recorded");

    // -q: each id once, whatever the number of names.
    let tag = sb(r, &["tag", NAME, "other/name:2"]);
    assert_eq!(tag.code, 0, "{}", tag.stderr);
    let q = sb(r, &["images", "-q"]);
    assert_eq!(q.stdout, format!("{}\n", &img.config_digest()[7..19]), "{}", q.stderr);
    assert_eq!(json(&sb(r, &["images", "--format", "json"])).as_array().unwrap().len(), 2);
    // A bad --format is refused by name.
    let bad = sb(r, &["images", "--format", "yaml"]);
    assert_eq!(bad.code, 125);
    assert!(bad.stderr.contains("yaml") && bad.stderr.contains("json"), "{}", bad.stderr);
}

#[test]
fn read_only_commands_on_a_mistyped_root_create_nothing() {
    require_root!();
    let _m = shared();
    let base = tempfile::tempdir().unwrap();
    let out = base.path().join("out.tar");
    let o = out.to_str().unwrap();
    let missing = base.path().join("typo");
    let empty = base.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for root in [&missing, &empty] {
        let note = format!("no image store at {}", root.display());
        let i = sb(root, &["images"]);
        assert_eq!(i.code, 0, "{}", i.stderr);
        let untouched =
            || if root == &missing { !root.exists() } else { std::fs::read_dir(root).unwrap().count() == 0 };
        assert!(untouched(), "`images` created a store at {}", root.display());
        assert_eq!(i.stdout.lines().count(), 1, "only the header: {}", i.stdout);
        assert!(i.stderr.contains(&note) && i.stderr.contains("nothing pulled yet"), "{}", i.stderr);
        assert_eq!(sb(root, &["images", "-q"]).stdout, "");
        assert_eq!(json(&sb(root, &["images", "--format", "json"])), serde_json::json!([]));
        for args in [
            &["inspect", "busybox"][..],
            &["history", "busybox"],
            &["image", "export", "busybox", o],
            &["run", "--image", "busybox", "true"],
            &["tag", "busybox", "other"],
            &["rmi", "busybox"],
            &["commit", "c", "x:1"],
            &["rm", "c"],
        ] {
            let x = sb(root, args);
            assert_eq!(x.code, 125, "{args:?}: {}", x.stderr);
            let what = if matches!(args[0], "commit" | "rm") { "no container 'c'" } else { "no image 'busybox'" };
            assert!(x.stderr.contains(what) && x.stderr.contains(&note), "{args:?}: {}", x.stderr);
            assert!(!out.exists(), "{args:?} wrote {o}");
        }
        let p = sb(root, &["image", "prune"]);
        assert_eq!(p.code, 0, "{}", p.stderr);
        assert!(p.stdout.contains("freed 0 B") && p.stderr.contains(&note), "{}{}", p.stdout, p.stderr);
    }
    assert!(!missing.exists(), "a mistyped --root was created");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "an empty --root stays empty");
}

#[test]
fn a_failed_first_pull_or_import_leaves_no_store_behind() {
    require_root!();
    let _m = shared();
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("new");
    let rootfs = base.path().join("rootfs.tar");
    std::fs::write(&rootfs, b"not a tar at all, but long enough to be read as a header block").unwrap();
    let r = rootfs.to_str().unwrap();
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    for args in [
        &["pull", "127.0.0.1:1/test/x:1"][..],
        &["image", "import", "/nonexistent/archive.tar"],
        &["image", "import", r, "--name", "x:1"],
    ] {
        let x = sb(&root, args);
        assert_eq!(x.code, 125, "{args:?}: {}", x.stderr);
        assert!(!root.exists(), "{args:?} failed but left a store at {}: {:?}", root.display(), leftovers(&root));
    }
    // A store that existed before a failure stays, as it was.
    let Some((store, _)) = store_with_test_image() else { return };
    let before = leftovers(store.path());
    let x = sb(store.path(), &["image", "import", r, "--name", "x:1"]);
    assert_eq!(x.code, 125, "{}", x.stderr);
    assert!(store.path().join("blobs/sha256").is_dir());
    assert_eq!(leftovers(store.path()), before);
}

#[test]
fn tag_names_an_image_again_and_refuses_bad_targets_changing_nothing() {
    require_root!();
    let _m = shared();
    let Some((root, img)) = store_with_test_image() else { return };
    let r = root.path();
    let short = &img.config_digest()[7..19];
    let t = sb(r, &["tag", short, "other/name:2"]);
    assert_eq!((t.code, t.stdout.as_str()), (0, ""), "docker's tag prints nothing: {}", t.stderr);
    let t = sb(r, &["tag", "other/name:2", "third"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let j = json(&sb(r, &["inspect", "third"]));
    assert_eq!(j[0]["Id"], img.config_digest());
    let mut tags: Vec<&str> = j[0]["RepoTags"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    tags.sort();
    assert_eq!(tags, ["localhost/test/busybox:1", "other/name:2", "third:latest"], "every name of the image");
    let run = sb(r, &["run", "--image", "third", "cat", "/data/keep"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "kept\n"), "{}", run.stderr);

    let before = snapshot(r);
    let pinned = format!("x/y@sha256:{}", "a".repeat(64));
    for (args, says) in [
        (&["tag", NAME, "Bad Name"][..], "invalid image reference 'Bad Name'"),
        (&["tag", NAME, &pinned], "without @sha256"),
        (&["tag", "nosuch:1", "x:1"], "no image 'nosuch:1'"),
    ] {
        let x = sb(r, args);
        assert_eq!(x.code, 125, "{args:?}: {}", x.stderr);
        assert!(x.stderr.contains(says), "{args:?}: {}", x.stderr);
        assert_eq!(snapshot(r), before, "{args:?} changed the store");
    }
}

#[test]
fn inspect_shows_config_layers_sizes_and_history_as_docker_names_them() {
    require_root!();
    let _m = shared();
    let Some((root, img)) = store_with_test_image() else { return };
    let r = root.path();
    let j = json(&sb(r, &["inspect", NAME]));
    let a = j.as_array().unwrap();
    assert_eq!(a.len(), 1, "{j}");
    let i = &a[0];
    assert_eq!(i["Id"], img.config_digest());
    assert_eq!(i["RepoTags"], serde_json::json!(["localhost/test/busybox:1"]));
    assert_eq!(i["RepoDigests"], serde_json::json!([format!("localhost/test/busybox@{}", img.manifest_digest())]));
    assert_eq!((i["Created"].as_str(), i["Os"].as_str()), (Some("2026-11-23T00:00:00Z"), Some("linux")));
    assert_eq!(i["Architecture"], "amd64");
    let c = &i["Config"];
    assert_eq!(c["WorkingDir"], "/data");
    assert_eq!(c["Cmd"], serde_json::json!(["/bin/sh", "-c", "echo default-cmd"]));
    assert!(c["Env"].as_array().unwrap().contains(&"FOO=bar".into()), "{c}");
    assert_eq!(c["Labels"]["org.example.test"], "yes");
    let diff_ids: Vec<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(i["RootFS"], serde_json::json!({"Type": "layers", "Layers": diff_ids}));
    let layers = i["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let mut total = 0;
    for (l, want) in layers.iter().zip(&img.layers) {
        assert_eq!((l["Digest"].as_str(), l["DiffID"].as_str()), (Some(want.digest.as_str()), Some(&want.diff_id[..])));
        assert_eq!(
            (l["Size"].as_u64(), l["MediaType"].as_str()),
            (Some(want.blob.len() as u64), Some(want.media_type))
        );
        assert_eq!(l["UnpackedSize"], tree_size(&r.join("layers").join(&want.diff_id[7..])));
        total += l["UnpackedSize"].as_u64().unwrap();
    }
    assert_eq!(i["Size"], total, "Size is the unpacked total, as docker's");
    assert_eq!(i["Manifest"]["Digest"], img.manifest_digest());
    assert_eq!(i["History"], serde_json::json!([]), "the test image records none");

    // Several at once, by name and id; a missing one prints nothing and exits 125.
    let two = json(&sb(r, &["inspect", NAME, &img.config_digest()[7..19]]));
    assert_eq!((two[0]["Id"].clone(), two.as_array().unwrap().len()), (two[1]["Id"].clone(), 2));
    let x = sb(r, &["inspect", NAME, "nosuch"]);
    assert_eq!((x.code, x.stdout.as_str()), (125, ""), "{}", x.stderr);
    assert!(x.stderr.contains("no image 'nosuch'"), "{}", x.stderr);

    // A layer's size record goes with the layer.
    assert_eq!(std::fs::read_dir(r.join("sizes")).unwrap().count(), 3);
    assert_eq!(sb(r, &["rmi", NAME]).code, 0);
    let p = sb(r, &["image", "prune"]);
    assert!(p.stdout.contains("3 layer(s)"), "{}", p.stdout);
    assert_eq!(std::fs::read_dir(r.join("sizes")).unwrap().count(), 0, "size records of pruned layers");
}

#[test]
fn commit_change_and_message_shape_the_new_image_config_and_history() {
    require_root!();
    let _m = shared();
    let Some((root, img)) = store_with_test_image() else { return };
    let r = root.path();
    let k = sb(r, &["run", "--image", NAME, "--name", "c", "sh", "-c", "mkdir /srv; echo hi > /srv/f"]);
    assert_eq!(k.code, 0, "{}", k.stderr);
    let c = sb(
        r,
        &[
            "commit",
            "-m",
            "tuned",
            "--change",
            "ENV FOO=baz NEW=\"two words\"",
            "-c",
            "cmd echo changed $FOO",
            "-c",
            "WORKDIR /srv",
            "-c",
            "LABEL org.example.test=no x='y z'",
            "-c",
            "EXPOSE 8080 53/udp",
            "-c",
            "USER 0:0",
            "-c",
            "VOLUME [\"/data\"]",
            "-c",
            "STOPSIGNAL SIGINT",
            "-c",
            "ENV PATH=$PATH:/opt/x",
            "c",
            "test/changed",
        ],
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    // No command: the new Cmd, in the new WorkingDir, with the new Env.
    let run = sb(r, &["run", "--image", "test/changed"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "changed baz\n"), "{}", run.stderr);
    let run = sb(r, &["run", "--image", "test/changed", "sh", "-c", "pwd; cat f; echo \"$NEW\"; echo $PATH"]);
    let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/x";
    assert_eq!(run.stdout, format!("/srv\nhi\ntwo words\n{path}\n"), "$PATH expanded: {}", run.stderr);

    let i = &json(&sb(r, &["inspect", "test/changed"]))[0];
    let cf = &i["Config"];
    assert_eq!(i["Comment"], "tuned");
    assert_eq!(cf["Labels"], serde_json::json!({"org.example.test": "no", "x": "y z"}));
    assert_eq!(cf["ExposedPorts"], serde_json::json!({"8080/tcp": {}, "53/udp": {}}));
    assert_eq!(cf["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!((cf["User"].as_str(), cf["StopSignal"].as_str()), (Some("0:0"), Some("SIGINT")));
    let env = cf["Env"].as_array().unwrap();
    assert!(env.contains(&"FOO=baz".into()) && !env.contains(&"FOO=bar".into()), "replaced: {env:?}");

    // history: newest first, the commit with its message and size on top, the id on it only.
    let h = sb(r, &["history", "test/changed"]);
    assert_eq!(h.code, 0, "{}", h.stderr);
    let lines: Vec<&str> = h.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "header, the commit and three layers: {}", h.stdout);
    for col in ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"] {
        assert!(lines[0].contains(col), "{}", lines[0]);
    }
    let id = &i["Id"].as_str().unwrap()[7..19];
    assert!(lines[1].starts_with(id) && lines[1].contains("sandbox commit"), "{}", lines[1]);
    assert!(lines[1].contains("second ago") || lines[1].contains("seconds ago"), "{}", lines[1]);
    assert!(lines[1].trim_end().ends_with("tuned"), "{}", lines[1]);
    assert!(lines[2..].iter().all(|l| l.starts_with("<missing>")), "{}", h.stdout);
    let top = tree_size(&r.join("layers").join(&img.layers[0].diff_id[7..]));
    assert!(lines[4].contains(&format!("{:.2} MiB", top as f64 / 1048576.0)), "busybox layer: {}", lines[4]);
    let q = sb(r, &["history", "-q", "--no-trunc", "test/changed"]);
    assert_eq!(q.stdout.lines().next(), i["Id"].as_str(), "{}", q.stdout);
    let raw = sb(r, &["history", "--human=false", "test/changed"]);
    assert!(raw.stdout.lines().nth(1).unwrap().contains(&i["Created"].as_str().unwrap()[..19]), "{}", raw.stdout);
}

#[test]
fn commit_change_refuses_unknown_instructions_naming_the_valid_ones_creating_nothing() {
    require_root!();
    let _m = shared();
    let Some((root, _img)) = store_with_test_image() else { return };
    let r = root.path();
    let k = sb(r, &["run", "--image", NAME, "--name", "c", "true"]);
    assert_eq!(k.code, 0, "{}", k.stderr);
    let before = snapshot(r);
    for (change, says) in [
        ("FROM busybox", "one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR"),
        ("RUN rm -rf /", "one of CMD, ENTRYPOINT"),
        ("EXPOSE http", "EXPOSE PORT[/PROTO]"),
        ("ENV A", "ENV KEY=VALUE"),
        // Bad only once $FOO (bar in the image) is known: refused before the layer is written.
        ("EXPOSE $FOO", "EXPOSE PORT[/PROTO]"),
    ] {
        let x = sb(r, &["commit", "--change", "ENV OK=1", "--change", change, "c", "test/refused"]);
        assert_eq!(x.code, 125, "{change}: {}", x.stderr);
        assert!(x.stderr.contains(&format!("invalid --change '{change}'")) && x.stderr.contains(says), "{}", x.stderr);
        assert_eq!(snapshot(r), before, "{change}: the store changed");
    }
}

#[test]
fn images_reports_an_unreadable_entry_by_name_and_lists_the_others() {
    require_root!();
    let _m = shared();
    let Some((root, img)) = store_with_test_image() else { return };
    let r = root.path();
    // A name whose manifest is not in the store (as a half-lost pull left them).
    let idx = r.join("images.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&idx).unwrap()).unwrap();
    v["images"]["docker.io/library/lost:1"] = serde_json::json!({"manifest": format!("sha256:{}", "e".repeat(64))});
    std::fs::write(&idx, serde_json::to_vec(&v).unwrap()).unwrap();
    let t = sb(r, &["images"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t.stdout.contains("localhost/test/busybox") && !t.stdout.contains("lost"), "{}", t.stdout);
    assert!(t.stderr.contains("docker.io/library/lost:1"), "the damaged one is named: {}", t.stderr);
    let q = sb(r, &["images", "-q"]);
    assert_eq!(q.stdout, format!("{}\n", &img.config_digest()[7..19]));
}

#[test]
fn listing_into_a_closed_pipe_exits_quietly_without_a_panic() {
    require_root!();
    let _m = shared();
    let Some((root, _img)) = store_with_test_image() else { return };
    // As `sandbox images | head -1` once head is gone: the pipe's read end is closed before
    // sandbox starts, so every write fails with EPIPE (the old `println!` panicked, exit 101).
    for args in [&["images"][..], &["images", "--format", "json"], &["inspect", NAME], &["history", NAME]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = std::process::Command::new(bin())
            .arg("--root")
            .arg(root.path())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() && !err.contains("panicked"), "{args:?}: {:?} {err}", o.status);
    }
}
