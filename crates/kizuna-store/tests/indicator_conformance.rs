//! The indicator store battery on the SQLite backend, in memory and on disk, one test per check.

use kizuna_store::conformance::Guarded;
use kizuna_store::indicators::IndicatorStore;
use kizuna_store::indicators::conformance::{self, CHECKS};
use kizuna_store::sqlite::SqliteStore;

fn memory() -> Box<dyn IndicatorStore> {
    Box::new(SqliteStore::open_in_memory().expect("open in-memory store"))
}

fn disk() -> Box<dyn IndicatorStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("kizuna.db")).expect("open store");
    Box::new(Guarded { store, guard: dir })
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        mod memory_store { $( #[test] fn $name() { super::conformance::$name(&super::memory); } )* }
        mod disk_store { $( #[test] fn $name() { super::conformance::$name(&super::disk); } )* }
        #[test]
        fn every_check_is_listed() {
            let listed: &[&str] = &[$(stringify!($name)),*];
            assert_eq!(listed, CHECKS.iter().map(|(n, _)| *n).collect::<Vec<_>>().as_slice());
        }
    };
}

checks!(
    insert_and_read_back,
    merge_rules,
    non_canonical_rejected,
    change_feed_in_commit_order,
    change_feed_while_writing,
    withdraw_and_reactivate,
    expire_and_revive,
    allowlist_applied_on_upsert,
    allowlist_reevaluates_records,
    list_filters_and_paging,
    counts_by_category_and_state,
);

#[test]
fn survives_reopen() {
    use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kizuna.db");
    let i = Indicator {
        kind: IndicatorKind::Domain,
        value: "bad.example".into(),
        category: ClassificationType::Phishing,
        source: "f".into(),
        confidence: 70,
        first_seen: Timestamp::from_secs(1_772_668_800),
        last_seen: Timestamp::from_secs(1_772_668_800),
        expires: Timestamp::from_secs(1_872_668_800),
        reason: "r".into(),
        malware: None,
        tlp: Tlp::Green,
        sharing_groups: vec![],
        legal_basis: LegalBasis::LegitimateBusiness,
    };
    {
        let s = SqliteStore::open(&path).expect("open");
        s.upsert_indicators(std::slice::from_ref(&i), Timestamp::from_secs(1_772_668_800)).expect("upsert");
    }
    let s = SqliteStore::open(&path).expect("reopen");
    let r = s.indicator(i.key()).expect("read").expect("kept");
    assert_eq!(r.indicator, i);
    assert_eq!(s.indicator_change_seq().expect("seq"), 1);
}
