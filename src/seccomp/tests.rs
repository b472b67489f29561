//! The default program, run through a tiny classic-BPF interpreter and compared with what the
//! table intends, for every syscall number 0..=600, the other ABIs and several capability sets.

use std::borrow::Cow;

use caps::{Capability, CapsHashSet};

use super::default::{self, cap, Rule, AUDIT_ARCH_X86_64, RET_ALLOW, RET_ENOSYS, RET_EPERM, X32_SYSCALL_BIT};
use super::*;

const X86: u32 = AUDIT_ARCH_X86_64;
const I386: u32 = 0x4000_0003;
const AARCH64: u32 = 0xc000_00b7;

fn default_caps() -> CapsHashSet {
    crate::caps::DEFAULT.into_iter().collect()
}

fn with(extra: &[Capability]) -> CapsHashSet {
    let mut c = default_caps();
    c.extend(extra.iter().copied());
    c
}

/// Runs `prog` on a seccomp_data of (arch, nr, args); returns the action and the number of
/// instructions executed.
fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let data = |off: u32| match off {
        0 => nr,
        4 => arch,
        16..=63 if off % 4 == 0 => {
            let a = args[(off as usize - 16) / 8];
            if off % 8 == 0 {
                a as u32
            } else {
                (a >> 32) as u32
            }
        }
        _ => panic!("load of offset {off}"),
    };
    let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
    loop {
        let i = prog[pc];
        steps += 1;
        match i.code as u32 {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => acc = data(i.k),
            c if c == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
            c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                pc += if acc == i.k { i.jt } else { i.jf } as usize;
            }
            c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => {
                pc += if acc >= i.k { i.jt } else { i.jf } as usize;
            }
            c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => {
                pc += if acc & i.k != 0 { i.jt } else { i.jf } as usize;
            }
            c if c == libc::BPF_RET | libc::BPF_K => return (i.k, steps),
            c => panic!("code {c:#x}"),
        }
        pc += 1;
    }
}

fn verdict_of(prog: &[libc::sock_filter], nr: u32, arg0: u64) -> u32 {
    run(prog, X86, nr, [arg0, 0, 0, 0, 0, 0]).0
}

/// What the table intends, written out from its rules (not from the builder's verdicts).
fn intent(caps: u64, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    if arch != X86 || nr >= X32_SYSCALL_BIT {
        return RET_EPERM;
    }
    let admin = caps & 1 << cap::SYS_ADMIN != 0;
    let ok = |b: bool| if b { RET_ALLOW } else { RET_EPERM };
    match default::rule(nr) {
        None => RET_ENOSYS,
        Some(Rule::Allow) => RET_ALLOW,
        Some(Rule::Deny) => RET_EPERM,
        Some(Rule::Caps(m)) => ok(caps & m != 0),
        Some(Rule::Clone) => ok(admin || args[0] as u32 & 0x7e02_0000 == 0),
        Some(Rule::Clone3) if admin => RET_ALLOW,
        Some(Rule::Clone3) => RET_ENOSYS,
        Some(Rule::Personality) => ok(args[0] >> 32 == 0 && PERSONALITY_OK.contains(&(args[0] as u32))),
        Some(Rule::Socket) => ok(!matches!(args[0] as u32, 38 | 40)),
    }
}

