//! Conformance: replay a real client walk against kizuna's TAXII server.
//!
//! `shared/fixtures/taxii-medallion/transcript-upstream.json` records taxii2-client 2.3.0
//! walking medallion 3.0.0 loaded with medallion's upstream test data (`default_data.json`).
//! Here the same data is loaded into kizuna (same `date_added` per object version), the same
//! collection calls are replayed (paged objects, all versions, versions of one object,
//! `spec_version` filter, manifest), and kizuna's answers must carry the same objects, the
//! same `more` flags and the same `X-TAXII-Date-Added-First/Last` headers. Page tokens differ
//! (kizuna's are stateless), so each `next` is taken from kizuna's previous answer.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use kizuna_model::Tlp;
use kizuna_policy::{OwnedLabels, Recipient, RecipientKind};
use kizuna_taxii::server::secret_hash;
use kizuna_taxii::{
    CollectionInfo, Credential, MemoryStore, NewObject, ObjectStore, Partner, StaticDirectory, TaxiiConfig,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/taxii-medallion").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

fn load(store: &MemoryStore, data: &Value) {
    for c in data["trustgroup1"]["collections"].as_array().expect("collections") {
        let id = c["id"].as_str().expect("id");
        store
            .put_collection(&CollectionInfo {
                id: id.into(),
                title: c["title"].as_str().unwrap_or("").into(),
                description: String::new(),
                default_labels: OwnedLabels { tlp: Tlp::Clear, ..OwnedLabels::default() },
                no_echo: false,
            })
            .expect("collection");
        let objects = c["objects"].as_array().cloned().unwrap_or_default();
        let mut manifest = c["manifest"].as_array().cloned().unwrap_or_default();
        manifest
            .sort_by_key(|m| kizuna_stix::parse_time(m["date_added"].as_str().unwrap_or("")).map(|t| t.as_micros()));
        for m in manifest {
            let (mid, ver) = (m["id"].as_str().expect("id"), m["version"].as_str().expect("version"));
            let want = kizuna_stix::parse_time(ver).expect("version time");
            let o = objects
                .iter()
                .find(|o| {
                    o["id"] == mid
                        && o.get("modified")
                            .or_else(|| o.get("created"))
                            .and_then(Value::as_str)
                            .and_then(kizuna_stix::parse_time)
                            == Some(want)
                })
                .unwrap_or_else(|| panic!("{mid} {ver} in manifest but not in objects"));
            let added = kizuna_stix::parse_time(m["date_added"].as_str().expect("date_added")).expect("time");
            let r = store
                .add(
                    id,
                    vec![NewObject {
                        object: o.clone(),
                        labels: OwnedLabels { tlp: Tlp::Clear, ..OwnedLabels::default() },
                    }],
                    added.as_micros(),
                )
                .expect("add");
            assert!(matches!(r[0], kizuna_taxii::store::AddResult::Added { .. }), "{r:?}");
        }
    }
}

fn ids_versions(v: &Value, key: &str) -> Vec<(String, String)> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    let ver = o.get("modified").or_else(|| o.get("version")).or_else(|| o.get("created"));
                    (o["id"].as_str().unwrap_or("").to_owned(), ver.and_then(Value::as_str).unwrap_or("").to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_taxii2_client_against_medallion_gives_the_same_answers() {
    let data = fixture("default_data.json");
    let transcript = fixture("transcript-upstream.json");
    let store = MemoryStore::new();
    load(&store, &data);
    let directory = StaticDirectory {
        entries: vec![(
            Credential::Basic { user: "admin".into(), password_sha256: secret_hash("Password0") },
            Partner {
                recipient: Recipient::new("replayer", RecipientKind::Partner),
                can_read: ["*".to_owned()].into(),
                can_write: ["*".to_owned()].into(),
            },
        )],
    };
    let config = TaxiiConfig { api_root: "trustgroup1".into(), ..TaxiiConfig::default() };
    let run = common::start(config, Arc::new(store), Arc::new(directory)).await;
    let upstream = transcript["base_url"].as_str().expect("base_url").to_owned();
    let http = kizuna_testkit::http_client();
    let mut last_next: Option<String> = None;
    let mut replayed = 0;
    for call in transcript["calls"].as_array().expect("calls") {
        let step = call["step"].as_str().unwrap_or("");
        let url = call["url"].as_str().expect("url");
        if !url.contains("/trustgroup1/collections/91a7b528") {
            continue;
        }
        let mut ours = url.replace(&upstream, &format!("{}/taxii2", run.base));
        if let (Some(pos), Some(n)) = (ours.find("next="), &last_next) {
            let end = ours[pos..].find('&').map(|e| pos + e).unwrap_or(ours.len());
            ours.replace_range(pos..end, &format!("next={n}"));
        }
        let resp = http
            .get(&ours)
            .basic_auth("admin", Some("Password0"))
            .header("Accept", "application/taxii+json;version=2.1")
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status().as_u16(), call["status"].as_u64().expect("status") as u16, "{step} {ours}");
        let h = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(h("content-type").as_deref(), Some("application/taxii+json;version=2.1"));
        for name in ["X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last"] {
            let want = call["headers"][name].as_str();
            assert_eq!(h(name).as_deref(), want, "{step} {ours}: {name}");
        }
        let body: Value = resp.json().await.expect("json");
        let want = &call["body"];
        assert_eq!(body["more"].as_bool().unwrap_or(false), want["more"].as_bool().unwrap_or(false), "{step} {ours}");
        last_next = body["next"].as_str().map(str::to_owned);
        if want.get("versions").is_some() {
            let a: BTreeSet<&str> =
                body["versions"].as_array().expect("versions").iter().filter_map(Value::as_str).collect();
            let b: BTreeSet<&str> =
                want["versions"].as_array().expect("versions").iter().filter_map(Value::as_str).collect();
            assert_eq!(a, b, "{step}");
        } else {
            // the transcript keeps every id in order (`object_ids`) and the first objects in full
            let ours = ids_versions(&body, "objects");
            if let Some(all) = call["object_ids"].as_array() {
                let want_ids: Vec<&str> = all.iter().filter_map(Value::as_str).collect();
                let our_ids: Vec<&str> = ours.iter().map(|(i, _)| i.as_str()).collect();
                assert_eq!(our_ids, want_ids, "{step} {ours:?}");
            }
            if step == "manifest" {
                let entry = |m: &Value| {
                    let s = |k: &str| m[k].as_str().unwrap_or("").to_owned();
                    (s("id"), s("version"), s("date_added"), s("media_type"))
                };
                let ours: BTreeSet<_> = body["objects"].as_array().expect("objects").iter().map(entry).collect();
                for m in want["objects"].as_array().expect("objects") {
                    assert!(ours.contains(&entry(m)), "manifest entry {m} missing from {ours:?}");
                }
            } else {
                let shown = ids_versions(want, "objects");
                assert_eq!(&ours[..shown.len().min(ours.len())], &shown[..], "{step} {url}");
            }
        }
        replayed += 1;
    }
    assert_eq!(replayed, 7, "every collection call of the transcript replayed");
}
