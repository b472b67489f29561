//! The default seccomp filter: our own allowlist for x86_64, modelled on docker's default profile
//! (moby/profiles seccomp v0.2.3, `default.json`, with docker's default capabilities), compiled to
//! classic BPF as a binary search over ranges of syscall numbers.
//!
//! What a syscall gets:
//! - on docker's unconditional list: allowed (ptrace and process_vm_readv/writev too, as docker
//!   allows them on kernels >= 4.8, where ptrace can no longer bypass seccomp);
//! - on a list docker ties to a capability (CAP_SYS_ADMIN: mount API, unshare, setns, ...;
//!   CAP_SYS_PTRACE: kcmp, pidfd_getfd, process_madvise; CAP_SYS_NICE: mbind, set_mempolicy, ...):
//!   allowed when the run keeps that capability, EPERM otherwise;
//! - every other call x86_64 has (keyrings, kexec, io_uring, userfaultfd, swap, pivot_root, ...): EPERM;
//! - a number this table does not know (a call newer than the table, or a hole): ENOSYS, so a libc
//!   probing for a new call falls back to the old one instead of failing;
//! - clone with CLONE_NEW* flags and no CAP_SYS_ADMIN: EPERM; clone3 then answers ENOSYS (its
//!   flags are in memory a filter cannot read; libc falls back to clone); personality only the
//!   values programs use; socket(AF_VSOCK) and socket(AF_ALG): EPERM;
//! - the i386 (`int 0x80`) and x32 ABIs: EPERM for every call (their numbers differ, and i386's
//!   socketcall would hide socket's family from the filter).
//!
//! Where we differ from docker: move_pages is gated on CAP_SYS_NICE with its NUMA siblings (docker
//! denies it outright; the kernel itself wants CAP_SYS_NICE to move other processes' pages); and
//! socket's family is compared on its low 32 bits, the `int` the kernel reads (docker's 64-bit
//! `> 40` comparison lets `socket(0x1_0000_0028, ...)` through as AF_VSOCK: seen with docker's
//! default.json through `--seccomp PATH` and libseccomp 2.5.4).
//!
//! This file uses only `std`: build.rs includes it to build the program for docker's default
//! capabilities at compile time ([`DOCKER_DEFAULT_CAPS`]); the library builds the others at run
//! time, in microseconds.

/// Capability numbers (linux/capability.h), as bit positions in the masks below.
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const NET_RAW: u32 = 13;
    pub const SYS_MODULE: u32 = 16;
    pub const SYS_RAWIO: u32 = 17;
    pub const SYS_CHROOT: u32 = 18;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_PACCT: u32 = 20;
    pub const SYS_ADMIN: u32 = 21;
    pub const SYS_BOOT: u32 = 22;
    pub const SYS_NICE: u32 = 23;
    pub const SYS_TIME: u32 = 25;
    pub const SYS_TTY_CONFIG: u32 = 26;
    pub const MKNOD: u32 = 27;
    pub const AUDIT_WRITE: u32 = 29;
    pub const SETFCAP: u32 = 31;
    pub const SYSLOG: u32 = 34;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;
}

const fn bit(c: u32) -> u64 {
    1 << c
}

/// docker's default capability set (moby `oci/caps/defaults.go`), as a mask: the set whose
/// program build.rs makes at compile time.
pub const DOCKER_DEFAULT_CAPS: u64 = bit(cap::CHOWN)
    | bit(cap::DAC_OVERRIDE)
    | bit(cap::FOWNER)
    | bit(cap::FSETID)
    | bit(cap::KILL)
    | bit(cap::SETGID)
    | bit(cap::SETUID)
    | bit(cap::SETPCAP)
    | bit(cap::NET_BIND_SERVICE)
    | bit(cap::NET_RAW)
    | bit(cap::SYS_CHROOT)
    | bit(cap::MKNOD)
    | bit(cap::AUDIT_WRITE)
    | bit(cap::SETFCAP);

