//! The audit chain and its anchor file detect tampering with the database file.

use kizuna_model::Timestamp;
use kizuna_store::audit::{Anchor, Verdict, verify_store};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{AuditRecord, Store};

fn record(i: i64) -> AuditRecord {
    AuditRecord {
        at: Timestamp::from_secs(1_772_668_812 + i),
        actor: "cli:operator".into(),
        action: "member.add".into(),
        subject: format!("member:{i}"),
        detail: format!("{{\"name\":\"isp-{i}\"}}"),
    }
}

/// A store with ten audit entries, and a raw connection to its file.
fn setup() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kizuna.db");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.audit_anchor(), None, "no anchor before the first entry");
    for i in 1..=10 {
        store.append_audit(&record(i)).expect("append");
    }
    (dir, path, store)
}

fn raw(path: &std::path::Path, sql: &str) {
    let c = rusqlite::Connection::open(path).expect("raw connection");
    c.execute_batch(sql).expect("raw sql");
}

#[test]
fn untouched_log_is_intact_and_anchored() {
    let (_dir, path, store) = setup();
    let anchor = store.audit_anchor().expect("anchor");
    let last = store.audit_entries(9, 1).expect("entries").pop().expect("entry 10");
    assert_eq!(anchor, Anchor { seq: 10, hash: last.hash });
    let text = std::fs::read_to_string(store.anchor_path().expect("anchor path")).expect("anchor file");
    assert_eq!(Anchor::decode(&text), Some(anchor));
    assert_eq!(store.verify_audit().expect("verify"), Verdict::Intact { entries: 10 });
    // The anchor outlives the process: reopen and verify again.
    drop(store);
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.audit_anchor(), Some(anchor));
    assert_eq!(store.verify_audit().expect("verify"), Verdict::Intact { entries: 10 });
    let e = store.append_audit(&record(11)).expect("append after reopen");
    assert_eq!((e.seq, e.prev_hash), (11, last.hash));
    assert_eq!(store.audit_anchor(), Some(Anchor { seq: 11, hash: e.hash }));
}

#[test]
fn triggers_refuse_changes_through_sql() {
    let (_dir, path, _store) = setup();
    let c = rusqlite::Connection::open(&path).expect("raw connection");
    assert!(c.execute_batch("UPDATE audit SET detail = 'x' WHERE seq = 3").is_err());
    assert!(c.execute_batch("DELETE FROM audit WHERE seq = 10").is_err());
}

#[test]
fn modified_entry_is_detected() {
    let (_dir, path, store) = setup();
    raw(&path, "DROP TRIGGER audit_no_update; UPDATE audit SET detail = '{\"name\":\"forged\"}' WHERE seq = 5");
    match store.verify_audit().expect("verify") {
        Verdict::Broken { seq, reason } => assert_eq!(seq, 5, "{reason}"),
        v => panic!("modification not detected: {v:?}"),
    }
    // Without the anchor too: the chain itself breaks.
    assert!(matches!(verify_store(&store, None).expect("verify"), Verdict::Broken { seq: 5, .. }));
}

#[test]
fn rehashed_modification_is_detected_by_the_anchor() {
    // An attacker who recomputes the hashes of the modified entry and of every later one makes
    // a self-consistent chain; only the anchor outside the database tells.
    let (_dir, path, store) = setup();
    let mut entries = store.audit_entries(0, 100).expect("entries");
    entries[4].record.detail = "{\"name\":\"forged\"}".into();
    let c = rusqlite::Connection::open(&path).expect("raw connection");
    c.execute_batch("DROP TRIGGER audit_no_update").expect("drop trigger");
    let mut prev = entries[3].hash;
    for e in entries.iter_mut().skip(4) {
        e.prev_hash = prev;
        e.hash = kizuna_store::audit::chain_hash(e.seq, &e.prev_hash, &e.record);
        prev = e.hash;
        c.execute(
            "UPDATE audit SET detail = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![e.record.detail, &e.prev_hash[..], &e.hash[..], e.seq as i64],
        )
        .expect("rewrite");
    }
    assert_eq!(verify_store(&store, None).expect("verify"), Verdict::Intact { entries: 10 });
    assert!(matches!(store.verify_audit().expect("verify"), Verdict::Broken { seq: 10, .. }));
}

#[test]
fn deleted_middle_entry_is_detected() {
    let (_dir, path, store) = setup();
    raw(&path, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 5");
    match store.verify_audit().expect("verify") {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 5);
            assert!(reason.contains("missing"), "{reason}");
        }
        v => panic!("deletion not detected: {v:?}"),
    }
}

#[test]
fn deleted_last_entry_is_detected_by_the_anchor() {
    let (_dir, path, store) = setup();
    raw(&path, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 10");
    // The chain alone cannot tell: a shorter log is self-consistent.
    assert_eq!(verify_store(&store, None).expect("verify"), Verdict::Intact { entries: 9 });
    match store.verify_audit().expect("verify") {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 10);
            assert!(reason.contains("removed"), "{reason}");
        }
        v => panic!("truncation not detected: {v:?}"),
    }
}

#[test]
fn in_memory_store_keeps_its_anchor_in_memory() {
    let store = SqliteStore::open_in_memory().expect("open");
    assert_eq!(store.audit_anchor(), None);
    assert_eq!(store.anchor_path(), None);
    let e = store.append_audit(&record(1)).expect("append");
    assert_eq!(store.audit_anchor(), Some(Anchor { seq: 1, hash: e.hash }));
    assert_eq!(store.verify_audit().expect("verify"), Verdict::Intact { entries: 1 });
}
