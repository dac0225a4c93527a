//! The indicator API end to end: a real SQLite store, a real listener on loopback, a real HTTP
//! client. Analysts add and withdraw, members read what they may, sensors cannot add; ingest
//! derives indicators after the commit; conflicts, the change feed, the allow-list and metrics.

mod common;

use std::sync::Arc;

use kizuna_hub::indicators::AnalystConfig;
use kizuna_hub::{Hub, HubConfig, IngestSettings, SensorConfig, tokens};
use kizuna_model::Timestamp;
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{MemberSpec, Store};
use serde_json::{Value, json};

struct Fixture {
    base: String,
    store: Arc<SqliteStore>,
    analyst: String,
    member_a: String,
    member_b: String,
    sensor: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("kizuna.sqlite")).expect("open store"));
    let tok = |name: &str| {
        let m = store
            .add_member(
                &MemberSpec { name: name.into(), display_name: name.into(), ..Default::default() },
                Timestamp::now(),
            )
            .expect("member");
        let t = tokens::issue().expect("token");
        store.add_token(m.id, t.hash, "test", &t.prefix, Timestamp::now()).expect("token");
        t.secret
    };
    let member_a = tok("isp-a");
    let member_b = tok("isp-b");
    let analyst = tokens::issue().expect("token").secret;
    let sensor = tokens::issue().expect("token").secret;
    let config = HubConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        sensors: vec![SensorConfig { name: "honeypot-1".into(), token_sha256: tokens::hash_hex(&sensor) }],
        analysts: vec![AnalystConfig { name: "alice".into(), token_sha256: tokens::hash_hex(&analyst) }],
        indicators: kizuna_indicators::PolicyConfig {
            portal_domains: vec!["portal.isp-a.example".into()],
            ..Default::default()
        },
        ..HubConfig::default()
    };
    let hub = Hub::new(store.clone(), config, IngestSettings::default()).expect("hub");
    let (base, tx, _) = common::serve(hub).await;
    Fixture {
        base,
        store,
        analyst,
        member_a,
        member_b,
        sensor,
        client: kizuna_testkit::http_client(),
        _dir: dir,
        _shutdown: tx,
    }
}

