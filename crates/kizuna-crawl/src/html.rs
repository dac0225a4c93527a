//! What a browser would load next from a page, found without running anything: meta refresh,
//! `location` assignments with string literals in inline scripts, iframes (hidden ones marked),
//! cross-host scripts, plug-in objects, and links to executable downloads.
//!
//! Parsing is streaming (`lol_html`): no tree is built, malformed markup never fails the page
//! (a parser error keeps what was found before it and is reported).

use std::cell::RefCell;
use std::sync::LazyLock;

use std::borrow::Cow;

use lol_html::{ElementContentHandlers, HtmlRewriter, Selector, Settings, text};
use regex::Regex;

/// Why a URL was followed: the edge label of the chain graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// HTTP 3xx with `Location` (the status code).
    Redirect(u16),
    /// `<meta http-equiv="refresh">` or a `Refresh:` header.
    MetaRefresh,
    /// `location = "…"`, `location.href = …`, `location.replace(…)` in a script.
    JsLocation,
    /// `<iframe src>` / `<frame src>` (also written by `document.write` in a script).
    Iframe,
    /// `<script src>` from another host.
    ScriptSrc,
    /// `<object data>`, `<embed src>`, `<applet>`: plug-in content.
    Embed,
    /// A link to an executable or archive (`<a href="….exe">`).
    Download,
}

impl Reason {
    /// The label written to the graph and to `extra.crawl.reason`.
    pub fn as_str(&self) -> String {
        match self {
            Reason::Redirect(c) => format!("redirect-{c}"),
            Reason::MetaRefresh => "meta-refresh".into(),
            Reason::JsLocation => "js-location".into(),
            Reason::Iframe => "iframe".into(),
            Reason::ScriptSrc => "script-src".into(),
            Reason::Embed => "embed".into(),
            Reason::Download => "download".into(),
        }
    }

    /// Whether content at the target would be loaded without a click (everything but a link).
    pub fn automatic(&self) -> bool {
        !matches!(self, Reason::Download)
    }
}

/// A URL found in a page, still relative to the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The URL as written.
    pub url: String,
    /// How it was found.
    pub reason: Reason,
    /// For iframes: zero-size or styled invisible.
    pub hidden: bool,
}

/// The result of scanning one page.
#[derive(Debug, Default, Clone)]
pub struct PageLinks {
    /// What would be loaded next, in document order.
    pub found: Vec<Found>,
    /// The parser stopped early (the reason); what was found before is kept.
    pub parse_error: Option<String>,
    /// Inline script bytes seen.
    pub script_bytes: usize,
}

static JS_LOCATION: LazyLock<Regex> = LazyLock::new(|| {
    // Assignments to location / location.href (any of window., document., top., self., parent.),
    // and location.replace(…) / location.assign(…), with a string literal.
    #[allow(clippy::unwrap_used)]
    Regex::new(
        r#"\blocation(?:\.href)?\s*=\s*(?:"([^"\n]{1,2048})"|'([^'\n]{1,2048})')|\blocation\.(?:replace|assign)\s*\(\s*(?:"([^"\n]{1,2048})"|'([^'\n]{1,2048})')"#,
    )
    .unwrap()
});

static JS_IFRAME: LazyLock<Regex> = LazyLock::new(|| {
    // document.write('<iframe src="…" …>') and the like: an iframe written by script.
    #[allow(clippy::unwrap_used)]
    Regex::new(r#"(?i)<i?frame\b[^>]{0,512}?\bsrc\s*=\s*\\?["']?([^"'\\\s>]{1,2048})[^>]{0,512}"#).unwrap()
});

const DOWNLOAD_EXT: &[&str] = &[
    ".exe", ".scr", ".com", ".pif", ".msi", ".dll", ".bat", ".cmd", ".vbs", ".js", ".jse", ".hta", ".ps1", ".jar",
    ".apk", ".zip", ".rar", ".7z", ".cab", ".swf", ".pdf", ".doc", ".xls", ".elf", ".bin", ".sh",
];

/// Whether a path looks like an executable or archive download.
pub fn looks_like_download(url: &str) -> bool {
    // Called for every link of every page: no allocation.
    let path = url.split(['?', '#']).next().unwrap_or("").as_bytes();
    DOWNLOAD_EXT
        .iter()
        .any(|e| path.len() >= e.len() && path[path.len() - e.len()..].eq_ignore_ascii_case(e.as_bytes()))
}

/// `0;url=…` (meta refresh content or Refresh header) → the URL.
pub fn refresh_target(content: &str) -> Option<String> {
    let (_, rest) = content.split_once([';', ','])?;
    let rest = rest.trim_start();
    let rest = if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("url") {
        rest[3..].trim_start().strip_prefix('=')?.trim()
    } else {
        rest.trim()
    };
    let rest = rest.trim_matches(|c| c == '\'' || c == '"').trim();
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// URLs assigned to `location` or written as iframes in script text.
pub fn script_targets(js: &str, out: &mut Vec<Found>) {
    for c in JS_LOCATION.captures_iter(js) {
        if let Some(m) = c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)).or_else(|| c.get(4)) {
            out.push(Found { url: m.as_str().to_owned(), reason: Reason::JsLocation, hidden: false });
        }
    }
    for c in JS_IFRAME.captures_iter(js) {
        if let Some(m) = c.get(1) {
            let hidden = c.get(0).is_some_and(|m| style_hidden(m.as_str()));
            out.push(Found { url: m.as_str().to_owned(), reason: Reason::Iframe, hidden });
        }
    }
}

