//! The hub's web console: server-rendered HTML pages with inline SVG charts, in English and
//! Japanese, behind a login with roles. Nothing is fetched from the internet: the style sheet
//! is embedded and charts are drawn on the server.
//!
//! Mount [`router`] (paths under `/console/`) into the hub's router. Pages read the store's
//! console aggregates ([`kizuna_store::console`]), kept in the batch's own transaction, never
//! scanning observations per request.
//!
//! Authorisation (checked on every request, tested in `tests/authz.rs`):
//! - no or unknown or expired session → GET redirects to the login page, POST is 401;
//! - operator pages (`/console/audit`, `/console/users`) → 403 for analysts and read-only users;
//! - every POST needs the session's CSRF token; read-only users may POST only `logout`;
//! - a member's staff (user bound to a member) see their own member only; other members are
//!   anonymised on the national chart; search shows them only observations routed to them that
//!   the audience rule lets them receive.
//!
//! The ISP agent's console is [`agent::router`], generic over [`agent::AgentData`].

pub mod agent;
pub mod auth;
pub mod html;
pub mod i18n;
mod pages;
pub mod svg;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use kizuna_model::{MemberId, Timestamp};
use kizuna_store::console::{ConsoleUser, Role};
use kizuna_store::{AuditRecord, HubStore, StoreError};

pub use auth::PasswordCost;
use i18n::{Lang, t};

/// Console settings.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// A sensor with nothing received for longer than this is flagged stale.
    pub stale_after_secs: i64,
    /// Session lifetime.
    pub session_ttl_secs: i64,
    /// Mark cookies `Secure` (set when the hub is served over TLS or behind a TLS proxy).
    pub secure_cookies: bool,
    /// Argon2 cost for passwords set from the console.
    pub password_cost: PasswordCost,
    /// Base URLs of DNS primaries' HTTP APIs whose zones the indicators page shows.
    pub dns_apis: Vec<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            stale_after_secs: 6 * 3600,
            session_ttl_secs: 8 * 3600,
            secure_cookies: false,
            password_cost: PasswordCost::default(),
            dns_apis: Vec::new(),
        }
    }
}

/// The console over a hub store.
pub struct Console {
    store: Arc<dyn HubStore>,
    config: ConsoleConfig,
}

impl Console {
    /// A console reading `store`.
    pub fn new(store: Arc<dyn HubStore>, config: ConsoleConfig) -> Arc<Console> {
        Arc::new(Console { store, config })
    }
}

/// Adds a console user (the CLI's `kizuna console user add`): hashes the password with
/// argon2id and records the change in the audit log.
pub fn add_user(
    store: &dyn HubStore,
    name: &str,
    role: Role,
    member: Option<MemberId>,
    password: &str,
    cost: PasswordCost,
    actor: &str,
) -> Result<ConsoleUser, UserError> {
    let hash = auth::hash_password(password, cost)?;
    let u = store.add_console_user(name, role, member, &hash, Timestamp::now())?;
    store.append_audit(&AuditRecord {
        at: Timestamp::now(),
        actor: actor.to_owned(),
        action: "console.user.add".into(),
        subject: format!("console-user:{name}"),
        detail: serde_json::json!({"role": role.as_str(), "member": member.map(|m| m.0)}).to_string(),
    })?;
    Ok(u)
}

/// Errors adding a user.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Password problems.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every console route, under `/console/`. Works in any router whose state is `S`.
pub fn router<S: Clone + Send + Sync + 'static>(console: Arc<Console>) -> Router<S> {
    Router::new()
        .route("/console", get(root))
        .route("/console/", get(root))
        .route("/console/static/console.css", get(css))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang", get(lang))
        .route("/console/overview", get(pages::overview))
        .route("/console/members", get(pages::members))
        .route("/console/members/{name}", get(pages::member))
        .route("/console/indicators", get(pages::indicators))
        .route("/console/search", get(pages::search))
        .route("/console/audit", get(pages::audit))
        .route("/console/users", get(pages::users).post(pages::users_post))
        .with_state(console)
}

