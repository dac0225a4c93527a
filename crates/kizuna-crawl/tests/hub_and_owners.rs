//! Findings to a real hub (SQLite store, HTTP ingest with a sensor token, member report read
//! back), and the owner notice flow with a real MTA (aiosmtpd on loopback): security.txt
//! contact, RDAP fallback, one notice per case, re-check closes the case once fixed.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Mta, World};
use kizuna_crawl::cases::CaseStore;
use kizuna_crawl::notify::Notifier;
use kizuna_crawl::report::{self, Labels};
use kizuna_crawl::{Crawler, Judge, Verdict};
use kizuna_hub::{Hub, HubConfig, IngestSettings, SensorConfig, tokens};
use kizuna_model::{IpNet, Timestamp};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{MemberSpec, Store};
use url::Url;

#[tokio::test]
async fn chain_observations_reach_the_hub_and_the_member_report() {
    let w = World::start().await;
    let cfg = w.config();
    let judge = Arc::new(Judge::load(&cfg.judge).expect("rules"));
    let c = Crawler::new(&cfg, judge).expect("crawler");
    let chain = c.crawl(&Url::parse("http://blog.example.jp/").expect("u")).await;
    let labels = Labels::from_config(&cfg.report).expect("labels");
    let obs = report::observations(&chain, &labels);
    assert_eq!(obs.len(), 5, "entry, redirector, 2 exploit, distribution");
    let by_role = |role: &str| {
        obs.iter().find(|o| o.extra.get("crawl.role").and_then(|v| v.as_str()) == Some(role)).expect("role")
    };
    let entry = by_role("entry");
    assert_eq!(entry.classification.taxonomy.as_str(), "intrusions");
    assert_eq!(entry.classification.kind.as_str(), "system-compromise");
    assert_eq!(entry.classification.identifier.as_deref(), Some("compromised-website"));
    assert_eq!(entry.source.fqdn.as_deref(), Some("blog.example.jp"));
    assert_eq!(entry.source.url.as_deref(), Some("http://blog.example.jp/"));
    assert_eq!(entry.source.ip, Some("127.0.0.1".parse().expect("ip")));
    let dist = by_role("distribution");
    assert_eq!(dist.classification.taxonomy.as_str(), "malicious-code");
    assert_eq!(dist.classification.kind.as_str(), "malware-distribution");
    assert_eq!(
        dist.malware.sha256.as_deref(),
        Some(kizuna_crawl::judge::Hashes::of(common::MARKER_EXE).sha256.as_str())
    );
    assert_eq!(dist.extra["crawl.depth"], 3);
    assert_eq!(dist.extra["crawl.reason"], "js-location");
    assert_eq!(dist.extra["crawl.chain_id"], chain.id.as_str());
    let exploit = by_role("exploit");
    assert_eq!(exploit.classification.taxonomy.as_str(), "intrusion-attempts");
    assert_eq!(exploit.classification.kind.as_str(), "exploit");
    assert_eq!(entry.tlp.as_str(), "AMBER");
    assert_eq!(entry.legal_basis.as_str(), "legitimate-business");

    // A real hub on loopback; a member owning 127.0.0.0/8 gets the report.
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
    store.add_token(m.id, mt.hash, "test", &mt.prefix, Timestamp::now()).expect("token");
    let sensor = tokens::issue().expect("token");
    let config = HubConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        sensors: vec![SensorConfig { name: "crawler-1".into(), token_sha256: tokens::hash_hex(&sensor.secret) }],
        ..HubConfig::default()
    };
    let hub = Hub::new(store.clone(), config, IngestSettings::default()).expect("hub");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.serve(listener, async {
        let _ = rx.await;
    }));
    let client = report::hub_client(&cfg).expect("client");
    let lines = report::to_json_lines(&obs);
    let bad = report::send_to_hub(&client, &base, "kz_wrong", "crawl", lines.clone()).await;
    assert!(bad.is_err(), "a wrong sensor token is refused");
    let summary = report::send_to_hub(&client, &base, &sensor.secret, "crawl", lines.clone()).await.expect("ingest");
    assert_eq!(summary["stored"], 5, "{summary}");
    assert_eq!(summary["per_member"]["isp-loop"], 5, "{summary}");
    let again = report::send_to_hub(&client, &base, &sensor.secret, "crawl", lines).await.expect("ingest");
    assert_eq!(again["duplicates"], 5, "re-sending the same chain is idempotent: {again}");
    let body = client
        .get(format!("{base}/api/v1/observations?limit=100"))
        .bearer_auth(&mt.secret)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let page: serde_json::Value = serde_json::from_str(&body).expect("json");
    let events: Vec<&serde_json::Value> =
        page["observations"].as_array().expect("obs").iter().map(|o| &o["event"]).collect();
    assert_eq!(events.len(), 5);
    let e = events.iter().find(|e| e["extra.crawl.role"] == "distribution").expect("distribution event");
    assert_eq!(e["classification.type"], "malware-distribution");
    assert_eq!(e["source.url"], "http://dl.example.com/update/flashplayer.exe");
    assert_eq!(e["extra.crawl.chain_id"], chain.id.as_str());
    assert_eq!(e["feed.provider"], "crawler-1");
    let _ = tx.send(());
}

