//! `sandbox update`: new limits for a live group, all or nothing.
//!
//! Everything that can be checked is checked before the first write (a controller the group lacks,
//! a memory limit below what the group already uses: the kernel would reclaim and then OOM-kill on
//! v2, and fail with EBUSY half-way on v1; runc refuses it too). Then every file the update may
//! write is read, the limits are written through the same per-controller writers a run uses, and
//! if one write fails the files read before are put back, so the group keeps its old limits.

use std::path::{Path, PathBuf};

use crate::config::Limits;
use crate::error::{Error, Result};

/// Refuses a memory limit below what the group uses now (`usage`: v2 memory.current, v1
/// memory.usage_in_bytes). `None` (unreadable): the kernel decides.
pub(crate) fn check_memory(limits: &Limits, usage: Option<u64>) -> Result<()> {
    match (limits.memory_bytes, usage) {
        (Some(max), Some(used)) if max < used => Err(Error::Unsupported {
            limit: "--mem",
            reason: format!(
                "{} is below the container's current memory usage {}; nothing was changed",
                human(max),
                human(used)
            ),
        }),
        _ => Ok(()),
    }
}

/// Refuses a limit whose controller the group does not have: `asked` is (flag, limit given,
/// the group's file for it).
pub(crate) fn check_files(asked: &[(&'static str, bool, Option<PathBuf>)]) -> Result<()> {
    for (flag, given, file) in asked {
        if *given && !file.as_ref().is_some_and(|f| f.exists()) {
            return Err(Error::Unsupported {
                limit: flag,
                reason: match file {
                    Some(f) => format!("the container's group has no {}", f.display()),
                    None => "the container's group has no such controller".into(),
                },
            });
        }
    }
    Ok(())
}

/// What the files an update may write held before it.
pub(crate) struct Saved(Vec<(PathBuf, String)>);

impl Saved {
    /// Reads each of `files` that exists.
    pub fn read(files: impl IntoIterator<Item = PathBuf>) -> Saved {
        Saved(files.into_iter().filter_map(|f| super::read(&f).map(|t| (f, t))).collect())
    }

    /// Runs `apply`; if it fails, writes back what was read (and `resets`: lines that undo a rule
    /// for a disk that had none) and returns its error.
    pub fn guard(&self, resets: &[(PathBuf, String)], apply: impl FnOnce() -> Result<()>) -> Result<()> {
        let Err(e) = apply() else { return Ok(()) };
        self.restore(resets);
        Err(e)
    }

    /// Writes back every file, one line at a time (the per-disk files take one rule per write),
    /// twice: some values are ordered (v1 memsw must stay ≥ the memory limit), and a write the
    /// first pass could not make in its order succeeds in the second.
    fn restore(&self, resets: &[(PathBuf, String)]) {
        let writes: Vec<(&Path, &str)> = self
            .0
            .iter()
            .flat_map(|(f, t)| t.lines().filter(|l| !l.trim().is_empty()).map(move |l| (f.as_path(), l.trim())))
            .chain(resets.iter().map(|(f, l)| (f.as_path(), l.as_str())))
            .collect();
        let failed: Vec<_> = writes.into_iter().filter(|(f, l)| super::write(f, l).is_err()).collect();
        for (f, l) in failed {
            let _ = super::write(f, l);
        }
    }

    /// The disks (MAJ:MIN) that `file` has a line for.
    pub fn disks(&self, file: &Path) -> Vec<String> {
        self.0
            .iter()
            .filter(|(f, _)| f == file)
            .flat_map(|(_, t)| t.lines().filter_map(|l| l.split_whitespace().next().map(str::to_string)))
            .collect()
    }
}

/// Lines undoing the io rules of `limits` on disks `saved` had no line for in `file`: `reset`
/// gives the line for a disk (v2 `MAJ:MIN rbps=max …`, v1 `MAJ:MIN 0`).
pub(crate) fn io_resets(
    saved: &Saved,
    limits: &Limits,
    file_of: impl Fn(crate::limits::IoKind) -> PathBuf,
    reset: impl Fn(&str) -> String,
) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for r in &limits.io {
        let file = file_of(r.limit);
        let disk = format!("{}:{}", r.major, r.minor);
        let line = reset(&disk);
        if !saved.disks(&file).contains(&disk) && !out.iter().any(|(f, l)| *f == file && *l == line) {
            out.push((file, line));
        }
    }
    out
}

fn human(b: u64) -> String {
    bytesize::ByteSize::b(b).to_string_as(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_limit_below_usage_is_refused_with_both_figures() {
        let l = Limits { memory_bytes: Some(1 << 20), ..Default::default() };
        let e = check_memory(&l, Some(3_355_443)).unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot apply --mem: 1.0 MiB is below the container's current memory usage 3.2 MiB; nothing was changed"
        );
        assert!(check_memory(&l, Some(1 << 20)).is_ok());
        assert!(check_memory(&l, None).is_ok());
        assert!(check_memory(&Limits::default(), Some(u64::MAX)).is_ok());
    }

    #[test]
    fn a_failed_update_puts_every_file_back() {
        let t = tempfile::tempdir().unwrap();
        let (a, io) = (t.path().join("memory.max"), t.path().join("io.max"));
        std::fs::write(&a, "max\n").unwrap();
        std::fs::write(&io, "8:0 rbps=10 wbps=max\n").unwrap();
        let saved = Saved::read([a.clone(), io.clone(), t.path().join("absent")]);
        let resets = vec![(io.clone(), "7:0 rbps=max".to_string())];
        let e = saved.guard(&resets, || {
            std::fs::write(&a, "1048576").unwrap();
            Err(Error::invalid("--pids", "x", "y"))
        });
        assert!(e.is_err());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "max");
        // A plain file keeps the last line written: the reset came after the saved line.
        assert_eq!(std::fs::read_to_string(&io).unwrap(), "7:0 rbps=max");
        assert_eq!(saved.disks(&io), vec!["8:0".to_string()]);
        assert!(saved.guard(&[], || Ok(())).is_ok());
    }

    #[test]
    fn io_resets_only_for_disks_without_a_rule() {
        use crate::limits::{IoKind, IoRule};
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("io.max");
        std::fs::write(&f, "8:0 rbps=10\n").unwrap();
        let saved = Saved::read([f.clone()]);
        let rule = |major, limit| IoRule { device: "d".into(), major, minor: 0, limit, value: 1 };
        let l = Limits {
            io: vec![rule(8, IoKind::ReadBps), rule(7, IoKind::WriteBps), rule(7, IoKind::ReadIops)],
            ..Default::default()
        };
        let r = io_resets(&saved, &l, |_| f.clone(), |d| format!("{d} rbps=max"));
        assert_eq!(r, vec![(f.clone(), "7:0 rbps=max".to_string())]);
    }
}
