//! The hub's HTTP API end to end: a real SQLite store, a real listener on loopback, a real
//! HTTP client. Covers sensor ingest, member isolation, token revocation, resumable paging
//! while ingestion continues, the audit trail of report reads, /healthz and /metrics.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use kizuna_hub::{Hub, HubConfig, IngestSettings, SensorConfig, tokens};
use kizuna_model::{IpNet, Timestamp};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{MemberSpec, Store};

struct Fixture {
    base: String,
    store: Arc<SqliteStore>,
    sensor_token: String,
    token_a: String,
    token_b: String,
    token_b_id: u64,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("kizuna.sqlite")).expect("open store"));
    let net = |s: &str| s.parse::<IpNet>().expect("net");
    // Member A owns AS64500 (routes 192.0.2.0/24 and 2001:db8:a::/48); member B has an explicit
    // prefix 198.51.100.0/24 and AS64501 (203.0.113.0/24).
    store
        .replace_routes(&[
            (net("192.0.2.0/24"), 64500),
            (net("2001:db8:a::/48"), 64500),
            (net("203.0.113.0/24"), 64501),
        ])
        .expect("routes");
    let a = store
        .add_member(
            &MemberSpec { name: "isp-a".into(), display_name: "ISP A".into(), asns: vec![64500], ..Default::default() },
            Timestamp::now(),
        )
        .expect("member a");
    let b = store
        .add_member(
            &MemberSpec {
                name: "isp-b".into(),
                display_name: "ISP B".into(),
                asns: vec![64501],
                prefixes: vec![net("198.51.100.0/24")],
                ..Default::default()
            },
            Timestamp::now(),
        )
        .expect("member b");
    let ta = tokens::issue().expect("token");
    store.add_token(a.id, ta.hash, "test", &ta.prefix, Timestamp::now()).expect("add token a");
    let tb = tokens::issue().expect("token");
    let tb_info = store.add_token(b.id, tb.hash, "test", &tb.prefix, Timestamp::now()).expect("add token b");
    let sensor = tokens::issue().expect("token");
    let config = HubConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        sensors: vec![SensorConfig { name: "honeypot-1".into(), token_sha256: tokens::hash_hex(&sensor.secret) }],
        ..HubConfig::default()
    };
    let hub = Hub::new(store.clone(), config, IngestSettings::default()).expect("hub");
    let (base, tx, _) = common::serve(hub).await;
    Fixture {
        base,
        store,
        sensor_token: sensor.secret,
        token_a: ta.secret,
        token_b: tb.secret,
        token_b_id: tb_info.id,
        _dir: dir,
        _shutdown: tx,
    }
}

fn cowrie_line(ip: &str, port: u16, n: u32) -> String {
    format!(
        r#"{{"eventid":"cowrie.login.failed","username":"root","password":"pw{n}","message":"login attempt [root/pw{n}] failed","sensor":"hp1","timestamp":"2026-03-05T00:00:{:02}.{n:06}Z","src_ip":"{ip}","session":"a{n:07x}","protocol":"ssh"}}"#,
        n % 60
    )
    .replace("\"protocol\"", &format!("\"src_port\":{port},\"protocol\""))
}

async fn push(f: &Fixture, client: &reqwest::Client, body: String) -> serde_json::Value {
    let r = client
        .post(format!("{}/api/v1/ingest?format=cowrie&name=batch.json", f.base))
        .bearer_auth(&f.sensor_token)
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200, "ingest failed: {:?}", r.text().await);
    r.json().await.expect("json")
}

