//! `sandbox inspect IMAGE…`: a JSON array, one object per image, with docker's field names (Id,
//! RepoTags, RepoDigests, Created, Author, Comment, Architecture, Variant, Os, Config, RootFS,
//! Size) and what sandbox adds: the manifest, each layer with its compressed and unpacked size,
//! the compressed total and the config's history.

use anyhow::Result;
use clap::Args;
use sandbox::image::{size, Image, Reference, Store};
use serde_json::{json, Map, Value};

use super::{show, Cli};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images: names or id prefixes
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn inspect(cli: &Cli, args: &InspectArgs) -> Result<i32> {
    // Every image is found before anything is printed: a missing one prints no half array.
    let mut out = vec![];
    for what in &args.images {
        let (store, img) = show::find(cli, what)?;
        out.push(describe(&store, &img)?);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

fn describe(store: &Store, img: &Image) -> Result<Value> {
    let config: Value = serde_json::from_slice(&store.read_blob(&img.config_digest())?)?;
    let get = |k: &str| config.get(k).cloned().unwrap_or(Value::Null);
    // Every name of this image (same id), as docker lists them.
    let (mut tags, mut digests) = (vec![], vec![]);
    for (name, manifest) in store.names()? {
        let same = manifest == img.manifest_digest
            || store.load(&name, &manifest).is_ok_and(|o| o.config_digest() == img.config_digest());
        if !same {
            continue;
        }
        let r = Reference::parse(&name)?;
        let repo = r.familiar_repository();
        if let Some(t) = &r.tag {
            tags.push(format!("{repo}:{t}"));
        }
        let d = format!("{repo}@{manifest}");
        if !digests.contains(&d) {
            digests.push(d);
        }
    }
    let layers: Vec<Value> = img
        .manifest
        .layers()
        .iter()
        .zip(img.diff_ids())
        .map(|(l, d)| {
            json!({"Digest": l.digest().to_string(), "DiffID": d, "MediaType": l.media_type().to_string(),
                   "Size": l.size(), "UnpackedSize": size::layer(store, &d)})
        })
        .collect();
    let mut o = Map::new();
    o.insert("Id".into(), json!(img.config_digest()));
    o.insert("RepoTags".into(), json!(tags));
    o.insert("RepoDigests".into(), json!(digests));
    o.insert("Created".into(), get("created"));
    o.insert("Author".into(), json!(config.get("author").and_then(Value::as_str).unwrap_or("")));
    o.insert("Comment".into(), json!(config.get("comment").and_then(Value::as_str).unwrap_or("")));
    o.insert("Architecture".into(), get("architecture"));
    if let Some(v) = config.get("variant") {
        o.insert("Variant".into(), v.clone());
    }
    o.insert("Os".into(), get("os"));
    o.insert("Config".into(), config.get("config").cloned().unwrap_or_else(|| json!({})));
    o.insert("RootFS".into(), json!({"Type": "layers", "Layers": img.diff_ids()}));
    o.insert("Size".into(), json!(size::unpacked(store, img)));
    o.insert("CompressedSize".into(), json!(img.size()));
    o.insert(
        "Manifest".into(),
        json!({"Digest": img.manifest_digest, "MediaType": img.manifest.media_type().as_ref().map(|m| m.to_string())}),
    );
    o.insert("Layers".into(), json!(layers));
    o.insert("History".into(), config.get("history").cloned().unwrap_or_else(|| json!([])));
    Ok(Value::Object(o))
}
