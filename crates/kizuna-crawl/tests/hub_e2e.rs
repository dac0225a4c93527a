//! The crawler against a real hub (SQLite store, the hub's HTTP routes on loopback):
//! - the spool: with the hub down, batches stay on disk and delivery backs off; once the hub is
//!   up every observation arrives exactly once (a batch resent after a lost acknowledgement
//!   counts as duplicates on the hub);
//! - the indicator loop: the crawler reads known-bad hashes from the hub's indicators API with
//!   a member token, a download with a hub-known hash becomes a distribution node, its
//!   observations land on the hub with chain id, role, TLP and legal basis, and the hub derives
//!   indicators from them.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::World;
use kizuna_crawl::report::{self, Labels};
use kizuna_crawl::spool::{self, Backoff, Spool};
use kizuna_crawl::{Crawler, Judge, Verdict};
use kizuna_hub::indicators::AnalystConfig;
use kizuna_hub::{Hub, HubConfig, IngestSettings, SensorConfig, tokens};
use kizuna_model::{IpNet, Timestamp};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{MemberSpec, Store};
use serde_json::{Value, json};
use url::Url;

/// A hub on loopback with one member owning 127.0.0.0/8, a sensor and an analyst.
struct TestHub {
    base: String,
    sensor: String,
    member: String,
    analyst: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

#[derive(Clone)]
struct Secrets {
    sensor: String,
    analyst: String,
}

impl TestHub {
    fn secrets() -> Secrets {
        Secrets { sensor: tokens::issue().expect("token").secret, analyst: tokens::issue().expect("token").secret }
    }

    /// Starts the hub on `addr` (a port the test reserved, or 127.0.0.1:0).
    async fn start(addr: std::net::SocketAddr, s: &Secrets) -> TestHub {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("kizuna.sqlite")).expect("store"));
        let m = store
            .add_member(
                &MemberSpec {
                    name: "isp-loop".into(),
                    display_name: "Loopback ISP".into(),
                    prefixes: vec!["127.0.0.0/8".parse::<IpNet>().expect("net")],
                    ..Default::default()
                },
                Timestamp::now(),
            )
            .expect("member");
        let mt = tokens::issue().expect("token");
        store.add_token(m.id, mt.hash, "reader", &mt.prefix, Timestamp::now()).expect("token");
        let config = HubConfig {
            listen: addr,
            sensors: vec![SensorConfig { name: "crawler-1".into(), token_sha256: tokens::hash_hex(&s.sensor) }],
            analysts: vec![AnalystConfig { name: "alice".into(), token_sha256: tokens::hash_hex(&s.analyst) }],
            ..HubConfig::default()
        };
        let hub = Hub::new(store, config, IngestSettings::default()).expect("hub");
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(hub.serve(listener, async {
            let _ = rx.await;
        }));
        TestHub {
            base,
            sensor: s.sensor.clone(),
            member: mt.secret,
            analyst: s.analyst.clone(),
            stop: Some(tx),
            _dir: dir,
        }
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        let c = kizuna_testkit::http_client();
        let r = c.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("get");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        serde_json::from_str(&r.text().await.expect("body")).expect("json")
    }

    /// Every event of the member's report, following the cursor.
    async fn member_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let page = self.get(&self.member, &format!("/api/v1/observations?limit=7{q}")).await;
            let obs = page["observations"].as_array().expect("observations").clone();
            if obs.is_empty() {
                return out;
            }
            out.extend(obs.into_iter().map(|o| o["event"].clone()));
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if page["more"] != true {
                return out;
            }
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr")
}

fn key(e: &Value) -> (String, String, String) {
    let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
    (s("extra.crawl.chain_id"), s("extra.crawl.role"), s("source.url"))
}