/// First arguments that exercise clone's flags, personality's values and socket's families.
const ARG0S: [u64; 16] = [
    0,
    1,
    2,
    38,
    39,
    40,
    41,
    0x8,
    0x20008,
    0x4_0000,
    0xffff_ffff,
    0x1_0000_0028,
    0x1_0000_0000,
    (libc::CLONE_VM | libc::CLONE_THREAD | libc::SIGCHLD) as u64,
    (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64,
    (libc::CLONE_NEWNET as u64) | 0xffff_ffff_0000_0000,
];

#[test]
fn every_number_gets_the_tables_verdict_for_each_capability_set() {
    let sets = [
        default_caps(),
        with(&[Capability::CAP_SYS_ADMIN]),
        with(&[Capability::CAP_SYS_PTRACE]),
        with(&[Capability::CAP_SYS_NICE]),
        with(&[Capability::CAP_NET_ADMIN]),
        crate::caps::all(),
        CapsHashSet::new(),
    ];
    let mut deepest = 0;
    for caps in &sets {
        let mask = cap_mask(caps);
        let prog = default_program(caps);
        for nr in (0..=600).chain([1000, 0x3fff_ffff]) {
            for arg0 in ARG0S {
                let args = [arg0, 7, 0, 0, 0, 0];
                let (got, steps) = run(&prog, X86, nr, args);
                assert_eq!(got, intent(mask, X86, nr, args), "nr {nr} arg0 {arg0:#x} caps {caps:?}");
                deepest = deepest.max(steps);
            }
            for (arch, nr) in [(X86, nr | X32_SYSCALL_BIT), (I386, nr), (AARCH64, nr)] {
                assert_eq!(run(&prog, arch, nr, [0; 6]).0, RET_EPERM, "arch {arch:#x} nr {nr:#x}");
            }
        }
        assert_eq!(verdict_of(&prog, u32::MAX, 0), RET_EPERM, "nr -1 is past the x32 bit");
    }
    // The binary search: the ABI checks (6), ~log2(ranges) comparisons, then at most personality's
    // 10 instructions. A linear allowlist would take hundreds.
    let ranges = default::ranges(default::DOCKER_DEFAULT_CAPS).len();
    eprintln!("default program: {} instructions, {ranges} ranges, deepest path {deepest}", DEFAULT_PROGRAM.len());
    assert!(deepest <= 6 + 2 + (ranges as f64).log2().ceil() as usize + 10, "deepest path {deepest}");
}

#[test]
fn the_compile_time_program_is_the_run_time_build_for_docker_defaults() {
    assert_eq!(default::DOCKER_DEFAULT_CAPS, cap_mask(&default_caps()));
    let runtime = default::program(default::DOCKER_DEFAULT_CAPS & default::RELEVANT_CAPS);
    let fields: Vec<_> = DEFAULT_PROGRAM.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
    assert_eq!(fields, runtime);
    assert!(matches!(default_program(&default_caps()), Cow::Borrowed(_)));
    // A capability the program does not look at keeps the static program; one it does, not.
    assert!(matches!(default_program(&with(&[Capability::CAP_NET_ADMIN])), Cow::Borrowed(_)));
    assert!(matches!(default_program(&with(&[Capability::CAP_SYS_PTRACE])), Cow::Owned(_)));
}

#[test]
fn program_is_valid_classic_bpf() {
    assert_eq!((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, DEFAULT_PROGRAM[0].code);
    for caps in [default::DOCKER_DEFAULT_CAPS, u64::MAX, 0] {
        let p = default::program(caps & default::RELEVANT_CAPS);
        assert!(p.len() < 4096, "BPF_MAXINSNS");
        assert_eq!(p.last().unwrap().0, libc::BPF_RET as u16, "ends with a return");
        for (at, (code, jt, jf, k)) in p.iter().enumerate() {
            let far = match *code as u32 {
                c if c == libc::BPF_JMP | libc::BPF_JA => *k as usize,
                c if c & 0x07 == libc::BPF_JMP => (*jt).max(*jf) as usize,
                _ => continue,
            };
            assert!(at + 1 + far < p.len(), "jump out of the program at {at}");
        }
    }
}

#[test]
fn long_lower_halves_are_jumped_over_with_ja() {
    // 600 alternating ranges: the root's lower half is far longer than a conditional jump reaches.
    let r: Vec<(u32, default::Verdict)> =
        (0..600).map(|n| (n * 2, if n % 2 == 0 { default::Verdict::Allow } else { default::Verdict::Eperm })).collect();
    let p: Vec<libc::sock_filter> =
        default::search(&r).into_iter().map(|(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k }).collect();
    assert!(p.iter().any(|i| i.code as u32 == libc::BPF_JMP | libc::BPF_JA));
    for nr in 0..1300u32 {
        // The accumulator holds nr at the search's start; our `run` loads it from the data.
        let mut prog = vec![libc::sock_filter { code: 0x20, jt: 0, jf: 0, k: 0 }];
        prog.extend(&p);
        let want = if (nr / 2).min(599) % 2 == 0 { RET_ALLOW } else { RET_EPERM };
        assert_eq!(run(&prog, X86, nr, [0; 6]).0, want, "nr {nr}");
    }
}

/// The table's number for `name`.
fn nr(name: &str) -> u32 {
    default::TABLE.iter().find(|e| e.1 == name).unwrap_or_else(|| panic!("{name} not in the table")).0
}

#[test]
fn table_numbers_are_x86_64s() {
    let t = default::TABLE;
    assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "ascending, no duplicates");
    assert_eq!(t.last().unwrap().0, default::HIGHEST);
    for (n, c) in [
        ("read", libc::SYS_read),
        ("clone", libc::SYS_clone),
        ("personality", libc::SYS_personality),
        ("socket", libc::SYS_socket),
        ("kcmp", libc::SYS_kcmp),
        ("move_pages", libc::SYS_move_pages),
        ("rseq", libc::SYS_rseq),
        ("pidfd_send_signal", libc::SYS_pidfd_send_signal),
        ("clone3", libc::SYS_clone3),
        ("set_mempolicy_home_node", libc::SYS_set_mempolicy_home_node),
        ("fchmodat2", libc::SYS_fchmodat2),
        ("mseal", libc::SYS_mseal),
    ] {
        assert_eq!(i64::from(nr(n)), c, "{n}");
    }
    // Every number the system's kernel headers name, where they are installed.
    let h = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
    let Ok(text) = std::fs::read_to_string(h) else {
        eprintln!("SKIPPED the header cross-check: {h} is not installed (linux-libc-dev)");
        return;
    };
    let mut seen = 0;
    for l in text.lines() {
        let mut w = l.split_whitespace();
        if let (Some("#define"), Some(name), Some(num)) = (w.next(), w.next(), w.next()) {
            let (Some(name), Ok(num)) = (name.strip_prefix("__NR_"), num.parse::<u32>()) else { continue };
            let entry = t.iter().find(|e| e.0 == num).unwrap_or_else(|| panic!("{num} ({name}) not in the table"));
            assert_eq!(entry.1, name, "number {num}");
            seen += 1;
        }
    }
    assert!(seen > 300, "read {seen} numbers from {h}");
}

#[test]
fn docker_semantics_for_the_default_capabilities() {
    let p = default_program(&default_caps());
    let allowed = [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "execve",
        "exit_group",
        "fork",
        "vfork",
        "wait4",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "name_to_handle_at",
        "clock_adjtime",
        "adjtimex",
        "chroot",
        "arch_prctl",
        "modify_ldt",
        "rseq",
        "uretprobe",
        "mseal",
        "statmount",
        "listmount",
        "futex_waitv",
        "seccomp",
        "landlock_create_ruleset",
        "memfd_secret",
        "io_setup",
        "io_submit",
        "pidfd_open",
        "removexattrat",
    ];
    for n in allowed {
        assert_eq!(verdict_of(&p, nr(n), 0), RET_ALLOW, "{n}");
    }
    let denied = [
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "kexec_load",
        "kexec_file_load",
        "open_by_handle_at",
        "init_module",
        "finit_module",
        "delete_module",
        "create_module",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "userfaultfd",
        "perf_event_open",
        "lookup_dcookie",
        "acct",
        "swapon",
        "swapoff",
        "reboot",
        "settimeofday",
        "clock_settime",
        "syslog",
        "vhangup",
        "nfsservctl",
        "uselib",
        "ustat",
        "sysfs",
        "_sysctl",
        "fanotify_init",
        "quotactl",
        "quotactl_fd",
        "mount",
        "umount2",
        "pivot_root",
        "unshare",
        "setns",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "kcmp",
        "pidfd_getfd",
        "process_madvise",
        "mbind",
        "set_mempolicy",
        "get_mempolicy",
        "move_pages",
        "set_mempolicy_home_node",
        "migrate_pages",
        "iopl",
        "ioperm",
        "sethostname",
        "setdomainname",
        "lsm_get_self_attr",
        "tuxcall",
        "vserver",
    ];
    for n in denied {
        assert_eq!(verdict_of(&p, nr(n), 0), RET_EPERM, "{n}");
    }
    // Newer than the table, in holes, or never assigned: ENOSYS, so libc falls back.
    for n in [336, 400, 467, 470, 471, 512, 1000] {
        assert_eq!(verdict_of(&p, n, 0), RET_ENOSYS, "{n}");
    }
    let clone = nr("clone");
    assert_eq!(verdict_of(&p, clone, (libc::CLONE_VM | libc::SIGCHLD) as u64), RET_ALLOW);
    assert_eq!(verdict_of(&p, clone, (libc::CLONE_NEWNET | libc::SIGCHLD) as u64), RET_EPERM);
    assert_eq!(verdict_of(&p, nr("clone3"), 0), RET_ENOSYS);
    let socket = nr("socket");
    for (family, want) in
        [(libc::AF_UNIX, RET_ALLOW), (libc::AF_INET6, RET_ALLOW), (libc::AF_NETLINK, RET_ALLOW), (39, RET_ALLOW)]
    {
        assert_eq!(verdict_of(&p, socket, family as u64), want, "family {family}");
    }
    for family in [libc::AF_VSOCK as u64, libc::AF_ALG as u64, 0x1_0000_0028, 0xffff_ffff_0000_0026] {
        assert_eq!(verdict_of(&p, socket, family), RET_EPERM, "family {family:#x}");
    }
}

#[test]
fn each_capability_allows_what_docker_ties_to_it() {
    use Capability::*;
    let gated: [(Capability, &[&str]); 13] = [
        (
            CAP_SYS_ADMIN,
            &["mount", "umount2", "unshare", "setns", "fsopen", "syslog", "bpf", "quotactl", "sethostname"],
        ),
        (CAP_SYS_PTRACE, &["kcmp", "pidfd_getfd", "process_madvise"]),
        (CAP_SYS_NICE, &["mbind", "set_mempolicy", "get_mempolicy", "move_pages", "set_mempolicy_home_node"]),
        (CAP_SYS_BOOT, &["reboot"]),
        (CAP_SYS_MODULE, &["init_module", "finit_module", "delete_module"]),
        (CAP_SYS_PACCT, &["acct"]),
        (CAP_SYS_RAWIO, &["iopl", "ioperm"]),
        (CAP_SYS_TIME, &["settimeofday", "clock_settime"]),
        (CAP_SYS_TTY_CONFIG, &["vhangup"]),
        (CAP_SYSLOG, &["syslog"]),
        (CAP_BPF, &["bpf"]),
        (CAP_PERFMON, &["perf_event_open"]),
        (CAP_DAC_READ_SEARCH, &["open_by_handle_at"]),
    ];
    let default = default_program(&default_caps());
    for (c, names) in gated {
        let p = default_program(&with(&[c]));
        for n in names {
            assert_eq!(verdict_of(&default, nr(n), 0), RET_EPERM, "{n} without {c}");
            assert_eq!(verdict_of(&p, nr(n), 0), RET_ALLOW, "{n} with {c}");
        }
        // Nothing else opens up: e.g. keyrings and io_uring stay denied with any one capability.
        for n in ["keyctl", "io_uring_setup", "kexec_load", "pivot_root", "migrate_pages"] {
            assert_eq!(verdict_of(&p, nr(n), 0), RET_EPERM, "{n} with {c}");
        }
    }
    // CAP_SYS_CHROOT is docker's default: dropping it closes chroot.
    let mut no_chroot = default_caps();
    no_chroot.remove(&CAP_SYS_CHROOT);
    assert_eq!(verdict_of(&default_program(&no_chroot), nr("chroot"), 0), RET_EPERM);
    // With CAP_SYS_ADMIN: namespaces are the capability's business, clone3 is allowed.
    let admin = default_program(&with(&[CAP_SYS_ADMIN]));
    assert_eq!(verdict_of(&admin, nr("clone"), libc::CLONE_NEWNS as u64), RET_ALLOW);
    assert_eq!(verdict_of(&admin, nr("clone3"), 0), RET_ALLOW);
}

#[test]
fn personality_allows_only_the_listed_values() {
    let p = default_program(&default_caps());
    let pers = nr("personality");
    for v in PERSONALITY_OK {
        assert_eq!(verdict_of(&p, pers, v as u64), RET_ALLOW, "{v:#x}");
    }
    for v in [0x40000u64, 0x400000, 0x1, 0x20001, 0xffff_fffe, 0x1_0000_0000] {
        assert_eq!(verdict_of(&p, pers, v), RET_EPERM, "{v:#x}");
    }
}
