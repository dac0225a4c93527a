//! Notice and countermeasure-page templates (minijinja), editable by the ISP without
//! recompiling.
//!
//! Files, per language (`ja`, `en`):
//! - `<kind>.<lang>.txt` for `first`, `reminder`, `final`, `escalation`: the plain-text notice.
//!   Its first line is `Subject: …` (as in intelmq-mailgen), then a blank line, then the body.
//!   Postal letters use the same text.
//! - `<kind>.<lang>.html`: the HTML part of the e-mail (HTML-escaped automatically).
//! - `explain.<lang>.txt`: what the threat means and what to do, by `classification.type`;
//!   rendered first and handed to the others as `explanation`.
//! - `page.<lang>.html`: the countermeasure page.
//!
//! A file in the configured `templates_dir` replaces the shipped file of the same name; the
//! shipped ones are in `crates/kizuna-isp/templates/` and `kizuna isp templates export DIR`
//! writes them out as a starting point.

use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::Serialize;

use crate::cases::NoticeKind;
use crate::{Error, Result};

/// The templates shipped with the agent: (file name, text).
pub const SHIPPED: &[(&str, &str)] = &[
    ("first.ja.txt", include_str!("../templates/first.ja.txt")),
    ("first.en.txt", include_str!("../templates/first.en.txt")),
    ("reminder.ja.txt", include_str!("../templates/reminder.ja.txt")),
    ("reminder.en.txt", include_str!("../templates/reminder.en.txt")),
    ("final.ja.txt", include_str!("../templates/final.ja.txt")),
    ("final.en.txt", include_str!("../templates/final.en.txt")),
    ("escalation.ja.txt", include_str!("../templates/escalation.ja.txt")),
    ("escalation.en.txt", include_str!("../templates/escalation.en.txt")),
    ("first.ja.html", include_str!("../templates/first.ja.html")),
    ("first.en.html", include_str!("../templates/first.en.html")),
    ("reminder.ja.html", include_str!("../templates/reminder.ja.html")),
    ("reminder.en.html", include_str!("../templates/reminder.en.html")),
    ("final.ja.html", include_str!("../templates/final.ja.html")),
    ("final.en.html", include_str!("../templates/final.en.html")),
    ("escalation.ja.html", include_str!("../templates/escalation.ja.html")),
    ("escalation.en.html", include_str!("../templates/escalation.en.html")),
    ("mail.ja.html", include_str!("../templates/mail.ja.html")),
    ("mail.en.html", include_str!("../templates/mail.en.html")),
    ("explain.ja.txt", include_str!("../templates/explain.ja.txt")),
    ("explain.en.txt", include_str!("../templates/explain.en.txt")),
    ("page.ja.html", include_str!("../templates/page.ja.html")),
    ("page.en.html", include_str!("../templates/page.en.html")),
];

/// Languages templates are shipped for.
pub const LANGUAGES: &[&str] = &["ja", "en"];

/// One observation as shown in a notice.
#[derive(Debug, Clone, Serialize)]
pub struct SeenItem {
    /// When (local time of the ISP, formatted).
    pub time: String,
    /// Source address.
    pub ip: String,
    /// Source port, when known.
    pub port: Option<u16>,
    /// The feed's name.
    pub feed: String,
    /// Destination port, when known.
    pub destination_port: Option<u16>,
    /// Protocol (transport/application).
    pub protocol: String,
    /// The event description, when the feed gave one.
    pub description: String,
}

/// Everything a notice template sees.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeContext {
    /// Notice kind (`first`, `reminder`, `final`, `escalation`).
    pub kind: String,
    /// `ja` or `en`.
    pub language: String,
    /// The ISP's name.
    pub isp_name: String,
    /// Support contact.
    pub support_contact: String,
    /// The subscriber's name (salutation).
    pub subscriber_name: String,
    /// Case number.
    pub case_id: i64,
    /// `classification.type`.
    pub threat_type: String,
    /// Malware family or identifier (`-` when none).
    pub threat_family: String,
    /// First and last time seen (formatted).
    pub first_seen: String,
    /// Last seen.
    pub last_seen: String,
    /// Number of observations.
    pub hits: u64,
    /// The newest observations.
    pub seen: Vec<SeenItem>,
    /// The countermeasure-page link.
    pub link: String,
    /// Until when the link works (formatted).
    pub link_expires: String,
    /// Days until the next step (reminder, final notice, escalation).
    pub next_step_days: u64,
    /// The escalation action (escalation notices; empty otherwise).
    pub escalation_action: String,
    /// Legal basis of the notice.
    pub legal_basis: String,
    /// Filled in by [`Templates::render_notice`]: the rendered `explain.<lang>.txt`.
    pub explanation: String,
}

