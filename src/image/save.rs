//! `save`: images of the store as a `docker save` archive (docker-archive), which `docker load`,
//! `podman load`, `skopeo copy docker-archive:` and `image import` read:
//!
//! ```text
//! HEX.json                the config, named by its digest (the image id)
//! DIFFID/layer.tar        each layer uncompressed (its digest is the config's diff_id), once
//! manifest.json           [{"Config": "HEX.json", "RepoTags": ["name:tag"], "Layers": [...]}]
//! repositories            {"name": {"tag": "DIFFID of the top layer"}}
//! ```
//!
//! A layer's uncompressed size must be in its tar header before its bytes, so each layer is
//! decompressed twice: once to count, once to copy; the copy is checked against the diff_id.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};

use serde_json::{json, Value};

use super::digest::HashReader;
use super::export::{file, header};
use super::layer::Compression;
use super::reference::Reference;
use super::store::{Image, Store};
use crate::error::{Error, Result};

/// Writes `images` as one docker-archive tar to `w`, under the store's shared lock.
pub fn write_archive(store: &Store, images: &[Image], w: &mut dyn Write) -> Result<()> {
    let _shared = store.lock_shared()?;
    let out_err = |e| Error::io("cannot write the archive", "<output>", e);
    let mut b = tar::Builder::new(w);
    let mut written: Vec<String> = vec![];
    let mut manifest: Vec<Value> = vec![];
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in images {
        let config_digest = img.config_digest();
        let config = store.read_blob(&config_digest)?;
        let config_name = format!("{}.json", config_digest.trim_start_matches("sha256:"));
        if !written.contains(&config_name) {
            file(&mut b, &config_name, &config).map_err(out_err)?;
            written.push(config_name.clone());
        }
        let mut layers = vec![];
        for (l, diff_id) in img.manifest.layers().iter().zip(img.diff_ids()) {
            let dir = diff_id.trim_start_matches("sha256:").to_string();
            let name = format!("{dir}/layer.tar");
            if !written.contains(&name) {
                layer(store, &mut b, l.digest().as_ref(), l.media_type().as_ref(), &diff_id, &dir)?;
                written.push(name.clone());
            }
            layers.push(name);
        }
        let r = Reference::parse(&img.name)?;
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let familiar = r.familiar_repository();
        if let Some(top) = img.diff_ids().last() {
            repositories.entry(familiar.clone()).or_default().insert(tag.clone(), top[7..].to_string());
        }
        manifest.push(json!({
            "Config": config_name,
            "RepoTags": [format!("{familiar}:{tag}")],
            "Layers": layers,
        }));
    }
    file(&mut b, "manifest.json", &serde_json::to_vec(&manifest).expect("JSON serializes")).map_err(out_err)?;
    file(&mut b, "repositories", &serde_json::to_vec(&repositories).expect("JSON serializes")).map_err(out_err)?;
    b.into_inner().map_err(out_err)?.flush().map_err(out_err)?;
    Ok(())
}

/// One layer, uncompressed, as `DIR/layer.tar`, checked against its diff_id as it streams.
fn layer(
    store: &Store,
    b: &mut tar::Builder<&mut dyn Write>,
    blob: &str,
    media_type: &str,
    diff_id: &str,
    dir: &str,
) -> Result<()> {
    let p = store.blob_path(blob)?;
    let c = Compression::from_media_type(media_type)?;
    let open = || -> Result<Box<dyn Read + Send>> {
        let f = File::open(&p).map_err(|e| Error::io("cannot open layer blob", &p, e))?;
        c.decoder(BufReader::with_capacity(1 << 20, f))
    };
    let corrupt = |why: String| Error::image(format!("layer blob {} in the store is corrupt ({why})", p.display()));
    let size = io::copy(&mut open()?, &mut io::sink()).map_err(|e| corrupt(e.to_string()))?;
    b.append_data(&mut header(tar::EntryType::Directory, 0o755, 0), format!("{dir}/"), io::empty())
        .map_err(|e| Error::io("cannot write the archive", "<output>", e))?;
    let mut r = HashReader::new(open()?.take(size));
    b.append_data(&mut header(tar::EntryType::Regular, 0o644, size), format!("{dir}/layer.tar"), &mut r)
        .map_err(|e| Error::io("cannot write the archive", "<output>", e))?;
    if r.hasher.len() != size || r.hasher.digest() != diff_id {
        return Err(corrupt(format!("uncompressed digest {}, the config says {diff_id}", r.hasher.digest())));
    }
    Ok(())
}
