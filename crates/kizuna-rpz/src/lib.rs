//! Response Policy Zones (RPZ) from indicators: pure, deterministic zone generation.
//!
//! A policy zone is an ordinary DNS zone (SOA and NS at the apex) whose owner names are
//! triggers and whose records are actions (the de facto format of BIND's ARM and Unbound's
//! documentation; draft-vixie-dnsop-dns-rpz):
//!
//! - a domain indicator `bad.example` becomes the QNAME triggers `bad.example` and (when the
//!   policy asks for it) `*.bad.example`: a wildcard does not cover its own apex, and Unbound
//!   needs both;
//! - an address indicator becomes an `rpz-ip` trigger: `32.7.100.51.198.rpz-ip` for
//!   198.51.100.7/32; IPv6 writes the 16-bit words in reverse with `zz` for the longest run of
//!   zero words, exactly as BIND's canonical form (BIND logs "not the canonical" otherwise);
//! - a URL indicator becomes the QNAME trigger of its host only when its publish granularity is
//!   [`Granularity::Host`] (a URL on a shared host must not block the host);
//! - a per-ISP client zone ([`client_passthru_zone`]) lists `rpz-client-ip` triggers with
//!   `CNAME rpz-passthru.`, which is how a resolver exempts subscribers who did not consent.
//!
//! Every owner name is relative to the zone and inside it: Unbound rejects a whole zone for one
//! out-of-zone name. Names that would not fit in 255 octets are skipped and reported. The zone
//! keeps a provenance map from each trigger owner to the indicator keys that produced it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use kizuna_model::{ClassificationType, Indicator, IndicatorKind, Timestamp, canonical_domain, url_host};
use serde::{Deserialize, Serialize};

/// A 128-bit indicator key ([`Indicator::key`]).
pub type IndicatorKey = [u8; 16];

/// What a policy zone tells the resolver to do with a triggered query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RpzAction {
    /// Answer with local data: the address(es) of the ISP's warning page ("walled garden").
    LocalData {
        /// IPv4 address of the warning page.
        #[serde(default)]
        a: Option<Ipv4Addr>,
        /// IPv6 address of the warning page.
        #[serde(default)]
        aaaa: Option<Ipv6Addr>,
    },
    /// `CNAME target`: a warning-page name. `*.garden.example` keeps the query name
    /// (`bad.example.garden.example`), so the garden's web server can tell what was blocked.
    Cname {
        /// The target name.
        target: String,
    },
    /// `CNAME .`: NXDOMAIN.
    Nxdomain,
    /// `CNAME *.`: NODATA.
    Nodata,
    /// `CNAME rpz-drop.`: no answer at all.
    Drop,
    /// `CNAME rpz-passthru.`: answer normally (allow-list zones).
    Passthru,
}

/// A classification type, spelled as in the model (`malware-distribution`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(pub ClassificationType);

impl TryFrom<String> for Category {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse::<ClassificationType>().map(Category).map_err(|e| e.to_string())
    }
}

impl From<Category> for String {
    fn from(c: Category) -> String {
        c.0.as_str().to_owned()
    }
}

/// SOA fields other than the serial (which the primary owns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoaParams {
    /// MNAME: the primary's name.
    pub mname: String,
    /// RNAME: the responsible mailbox, as a name.
    pub rname: String,
    /// REFRESH seconds: how often secondaries poll when NOTIFY is lost.
    pub refresh: u32,
    /// RETRY seconds.
    pub retry: u32,
    /// EXPIRE seconds: a secondary that cannot reach the primary for this long drops the zone.
    pub expire: u32,
    /// MINIMUM (negative caching TTL).
    pub minimum: u32,
}

impl Default for SoaParams {
    fn default() -> Self {
        SoaParams {
            mname: "localhost.".into(),
            rname: "hostmaster.localhost.".into(),
            refresh: 60,
            retry: 10,
            expire: 86_400,
            minimum: 30,
        }
    }
}

fn default_ttl() -> u32 {
    30
}
fn default_true() -> bool {
    true
}
fn default_ns() -> Vec<String> {
    vec!["localhost.".into()]
}

