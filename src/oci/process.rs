//! `process`: args, env, cwd, user, capabilities, no_new_privileges, rlimits, labels, terminal.

use std::path::Path;

use oci_spec::runtime::{Capabilities, Process};

use super::{invalid, unsupported};
use crate::config::{Config, Tty};
use crate::error::Error;
use caps::CapsHashSet;

/// One `process.rlimits` entry, ready for setrlimit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: nix::sys::resource::Resource,
    pub soft: u64,
    pub hard: u64,
}

/// The rlimits of a process: refused when soft > hard or the type is not a Linux one.
pub fn rlimits(p: &Process) -> Result<Vec<Rlimit>, Error> {
    use nix::sys::resource::Resource as R;
    let mut out = Vec::new();
    for r in p.rlimits().iter().flatten() {
        let name = r.typ().to_string();
        let resource = match name.as_str() {
            "RLIMIT_AS" => R::RLIMIT_AS,
            "RLIMIT_CORE" => R::RLIMIT_CORE,
            "RLIMIT_CPU" => R::RLIMIT_CPU,
            "RLIMIT_DATA" => R::RLIMIT_DATA,
            "RLIMIT_FSIZE" => R::RLIMIT_FSIZE,
            "RLIMIT_LOCKS" => R::RLIMIT_LOCKS,
            "RLIMIT_MEMLOCK" => R::RLIMIT_MEMLOCK,
            "RLIMIT_MSGQUEUE" => R::RLIMIT_MSGQUEUE,
            "RLIMIT_NICE" => R::RLIMIT_NICE,
            "RLIMIT_NOFILE" => R::RLIMIT_NOFILE,
            "RLIMIT_NPROC" => R::RLIMIT_NPROC,
            "RLIMIT_RSS" => R::RLIMIT_RSS,
            "RLIMIT_RTPRIO" => R::RLIMIT_RTPRIO,
            "RLIMIT_RTTIME" => R::RLIMIT_RTTIME,
            "RLIMIT_SIGPENDING" => R::RLIMIT_SIGPENDING,
            "RLIMIT_STACK" => R::RLIMIT_STACK,
            _ => return Err(invalid("process.rlimits type", &name, "a Linux RLIMIT_* name")),
        };
        if r.soft() > r.hard() {
            return Err(invalid(
                "process.rlimits",
                &format!("{name} soft {} hard {}", r.soft(), r.hard()),
                "soft <= hard",
            ));
        }
        out.push(Rlimit { resource, soft: r.soft(), hard: r.hard() });
    }
    Ok(out)
}

/// The hard limits of process `pid`, indexed by resource number (RLIMIT_CPU = 0 …), from
/// /proc/PID/limits (rows in that order, `%-25s %-20s %-20s`; "unlimited" is `u64::MAX`).
pub fn hard_limits(pid: i32) -> Option<Vec<u64>> {
    parse_hard_limits(&std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?)
}

pub fn parse_hard_limits(text: &str) -> Option<Vec<u64>> {
    text.lines()
        .skip(1)
        .map(|l| {
            let hard = l.get(47..)?.split_whitespace().next()?;
            if hard == "unlimited" {
                Some(u64::MAX)
            } else {
                hard.parse().ok()
            }
        })
        .collect()
}

/// Sets the rlimits on the calling process (the runtime, before it creates the container): the
/// supervisor and the container inherit them across fork and exec. Raising a hard limit needs
/// CAP_SYS_RESOURCE: the error then names the limit.
pub fn set_rlimits(limits: &[Rlimit]) -> Result<(), Error> {
    for l in limits {
        nix::sys::resource::setrlimit(l.resource, l.soft, l.hard).map_err(|e| {
            Error::Container(format!("config.json: process.rlimits {:?} {}/{}: {e}", l.resource, l.soft, l.hard))
        })?;
    }
    Ok(())
}

/// Sets the calling process's oom_score_adj (the runtime's, before it creates the container: the
/// supervisor and the container inherit it). Lowering it below the current value needs
/// CAP_SYS_RESOURCE: the error then names the field.
pub fn set_oom_score_adj(v: Option<i32>) -> Result<(), Error> {
    let Some(v) = v else { return Ok(()) };
    std::fs::write("/proc/self/oom_score_adj", v.to_string())
        .map_err(|e| Error::Container(format!("config.json: process.oomScoreAdj {v}: {e}")))
}

