//! The blocked-site warning page over HTTP: a real hub publishes an indicator to the member, the
//! agent syncs its block list from the hub's change feed, and a browser that arrives with
//! `Host: <blocked name>` gets the page in Japanese or English with the category and the hub's
//! reason, the opt-out form and the language switch. Only a count per category and day is
//! kept (the blocked name is nowhere in the agent's database); the counts are on /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::sync::Arc;

use kizuna_isp::agent::Agent;
use kizuna_isp::clock::SystemClock;
use kizuna_isp::config::AgentConfig;
use kizuna_isp::resolve::{SessionAnswer, SessionLookup};
use kizuna_isp::store::AgentStore;
use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value};
use kizuna_store::indicators::IndicatorStore;
use support::{TestHub, setup_hub_db};

struct NoSessions;
impl SessionLookup for NoSessions {
    fn lookup(&self, _: IpAddr, _: Option<u16>, _: Timestamp) -> SessionAnswer {
        SessionAnswer::Unresolved("no-session")
    }
}

fn indicator(kind: IndicatorKind, value: &str, category: ClassificationType, reason: &str) -> Indicator {
    let now = Timestamp::now().as_secs();
    Indicator {
        kind,
        value: canonical_value(kind, value).unwrap(),
        category,
        source: "analyst:test".into(),
        confidence: 90,
        first_seen: Timestamp::from_secs(now - 60),
        last_seen: Timestamp::from_secs(now),
        expires: Timestamp::from_secs(now + 86_400),
        reason: reason.into(),
        malware: None,
        tlp: Tlp::Green,
        sharing_groups: vec![],
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warning_page_names_the_category_in_both_languages_and_counts_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let setup = setup_hub_db(&d.join("hub.sqlite"));
    let hub = TestHub::start(&d.join("hub.sqlite"), &setup, "127.0.0.1:0".parse().unwrap()).await;
    hub.store
        .upsert_indicators(
            &[
                indicator(
                    IndicatorKind::Domain,
                    "malware.example",
                    ClassificationType::MalwareDistribution,
                    "serves a dropper <b>",
                ),
                indicator(IndicatorKind::Domain, "login-bank.example", ClassificationType::Phishing, "fake bank login"),
            ],
            Timestamp::now(),
        )
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = AgentConfig::parse(&format!(
        r#"data_dir = "{d}"
[hub]
url = "{hub}"
token = "{token}"
[page]
listen = "{addr}"
public_base_url = "http://clean.isp-a.example"
isp_name = "ISP-A"
support_contact = "0120-000-000"
[consent]
default_basis = "terms-of-service"
"#,
        d = d.display(),
        hub = hub.base(),
        token = setup.member_token
    ))
    .unwrap();
    let store = Arc::new(AgentStore::open(&cfg.database_path()).unwrap());
    let agent = Agent::new(cfg, store.clone(), Arc::new(NoSessions), Arc::new(SystemClock), true).unwrap();
    let synced = agent.sync_blocklist().await.unwrap();
    assert!(synced >= 2, "changes synced: {synced}");
    assert_eq!(agent.blocklist.len(), 2);
    tokio::spawn(kizuna_isp::page::serve(agent.clone(), listener, std::future::pending()));
    let http = support::http();
    let base = format!("http://{addr}");
    let get = |host: &'static str, path: &'static str, lang: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .header("host", host)
                .header("accept-language", lang)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // Japanese by Accept-Language, for a subdomain of the listed name (the wildcard trigger).
    let (s, ja) = get("www.malware.example", "/some/path?x=1", "ja,en;q=0.5").await;
    assert_eq!(s, 200);
    assert!(ja.contains(r#"<html lang="ja">"#), "{ja}");
    assert!(ja.contains(r#"<code id="blocked-host">www.malware.example</code>"#), "{ja}");
    assert!(ja.contains(r#"data-category="malware-distribution""#) && ja.contains("マルウェア"), "{ja}");
    assert!(ja.contains("serves a dropper &lt;b&gt;"), "the hub's reason, escaped: {ja}");
    assert!(ja.contains("管理者には") && ja.contains(r#"id="opt-out""#) && ja.contains("戻る"), "{ja}");
    assert!(ja.contains(r#"href="?lang=en""#), "language switch");
    // English by Accept-Language, and by the switch whatever the browser says.
    let (_, en) = get("login-bank.example", "/", "en-US,en;q=0.9").await;
    assert!(en.contains(r#"<html lang="en">"#) && en.contains(r#"data-category="phishing""#), "{en}");
    assert!(en.contains("owner is being told") && en.contains("does not record the URL"), "{en}");
    let (_, switched) = get("login-bank.example", "/?lang=en", "ja").await;
    assert!(switched.contains(r#"<html lang="en">"#));
    // A name the hub does not list (stale cache at the resolver) still gets a page.
    let (s, unknown) = get("other.example:80", "/", "en").await;
    assert_eq!(s, 200);
    assert!(unknown.contains(r#"data-category="unknown""#), "{unknown}");

    // The agent's own names are not the warning page.
    let (s, health) = get("clean.isp-a.example", "/healthz", "en").await;
    assert_eq!(s, 200);
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let (s, _) = get("127.0.0.1", "/c/0000", "en").await;
    assert_eq!(s, 404, "IP literal: the countermeasure routes");

    // Opting out from an address the session logs do not know: nothing is recorded.
    let token = ja.split(r#"name="token" value=""#).nth(1).and_then(|s| s.split('"').next()).unwrap();
    let r = http
        .post(format!("{base}/.kizuna/opt-out"))
        .header("host", "www.malware.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&lang=ja"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(r#"data-result="unknown-line""#));
    assert_eq!(store.consent_version().unwrap(), 0);

    // Only counts per category and day: in the store, on /metrics; the names are nowhere.
    let views = store.warning_views().unwrap();
    let n = |c: &str| views.iter().filter(|v| v.1 == c).map(|v| v.2).sum::<u64>();
    assert_eq!((n("malware-distribution"), n("phishing"), n("unknown")), (1, 2, 1), "{views:?}");
    let (_, metrics) = get("127.0.0.1", "/metrics", "en").await;
    assert!(metrics.contains(r#"kizuna_isp_warning_views_total{kind="phishing"} 2"#), "{metrics}");
    drop(agent);
    for f in std::fs::read_dir(d.join("")).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("kizuna-isp.sqlite") {
            let bytes = std::fs::read(&p).unwrap();
            for needle in ["malware.example", "login-bank", "other.example"] {
                assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} found in {name}");
            }
        }
    }
}
