//! `sandbox update [--mem …] NAME…`: new limits for running containers, with the flags and units
//! of `run` (--mem, --mem-high, --swap, --cpus, --cpu-weight, --pids, --io-*, --cpuset-*). All or nothing per
//! container: a memory limit below its current usage is refused, and a write the kernel refuses
//! puts the files written before it back (see sandbox::cgroup::update). The container's state
//! keeps the limits it now has.

use anyhow::Result;
use clap::Args;
use sandbox::config;
use sandbox::Error;

use super::Cli;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Containers: names, ids or unique id prefixes
    #[arg(required = true, value_name = "NAME")]
    pub containers: Vec<String>,
}

/// The flags `update` takes.
const FLAGS: &str = "--mem, --mem-high, --swap, --cpus, --cpu-weight, --pids, --io-weight, --io-read-bps, \
                     --io-write-bps, --io-read-iops, --io-write-iops, --cpuset-cpus, --cpuset-mems";

/// The limits given on the command line, parsed as `run` parses them.
pub fn limits(cli: &Cli) -> Result<sandbox::Limits, Error> {
    for (flag, given) in [
        ("--cgroup-conf", !cli.cgroup_conf.is_empty()),
        ("--timeout", cli.timeout.is_some()),
        ("--cpu-time", cli.cpu_time.is_some()),
    ] {
        if given {
            return Err(Error::Unsupported { limit: flag, reason: format!("`update` changes only {FLAGS}") });
        }
    }
    let mut l = sandbox::Limits {
        memory_bytes: cli.mem.as_deref().map(config::parse_size).transpose()?,
        cpus: cli.cpus.as_deref().map(|c| config::parse_cpus(c, config::host_cpus())).transpose()?,
        pids: cli.pids.as_deref().map(config::parse_pids).transpose()?,
        ..Default::default()
    };
    super::run::limit_flags(cli, &mut l)?;
    let any = l.memory_bytes.is_some()
        || l.memory_high.is_some()
        || l.swap_bytes.is_some()
        || l.cpus.is_some()
        || l.cpu_weight.is_some()
        || l.pids.is_some()
        || l.io_weight.is_some()
        || !l.io.is_empty()
        || l.cpuset_cpus.is_some()
        || l.cpuset_mems.is_some();
    if !any {
        return Err(Error::container(format!("`update` needs at least one of {FLAGS}")));
    }
    Ok(l)
}

/// Updates each container in turn; the first failure stops (those before it keep their new
/// limits), exit 125.
pub fn update(cli: &Cli, args: &UpdateArgs) -> Result<i32> {
    let l = limits(cli)?;
    for name in &args.containers {
        let mut c = super::group::find(cli, name)?;
        let group = super::group::live(&c, "update")?;
        // Under the state's lock, so that a concurrent update's limits and ours are both kept.
        let done = c.update(|s| {
            group.update(&l)?;
            merge(&mut s.config.limits, &l);
            Ok::<(), Error>(())
        })?;
        done?;
        println!("{name}");
    }
    Ok(0)
}

/// The limits given in `new` replace those of `old`; io rules replace those of the same disk and
/// kind.
fn merge(old: &mut sandbox::Limits, new: &sandbox::Limits) {
    macro_rules! take {
        ($($f:ident),*) => { $( if new.$f.is_some() { old.$f = new.$f.clone(); } )* };
    }
    take!(memory_bytes, memory_high, swap_bytes, cpus, cpu_weight, pids, io_weight, cpuset_cpus, cpuset_mems);
    for r in &new.io {
        old.io.retain(|o| !(o.major == r.major && o.minor == r.minor && o.limit == r.limit));
        old.io.push(r.clone());
    }
}
