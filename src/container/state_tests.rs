use super::*;

fn root() -> (tempfile::TempDir, Root) {
    let t = tempfile::tempdir().unwrap();
    let r = Root::create(&t.path().join("state")).unwrap();
    (t, r)
}

fn state(name: &str) -> State {
    State::new(new_id(), name.into(), Config::new(["true"]))
}

#[test]
fn stat_start_time_is_field_22_after_the_last_parenthesis() {
    let line = "1234 (a) b) (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
    assert_eq!(parse_stat(line), Some(('S', 987654)));
    let me = Process::me();
    assert!(me.start_time > 0 && me.is_alive());
    assert!(!Process { pid: me.pid, start_time: me.start_time + 1 }.is_alive(), "a reused pid is another process");
}

#[test]
fn state_round_trips_through_json_with_its_config() {
    let mut s = state("web");
    s.config.limits.memory_bytes = Some(64 << 20);
    s.config.capabilities.remove(&caps::Capability::CAP_CHOWN);
    s.started_at = Some(SystemTime::now());
    let text = serde_json::to_string(&s).unwrap();
    let back: State = serde_json::from_str(&text).unwrap();
    assert_eq!(back.config.limits, s.config.limits);
    assert_eq!(back.config.capabilities, s.config.capabilities);
    assert_eq!(back.started_at, s.started_at, "nanoseconds survive");
    assert_eq!(back.id.len(), 64);
}

#[test]
fn names_are_unique_and_lookups_take_ids_names_and_prefixes() {
    let (_t, r) = root();
    let a = r.register(state("web")).unwrap();
    let e = r.register(state("web")).unwrap_err().to_string();
    assert!(e.contains(&format!("name \"web\" is already in use by {}", a.id())), "{e}");
    assert_eq!(r.ids().len(), 1, "the refused one left nothing");
    let mut s = state("");
    s.id = format!("{}{}", &a.id()[..2], &new_id()[2..]);
    let b = r.register(s).unwrap();
    assert!(!b.name().is_empty(), "a name was generated");
    assert_eq!(r.find("web").unwrap().id(), a.id());
    assert_eq!(r.find(a.id()).unwrap().name(), "web");
    assert_eq!(r.find(&a.id()[..10]).unwrap().name(), "web");
    let e = r.find(&a.id()[..2]).unwrap_err().to_string();
    assert!(e.starts_with(&format!("ambiguous container \"{}\": it matches ", &a.id()[..2])), "{e}");
    let e = r.find("nope").unwrap_err();
    assert_eq!((e.to_string(), e.exit_code()), ("no such container: \"nope\"".to_string(), 125));
    assert_eq!(r.list().len(), 2);
}

#[test]
fn a_free_supervisor_lock_means_the_supervisor_was_lost() {
    let (_t, r) = root();
    let mut c = r.register(state("x")).unwrap();
    c.update(|s| s.status = Status::Running).unwrap();
    assert!(r.find("x").unwrap().supervisor_alive(), "the registering process holds the lock");
    assert_eq!(r.find("x").unwrap().state.status, Status::Running);
    c.release_lock();
    let found = r.find("x").unwrap();
    assert_eq!((found.state.status, found.state.reason.as_deref()), (Status::Stopped, Some(SUPERVISOR_LOST)));
    found.remove_dir().unwrap();
    assert!(r.ids().is_empty());
    assert!(fs::symlink_metadata(r.dir().join("names/x")).is_err(), "the name is free again");
    r.register(state("x")).unwrap();
}

#[test]
fn name_links_fit_in_an_inode_and_whole_id_links_still_resolve() {
    let (_t, r) = root();
    let a = r.register(state("web")).unwrap();
    let target = fs::read_link(r.dir().join("names/web")).unwrap();
    // ext4 keeps a symlink target under 60 bytes in the inode: no data block, no discard.
    assert!(target.as_os_str().len() < 60, "{target:?}");
    assert!(links_to(&target, a.id()));
    // A link written by an older version: the whole id.
    let b = r.register(state("old")).unwrap();
    fs::remove_file(r.dir().join("names/old")).unwrap();
    std::os::unix::fs::symlink(b.id(), r.dir().join("names/old")).unwrap();
    assert_eq!(r.find("old").unwrap().id(), b.id());
    assert!(!links_to(Path::new(&a.id()[..12]), a.id()), "a short prefix is not a link");
    r.remove_leftovers();
    let is_link = |n: &str| fs::symlink_metadata(r.dir().join("names").join(n)).is_ok();
    assert!(is_link("web") && is_link("old"), "live names stay");
    b.remove_dir().unwrap();
    assert!(fs::symlink_metadata(r.dir().join("names/old")).is_err(), "its name went with it");
    let e = r.register(state("web")).unwrap_err().to_string();
    assert!(e.contains(&format!("already in use by {}", a.id())), "{e}");
}

