//! Prometheus metrics of the agent (`/metrics` on the page server).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label: an outcome or kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: String,
}

/// The agent's metrics.
pub struct Metrics {
    registry: Registry,
    /// Observations pulled, by outcome (`resolved` or the unresolved reason).
    pub observations: Family<KindLabel, Counter>,
    /// Duplicate observations (a page fetched again).
    pub duplicates: Counter,
    /// Hub pull errors.
    pub pull_errors: Counter,
    /// Cases opened.
    pub cases_opened: Counter,
    /// Case transitions, by target state.
    pub transitions: Family<KindLabel, Counter>,
    /// Notices, by outcome (`sent`, `retried`, `to-letter`, `failed`, `exported`).
    pub notices: Family<KindLabel, Counter>,
    /// Notices in the outbox that could not be delivered.
    pub outbox_failed: Gauge,
    /// Countermeasure page requests, by result (`page`, `expired`, `unknown`, `self-report`).
    pub page: Family<KindLabel, Counter>,
    /// Stats pushes, by result (`ok`, `error`).
    pub stats_pushes: Family<KindLabel, Counter>,
    /// Sessions in the session index (set by whoever feeds it: `kizuna isp serve`'s tailer).
    pub sessions_indexed: Gauge,
    /// Session log events read since start (set by the tailer).
    pub session_events: Counter,
    /// Warning-page views, by category (counts only: no URL, no subscriber).
    pub warning_views: Family<KindLabel, Counter>,
    /// Consent decisions recorded by this process, by status.
    pub consent_changes: Family<KindLabel, Counter>,
    /// Serial of the client (`rpz-client-ip`) zone.
    pub client_zone_serial: Gauge,
    /// Passthru entries in the client zone (addresses of subscribers left unfiltered).
    pub client_zone_passthru: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kizuna_isp");
        let m = Metrics {
            registry: Registry::default(),
            observations: Family::default(),
            duplicates: Counter::default(),
            pull_errors: Counter::default(),
            cases_opened: Counter::default(),
            transitions: Family::default(),
            notices: Family::default(),
            outbox_failed: Gauge::default(),
            page: Family::default(),
            stats_pushes: Family::default(),
            sessions_indexed: Gauge::default(),
            session_events: Counter::default(),
            warning_views: Family::default(),
            consent_changes: Family::default(),
            client_zone_serial: Gauge::default(),
            client_zone_passthru: Gauge::default(),
        };
        registry.register("observations", "Observations pulled from the hub, by outcome", m.observations.clone());
        registry.register("duplicate_observations", "Observations pulled again and ignored", m.duplicates.clone());
        registry.register("pull_errors", "Failed pulls from the hub", m.pull_errors.clone());
        registry.register("cases_opened", "Cases opened", m.cases_opened.clone());
        registry.register("case_transitions", "Case state changes, by new state", m.transitions.clone());
        registry.register("notices", "Notice deliveries, by outcome", m.notices.clone());
        registry.register("outbox_failed", "Notices that could not be delivered", m.outbox_failed.clone());
        registry.register("page_requests", "Countermeasure page requests, by result", m.page.clone());
        registry.register("stats_pushes", "Daily count pushes to the hub, by result", m.stats_pushes.clone());
        registry.register("sessions_indexed", "Sessions in the session index", m.sessions_indexed.clone());
        registry.register("session_events", "Session log events read", m.session_events.clone());
        registry.register("warning_views", "Blocked-site warning page views, by category", m.warning_views.clone());
        registry.register("consent_changes", "Consent decisions recorded, by status", m.consent_changes.clone());
        registry.register("client_zone_serial", "Serial of the rpz-client-ip zone", m.client_zone_serial.clone());
        registry.register(
            "client_zone_passthru",
            "Passthru entries in the rpz-client-ip zone",
            m.client_zone_passthru.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one event of a family.
    pub fn inc(family: &Family<KindLabel, Counter>, kind: &str, n: u64) {
        if n > 0 {
            family.get_or_create(&KindLabel { kind: kind.to_owned() }).inc_by(n);
        }
    }

    /// Prometheus text.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}
