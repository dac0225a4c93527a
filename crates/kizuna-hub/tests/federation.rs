//! Federation: two hubs, each with its own SQLite store, on two loopback ports. Hub B polls
//! hub A's TAXII collection: what A may share with B arrives once, with provenance, within
//! TLP and groups; B republishes it, but never back to A; A polling B gets nothing of its own.

mod common;

use std::sync::Arc;

use kizuna_hub::{Hub, HubConfig, IngestSettings, sharing};
use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
use kizuna_store::HubStore;
use kizuna_store::indicators::IndicatorStore;
use kizuna_store::sqlite::SqliteStore;
use kizuna_taxii::client::{self, ClientAuth, PollState, RemoteCollection};

fn ind(host: &str, tlp: Tlp, groups: &[&str]) -> Indicator {
    Indicator {
        kind: IndicatorKind::Domain,
        value: host.into(),
        category: ClassificationType::C2Server,
        source: "sinkhole-a".into(),
        confidence: 90,
        first_seen: Timestamp::from_secs(1_772_668_800),
        last_seen: Timestamp::from_secs(1_772_668_800),
        expires: Timestamp::from_secs(4_102_444_800),
        reason: "C2 seen by hub A's sinkhole".into(),
        malware: None,
        tlp,
        sharing_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

struct Side {
    store: Arc<SqliteStore>,
    base: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn hub(partner: &str, groups: &[&str], password: &str) -> Side {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("k.sqlite")).expect("store"));
    common::reading_partner(store.as_ref(), partner, groups, password);
    let hs: Arc<dyn HubStore> = store.clone();
    let h = Hub::new(
        hs,
        HubConfig { listen: "127.0.0.1:0".parse().expect("addr"), ..HubConfig::default() },
        IngestSettings::default(),
    )
    .expect("hub");
    let (base, tx, _) = common::serve(h).await;
    Side { store, base, _dir: dir, _stop: tx }
}

fn collection(side: &Side, user: &str, password: &str) -> RemoteCollection {
    RemoteCollection {
        url: format!("{}/taxii2/kizuna/collections/{}/", side.base, sharing::INDICATORS_COLLECTION),
        auth: ClientAuth::Basic { user: user.into(), password: password.into() },
        limit: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_share_once_with_provenance_and_no_loop() {
    // hub A knows partner "hub-b" (in group jp-isps); hub B knows partner "hub-a"
    let a = hub("hub-b", &["jp-isps"], "b-pulls-a").await;
    let b = hub("hub-a", &["jp-isps"], "a-pulls-b").await;
    let now = Timestamp::now();
    a.store
        .upsert_indicators(
            &[
                ind("clear.c2.example", Tlp::Clear, &[]),
                ind("green.c2.example", Tlp::Green, &[]),
                ind("amber-jp.c2.example", Tlp::Amber, &["jp-isps"]),
                ind("amber-fin.c2.example", Tlp::Amber, &["finance"]),
                ind("red.c2.example", Tlp::Red, &[]),
            ],
            now,
        )
        .expect("upsert A");
    let a_store: Arc<dyn HubStore> = a.store.clone();
    let b_store: Arc<dyn HubStore> = b.store.clone();
    sharing::sync_indicators(&a_store, "hub-a", now).expect("sync A");

    let http = kizuna_testkit::http_client();
    let from_a = collection(&a, "hub-b", "b-pulls-a");
    let mut state = PollState::default();
    let mut imported = 0;
    let mut sighted = 0;
    for round in 0..2 {
        let got = client::poll(&http, &from_a, &state).await.expect("B polls A");
        state = got.state.clone();
        let r = kizuna_stix::import::import_objects(&got.objects, &kizuna_stix::ImportOptions::new("hub-a", now));
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        if round == 1 {
            assert!(r.indicators.is_empty(), "second poll brings nothing again");
        }
        for i in &r.indicators {
            assert_eq!(i.origin, "hub-a");
            assert_eq!(i.created_by, Some(kizuna_stix::ids::object_id("identity", "hub-a")));
            assert!(i.original_id.starts_with("indicator--"));
        }
        let mut inds: Vec<Indicator> = r.indicators.iter().map(|i| i.with_provenance()).collect();
        imported += inds.len();
        // A's own sighting of each indicator comes along, of the same STIX id B computes
        for si in &r.sightings {
            assert_eq!(
                si.sighting_of,
                kizuna_stix::ids::indicator_id(&kizuna_model::indicator_key(si.kind, &si.value))
            );
            // (the collection carries no identity objects: the seer is named by its id)
            assert_eq!(si.count, 1);
            assert_eq!(si.where_sighted, vec![kizuna_stix::ids::object_id("identity", "hub-a")]);
        }
        sighted += r.sightings.len();
        inds.extend(r.sightings.iter().map(|s| s.as_indicator()));
        if !inds.is_empty() {
            b.store.upsert_indicators(&inds, now).expect("upsert B");
        }
    }
    assert_eq!(imported, 3, "CLEAR, GREEN and AMBER for jp-isps; not the finance AMBER, not RED");
    assert_eq!(sighted, 3, "a sighting for each of those, none for the others");
    let mut at_b: Vec<String> =
        b.store.active_indicators(now).expect("B").into_iter().map(|r| r.indicator.value).collect();
    at_b.sort();
    assert_eq!(at_b, vec!["amber-jp.c2.example", "clear.c2.example", "green.c2.example"]);
    let rec = b.store.active_indicators(now).expect("B").into_iter().next().expect("one");
    assert!(rec.indicator.source.starts_with("hub-a/"), "provenance: the producing hub: {}", rec.indicator.source);
    assert!(rec.provenance.iter().any(|p| p.source == "hub-a/sinkhole-a"), "and its feed: {:?}", rec.provenance);

    let seen_by_a = format!("hub-a/sighting:{}", kizuna_stix::ids::object_id("identity", "hub-a"));
    assert!(rec.provenance.iter().any(|p| p.source == seen_by_a), "{:?}", rec.provenance);

    // B republishes; A polls B: nothing of A's own comes back. A's data and A's sightings are
    // not B's own sightings: B publishes the 3 indicators and no sighting of them.
    assert_eq!(sharing::sync_indicators(&b_store, "hub-b", now).expect("sync B"), 3);
    let from_b = collection(&b, "hub-a", "a-pulls-b");
    let back = client::poll(&http, &from_b, &PollState::default()).await.expect("A polls B");
    assert!(back.objects.is_empty(), "looped back: {:?}", back.objects);
}
