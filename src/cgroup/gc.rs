//! Stale groups: what a SIGKILLed sandbox left (its group named `sandbox-<id>-<pid>` with a dead
//! owner pid, perhaps with its command still running in it) is killed and removed by the next
//! run beside it, or by `sandbox gc`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{own_pid_namespace, owner, read, teardown, Host, INITIAL_PID_NS};

impl Host {
    /// Removes stale groups: named `sandbox-*-<pid>` (runs, and the `sandbox-sup-<pid>` leaves of
    /// v2 supervisors) whose owner pid is gone. Whatever is still in one, subgroups included (a
    /// command may have made them), is killed and removed depth-first: only groups with our name
    /// pattern and a dead owner, so only groups we made. Returns the directories removed.
    pub fn gc(&self, parent: Option<&str>) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let Ok(bases) = self.bases(parent) else {
            return removed;
        };
        let mut seen = std::collections::BTreeSet::new();
        // Every run calls this: each owner's /proc/PID/stat is read once, not once per hierarchy
        // (its group has the same name in every one of them).
        let mut owners = BTreeMap::new();
        let own_ns = own_pid_namespace();
        let initial = own_ns == Some(INITIAL_PID_NS);
        // The pid namespaces that still have a process (read once, when a group names one that
        // is not ours).
        let mut live_namespaces = None;
        // The freezer's groups first: a task frozen by the v1 freezer dies of SIGKILL only once
        // thawed, and until then every other hierarchy's group of the run stays busy. The cgroup2
        // groups of hybrid runs are always under our own cgroup there (not the parent), last.
        let freezer_first = bases
            .get("freezer")
            .into_iter()
            .chain(bases.iter().filter(|(c, _)| *c != "freezer").map(|(_, b)| b))
            .chain(&self.unified);
        for base in freezer_first.filter(|b| seen.insert(b.to_path_buf())) {
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(owner) = owner(&name) else {
                    continue;
                };
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                // Whether the owner is gone, and whether an empty group may be judged from here.
                let (gone, judge_empty) = match owner.pid_ns {
                    // Named in our own pid namespace: its pid is ours to look up.
                    Some(ns) if Some(ns) == own_ns => (!owner_alive(&mut owners, owner), true),
                    // Another pid namespace: its pids mean nothing here. From the initial one,
                    // a namespace no process is in any more is gone with every process it had
                    // (the death of its PID 1 kills them all), its sandbox included.
                    Some(ns) => {
                        let live = live_namespaces.get_or_insert_with(pid_namespaces_in_use);
                        (initial && live.as_ref().is_some_and(|l| !l.contains(&ns)), true)
                    }
                    // No namespace in the name: the initial one, or a sandbox from before
                    // namespaces were named (judged as then).
                    None => (!owner_alive(&mut owners, owner), initial),
                };
                let dir = e.path();
                if !gone || !stale_here(&dir, judge_empty) {
                    continue;
                }
                if teardown::remove_tree(&dir).is_ok() {
                    removed.push(dir);
                }
            }
        }
        removed
    }
}

/// The pid in a group's name is its owner's in the owner's pid namespace. Seen from another one
/// (a sandbox run inside `unshare -p --mount-proc`, a container whose cgroup view includes runs of
/// the host) a live owner may simply be invisible, and its run was taken for stale: seconds spent
/// on v1 groups whose members read as pid 0, then cgroup.kill of its cgroup2 group. cgroup.procs
/// shows a task of a pid namespace we cannot see as 0 (task_pid_vnr): such a group is never ours
/// to judge. An empty group is judged only when `judge_empty` (the owner's pid namespace is
/// known: ours, named in the group's name, or for an unnamed one, ours being the initial one).
/// The group names its owner's pid namespace (`-ns<inode>`) whenever that is not the initial
/// one, so the caller knows it is gone before asking.
fn stale_here(dir: &Path, judge_empty: bool) -> bool {
    let mut members = false;
    for d in teardown::subtree(dir) {
        for f in ["cgroup.procs", "tasks"] {
            for l in read(&d.join(f)).unwrap_or_default().lines().map(str::trim).filter(|l| !l.is_empty()) {
                if l == "0" {
                    return false;
                }
                members = true;
            }
        }
    }
    members || judge_empty
}

/// Whether `owner`'s pid is a live process here, each pid read once per gc.
fn owner_alive(owners: &mut BTreeMap<u32, bool>, owner: super::Owner) -> bool {
    *owners.entry(owner.pid).or_insert_with(|| alive(owner.pid))
}