/// One member's policy zone: its name, action and what goes in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpzPolicy {
    /// Zone name, e.g. `rpz.isp-a.kizuna.example`.
    pub zone_name: String,
    /// What a triggered query gets.
    pub action: RpzAction,
    /// TTL of the policy records (BIND caps rewritten answers at `max-policy-ttl` as well).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Only these categories (empty: all).
    #[serde(default)]
    pub include_categories: Vec<Category>,
    /// Emit `*.name` beside `name` for domain triggers.
    #[serde(default = "default_true")]
    pub wildcard: bool,
    /// SOA fields.
    #[serde(default)]
    pub soa: SoaParams,
    /// NS targets at the apex (required by the zone format; resolvers do not use them).
    #[serde(default = "default_ns")]
    pub ns: Vec<String>,
}

impl RpzPolicy {
    /// A policy with defaults for everything but the name and action.
    pub fn new(zone_name: impl Into<String>, action: RpzAction) -> Self {
        RpzPolicy {
            zone_name: zone_name.into(),
            action,
            ttl: default_ttl(),
            include_categories: Vec::new(),
            wildcard: true,
            soa: SoaParams::default(),
            ns: default_ns(),
        }
    }

    /// Checks names and the action; returns the zone origin (lower case, trailing dot).
    pub fn validate(&self) -> Result<String, PolicyError> {
        let origin = zone_origin(&self.zone_name)
            .ok_or_else(|| PolicyError::new(&self.zone_name, "zone_name is not a domain name"))?;
        let abs = |field: &'static str, s: &str| {
            absolute_name(s).ok_or_else(|| PolicyError::new(&self.zone_name, field)).map(|_| ())
        };
        abs("soa.mname is not a domain name", &self.soa.mname)?;
        abs("soa.rname is not a domain name", &self.soa.rname)?;
        if self.ns.is_empty() {
            return Err(PolicyError::new(&self.zone_name, "ns must name at least one server"));
        }
        for n in &self.ns {
            abs("ns is not a domain name", n)?;
        }
        match &self.action {
            RpzAction::LocalData { a: None, aaaa: None } => {
                return Err(PolicyError::new(&self.zone_name, "local-data needs an a or aaaa address"));
            }
            RpzAction::Cname { target } => {
                let t = target.strip_prefix("*.").unwrap_or(target);
                abs("cname target is not a domain name", t)?;
            }
            _ => {}
        }
        Ok(origin)
    }
}

/// A policy that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("RPZ policy for zone {zone:?}: {reason}")]
pub struct PolicyError {
    /// The zone named in the policy.
    pub zone: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl PolicyError {
    fn new(zone: &str, reason: &'static str) -> Self {
        PolicyError { zone: zone.to_owned(), reason }
    }
}

/// At which granularity a URL indicator may be published (decided by the indicator policy:
/// a URL on a shared host must not block the whole host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// The URL's host may be blocked as a whole.
    Host,
    /// Only the URL itself: DNS cannot express that, so nothing goes in a policy zone.
    UrlOnly,
}

/// One indicator to consider for a zone.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The indicator's key (provenance).
    pub key: IndicatorKey,
    /// The indicator.
    pub indicator: &'a Indicator,
    /// Publish granularity for URL indicators (ignored for other kinds).
    pub granularity: Granularity,
}

/// Record data of a policy zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RData {
    /// CNAME to an absolute name (with trailing dot): `.`, `*.`, `rpz-passthru.`, a garden.
    Cname(String),
    /// Local data: IPv4.
    A(Ipv4Addr),
    /// Local data: IPv6.
    Aaaa(Ipv6Addr),
    /// Apex NS.
    Ns(String),
}

impl RData {
    /// Zone-file type mnemonic.
    pub fn type_str(&self) -> &'static str {
        match self {
            RData::Cname(_) => "CNAME",
            RData::A(_) => "A",
            RData::Aaaa(_) => "AAAA",
            RData::Ns(_) => "NS",
        }
    }
}

