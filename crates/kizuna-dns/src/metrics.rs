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
//! Also: `kizuna_dns_member_transfers_total{member,kind}`, `kizuna_dns_notify_failed_total{zone,
//! secondary,reason}` (reason: timeout (no answer before the retry), rcode (answered with an
//! error), send), `kizuna_dns_tsig_failures_total{error}` (badkey, badsig, badtime),
//! `kizuna_dns_zone_last_change_timestamp_seconds{zone}` and, computed at scrape time,
//! `kizuna_dns_zone_last_change_age_seconds{zone}`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};

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

/// `{member, kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberTransferLabel {
    /// Member the zone is for.
    pub member: String,
    /// axfr, ixfr, ixfr-axfr, ixfr-uptodate.
    pub kind: &'static str,
}

/// `{zone, secondary, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyFailLabel {
    /// Zone name.
    pub zone: String,
    /// Address the NOTIFY goes to.
    pub secondary: String,
    /// timeout, rcode, send.
    pub reason: &'static str,
}

/// `{error}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TsigErrorLabel {
    /// badkey, badsig, badtime.
    pub error: &'static str,
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
    /// Transfers served, by the zone's member and kind.
    pub member_transfers: Family<MemberTransferLabel, Counter>,
    /// NOTIFY attempts not acknowledged.
    pub notify_failed: Family<NotifyFailLabel, Counter>,
    /// Requests whose TSIG did not verify.
    pub tsig_failures: Family<TsigErrorLabel, Counter>,
    /// Unix time of each zone's last new version.
    pub zone_last_change: Family<ZoneLabel, Gauge<f64, AtomicU64>>,
    last_change: Arc<Mutex<BTreeMap<String, f64>>>,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Writes `kizuna_dns_zone_last_change_age_seconds{zone}` at scrape time.
#[derive(Debug)]
struct AgeCollector(Arc<Mutex<BTreeMap<String, f64>>>);

impl Collector for AgeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let fam = Family::<ZoneLabel, Gauge<f64, AtomicU64>>::default();
        let now = unix_now();
        for (zone, at) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            fam.get_or_create(&ZoneLabel { zone: zone.clone() }).set((now - at).max(0.0));
        }
        let e = encoder.encode_descriptor(
            "kizuna_dns_zone_last_change_age_seconds",
            "Seconds since the zone's last new version (or since it was loaded)",
            None,
            fam.metric_type(),
        )?;
        fam.encode(e)
    }
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
            member_transfers: Family::default(),
            notify_failed: Family::default(),
            tsig_failures: Family::default(),
            zone_last_change: Family::default(),
            last_change: Arc::default(),
        }
    }

    /// Records that `zone` has a new version now (or was loaded now).
    pub fn zone_changed(&self, zone: &str) {
        let now = unix_now();
        self.zone_last_change.get_or_create(&ZoneLabel { zone: zone.to_owned() }).set(now);
        self.last_change.lock().unwrap_or_else(|p| p.into_inner()).insert(zone.to_owned(), now);
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
        r.register(
            "kizuna_dns_member_transfers",
            "Zone transfers served, per member and kind",
            self.member_transfers.clone(),
        );
        r.register(
            "kizuna_dns_notify_failed",
            "NOTIFY attempts not acknowledged (timeout, error rcode, send error)",
            self.notify_failed.clone(),
        );
        r.register("kizuna_dns_tsig_failures", "Requests whose TSIG did not verify", self.tsig_failures.clone());
        r.register(
            "kizuna_dns_zone_last_change_timestamp_seconds",
            "Unix time of the zone's last new version (or of its load)",
            self.zone_last_change.clone(),
        );
        r.register_collector(Box::new(AgeCollector(self.last_change.clone())));
    }

    /// Registered into a fresh registry.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        self.register(&mut r);
        r
    }
}
