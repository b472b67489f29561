//! The seccomp filter: our default denylist, a docker/OCI JSON profile (`--seccomp PATH`), or
//! none (`--seccomp unconfined`). Built in the parent, so a bad profile fails before anything is
//! created; loaded in the child right before exec. Denied calls fail with EPERM unless a profile
//! says otherwise.
//!
//! The default is written for this project, not copied: it denies, in effect, what docker's
//! default profile denies to a container with docker's default capabilities.

use std::path::Path;

use caps::{Capability, CapsHashSet};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

// The default program is built for x86_64 numbers.
#[cfg(not(target_arch = "x86_64"))]
compile_error!("the default seccomp program is written for x86_64");
use serde::Deserialize;

use crate::error::Error;

/// Which filter a run gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    Default,
    Unconfined,
    /// A docker/OCI seccomp profile (JSON text) and where it came from.
    Profile {
        path: String,
        json: String,
    },
}

/// Always denied: kernel keyrings, eBPF, kexec, handle-based opens (the "shocker" escape),
/// module loading (the obsolete create_module and friends are gone from the kernel), io_uring (a large attack surface that bypasses this filter's view of syscalls),
/// userfaultfd, perf, accounting, swap, reboot, clock setting and obsolete calls.
const DENY: &[libc::c_long] = &[
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_lookup_dcookie,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    libc::SYS_nfsservctl,
    libc::SYS_uselib,
    libc::SYS_ustat,
    libc::SYS_sysfs,
    libc::SYS__sysctl,
    libc::SYS_fanotify_init,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
];

/// Denied unless the command keeps CAP_SYS_ADMIN: new mounts and namespaces.
const DENY_WITHOUT_SYS_ADMIN: &[libc::c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
];

/// clone(2) flags that create namespaces.
const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// personality(2) values programs use (PER_LINUX, PER_LINUX32, UNAME26 with either, and the
/// 0xffffffff query); anything else, e.g. ADDR_NO_RANDOMIZE or READ_IMPLIES_EXEC, is denied.
pub const PERSONALITY_OK: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

fn ctx_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Seccomp(format!("{what}: {e}"))
}

/// A filter ready to load in the child.
pub enum Filter {
    /// Our default, as classic BPF.
    Program(Vec<libc::sock_filter>),
    /// A profile, compiled by libseccomp.
    Profile(ScmpFilterContext),
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::Program(p) => write!(f, "Program({} instructions)", p.len()),
            Filter::Profile(_) => f.write_str("Profile"),
        }
    }
}

impl Filter {
    /// Installs the filter on the calling process (needs no_new_privs or CAP_SYS_ADMIN).
    pub fn load(&self) -> Result<(), String> {
        match self {
            Filter::Program(p) => crate::sys::load_bpf(p).map_err(|e| e.desc().to_string()),
            Filter::Profile(ctx) => ctx.load().map_err(|e| e.to_string()),
        }
    }
}

/// Builds the filter for `policy` and the capabilities the command keeps (`None`: unconfined).
pub fn build(policy: &Policy, caps: &CapsHashSet) -> Result<Option<Filter>, Error> {
    match policy {
        Policy::Unconfined => Ok(None),
        Policy::Default => Ok(Some(Filter::Program(default_program(caps)))),
        Policy::Profile { path, json } => profile_filter(path, json, caps).map(|f| Some(Filter::Profile(f))),
    }
}

/// Where a jump goes in the default program (resolved to offsets once the program is laid out).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum To {
    Next,
    Deny,
    Enosys,
    Allow,
    Clone,
    Personality,
}

/// One instruction before layout: opcode, operand, where it jumps when true and when false.
type Ins = (u16, u32, To, To);