/// Who is looking.
pub(crate) struct Viewer {
    pub user: ConsoleUser,
    pub csrf: String,
    pub lang: Lang,
    pub token_hash: [u8; 32],
}

impl Viewer {
    /// Hub operators only: a member's staff never get operator pages, whatever their role.
    pub fn is_operator(&self) -> bool {
        self.user.role == Role::Operator && self.user.member.is_none()
    }

    pub fn role_key(&self) -> &'static str {
        match self.user.role {
            Role::Operator => "role.operator",
            Role::Analyst => "role.analyst",
            Role::ReadOnly => "role.read-only",
        }
    }
}

/// Which users a page admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Any logged-in user.
    Any,
    /// Operators only.
    Operator,
}

/// Why a page was not rendered.
pub(crate) enum PageError {
    Forbidden,
    NotFound,
    BadRequest(String),
    Csrf,
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Store(e)
    }
}

/// A rendered page.
pub(crate) struct Page {
    pub title: String,
    pub active: &'static str,
    pub body: String,
}

pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(l) = auth::cookie(cookies, auth::LANG_COOKIE).and_then(Lang::from_code) {
        return l;
    }
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map_or(Lang::En, Lang::from_accept_language)
}

fn session_of(c: &Console, headers: &HeaderMap) -> Result<Option<Viewer>, StoreError> {
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(token) = auth::cookie(cookies, auth::SESSION_COOKIE) else { return Ok(None) };
    let h = auth::token_hash(token);
    Ok(c.store.console_session(&h, Timestamp::now())?.map(|s| Viewer {
        user: s.user,
        csrf: s.csrf,
        lang: lang_of(headers),
        token_hash: h,
    }))
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    r
}

fn error_page(lang: Lang, viewer: Option<&Viewer>, status: StatusCode, key: &'static str, extra: &str) -> Response {
    let chrome = html::Chrome {
        lang,
        user: viewer.map(|v| (v.user.name.as_str(), v.role_key())),
        operator: viewer.is_some_and(|v| v.is_operator()),
        csrf: viewer.map_or("", |v| v.csrf.as_str()),
        active: "",
        here: "/console/overview",
    };
    let body = format!(
        r#"<section><p class="error" id="error">{}</p>{}</section>"#,
        html::esc(t(lang, key)),
        html::esc(extra)
    );
    html_response(status, html::page(&chrome, t(lang, key), &body))
}

