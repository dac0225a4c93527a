//! Indicators from observations, the allow-list and the publication granularity policy: pure
//! logic (no IO), used by the hub after each ingest commit, by the CLI, by the DNS primary and
//! by the sharing exports.
//!
//! # What becomes an indicator ([`from_observation`])
//!
//! | observation | indicators | category |
//! |---|---|---|
//! | `malware-distribution` (Cowrie `file_download` with a URL, crawlers, feeds) | the URL (else the host name, else the address); the payload's hashes (except the empty file's) | `malware-distribution` |
//! | `phishing` | the URL (else the host name, else the address) | `phishing` |
//! | `c2-server` (Feodo Tracker, …) | the host name and the address (and a URL if given) | `c2-server` |
//! | `exploit` | the URL or host name only: an address that *sends* exploits is an infected host to notify, not a site to block | `exploit` |
//! | compromised website (`classification.identifier` = `compromised-website`, Shadowserver `compromised_website`) with a URL | the URL | the observation's type (`system-compromise`) |
//!
//! Everything else (scanners, brute force, infected systems, vulnerable services, …) is about a
//! host to notify, never one to block, and yields nothing. Each indicator carries the feed name
//! as source, a confidence (per-feed config, else the feed's `feed.accuracy`, else the default),
//! first/last seen (`time.source`, else `time.observation`), an expiry (per category, counted
//! from when kizuna read it), a human-readable reason, and the observation's TLP, sharing
//! groups and legal basis.
//!
//! # What is published at which granularity ([`publish_granularity`])
//!
//! | indicator | DNS (RPZ) | STIX/TAXII/MISP |
//! |---|---|---|
//! | domain | the name (and, per zone policy, `*.name`) | yes |
//! | address/network | `rpz-ip` trigger | yes |
//! | URL on a dedicated host | its host name (or address), [`Granularity::Host`] | the URL |
//! | URL on a shared host: its host is on the allow-list (shared platforms), or under a `shared_hosting_suffixes` entry, or policy `url_granularity = "url-only"` | nothing: DNS cannot block one URL, [`Granularity::UrlOnly`] | the URL |
//! | file hash | nothing, [`Granularity::UrlOnly`] (the value only) | the hash |
//! | anything allow-listed (state `allow-listed`), withdrawn or expired | nothing | nothing |
//!
//! [`granularity_report`] counts what a set of records publishes at each granularity, with the
//! reason for every URL-only one.

use std::collections::BTreeMap;
use std::time::Duration;

use kizuna_model::{
    ClassificationType, Indicator, IndicatorKind, IpNet, Observation, Timestamp, canonical_domain, canonical_url,
    canonical_value, url_host,
};
use kizuna_store::indicators::{
    AllowEntry, AllowMatcher, AllowPattern, AllowScope, AllowVerdict, IndicatorRecord, IndicatorState,
};

pub use kizuna_store::indicators as store;

/// The shipped default allow-list (`data/allowlist-default.txt`).
pub const DEFAULT_ALLOWLIST: &str = include_str!("../../../data/allowlist-default.txt");

const DAY: u64 = 86_400;

/// SHA-256, MD5 and SHA-1 of the empty file: Cowrie logs failed downloads (and error pages
/// served empty) with these; they are never indicators.
const EMPTY_FILE_HASHES: &[&str] = &[
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "d41d8cd98f00b204e9800998ecf8427e",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
];

/// How URL indicators on hosts that are not known to be shared are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UrlGranularity {
    /// Block the URL's host when it is not a shared host (the default).
    #[default]
    HostUnlessShared,
    /// Never block a host because of a URL: URLs are published as URLs only.
    UrlOnly,
}

/// At which granularity an indicator may be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    /// Block the host name or address (for a URL: its host) in DNS.
    Host,
    /// The value only (the URL, a file hash): nothing in DNS.
    UrlOnly,
}

impl Granularity {
    /// Stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Granularity::Host => "host",
            Granularity::UrlOnly => "url-only",
        }
    }
}

