//! `events [--stats] [--interval D] ID`: the container's usage as runc's events JSON
//! (`{"type":"stats","id":…,"data":{cpu,memory,pids}}`, what `ctr task metrics`-like tools
//! read), with sandbox's richer figures beside them under `data.sandbox`: CPU user/system split,
//! memory peak, OOM events and kills, pids peak and refused forks, io bytes, PSI pressure.
//! `--stats` prints one; without it, one per interval until the container stops, and an `oom`
//! event when its OOM-kill count grows.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::runtime::find;
use crate::error::{Error, Result};

fn ns(s: Option<f64>) -> u64 {
    (s.unwrap_or(0.0) * 1e9) as u64
}

/// One stats event of container `id`, and its OOM-kill count.
pub fn stats(root: &Path, id: &str) -> Result<(serde_json::Value, u64)> {
    let c = find(root, id)?;
    if !c.state.is_live() {
        return Err(Error::container(format!("container {id} is not running: container not running")));
    }
    let Some(cg) = &c.state.cgroup else {
        return Err(Error::container(format!("container {id} has no cgroup: no stats")));
    };
    let g = crate::cgroup::open(cg.version, &cg.paths)?;
    let s = g.stats();
    let now = g.now();
    let l = &c.state.config.limits;
    let data = json!({
        "cpu": {
            "usage": {"total": ns(s.cpu.usage_s), "kernel": ns(s.cpu.system_s), "user": ns(s.cpu.user_s), "percpu": []},
            "throttling": {"throttledPeriods": s.cpu.throttled_periods.unwrap_or(0), "throttledTime": ns(s.cpu.throttled_s)}
        },
        "memory": {
            "usage": {
                "usage": now.memory_bytes.unwrap_or(0),
                "max": s.memory.peak_bytes.unwrap_or(0),
                "limit": l.memory_bytes.unwrap_or(u64::MAX),
                "failcnt": s.memory.oom_events.unwrap_or(0)
            }
        },
        "pids": {"current": now.pids.unwrap_or(0), "limit": l.pids.unwrap_or(0)},
        "sandbox": s,
    });
    let kills = s.memory.oom_kills.unwrap_or(0);
    Ok((json!({"type": "stats", "id": id, "data": data}), kills))
}

pub fn events(root: &Path, id: &str, once: bool, interval: Option<&str>) -> Result<i32> {
    let every = match interval {
        Some(v) => crate::config::parse_timeout(v)
            .map_err(|_| Error::invalid("--interval", v, "a positive duration such as 5s or 500ms"))?,
        None => Duration::from_secs(5),
    };
    let (first, mut kills) = stats(root, id)?;
    println!("{first}");
    if once {
        return Ok(0);
    }
    loop {
        std::thread::sleep(every);
        let Ok((ev, k)) = stats(root, id) else { return Ok(0) };
        if k > kills {
            println!("{}", json!({"type": "oom", "id": id}));
            kills = k;
        }
        println!("{ev}");
    }
}
