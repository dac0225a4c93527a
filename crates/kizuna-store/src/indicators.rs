//! Indicators: what kizuna publishes as "treat this as bad" (RPZ zones, STIX/TAXII, MISP), kept
//! with their state, allow-list conflicts, provenance and a commit-ordered change sequence.
//!
//! The [`IndicatorStore`] trait is the one interface to them. Derivation from observations,
//! the shipped allow-list and the publication granularity policy live in the pure
//! `kizuna-indicators` crate; the store only keeps records and applies the allow-list it holds,
//! so that "nothing allow-listed is ever active" holds in every transaction.
//!
//! # Guarantees (checked by the battery in this module, [`CHECKS`])
//! - One record per [`IndicatorKey`] (`Indicator::key()`, derived from kind and canonical value).
//!   [`IndicatorStore::upsert_indicators`] merges a repeated sighting into it: `first_seen` min,
//!   `last_seen` max, `expires` max (moved by an hour or more, [`EXPIRY_EXTEND_MIN_MICROS`]), `confidence` max, sharing groups united, TLP the widest
//!   seen (the value is known at that TLP), the primary source/reason/legal basis those of the
//!   earliest provenance entry at that TLP; every source is kept once in
//!   [`IndicatorRecord::provenance`] (at most [`MAX_PROVENANCE`], newest kept).
//! - Every change to a record (insert, merge that changes a field, withdrawal, expiry,
//!   allow-list re-evaluation) gives it a new `change_seq`, strictly increasing in commit order
//!   and never reused, and bumps its `version`. A reader that follows
//!   [`IndicatorStore::indicator_changes_since`] from the last `change_seq` it saw never misses a
//!   change (it sees each record's newest state once per read).
//! - The allow-list is applied on every write: a record matching an entry is
//!   [`IndicatorState::AllowListed`] with the entry in `conflict` (see [`AllowEntry::blocks`]);
//!   [`IndicatorStore::set_allowlist`] re-evaluates every stored record in the same transaction.
//! - A withdrawn record stays withdrawn when sighted again by a feed or sensor (the analyst
//!   decided); only an analyst's add (source `analyst:<name>`) makes it active again.

use std::collections::BTreeMap;

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, IpNet, LegalBasis, Timestamp, Tlp, url_host};

use crate::Result;

/// The stable key of an indicator: `Indicator::key()` (BLAKE3 of kind and canonical value).
pub type IndicatorKey = [u8; 16];

/// Most provenance entries kept per record (the newest sightings win).
pub const MAX_PROVENANCE: usize = 32;

/// A sighting extends a record's expiry only when it moves it by at least this much (an hour),
/// so that re-deliveries and bursts of sightings do not churn the change feed (and the DNS
/// zones behind it) for a few seconds of expiry.
pub const EXPIRY_EXTEND_MIN_MICROS: i64 = 3_600_000_000;

/// The source prefix of indicators added by an analyst (`analyst:<name>`).
pub const ANALYST_SOURCE_PREFIX: &str = "analyst:";

/// Where an indicator stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndicatorState {
    /// Published (subject to TLP and granularity).
    Active,
    /// Past its expiry; not published.
    Expired,
    /// Withdrawn by an analyst; not published.
    Withdrawn,
    /// Matches an allow-list entry; not published; reported as a conflict.
    AllowListed,
}

impl IndicatorState {
    /// Every state.
    pub const ALL: &'static [IndicatorState] =
        &[IndicatorState::Active, IndicatorState::Expired, IndicatorState::Withdrawn, IndicatorState::AllowListed];

    /// Stable spelling (store, API, metrics).
    pub const fn as_str(self) -> &'static str {
        match self {
            IndicatorState::Active => "active",
            IndicatorState::Expired => "expired",
            IndicatorState::Withdrawn => "withdrawn",
            IndicatorState::AllowListed => "allow-listed",
        }
    }
}

impl std::str::FromStr for IndicatorState {
    type Err = kizuna_model::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        IndicatorState::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| kizuna_model::UnknownValue {
            kind: "indicator state",
            value: s.to_owned(),
            known: "active, expired, withdrawn, allow-listed",
        })
    }
}

impl std::fmt::Display for IndicatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One source's sighting of an indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// Feed name, sensor, or `analyst:<name>`.
    pub source: String,
    /// What this source called it.
    pub category: ClassificationType,
    /// This source's reason.
    pub reason: String,
    /// This source's confidence (the highest it gave).
    pub confidence: u8,
    /// TLP this source gave (a narrower one than the record's must not leak this entry).
    pub tlp: Tlp,
    /// Legal basis this source gave.
    pub legal_basis: LegalBasis,
    /// First time this source saw it.
    pub first_seen: Timestamp,
    /// Last time this source saw it.
    pub last_seen: Timestamp,
}

/// Who withdrew an indicator, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    /// Analyst name (or "hub").
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// An indicator as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorRecord {
    /// `indicator.key()`.
    pub key: IndicatorKey,
    /// The merged indicator.
    pub indicator: Indicator,
    /// Where it stands.
    pub state: IndicatorState,
    /// When `state` is `AllowListed`: the allow-list entry that matched (its display form,
    /// [`AllowEntry::describe`]).
    pub conflict: Option<String>,
    /// For a URL that stays active: the allow-list entry its host matched (a shared platform),
    /// which makes it publishable as the URL only, never as a host-level block.
    pub shared_host: Option<String>,
    /// Every source's sighting.
    pub provenance: Vec<Provenance>,
    /// Set when withdrawn.
    pub withdrawal: Option<Withdrawal>,
    /// When the record was created.
    pub created: Timestamp,
    /// When it last changed.
    pub updated: Timestamp,
    /// 1 on insert, +1 on every change.
    pub version: u64,
    /// The store-wide change sequence number of its latest change.
    pub change_seq: u64,
}

impl IndicatorRecord {
    /// Published now: active and not past expiry (even before [`IndicatorStore::expire_indicators`] ran).
    pub fn is_publishable(&self, now: Timestamp) -> bool {
        self.state == IndicatorState::Active && self.indicator.expires > now
    }

    /// The key as lower-case hex (the API's spelling).
    pub fn key_hex(&self) -> String {
        hex::encode(self.key)
    }
}