impl std::fmt::Display for RData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RData::Cname(n) | RData::Ns(n) => f.write_str(n),
            RData::A(a) => write!(f, "{a}"),
            RData::Aaaa(a) => write!(f, "{a}"),
        }
    }
}

/// A record of a policy zone; `owner` is relative to the zone (`""` is the apex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    /// Owner name relative to the origin, lower case, no trailing dot; `""` for the apex.
    pub owner: String,
    /// TTL.
    pub ttl: u32,
    /// Data.
    pub data: RData,
}

/// Why an indicator did not produce a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Past its expiry.
    Expired,
    /// Its category is not in the policy's `include_categories`.
    CategoryExcluded,
    /// A file hash: nothing to express in DNS.
    NotDns,
    /// A URL whose granularity is URL-only.
    UrlOnly,
    /// A URL whose host is an address literal: no DNS query to rewrite.
    AddressLiteralHost,
    /// The value is not canonical for its kind.
    InvalidValue,
    /// The trigger name would exceed 255 octets under this zone.
    NameTooLong,
    /// `0.0.0.0/0` or `::/0`: would rewrite everything.
    ZeroPrefix,
}

impl SkipReason {
    /// Stable spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Expired => "expired",
            SkipReason::CategoryExcluded => "category-excluded",
            SkipReason::NotDns => "not-dns",
            SkipReason::UrlOnly => "url-only",
            SkipReason::AddressLiteralHost => "address-literal-host",
            SkipReason::InvalidValue => "invalid-value",
            SkipReason::NameTooLong => "name-too-long",
            SkipReason::ZeroPrefix => "zero-prefix",
        }
    }
}

/// A generated policy zone (without serial: the primary assigns serials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpzZone {
    /// Zone origin, lower case with trailing dot.
    pub origin: String,
    /// SOA fields.
    pub soa: SoaParams,
    /// TTL of the SOA record.
    pub soa_ttl: u32,
    /// Every record except the SOA (apex NS first), sorted and without duplicates.
    pub records: Vec<Record>,
    /// Trigger owner (relative) → the indicators that produced it.
    pub provenance: BTreeMap<String, BTreeSet<IndicatorKey>>,
    /// Indicators that produced nothing, with why (sorted by key).
    pub skipped: Vec<(IndicatorKey, SkipReason)>,
}

impl RpzZone {
    /// The absolute form of a relative owner.
    pub fn absolute(&self, owner: &str) -> String {
        if owner.is_empty() { self.origin.clone() } else { format!("{owner}.{}", self.origin) }
    }

    /// The indicators behind a trigger, given relative or absolute.
    pub fn provenance_of(&self, owner: &str) -> Option<&BTreeSet<IndicatorKey>> {
        let o = owner.trim_end_matches('.').to_ascii_lowercase();
        let rel =
            o.strip_suffix(self.origin.trim_end_matches('.')).map(|r| r.trim_end_matches('.').to_owned()).unwrap_or(o);
        self.provenance.get(&rel)
    }

    /// Number of trigger owners.
    pub fn trigger_count(&self) -> usize {
        self.provenance.len()
    }

    /// The zone in master-file format with the given serial (what a file-based export looks
    /// like; also the golden-test form).
    pub fn to_zone_text(&self, serial: u32) -> String {
        let mut s = String::with_capacity(64 + self.records.len() * 48);
        let _ = writeln!(s, "$ORIGIN {}", self.origin);
        let soa = &self.soa;
        let _ = writeln!(
            s,
            "@\t{}\tIN\tSOA\t{} {} {} {} {} {} {}",
            self.soa_ttl, soa.mname, soa.rname, serial, soa.refresh, soa.retry, soa.expire, soa.minimum
        );
        for r in &self.records {
            let owner = if r.owner.is_empty() { "@" } else { &r.owner };
            let _ = writeln!(s, "{owner}\t{}\tIN\t{}\t{}", r.ttl, r.data.type_str(), r.data);
        }
        s
    }
}

