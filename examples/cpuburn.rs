//! A CPU burner throttled by `--cpus`: two busy loops under half a CPU for 3 seconds use about
//! 1.5 s of CPU time, and the report shows the throttled periods. Run as root:
//! `cargo run --example cpuburn`.

fn main() {
    let mut cfg = sandbox::Config::new(["sh", "-c", "while :; do :; done & while :; do :; done"]);
    cfg.limits.cpus = Some(0.5);
    cfg.limits.timeout = Some(std::time::Duration::from_secs(3));
    let report = sandbox::run(&cfg).unwrap_or_else(|e| panic!("sandbox: {e}"));
    eprint!("{}", report.to_human());
    let usage = report.stats.cpu.usage_s.unwrap_or(0.0);
    println!("{:.2} CPU on average over {:.1}s", usage / report.wall_time_s, report.wall_time_s);
}