/// Parses a key from its hex spelling.
pub fn parse_key(s: &str) -> Option<IndicatorKey> {
    let mut k = [0u8; 16];
    hex::decode_to_slice(s.trim(), &mut k).ok()?;
    Some(k)
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertOutcome {
    /// New records.
    pub inserted: u64,
    /// Existing records that changed (merged fields or state).
    pub updated: u64,
    /// Sightings that changed nothing (including repeats inside the batch).
    pub unchanged: u64,
    /// Of the inserted and updated: records that are allow-listed (conflicts) after the upsert.
    pub allowlisted: u64,
}

impl UpsertOutcome {
    /// Records inserted or changed.
    pub fn changed(&self) -> u64 {
        self.inserted + self.updated
    }
}

impl std::ops::AddAssign for UpsertOutcome {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.allowlisted += o.allowlisted;
    }
}

/// Which records [`IndicatorStore::list_indicators`] returns. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndicatorFilter {
    /// Only this kind.
    pub kind: Option<IndicatorKind>,
    /// Only this category.
    pub category: Option<ClassificationType>,
    /// Only this state.
    pub state: Option<IndicatorState>,
    /// Only records with a provenance entry from this source (exact).
    pub source: Option<String>,
    /// Only records whose value contains this (case-insensitive).
    pub search: Option<String>,
    /// At most this many (0 means the backend default, 1000).
    pub limit: usize,
    /// Newest change first; only records with a `change_seq` below this (the last one of the
    /// previous page), for paging.
    pub after: Option<u64>,
}

/// What an allow-list entry matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllowPattern {
    /// This domain and every name under it (`example.com` matches `a.b.example.com`).
    Domain(String),
    /// This host name only.
    Host(String),
    /// Addresses in this network (IPv4 or IPv6).
    Net(IpNet),
    /// This canonical URL only.
    Url(String),
}

impl AllowPattern {
    /// Parses the allow-list spelling: `example.com` (domain and subdomains), `=www.example.com`
    /// (exact host), `192.0.2.0/24` or `2001:db8::1` (network/address), `https://…` (exact
    /// URL). Values are canonicalised.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s.starts_with("http://") || s.starts_with("https://") {
            return kizuna_model::canonical_url(s).map(AllowPattern::Url).ok_or_else(|| format!("bad URL {s:?}"));
        }
        if let Some(h) = s.strip_prefix('=') {
            return kizuna_model::canonical_domain(h).map(AllowPattern::Host).ok_or_else(|| format!("bad host {h:?}"));
        }
        if let Ok(n) = s.parse::<IpNet>() {
            return Ok(AllowPattern::Net(n.trunc()));
        }
        if let Ok(a) = s.parse::<std::net::IpAddr>() {
            return Ok(AllowPattern::Net(IpNet::from(a)));
        }
        kizuna_model::canonical_domain(s.trim_start_matches("*."))
            .map(AllowPattern::Domain)
            .ok_or_else(|| format!("{s:?} is not a domain, =host, address, CIDR or http(s) URL"))
    }

    /// True when `host` (a canonical host name, or an address literal, IPv6 in brackets or not)
    /// is covered.
    pub fn matches_host(&self, host: &str) -> bool {
        match self {
            AllowPattern::Domain(d) => {
                host == d
                    || (host.len() > d.len()
                        && host.ends_with(d.as_str())
                        && host[..host.len() - d.len()].ends_with('.'))
            }
            AllowPattern::Host(h) => host == h,
            AllowPattern::Net(n) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| n.contains(&a)),
            AllowPattern::Url(_) => false,
        }
    }

    /// True when the network value `v` (an indicator of kind `ip`) overlaps this pattern.
    fn matches_net(&self, v: &IpNet) -> bool {
        match self {
            AllowPattern::Net(n) => n.contains(v) || v.contains(n),
            _ => false,
        }
    }
}

impl std::fmt::Display for AllowPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowPattern::Domain(d) => f.write_str(d),
            AllowPattern::Host(h) => write!(f, "={h}"),
            AllowPattern::Net(n) => write!(f, "{n}"),
            AllowPattern::Url(u) => f.write_str(u),
        }
    }
}

/// How much an allow-list entry protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum AllowScope {
    /// A shared platform: the host, domain or address is never blocked as a whole, but a URL on
    /// it may still be published as that URL (never as a host-level block).
    #[default]
    Host,
    /// Nothing under it is published, URLs included (the ISP's own portal, an analyst's
    /// "this is a false positive").
    All,
}

impl AllowScope {
    /// Stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AllowScope::Host => "host",
            AllowScope::All => "all",
        }
    }
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    /// What it matches.
    pub pattern: AllowPattern,
    /// How much it protects.
    pub scope: AllowScope,
    /// Where it came from: "default" (the shipped list), "config", "portal" (ISP portal
    /// domains), "analyst:<name>". [`IndicatorStore::set_allowlist`] replaces one origin's entries.
    pub origin: String,
    /// Why it is there.
    pub note: String,
}

impl AllowEntry {
    /// The display form recorded as a conflict: `pattern (origin[, all])`.
    pub fn describe(&self) -> String {
        match self.scope {
            AllowScope::Host => format!("{} ({})", self.pattern, self.origin),
            AllowScope::All => format!("{} ({}, all)", self.pattern, self.origin),
        }
    }

    /// True when this entry keeps the indicator `(kind, value)` (canonical value) from being
    /// published at all: a domain or address it covers, an exact URL, or (scope `All`) a URL on
    /// a host it covers. Hashes never match.
    pub fn blocks(&self, kind: IndicatorKind, value: &str) -> bool {
        match kind {
            IndicatorKind::Domain => self.pattern.matches_host(value),
            IndicatorKind::Ip => value.parse::<IpNet>().is_ok_and(|n| self.pattern.matches_net(&n)),
            IndicatorKind::Url => match &self.pattern {
                AllowPattern::Url(u) => u == value,
                p => self.scope == AllowScope::All && url_host(value).is_some_and(|h| p.matches_host(h)),
            },
            IndicatorKind::Sha256 | IndicatorKind::Md5 | IndicatorKind::Sha1 => false,
        }
    }

    /// True when this entry makes a URL indicator publishable as the URL only: its host is on
    /// a shared platform (scope `Host`).
    pub fn shares_host_of(&self, kind: IndicatorKind, value: &str) -> bool {
        kind == IndicatorKind::Url
            && self.scope == AllowScope::Host
            && url_host(value).is_some_and(|h| self.pattern.matches_host(h))
    }
}

