//! Samples of a run as they come, from Rust: `sandbox::run::run_sampled` calls the closure from
//! the run's own event loop (no thread) every interval; here each sample is printed as it is
//! taken, and the SVG of the run drawn at the end. Run as root:
//! `cargo run --example samples -- sh -c 'x=$(head -c 50000000 /dev/zero | tr "\0" a); sleep 1'`.

use std::time::Duration;

use sandbox::samples::{Header, Recording, Summary};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = if args.is_empty() { vec!["sleep".to_string(), "1".to_string()] } else { args };
    let mut cfg = sandbox::Config::new(command);
    cfg.limits.memory_bytes = Some(256 << 20);
    cfg.limits.cpus = Some(1.0);
    let interval = Duration::from_millis(100);
    let mut kept = Vec::new();
    let run = sandbox::run::run_sampled(&cfg, interval, &mut |s| {
        let mib = s.memory_bytes.unwrap_or(0) as f64 / (1 << 20) as f64;
        println!(
            "t={:6.3}s cpu={:.2} CPUs mem={mib:.1} MiB tasks={}",
            s.t_s,
            s.cpu_rate.unwrap_or(0.0),
            s.pids.unwrap_or(0)
        );
        kept.push(s.clone());
    });
    let report = run.unwrap_or_else(|e| panic!("sandbox: {e}"));
    let rec = Recording { header: Header::new(&cfg, interval), samples: kept, summary: Some(Summary::of(&report)) };
    std::fs::write("samples-example.svg", sandbox::plot::svg(&rec).expect("plot")).expect("write the SVG");
    let reason = rec.summary.as_ref().map(|s| s.termination_reason.clone()).unwrap_or_default();
    println!("{reason} ({} samples, plot in samples-example.svg)", rec.samples.len());
}
