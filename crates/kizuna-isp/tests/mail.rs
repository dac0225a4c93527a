//! Notices are never lost: against a real MTA (aiosmtpd, STARTTLS, AUTH), temporary failures
//! are retried with doubling delays, then fall back to a postal letter; permanent failures with
//! no postal address stay in the outbox as failed (reported, re-queueable); an MTA that is down
//! delays delivery until it is back.

mod support;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use kizuna_isp::agent::Agent;
use kizuna_isp::clock::{Clock, ManualClock};
use kizuna_isp::config::AgentConfig;
use kizuna_isp::hub::{PulledObservation, PulledPage};
use kizuna_isp::resolve::{SessionAnswer, SessionLookup};
use kizuna_isp::store::{AgentStore, Subscriber};
use kizuna_model::Timestamp;
use support::*;

struct ByAddress;

impl SessionLookup for ByAddress {
    fn lookup(&self, ip: IpAddr, _: Option<u16>, _: Timestamp) -> SessionAnswer {
        SessionAnswer::Key { key: format!("user-{ip}"), session: "test".into() }
    }
}

fn config(dir: &Path, mta_port: u16, mta: &Mta, pki: &TestPki) -> AgentConfig {
    let pw = dir.join("pw");
    std::fs::write(&pw, &mta.password).expect("pw");
    AgentConfig::parse(&format!(
        r#"
data_dir = "{data}"
[hub]
url = "http://127.0.0.1:9"
token = "unused"
[policy]
retry_initial_secs = 60
max_send_attempts = 3
[smtp]
host = "127.0.0.1"
port = {mta_port}
user = "{user}"
password_file = "{pw}"
from = "abuse@isp.example"
ca_file = "{ca}"
timeout_secs = 5
[page]
listen = "127.0.0.1:0"
public_base_url = "https://clean.isp.example"
"#,
        data = dir.join("agent").display(),
        user = mta.user,
        pw = pw.display(),
        ca = pki.ca_pem.display(),
    ))
    .expect("config")
}

fn sub(i: u32, email: &str, postal: Option<&str>) -> Subscriber {
    Subscriber {
        id: format!("S{i}"),
        name: format!("Subscriber {i}"),
        email: Some(email.into()),
        postal_address: postal.map(str::to_owned),
        language: "en".into(),
        keys: vec![format!("user-192.0.2.{i}")],
    }
}