/// The allow-list verdict for one value: see [`evaluate_allowlist`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowVerdict {
    /// The entry that keeps it from being published (→ `AllowListed`).
    pub conflict: Option<String>,
    /// For a URL: the shared-platform entry its host matched (→ URL-only).
    pub shared_host: Option<String>,
}

/// Checks a value against allow-list entries (see [`AllowMatcher::evaluate`]).
pub fn evaluate_allowlist(entries: &[AllowEntry], kind: IndicatorKind, value: &str) -> AllowVerdict {
    AllowMatcher::new(entries).evaluate(kind, value)
}

/// An allow-list prepared for fast lookups: host names by label suffix in hash maps, networks
/// and URLs apart. Built once per transaction (or per zone build), then checks any number of
/// values.
#[derive(Debug, Clone, Default)]
pub struct AllowMatcher {
    domains: std::collections::HashMap<String, Vec<AllowEntry>>,
    hosts: std::collections::HashMap<String, Vec<AllowEntry>>,
    urls: std::collections::HashMap<String, Vec<AllowEntry>>,
    nets: Vec<(IpNet, AllowEntry)>,
}

impl AllowMatcher {
    /// Prepares `entries`. Where several entries match the same name, scope `All` wins, then
    /// the first given.
    pub fn new(entries: &[AllowEntry]) -> Self {
        let mut m = AllowMatcher::default();
        for e in entries {
            match &e.pattern {
                AllowPattern::Domain(d) => m.domains.entry(d.clone()).or_default().push(e.clone()),
                AllowPattern::Host(h) => m.hosts.entry(h.clone()).or_default().push(e.clone()),
                AllowPattern::Url(u) => m.urls.entry(u.clone()).or_default().push(e.clone()),
                AllowPattern::Net(n) => m.nets.push((*n, e.clone())),
            }
        }
        for v in m.domains.values_mut().chain(m.hosts.values_mut()).chain(m.urls.values_mut()) {
            v.sort_by_key(|e| std::cmp::Reverse(e.scope));
        }
        m.nets.sort_by_key(|(n, e)| (std::cmp::Reverse(e.scope), std::cmp::Reverse(n.prefix_len())));
        m
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.hosts.is_empty() && self.urls.is_empty() && self.nets.is_empty()
    }

    /// Entries covering `host` (a host name or an address literal), most specific first: the
    /// exact host, then the domain and each parent domain, or the networks holding the address.
    pub fn host_entries<'a>(&'a self, host: &str) -> Vec<&'a AllowEntry> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(a) = bare.parse::<std::net::IpAddr>() {
            return self.nets.iter().filter(|(n, _)| n.contains(&a)).map(|(_, e)| e).collect();
        }
        let mut out: Vec<&AllowEntry> = self.hosts.get(host).into_iter().flatten().collect();
        let mut rest = host;
        loop {
            out.extend(self.domains.get(rest).into_iter().flatten());
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => break,
            }
        }
        out
    }

    /// The verdict for `(kind, value)` (canonical value): the first entry that
    /// [blocks](AllowEntry::blocks) it is the conflict; for a URL, the first scope-`Host`
    /// entry covering its host is its shared host.
    pub fn evaluate(&self, kind: IndicatorKind, value: &str) -> AllowVerdict {
        let mut v = AllowVerdict::default();
        match kind {
            IndicatorKind::Domain => {
                v.conflict = self.host_entries(value).first().map(|e| e.describe());
            }
            IndicatorKind::Ip => {
                if let Ok(n) = value.parse::<IpNet>() {
                    v.conflict =
                        self.nets.iter().find(|(p, _)| p.contains(&n) || n.contains(p)).map(|(_, e)| e.describe());
                }
            }
            IndicatorKind::Url => {
                v.conflict = self.urls.get(value).and_then(|e| e.first()).map(AllowEntry::describe);
                if let Some(host) = url_host(value) {
                    let on_host = self.host_entries(host);
                    if v.conflict.is_none() {
                        v.conflict = on_host.iter().find(|e| e.scope == AllowScope::All).map(|e| e.describe());
                    }
                    v.shared_host = on_host.iter().find(|e| e.scope == AllowScope::Host).map(|e| e.describe());
                }
            }
            IndicatorKind::Sha256 | IndicatorKind::Md5 | IndicatorKind::Sha1 => {}
        }
        v
    }
}

/// What a change of the allow-list did to stored records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowlistOutcome {
    /// Entries of the origin before.
    pub removed_entries: u64,
    /// Entries of the origin now.
    pub entries: u64,
    /// Records that became allow-listed.
    pub newly_allowlisted: u64,
    /// Records that were allow-listed and are active (or expired) again.
    pub released: u64,
    /// Records whose conflict or shared-host entry changed otherwise.
    pub updated: u64,
}

/// Count of records by category and state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndicatorCount {
    /// The category.
    pub category: ClassificationType,
    /// The state.
    pub state: IndicatorState,
    /// How many.
    pub count: u64,
}

/// Durable indicators, their allow-list and change feed. Every method is one transaction.
pub trait IndicatorStore: Send + Sync {
    /// Inserts or merges each indicator (by key; see the module docs for the merge rules) and
    /// applies the allow-list. Values must be canonical (`canonical_value`); a non-canonical
    /// one fails the batch with `StoreError::Conflict` naming it, storing nothing.
    fn upsert_indicators(&self, batch: &[Indicator], now: Timestamp) -> Result<UpsertOutcome>;

    /// Withdraws an indicator (any state but already withdrawn); returns the new record.
    /// `StoreError::NotFound` for an unknown key; an already withdrawn record is returned
    /// unchanged.
    fn withdraw_indicator(&self, key: IndicatorKey, by: &str, reason: &str, now: Timestamp) -> Result<IndicatorRecord>;

    /// One record.
    fn indicator(&self, key: IndicatorKey) -> Result<Option<IndicatorRecord>>;

    /// Records matching the filter, newest change first.
    fn list_indicators(&self, filter: &IndicatorFilter) -> Result<Vec<IndicatorRecord>>;

    /// Records with a `change_seq` above `after`, in `change_seq` order, at most `limit`: the
    /// incremental feed for the DNS primary and TAXII.
    fn indicator_changes_since(&self, after: u64, limit: usize) -> Result<Vec<IndicatorRecord>>;

    /// The newest committed `change_seq` (0 when none).
    fn indicator_change_seq(&self) -> Result<u64>;

    /// Records publishable at `now` ([`IndicatorRecord::is_publishable`]), in key order.
    fn active_indicators(&self, now: Timestamp) -> Result<Vec<IndicatorRecord>>;