#[tokio::test]
async fn spooled_findings_reach_a_hub_that_starts_late_exactly_once() {
    let w = World::start().await;
    let cfg = w.config();
    let crawler = Crawler::new(&cfg, Arc::new(Judge::load(&cfg.judge).expect("rules"))).expect("crawler");
    let labels = Labels::from_config(&cfg.report).expect("labels");
    let spool = Spool::open(&cfg.data_dir().join("spool")).expect("spool");
    let mut sent = BTreeSet::new();
    let mut batches = Vec::new();
    for seed in ["http://blog.example.jp/", "http://shop.example.jp/"] {
        let chain = crawler.crawl(&Url::parse(seed).expect("u")).await;
        let obs = report::observations(&chain, &labels);
        assert!(!obs.is_empty(), "{seed} is malicious");
        for o in &obs {
            sent.insert((
                o.extra["crawl.chain_id"].as_str().expect("id").to_owned(),
                o.extra["crawl.role"].as_str().expect("role").to_owned(),
                o.source.url.clone().expect("url"),
            ));
        }
        batches.push(report::to_json_lines(&obs));
        spool.put(batches.last().expect("batch")).expect("spooled");
    }
    let total: usize = spool.pending().expect("pending").iter().map(|e| e.observations).sum();
    assert_eq!(total, sent.len());

    // The hub is down: nothing is lost, delivery backs off and gives up after its window.
    let addr = free_port();
    let base = format!("http://{addr}");
    let client = report::hub_client(&cfg).expect("client");
    let secrets = TestHub::secrets();
    let quick = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(100),
        give_up_after: Duration::from_millis(400),
    };
    let t0 = std::time::Instant::now();
    let d = spool::deliver(&spool, &client, &base, &secrets.sensor, quick).await;
    assert_eq!((d.batches_sent, d.pending_batches, d.pending_observations), (0, 2, total), "{d:?}");
    assert!(d.failed_attempts >= 3, "retried with backoff: {d:?}");
    assert!(t0.elapsed() >= Duration::from_millis(150), "it waited between attempts");
    assert!(
        d.last_error.as_deref().is_some_and(|e| e.contains("Connection refused") || e.contains("connect")),
        "{d:?}"
    );
    assert_eq!(spool.pending().expect("pending").len(), 2, "both batches still on disk");

    // The hub comes up while delivery is backing off: both batches go, in order, and leave the spool.
    let (hub_tx, hub_rx) = tokio::sync::oneshot::channel();
    let starter = {
        let s = secrets.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let _ = hub_tx.send(TestHub::start(addr, &s).await);
        })
    };
    let patient = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        give_up_after: Duration::from_secs(20),
    };
    let d = spool::deliver(&spool, &client, &base, &secrets.sensor, patient).await;
    starter.await.expect("starter");
    let hub = hub_rx.await.expect("hub");
    assert!(d.failed_attempts >= 1, "the hub was down when this delivery began: {d:?}");
    assert_eq!((d.batches_sent, d.observations_sent, d.pending_batches), (2, total, 0), "{d:?}");
    assert_eq!(d.stored as usize, total, "{d:?}");
    assert_eq!(d.duplicates, 0);
    assert!(spool.pending().expect("pending").is_empty(), "acknowledged batches are removed");

    // A batch whose acknowledgement was lost (the hub committed, the crawler died before removing
    // the file) is resent: the hub recognises every observation by content id.
    spool.put(&batches[0]).expect("again");
    let d = spool::deliver(&spool, &client, &base, &secrets.sensor, patient).await;
    assert_eq!(d.batches_sent, 1);
    assert_eq!(d.stored, 0, "{d:?}");
    assert!(d.duplicates > 0 && d.duplicates as usize == d.observations_sent, "{d:?}");

    // A wrong token: delivery stops at once (no backoff wait), everything stays spooled.
    spool.put(&batches[1]).expect("again");
    let t0 = std::time::Instant::now();
    let d = spool::deliver(&spool, &client, &base, "kz_not_a_sensor", patient).await;
    assert_eq!((d.batches_sent, d.pending_batches), (0, 1), "{d:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(d.last_error.as_deref().is_some_and(|e| e.contains("401")), "{d:?}");
    let d = spool::deliver(&spool, &client, &base, &secrets.sensor, patient).await;
    assert_eq!((d.batches_sent, d.stored, d.pending_batches), (1, 0, 0), "{d:?}");

    // Exactly once on the hub: every observation sent, no other, none twice.
    let events = hub.member_events().await;
    let got: Vec<_> = events.iter().map(key).collect();
    let unique: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got.len(), unique.len(), "no observation twice: {got:#?}");
    assert_eq!(unique, sent);
}