#[test]
fn state_updates_replace_the_file_and_leave_no_temporary() {
    use std::os::unix::fs::MetadataExt;
    let (_t, r) = root();
    let mut c = r.register(state("x")).unwrap();
    c.update(|s| s.exit_code = Some(3)).unwrap();
    let inodes = |c: &Container| {
        (fs::metadata(c.dir.join("state.json")).unwrap().ino(), fs::metadata(c.dir.join(NEXT_STATE)).unwrap().ino())
    };
    let (a, b) = inodes(&c);
    c.update(|s| s.exit_code = Some(4)).unwrap();
    assert_eq!(read_state(&c.dir).unwrap().exit_code, Some(4));
    // The two files trade places: no inode made or deleted per update.
    assert_eq!(inodes(&c), (b, a));
    let mut left: Vec<String> =
        fs::read_dir(&c.dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, [NEXT_STATE, "lock", "state.json", "update.lock"]);
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_removed_containers_directory_is_the_next_ones_without_its_files_or_lock() {
    use std::os::unix::fs::MetadataExt;
    let (_t, r) = root();
    let mut a = r.register(state("a")).unwrap();
    a.update(|s| s.exit_code = Some(1)).unwrap();
    fs::write(a.dir.join("report.json"), "{}").unwrap();
    fs::create_dir(a.dir.join("stray")).unwrap();
    let ino = fs::metadata(&a.dir).unwrap().ino();
    let old_path = a.dir.clone();
    a.remove_dir().unwrap();
    assert!(!old_path.exists());
    let spares = r.dir().join(super::super::spare::DIR);
    assert_eq!(names_in(&spares).len(), 1, "kept as a spare");
    // Its lock is still held by `a` (this process's fd): passed over, a new directory is made.
    let b = r.register(state("b")).unwrap();
    assert_ne!(fs::metadata(&b.dir).unwrap().ino(), ino);
    drop(a);
    let c = r.register(state("c")).unwrap();
    assert_eq!(fs::metadata(&c.dir).unwrap().ino(), ino, "the spare taken");
    assert_eq!(names_in(&c.dir), [NEXT_STATE, "lock", "state.json", "update.lock"]);
    let st = read_state(&c.dir).unwrap();
    assert_eq!((st.name.as_str(), st.exit_code), ("c", None));
    assert!(c.supervisor_alive(), "its lock is held");
    assert!(names_in(&spares).is_empty());
    // A reader that still had the old path sees the old container gone, not the new one.
    fs::create_dir(&old_path).unwrap();
    fs::copy(c.dir.join("state.json"), old_path.join("state.json")).unwrap();
    assert!(read_state(&old_path).is_err(), "another id's state is not this container's");
}

#[test]
fn spares_are_kept_up_to_a_few() {
    let (_t, r) = root();
    let all: Vec<Container> = (0..12).map(|i| r.register(state(&format!("n{i}"))).unwrap()).collect();
    for c in &all {
        c.remove_dir().unwrap();
    }
    let spares = r.dir().join(super::super::spare::DIR);
    assert_eq!(names_in(&spares).len(), 8);
    assert_eq!(r.ids(), Vec::<String>::new());
    let left: Vec<String> = names_in(r.dir()).into_iter().filter(|n| n.starts_with(".rm-")).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_torn_state_is_read_again_and_a_bad_one_still_fails() {
    let (_t, r) = root();
    let c = r.register(state("x")).unwrap();
    fs::write(c.dir.join("state.json"), "{\"id\": \"").unwrap();
    let e = read_state(&c.dir).unwrap_err().to_string();
    assert!(e.contains("state.json"), "{e}");
}

#[test]
fn a_spare_keeps_no_text_of_its_container_and_a_stale_reader_finds_it_gone() {
    let (_t, r) = root();
    let mut st = state("secret");
    st.id = "c1".into(); // an OCI id: any directory name is checked
    let mut a = r.register(st).unwrap();
    a.update(|s| s.exit_code = Some(1)).unwrap();
    let spares = r.dir().join(super::super::spare::DIR);
    let a_dir = a.dir.clone();
    a.remove_dir().unwrap();
    drop(a);
    let spare = spares.join(&names_in(&spares)[0]);
    for f in ["state.json", NEXT_STATE] {
        let text = fs::read_to_string(spare.join(f)).unwrap();
        assert!(!text.is_empty() && text.trim().is_empty(), "{f} blanked, not emptied: {text:?}");
    }
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&spares).unwrap().permissions()) & 0o777, 0o700);
    // A reader that opened the old path before the removal and reads the blank text: gone.
    fs::create_dir(&a_dir).unwrap();
    fs::copy(spare.join("state.json"), a_dir.join("state.json")).unwrap();
    let e = read_state(&a_dir).unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
    // The next container of another OCI id takes it; reading c1 there is not c2.
    let mut st = state("b");
    st.id = "c2".into();
    let b = r.register(st).unwrap();
    fs::copy(b.dir.join("state.json"), a_dir.join("state.json")).unwrap();
    assert!(read_state(&a_dir).is_err(), "c2's state read as c1's");
}

#[test]
fn a_spare_whose_update_lock_is_held_or_that_is_a_link_is_passed_over() {
    use std::os::unix::fs::MetadataExt;
    let (t, r) = root();
    let a = r.register(state("a")).unwrap();
    let held = open_lock(&a.dir.join("update.lock"), true).unwrap();
    assert!(crate::sys::flock(held.as_raw_fd(), true, true).unwrap());
    let ino = fs::metadata(&a.dir).unwrap().ino();
    a.remove_dir().unwrap();
    drop(a);
    let b = r.register(state("b")).unwrap();
    assert_ne!(fs::metadata(&b.dir).unwrap().ino(), ino, "taken while a writer holds its update.lock");
    drop(held);
    // A link planted among the spares is never followed (its target keeps its files).
    let target = t.path().join("victim");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("lock"), "").unwrap();
    fs::write(target.join("precious"), "x").unwrap();
    let spares = r.dir().join(super::super::spare::DIR);
    for n in names_in(&spares) {
        fs::remove_dir_all(spares.join(n)).unwrap();
    }
    std::os::unix::fs::symlink(&target, spares.join("aaaaaaaaaaaa")).unwrap();
    let c = r.register(state("c")).unwrap();
    assert!(target.join("precious").exists() && target.join("lock").exists());
    assert!(c.dir.join("state.json").exists());
    assert!(fs::symlink_metadata(spares.join("aaaaaaaaaaaa")).is_err(), "the link removed");
}