/// What the table says about one syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Allowed.
    Allow,
    /// EPERM.
    Deny,
    /// Allowed when the run keeps any capability of the mask, EPERM otherwise.
    Caps(u64),
    /// clone(2): allowed with CAP_SYS_ADMIN; otherwise EPERM when its flags create namespaces.
    Clone,
    /// clone3(2): allowed with CAP_SYS_ADMIN; otherwise ENOSYS, so libc falls back to clone(2).
    Clone3,
    /// personality(2): only [`PERSONALITY_OK`].
    Personality,
    /// socket(2): every family but AF_ALG and AF_VSOCK.
    Socket,
}

use Rule::{Allow as A, Clone as CLONE, Clone3 as CLONE3, Deny as E, Personality as PERSONALITY, Socket as SOCKET};
const ADMIN: Rule = Rule::Caps(bit(cap::SYS_ADMIN));
const ADMIN_OR_BPF: Rule = Rule::Caps(bit(cap::SYS_ADMIN) | bit(cap::BPF));
const ADMIN_OR_PERFMON: Rule = Rule::Caps(bit(cap::SYS_ADMIN) | bit(cap::PERFMON));
const ADMIN_OR_SYSLOG: Rule = Rule::Caps(bit(cap::SYS_ADMIN) | bit(cap::SYSLOG));
const BOOT: Rule = Rule::Caps(bit(cap::SYS_BOOT));
const CHROOT: Rule = Rule::Caps(bit(cap::SYS_CHROOT));
const DAC_READ_SEARCH: Rule = Rule::Caps(bit(cap::DAC_READ_SEARCH));
const MODULE: Rule = Rule::Caps(bit(cap::SYS_MODULE));
const NICE: Rule = Rule::Caps(bit(cap::SYS_NICE));
const PACCT: Rule = Rule::Caps(bit(cap::SYS_PACCT));
const PTRACE: Rule = Rule::Caps(bit(cap::SYS_PTRACE));
const RAWIO: Rule = Rule::Caps(bit(cap::SYS_RAWIO));
const TIME: Rule = Rule::Caps(bit(cap::SYS_TIME));
const TTY_CONFIG: Rule = Rule::Caps(bit(cap::SYS_TTY_CONFIG));

