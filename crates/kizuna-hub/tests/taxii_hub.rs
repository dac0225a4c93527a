//! The hub serves TAXII 2.1 from its own SQLite store: partners and credentials from the
//! sharing tables, the `kizuna-indicators` collection kept in step with the indicator store,
//! and every object filtered by the audience rule. A second hub-side poll gets only changes.

use std::sync::Arc;

use kizuna_hub::{Hub, HubConfig, IngestSettings, sharing};
use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
use kizuna_store::HubStore;
use kizuna_store::indicators::IndicatorStore;
use kizuna_store::sharing::{CredentialKind, CredentialRecord, PartnerSpec, PartyKind, SharingStore};
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
    sqlite
        .add_partner(
            &PartnerSpec {
                name: "cert-x".into(),
                kind: PartyKind::Partner,
                groups: vec!["jp-isps".into()],
                tlp_max: None,
                can_read: vec![sharing::INDICATORS_COLLECTION.into()],
                can_write: vec![],
            },
            Timestamp::now(),
        )
        .expect("partner");
    sqlite
        .add_partner_credential(&CredentialRecord {
            partner: "cert-x".into(),
            kind: CredentialKind::Basic,
            user: "cert-x".into(),
            secret_sha256: kizuna_taxii::server::secret_hash("s3cret-pw"),
            created: Timestamp::now(),
        })
        .expect("credential");
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.serve(listener, async {
        let _ = rx.await;
    }));

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
