//! Pulling from a real hub is exactly-once across restarts of either side: the hub is stopped
//! and started again mid-stream, the agent is dropped (its process state lost) and reopened on
//! the same database, a page fetched but never committed is fetched again, and a page applied
//! twice adds nothing. At the end the agent holds each of the member's observations once.

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kizuna_isp::agent::Agent;
use kizuna_isp::clock::ManualClock;
use kizuna_isp::config::AgentConfig;
use kizuna_isp::hub::HubClient;
use kizuna_isp::resolve::{SessionAnswer, SessionLookup};
use kizuna_isp::store::AgentStore;
use kizuna_model::Timestamp;
use kizuna_store::{Cursor, Store};
use support::*;

/// Every address belongs to one subscriber key: resolution is not what this test is about.
struct Everyone;

impl SessionLookup for Everyone {
    fn lookup(&self, ip: IpAddr, _: Option<u16>, _: Timestamp) -> SessionAnswer {
        SessionAnswer::Key { key: format!("user-{ip}"), session: "test".into() }
    }
}

fn config(dir: &Path, hub: &str, token: &str) -> AgentConfig {
    AgentConfig::parse(&format!(
        r#"
data_dir = "{}"
[hub]
url = "{hub}"
token = "{token}"
page_limit = 7
[page]
listen = "127.0.0.1:0"
public_base_url = "http://127.0.0.1:9"
"#,
        dir.join("agent").display()
    ))
    .expect("config")
}

fn batch(from: u32, n: u32) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            let ip = format!("192.0.2.{}", 1 + i % 50);
            event(
                &ip,
                40000 + (i % 1000) as u16,
                &format!("2026-03-05T{:02}:{:02}:{:02}+00:00", i / 3600, (i / 60) % 60, i % 60),
                "mirai",
                i,
            )
        })
        .collect()
}

fn agent(dir: &Path, hub: &str, token: &str) -> Arc<Agent> {
    let cfg = config(dir, hub, token);
    let store = Arc::new(AgentStore::open(&cfg.database_path()).expect("store"));
    let subs: Vec<kizuna_isp::store::Subscriber> = (1..=50)
        .map(|i| kizuna_isp::store::Subscriber {
            id: format!("S{i}"),
            name: format!("Subscriber {i}"),
            email: Some(format!("s{i}@example.jp")),
            postal_address: None,
            language: "ja".into(),
            keys: vec![format!("user-192.0.2.{i}")],
        })
        .collect();
    store.upsert_subscribers(&subs, Timestamp::now(), "test").expect("subs");
    let clock = ManualClock::new(Timestamp::parse("2026-03-05T12:00:00Z").expect("t"));
    Agent::new(cfg, store, Arc::new(Everyone), Arc::new(clock), true).expect("agent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarts_of_hub_and_agent_lose_nothing_and_double_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let db = d.join("hub.sqlite");
    let setup = setup_hub_db(&db);
    let hub = TestHub::start(&db, &setup, "127.0.0.1:0".parse().expect("addr")).await;
    let upstream = Arc::new(Mutex::new(hub.addr));
    let proxy = RecordingProxy::start(upstream.clone()).await;
    let base = format!("http://{}", proxy.addr);

    hub.ingest(&batch(0, 40)).await;
    let a = agent(d, &base, &setup.member_token);
    // Two pages, then a page fetched but "crashed" before it was applied.
    for _ in 0..2 {
        let cursor = a.store.cursor().expect("cursor");
        let client = HubClient::new(&a.config.hub).expect("client");
        let page = client.page(&cursor).await.expect("page");
        a.apply_page(&page).expect("apply");
    }
    assert_eq!(a.store.observation_count().expect("count"), 14);
    let lost_page =
        HubClient::new(&a.config.hub).expect("client").page(&a.store.cursor().expect("c")).await.expect("page");
    assert_eq!(lost_page.observations.len(), 7);
    drop(a); // the agent goes away with the page in memory only

    // The hub restarts (new process state, same database), while sensors keep sending.
    hub.stop().await;
    let hub = TestHub::start(&db, &setup, "127.0.0.1:0".parse().expect("addr")).await;
    *upstream.lock().expect("lock") = hub.addr;
    hub.ingest(&batch(40, 30)).await;

    // The agent restarts on its database and goes on from its committed cursor.
    let a = agent(d, &base, &setup.member_token);
    let first = a.pull_all().await.expect("pull");
    assert_eq!(first.duplicates, 0, "nothing applied twice");
    // Applying the old, lost page now (a hub that re-sends) adds nothing.
    let again = a.apply_page(&lost_page).expect("apply lost page");
    assert_eq!((again.new, again.duplicates), (0, 7));

    // More data, another hub restart between two pulls.
    hub.ingest(&batch(70, 25)).await;
    let partial =
        HubClient::new(&a.config.hub).expect("client").page(&a.store.cursor().expect("c")).await.expect("page");
    a.apply_page(&partial).expect("apply");
    hub.stop().await;
    assert!(a.pull_all().await.is_err(), "hub down: the pull fails, nothing changes");
    let hub = TestHub::start(&db, &setup, "127.0.0.1:0".parse().expect("addr")).await;
    *upstream.lock().expect("lock") = hub.addr;
    a.pull_all().await.expect("pull after restart");

    // The agent holds exactly the member's observations, each once.
    let member = hub.store.member_by_name("isp-a").expect("member").expect("isp-a");
    let page = hub.store.page(member.id, Cursor::START, 10_000).expect("page");
    let want: BTreeSet<String> = page.items.iter().map(|o| o.routed.id.to_string()).collect();
    let got = a.store.observation_ids().expect("ids");
    assert_eq!(want.len(), 95);
    assert_eq!(got.len(), 95, "no observation doubled");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want, "no observation lost");
    // Counters count each observation once too.
    let counts = a.store.daily_counts("2026-03-05", "2026-03-05").expect("counts");
    assert_eq!(counts.iter().map(|c| c.counts["observed"]).sum::<u64>(), 95);
    // One case per subscriber and threat however many hits.
    assert_eq!(a.store.cases(true, 1000).expect("cases").len(), 50);
    hub.stop().await;
}