/// Every x86_64 syscall up to [`HIGHEST`] (arch/x86/entry/syscalls/syscall_64.tbl), ascending:
/// number, name, rule. Calls the kernel no longer implements (uselib, _sysctl, create_module,
/// tuxcall, ...) are listed as docker has them: EPERM, or allowed where docker allows them
/// (epoll_ctl_old, set_thread_area: the kernel answers ENOSYS). As in docker's profile,
/// pivot_root, migrate_pages, keyrings, kexec, io_uring and userfaultfd are EPERM whatever the
/// capabilities; move_pages is our one addition to a capability list (CAP_SYS_NICE). 336 (uprobe)
/// and 467 on (open_tree_attr, file_getattr, file_setattr, listns, ...) are newer than docker's
/// profile and so not here: they answer ENOSYS.
#[rustfmt::skip]
pub const TABLE: &[(u32, &str, Rule)] = &[
    (0, "read", A), (1, "write", A), (2, "open", A), (3, "close", A), (4, "stat", A), (5, "fstat", A),
    (6, "lstat", A), (7, "poll", A), (8, "lseek", A), (9, "mmap", A), (10, "mprotect", A), (11, "munmap", A),
    (12, "brk", A), (13, "rt_sigaction", A), (14, "rt_sigprocmask", A), (15, "rt_sigreturn", A), (16, "ioctl", A),
    (17, "pread64", A), (18, "pwrite64", A), (19, "readv", A), (20, "writev", A), (21, "access", A), (22, "pipe", A),
    (23, "select", A), (24, "sched_yield", A), (25, "mremap", A), (26, "msync", A), (27, "mincore", A),
    (28, "madvise", A), (29, "shmget", A), (30, "shmat", A), (31, "shmctl", A), (32, "dup", A), (33, "dup2", A),
    (34, "pause", A), (35, "nanosleep", A), (36, "getitimer", A), (37, "alarm", A), (38, "setitimer", A),
    (39, "getpid", A), (40, "sendfile", A), (41, "socket", SOCKET), (42, "connect", A), (43, "accept", A),
    (44, "sendto", A), (45, "recvfrom", A), (46, "sendmsg", A), (47, "recvmsg", A), (48, "shutdown", A),
    (49, "bind", A), (50, "listen", A), (51, "getsockname", A), (52, "getpeername", A), (53, "socketpair", A),
    (54, "setsockopt", A), (55, "getsockopt", A), (56, "clone", CLONE), (57, "fork", A), (58, "vfork", A),
    (59, "execve", A), (60, "exit", A), (61, "wait4", A), (62, "kill", A), (63, "uname", A), (64, "semget", A),
    (65, "semop", A), (66, "semctl", A), (67, "shmdt", A), (68, "msgget", A), (69, "msgsnd", A), (70, "msgrcv", A),
    (71, "msgctl", A), (72, "fcntl", A), (73, "flock", A), (74, "fsync", A), (75, "fdatasync", A),
    (76, "truncate", A), (77, "ftruncate", A), (78, "getdents", A), (79, "getcwd", A), (80, "chdir", A),
    (81, "fchdir", A), (82, "rename", A), (83, "mkdir", A), (84, "rmdir", A), (85, "creat", A), (86, "link", A),
    (87, "unlink", A), (88, "symlink", A), (89, "readlink", A), (90, "chmod", A), (91, "fchmod", A),
    (92, "chown", A), (93, "fchown", A), (94, "lchown", A), (95, "umask", A), (96, "gettimeofday", A),
    (97, "getrlimit", A), (98, "getrusage", A), (99, "sysinfo", A), (100, "times", A), (101, "ptrace", A),
    (102, "getuid", A), (103, "syslog", ADMIN_OR_SYSLOG), (104, "getgid", A), (105, "setuid", A), (106, "setgid", A),
    (107, "geteuid", A), (108, "getegid", A), (109, "setpgid", A), (110, "getppid", A), (111, "getpgrp", A),
    (112, "setsid", A), (113, "setreuid", A), (114, "setregid", A), (115, "getgroups", A), (116, "setgroups", A),
    (117, "setresuid", A), (118, "getresuid", A), (119, "setresgid", A), (120, "getresgid", A), (121, "getpgid", A),
    (122, "setfsuid", A), (123, "setfsgid", A), (124, "getsid", A), (125, "capget", A), (126, "capset", A),
    (127, "rt_sigpending", A), (128, "rt_sigtimedwait", A), (129, "rt_sigqueueinfo", A), (130, "rt_sigsuspend", A),
    (131, "sigaltstack", A), (132, "utime", A), (133, "mknod", A), (134, "uselib", E),
    (135, "personality", PERSONALITY), (136, "ustat", E), (137, "statfs", A), (138, "fstatfs", A), (139, "sysfs", E),
    (140, "getpriority", A), (141, "setpriority", A), (142, "sched_setparam", A), (143, "sched_getparam", A),
    (144, "sched_setscheduler", A), (145, "sched_getscheduler", A), (146, "sched_get_priority_max", A),
    (147, "sched_get_priority_min", A), (148, "sched_rr_get_interval", A), (149, "mlock", A), (150, "munlock", A),
    (151, "mlockall", A), (152, "munlockall", A), (153, "vhangup", TTY_CONFIG), (154, "modify_ldt", A),
    (155, "pivot_root", E), (156, "_sysctl", E), (157, "prctl", A), (158, "arch_prctl", A), (159, "adjtimex", A),
    (160, "setrlimit", A), (161, "chroot", CHROOT), (162, "sync", A), (163, "acct", PACCT),
    (164, "settimeofday", TIME), (165, "mount", ADMIN), (166, "umount2", ADMIN), (167, "swapon", E),
    (168, "swapoff", E), (169, "reboot", BOOT), (170, "sethostname", ADMIN), (171, "setdomainname", ADMIN),
    (172, "iopl", RAWIO), (173, "ioperm", RAWIO), (174, "create_module", E), (175, "init_module", MODULE),
    (176, "delete_module", MODULE), (177, "get_kernel_syms", E), (178, "query_module", E), (179, "quotactl", ADMIN),
    (180, "nfsservctl", E), (181, "getpmsg", E), (182, "putpmsg", E), (183, "afs_syscall", E), (184, "tuxcall", E),
    (185, "security", E), (186, "gettid", A), (187, "readahead", A), (188, "setxattr", A), (189, "lsetxattr", A),
    (190, "fsetxattr", A), (191, "getxattr", A), (192, "lgetxattr", A), (193, "fgetxattr", A), (194, "listxattr", A),
    (195, "llistxattr", A), (196, "flistxattr", A), (197, "removexattr", A), (198, "lremovexattr", A),
    (199, "fremovexattr", A), (200, "tkill", A), (201, "time", A), (202, "futex", A), (203, "sched_setaffinity", A),
    (204, "sched_getaffinity", A), (205, "set_thread_area", A), (206, "io_setup", A), (207, "io_destroy", A),
    (208, "io_getevents", A), (209, "io_submit", A), (210, "io_cancel", A), (211, "get_thread_area", A),
    (212, "lookup_dcookie", ADMIN), (213, "epoll_create", A), (214, "epoll_ctl_old", A), (215, "epoll_wait_old", A),
    (216, "remap_file_pages", A), (217, "getdents64", A), (218, "set_tid_address", A), (219, "restart_syscall", A),
    (220, "semtimedop", A), (221, "fadvise64", A), (222, "timer_create", A), (223, "timer_settime", A),
    (224, "timer_gettime", A), (225, "timer_getoverrun", A), (226, "timer_delete", A), (227, "clock_settime", TIME),
    (228, "clock_gettime", A), (229, "clock_getres", A), (230, "clock_nanosleep", A), (231, "exit_group", A),
    (232, "epoll_wait", A), (233, "epoll_ctl", A), (234, "tgkill", A), (235, "utimes", A), (236, "vserver", E),
    (237, "mbind", NICE), (238, "set_mempolicy", NICE), (239, "get_mempolicy", NICE), (240, "mq_open", A),
    (241, "mq_unlink", A), (242, "mq_timedsend", A), (243, "mq_timedreceive", A), (244, "mq_notify", A),
    (245, "mq_getsetattr", A), (246, "kexec_load", E), (247, "waitid", A), (248, "add_key", E),
    (249, "request_key", E), (250, "keyctl", E), (251, "ioprio_set", A), (252, "ioprio_get", A),
    (253, "inotify_init", A), (254, "inotify_add_watch", A), (255, "inotify_rm_watch", A), (256, "migrate_pages", E),
    (257, "openat", A), (258, "mkdirat", A), (259, "mknodat", A), (260, "fchownat", A), (261, "futimesat", A),
    (262, "newfstatat", A), (263, "unlinkat", A), (264, "renameat", A), (265, "linkat", A), (266, "symlinkat", A),
    (267, "readlinkat", A), (268, "fchmodat", A), (269, "faccessat", A), (270, "pselect6", A), (271, "ppoll", A),
    (272, "unshare", ADMIN), (273, "set_robust_list", A), (274, "get_robust_list", A), (275, "splice", A),
    (276, "tee", A), (277, "sync_file_range", A), (278, "vmsplice", A), (279, "move_pages", NICE),
    (280, "utimensat", A), (281, "epoll_pwait", A), (282, "signalfd", A), (283, "timerfd_create", A),
    (284, "eventfd", A), (285, "fallocate", A), (286, "timerfd_settime", A), (287, "timerfd_gettime", A),
    (288, "accept4", A), (289, "signalfd4", A), (290, "eventfd2", A), (291, "epoll_create1", A), (292, "dup3", A),
    (293, "pipe2", A), (294, "inotify_init1", A), (295, "preadv", A), (296, "pwritev", A),
    (297, "rt_tgsigqueueinfo", A), (298, "perf_event_open", ADMIN_OR_PERFMON), (299, "recvmmsg", A),
    (300, "fanotify_init", ADMIN), (301, "fanotify_mark", A), (302, "prlimit64", A), (303, "name_to_handle_at", A),
    (304, "open_by_handle_at", DAC_READ_SEARCH), (305, "clock_adjtime", A), (306, "syncfs", A), (307, "sendmmsg", A),
    (308, "setns", ADMIN), (309, "getcpu", A), (310, "process_vm_readv", A), (311, "process_vm_writev", A),
    (312, "kcmp", PTRACE), (313, "finit_module", MODULE), (314, "sched_setattr", A), (315, "sched_getattr", A),
    (316, "renameat2", A), (317, "seccomp", A), (318, "getrandom", A), (319, "memfd_create", A),
    (320, "kexec_file_load", E), (321, "bpf", ADMIN_OR_BPF), (322, "execveat", A), (323, "userfaultfd", E),
    (324, "membarrier", A), (325, "mlock2", A), (326, "copy_file_range", A), (327, "preadv2", A),
    (328, "pwritev2", A), (329, "pkey_mprotect", A), (330, "pkey_alloc", A), (331, "pkey_free", A),
    (332, "statx", A), (333, "io_pgetevents", A), (334, "rseq", A), (335, "uretprobe", A),
    (424, "pidfd_send_signal", A), (425, "io_uring_setup", E), (426, "io_uring_enter", E),
    (427, "io_uring_register", E), (428, "open_tree", ADMIN), (429, "move_mount", ADMIN), (430, "fsopen", ADMIN),
    (431, "fsconfig", ADMIN), (432, "fsmount", ADMIN), (433, "fspick", ADMIN), (434, "pidfd_open", A),
    (435, "clone3", CLONE3), (436, "close_range", A), (437, "openat2", A), (438, "pidfd_getfd", PTRACE),
    (439, "faccessat2", A), (440, "process_madvise", PTRACE), (441, "epoll_pwait2", A),
    (442, "mount_setattr", ADMIN), (443, "quotactl_fd", ADMIN), (444, "landlock_create_ruleset", A),
    (445, "landlock_add_rule", A), (446, "landlock_restrict_self", A), (447, "memfd_secret", A),
    (448, "process_mrelease", A), (449, "futex_waitv", A), (450, "set_mempolicy_home_node", NICE),
    (451, "cachestat", A), (452, "fchmodat2", A), (453, "map_shadow_stack", A), (454, "futex_wake", A),
    (455, "futex_wait", A), (456, "futex_requeue", A), (457, "statmount", A), (458, "listmount", A),
    (459, "lsm_get_self_attr", ADMIN), (460, "lsm_set_self_attr", ADMIN), (461, "lsm_list_modules", ADMIN),
    (462, "mseal", A), (463, "setxattrat", A), (464, "getxattrat", A), (465, "listxattrat", A),
    (466, "removexattrat", A),
];

