//! ISP session logs and IP (+ port) + time → subscriber resolution, for the ISP agent.
//!
//! The hub hands an ISP an address, maybe a port, and a time. Only the ISP can say which of its
//! subscribers had that address then, from its own session logs. This crate reads those logs and
//! answers the question, or says precisely why it cannot: it never guesses.
//!
//! # Inputs ([`LogKind`])
//! - [`LogKind::RadiusDetail`]: FreeRADIUS accounting `detail` files (module [`radius`]).
//! - [`LogKind::KeaLeases4`]: Kea DHCPv4 memfile lease CSV, `kea-leases4.csv` (module [`kea`]).
//! - [`LogKind::DhcpdLeases`]: ISC dhcpd `dhcpd.leases` (module [`dhcpd`]).
//! - [`LogKind::Cgnat`]: CGNAT port-block allocation logs, Juniper syslog or a 5-field CSV
//!   (module [`cgnat`]).
//!
//! Every parser is a pure push parser (lines in, [`Item`]s out): each record becomes a
//! [`SessionEvent`], a counted skip, or a [`Rejected`] with file, line, reason and raw text.
//!
//! # The index
//! [`SessionIndex`] holds sessions compactly in memory (about 80 bytes per RADIUS session at 10M
//! sessions: see `bench/sessions`) and answers [`SessionIndex::resolve`] and
//! [`SessionIndex::resolve_many`] with a [`Resolution`]: either one unambiguous
//! [`Subscriber`] with the [`SessionRef`] that proves it, or an [`Unresolved`] reason.
//! [`SessionIndex::resolve_keys`] is the batched fast path that returns only the subscriber key
//! (or the reason). Batched calls are faster than one-by-one calls (they visit the queries in
//! address order and load each group's memory together); call [`SessionIndex::compact`] after a
//! bulk load.
//!
//! # API used by the ISP agent
//! ```no_run
//! use kizuna_sessions::{LogKind, ResolverConfig, Resolution, SessionIndex, SessionTailer};
//! # fn main() -> Result<(), kizuna_sessions::SessionError> {
//! let mut index = SessionIndex::new(ResolverConfig::default());
//! let summary = index.load_file("/var/log/freeradius/radacct/192.0.2.1/detail-20260305", LogKind::RadiusDetail)?;
//! eprintln!("{} events, {} rejected", summary.events, summary.rejected);
//! let mut tailer = SessionTailer::new(
//!     vec![("/var/log/freeradius/radacct".into(), LogKind::RadiusDetail)],
//!     "/var/lib/kizuna/sessions-tail.state",
//! )?;
//! tailer.poll(&mut index)?; // call every second or so
//! let at = kizuna_model::Timestamp::parse("2026-03-05T00:10:00Z").unwrap_or(kizuna_model::Timestamp::now());
//! match index.resolve("198.51.100.7".parse().unwrap(), None, at) {
//!     Resolution::Resolved { subscriber, session } => println!("{} via {:?}", subscriber.key, session.source),
//!     Resolution::Unresolved(why) => println!("unresolved: {}", why.as_str()),
//! }
//! # Ok(()) }
//! ```
//! Also: [`SessionIndex::load_path`] (a file or a whole log directory),
//! [`SessionIndex::load_reader`] (stdin), [`SessionIndex::resolve_keys`] (batched, key only),
//! [`SessionIndex::compact`] (after a bulk load), [`SessionIndex::prune_before`] (retention),
//! [`SessionIndex::stats`], [`SessionIndex::len`], [`SessionIndex::memory_bytes`].
//!
//! For serving while tailing, keep the index in an `RwLock`: [`SessionIndex::add_events`] and
//! the loaders take `&mut self`, resolution takes `&self`. New sessions become visible as soon as
//! the call that added them returns.
//!
//! # Resolution rules
//! - A session covers `[start, end]` (seconds). An open session (no Stop yet) counts as held
//!   until `last_seen + max_open_session_age` (an Interim-Update moves `last_seen`), or until the
//!   next session on the same address starts, whichever is first.
//! - With tolerance `clock_skew`, every session overlapping `[t - skew, t + skew]` is a
//!   candidate. One subscriber among them: resolved. Two or more subscribers that all hold the
//!   address at `t` exactly: [`Unresolved::Ambiguous`]. Otherwise `t` is within the tolerance of a
//!   hand-over between subscribers: [`Unresolved::ClockSkew`].
//! - IPv6: delegated and framed prefixes match by longest prefix (any length, /48 /56 /64 in
//!   practice); the longest prefix that has a candidate decides.
//! - CGNAT: an outside address that appears in a port-block log needs a port
//!   ([`Unresolved::PortRequired`]); the block holding that port then gives the inside address,
//!   which is resolved through the RADIUS/DHCP sessions at the same time. The answer carries
//!   both: the inner session and the port block.
//! - Subscriber identity: RADIUS `User-Name` ([`SubscriberKind::Radius`]); DHCP hardware
//!   address, or `id:<client-id>` when a lease has none ([`SubscriberKind::Dhcp`]). The ISP maps
//!   these to a person in its own directory. `Acct-Session-Id` is kept in [`SessionRef`] for the
//!   agent only.

