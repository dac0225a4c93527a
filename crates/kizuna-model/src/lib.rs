//! The kizuna observation model.
//!
//! An [`Observation`] is one thing a sensor or feed saw: an address that attacked a honeypot, a
//! host that talked to a sinkhole, a vulnerable service found by a scan, a compromised web site.
//! Field names follow IntelMQ's "harmonization" (`source.ip`, `classification.type`,
//! `time.source`, …) because that is how our users already think; [`FIELD_NAMES`] lists them.
//!
//! This crate does no IO and knows no wire format. Parsers (`kizuna-parsers`) build observations
//! from bytes; the store keeps them; the hub routes them.
//!
//! **Invariant:** an observation never carries the identity of an ISP subscriber. It describes
//! network facts (addresses, ports, times, what was seen); only the ISP's own agent maps an
//! address to a person.

#![warn(missing_docs)]

mod classification;
mod id;
mod indicator;
mod policy;
mod time;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use classification::{Classification, ClassificationType, Taxonomy, UnknownClassification};
pub use id::ObservationId;
pub use indicator::{
    Indicator, IndicatorKind, InvalidIndicator, canonical_domain, canonical_url, canonical_value, indicator_key,
    url_host,
};
pub use ipnet::IpNet;
pub use policy::{LegalBasis, Tlp, UnknownValue};
pub use time::Timestamp;

/// Free-form extra data (`extra.*` in IntelMQ), kept as JSON values.
pub type Extra = BTreeMap<String, serde_json::Value>;

/// One side of a connection or event: IntelMQ's `source.*` or `destination.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `*.ip`: IPv4 or IPv6 address.
    pub ip: Option<IpAddr>,
    /// `*.port`.
    pub port: Option<u16>,
    /// `*.asn`: autonomous system number, as reported by the feed or filled in by attribution.
    pub asn: Option<u32>,
    /// `*.as_name`.
    pub as_name: Option<String>,
    /// `*.network`: a CIDR when the feed reports a network instead of an address.
    pub network: Option<IpNet>,
    /// `*.fqdn`: a host name.
    pub fqdn: Option<String>,
    /// `*.url`.
    pub url: Option<String>,
    /// `*.reverse_dns`.
    pub reverse_dns: Option<String>,
    /// `*.geolocation.cc`: ISO 3166-1 alpha-2 country code.
    pub geolocation_cc: Option<String>,
    /// `*.account`: an account name seen in the event (e.g. a honeypot login), never a
    /// subscriber identity resolved by an ISP.
    pub account: Option<String>,
}

impl Endpoint {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Endpoint::default()
    }
}

/// `malware.*`: the family name and sample hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Malware {
    /// `malware.name`: lower-case family name.
    pub name: Option<String>,
    /// `malware.hash.md5`, hex.
    pub md5: Option<String>,
    /// `malware.hash.sha1`, hex.
    pub sha1: Option<String>,
    /// `malware.hash.sha256`, hex.
    pub sha256: Option<String>,
}

/// `protocol.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Protocol {
    /// `protocol.transport`: tcp, udp, icmp, …
    pub transport: Option<String>,
    /// `protocol.application`: ssh, telnet, http, …
    pub application: Option<String>,
}

/// `feed.*`: where the observation came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Feed {
    /// `feed.name`: e.g. "Sinkhole-Events-IPv4", "cowrie".
    pub name: String,
    /// `feed.provider`: e.g. "Shadowserver", or the sensor operator.
    pub provider: Option<String>,
    /// `feed.code`.
    pub code: Option<String>,
    /// `feed.url`.
    pub url: Option<String>,
    /// `feed.documentation`.
    pub documentation: Option<String>,
    /// `feed.accuracy`, 0–100.
    pub accuracy: Option<u8>,
}