/// Per-feed settings (`[hub.indicators.feeds."<feed.name>"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedPolicy {
    /// Confidence (0–100) of this feed's indicators.
    pub confidence: Option<u8>,
    /// Set to false to derive no indicators from this feed.
    pub derive: Option<bool>,
}

/// `[hub.indicators]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Derive indicators from ingested observations.
    pub derive: bool,
    /// Use the shipped default allow-list.
    pub default_allowlist: bool,
    /// A file replacing the shipped default allow-list (same syntax).
    pub allowlist_file: Option<std::path::PathBuf>,
    /// More shared-platform entries (same syntax as the file): never blocked as a whole.
    pub allowlist: Vec<String>,
    /// Entries under which nothing is published, URLs included.
    pub allowlist_strict: Vec<String>,
    /// The ISP portal domains (and subdomains): nothing under them is ever published.
    pub portal_domains: Vec<String>,
    /// Hosting suffixes whose hosts are shared between customers by path: a URL on a host
    /// under one is published as the URL only (a domain indicator is still blocked).
    pub shared_hosting_suffixes: Vec<String>,
    /// `host-unless-shared` (default) or `url-only`.
    pub url_granularity: UrlGranularity,
    /// Confidence of indicators from feeds not configured and without `feed.accuracy`.
    pub default_confidence: u8,
    /// Days until expiry per category (`classification.type`); others use `default_expiry_days`.
    pub expiry_days: BTreeMap<String, u64>,
    /// Days until expiry of categories not listed.
    pub default_expiry_days: u64,
    /// Per `feed.name`.
    pub feeds: BTreeMap<String, FeedPolicy>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            derive: true,
            default_allowlist: true,
            allowlist_file: None,
            allowlist: Vec::new(),
            allowlist_strict: Vec::new(),
            portal_domains: Vec::new(),
            shared_hosting_suffixes: Vec::new(),
            url_granularity: UrlGranularity::default(),
            default_confidence: 60,
            expiry_days: BTreeMap::new(),
            default_expiry_days: 14,
            feeds: BTreeMap::new(),
        }
    }
}

/// A bad line in an allow-list file or config entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {reason}")]
pub struct AllowlistError {
    /// File name or config key.
    pub source_name: String,
    /// 1-based line (or list index + 1).
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Errors building a [`Policy`].
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A bad allow-list entry.
    #[error("allow-list: {0}")]
    Allowlist(#[from] AllowlistError),
    /// The allow-list file could not be read.
    #[error("reading allow-list file {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// A bad value in the config.
    #[error("hub.indicators: {0}")]
    Config(String),
}

/// Default expiry per category.
pub fn default_expiry(category: ClassificationType) -> Duration {
    use ClassificationType as C;
    let days = match category {
        C::MalwareDistribution | C::C2Server => 30,
        C::Phishing => 7,
        C::Exploit | C::SystemCompromise | C::ApplicationCompromise => 14,
        _ => 14,
    };
    Duration::from_secs(days * DAY)
}

/// The indicator policy, built from [`PolicyConfig`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Every configured allow-list entry, by origin: `default`, `config`, `portal`.
    pub allowlist: Vec<AllowEntry>,
    matcher: AllowMatcher,
    /// Lower-case suffixes.
    pub shared_hosting_suffixes: Vec<String>,
    /// URL granularity.
    pub url_granularity: UrlGranularity,
    /// Derive at all.
    pub derive: bool,
    /// Default confidence.
    pub default_confidence: u8,
    /// Expiry per category.
    pub expiry: BTreeMap<ClassificationType, Duration>,
    /// Expiry of categories not listed (overrides [`default_expiry`] when configured).
    pub default_expiry: Option<Duration>,
    /// Per feed.
    pub feeds: BTreeMap<String, FeedPolicy>,
}

impl Default for Policy {
    fn default() -> Self {
        // The shipped list parses (tested); a broken one would yield an empty default.
        Policy::from_config(&PolicyConfig::default()).unwrap_or_else(|_| Policy::empty())
    }
}

