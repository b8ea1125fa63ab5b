use super::*;
use std::io::Write;

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "verdict-revocation-{tag}-{}-{}",
        std::process::id(),
        new_nonce()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn new_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn token(
    provider: &str,
    jti: &str,
    sub: &str,
    sid: &str,
    kid: &str,
    iat: Option<u64>,
) -> RevocationKeys {
    RevocationKeys::of(provider, Some(jti), Some(sub), Some(sid), Some(kid), iat)
}

fn new(provider: &str, selector: Selector) -> NewRevocation {
    NewRevocation {
        provider: provider.into(),
        selector,
        reason: None,
        expires_at: None,
    }
}

fn revoked(store: &RevocationStore, keys: &RevocationKeys) -> bool {
    store.published().load().revokes(keys)
}

#[test]
fn each_selector_revokes_only_what_it_names() {
    let (store, _) = RevocationStore::open(None, 100, 1000).expect("open");
    let alice = token("corp", "j1", "alice", "s1", "k1", Some(900));
    let bob = token("corp", "j2", "bob", "s2", "k2", Some(950));
    let other_provider = token("other", "j1", "alice", "s1", "k1", Some(900));
    assert!(!revoked(&store, &alice));
    for selector in [
        Selector::Jti("j1".into()),
        Selector::Sub("alice".into()),
        Selector::Sid("s1".into()),
        Selector::Kid("k1".into()),
        Selector::IssuedBefore(901),
    ] {
        let (entry, created) = store.add(new("corp", selector.clone()), 1000).expect("add");
        assert!(created);
        assert!(revoked(&store, &alice), "{selector:?} revokes alice");
        assert!(!revoked(&store, &bob), "{selector:?} leaves bob");
        assert!(
            !revoked(&store, &other_provider),
            "{selector:?} stays in its provider"
        );
        store.remove(&entry.id, 1001).expect("remove");
        assert!(!revoked(&store, &alice), "{selector:?} removed");
    }
    // A value of one kind never matches another kind.
    store
        .add(new("corp", Selector::Sub("j1".into())), 1000)
        .expect("add");
    assert!(!revoked(&store, &alice));
}

#[test]
fn issued_before_covers_tokens_without_iat_and_uses_the_latest_bound() {
    let (store, _) = RevocationStore::open(None, 100, 1000).expect("open");
    store
        .add(new("corp", Selector::IssuedBefore(500)), 1000)
        .expect("add");
    let (later, _) = store
        .add(new("corp", Selector::IssuedBefore(800)), 1000)
        .expect("add");
    let at = |iat| RevocationKeys::of("corp", None, None, None, None, iat);
    assert!(revoked(&store, &at(Some(799))));
    assert!(!revoked(&store, &at(Some(800))));
    assert!(revoked(&store, &at(None)));
    store.remove(&later.id, 1000).expect("remove");
    assert!(!revoked(&store, &at(Some(600))));
    assert!(revoked(&store, &at(Some(499))));
}

