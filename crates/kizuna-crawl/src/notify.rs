//! Telling site owners: one notice per compromised site and case, to the site's
//! `security.txt` contact or else the hosting network's abuse contact, with the evidence and a
//! re-check date; re-checks close the case once the site is clean.

use std::collections::BTreeMap;
use std::sync::Mutex;

use kizuna_model::Timestamp;
use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport, Transport};
use url::Url;

use crate::CrawlError;
use crate::cases::{Case, CaseStore};
use crate::config::Notify;
use crate::contact::{AbuseTable, SecurityTxt};
use crate::crawler::{Chain, Crawler, Verdict};
use crate::fetch::Fetcher;

/// Where a contact came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The e-mail address.
    pub email: String,
    /// `security.txt <url>` or `abuse contact <record> for <ip>`.
    pub source: String,
    /// The owner prefers Japanese.
    pub japanese: bool,
}

/// What happened for one compromised site.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Host name of the site.
    pub site: String,
    /// Case id.
    pub case_id: i64,
    /// The case was opened by this crawl.
    pub new_case: bool,
    /// The contact found (None: no contact).
    pub contact: Option<Contact>,
    /// A notice was sent now.
    pub sent: bool,
    /// Why not, when no notice was sent.
    pub note: Option<String>,
}

/// Result of one re-check.
#[derive(Debug, Clone)]
pub struct Recheck {
    /// The case.
    pub case: Case,
    /// The re-crawl still found the site compromised.
    pub still_compromised: bool,
    /// The re-crawl's chain id.
    pub chain_id: String,
}

/// The notifier: case store, contact data and the SMTP relay.
pub struct Notifier {
    cfg: Notify,
    store: Mutex<CaseStore>,
    abuse: AbuseTable,
}

impl Notifier {
    /// Opens the case store and loads abuse-contact files.
    pub fn new(cfg: &Notify, store: CaseStore) -> Result<Notifier, CrawlError> {
        let mut abuse = AbuseTable::default();
        for f in &cfg.abuse_contact_files {
            abuse.load_file(f)?;
        }
        Ok(Notifier { cfg: cfg.clone(), store: Mutex::new(store), abuse })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, CaseStore> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the case store.
    pub fn with_store<T>(&self, f: impl FnOnce(&CaseStore) -> T) -> T {
        f(&self.store())
    }

    /// Finds the contact of a site: its security.txt (HTTPS first, then the scheme the site was
    /// crawled with; `/.well-known/security.txt`, then `/security.txt`), skipping expired files;
    /// else the abuse contact of the network hosting `ip`.
    pub async fn find_contact(
        &self,
        fetcher: &Fetcher,
        site_url: &Url,
        ip: Option<std::net::IpAddr>,
    ) -> Option<Contact> {
        let host = site_url.host_str()?;
        let mut bases = vec![format!("https://{host}")];
        if site_url.scheme() == "http" {
            let port = site_url.port().map(|p| format!(":{p}")).unwrap_or_default();
            bases.push(format!("http://{host}{port}"));
        } else if let Some(p) = site_url.port() {
            bases.insert(0, format!("https://{host}:{p}"));
        }
        for base in &bases {
            for path in ["/.well-known/security.txt", "/security.txt"] {
                let Ok(u) = Url::parse(&format!("{base}{path}")) else { continue };
                let f = fetcher.fetch(&u).await;
                let plain = f.content_type.as_deref().is_none_or(|c| c == "text/plain");
                if f.status != Some(200) || !plain || f.body.is_empty() {
                    continue;
                }
                let s = SecurityTxt::parse(&String::from_utf8_lossy(&f.body));
                if s.expired(Timestamp::now()) {
                    tracing::info!("{u}: security.txt expired, not used");
                    continue;
                }
                if let Some(email) = s.emails().into_iter().next() {
                    return Some(Contact {
                        email,
                        source: format!("security.txt {u}"),
                        japanese: s.prefers_japanese(),
                    });
                }
            }
        }
        let ip = ip?;
        self.abuse.lookup(ip).map(|(email, rec)| Contact {
            email: email.to_owned(),
            source: format!("abuse contact of {rec} for {ip}"),
            japanese: false,
        })
    }

    /// Opens or continues a case for each compromised site of the chain and sends the notice
    /// when the owner has not had one for that case.
    pub async fn handle_chain(&self, fetcher: &Fetcher, chain: &Chain) -> Vec<Outcome> {
        let mut sites: BTreeMap<String, &crate::Node> = BTreeMap::new();
        for n in chain.nodes.iter().filter(|n| n.verdict == Verdict::Entry) {
            sites.entry(n.host.clone()).or_insert(n);
        }
        let mut out = Vec::new();
        for (site, node) in sites {
            let evidence = evidence_text(chain, &site);
            let now = Timestamp::now();
            let opened = self.store().open_case(&site, &node.url, &chain.id, &evidence, now);
            let (case, new_case) = match opened {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("{site}: case store: {e}");
                    continue;
                }
            };
            let already = self.store().notices(case.id).map(|n| !n.is_empty()).unwrap_or(false);
            let mut o =
                Outcome { site: site.clone(), case_id: case.id, new_case, contact: None, sent: false, note: None };
            if already {
                o.note = Some("owner already notified for this case".into());
                out.push(o);
                continue;
            }
            let Ok(site_url) = Url::parse(&node.url) else { continue };
            let contact = self.find_contact(fetcher, &site_url, node.ip).await;
            let recheck =
                Timestamp::from_micros(now.as_micros() + i64::from(self.cfg.recheck_after_days) * 86_400_000_000);
            match &contact {
                None => {
                    o.note = Some("no security.txt and no abuse contact for the hosting network".into());
                    let _ = self.store().set_recheck(case.id, recheck);
                }
                Some(c) if !self.cfg.enabled => {
                    o.note = Some(format!("notices disabled; would notify {}", c.email));
                    let _ = self.store().set_recheck(case.id, recheck);
                }
                Some(c) => match self.send_once(&case, c, &evidence, recheck).await {
                    Ok(true) => o.sent = true,
                    Ok(false) => o.note = Some("owner already notified for this case".into()),
                    Err(e) => o.note = Some(format!("notice failed: {e}")),
                },
            }
            o.contact = contact;
            out.push(o);
        }
        out
    }

