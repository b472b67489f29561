//! Unit tests of the mount plan (`plan.rs`).

use super::*;
use crate::config::Bind;

fn cfg() -> Config {
    Config::new(["true"])
}

#[test]
fn host_view_makes_private_first_and_creates_nothing_on_the_host() {
    let mut c = cfg();
    c.read_only = true;
    c.binds.push(Bind { src: "/etc".into(), dst: "/data".into(), read_only: false, opts: Default::default() });
    c.tmpfs.push(crate::config::Tmpfs { dst: "/scratch".into(), size: None, opts: Default::default() });
    let ops = build(&c);
    assert_eq!(ops[0], Op::MakePrivate);
    assert_eq!(ops[1], Op::ReadOnly("/".into()));
    assert!(ops.contains(&Op::Proc("/proc".into())));
    // Targets are made only on the fresh /dev tmpfs, never on the host's files.
    let devfs = ops.iter().position(|o| matches!(o, Op::Tmpfs { dst, .. } if dst == Path::new("/dev"))).unwrap();
    for (i, o) in ops.iter().enumerate() {
        match o {
            Op::Mkdir(p) | Op::Touch(p) => assert!(i > devfs && p.starts_with("/dev"), "{o:?}"),
            Op::PivotRoot(_) => panic!("{o:?}"),
            _ => {}
        }
    }
    assert_eq!(ops[2], Op::NoDev("/".into()), "every host mount nodev before ours");
    assert!(ops.contains(&Op::Sysfs("/sys".into())), "a fresh sysfs over the host's");
    for d in DEVICES {
        assert!(ops.contains(&Op::Device { name: d, dst: Path::new("/dev").join(d) }));
    }
    assert!(ops.contains(&Op::Devpts("/dev/pts".into())));
    assert!(ops.contains(&Op::NoDev("/data".into())), "a user bind is nodev");
    let proc_at = ops.iter().position(|o| *o == Op::Proc("/proc".into())).unwrap();
    let mask_at = ops.iter().position(|o| *o == Op::Mask("/proc/keys".into())).unwrap();
    assert!(proc_at < mask_at, "masks go on the fresh /proc");
    let sys_at = ops.iter().position(|o| *o == Op::Sysfs("/sys".into())).unwrap();
    let fw_at = ops.iter().position(|o| *o == Op::Mask("/sys/firmware".into())).unwrap();
    assert!(sys_at < fw_at, "masks go on the fresh /sys");
    assert!(ops.contains(&Op::Mask("/sys/firmware".into())));
    let bind = ops.iter().position(|o| matches!(o, Op::Bind { .. })).unwrap();
    let tmp = ops.iter().position(|o| *o == Op::Tmpfs { dst: "/tmp".into(), mode: 0o1777, size: None }).unwrap();
    assert!(bind > tmp, "user binds come after our own mounts");
    assert_eq!(
        ops[bind],
        Op::Bind { src: "/etc".into(), dst: "/data".into(), read_only: Some(false), recursive: true }
    );
    assert_eq!(ops.last(), Some(&Op::Tmpfs { dst: "/scratch".into(), mode: 0o1777, size: None }));
}