#[test]
fn the_same_selector_twice_is_one_entry() {
    let (store, _) = RevocationStore::open(None, 100, 1000).expect("open");
    let (first, created) = store
        .add(new("corp", Selector::Jti("x".into())), 1000)
        .expect("add");
    assert!(created);
    let (again, created) = store
        .add(new("corp", Selector::Jti("x".into())), 1001)
        .expect("add");
    assert!(!created);
    assert_eq!(first, again);
    assert_eq!(store.list().len(), 1);
    assert!(matches!(
        store.remove("rv-nope", 1000),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_full_set_refuses_new_entries() {
    let (store, _) = RevocationStore::open(None, 2, 1000).expect("open");
    store
        .add(new("corp", Selector::Jti("a".into())), 1000)
        .expect("add");
    store
        .add(new("corp", Selector::Jti("b".into())), 1000)
        .expect("add");
    assert!(matches!(
        store.add(new("corp", Selector::Jti("c".into())), 1000),
        Err(StoreError::Full(2))
    ));
}

#[test]
fn entries_expire_at_their_time_and_not_before() {
    let (store, _) = RevocationStore::open(None, 100, 1000).expect("open");
    let mut expiring = new("corp", Selector::Jti("j".into()));
    expiring.expires_at = Some(1010);
    store.add(expiring, 1000).expect("add");
    let keys = RevocationKeys::of("corp", Some("j"), None, None, None, None);
    assert_eq!(store.purge_expired(1009), 0);
    assert!(revoked(&store, &keys));
    assert_eq!(store.purge_expired(1010), 1);
    assert!(!revoked(&store, &keys));
    assert!(store.list().is_empty());
}

/// The same durability, whichever way appends reach the disk.
#[test]
fn the_log_rebuilds_the_set_after_a_restart() {
    for io_uring in [false, true] {
        log_rebuilds_the_set_after_a_restart(io_uring);
    }
}

fn log_rebuilds_the_set_after_a_restart(io_uring: bool) {
    let dir = scratch("restart");
    let path = dir.join("revocations.log");
    let kept;
    {
        let (store, opened) =
            RevocationStore::open_with(Some(&path), 100, 1000, io_uring).expect("open");
        assert_eq!((opened.live, opened.records, opened.torn_bytes), (0, 0, 0));
        if !io_uring {
            assert!(!opened.io_uring);
        }
        println!(
            "revocation log appends through io_uring: {}",
            opened.io_uring
        );
        kept = store
            .add(new("corp", Selector::Sub("alice".into())), 1000)
            .expect("add")
            .0;
        let gone = store
            .add(new("corp", Selector::Sub("bob".into())), 1000)
            .expect("add")
            .0;
        let mut expiring = new("corp", Selector::Sub("carol".into()));
        expiring.expires_at = Some(1500);
        store.add(expiring, 1000).expect("add");
        store.remove(&gone.id, 1001).expect("remove");
    }
    let (store, opened) =
        RevocationStore::open_with(Some(&path), 100, 2000, io_uring).expect("reopen");
    assert_eq!(opened.records, 4);
    assert_eq!(opened.expired, 1);
    assert_eq!(opened.live, 1);
    assert_eq!(store.list(), vec![kept]);
    let alice = RevocationKeys::of("corp", None, Some("alice"), None, None, None);
    let bob = RevocationKeys::of("corp", None, Some("bob"), None, None, None);
    assert!(revoked(&store, &alice));
    assert!(!revoked(&store, &bob));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_torn_last_line_is_cut_and_a_corrupt_line_stops_the_start() {
    let dir = scratch("torn");
    let path = dir.join("revocations.log");
    {
        let (store, _) = RevocationStore::open(Some(&path), 100, 1000).expect("open");
        store
            .add(new("corp", Selector::Jti("a".into())), 1000)
            .expect("add");
    }
    let good_len = std::fs::metadata(&path).expect("meta").len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(br#"{"op":"add","id":"rv-1","prov"#))
        .expect("tear");
    let (store, opened) = RevocationStore::open(Some(&path), 100, 1000).expect("torn reopen");
    assert_eq!(opened.live, 1);
    assert!(opened.torn_bytes > 0);
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), good_len);
    store
        .add(new("corp", Selector::Jti("b".into())), 1000)
        .expect("add after tear");
    drop(store);
    let (store, _) = RevocationStore::open(Some(&path), 100, 1000).expect("reopen");
    assert_eq!(store.list().len(), 2);
    drop(store);

    // A complete line that is not a record is not a crash artefact: refuse to start.
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.insert_str(0, "not json\n");
    std::fs::write(&path, text).expect("write");
    match RevocationStore::open(Some(&path), 100, 1000) {
        Err(LogError::Corrupt { line, .. }) => assert_eq!(line, 1),
        other => panic!("expected a corrupt-line error, got {other:?}"),
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn compaction_keeps_exactly_the_live_entries() {
    for io_uring in [false, true] {
        compaction_keeps_live_entries(io_uring);
    }
}

fn compaction_keeps_live_entries(io_uring: bool) {
    let dir = scratch("compact");
    let path = dir.join("revocations.log");
    let (store, _) = RevocationStore::open_with(Some(&path), 10_000, 1000, io_uring).expect("open");
    let keep = store
        .add(new("corp", Selector::Sub("keep".into())), 1000)
        .expect("add")
        .0;
    for i in 0..1100 {
        let (entry, _) = store
            .add(new("corp", Selector::Jti(format!("t{i}"))), 1000)
            .expect("add");
        store.remove(&entry.id, 1000).expect("remove");
    }
    let lines = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .count();
    assert!(lines < 1100, "log compacted: {lines} lines");
    // Appends after a compaction land in the new file.
    let after = store
        .add(new("corp", Selector::Sub("after".into())), 1001)
        .expect("add")
        .0;
    drop(store);
    let (store, _) = RevocationStore::open(Some(&path), 10_000, 1000).expect("reopen");
    assert_eq!(store.list(), vec![keep, after]);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_snapshot_is_right_across_delta_folds() {
    let (store, _) = RevocationStore::open(None, 100_000, 1000).expect("open");
    let mut ids = Vec::new();
    for i in 0..(2 * set::MAX_DELTA + 100) {
        ids.push(
            store
                .add(new("corp", Selector::Jti(format!("j{i}"))), 1000)
                .expect("add")
                .0
                .id,
        );
    }
    for id in ids.iter().step_by(2) {
        store.remove(id, 1000).expect("remove");
    }
    let set = store.published().load_full();
    for i in 0..ids.len() {
        let keys = RevocationKeys::of("corp", Some(&format!("j{i}")), None, None, None, None);
        assert_eq!(set.revokes(&keys), i % 2 == 1, "j{i}");
    }
    assert_eq!(set.len(), ids.len() / 2);
}

#[test]
fn entries_round_trip_as_the_api_shows_them() {
    let entry = Revocation {
        id: "rv-0123456789abcdef".into(),
        provider: "corp".into(),
        selector: Selector::IssuedBefore(1764633600),
        reason: Some("breach".into()),
        created_at: 1764633700,
        expires_at: None,
        origin: None,
    };
    let json = serde_json::to_value(&entry).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"id": "rv-0123456789abcdef", "provider": "corp",
            "issued_before": 1764633600, "reason": "breach", "created_at": 1764633700})
    );
    let back: Revocation = serde_json::from_value(json).expect("back");
    assert_eq!(back, entry);
    let line = serde_json::to_string(&LogRecord::Add(entry.clone())).expect("line");
    assert_eq!(
        serde_json::from_str::<LogRecord>(&line).expect("parse"),
        LogRecord::Add(entry)
    );
}

#[test]
fn fleet_entries_keep_their_id_survive_a_restart_and_are_not_observed() {
    let dir = scratch("fleet");
    let log = dir.join("revocations.log");
    let observed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (store, _) = RevocationStore::open(Some(&log), 100, 1000).expect("open");
    let sink = std::sync::Arc::clone(&observed);
    assert!(store.set_observer(Box::new(move |record| {
        sink.lock().expect("observed").push(record.clone());
    })));
    let (local, _) = store
        .add(new("corp", Selector::Sub("alice".into())), 1000)
        .expect("add");
    // Another instance revoked the same subject at the same moment: both entries are live.
    let remote = Revocation {
        id: "rv-00000000000000aa".into(),
        provider: "corp".into(),
        selector: Selector::Sub("alice".into()),
        reason: None,
        created_at: 1000,
        expires_at: None,
        origin: Some("gw-2".into()),
    };
    assert!(store.apply_remote(remote.clone(), 1000).expect("apply"));
    assert!(
        !store.apply_remote(remote.clone(), 1000).expect("again"),
        "deduplicated by id"
    );
    let alice = token("corp", "j", "alice", "s", "k", Some(900));
    store.remove(&local.id, 1001).expect("remove local");
    assert!(revoked(&store, &alice), "the remote entry still revokes");
    assert_eq!(
        observed.lock().expect("observed").len(),
        2,
        "local add and remove only"
    );
    drop(store);
    let (store, _) = RevocationStore::open(Some(&log), 100, 1002).expect("reopen");
    assert_eq!(store.list(), vec![remote.clone()]);
    assert!(
        store
            .remove_remote(&remote.id, 1003)
            .expect("remove remote")
    );
    assert!(!store.remove_remote(&remote.id, 1003).expect("gone"));
    assert!(!revoked(&store, &alice));
    let _ = std::fs::remove_dir_all(&dir);
}