fn here_of(uri: &Uri) -> String {
    uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

/// Renders a GET page for a logged-in user the rule admits.
pub(crate) async fn guarded(
    c: Arc<Console>,
    headers: HeaderMap,
    uri: Uri,
    rule: Rule,
    f: impl FnOnce(&Console, &Viewer) -> Result<Page, PageError> + Send + 'static,
) -> Response {
    let here = here_of(&uri);
    let lang = lang_of(&headers);
    let out = tokio::task::spawn_blocking(move || {
        let viewer = match session_of(&c, &headers) {
            Ok(Some(v)) => v,
            Ok(None) => return Err(None),
            Err(e) => return Err(Some((None, PageError::Store(e)))),
        };
        if rule == Rule::Operator && !viewer.is_operator() {
            return Err(Some((Some(Box::new(viewer)), PageError::Forbidden)));
        }
        match f(&c, &viewer) {
            Ok(p) => Ok((viewer, p)),
            Err(e) => Err(Some((Some(Box::new(viewer)), e))),
        }
    })
    .await;
    match out {
        Ok(Ok((v, p))) => {
            let chrome = html::Chrome {
                lang: v.lang,
                user: Some((v.user.name.as_str(), v.role_key())),
                operator: v.is_operator(),
                csrf: &v.csrf,
                active: p.active,
                here: &here,
            };
            html_response(StatusCode::OK, html::page(&chrome, &p.title, &p.body))
        }
        Ok(Err(None)) => redirect(&format!("/console/login?next={}", html::url_param(&here))),
        Ok(Err(Some((v, e)))) => page_error(lang, v.as_deref(), e),
        Err(e) => {
            tracing::error!("console worker: {e}");
            error_page(lang, None, StatusCode::INTERNAL_SERVER_ERROR, "err.store", "")
        }
    }
}

fn page_error(lang: Lang, v: Option<&Viewer>, e: PageError) -> Response {
    match e {
        PageError::Forbidden => error_page(lang, v, StatusCode::FORBIDDEN, "err.forbidden", ""),
        PageError::NotFound => error_page(lang, v, StatusCode::NOT_FOUND, "err.notfound", ""),
        PageError::BadRequest(m) => error_page(lang, v, StatusCode::BAD_REQUEST, "err.bad_request", &m),
        PageError::Csrf => error_page(lang, v, StatusCode::FORBIDDEN, "err.csrf", ""),
        PageError::Store(e) => {
            tracing::error!("console store: {e}");
            error_page(lang, v, StatusCode::SERVICE_UNAVAILABLE, "err.store", "")
        }
    }
}

/// Handles a POST for a logged-in user: checks the CSRF token, then the rule; read-only users
/// are refused unless `read_only_ok`. `f` returns where to redirect to.
pub(crate) async fn guarded_post(
    c: Arc<Console>,
    headers: HeaderMap,
    form: HashMap<String, String>,
    rule: Rule,
    read_only_ok: bool,
    f: impl FnOnce(&Console, &Viewer, &HashMap<String, String>) -> Result<Response, PageError> + Send + 'static,
) -> Response {
    let lang = lang_of(&headers);
    let out = tokio::task::spawn_blocking(move || {
        let viewer = match session_of(&c, &headers) {
            Ok(Some(v)) => v,
            Ok(None) => return Err(None),
            Err(e) => return Err(Some((None, PageError::Store(e)))),
        };
        let token = form.get("csrf").map(String::as_str).unwrap_or("");
        if !auth::same(token, &viewer.csrf) {
            return Err(Some((Some(Box::new(viewer)), PageError::Csrf)));
        }
        if (rule == Rule::Operator && !viewer.is_operator()) || (!read_only_ok && viewer.user.role == Role::ReadOnly) {
            return Err(Some((Some(Box::new(viewer)), PageError::Forbidden)));
        }
        match f(&c, &viewer, &form) {
            Ok(r) => Ok(r),
            Err(e) => Err(Some((Some(Box::new(viewer)), e))),
        }
    })
    .await;
    match out {
        Ok(Ok(r)) => r,
        Ok(Err(None)) => error_page(lang, None, StatusCode::UNAUTHORIZED, "login.expired", ""),
        Ok(Err(Some((v, e)))) => page_error(lang, v.as_deref(), e),
        Err(e) => {
            tracing::error!("console worker: {e}");
            error_page(lang, None, StatusCode::INTERNAL_SERVER_ERROR, "err.store", "")
        }
    }
}

async fn root() -> Response {
    redirect("/console/overview")
}

async fn css() -> Response {
    let mut r = html::CSS.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    r
}

/// A safe place to go back to: a path under /console/ (no scheme, no host).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console/")
                && !n.contains("//")
                && !n.contains('\\')
                && !n.starts_with("/console/login") =>
        {
            n.to_owned()
        }
        _ => "/console/overview".to_owned(),
    }
}