pub fn apply(p: &Process, cfg: &mut Config) -> Result<(), Error> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(invalid("process.args", "[]", "the command to run and its arguments"));
    }
    if p.command_line().is_some() {
        return Err(unsupported("process.commandLine", "it is for Windows"));
    }
    cfg.command = args;
    cfg.env = Some(p.env().clone().unwrap_or_default());
    if !p.cwd().is_absolute() {
        return Err(invalid("process.cwd", &p.cwd().display().to_string(), "an absolute path"));
    }
    cfg.cwd = Some(p.cwd().clone());
    let user = p.user();
    if user.username().as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(unsupported("process.user.username", "it is for Windows; give uid and gid"));
    }
    let mut attrs = crate::caps::ProcessAttrs {
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        ..Default::default()
    };
    if let Some(m) = user.umask() {
        if m > 0o777 {
            return Err(invalid("process.user.umask", &format!("{m:o}"), "a mode of at most 0777"));
        }
        attrs.umask = Some(m);
    }
    cfg.user = Some(format!("{}:{}", user.uid(), user.gid()));
    // The pty's master goes to the engine through --console-socket: the runtime, which knows
    // whether it was given one, refuses a terminal without it (runtime::create).
    cfg.tty = if p.terminal() == Some(true) { Tty::Always } else { Tty::Never };
    cfg.no_new_privs = p.no_new_privileges().unwrap_or(false);
    cfg.capabilities = match p.capabilities() {
        Some(c) => capabilities(c, &mut attrs)?,
        None => CapsHashSet::new(),
    };
    cfg.process = Some(attrs);
    // An empty label means "none": ignored. A label asks for confinement: never dropped silently.
    super::lsm::check(p.apparmor_profile().as_deref(), p.selinux_label().as_deref(), None, Path::new("/sys"))?;
    if p.scheduler().is_some() {
        return Err(unsupported("process.scheduler", "sandbox does not set scheduling policies"));
    }
    if p.io_priority().is_some() {
        return Err(unsupported("process.ioPriority", "sandbox does not set io priorities"));
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(unsupported("process.execCPUAffinity", "sandbox does not set it yet"));
    }
    Ok(())
}

/// The five sets: bounding is sandbox's capability set (the seccomp profile's too), the four
/// others go to the process as given (each limited to bounding, so none can hold more).
/// Inheritable and ambient are only what the config names (CVE-2022-24769: never a default).
fn capabilities(
    c: &oci_spec::runtime::LinuxCapabilities,
    attrs: &mut crate::caps::ProcessAttrs,
) -> Result<CapsHashSet, Error> {
    let bounding = set("process.capabilities.bounding", c.bounding())?;
    let within = |field: &str, s: CapsHashSet| -> Result<CapsHashSet, Error> {
        match s.iter().find(|c| !bounding.contains(c)) {
            Some(c) => Err(invalid(field, &c.to_string(), "capabilities of the bounding set")),
            None => Ok(s),
        }
    };
    attrs.effective = within("process.capabilities.effective", set("process.capabilities.effective", c.effective())?)?;
    attrs.permitted = within("process.capabilities.permitted", set("process.capabilities.permitted", c.permitted())?)?;
    attrs.inheritable =
        within("process.capabilities.inheritable", set("process.capabilities.inheritable", c.inheritable())?)?;
    attrs.ambient = within("process.capabilities.ambient", set("process.capabilities.ambient", c.ambient())?)?;
    Ok(bounding)
}

fn set(field: &str, s: &Option<Capabilities>) -> Result<CapsHashSet, Error> {
    let mut out = CapsHashSet::new();
    for c in s.iter().flatten() {
        let name = c.to_string();
        let name = if name.starts_with("CAP_") { name } else { format!("CAP_{name}") };
        match name.parse::<caps::Capability>() {
            Ok(cap) => {
                out.insert(cap);
            }
            Err(_) => return Err(invalid(field, &name, "capability names known to this kernel")),
        }
    }
    Ok(out)
}
