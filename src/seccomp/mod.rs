//! The seccomp filter: our default allowlist ([`default`]), a docker/OCI JSON profile
//! (`--seccomp PATH`, [`profile`]), or none (`--seccomp unconfined`). Built in the parent, so a
//! bad profile fails before anything is created; loaded in the child right before exec.
//!
//! The default is written for this project, not copied: an allowlist modelled on docker's default
//! profile. Calls docker denies fail with EPERM, calls newer than our table with ENOSYS.

use std::borrow::Cow;
use std::path::Path;

use caps::CapsHashSet;
use libseccomp::ScmpFilterContext;

use crate::error::Error;

pub mod default;
mod profile;

// The default program is written for x86_64 numbers.
#[cfg(not(target_arch = "x86_64"))]
compile_error!("the default seccomp program is written for x86_64");

pub use default::PERSONALITY_OK;

// `DEFAULT_PROGRAM`: the program for docker's default capabilities, built at compile time by
// build.rs from the same `default` module the run-time builder below uses.
include!(concat!(env!("OUT_DIR"), "/default_program.rs"));

/// Which filter a run gets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Default,
    Unconfined,
    /// A docker/OCI seccomp profile (JSON text) and where it came from.
    Profile {
        path: String,
        json: String,
    },
}

/// A filter ready to load in the child.
pub enum Filter {
    /// Our default, as classic BPF: the static program for docker's default capabilities, or one
    /// built for this run's.
    Program(Cow<'static, [libc::sock_filter]>),
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
        Policy::Profile { path, json } => profile::profile_filter(path, json, caps).map(|f| Some(Filter::Profile(f))),
    }
}

/// `caps` as a mask of capability numbers, as [`default`] takes them.
fn cap_mask(caps: &CapsHashSet) -> u64 {
    caps.iter().fold(0, |m, c| m | 1u64 << c.index())
}

/// The default program for `caps`: the compile-time one when `caps` agrees with docker's default
/// set on every capability the program looks at (the usual run, and e.g. `--cap-add NET_ADMIN`),
/// otherwise built now (a few microseconds).
fn default_program(caps: &CapsHashSet) -> Cow<'static, [libc::sock_filter]> {
    let relevant = cap_mask(caps) & default::RELEVANT_CAPS;
    if relevant == default::DOCKER_DEFAULT_CAPS & default::RELEVANT_CAPS {
        return Cow::Borrowed(&DEFAULT_PROGRAM[..]);
    }
    Cow::Owned(
        default::program(relevant).into_iter().map(|(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k }).collect(),
    )
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
mod tests;