/// Normalises a zone name: lower case, trailing dot; `None` when not a domain name (one label
/// is allowed).
pub fn zone_origin(name: &str) -> Option<String> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then(|| format!("{n}."))
}

/// An absolute name with trailing dot (`.` stays `.`), or `None`.
fn absolute_name(name: &str) -> Option<String> {
    if name.trim() == "." {
        return Some(".".into());
    }
    zone_origin(name)
}

/// Wire length of an absolute name in text form without escapes (`a.b.` → 5 octets).
fn wire_len(relative: &str, origin: &str) -> usize {
    // Each label costs its length + 1; the root costs 1. For text "x.y." that is len + 1.
    if relative.is_empty() { origin.len() + 1 } else { relative.len() + 1 + origin.len() + 1 }
}

/// The `rpz-ip`/`rpz-client-ip` label sequence of a network, in BIND's canonical form:
/// `24.0.100.51.198` for 198.51.100.0/24, `128.1.zz.db8.2001` for 2001:db8::1/128.
pub fn ip_trigger_labels(net: &IpNet) -> String {
    let net = net.trunc();
    match net.addr() {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.{}", net.prefix_len(), o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let seg = a.segments();
            let mut w = seg;
            w.reverse();
            // Longest run of at least two zero words; on a tie the later one in reversed order
            // (BIND's ip2name).
            let (mut best_first, mut best_len) = (usize::MAX, 0usize);
            let (mut cur_first, mut cur_len) = (usize::MAX, 0usize);
            for (n, &v) in w.iter().enumerate() {
                if v != 0 {
                    cur_len = 0;
                    cur_first = usize::MAX;
                } else {
                    cur_len += 1;
                    if cur_first == usize::MAX {
                        cur_first = n;
                    } else if cur_len >= best_len {
                        best_first = cur_first;
                        best_len = cur_len;
                    }
                }
            }
            let mut s = net.prefix_len().to_string();
            let mut n = 0;
            while n < 8 {
                if n == best_first {
                    s.push_str(".zz");
                    n += best_len;
                } else {
                    let _ = write!(s, ".{:x}", w[n]);
                    n += 1;
                }
            }
            s
        }
    }
}

fn action_rdata(action: &RpzAction) -> Vec<RData> {
    match action {
        RpzAction::LocalData { a, aaaa } => {
            let mut v = Vec::new();
            if let Some(a) = a {
                v.push(RData::A(*a));
            }
            if let Some(a) = aaaa {
                v.push(RData::Aaaa(*a));
            }
            v
        }
        RpzAction::Cname { target } => {
            let t = match target.strip_prefix("*.") {
                Some(rest) => absolute_name(rest).map(|n| format!("*.{n}")),
                None => absolute_name(target),
            };
            t.map(RData::Cname).into_iter().collect()
        }
        RpzAction::Nxdomain => vec![RData::Cname(".".into())],
        RpzAction::Nodata => vec![RData::Cname("*.".into())],
        RpzAction::Drop => vec![RData::Cname("rpz-drop.".into())],
        RpzAction::Passthru => vec![RData::Cname("rpz-passthru.".into())],
    }
}

struct Builder {
    origin: String,
    ttl: u32,
    rdata: Vec<RData>,
    owners: BTreeMap<String, BTreeSet<IndicatorKey>>,
    skipped: Vec<(IndicatorKey, SkipReason)>,
}

impl Builder {
    fn add_owner(&mut self, key: IndicatorKey, owner: String) -> bool {
        if wire_len(&owner, &self.origin) > 255 {
            return false;
        }
        self.owners.entry(owner).or_default().insert(key);
        true
    }

    fn add_domain(&mut self, key: IndicatorKey, domain: &str, wildcard: bool) {
        // Check the longer name first so that a domain is published with both or neither.
        if wildcard && wire_len(&format!("*.{domain}"), &self.origin) > 255 || wire_len(domain, &self.origin) > 255 {
            self.skipped.push((key, SkipReason::NameTooLong));
            return;
        }
        self.add_owner(key, domain.to_owned());
        if wildcard {
            self.add_owner(key, format!("*.{domain}"));
        }
    }