async fn page(f: &Fixture, client: &reqwest::Client, token: &str, cursor: &str, limit: usize) -> reqwest::Response {
    client
        .get(format!("{}/api/v1/observations?cursor={cursor}&limit={limit}", f.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
}

fn source_ips(v: &serde_json::Value) -> Vec<String> {
    v["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .map(|o| o["event"]["source.ip"].as_str().expect("source.ip").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_push_and_each_member_reads_only_its_own() {
    let f = start().await;
    let client = kizuna_testkit::http_client();
    let lines = [
        cowrie_line("192.0.2.10", 40000, 1),
        cowrie_line("2001:db8:a::77", 40001, 2),
        cowrie_line("198.51.100.5", 40002, 3),
        cowrie_line("203.0.113.9", 40003, 4),
        cowrie_line("100.64.1.1", 40004, 5),
        "{not json".to_string(),
    ];
    let s = push(&f, &client, lines.join("\n")).await;
    assert_eq!(s["stored"], 5, "{s}");
    assert_eq!(s["quarantined"], 1, "{s}");
    assert_eq!(s["attributed"], 4, "{s}");
    assert_eq!(s["unattributed"], 1, "{s}");
    assert_eq!(s["per_member"]["isp-a"], 2, "{s}");

    // Re-pushing the same batch adds nothing.
    let again = push(&f, &client, lines.join("\n")).await;
    assert_eq!(again["stored"], 0, "{again}");
    assert_eq!(again["duplicates"], 5, "{again}");

    let a: serde_json::Value = page(&f, &client, &f.token_a, "", 100).await.json().await.expect("json");
    assert_eq!(source_ips(&a), ["192.0.2.10", "2001:db8:a::77"]);
    assert_eq!(a["member"], "isp-a");
    let b: serde_json::Value = page(&f, &client, &f.token_b, "", 100).await.json().await.expect("json");
    assert_eq!(source_ips(&b), ["198.51.100.5", "203.0.113.9"]);

    // Member A cannot reach B's data by any cursor.
    for cursor in ["0", "1", "3", "4"] {
        let v: serde_json::Value = page(&f, &client, &f.token_a, cursor, 100).await.json().await.expect("json");
        for ip in source_ips(&v) {
            assert!(ip == "192.0.2.10" || ip == "2001:db8:a::77", "member A saw {ip}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked() {
    let f = start().await;
    let client = kizuna_testkit::http_client();
    assert_eq!(client.get(format!("{}/api/v1/observations", f.base)).send().await.expect("get").status(), 401);
    assert_eq!(page(&f, &client, "kz_not-a-real-token", "", 10).await.status(), 401);
    // A member token cannot push, and a sensor token cannot read reports.
    let r = client
        .post(format!("{}/api/v1/ingest?format=cowrie", f.base))
        .bearer_auth(&f.token_a)
        .body(cowrie_line("192.0.2.1", 1, 1))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(page(&f, &client, &f.sensor_token, "", 10).await.status(), 401);
    // A revoked token stops working at once.
    assert_eq!(page(&f, &client, &f.token_b, "", 10).await.status(), 200);
    assert!(f.store.revoke_token(f.token_b_id, Timestamp::now()).expect("revoke"));
    assert_eq!(page(&f, &client, &f.token_b, "", 10).await.status(), 401);
    // Unknown format: a clear error that lists the known ones.
    let r = client
        .post(format!("{}/api/v1/ingest?format=snort", f.base))
        .bearer_auth(&f.sensor_token)
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let text = r.text().await.expect("text");
    assert!(text.contains("cowrie") && text.contains("shadowserver"), "{text}");
    // Bad cursor.
    assert_eq!(page(&f, &client, &f.token_a, "abc", 10).await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_while_ingesting_has_no_gaps_and_no_duplicates() {
    let f = start().await;
    let client = kizuna_testkit::http_client();
    let total = 40u32;
    let per_batch = 25u32;
    let writer = {
        let client = client.clone();
        let base = f.base.clone();
        let token = f.sensor_token.clone();
        tokio::spawn(async move {
            for batch in 0..total {
                let body: Vec<String> = (0..per_batch)
                    .map(|i| cowrie_line("192.0.2.20", 1024 + (batch * per_batch + i) as u16, batch * per_batch + i))
                    .collect();
                let r = client
                    .post(format!("{base}/api/v1/ingest?format=cowrie"))
                    .bearer_auth(&token)
                    .body(body.join("\n"))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status(), 200);
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut writer = Some(writer);
    loop {
        let v: serde_json::Value = page(&f, &client, &f.token_a, &cursor, 7).await.json().await.expect("json");
        let obs = v["observations"].as_array().expect("array");
        for o in obs {
            seen.push(o["id"].as_str().expect("id").to_owned());
        }
        cursor = v["next_cursor"].as_str().expect("cursor").to_owned();
        if obs.is_empty() {
            match writer.take() {
                Some(w) if !w.is_finished() => writer = Some(w),
                Some(w) => {
                    w.await.expect("writer");
                }
                None => break,
            }
        }
    }
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a page repeated an observation");
    assert_eq!(seen.len(), (total * per_batch) as usize, "observations were missed");

    // Every page read is in the audit log.
    let entries = f.store.audit_entries(0, 100_000).expect("audit");
    assert!(entries.iter().filter(|e| e.record.action == "report.read").count() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let f = start().await;
    let client = kizuna_testkit::http_client();
    push(&f, &client, [cowrie_line("192.0.2.10", 1, 1), cowrie_line("100.64.0.1", 2, 2), "garbage".into()].join("\n"))
        .await;
    let _ = page(&f, &client, &f.token_a, "", 10).await;
    let h: serde_json::Value =
        client.get(format!("{}/healthz", f.base)).send().await.expect("get").json().await.expect("json");
    assert_eq!(h["status"], "ok");
    let r = client.get(format!("{}/metrics", f.base)).send().await.expect("get");
    assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("text/plain"));
    let m = r.text().await.expect("text");
    for want in [
        "kizuna_ingest_records_total{outcome=\"stored\"} 2",
        "kizuna_ingest_records_total{outcome=\"quarantined\"} 1",
        "kizuna_attributed_total{member=\"isp-a\"} 1",
        "kizuna_unattributed_total 1",
        "kizuna_report_reads_total{member=\"isp-a\"} 1",
        "kizuna_store_observations 2",
        "kizuna_http_request_duration_seconds_bucket",
    ] {
        assert!(m.contains(want), "missing {want} in\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_applies_retention_and_records_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("kizuna.sqlite")).expect("open store"));
    let sensor = tokens::issue().expect("token");
    let config = HubConfig {
        sensors: vec![SensorConfig { name: "hp".into(), token_sha256: tokens::hash_hex(&sensor.secret) }],
        ..HubConfig::default()
    };
    let ingest = IngestSettings {
        retention: kizuna_store::Retention {
            default: Some(std::time::Duration::from_secs(30 * 86_400)),
            per_feed: vec![("cowrie".into(), std::time::Duration::from_secs(100_000 * 86_400))],
        },
        ..IngestSettings::default()
    };
    let hub = Hub::new(store.clone(), config, ingest).expect("hub");
    let (base, _tx, _) = common::serve(hub.clone()).await;
    let client = kizuna_testkit::http_client();
    // Two old events (2026-03-05): kept by the cowrie feed's long retention; the same events
    // under another feed name fall under the 30-day default and go.
    for feed in ["cowrie", "old-feed"] {
        let r = client
            .post(format!("{base}/api/v1/ingest?format=cowrie&feed_name={feed}"))
            .bearer_auth(&sensor.secret)
            .body([cowrie_line("192.0.2.1", 1, 1), cowrie_line("192.0.2.2", 2, 2)].join("\n"))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200);
    }
    assert_eq!(store.totals().expect("totals").observations, 4);
    let h = hub.clone();
    let deleted = tokio::task::spawn_blocking(move || h.apply_retention()).await.expect("join").expect("expire");
    assert_eq!(deleted, 2);
    assert_eq!(store.totals().expect("totals").observations, 2);
    let audit = store.audit_entries(0, 100).expect("audit");
    assert!(audit.iter().any(|e| e.record.action == "retention.expire" && e.record.detail.contains("\"deleted\":2")));
}
