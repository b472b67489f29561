//! `linux.resources.devices`: the device cgroup's allow/deny rules.
//!
//! cgroup v1: written, in order, to the group's `devices.deny` / `devices.allow` (the run gets a
//! group in the devices hierarchy only when the config carries rules). runc's way: a leading
//! deny-all rule is written as `a` to devices.deny, which empties the group's inherited list.
//! A child group can never allow more than its parent (the kernel checks each allow against the
//! parent's list), so a rule can only narrow what sandbox's own hardening leaves reachable.
//!
//! cgroup v2 has no device files: the same entries are compiled into a BPF_PROG_TYPE_CGROUP_DEVICE
//! program attached to the run's group (src/cgroup/v2/devices.rs), with the semantics the v1
//! files give them (in order, last match wins, `a` resets), so a config denies the same on both.
//! Beneath either, the container still reaches only the nodes of its own /dev: every other mount
//! is nodev, /dev is a nodev tmpfs with sandbox's few nodes and the config's linux.devices.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::invalid;
use crate::config::DeviceNode;
use crate::error::Error;
use crate::limits::CgroupConf;

/// The nodes of sandbox's /dev for a container (plan::DEVICES, ptmx, the devpts ptys): type,
/// major, minor (`None`: any), name.
const OWN: [(char, i64, Option<i64>, &str); 8] = [
    ('c', 1, Some(3), "/dev/null"),
    ('c', 1, Some(5), "/dev/zero"),
    ('c', 1, Some(7), "/dev/full"),
    ('c', 1, Some(8), "/dev/random"),
    ('c', 1, Some(9), "/dev/urandom"),
    ('c', 5, Some(0), "/dev/tty"),
    ('c', 5, Some(2), "/dev/ptmx"),
    ('c', 136, None, "/dev/pts/*"),
];

/// The rules a config's list becomes: when it starts by denying everything (runc's default spec,
/// containerd's, podman's), the nodes of the container's own /dev (sandbox's and linux.devices')
/// stay allowed, and mknod of any node (it lands on a nodev mount: it can never be opened), as
/// runc appends its default devices after the config's rules. Unlike runc, a default is left out
/// when one of the config's rules names that node (or a range holding it): a config can deny
/// /dev/null (runc's appended allow would win). The config's rules come first, in their order, as
/// runtime-spec's "apply entries in the listed order" (and the validation suite, reading
/// devices.list) expects. A list that does not start with deny-all is taken as written.
pub fn effective(rules: &[LinuxDeviceCgroup], nodes: &[DeviceNode]) -> Vec<LinuxDeviceCgroup> {
    let rules: Vec<LinuxDeviceCgroup> = rules.iter().map(wildcards).collect();
    let rules = &rules[..];
    let deny_all = |d: &LinuxDeviceCgroup| {
        !d.allow()
            && matches!(d.typ(), None | Some(LinuxDeviceType::A))
            && d.major().is_none()
            && d.minor().is_none()
            && d.access().as_deref().map_or(true, |a| "rwm".chars().all(|c| a.contains(c)))
    };
    if !rules.first().is_some_and(deny_all) {
        return rules.to_vec();
    }
    let rule = |typ: char, major: Option<i64>, minor: Option<i64>, access: &str| {
        let t = if typ == 'b' { LinuxDeviceType::B } else { LinuxDeviceType::C };
        let json = serde_json::json!({"allow": true, "type": t, "major": major, "minor": minor, "access": access});
        serde_json::from_value::<LinuxDeviceCgroup>(json).expect("a device rule")
    };
    // Whether one of the config's rules (after its deny-all) covers every node of (typ, major, minor).
    let named = |typ: char, major: Option<i64>, minor: Option<i64>| {
        rules[1..].iter().any(|d| {
            let t = kind(d);
            (t == Some('a') || t == Some(typ))
                && (d.major().is_none() || d.major() == major)
                && (d.minor().is_none() || d.minor() == minor)
        })
    };
    let mut out = rules.to_vec();
    let mut defaults = vec![rule('c', None, None, "m"), rule('b', None, None, "m")];
    defaults.extend(OWN.iter().map(|(t, ma, mi, _)| rule(*t, Some(*ma), *mi, "rwm")));
    for n in nodes.iter().filter(|n| n.kind != 'p') {
        defaults.push(rule(if n.kind == 'b' { 'b' } else { 'c' }, Some(n.major as i64), Some(n.minor as i64), "rwm"));
    }
    for d in defaults {
        if !named(kind(&d).unwrap_or('a'), d.major(), d.minor()) {
            out.push(d);
        }
    }
    out
}

