#![allow(dead_code)] // each OCI test module uses its own part of the builder
//! The one bundle builder of the OCI tests (issue 15): a busybox rootfs, a bundle whose
//! config.json is runc's default (src/oci/testdata/runc-default.json) with the test's edits, a
//! state root and a `sandbox-runc` symlink to the binary under test, all in temp dirs.
//!
//! - [`Oci::new`]`(args)`: runc's default config running `args` (terminal off, root read-only).
//! - [`Oci::with`]`(args, edit)`: the same, then `edit(&mut spec)`.
//! - [`Oci::sh`]`(script, edit)`: `sh -c script` on a writable root, then `edit`.
//! - [`Oci::running`]`(args, id)`: [`Oci::new`], then `create` and `start` of `id` (asserted).
//! - [`Oci::runc`]`(args)`: `sandbox-runc --root STATE ARGS…` in the bundle dir, stdout and
//!   stderr in files (the container and its supervisor keep what they inherit open, so pipes
//!   would see no EOF); [`Oci::runc_in`] prefixes a wrapper (e.g. `unshare -m`).
//! - [`Oci::create`], [`Oci::run`] (→ [`Ran`], text), [`Oci::state`] (JSON), [`Oci::status`].
//! - [`Oci::spec`] / [`Oci::edit`]: read or rewrite config.json after the fact.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::*;

/// A bundle, a state root and a `sandbox-runc` symlink in a temp dir (`dir/bundle`,
/// `dir/state`, `dir/sandbox-runc`).
pub(crate) struct Oci {
    pub(crate) rootfs: tempfile::TempDir,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) runc: PathBuf,
}

/// What a `sandbox-runc` command printed (as text) and its exit code (-1 when killed).
pub(crate) struct Ran {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Oci {
    /// runc's default config.json running `args`; `None` (said loudly) without a busybox rootfs.
    pub(crate) fn new(args: &[&str]) -> Option<Oci> {
        Oci::with(args, |_| {})
    }

    /// runc's default config.json running `args`, edited by `edit`.
    pub(crate) fn with(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> Option<Oci> {
        let rootfs = busybox_rootfs()?;
        let dir = tempfile::tempdir().unwrap();
        let runc = dir.path().join("sandbox-runc");
        std::os::unix::fs::symlink(bin(), &runc).unwrap();
        std::fs::create_dir(dir.path().join("bundle")).unwrap();
        let mut spec: serde_json::Value =
            serde_json::from_str(include_str!("../../src/oci/testdata/runc-default.json")).unwrap();
        spec["root"]["path"] = rootfs.path().to_str().unwrap().into();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(args);
        edit(&mut spec);
        let oci = Oci { rootfs, dir, runc };
        oci.write(&spec);
        Some(oci)
    }

    /// runc's default config.json running `sh -c script` on a writable root, edited by `edit`.
    pub(crate) fn sh(script: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Option<Oci> {
        Oci::with(&["sh", "-c", script], |s| {
            s["root"]["readonly"] = false.into();
            edit(s)
        })
    }

    /// runc's default config.json running `args`, created and started as container `id`.
    pub(crate) fn running(args: &[&str], id: &str) -> Option<Oci> {
        let oci = Oci::new(args)?;
        assert!(oci.create(id).status.success(), "create {id}");
        assert!(oci.runc(&["start", id]).status.success(), "start {id}");
        Some(oci)
    }

    /// A path in the temp dir (beside `bundle` and `state`).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn bundle(&self) -> PathBuf {
        self.path("bundle")
    }

    /// The state root (`--root`).
    pub(crate) fn root(&self) -> PathBuf {
        self.path("state")
    }

    pub(crate) fn spec(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.bundle().join("config.json")).unwrap()).unwrap()
    }

    pub(crate) fn write(&self, spec: &serde_json::Value) {
        std::fs::write(self.bundle().join("config.json"), spec.to_string()).unwrap();
    }

    /// Rewrites config.json through `edit`.
    pub(crate) fn edit(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut spec = self.spec();
        edit(&mut spec);
        self.write(&spec);
    }

    /// `sandbox-runc --root STATE ARGS…` run in the bundle dir.
    pub(crate) fn runc(&self, args: &[&str]) -> Output {
        self.runc_in(&[], args)
    }

    /// `WRAP… sandbox-runc --root STATE ARGS…` (e.g. `unshare --net`), stdout and stderr in files.
    pub(crate) fn runc_in(&self, wrap: &[&str], args: &[&str]) -> Output {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (o, e) = (self.path(&format!("out{n}")), self.path(&format!("err{n}")));
        let mut cmd = match wrap.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(&self.runc);
                c
            }
            None => Command::new(&self.runc),
        };
        let status = cmd
            .arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(self.bundle())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        let out = Output { status, stdout: std::fs::read(&o).unwrap(), stderr: std::fs::read(&e).unwrap() };
        eprintln!(
            "{wrap:?} sandbox-runc {args:?}: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `create --bundle B ID`.
    pub(crate) fn create(&self, id: &str) -> Output {
        let b = self.bundle();
        self.runc(&["create", "--bundle", b.to_str().unwrap(), id])
    }

    /// `run --bundle B ID`, as text.
    pub(crate) fn run(&self, id: &str) -> Ran {
        let b = self.bundle();
        self.runc(&["run", "--bundle", b.to_str().unwrap(), id]).into()
    }

    /// `state ID` as JSON (asserts it succeeds).
    pub(crate) fn state(&self, id: &str) -> serde_json::Value {
        let out = self.runc(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `state ID`'s status, after checking its id and ociVersion.
    pub(crate) fn status(&self, id: &str) -> String {
        let v = self.state(id);
        assert_eq!(v["id"], id);
        assert_eq!(v["ociVersion"].as_str().unwrap().split('.').next(), Some("1"));
        v["status"].as_str().unwrap().to_string()
    }

    /// What the state root holds besides its lock and names index (nothing once all is deleted).
    pub(crate) fn left(&self) -> Vec<String> {
        crate::harness::state_left(&self.root())
    }
}

/// The names in directory `p` (none when it does not exist).
pub(crate) fn entries(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}
