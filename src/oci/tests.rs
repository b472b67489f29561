//! config.json fixtures (testdata/): `runc spec`'s default, one with resources, mounts and a
//! cgroupsPath, one joining namespaces by path, and bad ones.

use std::path::{Path, PathBuf};

use super::bundle::{check_version, to_config, validate_id};
use crate::error::Error;

/// A bundle directory with `name` as config.json, `edit` applied, and a rootfs dir.
fn bundle(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> (tempfile::TempDir, PathBuf) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/oci/testdata").join(name)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    let dir = tempfile::Builder::new().prefix("oci-test").tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    std::fs::write(dir.path().join("config.json"), serde_json::to_string(&v).unwrap()).unwrap();
    let p = dir.path().to_path_buf();
    (dir, p)
}

fn no_terminal(v: &mut serde_json::Value) {
    v["process"]["terminal"] = false.into();
}

fn load(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Result<super::Bundle, Error> {
    let (_keep, dir) = bundle(name, edit);
    super::load(&dir, "c1")
}

fn err(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    load(name, edit).expect_err("the config must be refused").to_string()
}

#[test]
fn runc_default_config_maps_onto_config() {
    let b = load("runc-default.json", no_terminal).unwrap();
    let c = &b.config;
    assert_eq!(c.id, "c1");
    assert_eq!(c.command, ["sh"]);
    assert_eq!(c.hostname.as_deref(), Some("runc"));
    assert!(c.read_only, "root.readonly is true in runc's default");
    assert!(c.rootfs.as_ref().unwrap().ends_with("rootfs"));
    assert_eq!(c.user.as_deref(), Some("0:0"));
    assert!(c.no_new_privs);
    let caps: Vec<String> = {
        let mut v: Vec<String> = c.capabilities.iter().map(|c| c.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(caps, ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(c.env.as_ref().unwrap()[1], "TERM=xterm");
    assert_eq!(b.rlimits.len(), 1);
    assert_eq!((b.rlimits[0].soft, b.rlimits[0].hard), (1024, 1024));
    assert!(c.binds.is_empty() && c.tmpfs.is_empty(), "the standard mounts are sandbox's own");
    assert!(c.mqueue, "runc's default mounts /dev/mqueue: sandbox mounts one too");
    assert!(matches!(c.seccomp, crate::seccomp::Policy::Default), "no linux.seccomp: sandbox's default filter");
    // runc's lists beyond sandbox's own are masked too, never dropped.
    let masked: Vec<_> = c.masked_paths.iter().map(|p| p.to_str().unwrap()).collect();
    assert_eq!(masked, ["/proc/asound", "/proc/timer_stats"]);
    assert!(c.read_only_paths.is_empty());
}

#[test]
fn resources_mounts_and_cgroups_path_map_onto_limits() {
    let c = load("resources.json", no_terminal).unwrap().config;
    let l = &c.limits;
    assert_eq!(l.memory_bytes, Some(64 << 20));
    assert_eq!(l.swap_bytes, Some(64 << 20), "OCI swap is memory+swap");
    assert_eq!(l.memory_high, Some(32 << 20));
    assert_eq!(l.cpus, Some(0.5));
    assert_eq!(l.cpu_weight, Some(39), "runc's shares→weight conversion of 1024");
    assert_eq!(l.cpuset_cpus.as_deref(), Some("0"));
    assert_eq!(l.pids, Some(32));
    // Beside the unified entry: the exact cpu.shares (v1), quota and period, and on v1 the device
    // rules (the deny-all, then the container's own /dev).
    let other = |c: &&crate::limits::CgroupConf| !c.file.starts_with("cpu.") && !c.file.starts_with("devices.");
    assert_eq!(l.cgroup_conf.iter().filter(other).count(), 1);
    assert_eq!(c.cgroup_parent.as_deref(), Some("/default"));
    assert_eq!(c.cgroup_name.as_deref(), Some("web"));
    assert_eq!(c.binds.len(), 1);
    assert!(c.binds[0].read_only);
    assert_eq!(c.tmpfs[0].size, Some(1 << 20));
}

#[test]
fn namespace_paths_net_ipc_uts_pid_mnt_are_joined_user_and_cgroup_refused_naming_the_namespace() {
    let b = load("runc-default.json", |v| {
        no_terminal(v);
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            let file = match n["type"].as_str().unwrap() {
                "network" => "net",
                "mount" => "mnt",
                t => t,
            };
            if ["net", "ipc", "uts", "pid", "mnt"].contains(&file) {
                n["path"] = format!("/proc/1/ns/{file}").into();
            }
        }
    })
    .unwrap();
    let mut j = b.config.join_namespaces.clone();
    j.sort();
    assert_eq!(j.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["ipc", "mnt", "net", "pid", "uts"]);
    let e = err("runc-default.json", |v| {
        no_terminal(v);
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(serde_json::json!({"type": "cgroup", "path": "/proc/1/ns/cgroup"}));
    });
    assert!(e.contains("linux.namespaces cgroup path"), "{e}");
}

#[test]
fn terminal_without_console_socket_is_refused() {
    let b = load("runc-default.json", |_| {}).unwrap();
    assert_eq!(b.config.tty, crate::config::Tty::Always);
    let e = super::files::console_for(true, None).unwrap_err().to_string();
    assert!(e.contains("process.terminal") && e.contains("--console-socket"), "{e}");
    let e = super::files::console_for(false, Some(std::path::Path::new("/x.sock"))).unwrap_err().to_string();
    assert!(e.contains("--console-socket"), "{e}");
}

#[test]
fn unknown_oci_version_major_is_refused() {
    let e = err("bad-version.json", no_terminal);
    assert!(e.contains("ociVersion '2.0.0'"), "{e}");
    assert!(check_version("1.2.0").is_ok() && check_version("1.0.2-dev").is_ok());
    assert!(check_version("1").is_err() && check_version("x.y.z").is_err());
}

#[test]
fn missing_root_is_refused() {
    let e = err("bad-no-root.json", no_terminal);
    assert!(e.contains("root"), "{e}");
}

#[test]
fn security_fields_sandbox_cannot_honour_are_refused_not_ignored() {
    for (file, field) in [("bad-hooks.json", "hooks.createContainer"), ("bad-apparmor.json", "process.apparmorProfile")]
    {
        let e = err(file, no_terminal);
        assert!(e.contains(field), "{file}: {e}");
    }
    let e = err("runc-default.json", |v| {
        no_terminal(v);
        v["linux"]["maskedPaths"].as_array_mut().unwrap().push("../secret".into());
    });
    assert!(e.contains("linux.maskedPaths '../secret'"), "{e}");
    let e = err("runc-default.json", |v| {
        no_terminal(v);
        v["linux"]["sysctl"] = serde_json::json!({"kernel.core_pattern": "|/x"});
    });
    assert!(e.contains("linux.sysctl 'kernel.core_pattern'"), "{e}");
    for (k, ok) in [("net.ipv4.ip_forward", true), ("kernel.shmmax", true), ("fs.mqueue.msg_max", true)] {
        assert_eq!(super::kernel::namespaced(k), ok, "{k}");
    }
    for k in ["kernel.core_pattern", "vm.overcommit_memory", "kernel.msgmax.x", "fs.file-max"] {
        assert!(!super::kernel::namespaced(k), "{k}");
    }
    // An option that would loosen a bind (suid where the source is nosuid) is not dropped.
    let e = err("runc-default.json", |v| {
        no_terminal(v);
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/mnt", "source": "/etc", "options": ["rbind", "suid"]}
        ));
    });
    assert!(e.contains("option \"suid\""), "{e}");
    // A process set may not hold what bounding lacks.
    let e = err("runc-default.json", |v| {
        no_terminal(v);
        v["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_SYS_ADMIN"]);
    });
    assert!(e.contains("process.capabilities.ambient 'CAP_SYS_ADMIN'"), "{e}");
    let e = err("runc-default.json", |v| {
        no_terminal(v);
        v["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "mount");
    });
    assert!(e.contains("without mount"), "{e}");
}

#[test]
fn the_five_capability_sets_umask_and_additional_gids_are_kept_apart() {
    let b = load("runc-default.json", |v| {
        no_terminal(v);
        v["process"]["capabilities"]["effective"] = serde_json::json!(["CAP_KILL"]);
        v["process"]["capabilities"]["inheritable"] = serde_json::json!([]);
        v["process"]["user"]["umask"] = 0o027.into();
        v["process"]["user"]["additionalGids"] = serde_json::json!([5, 7]);
    })
    .unwrap();
    let p = b.config.process.unwrap();
    assert_eq!(p.effective, caps::CapsHashSet::from([caps::Capability::CAP_KILL]));
    assert_eq!(p.permitted.len(), 3);
    assert!(p.inheritable.is_empty());
    assert_eq!(p.ambient.len(), 3);
    assert_eq!((p.umask, p.additional_gids), (Some(0o027), vec![5, 7]));
}

#[test]
fn bad_ids_are_refused() {
    // A leading '.' is the state root's own (.spare, .new-ID, .rm-ID).
    for id in ["", ".", "..", "a/b", "../x", "a b", ".spare", ".new-x", &"x".repeat(1025)] {
        assert!(validate_id(id).is_err(), "{id:?}");
    }
    for id in ["c1", "abc-DEF_0.1+x"] {
        validate_id(id).unwrap();
    }
    let (_keep, dir) = bundle("runc-default.json", no_terminal);
    assert!(super::load(&dir, "a/b").unwrap_err().to_string().contains("'a/b'"));
}

#[test]
fn rlimits_soft_above_hard_is_refused() {
    let e = err("rlimits.json", |v| {
        no_terminal(v);
        v["process"]["rlimits"][0]["soft"] = 2048.into();
    });
    assert!(e.contains("soft <= hard"), "{e}");
    let _ = to_config;
}

#[test]
fn proc_limits_hard_column_by_resource_number() {
    let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max file size             unlimited            unlimited            bytes     \n\
Max data size             unlimited            unlimited            bytes     \n\
Max stack size            8388608              unlimited            bytes     \n\
Max core file size        0                    unlimited            bytes     \n\
Max resident set          unlimited            unlimited            bytes     \n\
Max processes             96365                96365                processes \n\
Max open files            64                   1024                 files     \n\
Max nice priority         0                    0                    \n";
    let h = super::process::parse_hard_limits(text).unwrap();
    assert_eq!(h[0], u64::MAX);
    assert_eq!(h[libc::RLIMIT_NOFILE as usize], 1024);
    assert_eq!(h[libc::RLIMIT_NPROC as usize], 96365);
    assert_eq!(h[8], 0, "a row without units");
}

/// Removes the namespace types `types` from linux.namespaces (and the terminal).
fn without(types: &[&str], v: &mut serde_json::Value) {
    no_terminal(v);
    v["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| !types.contains(&n["type"].as_str().unwrap()));
}

#[test]
fn omitted_net_ipc_uts_pid_namespaces_are_shared_and_omitted_mount_is_refused() {
    let b = load("runc-default.json", |v| {
        without(&["network", "ipc", "uts", "pid"], v);
        v["hostname"] = "".into();
    })
    .unwrap();
    let mut shared = b.config.shared_namespaces.clone();
    shared.sort();
    assert_eq!(shared, ["ipc", "net", "pid", "uts"]);
    let b = load("runc-default.json", no_terminal).unwrap();
    assert!(b.config.shared_namespaces.is_empty());
    let e = err("runc-default.json", |v| without(&["mount"], v));
    assert!(e.contains("linux.namespaces without mount") && e.contains("own mount namespace"), "{e}");
}

#[test]
fn hostname_domainname_and_sysctls_into_a_shared_namespace_are_refused() {
    let e = err("runc-default.json", |v| without(&["uts"], v));
    assert!(e.contains("invalid hostname 'runc'") && e.contains("no uts"), "{e}");
    let e = err("runc-default.json", |v| {
        without(&["uts"], v);
        v["hostname"] = "".into();
        v["domainname"] = "corp".into();
    });
    assert!(e.contains("invalid domainname 'corp'"), "{e}");
    for (ty, key) in [("network", "net.ipv4.ip_forward"), ("ipc", "kernel.shmmax"), ("ipc", "fs.mqueue.msg_max")] {
        let e = err("runc-default.json", |v| {
            without(&[ty], v);
            v["linux"]["sysctl"] = serde_json::json!({ key: "1" });
        });
        assert!(e.contains(&format!("invalid linux.sysctl '{key}'")) && e.contains(&format!("no {ty}")), "{e}");
        // With its own namespace of that type the same sysctl is fine.
        load("runc-default.json", |v| {
            no_terminal(v);
            v["linux"]["sysctl"] = serde_json::json!({ key: "1" });
        })
        .unwrap();
    }
    // A shared network namespace does not stop an ipc sysctl.
    let b = load("runc-default.json", |v| {
        without(&["network"], v);
        v["linux"]["sysctl"] = serde_json::json!({"kernel.shmmax": "1"});
    })
    .unwrap();
    assert_eq!(b.config.shared_namespaces, ["net"]);
}