/// A rendered notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
}

/// A cleaning tool as the page template sees it.
pub type Tool = crate::config::CleaningTool;

/// Everything the page template sees.
#[derive(Debug, Clone, Serialize)]
pub struct PageContext {
    /// `ja` or `en`.
    pub language: String,
    /// The ISP's name.
    pub isp_name: String,
    /// Support contact.
    pub support_contact: String,
    /// `classification.type`.
    pub threat_type: String,
    /// Family.
    pub threat_family: String,
    /// What it means and what to do.
    pub explanation: String,
    /// Cleaning tools for this language.
    pub tools: Vec<Tool>,
    /// Where the form posts.
    pub report_action: String,
    /// Set after the subscriber posted the form.
    pub reported: bool,
    /// Last seen (formatted).
    pub last_seen: String,
}

/// The template set: shipped files, overridden file by file from a directory.
pub struct Templates {
    env: Environment<'static>,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn template_err(name: &str, e: impl std::fmt::Display) -> Error {
    Error::Template { name: name.to_owned(), reason: format!("{e:#}") }
}

impl Templates {
    /// The shipped templates, with files in `dir` (when given) taking precedence. Every
    /// template is compiled at once, so a syntax error in an edited file is reported at start-up.
    pub fn new(dir: Option<&Path>) -> Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        let own = dir.map(Path::to_path_buf);
        let lookup_dir = own.clone();
        env.set_loader(move |name| {
            if let Some(d) = &lookup_dir {
                let p = d.join(name);
                if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                    return Ok(None);
                }
                match std::fs::read_to_string(&p) {
                    Ok(s) => return Ok(Some(s)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("reading {}: {e}", p.display()),
                        ));
                    }
                }
            }
            Ok(SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, t)| (*t).to_owned()))
        });
        let t = Templates { env, dir: own };
        for (name, _) in SHIPPED {
            t.env.get_template(name).map_err(|e| template_err(name, e))?;
        }
        Ok(t)
    }

    fn lang(language: &str) -> &'static str {
        if language.eq_ignore_ascii_case("ja") { "ja" } else { "en" }
    }

    fn render(&self, name: &str, ctx: impl Serialize) -> Result<String> {
        self.env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| template_err(name, e))
    }

    /// What a threat means and what to do, in a language.
    pub fn explanation(&self, language: &str, threat_type: &str, threat_family: &str) -> Result<String> {
        let name = format!("explain.{}.txt", Self::lang(language));
        self.render(&name, minijinja::context! { threat_type, threat_family }).map(|s| s.trim().to_owned())
    }

    /// Renders a notice: subject, text and HTML.
    pub fn render_notice(&self, kind: NoticeKind, ctx: &NoticeContext) -> Result<Rendered> {
        let lang = Self::lang(&ctx.language);
        let mut ctx = ctx.clone();
        ctx.language = lang.to_owned();
        ctx.explanation = self.explanation(lang, &ctx.threat_type, &ctx.threat_family)?;
        let txt_name = format!("{}.{lang}.txt", kind.as_str());
        let full = self.render(&txt_name, &ctx)?;
        let (subject, text) = split_subject(&full)
            .ok_or_else(|| template_err(&txt_name, "the first line must be `Subject: …`, followed by an empty line"))?;
        let html = self.render(&format!("{}.{lang}.html", kind.as_str()), &ctx)?;
        Ok(Rendered { subject, text, html })
    }

    /// Renders the countermeasure page.
    pub fn render_page(&self, ctx: &PageContext) -> Result<String> {
        let lang = Self::lang(&ctx.language);
        self.render(&format!("page.{lang}.html"), ctx)
    }

    /// Writes the shipped templates into `dir` (not overwriting existing files). Returns the
    /// files written.
    pub fn export_shipped(dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(crate::io_err(dir))?;
        let mut out = Vec::new();
        for (name, text) in SHIPPED {
            let p = dir.join(name);
            if p.exists() {
                continue;
            }
            std::fs::write(&p, text).map_err(crate::io_err(&p))?;
            out.push(p);
        }
        Ok(out)
    }
}

