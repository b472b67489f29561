//! The library called from Rust: build a `Config`, call `sandbox::run`, get the same `Report`
//! the CLI prints (here as JSON). Run as root: `cargo run --example library -- echo hello`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = if args.is_empty() { vec!["uname".to_string(), "-n".to_string()] } else { args };
    let mut cfg = sandbox::Config::new(command);
    cfg.limits.memory_bytes = Some(64 << 20);
    cfg.limits.cpus = Some(0.5);
    cfg.limits.pids = Some(20);
    match sandbox::run(&cfg) {
        Ok(report) => {
            println!("{}", report.to_json());
            std::process::exit(report.exit_code);
        }
        Err(e) => {
            eprintln!("sandbox: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
