//! The hub serves TAXII 2.1 from its own SQLite store: partners and credentials from the
//! sharing tables, the `kizuna-indicators` collection kept in step with the indicator store,
//! and every object filtered by the audience rule. A second hub-side poll gets only changes.

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
        category: ClassificationType::Phishing,
        source: "crawler".into(),
        confidence: 80,
        first_seen: Timestamp::from_secs(1_772_668_800),
        last_seen: Timestamp::from_secs(1_772_668_800),
        expires: Timestamp::from_secs(4_102_444_800),
        reason: "phishing kit".into(),
        malware: None,
        tlp,
        sharing_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_serves_its_indicators_over_taxii_by_audience() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("k.sqlite")).expect("store"));
    let store: Arc<dyn HubStore> = sqlite.clone();
    common::reading_partner(sqlite.as_ref(), "cert-x", &["jp-isps"], "s3cret-pw");
    let now = Timestamp::now();
    sqlite
        .upsert_indicators(
            &[
                ind("clear.bad.example", Tlp::Clear, &[]),
                ind("group.bad.example", Tlp::Amber, &["jp-isps"]),
                ind("other-group.bad.example", Tlp::Amber, &["finance"]),
                ind("red.bad.example", Tlp::Red, &[]),
            ],
            now,
        )
        .expect("upsert");
    // each indicator with the hub's sighting of it (SCO, observed-data, sighting)
    assert_eq!(sharing::sync_indicators(&store, "hub-a", now).expect("sync"), 16);
    assert_eq!(sharing::sync_indicators(&store, "hub-a", now).expect("sync"), 0, "nothing new");

    let hub = Hub::new(
        store.clone(),
        HubConfig { listen: "127.0.0.1:0".parse().expect("addr"), ..HubConfig::default() },
        IngestSettings::default(),
    )
    .expect("hub");
    let (base, _tx, _) = common::serve(hub).await;

    let rc = RemoteCollection {
        url: format!("{base}/taxii2/kizuna/collections/{}/", sharing::INDICATORS_COLLECTION),
        auth: ClientAuth::Basic { user: "cert-x".into(), password: "s3cret-pw".into() },
        limit: 1,
    };
    let http = kizuna_testkit::http_client();
    let first = client::poll(&http, &rc, &PollState::default()).await.expect("poll");
    let mut names: Vec<String> = first.objects.iter().filter_map(|o| o["name"].as_str().map(str::to_owned)).collect();
    names.sort();
    assert_eq!(names, vec!["domain clear.bad.example", "domain group.bad.example"]);
    assert_eq!(first.pages, 8, "limit 1: full pages only (2 indicators and their sightings)");
    let seen: Vec<&str> = first
        .objects
        .iter()
        .filter(|o| o["type"] == "sighting")
        .filter_map(|o| o["sighting_of_ref"].as_str())
        .collect();
    let shown: Vec<&str> =
        first.objects.iter().filter(|o| o["type"] == "indicator").filter_map(|o| o["id"].as_str()).collect();
    assert_eq!(seen, shown, "one sighting per indicator served, of that indicator");

    // a new indicator and a changed one arrive in the next poll, nothing else
    let later = Timestamp::from_micros(now.as_micros() + 5_000_000);
    sqlite.upsert_indicators(&[ind("new.bad.example", Tlp::Green, &[])], later).expect("upsert");
    assert_eq!(sharing::sync_indicators(&store, "hub-a", later).expect("sync"), 4);
    let second = client::poll(&http, &rc, &first.state).await.expect("poll");
    let names: Vec<&str> = second.objects.iter().filter_map(|o| o["name"].as_str()).collect();
    assert_eq!(names, vec!["domain new.bad.example"]);
    let types: Vec<&str> = second.objects.iter().filter_map(|o| o["type"].as_str()).collect();
    assert_eq!(types, vec!["indicator", "domain-name", "observed-data", "sighting"]);

    // wrong password: a TAXII error object
    let r = http.get(format!("{base}/taxii2/")).basic_auth("cert-x", Some("wrong")).send().await.expect("get");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["http_status"], "401");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_sighting_of_our_indicator_by_id_imports() {
    use kizuna_testkit::medallion::{Medallion, PASSWORD, USER, one_collection};
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("k.sqlite")).expect("store"));
    let store: Arc<dyn HubStore> = sqlite.clone();
    let now = Timestamp::now();
    sqlite.upsert_indicators(&[ind("ours.bad.example", Tlp::Green, &[])], now).expect("upsert");
    sharing::sync_indicators(&store, "hub-a", now).expect("sync");
    let key = kizuna_model::indicator_key(IndicatorKind::Domain, "ours.bad.example");
    let ours = kizuna_stix::ids::indicator_id(&key);
    let other = kizuna_stix::ids::indicator_id(&kizuna_model::indicator_key(IndicatorKind::Domain, "x.example"));
    // the partner's collection: its identity and two sightings naming indicators by id only
    let cert = serde_json::json!({"type": "identity", "spec_version": "2.1",
        "id": "identity--5b0a7f3c-2d4e-4f6a-8b1c-9d0e1f2a3b4c", "created": "2026-03-05T00:00:00.000Z",
        "modified": "2026-03-05T00:00:00.000Z", "name": "CERT M", "identity_class": "organization"});
    let sighting = |n: u32, of: &str| {
        serde_json::json!({"type": "sighting", "spec_version": "2.1",
            "id": format!("sighting--6c1b8e4d-3e5f-4a7b-9c2d-0e1f2a3b4c{n:02}"),
            "created": "2026-03-06T00:00:00.000Z", "modified": "2026-03-06T00:00:00.000Z",
            "created_by_ref": cert["id"], "sighting_of_ref": of, "count": 9,
            "first_seen": "2026-03-06T00:00:00.000Z", "last_seen": "2026-03-06T01:00:00.000Z",
            "where_sighted_refs": [cert["id"]],
            "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]})
    };
    let objects = vec![cert.clone(), sighting(1, &ours), sighting(2, &other)];
    let m = tokio::task::spawn_blocking(move || {
        Medallion::start(&one_collection("c0ffee00-0000-4000-8000-000000000001", &objects), 10)
    })
    .await
    .expect("medallion");
    let p = sharing::PollConfig {
        name: "cert-m".into(),
        url: format!("{}/tg/collections/c0ffee00-0000-4000-8000-000000000001/", m.base),
        user: None,
        password_file: None,
        token_file: None,
        interval_secs: 300,
        ca_file: None,
        page_size: 2,
        timeout_secs: 10,
        default_tlp: None,
        tlp_floor: None,
        sharing_groups: vec![],
    };
    let auth = ClientAuth::Basic { user: USER.into(), password: PASSWORD.into() };
    let out = sharing::poll_partner(&store, &p, auth, &kizuna_testkit::http_client()).await.expect("poll");
    assert_eq!((out.objects, out.sightings, out.rejected), (3, 1, 1), "{out:?}: ours imports, the unknown id does not");
    let rec = sqlite.indicator(key).expect("read").expect("record");
    let seen = rec.provenance.iter().find(|p| p.source == "cert-m/sighting:CERT M").expect("merged into our record");
    assert!(seen.reason.starts_with("sighted 9 times by CERT M"), "{}", seen.reason);
    assert_eq!(seen.tlp, Tlp::Green);
}
