//! OCI images: references, a content-addressed store, layer unpacking, registry pulls, imports and
//! exports, overlayfs root filesystems for runs, and commits of a run's changes.
//!
//! Data flow: a source (registry, archive) → [`install`] verifies every blob into the [`store`]
//! and unpacks each layer once ([`layer`], [`whiteout`]) → a run mounts the layers with overlayfs
//! ([`container`]) → [`commit`] turns a kept upper directory back into a layer.

pub mod archive;
pub mod change;
pub mod commit;
pub mod container;
pub mod digest;
pub mod export;
pub mod fsck;
pub mod install;
pub mod layer;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod prune;
pub mod reference;
pub mod registry;
pub mod save;
pub mod size;
pub mod staging;
pub mod store;
pub mod tarstream;
pub mod whiteout;

pub use reference::Reference;
pub use store::{Image, Store};