/// runc's -1 for "any" major or minor (what its converters and some engines write) as none.
fn wildcards(d: &LinuxDeviceCgroup) -> LinuxDeviceCgroup {
    let mut d = d.clone();
    if d.major() == Some(-1) {
        d.set_major(None);
    }
    if d.minor() == Some(-1) {
        d.set_minor(None);
    }
    d
}

/// A rule's type as the cgroup files write it (`None`: not a device cgroup type).
fn kind(d: &LinuxDeviceCgroup) -> Option<char> {
    match d.typ() {
        None | Some(LinuxDeviceType::A) => Some('a'),
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => Some('c'),
        Some(LinuxDeviceType::B) => Some('b'),
        Some(_) => None,
    }
}

pub fn apply(given: &[LinuxDeviceCgroup], nodes: &[DeviceNode], out: &mut Vec<CgroupConf>) -> Result<(), Error> {
    let rules = &effective(given, nodes);
    let mut lines = vec![];
    // The config's rules first, numbered as it has them; the added defaults are valid.
    for (i, d) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let access = d.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
            return Err(invalid(&format!("{field}.access"), &access, "letters of rwm"));
        }
        let Some(typ) = kind(d) else {
            return Err(invalid(&format!("{field}.type"), &format!("{:?}", d.typ()), "a, c or b"));
        };
        for (what, n) in [("major", d.major()), ("minor", d.minor())] {
            if n.is_some_and(|n| n < 0) {
                return Err(invalid(
                    &format!("{field}.{what}"),
                    &n.unwrap().to_string(),
                    "a device number, or none for any",
                ));
            }
        }
        let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
        let everything = typ == 'a' && d.major().is_none() && d.minor().is_none();
        // `a` alone resets the whole list (to deny or allow everything); "a *:* rwm" would too.
        let value = if everything
            && access.len() == 3
            && access.chars().collect::<std::collections::BTreeSet<_>>().len() == 3
        {
            "a".to_string()
        } else {
            format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
        };
        lines.push(CgroupConf { file: if d.allow() { "devices.allow" } else { "devices.deny" }.into(), value });
    }
    // v1: the files; v2: the same entries, compiled into the group's device program.
    out.extend(lines);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// containerd's (and podman's) default rules.
    pub const CONTAINERD: &str = r#"[{"allow":false,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":8,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":7,"access":"rwm"},{"allow":true,"type":"c","major":5,"minor":0,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":9,"access":"rwm"},
        {"allow":true,"type":"c","major":5,"minor":1,"access":"rwm"},{"allow":true,"type":"c","major":136,"access":"rwm"},
        {"allow":true,"type":"c","major":5,"minor":2,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}]"#;

    fn map(json: &str) -> Result<Vec<String>, Error> {
        let r: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        let mut out = vec![];
        apply(&r, &[], &mut out)?;
        Ok(out.into_iter().map(|c| format!("{}={}", c.file, c.value)).collect())
    }

    #[test]
    fn v1_rules_are_written_in_order_deny_all_as_a() {
        let v = map(CONTAINERD).unwrap();
        assert_eq!(v[0], "devices.deny=a");
        // The config's own rules, then what they leave out of sandbox's /dev (here: mknod).
        assert_eq!(v[1], "devices.allow=c 1:3 rwm");
        assert_eq!(v[8], "devices.allow=c 136:* rwm");
        assert_eq!(v[11..], ["devices.allow=c *:* m", "devices.allow=b *:* m"]);
        let deny_null =
            r#"[{"allow":false,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#;
        let v = map(deny_null).unwrap();
        assert_eq!(v[1], "devices.deny=c 1:3 rwm");
        assert!(!v.contains(&"devices.allow=c 1:3 rwm".to_string()), "{v:?}");
        assert!(v.contains(&"devices.allow=c 1:5 rwm".to_string()), "{v:?}");
        assert_eq!(map(r#"[{"allow":true,"type":"b","access":"m"}]"#).unwrap(), ["devices.allow=b *:* m"]);
    }

    #[test]
    fn bad_access_or_numbers_are_invalid() {
        assert!(map(r#"[{"allow":true,"access":"rwx"}]"#).unwrap_err().to_string().contains("access"));
        assert!(map(r#"[{"allow":true,"type":"c","major":-2}]"#).unwrap_err().to_string().contains("major"));
    }

    #[test]
    fn minus_one_is_any_number_as_runc_writes_it() {
        let v = map(r#"[{"allow":true,"type":"c","major":-1,"minor":-1,"access":"m"},{"allow":true,"type":"b","major":8,"minor":-1,"access":"r"}]"#).unwrap();
        assert_eq!(v, ["devices.allow=c *:* m", "devices.allow=b 8:* r"]);
    }
}