impl Policy {
    /// No allow-list, defaults otherwise (tests).
    pub fn empty() -> Self {
        Policy {
            allowlist: Vec::new(),
            matcher: AllowMatcher::default(),
            shared_hosting_suffixes: Vec::new(),
            url_granularity: UrlGranularity::default(),
            derive: true,
            default_confidence: 60,
            expiry: BTreeMap::new(),
            default_expiry: None,
            feeds: BTreeMap::new(),
        }
    }

    /// Builds the policy: the default allow-list (or the configured file), the config's
    /// entries and portal domains. Every bad entry is an error naming its place.
    pub fn from_config(c: &PolicyConfig) -> Result<Self, PolicyError> {
        let mut allowlist = Vec::new();
        if let Some(path) = &c.allowlist_file {
            let text = std::fs::read_to_string(path)
                .map_err(|error| PolicyError::Io { path: path.display().to_string(), error })?;
            let (entries, errors) = parse_allowlist(&text, &path.display().to_string(), "default", AllowScope::Host);
            if let Some(e) = errors.into_iter().next() {
                return Err(e.into());
            }
            allowlist.extend(entries);
        } else if c.default_allowlist {
            let (entries, errors) =
                parse_allowlist(DEFAULT_ALLOWLIST, "data/allowlist-default.txt", "default", AllowScope::Host);
            if let Some(e) = errors.into_iter().next() {
                return Err(e.into());
            }
            allowlist.extend(entries);
        }
        let list = |key: &str,
                    items: &[String],
                    origin: &str,
                    scope: AllowScope|
         -> Result<Vec<AllowEntry>, PolicyError> {
            let mut out = Vec::new();
            for (i, s) in items.iter().enumerate() {
                let pattern = AllowPattern::parse(s).map_err(|reason| AllowlistError {
                    source_name: format!("hub.indicators.{key}"),
                    line: i + 1,
                    reason,
                })?;
                out.push(AllowEntry { pattern, scope, origin: origin.into(), note: format!("hub.indicators.{key}") });
            }
            Ok(out)
        };
        allowlist.extend(list("allowlist", &c.allowlist, "config", AllowScope::Host)?);
        allowlist.extend(list("allowlist_strict", &c.allowlist_strict, "config", AllowScope::All)?);
        for (i, d) in c.portal_domains.iter().enumerate() {
            let d = canonical_domain(d.trim_start_matches("*.")).ok_or_else(|| AllowlistError {
                source_name: "hub.indicators.portal_domains".into(),
                line: i + 1,
                reason: format!("{d:?} is not a domain name"),
            })?;
            allowlist.push(AllowEntry {
                pattern: AllowPattern::Domain(d),
                scope: AllowScope::All,
                origin: "portal".into(),
                note: "ISP portal domain".into(),
            });
        }
        let mut shared = Vec::new();
        for (i, s) in c.shared_hosting_suffixes.iter().enumerate() {
            shared.push(canonical_domain(s.trim_start_matches("*.").trim_start_matches('.')).ok_or_else(|| {
                PolicyError::Config(format!("shared_hosting_suffixes[{i}]: {s:?} is not a domain name"))
            })?);
        }
        let mut expiry = BTreeMap::new();
        for (k, d) in &c.expiry_days {
            let cat = k.parse::<ClassificationType>().map_err(|e| PolicyError::Config(format!("expiry_days: {e}")))?;
            if *d == 0 {
                return Err(PolicyError::Config(format!("expiry_days.{k}: must be at least 1")));
            }
            expiry.insert(cat, Duration::from_secs(d * DAY));
        }
        if c.default_confidence > 100 {
            return Err(PolicyError::Config("default_confidence must be 0-100".into()));
        }
        for (name, f) in &c.feeds {
            if f.confidence.is_some_and(|x| x > 100) {
                return Err(PolicyError::Config(format!("feeds.{name}.confidence must be 0-100")));
            }
        }
        let matcher = AllowMatcher::new(&allowlist);
        Ok(Policy {
            allowlist,
            matcher,
            shared_hosting_suffixes: shared,
            url_granularity: c.url_granularity,
            derive: c.derive,
            default_confidence: c.default_confidence,
            expiry,
            default_expiry: (c.default_expiry_days > 0 && c.default_expiry_days != 14)
                .then(|| Duration::from_secs(c.default_expiry_days * DAY)),
            feeds: c.feeds.clone(),
        })
    }