/// The highest number [`TABLE`] knows (removexattrat, Linux 6.13): above it, ENOSYS.
pub const HIGHEST: u32 = 466;

/// personality(2) values programs use (PER_LINUX, PER_LINUX32, UNAME26 with either, and the
/// 0xffffffff query), as docker allows; anything else, e.g. ADDR_NO_RANDOMIZE or
/// READ_IMPLIES_EXEC, is denied.
pub const PERSONALITY_OK: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// clone(2) flags that create namespaces (CLONE_NEWNS, _NEWCGROUP, _NEWUTS, _NEWIPC, _NEWUSER,
/// _NEWPID, _NEWNET: docker's mask 0x7e020000). CLONE_NEWTIME (0x80) only works through clone3
/// and unshare: in clone's flags that bit is part of the exit signal.
pub const NAMESPACE_FLAGS: u32 = 0x7e02_0000;

/// Socket families denied in every mode but unconfined, as docker: AF_ALG (38, the kernel's
/// crypto API, e.g. CVE-2019-8912) and AF_VSOCK (40, a channel to the hypervisor, e.g.
/// CVE-2021-26708).
pub const DENIED_FAMILIES: [u32; 2] = [38, 40];

/// The capabilities the program depends on; two sets equal on these get the same program.
pub const RELEVANT_CAPS: u64 = {
    let mut m = bit(cap::SYS_ADMIN);
    let mut i = 0;
    while i < TABLE.len() {
        if let Rule::Caps(c) = TABLE[i].2 {
            m |= c;
        }
        i += 1;
    }
    m
};

