//! `--user` and an image's `User`: `NAME|UID[:GROUP|GID]`, resolved the way docker and runc do,
//! against the root filesystem's own /etc/passwd and /etc/group (read in the child after
//! pivot_root: the host's name service is never asked about the image's users).

use crate::error::{Error, Result};

const HELP: &str = "USER[:GROUP], names or numeric ids, e.g. 1000, nobody, 1000:1000, www-data:www-data";

/// A parsed user spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub user: String,
    pub group: Option<String>,
}

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: those of /etc/group that list the user (none with an explicit GROUP).
    pub groups: Vec<u32>,
    /// The home directory from /etc/passwd, for HOME when the environment has none.
    pub home: Option<String>,
}

/// The highest id accepted (runc's limit): (uid_t)-1 means "unchanged" to setresuid(2), so a
/// user 4294967295 would stay root.
const MAX_ID: u32 = i32::MAX as u32;

fn id(s: &str) -> Option<u32> {
    s.parse::<u32>().ok()
}

impl Spec {
    pub fn parse(s: &str) -> Result<Spec> {
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        let ok = |x: &str| !x.is_empty() && !x.contains([':', '\n', '/', '\0']);
        let too_big =
            |x: &str| id(x).is_some_and(|n| n > MAX_ID) || (x.bytes().all(|b| b.is_ascii_digit()) && id(x).is_none());
        if !ok(user) || group.is_some_and(|g| !ok(g)) || too_big(user) || group.is_some_and(too_big) {
            return Err(Error::invalid("--user", s, HELP));
        }
        Ok(Spec { user: user.into(), group: group.map(Into::into) })
    }

    /// Resolves against the text of /etc/passwd and /etc/group (either may be missing: numeric
    /// ids need neither).
    pub fn resolve(&self, passwd: &str, group: &str) -> Result<Resolved, String> {
        let users: Vec<Vec<&str>> =
            passwd.lines().map(|l| l.split(':').collect()).filter(|f: &Vec<&str>| f.len() >= 4).collect();
        let groups: Vec<Vec<&str>> =
            group.lines().map(|l| l.split(':').collect()).filter(|f: &Vec<&str>| f.len() >= 3).collect();
        let entry = match self.user.parse::<u32>() {
            Ok(uid) => users.iter().find(|f| f[2].parse() == Ok(uid)),
            Err(_) => users.iter().find(|f| f[0] == self.user),
        };
        let (uid, mut gid, name, home) = match (self.user.parse::<u32>(), entry) {
            (_, Some(f)) => (
                f[2].parse().map_err(|_| format!("bad uid in /etc/passwd for {}", f[0]))?,
                f[3].parse().map_err(|_| format!("bad gid in /etc/passwd for {}", f[0]))?,
                Some(f[0]),
                f.get(5).filter(|h| !h.is_empty()).map(|h| h.to_string()),
            ),
            (Ok(uid), None) => (uid, 0, None, None),
            (Err(_), None) => return Err(format!("user '{}' is not in the root filesystem's /etc/passwd", self.user)),
        };
        let mut supplementary = vec![];
        match &self.group {
            Some(g) => {
                gid = match g.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => groups
                        .iter()
                        .find(|f| f[0] == g)
                        .and_then(|f| f[2].parse().ok())
                        .ok_or_else(|| format!("group '{g}' is not in the root filesystem's /etc/group"))?,
                };
            }
            None => {
                if let Some(n) = name {
                    for f in &groups {
                        let members = f.get(3).copied().unwrap_or("");
                        if members.split(',').any(|m| m == n) {
                            if let Ok(id) = f[2].parse::<u32>() {
                                if id != gid && !supplementary.contains(&id) {
                                    supplementary.push(id);
                                }
                            }
                        }
                    }
                }
            }
        }
        if uid > MAX_ID || gid > MAX_ID || supplementary.iter().any(|g| *g > MAX_ID) {
            return Err(format!("user '{}' resolves to an id above {MAX_ID} ({uid}:{gid})", self.user));
        }
        Ok(Resolved { uid, gid, groups: supplementary, home })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nfred:x:1234:4321::/home/fred:/bin/sh\nbroken\n";
    const GROUP: &str = "root:x:0:\nfreds:x:4321:\nextra:x:777:fred,joe\nwheel:x:10:joe\n";

    fn r(s: &str) -> Result<Resolved, String> {
        Spec::parse(s).unwrap().resolve(PASSWD, GROUP)
    }

    #[test]
    fn names_and_numbers_resolve_like_docker() {
        let fred = r("fred").unwrap();
        assert_eq!((fred.uid, fred.gid, fred.groups.clone()), (1234, 4321, vec![777]));
        assert_eq!(fred.home.as_deref(), Some("/home/fred"));
        assert_eq!(r("1234").unwrap(), fred, "a uid in passwd gets its gid and groups");
        let g = r("fred:root").unwrap();
        assert_eq!((g.uid, g.gid, g.groups), (1234, 0, vec![]));
        let n = r("5000:6000").unwrap();
        assert_eq!((n.uid, n.gid, n.home), (5000, 6000, None));
        assert_eq!(r("5000").unwrap().gid, 0);
        assert!(r("nobody").unwrap_err().contains("'nobody'"));
        assert!(r("fred:nogroup").unwrap_err().contains("'nogroup'"));
        let huge = Spec::parse("x").unwrap().resolve("x:x:4294967295:0::/:/bin/sh\n", "").unwrap_err();
        assert!(huge.contains("above 2147483647"), "{huge}");
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in ["", ":", "a:", ":b", "a:b:c", "a/b", "4294967295", "0:4294967295", "2147483648", "99999999999"] {
            let e = Spec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("USER[:GROUP]"), "{e}");
        }
    }
}