#[test]
fn rootfs_view_pivots_last_with_a_minimal_dev() {
    let mut c = cfg();
    c.rootfs = Some("/r".into());
    c.read_only = true;
    c.binds.push(Bind { src: "/etc".into(), dst: "/etc2".into(), read_only: true, opts: Default::default() });
    let ops = build(&c);
    assert_eq!(&ops[..2], &[Op::MakePrivate, Op::BindSelf("/r".into())]);
    assert_eq!(ops.last(), Some(&Op::PivotRoot("/r".into())));
    let ro = ops.iter().position(|o| *o == Op::ReadOnly("/r".into())).unwrap();
    let mk = ops.iter().position(|o| *o == Op::Mkdir("/r/etc2".into())).unwrap();
    let devfs =
        ops.iter().position(|o| *o == Op::Tmpfs { dst: "/r/dev".into(), mode: 0o755, size: Some(DEV_SIZE) }).unwrap();
    assert!(mk < ro && ro < devfs, "targets made before read-only, /dev tmpfs after it");
    for d in DEVICES {
        assert!(ops.contains(&Op::Device { name: d, dst: Path::new("/r/dev").join(d) }));
    }
    let shm = Op::Tmpfs { dst: "/r/dev/shm".into(), mode: 0o1777, size: Some(crate::config::DEFAULT_SHM_SIZE) };
    assert!(ops.contains(&shm), "/dev/shm has docker's 64M");
    assert!(ops.contains(&Op::Sysfs("/r/sys".into())));
    assert!(ops.contains(&Op::Mask("/r/proc/kcore".into())));
    assert!(ops.contains(&Op::ReadOnlyPath("/r/proc/sys".into())));
    c.privileged = true;
    assert!(!build(&c).iter().any(|o| matches!(o, Op::Mask(_) | Op::ReadOnlyPath(_))));
    assert!(ops.contains(&Op::Devpts("/r/dev/pts".into())));
    assert!(ops.contains(&Op::Bind {
        src: "/etc".into(),
        dst: "/r/etc2".into(),
        read_only: Some(true),
        recursive: true
    }));
}

fn layers(n: usize, stack: &str) -> crate::config::Layers {
    crate::config::Layers {
        lower: (0..n).map(|i| PathBuf::from(format!("/var/lib/sandbox/layers/{:064x}", i))).collect(),
        upper: "/var/lib/sandbox/containers/c/upper".into(),
        work: "/var/lib/sandbox/containers/c/work".into(),
        stack: stack.into(),
    }
}

#[test]
fn an_image_root_is_one_overlay_when_its_options_fit() {
    let mut c = cfg();
    c.rootfs = Some("/m".into());
    c.layers = Some(layers(3, "/s"));
    let ops = build(&c);
    assert_eq!(ops[0], Op::MakePrivate);
    let Op::Overlay { lower, upper, dst } = &ops[1] else { panic!("{:?}", ops[1]) };
    assert_eq!(lower[0], c.layers.as_ref().unwrap().lower[2], "top layer first");
    assert_eq!(dst, Path::new("/m"));
    assert!(upper.is_some());
    assert_eq!(ops[2], Op::BindSelf("/m".into()), "then the usual rootfs view");
    let o = overlay_options(&[PathBuf::from("/a:b,c")], None);
    assert_eq!(o, "lowerdir=/a\\:b\\,c,index=off,redirect_dir=off,metacopy=off");
}

#[test]
fn more_layers_than_one_mount_takes_are_stacked_in_order() {
    let l = layers(130, "/s");
    let ops = overlay(&l, Path::new("/m"));
    let mut seen = vec![];
    let mut stacks = std::collections::HashMap::new();
    for op in &ops {
        match op {
            Op::Mkdir(p) => assert!(p.starts_with("/s")),
            Op::Overlay { lower, upper: None, dst } => {
                assert!(lower.len() >= 2 && overlay_options(lower, None).len() <= MOUNT_DATA_MAX);
                stacks.insert(dst.clone(), lower.clone());
            }
            Op::Overlay { lower, upper: Some(u), dst } => {
                assert_eq!(dst, Path::new("/m"));
                assert!(overlay_options(lower, Some(u)).len() <= MOUNT_DATA_MAX);
                // Expand the stacks back: the order must be the image's, top first.
                for p in lower {
                    seen.extend(stacks.get(p).cloned().unwrap_or_else(|| vec![p.clone()]));
                }
            }
            other => panic!("{other:?}"),
        }
    }
    let want: Vec<PathBuf> = l.lower.iter().rev().cloned().collect();
    assert_eq!(seen, want);
    assert!(stacks.len() >= 3, "130 long paths need several stacks: {}", stacks.len());
}

