//! kizuna's authoritative DNS primary for Response Policy Zones.
//!
//! - [`zone`]: versioned zones in memory (diff per publish, RFC 1982 serials, bounded history).
//! - [`server`]: [`Primary`]: SOA and other queries, AXFR (RFC 5936, many messages over TCP),
//!   IXFR (RFC 1995, condensed; AXFR form when the serial is not in the history; one SOA when
//!   current; over UDP the whole answer or the SOA), access by TSIG key (RFC 8945) or address.
//! - [`notify`]: NOTIFY (RFC 1996) to every secondary at once on each new version, retried
//!   with backoff until acknowledged.
//! - [`service`]: the running service: indicators from the store, zones republished on every
//!   change; [`config`]: the `[dns]` section; [`http`]: `/metrics`, `/healthz`, zone and
//!   provenance API.
//!
//! Wire format, names and TSIG MACs come from hickory-proto; records are kept pre-encoded so a
//! transfer is a concatenation.

pub mod config;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod server;
pub mod service;
pub mod tsig;
pub mod wire;
pub mod zone;

pub use config::{DnsConfig, KeyConfig, NotifyConfig, ZoneConfig};
pub use kizuna_rpz;
pub use metrics::DnsMetrics;
pub use server::{Primary, ZoneAccess};
pub use service::{FeedItem, IndicatorFeed, MemoryFeed, Service, StoreFeed, default_granularity};

/// Errors of the primary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration is unusable.
    #[error("dns config: {0}")]
    Config(String),
    /// A name does not parse.
    #[error("bad name {0}")]
    Name(String),
    /// Encoding failed.
    #[error("encoding: {0}")]
    Encode(String),
    /// No such zone.
    #[error("no zone {0}")]
    UnknownZone(String),
    /// The indicator store failed.
    #[error("indicator store: {0}")]
    Store(String),
    /// Socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
