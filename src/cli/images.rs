//! `sandbox images`, `sandbox rmi` and `sandbox image prune`.

use anyhow::Result;
use clap::Args;
use sandbox::image::{prune, Store};

use super::Cli;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Image names or ids
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn images(cli: &Cli) -> Result<i32> {
    let store = Store::open(&cli.root)?;
    let mut rows = vec![["REPOSITORY".to_string(), "TAG".into(), "IMAGE ID".into(), "SIZE".into(), "CREATED".into()]];
    let (images, damaged) = store.images_checked()?;
    for d in &damaged {
        eprintln!(
            "sandbox: image {} is damaged and not listed: {} (`sandbox rmi {}` or `sandbox image prune` removes it)",
            d.name, d.problem, d.name
        );
    }
    for img in images {
        let r = sandbox::image::Reference::parse(&img.name)?;
        let (repo, tag) = (r.familiar_repository(), r.tag.clone().unwrap_or_else(|| "<none>".into()));
        let created = img
            .config
            .created()
            .as_deref()
            .map_or("-".into(), |c| c.chars().take(19).collect::<String>().replace('T', " "));
        let size = bytesize::ByteSize(img.size()).to_string();
        rows.push([repo, tag, img.short_id(), size, created]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(0)
}

pub fn rmi(cli: &Cli, args: &RmiArgs) -> Result<i32> {
    let store = Store::open(&cli.root)?;
    for n in prune::rmi(&store, &args.images)? {
        println!("untagged {n}");
    }
    Ok(0)
}

pub fn prune(cli: &Cli) -> Result<i32> {
    let store = Store::open(&cli.root)?;
    let p = prune::prune(&store)?;
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