impl Fixture {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = self.client.post(format!("{}{path}", self.base)).body(body.to_string());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.expect("post");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let resp = self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("get");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn url_indicator(value: &str, tlp: &str) -> Value {
    json!({"kind": "url", "value": value, "category": "malware-distribution",
           "reason": "payload seen in a spam run", "expires": "30d", "tlp": tlp})
}

fn values(v: &Value) -> Vec<String> {
    v["indicators"]
        .as_array()
        .expect("indicators")
        .iter()
        .map(|i| i["value"].as_str().expect("value").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_analysts_add_and_members_see_what_tlp_allows() {
    let f = start().await;
    let (s, v) =
        f.post("/api/v1/indicators", Some(&f.analyst), url_indicator("HTTP://Bad.Example/x.sh", "amber")).await;
    assert_eq!(s, 201, "{v}");
    let rec = &v["record"];
    assert_eq!(rec["value"], "http://bad.example/x.sh");
    assert_eq!(rec["state"], "active");
    assert_eq!(rec["source"], "analyst:alice");
    assert_eq!(rec["granularity"], "host");
    let key = rec["key"].as_str().expect("key").to_owned();
    // Adding it again: merged, not created.
    let (s, _) =
        f.post("/api/v1/indicators", Some(&f.analyst), url_indicator("http://bad.example/x.sh", "amber")).await;
    assert_eq!(s, 200);

    // Members and sensors cannot add; nobody without a token can.
    let (s, _) = f.post("/api/v1/indicators", Some(&f.member_a), url_indicator("http://m.example/", "amber")).await;
    assert_eq!(s, 403);
    let (s, _) = f.post("/api/v1/indicators", Some(&f.sensor), url_indicator("http://s.example/", "amber")).await;
    assert_eq!(s, 401);
    let (s, _) = f.post("/api/v1/indicators", None, url_indicator("http://n.example/", "amber")).await;
    assert_eq!(s, 401);
    let (s, _) = f.get("/api/v1/indicators", &f.sensor).await;
    assert_eq!(s, 401, "sensor tokens read nothing");
    // Bad input is refused with a reason.
    let (s, v) = f
        .post(
            "/api/v1/indicators",
            Some(&f.analyst),
            json!({"kind": "url", "value": "ftp://x", "category": "phishing", "reason": "r"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().expect("error").contains("http(s)"), "{v}");

    // RED: only the named member sees it.
    let red = json!({"kind": "domain", "value": "red.example", "category": "c2-server", "reason": "partner tip",
                     "tlp": "red", "sharing_groups": ["isp-b"]});
    let (s, v) = f.post("/api/v1/indicators", Some(&f.analyst), red).await;
    assert_eq!(s, 201, "{v}");
    let red_key = v["record"]["key"].as_str().expect("key").to_owned();
    let (_, a_list) = f.get("/api/v1/indicators", &f.member_a).await;
    assert_eq!(values(&a_list), vec!["http://bad.example/x.sh"]);
    assert!(a_list["indicators"][0].get("provenance").is_none(), "members do not see provenance");
    let (_, b_list) = f.get("/api/v1/indicators", &f.member_b).await;
    assert_eq!(values(&b_list).len(), 2);
    let (s, _) = f.get(&format!("/api/v1/indicators/{red_key}"), &f.member_a).await;
    assert_eq!(s, 404);
    let (s, v) = f.get(&format!("/api/v1/indicators/{red_key}"), &f.member_b).await;
    assert_eq!((s, v["value"].as_str()), (200, Some("red.example")));
    let (s, v) = f.get("/api/v1/indicators/domain:RED.example", &f.analyst).await;
    assert_eq!((s, v["key"].as_str()), (200, Some(red_key.as_str())));
    let (s, _) = f.get("/api/v1/indicators?state=withdrawn", &f.member_a).await;
    assert_eq!(s, 403);

    // Withdraw: analysts only, audited, members get a tombstone in the change feed.
    let (s, _) = f.post(&format!("/api/v1/indicators/{key}/withdraw"), Some(&f.member_a), json!({"reason": "x"})).await;
    assert_eq!(s, 403);
    let (s, v) =
        f.post(&format!("/api/v1/indicators/{key}/withdraw"), Some(&f.analyst), json!({"reason": "cleaned up"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "withdrawn");
    assert_eq!(v["withdrawal"]["by"], "alice");
    let (s, _) = f
        .post("/api/v1/indicators/00000000000000000000000000000000/withdraw", Some(&f.analyst), json!({"reason": "x"}))
        .await;
    assert_eq!(s, 404);
    let (_, a_list) = f.get("/api/v1/indicators", &f.member_a).await;
    assert!(values(&a_list).is_empty());
    let (_, ch) = f.get("/api/v1/indicators/changes?since=0", &f.member_a).await;
    let changes = ch["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c["published"] == false), "{ch}");
    let (_, ch_b) = f.get("/api/v1/indicators/changes?since=0", &f.member_b).await;
    let b_changes = ch_b["changes"].as_array().expect("changes");
    assert_eq!(b_changes.len(), 2);
    assert_eq!(b_changes[0]["value"], "red.example", "in change order: the withdrawal came last");
    assert_eq!(b_changes[0]["published"], true);
    assert_eq!(b_changes[1]["published"], false);
    assert_eq!(ch_b["next"], ch["next"]);
    let (_, later) = f.get(&format!("/api/v1/indicators/changes?since={}", ch["next"]), &f.member_b).await;
    assert!(later["changes"].as_array().expect("changes").is_empty());

    // The audit log names the analyst.
    let audit = f.store.audit_entries(0, 100).expect("audit");
    let adds: Vec<_> = audit.iter().filter(|e| e.record.action == "indicator.add").collect();
    assert_eq!(adds.len(), 3);
    assert!(adds.iter().all(|e| e.record.actor == "analyst:alice"));
    let w = audit.iter().find(|e| e.record.action == "indicator.withdraw").expect("withdraw audited");
    assert_eq!(w.record.subject, format!("indicator:{key}"));
    assert!(w.record.detail.contains("cleaned up"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_conflicts_are_reported() {
    let f = start().await;
    // On the shipped list (GitHub), and the ISP portal from the config.
    for (kind, value) in [("domain", "evil.github.com"), ("url", "https://login.portal.isp-a.example/pay")] {
        let (s, v) = f
            .post(
                "/api/v1/indicators",
                Some(&f.analyst),
                json!({"kind": kind, "value": value, "category": "phishing", "reason": "reported"}),
            )
            .await;
        assert_eq!(s, 201);
        assert_eq!(v["record"]["state"], "allow-listed", "{v}");
    }
    // A URL on a shared platform stays active, URL-only.
    let (_, v) = f
        .post(
            "/api/v1/indicators",
            Some(&f.analyst),
            url_indicator("https://github.com/evil/r/releases/x.exe", "clear"),
        )
        .await;
    assert_eq!(v["record"]["state"], "active");
    assert_eq!(v["record"]["granularity"], "url-only");
    assert_eq!(v["record"]["shared_host"], "github.com (default)");
    let (_, c) = f.get("/api/v1/indicators/conflicts", &f.analyst).await;
    let mut got: Vec<(String, String)> = c["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .map(|x| (x["value"].as_str().expect("v").to_owned(), x["allowlist_entry"].as_str().expect("e").to_owned()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("evil.github.com".to_string(), "github.com (default)".to_string()),
            ("https://login.portal.isp-a.example/pay".to_string(), "portal.isp-a.example (portal, all)".to_string()),
        ]
    );
    let (s, _) = f.get("/api/v1/indicators/conflicts", &f.member_a).await;
    assert_eq!(s, 403);

    // An analyst allow-lists a partner's domain: its active indicator becomes a conflict.
    f.post(
        "/api/v1/indicators",
        Some(&f.analyst),
        json!({"kind": "domain", "value": "cdn.partner.example", "category": "malware-distribution", "reason": "r"}),
    )
    .await;
    let (s, v) = f.post("/api/v1/indicators/allowlist", Some(&f.analyst), json!({"add": ["partner.example"]})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["newly_allowlisted"], 1);
    let (_, c) = f.get("/api/v1/indicators/conflicts", &f.analyst).await;
    assert_eq!(c["conflicts"].as_array().expect("c").len(), 3);
    let (_, list) = f.get("/api/v1/indicators", &f.member_a).await;
    assert_eq!(values(&list), vec!["https://github.com/evil/r/releases/x.exe"]);
    let (_, al) = f.get("/api/v1/indicators/allowlist", &f.analyst).await;
    assert!(
        al["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["pattern"] == "partner.example" && e["origin"] == "analyst")
    );
    // Removing it releases the indicator.
    let (_, v) = f.post("/api/v1/indicators/allowlist", Some(&f.analyst), json!({"remove": ["partner.example"]})).await;
    assert_eq!(v["released"], 1);
    let (s, _) = f.post("/api/v1/indicators/allowlist", Some(&f.member_a), json!({"add": ["x.example"]})).await;
    assert_eq!(s, 403);
    assert!(f.store.audit_entries(0, 100).expect("audit").iter().any(|e| e.record.action == "indicator.allowlist"));
    // The granularity report.
    let (_, g) = f.get("/api/v1/indicators/granularity", &f.analyst).await;
    assert!(g["text"].as_str().expect("text").contains("shared host on the allow-list: github.com (default)"), "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_derives_indicators_after_commit_and_metrics_count_them() {
    let f = start().await;
    let cowrie = include_str!("../../kizuna-parsers/tests/fixtures/cowrie/cowrie.json");
    let r = f
        .client
        .post(format!("{}/api/v1/ingest?format=cowrie&name=cowrie.json", f.base))
        .bearer_auth(&f.sensor)
        .body(cowrie)
        .send()
        .await
        .expect("ingest");
    assert_eq!(r.status(), 200);
    let (_, list) = f.get("/api/v1/indicators?source=cowrie", &f.analyst).await;
    let mut got = values(&list);
    got.sort();
    assert_eq!(
        got,
        vec![
            "a8f5c1e4d2b3a4958677e6f1c2d3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f",
            "http://198.51.100.23/bins.sh",
            "http://dl.bad.example:8080/x86",
        ]
    );
    let bins = list["indicators"]
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["value"] == "http://198.51.100.23/bins.sh")
        .expect("bins");
    assert!(
        bins["reason"].as_str().expect("reason").starts_with("Cowrie honeypot hp-tokyo-01 saw a download of a8f5c1e4")
    );
    assert_eq!(bins["tlp"], "AMBER");
    // Re-sending the same upload changes nothing.
    let seq = f.get("/api/v1/indicators/changes?since=0", &f.analyst).await.1["next"].clone();
    f.client
        .post(format!("{}/api/v1/ingest?format=cowrie&name=cowrie.json", f.base))
        .bearer_auth(&f.sensor)
        .body(cowrie)
        .send()
        .await
        .expect("ingest again");
    assert_eq!(f.get("/api/v1/indicators/changes?since=0", &f.analyst).await.1["next"], seq);
    let metrics =
        f.client.get(format!("{}/metrics", f.base)).send().await.expect("metrics").text().await.expect("text");
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("kizuna_indicators{")
                && l.contains("category=\"malware-distribution\"")
                && l.contains("state=\"active\"")
        })
        .unwrap_or_else(|| panic!("no indicator gauge in\n{metrics}"));
    assert!(line.ends_with(" 3"), "{line}");
}
