//! The ISP agent's console: cases by state with filters, a case's timeline, notice previews,
//! unresolved observations by reason, consent register counts and the remediation charts for
//! the ISP's own subscribers. Generic over [`AgentData`], which the agent (crate `kizuna-isp`)
//! implements over its own store; mount [`router`] in the agent's HTTP router.
//!
//! Login: the agent's configured staff ([`AgentUser`], argon2id PHC strings as made by
//! [`crate::auth::hash_password`]); sessions live in the agent process (HttpOnly,
//! SameSite=Strict cookie; CSRF token on the logout form). Only `operator` and `analyst` roles
//! see notice bodies; `read-only` sees counts and case states.
//!
//! **Invariant:** these pages run inside the ISP; they may show subscriber references, but the
//! trait returns only what the agent chooses to show (a pseudonymous subscriber reference, not a
//! name or address, unless the agent decides otherwise).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use kizuna_model::Timestamp;
use kizuna_store::console::{NaiveDate, Role};
use kizuna_store::stats::DayStats;

use crate::html::{esc, time, url_param};
use crate::i18n::{Lang, t};
use crate::svg::{self, Bar, Series};
use crate::{auth, lang_of};

/// One case as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    /// Case id.
    pub id: i64,
    /// State (the agent's spelling, e.g. `notified`, `remediated`).
    pub state: String,
    /// Threat key (`classification.type/family`).
    pub threat: String,
    /// A reference to the subscriber the agent is willing to show staff.
    pub subscriber_ref: String,
    /// Opened.
    pub opened: Timestamp,
    /// Last change.
    pub updated: Timestamp,
    /// Notices sent so far.
    pub notices: u32,
}

/// What kind of event a timeline entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineKind {
    /// An observation pulled from the hub.
    Observation,
    /// A notice (letter, e-mail, …).
    Notice,
    /// The subscriber opened the countermeasure page.
    PageVisit,
    /// The subscriber reported having cleaned up.
    SelfReport,
    /// A state change.
    State,
}

impl TimelineKind {
    fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Observation => "observation",
            TimelineKind::Notice => "notice",
            TimelineKind::PageVisit => "page-visit",
            TimelineKind::SelfReport => "self-report",
            TimelineKind::State => "state",
        }
    }
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineItem {
    /// When.
    pub at: Timestamp,
    /// Kind.
    pub kind: TimelineKind,
    /// One line of text.
    pub text: String,
    /// For notices: the notice id (links to its preview).
    pub notice: Option<i64>,
}

/// A notice as it was (or will be) sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticePreview {
    /// Notice id.
    pub id: i64,
    /// Case id.
    pub case: i64,
    /// Kind (`first`, `reminder`, …).
    pub kind: String,
    /// Channel (`email`, `letter`, …).
    pub channel: String,
    /// Status (`queued`, `sent`, …).
    pub status: String,
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
}

/// Which cases to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Only this state.
    pub state: Option<String>,
    /// Only threats containing this.
    pub threat: Option<String>,
    /// At most this many (newest change first).
    pub limit: usize,
}

/// What the ISP agent provides to its console. Every method is called from a blocking thread;
/// errors are shown as "store unavailable" and logged.
pub trait AgentData: Send + Sync + 'static {
    /// The member name of this agent (shown in the header).
    fn member_name(&self) -> String;
    /// Case counts by state.
    fn case_counts(&self) -> Result<Vec<(String, u64)>, String>;
    /// Cases matching the filter, newest change first.
    fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>, String>;
    /// One case and its timeline (oldest first).
    fn case_timeline(&self, id: i64) -> Result<Option<(CaseRow, Vec<TimelineItem>)>, String>;
    /// One notice.
    fn notice(&self, id: i64) -> Result<Option<NoticePreview>, String>;
    /// Observations that could not be resolved to a subscriber, by reason.
    fn unresolved_by_reason(&self) -> Result<Vec<(String, u64)>, String>;
    /// Consent register: subscribers by consent status.
    fn consent_counts(&self) -> Result<Vec<(String, u64)>, String>;
    /// Blocked-site warning page views by category (counts only: no URL, no subscriber).
    fn warning_views(&self) -> Result<Vec<(String, u64)>, String>;
    /// The agent's current day, by its own clock (a demo or test agent runs on simulated time);
    /// the remediation charts end on it.
    fn today(&self) -> NaiveDate {
        Timestamp::now().to_datetime().date_naive()
    }
    /// The agent's own daily counts (the same shape it posts to the hub) for `from..=to`.
    fn daily_counts(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayStats>, String>;
}