    fn finish(mut self, policy: &RpzPolicy, apex: Vec<Record>) -> RpzZone {
        let mut records = apex;
        for owner in self.owners.keys() {
            for d in &self.rdata {
                records.push(Record { owner: owner.clone(), ttl: self.ttl, data: d.clone() });
            }
        }
        records.sort();
        records.dedup();
        self.skipped.sort();
        self.skipped.dedup();
        RpzZone {
            origin: self.origin,
            soa: policy.soa.clone(),
            soa_ttl: policy.ttl,
            records,
            provenance: self.owners,
            skipped: self.skipped,
        }
    }
}

fn apex_records(policy: &RpzPolicy) -> Vec<Record> {
    policy
        .ns
        .iter()
        .filter_map(|n| absolute_name(n))
        .map(|n| Record { owner: String::new(), ttl: policy.ttl, data: RData::Ns(n) })
        .collect()
}

/// Generates a member's policy zone from indicators. Indicators past `expires` at `now`, of
/// excluded categories, or not expressible in DNS are listed in `skipped`.
pub fn generate<'a>(
    policy: &RpzPolicy,
    entries: impl IntoIterator<Item = Entry<'a>>,
    now: Timestamp,
) -> Result<RpzZone, PolicyError> {
    let origin = policy.validate()?;
    let mut b = Builder {
        origin,
        ttl: policy.ttl,
        rdata: action_rdata(&policy.action),
        owners: BTreeMap::new(),
        skipped: Vec::new(),
    };
    let cats: BTreeSet<ClassificationType> = policy.include_categories.iter().map(|c| c.0).collect();
    for e in entries {
        let ind = e.indicator;
        let key = e.key;
        if ind.expires <= now {
            b.skipped.push((key, SkipReason::Expired));
            continue;
        }
        if !cats.is_empty() && !cats.contains(&ind.category) {
            b.skipped.push((key, SkipReason::CategoryExcluded));
            continue;
        }
        match ind.kind {
            IndicatorKind::Domain => match canonical_domain(&ind.value) {
                Some(d) if d == ind.value => b.add_domain(key, &d, policy.wildcard),
                _ => b.skipped.push((key, SkipReason::InvalidValue)),
            },
            IndicatorKind::Url => {
                if e.granularity != Granularity::Host {
                    b.skipped.push((key, SkipReason::UrlOnly));
                    continue;
                }
                let Some(host) = url_host(&ind.value) else {
                    b.skipped.push((key, SkipReason::InvalidValue));
                    continue;
                };
                if host.starts_with('[') || host.parse::<Ipv4Addr>().is_ok() {
                    b.skipped.push((key, SkipReason::AddressLiteralHost));
                    continue;
                }
                match canonical_domain(host) {
                    Some(d) => b.add_domain(key, &d, policy.wildcard),
                    None => b.skipped.push((key, SkipReason::InvalidValue)),
                }
            }
            IndicatorKind::Ip => match ind.value.parse::<IpNet>() {
                Ok(net) if net.prefix_len() == 0 => b.skipped.push((key, SkipReason::ZeroPrefix)),
                Ok(net) => {
                    let owner = format!("{}.rpz-ip", ip_trigger_labels(&net));
                    if !b.add_owner(key, owner) {
                        b.skipped.push((key, SkipReason::NameTooLong));
                    }
                }
                Err(_) => b.skipped.push((key, SkipReason::InvalidValue)),
            },
            IndicatorKind::Sha256 | IndicatorKind::Md5 | IndicatorKind::Sha1 => {
                b.skipped.push((key, SkipReason::NotDns));
            }
        }
    }
    let apex = apex_records(policy);
    Ok(b.finish(policy, apex))
}

/// The records every trigger of this policy carries (its action), in zone order.
pub fn action_records(policy: &RpzPolicy) -> Vec<RData> {
    let mut v = action_rdata(&policy.action);
    v.sort();
    v
}