/// The table's rule for syscall `nr`, if it knows `nr`.
pub fn rule(nr: u32) -> Option<Rule> {
    TABLE.binary_search_by_key(&nr, |e| e.0).ok().map(|i| TABLE[i].2)
}

/// What the program does with one syscall number, given the run's capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Eperm,
    Enosys,
    /// Look at clone's flags.
    CloneFlags,
    /// Look at personality's argument.
    Personality,
    /// Look at socket's family.
    Socket,
}

/// The verdict for syscall `nr` of the x86_64 ABI under capabilities `caps` (a mask of [`cap`]).
pub fn verdict(nr: u32, caps: u64) -> Verdict {
    let admin = caps & bit(cap::SYS_ADMIN) != 0;
    match rule(nr) {
        None => Verdict::Enosys,
        Some(Rule::Allow) => Verdict::Allow,
        Some(Rule::Deny) => Verdict::Eperm,
        Some(Rule::Caps(m)) if caps & m != 0 => Verdict::Allow,
        Some(Rule::Caps(_)) => Verdict::Eperm,
        Some(Rule::Clone | Rule::Clone3) if admin => Verdict::Allow,
        Some(Rule::Clone) => Verdict::CloneFlags,
        Some(Rule::Clone3) => Verdict::Enosys,
        Some(Rule::Personality) => Verdict::Personality,
        Some(Rule::Socket) => Verdict::Socket,
    }
}

