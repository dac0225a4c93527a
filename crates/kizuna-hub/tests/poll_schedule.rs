//! Scheduled polling of a partner collection by the running hub: medallion (the OASIS
//! reference TAXII 2.1 server, PyPI) on loopback serves 120 indicators in pages of 50; the hub
//! polls it every second with the password read from a file. Each object is imported once,
//! objects added between polls arrive at the next poll, the partner's audience settings apply
//! (`tlp_floor`, `sharing_groups`), a partner with a wrong password shows up as errors on
//! `/metrics`, and a new hub process over the same store resumes from the saved `added_after`
//! instead of reading everything again.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kizuna_hub::sharing::{PollConfig, SharingConfig};
use kizuna_hub::{Hub, HubConfig, IngestSettings};
use kizuna_model::{Timestamp, Tlp};
use kizuna_store::indicators::IndicatorStore;
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{HubStore, Store};
use kizuna_taxii::client::{self, ClientAuth, RemoteCollection};
use kizuna_testkit::medallion::{Medallion, domain_indicator, one_collection};
use serde_json::Value;

const COLLECTION: &str = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

fn indicator(i: usize) -> Value {
    domain_indicator(i, "sched-bad.example")
}

/// medallion serving `n` indicators in pages of at most 50.
fn medallion(n: usize) -> Medallion {
    let objects: Vec<Value> = (0..n).map(indicator).collect();
    Medallion::start(&one_collection(COLLECTION, &objects), 50)
}

struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), kizuna_hub::HubError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn start(store: Arc<dyn HubStore>, sharing: SharingConfig) -> Running {
    let config = HubConfig { listen: "127.0.0.1:0".parse().expect("addr"), sharing, ..HubConfig::default() };
    let hub = Hub::new(store, config, IngestSettings::default()).expect("hub");
    let (base, tx, task) = common::serve(hub).await;
    Running { base, stop: Some(tx), task }
}

/// The value of one metric series (0 when absent).
async fn metric(http: &reqwest::Client, base: &str, series: &str) -> f64 {
    let text = http.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok())).unwrap_or(0.0)
}

