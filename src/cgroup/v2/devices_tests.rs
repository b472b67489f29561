use super::*;

fn rules(lines: &[(&str, &str)]) -> Vec<Rule> {
    lines.iter().map(|(f, v)| parse(&CgroupConf { file: (*f).into(), value: (*v).into() }).unwrap()).collect()
}

const FX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2/");

/// A deny-all list as resources_devices writes containerd's (shortened): reset, two nodes, ptys,
/// mknod of any char device.
const LIST: [(&str, &str); 5] = [
    ("devices.deny", "a"),
    ("devices.allow", "c 1:3 rwm"),
    ("devices.deny", "c 1:3 w"),
    ("devices.allow", "c 136:* rw"),
    ("devices.allow", "c *:* m"),
];

#[test]
fn the_program_for_a_deny_all_list_matches_its_fixture() {
    let text = disassemble(&compile(&rules(&LIST)));
    let want = std::fs::read_to_string(format!("{FX}devices-deny-all.bpf")).unwrap();
    assert_eq!(text, want, "got:\n{text}");
    // No rules after a reset to allow: the program only returns 1.
    let p = compile(&rules(&[("devices.allow", "c 1:3 r"), ("devices.allow", "a")]));
    assert_eq!(disassemble(&p[6..]), "mov32 r0, 1\nexit\n");
}

#[test]
fn instructions_are_encoded_as_struct_bpf_insn() {
    // jne r4, 136, +3: code 0x55, dst 4 (low nibble on little endian), off 3, imm 136.
    let w = Insn { code: JNE, dst: 4, src: 0, off: 3, imm: 136 }.encode();
    if cfg!(target_endian = "little") {
        assert_eq!(w.to_le_bytes(), [0x55, 0x04, 3, 0, 136, 0, 0, 0]);
    }
    assert_eq!(Insn { code: MOV32X, dst: 1, src: 3, off: 0, imm: 0 }.encode().to_ne_bytes()[1], 0x31);
}

#[test]
fn bad_rules_are_refused_quoting_them() {
    for v in ["x 1:3 rwm", "c 1:3", "c 1-3 rwm", "c 1:3 rwx", "c -1:3 r", "c 1:3 "] {
        let e = parse(&CgroupConf { file: "devices.allow".into(), value: v.into() }).unwrap_err().to_string();
        assert!(e.contains(&format!("'devices.allow={v}'")) && e.contains("TYPE MAJOR:MINOR"), "{e}");
    }
}

/// The program run on one request (the few opcodes compile emits): its verdict.
fn run(p: &[Insn], typ: i32, access: u32, major: u32, minor: u32) -> bool {
    let mut r = [0u64; 11];
    let ctx = [(typ as u32) | (access << 16), major, minor];
    let mut pc = 0usize;
    loop {
        let n = p[pc];
        let (d, s) = (n.dst as usize, n.src as usize);
        let k = n.imm as i64 as u64;
        let jump = |c: bool| if c { n.off as usize } else { 0 };
        pc += 1;
        match n.code {
            LDXW => r[d] = ctx[(n.off / 4) as usize] as u64,
            AND32 => r[d] = (r[d] as u32 & n.imm as u32) as u64,
            RSH32 => r[d] = (r[d] as u32 >> n.imm) as u64,
            MOV32 => r[d] = n.imm as u32 as u64,
            MOV32X => r[d] = r[s] as u32 as u64,
            JEQ => pc += jump(r[d] == k),
            JNE => pc += jump(r[d] != k),
            JNEX => pc += jump(r[d] != r[s]),
            EXIT => return r[0] == 1,
            c => panic!("opcode {c:#x}"),
        }
    }
}

/// The same semantics written plainly: the last matching rule wins, after the last reset.
fn reference(rules: &[Rule], typ: char, access: u32, major: u32, minor: u32) -> bool {
    let (rules, mut verdict) = normalize(rules);
    for r in &rules {
        let acc = if r.allow { access & !r.access == 0 } else { access & r.access != 0 };
        if (r.typ == 'a' || r.typ == typ)
            && r.major.map_or(true, |m| m == major)
            && r.minor.map_or(true, |m| m == minor)
            && acc
        {
            verdict = r.allow;
        }
    }
    verdict
}

