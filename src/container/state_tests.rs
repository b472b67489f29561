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
    let (_t, r) = root();
    let mut c = r.register(state("x")).unwrap();
    c.update(|s| s.exit_code = Some(3)).unwrap();
    c.update(|s| s.exit_code = Some(4)).unwrap();
    assert_eq!(read_state(&c.dir).unwrap().exit_code, Some(4));
    let mut left: Vec<String> =
        fs::read_dir(&c.dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["lock", "state.json", "update.lock"]);
}
