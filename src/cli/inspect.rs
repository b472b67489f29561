//! `sandbox inspect NAME…`: a JSON array, one object per container of the state root (see
//! [`container`]: config, state, mounts, limits, cgroup, pid, the report once stopped) or per
//! image, with docker's field names (Id,
//! RepoTags, RepoDigests, Created, Author, Comment, Architecture, Variant, Os, Config, RootFS,
//! Size) and what sandbox adds: the manifest, each layer with its compressed and unpacked size,
//! the compressed total and the config's history.

use anyhow::Result;
use clap::Args;
use sandbox::image::{size, Image, Reference, Store};
use serde::Serialize;
use serde_json::{json, Value};

use super::{show, Cli};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Containers (names, ids or unique id prefixes; looked for first) or images (names or id
    /// prefixes)
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn inspect(cli: &Cli, args: &InspectArgs) -> Result<i32> {
    // Every image is found before anything is printed: a missing one prints no half array.
    let mut out: Vec<Value> = vec![];
    let root = sandbox::container::Root::open(&cli.state_root());
    for what in &args.images {
        match root.find(what) {
            Ok(c) => out.push(container(&c)),
            Err(sandbox::Error::Container(m)) if m.starts_with("no such container") => match show::find(cli, what) {
                Ok((store, img)) => out.push(serde_json::to_value(describe(&store, &img)?)?),
                // Neither a container nor an image: both said.
                Err(e) => {
                    return Err(sandbox::Error::container(format!("{m}; {}", sandbox::error::chain(e.chain()))).into())
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
    show::print(&(serde_json::to_string_pretty(&out)? + "\n"))?;
    Ok(0)
}

/// A container of the state root: its state (status, pid and start time, supervisor, times,
/// exit code), config, mounts, limits, cgroup, log and, once stopped, its report.
fn container(c: &sandbox::container::Container) -> Value {
    let s = &c.state;
    let cfg = &s.config;
    let mounts: Vec<Value> = cfg
        .binds
        .iter()
        .map(|b| json!({"Type": "bind", "Source": b.src, "Destination": b.dst, "RW": !b.read_only}))
        .chain(cfg.tmpfs.iter().map(|t| json!({"Type": "tmpfs", "Destination": t.dst, "Size": t.size})))
        .collect();
    let log = (s.log_driver == sandbox::container::LogDriver::JsonFile).then(|| c.log_path());
    json!({
        "Id": s.id,
        "Name": s.name,
        "Image": s.image,
        "Command": cfg.command,
        "State": {
            "Status": s.status,
            "Running": s.status == sandbox::container::Status::Running,
            "Paused": s.status == sandbox::container::Status::Paused,
            "Pid": s.process.filter(|_| s.is_live()).map(|p| p.pid),
            "Process": s.process,
            "Supervisor": s.supervisor,
            "Detached": s.detached,
            "CreatedAt": humantime::format_rfc3339_nanos(s.created_at).to_string(),
            "StartedAt": s.started_at.map(|t| humantime::format_rfc3339_nanos(t).to_string()),
            "FinishedAt": s.finished_at.map(|t| humantime::format_rfc3339_nanos(t).to_string()),
            "ExitCode": s.exit_code,
            "Reason": s.reason,
        },
        "Config": cfg,
        "Mounts": mounts,
        "Limits": sandbox::report::LimitsReport::from(&cfg.limits),
        "Cgroup": s.cgroup,
        "Rootfs": cfg.rootfs,
        "LogDriver": s.log_driver,
        "LogPath": log,
        "AutoRemove": s.auto_remove,
        "Tty": s.tty,
        "Dir": c.dir,
        "Report": c.report(),
    })
}

fn describe(store: &Store, img: &Image) -> Result<Inspect> {
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
    let layers = img
        .manifest
        .layers()
        .iter()
        .zip(img.diff_ids())
        .map(|(l, d)| Layer {
            digest: l.digest().to_string(),
            unpacked_size: size::layer(store, &d),
            diff_id: d,
            media_type: l.media_type().to_string(),
            size: l.size(),
        })
        .collect();
    let text = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(Inspect {
        id: img.config_digest(),
        repo_tags: tags,
        repo_digests: digests,
        created: get("created"),
        author: text("author"),
        comment: text("comment"),
        architecture: get("architecture"),
        variant: config.get("variant").cloned(),
        os: get("os"),
        config: config.get("config").cloned().unwrap_or_else(|| json!({})),
        root_fs: RootFs { kind: "layers", layers: img.diff_ids() },
        size: size::unpacked(store, img),
        compressed_size: img.size(),
        manifest: Manifest {
            digest: img.manifest_digest.clone(),
            media_type: img.manifest.media_type().as_ref().map(|m| m.to_string()),
        },
        layers,
        history: config.get("history").cloned().unwrap_or_else(|| json!([])),
    })
}

/// One image, docker's fields first, in docker's order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    created: Value,
    author: String,
    comment: String,
    architecture: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<Value>,
    os: Value,
    config: Value,
    #[serde(rename = "RootFS")]
    root_fs: RootFs,
    /// Unpacked, as docker's.
    size: u64,
    compressed_size: u64,
    manifest: Manifest,
    layers: Vec<Layer>,
    history: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RootFs {
    #[serde(rename = "Type")]
    kind: &'static str,
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Manifest {
    digest: String,
    media_type: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Layer {
    digest: String,
    #[serde(rename = "DiffID")]
    diff_id: String,
    media_type: String,
    size: u64,
    unpacked_size: u64,
}
