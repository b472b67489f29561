//! A fork bomb held by `--pids`: the shell survives its own bomb, and the report counts the forks
//! the kernel refused. Run as root: `cargo run --example forkbomb`.

fn main() {
    let mut cfg = sandbox::Config::new(["sh", "-c", "b(){ b|b& }; b; sleep 2; echo the shell survived its bomb"]);
    cfg.limits.pids = Some(20);
    cfg.limits.timeout = Some(std::time::Duration::from_secs(10));
    let report = sandbox::run(&cfg).unwrap_or_else(|e| panic!("sandbox: {e}"));
    eprint!("{}", report.to_human());
    println!("pids peak {:?}, forks refused {:?}", report.stats.pids.peak, report.stats.pids.limit_hits);
}
