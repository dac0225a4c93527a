//! The blocked-site warning page. The resolver's RPZ local-data answer points the blocked name
//! at the agent's page server, so the browser arrives with `Host: <the blocked domain>`: any
//! request whose Host is not one of the agent's own names (nor an IP literal) gets this page,
//! in Japanese or English (`?lang=`, else `Accept-Language`). It says what was blocked and why
//! (the hub's category and reason, from the member's indicator feed), that the site's owner is
//! being told, how to go back and how to opt out (`POST /.kizuna/opt-out`: the subscriber is
//! found from the request's source address through the session logs, and an opt-out is
//! recorded in the consent register, which rebuilds the client zone at once).
//!
//! **No tracking:** the page records one count per category and UTC day
//! ([`AgentStore::count_warning_view`]) and nothing else: not the URL, not the host, not the
//! address. The counts are on `/metrics` (`kizuna_isp_warning_views`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kizuna_model::Timestamp;
use serde::Deserialize;

use crate::agent::Agent;
use crate::consent::{NewConsent, PROTECTIVE_DNS, Status};
use crate::metrics::Metrics;
use crate::resolve::SessionAnswer;
use crate::store::AgentStore;
use crate::{Error, Result};

/// The path the opt-out form posts to (on the blocked host, so it reaches the agent).
pub const OPT_OUT_PATH: &str = "/.kizuna/opt-out";

fn default_refresh() -> u64 {
    60
}

/// `[warning]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarningSection {
    /// The agent's own host names (besides the host of `page.public_base_url`, `localhost` and
    /// IP literals): requests for them get the countermeasure page and console, every other
    /// Host the warning page.
    #[serde(default)]
    pub own_hosts: Vec<String>,
    /// Seconds between syncs of the member's indicator feed (categories for the page).
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

impl Default for WarningSection {
    fn default() -> Self {
        WarningSection { own_hosts: Vec::new(), refresh_secs: default_refresh() }
    }
}

/// One blocked name as the hub published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The domain (lower case).
    pub domain: String,
    /// `classification.type` (malware-distribution, phishing, …).
    pub category: String,
    /// The hub's human-readable reason.
    pub reason: String,
}

#[derive(Default)]
struct Inner {
    by_domain: HashMap<String, Blocked>,
    by_key: HashMap<String, String>,
    since: u64,
}

/// The domains the hub publishes to this member (kept in memory, synced from
/// `/api/v1/indicators/changes`), to tell the warning page what a blocked name is.
#[derive(Default)]
pub struct BlockList(RwLock<Inner>);

impl std::fmt::Debug for BlockList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockList").field("domains", &self.len()).finish()
    }
}

