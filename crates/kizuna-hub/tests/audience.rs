//! Member reports apply the one audience rule (kizuna-policy): an observation routed to a member
//! but marked TLP:RED for another named recipient is withheld, whatever the routing says.

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.serve(listener, async {
        let _ = rx.await;
    }));

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
