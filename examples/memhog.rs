//! A memory hog killed by `--mem`: dd fills a 256 MiB buffer under a 32 MiB limit and the OOM
//! killer ends it. Run as root: `cargo run --example memhog`.

fn main() {
    let mut cfg = sandbox::Config::new(["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"]);
    cfg.limits.memory_bytes = Some(32 << 20);
    let report = sandbox::run(&cfg).unwrap_or_else(|e| panic!("sandbox: {e}"));
    eprint!("{}", report.to_human());
    println!("oom_killed={} exit_code={}", report.oom_killed, report.exit_code);
}