impl BlockList {
    fn r(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn w(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Names known.
    pub fn len(&self) -> usize {
        self.r().by_domain.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds (or replaces) a blocked domain under an indicator key.
    pub fn insert(&self, key: &str, b: Blocked) {
        let mut g = self.w();
        if let Some(old) = g.by_key.insert(key.to_owned(), b.domain.clone())
            && old != b.domain
        {
            g.by_domain.remove(&old);
        }
        g.by_domain.insert(b.domain.clone(), b);
    }

    /// Removes an indicator's domain.
    pub fn remove(&self, key: &str) {
        let mut g = self.w();
        if let Some(d) = g.by_key.remove(key) {
            g.by_domain.remove(&d);
        }
    }

    /// What blocked `host`: the name itself or its nearest listed parent (the zone's
    /// `*.name` triggers block subdomains too).
    pub fn lookup(&self, host: &str) -> Option<Blocked> {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        let g = self.r();
        let mut cur = h.as_str();
        loop {
            if let Some(b) = g.by_domain.get(cur) {
                return Some(b.clone());
            }
            match cur.split_once('.') {
                Some((_, rest)) if !rest.is_empty() => cur = rest,
                _ => return None,
            }
        }
    }

    /// Applies one page of `/api/v1/indicators/changes`; returns (changes, more).
    pub fn apply_changes(&self, page: &serde_json::Value) -> (usize, bool) {
        let changes = page.get("changes").and_then(|c| c.as_array()).cloned().unwrap_or_default();
        for c in &changes {
            let Some(key) = c.get("key").and_then(|k| k.as_str()) else { continue };
            let s = |f: &str| c.get(f).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            let published = c.get("published").and_then(|p| p.as_bool()).unwrap_or(false);
            let domain = match s("kind").as_str() {
                "domain" => Some(s("value")),
                "url" if s("granularity") == "host" => kizuna_model::url_host(&s("value")).map(str::to_owned),
                _ => None,
            };
            match domain.filter(|_| published).and_then(|d| kizuna_model::canonical_domain(&d)) {
                Some(domain) => self.insert(key, Blocked { domain, category: s("category"), reason: s("reason") }),
                None => self.remove(key),
            }
        }
        let next = page.get("next").and_then(|n| n.as_u64());
        if let Some(n) = next {
            let mut g = self.w();
            g.since = g.since.max(n);
        }
        (changes.len(), page.get("more").and_then(|m| m.as_bool()).unwrap_or(false))
    }

    /// The change sequence synced so far.
    pub fn since(&self) -> u64 {
        self.r().since
    }
}

impl Agent {
    /// Pulls the member's indicator changes since the last sync into the block list.
    pub async fn sync_blocklist(&self) -> Result<usize> {
        let hub = self.hub()?;
        let mut total = 0;
        for _ in 0..100 {
            let page = hub.indicator_changes(self.blocklist.since()).await?;
            let (n, more) = self.blocklist.apply_changes(&page);
            total += n;
            if !more || n == 0 {
                break;
            }
        }
        Ok(total)
    }
}

/// True when `host` (a Host header, maybe with a port) is the agent's own name.
pub fn is_own_host(agent: &Agent, host: &str) -> bool {
    let h = host.trim();
    let name = if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().is_some_and(|a| a.parse::<IpAddr>().is_ok());
    } else {
        h.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(h, |(n, _)| n)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || name == "localhost" || name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let base = agent.config.page.public_base_url.split("://").nth(1).unwrap_or("");
    let base_host = base.split(['/', ':']).next().unwrap_or("").to_ascii_lowercase();
    name == base_host || agent.config.warning.own_hosts.iter().any(|o| o.eq_ignore_ascii_case(&name))
}

/// Middleware on the page server: a foreign Host gets the warning page (every path).
pub async fn dispatch(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_owned();
    if is_own_host(&agent, &host) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let path = parts.uri.path().to_owned();
    if parts.method == Method::POST && path == OPT_OUT_PATH {
        let body = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
        return opt_out(agent, &parts.headers, peer, &body).await;
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    show(agent, &parts.headers, &host, &query, peer).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Ja,
    En,
}

fn lang_of(headers: &HeaderMap, query: &str) -> Lang {
    for kv in query.split('&') {
        match kv {
            "lang=en" => return Lang::En,
            "lang=ja" => return Lang::Ja,
            _ => {}
        }
    }
    let al = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // the first of ja/en in the list (quality order as the browser wrote it)
    for part in al.split(',') {
        let tag = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if tag.starts_with("ja") {
            return Lang::Ja;
        }
        if tag.starts_with("en") {
            return Lang::En;
        }
    }
    Lang::Ja
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn category_label(lang: Lang, c: &str) -> String {
    let (ja, en) = match c {
        "malware-distribution" => ("マルウェア(ウイルス)の配布", "distributing malware"),
        "phishing" => ("フィッシング(偽サイトによる情報の詐取)", "phishing (a fake site that steals information)"),
        "c2-server" => ("マルウェアの指令サーバ", "a malware command-and-control server"),
        "exploit" => ("ブラウザの脆弱性を突く攻撃", "attacking browser vulnerabilities"),
        "compromised" | "system-compromise" => ("改ざんされたサイト", "a compromised website"),
        "" | "unknown" => ("有害なサイト", "a harmful site"),
        other => return other.to_owned(),
    };
    if lang == Lang::Ja { ja.into() } else { en.into() }
}

/// A per-address, per-day form token: a cross-site page cannot read it, so it cannot opt a
/// subscriber out behind their back.
fn form_token(secret: &[u8; 32], peer: Option<IpAddr>, now: Timestamp) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(secret);
    h.update(peer.map(|p| p.to_string()).unwrap_or_default().as_bytes());
    h.update(crate::clock::day_of(now).as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn secret() -> &'static [u8; 32] {
    static S: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let mut b = [0u8; 32];
        if getrandom::fill(&mut b).is_err() {
            // Without randomness the token is still per address and day; opting out stays possible.
            b = [7u8; 32];
        }
        b
    })
}

fn page(lang: Lang, agent: &Agent, title: &str, body: &str) -> Response {
    let other = if lang == Lang::Ja { ("en", "English") } else { ("ja", "日本語") };
    let html = format!(
        r#"<!DOCTYPE html><html lang="{code}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex"><title>{t}</title><style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.6;color:#222}}h1{{color:#b00020;font-size:1.5em}}.box{{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}}code{{word-break:break-all}}button{{font-size:1em;padding:.4em 1em}}</style></head><body><p style="text-align:right"><a id="lang-switch" href="?lang={oc}">{on}</a></p><h1>{t}</h1>{body}<p><small>{isp}</small></p></body></html>"#,
        code = if lang == Lang::Ja { "ja" } else { "en" },
        t = esc(title),
        oc = other.0,
        on = other.1,
        isp = esc(&agent.config.page.isp_name),
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response()
}

fn host_only(host: &str) -> String {
    let h = host.trim();
    h.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(h, |(n, _)| n).to_owned()
}

async fn show(agent: Arc<Agent>, headers: &HeaderMap, host: &str, query: &str, peer: Option<IpAddr>) -> Response {
    let lang = lang_of(headers, query);
    let name = host_only(host);
    let blocked = agent.blocklist.lookup(&name);
    let category = blocked.as_ref().map(|b| b.category.clone()).filter(|c| !c.is_empty()).unwrap_or("unknown".into());
    let counted = category.clone();
    let a = agent.clone();
    let now = agent.clock.now();
    if let Err(e) = tokio::task::spawn_blocking(move || a.store.count_warning_view(&counted, now))
        .await
        .unwrap_or_else(|e| Err(Error::Store(e.to_string())))
    {
        tracing::warn!("counting a warning-page view: {e}");
    }
    Metrics::inc(&agent.metrics.warning_views, &category, 1);
    let reason = blocked.as_ref().map(|b| b.reason.clone()).unwrap_or_default();
    let token = form_token(secret(), peer, now);
    let support = &agent.config.page.support_contact;
    let mut b = String::new();
    let cat = category_label(lang, &category);
    if lang == Lang::Ja {
        let _ = write!(
            b,
            r#"<div class="box"><p>次のサイトは危険なため、表示を止めました。</p><p><code id="blocked-host">{h}</code></p><p>理由: <strong id="category" data-category="{c}">{cl}</strong></p>{r}<p>このサイトの管理者には、セキュリティ情報共有の枠組み(ISAC)を通じて通知しています。</p></div>
<h2>これからどうすればよいですか</h2><p>ブラウザの「戻る」ボタンで前のページに戻ってください。このサイトで入力したパスワードがあれば、別の安全な端末から変更してください。</p>
<h2>記録について</h2><p id="no-tracking">この画面は、あなたが開こうとしたURLやサイト名、あなたの回線を記録しません。数えているのは、理由の種類ごとの1日の表示件数だけです。</p>
<h2>この保護をやめるには</h2><p>この保護(危険なサイトの警告表示)は、いつでもやめられます。やめると、危険なサイトもそのまま表示されます。</p><form method="post" action="{p}"><input type="hidden" name="token" value="{t}"><input type="hidden" name="lang" value="ja"><button id="opt-out">警告表示をやめる(オプトアウト)</button></form>{s}"#,
            h = esc(&name),
            c = esc(&category),
            cl = esc(&cat),
            r = if reason.is_empty() { String::new() } else { format!("<p>詳細: {}</p>", esc(&reason)) },
            p = OPT_OUT_PATH,
            t = token,
            s = if support.is_empty() { String::new() } else { format!("<p>お問い合わせ: {}</p>", esc(support)) },
        );
        page(lang, &agent, "危険なサイトへのアクセスを止めました", &b)
    } else {
        let _ = write!(
            b,
            r#"<div class="box"><p>We stopped this site from loading because it is dangerous:</p><p><code id="blocked-host">{h}</code></p><p>Why: <strong id="category" data-category="{c}">{cl}</strong></p>{r}<p>The site's owner is being told through the security information-sharing network (ISAC).</p></div>
<h2>What should I do?</h2><p>Use your browser's Back button to return to the previous page. If you typed a password into this site, change it from another, safe device.</p>
<h2>What is recorded</h2><p id="no-tracking">This page does not record the URL or site you tried to open, nor your line. It only counts how many times it was shown per day and kind of threat.</p>
<h2>Turning this protection off</h2><p>You can turn this protection (warnings for dangerous sites) off at any time. Dangerous sites will then open without a warning.</p><form method="post" action="{p}"><input type="hidden" name="token" value="{t}"><input type="hidden" name="lang" value="en"><button id="opt-out">Stop the warnings (opt out)</button></form>{s}"#,
            h = esc(&name),
            c = esc(&category),
            cl = esc(&cat),
            r = if reason.is_empty() { String::new() } else { format!("<p>Details: {}</p>", esc(&reason)) },
            p = OPT_OUT_PATH,
            t = token,
            s = if support.is_empty() { String::new() } else { format!("<p>Contact: {}</p>", esc(support)) },
        );
        page(lang, &agent, "This site was blocked for your safety", &b)
    }
}

/// Records an opt-out for the subscriber holding `peer` now.
fn record_opt_out(agent: &Agent, store: &AgentStore, peer: IpAddr, now: Timestamp) -> Result<Option<String>> {
    let key = match agent.sessions.lookup(peer, None, now) {
        SessionAnswer::Key { key, .. } => key,
        SessionAnswer::Unresolved(_) => return Ok(None),
    };
    let Some(sub) = store.subscriber_for_key(&key)? else { return Ok(None) };
    store.record_consent(
        &NewConsent {
            subscriber: sub.clone(),
            service: PROTECTIVE_DNS.into(),
            status: Status::OptOut,
            at: now,
            channel: "warning-page".into(),
            policy_version: agent.config.consent.policy_version.clone(),
            basis: agent.config.consent.default_basis,
        },
        now,
        "warning-page",
    )?;
    Ok(Some(sub))
}

async fn opt_out(agent: Arc<Agent>, headers: &HeaderMap, peer: Option<IpAddr>, body: &[u8]) -> Response {
    let form: HashMap<String, String> = serde_urlencoded_pairs(body);
    let lang = match form.get("lang").map(String::as_str) {
        Some("en") => Lang::En,
        Some("ja") => Lang::Ja,
        _ => lang_of(headers, ""),
    };
    let now = agent.clock.now();
    let ok_token = form.get("token").is_some_and(|t| *t == form_token(secret(), peer, now));
    let msg = |ja: &str, en: &str| if lang == Lang::Ja { ja.to_owned() } else { en.to_owned() };
    if !ok_token {
        Metrics::inc(&agent.metrics.consent_changes, "refused", 1);
        let body = format!(
            r#"<p id="opt-out-result" data-result="refused">{}</p>"#,
            esc(&msg(
                "フォームの有効期限が切れました。もう一度警告画面から操作してください。",
                "This form has expired. Please try again from the warning page."
            ))
        );
        let mut r = page(lang, &agent, &msg("操作できませんでした", "Not done"), &body);
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let Some(peer) = peer else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let a = agent.clone();
    let out = tokio::task::spawn_blocking(move || record_opt_out(&a, &a.store, peer, now)).await;
    let (result, text) = match out {
        Ok(Ok(Some(_))) => {
            agent.consent_changed.notify_one();
            Metrics::inc(&agent.metrics.consent_changes, Status::OptOut.as_str(), 1);
            (
                "opted-out",
                msg(
                    "警告表示をやめました。数秒後から、危険なサイトもそのまま表示されます。再開したいときはサポート窓口にご連絡ください。",
                    "The warnings are off. Within seconds, dangerous sites will open without a warning. Contact our support desk to turn them back on.",
                ),
            )
        }
        Ok(Ok(None)) => (
            "unknown-line",
            msg(
                "お使いの回線を確認できませんでした。お手数ですがサポート窓口にご連絡ください。",
                "We could not identify your line. Please contact our support desk.",
            ),
        ),
        Ok(Err(e)) => {
            tracing::error!("recording an opt-out: {e}");
            ("error", msg("ただいま処理できません。", "This cannot be done right now."))
        }
        Err(_) => ("error", msg("ただいま処理できません。", "This cannot be done right now.")),
    };
    let body = format!(r#"<p id="opt-out-result" data-result="{result}">{}</p>"#, esc(&text));
    page(lang, &agent, &msg("警告表示の設定", "Warning settings"), &body)
}

/// Parses an `application/x-www-form-urlencoded` body.
fn serde_urlencoded_pairs(body: &[u8]) -> HashMap<String, String> {
    let s = String::from_utf8_lossy(body);
    let mut out = HashMap::new();
    for kv in s.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        out.insert(pct_decode(k), pct_decode(v));
    }
    out
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 3 <= b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match (b[i], hex) {
            (_, Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_parents_and_forgets_withdrawn() {
        let l = BlockList::default();
        let page = serde_json::json!({"next": 5, "more": false, "changes": [
            {"key": "k1", "kind": "domain", "value": "malware.example", "category": "malware-distribution",
             "reason": "serves a dropper", "published": true},
            {"key": "k2", "kind": "url", "value": "http://evil.example/x", "category": "phishing", "granularity": "host",
             "published": true},
            {"key": "k3", "kind": "url", "value": "http://shared.example/x", "category": "phishing", "granularity": "url",
             "published": true},
        ]});
        assert_eq!(l.apply_changes(&page), (3, false));
        assert_eq!(l.since(), 5);
        assert_eq!(l.lookup("www.malware.example").map(|b| b.category), Some("malware-distribution".into()));
        assert_eq!(l.lookup("EVIL.example.").map(|b| b.category), Some("phishing".into()));
        assert_eq!(l.lookup("shared.example"), None, "a URL-only indicator does not block its host");
        assert_eq!(l.lookup("example"), None);
        l.apply_changes(&serde_json::json!({"next": 6, "changes": [{"key": "k1"}]}));
        assert_eq!(l.lookup("malware.example"), None);
    }

    #[test]
    fn form_bodies_decode() {
        let f = serde_urlencoded_pairs(b"token=ab%20c&lang=en&x=%zz&y=a+b&z=%4");
        assert_eq!(f["token"], "ab c");
        assert_eq!(f["x"], "%zz");
        assert_eq!(f["y"], "a b");
        assert_eq!(f["z"], "%4");
    }
}
