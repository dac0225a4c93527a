//! The hub's Prometheus metrics, one set for every source and sink.
//!
//! Names: `kizuna_ingest_records_total{outcome}` (stored, duplicate, quarantined, skipped),
//! `kizuna_attributed_total{member}`, `kizuna_unattributed_total`,
//! `kizuna_report_reads_total{member}`, `kizuna_http_request_duration_seconds{route,status}`,
//! `kizuna_ingest_duration_seconds`, and gauges read from the store at scrape time:
//! `kizuna_store_observations`, `kizuna_store_unattributed`, `kizuna_store_quarantined`,
//! `kizuna_store_member_observations{member}`, `kizuna_indicators{category,state}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use kizuna_pipeline::Summary;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MemberLabel {
    pub member: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IndicatorLabel {
    pub category: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabel {
    pub route: String,
    pub status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 18))
}

/// All metrics of one hub process.
pub struct Metrics {
    registry: Registry,
    pub(crate) ingest_records: Family<OutcomeLabel, Counter>,
    pub(crate) attributed: Family<MemberLabel, Counter>,
    pub(crate) unattributed: Counter,
    pub(crate) report_reads: Family<MemberLabel, Counter>,
    pub(crate) http_latency: HistogramFamily<RouteLabel>,
    pub(crate) ingest_duration: Histogram,
    pub(crate) store_observations: Gauge,
    pub(crate) store_unattributed: Gauge,
    pub(crate) store_quarantined: Gauge,
    pub(crate) store_member_observations: Family<MemberLabel, Gauge>,
    pub(crate) indicators: Family<IndicatorLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let ingest_records = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "kizuna_ingest_records",
            "Records ingested through this hub, by outcome",
            ingest_records.clone(),
        );
        let attributed = Family::<MemberLabel, Counter>::default();
        registry.register("kizuna_attributed", "Observations attributed to a member ISP", attributed.clone());
        let unattributed = Counter::default();
        registry.register("kizuna_unattributed", "Observations in no member's address space", unattributed.clone());
        let report_reads = Family::<MemberLabel, Counter>::default();
        registry.register("kizuna_report_reads", "Report pages read by members", report_reads.clone());
        let http_latency: HistogramFamily<RouteLabel> = Family::new_with_constructor(latency_histogram);
        registry.register("kizuna_http_request_duration_seconds", "HTTP request latency", http_latency.clone());
        let ingest_duration = latency_histogram();
        registry.register(
            "kizuna_ingest_duration_seconds",
            "Time to parse, attribute and commit one upload",
            ingest_duration.clone(),
        );
        let store_observations = Gauge::default();
        registry.register("kizuna_store_observations", "Observations in the store", store_observations.clone());
        let store_unattributed = Gauge::default();
        registry.register(
            "kizuna_store_unattributed",
            "Unattributed observations in the store",
            store_unattributed.clone(),
        );
        let store_quarantined = Gauge::default();
        registry.register("kizuna_store_quarantined", "Records in quarantine", store_quarantined.clone());
        let store_member_observations = Family::<MemberLabel, Gauge>::default();
        registry.register(
            "kizuna_store_member_observations",
            "Observations in the store per member",
            store_member_observations.clone(),
        );
        let indicators = Family::<IndicatorLabel, Gauge>::default();
        registry.register("kizuna_indicators", "Indicators in the store by category and state", indicators.clone());
        Metrics {
            indicators,
            registry,
            ingest_records,
            attributed,
            unattributed,
            report_reads,
            http_latency,
            ingest_duration,
            store_observations,
            store_unattributed,
            store_quarantined,
            store_member_observations,
        }
    }

    /// Counts an ingest run; `member_name` maps member ids to names.
    pub(crate) fn record_ingest(&self, s: &Summary, member_name: impl Fn(kizuna_model::MemberId) -> String) {
        let add = |outcome, n| {
            self.ingest_records.get_or_create(&OutcomeLabel { outcome }).inc_by(n);
        };
        add("stored", s.stored);
        add("duplicate", s.duplicates);
        add("quarantined", s.quarantined);
        add("skipped", s.skipped_total());
        self.unattributed.inc_by(s.unattributed);
        for (m, n) in &s.per_member {
            self.attributed.get_or_create(&MemberLabel { member: member_name(*m) }).inc_by(*n);
        }
    }

    /// The registry, for a component embedded in the hub process to add its own metrics
    /// (e.g. the DNS primary's `kizuna_dns_*`) before the hub is built with
    /// [`crate::Hub::with_metrics`].
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