#![warn(missing_docs)]

mod arena;
pub mod cgnat;
pub mod dhcpd;
mod index;
pub mod kea;
mod load;
pub mod radius;
mod runs;
mod tail;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

pub use index::{IndexStats, SessionIndex, SubscriberMarks};
pub use kizuna_model::{Rejected, Timestamp};
pub use load::{LoadSummary, MAX_KEPT_REJECTIONS, parse_reader, parser_for};
pub use tail::SessionTailer;

/// Which kind of session log a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// FreeRADIUS accounting `detail` file.
    RadiusDetail,
    /// Kea DHCPv4 memfile lease CSV (`kea-leases4.csv`).
    KeaLeases4,
    /// ISC dhcpd `dhcpd.leases`.
    DhcpdLeases,
    /// CGNAT port-block allocation log (Juniper syslog lines or `time,event,inside,outside,ports` CSV).
    Cgnat,
}

impl LogKind {
    /// Stable lower-case name (`radius-detail`, `kea-leases4`, `dhcpd-leases`, `cgnat`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::RadiusDetail => "radius-detail",
            LogKind::KeaLeases4 => "kea-leases4",
            LogKind::DhcpdLeases => "dhcpd-leases",
            LogKind::Cgnat => "cgnat",
        }
    }

    /// Parses [`LogKind::as_str`] names (also `radius`, `kea`, `dhcpd`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "radius-detail" | "radius" | "detail" => LogKind::RadiusDetail,
            "kea-leases4" | "kea" => LogKind::KeaLeases4,
            "dhcpd-leases" | "dhcpd" => LogKind::DhcpdLeases,
            "cgnat" => LogKind::Cgnat,
            _ => return None,
        })
    }
}

/// Where a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// RADIUS accounting.
    Radius,
    /// Kea DHCPv4 lease.
    Kea,
    /// ISC dhcpd lease.
    Dhcpd,
}

impl Source {
    /// `radius`, `kea` or `dhcpd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Radius => "radius",
            Source::Kea => "kea",
            Source::Dhcpd => "dhcpd",
        }
    }

    fn code(self) -> u8 {
        match self {
            Source::Radius => 0,
            Source::Kea => 1,
            Source::Dhcpd => 2,
        }
    }

    fn from_code(c: u8) -> Source {
        match c {
            1 => Source::Kea,
            2 => Source::Dhcpd,
            _ => Source::Radius,
        }
    }

    /// The kind of subscriber identity this source gives.
    pub fn subscriber_kind(self) -> SubscriberKind {
        match self {
            Source::Radius => SubscriberKind::Radius,
            Source::Kea | Source::Dhcpd => SubscriberKind::Dhcp,
        }
    }
}

/// What kind of key identifies the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriberKind {
    /// A RADIUS `User-Name`.
    Radius,
    /// A DHCP hardware address (`00:11:22:33:44:55`) or `id:<client-id>`.
    Dhcp,
}

/// The identity the ISP's own directory maps to a person. Never leaves the agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscriber {
    /// Kind of key.
    pub kind: SubscriberKind,
    /// The key: user name, hardware address or `id:` client id.
    pub key: String,
}

/// The session (and, through CGNAT, the port block) that a resolution rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    /// Which log the session came from.
    pub source: Source,
    /// `Acct-Session-Id` for RADIUS; `None` for DHCP.
    pub session_id: Option<String>,
    /// The NAS (`NAS-IP-Address`, else `NAS-Identifier`) for RADIUS.
    pub nas: Option<String>,
    /// Session start.
    pub start: Timestamp,
    /// Session end; `None` while open.
    pub end: Option<Timestamp>,
    /// Set when the address was a CGNAT outside address: the port block that led to the session.
    pub port_block: Option<PortBlockRef>,
}

