//! kizuna's TAXII 2.1 server driven by the `taxii2-client` Python package (the client partner
//! centres use), over loopback: discovery, API root, collections, paged objects, filters,
//! object by id, versions, manifest, POST + status, both auth schemes, the audience rule per
//! partner, and TAXII error objects for 401/403/404/406/413/415.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value};
use kizuna_policy::{OwnedLabels, Recipient, RecipientKind};
use kizuna_stix::{ExportItem, ExportOptions};
use kizuna_taxii::server::secret_hash;
use kizuna_taxii::{CollectionInfo, Credential, MemoryStore, ObjectStore, Partner, StaticDirectory, TaxiiConfig};
use serde_json::Value;

fn ind(n: usize, tlp: Tlp, groups: &[&str]) -> Indicator {
    let value = canonical_value(IndicatorKind::Domain, &format!("host{n}.bad.example")).expect("domain");
    Indicator {
        kind: IndicatorKind::Domain,
        value,
        category: ClassificationType::C2Server,
        source: "sinkhole".into(),
        confidence: 90,
        first_seen: Timestamp::from_secs(1_772_668_800),
        last_seen: Timestamp::from_secs(1_772_668_800),
        expires: Timestamp::from_secs(1_775_260_800),
        reason: "C2 seen by the sinkhole".into(),
        malware: None,
        tlp,
        sharing_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

struct World {
    run: common::Running,
    store: MemoryStore,
    ids: Vec<String>,
}

async fn world() -> World {
    let store = MemoryStore::new();
    store
        .put_collection(&CollectionInfo {
            id: "kizuna-indicators".into(),
            title: "kizuna indicators".into(),
            description: "indicators of this hub".into(),
            default_labels: OwnedLabels { tlp: Tlp::Amber, ..OwnedLabels::default() },
            no_echo: true,
        })
        .expect("collection");
    store
        .put_collection(&CollectionInfo {
            id: "exchange".into(),
            title: "partner exchange".into(),
            description: String::new(),
            default_labels: OwnedLabels { tlp: Tlp::Green, ..OwnedLabels::default() },
            no_echo: false,
        })
        .expect("collection");
    // 0 CLEAR, 1 GREEN, 2 AMBER for jp-isps, 3 RED for partner-a, 4 AMBER+STRICT for partner-b,
    // 5 AMBER with no audience, 6..=9 GREEN (for paging)
    let inds = vec![
        ind(0, Tlp::Clear, &[]),
        ind(1, Tlp::Green, &[]),
        ind(2, Tlp::Amber, &["jp-isps"]),
        ind(3, Tlp::Red, &[]),
        ind(4, Tlp::AmberStrict, &[]),
        ind(5, Tlp::Amber, &[]),
        ind(6, Tlp::Green, &[]),
        ind(7, Tlp::Green, &[]),
        ind(8, Tlp::Green, &[]),
        ind(9, Tlp::Green, &[]),
    ];
    let ra = vec!["partner-a".to_owned()];
    let rb = vec!["partner-b".to_owned()];
    let items: Vec<(ExportItem<'_>, Option<String>)> = inds
        .iter()
        .enumerate()
        .map(|(n, i)| {
            (
                ExportItem {
                    indicator: i,
                    created: Timestamp::from_secs(1_772_668_800),
                    modified: Timestamp::from_secs(1_772_668_800),
                    recipients: match n {
                        3 => &ra,
                        4 => &rb,
                        _ => &[],
                    },
                    provenance: None,
                    purpose: None,
                },
                None,
            )
        })
        .collect();
    let opts = ExportOptions::new("kizuna-hub");
    let t0 = Timestamp::from_secs(1_772_700_000);
    for (k, it) in items.iter().enumerate() {
        kizuna_taxii::publish(
            &store,
            "kizuna-indicators",
            std::slice::from_ref(it),
            &opts,
            Timestamp::from_micros(t0.as_micros() + k as i64 * 1000),
        )
        .expect("publish");
    }
    // a second version of indicator 1
    let mut v2 = inds[1].clone();
    v2.reason = "C2 seen again".into();
    kizuna_taxii::publish(
        &store,
        "kizuna-indicators",
        &[(
            ExportItem {
                indicator: &v2,
                created: Timestamp::from_secs(1_772_668_800),
                modified: Timestamp::from_secs(1_772_755_200),
                recipients: &[],
                provenance: None,
                purpose: None,
            },
            None,
        )],
        &opts,
        Timestamp::from_secs(1_772_800_000),
    )
    .expect("publish v2");
    let ids = inds.iter().map(|i| kizuna_stix::ids::indicator_id(&i.key())).collect();
    let partner = |org: &str, groups: &[&str], read: &[&str], write: &[&str]| Partner {
        recipient: Recipient::new(org, RecipientKind::Partner).with_groups(groups.iter().copied()),
        can_read: set(read),
        can_write: set(write),
    };
    let directory = StaticDirectory {
        entries: vec![
            (
                Credential::Basic { user: "partner-a".into(), password_sha256: secret_hash("pw-a-secret") },
                partner("partner-a", &["jp-isps"], &["*"], &["exchange"]),
            ),
            (
                Credential::Key { sha256: secret_hash("key-b-secret") },
                partner("partner-b", &[], &["kizuna-indicators"], &[]),
            ),
        ],
    };
    let config = TaxiiConfig { max_content_length: 64 << 10, ..TaxiiConfig::default() };
    let run = common::start(config, Arc::new(store.clone()), Arc::new(directory)).await;
    World { run, store, ids }
}

const WALK: &str = r#"
import json, sys
import requests
from taxii2client.v21 import Server, as_pages
base, mode, secret = sys.argv[1], sys.argv[2], sys.argv[3]
class Token(requests.auth.AuthBase):
    def __init__(self, t): self.t = t
    def __call__(self, r):
        r.headers["Authorization"] = "Token " + self.t
        return r
kw = {"user": "partner-a", "password": secret} if mode == "basic" else {"auth": Token(secret)}
server = Server(base + "/taxii2/", **kw)
out = {"title": server.title, "roots": [r.url for r in server.api_roots]}
root = server.default
out["root_title"] = root.title
out["max_content_length"] = root.max_content_length
out["collections"] = {c.id: [c.can_read, c.can_write] for c in root.collections}
col = [c for c in root.collections if c.id == "kizuna-indicators"][0]
pages = list(as_pages(col.get_objects, per_request=2))
out["page_sizes"] = [len(p.get("objects", [])) for p in pages]
out["ids"] = [o["id"] for p in pages for o in p.get("objects", [])]
out["all_versions"] = len(col.get_objects(version="all").get("objects", []))
out["types"] = len(col.get_objects(type="malware").get("objects", []))
man = list(as_pages(col.get_manifest, per_request=3))
out["manifest"] = [m["id"] for p in man for m in p.get("objects", [])]
one = out["ids"][0]
out["by_id"] = [o["id"] for o in col.get_object(one)["objects"]]
out["versions"] = col.object_versions(out["ids"][1])["versions"]
newest = col.get_objects(added_after="2026-03-06T00:00:00Z").get("objects", [])
out["added_after"] = [o["id"] for o in newest]
if mode == "basic":
    ex = [c for c in root.collections if c.id == "exchange"][0]
    bundle = {"objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--0b2c8a8e-55a8-4f5b-bb9a-0b7f8e3f9a01",
         "created": "2026-03-05T00:00:00.000Z", "modified": "2026-03-05T00:00:00.000Z",
         "pattern": "[ipv4-addr:value = '203.0.113.77']", "pattern_type": "stix", "valid_from": "2026-03-05T00:00:00Z"},
        {"type": "indicator", "id": "not-an-id"}]}
    st = ex.add_objects(json.dumps(bundle), wait_for_completion=False)
    out["status"] = {"status": st.status, "total": st.total_count, "success": st.success_count, "failure": st.failure_count}
    st2 = root.get_status(st.id)
    out["status_again"] = st2.status
    out["exchange_ids"] = [o["id"] for o in ex.get_objects().get("objects", [])]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxii2_client_walks_the_server_and_sees_only_its_audience() {
    let w = world().await;
    let base = w.run.base.clone();
    let a: Value = {
        let base = base.clone();
        let out = tokio::task::spawn_blocking(move || common::run_python(WALK, &[&base, "basic", "pw-a-secret"]))
            .await
            .expect("python");
        serde_json::from_str(&out).expect("json")
    };
    assert_eq!(a["title"], "kizuna TAXII 2.1");
    assert_eq!(a["roots"], serde_json::json!([format!("{base}/taxii2/kizuna/")]));
    assert_eq!(a["collections"]["kizuna-indicators"], serde_json::json!([true, false]));
    assert_eq!(a["collections"]["exchange"], serde_json::json!([true, true]));
    // partner-a: CLEAR, GREEN ×5, AMBER (jp-isps), RED (named) = 8 of the 10; never 4 or 5
    let got: BTreeSet<String> =
        a["ids"].as_array().expect("ids").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let want: BTreeSet<String> = [0, 1, 2, 3, 6, 7, 8, 9].iter().map(|&i| w.ids[i].clone()).collect();
    assert_eq!(got, want);
    assert_eq!(a["page_sizes"], serde_json::json!([2, 2, 2, 2]), "full pages, no short page before the end");
    assert_eq!(a["all_versions"], 9, "indicator 1 in two versions");
    assert_eq!(a["types"], 0);
    assert_eq!(a["manifest"].as_array().map(|m| m.len()), Some(8));
    assert_eq!(a["by_id"], serde_json::json!([a["ids"][0]]));
    assert_eq!(a["versions"].as_array().map(|v| v.len()), if a["ids"][1] == w.ids[1] { Some(2) } else { Some(1) });
    assert_eq!(a["added_after"], serde_json::json!([w.ids[1]]), "only the second version was added after");
    assert_eq!(a["status"], serde_json::json!({"status": "complete", "total": 2, "success": 1, "failure": 1}));
    assert_eq!(a["status_again"], "complete");
    assert_eq!(a["exchange_ids"], serde_json::json!(["indicator--0b2c8a8e-55a8-4f5b-bb9a-0b7f8e3f9a01"]));

    // partner-b with an API key: CLEAR, GREEN ×5, AMBER+STRICT (named); no exchange collection
    let b: Value = {
        let base = base.clone();
        let out = tokio::task::spawn_blocking(move || common::run_python(WALK, &[&base, "token", "key-b-secret"]))
            .await
            .expect("python");
        serde_json::from_str(&out).expect("json")
    };
    let got: BTreeSet<String> =
        b["ids"].as_array().expect("ids").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let want: BTreeSet<String> = [0, 1, 4, 6, 7, 8, 9].iter().map(|&i| w.ids[i].clone()).collect();
    assert_eq!(got, want);
    assert!(b["collections"].get("exchange").is_none());
    // what partner-a wrote to exchange stays out of the store's other collection
    let mut n = 0;
    w.store
        .scan("kizuna-indicators", 0, None, &mut |_, _| {
            n += 1;
            true
        })
        .expect("scan");
    assert_eq!(n, 11);
}

async fn status_and_body(r: reqwest::RequestBuilder) -> (u16, String, Value) {
    let resp = r.send().await.expect("send");
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body: Value = serde_json::from_str(&resp.text().await.expect("text")).unwrap_or(Value::Null);
    (status, ct, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_taxii_error_objects() {
    let w = world().await;
    let base = &w.run.base;
    let http = kizuna_testkit::http_client();
    let taxii = "application/taxii+json;version=2.1";
    let col = format!("{base}/taxii2/kizuna/collections/kizuna-indicators/objects/");
    let cases: Vec<(u16, reqwest::RequestBuilder)> = vec![
        (401, http.get(format!("{base}/taxii2/"))),
        (401, http.get(format!("{base}/taxii2/")).basic_auth("partner-a", Some("wrong"))),
        (406, http.get(&col).basic_auth("partner-a", Some("pw-a-secret")).header("Accept", "text/html")),
        (
            406,
            http.get(&col)
                .basic_auth("partner-a", Some("pw-a-secret"))
                .header("Accept", "application/taxii+json;version=2.0"),
        ),
        (
            404,
            http.get(format!("{base}/taxii2/kizuna/collections/nope/objects/"))
                .basic_auth("partner-a", Some("pw-a-secret")),
        ),
        (404, http.get(format!("{base}/taxii2/other-root/")).basic_auth("partner-a", Some("pw-a-secret"))),
        (
            404,
            http.get(format!("{base}/taxii2/kizuna/collections/exchange/"))
                .header("Authorization", "Token key-b-secret"),
        ),
        (
            404,
            http.get(format!("{col}indicator--00000000-0000-4000-8000-000000000000/"))
                .basic_auth("partner-a", Some("pw-a-secret")),
        ),
        (
            403,
            http.post(&col)
                .basic_auth("partner-a", Some("pw-a-secret"))
                .header("Content-Type", taxii)
                .body("{\"objects\":[]}"),
        ),
        (
            415,
            http.post(format!("{base}/taxii2/kizuna/collections/exchange/objects/"))
                .basic_auth("partner-a", Some("pw-a-secret"))
                .header("Content-Type", "application/json")
                .body("{\"objects\":[]}"),
        ),
        (
            413,
            http.post(format!("{base}/taxii2/kizuna/collections/exchange/objects/"))
                .basic_auth("partner-a", Some("pw-a-secret"))
                .header("Content-Type", taxii)
                .body(vec![b' '; (64 << 10) + 1]),
        ),
        (
            400,
            http.post(format!("{base}/taxii2/kizuna/collections/exchange/objects/"))
                .basic_auth("partner-a", Some("pw-a-secret"))
                .header("Content-Type", taxii)
                .body("not json"),
        ),
        (400, http.get(format!("{col}?limit=abc")).basic_auth("partner-a", Some("pw-a-secret"))),
        (400, http.get(format!("{col}?next=medallion-token")).basic_auth("partner-a", Some("pw-a-secret"))),
        (400, http.get(format!("{col}?added_after=yesterday")).basic_auth("partner-a", Some("pw-a-secret"))),
    ];
    for (want, req) in cases {
        let (status, ct, body) = status_and_body(req).await;
        assert_eq!(status, want, "{body}");
        assert_eq!(ct, taxii);
        assert_eq!(body["http_status"], want.to_string(), "{body}");
        assert!(body["title"].is_string(), "{body}");
    }
    // a page token keeps working: same filter, then a changed filter, no expiry
    let (s, _, p1) =
        status_and_body(http.get(format!("{col}?limit=3")).basic_auth("partner-a", Some("pw-a-secret"))).await;
    assert_eq!(s, 200);
    let next = p1["next"].as_str().expect("next").to_owned();
    let (s, _, p2) = status_and_body(
        http.get(format!("{col}?next={next}&match[type]=indicator")).basic_auth("partner-a", Some("pw-a-secret")),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(p2["objects"].as_array().map(|o| o.len()), Some(5), "next without limit works and filters may change");
}
