//! cgroup v2 device controller: the run's device rules (the `devices.allow` / `devices.deny`
//! entries of its cgroup conf, in v1's file syntax: from an OCI config's linux.resources.devices,
//! src/oci/resources_devices.rs, or `--cgroup-conf`) compiled into a BPF_PROG_TYPE_CGROUP_DEVICE
//! program and attached to the group, as runc, crun and youki do: v2 has no device files.
//!
//! Semantics, the same as the v1 files give for the lists sandbox writes: the rules apply in
//! order and the last one that matches decides; `a` (the whole of "a *:* rwm") resets: every
//! earlier rule is dropped and the default becomes that rule's verdict. Without a reset the
//! default is allow (a v1 group starts with its parent's list, normally everything). A request
//! is matched per access: an allow rule matches a request all of whose accesses it lists (an
//! open for rw needs a rule with both), a deny rule one that asks any access it lists.
//!
//! The program (a hand-assembled instruction list; see runc's devicefilter.go for the same
//! encoding) loads the request from struct bpf_cgroup_dev_ctx {u32 access_type (type in the low
//! 16 bits, access in the high 16), u32 major, u32 minor}, tests the rules last first, returns
//! the first match's verdict, and the default after them. Attached with BPF_F_ALLOW_MULTI: every
//! program on the group and on its ancestors must allow (a parent's program still applies).
//! The container cannot detach it: that takes CAP_SYS_ADMIN (or CAP_BPF + CAP_NET_ADMIN) in
//! the initial user namespace, and its cgroupfs is read-only.

use std::os::fd::AsFd;
use std::path::Path;

use crate::config::Limits;
use crate::error::{Error, Result};
use crate::limits::CgroupConf;

/// Whether an entry is a device rule (as v1 names them).
pub fn is_rule(c: &CgroupConf) -> bool {
    c.file == "devices.allow" || c.file == "devices.deny"
}

/// One rule: type (`a` any, `c`, `b`), major and minor (`None`: any), access (letters of rwm as
/// BPF_DEVCG_ACC_* bits), verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
    pub allow: bool,
}

const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// Parses one entry (`a`, or `TYPE MAJOR:MINOR ACCESS` with `*` for any number).
pub fn parse(c: &CgroupConf) -> Result<Rule> {
    let allow = c.file == "devices.allow";
    let bad = || {
        Error::invalid(
            "--cgroup-conf",
            &format!("{}={}", c.file, c.value),
            "a device rule: 'a', or 'TYPE MAJOR:MINOR ACCESS' (TYPE a, c or b; numbers or *; ACCESS letters of rwm)",
        )
    };
    let v = c.value.trim();
    if v == "a" {
        return Ok(Rule { typ: 'a', major: None, minor: None, access: ACC_ALL, allow });
    }
    let f: Vec<&str> = v.split_whitespace().collect();
    let [typ, nums, acc] = f[..] else { return Err(bad()) };
    let typ = match typ {
        "a" | "c" | "b" => typ.chars().next().unwrap_or('a'),
        _ => return Err(bad()),
    };
    let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
    let num = |s: &str| if s == "*" { Ok(None) } else { s.parse::<u32>().map(Some).map_err(|_| bad()) };
    let mut access = 0;
    for ch in acc.chars() {
        access |= match ch {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => return Err(bad()),
        };
    }
    if access == 0 {
        return Err(bad());
    }
    Ok(Rule { typ, major: num(ma)?, minor: num(mi)?, access, allow })
}

/// The rules that count and the default: everything up to the last reset is dropped.
pub fn normalize(rules: &[Rule]) -> (Vec<Rule>, bool) {
    let reset = |r: &Rule| r.typ == 'a' && r.major.is_none() && r.minor.is_none() && r.access == ACC_ALL;
    match rules.iter().rposition(reset) {
        Some(i) => (rules[i + 1..].to_vec(), rules[i].allow),
        None => (rules.to_vec(), true),
    }
}

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes: class | op | source (linux/bpf_common.h, linux/bpf.h).
const LDXW: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const MOV32X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JEQ: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNEX: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, dst, src, off, imm }
}

impl Insn {
    /// The 8 bytes the kernel reads, as one little- or big-endian word of this machine.
    pub fn encode(&self) -> u64 {
        let regs = if cfg!(target_endian = "little") { self.dst | (self.src << 4) } else { (self.dst << 4) | self.src };
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = regs;
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        u64::from_ne_bytes(b)
    }
}