/// One classic-BPF instruction: the fields of `struct sock_filter` (code, jt, jf, k).
pub type Insn = (u16, u8, u8, u32);

// linux/bpf_common.h and linux/seccomp.h, spelled out so this file needs only std.
const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET: u16 = 0x06; // BPF_RET | BPF_K
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_EPERM: u32 = 0x0005_0000 | 1; // SECCOMP_RET_ERRNO | EPERM
pub const RET_ENOSYS: u32 = 0x0005_0000 | 38; // SECCOMP_RET_ERRNO | ENOSYS
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
// struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (low word, little-endian) and 20.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LO: u32 = 16;
const ARG0_HI: u32 = 20;

/// The program for capabilities `caps`: the ABI checks, then a binary search over the ranges of
/// numbers that share a verdict, so a call costs about log2(ranges) comparisons (~7) instead of
/// one per listed call. The search reads only nr and arch until it reaches clone, personality or
/// socket, so the kernel's seccomp action cache (Linux 5.11) can skip the filter for allowed calls.
pub fn program(caps: u64) -> Vec<Insn> {
    let mut p: Vec<Insn> = vec![
        (LD_ABS, 0, 0, ARCH),
        (JEQ, 1, 0, AUDIT_ARCH_X86_64),
        (RET, 0, 0, RET_EPERM), // i386 (int 0x80), or any other ABI
        (LD_ABS, 0, 0, NR),
        (JGE, 0, 1, X32_SYSCALL_BIT),
        (RET, 0, 0, RET_EPERM), // the x32 ABI (and numbers no ABI has)
    ];
    p.extend(search(&ranges(caps)));
    p
}

