//! Unit tests of config.rs: sizes, durations and the checks of `Config::validate`.

use super::*;

#[test]
fn sizes_are_binary_and_accept_decimals() {
    assert_eq!(parse_size("64M").unwrap(), 64 << 20);
    assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
    assert_eq!(parse_size("512k").unwrap(), 512 << 10);
    assert_eq!(parse_size("1048576").unwrap(), 1048576);
    assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
    assert_eq!(parse_size("32mb").unwrap(), 32 << 20);
}

#[test]
fn bad_sizes_quote_the_value_and_the_valid_form() {
    for bad in ["", "M", "64X", "-1M", "0", "1.2.3M", "99999999999T", "."] {
        let e = parse_size(bad).unwrap_err().to_string();
        assert!(e.contains(&format!("'{bad}'")), "{e}");
        assert!(e.contains("64M"), "{e}");
    }
}

#[test]
fn cpus_must_be_positive_and_at_most_the_host_count() {
    assert_eq!(parse_cpus("0.5", 2).unwrap(), 0.5);
    assert_eq!(parse_cpus("2", 2).unwrap(), 2.0);
    for bad in ["0", "-1", "3", "abc", "nan", "inf", "0.001"] {
        let e = parse_cpus(bad, 2).unwrap_err().to_string();
        assert!(e.contains(&format!("'{bad}'")) && e.contains("0.01 to 2"), "{e}");
    }
}

#[test]
fn pids_and_timeouts() {
    assert_eq!(parse_pids("20").unwrap(), 20);
    assert!(parse_pids("0").is_err());
    assert!(parse_pids("-3").is_err());
    assert!(parse_pids("1.5").is_err());
    assert_eq!(parse_timeout("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_timeout("10s").unwrap(), Duration::from_secs(10));
    assert!(parse_timeout("0s").is_err());
    assert!(parse_timeout("ten").unwrap_err().to_string().contains("'ten'"));
    assert_eq!(parse_cpu_time("1s").unwrap(), Duration::from_secs(1));
    assert_eq!(parse_cpu_time("250ms").unwrap(), Duration::from_millis(250));
    for bad in ["-1s", "0", "0s", "abc", ""] {
        let e = parse_cpu_time(bad).unwrap_err().to_string();
        assert!(e.contains(&format!("invalid --cpu-time '{bad}'")) && e.contains("positive duration"), "{e}");
    }
}

#[test]
fn binds_parse_mode_and_default_destination() {
    let b = parse_bind("/tmp:/data:ro").unwrap();
    assert_eq!((b.dst.to_str().unwrap(), b.read_only), ("/data", true));
    let b = parse_bind("/tmp").unwrap();
    assert_eq!((b.dst.to_str().unwrap(), b.read_only), ("/tmp", false));
    assert!(parse_bind("/tmp:relative").is_err());
    assert!(parse_bind("/does/not/exist:/x").is_err());
    assert!(parse_bind("/a:/b:/c:/d").is_err());
}

#[test]
fn shared_namespaces_are_net_ipc_uts_pid_only_and_get_no_hostname_or_sysctl() {
    let shared = |kinds: &[&str], edit: fn(&mut Config)| {
        let mut c = Config::new(["true"]);
        c.shared_namespaces = kinds.iter().map(|k| k.to_string()).collect();
        edit(&mut c);
        c.validate().map_err(|e| e.to_string())
    };
    assert!(shared(&["net", "ipc", "uts", "pid"], |_| {}).is_ok());
    assert!(shared(&["mnt"], |_| {}).unwrap_err().contains("'mnt'"));
    let e = shared(&["uts"], |c| c.hostname = Some("host".into())).unwrap_err();
    assert!(e.contains("'host'"), "{e}");
    let e = shared(&["net"], |c| c.sysctl.push(("net.ipv4.ip_forward".into(), "1".into()))).unwrap_err();
    assert!(e.contains("'net.ipv4.ip_forward'"), "{e}");
    assert!(shared(&["net"], |c| c.sysctl.push(("kernel.shmmax".into(), "1".into()))).is_ok());
}