    /// Entries of one origin (for `IndicatorStore::set_allowlist`).
    pub fn allowlist_of(&self, origin: &str) -> Vec<AllowEntry> {
        self.allowlist.iter().filter(|e| e.origin == origin).cloned().collect()
    }

    /// The origins this policy owns (their entries are replaced from the config at start).
    pub const ORIGINS: &'static [&'static str] = &["default", "config", "portal"];

    /// Expiry of a category.
    pub fn expiry_for(&self, category: ClassificationType) -> Duration {
        self.expiry.get(&category).copied().or(self.default_expiry).unwrap_or_else(|| default_expiry(category))
    }

    /// Checks a value against this policy's allow-list (the store applies the stored one, which
    /// also holds analysts' entries).
    pub fn check(&self, kind: IndicatorKind, value: &str) -> AllowVerdict {
        self.matcher.evaluate(kind, value)
    }

    /// The shared-hosting suffix a host is under, if any.
    pub fn shared_suffix_of(&self, host: &str) -> Option<&str> {
        self.shared_hosting_suffixes
            .iter()
            .find(|s| host == s.as_str() || (host.ends_with(s.as_str()) && host[..host.len() - s.len()].ends_with('.')))
            .map(String::as_str)
    }

    fn confidence_for(&self, o: &Observation) -> u8 {
        self.feeds
            .get(&o.feed.name)
            .and_then(|f| f.confidence)
            .or(o.feed.accuracy)
            .unwrap_or(self.default_confidence)
            .min(100)
    }
}

/// Parses allow-list text (see `data/allowlist-default.txt` for the syntax). Returns the entries
/// and, separately, every bad line (the good ones are still returned).
pub fn parse_allowlist(
    text: &str,
    source_name: &str,
    origin: &str,
    scope: AllowScope,
) -> (Vec<AllowEntry>, Vec<AllowlistError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (body, comment) = match line.split_once('#') {
            Some((b, c)) => (b.trim(), c.trim()),
            None => (line.trim(), ""),
        };
        if body.is_empty() {
            continue;
        }
        match AllowPattern::parse(body) {
            Ok(pattern) => entries.push(AllowEntry {
                pattern,
                scope,
                origin: origin.to_owned(),
                note: if comment.is_empty() { format!("{source_name}:{}", i + 1) } else { comment.to_owned() },
            }),
            Err(reason) => errors.push(AllowlistError { source_name: source_name.to_owned(), line: i + 1, reason }),
        }
    }
    (entries, errors)
}

/// True for observations that can yield indicators (see the crate docs).
pub fn is_indicator_source(o: &Observation) -> bool {
    use ClassificationType as C;
    matches!(o.classification.kind, C::MalwareDistribution | C::Phishing | C::C2Server | C::Exploit)
        || (is_compromised_website(o) && o.source.url.is_some())
}

fn is_compromised_website(o: &Observation) -> bool {
    o.classification.identifier.as_deref() == Some("compromised-website")
}

fn extra_str<'a>(o: &'a Observation, k: &str) -> Option<&'a str> {
    o.extra.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
}

fn date_of(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d").to_string()
}

fn short_hash(h: &str) -> String {
    if h.len() > 8 { format!("{}…", &h[..8]) } else { h.to_owned() }
}

