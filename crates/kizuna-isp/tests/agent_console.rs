//! The agent console over a real agent store with known cases, served by the agent's own page
//! server: log in over HTTP and check that each page shows the right numbers (cases by state,
//! the state filter, a case's timeline with observations, notice, page visit, self-report and
//! state change, the notice preview, unresolved by reason, consent counts, remediation funnel),
//! and that the roles and the login hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use kizuna_isp::agent::Agent;
use kizuna_isp::clock::ManualClock;
use kizuna_isp::config::AgentConfig;
use kizuna_isp::consent::{Basis, NewConsent, PROTECTIVE_DNS, Status};
use kizuna_isp::resolve::{SessionAnswer, SessionLookup};
use kizuna_isp::store::{AgentStore, Outcome, Processed, Subscriber, Threat};
use kizuna_model::{LegalBasis, Timestamp};
use reqwest::StatusCode;
use reqwest::header::COOKIE;

struct NoSessions;
impl SessionLookup for NoSessions {
    fn lookup(&self, _: IpAddr, _: Option<u16>, _: Timestamp) -> SessionAnswer {
        SessionAnswer::Unresolved("no-session")
    }
}

const PASSWORD: &str = "agent-console-test-pw";

fn config(dir: &std::path::Path, page: SocketAddr, hash: &str) -> AgentConfig {
    AgentConfig::parse(&format!(
        r#"data_dir = "{d}"
[hub]
url = "http://127.0.0.1:9"
token = "offline"
[page]
listen = "{page}"
public_base_url = "http://{page}"
isp_name = "ISP-A 不正通信対策"
[consent]
default_basis = "terms-of-service"
[[console_users]]
name = "desk"
role = "analyst"
password_hash = "{hash}"
[[console_users]]
name = "viewer"
role = "read-only"
password_hash = "{hash}"
"#,
        d = dir.display()
    ))
    .unwrap()
}

fn processed(id: &str, seq: u64, at: Timestamp, sub: Option<&str>, why: &str) -> Processed {
    Processed {
        id: id.into(),
        seq,
        time: at,
        ip: Some("192.0.2.10".parse().unwrap()),
        port: Some(40_000 + seq as u16),
        threat: Threat { ctype: "infected-system".into(), family: "mirai".into() },
        outcome: match sub {
            Some(s) => Outcome::Resolved { subscriber: s.into(), session: "radius".into() },
            None => Outcome::Unresolved(why.into()),
        },
        event: format!(
            r#"{{"feed.name":"honeypot","classification.type":"infected-system","classification.taxonomy":"malicious-code","source.ip":"192.0.2.10","source.port":{},"time.observation":"{}","malware.name":"mirai"}}"#,
            40_000 + seq,
            at.to_rfc3339()
        ),
    }
}