#[test]
fn rootfs_targets_under_dev_are_made_on_the_new_dev() {
    let mut c = cfg();
    c.rootfs = Some("/r".into());
    c.tmpfs.push(crate::config::Tmpfs { dst: "/dev/cache".into(), size: Some(1 << 20), opts: Default::default() });
    let ops = build(&c);
    let devfs =
        ops.iter().position(|o| *o == Op::Tmpfs { dst: "/r/dev".into(), mode: 0o755, size: Some(DEV_SIZE) }).unwrap();
    let mk = ops.iter().position(|o| *o == Op::Mkdir("/r/dev/cache".into())).unwrap();
    assert!(mk > devfs);
    assert!(ops.contains(&Op::Tmpfs { dst: "/r/dev/cache".into(), mode: 0o1777, size: Some(1 << 20) }));
}

#[test]
fn the_cgroup_view_is_read_only_unless_privileged() {
    let mut c = cfg();
    let v1 = CgroupHierarchies::V1(vec!["memory".into(), "cpu,cpuacct".into(), "pids".into()]);
    let ops = cgroup_view(&c, &v1);
    assert_eq!(ops[0], Op::Detach("/sys/fs/cgroup".into()));
    assert_eq!(ops[1], Op::Tmpfs { dst: "/sys/fs/cgroup".into(), mode: 0o755, size: Some(DEV_SIZE) });
    assert!(ops.contains(&Op::Cgroup {
        dst: "/sys/fs/cgroup/cpu,cpuacct".into(),
        v1_controllers: Some("cpu,cpuacct".into())
    }));
    assert!(ops.contains(&Op::Symlink { target: "cpu,cpuacct".into(), link: "/sys/fs/cgroup/cpuacct".into() }));
    assert_eq!(ops.last(), Some(&Op::ReadOnly("/sys/fs/cgroup".into())));
    let v2 = cgroup_view(&c, &CgroupHierarchies::V2);
    assert_eq!(v2[1], Op::Cgroup { dst: "/sys/fs/cgroup".into(), v1_controllers: None });
    assert_eq!(v2.last(), Some(&Op::ReadOnly("/sys/fs/cgroup".into())));
    c.privileged = true;
    assert!(!cgroup_view(&c, &v1).iter().any(|o| matches!(o, Op::ReadOnly(_))));
}

#[test]
fn oci_mounts_keep_config_order_and_propagation_comes_after_the_pivot() {
    let mut c = Config::new(["sh"]);
    c.rootfs = Some("/r".into());
    let opts = |seq, prop: Option<&str>| crate::config::MountOpts {
        seq,
        propagation: prop.map(String::from),
        ..Default::default()
    };
    c.tmpfs.push(crate::config::Tmpfs { dst: "/t".into(), size: None, opts: opts(0, Some("shared")) });
    c.binds.push(Bind { src: "/etc".into(), dst: "/b".into(), read_only: false, opts: opts(1, None) });
    c.rootfs_propagation = Some("rslave".into());
    let ops = build(&c);
    let at = |f: &dyn Fn(&Op) -> bool| ops.iter().position(f).unwrap();
    let tmpfs = at(&|o| matches!(o, Op::Tmpfs { dst, .. } if dst == Path::new("/r/t")));
    let bind = at(&|o| matches!(o, Op::Bind { dst, recursive: true, .. } if dst == Path::new("/r/b")));
    let pivot = at(&|o| matches!(o, Op::PivotRoot(_)));
    let root = at(&|o| matches!(o, Op::Propagation { dst, kind } if dst == Path::new("/") && kind == "rslave"));
    let own = at(&|o| matches!(o, Op::Propagation { dst, kind } if dst == Path::new("/t") && kind == "shared"));
    assert!(tmpfs < bind && bind < pivot && pivot < root && root < own, "{ops:?}");
    let dev = at(&|o| matches!(o, Op::Tmpfs { dst, .. } if dst == Path::new("/r/dev")));
    let sys = at(&|o| matches!(o, Op::Sysfs(_)));
    assert!(dev < sys, "/dev before /sys, as runc: {ops:?}");
}
