//! Real-browser test: builds a known data set in a real SQLite store, serves the console on a
//! loopback port and runs `node tests/browser/console.test.mjs` (playwright-core driving
//! Debian's headless Chromium), which logs in, opens every page, checks the charts' numbers
//! against the data set, switches language, checks that an analyst cannot open operator pages,
//! and saves screenshots under `target/browser-screenshots/`.
//!
//! Needs `/usr/bin/chromium` (scripts/deps/console.apt) and node + npm; `npm ci` is run in
//! tests/browser when playwright-core is not installed there yet. Never downloads a browser.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kizuna_console::{Console, ConsoleConfig, PasswordCost};
use kizuna_model::{
    Classification, ClassificationType, Indicator, IndicatorKind, LegalBasis, Observation, Rejected, Routed, Timestamp,
    Tlp,
};
use kizuna_store::indicators::{AllowEntry, AllowPattern, AllowScope, IndicatorStore};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::stats::{DayStats, StatsStore, ThreatCounts};
use kizuna_store::{Batch, HubStore, MemberSpec, Store};

const COST: PasswordCost = PasswordCost { memory_kib: 1024, iterations: 1 };

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

fn obs(feed: &str, sensor: &str, kind: ClassificationType, at: i64, ip: [u8; 4]) -> Observation {
    let mut o = Observation::new(feed, Classification::new(kind), Timestamp::now());
    o.time_source = Some(Timestamp::from_secs(at));
    o.feed.provider = Some(sensor.into());
    o.source.ip = Some(IpAddr::from(ip));
    o
}