/// A member of the ISP's staff allowed into the agent console.
#[derive(Debug, Clone)]
pub struct AgentUser {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
}

struct Session {
    user: usize,
    csrf: String,
    expires: Timestamp,
}

struct AgentConsole {
    data: Arc<dyn AgentData>,
    users: Vec<AgentUser>,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    ttl_secs: i64,
    secure: bool,
}

/// The agent console's routes under `/console/`, for any router state `S`.
pub fn router<S: Clone + Send + Sync + 'static>(
    data: Arc<dyn AgentData>,
    users: Vec<AgentUser>,
    secure_cookies: bool,
) -> Router<S> {
    let c = Arc::new(AgentConsole {
        data,
        users,
        sessions: Mutex::new(HashMap::new()),
        ttl_secs: 8 * 3600,
        secure: secure_cookies,
    });
    Router::new()
        .route("/console", get(|| async { redirect("/console/cases") }))
        .route("/console/", get(|| async { redirect("/console/cases") }))
        .route("/console/static/console.css", get(css))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang", get(lang))
        .route("/console/cases", get(cases))
        .route("/console/cases/{id}", get(case))
        .route("/console/notices/{id}", get(notice))
        .route("/console/remediation", get(remediation))
        .with_state(c)
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn css() -> Response {
    let mut r = crate::html::CSS.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

const NAV: &[(&str, &str, &str)] = &[("cases", "Cases", "案件"), ("remediation", "Remediation", "駆除状況")];

fn layout(
    lang: Lang,
    c: &AgentConsole,
    who: Option<(&AgentUser, &str)>,
    active: &str,
    title: &str,
    body: &str,
) -> String {
    let mut s = format!(
        r#"<!DOCTYPE html><html lang="{code}"><head><meta charset="utf-8"><title>{title} · {member}</title><link rel="stylesheet" href="/console/static/console.css"></head><body><header><strong>{member}</strong><nav>"#,
        code = lang.code(),
        title = esc(title),
        member = esc(&c.data.member_name()),
    );
    if who.is_some() {
        for (p, en, ja) in NAV {
            let class = if *p == active { r#" class="active""# } else { "" };
            let _ = write!(
                s,
                r#"<a href="/console/{p}"{class} data-nav="{p}">{}</a>"#,
                if lang == Lang::Ja { ja } else { en }
            );
        }
    }
    let other = if lang == Lang::En { Lang::Ja } else { Lang::En };
    let _ = write!(
        s,
        r#"</nav><span class="who"><a id="lang-switch" href="/console/lang?to={o}&amp;back=/console/{active}">{l}</a>"#,
        o = other.code(),
        l = esc(t(lang, "lang.switch"))
    );
    if let Some((u, csrf)) = who {
        let _ = write!(
            s,
            r#" <span id="whoami" data-user="{n}">{n}</span> <form method="post" action="/console/logout"><input type="hidden" name="csrf" value="{c}"><button id="logout">{lo}</button></form>"#,
            n = esc(&u.name),
            c = esc(csrf),
            lo = esc(t(lang, "nav.logout"))
        );
    }
    let _ = write!(s, "</span></header><main><h1>{}</h1>{body}</main></body></html>", esc(title));
    s
}

fn viewer(c: &AgentConsole, headers: &HeaderMap) -> Option<(usize, String, [u8; 32])> {
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = auth::cookie(cookies, auth::SESSION_COOKIE)?;
    let h = auth::token_hash(token);
    let mut s = c.sessions.lock().unwrap_or_else(|p| p.into_inner());
    let now = Timestamp::now();
    s.retain(|_, v| v.expires > now);
    s.get(&h).map(|v| (v.user, v.csrf.clone(), h))
}

/// Renders a page for a logged-in user (redirects to the login page otherwise).
async fn page(
    c: Arc<AgentConsole>,
    headers: HeaderMap,
    active: &'static str,
    f: impl FnOnce(&AgentConsole, Lang, &AgentUser) -> Result<(String, String), (StatusCode, String)> + Send + 'static,
) -> Response {
    let lang = lang_of(&headers);
    let out = tokio::task::spawn_blocking(move || {
        let Some((ui, csrf, _)) = viewer(&c, &headers) else { return Err(None) };
        let Some(u) = c.users.get(ui) else { return Err(None) };
        match f(&c, lang, u) {
            Ok((title, body)) => Ok(layout(lang, &c, Some((u, &csrf)), active, &title, &body)),
            Err((status, msg)) => {
                let body = format!(r#"<section><p class="error" id="error">{}</p></section>"#, esc(&msg));
                Err(Some((status, layout(lang, &c, Some((u, &csrf)), active, &msg, &body))))
            }
        }
    })
    .await;
    match out {
        Ok(Ok(body)) => html(StatusCode::OK, body),
        Ok(Err(None)) => redirect("/console/login"),
        Ok(Err(Some((status, body)))) => html(status, body),
        Err(_) => html(StatusCode::INTERNAL_SERVER_ERROR, "worker failed".into()),
    }
}

fn store_err(lang: Lang) -> impl Fn(String) -> (StatusCode, String) {
    move |e| {
        tracing::error!("agent console: {e}");
        (StatusCode::SERVICE_UNAVAILABLE, t(lang, "err.store").to_owned())
    }
}

async fn cases(
    State(c): State<Arc<AgentConsole>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    page(c, headers, "cases", move |c, lang, _| {
        let e = store_err(lang);
        let counts = c.data.case_counts().map_err(&e)?;
        let bars: Vec<Bar> =
            counts.iter().map(|(s, n)| Bar { label: s.clone(), value: *n as f64, highlight: false }).collect();
        let mut body = format!("<section>{}", svg::bars("chart-states", if lang == Lang::Ja { "状態別の案件" } else { "Cases by state" }, &bars));
        let state = q.get("state").filter(|s| !s.is_empty()).cloned();
        let threat = q.get("threat").filter(|s| !s.is_empty()).cloned();
        body.push_str(r#"<p class="ranges" id="state-filter"><a href="/console/cases">*</a> "#);
        for (s, n) in &counts {
            let _ = write!(body, r#"<a href="/console/cases?state={}" data-state="{}">{} ({n})</a> "#, url_param(s), esc(s), esc(s));
        }
        body.push_str("</p></section>");
        let rows = c.data.cases(&CaseFilter { state, threat, limit: 200 }).map_err(&e)?;
        let _ = write!(
            body,
            r#"<section><table id="cases"><tr><th>#</th><th>{}</th><th>{}</th><th>ref</th><th>{}</th><th>{}</th><th class="num">notices</th></tr>"#,
            esc(t(lang, "col.state")),
            esc(t(lang, "col.classification")),
            esc(t(lang, "col.created")),
            esc(t(lang, "col.updated"))
        );
        for r in &rows {
            let _ = write!(
                body,
                r#"<tr class="case" data-case="{id}" data-state="{st}"><td><a href="/console/cases/{id}">{id}</a></td><td>{st}</td><td>{th}</td><td>{sr}</td><td>{op}</td><td>{up}</td><td class="num">{n}</td></tr>"#,
                id = r.id,
                st = esc(&r.state),
                th = esc(&r.threat),
                sr = esc(&r.subscriber_ref),
                op = esc(&time(lang, Some(r.opened))),
                up = esc(&time(lang, Some(r.updated))),
                n = r.notices
            );
        }
        body.push_str("</table></section>");
        let unresolved = c.data.unresolved_by_reason().map_err(&e)?;
        let consent = c.data.consent_counts().map_err(&e)?;
        let warnings = c.data.warning_views().map_err(&e)?;
        let bar = |v: &[(String, u64)]| v.iter().map(|(s, n)| Bar { label: s.clone(), value: *n as f64, highlight: false }).collect::<Vec<_>>();
        let _ = write!(
            body,
            "<section>{}{}{}</section>",
            svg::bars("chart-unresolved", t(lang, "members.unresolved"), &bar(&unresolved)),
            svg::bars("chart-consent", if lang == Lang::Ja { "同意台帳" } else { "Consent register" }, &bar(&consent)),
            svg::bars(
                "chart-warnings",
                if lang == Lang::Ja { "警告ページ表示数（分類別）" } else { "Warning page views by category" },
                &bar(&warnings)
            )
        );
        Ok((if lang == Lang::Ja { "案件".into() } else { "Cases".into() }, body))
    })
    .await
}

async fn case(State(c): State<Arc<AgentConsole>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    page(c, headers, "cases", move |c, lang, _| {
        let (row, items) = c
            .data
            .case_timeline(id)
            .map_err(store_err(lang))?
            .ok_or((StatusCode::NOT_FOUND, t(lang, "err.notfound").to_owned()))?;
        let mut body = format!(
            r#"<section><p id="case" data-state="{}">{} · {} · {}</p><table id="timeline">"#,
            esc(&row.state),
            esc(&row.state),
            esc(&row.threat),
            esc(&row.subscriber_ref)
        );
        for it in &items {
            let link = it.notice.map_or(String::new(), |n| format!(r#" <a href="/console/notices/{n}">→</a>"#));
            let _ = write!(
                body,
                r#"<tr class="event" data-kind="{k}"><td>{at}</td><td>{k}</td><td>{tx}{link}</td></tr>"#,
                k = it.kind.as_str(),
                at = esc(&time(lang, Some(it.at))),
                tx = esc(&it.text)
            );
        }
        body.push_str("</table></section>");
        Ok((format!("#{}", row.id), body))
    })
    .await
}

async fn notice(State(c): State<Arc<AgentConsole>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    page(c, headers, "cases", move |c, lang, u| {
        if u.role == Role::ReadOnly {
            return Err((StatusCode::FORBIDDEN, t(lang, "err.forbidden").to_owned()));
        }
        let n = c.data.notice(id).map_err(store_err(lang))?.ok_or((StatusCode::NOT_FOUND, t(lang, "err.notfound").to_owned()))?;
        let body = format!(
            r#"<section><p>#{case} · {kind} · {ch} · <span id="status">{st}</span></p><h2 id="subject">{sub}</h2><pre id="body" style="white-space: pre-wrap">{b}</pre></section>"#,
            case = n.case,
            kind = esc(&n.kind),
            ch = esc(&n.channel),
            st = esc(&n.status),
            sub = esc(&n.subject),
            b = esc(&n.body)
        );
        Ok((format!("notice {}", n.id), body))
    })
    .await
}

async fn remediation(State(c): State<Arc<AgentConsole>>, headers: HeaderMap) -> Response {
    page(c, headers, "remediation", move |c, lang, _| {
        let to = c.data.today();
        let from = to.checked_sub_days(kizuna_store::stats::Days::new(29)).unwrap_or(to);
        let days = c.data.daily_counts(from, to).map_err(store_err(lang))?;
        let all: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        let labels: Vec<String> = all.iter().map(|d| d.format("%m-%d").to_string()).collect();
        let rate: Vec<f64> = all
            .iter()
            .map(|d| {
                days.iter().find(|x| x.day == *d && x.subscribers > 0).map_or(0.0, |x| {
                    let v = x.threats.iter().map(|t| t.infected).sum::<u64>() as f64 * 1000.0 / x.subscribers as f64;
                    (v * 100.0).round() / 100.0
                })
            })
            .collect();
        let (mut obs, mut res, mut not, mut rem) = (0u64, 0u64, 0u64, 0u64);
        for d in &days {
            for t in &d.threats {
                obs += t.observed;
                res += t.resolved;
                not += t.notified;
                rem += t.remediated;
            }
        }
        let mut body = String::from("<section>");
        body.push_str(&svg::time_series(
            "chart-rate",
            t(lang, "members.rate_daily"),
            &labels,
            &[Series { name: c.data.member_name(), values: rate }],
            t(lang, "chart.total"),
        ));
        body.push_str(&svg::funnel(
            "chart-funnel",
            t(lang, "members.funnel"),
            &[
                (t(lang, "funnel.observed").into(), obs as f64),
                (t(lang, "funnel.resolved").into(), res as f64),
                (t(lang, "funnel.notified").into(), not as f64),
                (t(lang, "funnel.remediated").into(), rem as f64),
            ],
        ));
        body.push_str("</section>");
        Ok((if lang == Lang::Ja { "駆除状況".into() } else { "Remediation".into() }, body))
    })
    .await
}

fn login_page(lang: Lang, c: &AgentConsole, csrf: &str, failed: bool) -> String {
    let msg = if failed {
        format!(r#"<p class="error" id="login-error">{}</p>"#, esc(t(lang, "login.failed")))
    } else {
        String::new()
    };
    let body = format!(
        r#"<section>{msg}<form method="post" action="/console/login"><input type="hidden" name="csrf" value="{csrf}"><p><label>{ln}<br><input name="name" id="name" required></label></p><p><label>{lp}<br><input name="password" id="password" type="password" required></label></p><p><button id="login-submit">{ls}</button></p></form></section>"#,
        csrf = esc(csrf),
        ln = esc(t(lang, "login.name")),
        lp = esc(t(lang, "login.password")),
        ls = esc(t(lang, "login.submit"))
    );
    layout(lang, c, None, "login", t(lang, "login.title"), &body)
}

async fn login_form(State(c): State<Arc<AgentConsole>>, headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    let Ok(csrf) = auth::random_token() else { return html(StatusCode::INTERNAL_SERVER_ERROR, String::new()) };
    let mut r = html(StatusCode::OK, login_page(lang, &c, &csrf, false));
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(auth::LOGIN_CSRF_COOKIE, &csrf, 3600, c.secure)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login(
    State(c): State<Arc<AgentConsole>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(&headers);
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let pre = auth::cookie(&cookies, auth::LOGIN_CSRF_COOKIE).unwrap_or("").to_owned();
    if pre.is_empty() || !auth::same(&pre, f.get("csrf").map(String::as_str).unwrap_or("")) {
        return html(StatusCode::FORBIDDEN, t(lang, "err.csrf").into());
    }
    let name = f.get("name").cloned().unwrap_or_default();
    let password = f.get("password").cloned().unwrap_or_default();
    let cc = c.clone();
    let found = tokio::task::spawn_blocking(move || {
        cc.users.iter().position(|u| u.name == name && auth::verify_password(&password, &u.password_hash))
    })
    .await
    .ok()
    .flatten();
    let Some(ui) = found else {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        return html(StatusCode::UNAUTHORIZED, login_page(lang, &c, &pre, true));
    };
    let (Ok(token), Ok(csrf)) = (auth::random_token(), auth::random_token()) else {
        return html(StatusCode::INTERNAL_SERVER_ERROR, String::new());
    };
    let expires = Timestamp::from_secs(Timestamp::now().as_secs() + c.ttl_secs);
    c.sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(auth::token_hash(&token), Session { user: ui, csrf, expires });
    let mut r = redirect("/console/cases");
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(auth::SESSION_COOKIE, &token, c.ttl_secs, c.secure)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn logout(
    State(c): State<Arc<AgentConsole>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let Some((_, csrf, h)) = viewer(&c, &headers) else { return StatusCode::UNAUTHORIZED.into_response() };
    if !auth::same(&csrf, f.get("csrf").map(String::as_str).unwrap_or("")) {
        return StatusCode::FORBIDDEN.into_response();
    }
    c.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&h);
    let mut r = redirect("/console/login");
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(auth::SESSION_COOKIE, "", 0, c.secure)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn lang(Query(q): Query<HashMap<String, String>>) -> Response {
    let to = q.get("to").and_then(|s| Lang::from_code(s)).unwrap_or(Lang::En);
    let back = q
        .get("back")
        .filter(|b| b.starts_with("/console/") && !b.contains("//"))
        .cloned()
        .unwrap_or_else(|| "/console/cases".into());
    let mut r = redirect(&back);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}={}; Path=/console; Max-Age=31536000; SameSite=Strict",
        auth::LANG_COOKIE,
        to.code()
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