/// Builds the default filter as classic BPF: one linear pass over the denied numbers. Building it
/// costs microseconds where libseccomp's generator cost about 0.85 ms of every start.
fn default_program(caps: &CapsHashSet) -> Vec<libc::sock_filter> {
    let sys_admin = caps.contains(&Capability::CAP_SYS_ADMIN);
    let mut deny: Vec<libc::c_long> = DENY.to_vec();
    if !sys_admin {
        deny.extend(DENY_WITHOUT_SYS_ADMIN);
    }
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let jge = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    let jset = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut body: Vec<Ins> = vec![
        // seccomp_data: nr at 0, arch at 4, args[0] at 16 (low word) and 20 (high word).
        (ld, 4, To::Next, To::Next),
        (jeq, AUDIT_ARCH_X86_64, To::Next, To::Deny), // i386 (int 0x80) and other ABIs
        (ld, 0, To::Next, To::Next),
        (jge, X32_SYSCALL_BIT, To::Deny, To::Next), // the x32 ABI
    ];
    for nr in deny {
        body.push((jeq, nr as u32, To::Deny, To::Next));
    }
    if !sys_admin {
        body.push((jeq, libc::SYS_clone as u32, To::Clone, To::Next));
        // clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to
        // clone(2), whose flags are checked (as docker does).
        body.push((jeq, libc::SYS_clone3 as u32, To::Enosys, To::Next));
    }
    body.push((jeq, libc::SYS_personality as u32, To::Personality, To::Next));
    body.push((ret, SECCOMP_RET_ALLOW, To::Next, To::Next));
    let mut blocks: Vec<(To, Vec<Ins>)> = vec![(To::Next, body)];
    let ns_flags = NAMESPACE_FLAGS.iter().fold(0u32, |a, f| a | *f as u32);
    blocks.push((To::Clone, vec![(ld, 16, To::Next, To::Next), (jset, ns_flags, To::Deny, To::Allow)]));
    // personality: only the values in PERSONALITY_OK, and nothing in the high word.
    let mut pers = vec![(ld, 20, To::Next, To::Next), (jeq, 0, To::Next, To::Deny), (ld, 16, To::Next, To::Next)];
    for v in PERSONALITY_OK {
        pers.push((jeq, v, To::Allow, To::Next));
    }
    pers.push((ret, SECCOMP_RET_ERRNO | libc::EPERM as u32, To::Next, To::Next));
    blocks.push((To::Personality, pers));
    blocks.push((To::Deny, vec![(ret, SECCOMP_RET_ERRNO | libc::EPERM as u32, To::Next, To::Next)]));
    blocks.push((To::Enosys, vec![(ret, SECCOMP_RET_ERRNO | libc::ENOSYS as u32, To::Next, To::Next)]));
    blocks.push((To::Allow, vec![(ret, SECCOMP_RET_ALLOW, To::Next, To::Next)]));
    // Lay out, then resolve labels to forward offsets (classic BPF only jumps forward).
    let mut at = std::collections::HashMap::new();
    let mut n = 0usize;
    for (label, b) in &blocks {
        at.entry(*label).or_insert(n);
        n += b.len();
    }
    let mut prog = Vec::with_capacity(n);
    for (_, b) in blocks {
        for (code, k, t, f) in b {
            let here = prog.len() + 1;
            let off = |to: To| if to == To::Next { 0 } else { (at[&to] - here) as u8 };
            prog.push(libc::sock_filter { code, jt: off(t), jf: off(f), k });
        }
    }
    prog
}

/// The parts of a docker/OCI seccomp profile we read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<i32>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<i32>,
    #[serde(default)]
    args: Vec<Arg>,
    #[serde(default)]
    includes: Selector,
    #[serde(default)]
    excludes: Selector,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Default, Deserialize)]
struct Selector {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

fn action(name: &str, errno: Option<i32>) -> Result<ScmpAction, String> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno.unwrap_or(libc::EPERM)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno.unwrap_or(libc::EPERM) as u16),
        "SCMP_ACT_LOG" => ScmpAction::Log,
        other => return Err(format!("unknown action '{other}'")),
    })
}

fn compare(a: &Arg) -> Result<ScmpArgCompare, String> {
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // OCI: `value` is the mask, `valueTwo` the value compared with.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(ScmpArgCompare::new(a.index, ScmpCompareOp::MaskedEqual(a.value), a.value_two))
        }
        other => return Err(format!("unknown comparison '{other}'")),
    };
    Ok(ScmpArgCompare::new(a.index, op, a.value))
}

/// Whether a rule's includes/excludes select it for this run (capabilities kept, x86_64).
fn selected(r: &Rule, caps: &CapsHashSet) -> bool {
    let ours = |n: &String| {
        let c = if n.starts_with("CAP_") { n.clone() } else { format!("CAP_{n}") };
        c.parse::<Capability>().is_ok_and(|c| caps.contains(&c))
    };
    let arch = |a: &String| matches!(a.as_str(), "amd64" | "x86_64" | "SCMP_ARCH_X86_64");
    r.includes.caps.iter().all(ours)
        && (r.includes.arches.is_empty() || r.includes.arches.iter().any(arch))
        && !r.excludes.caps.iter().any(ours)
        && !r.excludes.arches.iter().any(arch)
}

fn profile_filter(path: &str, json: &str, caps: &CapsHashSet) -> Result<ScmpFilterContext, Error> {
    let bad = |why: String| Error::invalid("--seccomp", path, &format!("a docker/OCI seccomp profile (JSON): {why}"));
    let p: Profile = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let default = action(&p.default_action, p.default_errno_ret).map_err(bad)?;
    let mut f = ScmpFilterContext::new(default).map_err(|e| ctx_err("seccomp_init", e))?;
    f.set_act_badarch(ScmpAction::Errno(libc::EPERM)).map_err(|e| ctx_err("bad-arch action", e))?;
    for r in p.syscalls.iter().filter(|r| selected(r, caps)) {
        let act = action(&r.action, r.errno_ret).map_err(bad)?;
        if act == default {
            continue;
        }
        let cmps = r.args.iter().map(compare).collect::<Result<Vec<_>, _>>().map_err(bad)?;
        for name in r.names.iter().chain(r.name.iter()) {
            // Names unknown on x86_64 (other architectures' calls) are skipped, as runc does.
            let Ok(sc) = ScmpSyscall::from_name_by_arch(name, ScmpArch::X8664) else { continue };
            let res = if cmps.is_empty() { f.add_rule(act, sc) } else { f.add_rule_conditional(act, sc, &cmps) };
            res.map_err(|e| bad(format!("rule for {name}: {e}")))?;
        }
    }
    Ok(f)
}

