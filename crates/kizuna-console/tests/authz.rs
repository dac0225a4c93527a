//! Tries to break every authorisation rule of the console over real HTTP on loopback, against a
//! real SQLite store: no cookie, forged cookie, expired session, analyst on operator pages,
//! read-only posting, missing/wrong CSRF tokens, a member's staff naming another member, open
//! redirects, logout.

use std::net::IpAddr;
use std::sync::Arc;

use kizuna_console::{Console, ConsoleConfig, PasswordCost};
use kizuna_model::{Classification, ClassificationType, MemberId, Observation, Routed, Timestamp};
use kizuna_store::console::{ConsoleStore, Role};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{Batch, HubStore, MemberSpec, Store};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

const COST: PasswordCost = PasswordCost { memory_kib: 1024, iterations: 1 };
const PW: &str = "correct horse battery staple";

struct Env {
    base: String,
    http: reqwest::Client,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("hub.sqlite")).expect("open"));
    let now = Timestamp::now();
    let a = store.add_member(&MemberSpec { name: "isp-a".into(), ..Default::default() }, now).expect("a");
    let b = store.add_member(&MemberSpec { name: "isp-b".into(), ..Default::default() }, now).expect("b");
    let hub: Arc<dyn HubStore> = store.clone();
    for (name, role, member) in [
        ("op", Role::Operator, None),
        ("an", Role::Analyst, None),
        ("ro", Role::ReadOnly, None),
        ("mem", Role::Analyst, Some(a.id)),
        ("memop", Role::Operator, Some(a.id)),
    ] {
        kizuna_console::add_user(hub.as_ref(), name, role, member, PW, COST, "test").expect("user");
    }
    // Observations for both members, one with a domain.
    let mut batch = Batch::default();
    let t0 = now.as_secs() - 1800;
    for (i, m) in [(1u8, a.id), (2, a.id), (3, b.id)] {
        let mut o = Observation::new("honeypot", Classification::new(ClassificationType::Scanner), now);
        o.time_source = Some(Timestamp::from_secs(t0 + i64::from(i)));
        o.source.ip = Some(IpAddr::from([198, 51, 100, i]));
        if i == 3 {
            o.source.fqdn = Some("b-only.example".into());
        }
        batch.observations.push(Routed { id: o.id(), observation: o, member: Some(m) });
    }
    store.commit_batch(&batch).expect("commit");
    let console = Console::new(hub, ConsoleConfig { password_cost: COST, ..Default::default() });
    let app: axum::Router = kizuna_console::router(console);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = kizuna_testkit::http_client_no_redirect();
    let _ = b;
    Env { base: format!("http://{addr}"), http, store, _dir: dir }
}