    /// Reserves, sends and records one notice; false when this contact already had it.
    async fn send_once(
        &self,
        case: &Case,
        c: &Contact,
        evidence: &str,
        recheck: Timestamp,
    ) -> Result<bool, CrawlError> {
        let now = Timestamp::now();
        if !self.store().reserve_notice(case.id, &c.email, &c.source, now)? {
            return Ok(false);
        }
        let msg = self.message(case, c, evidence, recheck)?;
        let cfg = self.cfg.clone();
        let sent = tokio::task::spawn_blocking(move || {
            transport(&cfg).and_then(|t| t.send(&msg).map_err(|e| CrawlError::Mail(e.to_string())))
        })
        .await
        .map_err(|e| CrawlError::Mail(format!("mail task: {e}")))
        .and_then(|r| r);
        match sent {
            Ok(_) => {
                self.store().notice_sent(case.id, &c.email, Timestamp::now(), recheck)?;
                Ok(true)
            }
            Err(e) => {
                self.store().release_notice(case.id, &c.email)?;
                Err(e)
            }
        }
    }

    /// The notice text.
    pub fn message(&self, case: &Case, c: &Contact, evidence: &str, recheck: Timestamp) -> Result<Message, CrawlError> {
        let date = recheck.to_rfc3339();
        let date = date.get(..10).unwrap_or(&date);
        let org = &self.cfg.organisation;
        let mut body = String::new();
        if c.japanese {
            body.push_str(&format!(
                "{site} のご担当者様\n\n{org} のウェブクローラーが、貴サイトのページに外部の不正なサイトへ誘導するコードが\
                 埋め込まれていることを検知しました（ドライブバイダウンロード攻撃の入口）。\n\
                 下記の証拠をご確認のうえ、改ざんされたファイルの修正と、管理用パスワードの変更、CMS やプラグインの更新をお願いします。\n\
                 {date} 以降に再確認し、問題が解消していれば本件を終了します。\n\n",
                site = case.site
            ));
        }
        body.push_str(&format!(
            "Dear operator of {site},\n\n\
             The web crawler of {org} found that a page of your site loads content injected by a third party that leads \
             visitors' browsers to an exploit or malware distribution site (a drive-by download chain). Details below.\n\n\
             Please remove the injected code, change the site's administrative credentials, and update the CMS and its \
             plug-ins. We will check the site again on or after {date} and close this case when it is clean. You will not \
             receive another message about this case.\n\n\
             Case: {id}\nSite: {site}\nEntry URL: {url}\nContact found via: {src}\n\nEvidence:\n{evidence}\n",
            site = case.site,
            id = case.id,
            url = case.url,
            src = c.source,
        ));
        let from =
            self.cfg.from.parse().map_err(|e| CrawlError::Mail(format!("notify.from {:?}: {e}", self.cfg.from)))?;
        let to = c.email.parse().map_err(|e| CrawlError::Mail(format!("contact {:?}: {e}", c.email)))?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(format!("[{org}] Compromised web site: {} (case {})", case.site, case.id))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| CrawlError::Mail(e.to_string()))
    }

    /// Crawls again the open cases that are due (all open ones with `all`), closes those now
    /// clean, and moves the date of the others.
    pub async fn recheck(&self, crawler: &Crawler, now: Timestamp, all: bool) -> Result<Vec<Recheck>, CrawlError> {
        let due = self.store().due(now, all)?;
        let mut out = Vec::new();
        for case in due {
            let Ok(url) = Url::parse(&case.url) else { continue };
            let chain = crawler.crawl(&url).await;
            let still = chain.nodes.iter().any(|n| n.host == case.site && n.verdict.malicious());
            let next =
                Timestamp::from_micros(now.as_micros() + i64::from(self.cfg.recheck_after_days) * 86_400_000_000);
            self.store().record_check(case.id, &chain.id, still, Timestamp::now(), next)?;
            out.push(Recheck { case, still_compromised: still, chain_id: chain.id });
        }
        Ok(out)
    }
}

