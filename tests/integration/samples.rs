//! Usage over time (issue 13 items 3-4): `--samples` (JSON Lines, CSV), `--plot`, `sandbox plot`
//! and the report's `memory.at_peak`, against the real kernel's counters.

use std::path::Path;
use std::process::Command;

use crate::harness::*;
use crate::require_root;

/// A workload that grows to ~48 MiB of anonymous memory over about a second, then exits.
const GROW: &str = "i=0; x=; while [ $i -lt 12 ]; do x=\"$x$(head -c 4194304 /dev/zero | tr '\\0' a)\"; \
                    sleep 0.05; i=$((i+1)); done; echo ${#x}";

fn lines(p: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

fn samples_of(all: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    all.iter().filter(|v| v.get("t_s").is_some()).collect()
}

fn f(v: &serde_json::Value, k: &str) -> Option<f64> {
    v.get(k).and_then(|x| x.as_f64())
}

/// Every text of an SVG (legend labels, captions, title), after checking that it parses as XML.
fn svg_texts(p: &Path) -> (Vec<String>, usize) {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let doc =
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", p.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect();
    let lines = doc.descendants().filter(|n| ["polyline", "path", "line"].contains(&n.tag_name().name())).count();
    (texts, lines)
}

#[test]
fn samples_are_monotonic_and_their_peak_is_at_most_the_kernels() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let sf = dir.path().join("s.jsonl");
    let r = sandbox(&["--samples", sf.to_str().unwrap(), "--sample-interval", "50ms", "run", "sh", "-c", GROW]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let all = lines(&sf);
    assert!(all[0]["header"]["format"] == "sandbox-samples/1", "first line is the header: {}", all[0]);
    assert_eq!(all[0]["header"]["interval_s"], 0.05);
    assert_eq!(all.last().unwrap()["summary"]["termination_reason"], "exit");
    let s = samples_of(&all);
    let wall = r.report()["wall_time_s"].as_f64().unwrap();
    // Roughly every 50 ms: at least half the samples the wall time holds, never bunched.
    assert!(s.len() as f64 >= wall / 0.05 * 0.5, "{} samples in {wall} s", s.len());
    assert!(s.len() as f64 <= wall / 0.05 + 3.0, "{} samples in {wall} s", s.len());
    let ts: Vec<f64> = s.iter().map(|v| f(v, "t_s").unwrap()).collect();
    let gaps: Vec<f64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g > 0.0), "time goes forward: {ts:?}");
    let mut sorted = gaps[..gaps.len() - 1].to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!((0.04..=0.075).contains(&median), "median gap {median} s for 50 ms: {gaps:?}");
    let cpu: Vec<f64> = s.iter().filter_map(|v| f(v, "cpu_usage_s")).collect();
    assert_eq!(cpu.len(), s.len(), "every sample has CPU usage");
    assert!(cpu.windows(2).all(|w| w[1] >= w[0]), "CPU usage never goes back: {cpu:?}");
    assert!(s.iter().skip(1).all(|v| f(v, "cpu_rate").is_some_and(|r| r >= 0.0)));
    let peak_sampled = s.iter().filter_map(|v| v["memory_bytes"].as_u64()).max().unwrap();
    let kernel_peak = r.report()["memory"]["peak_bytes"].as_u64().unwrap();
    assert!(peak_sampled <= kernel_peak, "sampled peak {peak_sampled} > kernel peak {kernel_peak}");
    assert!(peak_sampled >= 40 << 20, "the 48 MiB workload is seen: {peak_sampled}");
    // memory.at_peak: the breakdown of the sample with the highest usage.
    let at = &r.report()["memory"]["at_peak"];
    let top = s.iter().max_by_key(|v| v["memory_bytes"].as_u64()).unwrap();
    assert_eq!(at["anon_bytes"], top["memory_anon_bytes"], "{at} vs {top}");
    assert_eq!(at["file_bytes"], top["memory_file_bytes"]);
    assert!(at["anon_bytes"].as_u64().unwrap() >= 32 << 20, "{at}");
}