/// The trigger owners (relative) one indicator produces under a policy, or why none: the
/// incremental form of [`generate`] (a zone is the union of its entries' triggers).
pub fn triggers_for(policy: &RpzPolicy, entry: Entry<'_>, now: Timestamp) -> Result<Vec<String>, SkipReason> {
    let z = generate(policy, [entry], now).map_err(|_| SkipReason::InvalidValue)?;
    if let Some((_, r)) = z.skipped.first() {
        return Err(*r);
    }
    Ok(z.provenance.into_keys().collect())
}

/// The `rpz-client-ip` trigger owner (relative to `origin`) of a client network, or None for
/// what cannot be a trigger (a /0, or a name longer than 255 octets): the owners of
/// [`client_passthru_zone`], for callers that apply changes to it one network at a time.
pub fn client_ip_owner(net: &IpNet, origin: &str) -> Option<String> {
    if net.prefix_len() == 0 {
        return None;
    }
    let owner = format!("{}.rpz-client-ip", ip_trigger_labels(net));
    (wire_len(&owner, origin) <= 255).then_some(owner)
}

/// A per-ISP client policy zone: `rpz-client-ip` triggers with `CNAME rpz-passthru.` for the
/// given client addresses/prefixes. Listed first in a resolver's `response-policy` (BIND: the
/// first zone wins, and CLIENT-IP triggers outrank QNAME triggers), it exempts those clients
/// from every later policy zone: that is how non-consenting subscribers are left untouched.
/// The policy's `action` is ignored (always passthru); provenance is empty.
pub fn client_passthru_zone(policy: &RpzPolicy, clients: &[IpNet]) -> Result<RpzZone, PolicyError> {
    let origin = policy.validate()?;
    let mut b = Builder {
        origin,
        ttl: policy.ttl,
        rdata: vec![RData::Cname("rpz-passthru.".into())],
        owners: BTreeMap::new(),
        skipped: Vec::new(),
    };
    for net in clients {
        if let Some(owner) = client_ip_owner(net, &b.origin) {
            b.owners.entry(owner).or_default();
        }
    }
    let apex = apex_records(policy);
    let mut z = b.finish(policy, apex);
    z.provenance.clear();
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_triggers() {
        assert_eq!(ip_trigger_labels(&"198.51.100.7/32".parse().unwrap()), "32.7.100.51.198");
        assert_eq!(ip_trigger_labels(&"198.51.100.77/24".parse().unwrap()), "24.0.100.51.198");
    }

    #[test]
    fn ipv6_triggers_match_bind_canonical_form() {
        for (net, want) in [
            ("2001:db8::1/128", "128.1.zz.db8.2001"),
            ("2001:db8::/32", "32.zz.db8.2001"),
            // equal runs: BIND shortens the first run of the address (the later one reversed)
            ("2001:db8:0:0:1:0:0:1/128", "128.1.0.0.1.zz.db8.2001"),
            // a single zero word is never shortened
            ("2001:db8:0:1:1:1:1:1/128", "128.1.1.1.1.1.0.db8.2001"),
            ("::1/128", "128.1.zz"),
            ("fe80::/10", "10.zz.fe80"),
            ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff/128", "128.ffff.eeee.dddd.cccc.bbbb.aaaa.db8.2001"),
        ] {
            assert_eq!(ip_trigger_labels(&net.parse().unwrap()), want, "{net}");
        }
    }

    #[test]
    fn policy_validation() {
        assert!(RpzPolicy::new("rpz.isp-a.example", RpzAction::Nxdomain).validate().is_ok());
        assert!(RpzPolicy::new("bad name", RpzAction::Nxdomain).validate().is_err());
        assert!(RpzPolicy::new("rpz", RpzAction::LocalData { a: None, aaaa: None }).validate().is_err());
        assert!(RpzPolicy::new("rpz", RpzAction::Cname { target: "*.garden.example".into() }).validate().is_ok());
        assert!(RpzPolicy::new("rpz", RpzAction::Cname { target: "*.bad name".into() }).validate().is_err());
    }
}
