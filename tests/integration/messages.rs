//! Error messages a user acts on: each OS error once, an export's failure naming the target the
//! user gave (not a blob of the store), and `rmi`'s in-use refusal naming the container the user
//! knows (never the hidden directory of an unnamed run).

use std::process::{Command, Stdio};

use crate::harness::*;
use crate::image_run::{sb, store_with_test_image, NAME};
use crate::require_root;

#[test]
fn export_to_a_full_disk_names_the_target_and_each_os_error_once() {
    require_root!();
    let _m = shared();
    let Some((root, _)) = store_with_test_image() else { return };
    let r = root.path().to_str().unwrap();
    // A 64 KiB tmpfs (the image is larger) in a mount namespace of this test's own: the host
    // never sees it, and it goes when the shell ends.
    let mnt = tempfile::tempdir().unwrap();
    let m = mnt.path().to_str().unwrap();
    let out = format!("{m}/out.tar");
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs {m} || exit 99; \"$0\" --root {r} image export {NAME} {out}; \
         echo code=$?; ls -A {m}"
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script, &bin()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    if o.status.code() == Some(99) {
        eprintln!("SKIPPED: cannot mount a tmpfs in a new mount namespace here: {stderr}");
        return;
    }
    assert_eq!(stdout.lines().next(), Some("code=125"), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().nth(1), None, "nothing left on the full disk: {stdout}");
    assert!(stderr.contains(&format!("cannot write the export to {out}: ")), "names the target: {stderr}");
    assert!(!stderr.contains("blobs/sha256"), "names no source blob: {stderr}");
    assert_eq!(stderr.matches("os error 28").count(), 1, "the OS error once: {stderr}");

    // To a full standard output (/dev/full): that is what it names.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = Command::new(bin())
        .args(["--root", r, "image", "export", NAME, "-"])
        .stdin(Stdio::null())
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("cannot write the export to standard output: "), "{stderr}");
    assert!(!stderr.contains("blobs/sha256"), "{stderr}");
    assert_eq!(stderr.matches("os error 28").count(), 1, "the OS error once: {stderr}");

    // A target in a missing directory: the path given, the OS error once, nothing made.
    let gone = format!("{}/no/such/dir/out.tar", mnt.path().display());
    let x = sb(root.path(), &["image", "export", NAME, &gone]);
    assert_eq!(x.code, 125, "{}", x.stderr);
    assert!(x.stderr.contains(&format!("{gone}: No such file or directory")), "{}", x.stderr);
    assert_eq!(x.stderr.matches("os error 2)").count(), 1, "the OS error once: {}", x.stderr);
}

#[test]
fn rmi_in_use_names_the_unnamed_run_by_pid_never_its_hidden_directory() {
    require_root!();
    let _m = shared();
    let Some((root, _)) = store_with_test_image() else { return };
    let r = root.path();
    let flag = tempfile::tempdir().unwrap();
    let bind = format!("{}:/mnt", flag.path().display());
    let mut busy = Command::new(bin())
        .args(["--root", r.to_str().unwrap(), "--report", "none", "run", "--image", NAME])
        .args(["--bind", &bind, "sh", "-c", "touch /mnt/started; sleep 3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if !eventually(10.0, || flag.path().join("started").exists()) {
        let _ = busy.kill();
        let o = busy.wait_with_output().unwrap();
        panic!("the busy run never started: {}", String::from_utf8_lossy(&o.stderr));
    }
    let hidden: Vec<String> = std::fs::read_dir(r.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && !n.starts_with(".spare"))
        .collect();
    let x = sb(r, &["rmi", NAME]);
    let st = busy.wait().unwrap();
    assert!(st.success(), "busy run: {st:?}");
    assert_eq!(x.code, 125, "{}", x.stderr);
    assert!(x.stderr.contains(&format!("in use by an unnamed run (pid {})", busy.id())), "{}", x.stderr);
    for h in &hidden {
        assert!(!x.stderr.contains(h.as_str()), "names the hidden {h}: {}", x.stderr);
    }
    assert!(sb(r, &["images"]).stdout.contains("localhost/test/busybox"), "the image is still there");
}