/// The human-readable reason for indicators derived from `o` (`what` names the value's kind:
/// "URL", "host", "address", "file").
fn reason_for(o: &Observation, what: &str, seen: Timestamp) -> String {
    use ClassificationType as C;
    let date = date_of(seen);
    let hash = o.malware.sha256.as_deref().or(o.malware.sha1.as_deref()).or(o.malware.md5.as_deref());
    if o.feed.name == "cowrie" || extra_str(o, "cowrie.sensor").is_some() {
        let sensor = extra_str(o, "cowrie.sensor").unwrap_or("(unnamed)");
        return match (what, hash) {
            ("file", _) => format!("Cowrie honeypot {sensor} saw an attacker download this file on {date}"),
            (_, Some(h)) => {
                format!("Cowrie honeypot {sensor} saw a download of {} from this {what} on {date}", short_hash(h))
            }
            _ => format!("Cowrie honeypot {sensor} saw a download from this {what} on {date}"),
        };
    }
    let who = match &o.feed.provider {
        Some(p) if *p != o.feed.name => format!("{p} ({})", o.feed.name),
        _ => o.feed.name.clone(),
    };
    let mut r = if is_compromised_website(o) {
        let how = o.event_description.as_deref().or_else(|| extra_str(o, "tag")).unwrap_or("compromise");
        let mut s = format!("{who} reports this site as compromised ({how}) on {date}");
        if let Some(since) = extra_str(o, "detected_since") {
            s.push_str(&format!(", detected since {since}"));
        }
        s
    } else {
        let cat = match o.classification.kind {
            C::MalwareDistribution => "distributing malware".to_owned(),
            C::Phishing => "a phishing site".to_owned(),
            C::C2Server => "a botnet command-and-control server".to_owned(),
            C::Exploit => "serving exploits".to_owned(),
            other => other.as_str().to_owned(),
        };
        format!("{who} reports this {what} as {cat} on {date}")
    };
    if let Some(m) = &o.malware.name {
        r.push_str(&format!(" (malware: {m})"));
    }
    if !is_compromised_website(o)
        && let Some(d) = &o.event_description
    {
        r.push_str(&format!(": {d}"));
    }
    if let Some(h) = hash.filter(|_| what != "file") {
        r.push_str(&format!("; payload {}", short_hash(h)));
    }
    r
}

/// Derives the indicators an observation supports (see the crate docs); none when the feed is
/// configured not to derive or the observation is not about a malicious site.
pub fn from_observation(o: &Observation, policy: &Policy) -> Vec<Indicator> {
    use ClassificationType as C;
    if !policy.derive || !is_indicator_source(o) {
        return Vec::new();
    }
    if policy.feeds.get(&o.feed.name).and_then(|f| f.derive) == Some(false) {
        return Vec::new();
    }
    let kind = o.classification.kind;
    let seen = o.time_source.unwrap_or(o.time_observation);
    let expires_from = seen.max(o.time_observation);
    let category = kind;
    let ttl = policy.expiry_for(category);
    let expires = Timestamp::from_micros(
        expires_from.as_micros().saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)),
    );
    let confidence = policy.confidence_for(o);
    let (groups, _recipients) = kizuna_policy::observation_groups(o);
    let make = |k: IndicatorKind, value: String, what: &str| Indicator {
        kind: k,
        value,
        category,
        source: o.feed.name.clone(),
        confidence,
        first_seen: seen,
        last_seen: seen,
        expires,
        reason: reason_for(o, what, seen),
        malware: o.malware.name.clone(),
        tlp: o.tlp,
        sharing_groups: groups.clone(),
        legal_basis: o.legal_basis,
    };
    let url = o.source.url.as_deref().and_then(canonical_url);
    let fqdn = o.source.fqdn.as_deref().and_then(canonical_domain);
    let ip = o.source.ip.map(|a| IpNet::from(a).to_string());
    let mut out = Vec::new();
    if is_compromised_website(o) && !matches!(kind, C::MalwareDistribution | C::Phishing | C::C2Server | C::Exploit) {
        if let Some(u) = url {
            out.push(make(IndicatorKind::Url, u, "URL"));
        }
        return out;
    }
    match kind {
        C::MalwareDistribution | C::Phishing => {
            if let Some(u) = url {
                out.push(make(IndicatorKind::Url, u, "URL"));
            } else if let Some(d) = fqdn {
                out.push(make(IndicatorKind::Domain, d, "host"));
            } else if let Some(a) = ip {
                out.push(make(IndicatorKind::Ip, a, "address"));
            }
            if kind == C::MalwareDistribution {
                for (k, h) in [
                    (IndicatorKind::Sha256, &o.malware.sha256),
                    (IndicatorKind::Md5, &o.malware.md5),
                    (IndicatorKind::Sha1, &o.malware.sha1),
                ] {
                    if let Some(v) = h.as_deref().and_then(|h| canonical_value(k, h).ok())
                        && !EMPTY_FILE_HASHES.contains(&v.as_str())
                    {
                        out.push(make(k, v, "file"));
                    }
                }
            }
        }
        C::C2Server => {
            if let Some(u) = url {
                out.push(make(IndicatorKind::Url, u, "URL"));
            }
            if let Some(d) = fqdn {
                out.push(make(IndicatorKind::Domain, d, "host"));
            }
            if let Some(a) = ip {
                out.push(make(IndicatorKind::Ip, a, "address"));
            }
        }
        C::Exploit => {
            if let Some(u) = url {
                out.push(make(IndicatorKind::Url, u, "URL"));
            } else if let Some(d) = fqdn {
                out.push(make(IndicatorKind::Domain, d, "host"));
            }
        }
        _ => {}
    }
    out
}