async fn login(http: &reqwest::Client, base: &str, name: &str, pw: &str) -> (StatusCode, Option<String>) {
    kizuna_testkit::console_login(http, base, name, pw).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_console_shows_the_stores_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hash =
        kizuna_console::auth::hash_password(PASSWORD, kizuna_console::PasswordCost { memory_kib: 1024, iterations: 1 })
            .unwrap();
    let cfg = config(dir.path(), addr, &hash);
    let store = Arc::new(AgentStore::open(&cfg.database_path()).unwrap());
    let now = Timestamp::now();
    let sub = |id: &str| Subscriber {
        id: id.into(),
        name: format!("MARKER-name-{id}"),
        email: Some(format!("{id}@example.jp")),
        postal_address: None,
        language: "en".into(),
        keys: vec![format!("key-{id}")],
    };
    store.upsert_subscribers(&[sub("S-1"), sub("S-2"), sub("S-3")], now, "test").unwrap();
    store.snapshot_subscriber_base(now).unwrap();
    // Known data: S-1 twice, S-2 once (two cases), three unresolved (2 no-session, 1 ambiguous).
    let page = [
        processed("o1", 1, now, Some("S-1"), ""),
        processed("o2", 2, now, Some("S-1"), ""),
        processed("o3", 3, now, Some("S-2"), ""),
        processed("o4", 4, now, None, "no-session"),
        processed("o5", 5, now, None, "no-session"),
        processed("o6", 6, now, None, "ambiguous"),
    ];
    let lb = |_: &str| LegalBasis::LegitimateBusiness;
    let o = store.apply_page("6", &page, now, &lb).unwrap();
    assert_eq!((o.resolved, o.cases_opened), (3, 2));
    let consent = |s: &str, st: Status| NewConsent {
        subscriber: s.into(),
        service: PROTECTIVE_DNS.into(),
        status: st,
        at: now,
        channel: "phone".into(),
        policy_version: "v1".into(),
        basis: Basis::TermsOfService,
    };
    store.record_consent(&consent("S-1", Status::OptOut), now, "test").unwrap();
    store.record_consent(&consent("S-2", Status::OptIn), now, "test").unwrap();
    // Warning-page views on two days: the console sums them per category.
    store.count_warning_view("phishing", now).unwrap();
    store.count_warning_view("phishing", Timestamp::from_micros(now.as_micros() - 86_400_000_000)).unwrap();
    store.count_warning_view("malware-distribution", now).unwrap();

    let clock = ManualClock::new(now);
    let agent = Agent::new(cfg, store.clone(), Arc::new(NoSessions), Arc::new(clock), false).unwrap();
    let tick = agent.tick().unwrap();
    assert_eq!(tick.notices, 2, "{tick:?}");
    tokio::spawn(kizuna_isp::page::serve(agent.clone(), listener, std::future::pending()));
    let base = format!("http://{addr}");
    let http = kizuna_testkit::http_client_no_redirect();

    // The subscriber of case 1 opens the countermeasure page and reports cleaning.
    let case1 = store.cases(true, 10).unwrap().into_iter().find(|c| c.subscriber == "S-1").unwrap();
    let notice = store.notices_of_case(case1.id).unwrap().remove(0);
    let link = notice.link.clone();
    assert!(link.starts_with(&base), "{link}");
    assert_eq!(http.get(&link).send().await.unwrap().status(), StatusCode::OK);
    let r = http
        .post(format!("{link}/report"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("note=reinstalled")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Login required; a wrong password fails; the right one works.
    let r = http.get(format!("{base}/console/cases")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(login(&http, &base, "desk", "wrong-password-123").await.0, StatusCode::UNAUTHORIZED);
    let (status, desk) = login(&http, &base, "desk", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let desk = desk.expect("session cookie");
    let get = |path: String, session: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .header(COOKIE, format!("kizuna_console={session}"))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };

    let (s, page) = get("/console/cases".into(), desk.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains(r#"data-label="notified" data-value="2""#), "two notified cases: {page}");
    assert!(page.contains(r#"data-label="no-session" data-value="2""#), "{page}");
    assert!(page.contains(r#"data-label="ambiguous" data-value="1""#), "{page}");
    assert!(page.contains(r#"data-label="opt-out" data-value="1""#), "{page}");
    assert!(page.contains(r#"data-label="opt-in" data-value="1""#), "{page}");
    assert!(page.contains(r#"data-label="no-record" data-value="1""#), "{page}");
    assert!(page.contains(r#"data-label="phishing" data-value="2""#), "warning views summed over days: {page}");
    assert!(page.contains(r#"data-label="malware-distribution" data-value="1""#), "{page}");
    assert_eq!(page.matches(r#"<tr class="case""#).count(), 2);
    assert!(!page.contains("MARKER-name"), "no subscriber names on the console");
    assert!(page.contains("ISP-A 不正通信対策"));
    let (_, page) = get("/console/cases?state=remediated".into(), desk.clone()).await;
    assert_eq!(page.matches(r#"<tr class="case""#).count(), 0, "state filter");
    let (_, page) = get("/console/cases?state=notified&threat=mirai".into(), desk.clone()).await;
    assert_eq!(page.matches(r#"<tr class="case""#).count(), 2);

    let (s, page) = get(format!("/console/cases/{}", case1.id), desk.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let kinds = |k: &str| page.matches(&format!(r#"<tr class="event" data-kind="{k}""#)).count();
    assert_eq!(kinds("observation"), 2, "{page}");
    assert_eq!(kinds("notice"), 1, "{page}");
    assert_eq!(kinds("page-visit"), 1, "{page}");
    assert_eq!(kinds("self-report"), 1, "{page}");
    assert_eq!(kinds("state"), 1, "new → notified: {page}");
    assert!(page.contains("reinstalled") && page.contains(&format!(r#"href="/console/notices/{}""#, notice.id)));

    let (s, page) = get(format!("/console/notices/{}", notice.id), desk.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let subject = notice.subject.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    assert!(page.contains(&subject), "{page}");

    let (_, page) = get("/console/remediation".into(), desk.clone()).await;
    assert!(page.contains(r#"data-label="Observed" data-value="6""#), "{page}");
    assert!(page.contains(r#"data-label="Resolved to a subscriber" data-value="3""#), "{page}");
    assert!(page.contains(r#"data-label="Notified" data-value="2""#), "{page}");
    // 2 infected subscribers of 3 = 666.67 per 1,000 today
    assert!(page.contains(r#"data-value="666.67""#), "{page}");

    // Read-only staff see counts but no notice bodies; a forged cookie is nobody.
    // The same pages in a real browser (Debian's headless Chromium, playwright-core).
    let expect = serde_json::json!({
        "user": "desk", "password": PASSWORD,
        "states": {"notified": 2}, "cases": 2,
        "consent": {"opt-in": 1, "opt-out": 1, "no-record": 1},
        "case": case1.id, "notice": notice.id, "subject": notice.subject,
        "timeline": {"observation": 2, "notice": 1, "page-visit": 1, "self-report": 1, "state": 1},
        "funnel": {"Observed": 6, "Resolved to a subscriber": 3, "Notified": 2},
    });
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    let out = tokio::process::Command::new("node")
        .arg("agent.test.mjs")
        .current_dir(kizuna_testkit::playwright_dir())
        .env("KIZUNA_AGENT_URL", &base)
        .env("KIZUNA_EXPECT", expect.to_string())
        .env("KIZUNA_SCREENSHOTS", &shots)
        .output()
        .await
        .expect("run node (is node installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "browser test failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("checks passed"), "{stdout}");
    for page in ["login", "cases", "case", "notice", "remediation", "remediation-ja"] {
        assert!(shots.join(format!("agent-{page}.png")).exists(), "screenshot agent-{page}.png");
    }

    let (_, viewer) = login(&http, &base, "viewer", PASSWORD).await;
    let viewer = viewer.unwrap();
    assert_eq!(get("/console/cases".into(), viewer.clone()).await.0, StatusCode::OK);
    assert_eq!(get(format!("/console/notices/{}", notice.id), viewer).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get("/console/cases".into(), "forged".into()).await.0, StatusCode::SEE_OTHER);
    assert_eq!(get("/console/cases/9999".into(), desk).await.0, StatusCode::NOT_FOUND);
}
