//! Usage over time (`--samples`, `--plot`): one [`Sample`] of the run's group every interval, from
//! the start of the command to its end, taken by the run's own event loop (a timeout of its poll:
//! no thread, so the library keeps its single-threaded caller, and a run without samples pays
//! nothing).
//!
//! The samples file is JSON Lines, or CSV when its name ends in `.csv`:
//! - JSON Lines: a first line `{"header":{…}}` ([`Header`]: id, command, interval, limits), one
//!   line per sample (the [`Sample`] keys), a last line `{"summary":{…}}` ([`Summary`]: the
//!   verdict). `sandbox plot` draws a recorded run from it alone.
//! - CSV: the same header and summary as `# header {…}` and `# summary {…}` comment lines, and
//!   between them a row of column names ([`COLUMNS`]) and one row per sample; an unknown figure is
//!   an empty cell.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cgroup::stats::{MemoryBreakdown, Now};
use crate::error::{Error, Result};

/// The sampling interval unless `--sample-interval` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest interval: below it the sampler's own reads would be a measurable part of the run.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// One moment of the run's group. `None` (JSON `null`, an empty CSV cell) where the kernel has no
/// such figure (no pressure on pure v1, no io accounting without the io controller, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the command was started.
    pub t_s: f64,
    /// CPU time of the whole group so far (v2 cpu.stat usage_usec; v1 cpuacct.usage), seconds.
    pub cpu_usage_s: Option<f64>,
    /// CPUs in use since the previous sample (Δ cpu_usage_s / Δ t_s); `None` for the first.
    pub cpu_rate: Option<f64>,
    /// Time throttled by `--cpus` so far, summed over CPUs (cpu.stat), seconds.
    pub cpu_throttled_s: Option<f64>,
    /// Memory in use (v2 memory.current; v1 memory.usage_in_bytes), bytes.
    pub memory_bytes: Option<u64>,
    /// Its breakdown from memory.stat (see [`MemoryBreakdown`]).
    pub memory_anon_bytes: Option<u64>,
    pub memory_file_bytes: Option<u64>,
    pub memory_kernel_bytes: Option<u64>,
    pub memory_sock_bytes: Option<u64>,
    pub memory_shmem_bytes: Option<u64>,
    /// Tasks now (pids.current).
    pub pids: Option<u64>,
    /// Block I/O so far (v2 io.stat; v1 blkio), bytes.
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    /// Stall time so far (v2 `*.pressure` totals), seconds.
    pub pressure_cpu_some_s: Option<f64>,
    pub pressure_memory_some_s: Option<f64>,
    pub pressure_memory_full_s: Option<f64>,
    pub pressure_io_some_s: Option<f64>,
    pub pressure_io_full_s: Option<f64>,
}

/// The CSV columns, in order: the [`Sample`] keys.
pub const COLUMNS: [&str; 18] = [
    "t_s",
    "cpu_usage_s",
    "cpu_rate",
    "cpu_throttled_s",
    "memory_bytes",
    "memory_anon_bytes",
    "memory_file_bytes",
    "memory_kernel_bytes",
    "memory_sock_bytes",
    "memory_shmem_bytes",
    "pids",
    "io_read_bytes",
    "io_write_bytes",
    "pressure_cpu_some_s",
    "pressure_memory_some_s",
    "pressure_memory_full_s",
    "pressure_io_some_s",
    "pressure_io_full_s",
];

impl Sample {
    /// A sample from what the group holds at `t_s`; `prev` gives the CPU rate.
    pub fn from_now(t_s: f64, now: &Now, prev: Option<&Sample>) -> Sample {
        let rate = match (prev.and_then(|p| p.cpu_usage_s.map(|u| (p.t_s, u))), now.cpu.usage_s) {
            (Some((t0, u0)), Some(u)) if t_s > t0 => Some(((u - u0) / (t_s - t0)).max(0.0)),
            _ => None,
        };
        let m = &now.memory;
        let p = &now.pressure;
        Sample {
            t_s,
            cpu_usage_s: now.cpu.usage_s,
            cpu_rate: rate,
            cpu_throttled_s: now.cpu.throttled_s,
            memory_bytes: now.memory_bytes,
            memory_anon_bytes: m.anon_bytes,
            memory_file_bytes: m.file_bytes,
            memory_kernel_bytes: m.kernel_bytes,
            memory_sock_bytes: m.sock_bytes,
            memory_shmem_bytes: m.shmem_bytes,
            pids: now.pids,
            io_read_bytes: now.io.read_bytes,
            io_write_bytes: now.io.write_bytes,
            pressure_cpu_some_s: p.cpu.some_s,
            pressure_memory_some_s: p.memory.some_s,
            pressure_memory_full_s: p.memory.full_s,
            pressure_io_some_s: p.io.some_s,
            pressure_io_full_s: p.io.full_s,
        }
    }