fn tiny(v: Option<String>) -> bool {
    v.is_some_and(|v| {
        let v = v.trim().trim_end_matches("px").trim();
        matches!(v, "0" | "1")
    })
}

fn style_hidden(s: &str) -> bool {
    let s: String = s.to_ascii_lowercase().chars().filter(|c| !c.is_whitespace()).collect();
    s.contains("display:none")
        || s.contains("visibility:hidden")
        || s.contains("width:0")
        || s.contains("height:0")
        || s.contains("width:1px")
        || s.contains("height:1px")
        || s.contains("left:-")
        || s.contains("top:-")
        || s.contains("width=0")
        || s.contains("height=0")
        || s.contains("width=\"0")
        || s.contains("height=\"0")
        || s.contains("width='0")
        || s.contains("height='0")
}

/// The selectors, parsed once (parsing them for every page showed up in profiles).
struct Selectors {
    frame: Selector,
    script: Selector,
    meta: Selector,
    plugin: Selector,
    link: Selector,
}

static SELECTORS: LazyLock<Selectors> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // constant selectors; the unit tests run them
    let p = |s: &str| s.parse::<Selector>().unwrap();
    Selectors {
        frame: p("iframe[src], frame[src]"),
        script: p("script[src]"),
        meta: p("meta[http-equiv]"),
        plugin: p("object[data], embed[src], applet[code], applet[archive]"),
        link: p("a[href]"),
    }
});

/// An element handler (what `lol_html::element!` builds, minus the selector parsing).
fn on_element<'h>(
    f: impl FnMut(&mut lol_html::html_content::Element<'_, '_>) -> lol_html::HandlerResult + 'h,
) -> ElementContentHandlers<'h> {
    ElementContentHandlers::default().element(f)
}

/// Scans a page. `page_host` decides which `<script src>` count as "from another host".
pub fn scan(body: &[u8], page_host: &str) -> PageLinks {
    let found = RefCell::new(Vec::<Found>::new());
    let script = RefCell::new(String::new());
    let script_bytes = RefCell::new(0usize);
    let push = |url: Option<String>, reason: Reason, hidden: bool| {
        if let Some(u) = url {
            let u = u.trim().to_owned();
            if !u.is_empty() {
                found.borrow_mut().push(Found { url: u, reason, hidden });
            }
        }
    };
    let sel = &*SELECTORS;
    let on = |s: &'static Selector| Cow::Borrowed(s);
    let result = {
        let mut rw = HtmlRewriter::new(
            Settings::new()
                .append_element_content_handler((
                    on(&sel.frame),
                    on_element(|el| {
                        let hidden = tiny(el.get_attribute("width"))
                            || tiny(el.get_attribute("height"))
                            || el.get_attribute("style").is_some_and(|s| style_hidden(&s))
                            || el.has_attribute("hidden");
                        push(el.get_attribute("src"), Reason::Iframe, hidden);
                        Ok(())
                    }),
                ))
                .append_element_content_handler((
                    on(&sel.script),
                    on_element(|el| {
                        if let Some(src) = el.get_attribute("src") {
                            let other = url_host(&src).is_some_and(|h| !h.eq_ignore_ascii_case(page_host));
                            if other {
                                push(Some(src), Reason::ScriptSrc, false);
                            }
                        }
                        Ok(())
                    }),
                ))
                .append_element_content_handler((
                    on(&sel.meta),
                    on_element(|el| {
                        let is_refresh =
                            el.get_attribute("http-equiv").is_some_and(|v| v.trim().eq_ignore_ascii_case("refresh"));
                        if is_refresh {
                            push(
                                el.get_attribute("content").and_then(|c| refresh_target(&c)),
                                Reason::MetaRefresh,
                                false,
                            );
                        }
                        Ok(())
                    }),
                ))
                .append_element_content_handler((
                    on(&sel.plugin),
                    on_element(|el| {
                        let u = el
                            .get_attribute("data")
                            .or_else(|| el.get_attribute("src"))
                            .or_else(|| el.get_attribute("archive"))
                            .or_else(|| el.get_attribute("code"));
                        push(u, Reason::Embed, false);
                        Ok(())
                    }),
                ))
                .append_element_content_handler((
                    on(&sel.link),
                    on_element(|el| {
                        if let Some(h) = el.get_attribute("href")
                            && (looks_like_download(&h) || el.has_attribute("download"))
                        {
                            push(Some(h), Reason::Download, false);
                        }
                        Ok(())
                    }),
                ))
                .append_element_content_handler(text!("script", |t| {
                    let mut s = script.borrow_mut();
                    s.push_str(t.as_str());
                    if t.last_in_text_node() {
                        *script_bytes.borrow_mut() += s.len();
                        let mut f = found.borrow_mut();
                        script_targets(&s, &mut f);
                        s.clear();
                    }
                    Ok(())
                })),
            |_: &[u8]| {},
        );
        rw.write(body).and_then(|()| rw.end())
    };
    let parse_error = result.err().map(|e| e.to_string());
    let script_bytes = *script_bytes.borrow();
    PageLinks { found: found.into_inner(), parse_error, script_bytes }
}

