//! Pressure stall information (PSI): the `cpu.pressure`, `memory.pressure` and `io.pressure`
//! files of a group. They belong to the cgroup core, not to a controller: every v2 group has
//! them (Linux 4.20+, with CONFIG_PSI and not `psi=0`); a v1 group has them only on kernels
//! built to add them there (upstream does not). On a hybrid host they come from the run's group
//! in the controller-less cgroup2 at `unified/` (see [`super::Host::unified`]): PSI accounts a
//! task's stalls to its groups in the cgroup2 hierarchy, whatever its v1 groups.

use std::path::Path;

use super::read;
use super::stats::{Pressure, PressureStats};

/// Parses a `*.pressure` file: lines `some avg10=… avg60=… avg300=… total=USEC` and `full …`.
/// `full` is missing from cpu.pressure before Linux 5.13: then `full_s` is `None`.
pub fn parse(text: &str) -> Pressure {
    let total = |kind: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(kind))?
            .split_whitespace()
            .find_map(|f| f.strip_prefix("total="))?
            .parse::<u64>()
            .ok()
            .map(|us| us as f64 / 1e6)
    };
    Pressure { some_s: total("some"), full_s: total("full") }
}

/// The `avg10` of a `*.pressure` file's `some` line: the share of the last 10 s (percent) in
/// which at least one task of the group was stalled on the resource.
pub fn avg10(text: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some("some"))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("avg10="))?
        .parse()
        .ok()
}

/// `some avg10` of the group's cpu, memory and io pressure files (percent); `None` without them
/// (v1, or a kernel without PSI).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Avg10 {
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub io: Option<f64>,
}

/// [`Avg10`] of the group directory `dir`.
pub fn avg10s(dir: &Path) -> Avg10 {
    let f = |n: &str| read(&dir.join(n)).and_then(|t| avg10(&t));
    Avg10 { cpu: f("cpu.pressure"), memory: f("memory.pressure"), io: f("io.pressure") }
}

/// The three pressure files of the first of `dirs` that has them; all `None` when none does.
pub fn stats<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> PressureStats {
    for d in dirs {
        if !d.join("cpu.pressure").exists() {
            continue;
        }
        let f = |n: &str| read(&d.join(n)).map(|t| parse(&t)).unwrap_or_default();
        return PressureStats { cpu: f("cpu.pressure"), memory: f("memory.pressure"), io: f("io.pressure") };
    }
    PressureStats::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::stats::fixture;

    #[test]
    fn pressure_totals_in_seconds() {
        let p = parse(&fixture("v2/memory.pressure"));
        assert_eq!(p, Pressure { some_s: Some(1.25), full_s: Some(0.5) });
        let p = parse(&fixture("v2/io.pressure"));
        assert_eq!(p, Pressure { some_s: Some(0.000042), full_s: Some(0.0) });
        // cpu.pressure before Linux 5.13: no `full` line.
        let p = parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=3000000\n");
        assert_eq!(p, Pressure { some_s: Some(3.0), full_s: None });
        assert_eq!(parse(""), Pressure::default());
    }

    #[test]
    fn pressure_avg10_of_the_some_line() {
        assert_eq!(avg10(&fixture("v2/cpu.pressure")), Some(1.5));
        assert_eq!(avg10(&fixture("v2/memory.pressure")), Some(0.0));
        assert_eq!(avg10("full avg10=3.00 avg60=0.00 avg300=0.00 total=1\n"), None, "only `some` counts");
        assert_eq!(avg10(""), None);
    }

    #[test]
    fn pressure_files_are_read_where_they_are() {
        let t = tempfile::tempdir().unwrap();
        let (none, some) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir(&none).unwrap();
        std::fs::create_dir(&some).unwrap();
        for f in ["cpu.pressure", "memory.pressure", "io.pressure"] {
            std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2/cpu.pressure"), some.join(f))
                .unwrap();
        }
        let p = stats([none.as_path(), some.as_path()]);
        assert_eq!(p.cpu, Pressure { some_s: Some(2.5), full_s: Some(1.0) });
        assert_eq!(p.io, p.cpu);
        assert_eq!(stats([none.as_path()]), PressureStats::default(), "no files: unknown, not zero");
    }
}
