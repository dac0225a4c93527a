//! The whole loop with real peers: a kizuna hub on loopback (behind a proxy that records every
//! byte the agent sends), FreeRADIUS-format session logs, an aiosmtpd MTA with STARTTLS and
//! AUTH, the countermeasure page over HTTP, a test clock driving the graduated response for
//! three weeks, and the daily counts read back from the hub.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kizuna_isp::agent::Agent;
use kizuna_isp::cases::CaseState;
use kizuna_isp::clock::ManualClock;
use kizuna_isp::config::AgentConfig;
use kizuna_isp::store::AgentStore;
use kizuna_model::Timestamp;
use kizuna_sessions::{LogKind, ResolverConfig, SessionIndex};
use support::*;

/// Marker identities: none of these may ever leave the agent.
const MARKERS: &[&str] =
    &["MARKER-7f3a", "marker-7f3a", "山田", "Yamada", "Smith", "Kowalski", "Chiyoda", "aa:bb:cc", "4d:4b:7f", "佐藤"];

fn agent_config(dir: &Path, hub: &str, token: &str, mta: &Mta, pki: &TestPki, page: SocketAddr) -> AgentConfig {
    let pw = dir.join("smtp-password");
    std::fs::write(&pw, format!("{}\n", mta.password)).expect("pw");
    let text = format!(
        r#"
data_dir = "{data}"

[hub]
url = "{hub}"
token = "{token}"
page_limit = 2

[policy]
grace_hours = 24
observe_days = 7
reminder_days = 7
final_days = 7
remediation_days = 7
escalation_action = "walled-garden"
legal_basis = "legitimate-business"
retry_initial_secs = 60
max_send_attempts = 3

[smtp]
host = "127.0.0.1"
port = {port}
starttls = true
user = "{user}"
password_file = "{pw}"
from = "ISP A 不正通信対策窓口 <abuse@isp-a.example>"
ca_file = "{ca}"
timeout_secs = 10

[page]
listen = "{page}"
public_base_url = "http://{page}"
isp_name = "ISP A"
support_contact = "0120-000-000"

[[cleaning_tools]]
name = "Example Cleaner"
url = "https://cleaner.example/download"
description = "無料の駆除ツール"
language = "ja"

[[cleaning_tools]]
name = "Example Cleaner (English)"
url = "https://cleaner.example/en"
language = "en"
"#,
        data = dir.join("agent").display(),
        port = mta.port,
        user = mta.user,
        pw = pw.display(),
        ca = pki.ca_pem.display(),
    );
    AgentConfig::parse(&text).expect("agent config")
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).expect("time")
}

fn text_part(raw: &[u8]) -> (mail_parser::Message<'_>, String, String) {
    let m = mail_parser::MessageParser::default().parse(raw).expect("parse mail");
    let text = m.body_text(0).expect("text part").into_owned();
    let html = m.body_html(0).expect("html part").into_owned();
    (m, text, html)
}