/// [`from_observation`] over many observations.
pub fn from_observations<'a>(obs: impl IntoIterator<Item = &'a Observation>, policy: &Policy) -> Vec<Indicator> {
    obs.into_iter().flat_map(|o| from_observation(o, policy)).collect()
}

/// The granularity at which a record may be published (see the crate docs' table). Says
/// nothing about whether it is publishable at all (state, expiry): see
/// `IndicatorRecord::is_publishable`.
pub fn publish_granularity(r: &IndicatorRecord, policy: &Policy) -> Granularity {
    granularity_with_reason(r, policy).0
}

/// [`publish_granularity`] and why.
pub fn granularity_with_reason(r: &IndicatorRecord, policy: &Policy) -> (Granularity, String) {
    let i = &r.indicator;
    match i.kind {
        IndicatorKind::Domain | IndicatorKind::Ip => (Granularity::Host, "host-level".into()),
        IndicatorKind::Sha256 | IndicatorKind::Md5 | IndicatorKind::Sha1 => {
            (Granularity::UrlOnly, "a file hash is never a DNS block".into())
        }
        IndicatorKind::Url => {
            if let Some(e) = &r.shared_host {
                return (Granularity::UrlOnly, format!("shared host on the allow-list: {e}"));
            }
            let Some(host) = url_host(&i.value) else {
                return (Granularity::UrlOnly, "no host".into());
            };
            if let Some(e) = policy.check(IndicatorKind::Url, &i.value).shared_host {
                return (Granularity::UrlOnly, format!("shared host on the allow-list: {e}"));
            }
            if let Some(s) = policy.shared_suffix_of(host) {
                return (Granularity::UrlOnly, format!("shared hosting suffix {s}"));
            }
            if policy.url_granularity == UrlGranularity::UrlOnly {
                return (Granularity::UrlOnly, "policy url_granularity = url-only".into());
            }
            (Granularity::Host, format!("dedicated host {host}"))
        }
    }
}

/// What a DNS block targets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnsTarget {
    /// A host or domain name (canonical, no trailing dot).
    Name(String),
    /// An address or network.
    Net(IpNet),
}

/// The DNS block a record publishes, if any: `None` when not publishable at `now` or not at
/// host granularity.
pub fn dns_target(r: &IndicatorRecord, policy: &Policy, now: Timestamp) -> Option<DnsTarget> {
    if !r.is_publishable(now) || publish_granularity(r, policy) != Granularity::Host {
        return None;
    }
    let v = &r.indicator.value;
    match r.indicator.kind {
        IndicatorKind::Domain => Some(DnsTarget::Name(v.clone())),
        IndicatorKind::Ip => v.parse().ok().map(DnsTarget::Net),
        IndicatorKind::Url => {
            let host = url_host(v)?;
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            match bare.parse::<std::net::IpAddr>() {
                Ok(a) => Some(DnsTarget::Net(IpNet::from(a))),
                Err(_) => Some(DnsTarget::Name(host.to_owned())),
            }
        }
        _ => None,
    }
}

/// One line of a [`GranularityReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlOnlyEntry {
    /// The URL.
    pub value: String,
    /// Why it is not a host block.
    pub why: String,
}