#[test]
fn without_samples_memory_at_peak_is_null() {
    require_root!();
    let _m = shared();
    let r = sandbox(&["run", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let at = &r.report()["memory"]["at_peak"];
    assert!(at.is_object(), "memory.at_peak is in the report: {}", r.report()["memory"]);
    for k in ["anon_bytes", "file_bytes", "kernel_bytes", "sock_bytes", "shmem_bytes"] {
        assert!(at.get(k).is_some_and(|v| v.is_null()), "{k}: {at}");
    }
}

#[test]
fn csv_samples_have_a_header_row_and_one_row_per_sample() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let sf = dir.path().join("s.csv");
    let r = sandbox(&["--samples", sf.to_str().unwrap(), "run", "sleep", "0.5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&sf).unwrap();
    let all: Vec<&str> = text.lines().collect();
    assert!(all[0].starts_with("# header {"), "{}", all[0]);
    assert!(all.last().unwrap().starts_with("# summary {"), "{text}");
    let rows: Vec<&str> = all.iter().copied().filter(|l| !l.starts_with('#')).collect();
    let cols: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(&cols[..4], ["t_s", "cpu_usage_s", "cpu_rate", "cpu_throttled_s"]);
    assert!(cols.contains(&"memory_anon_bytes") && cols.contains(&"pids") && cols.contains(&"io_write_bytes"));
    // About 0.5 s at the default 100 ms: 4 to 8 rows, each as wide as the header.
    assert!((4..=9).contains(&(rows.len() - 1)), "{text}");
    for row in &rows[1..] {
        assert_eq!(row.split(',').count(), cols.len(), "{row}");
        assert!(row.split(',').next().unwrap().parse::<f64>().is_ok(), "{row}");
    }
}

#[test]
fn plot_svg_parses_and_holds_every_series_and_limit_line() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let (sf, cf, svg) = (dir.path().join("s.jsonl"), dir.path().join("s.csv"), dir.path().join("p.svg"));
    let limits = ["--mem", "256M", "--mem-high", "200M", "--cpus", "1", "--pids", "32"];
    let mut args = limits.to_vec();
    args.extend(["--samples", sf.to_str().unwrap(), "--plot", svg.to_str().unwrap(), "run", "sh", "-c", GROW]);
    let r = sandbox(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (texts, _) = svg_texts(&svg);
    let has = |t: &str| texts.iter().any(|x| x == t);
    let id = r.report()["id"].as_str().unwrap();
    assert!(texts.iter().any(|t| t.contains(id) && t.contains("sh -c") && t.contains("exit")), "title: {texts:?}");
    for label in ["memory.current", "anon", "limit --mem", "high --mem-high", "cpu rate", "limit --cpus", "throttled"] {
        assert!(has(label), "no {label:?} in the plot: {texts:?}");
    }
    for label in ["tasks", "limit --pids", "memory (MiB)", "tasks", "io (MiB/s)"] {
        assert!(has(label), "no {label:?} in the plot: {texts:?}");
    }
    // io: both rates where the kernel counts io for the group, else the panel says so.
    let io_counted = samples_of(&lines(&sf)).iter().any(|v| v["io_read_bytes"].is_u64());
    if io_counted {
        assert!(has("io read") && has("io write"), "{texts:?}");
    } else {
        eprintln!("note: no io accounting for the group here (v1 blk-throttle not set up): io panel empty");
        assert!(has("(no figures)"), "{texts:?}");
    }

    // `sandbox plot` of the saved file (JSON Lines, and the same run as CSV) draws the same.
    let later = dir.path().join("later.svg");
    let p = std::process::Command::new(bin()).args(["plot", sf.to_str().unwrap(), "-o"]).arg(&later).output().unwrap();
    assert_eq!(p.status.code(), Some(0), "{}", String::from_utf8_lossy(&p.stderr));
    assert_eq!(std::fs::read_to_string(&later).unwrap(), std::fs::read_to_string(&svg).unwrap(), "same SVG");
    let r2 = sandbox(&["--mem", "64M", "--pids", "32", "--samples", cf.to_str().unwrap(), "run", "sleep", "0.3"]);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    let from_csv = dir.path().join("csv.svg");
    let p =
        std::process::Command::new(bin()).args(["plot", cf.to_str().unwrap(), "-o"]).arg(&from_csv).output().unwrap();
    assert_eq!(p.status.code(), Some(0), "{}", String::from_utf8_lossy(&p.stderr));
    let (texts, _) = svg_texts(&from_csv);
    for label in ["memory.current", "limit --mem", "cpu rate", "tasks", "limit --pids"] {
        assert!(texts.iter().any(|x| x == label), "no {label:?} in the plot of the CSV: {texts:?}");
    }
}

#[test]
fn bad_sampling_flags_exit_125_and_create_nothing() {
    require_root!();
    let _m = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (s, svg, png) = (format!("{d}/s.jsonl"), format!("{d}/p.svg"), format!("{d}/out.png"));
    let missing = format!("{d}/no/such/dir/s.jsonl");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--samples", &s, "--sample-interval", "1ms"], "'1ms'"),
        (vec!["--samples", &s, "--sample-interval", "fast"], "'fast'"),
        (vec!["--samples", &s, "--plot", &png], "out.png"),
        (vec!["--plot", &png], ".svg"),
        (vec!["--samples", &missing, "--plot", &svg], "no/such/dir"),
        (vec!["--samples", d], d),
    ];
    for (flags, quoted) in cases {
        let mut args = flags.clone();
        args.extend(["run", "true"]);
        let r = sandbox(&args);
        assert_eq!(r.code, 125, "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(quoted), "{flags:?}: the message quotes {quoted}: {}", r.stderr);
        let left: Vec<_> = std::fs::read_dir(d).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "{flags:?} left {left:?}");
    }
    // `sandbox plot` too: only SVG, and only a file `--samples` wrote.
    std::fs::write(&s, "{\"t_s\":1}\n").unwrap();
    for (args, quoted) in [(vec!["plot", &s, "-o", &png], "out.png"), (vec!["plot", &s, "-o", &svg], "header")] {
        let p = std::process::Command::new(bin()).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&p.stderr);
        assert_eq!(p.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.contains(quoted), "{args:?}: {err}");
        assert!(!Path::new(&png).exists() && !Path::new(&svg).exists(), "{args:?} wrote a plot");
    }
}

#[test]
fn a_plot_path_swapped_for_a_symlink_during_the_run_is_replaced_not_followed() {
    require_root!();
    let _m = shared();
    // /var/tmp: the host view shows it (writable) to the command, as a user's own dirs are.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let plot = dir.path().join("p.svg");
    // The command, root inside, plants a link where sandbox (root outside) will write the plot.
    let script = format!("ln -s {} {}", victim.display(), plot.display());
    let out = Command::new(bin())
        .args(["--report", "none", "--plot"])
        .arg(&plot)
        .args(["run", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "the plot was written through the link");
    assert!(std::fs::symlink_metadata(&plot).unwrap().file_type().is_file(), "the link is replaced by the plot");
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
}
