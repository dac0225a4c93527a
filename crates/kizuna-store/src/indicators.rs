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
//!   `last_seen` max, `expires` max, `confidence` max, sharing groups united, TLP the widest
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

/// Checks a value against allow-list entries (first matching entry wins, in the order given).
pub fn evaluate_allowlist(entries: &[AllowEntry], kind: IndicatorKind, value: &str) -> AllowVerdict {
    AllowVerdict {
        conflict: entries.iter().find(|e| e.blocks(kind, value)).map(AllowEntry::describe),
        shared_host: entries.iter().find(|e| e.shares_host_of(kind, value)).map(AllowEntry::describe),
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
    let ind = &mut rec.indicator;
    ind.first_seen = ind.first_seen.min(new.first_seen);
    ind.last_seen = ind.last_seen.max(new.last_seen);
    ind.expires = ind.expires.max(new.expires);
    ind.confidence = ind.confidence.max(new.confidence);
    if ind.malware.is_none() {
        ind.malware.clone_from(&new.malware);
    }
    for g in &new.sharing_groups {
        if !ind.sharing_groups.contains(g) {
            ind.sharing_groups.push(g.clone());
        }
    }
    ind.sharing_groups.sort();
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