/// Reads a profile file for `--seccomp PATH` (or recognises `unconfined`).
pub fn policy_from_flag(v: &str) -> Result<Policy, Error> {
    match v {
        "unconfined" => Ok(Policy::Unconfined),
        "default" => Ok(Policy::Default),
        path => {
            let json = std::fs::read_to_string(Path::new(path)).map_err(|e| {
                Error::invalid("--seccomp", path, &format!("unconfined, default, or a readable JSON profile ({e})"))
            })?;
            Ok(Policy::Profile { path: path.to_string(), json })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_caps() -> CapsHashSet {
        crate::caps::DEFAULT.into_iter().collect()
    }

    /// A tiny classic-BPF interpreter for the instructions personality_filter uses.
    fn run(prog: &[libc::sock_filter], nr: u32, arch: u32, arg0: u64) -> u32 {
        let data = |off: u32| match off {
            0 => nr,
            4 => arch,
            16 => arg0 as u32,
            20 => (arg0 >> 32) as u32,
            _ => panic!("offset {off}"),
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            match i.code as u32 {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => acc = data(i.k),
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += if acc == i.k { i.jt } else { i.jf } as usize;
                }
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => {
                    pc += if acc >= i.k { i.jt } else { i.jf } as usize;
                }
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => {
                    pc += if acc & i.k != 0 { i.jt } else { i.jf } as usize;
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c => panic!("code {c:#x}"),
            }
            pc += 1;
        }
    }

    const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const X86: u32 = AUDIT_ARCH_X86_64;

    #[test]
    fn default_program_denies_the_listed_calls_and_allows_the_rest() {
        let p = default_program(&default_caps());
        for nr in DENY.iter().chain(DENY_WITHOUT_SYS_ADMIN) {
            assert_eq!(run(&p, *nr as u32, X86, 0), EPERM, "syscall {nr}");
        }
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_openat, libc::SYS_ptrace, libc::SYS_execve] {
            assert_eq!(run(&p, nr as u32, X86, 0), SECCOMP_RET_ALLOW, "syscall {nr}");
        }
        let clone = libc::SYS_clone as u32;
        assert_eq!(run(&p, clone, X86, (libc::CLONE_VM | libc::SIGCHLD) as u64), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, clone, X86, (libc::CLONE_NEWNET | libc::SIGCHLD) as u64), EPERM);
        assert_eq!(run(&p, libc::SYS_clone3 as u32, X86, 0), SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(run(&p, libc::SYS_getpid as u32, 0x4000_0003, 0), EPERM, "i386 ABI");
        assert_eq!(run(&p, X32_SYSCALL_BIT | 39, X86, 0), EPERM, "x32 ABI");
    }

    #[test]
    fn personality_allows_only_the_listed_values() {
        let p = default_program(&default_caps());
        let pers = libc::SYS_personality as u32;
        for v in PERSONALITY_OK {
            assert_eq!(run(&p, pers, X86, v as u64), SECCOMP_RET_ALLOW, "{v:#x}");
        }
        for v in [0x40000u64, 0x400000, 0x1, 0x20001, 0xffff_fffe, 0x1_0000_0000] {
            assert_eq!(run(&p, pers, X86, v), EPERM, "{v:#x}");
        }
    }

    #[test]
    fn sys_admin_leaves_mounts_and_namespaces_to_the_capability() {
        let mut c = default_caps();
        c.insert(Capability::CAP_SYS_ADMIN);
        let p = default_program(&c);
        assert_eq!(run(&p, libc::SYS_unshare as u32, X86, 0), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, libc::SYS_clone as u32, X86, libc::CLONE_NEWNS as u64), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, libc::SYS_keyctl as u32, X86, 0), EPERM);
    }

    #[test]
    fn profiles_parse_actions_args_and_capability_filters() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
            {"names":["not_a_syscall_here"],"action":"SCMP_ACT_ERRNO"},
            {"names":["ptrace"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_PTRACE"]}}]}"#;
        let p = Policy::Profile { path: "p.json".into(), json: json.into() };
        assert!(build(&p, &default_caps()).is_ok());
        let rule: Rule = serde_json::from_str(
            r#"{"names":["ptrace"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_PTRACE"]}}"#,
        )
        .unwrap();
        assert!(selected(&rule, &default_caps()));
        let mut c = default_caps();
        c.insert(Capability::CAP_SYS_PTRACE);
        assert!(!selected(&rule, &c));
    }

    #[test]
    fn bad_profiles_are_invalid_input() {
        for json in [
            "{",
            r#"{"defaultAction":"SCMP_ACT_NOPE"}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#,
        ] {
            let p = Policy::Profile { path: "bad.json".into(), json: json.into() };
            let e = build(&p, &default_caps()).unwrap_err().to_string();
            assert!(e.contains("'bad.json'") && e.contains("seccomp profile"), "{e}");
        }
    }
}