    /// The memory breakdown of this sample.
    pub fn breakdown(&self) -> MemoryBreakdown {
        MemoryBreakdown {
            anon_bytes: self.memory_anon_bytes,
            file_bytes: self.memory_file_bytes,
            kernel_bytes: self.memory_kernel_bytes,
            sock_bytes: self.memory_sock_bytes,
            shmem_bytes: self.memory_shmem_bytes,
        }
    }
}

/// The limits a plot draws as lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlotLimits {
    pub memory_bytes: Option<u64>,
    pub memory_high_bytes: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
}

/// The first line of a samples file: what the run was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// `sandbox-samples/1`.
    pub format: String,
    pub id: String,
    pub command: Vec<String>,
    pub interval_s: f64,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub limits: PlotLimits,
}

/// The last line of a samples file: how the run ended (from the report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The report's `termination_reason` (`exit`, `signal`, `timeout`, `oom`, …).
    pub termination_reason: String,
    pub exit_code: i32,
    pub wall_time_s: f64,
    /// The kernel's peaks (report `memory.peak_bytes`, `pids.peak`).
    pub memory_peak_bytes: Option<u64>,
    pub pids_peak: Option<u64>,
}

pub const FORMAT: &str = "sandbox-samples/1";

impl Header {
    pub fn new(cfg: &crate::Config, interval: Duration) -> Header {
        let l = &cfg.limits;
        Header {
            format: FORMAT.into(),
            id: cfg.id.clone(),
            command: cfg.command.clone(),
            interval_s: interval.as_secs_f64(),
            started_at: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            limits: PlotLimits {
                memory_bytes: l.memory_bytes,
                memory_high_bytes: l.memory_high,
                cpus: l.cpus,
                pids: l.pids,
            },
        }
    }
}

impl Summary {
    pub fn of(r: &crate::Report) -> Summary {
        let reason = serde_json::to_value(r.termination_reason).ok();
        Summary {
            termination_reason: reason.and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
            exit_code: r.exit_code,
            wall_time_s: r.wall_time_s,
            memory_peak_bytes: r.stats.memory.peak_bytes,
            pids_peak: r.stats.pids.peak,
        }
    }
}

/// A recorded run, as read back from a samples file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recording {
    pub header: Header,
    pub samples: Vec<Sample>,
    /// `None` when the file ends early (sandbox was killed during the run).
    pub summary: Option<Summary>,
}

/// Parses `--sample-interval`: a duration (100ms, 1s) of at least [`MIN_INTERVAL`].
pub fn parse_interval(v: &str) -> Result<Duration> {
    let bad = || Error::invalid("--sample-interval", v, "a duration of at least 10ms, e.g. 100ms or 1s");
    let d = humantime::parse_duration(v.trim()).map_err(|_| bad())?;
    if d < MIN_INTERVAL {
        return Err(bad());
    }
    Ok(d)
}