/// A CGNAT port block in a [`SessionRef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBlockRef {
    /// Outside (public) address.
    pub outside: IpAddr,
    /// First port of the block.
    pub port_lo: u16,
    /// Last port of the block (inclusive).
    pub port_hi: u16,
    /// Inside (subscriber-side) address.
    pub inside: IpAddr,
    /// Allocation time.
    pub start: Timestamp,
    /// Release time; `None` while allocated.
    pub end: Option<Timestamp>,
}

/// The answer to "who had this address then?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly one subscriber.
    Resolved {
        /// Who.
        subscriber: Subscriber,
        /// The session that shows it.
        session: SessionRef,
    },
    /// No single subscriber; the reason.
    Unresolved(Unresolved),
}

impl Resolution {
    /// The subscriber, when resolved.
    pub fn subscriber(&self) -> Option<&Subscriber> {
        match self {
            Resolution::Resolved { subscriber, .. } => Some(subscriber),
            Resolution::Unresolved(_) => None,
        }
    }

    /// `resolved` or the [`Unresolved::as_str`] reason.
    pub fn as_str(&self) -> &'static str {
        match self {
            Resolution::Resolved { .. } => "resolved",
            Resolution::Unresolved(u) => u.as_str(),
        }
    }
}

/// Why an address and time could not be tied to one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unresolved {
    /// The address appears in no session log.
    NoSession,
    /// The address is known, but no session held it at that time.
    OutsideSession,
    /// Sessions of different subscribers overlap at that time.
    Ambiguous,
    /// A CGNAT outside address, and no port was given.
    PortRequired,
    /// A CGNAT outside address, and no port block held the port at that time.
    NoPortBlock,
    /// The only candidate is a session without Stop whose last sign of life is older than
    /// `max_open_session_age`.
    OpenSessionTooOld,
    /// The time is within the clock-skew tolerance of a hand-over between two subscribers.
    ClockSkew,
}

impl Unresolved {
    /// All reasons, in a stable order (for counters).
    pub const ALL: [Unresolved; 7] = [
        Unresolved::NoSession,
        Unresolved::OutsideSession,
        Unresolved::Ambiguous,
        Unresolved::PortRequired,
        Unresolved::NoPortBlock,
        Unresolved::OpenSessionTooOld,
        Unresolved::ClockSkew,
    ];

    /// Stable kebab-case name, as reported to the hub.
    pub fn as_str(self) -> &'static str {
        match self {
            Unresolved::NoSession => "no-session",
            Unresolved::OutsideSession => "outside-session",
            Unresolved::Ambiguous => "ambiguous",
            Unresolved::PortRequired => "port-required",
            Unresolved::NoPortBlock => "no-port-block",
            Unresolved::OpenSessionTooOld => "open-session-too-old",
            Unresolved::ClockSkew => "clock-skew",
        }
    }
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to read times that carry no zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// UTC offset in seconds of the RADIUS server's local time. `None` (default): learned from
    /// each record (`Timestamp` is Unix time, the header is local time: the difference is the
    /// offset), else from the zone abbreviation of `Event-Timestamp` (JST, UTC, CET, …).
    pub radius_utc_offset: Option<i32>,
    /// UTC offset in seconds for syslog time stamps without a zone (CGNAT logs). Default 0.
    pub syslog_utc_offset: i32,
    /// Year for BSD syslog time stamps (`Mar  5 00:00:12`), which carry none. `None`: such lines
    /// are rejected unless the file's lines carry RFC 3339 time stamps.
    pub syslog_year: Option<i32>,
}

/// Resolution settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Tolerance for clocks that disagree (the sensor's, the NAS's). Default 30 s.
    pub clock_skew: Duration,
    /// How long a session with no Stop counts as held after its Start or last Interim-Update
    /// (CGNAT blocks likewise after allocation or an interim "active" line). Default 7 days.
    pub max_open_session_age: Duration,
    /// How to read zone-less times while loading.
    pub parse: ParseOptions,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            clock_skew: Duration::from_secs(30),
            max_open_session_age: Duration::from_secs(7 * 86_400),
            parse: ParseOptions::default(),
        }
    }
}

/// RADIUS `Acct-Status-Type` values that carry a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcctStatus {
    /// Start.
    Start,
    /// Interim-Update (alive).
    Interim,
    /// Stop.
    Stop,
}