#[tokio::test]
async fn hub_known_hash_makes_a_distribution_node_and_the_hub_derives_indicators() {
    let w = World::start().await;
    let mut cfg = w.config();
    cfg.judge.yara_dir = None; // only the hub's knowledge judges here
    let secrets = TestHub::secrets();
    let hub = TestHub::start("127.0.0.1:0".parse().expect("addr"), &secrets).await;
    let client = report::hub_client(&cfg).expect("client");
    let seed = Url::parse("http://clean.example.jp/").expect("u");

    // Without the hub's indicators the site is clean.
    let plain = Crawler::new(&cfg, Arc::new(Judge::load(&cfg.judge).expect("judge"))).expect("crawler");
    let chain = plain.crawl(&seed).await;
    assert!(chain.nodes.iter().all(|n| n.verdict == Verdict::Clean), "{:#?}", chain.nodes);
    let pdf = chain.node("http://clean.example.jp/docs/manual.pdf").expect("pdf node");
    let pdf_sha256 = pdf.sha256.clone().expect("hashed");

    // An analyst tells the hub this file is malware.
    let add = kizuna_testkit::http_client()
        .post(format!("{}/api/v1/indicators", hub.base))
        .bearer_auth(&hub.analyst)
        .json(&json!({"kind": "sha256", "value": pdf_sha256, "category": "malware-distribution",
                      "reason": "dropper seen in a spam campaign", "malware": "testdropper", "tlp": "green"}))
        .send()
        .await
        .expect("add");
    assert_eq!(add.status().as_u16(), 201, "{}", add.text().await.unwrap_or_default());

    // The crawler reads the hub's indicators with a member token (as `kizuna crawl` does with
    // hub.indicator_token_file); a wrong token is refused.
    let mut judge = Judge::load(&cfg.judge).expect("judge");
    assert!(report::load_hub_indicators(&client, &hub.base, "kz_wrong", &mut judge).await.is_err());
    let n = report::load_hub_indicators(&client, &hub.base, &hub.member, &mut judge).await.expect("indicators");
    assert_eq!(n, 1);
    let crawler = Crawler::new(&cfg, Arc::new(judge)).expect("crawler");
    let chain = crawler.crawl(&seed).await;
    let pdf = chain.node("http://clean.example.jp/docs/manual.pdf").expect("pdf node");
    assert_eq!(pdf.verdict, Verdict::Distribution, "{pdf:#?}");
    assert!(pdf.evidence.iter().any(|e| e.contains(&pdf_sha256) && e.contains("known-bad")), "{:?}", pdf.evidence);
    assert_eq!(chain.seed_verdict(), Verdict::Entry, "the site linking to it is compromised");

    // To the hub through the spool.
    let labels = Labels::from_config(&cfg.report).expect("labels");
    let obs = report::observations(&chain, &labels);
    assert_eq!(obs.len(), 2, "entry and distribution");
    let spool = Spool::open(&cfg.data_dir().join("spool")).expect("spool");
    spool.put(&report::to_json_lines(&obs)).expect("spool");
    let d = spool::deliver(&spool, &client, &hub.base, &hub.sensor, Backoff::once()).await;
    assert_eq!((d.batches_sent, d.stored, d.pending_batches), (1, 2, 0), "{d:?}");

    let events = hub.member_events().await;
    assert_eq!(events.len(), 2);
    let dist = events.iter().find(|e| e["extra.crawl.role"] == "distribution").expect("distribution");
    assert_eq!(dist["extra.crawl.chain_id"], chain.id.as_str());
    assert_eq!(dist["classification.type"], "malware-distribution");
    assert_eq!(dist["source.url"], "http://clean.example.jp/docs/manual.pdf");
    assert_eq!(dist["malware.hash.sha256"], pdf_sha256.as_str());
    assert_eq!(dist["tlp"], "AMBER");
    assert_eq!(dist["extra.legal_basis"], "legitimate-business");
    let entry = events.iter().find(|e| e["extra.crawl.role"] == "entry").expect("entry");
    assert_eq!(entry["classification.identifier"], "compromised-website");
    assert_eq!(entry["extra.crawl.chain_id"], chain.id.as_str());

    // The hub derived indicators from the crawler's findings.
    let list = hub.get(&hub.analyst, "/api/v1/indicators?state=active&limit=100").await;
    let inds = list["indicators"].as_array().expect("indicators");
    let find = |kind: &str, value: &str| {
        inds.iter()
            .find(|i| i["kind"] == kind && i["value"] == value)
            .unwrap_or_else(|| panic!("{kind} {value}: {list}"))
    };
    let url = find("url", "http://clean.example.jp/docs/manual.pdf");
    assert_eq!(url["category"], "malware-distribution");
    assert_eq!(url["source"], "kizuna-crawl");
    assert_eq!(url["tlp"], "AMBER");
    assert_eq!(url["legal_basis"], "legitimate-business");
    let site = find("url", "http://clean.example.jp/");
    assert_eq!(site["category"], "system-compromise");
    let hash = find("sha256", &pdf_sha256);
    let sources: BTreeSet<&str> =
        hash["provenance"].as_array().expect("provenance").iter().filter_map(|p| p["source"].as_str()).collect();
    assert!(sources.contains("kizuna-crawl") && sources.contains("analyst:alice"), "{hash}");
}
