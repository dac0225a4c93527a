//! Prometheus metrics of the primary.
//!
//! `kizuna_dns_zone_serial{zone}`, `kizuna_dns_zone_records{zone}`,
//! `kizuna_dns_zone_triggers{zone}`, `kizuna_dns_publishes_total{zone}` (new versions),
//! `kizuna_dns_publish_duration_seconds` (generation + diff + commit),
//! `kizuna_dns_transfers_total{zone,secondary,kind}` (kind: axfr, ixfr, ixfr-axfr (IXFR
//! answered with the whole zone), ixfr-uptodate), `kizuna_dns_transfer_bytes_total{zone,
//! secondary,kind}`, `kizuna_dns_refused_total{reason}`, `kizuna_dns_notify_sent_total{zone,
//! secondary}`, `kizuna_dns_notify_acked_total{zone,secondary}`,
//! `kizuna_dns_notify_last_ack_serial{zone,secondary}`,
//! `kizuna_dns_notify_last_ack_timestamp_seconds{zone,secondary}`,
//! `kizuna_dns_queries_total{opcode}`. A secondary is named by its TSIG key, else its address.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `{zone}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabel {
    /// Zone name.
    pub zone: String,
}

/// `{zone, secondary, kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabel {
    /// Zone name.
    pub zone: String,
    /// TSIG key name or address.
    pub secondary: String,
    /// axfr, ixfr, ixfr-axfr, ixfr-uptodate.
    pub kind: &'static str,
}

/// `{zone, secondary}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecondaryLabel {
    /// Zone name.
    pub zone: String,
    /// Address the NOTIFY goes to.
    pub secondary: String,
}

/// `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: &'static str,
}

/// `{opcode}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpcodeLabel {
    /// query, notify, update, …
    pub opcode: String,
}

/// All metrics of the primary.
#[derive(Debug, Clone)]
pub struct DnsMetrics {
    /// Current serial.
    pub zone_serial: Family<ZoneLabel, Gauge<i64, AtomicI64>>,
    /// Records (without SOA).
    pub zone_records: Family<ZoneLabel, Gauge>,
    /// Trigger owner names.
    pub zone_triggers: Family<ZoneLabel, Gauge>,
    /// New versions published.
    pub publishes: Family<ZoneLabel, Counter>,
    /// Time to generate and publish all zones after a change.
    pub publish_duration: Histogram,
    /// Transfers served.
    pub transfers: Family<TransferLabel, Counter>,
    /// Octets of transfers served.
    pub transfer_bytes: Family<TransferLabel, Counter>,
    /// Requests refused, by reason.
    pub refused: Family<ReasonLabel, Counter>,
    /// NOTIFY messages sent (including retries).
    pub notify_sent: Family<SecondaryLabel, Counter>,
    /// NOTIFY acknowledged.
    pub notify_acked: Family<SecondaryLabel, Counter>,
    /// Serial of the last acknowledged NOTIFY.
    pub notify_last_ack_serial: Family<SecondaryLabel, Gauge<i64, AtomicI64>>,
    /// Unix time of the last acknowledged NOTIFY.
    pub notify_last_ack_time: Family<SecondaryLabel, Gauge<f64, AtomicU64>>,
    /// Requests by opcode.
    pub queries: Family<OpcodeLabel, Counter>,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl DnsMetrics {
    /// A fresh set.
    pub fn new() -> Self {
        DnsMetrics {
            zone_serial: Family::default(),
            zone_records: Family::default(),
            zone_triggers: Family::default(),
            publishes: Family::default(),
            publish_duration: Histogram::new(exponential_buckets(0.000_1, 2.0, 20)),
            transfers: Family::default(),
            transfer_bytes: Family::default(),
            refused: Family::default(),
            notify_sent: Family::default(),
            notify_acked: Family::default(),
            notify_last_ack_serial: Family::default(),
            notify_last_ack_time: Family::default(),
            queries: Family::default(),
        }
    }

    /// Registers every metric into `registry` (the primary's own, or the hub's).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register("kizuna_dns_zone_serial", "SOA serial of the current version", self.zone_serial.clone());
        r.register(
            "kizuna_dns_zone_records",
            "Records in the current version (without SOA)",
            self.zone_records.clone(),
        );
        r.register(
            "kizuna_dns_zone_triggers",
            "Trigger owner names in the current version",
            self.zone_triggers.clone(),
        );
        r.register("kizuna_dns_publishes", "New zone versions published", self.publishes.clone());
        r.register(
            "kizuna_dns_publish_duration_seconds",
            "Time from an indicator change batch to all zones published",
            self.publish_duration.clone(),
        );
        r.register("kizuna_dns_transfers", "Zone transfers served, per secondary and kind", self.transfers.clone());
        r.register("kizuna_dns_transfer_bytes", "Octets of zone transfers served", self.transfer_bytes.clone());
        r.register("kizuna_dns_refused", "Requests refused, by reason", self.refused.clone());
        r.register("kizuna_dns_notify_sent", "NOTIFY messages sent, retries included", self.notify_sent.clone());
        r.register("kizuna_dns_notify_acked", "NOTIFY messages acknowledged", self.notify_acked.clone());
        r.register(
            "kizuna_dns_notify_last_ack_serial",
            "Serial of the last NOTIFY a secondary acknowledged",
            self.notify_last_ack_serial.clone(),
        );
        r.register(
            "kizuna_dns_notify_last_ack_timestamp_seconds",
            "Unix time of the last NOTIFY a secondary acknowledged",
            self.notify_last_ack_time.clone(),
        );
        r.register("kizuna_dns_queries", "DNS requests received, by opcode", self.queries.clone());
    }

    /// Registered into a fresh registry.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        self.register(&mut r);
        r
    }
}
