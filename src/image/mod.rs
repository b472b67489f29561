//! OCI images (issue 5, in progress). So far the pure pieces: image references, and the path-safety
//! and whiteout rules of layer entries. The store, layer unpacking, registry pull, overlayfs runs,
//! commit and export are not written yet.

pub mod reference;
pub mod whiteout;

pub use reference::Reference;