    /// Marks active and allow-listed records whose expiry is at or before `now` as expired
    /// (each gets a new `change_seq`); returns how many.
    fn expire_indicators(&self, now: Timestamp) -> Result<u64>;

    /// Replaces the entries of one origin (entries' own `origin` is overwritten with it) and
    /// re-evaluates every record. An unchanged list changes nothing.
    fn set_allowlist(&self, origin: &str, entries: &[AllowEntry], now: Timestamp) -> Result<AllowlistOutcome>;

    /// Every allow-list entry, by origin then pattern.
    fn allowlist(&self) -> Result<Vec<AllowEntry>>;

    /// Record counts by category and state (only non-zero ones).
    fn indicator_counts(&self) -> Result<Vec<IndicatorCount>>;
}

/// Merges `new` into `rec` (same key) following the module's rules; returns true when
/// anything changed. State and allow-list fields are left to the caller.
pub fn merge_indicator(rec: &mut IndicatorRecord, new: &Indicator) -> bool {
    let before = (rec.indicator.clone(), rec.provenance.clone());
    // The record is published at its widest TLP, so everything it shows must come from entries
    // at that TLP: a narrower source's times, confidence, malware name or sharing groups would
    // leak to an audience that source did not allow (its entry stays in the provenance, which
    // only analysts see).
    let was = rec.indicator.tlp;
    let ind = &mut rec.indicator;
    if new.expires.as_micros() >= ind.expires.as_micros().saturating_add(EXPIRY_EXTEND_MIN_MICROS) {
        ind.expires = new.expires;
    }
    match rec.provenance.iter_mut().find(|p| p.source == new.source) {
        Some(p) => {
            p.first_seen = p.first_seen.min(new.first_seen);
            if new.last_seen >= p.last_seen {
                p.last_seen = new.last_seen;
                p.reason.clone_from(&new.reason);
                p.category = new.category;
            }
            p.confidence = p.confidence.max(new.confidence);
            p.tlp = p.tlp.min(new.tlp);
        }
        None => rec.provenance.push(provenance_of(new)),
    }
    if rec.provenance.len() > MAX_PROVENANCE {
        rec.provenance.sort_by_key(|p| std::cmp::Reverse(p.last_seen));
        rec.provenance.truncate(MAX_PROVENANCE);
    }
    rec.provenance.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then_with(|| a.source.cmp(&b.source)));
    // The widest TLP any source gave; the primary source is the earliest at that TLP.
    if let Some(widest) = rec.provenance.iter().map(|p| p.tlp).min()
        && let Some(p) = rec.provenance.iter().find(|p| p.tlp == widest)
    {
        let ind = &mut rec.indicator;
        ind.tlp = widest;
        ind.source.clone_from(&p.source);
        ind.reason.clone_from(&p.reason);
        ind.category = p.category;
        ind.legal_basis = p.legal_basis;
        let at = rec.provenance.iter().filter(|p| p.tlp == widest);
        ind.first_seen = at.clone().map(|p| p.first_seen).min().unwrap_or(ind.first_seen);
        ind.last_seen = at.clone().map(|p| p.last_seen).max().unwrap_or(ind.last_seen);
        ind.confidence = at.map(|p| p.confidence).max().unwrap_or(ind.confidence);
        if new.tlp == widest {
            if widest < was {
                // Widened by this sighting: what the record carried came from narrower sources.
                ind.sharing_groups.clone_from(&new.sharing_groups);
                ind.malware.clone_from(&new.malware);
            } else {
                for g in &new.sharing_groups {
                    if !ind.sharing_groups.contains(g) {
                        ind.sharing_groups.push(g.clone());
                    }
                }
                if ind.malware.is_none() {
                    ind.malware.clone_from(&new.malware);
                }
            }
            ind.sharing_groups.sort();
        }
    }
    (rec.indicator.clone(), rec.provenance.clone()) != before
}

/// The provenance entry of one sighting.
pub fn provenance_of(i: &Indicator) -> Provenance {
    Provenance {
        source: i.source.clone(),
        category: i.category,
        reason: i.reason.clone(),
        confidence: i.confidence,
        tlp: i.tlp,
        legal_basis: i.legal_basis,
        first_seen: i.first_seen,
        last_seen: i.last_seen,
    }
}

/// Groups counts into `category → state → count` (helper for reports and metrics).
pub fn counts_by_category(counts: &[IndicatorCount]) -> BTreeMap<ClassificationType, BTreeMap<IndicatorState, u64>> {
    let mut m: BTreeMap<ClassificationType, BTreeMap<IndicatorState, u64>> = BTreeMap::new();
    for c in counts {
        *m.entry(c.category).or_default().entry(c.state).or_default() += c.count;
    }
    m
}

impl<S: IndicatorStore, G: Send + Sync> IndicatorStore for crate::conformance::Guarded<S, G> {
    fn upsert_indicators(&self, batch: &[Indicator], now: Timestamp) -> Result<UpsertOutcome> {
        self.store.upsert_indicators(batch, now)
    }
    fn withdraw_indicator(&self, key: IndicatorKey, by: &str, reason: &str, now: Timestamp) -> Result<IndicatorRecord> {
        self.store.withdraw_indicator(key, by, reason, now)
    }
    fn indicator(&self, key: IndicatorKey) -> Result<Option<IndicatorRecord>> {
        self.store.indicator(key)
    }
    fn list_indicators(&self, filter: &IndicatorFilter) -> Result<Vec<IndicatorRecord>> {
        self.store.list_indicators(filter)
    }
    fn indicator_changes_since(&self, after: u64, limit: usize) -> Result<Vec<IndicatorRecord>> {
        self.store.indicator_changes_since(after, limit)
    }
    fn indicator_change_seq(&self) -> Result<u64> {
        self.store.indicator_change_seq()
    }
    fn active_indicators(&self, now: Timestamp) -> Result<Vec<IndicatorRecord>> {
        self.store.active_indicators(now)
    }
    fn expire_indicators(&self, now: Timestamp) -> Result<u64> {
        self.store.expire_indicators(now)
    }
    fn set_allowlist(&self, origin: &str, entries: &[AllowEntry], now: Timestamp) -> Result<AllowlistOutcome> {
        self.store.set_allowlist(origin, entries, now)
    }
    fn allowlist(&self) -> Result<Vec<AllowEntry>> {
        self.store.allowlist()
    }
    fn indicator_counts(&self) -> Result<Vec<IndicatorCount>> {
        self.store.indicator_counts()
    }
}