/// The pid namespaces (nsfs inodes) that some process we can see is in, or `None` when that
/// cannot be known: /proc unreadable, or the `ns/pid` of a process in a nested pid namespace
/// refused. That link needs ptrace access, which a caller without CAP_SYS_PTRACE (a systemd
/// unit's bounding set, capsh --drop) lacks for the non-dumpable processes of every run: those
/// runs' namespaces then looked empty and gc SIGKILLed them while they ran. A refused process
/// whose `NSpid` (in /proc/PID/status, readable without ptrace access) has one entry is in our own
/// namespace, no nested one, and does not matter (some hosts' PID 1 refuses even root). A process
/// that is gone meanwhile (ENOENT, ESRCH) is simply not counted.
fn pid_namespaces_in_use() -> Option<std::collections::BTreeSet<u64>> {
    use std::os::unix::fs::MetadataExt;
    let mut live = std::collections::BTreeSet::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        if !e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        match std::fs::metadata(e.path().join("ns/pid")) {
            Ok(m) => {
                live.insert(m.ino());
            }
            Err(err) if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => {}
            Err(_) if nested_levels(&e.path()) == Some(1) => {}
            Err(_) => return None,
        }
    }
    Some(live)
}

/// How many pid namespaces, ours and those nested in it, the process at `/proc/PID` has a pid
/// in (the `NSpid:` line of its status), if that can be read.
fn nested_levels(proc_pid: &Path) -> Option<usize> {
    let status = read(&proc_pid.join("status"))?;
    status.lines().find_map(|l| l.strip_prefix("NSpid:")).map(|v| v.split_whitespace().count())
}

/// Whether process `pid` exists and is not a zombie (a SIGKILLed sandbox whose parent has not
/// reaped it yet is gone for our purposes).
pub(super) fn alive(pid: u32) -> bool {
    use std::io::Read;
    // Every run checks the owner of each group it finds: one read into the stack, no allocation
    // (the line is ~300 bytes, 52 numbers and a comm of at most 64 bytes, well under a page).
    let mut buf = [0u8; 4096];
    let Ok(n) = std::fs::File::open(format!("/proc/{pid}/stat")).and_then(|mut f| f.read(&mut buf)) else {
        return false;
    };
    let stat = &buf[..n];
    // The state follows the last ") " (comm may hold one itself).
    stat.windows(2).rposition(|w| w == b") ").is_some_and(|i| !matches!(stat.get(i + 2), Some(b'Z' | b'X')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::tests::fake_v1;
    use std::time::Duration;

    #[test]
    fn alive_is_false_for_a_zombie_and_a_gone_pid_true_for_a_live_one() {
        assert!(alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Unreaped, it becomes a zombie: its group is stale.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!alive(pid), "a zombie owner counts as gone");
        child.wait().unwrap();
        assert!(!alive(pid), "a reaped owner is gone");
    }

    #[test]
    fn a_group_with_members_of_an_unseen_pid_namespace_or_empty_outside_the_initial_one_is_not_stale() {
        let t = tempfile::tempdir().unwrap();
        let g = t.path().join("sandbox-a-77");
        std::fs::create_dir_all(g.join("sub")).unwrap();
        // Empty: judged only from the initial pid namespace.
        assert!(stale_here(&g, true));
        assert!(!stale_here(&g, false));
        // Members we can see (their pid namespace is ours or below): the owner is really gone.
        std::fs::write(g.join("cgroup.procs"), "4\n9\n").unwrap();
        assert!(stale_here(&g, false));
        // A member of a pid namespace we cannot see reads as 0, in a subgroup too: never ours.
        std::fs::write(g.join("sub/tasks"), "12\n0\n").unwrap();
        assert!(!stale_here(&g, true));
    }

    #[test]
    fn gc_removes_only_groups_whose_owner_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_v1(tmp.path());
        let live = tmp.path().join(format!("pids/sandbox-a-{}", std::process::id()));
        let dead = tmp.path().join("pids/sandbox-b-999999999");
        let other = tmp.path().join("pids/not-ours-999999999");
        for d in [&live, &dead, &other] {
            std::fs::create_dir(d).unwrap();
        }
        let removed = host.gc(None);
        assert_eq!(removed, vec![dead.clone()]);
        assert!(live.exists() && other.exists() && !dead.exists());
    }

    #[test]
    fn gc_removes_nested_stale_groups_depth_first_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_v1(tmp.path());
        // A command with CAP_SYS_ADMIN made subgroups in its run's group (see teardown.rs).
        let dead_mem = tmp.path().join("memory/user/sandbox-b-999999999");
        let dead_pids = tmp.path().join("pids/sandbox-b-999999999");
        let live = tmp.path().join(format!("pids/sandbox-a-{}", std::process::id()));
        let other = tmp.path().join("pids/not-ours-999999999");
        for g in [&dead_mem, &dead_pids, &live, &other] {
            std::fs::create_dir_all(g.join("sub/subsub")).unwrap();
        }
        std::fs::create_dir_all(dead_pids.join("sub2")).unwrap();
        let mut removed = host.gc(None);
        removed.sort();
        assert_eq!(removed, vec![dead_mem.clone(), dead_pids.clone()]);
        assert!(!dead_mem.exists() && !dead_pids.exists());
        assert!(live.join("sub/subsub").exists(), "a live run's subgroups are its own");
        assert!(other.join("sub/subsub").exists(), "not named by us: never touched");
    }
}