/// Runs of consecutive numbers with one verdict, as (first number, verdict), ascending from 0;
/// the last (ENOSYS, above [`HIGHEST`]) runs up to the x32 bit.
pub fn ranges(caps: u64) -> Vec<(u32, Verdict)> {
    let mut r: Vec<(u32, Verdict)> = Vec::new();
    for nr in 0..=HIGHEST + 1 {
        let v = verdict(nr, caps);
        if r.last().map(|l| l.1) != Some(v) {
            r.push((nr, v));
        }
    }
    r
}

/// The search over `r` (the accumulator holds nr): split in halves at the upper half's first
/// number; the lower half follows the comparison, the upper half follows the lower. Classic BPF
/// jumps only forward, at most 255 instructions on a condition: a longer lower half is jumped
/// over with `ja`, whose offset has 32 bits.
pub fn search(r: &[(u32, Verdict)]) -> Vec<Insn> {
    if let [(_, v)] = r {
        return leaf(*v);
    }
    let mid = r.len() / 2;
    let (lower, upper) = (search(&r[..mid]), search(&r[mid..]));
    let mut p = Vec::with_capacity(lower.len() + upper.len() + 2);
    match u8::try_from(lower.len()) {
        Ok(skip) => p.push((JGE, skip, 0, r[mid].0)),
        Err(_) => p.extend([(JGE, 0, 1, r[mid].0), (JA, 0, 0, lower.len() as u32)]),
    }
    p.extend(lower);
    p.extend(upper);
    p
}

/// The instructions that end a search: a return, or the argument checks of the special calls.
fn leaf(v: Verdict) -> Vec<Insn> {
    match v {
        Verdict::Allow => vec![(RET, 0, 0, RET_ALLOW)],
        Verdict::Eperm => vec![(RET, 0, 0, RET_EPERM)],
        Verdict::Enosys => vec![(RET, 0, 0, RET_ENOSYS)],
        // The kernel reads clone's flags as an unsigned long; the namespace flags are in the low word.
        Verdict::CloneFlags => {
            vec![(LD_ABS, 0, 0, ARG0_LO), (JSET, 0, 1, NAMESPACE_FLAGS), (RET, 0, 0, RET_EPERM), (RET, 0, 0, RET_ALLOW)]
        }
        // Nothing in the high word (stricter than the kernel, which reads an unsigned int), then
        // one of the listed values.
        Verdict::Personality => {
            let n = PERSONALITY_OK.len() as u8;
            let mut p = vec![(LD_ABS, 0, 0, ARG0_HI), (JEQ, 0, n + 1, 0), (LD_ABS, 0, 0, ARG0_LO)];
            for (i, v) in PERSONALITY_OK.iter().enumerate() {
                p.push((JEQ, n - i as u8, 0, *v));
            }
            p.extend([(RET, 0, 0, RET_EPERM), (RET, 0, 0, RET_ALLOW)]);
            p
        }
        // The family is an int: the kernel reads the low word only, so the filter does too.
        Verdict::Socket => {
            let n = DENIED_FAMILIES.len() as u8;
            let mut p = vec![(LD_ABS, 0, 0, ARG0_LO)];
            for (i, f) in DENIED_FAMILIES.iter().enumerate() {
                p.push((JEQ, n - i as u8, 0, *f));
            }
            p.extend([(RET, 0, 0, RET_ALLOW), (RET, 0, 0, RET_EPERM)]);
            p
        }
    }
}