fn login_page(lang: Lang, csrf: &str, next: &str, message: Option<&'static str>) -> String {
    let chrome = html::Chrome { lang, user: None, operator: false, csrf: "", active: "", here: "/console/login" };
    let msg = message
        .map_or(String::new(), |m| format!(r#"<p class="error" id="login-error">{}</p>"#, html::esc(t(lang, m))));
    let body = format!(
        r#"<section>{msg}<form method="post" action="/console/login" id="login-form"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}"><p><label>{ln}<br><input name="name" id="name" autocomplete="username" required></label></p><p><label>{lp}<br><input name="password" id="password" type="password" autocomplete="current-password" required></label></p><p><button type="submit" id="login-submit">{ls}</button></p></form></section>"#,
        csrf = html::esc(csrf),
        next = html::esc(next),
        ln = html::esc(t(lang, "login.name")),
        lp = html::esc(t(lang, "login.password")),
        ls = html::esc(t(lang, "login.submit")),
    );
    html::page(&chrome, t(lang, "login.title"), &body)
}

async fn login_form(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(&headers);
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let existing = auth::cookie(cookies, auth::LOGIN_CSRF_COOKIE).filter(|v| v.len() >= 32).map(str::to_owned);
    let csrf = match existing {
        Some(v) => v,
        None => match auth::random_token() {
            Ok(t) => t,
            Err(_) => return error_page(lang, None, StatusCode::INTERNAL_SERVER_ERROR, "err.store", ""),
        },
    };
    let next = safe_next(q.get("next").map(String::as_str));
    let mut r = html_response(StatusCode::OK, login_page(lang, &csrf, &next, None));
    if let Ok(v) =
        HeaderValue::from_str(&auth::set_cookie(auth::LOGIN_CSRF_COOKIE, &csrf, 3600, c.config.secure_cookies))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(&headers);
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let pre = auth::cookie(&cookies, auth::LOGIN_CSRF_COOKIE).unwrap_or("").to_owned();
    let sent = form.get("csrf").cloned().unwrap_or_default();
    if pre.is_empty() || !auth::same(&pre, &sent) {
        return error_page(lang, None, StatusCode::FORBIDDEN, "err.csrf", "");
    }
    let name = form.get("name").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let next = safe_next(form.get("next").map(String::as_str));
    let cc = c.clone();
    let out = tokio::task::spawn_blocking(move || -> Result<Option<String>, StoreError> {
        let user = cc.store.console_user(&name)?;
        let now = Timestamp::now();
        let ok = match &user {
            Some(u) if !u.disabled => auth::verify_password(&password, &u.password_hash),
            _ => {
                // Same work for unknown users, so timing does not tell which names exist.
                let _ = auth::verify_password(&password, dummy_hash());
                false
            }
        };
        cc.store.append_audit(&AuditRecord {
            at: now,
            actor: format!("console:{name}"),
            action: if ok { "console.login".into() } else { "console.login.failed".into() },
            subject: format!("console-user:{name}"),
            detail: "{}".into(),
        })?;
        let Some(u) = user.filter(|_| ok) else { return Ok(None) };
        let token = auth::random_token().map_err(|e| StoreError::Backend(e.to_string()))?;
        let csrf = auth::random_token().map_err(|e| StoreError::Backend(e.to_string()))?;
        let expires = Timestamp::from_micros(now.as_micros() + cc.config.session_ttl_secs * 1_000_000);
        cc.store.create_console_session(&auth::token_hash(&token), u.id, &csrf, now, expires)?;
        let _ = cc.store.purge_console_sessions(now);
        Ok(Some(token))
    })
    .await;
    match out {
        Ok(Ok(Some(token))) => {
            let mut r = redirect(&next);
            let h = r.headers_mut();
            let secure = c.config.secure_cookies;
            if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(
                auth::SESSION_COOKIE,
                &token,
                c.config.session_ttl_secs,
                secure,
            )) {
                h.append(header::SET_COOKIE, v);
            }
            if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(auth::LOGIN_CSRF_COOKIE, "", 0, secure)) {
                h.append(header::SET_COOKIE, v);
            }
            r
        }
        Ok(Ok(None)) => {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            html_response(StatusCode::UNAUTHORIZED, login_page(lang, &pre, &next, Some("login.failed")))
        }
        Ok(Err(e)) => page_error(lang, None, PageError::Store(e)),
        Err(_) => error_page(lang, None, StatusCode::INTERNAL_SERVER_ERROR, "err.store", ""),
    }
}

