//! Deterministic, realistic test data for kizuna: a global routing table with member ISPs, and
//! the feeds a national hub ingests (Shadowserver report CSVs, Cowrie JSON, Suricata EVE JSON).
//!
//! Everything is seeded: the same spec gives byte-identical output, a different seed different
//! output. Event writers stream: memory does not grow with the number of lines (a day of 10M
//! lines costs the same as 10). They write through their own buffer, so an unbuffered `File` is
//! fine.
//!
//! ```
//! use kizuna_gen::{EventSpec, RoutingSpec, shadowserver_event4_sinkhole, world};
//! let w = world(&RoutingSpec::small(7));
//! let mut csv = Vec::new();
//! shadowserver_event4_sinkhole(&w, &EventSpec { lines: 10, ..EventSpec::default() }, &mut csv).unwrap();
//! assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 11); // header + 10 rows
//! ```
//!
//! The shape of the data:
//! - **Routes**: IPv4 lengths as in the real BGP table (~62% /24, the rest mostly /16–/23, a
//!   few /8–/15) inside public unicast space only; more-specifics nested inside covering routes
//!   of the same or another origin; ~1 origin ASN per 15 routes with a heavy-tailed number of
//!   routes per ASN. IPv6 mostly /32–/48 inside the RIR blocks of 2000::/3.
//! - **Members**: `isp-001`… with 1–5 ASNs each (the first few are big ISPs), some with
//!   hand-listed customer prefixes inside other ASNs' routes.
//! - **Events**: source addresses skewed (Zipf over members, a heavy-tailed host population so
//!   some hosts recur all day), mostly in members' space and in Japan, with a share of unrouted
//!   addresses; times sorted within `[start, start + span)`.
//!
//! This crate does no IO besides writing to the given writer and knows nothing of kizuna's
//! model: it produces bytes in the feeds' own formats, as the real tools write them.

#![warn(missing_docs)]

mod cowrie;
mod csv;
mod ctx;
mod json;
mod rng;
mod shadowserver;
mod suricata;
mod text;
mod time;
mod world;

pub use cowrie::cowrie;
pub use ipnet::IpNet;
pub use shadowserver::{
    shadowserver_compromised_website, shadowserver_event4_honeypot_brute_force, shadowserver_event4_sinkhole,
    shadowserver_event4_sinkhole_http, shadowserver_fields, shadowserver_file_name, shadowserver_report,
    shadowserver_reports, shadowserver_scan_http, shadowserver_scan_telnet,
};
pub use suricata::suricata_eve;
pub use world::{GenMember, RoutingSpec, World, world, write_ipasn};

/// 2026-03-05T00:00:00Z, the default start of generated events.
pub const DEFAULT_START: i64 = time::days_from_civil(2026, 3, 5) * 86_400;

/// What an event writer produces.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// Number of lines (CSV rows without the header, JSON lines).
    pub lines: u64,
    /// Seed: the same spec and world always give the same bytes.
    pub seed: u64,
    /// Start of the period, Unix seconds (UTC).
    pub start: i64,
    /// Length of the period in seconds (a Shadowserver report covers 86 400).
    pub span_secs: u64,
    /// Share of IPv6 sources where the format mixes families (Cowrie, Suricata). Shadowserver
    /// report types fix the family by name (`event4_*` IPv4, `event6_*` IPv6).
    pub ipv6_share: f64,
    /// Share of source addresses that no route covers (attribution must cope).
    pub unrouted_share: f64,
}

impl Default for EventSpec {
    /// 100k lines over one day from [`DEFAULT_START`], seed 1, 10% IPv6, 1% unrouted.
    fn default() -> Self {
        EventSpec {
            lines: 100_000,
            seed: 1,
            start: DEFAULT_START,
            span_secs: 86_400,
            ipv6_share: 0.1,
            unrouted_share: 0.01,
        }
    }
}

/// A Shadowserver report type this crate does not generate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown or unsupported Shadowserver report type `{0}`")]
pub struct UnknownReport(pub String);