/// Conformance checks every [`IndicatorStore`] backend must pass. Each takes a factory making a
/// fresh, empty store; [`conformance::run_all`] runs them all.
pub mod conformance {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value};

    use super::*;
    use crate::StoreError;

    /// A factory making a fresh, empty store.
    pub type MakeIndicatorStore<'a> = &'a dyn Fn() -> Box<dyn IndicatorStore>;

    /// One check.
    pub type Check = fn(MakeIndicatorStore<'_>);

    /// Every check, by name.
    pub const CHECKS: &[(&str, Check)] = &[
        ("insert_and_read_back", insert_and_read_back),
        ("merge_rules", merge_rules),
        ("non_canonical_rejected", non_canonical_rejected),
        ("change_feed_in_commit_order", change_feed_in_commit_order),
        ("change_feed_while_writing", change_feed_while_writing),
        ("withdraw_and_reactivate", withdraw_and_reactivate),
        ("expire_and_revive", expire_and_revive),
        ("allowlist_applied_on_upsert", allowlist_applied_on_upsert),
        ("allowlist_reevaluates_records", allowlist_reevaluates_records),
        ("list_filters_and_paging", list_filters_and_paging),
        ("counts_by_category_and_state", counts_by_category_and_state),
    ];

    /// Runs every check, each on a fresh store.
    pub fn run_all(make: MakeIndicatorStore<'_>) {
        for (name, check) in CHECKS {
            eprintln!("indicator conformance: {name}");
            check(make);
        }
    }

    const H: i64 = 3_600_000_000;
    const T0: i64 = 1_772_668_800_000_000; // 2026-03-05T00:00:00Z

    fn t(hours: i64) -> Timestamp {
        Timestamp::from_micros(T0 + hours * H)
    }

    fn ind(kind: IndicatorKind, value: &str, source: &str, seen_h: i64) -> Indicator {
        Indicator {
            kind,
            value: canonical_value(kind, value).expect("test value is valid"),
            category: ClassificationType::MalwareDistribution,
            source: source.into(),
            confidence: 50,
            first_seen: t(seen_h),
            last_seen: t(seen_h),
            expires: t(seen_h + 24 * 30),
            reason: format!("{source} saw it"),
            malware: None,
            tlp: Tlp::Amber,
            sharing_groups: Vec::new(),
            legal_basis: LegalBasis::LegitimateBusiness,
        }
    }

    fn get(s: &dyn IndicatorStore, i: &Indicator) -> IndicatorRecord {
        s.indicator(i.key()).expect("read").expect("record exists")
    }

    /// An inserted indicator reads back unchanged, active, version 1, with one provenance entry.
    pub fn insert_and_read_back(make: MakeIndicatorStore<'_>) {
        let s = make();
        let mut a = ind(IndicatorKind::Url, "http://Bad.Example/x.sh", "cowrie", 0);
        a.malware = Some("mirai".into());
        a.sharing_groups = vec!["jp-isps".into()];
        let out = s.upsert_indicators(std::slice::from_ref(&a), t(1)).expect("upsert");
        assert_eq!(out, UpsertOutcome { inserted: 1, updated: 0, unchanged: 0, allowlisted: 0 });
        let r = get(s.as_ref(), &a);
        assert_eq!(r.indicator, a);
        assert_eq!(r.key, a.key());
        assert_eq!(r.state, IndicatorState::Active);
        assert_eq!((r.version, r.change_seq), (1, 1));
        assert_eq!((r.created, r.updated), (t(1), t(1)));
        assert_eq!(r.provenance.len(), 1);
        assert_eq!(r.provenance[0].source, "cowrie");
        assert!(r.conflict.is_none() && r.withdrawal.is_none());
        assert_eq!(s.indicator_change_seq().expect("seq"), 1);
        assert!(s.indicator([0u8; 16]).expect("read").is_none());
    }

    /// Same key: first_seen min, last_seen max, expiry max, confidence max, TLP widest, every
    /// source kept once; an identical repeat changes nothing.
    pub fn merge_rules(make: MakeIndicatorStore<'_>) {
        let s = make();
        let a = ind(IndicatorKind::Domain, "bad.example", "feed-a", 10);
        let mut b = ind(IndicatorKind::Domain, "bad.example", "feed-b", 20);
        b.first_seen = t(5);
        b.confidence = 90;
        b.tlp = Tlp::Green;
        b.reason = "feed-b says so".into();
        b.sharing_groups = vec!["g2".into(), "g1".into()];
        s.upsert_indicators(std::slice::from_ref(&a), t(10)).expect("a");
        let out = s.upsert_indicators(std::slice::from_ref(&b), t(20)).expect("b");
        assert_eq!((out.inserted, out.updated, out.unchanged), (0, 1, 0));
        let r = get(s.as_ref(), &a);
        assert_eq!(r.indicator.first_seen, t(5));
        assert_eq!(r.indicator.last_seen, t(20));
        assert_eq!(r.indicator.expires, b.expires);
        assert_eq!(r.indicator.confidence, 90);
        assert_eq!(r.indicator.tlp, Tlp::Green, "the widest TLP a source gave");
        assert_eq!(r.indicator.source, "feed-b", "primary source: the earliest at the widest TLP");
        assert_eq!(r.indicator.reason, "feed-b says so");
        assert_eq!(r.indicator.sharing_groups, vec!["g1".to_string(), "g2".to_string()]);
        let sources: BTreeSet<&str> = r.provenance.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(sources, BTreeSet::from(["feed-a", "feed-b"]));
        assert_eq!(r.version, 2);
        let seq = r.change_seq;
        // The same sightings again, twice within one batch: nothing changes.
        let out = s.upsert_indicators(&[a.clone(), b.clone(), a.clone()], t(30)).expect("repeat");
        assert_eq!((out.inserted, out.updated, out.unchanged), (0, 0, 3));
        let r2 = get(s.as_ref(), &a);
        assert_eq!((r2.change_seq, r2.version), (seq, 2));
        // Two new sightings of one new key in one batch: one insert, both merged.
        let c1 = ind(IndicatorKind::Ip, "198.51.100.7", "feed-a", 1);
        let c2 = ind(IndicatorKind::Ip, "198.51.100.7", "feed-c", 2);
        let out = s.upsert_indicators(&[c1.clone(), c2], t(31)).expect("pair");
        assert_eq!((out.inserted, out.updated, out.unchanged), (1, 0, 1));
        let rc = get(s.as_ref(), &c1);
        assert_eq!(rc.provenance.len(), 2);
        assert_eq!(rc.indicator.last_seen, t(2));
        assert_eq!(rc.version, 1);

        // What a narrower source said never shows on a wider record (it would reach an audience
        // that source did not allow); it stays in the provenance. In either order of arrival.
        for (n, amber_first) in [(0, true), (1, false)] {
            let value = format!("mixed{n}.example");
            let mut amber = ind(IndicatorKind::Domain, &value, "sensor-amber", 30);
            amber.first_seen = t(1);
            amber.confidence = 99;
            amber.sharing_groups = vec!["secret-group".into()];
            amber.malware = Some("secret-family".into());
            let mut green = ind(IndicatorKind::Domain, &value, "feed-green", 10);
            green.tlp = Tlp::Green;
            green.last_seen = t(12);
            green.sharing_groups = vec!["g-green".into()];
            let order = if amber_first { [&amber, &green] } else { [&green, &amber] };
            for i in order {
                s.upsert_indicators(std::slice::from_ref(i), t(40)).expect("upsert");
            }
            let mut later = amber.clone();
            later.last_seen = t(50);
            later.confidence = 100;
            s.upsert_indicators(&[later], t(50)).expect("later amber");
            let r = get(s.as_ref(), &green);
            let i = &r.indicator;
            assert_eq!(i.tlp, Tlp::Green, "{value}");
            assert_eq!((i.first_seen, i.last_seen), (t(10), t(12)), "{value}: only the GREEN source's times");
            assert_eq!(i.confidence, 50, "{value}");
            assert_eq!(i.sharing_groups, vec!["g-green".to_string()], "{value}");
            assert_eq!(i.malware, None, "{value}: the AMBER source's malware name stays out");
            let a = r.provenance.iter().find(|p| p.source == "sensor-amber").expect("amber entry kept");
            assert_eq!((a.first_seen, a.last_seen, a.tlp), (t(1), t(50), Tlp::Amber), "{value}");
        }
    }

    /// A value not in canonical form fails the whole batch; nothing is stored.
    pub fn non_canonical_rejected(make: MakeIndicatorStore<'_>) {
        let s = make();
        let good = ind(IndicatorKind::Domain, "ok.example", "f", 0);
        let mut bad = ind(IndicatorKind::Url, "http://bad.example/", "f", 0);
        bad.value = "HTTP://Bad.Example".into();
        let err = s.upsert_indicators(&[good.clone(), bad], t(0)).expect_err("non-canonical URL");
        assert!(matches!(err, StoreError::Conflict(ref m) if m.contains("canonical")), "{err}");
        let mut conf = good.clone();
        conf.confidence = 101;
        assert!(s.upsert_indicators(&[conf], t(0)).is_err());
        assert!(s.indicator(good.key()).expect("read").is_none());
        assert_eq!(s.indicator_change_seq().expect("seq"), 0);
    }

    /// Change numbers increase strictly in commit order; each record appears once at its latest
    /// change; nothing is missed by a reader that resumes from the last number it saw.
    pub fn change_feed_in_commit_order(make: MakeIndicatorStore<'_>) {
        let s = make();
        let a = ind(IndicatorKind::Domain, "a.example", "f", 0);
        let b = ind(IndicatorKind::Domain, "b.example", "f", 0);
        let c = ind(IndicatorKind::Domain, "c.example", "f", 0);
        s.upsert_indicators(&[a.clone(), b.clone()], t(0)).expect("ab");
        let first = s.indicator_changes_since(0, 100).expect("changes");
        assert_eq!(first.iter().map(|r| r.change_seq).collect::<Vec<_>>(), vec![1, 2]);
        let mark = first.last().map(|r| r.change_seq).unwrap_or(0);
        s.upsert_indicators(std::slice::from_ref(&c), t(1)).expect("c");
        let mut a2 = a.clone();
        a2.last_seen = t(5);
        s.upsert_indicators(&[a2], t(5)).expect("a again");
        let next = s.indicator_changes_since(mark, 100).expect("changes");
        let keys: Vec<IndicatorKey> = next.iter().map(|r| r.key).collect();
        assert_eq!(keys, vec![c.key(), a.key()]);
        assert!(next.windows(2).all(|w| w[0].change_seq < w[1].change_seq));
        // The whole feed has each record once, at its latest change.
        let all = s.indicator_changes_since(0, 100).expect("all");
        assert_eq!(all.iter().map(|r| r.key).collect::<Vec<_>>(), vec![b.key(), c.key(), a.key()]);
        assert_eq!(s.indicator_change_seq().expect("seq"), 4);
        assert!(s.indicator_changes_since(4, 100).expect("none").is_empty());
        assert_eq!(s.indicator_changes_since(0, 1).expect("limit").len(), 1);
    }

    /// A reader following the change feed while a writer commits sees every record.
    pub fn change_feed_while_writing(make: MakeIndicatorStore<'_>) {
        let s = make();
        let done = AtomicBool::new(false);
        let n_batches = 40;
        let per = 25;
        std::thread::scope(|scope| {
            let s = s.as_ref();
            scope.spawn(|| {
                for b in 0..n_batches {
                    let batch: Vec<Indicator> =
                        (0..per).map(|i| ind(IndicatorKind::Domain, &format!("h{i}.b{b}.example"), "f", b)).collect();
                    s.upsert_indicators(&batch, t(b)).expect("upsert");
                }
                done.store(true, Ordering::SeqCst);
            });
            let mut seen = BTreeSet::new();
            let mut after = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = s.indicator_changes_since(after, 7).expect("changes");
                for r in &page {
                    assert!(r.change_seq > after, "change feed went backwards");
                    after = r.change_seq;
                    seen.insert(r.key);
                }
                if page.is_empty() && finished {
                    break;
                }
            }
            assert_eq!(seen.len(), n_batches as usize * per as usize);
        });
    }

    /// Withdrawal is recorded and sticky against feed sightings; an analyst's add revives it.
    pub fn withdraw_and_reactivate(make: MakeIndicatorStore<'_>) {
        let s = make();
        let a = ind(IndicatorKind::Url, "http://bad.example/a", "cowrie", 0);
        s.upsert_indicators(std::slice::from_ref(&a), t(0)).expect("a");
        let r = s.withdraw_indicator(a.key(), "alice", "false positive", t(1)).expect("withdraw");
        assert_eq!(r.state, IndicatorState::Withdrawn);
        assert_eq!(r.withdrawal, Some(Withdrawal { by: "alice".into(), reason: "false positive".into(), at: t(1) }));
        assert_eq!((r.version, r.change_seq), (2, 2));
        assert!(s.active_indicators(t(2)).expect("active").is_empty());
        // Withdrawing again changes nothing.
        let again = s.withdraw_indicator(a.key(), "bob", "again", t(2)).expect("again");
        assert_eq!(again.change_seq, 2);
        // A feed sees it again: still withdrawn.
        let mut seen = a.clone();
        seen.last_seen = t(3);
        s.upsert_indicators(&[seen], t(3)).expect("seen");
        assert_eq!(get(s.as_ref(), &a).state, IndicatorState::Withdrawn);
        // An analyst adds it: active again.
        let mut by_analyst = a.clone();
        by_analyst.source = format!("{ANALYST_SOURCE_PREFIX}bob");
        s.upsert_indicators(&[by_analyst], t(4)).expect("analyst");
        let r = get(s.as_ref(), &a);
        assert_eq!(r.state, IndicatorState::Active);
        assert!(r.withdrawal.is_none());
        assert_eq!(s.active_indicators(t(5)).expect("active").len(), 1);
        let err = s.withdraw_indicator([7u8; 16], "alice", "x", t(5)).expect_err("unknown");
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }

    /// Expiry marks records expired with a new change number; a later sighting with a later
    /// expiry makes them active again.
    pub fn expire_and_revive(make: MakeIndicatorStore<'_>) {
        let s = make();
        let mut short = ind(IndicatorKind::Domain, "short.example", "f", 0);
        short.expires = t(2);
        let long = ind(IndicatorKind::Domain, "long.example", "f", 0);
        s.upsert_indicators(&[short.clone(), long.clone()], t(0)).expect("upsert");
        assert_eq!(s.active_indicators(t(1)).expect("active").len(), 2);
        // Past expiry it is not active even before expire ran.
        assert_eq!(s.active_indicators(t(3)).expect("active").len(), 1);
        let seq = s.indicator_change_seq().expect("seq");
        assert_eq!(s.expire_indicators(t(3)).expect("expire"), 1);
        assert_eq!(s.expire_indicators(t(3)).expect("expire again"), 0);
        let r = get(s.as_ref(), &short);
        assert_eq!(r.state, IndicatorState::Expired);
        assert_eq!(r.change_seq, seq + 1);
        assert_eq!(s.indicator_changes_since(seq, 10).expect("changes").len(), 1);
        let mut again = short.clone();
        again.last_seen = t(4);
        again.expires = t(100);
        s.upsert_indicators(&[again], t(4)).expect("revive");
        assert_eq!(get(s.as_ref(), &short).state, IndicatorState::Active);
        // A sighting at a store time past its expiry stores it as expired.
        let mut old = ind(IndicatorKind::Domain, "old.example", "f", 0);
        old.expires = t(1);
        s.upsert_indicators(std::slice::from_ref(&old), t(50)).expect("old");
        assert_eq!(get(s.as_ref(), &old).state, IndicatorState::Expired);
    }

    fn entry(p: &str, scope: AllowScope) -> AllowEntry {
        AllowEntry { pattern: AllowPattern::parse(p).expect("pattern"), scope, origin: String::new(), note: "t".into() }
    }

    /// The stored allow-list is applied to every upsert.
    pub fn allowlist_applied_on_upsert(make: MakeIndicatorStore<'_>) {
        let s = make();
        let out = s
            .set_allowlist(
                "default",
                &[
                    entry("google.com", AllowScope::Host),
                    entry("=cdn.example", AllowScope::Host),
                    entry("192.0.2.0/24", AllowScope::Host),
                    entry("portal.isp.example", AllowScope::All),
                ],
                t(0),
            )
            .expect("allowlist");
        assert_eq!(out.entries, 4);
        let sub = ind(IndicatorKind::Domain, "evil.google.com", "f", 0);
        let url = ind(IndicatorKind::Url, "https://docs.google.com/x", "f", 0);
        let exact = ind(IndicatorKind::Domain, "cdn.example", "f", 0);
        let below = ind(IndicatorKind::Domain, "a.cdn.example", "f", 0);
        let ip = ind(IndicatorKind::Ip, "192.0.2.9", "f", 0);
        let wide = ind(IndicatorKind::Ip, "192.0.0.0/16", "f", 0);
        let portal_url = ind(IndicatorKind::Url, "https://www.portal.isp.example/login", "f", 0);
        let free = ind(IndicatorKind::Domain, "notgoogle.com", "f", 0);
        let batch = [
            sub.clone(),
            url.clone(),
            exact.clone(),
            below.clone(),
            ip.clone(),
            wide.clone(),
            portal_url.clone(),
            free.clone(),
        ];
        let out = s.upsert_indicators(&batch, t(1)).expect("upsert");
        assert_eq!(out.inserted, 8);
        assert_eq!(out.allowlisted, 5);
        let st = |i: &Indicator| get(s.as_ref(), i);
        assert_eq!(st(&sub).state, IndicatorState::AllowListed);
        assert_eq!(st(&sub).conflict.as_deref(), Some("google.com (default)"));
        let u = st(&url);
        assert_eq!(u.state, IndicatorState::Active, "a URL on a shared platform stays publishable as a URL");
        assert_eq!(u.shared_host.as_deref(), Some("google.com (default)"));
        assert_eq!(st(&exact).state, IndicatorState::AllowListed);
        assert_eq!(st(&below).state, IndicatorState::Active, "=host covers that host only");
        assert_eq!(st(&ip).state, IndicatorState::AllowListed);
        assert_eq!(st(&wide).state, IndicatorState::AllowListed, "a network covering allow-listed space");
        assert_eq!(st(&portal_url).state, IndicatorState::AllowListed);
        assert_eq!(st(&portal_url).conflict.as_deref(), Some("portal.isp.example (default, all)"));
        assert_eq!(st(&free).state, IndicatorState::Active, "suffix match is by label");
        let active: BTreeSet<IndicatorKey> = s.active_indicators(t(2)).expect("active").iter().map(|r| r.key).collect();
        assert_eq!(active, BTreeSet::from([url.key(), below.key(), free.key()]));
    }

    /// Changing the allow-list re-evaluates stored records in the same transaction, with new
    /// change numbers; an unchanged list changes nothing; origins are replaced independently.
    pub fn allowlist_reevaluates_records(make: MakeIndicatorStore<'_>) {
        let s = make();
        let d = ind(IndicatorKind::Domain, "files.shared.example", "f", 0);
        let u = ind(IndicatorKind::Url, "http://files.shared.example/a.exe", "f", 0);
        s.upsert_indicators(&[d.clone(), u.clone()], t(0)).expect("upsert");
        let seq = s.indicator_change_seq().expect("seq");
        let out = s.set_allowlist("config", &[entry("shared.example", AllowScope::Host)], t(1)).expect("set");
        assert_eq!((out.newly_allowlisted, out.updated, out.entries), (1, 1, 1));
        assert_eq!(get(s.as_ref(), &d).state, IndicatorState::AllowListed);
        assert!(get(s.as_ref(), &d).change_seq > seq);
        assert_eq!(get(s.as_ref(), &u).shared_host.as_deref(), Some("shared.example (config)"));
        let seq2 = s.indicator_change_seq().expect("seq");
        // Same list again: nothing changes.
        let out = s.set_allowlist("config", &[entry("shared.example", AllowScope::Host)], t(2)).expect("again");
        assert_eq!((out.newly_allowlisted, out.released, out.updated), (0, 0, 0));
        assert_eq!(s.indicator_change_seq().expect("seq"), seq2);
        // Another origin does not replace this one.
        s.set_allowlist("analyst:alice", &[entry("=other.example", AllowScope::All)], t(3)).expect("other");
        let list = s.allowlist().expect("list");
        assert_eq!(list.len(), 2);
        assert!(
            list.iter().any(|e| e.origin == "config" && e.pattern == AllowPattern::Domain("shared.example".into()))
        );
        assert!(list.iter().any(|e| e.origin == "analyst:alice" && e.scope == AllowScope::All));
        // Removing the entry releases the record.
        let out = s.set_allowlist("config", &[], t(4)).expect("clear");
        assert_eq!((out.released, out.removed_entries, out.entries), (1, 1, 0));
        assert_eq!(get(s.as_ref(), &d).state, IndicatorState::Active);
        assert!(get(s.as_ref(), &d).conflict.is_none());
        assert!(get(s.as_ref(), &u).shared_host.is_none());
        // A withdrawn record stays withdrawn whatever the list says.
        s.withdraw_indicator(d.key(), "alice", "x", t(5)).expect("withdraw");
        s.set_allowlist("config", &[entry("shared.example", AllowScope::Host)], t(6)).expect("set");
        assert_eq!(get(s.as_ref(), &d).state, IndicatorState::Withdrawn);
    }

    /// Filters combine; paging by change number walks every match once, newest first.
    pub fn list_filters_and_paging(make: MakeIndicatorStore<'_>) {
        let s = make();
        let mut batch = Vec::new();
        for i in 0..30 {
            let mut x =
                ind(IndicatorKind::Domain, &format!("host{i}.bad.example"), if i % 2 == 0 { "even" } else { "odd" }, 0);
            if i % 3 == 0 {
                x.category = ClassificationType::Phishing;
            }
            batch.push(x);
        }
        batch.push(ind(IndicatorKind::Url, "http://host1.bad.example/p", "odd", 0));
        s.upsert_indicators(&batch, t(0)).expect("upsert");
        s.withdraw_indicator(batch[0].key(), "a", "x", t(1)).expect("withdraw");
        let list = |f: IndicatorFilter| s.list_indicators(&f).expect("list");
        assert_eq!(list(IndicatorFilter::default()).len(), 31);
        assert_eq!(list(IndicatorFilter { kind: Some(IndicatorKind::Url), ..Default::default() }).len(), 1);
        assert_eq!(
            list(IndicatorFilter { category: Some(ClassificationType::Phishing), ..Default::default() }).len(),
            10
        );
        assert_eq!(list(IndicatorFilter { state: Some(IndicatorState::Withdrawn), ..Default::default() }).len(), 1);
        assert_eq!(list(IndicatorFilter { source: Some("even".into()), ..Default::default() }).len(), 15);
        assert_eq!(list(IndicatorFilter { source: Some("eve".into()), ..Default::default() }).len(), 0, "exact source");
        assert_eq!(list(IndicatorFilter { search: Some("HOST1".into()), ..Default::default() }).len(), 12);
        let both = list(IndicatorFilter {
            source: Some("even".into()),
            category: Some(ClassificationType::Phishing),
            state: Some(IndicatorState::Active),
            ..Default::default()
        });
        assert_eq!(both.len(), 4); // 6, 12, 18, 24 (0 is withdrawn)
        let first = list(IndicatorFilter::default());
        assert_eq!(first[0].key, batch[0].key(), "newest change first");
        let mut seen = BTreeSet::new();
        let mut after = None;
        loop {
            let page = list(IndicatorFilter { limit: 4, after, ..Default::default() });
            if page.is_empty() {
                break;
            }
            assert!(page.windows(2).all(|w| w[0].change_seq > w[1].change_seq));
            for r in &page {
                assert!(seen.insert(r.key), "repeat");
            }
            after = page.last().map(|r| r.change_seq);
        }
        assert_eq!(seen.len(), 31);
    }

    /// Counts by category and state.
    pub fn counts_by_category_and_state(make: MakeIndicatorStore<'_>) {
        let s = make();
        assert!(s.indicator_counts().expect("counts").is_empty());
        let a = ind(IndicatorKind::Domain, "a.example", "f", 0);
        let b = ind(IndicatorKind::Domain, "b.example", "f", 0);
        let mut c = ind(IndicatorKind::Domain, "c.example", "f", 0);
        c.category = ClassificationType::Phishing;
        s.upsert_indicators(&[a.clone(), b, c], t(0)).expect("upsert");
        s.withdraw_indicator(a.key(), "x", "y", t(1)).expect("withdraw");
        let m = counts_by_category(&s.indicator_counts().expect("counts"));
        let md = &m[&ClassificationType::MalwareDistribution];
        assert_eq!(md.get(&IndicatorState::Active), Some(&1));
        assert_eq!(md.get(&IndicatorState::Withdrawn), Some(&1));
        assert_eq!(m[&ClassificationType::Phishing].get(&IndicatorState::Active), Some(&1));
        let total: u64 = s.indicator_counts().expect("counts").iter().map(|c| c.count).sum();
        assert_eq!(total, 3);
    }
}