fn split_subject(full: &str) -> Option<(String, String)> {
    let full = full.trim_start_matches('\u{feff}');
    let (first, rest) = full.split_once('\n')?;
    let subject = first.trim_end_matches('\r').strip_prefix("Subject:")?.trim().to_owned();
    if subject.is_empty() {
        return None;
    }
    let body = rest.trim_start_matches(['\r', '\n']).trim_end().to_owned() + "\n";
    Some((subject, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(lang: &str, kind: NoticeKind) -> NoticeContext {
        NoticeContext {
            kind: kind.as_str().into(),
            language: lang.into(),
            isp_name: "Example ISP".into(),
            support_contact: "0120-000-000".into(),
            subscriber_name: "Yamada Taro".into(),
            case_id: 42,
            threat_type: "infected-system".into(),
            threat_family: "mirai".into(),
            first_seen: "2026-03-05 09:00".into(),
            last_seen: "2026-03-06 10:00".into(),
            hits: 3,
            seen: vec![SeenItem {
                time: "2026-03-06 10:00".into(),
                ip: "192.0.2.10".into(),
                port: Some(40000),
                feed: "cowrie".into(),
                destination_port: Some(23),
                protocol: "tcp/telnet".into(),
                description: "<script>".into(),
            }],
            link: "https://clean.example.net/c/abc".into(),
            link_expires: "2026-05-05".into(),
            next_step_days: 7,
            escalation_action: "walled-garden".into(),
            legal_basis: "legitimate-business".into(),
            explanation: String::new(),
        }
    }

    #[test]
    fn every_shipped_notice_renders_with_subject_link_and_escaped_html() {
        let t = Templates::new(None).expect("templates");
        for lang in LANGUAGES {
            for kind in NoticeKind::ALL {
                let r = t.render_notice(*kind, &sample(lang, *kind)).expect("render");
                assert!(!r.subject.is_empty(), "{lang} {kind:?}");
                assert!(r.text.contains("https://clean.example.net/c/abc"), "{lang} {kind:?}: {}", r.text);
                assert!(r.text.contains("192.0.2.10"), "{lang} {kind:?}");
                assert!(r.html.contains("href=\"https://clean.example.net/c/abc\""), "{lang} {kind:?}");
                assert!(r.html.contains("&lt;script&gt;"), "{lang} {kind:?}: HTML must escape feed text");
                assert!(!r.html.contains("<script>"), "{lang} {kind:?}");
            }
        }
        let ja = t.render_notice(NoticeKind::First, &sample("ja", NoticeKind::First)).expect("ja");
        assert!(ja.subject.contains("セキュリティ"), "{}", ja.subject);
        assert!(ja.text.contains("Mirai") || ja.text.contains("mirai"), "{}", ja.text);
    }

    #[test]
    fn a_file_in_the_templates_dir_overrides_the_shipped_one() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("first.en.txt"), "Subject: Custom {{ case_id }}\n\nHello {{ link }}\n")
            .expect("write");
        let t = Templates::new(Some(dir.path())).expect("templates");
        let r = t.render_notice(NoticeKind::First, &sample("en", NoticeKind::First)).expect("render");
        assert_eq!(r.subject, "Custom 42");
        assert_eq!(r.text, "Hello https://clean.example.net/c/abc\n");
        std::fs::write(dir.path().join("first.en.txt"), "no subject line\n").expect("write");
        let t = Templates::new(Some(dir.path())).expect("templates");
        let e = t.render_notice(NoticeKind::First, &sample("en", NoticeKind::First)).expect_err("no subject");
        assert!(e.to_string().contains("first.en.txt"), "{e}");
        std::fs::write(dir.path().join("page.ja.html"), "{% if %}").expect("write");
        let e = Templates::new(Some(dir.path())).expect_err("syntax error");
        assert!(e.to_string().contains("page.ja.html"), "{e}");
    }
}
