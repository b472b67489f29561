//! `sandbox rm [-f] NAME…`: removes containers of the state root (their group, state, log and
//! report; a running one only with -f, killed first), and kept image containers (`run --image
//! --name`: their upper layers go with them). A container of the state root is looked for
//! first; with an image and a name, the kept upper layer of that name goes too.

use anyhow::Result;
use clap::Args;
use sandbox::container::{control, Root};

use super::Cli;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Containers: names, ids or unique id prefixes, or kept image containers' names
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Removes each in turn; the first failure stops (those before it are gone).
pub fn rm(cli: &Cli, args: &RmArgs) -> Result<i32> {
    let root = Root::open(&cli.state_root());
    for name in &args.containers {
        match root.find(name) {
            Ok(mut c) => {
                control::remove(&mut c, args.force)?;
                let kept = c.state.image.is_some().then(|| c.name().to_string());
                if let (Some(kept), Ok(Some(store))) = (kept, sandbox::image::Store::open_existing(&cli.root)) {
                    if store.root().join("containers").join(&kept).join("container.json").exists() {
                        sandbox::image::container::Container::remove_kept(&store, &kept)?;
                    }
                }
            }
            Err(sandbox::Error::Container(msg)) if msg.starts_with("no such container") => {
                // Not in the state root: a kept image container, or neither (both said).
                let kept = super::show::existing(cli, &format!("container '{name}'"))
                    .and_then(|store| Ok(sandbox::image::container::Container::remove_kept(&store, name)?));
                if let Err(e) = kept {
                    return Err(
                        sandbox::Error::container(format!("{msg}; {}", sandbox::error::chain(e.chain()))).into()
                    );
                }
            }
            Err(e) => return Err(e.into()),
        }
        println!("{name}");
    }
    Ok(0)
}
