//! User namespaces: who the command's root is outside the sandbox.
//!
//! With `--userns` (root only) the command's uid/gid 0 map to an unprivileged host range, taken
//! from /etc/subuid and /etc/subgid (`auto`) or given (`HOSTID[:COUNT]`): files it creates belong
//! to that range on the host, and its capabilities count only inside its own namespaces.
//!
//! A non-root caller always gets a user namespace: its own uid and gid become root inside (as
//! `unshare -r` and bwrap do), which is what lets it make the other namespaces without setuid.
//! The kernel then allows only that one-line map and requires `setgroups` to be denied first.
//!
//! The parent writes the maps (`/proc/PID/{uid_map,setgroups,gid_map}`) right after clone; the
//! child waits for them before it does anything that creates a file or checks an owner.

use std::path::Path;

use crate::error::{Error, Result};

/// One line of a uid_map or gid_map: ids `inside..inside+count` are `outside..outside+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The maps of a run's user namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserNs {
    pub uids: Vec<IdMap>,
    pub gids: Vec<IdMap>,
    /// Write "deny" to /proc/PID/setgroups before gid_map (required for a non-root writer).
    pub deny_setgroups: bool,
}

/// How many ids `--userns auto` takes from a subordinate range (as many as a distribution image
/// needs: nobody is 65534).
pub const AUTO_COUNT: u32 = 65536;

const USERNS_HELP: &str = "`auto` (the first range of /etc/subuid and /etc/subgid for the calling user), \
     HOSTID (root inside is HOSTID outside) or HOSTID:COUNT (ids 0..COUNT inside are HOSTID.. outside), \
     with HOSTID > 0";

impl UserNs {
    /// The rootless map: the caller's own uid and gid become 0 inside, nothing else is mapped.
    pub fn own(uid: u32, gid: u32) -> UserNs {
        UserNs {
            uids: vec![IdMap { inside: 0, outside: uid, count: 1 }],
            gids: vec![IdMap { inside: 0, outside: gid, count: 1 }],
            deny_setgroups: true,
        }
    }

    /// The same range for uids and gids.
    pub fn range(outside: u32, count: u32) -> UserNs {
        let m = vec![IdMap { inside: 0, outside, count }];
        UserNs { uids: m.clone(), gids: m, deny_setgroups: false }
    }

    /// Where root inside is on the host (uid).
    pub fn root_uid(&self) -> u32 {
        self.uids.iter().find(|m| m.inside == 0).map_or(u32::MAX, |m| m.outside)
    }
}

/// The text of a uid_map/gid_map file: one "inside outside count" line per range.
pub fn map_text(maps: &[IdMap]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count)).collect()
}

/// Parses the value of `--userns`. `subuid`/`subgid` are the files `auto` reads (paths passed
/// in so the tests use fixtures); `user` and `uid` name the caller in them.
pub fn parse_flag(value: &str, subuid: &Path, subgid: &Path, user: Option<&str>, uid: u32) -> Result<UserNs> {
    let bad = || Error::invalid("--userns", value, USERNS_HELP);
    if value == "auto" {
        let who = user.map_or_else(|| uid.to_string(), str::to_string);
        let pick = |file: &Path| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            subid_range(&text, user, uid).ok_or_else(|| Error::Unsupported {
                limit: "--userns auto",
                reason: format!(
                    "{} has no range for {who}; add one (e.g. `usermod --add-subuids 100000-165535 \
                     --add-subgids 100000-165535 {who}`) or pass --userns HOSTID:COUNT",
                    file.display()
                ),
            })
        };
        let (u, g) = (pick(subuid)?, pick(subgid)?);
        let count = |(_, n): (u32, u32)| n.min(AUTO_COUNT);
        return Ok(UserNs {
            uids: vec![IdMap { inside: 0, outside: u.0, count: count(u) }],
            gids: vec![IdMap { inside: 0, outside: g.0, count: count(g) }],
            deny_setgroups: false,
        });
    }
    let (start, count) = match value.split_once(':') {
        Some((s, c)) => (s.parse::<u32>().map_err(|_| bad())?, c.parse::<u32>().map_err(|_| bad())?),
        None => (value.parse::<u32>().map_err(|_| bad())?, 1),
    };
    // Host root inside the sandbox is what --userns exists to avoid; a range past u32 wraps.
    if start == 0 || count == 0 || start.checked_add(count - 1).map_or(true, |end| end == u32::MAX) {
        return Err(bad());
    }
    Ok(UserNs::range(start, count))
}