/// The host of an absolute or scheme-relative URL (None for a relative one).
fn url_host(u: &str) -> Option<&str> {
    let u = u.trim();
    let rest = if let Some(r) = u.strip_prefix("//") {
        r
    } else {
        let (scheme, r) = u.split_once("://")?;
        if !scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.') {
            return None;
        }
        r
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    let host = if host.starts_with('[') { host } else { host.split(':').next().unwrap_or("") };
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_a_browser_loads() {
        let page = br#"<html><head><meta http-equiv="Refresh" content="5; URL='/next.html'">
            <script src="/local.js"></script><script src="https://cdn.evil.example/x.js"></script>
            <script>var a=1; if (x) { window.location.href = "http://r.example/go?id=1"; }
            document.location='http://s.example/'; location.replace("http://t.example/");
            if (location == "x") {}
            document.write('<iframe src=\"http://w.example/in\" width=0 height=0></iframe>');</script>
            </head><body><iframe src="http://hid.example/" width="0" height="0"></iframe>
            <iframe src="http://vis.example/" width="600"></iframe>
            <iframe src="http://sty.example/" style="visibility: hidden; position:absolute"></iframe>
            <a href="/files/setup.exe">get</a><a href="/about">about</a>
            <object data="http://x.example/e.swf"></object></body></html>"#;
        let l = scan(page, "blog.example.jp");
        let got: Vec<(String, Reason, bool)> = l.found.iter().map(|f| (f.url.clone(), f.reason, f.hidden)).collect();
        let want = vec![
            ("/next.html".to_owned(), Reason::MetaRefresh, false),
            ("https://cdn.evil.example/x.js".into(), Reason::ScriptSrc, false),
            ("http://r.example/go?id=1".into(), Reason::JsLocation, false),
            ("http://s.example/".into(), Reason::JsLocation, false),
            ("http://t.example/".into(), Reason::JsLocation, false),
            ("http://w.example/in".into(), Reason::Iframe, true),
            ("http://hid.example/".into(), Reason::Iframe, true),
            ("http://vis.example/".into(), Reason::Iframe, false),
            ("http://sty.example/".into(), Reason::Iframe, true),
            ("/files/setup.exe".into(), Reason::Download, false),
            ("http://x.example/e.swf".into(), Reason::Embed, false),
        ];
        assert_eq!(got, want);
        assert!(l.parse_error.is_none());
    }

    #[test]
    fn refresh_forms() {
        assert_eq!(refresh_target("0;url=http://a/").as_deref(), Some("http://a/"));
        assert_eq!(refresh_target("0; URL = 'http://a/b'").as_deref(), Some("http://a/b"));
        assert_eq!(refresh_target("3,http://c/").as_deref(), Some("http://c/"));
        assert_eq!(refresh_target("30"), None);
        assert_eq!(refresh_target("0;url="), None);
    }

    #[test]
    fn malformed_markup_never_fails() {
        let mut cases: Vec<Vec<u8>> = vec![
            b"<iframe src=\"http://a.example/".to_vec(),
            b"<<<>>><script>location='http://b.example/'".to_vec(),
            b"<meta http-equiv=refresh content=\"0;url=http://c.example/\"<iframe src=x>".to_vec(),
            vec![0xff, 0xfe, 0x00, b'<', 0x80, b'i', b'f'],
            b"<svg><script>location.href=\"http://d.example/\"</script></svg><!-- <iframe src=z>".to_vec(),
        ];
        let mut big = b"<div>".repeat(100_000);
        big.extend_from_slice(b"<iframe src=\"http://deep.example/\"></iframe>");
        cases.push(big);
        for c in &cases {
            let _ = scan(c, "h");
        }
        let l = scan(&cases[1], "h");
        assert_eq!(l.found.first().map(|f| f.url.as_str()), Some("http://b.example/"));
        let l = scan(cases.last().map(Vec::as_slice).unwrap_or_default(), "h");
        assert!(l.found.iter().any(|f| f.url == "http://deep.example/"));
    }
}