/// The program for `rules` (in their order, see the module's doc).
/// Registers: r2 type, r3 access asked, r4 major, r5 minor; r1 scratch once they are loaded.
pub fn compile(rules: &[Rule]) -> Vec<Insn> {
    let (rules, default) = normalize(rules);
    let mut p = vec![
        i(LDXW, 2, 1, 0, 0),
        i(AND32, 2, 0, 0, 0xffff),
        i(LDXW, 3, 1, 0, 0),
        i(RSH32, 3, 0, 0, 16),
        i(LDXW, 4, 1, 4, 0),
        i(LDXW, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // The tests, each jumping past the block (to the next rule) when it fails; offsets are
        // filled in once the block's length is known.
        let mut block: Vec<Insn> = vec![];
        match r.typ {
            'c' => block.push(i(JNE, 2, 0, 0, DEV_CHAR)),
            'b' => block.push(i(JNE, 2, 0, 0, DEV_BLOCK)),
            _ => {}
        }
        if r.access != ACC_ALL {
            block.push(i(MOV32X, 1, 3, 0, 0));
            block.push(i(AND32, 1, 0, 0, r.access as i32));
            // allow: every access asked is listed (r1 == r3); deny: any is (r1 != 0).
            block.push(if r.allow { i(JNEX, 1, 3, 0, 0) } else { i(JEQ, 1, 0, 0, 0) });
        }
        if let Some(m) = r.major {
            block.push(i(JNE, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor {
            block.push(i(JNE, 5, 0, 0, m as i32));
        }
        block.push(i(MOV32, 0, 0, 0, r.allow as i32));
        block.push(i(EXIT, 0, 0, 0, 0));
        let n = block.len();
        for (k, ins) in block.iter_mut().enumerate() {
            if matches!(ins.code, JNE | JEQ | JNEX) {
                ins.off = (n - k - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(i(MOV32, 0, 0, 0, default as i32));
    p.push(i(EXIT, 0, 0, 0, 0));
    p
}

/// The instructions as text, one a line (the unit tests' fixtures).
#[cfg(test)]
pub fn disassemble(p: &[Insn]) -> String {
    let mut s = String::new();
    for ins in p {
        let (d, sr, off, imm) = (ins.dst, ins.src, ins.off, ins.imm);
        let line = match ins.code {
            LDXW => format!("ldxw r{d}, [r{sr}+{off}]"),
            AND32 => format!("and32 r{d}, {imm:#x}"),
            RSH32 => format!("rsh32 r{d}, {imm}"),
            MOV32 => format!("mov32 r{d}, {imm}"),
            MOV32X => format!("mov32 r{d}, r{sr}"),
            JEQ => format!("jeq r{d}, {imm}, +{off}"),
            JNE => format!("jne r{d}, {imm}, +{off}"),
            JNEX => format!("jne r{d}, r{sr}, +{off}"),
            EXIT => "exit".to_string(),
            c => format!("? {c:#x}"),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// Compiles the run's device rules, if it has any, loads the program and attaches it to the
/// group `dir`, then detaches every other device program attached to `dir` itself (an earlier
/// one of ours: this replaces it; the new one is in place first, so there is no moment without).
pub fn apply(dir: &Path, l: &Limits) -> Result<()> {
    let rules: Vec<Rule> = l.cgroup_conf.iter().filter(|c| is_rule(c)).map(parse).collect::<Result<_>>()?;
    if rules.is_empty() {
        return Ok(());
    }
    let code: Vec<u64> = compile(&rules).iter().map(Insn::encode).collect();
    let prog = crate::sys::bpf::load_device_prog(&code, c"Apache").map_err(|e| Error::Unsupported {
        limit: "linux.resources.devices",
        reason: format!("cannot load the cgroup v2 device program: {e}"),
    })?;
    let fail = |what: &'static str, e| Error::io(what, dir, e);
    let group = std::fs::File::open(dir).map_err(|e| fail("cannot open cgroup", e))?;
    let before = crate::sys::bpf::device_progs(&group).map_err(|e| fail("cannot list the device programs of", e))?;
    crate::sys::bpf::attach_device_prog(&group, &prog.as_fd())
        .map_err(|e| fail("cannot attach the device program to", e))?;
    for id in before {
        let old = crate::sys::bpf::prog_by_id(id).map_err(|e| fail("cannot open an earlier device program of", e))?;
        crate::sys::bpf::detach_device_prog(&group, &old.as_fd())
            .map_err(|e| fail("cannot detach an earlier device program from", e))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;