/// One RADIUS accounting record about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusEvent {
    /// Start, Interim-Update or Stop.
    pub status: AcctStatus,
    /// When it happened (see [`radius`] for which attribute gives the time).
    pub at: Timestamp,
    /// `NAS-IP-Address`, else `NAS-IPv6-Address`, else `NAS-Identifier`.
    pub nas: String,
    /// `Acct-Session-Id`.
    pub session_id: String,
    /// `User-Name`.
    pub user: String,
    /// `Acct-Unique-Session-Id`, when the server added it.
    pub unique_id: Option<String>,
    /// `Framed-IP-Address`.
    pub framed_ip: Option<Ipv4Addr>,
    /// `Delegated-IPv6-Prefix`, `Framed-IPv6-Prefix` and `Framed-IPv6-Address` (as /128).
    pub prefixes: Vec<ipnet::Ipv6Net>,
    /// `Acct-Session-Time` (seconds), which gives the start when the Start record was lost.
    pub session_time: Option<u32>,
}

/// What a lease line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAction {
    /// The client holds the address from `start` to `end` (`None`: no expiry).
    Held {
        /// Start (or renewal) time.
        start: Timestamp,
        /// Expiry.
        end: Option<Timestamp>,
    },
    /// The client's lease ended (release, expiry/reclaim) at `at`.
    Ended {
        /// End time.
        at: Timestamp,
    },
    /// The address was declined or abandoned at `at`: whoever had it, no longer.
    Declined {
        /// Time.
        at: Timestamp,
    },
}

/// One DHCP lease record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEvent {
    /// Kea or dhcpd.
    pub source: Source,
    /// Leased address.
    pub addr: IpAddr,
    /// Subscriber key: hardware address, else `id:<client-id>`; empty when the line has neither.
    pub client: String,
    /// What happened.
    pub action: LeaseAction,
}

/// CGNAT port-block event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortBlockAction {
    /// Block allocated.
    Allocate,
    /// Interim "still allocated".
    Active,
    /// Block released.
    Release,
}

/// One CGNAT port-block event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBlockEvent {
    /// When.
    pub at: Timestamp,
    /// Allocate, active or release.
    pub action: PortBlockAction,
    /// Inside (private) address of the subscriber.
    pub inside: IpAddr,
    /// Outside (public, IPv4) address.
    pub outside: Ipv4Addr,
    /// First port.
    pub port_lo: u16,
    /// Last port (inclusive).
    pub port_hi: u16,
}

/// A parsed session-log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// RADIUS Start / Interim-Update / Stop.
    Radius(RadiusEvent),
    /// RADIUS Accounting-On or Accounting-Off: the NAS closed all its sessions at `at`.
    NasReset {
        /// The NAS.
        nas: String,
        /// When.
        at: Timestamp,
    },
    /// A DHCP lease line or block.
    Lease(LeaseEvent),
    /// A CGNAT port-block line.
    PortBlock(PortBlockEvent),
}

/// What a parser makes of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A session event.
    Event(SessionEvent),
    /// A record that is well-formed but carries nothing to index (a header, a comment, an
    /// Accounting record without an address, another syslog message), with the reason.
    Skipped(&'static str),
    /// A malformed record.
    Rejected(Rejected),
}

/// A push parser: fed one line at a time (without the line end), in order.
pub trait RecordParser: Send {
    /// Feeds line `line_no` (1-based).
    fn line(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Item>);
    /// End of input: flushes a record still open.
    fn finish(&mut self, out: &mut Vec<Item>);
    /// True while a multi-line record is open (a tailer keeps its offset at the record start).
    fn in_record(&self) -> bool;
}

/// Errors of loading and tailing (IO; bad records are never errors).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Reading a log file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The tailer's state file is unreadable.
    #[error("{path}:{line}: bad tailer state: {reason}")]
    State {
        /// State file.
        path: PathBuf,
        /// Line.
        line: usize,
        /// Why.
        reason: String,
    },
}

pub(crate) fn rejected(source_name: &str, line: u64, reason: impl Into<String>, raw: &[u8]) -> Item {
    Item::Rejected(Rejected {
        source_name: source_name.to_string(),
        line,
        reason: reason.into(),
        raw: String::from_utf8_lossy(raw).into_owned(),
    })
}

/// Normalises an IPv4-mapped IPv6 address to IPv4.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

pub(crate) fn v6_bits(a: Ipv6Addr) -> u128 {
    u128::from(a)
}