#[tokio::test]
async fn owners_are_told_once_and_cases_close_after_the_fix() {
    let w = World::start().await;
    let mta = Mta::start(w.dir.path());
    let mut cfg = w.config();
    cfg.notify.enabled = true;
    cfg.notify.smtp_host = "127.0.0.1".into();
    cfg.notify.smtp_port = mta.port;
    cfg.notify.from = "crawler@isac.example".into();
    cfg.notify.organisation = "Test ISAC".into();
    cfg.notify.abuse_contact_files =
        vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rdap-loopback.json")];
    let judge = Arc::new(Judge::load(&cfg.judge).expect("rules"));
    let crawler = Crawler::new(&cfg, judge).expect("crawler");
    let store = CaseStore::open(&cfg.data_dir().join("crawl.sqlite")).expect("cases");
    let notifier = Notifier::new(&cfg.notify, store).expect("notifier");
    let fetcher = kizuna_crawl::fetch::Fetcher::new(&cfg).expect("fetcher");

    // Blog (security.txt) and shop (no security.txt: RDAP abuse contact of 127.0.0.0/8).
    for seed in ["http://blog.example.jp/", "http://shop.example.jp/", "http://clean.example.jp/"] {
        let chain = crawler.crawl(&Url::parse(seed).expect("u")).await;
        let outcomes = notifier.handle_chain(&fetcher, &chain).await;
        if seed.contains("clean") {
            assert!(outcomes.is_empty());
        } else {
            assert_eq!(outcomes.len(), 1);
            assert!(outcomes[0].sent, "{:?}", outcomes[0]);
            assert!(outcomes[0].new_case);
        }
    }
    let msgs = mta.messages();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    let blog = msgs.iter().find(|m| m.0 == "security@blog.example.jp").expect("blog notice");
    assert!(blog.1.contains("blog.example.jp"));
    assert!(blog.2.contains("http://tds.example.net/in?c=7"), "the chain is in the notice: {}", blog.2);
    assert!(blog.2.contains(&kizuna_crawl::judge::Hashes::of(common::MARKER_EXE).sha256));
    assert!(blog.2.contains("kizuna_test_dropper"));
    assert!(blog.2.contains("injected_hidden_iframe"));
    assert!(blog.2.starts_with("blog.example.jp のご担当者様"), "Japanese first for Preferred-Languages: ja");
    assert!(blog.2.contains("security.txt http://blog.example.jp/.well-known/security.txt"));
    let shop = msgs.iter().find(|m| m.0 == "abuse@loopback-hosting.example").expect("shop notice via RDAP");
    assert!(shop.2.contains("abuse contact of NET-127-0-0-0-1 for 127.0.0.1"), "{}", shop.2);

    // Crawling the blog again while the case is open mails nobody.
    let chain = crawler.crawl(&Url::parse("http://blog.example.jp/").expect("u")).await;
    let again = notifier.handle_chain(&fetcher, &chain).await;
    assert_eq!(again.len(), 1);
    assert!(!again[0].sent && !again[0].new_case);
    assert_eq!(mta.messages().len(), 2, "never the same owner twice for one case");

    // Not due yet: nothing re-checked.
    let now = Timestamp::now();
    assert!(notifier.recheck(&crawler, now, false).await.expect("recheck").is_empty());
    // The blog owner fixes the site; after the re-check date the blog case closes, the shop's
    // stays open.
    w.sites.blog_fixed.store(true, Ordering::SeqCst);
    let later = Timestamp::from_micros(now.as_micros() + 8 * 86_400_000_000);
    let checks = notifier.recheck(&crawler, later, false).await.expect("recheck");
    assert_eq!(checks.len(), 2);
    for r in &checks {
        assert_eq!(r.still_compromised, r.case.site == "shop.example.jp", "{r:?}");
    }
    let cases = notifier.with_store(|s| s.all()).expect("cases");
    let status = |site: &str| cases.iter().find(|c| c.site == site).map(|c| c.status.clone()).expect("case");
    assert_eq!(status("blog.example.jp"), "closed");
    assert_eq!(status("shop.example.jp"), "open");
    // A new compromise of the blog later is a new case, and its owner is told again.
    w.sites.blog_fixed.store(false, Ordering::SeqCst);
    let chain = crawler.crawl(&Url::parse("http://blog.example.jp/").expect("u")).await;
    assert_eq!(chain.seed_verdict(), Verdict::Entry);
    let o = notifier.handle_chain(&fetcher, &chain).await;
    assert!(o[0].new_case && o[0].sent);
    assert_eq!(mta.messages().len(), 3);
}
