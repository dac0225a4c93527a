//! Member reports apply the one audience rule (kizuna-policy): an observation routed to a member
//! but marked TLP:RED for another named recipient is withheld, whatever the routing says.

mod common;

use std::sync::Arc;

use kizuna_hub::{Hub, HubConfig, IngestSettings, SensorConfig, tokens};
use kizuna_model::{IpNet, Timestamp};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{MemberSpec, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_observation_naming_another_recipient_is_not_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("kizuna.sqlite")).expect("open store"));
    store.replace_routes(&[("192.0.2.0/24".parse::<IpNet>().expect("net"), 64500)]).expect("routes");
    let a = store
        .add_member(&MemberSpec { name: "isp-a".into(), asns: vec![64500], ..Default::default() }, Timestamp::now())
        .expect("member");
    let ta = tokens::issue().expect("token");
    store.add_token(a.id, ta.hash, "test", &ta.prefix, Timestamp::now()).expect("token");
    let sensor = tokens::issue().expect("token");
    let config = HubConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        sensors: vec![SensorConfig { name: "s".into(), token_sha256: tokens::hash_hex(&sensor.secret) }],
        ..HubConfig::default()
    };
    let hub = Hub::new(store.clone(), config, IngestSettings::default()).expect("hub");
    let (base, _tx, _) = common::serve(hub).await;

    // Four observations, all in isp-a's address space.
    let event = |ip: &str, tlp: &str, extra: &str| {
        format!(
            r#"{{"feed.name":"t","classification.type":"scanner","source.ip":"{ip}","time.source":"2026-03-05T00:00:00+00:00","tlp":"{tlp}"{extra}}}"#
        )
    };
    let body = [
        event("192.0.2.1", "RED", r#","extra.recipients":["cert-other"]"#), // RED for someone else
        event("192.0.2.2", "RED", ""),                                      // RED, routed to isp-a only
        event("192.0.2.3", "RED", r#","extra.recipients":["isp-a","cert-other"]"#),
        event("192.0.2.4", "AMBER+STRICT", r#","extra.recipients":["cert-other"]"#),
        event("192.0.2.5", "AMBER", ""),
    ]
    .join("\n");
    let client = kizuna_testkit::http_client();
    let r = client
        .post(format!("{base}/api/v1/ingest?format=intelmq&name=b.json"))
        .bearer_auth(&sensor.secret)
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let summary: serde_json::Value = r.json().await.expect("json");
    assert_eq!(summary["stored"], 5, "{summary}");

    let page: serde_json::Value = client
        .get(format!("{base}/api/v1/observations?limit=100"))
        .bearer_auth(&ta.secret)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let mut ips: Vec<&str> = page["observations"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|o| o["event"]["source.ip"].as_str())
        .collect();
    ips.sort();
    assert_eq!(ips, vec!["192.0.2.2", "192.0.2.3", "192.0.2.5"], "{page}");
    // The cursor moved past the withheld ones: the next page is empty.
    let next = page["next_cursor"].as_str().expect("cursor").to_owned();
    let page2: serde_json::Value = client
        .get(format!("{base}/api/v1/observations?cursor={next}"))
        .bearer_auth(&ta.secret)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(page2["observations"].as_array().map(|a| a.len()), Some(0));
    // The audit entry of the read records what was withheld.
    let audit = store.audit_entries(0, 100).expect("audit");
    let read = audit.iter().find(|e| e.record.action == "report.read").expect("report.read audited");
    let detail: serde_json::Value = serde_json::from_str(&read.record.detail).expect("detail");
    assert_eq!(detail["withheld"], 2);
}

// ---- sightings in the `kizuna-indicators` TAXII view, read with taxii2-client ----

use kizuna_hub::sharing;
use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Tlp};
use kizuna_store::HubStore;
use kizuna_store::indicators::IndicatorStore;
use serde_json::Value;

const T0: i64 = 1_772_668_800;

fn seen(host: &str, source: &str, tlp: Tlp, first: i64, last: i64) -> Indicator {
    Indicator {
        kind: IndicatorKind::Domain,
        value: host.into(),
        category: ClassificationType::C2Server,
        source: source.into(),
        confidence: 80,
        first_seen: Timestamp::from_secs(first),
        last_seen: Timestamp::from_secs(last),
        expires: Timestamp::from_secs(4_102_444_800),
        reason: format!("{source} saw it"),
        malware: None,
        tlp,
        sharing_groups: if tlp >= Tlp::Amber { vec!["jp-isps".into()] } else { vec![] },
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

const READ_ALL: &str = r#"
import json, sys
from taxii2client.v21 import Server, as_pages
import requests
base, user, password, probe = sys.argv[1:5]
root = Server(base + "/taxii2/", user=user, password=password).default
col = [c for c in root.collections if c.id == "kizuna-indicators"][0]
objects = [o for p in as_pages(col.get_objects, per_request=3, version="all") for o in p.get("objects", [])]
sightings = [o for p in as_pages(col.get_objects, per_request=2, type="sighting") for o in p.get("objects", [])]
try:
    by_id = [o["id"] for o in col.get_object(probe).get("objects", [])]
except requests.HTTPError as e:
    by_id = "refused: " + str(e.response.status_code)
manifest = [m["id"] for p in as_pages(col.get_manifest, per_request=5) for m in p.get("objects", [])]
print(json.dumps({"objects": objects, "sightings": sightings, "by_id": by_id, "manifest": manifest}))
"#;

fn partner(store: &SqliteStore, name: &str, groups: &[&str], password: &str) {
    common::reading_partner(store, name, groups, password);
}

fn sighting_of(host: &str) -> String {
    kizuna_stix::ids::indicator_id(&kizuna_model::indicator_key(IndicatorKind::Domain, host))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighting_reaches_exactly_its_indicators_audience() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("k.sqlite")).expect("store"));
    let store: Arc<dyn HubStore> = sqlite.clone();
    partner(&sqlite, "cert-green", &[], "pw-green"); // cleared for GREEN data only (no group)
    partner(&sqlite, "isp-amber", &["jp-isps"], "pw-amber"); // in the AMBER data's group
    let now = Timestamp::now();
    let h = 3600;
    sqlite
        .upsert_indicators(
            &[
                // GREEN from a feed, AMBER from a sensor that saw it earlier and later: a GREEN
                // indicator whose AMBER entry must not show in its sighting
                seen("mixed.bad.example", "feed-green", Tlp::Green, T0, T0 + h),
                seen("mixed.bad.example", "sensor-amber", Tlp::Amber, T0 - 24 * h, T0 + 48 * h),
                // AMBER only
                seen("amber.bad.example", "sensor-amber", Tlp::Amber, T0, T0 + 5 * h),
                // GREEN as a partner sent it, AMBER from our sensor: no sighting of ours at GREEN
                seen("relayed.bad.example", "cert-green/feed", Tlp::Green, T0, T0 + h),
                seen("relayed.bad.example", "sensor-amber", Tlp::Amber, T0, T0 + 7 * h),
                // AMBER first; a GREEN source later widens it
                seen("widened.bad.example", "sensor-amber", Tlp::Amber, T0 - 10 * h, T0 + 30 * h),
            ],
            now,
        )
        .expect("upsert");
    sharing::sync_indicators(&store, "hub-a", now).expect("sync");
    let later = Timestamp::from_micros(now.as_micros() + 2_000_000);
    sqlite
        .upsert_indicators(&[seen("widened.bad.example", "feed-green", Tlp::Green, T0, T0 + 2 * h)], later)
        .expect("upsert");
    sharing::sync_indicators(&store, "hub-a", later).expect("sync");

    let hub = Hub::new(
        store.clone(),
        HubConfig { listen: "127.0.0.1:0".parse().expect("addr"), ..HubConfig::default() },
        IngestSettings::default(),
    )
    .expect("hub");
    let (base, _tx, _) = common::serve(hub).await;
    let amber_sighting = kizuna_stix::export::sighting_id(
        &kizuna_stix::SightingItem {
            kind: IndicatorKind::Domain,
            value: "amber.bad.example".into(),
            count: 1,
            first_seen: now,
            last_seen: now,
            tlp: Tlp::Amber,
            sharing_groups: vec![],
            legal_basis: LegalBasis::LegitimateBusiness,
            where_sighted: None,
            created: now,
            modified: now,
            revoked: false,
        },
        &kizuna_stix::ExportOptions::new("hub-a"),
    );
    let read = |user: &'static str, pw: &'static str| {
        let (base, probe) = (base.clone(), amber_sighting.clone());
        async move {
            let out = tokio::task::spawn_blocking(move || {
                let py = kizuna_testkit::venv().join("bin/python");
                assert!(py.exists(), "{} missing: run scripts/setup-test-deps.sh", py.display());
                std::process::Command::new(py)
                    .arg("-c")
                    .arg(READ_ALL)
                    .args([&base, user, pw, &probe])
                    .output()
                    .expect("python")
            })
            .await
            .expect("join");
            assert!(out.status.success(), "taxii2-client: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).expect("json")
        }
    };
    let hub_id = kizuna_stix::ids::object_id("identity", "hub-a");
    let stamp = |s: i64| kizuna_stix::stix_time(Timestamp::from_secs(s));

    // --- the GREEN partner ---
    let g = read("cert-green", "pw-green").await;
    assert!(!g.to_string().contains("amber.bad.example"), "the AMBER value reached the GREEN partner: {g}");
    let objects = g["objects"].as_array().expect("objects");
    // no sighting-side object names a source (feed, sensor, partner) or a member
    for o in objects.iter().filter(|o| o["type"] != "indicator") {
        let text = o.to_string();
        for secret in ["sensor-amber", "feed-green", "cert-green", "isp-amber"] {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }
    for o in objects {
        for m in o["object_marking_refs"].as_array().into_iter().flatten() {
            let t = kizuna_stix::tlp::tlp_of_marking_id(m.as_str().unwrap_or("")).expect("a TLP marking");
            assert!(t <= Tlp::Green, "a {t:?} object reached the GREEN partner: {o}");
        }
    }
    // The GREEN indicator itself carries only its GREEN source's times: the AMBER sensor saw it a
    // day earlier, which the GREEN partner must not learn.
    let mixed: Vec<&Value> = objects
        .iter()
        .filter(|o| o["type"] == "indicator" && o["pattern"].as_str().is_some_and(|p| p.contains("mixed.bad.example")))
        .collect();
    assert!(!mixed.is_empty(), "the GREEN indicator is shared: {g}");
    for i in &mixed {
        assert_eq!(i["valid_from"].as_str(), Some(&*stamp(T0)), "the AMBER source's first sighting leaked: {i}");
    }
    let sightings: Vec<&Value> = objects.iter().filter(|o| o["type"] == "sighting").collect();
    let mut of: Vec<&str> = sightings.iter().filter_map(|s| s["sighting_of_ref"].as_str()).collect();
    of.sort();
    let mut want = vec![sighting_of("mixed.bad.example"), sighting_of("widened.bad.example")];
    want.sort();
    assert_eq!(of, want, "every version it may see: mixed and the widened one's GREEN version only");
    for s in &sightings {
        assert_eq!(s["count"], 1, "only the GREEN source is counted: {s}");
        assert_eq!(s["where_sighted_refs"], serde_json::json!([hub_id]), "the hub, never a source or member");
        let (first, last) = if s["sighting_of_ref"] == sighting_of("mixed.bad.example").as_str() {
            (T0, T0 + h)
        } else {
            (T0, T0 + 2 * h)
        };
        assert_eq!(
            (s["first_seen"].as_str(), s["last_seen"].as_str()),
            (Some(&*stamp(first)), Some(&*stamp(last))),
            "{s}"
        );
        // its observed-data and SCO came along, under the same audience
        let od = s["observed_data_refs"][0].as_str().expect("od");
        let od = objects.iter().find(|o| o["id"] == od).expect("observed-data served with it");
        assert_eq!(od["first_observed"], s["first_seen"], "{od}");
        assert_eq!(od["last_observed"], s["last_seen"], "{od}");
        let sco = od["object_refs"][0].as_str().expect("sco");
        assert!(objects.iter().any(|o| o["id"] == sco && o["type"] == "domain-name"));
    }
    assert_eq!(g["sightings"].as_array().map(Vec::len), Some(2), "type filter: the newest of each");
    assert_eq!(g["by_id"], "refused: 404", "object by id");
    assert!(!g["manifest"].as_array().expect("manifest").iter().any(|m| *m == amber_sighting.as_str()));

    // --- the AMBER group member sees the AMBER sighting (one source) and everything above ---
    let a = read("isp-amber", "pw-amber").await;
    let mut of: Vec<String> = a["sightings"]
        .as_array()
        .expect("sightings")
        .iter()
        .filter_map(|s| s["sighting_of_ref"].as_str().map(str::to_owned))
        .collect();
    of.sort();
    let mut want =
        vec![sighting_of("amber.bad.example"), sighting_of("mixed.bad.example"), sighting_of("widened.bad.example")];
    want.sort();
    assert_eq!(of, want, "no sighting of ours for the relayed one (only its partner's data is GREEN)");
    assert_eq!(a["by_id"], serde_json::json!([amber_sighting]));
    let amber = a["sightings"]
        .as_array()
        .expect("sightings")
        .iter()
        .find(|s| s["id"] == amber_sighting.as_str())
        .expect("amber sighting");
    assert_eq!((amber["count"].as_u64(), amber["last_seen"].as_str()), (Some(1), Some(&*stamp(T0 + 5 * h))));
    let versions = a["objects"].as_array().expect("objects").iter().filter(|o| o["type"] == "sighting").count();
    assert_eq!(versions, 4, "the widened one's AMBER version too");
}