/// An argon2id hash of a random password (default cost), verified against for unknown users.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        let pw = auth::random_token().unwrap_or_else(|_| "kizuna-dummy-password".into());
        auth::hash_password(&pw, PasswordCost::default()).unwrap_or_default()
    })
}

async fn logout(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let secure = c.config.secure_cookies;
    let mut r = guarded_post(c, headers, form, Rule::Any, true, |c, v, _| {
        c.store.delete_console_session(&v.token_hash)?;
        Ok(redirect("/console/login"))
    })
    .await;
    if r.status() == StatusCode::SEE_OTHER
        && let Ok(v) = HeaderValue::from_str(&auth::set_cookie(auth::SESSION_COOKIE, "", 0, secure))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn lang(State(c): State<Arc<Console>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let to = q.get("to").and_then(|s| Lang::from_code(s)).unwrap_or(Lang::En);
    let back = safe_next(q.get("back").map(String::as_str));
    let back =
        if q.get("back").is_some_and(|b| b.starts_with("/console/login")) { "/console/login".to_owned() } else { back };
    let mut r = redirect(&back);
    let cookie = format!(
        "{}={}; Path=/console; Max-Age=31536000; SameSite=Strict{}",
        auth::LANG_COOKIE,
        to.code(),
        if c.config.secure_cookies { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub(crate) type Params = Query<HashMap<String, String>>;
pub(crate) type FormData = Form<HashMap<String, String>>;
pub(crate) type PathParam = Path<String>;

/// GET `url` over plain HTTP/1.1 (loopback or management network; 2 s timeouts). Returns the
/// body of a 200 answer.
fn http_get(url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (hostport, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport}: no address"))?;
    let timeout = std::time::Duration::from_secs(2);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{hostport}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nAccept: application/json\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.take(16 << 20).read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(head.lines().next().unwrap_or("").to_owned());
    }
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // De-chunk.
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body.to_owned())
}

/// The zones table of the indicators page, from each DNS primary's `/api/v1/dns/zones`.
pub(crate) fn zones_html(lang: Lang, apis: &[String]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        r#"<table id="zones-table"><tr><th>zone</th><th>member</th><th class="num">serial</th><th class="num">records</th><th class="num">triggers</th><th>IXFR from</th><th>secondaries (NOTIFY)</th></tr>"#,
    );
    for api in apis {
        let url = format!("{}/api/v1/dns/zones", api.trim_end_matches('/'));
        match http_get(&url).and_then(|b| serde_json::from_str::<Vec<serde_json::Value>>(&b).map_err(|e| e.to_string()))
        {
            Ok(zones) => {
                for z in zones {
                    let g = |k: &str| {
                        z.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).unwrap_or_default()
                    };
                    let list = |k: &str| {
                        z.get(k)
                            .and_then(|v| v.as_array())
                            .map(|a| {
                                a.iter()
                                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default()
                    };
                    let _ = write!(
                        s,
                        r#"<tr class="zone" data-zone="{zone}" data-serial="{serial}"><td>{zone}</td><td>{member}</td><td class="num">{serial}</td><td class="num">{records}</td><td class="num">{triggers}</td><td>{ixfr}</td><td>{notify}</td></tr>"#,
                        zone = html::esc(&g("zone")),
                        member = html::esc(&g("member")),
                        serial = html::esc(&g("serial")),
                        records = html::esc(&g("records")),
                        triggers = html::esc(&g("triggers")),
                        ixfr = html::esc(&list("ixfr_from")),
                        notify = html::esc(&list("notify")),
                    );
                }
            }
            Err(e) => {
                let _ = write!(
                    s,
                    r#"<tr class="zone-error"><td colspan="7" class="error">{}: {}</td></tr>"#,
                    html::esc(&url),
                    html::esc(&e)
                );
            }
        }
    }
    let _ = lang;
    s.push_str("</table>");
    s
}