#[test]
fn the_program_decides_as_the_rules_say_for_every_request() {
    let lists: Vec<Vec<Rule>> = vec![
        rules(&LIST),
        rules(&[("devices.deny", "c 1:3 rwm"), ("devices.deny", "b *:* m")]),
        rules(&[("devices.allow", "a"), ("devices.deny", "a 1:* w"), ("devices.allow", "c 1:5 rw")]),
        rules(&[("devices.allow", "c 1:3 rwm"), ("devices.deny", "a"), ("devices.allow", "b 8:* r")]),
        vec![],
    ];
    for l in &lists {
        let p = compile(l);
        for (typ, t) in [('c', DEV_CHAR), ('b', DEV_BLOCK)] {
            for access in 1..=7 {
                for (ma, mi) in [(1, 3), (1, 5), (1, 1), (136, 4), (8, 0), (5, 2)] {
                    assert_eq!(
                        run(&p, t, access, ma, mi),
                        reference(l, typ, access, ma, mi),
                        "{l:?}: {typ} {ma}:{mi} access {access}"
                    );
                }
            }
        }
    }
    // A few verdicts spelled out for the deny-all list.
    let p = compile(&rules(&LIST));
    assert!(run(&p, DEV_CHAR, ACC_READ, 1, 3), "null readable");
    assert!(!run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), "the later deny of w wins");
    assert!(!run(&p, DEV_CHAR, ACC_READ, 1, 1), "/dev/mem denied");
    assert!(run(&p, DEV_CHAR, ACC_MKNOD, 1, 1), "mknod of any char device");
    assert!(!run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), "not of a block device");
    assert!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 136, 7), "any pty");
}

/// On this kernel: the program loads, attaches to a cgroup2 group (a pure v2 host's, or a hybrid
/// host's controller-less cgroup2), denies what the rules deny with EPERM, and a second apply
/// replaces the first program instead of stacking on it.
#[test]
fn the_program_loads_attaches_denies_and_is_replaced_on_a_second_apply() {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/").trim_start_matches('/').to_string();
    let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(Path::new)
        .find(|r| r.join("cgroup.procs").is_file() && !r.join("tasks").exists());
    let (Some(root), true) = (root, crate::sys::is_root()) else {
        eprintln!("SKIPPED: needs root and a cgroup2 hierarchy");
        return;
    };
    let dir = root.join(own).join(format!("sandbox-devtest-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    struct Gone<'a>(&'a Path);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(self.0);
        }
    }
    let _gone = Gone(&dir);
    let conf = |list: &[(&str, &str)]| Limits {
        cgroup_conf: list.iter().map(|(f, v)| CgroupConf { file: (*f).into(), value: (*v).into() }).collect(),
        ..Default::default()
    };
    // In the group: open /dev/null for reading, then /dev/zero; print which failed.
    let probe = |dev: &str| {
        let script = format!("echo $$ > {}/cgroup.procs && exec head -c 0 {dev}", dir.display());
        let out = std::process::Command::new("sh").args(["-c", &script]).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    apply(&dir, &conf(&[("devices.deny", "a"), ("devices.allow", "c 1:5 r")])).unwrap();
    let group = std::fs::File::open(&dir).unwrap();
    assert_eq!(crate::sys::bpf::device_progs(&group).unwrap().len(), 1);
    assert!(probe("/dev/zero").0, "allowed: {:?}", probe("/dev/zero"));
    let (ok, err) = probe("/dev/null");
    assert!(!ok && err.contains("Operation not permitted"), "denied with EPERM: {err}");
    // Replaced: /dev/null allowed now, one program on the group.
    apply(&dir, &conf(&[("devices.deny", "a"), ("devices.allow", "c 1:3 r")])).unwrap();
    assert_eq!(crate::sys::bpf::device_progs(&group).unwrap().len(), 1, "the earlier program was detached");
    assert!(probe("/dev/null").0);
    assert!(!probe("/dev/zero").0);
}