/// What a set of records publishes at which granularity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GranularityReport {
    /// Publishable records by (kind, granularity).
    pub counts: BTreeMap<(IndicatorKind, Granularity), u64>,
    /// Records not published by state.
    pub not_published: BTreeMap<IndicatorState, u64>,
    /// Every publishable URL published as the URL only, with the reason.
    pub url_only: Vec<UrlOnlyEntry>,
    /// Distinct host names and addresses blocked in DNS.
    pub dns_targets: u64,
}

/// Builds the report for `records` at `now`.
pub fn granularity_report(records: &[IndicatorRecord], policy: &Policy, now: Timestamp) -> GranularityReport {
    let mut rep = GranularityReport::default();
    let mut targets = std::collections::BTreeSet::new();
    for r in records {
        if !r.is_publishable(now) {
            let state = if r.state == IndicatorState::Active { IndicatorState::Expired } else { r.state };
            *rep.not_published.entry(state).or_default() += 1;
            continue;
        }
        let (g, why) = granularity_with_reason(r, policy);
        *rep.counts.entry((r.indicator.kind, g)).or_default() += 1;
        if g == Granularity::UrlOnly && r.indicator.kind == IndicatorKind::Url {
            rep.url_only.push(UrlOnlyEntry { value: r.indicator.value.clone(), why });
        }
        if let Some(t) = dns_target(r, policy, now) {
            targets.insert(t);
        }
    }
    rep.dns_targets = targets.len() as u64;
    rep
}

impl GranularityReport {
    /// A plain-text rendering (CLI).
    pub fn render(&self) -> String {
        let mut s = String::from("published indicators by kind and granularity:\n");
        if self.counts.is_empty() {
            s.push_str("  (none)\n");
        }
        for ((k, g), n) in &self.counts {
            let how = match (k, g) {
                (_, Granularity::Host) if *k == IndicatorKind::Url => "DNS block of the URL's host + the URL",
                (_, Granularity::Host) => "DNS block",
                (IndicatorKind::Url, Granularity::UrlOnly) => "the URL only (no DNS block)",
                _ => "the value only (no DNS block)",
            };
            s.push_str(&format!("  {:<7} {:<9} {n:>8}  {how}\n", k.as_str(), g.as_str()));
        }
        s.push_str(&format!("distinct DNS block targets: {}\n", self.dns_targets));
        for (st, n) in &self.not_published {
            s.push_str(&format!("not published ({st}): {n}\n"));
        }
        if !self.url_only.is_empty() {
            s.push_str("URLs published as the URL only:\n");
            for e in &self.url_only {
                s.push_str(&format!("  {}  ({})\n", e.value, e.why));
            }
        }
        s
    }
}

/// Parses an expiry: a duration from `now` (`30d`, `12h`, `90m`, `3600s`, `2w`) or an RFC 3339
/// time.
pub fn parse_expiry(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Some(t) = Timestamp::parse(s) {
        return Ok(t);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("bad expiry {s:?}: use e.g. 30d, 12h, 90m or an RFC 3339 time"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "" => DAY,
        "w" => 7 * DAY,
        _ => return Err(format!("bad expiry unit in {s:?}: use s, m, h, d or w")),
    };
    if n == 0 {
        return Err(format!("expiry {s:?} is not in the future"));
    }
    let us = n.checked_mul(secs).and_then(|x| x.checked_mul(1_000_000)).and_then(|x| i64::try_from(x).ok());
    us.and_then(|us| now.as_micros().checked_add(us))
        .map(Timestamp::from_micros)
        .ok_or_else(|| format!("expiry {s:?} is too far away"))
}

/// What an analyst gives to add an indicator (CLI flags, API body).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalystInput {
    /// `url`, `domain`, `ip`, `sha256`, `md5`, `sha1`.
    pub kind: String,
    /// The value (canonicalised here).
    pub value: String,
    /// `classification.type`, e.g. `malware-distribution`, `phishing`.
    pub category: String,
    /// Why (shown on warning pages and to analysts). Required.
    pub reason: String,
    /// `30d`, `12h`, an RFC 3339 time; default: the category's expiry.
    #[serde(default)]
    pub expires: Option<String>,
    /// Default `amber`.
    #[serde(default)]
    pub tlp: Option<String>,
    /// 0–100, default 80 (an analyst looked at it).
    #[serde(default)]
    pub confidence: Option<u8>,
    /// Malware family.
    #[serde(default)]
    pub malware: Option<String>,
    /// Sharing groups.
    #[serde(default)]
    pub sharing_groups: Vec<String>,
    /// Default `legitimate-business`.
    #[serde(default)]
    pub legal_basis: Option<String>,
}