fn page(from: u64, ips: &[u32]) -> PulledPage {
    PulledPage {
        next_cursor: (from + ips.len() as u64).to_string(),
        more: false,
        observations: ips
            .iter()
            .enumerate()
            .map(|(k, i)| PulledObservation {
                id: format!("obs-{from}-{k}"),
                seq: from + k as u64 + 1,
                event: {
                    // As the hub sends it: with time.observation.
                    let mut e: serde_json::Value = serde_json::from_str(&event(
                        &format!("192.0.2.{i}"),
                        40000,
                        "2026-03-05T00:10:00+00:00",
                        "mirai",
                        *i,
                    ))
                    .expect("json");
                    e["time.observation"] = "2026-03-05T00:20:00+00:00".into();
                    e.to_string().into_bytes()
                },
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_are_retried_reported_and_never_lost() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let pki = make_pki(d);
    let mta = Mta::start(d, &pki);
    let cfg = config(d, mta.port, &mta, &pki);
    let store = Arc::new(AgentStore::open(&cfg.database_path()).expect("store"));
    store
        .upsert_subscribers(
            &[
                sub(1, "tempfail-1@example.jp", Some("1-1 Chiyoda, Tokyo")),
                sub(2, "permfail-2@example.jp", None),
                sub(3, "ok-3@example.jp", None),
                sub(4, "ok-4@example.jp", None),
            ],
            Timestamp::now(),
            "test",
        )
        .expect("subs");
    let clock = ManualClock::new(Timestamp::parse("2026-03-05T01:00:00Z").expect("t"));
    let agent = Agent::new(cfg, store.clone(), Arc::new(ByAddress), Arc::new(clock.clone()), false).expect("agent");
    let a = agent.clone();
    let mta_port = mta.port;
    let clock1 = clock.clone();
    tokio::task::spawn_blocking(move || {
        let clock = clock1;
        let o = a.apply_page(&page(0, &[1, 2, 3])).expect("apply");
        assert_eq!(o.cases_opened, 3, "{o:?}");
        assert_eq!(a.tick().expect("tick").notices, 3);
        let r = a.deliver().expect("deliver");
        assert_eq!((r.sent, r.retried, r.failed, r.to_letter), (1, 1, 1, 0), "{r:?}");
        let n1 = a.store.notices_of_case(case_of(&a.store, "S1")).expect("n")[0].clone();
        assert_eq!((n1.status.as_str(), n1.attempts), ("pending", 1));
        assert!(n1.last_error.as_deref().unwrap_or("").contains("451"), "{:?}", n1.last_error);
        assert_eq!(n1.next_attempt.as_secs() - clock.now().as_secs(), 60, "first retry after 60 s");
        // Not due yet: nothing happens.
        assert_eq!(a.deliver().expect("deliver").retried, 0);
        clock.advance_secs(61);
        let r = a.deliver().expect("deliver");
        assert_eq!(r.retried, 1, "{r:?}");
        let n1 = a.store.notice(n1.id).expect("n").expect("n1");
        assert_eq!((n1.attempts, n1.next_attempt.as_secs() - clock.now().as_secs()), (2, 120), "doubling delay");
        clock.advance_secs(121);
        let r = a.deliver().expect("deliver");
        assert_eq!(r.to_letter, 1, "after max attempts with a postal address: a letter");
        let n1 = a.store.notice(n1.id).expect("n").expect("n1");
        assert_eq!(
            (n1.channel.as_str(), n1.status.as_str(), n1.recipient.as_str()),
            ("letter", "pending", "1-1 Chiyoda, Tokyo")
        );
        let batch = a.export_letters().expect("export").expect("a batch");
        assert_eq!(batch.letters, 1);
        // The permanent failure is reported and kept.
        let failed = a.store.notices_by_status("failed", None).expect("failed");
        assert_eq!(failed.len(), 1);
        assert!(failed[0].last_error.as_deref().unwrap_or("").contains("550"), "{:?}", failed[0].last_error);
        assert!(a.metrics.encode().contains("kizuna_isp_outbox_failed 1"), "{}", a.metrics.encode());
        assert_eq!(a.store.requeue_failed(clock.now()).expect("requeue"), 1);
        assert_eq!(a.deliver().expect("deliver").failed, 1, "still refused, still kept");
    })
    .await
    .expect("phase 1");
    assert_eq!(mta.messages().len(), 1);
    assert_eq!(mta.messages()[0].1["rcpt_tos"][0], "ok-3@example.jp");

    // The MTA goes down: a new notice waits in the outbox and goes out once it is back.
    drop(mta);
    let a = agent.clone();
    tokio::task::spawn_blocking(move || {
        a.apply_page(&page(3, &[4])).expect("apply");
        a.tick().expect("tick");
        let r = a.deliver().expect("deliver");
        assert_eq!(r.retried, 1, "connection refused is temporary: {r:?}");
    })
    .await
    .expect("phase 2");
    let d2 = d.join("second");
    std::fs::create_dir_all(&d2).expect("dir");
    let mta = Mta::start_on(&d2, &pki, Some(mta_port));
    let a = agent.clone();
    let c = clock.clone();
    tokio::task::spawn_blocking(move || {
        c.advance_secs(3600);
        let r = a.deliver().expect("deliver");
        assert_eq!(r.sent, 1, "{r:?}");
    })
    .await
    .expect("phase 3");
    assert_eq!(mta.messages()[0].1["rcpt_tos"][0], "ok-4@example.jp");
    let audit = store.audit_entries(0, 1000).expect("audit");
    for action in ["notice.retry", "notice.fallback-letter", "notice.failed", "notice.sent", "letters.export"] {
        assert!(audit.iter().any(|e| e.record.action == action), "{action} audited");
    }
}

fn case_of(store: &AgentStore, sub: &str) -> i64 {
    store.cases(true, 100).expect("cases").into_iter().find(|c| c.subscriber == sub).expect("case").id
}