fn transport(cfg: &Notify) -> Result<SmtpTransport, CrawlError> {
    let b = match cfg.smtp_security.as_str() {
        "tls" => SmtpTransport::relay(&cfg.smtp_host).map_err(|e| CrawlError::Mail(e.to_string()))?,
        "starttls" => SmtpTransport::starttls_relay(&cfg.smtp_host).map_err(|e| CrawlError::Mail(e.to_string()))?,
        _ => SmtpTransport::builder_dangerous(&cfg.smtp_host),
    };
    Ok(b.port(cfg.smtp_port).timeout(Some(std::time::Duration::from_secs(30))).build())
}

/// The evidence of a chain for the owner of `site`: each malicious hop with its reason,
/// hashes and rule names.
pub fn evidence_text(chain: &Chain, site: &str) -> String {
    let mut s =
        format!("Crawl {} from {} at {} (browser profile {})\n", chain.id, chain.seed, chain.started, chain.profile);
    for n in chain.nodes.iter().filter(|n| n.verdict.malicious()) {
        let reason = chain.edges.iter().find(|e| e.to == n.id).map(|e| e.reason.as_str()).unwrap_or("seed");
        s.push_str(&format!(
            "- [{}] {} (depth {}, via {}, HTTP {}, {})\n",
            n.verdict.as_str(),
            n.url,
            n.depth,
            reason,
            n.status.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            n.content_type.as_deref().unwrap_or("-")
        ));
        if n.download
            && let (Some(a), Some(b), Some(c)) = (&n.sha256, &n.sha1, &n.md5)
        {
            s.push_str(&format!("    sha256 {a}\n    sha1 {b}\n    md5 {c}\n"));
        }
        for e in n.evidence.iter().filter(|e| !e.starts_with("reached by") && !e.starts_with("quarantined")) {
            s.push_str(&format!("    {e}\n"));
        }
        if n.host == site && n.verdict == Verdict::Entry {
            for e in chain.edges.iter().filter(|e| e.from == n.id && chain.nodes[e.to].verdict.malicious()) {
                s.push_str(&format!(
                    "    loads {}{} {}\n",
                    e.reason,
                    if e.hidden { " (hidden)" } else { "" },
                    chain.nodes[e.to].url
                ));
            }
        }
    }
    s
}
