//! Containers that outlive one command line: the state root ([`state`]), names ([`names`]).
//!
//! A run is create → start → supervise → finish, the same for a foreground `run` (its supervisor
//! is `sandbox run` itself) and for `run -d` (a forked, detached supervisor per container, no
//! central daemon). Every other command (`ps`, `logs`, `stop`, `kill`, `wait`, `rm`, `inspect`,
//! `report`, `exec`, …) reads and changes containers through [`state::Root`].

pub mod attach;
pub mod control;
pub(crate) mod create;
pub mod detach;
pub mod logs;
pub mod names;
pub mod process;
pub mod ps;
pub mod record;
mod spare;
pub mod state;
pub mod supervise;
mod times;

pub use state::{CgroupState, Container, LogDriver, Process, Root, State, Status};
