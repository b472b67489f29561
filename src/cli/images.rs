//! `sandbox images`, `sandbox rmi` and `sandbox image prune`.

use super::Format;
use anyhow::Result;
use clap::Args;
use sandbox::image::{prune, size, Image, Store};

use super::{show, Cli};

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Image names or ids
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only the image ids (each once)
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// `table`, or `json`: one array of {name, repository, tag, id, digest, created,
    /// size_compressed, size_unpacked, platform}
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `sandbox images`: COMPRESSED is what a pull transfers (the manifest's layers and config),
/// UNPACKED what the layers take on disk (recorded when each was unpacked).
pub fn images(cli: &Cli, args: &ImagesArgs) -> Result<i32> {
    let imgs: Vec<(u64, Image)> = match show::open_read(cli)? {
        Some(store) => show::images(&store)?.into_iter().map(|i| (size::unpacked(&store, &i), i)).collect(),
        None => vec![],
    };
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        let ids: String = imgs
            .iter()
            .filter(|(_, img)| seen.insert(img.config_digest()))
            .map(|(_, img)| format!("{}\n", img.short_id()))
            .collect();
        show::print(&ids)?;
        return Ok(0);
    }
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "COMPRESSED", "UNPACKED"].map(String::from)];
    let mut json = vec![];
    for (unpacked, img) in &imgs {
        let r = sandbox::image::Reference::parse(&img.name)?;
        let (repo, tag) = (r.familiar_repository(), r.tag.clone().unwrap_or_else(|| "<none>".into()));
        let created = img.config.created().clone();
        if args.format == Format::Json {
            json.push(JsonImage {
                name: img.name.clone(),
                repository: repo,
                tag,
                id: img.config_digest(),
                digest: img.manifest_digest.clone(),
                created,
                size_compressed: img.size(),
                size_unpacked: *unpacked,
                platform: show::platform(&serde_json::to_value(&img.config)?),
            });
            continue;
        }
        let ago = show::ago(created.as_deref());
        rows.push([repo, tag, img.short_id(), ago, show::size(img.size()), show::size(*unpacked)]);
    }
    if args.format == Format::Json {
        show::print(&(serde_json::to_string_pretty(&json)? + "\n"))?;
    } else {
        show::print(&show::table(&rows))?;
    }
    Ok(0)
}

/// One image of `images --format json`, its fields in this order.
#[derive(serde::Serialize)]
struct JsonImage {
    name: String,
    repository: String,
    tag: String,
    id: String,
    digest: String,
    created: Option<String>,
    size_compressed: u64,
    size_unpacked: u64,
    platform: String,
}

pub fn rmi(cli: &Cli, args: &RmiArgs) -> Result<i32> {
    let store = show::existing(cli, &format!("image '{}'", args.images[0]))?;
    for n in prune::rmi(&store, &args.images)? {
        println!("untagged {n}");
    }
    Ok(0)
}

pub fn prune(cli: &Cli) -> Result<i32> {
    // Nothing to remove from a store that does not exist; it is not created either.
    let p = match show::open_read(cli)? {
        Some(_) => prune::prune(&Store::open(&cli.root)?)?,
        None => prune::Pruned::default(),
    };
    for r in &p.repairs {
        println!("{r}");
    }
    println!(
        "removed {} blob(s), {} layer(s), {} stale container(s); freed {}",
        p.blobs,
        p.layers,
        p.containers,
        bytesize::ByteSize(p.bytes)
    );
    Ok(0)
}
