//! The OCI runtime spec (issue 15): a bundle's config.json turned into a [`Config`] the engine runs.
//!
//! One file per part of the spec: [`bundle`] (loading, ociVersion, id, root), [`process`] (args,
//! env, cwd, user, capabilities, rlimits, labels), [`mounts`], [`resources`] (linux.resources →
//! [`crate::Limits`]) and [`namespaces`] (namespaces, id mappings, masked and read-only paths,
//! sysctl, seccomp, hooks). Whatever sandbox cannot honour yet is refused with an error naming
//! the field: a security-relevant setting is never ignored silently.

pub mod bundle;
pub mod cgroups_path;
pub mod cli;
pub mod events;
pub mod exec;
pub mod features;
pub mod files;
pub mod hooks;
pub mod kernel;
pub mod lsm;
pub mod mounts;
pub mod namespaces;
pub mod pause;
pub mod process;
pub mod ps;
pub mod resources;
mod resources_devices;
mod resources_files;
pub mod runtime;
pub mod spec;
pub mod update;

#[cfg(test)]
mod tests;

pub use bundle::{load, validate_id, Bundle};

use crate::error::Error;

/// A config.json field sandbox cannot honour (yet): the error names it and says why.
pub(crate) fn unsupported(field: &str, why: &str) -> Error {
    Error::Container(format!("config.json: {field} is not supported by sandbox: {why}"))
}

/// A config.json field with a value that is not valid.
pub(crate) fn invalid(field: &str, value: &str, expected: &str) -> Error {
    Error::Container(format!("config.json: invalid {field} '{value}': expected {expected}"))
}