/// The first subordinate range of `user` (by name or numeric uid) in an /etc/subuid-style text:
/// lines `NAME:START:COUNT`.
pub fn subid_range(text: &str, user: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let uid = uid.to_string();
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).find_map(|l| {
        let mut f = l.split(':');
        let (who, start, count) = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        (Some(who) == user || who == uid).then_some((start, count))
    })
}

/// Writes the maps of `pid`'s user namespace (the parent, right after clone).
pub fn write_maps(pid: i32, ns: &UserNs) -> Result<()> {
    let put = |file: &str, text: &str| {
        let path = format!("/proc/{pid}/{file}");
        // One write(2) per file: the kernel accepts a map only in a single write.
        std::fs::write(&path, text).map_err(|source| Error::Write { path: path.into(), value: text.into(), source })
    };
    put("uid_map", &map_text(&ns.uids))?;
    if ns.deny_setgroups {
        put("setgroups", "deny")?;
    }
    put("gid_map", &map_text(&ns.gids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> (std::path::PathBuf, std::path::PathBuf) {
        let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/userns");
        (d.join("subuid"), d.join("subgid"))
    }

    #[test]
    fn auto_takes_the_callers_first_range_by_name_or_uid() {
        let (u, g) = fixtures();
        let ns = parse_flag("auto", &u, &g, Some("alice"), 1000).unwrap();
        assert_eq!(ns.uids, vec![IdMap { inside: 0, outside: 100000, count: 65536 }]);
        assert_eq!(ns.gids, vec![IdMap { inside: 0, outside: 300000, count: 65536 }]);
        // bob has no name entry but a numeric one; the larger range is cut to 65536 ids.
        let ns = parse_flag("auto", &u, &g, Some("bob"), 1001).unwrap();
        assert_eq!(ns.uids[0], IdMap { inside: 0, outside: 200000, count: 65536 });
        assert!(!ns.deny_setgroups);
    }

    #[test]
    fn auto_without_a_range_says_how_to_get_one() {
        let (u, g) = fixtures();
        let msg = parse_flag("auto", &u, &g, Some("carol"), 1002).unwrap_err().to_string();
        assert!(msg.contains("no range for carol") && msg.contains("usermod --add-subuids"), "{msg}");
    }

    #[test]
    fn explicit_ids_and_ranges() {
        let (u, g) = fixtures();
        let p = |v: &str| parse_flag(v, &u, &g, None, 0);
        assert_eq!(p("100000").unwrap(), UserNs::range(100000, 1));
        assert_eq!(p("100000:65536").unwrap().gids, vec![IdMap { inside: 0, outside: 100000, count: 65536 }]);
        for bad in ["0", "0:10", "5:0", "x", "1:x", "4294967295", "4294967000:1000", "-1", ""] {
            let e = p(bad).unwrap_err();
            assert!(matches!(e, Error::Invalid { .. }) && e.to_string().contains(&format!("'{bad}'")), "{bad}: {e}");
        }
    }

    #[test]
    fn map_files_hold_one_line_per_range() {
        assert_eq!(map_text(&UserNs::own(1000, 100).uids), "0 1000 1\n");
        assert_eq!(map_text(&UserNs::own(1000, 100).gids), "0 100 1\n");
        assert!(UserNs::own(1000, 100).deny_setgroups);
        assert_eq!(UserNs::range(100000, 65536).root_uid(), 100000);
    }
}
