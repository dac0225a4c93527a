//! HTML building: escaping, the page layout and the embedded style sheet.

use std::fmt::Write as _;

use kizuna_model::Timestamp;

use crate::i18n::{Lang, t};

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query parameter value.
pub fn url_param(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A time for display (UTC, to the second); "never" for none.
pub fn time(lang: Lang, ts: Option<Timestamp>) -> String {
    match ts {
        Some(ts) if ts.as_micros() > i64::MIN => ts.to_datetime().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        _ => t(lang, "never").to_owned(),
    }
}

/// The embedded style sheet (served at `/console/static/console.css`).
pub const CSS: &str = r#"
:root { font-family: system-ui, "Hiragino Sans", "Noto Sans CJK JP", sans-serif; color: #222; }
body { margin: 0; background: #f6f7f9; }
header { background: #1d3557; color: #fff; padding: .5rem 1rem; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
header a { color: #fff; text-decoration: none; padding: .25rem .5rem; border-radius: 4px; }
header a.active { background: #457b9d; }
header .who { margin-left: auto; font-size: .9rem; }
header form { display: inline; }
header button { background: none; border: 1px solid #fff; color: #fff; border-radius: 4px; cursor: pointer; }
main { padding: 1rem; max-width: 1100px; margin: 0 auto; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 1rem; margin-bottom: 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eee; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.stale { color: #b00020; font-weight: bold; } .ok { color: #2a7a2a; }
.error { color: #b00020; } .notice { color: #2a7a2a; }
.legend { font-size: .85rem; } .legend .key { margin-right: 1rem; white-space: nowrap; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }
figure.chart { margin: 0 0 1rem 0; }
.ranges a { margin-right: 1rem; }
input, select, button { font-size: 1rem; padding: .3rem; }
code { font-size: .85rem; word-break: break-all; }
.verdict-ok { color: #2a7a2a; font-weight: bold; } .verdict-broken { color: #b00020; font-weight: bold; }
"#;

/// The navigation entries: (path below /console, catalogue key, operator only).
pub const NAV: &[(&str, &str, bool)] = &[
    ("overview", "nav.overview", false),
    ("members", "nav.members", false),
    ("indicators", "nav.indicators", false),
    ("search", "nav.search", false),
    ("audit", "nav.audit", true),
    ("users", "nav.users", true),
];

/// Who is looking, for the header.
pub struct Chrome<'a> {
    /// Language.
    pub lang: Lang,
    /// User name and role key, when logged in.
    pub user: Option<(&'a str, &'static str)>,
    /// Operator?
    pub operator: bool,
    /// CSRF token for the logout form.
    pub csrf: &'a str,
    /// Active nav entry.
    pub active: &'a str,
    /// The current path with query (for the language switch to come back to).
    pub here: &'a str,
}

/// A whole page.
pub fn page(c: &Chrome<'_>, title: &str, body: &str) -> String {
    let lang = c.lang;
    let mut s = String::with_capacity(body.len() + 2048);
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="{code}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title} · {app}</title><link rel="stylesheet" href="/console/static/console.css"></head><body><header><strong>{app}</strong><nav>"#,
        code = lang.code(),
        title = esc(title),
        app = esc(t(lang, "app.title")),
    );
    if c.user.is_some() {
        for (path, key, op) in NAV {
            if *op && !c.operator {
                continue;
            }
            let class = if *path == c.active { r#" class="active""# } else { "" };
            let _ = write!(s, r#"<a href="/console/{path}"{class} data-nav="{path}">{}</a>"#, esc(t(lang, key)));
        }
    }
    s.push_str("</nav>");
    let other = if lang == Lang::En { Lang::Ja } else { Lang::En };
    let _ = write!(
        s,
        r#"<span class="who"><a href="/console/lang?to={o}&amp;back={back}" id="lang-switch" hreflang="{o}" lang="{o}">{label}</a>"#,
        o = other.code(),
        back = url_param(c.here),
        label = esc(t(lang, "lang.switch")),
    );
    if let Some((name, role)) = c.user {
        let _ = write!(
            s,
            r#" <span id="whoami" data-user="{n}" data-role="{r}">{n} ({rl})</span> <form method="post" action="/console/logout"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="logout">{lo}</button></form>"#,
            n = esc(name),
            r = role.trim_start_matches("role."),
            rl = esc(t(lang, role)),
            csrf = esc(c.csrf),
            lo = esc(t(lang, "nav.logout")),
        );
    }
    let _ = write!(s, r#"</span></header><main><h1>{}</h1>{body}</main></body></html>"#, esc(title));
    s
}