fn form_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn link_in(text: &str, base: &str) -> String {
    let i = text.find(base).unwrap_or_else(|| panic!("no link to {base} in {text}"));
    text[i..].split_whitespace().next().expect("link").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_loop_from_sensor_to_remediation_with_only_counts_leaving_the_agent() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let pki = make_pki(d);
    let mta = Mta::start(d, &pki);

    // Hub with member isp-a, behind a recording proxy.
    let setup = setup_hub_db(&d.join("hub.sqlite"));
    let hub = TestHub::start(&d.join("hub.sqlite"), &setup, "127.0.0.1:0".parse().expect("addr")).await;
    let upstream = Arc::new(Mutex::new(hub.addr));
    let proxy = RecordingProxy::start(upstream.clone()).await;

    // Session logs: three subscribers on RADIUS.
    let start = secs("2026-03-05T00:00:00Z");
    let mut detail = Detail::new();
    detail
        .record("Start", start, "MARKER-7f3a-user-1", "MARKER-7f3a-sess-1", "192.0.2.10", "192.0.2.254")
        .record("Start", start + 5, "MARKER-7f3a-user-2", "MARKER-7f3a-sess-2", "192.0.2.20", "192.0.2.254")
        .record("Start", start + 9, "aa:bb:cc:dd:ee:ff", "MARKER-7f3a-sess-3", "192.0.2.30", "192.0.2.254");
    let detail_path = d.join("radacct/192.0.2.254/detail-20260305");
    detail.write(&detail_path);
    let mut index = SessionIndex::new(ResolverConfig {
        max_open_session_age: Duration::from_secs(60 * 86_400),
        ..ResolverConfig::default()
    });
    let loaded = index.load_file(&detail_path, LogKind::RadiusDetail).expect("load detail");
    assert_eq!(loaded.rejected, 0, "{:?}", loaded.rejections);
    // A fourth subscriber on DHCP: a lease as Kea 2.2's memfile writes it (key: the hwaddr).
    let kea_path = d.join("kea/kea-leases4.csv");
    std::fs::create_dir_all(kea_path.parent().expect("dir")).expect("kea dir");
    std::fs::write(
        &kea_path,
        format!(
            "{}\n192.0.2.40,02:4d:4b:7f:3a:04,,2592000,{},1,0,0,MARKER-7f3a-host,0,\n",
            kizuna_sessions::kea::KEA_2_2_HEADER,
            start + 60 + 2_592_000
        ),
    )
    .expect("kea leases");
    let loaded = index.load_file(&kea_path, LogKind::KeaLeases4).expect("load leases");
    assert_eq!((loaded.events, loaded.rejected), (1, 0), "{:?}", loaded.rejections);
    let sessions = Arc::new(RwLock::new(index));

    // The agent, with a test clock and its page server.
    let page_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind page");
    let page_addr = page_listener.local_addr().expect("addr");
    let cfg = agent_config(d, &format!("http://{}", proxy.addr), &setup.member_token, &mta, &pki, page_addr);
    let store = Arc::new(AgentStore::open(&cfg.database_path()).expect("agent store"));
    let csv = d.join("subscribers.csv");
    std::fs::write(
        &csv,
        "subscriber_id,keys,name,email,postal_address,language\n\
         S-1,MARKER-7f3a-user-1,MARKER-7f3a 山田 太郎,marker-7f3a-taro@example.jp,,ja\n\
         S-2,MARKER-7f3a-user-2,MARKER-7f3a Jane Smith,,\"MARKER-7f3a 1-2-3 Chiyoda, Tokyo\",en\n\
         S-3,aa:bb:cc:dd:ee:ff,MARKER-7f3a Jan Kowalski,marker-7f3a-jan@example.jp,,en\n\
         S-4,02:4d:4b:7f:3a:04,MARKER-7f3a 佐藤 花子,marker-7f3a-hanako@example.jp,,ja\n",
    )
    .expect("csv");
    let (subs, bad) = kizuna_isp::subscribers::parse_csv(&csv).expect("csv");
    assert!(bad.is_empty(), "{bad:?}");
    store.upsert_subscribers(&subs, Timestamp::now(), "test").expect("import");
    let clock = ManualClock::new(t("2026-03-05T01:00:00Z"));
    let agent = Agent::new(cfg, store.clone(), sessions.clone(), Arc::new(clock.clone()), true).expect("agent");
    let (page_tx, page_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kizuna_isp::page::serve(agent.clone(), page_listener, async {
        let _ = page_rx.await;
    }));

    // Day 0: the sensor sees S-1, S-2, S-3 and an address with no session.
    let s = hub
        .ingest(&[
            event("192.0.2.10", 40001, "2026-03-05T00:10:00+00:00", "mirai", 1),
            event("192.0.2.10", 40002, "2026-03-05T00:11:00+00:00", "mirai", 2),
            event("192.0.2.20", 40003, "2026-03-05T00:12:00+00:00", "mirai", 3),
            event("192.0.2.30", 40004, "2026-03-05T00:13:00+00:00", "mirai", 4),
            event("192.0.2.99", 40005, "2026-03-05T00:14:00+00:00", "mirai", 5),
            event("192.0.2.40", 40006, "2026-03-05T00:15:00+00:00", "mirai", 6),
        ])
        .await;
    assert_eq!(s["stored"], 6, "{s}");
    let r = agent.round().await.expect("round");
    assert_eq!(r.pulled.new, 6);
    assert_eq!(r.pulled.resolved, 5);
    assert_eq!(r.pulled.cases_opened, 4);
    assert_eq!(r.tick.notices, 4);
    assert_eq!(r.delivery.sent, 3, "{r:?}");
    assert_eq!(r.letters, 1, "the subscriber without e-mail gets a letter");

    // What arrived at the MTA: over TLS, authenticated, properly encoded Japanese.
    let mails = mta.messages();
    assert_eq!(mails.len(), 3);
    assert!(mails.iter().any(|(_, m)| m["rcpt_tos"][0] == "marker-7f3a-hanako@example.jp"), "DHCP subscriber notified");
    let (raw, meta) =
        mails.iter().find(|(_, m)| m["rcpt_tos"][0] == "marker-7f3a-taro@example.jp").expect("mail to S-1");
    assert_eq!(meta["tls"], true, "{meta}");
    assert_eq!(meta["auth_user"], "agent", "{meta}");
    let raw_text = String::from_utf8_lossy(raw);
    assert!(raw_text.is_ascii(), "8-bit text must be MIME-encoded on the wire");
    assert!(raw_text.contains("Subject: =?utf-8?"), "{raw_text}");
    let (m, text, html) = text_part(raw);
    assert!(m.subject().expect("subject").contains("セキュリティに関する重要なお知らせ"), "{:?}", m.subject());
    assert_eq!(m.from().and_then(|f| f.first()).and_then(|a| a.name()), Some("ISP A 不正通信対策窓口"));
    assert!(text.contains("MARKER-7f3a 山田 太郎 様"), "{text}");
    assert!(text.contains("192.0.2.10:40002"), "{text}");
    assert!(text.contains("mirai"), "{text}");
    assert!(text.contains("(UTC+09:00)"), "{text}");
    assert!(html.contains("<table"), "{html}");
    let base = format!("http://{page_addr}/c/");
    let link = link_in(&text, &base);
    assert!(html.contains(&link), "the HTML part carries the same link");

    // The letter batch for S-2.
    let letters_dir = d.join("agent/letters");
    let batch = std::fs::read_dir(&letters_dir).expect("letters").next().expect("a batch").expect("entry").path();
    let index_csv = std::fs::read_to_string(batch.join("letters.csv")).expect("letters.csv");
    assert!(index_csv.contains("MARKER-7f3a 1-2-3 Chiyoda, Tokyo"), "{index_csv}");
    let letter = std::fs::read_dir(&batch)
        .expect("batch")
        .map(|e| e.expect("e").path())
        .find(|p| p.extension().is_some_and(|x| x == "txt"))
        .expect("letter text");
    let letter = std::fs::read_to_string(letter).expect("letter");
    assert!(letter.contains("Dear MARKER-7f3a Jane Smith"), "{letter}");
    assert!(letter.contains(&base), "letters carry the page link too");

    // The countermeasure page, in Japanese, and the self-report.
    let http = http();
    let page = http.get(&link).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let body = page.text().await.expect("body");
    assert!(body.contains("セキュリティ対策のご案内") && body.contains("Example Cleaner"), "{body}");
    assert!(!body.contains("Example Cleaner (English)"), "tools are filtered by language");
    let posted = http
        .post(format!("{link}/report"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("note={}", form_encode("ルーターを初期化しました")))
        .send()
        .await
        .expect("report");
    assert_eq!(posted.status(), 200);
    assert!(posted.text().await.expect("body").contains("ご報告ありがとうございました"));
    let wrong = http.get(format!("{base}{}", "0".repeat(64))).send().await.expect("wrong token");
    assert_eq!(wrong.status(), 404);
    let case1 = store.cases(true, 100).expect("cases").into_iter().find(|c| c.subscriber == "S-1").expect("case 1");
    assert_eq!(store.self_reports(case1.id).expect("reports")[0].1, "ルーターを初期化しました");

    // New hits for an already-notified subscriber do not mail again.
    hub.ingest(&[event("192.0.2.10", 40010, "2026-03-05T03:00:00+00:00", "mirai", 10)]).await;
    clock.set(t("2026-03-05T04:00:00Z"));
    let r = agent.round().await.expect("round");
    assert_eq!((r.pulled.new, r.tick.notices, r.delivery.sent), (1, 0, 0), "{r:?}");

    // Day 3: S-1 and S-3 still show up after the grace period.
    hub.ingest(&[
        event("192.0.2.10", 40020, "2026-03-08T10:00:00+00:00", "mirai", 20),
        event("192.0.2.30", 40021, "2026-03-08T10:05:00+00:00", "mirai", 21),
    ])
    .await;
    clock.set(t("2026-03-08T12:00:00Z"));
    agent.round().await.expect("round");
    // Day 7: reminders to S-1 and S-3; S-2 and S-4 (nothing since the notice) are remediated.
    clock.set(t("2026-03-12T02:00:00Z"));
    let r = agent.round().await.expect("round");
    assert_eq!(r.tick.notices, 2, "{r:?}");
    assert_eq!(r.tick.remediated, 2, "{r:?}");
    assert_eq!(mta.messages().len(), 5);
    let (raw, _) =
        mta.messages().into_iter().find(|(_, m)| m["rcpt_tos"][0] == "marker-7f3a-jan@example.jp").expect("S-3");
    let (m, _, _) = text_part(&raw);
    assert!(m.subject().expect("subject").starts_with("[ISP A] Important"), "{:?}", m.subject());
    let reminders: Vec<String> =
        mta.messages()[3..].iter().map(|(raw, _)| text_part(raw).0.subject().unwrap_or_default().to_owned()).collect();
    assert!(reminders.iter().any(|s| s.starts_with("[ISP A] Reminder")), "{reminders:?}");
    assert!(reminders.iter().any(|s| s.contains("再度のお知らせ")), "{reminders:?}");

    // Day 9: both still seen; day 14: final notices.
    hub.ingest(&[
        event("192.0.2.10", 40030, "2026-03-14T08:00:00+00:00", "mirai", 30),
        event("192.0.2.30", 40031, "2026-03-14T08:00:00+00:00", "mirai", 31),
    ])
    .await;
    clock.set(t("2026-03-14T09:00:00Z"));
    agent.round().await.expect("round");
    clock.set(t("2026-03-19T03:00:00Z"));
    let r = agent.round().await.expect("round");
    assert_eq!(r.tick.notices, 2, "final notices: {r:?}");
    // Day 16: only S-3 is still seen; day 21: S-3 escalated, S-1 remediated (7 clean days).
    hub.ingest(&[event("192.0.2.30", 40040, "2026-03-21T08:00:00+00:00", "mirai", 40)]).await;
    clock.set(t("2026-03-26T04:00:00Z"));
    let r = agent.round().await.expect("round");
    assert_eq!((r.tick.escalated, r.tick.remediated), (1, 1), "{r:?}");
    let cases = store.cases(true, 100).expect("cases");
    let state = |s: &str| cases.iter().find(|c| c.subscriber == s).map(|c| c.state).expect("case");
    assert_eq!(state("S-1"), CaseState::Remediated);
    assert_eq!(state("S-2"), CaseState::Remediated);
    assert_eq!(state("S-3"), CaseState::Escalated);
    assert_eq!(state("S-4"), CaseState::Remediated);
    let s3 = cases.iter().find(|c| c.subscriber == "S-3").expect("S-3");
    assert_eq!(s3.escalation_action.as_deref(), Some("walled-garden"));
    let kinds: Vec<&str> =
        store.notices_of_case(s3.id).expect("notices").iter().map(|n| n.kind.as_str()).collect::<Vec<_>>();
    assert_eq!(kinds, ["first", "reminder", "final", "escalation"]);
    assert_eq!(mta.messages().len(), 8, "S-1: 3 notices, S-3: 4 notices, S-4: 1");

    // Every state change is in the audit log with its legal basis, and the chain verifies.
    assert!(matches!(store.verify_audit().expect("verify"), kizuna_store::audit::Verdict::Intact { .. }));
    let entries = store.audit_entries(0, 10_000).expect("audit");
    let changes: Vec<_> = entries.iter().filter(|e| e.record.action == "case.state").collect();
    // notified 4, observing 4, reminded 2, remediated 3, final 2, escalated 1.
    assert_eq!(changes.len(), 16);
    assert!(changes.iter().all(|e| e.record.detail.contains("\"legal_basis\":\"legitimate-business\"")));

    // Counts to the hub, read back through the member API.
    let pushed = agent.push_stats(30).await.expect("push stats");
    assert!(pushed["stored_days"].as_u64().unwrap_or(0) >= 1, "{pushed}");
    agent.push_stats(30).await.expect("re-post replaces");
    let stats: serde_json::Value = http
        .get(format!("{}/api/v1/stats?from=2026-03-01&to=2026-03-31", hub.base()))
        .bearer_auth(&setup.member_token)
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let day5 = stats["days"].as_array().expect("days").iter().find(|d| d["day"] == "2026-03-05").expect("day 5");
    assert_eq!(day5["subscribers"], 4, "{day5}");
    let th = &day5["threats"][0];
    assert_eq!(th["threat"], "infected-system/mirai");
    assert_eq!((th["observed"].as_u64(), th["resolved"].as_u64()), (Some(7), Some(6)), "{th}");
    assert_eq!(th["unresolved"]["no-session"], 1, "{th}");
    assert_eq!((th["infected"].as_u64(), th["notified"].as_u64()), (Some(4), Some(4)), "{th}");
    assert_eq!(day5["infected_per_1000"], 1000.0, "{day5}");
    let total = &stats["totals"][0];
    assert_eq!(
        (total["notified"].as_u64(), total["remediated"].as_u64(), total["escalated"].as_u64()),
        (Some(4), Some(3), Some(1)),
        "{total}"
    );
    // Time to remediation: first notices on 03-05 01:00; S-2 and S-4 remediated on 03-12 02:00
    // (7 whole days), S-1 on 03-26 04:00 (21 days). Counts by day, no case ids.
    let ttr_of = |day: &str| {
        stats["days"].as_array().expect("days").iter().find(|d| d["day"] == day).expect("day")["threats"][0]
            ["remediation_days"]
            .clone()
    };
    assert_eq!(ttr_of("2026-03-12"), serde_json::json!({"7": 2}), "{stats}");
    assert_eq!(ttr_of("2026-03-26"), serde_json::json!({"21": 1}), "{stats}");
    assert_eq!(total["remediation_days"], serde_json::json!({"7": 2, "21": 1}), "{total}");
    assert_eq!(
        (total["remediation_days_median"].as_u64(), total["remediation_days_p90"].as_u64()),
        (Some(7), Some(21))
    );

    // Privacy: nothing the agent sent, and nothing the hub stored, carries an identity.
    let sent = proxy.bytes();
    assert!(sent.len() > 1000, "the proxy saw the agent's traffic");
    let sent_text = String::from_utf8_lossy(&sent);
    assert!(sent_text.contains("POST /api/v1/stats"), "stats went through the proxy");
    assert!(sent_text.contains("\"threat\":\"infected-system/mirai\""), "the stats body was captured in clear");
    for m in MARKERS {
        assert!(!sent_text.contains(m), "marker {m:?} left the agent");
    }
    // Links expire (60 days by default).
    clock.set(t("2026-05-06T00:00:00Z"));
    let expired = http.get(&link).send().await.expect("expired link");
    assert_eq!(expired.status(), 410);
    let health: serde_json::Value =
        http.get(format!("http://{page_addr}/healthz")).send().await.expect("healthz").json().await.expect("json");
    assert_eq!(health["status"], "ok");
    let metrics =
        http.get(format!("http://{page_addr}/metrics")).send().await.expect("metrics").text().await.expect("text");
    for want in [
        "kizuna_isp_observations_total{kind=\"no-session\"} 1",
        "kizuna_isp_case_transitions_total{kind=\"escalated\"} 1",
        "kizuna_isp_notices_total{kind=\"sent\"} 8",
        "kizuna_isp_page_requests_total{kind=\"self-report\"} 1",
        "kizuna_isp_page_requests_total{kind=\"unknown\"} 1",
        "kizuna_isp_page_requests_total{kind=\"expired\"} 1",
    ] {
        assert!(metrics.contains(want), "{want} in {metrics}");
    }
    let _ = page_tx.send(());
    hub.stop().await;
    let mut hub_bytes = std::fs::read(d.join("hub.sqlite")).expect("hub db");
    if let Ok(wal) = std::fs::read(d.join("hub.sqlite-wal")) {
        hub_bytes.extend(wal);
    }
    let hub_text = String::from_utf8_lossy(&hub_bytes);
    for m in MARKERS {
        assert!(!hub_text.contains(m), "marker {m:?} is in the hub's database");
    }
    drop(upstream);
}
