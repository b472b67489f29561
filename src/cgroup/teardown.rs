//! Killing and removing a group together with every group below it.
//!
//! A command that holds CAP_SYS_ADMIN can mount cgroupfs inside its cgroup namespace, where the
//! run's group is the root, and make subgroups (and sub-subgroups) with processes in them. rmdir(2)
//! of a group that has children fails with EBUSY, so removing only the run's own directory left it
//! behind and sandbox exited 125 without a report; `gc` could not remove it either. Teardown
//! therefore works on the whole subtree: kill every process in it (v2: cgroup.kill, which takes
//! the descendants too and stops forks; v1: SIGKILL to every member of every descendant until the
//! subtree is empty), then rmdir depth-first, children before parents.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{read, rmdir_retry, write};
use crate::error::Result;

/// How long the kill loop may go on before teardown gives up on it (and rmdir reports EBUSY).
/// SIGKILLed processes leave their groups within milliseconds; this bounds a pathological case.
pub(crate) const KILL_BUDGET: Duration = Duration::from_secs(5);

/// Rounds of kill + depth-first rmdir: a subgroup made in the instant between the walk and the
/// rmdir of its parent (by a process not yet dead) is caught by the next round.
const ROUNDS: usize = 3;

/// `dir` and every group below it, parents before children (reversed: the order rmdir needs).
/// Missing or vanishing directories are skipped: another teardown may be removing them.
pub(crate) fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    let mut i = 0;
    out.push(dir.to_path_buf());
    while i < out.len() {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            // cgroupfs has no symlinks; file_type does not follow them anyway.
            let kids: Vec<PathBuf> =
                entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
            out.extend(kids);
        }
        i += 1;
    }
    out
}

/// Every task of one group: processes (cgroup.procs) and threads (v1 `tasks`, v2 `cgroup.threads`).
/// Threads count because v1 can place a single thread in a subgroup apart from its process, and a
/// threaded v2 group lists nothing in cgroup.procs. kill(2) of a thread id kills its whole process.
fn members(dir: &Path) -> Vec<i32> {
    let mut ids: Vec<i32> = ["cgroup.procs", "tasks", "cgroup.threads"]
        .iter()
        .filter_map(|f| read(&dir.join(f)))
        .flat_map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect::<Vec<i32>>())
        .filter(|&p| p > 0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// SIGKILLs every task in `dir` and its descendants, pass after pass, until the subtree is empty.
/// Each pass re-walks the tree, so a task forked (or a group made) after a pass read its lists is
/// caught by the next one; a task with SIGKILL pending cannot fork any more, so this converges,
/// and the pids limit bounds how many there are. Gives up after `budget`; returns whether empty.
pub(crate) fn kill_tree_within(dir: &Path, budget: Duration) -> bool {
    let end = Instant::now() + budget;
    let mut nap = Duration::from_micros(200);
    loop {
        let groups = subtree(dir);
        let ids: Vec<i32> = groups.iter().flat_map(|d| members(d)).collect();
        if ids.is_empty() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        for id in ids {
            // Only tasks in a group we created (named sandbox-*-<pid>): ours to end.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(id), nix::sys::signal::SIGKILL);
        }
        // A task frozen by the v1 freezer (`pause`) dies of its SIGKILL only once thawed
        // (Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst); signalled first, it thaws
        // straight into death. v2 frozen tasks die of SIGKILL as they are.
        for g in &groups {
            let state = g.join("freezer.state");
            if read(&state).is_some_and(|s| s.trim() != "THAWED") {
                let _ = write(&state, "THAWED");
            }
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// [`kill_tree_within`] the default budget.
pub(crate) fn kill_tree(dir: &Path) -> bool {
    kill_tree_within(dir, KILL_BUDGET)
}

/// v2 (Linux 5.14+): cgroup.kill SIGKILLs the group and all its descendants at once, and a fork
/// racing it is killed too. Returns whether the kernel took it (v1 has no such file).
pub(crate) fn write_kill(dir: &Path) -> bool {
    let k = dir.join("cgroup.kill");
    k.exists() && write(&k, "1").is_ok()
}

/// Kills everything in `dir`'s subtree and removes it depth-first. Nothing there is left on Ok;
/// the error names the first directory that could not be removed.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    // The common case first, one syscall: the run's processes are gone with its pid namespace and
    // it made no subgroup. rmdir fails (EBUSY) on a group with tasks or children, so this cannot
    // skip anything the loop below would have killed or removed.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let mut last = Ok(());
    for _ in 0..ROUNDS {
        write_kill(dir);
        kill_tree(dir);
        last = subtree(dir).iter().rev().try_for_each(|d| rmdir_retry(d));
        if last.is_ok() {
            return Ok(());
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroupfs of plain directories: like a real one, rmdir of a directory that still has
    /// children fails, so removing the tree only works children first.
    fn tree(root: &Path) -> PathBuf {
        let g = root.join("sandbox-a-1");
        for d in ["sub/subsub/deeper", "sub/other", "sub2"] {
            std::fs::create_dir_all(g.join(d)).unwrap();
        }
        g
    }

    #[test]
    fn subtree_lists_parents_before_children() {
        let t = tempfile::tempdir().unwrap();
        let g = tree(t.path());
        let all = subtree(&g);
        assert_eq!(all.len(), 6, "{all:?}");
        assert_eq!(all[0], g);
        for (i, d) in all.iter().enumerate() {
            if let Some(parent_at) = all.iter().position(|p| Some(p.as_path()) == d.parent()) {
                assert!(parent_at < i, "{} listed before its parent", d.display());
            }
        }
        assert!(subtree(&t.path().join("missing")).is_empty());
    }

    #[test]
    fn removal_is_depth_first_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let g = tree(t.path());
        // The old teardown: rmdir of the group alone fails while it has subgroups.
        assert!(std::fs::remove_dir(&g).is_err());
        remove_tree(&g).unwrap();
        assert!(!g.exists());
        assert!(t.path().read_dir().unwrap().next().is_none(), "only the group's subtree went");
        // A group already gone (another gc got it first) is fine.
        remove_tree(&g).unwrap();
    }

    #[test]
    fn kill_reaches_tasks_in_nested_groups_and_is_bounded() {
        let t = tempfile::tempdir().unwrap();
        let g = tree(t.path());
        let mut child = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = child.id().to_string();
        std::fs::write(g.join("sub/subsub/deeper/cgroup.procs"), format!("{pid}\n")).unwrap();
        std::fs::write(g.join("sub/other/tasks"), format!("{pid}\n")).unwrap();
        // A fake file keeps listing the pid after its death (the zombie is not reaped until wait,
        // so the pid cannot be reused meanwhile): the loop must give up at its budget.
        let start = Instant::now();
        assert!(!kill_tree_within(&g, Duration::from_millis(300)));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");
        let st = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGKILL));
        assert_eq!(members(&g.join("sub/other")), vec![child.id() as i32]);
        assert!(kill_tree_within(&g.join("sub2"), Duration::ZERO), "an empty group is empty at once");
    }
}
