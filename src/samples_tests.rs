//! Unit tests of src/samples.rs: the writers, the parser (on fixture files) and the sample maths.

use super::*;
use crate::cgroup::stats::{fixture, CpuStats};

fn recording() -> Recording {
    parse(&fixture("samples/run.jsonl")).unwrap()
}

#[test]
fn jsonl_fixture_parses_header_samples_and_summary() {
    let r = recording();
    assert_eq!((r.header.id.as_str(), r.header.command.len()), ("fx1", 3));
    assert_eq!(
        r.header.limits,
        PlotLimits { memory_bytes: Some(64 << 20), cpus: Some(1.5), pids: Some(64), ..Default::default() }
    );
    assert_eq!(r.samples.len(), 2);
    assert_eq!(r.samples[0].cpu_rate, None);
    assert_eq!(r.samples[1].memory_file_bytes, Some(4096));
    assert_eq!(r.samples[1].pressure_cpu_some_s, Some(0.5));
    assert_eq!(r.summary.as_ref().map(|s| s.termination_reason.as_str()), Some("oom"));
}

#[test]
fn csv_fixture_reads_as_the_jsonl_one() {
    // Empty cells are unknown figures; a comma inside the command stays in the JSON header.
    assert_eq!(parse(&fixture("samples/run.csv")).unwrap(), recording());
}

#[test]
fn writers_round_trip_through_the_parser() {
    let r = recording();
    for csv in [false, true] {
        let mut w = Writer::new(Vec::new(), csv, &r.header).unwrap();
        for s in &r.samples {
            w.sample(s).unwrap();
        }
        let out = String::from_utf8(w.finish(r.summary.as_ref().unwrap()).unwrap()).unwrap();
        assert_eq!(parse(&out).unwrap(), r, "csv={csv}:\n{out}");
        let fx = fixture(if csv { "samples/run.csv" } else { "samples/run.jsonl" });
        assert_eq!(out, fx, "the writer's output is the fixture, byte for byte (csv={csv})");
    }
}

#[test]
fn csv_has_one_header_row_and_a_row_per_sample() {
    let r = recording();
    let mut w = Writer::new(Vec::new(), true, &r.header).unwrap();
    w.sample(&r.samples[1]).unwrap();
    let out = String::from_utf8(w.out).unwrap();
    let rows: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows[0].split(',').collect::<Vec<_>>(), COLUMNS);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].split(',').count(), COLUMNS.len());
}

#[test]
fn parser_refuses_what_sandbox_did_not_write() {
    assert!(parse("").unwrap_err().contains("header"));
    assert!(parse("hello\n").unwrap_err().contains("line 1"));
    assert!(parse("{\"t_s\":1}\n").unwrap_err().contains("header"), "samples without a header");
    let bad_row = fixture("samples/run.csv").replace("0.11,0.1,", "0.11,x,");
    assert!(parse(&bad_row).unwrap_err().contains("cpu_usage_s"));
    let short = fixture("samples/run.csv").replace(",,,,\n# summary", "\n# summary");
    assert!(parse(&short).unwrap_err().contains("cells"));
}

#[test]
fn cpu_rate_is_the_usage_between_samples() {
    let now = |u: f64| Now { cpu: CpuStats { usage_s: Some(u), ..Default::default() }, ..Default::default() };
    let a = Sample::from_now(1.0, &now(0.5), None);
    assert_eq!(a.cpu_rate, None);
    let b = Sample::from_now(1.5, &now(1.25), Some(&a));
    assert!((b.cpu_rate.unwrap() - 1.5).abs() < 1e-9);
    // The same instant twice (the last sample right after one on the grid): no division by zero.
    assert_eq!(Sample::from_now(1.5, &now(1.25), Some(&b)).cpu_rate, None);
}

#[test]
fn interval_at_least_10ms() {
    assert_eq!(parse_interval("100ms").unwrap(), Duration::from_millis(100));
    assert_eq!(parse_interval("10ms").unwrap(), MIN_INTERVAL);
    for bad in ["1ms", "9ms", "0", "fast", "-1s", ""] {
        let e = parse_interval(bad).unwrap_err().to_string();
        assert!(e.contains(&format!("'{bad}'")) || e.contains(bad), "{bad}: {e}");
        assert!(e.contains("10ms"), "{e}");
    }
}