async fn wait_for(http: &reqwest::Client, base: &str, series: &str, pred: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = metric(http, base, series).await;
        if pred(v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{series} stayed at {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sharing(medallion: &str, dir: &Path) -> SharingConfig {
    let good = dir.join("partner.password");
    std::fs::write(&good, "Password0\n").expect("password file");
    let bad = dir.join("wrong.password");
    std::fs::write(&bad, "not-the-password\n").expect("password file");
    let partner = |name: &str, pw: &Path| PollConfig {
        name: name.into(),
        url: format!("{medallion}/tg/collections/{COLLECTION}/"),
        user: Some("admin".into()),
        password_file: Some(pw.to_path_buf()),
        token_file: None,
        interval_secs: 1,
        ca_file: None,
        page_size: 50,
        timeout_secs: 10,
        default_tlp: None,
        tlp_floor: Some("AMBER".into()),
        sharing_groups: vec!["first-partners".into()],
    };
    let c = SharingConfig {
        organisation: "ISAC test hub".into(),
        contact: None,
        poll: vec![partner("cert-m", &good), partner("cert-wrong", &bad)],
    };
    c.validate().expect("valid");
    c
}

fn imported(store: &SqliteStore) -> Vec<kizuna_store::indicators::IndicatorRecord> {
    store
        .active_indicators(Timestamp::now())
        .expect("indicators")
        .into_iter()
        .filter(|r| r.indicator.value.ends_with(".sched-bad.example"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_polls_partners_on_schedule_incrementally_and_resumes_after_restart() {
    let m = tokio::task::spawn_blocking(|| medallion(120)).await.expect("medallion");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("k.sqlite")).expect("store"));
    let cfg = sharing(&m.base, dir.path());
    let http = kizuna_testkit::http_client();
    let objects = r#"kizuna_taxii_poll_objects_total{partner="cert-m"}"#;
    let polls = r#"kizuna_taxii_polls_total{partner="cert-m"}"#;

    let hub = start(store.clone(), cfg.clone()).await;
    assert_eq!(wait_for(&http, &hub.base, objects, |v| v >= 120.0).await, 120.0);
    let recs = imported(&store);
    assert_eq!(recs.len(), 120);
    assert!(recs.iter().all(|r| r.indicator.source == "cert-m"), "provenance: {:?}", recs[0].indicator.source);
    assert!(recs.iter().all(|r| r.indicator.tlp == Tlp::Amber), "GREEN narrowed to the partner's tlp_floor");
    assert!(recs.iter().all(|r| r.indicator.sharing_groups == ["first-partners"]));

    // objects added to the partner's collection between polls arrive at the next poll, alone
    let rc = RemoteCollection {
        url: format!("{}/tg/collections/{COLLECTION}/", m.base),
        auth: ClientAuth::Basic { user: "admin".into(), password: "Password0".into() },
        limit: 50,
    };
    let fresh: Vec<Value> = (1000..1007).map(indicator).collect();
    let status = client::post(&http, &rc, &fresh).await.expect("post");
    assert_eq!(status["success_count"], 7, "{status}");
    assert_eq!(wait_for(&http, &hub.base, objects, |v| v >= 127.0).await, 127.0);
    let p = metric(&http, &hub.base, polls).await;
    wait_for(&http, &hub.base, polls, |v| v >= p + 2.0).await;
    assert_eq!(metric(&http, &hub.base, objects).await, 127.0, "nothing is read twice");
    assert_eq!(imported(&store).len(), 127);
    assert!(
        metric(&http, &hub.base, r#"kizuna_taxii_poll_last_success_timestamp_seconds{partner="cert-m"}"#).await > 0.0
    );
    assert_eq!(metric(&http, &hub.base, r#"kizuna_taxii_poll_errors_total{partner="cert-m"}"#).await, 0.0);

    // the partner with the wrong password: failures counted, retried, never a success
    wait_for(&http, &hub.base, r#"kizuna_taxii_poll_errors_total{partner="cert-wrong"}"#, |v| v >= 2.0).await;
    assert!(metric(&http, &hub.base, r#"kizuna_taxii_poll_consecutive_failures{partner="cert-wrong"}"#).await >= 2.0);
    assert_eq!(
        metric(&http, &hub.base, r#"kizuna_taxii_poll_last_success_timestamp_seconds{partner="cert-wrong"}"#).await,
        0.0
    );
    hub.stop().await;

    // a restarted hub resumes where the last poll ended: only what was added meanwhile
    let later: Vec<Value> = (2000..2003).map(indicator).collect();
    client::post(&http, &rc, &later).await.expect("post");
    let hub = start(store.clone(), cfg).await;
    assert_eq!(wait_for(&http, &hub.base, objects, |v| v >= 3.0).await, 3.0);
    let p = metric(&http, &hub.base, polls).await;
    wait_for(&http, &hub.base, polls, |v| v >= p + 1.0).await;
    assert_eq!(metric(&http, &hub.base, objects).await, 3.0, "after a restart only the new objects are read");
    assert_eq!(imported(&store).len(), 130);
    hub.stop().await;

    // every poll that brought something is in the audit log
    let audits: Vec<_> = store
        .audit_entries(0, 10_000)
        .expect("audit")
        .into_iter()
        .filter(|e| e.record.action == "share.poll" && e.record.subject == "partner:cert-m")
        .collect();
    assert_eq!(audits.len(), 3, "{:?}", audits.iter().map(|a| &a.record.detail).collect::<Vec<_>>());
}

#[test]
fn retries_back_off_up_to_the_interval() {
    let five_min = Duration::from_secs(300);
    let d: Vec<u64> = (1..=10).map(|f| kizuna_hub::sharing::retry_delay(f, five_min).as_secs()).collect();
    assert_eq!(d, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    assert_eq!(kizuna_hub::sharing::retry_delay(40, five_min), five_min);
}

/// `Hub::set_poll_partners` (what SIGHUP applies): partners start, stop, restart when their
/// settings changed, and keep running otherwise; a list naming a partner twice changes nothing.
/// The partners point at a closed loopback port: their polls fail and back off, which is all
/// this needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_poll_partners_starts_stops_and_restarts_only_what_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn HubStore> = Arc::new(SqliteStore::open(&dir.path().join("kizuna.sqlite")).expect("store"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let partner = |name: &str, interval: u64| PollConfig {
        name: name.into(),
        url: format!("http://{closed}/tg/collections/{COLLECTION}/"),
        user: None,
        password_file: None,
        token_file: None,
        interval_secs: interval,
        ca_file: None,
        page_size: 50,
        timeout_secs: 1,
        default_tlp: None,
        tlp_floor: None,
        sharing_groups: Vec::new(),
    };
    let hub = Hub::new(store, HubConfig::default(), IngestSettings::default()).expect("hub");
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let c = hub.set_poll_partners(&[partner("a", 60), partner("b", 60)]).expect("set");
    assert_eq!((c.started, c.stopped, c.restarted, c.unchanged), (names(&["a", "b"]), vec![], vec![], vec![]));
    let c = hub.set_poll_partners(&[partner("a", 60), partner("b", 30), partner("c", 60)]).expect("set");
    assert_eq!(c.started, names(&["c"]));
    assert_eq!(c.restarted, names(&["b"]));
    assert_eq!(c.unchanged, names(&["a"]));
    assert!(c.stopped.is_empty());
    let e = hub.set_poll_partners(&[partner("a", 60), partner("a", 60)]).expect_err("twice");
    assert!(e.contains("used twice"), "{e}");
    assert_eq!(hub.poll_partners(), names(&["a", "b", "c"]), "a refused list changes nothing");
    let c = hub.set_poll_partners(&[partner("c", 60)]).expect("set");
    assert_eq!((c.stopped, c.unchanged), (names(&["a", "b"]), names(&["c"])));
    assert_eq!(hub.poll_partners(), names(&["c"]));
    hub.stop_pollers();
    assert!(hub.poll_partners().is_empty());
}