fn indicator(kind: IndicatorKind, value: &str, category: ClassificationType, now: Timestamp) -> Indicator {
    Indicator {
        kind,
        value: value.into(),
        category,
        source: "test-feed".into(),
        confidence: 80,
        first_seen: now,
        last_seen: now,
        expires: Timestamp::from_secs(now.as_secs() + 7 * 86_400),
        reason: "test".into(),
        malware: None,
        tlp: Tlp::Amber,
        sharing_groups: Vec::new(),
        legal_basis: LegalBasis::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    let root = repo_root();
    let browser_dir = kizuna_testkit::playwright_dir();

    // The known data set.
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("hub.sqlite")).expect("open"));
    let now = Timestamp::now();
    let a = store.add_member(&MemberSpec { name: "isp-a".into(), ..Default::default() }, now).expect("a");
    let b = store.add_member(&MemberSpec { name: "isp-b".into(), ..Default::default() }, now).expect("b");
    let hour = now.as_secs().div_euclid(3600) * 3600;
    let mut batch = Batch::default();
    let mut add = |o: Observation, m: Option<kizuna_model::MemberId>| {
        batch.observations.push(Routed { id: o.id(), observation: o, member: m });
    };
    // Two hours ago: 5 scanners on the Tokyo honeypot, routed to isp-a.
    for i in 0..5u8 {
        add(
            obs(
                "honeypot",
                "sensor-tokyo",
                ClassificationType::Scanner,
                hour - 7200 + i64::from(i),
                [198, 51, 100, 1 + i],
            ),
            Some(a.id),
        );
    }
    // One hour ago: 3 infected systems seen by the Osaka IDS (isp-b), 2 unattributed scanners.
    for i in 0..3u8 {
        add(
            obs(
                "ids",
                "sensor-osaka",
                ClassificationType::InfectedSystem,
                hour - 3600 + i64::from(i),
                [203, 0, 113, 1 + i],
            ),
            Some(b.id),
        );
    }
    for i in 0..2u8 {
        add(
            obs(
                "honeypot",
                "sensor-tokyo",
                ClassificationType::Scanner,
                hour - 3500 + i64::from(i),
                [192, 0, 2, 1 + i],
            ),
            None,
        );
    }
    // Three days ago, a sensor that has gone quiet since.
    add(obs("darknet", "sensor-old", ClassificationType::Scanner, hour - 3 * 86_400, [192, 0, 2, 99]), None);
    batch.rejected.push(Rejected {
        source_name: "upload.csv".into(),
        line: 7,
        reason: "bad time".into(),
        raw: "x".into(),
    });
    batch.rejected.push(Rejected {
        source_name: "upload.csv".into(),
        line: 9,
        reason: "no ip".into(),
        raw: "y".into(),
    });
    store.commit_batch(&batch).expect("commit");
    // Counts reported back by the agents (yesterday).
    let yesterday = now.to_datetime().date_naive().pred_opt().expect("yesterday");
    let counts = |observed, resolved, infected, notified, remediated| ThreatCounts {
        threat: "infected-system/mirai".into(),
        observed,
        resolved,
        infected,
        unresolved: [("no-session".to_owned(), observed - resolved)].into_iter().collect(),
        notified,
        remediated,
        escalated: 1,
    };
    store
        .put_stats(
            a.id,
            &[DayStats { day: yesterday, subscribers: 10_000, threats: vec![counts(40, 30, 25, 20, 10)] }],
            now,
        )
        .expect("stats a");
    store
        .put_stats(b.id, &[DayStats { day: yesterday, subscribers: 5_000, threats: vec![counts(8, 6, 5, 4, 4)] }], now)
        .expect("stats b");
    // Indicators: two active, one in conflict with the allow-list.
    store
        .upsert_indicators(
            &[
                indicator(IndicatorKind::Domain, "evil.example", ClassificationType::MalwareDistribution, now),
                indicator(IndicatorKind::Ip, "198.51.100.1/32", ClassificationType::C2Server, now),
                indicator(IndicatorKind::Domain, "good.example", ClassificationType::Phishing, now),
            ],
            now,
        )
        .expect("indicators");
    store
        .set_allowlist(
            "config",
            &[AllowEntry {
                pattern: AllowPattern::Domain("good.example".into()),
                scope: AllowScope::All,
                origin: "config".into(),
                note: "ours".into(),
            }],
            now,
        )
        .expect("allow-list");

    let hub: Arc<dyn HubStore> = store.clone();
    let pw = "browser-test-password";
    kizuna_console::add_user(hub.as_ref(), "olivia", kizuna_store::console::Role::Operator, None, pw, COST, "test")
        .expect("operator");
    kizuna_console::add_user(hub.as_ref(), "akira", kizuna_store::console::Role::Analyst, None, pw, COST, "test")
        .expect("analyst");

    let console = Console::new(hub, ConsoleConfig { password_cost: COST, ..Default::default() });
    let app: axum::Router = kizuna_console::router(console);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let label = |s: i64| Timestamp::from_secs(s).to_datetime().format("%H:00").to_string();
    let expect = serde_json::json!({
        "operator": {"name": "olivia", "password": pw},
        "analyst": {"name": "akira", "password": pw},
        "by_class": {"scanner": 7, "infected-system": 3},
        "by_feed": {"honeypot": 7, "ids": 3},
        "in_24h": 10,
        "in_7d": 11,
        "points": [
            {"series": "scanner", "label": label(hour - 7200), "value": 5},
            {"series": "scanner", "label": label(hour - 3600), "value": 2},
            {"series": "infected-system", "label": label(hour - 3600), "value": 3},
            {"series": "scanner", "label": label(hour), "value": 0},
        ],
        "observations": 11,
        "quarantined": 2,
        "stale": {"sensor-tokyo": "false", "sensor-osaka": "false", "sensor-old": "true"},
        "rates": {"isp-a": "2.50", "isp-b": 1},
        "routed": {"isp-a": 5, "isp-b": 3},
        "funnel": {
            "member": "isp-a",
            "stages": [["Observed", 40], ["Resolved to a subscriber", 30], ["Notified", 20], ["Remediated", 10]],
            "remediated_percent": "25.0",
        },
        "indicators": {"malware-distribution": 1, "c2-server": 1, "phishing": 0},
        "conflict": "good.example",
        "search": {"q": "198.51.100.1", "observations": 1, "indicators": 1},
    });
    let shots = root.join("target/browser-screenshots");
    let out = tokio::process::Command::new("node")
        .arg("console.test.mjs")
        .current_dir(&browser_dir)
        .env("KIZUNA_CONSOLE_URL", format!("http://{addr}"))
        .env("KIZUNA_EXPECT", expect.to_string())
        .env("KIZUNA_SCREENSHOTS", &shots)
        .output()
        .await
        .expect("run node (is node installed?)");
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("checks passed"), "{stdout}");
    for page in [
        "login",
        "overview",
        "members",
        "member",
        "indicators",
        "search",
        "audit",
        "users",
        "overview-ja",
        "analyst-forbidden",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "screenshot {page}.png");
    }
    println!("{stdout}");
}