fn cookie_value(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let (kv, _) = c.split_once(';').unwrap_or((c, ""));
        let (k, v) = kv.split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

fn hidden(html: &str, name: &str) -> String {
    let pat = format!(r#"name="{name}" value=""#);
    let i = html.find(&pat).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + pat.len();
    html[i..].split('"').next().unwrap_or("").to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", kizuna_console::html::url_param(v))).collect::<Vec<_>>().join("&")
}

impl Env {
    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            r = r.header(COOKIE, format!("kizuna_console={c}"));
        }
        r.send().await.expect("get")
    }

    async fn post(&self, path: &str, cookie: &str, body: String) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post")
    }

    /// Logs in; returns the session cookie value and the session's CSRF token.
    async fn login(&self, name: &str, password: &str) -> Result<(String, String), StatusCode> {
        let r = self.get("/console/login?next=/console/members", None).await;
        let pre = cookie_value(&r, "kizuna_login_csrf").expect("login csrf cookie");
        let html = r.text().await.expect("body");
        let csrf = hidden(&html, "csrf");
        assert_eq!(csrf, pre, "double-submit token in the form");
        let r = self
            .post(
                "/console/login",
                &format!("kizuna_login_csrf={pre}"),
                form(&[("csrf", &csrf), ("name", name), ("password", password), ("next", "/console/members")]),
            )
            .await;
        if r.status() != StatusCode::SEE_OTHER {
            return Err(r.status());
        }
        assert_eq!(r.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/console/members"));
        let set = r.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join("\n");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "cookie attributes: {set}");
        let session = cookie_value(&r, "kizuna_console").expect("session cookie");
        let page = self.get("/console/overview", Some(&session)).await.text().await.expect("page");
        Ok((session.clone(), hidden(&page, "csrf")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authorisation_rule_holds() {
    let env = start().await;

    // No cookie: pages redirect to the login page, posts are refused.
    for p in [
        "/console/overview",
        "/console/members",
        "/console/indicators",
        "/console/search?q=x",
        "/console/audit",
        "/console/users",
    ] {
        let r = env.get(p, None).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{p} without a cookie");
        let loc = r.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(loc.starts_with("/console/login?next="), "{p} → {loc}");
    }
    let r = env.post("/console/users", "", form(&[("action", "add"), ("name", "evil"), ("role", "operator")])).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Forged cookie.
    let r = env.get("/console/overview", Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "forged cookie");

    // Wrong password, unknown user, login without its CSRF token.
    assert_eq!(env.login("an", "wrong password!!").await.err(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(env.login("nobody", PW).await.err(), Some(StatusCode::UNAUTHORIZED));
    let r = env.post("/console/login", "", form(&[("name", "op"), ("password", PW)])).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "login without the CSRF token");

    // Expired session: a real session row whose time is up.
    let op = env.store.console_user("op").expect("u").expect("op");
    let token = "expired-session-token-expired-session-token";
    let now = Timestamp::now();
    env.store
        .create_console_session(
            &kizuna_console::auth::token_hash(token),
            op.id,
            "csrf",
            Timestamp::from_secs(now.as_secs() - 7200),
            Timestamp::from_secs(now.as_secs() - 1),
        )
        .expect("session");
    let r = env.get("/console/audit", Some(token)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "expired session");

    let (an, an_csrf) = env.login("an", PW).await.expect("analyst login");
    let (ro, ro_csrf) = env.login("ro", PW).await.expect("read-only login");
    let (op, op_csrf) = env.login("op", PW).await.expect("operator login");

    // Analysts and read-only users cannot open operator pages; operators can.
    for p in ["/console/audit", "/console/users"] {
        assert_eq!(env.get(p, Some(&an)).await.status(), StatusCode::FORBIDDEN, "analyst on {p}");
        assert_eq!(env.get(p, Some(&ro)).await.status(), StatusCode::FORBIDDEN, "read-only on {p}");
        assert_eq!(env.get(p, Some(&op)).await.status(), StatusCode::OK, "operator on {p}");
    }
    for p in [
        "/console/overview",
        "/console/members",
        "/console/members/isp-b",
        "/console/indicators",
        "/console/search?q=198.51.100.3",
    ] {
        assert_eq!(env.get(p, Some(&an)).await.status(), StatusCode::OK, "analyst on {p}");
        assert_eq!(env.get(p, Some(&ro)).await.status(), StatusCode::OK, "read-only on {p}");
    }
    // The operator page hides operator navigation from analysts.
    let page = env.get("/console/overview", Some(&an)).await.text().await.expect("page");
    assert!(!page.contains(r#"data-nav="audit""#), "analyst sees no audit link");

    // Posting: read-only and analysts are refused even with a valid CSRF token; a wrong token is
    // refused for operators; the right one works.
    let add = |csrf: &str, name: &str| {
        form(&[("csrf", csrf), ("action", "add"), ("name", name), ("role", "operator"), ("password", PW)])
    };
    let r = env.post("/console/users", &format!("kizuna_console={ro}"), add(&ro_csrf, "ro-made")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "read-only posting");
    let r = env.post("/console/users", &format!("kizuna_console={an}"), add(&an_csrf, "an-made")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "analyst posting to an operator form");
    let r = env.post("/console/users", &format!("kizuna_console={op}"), add(&an_csrf, "bad-csrf")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "operator with another session's CSRF token");
    let r = env.post("/console/users", &format!("kizuna_console={op}"), add("", "no-csrf")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "operator without a CSRF token");
    for n in ["ro-made", "an-made", "bad-csrf", "no-csrf"] {
        assert!(env.store.console_user(n).expect("lookup").is_none(), "{n} must not exist");
    }
    let r = env.post("/console/users", &format!("kizuna_console={op}"), add(&op_csrf, "op-made")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "operator adds a user");
    assert_eq!(env.store.console_user("op-made").expect("lookup").map(|u| u.role), Some(Role::Operator));

    // A member's staff: their own member only; others anonymised; search limited.
    let (mem, _) = env.login("mem", PW).await.expect("member login");
    assert_eq!(env.get("/console/members/isp-b", Some(&mem)).await.status(), StatusCode::FORBIDDEN);
    let (memop, _) = env.login("memop", PW).await.expect("member operator login");
    for p in ["/console/audit", "/console/users", "/console/members/isp-b"] {
        assert_eq!(env.get(p, Some(&memop)).await.status(), StatusCode::FORBIDDEN, "member-bound operator on {p}");
    }
    assert_eq!(env.get("/console/members/isp-a", Some(&mem)).await.status(), StatusCode::OK);
    let page = env.get("/console/members", Some(&mem)).await.text().await.expect("page");
    assert!(page.contains(r#"data-member="isp-a""#) && !page.contains("isp-b"), "member view: {page}");
    let page = env.get("/console/search?q=b-only.example", Some(&mem)).await.text().await.expect("page");
    assert!(page.contains(r#"<span id="obs-count">0</span>"#) && page.contains(r#"data-hidden="1""#), "{page}");
    let page = env.get("/console/search?q=b-only.example", Some(&an)).await.text().await.expect("page");
    assert!(page.contains(r#"<span id="obs-count">1</span>"#), "analyst finds it: {page}");
    let page = env.get("/console/search?q=198.51.100.1", Some(&mem)).await.text().await.expect("page");
    assert!(page.contains(r#"<span id="obs-count">1</span>"#), "own observation by IP: {page}");

    // No open redirect through the login or the language switch.
    let r = env.get("/console/lang?to=ja&back=//evil.example/", None).await;
    assert_eq!(r.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/console/overview"));
    let r = env.get("/console/lang?to=ja&back=https://evil.example/", None).await;
    assert_eq!(r.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/console/overview"));

    // Disabling a user ends their session at once.
    env.store.set_console_user_disabled("an", true).expect("disable");
    assert_eq!(env.get("/console/overview", Some(&an)).await.status(), StatusCode::SEE_OTHER, "disabled user");

    // Logout needs the CSRF token and ends the session.
    let r = env.post("/console/logout", &format!("kizuna_console={ro}"), form(&[("csrf", "nope")])).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = env.post("/console/logout", &format!("kizuna_console={ro}"), form(&[("csrf", &ro_csrf)])).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(env.get("/console/overview", Some(&ro)).await.status(), StatusCode::SEE_OTHER, "after logout");

    // The audit log recorded the logins and the user change, and verifies.
    let page = env.get("/console/audit", Some(&op)).await.text().await.expect("page");
    assert!(page.contains(r#"data-verdict="intact""#), "{page}");
    assert!(
        page.contains(r#"data-action="console.login.failed""#) && page.contains(r#"data-action="console.user.add""#)
    );
    let _ = MemberId(0);
}

/// Time to remediation on the member page, from a known data set posted through the stats store
/// (what the hub stores from the agents' posts): per-day median and 90th percentile as chart
/// points, the 30-day figures, nothing of another member's cases, both languages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_page_shows_time_to_remediation_from_known_counts() {
    use kizuna_store::stats::{DayStats, RemediationDays, StatsStore, ThreatCounts};
    let env = start().await;
    let a = env.store.member_by_name("isp-a").expect("a").expect("isp-a");
    let b = env.store.member_by_name("isp-b").expect("b").expect("isp-b");
    let today = Timestamp::now().to_datetime().date_naive();
    let (d2, d1) = (today - kizuna_store::stats::Days::new(2), today - kizuna_store::stats::Days::new(1));
    let counts = |threat: &str, remediated| ThreatCounts {
        threat: threat.into(),
        observed: 10,
        resolved: 9,
        infected: 5,
        unresolved: Default::default(),
        notified: 5,
        remediated,
        escalated: 0,
    };
    let h = |pairs: &[(u32, u64)]| pairs.iter().copied().collect();
    let ttr = |day, threat: &str, pairs: &[(u32, u64)]| RemediationDays { day, threat: threat.into(), days: h(pairs) };
    let now = Timestamp::now();
    env.store
        .put_stats_with_remediation(
            a.id,
            &[
                DayStats { day: d2, subscribers: 1000, threats: vec![counts("infected-system/mirai", 4)] },
                DayStats {
                    day: d1,
                    subscribers: 1000,
                    threats: vec![counts("infected-system/mirai", 1), counts("vulnerable-system/telnet", 2)],
                },
            ],
            &[
                // Day −2: 7, 7, 9, 30 days → median 7 (2nd of 4), p90 30 (4th).
                ttr(d2, "infected-system/mirai", &[(7, 2), (9, 1), (30, 1)]),
                // Day −1, both threats pooled: 3, 3, 10 → median 3, p90 10.
                ttr(d1, "infected-system/mirai", &[(10, 1)]),
                ttr(d1, "vulnerable-system/telnet", &[(3, 2)]),
            ],
            now,
        )
        .expect("stats a");
    env.store
        .put_stats_with_remediation(
            b.id,
            &[DayStats { day: d1, subscribers: 50, threats: vec![counts("infected-system/mirai", 5)] }],
            &[ttr(d1, "infected-system/mirai", &[(1, 5)])],
            now,
        )
        .expect("stats b");
    let (session, _) = env.login("mem", PW).await.expect("login as isp-a staff");
    let page = env.get("/console/members/isp-a", Some(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    // 30 days pooled: 3, 3, 7, 7, 9, 10, 30 → median 7 (4th of 7), p90 30 (7th).
    assert!(html.contains(r#"id="ttr" data-median="7" data-p90="30" data-cases="7""#), "{html}");
    let point = |series: &str, day: kizuna_store::stats::NaiveDate, v: u32| {
        format!(r#"data-series="{series}" data-label="{}" data-value="{v}""#, day.format("%m-%d"))
    };
    for (series, day, v) in
        [("median", d2, 7), ("90th percentile", d2, 30), ("median", d1, 3), ("90th percentile", d1, 10)]
    {
        assert!(html.contains(&point(series, day, v)), "{series} on {day} = {v}");
    }
    let chart = &html[html.find(r#"id="chart-ttr""#).expect("the chart")..];
    let chart = &chart[..chart.find("</figure>").expect("end of chart")];
    assert_eq!(chart.matches(r#"<circle class="point""#).count(), 4, "points only on days with remediations");
    assert!(!chart.contains(r#"data-value="1""#), "isp-b's cases are not in isp-a's figures");
    // The member's staff cannot open the other member's page at all.
    assert_eq!(env.get("/console/members/isp-b", Some(&session)).await.status(), StatusCode::FORBIDDEN);
    // Japanese.
    let r = env
        .http
        .get(format!("{}/console/members/isp-a", env.base))
        .header(COOKIE, format!("kizuna_console={session}; kizuna_lang=ja"))
        .send()
        .await
        .expect("get ja");
    let ja = r.text().await.expect("html");
    assert!(ja.contains("駆除までの時間") && ja.contains("中央値") && ja.contains("90パーセンタイル"), "{ja}");
    assert!(ja.contains(r#"data-median="7" data-p90="30""#));
}