/// Whether a samples file is CSV (named `*.csv`) rather than JSON Lines.
pub fn is_csv(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Writes a samples file line by line as the samples come: a run that is killed leaves every
/// sample taken so far.
pub struct Writer<W: Write> {
    out: W,
    csv: bool,
}

impl<W: Write> Writer<W> {
    /// Writes the header (and, for CSV, the column names).
    pub fn new(mut out: W, csv: bool, header: &Header) -> std::io::Result<Writer<W>> {
        let h = serde_json::to_string(header).map_err(std::io::Error::other)?;
        if csv {
            writeln!(out, "# header {h}\n{}", COLUMNS.join(","))?;
        } else {
            writeln!(out, "{{\"header\":{h}}}")?;
        }
        Ok(Writer { out, csv })
    }

    pub fn sample(&mut self, s: &Sample) -> std::io::Result<()> {
        let line = if self.csv { csv_row(s) } else { serde_json::to_string(s).map_err(std::io::Error::other)? };
        writeln!(self.out, "{line}")
    }

    /// Writes the summary and returns the output.
    pub fn finish(mut self, summary: &Summary) -> std::io::Result<W> {
        let s = serde_json::to_string(summary).map_err(std::io::Error::other)?;
        if self.csv {
            writeln!(self.out, "# summary {s}")?;
        } else {
            writeln!(self.out, "{{\"summary\":{s}}}")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One CSV row in [`COLUMNS`] order: numbers as JSON prints them, unknown figures empty.
fn csv_row(s: &Sample) -> String {
    let v = serde_json::to_value(s).unwrap_or(Value::Null);
    COLUMNS
        .iter()
        .map(|c| v.get(*c).filter(|x| !x.is_null()).map(|x| x.to_string()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a samples file (JSON Lines or CSV, told apart by its first line).
pub fn parse(text: &str) -> std::result::Result<Recording, String> {
    let mut rec = Recording::default();
    let mut seen_header = false;
    let mut columns: Option<Vec<&str>> = None;
    let json = |what: &str, n: usize, t: &str| -> std::result::Result<Value, String> {
        serde_json::from_str(t).map_err(|e| format!("line {n}: not a {what}: {e}"))
    };
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let n = i + 1;
        let line = line.trim();
        if let Some(h) = line.strip_prefix("# header ") {
            rec.header = serde_json::from_value(json("header", n, h)?).map_err(|e| format!("line {n}: {e}"))?;
            seen_header = true;
        } else if let Some(s) = line.strip_prefix("# summary ") {
            rec.summary = Some(serde_json::from_value(json("summary", n, s)?).map_err(|e| format!("line {n}: {e}"))?);
        } else if line.starts_with('{') {
            let mut v = json("JSON object", n, line)?;
            if let Some(h) = v.get_mut("header").map(Value::take) {
                rec.header = serde_json::from_value(h).map_err(|e| format!("line {n}: header: {e}"))?;
                seen_header = true;
            } else if let Some(s) = v.get_mut("summary").map(Value::take) {
                rec.summary = Some(serde_json::from_value(s).map_err(|e| format!("line {n}: summary: {e}"))?);
            } else {
                rec.samples.push(serde_json::from_value(v).map_err(|e| format!("line {n}: sample: {e}"))?);
            }
        } else if columns.is_none() && line.starts_with("t_s,") {
            columns = Some(line.split(',').collect());
        } else if let Some(cols) = &columns {
            rec.samples.push(csv_sample(cols, line).map_err(|e| format!("line {n}: {e}"))?);
        } else {
            return Err(format!("line {n}: neither JSON Lines nor CSV written by `sandbox --samples`"));
        }
    }
    if !seen_header || rec.header.format != FORMAT {
        return Err(format!("no `{FORMAT}` header line: not a file written by `sandbox --samples`"));
    }
    Ok(rec)
}

/// A CSV row back into a [`Sample`] (through the JSON map of its columns).
fn csv_sample(cols: &[&str], row: &str) -> std::result::Result<Sample, String> {
    let cells: Vec<&str> = row.split(',').collect();
    if cells.len() != cols.len() {
        return Err(format!("{} cells for {} columns", cells.len(), cols.len()));
    }
    let mut m = Map::new();
    for (c, v) in cols.iter().zip(cells) {
        let v = match v.trim() {
            "" => Value::Null,
            t => serde_json::from_str::<Value>(t).map_err(|_| format!("column {c}: not a number: {t:?}"))?,
        };
        m.insert(c.to_string(), v);
    }
    serde_json::from_value(Value::Object(m)).map_err(|e| e.to_string())
}

/// The sampler of one run, driven by the event loop (crate::run): [`Sampler::due`] says when the
/// next sample is, [`Sampler::take`] takes it.
pub(crate) struct Sampler<'a> {
    interval: Duration,
    start: Instant,
    /// When the next sample is due.
    pub next: Instant,
    last: Option<Sample>,
    /// The sample with the highest memory usage so far: the report's `memory.at_peak`.
    peak: Option<Sample>,
    on_sample: &'a mut dyn FnMut(&Sample),
}

impl<'a> Sampler<'a> {
    pub fn new(interval: Duration, start: Instant, on_sample: &'a mut dyn FnMut(&Sample)) -> Sampler<'a> {
        Sampler { interval, start, next: start, last: None, peak: None, on_sample }
    }

    /// Takes a sample of `group` now and schedules the next one on the interval's grid (no drift;
    /// a late loop skips the samples it missed rather than bunching them).
    pub fn take(&mut self, group: &dyn crate::cgroup::Cgroup, now: Instant) {
        let t = now.saturating_duration_since(self.start).as_secs_f64();
        let s = Sample::from_now(t, &group.now(), self.last.as_ref());
        if s.memory_bytes > self.peak.as_ref().and_then(|p| p.memory_bytes) {
            self.peak = Some(s.clone());
        }
        (self.on_sample)(&s);
        self.last = Some(s);
        while self.next <= now {
            self.next += self.interval;
        }
    }

    pub fn at_peak(&self) -> MemoryBreakdown {
        self.peak.as_ref().map(Sample::breakdown).unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "samples_tests.rs"]
mod tests;
