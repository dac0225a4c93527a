//! The agent console over HTTP on loopback, with an in-memory [`AgentData`] holding a known
//! set of cases (the real implementation is the ISP agent's, over its store).

use std::collections::BTreeMap;
use std::sync::Arc;

use kizuna_console::PasswordCost;
use kizuna_console::agent::{AgentData, AgentUser, CaseFilter, CaseRow, NoticePreview, TimelineItem, TimelineKind};
use kizuna_model::Timestamp;
use kizuna_store::console::{NaiveDate, Role};
use kizuna_store::stats::{DayStats, ThreatCounts};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};

struct Known {
    cases: Vec<CaseRow>,
}

impl AgentData for Known {
    fn member_name(&self) -> String {
        "isp-a".into()
    }
    fn case_counts(&self) -> Result<Vec<(String, u64)>, String> {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for c in &self.cases {
            *m.entry(c.state.clone()).or_default() += 1;
        }
        Ok(m.into_iter().collect())
    }
    fn cases(&self, f: &CaseFilter) -> Result<Vec<CaseRow>, String> {
        Ok(self
            .cases
            .iter()
            .filter(|c| f.state.as_ref().is_none_or(|s| &c.state == s))
            .filter(|c| f.threat.as_ref().is_none_or(|t| c.threat.contains(t.as_str())))
            .cloned()
            .collect())
    }
    fn case_timeline(&self, id: i64) -> Result<Option<(CaseRow, Vec<TimelineItem>)>, String> {
        Ok(self.cases.iter().find(|c| c.id == id).map(|c| {
            (
                c.clone(),
                vec![
                    TimelineItem {
                        at: c.opened,
                        kind: TimelineKind::Observation,
                        text: "mirai scan".into(),
                        notice: None,
                    },
                    TimelineItem {
                        at: c.opened,
                        kind: TimelineKind::Notice,
                        text: "first notice".into(),
                        notice: Some(id * 10),
                    },
                    TimelineItem {
                        at: c.updated,
                        kind: TimelineKind::PageVisit,
                        text: "page opened".into(),
                        notice: None,
                    },
                ],
            )
        }))
    }
    fn notice(&self, id: i64) -> Result<Option<NoticePreview>, String> {
        Ok((id == 10).then(|| NoticePreview {
            id,
            case: 1,
            kind: "first".into(),
            channel: "email".into(),
            status: "sent".into(),
            subject: "Your device may be infected <mirai>".into(),
            body: "Please visit https://isp.example/c/TOKEN".into(),
        }))
    }
    fn unresolved_by_reason(&self) -> Result<Vec<(String, u64)>, String> {
        Ok(vec![("no-session".into(), 4), ("cgnat-no-port".into(), 2)])
    }
    fn consent_counts(&self) -> Result<Vec<(String, u64)>, String> {
        Ok(vec![("consented".into(), 900), ("withdrawn".into(), 3)])
    }
    fn warning_views(&self) -> Result<Vec<(String, u64)>, String> {
        Ok(vec![("malware-distribution".into(), 17), ("phishing".into(), 5)])
    }
    fn daily_counts(&self, _from: NaiveDate, to: NaiveDate) -> Result<Vec<DayStats>, String> {
        Ok(vec![DayStats {
            day: to,
            subscribers: 2000,
            threats: vec![ThreatCounts {
                threat: "infected-system/mirai".into(),
                observed: 12,
                resolved: 9,
                infected: 3,
                unresolved: Default::default(),
                notified: 3,
                remediated: 1,
                escalated: 0,
            }],
        }])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_console_pages_and_login() {
    let now = Timestamp::now();
    let case = |id, state: &str| CaseRow {
        id,
        state: state.into(),
        threat: "infected-system/mirai".into(),
        subscriber_ref: format!("sub-{id}"),
        opened: now,
        updated: now,
        notices: 1,
    };
    let data = Arc::new(Known { cases: vec![case(1, "notified"), case(2, "notified"), case(3, "remediated")] });
    let cost = PasswordCost { memory_kib: 1024, iterations: 1 };
    let pw = "agent-console-password";
    let hash = kizuna_console::auth::hash_password(pw, cost).expect("hash");
    let users = vec![
        AgentUser { name: "desk".into(), role: Role::Analyst, password_hash: hash.clone() },
        AgentUser { name: "viewer".into(), role: Role::ReadOnly, password_hash: hash },
    ];
    let app: axum::Router = kizuna_console::agent::router(data, users, false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = kizuna_testkit::http_client_no_redirect();

    let r = http.get(format!("{base}/console/cases")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login required");
    assert_eq!(r.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/console/login"));

    let login = |name: &'static str, password: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move { kizuna_testkit::console_login(&http, &base, name, password).await }
    };
    assert_eq!(login("desk", "wrong-password-x").await.0, StatusCode::UNAUTHORIZED);
    let (status, desk) = login("desk", pw).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let desk = desk.expect("session");
    let get = |path: String, session: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .header(COOKIE, format!("kizuna_console={session}"))
                .send()
                .await
                .expect("get");
            (r.status(), r.text().await.expect("body"))
        }
    };
    let (s, page) = get("/console/cases".into(), desk.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains(r#"data-label="notified" data-value="2""#), "{page}");
    assert!(
        page.contains(r#"data-label="cgnat-no-port" data-value="2""#)
            && page.contains(r#"data-label="consented" data-value="900""#)
            && page.contains(r#"data-label="malware-distribution" data-value="17""#)
            && page.contains(r#"data-label="phishing" data-value="5""#)
    );
    let (_, page) = get("/console/cases?state=remediated".into(), desk.clone()).await;
    assert_eq!(page.matches(r#"<tr class="case""#).count(), 1, "state filter: {page}");
    let (s, page) = get("/console/cases/1".into(), desk.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page.matches(r#"<tr class="event""#).count(), 3);
    assert!(page.contains(r#"data-kind="page-visit""#) && page.contains(r#"href="/console/notices/10""#));
    let (s, page) = get("/console/notices/10".into(), desk.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Your device may be infected &lt;mirai&gt;"), "escaped subject: {page}");
    assert_eq!(get("/console/cases/99".into(), desk.clone()).await.0, StatusCode::NOT_FOUND);
    let (_, page) = get("/console/remediation".into(), desk.clone()).await;
    assert!(page.contains(r#"data-label="Remediated" data-value="1""#), "{page}");
    assert!(page.contains(r#"data-value="1.50""#), "rate 3 per 2000 = 1.5 per 1000: {page}");

    let (_, viewer) = login("viewer", pw).await;
    let viewer = viewer.expect("session");
    assert_eq!(
        get("/console/notices/10".into(), viewer.clone()).await.0,
        StatusCode::FORBIDDEN,
        "read-only: no notice bodies"
    );
    assert_eq!(get("/console/cases".into(), viewer).await.0, StatusCode::OK);
    assert_eq!(get("/console/cases".into(), "forged".into()).await.0, StatusCode::SEE_OTHER);
}