/// Confidence of an analyst's indicator when none is given.
pub const ANALYST_DEFAULT_CONFIDENCE: u8 = 80;

/// Builds the indicator an analyst adds (source `analyst:<name>`), canonicalising the value.
pub fn analyst_indicator(
    input: &AnalystInput,
    analyst: &str,
    policy: &Policy,
    now: Timestamp,
) -> Result<Indicator, String> {
    let kind: IndicatorKind = input.kind.trim().parse().map_err(|e: kizuna_model::UnknownValue| e.to_string())?;
    let value = canonical_value(kind, &input.value).map_err(|e| e.to_string())?;
    let category: ClassificationType =
        input.category.trim().parse().map_err(|e: kizuna_model::UnknownClassification| e.to_string())?;
    let reason = input.reason.trim();
    if reason.is_empty() {
        return Err("a reason is required (it is shown on warning pages and to analysts)".into());
    }
    if analyst.trim().is_empty() {
        return Err("the analyst's name is required".into());
    }
    let expires = match &input.expires {
        Some(e) => parse_expiry(e, now)?,
        None => Timestamp::from_micros(
            now.as_micros().saturating_add(i64::try_from(policy.expiry_for(category).as_micros()).unwrap_or(i64::MAX)),
        ),
    };
    if expires <= now {
        return Err(format!("expiry {expires} is not in the future"));
    }
    let tlp = match &input.tlp {
        Some(t) => t.parse().map_err(|e: kizuna_model::UnknownValue| e.to_string())?,
        None => kizuna_model::Tlp::Amber,
    };
    let legal_basis = match &input.legal_basis {
        Some(b) => b.parse().map_err(|e: kizuna_model::UnknownValue| e.to_string())?,
        None => kizuna_model::LegalBasis::LegitimateBusiness,
    };
    let confidence = input.confidence.unwrap_or(ANALYST_DEFAULT_CONFIDENCE);
    if confidence > 100 {
        return Err(format!("confidence {confidence} is above 100"));
    }
    let mut groups: Vec<String> =
        input.sharing_groups.iter().map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect();
    groups.sort();
    groups.dedup();
    Ok(Indicator {
        kind,
        value,
        category,
        source: format!("{}{}", kizuna_store::indicators::ANALYST_SOURCE_PREFIX, analyst.trim()),
        confidence,
        first_seen: now,
        last_seen: now,
        expires,
        reason: reason.to_owned(),
        malware: input.malware.as_deref().map(|m| m.trim().to_ascii_lowercase()).filter(|m| !m.is_empty()),
        tlp,
        sharing_groups: groups,
        legal_basis,
    })
}

/// Parses an indicator reference: a 32-hex-digit key, or `<kind>:<value>` (e.g.
/// `url:http://bad.example/x`, `domain:bad.example`), canonicalised.
pub fn parse_reference(s: &str) -> Result<kizuna_store::indicators::IndicatorKey, String> {
    let s = s.trim();
    if let Some(k) = kizuna_store::indicators::parse_key(s).filter(|_| s.len() == 32) {
        return Ok(k);
    }
    let (kind, value) =
        s.split_once(':').ok_or_else(|| format!("{s:?} is neither a 32-hex-digit key nor <kind>:<value>"))?;
    let kind: IndicatorKind = kind.parse().map_err(|e: kizuna_model::UnknownValue| e.to_string())?;
    let value = canonical_value(kind, value).map_err(|e| e.to_string())?;
    Ok(kizuna_model::indicator_key(kind, &value))
}
