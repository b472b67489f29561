//! `--seccomp PATH`: a docker/OCI JSON seccomp profile, compiled by libseccomp.

use caps::{Capability, CapsHashSet};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use serde::Deserialize;

use crate::error::Error;

fn ctx_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Seccomp(format!("{what}: {e}"))
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

pub fn profile_filter(path: &str, json: &str, caps: &CapsHashSet) -> Result<ScmpFilterContext, Error> {
    let bad = |why: String| Error::invalid("--seccomp", path, &format!("a docker/OCI seccomp profile (JSON): {why}"));
    let p: Profile = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let default = action(&p.default_action, p.default_errno_ret).map_err(bad)?;
    let mut f = ScmpFilterContext::new(default).map_err(|e| ctx_err("seccomp_init", e))?;
    f.set_act_badarch(ScmpAction::Errno(libc::EPERM)).map_err(|e| ctx_err("bad-arch action", e))?;
    // libseccomp sets no_new_privs itself on load unless told not to: the caller decides
    // (config.json noNewPrivileges false, --allow-new-privs) and loads while it still holds
    // CAP_SYS_ADMIN when no_new_privs is off (runc does the same).
    f.set_ctl_nnp(false).map_err(|e| ctx_err("no_new_privs attribute", e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::{build, Policy};

    fn default_caps() -> CapsHashSet {
        crate::caps::DEFAULT.into_iter().collect()
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