/// One observation: what a sensor or feed saw, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// `time.source`: when the event happened, as the source reports it.
    pub time_source: Option<Timestamp>,
    /// `time.observation`: when kizuna (or the upstream collector) first read it.
    /// Not part of the observation's identity.
    pub time_observation: Timestamp,
    /// `source.*`: usually the infected, attacking or vulnerable host.
    pub source: Endpoint,
    /// `destination.*`: the honeypot, sinkhole or target.
    pub destination: Endpoint,
    /// `classification.*`.
    pub classification: Classification,
    /// `malware.*`.
    pub malware: Malware,
    /// `protocol.*`.
    pub protocol: Protocol,
    /// `feed.*`.
    pub feed: Feed,
    /// `event_description.text`.
    pub event_description: Option<String>,
    /// `tlp`: who may see this observation.
    pub tlp: Tlp,
    /// Why kizuna may hold and route this observation (stored as `extra.legal_basis` on the
    /// IntelMQ wire).
    pub legal_basis: LegalBasis,
    /// `extra.*`.
    pub extra: Extra,
}

impl Observation {
    /// A new observation with the given feed and classification and every other field empty.
    pub fn new(feed_name: impl Into<String>, classification: Classification, time_observation: Timestamp) -> Self {
        Observation {
            time_source: None,
            time_observation,
            source: Endpoint::default(),
            destination: Endpoint::default(),
            classification,
            malware: Malware::default(),
            protocol: Protocol::default(),
            feed: Feed { name: feed_name.into(), ..Feed::default() },
            event_description: None,
            tlp: Tlp::default(),
            legal_basis: LegalBasis::default(),
            extra: Extra::new(),
        }
    }

    /// The content-derived identity of this observation; see [`ObservationId`].
    pub fn id(&self) -> ObservationId {
        ObservationId::of(self)
    }

    /// The address attribution works on: `source.ip`, else the first address of
    /// `source.network`.
    pub fn attribution_ip(&self) -> Option<IpAddr> {
        self.source.ip.or_else(|| self.source.network.map(|n| n.network()))
    }

    /// Checks IntelMQ's minimum: a feed name and one of ip, network, fqdn, url or account on
    /// the source side. Returns the reason when it is not met.
    pub fn check_minimum(&self) -> Result<(), &'static str> {
        if self.feed.name.is_empty() {
            return Err("feed.name is empty");
        }
        let s = &self.source;
        if s.ip.is_none() && s.network.is_none() && s.fqdn.is_none() && s.url.is_none() && s.account.is_none() {
            return Err("no source.ip, source.network, source.fqdn, source.url or source.account");
        }
        Ok(())
    }
}

/// Identifies a member ISP inside one hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub u32);

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An observation ready for the store: its id, the observation, and the member it is routed
/// to (`None`: unattributed, kept for national statistics but routed to no one).
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// Content-derived id.
    pub id: ObservationId,
    /// The observation itself.
    pub observation: Observation,
    /// The member ISP whose address space holds `observation.attribution_ip()`.
    pub member: Option<MemberId>,
}

/// A line or record that could not be parsed: kept with its raw text so that nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Where it came from: a file name, `-` for stdin, or an API upload name.
    pub source_name: String,
    /// 1-based line number of the record's first line.
    pub line: u64,
    /// Human-readable reason.
    pub reason: String,
    /// The raw text of the record (lossily decoded as UTF-8).
    pub raw: String,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.source_name, self.line, self.reason)
    }
}

/// IntelMQ harmonization keys kizuna's model covers, in the order IntelMQ documents them.
pub const FIELD_NAMES: &[&str] = &[
    "classification.identifier",
    "classification.taxonomy",
    "classification.type",
    "destination.account",
    "destination.as_name",
    "destination.asn",
    "destination.fqdn",
    "destination.geolocation.cc",
    "destination.ip",
    "destination.network",
    "destination.port",
    "destination.reverse_dns",
    "destination.url",
    "event_description.text",
    "extra",
    "feed.accuracy",
    "feed.code",
    "feed.documentation",
    "feed.name",
    "feed.provider",
    "feed.url",
    "malware.hash.md5",
    "malware.hash.sha1",
    "malware.hash.sha256",
    "malware.name",
    "protocol.application",
    "protocol.transport",
    "source.account",
    "source.as_name",
    "source.asn",
    "source.fqdn",
    "source.geolocation.cc",
    "source.ip",
    "source.network",
    "source.port",
    "source.reverse_dns",
    "source.url",
    "time.observation",
    "time.source",
    "tlp",
];
