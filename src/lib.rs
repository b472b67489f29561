//! sandbox: run a program in its own Linux namespaces under cgroup limits and report exactly what
//! it used.
//!
//! Read top-down, the data flow of one run is:
//!
//! 1. [`config`]: the user's values, parsed and validated (nothing is created yet; the limit
//!    values of io, cpuset, weights and `--cgroup-conf` in [`limits`]);
//! 2. [`plan`]: the mount operations the command's filesystem view needs, as data;
//! 3. [`cgroup`]: the run's group on v2 or v1/hybrid, with its limits;
//! 4. [`run`]: clone into new namespaces ([`sys`]; a user namespace from [`userns`] with
//!    `--userns` or when rootless), the [`child`] sets itself up ([`mounts`], [`tty`], [`init`],
//!    [`caps`], [`seccomp`]) and execs; the parent waits, forwards signals, enforces the timeout;
//! 5. [`cgroup::stats`] → [`report`]: what the group used, against its limits; then cleanup.
//!
//! ```no_run
//! let mut cfg = sandbox::Config::new(["sh", "-c", "echo hi"]);
//! cfg.limits.pids = Some(20);
//! let report = sandbox::run(&cfg).unwrap();
//! println!("{}", report.to_json());
//! ```

pub mod caps;
pub mod cgroup;
pub mod child;
pub mod config;
pub mod container;
pub mod cputime;
pub mod env;
pub mod error;
pub mod exec;
pub mod image;
pub mod init;
pub mod interrupt;
pub mod limits;
pub mod mounts;
pub mod oci;
pub mod plan;
pub mod plot;
pub mod report;
pub mod run;
pub mod samples;
pub mod seccomp;
pub mod sys;
pub mod top;
pub mod tty;
pub mod user;
pub mod userns;

pub use config::{Config, Limits};
pub use error::Error;
pub use report::Report;
pub use run::run;
