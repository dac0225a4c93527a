//! Sharing routes of the hub: the TAXII 2.1 server (`kizuna-taxii`) under `/taxii2/`, over the
//! hub's store: partners and credentials from [`SharingStore`], objects in its TAXII tables,
//! and the `kizuna-indicators` collection kept in step with the indicator store by
//! [`sync_indicators`] (a new object version for every indicator change; withdrawn or expired
//! indicators are published as `revoked`), which runs before every read of that collection.
//! Beside each indicator the view carries the hub's own sighting of it ([`own_sighting`]: SCO,
//! observed-data and sighting under the indicator's own audience labels). Sightings partners
//! send of the hub's indicators are resolved by id among them ([`own_indicator`]).
//!
//! `[hub.sharing]` ([`SharingConfig`]) names this hub's organisation (the STIX identity,
//! `created_by_ref` and MISP `Orgc` of everything it exports) and the partner collections
//! `kizuna hub serve` polls on their schedule ([`PollConfig`], [`Hub::set_poll_partners`]; SIGHUP
//! re-reads the list):
//! incrementally (`added_after` saved in the store after every complete poll, so a restart
//! resumes where the last poll ended, then `next` through the pages), failed polls retried with
//! doubling delays, and per-partner counters on `/metrics`
//! (`kizuna_taxii_poll_*{partner}`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use kizuna_model::Timestamp;
use kizuna_policy::{OwnedLabels, Recipient, RecipientKind};
use kizuna_store::HubStore;
use kizuna_store::indicators::{IndicatorRecord, IndicatorStore};
use kizuna_store::sharing::{
    CredentialKind, NewTaxiiObject, PartyKind, SharingStore, TaxiiCollectionRecord, TaxiiObjectRow,
};
use kizuna_taxii::store::{
    AddResult, CollectionInfo, Entry, NewObject, ObjectStore, Sibling, StatusResource, StoreError,
};
use kizuna_taxii::{Credential, Directory, Partner, Presented, StaticDirectory, TaxiiConfig, TaxiiServer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::Value;

use kizuna_model::Tlp;
use kizuna_store::AuditRecord;
use kizuna_taxii::client::{self, ClientAuth, ClientError, PollState, RemoteCollection};

use crate::Hub;

/// The collection kizuna publishes its own indicators in.
pub const INDICATORS_COLLECTION: &str = "kizuna-indicators";

/// The organisation name of a hub whose `[hub.sharing]` names none.
pub const PRODUCER: &str = "kizuna";

/// `[hub.sharing]`: who this hub is when it shares, and the partner collections it polls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharingConfig {
    /// This hub's organisation name: the STIX identity (its id derives from the name, so it
    /// stays the same across exports and restarts), `created_by_ref` of what it produces, and
    /// the MISP `Orgc`.
    pub organisation: String,
    /// Contact of the organisation (STIX `contact_information`), e.g. its CSIRT's address.
    pub contact: Option<String>,
    /// `[[hub.sharing.poll]]`: partner TAXII collections polled by `kizuna hub serve`.
    pub poll: Vec<PollConfig>,
}

impl Default for SharingConfig {
    fn default() -> Self {
        SharingConfig { organisation: PRODUCER.into(), contact: None, poll: Vec::new() }
    }
}

/// One partner collection to poll.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    /// The partner organisation: provenance (`source` prefix, origin) of what it sends; the
    /// hub never serves that data back to it.
    pub name: String,
    /// The collection URL (`https://…/api-root/collections/{id}/`).
    pub url: String,
    /// HTTP Basic user (with `password_file`).
    #[serde(default)]
    pub user: Option<String>,
    /// File holding the Basic password (first line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// File holding an API key, sent as `Authorization: Token …` (first line).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Seconds between polls (default 300).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// PEM file of the CA(s) that sign the partner's certificate; without it the web PKI
    /// roots. Host names are always verified.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Objects per page to ask for (default 100).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Timeout of one request, seconds (default 60).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// TLP of objects the partner sends without a TLP marking (default AMBER).
    #[serde(default)]
    pub default_tlp: Option<String>,
    /// The widest audience anything from this partner gets here: a wider TLP is narrowed to
    /// it (e.g. `GREEN` keeps the partner's CLEAR data inside the community).
    #[serde(default)]
    pub tlp_floor: Option<String>,
    /// Sharing groups given to what the partner sends without naming any.
    #[serde(default)]
    pub sharing_groups: Vec<String>,
}

fn default_interval() -> u64 {
    300
}
fn default_page_size() -> usize {
    100
}
fn default_timeout() -> u64 {
    60
}

fn tlp_field(v: &Option<String>, what: &str) -> Result<Option<Tlp>, String> {
    v.as_deref().map(|t| t.parse::<Tlp>().map_err(|e| format!("{what}: {e}"))).transpose()
}

impl SharingConfig {
    /// Checks the section: an organisation name, unique partner names, http(s) URLs, one way
    /// to authenticate, TLP names.
    pub fn validate(&self) -> Result<(), String> {
        if self.organisation.trim().is_empty() {
            return Err("hub.sharing.organisation must not be empty".into());
        }
        check_poll_list(&self.poll)?;
        for p in &self.poll {
            let at = format!("hub.sharing.poll {:?}", p.name);
            if p.name.trim().is_empty() {
                return Err("hub.sharing.poll: name must not be empty".into());
            }
            if !(p.url.starts_with("https://") || p.url.starts_with("http://")) {
                return Err(format!("{at}: url {:?} is not http(s)", p.url));
            }
            match (&p.user, &p.password_file, &p.token_file) {
                (Some(_), Some(_), None) | (None, None, _) => {}
                _ => return Err(format!("{at}: give user with password_file, or token_file")),
            }
            if p.interval_secs == 0 || p.page_size == 0 || p.timeout_secs == 0 {
                return Err(format!("{at}: interval_secs, page_size and timeout_secs must be positive"));
            }
            tlp_field(&p.default_tlp, &format!("{at}: default_tlp"))?;
            tlp_field(&p.tlp_floor, &format!("{at}: tlp_floor"))?;
        }
        Ok(())
    }

    /// Export options naming this hub's organisation.
    pub fn export_options(&self) -> kizuna_stix::ExportOptions {
        let mut o = kizuna_stix::ExportOptions::new(self.organisation.clone());
        o.contact = self.contact.clone();
        o
    }
}

fn read_secret(p: &std::path::Path, what: &str) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(p).map_err(|e| ClientError::Config(format!("{what} {}: {e}", p.display())))?;
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    if line.is_empty() {
        return Err(ClientError::Config(format!("{what} {} is empty", p.display())));
    }
    Ok(line)
}

impl PollConfig {
    /// The credentials, read from their files now (so a rotated secret is used at the next
    /// poll).
    pub fn auth(&self) -> Result<ClientAuth, ClientError> {
        match (&self.user, &self.password_file, &self.token_file) {
            (Some(user), Some(pw), _) => {
                Ok(ClientAuth::Basic { user: user.clone(), password: read_secret(pw, "password_file")? })
            }
            (_, _, Some(t)) => Ok(ClientAuth::Token(read_secret(t, "token_file")?)),
            _ => Ok(ClientAuth::None),
        }
    }

    /// The store key of this collection's poll state (a new URL starts from the beginning).
    pub fn state_key(&self) -> String {
        format!("taxii-poll:{}:{}", self.name, self.url)
    }
}

/// What one poll of a partner brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Objects received.
    pub objects: usize,
    /// Pages read.
    pub pages: usize,
    /// Indicators imported (one object may give several).
    pub indicators: usize,
    /// Sightings imported.
    pub sightings: usize,
    /// Objects that could not be used.
    pub rejected: usize,
    /// Where the next poll starts.
    pub added_after: Option<String>,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// Talking to the partner failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] kizuna_store::StoreError),
    /// A worker thread failed.
    #[error("worker: {0}")]
    Worker(String),
}

/// Definitions kept across the pages of one poll, so objects on a later page still find the
/// marking-definitions, identities, malware and indicators they reference.
fn keep_as_context(o: &Value, context: &mut Vec<Value>) {
    match o.get("type").and_then(Value::as_str) {
        Some("marking-definition" | "identity" | "malware" | "relationship") => context.push(o.clone()),
        Some("indicator") => {
            let mut stub = serde_json::Map::new();
            for k in ["type", "id", "pattern", "pattern_type", "indicator_types", "labels", "extensions"] {
                if let Some(v) = o.get(k) {
                    stub.insert(k.into(), v.clone());
                }
            }
            context.push(Value::Object(stub));
        }
        _ => {}
    }
}

/// Polls one partner collection once, from where the last complete poll stopped, importing
/// each page as it arrives; saves the new `added_after` when every page is read (an
/// interrupted poll repeats from the old one: imports are idempotent).
pub async fn poll_partner(
    store: &Arc<dyn HubStore>,
    p: &PollConfig,
    auth: ClientAuth,
    http: &reqwest::Client,
) -> Result<PollOutcome, PollError> {
    let default_tlp = tlp_field(&p.default_tlp, "default_tlp").map_err(ClientError::Config)?;
    let floor = tlp_field(&p.tlp_floor, "tlp_floor").map_err(ClientError::Config)?;
    let key = p.state_key();
    let st = store.clone();
    let k = key.clone();
    let (added_after, aliases) = tokio::task::spawn_blocking(move || -> Result<_, kizuna_store::StoreError> {
        let s = sharing(&st);
        Ok((s.poll_state(&k)?, s.aliases()?))
    })
    .await
    .map_err(|e| PollError::Worker(e.to_string()))??;
    let mut table = kizuna_stix::AliasTable::new();
    if let Some(j) = aliases {
        // an unreadable stored table only loses alias folding, never the import
        let _ = table.load_json(&j);
    }
    let rc = RemoteCollection { url: p.url.clone(), auth, limit: p.page_size };
    let mut pager = client::Pager::new(http, &rc, &PollState { added_after });
    let mut out = PollOutcome::default();
    let mut context: Vec<Value> = Vec::new();
    while let Some(page) = pager.next_page().await? {
        out.objects += page.len();
        let mut opts = kizuna_stix::ImportOptions::new(p.name.clone(), Timestamp::now());
        opts.aliases = table.clone();
        if let Some(t) = default_tlp {
            opts.default_tlp = t;
        }
        let groups = p.sharing_groups.clone();
        let st = store.clone();
        let ctx = context.clone();
        let pg = page.clone();
        let (n_ind, n_sight, n_rej) = tokio::task::spawn_blocking(move || -> Result<_, kizuna_store::StoreError> {
            // a sighting of one of this hub's indicators (by its STIX id) resolves to it
            let own = |id: &str| own_indicator(&st, id);
            let r = kizuna_stix::import::import_objects_with_lookup(&pg, &ctx, &opts, &own);
            let mut batch: Vec<kizuna_model::Indicator> = r.indicators.iter().map(|i| i.with_provenance()).collect();
            batch.extend(r.sightings.iter().map(|s| s.as_indicator()));
            for i in &mut batch {
                if i.sharing_groups.is_empty() {
                    i.sharing_groups = groups.clone();
                }
                if let Some(f) = floor {
                    i.tlp = i.tlp.max(f);
                }
            }
            if !batch.is_empty() {
                IndicatorStore::upsert_indicators(&*st, &batch, opts.now)?;
            }
            Ok((r.indicators.len(), r.sightings.len(), r.rejected.len()))
        })
        .await
        .map_err(|e| PollError::Worker(e.to_string()))??;
        out.indicators += n_ind;
        out.sightings += n_sight;
        out.rejected += n_rej;
        for o in &page {
            keep_as_context(o, &mut context);
        }
    }
    out.pages = pager.pages();
    out.added_after = pager.state().added_after.clone();
    let st = store.clone();
    let o = out.clone();
    let name = p.name.clone();
    tokio::task::spawn_blocking(move || -> Result<(), kizuna_store::StoreError> {
        let now = Timestamp::now();
        sharing(&st).set_poll_state(&key, o.added_after.as_deref(), now)?;
        if o.objects > 0 {
            st.append_audit(&AuditRecord {
                at: now,
                actor: "hub".into(),
                action: "share.poll".into(),
                subject: format!("partner:{name}"),
                detail: serde_json::json!({
                    "objects": o.objects, "pages": o.pages, "indicators": o.indicators,
                    "sightings": o.sightings, "rejected": o.rejected, "added_after": o.added_after,
                })
                .to_string(),
            })?;
        }
        Ok(())
    })
    .await
    .map_err(|e| PollError::Worker(e.to_string()))??;
    Ok(out)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerLabel {
    partner: String,
}

/// Per-partner poll metrics (a registry of their own, appended to the hub's `/metrics`).
pub struct PollMetrics {
    registry: Registry,
    polls: Family<PartnerLabel, Counter>,
    errors: Family<PartnerLabel, Counter>,
    objects: Family<PartnerLabel, Counter>,
    indicators: Family<PartnerLabel, Counter>,
    sightings: Family<PartnerLabel, Counter>,
    rejected: Family<PartnerLabel, Counter>,
    last_success: Family<PartnerLabel, Gauge>,
    failing: Family<PartnerLabel, Gauge>,
}

impl Default for PollMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PollMetrics {
    /// Registers the metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut family = |name: &str, help: &str| {
            let f = Family::<PartnerLabel, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let polls = family("kizuna_taxii_polls", "Completed polls of a partner collection");
        let errors = family("kizuna_taxii_poll_errors", "Failed polls of a partner collection");
        let objects = family("kizuna_taxii_poll_objects", "STIX objects received from a partner collection");
        let indicators = family("kizuna_taxii_poll_indicators", "Indicators imported from a partner collection");
        let sightings = family("kizuna_taxii_poll_sightings", "Sightings imported from a partner collection");
        let rejected = family("kizuna_taxii_poll_rejected", "Objects from a partner that could not be used");
        let last_success = Family::<PartnerLabel, Gauge>::default();
        registry.register(
            "kizuna_taxii_poll_last_success_timestamp_seconds",
            "Unix time of the last successful poll of a partner collection",
            last_success.clone(),
        );
        let failing = Family::<PartnerLabel, Gauge>::default();
        registry.register(
            "kizuna_taxii_poll_consecutive_failures",
            "Polls of a partner collection that failed in a row",
            failing.clone(),
        );
        PollMetrics { registry, polls, errors, objects, indicators, sightings, rejected, last_success, failing }
    }

    fn label(name: &str) -> PartnerLabel {
        PartnerLabel { partner: name.to_owned() }
    }

    /// Counts a successful poll.
    pub fn success(&self, name: &str, o: &PollOutcome) {
        let l = Self::label(name);
        self.polls.get_or_create(&l).inc();
        self.objects.get_or_create(&l).inc_by(o.objects as u64);
        self.indicators.get_or_create(&l).inc_by(o.indicators as u64);
        self.sightings.get_or_create(&l).inc_by(o.sightings as u64);
        self.rejected.get_or_create(&l).inc_by(o.rejected as u64);
        self.last_success.get_or_create(&l).set(Timestamp::now().as_secs());
        self.failing.get_or_create(&l).set(0);
    }

    /// Counts a failed poll.
    pub fn failure(&self, name: &str, in_a_row: u32) {
        let l = Self::label(name);
        self.errors.get_or_create(&l).inc();
        self.failing.get_or_create(&l).set(i64::from(in_a_row));
        // make the series exist before the first success, so a partner that never answered shows
        let _ = self.last_success.get_or_create(&l);
        let _ = self.polls.get_or_create(&l);
    }

    /// Appends these metrics to a text exposition that ends with `# EOF`.
    pub fn append_to(&self, text: &mut String) {
        if text.ends_with("# EOF\n") {
            text.truncate(text.len() - "# EOF\n".len());
        }
        let _ = prometheus_client::encoding::text::encode(text, &self.registry);
    }
}

/// The delay before retrying after `failures` failed polls in a row: 1 s, doubling, never more
/// than the poll interval.
pub fn retry_delay(failures: u32, interval: Duration) -> Duration {
    let d = Duration::from_secs(1u64 << failures.saturating_sub(1).min(16));
    d.min(interval)
}

/// The running pollers of `kizuna hub serve`, by partner name.
#[derive(Default)]
pub struct Pollers {
    running: std::sync::Mutex<std::collections::BTreeMap<String, (PollConfig, tokio::task::JoinHandle<()>)>>,
}

/// Refuses a `[[hub.sharing.poll]]` list that names a partner twice (checked when the config
/// is read, and again by [`Hub::set_poll_partners`] for callers that build the list).
pub fn check_poll_list(list: &[PollConfig]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for p in list {
        if !seen.insert(p.name.as_str()) {
            return Err(format!("hub.sharing.poll {:?}: the name is used twice", p.name));
        }
    }
    Ok(())
}

/// What a new partner list changed ([`Hub::set_poll_partners`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollChange {
    /// Partners polled from now on.
    pub started: Vec<String>,
    /// Partners no longer polled.
    pub stopped: Vec<String>,
    /// Partners whose settings changed: their poller was restarted (it resumes from the saved
    /// cursor).
    pub restarted: Vec<String>,
    /// Partners left running as they were.
    pub unchanged: Vec<String>,
}

impl Hub {
    /// Makes the running pollers match `list` (`[[hub.sharing.poll]]`): new partners start
    /// (a poll at once), removed ones stop, changed ones restart, the others keep running. A
    /// stopped or restarted poller loses nothing: the pages it stored stay (a page's store
    /// write runs to its end even when the poller is stopped), and the next poll starts from
    /// the last complete poll's point, where objects seen again are merged by their id, not
    /// added twice. Duplicate names are refused, and nothing changes then. Needs a tokio
    /// runtime.
    pub fn set_poll_partners(self: &Arc<Self>, list: &[PollConfig]) -> Result<PollChange, String> {
        check_poll_list(list)?;
        let mut running = self.pollers.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut change = PollChange::default();
        let wanted: std::collections::BTreeMap<&str, &PollConfig> = list.iter().map(|p| (p.name.as_str(), p)).collect();
        running.retain(|name, (cfg, task)| match wanted.get(name.as_str()) {
            Some(p) if *p == cfg => true,
            Some(_) => {
                task.abort();
                change.restarted.push(name.clone());
                false
            }
            None => {
                task.abort();
                change.stopped.push(name.clone());
                false
            }
        });
        for p in list {
            if running.contains_key(&p.name) {
                change.unchanged.push(p.name.clone());
                continue;
            }
            if !change.restarted.contains(&p.name) {
                change.started.push(p.name.clone());
            }
            running.insert(p.name.clone(), (p.clone(), spawn_poller(self.clone(), p.clone())));
        }
        Ok(change)
    }

    /// Stops every poller (the hub is shutting down).
    pub fn stop_pollers(&self) {
        let mut running = self.pollers.running.lock().unwrap_or_else(|p| p.into_inner());
        for (_, (_, task)) in std::mem::take(&mut *running) {
            task.abort();
        }
    }

    /// The partners being polled now.
    pub fn poll_partners(&self) -> Vec<String> {
        self.pollers.running.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }
}

/// One partner's poller: poll at once, then every `interval_secs`; failures are logged,
/// counted and retried sooner ([`retry_delay`]).
fn spawn_poller(hub: Arc<Hub>, p: PollConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_secs(p.interval_secs.max(1));
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            let result = async {
                let http = client::http_client(p.ca_file.as_deref(), Duration::from_secs(p.timeout_secs))?;
                poll_partner(hub.store(), &p, p.auth()?, &http).await
            }
            .await;
            let delay = match result {
                Ok(o) if o.objects == 0 => {
                    failures = 0;
                    hub.sharing.success(&p.name, &o);
                    tracing::debug!(partner = %p.name, "polled: nothing new");
                    interval
                }
                Ok(o) => {
                    failures = 0;
                    hub.sharing.success(&p.name, &o);
                    tracing::info!(
                        partner = %p.name, objects = o.objects, pages = o.pages, indicators = o.indicators,
                        sightings = o.sightings, rejected = o.rejected,
                        "polled in {:.1}s", started.elapsed().as_secs_f64()
                    );
                    interval
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    hub.sharing.failure(&p.name, failures);
                    let d = retry_delay(failures, interval);
                    tracing::warn!(partner = %p.name, "poll failed ({failures} in a row, retry in {d:?}): {e}");
                    d
                }
            };
            tokio::time::sleep(delay).await;
        }
    })
}

/// [`ObjectStore`] over the hub's [`SharingStore`]; `producer` names the hub in the indicator
/// objects it publishes.
pub struct HubObjects {
    /// The store.
    pub store: Arc<dyn HubStore>,
    /// Export options (organisation, contact).
    pub producer: kizuna_stix::ExportOptions,
}

impl HubObjects {
    /// Over a store, publishing as `producer`.
    pub fn new(store: Arc<dyn HubStore>, producer: kizuna_stix::ExportOptions) -> Self {
        HubObjects { store, producer }
    }
}

fn sharing(s: &Arc<dyn HubStore>) -> &dyn SharingStore {
    &**s
}

fn backend(e: kizuna_store::StoreError) -> StoreError {
    match e {
        kizuna_store::StoreError::NotFound(what) => StoreError::NoCollection(what),
        other => StoreError::Backend(other.to_string()),
    }
}

fn labels_json(l: &OwnedLabels) -> String {
    serde_json::json!({"tlp": l.tlp.as_str(), "groups": l.groups, "recipients": l.recipients, "origin": l.origin})
        .to_string()
}

fn labels_from(s: &str) -> OwnedLabels {
    let v: Value = serde_json::from_str(s).unwrap_or(Value::Null);
    let list = |k: &str| -> Vec<String> {
        v[k].as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
    };
    OwnedLabels {
        // an unreadable label is treated as the narrowest audience, never a wider one
        tlp: v["tlp"].as_str().and_then(|t| t.parse().ok()).unwrap_or(kizuna_model::Tlp::Red),
        groups: list("groups"),
        recipients: list("recipients"),
        origin: v["origin"].as_str().map(str::to_owned),
    }
}

fn entry(r: TaxiiObjectRow) -> Entry {
    Entry {
        seq: r.seq,
        id: r.object.id.into(),
        stix_type: r.object.stix_type.into(),
        version: r.object.version,
        version_text: r.object.version_text.into(),
        spec_version: r.object.spec_version.into(),
        date_added: r.date_added,
        json: r.object.json.into(),
        labels: Arc::new(labels_from(&r.object.labels_json)),
    }
}

impl ObjectStore for HubObjects {
    fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        let mut all = sharing(&self.store).taxii_collections().map_err(backend)?;
        if all.iter().all(|c| c.id != INDICATORS_COLLECTION) {
            // a new hub: the indicators view exists from the first request on
            sync_indicators_as(&self.store, &self.producer, Timestamp::now())?;
            all = sharing(&self.store).taxii_collections().map_err(backend)?;
        }
        Ok(all
            .into_iter()
            .map(|c| CollectionInfo {
                id: c.id,
                title: c.title,
                description: c.description,
                default_labels: OwnedLabels { tlp: c.default_tlp, groups: c.default_groups, ..OwnedLabels::default() },
                no_echo: c.no_echo,
            })
            .collect())
    }

    fn put_collection(&self, info: &CollectionInfo) -> Result<(), StoreError> {
        sharing(&self.store)
            .put_taxii_collection(&TaxiiCollectionRecord {
                id: info.id.clone(),
                title: info.title.clone(),
                description: info.description.clone(),
                default_tlp: info.default_labels.tlp,
                default_groups: info.default_labels.groups.clone(),
                no_echo: info.no_echo,
            })
            .map_err(backend)
    }

    fn scan(
        &self,
        collection: &str,
        after_seq: u64,
        added_after: Option<i64>,
        visit: &mut dyn FnMut(&Entry, &[Sibling]) -> bool,
    ) -> Result<(), StoreError> {
        if collection == INDICATORS_COLLECTION {
            // the view is brought up to date before every read: one query when nothing changed
            sync_indicators_as(&self.store, &self.producer, Timestamp::now())?;
        }
        let s = sharing(&self.store);
        let mut after = after_seq;
        loop {
            let rows = s.taxii_objects_after(collection, after, added_after, 512).map_err(backend)?;
            if rows.is_empty() {
                if s.taxii_collections().map_err(backend)?.iter().all(|c| c.id != collection) {
                    return Err(StoreError::NoCollection(collection.into()));
                }
                return Ok(());
            }
            for r in rows {
                after = r.seq;
                let sib: Vec<Sibling> = if r.n_versions > 1 {
                    s.taxii_object_versions(collection, &r.object.id)
                        .map_err(backend)?
                        .into_iter()
                        .map(|v| Sibling { version: v.object.version, spec_version: v.object.spec_version.into() })
                        .collect()
                } else {
                    vec![Sibling { version: r.object.version, spec_version: r.object.spec_version.clone().into() }]
                };
                if !visit(&entry(r), &sib) {
                    return Ok(());
                }
            }
        }
    }

    fn versions(&self, collection: &str, id: &str) -> Result<Vec<Entry>, StoreError> {
        Ok(sharing(&self.store)
            .taxii_object_versions(collection, id)
            .map_err(backend)?
            .into_iter()
            .map(entry)
            .collect())
    }

    fn add(&self, collection: &str, objects: Vec<NewObject>, now: i64) -> Result<Vec<AddResult>, StoreError> {
        let mut rows = Vec::with_capacity(objects.len());
        let mut out: Vec<Option<AddResult>> = Vec::with_capacity(objects.len());
        for n in &objects {
            match kizuna_taxii::store::object_meta(&n.object, now) {
                Ok((id, ty, version, vtext, spec)) => {
                    rows.push(NewTaxiiObject {
                        id,
                        stix_type: ty,
                        version,
                        version_text: vtext,
                        spec_version: spec,
                        json: n.object.to_string(),
                        labels_json: labels_json(&n.labels),
                    });
                    out.push(None);
                }
                Err(message) => out.push(Some(AddResult::Failed {
                    id: n.object.get("id").and_then(Value::as_str).map(str::to_owned),
                    version: None,
                    message,
                })),
            }
        }
        let stored = sharing(&self.store).add_taxii_objects(collection, &rows, now).map_err(backend)?;
        let mut it = rows.into_iter().zip(stored);
        Ok(out
            .into_iter()
            .map(|o| match o {
                Some(failed) => failed,
                None => match it.next() {
                    Some((r, true)) => AddResult::Added { id: r.id, version: r.version_text },
                    Some((r, false)) => AddResult::Duplicate { id: r.id, version: r.version_text },
                    None => AddResult::Failed { id: None, version: None, message: "lost in the store".into() },
                },
            })
            .collect())
    }

    fn delete(&self, collection: &str, id: &str, versions: Option<&[i64]>) -> Result<usize, StoreError> {
        sharing(&self.store).delete_taxii_object(collection, id, versions).map_err(backend)
    }

    fn put_status(&self, status: &StatusResource) -> Result<(), StoreError> {
        let json = serde_json::json!({"request_timestamp": status.request_timestamp, "body": status.to_json()});
        sharing(&self.store).put_taxii_status(&status.id, &json.to_string(), Timestamp::now()).map_err(backend)
    }

    fn status(&self, id: &str) -> Result<Option<StatusResource>, StoreError> {
        let Some(text) = sharing(&self.store).taxii_status(id).map_err(backend)? else { return Ok(None) };
        let v: Value = serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))?;
        let b = &v["body"];
        let item =
            |x: &Value| (x["id"].as_str().unwrap_or("").to_owned(), x["version"].as_str().unwrap_or("").to_owned());
        let mut results = Vec::new();
        for s in b["successes"].as_array().into_iter().flatten() {
            let (id, version) = item(s);
            results.push(if s.get("message").is_some() {
                AddResult::Duplicate { id, version }
            } else {
                AddResult::Added { id, version }
            });
        }
        for f in b["failures"].as_array().into_iter().flatten() {
            let (id, version) = item(f);
            results.push(AddResult::Failed {
                id: Some(id),
                version: Some(version),
                message: f["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        Ok(Some(StatusResource {
            id: id.to_owned(),
            request_timestamp: v["request_timestamp"].as_str().unwrap_or("").to_owned(),
            results,
        }))
    }
}

/// Partners and credentials read from the store on every request (changes by `kizuna share
/// partner add` take effect at once).
pub struct HubDirectory(pub Arc<dyn HubStore>);

impl Directory for HubDirectory {
    fn authenticate(&self, p: &Presented) -> Option<Partner> {
        let s = sharing(&self.0);
        let partners = s.partners().ok()?;
        let creds = s.partner_credentials().ok()?;
        let mut d = StaticDirectory::default();
        for c in creds {
            let Some(rec) = partners.iter().find(|x| x.spec.name == c.partner) else { continue };
            let kind = match rec.spec.kind {
                PartyKind::Member => RecipientKind::Member,
                PartyKind::Partner => RecipientKind::Partner,
            };
            let mut recipient =
                Recipient::new(rec.spec.name.clone(), kind).with_groups(rec.spec.groups.iter().cloned());
            recipient.tlp_max = rec.spec.tlp_max;
            let cred = match c.kind {
                CredentialKind::Basic => Credential::Basic { user: c.user, password_sha256: c.secret_sha256 },
                CredentialKind::Key => Credential::Key { sha256: c.secret_sha256 },
            };
            d.entries.push((
                cred,
                Partner {
                    recipient,
                    can_read: rec.spec.can_read.iter().cloned().collect(),
                    can_write: rec.spec.can_write.iter().cloned().collect(),
                },
            ));
        }
        d.authenticate(p)
    }
}

/// Creates the `kizuna-indicators` collection if missing and publishes every indicator change
/// since the last sync; returns how many object versions were added.
pub fn sync_indicators(store: &Arc<dyn HubStore>, producer: &str, now: Timestamp) -> Result<usize, StoreError> {
    sync_indicators_as(store, &kizuna_stix::ExportOptions::new(producer), now)
}

/// [`sync_indicators`] with full export options (the organisation's contact too).
pub fn sync_indicators_as(
    store: &Arc<dyn HubStore>,
    opts: &kizuna_stix::ExportOptions,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let objects = HubObjects::new(store.clone(), opts.clone());
    if sharing(store).taxii_collections().map_err(backend)?.iter().all(|c| c.id != INDICATORS_COLLECTION) {
        objects.put_collection(&CollectionInfo {
            id: INDICATORS_COLLECTION.into(),
            title: "kizuna indicators".into(),
            description: "Indicators of this hub, each served only to partners its TLP and sharing groups allow".into(),
            default_labels: OwnedLabels { tlp: kizuna_model::Tlp::Amber, ..OwnedLabels::default() },
            no_echo: true,
        })?;
    }
    let cursor_key = format!("local:{INDICATORS_COLLECTION}");
    let s = sharing(store);
    let mut after: u64 = s.poll_state(&cursor_key).map_err(backend)?.and_then(|v| v.parse().ok()).unwrap_or(0);
    // An indicator whose source is a partner organisation came from that partner: it keeps
    // that origin, so it is never served back there (nor is its sighting).
    let partners: Vec<String> = s.partners().map_err(backend)?.into_iter().map(|p| p.spec.name).collect();
    let mut added = 0;
    loop {
        let recs = IndicatorStore::indicator_changes_since(&**store, after, 1000).map_err(backend)?;
        if recs.is_empty() {
            return Ok(added);
        }
        let mut batch = Vec::with_capacity(recs.len());
        for r in &recs {
            after = r.change_seq;
            let item = kizuna_stix::ExportItem {
                indicator: &r.indicator,
                created: r.created,
                modified: r.updated,
                recipients: &[],
                provenance: None,
                purpose: None,
            };
            let mut o = kizuna_stix::export::indicator_object(&item, opts);
            if !r.is_publishable(now) {
                o["revoked"] = true.into();
            }
            let labels = record_labels(r, &partners);
            batch.push(NewObject { object: o, labels: labels.clone() });
            // the hub's own sighting of it, under the same labels: the SCO (it has no
            // version of its own) only when it is new or its audience changed
            if let Some(si) = own_sighting(r, &partners, now) {
                let [sco, od, sighting] = kizuna_stix::sighting_objects(&si, opts);
                let sco_id = sco["id"].as_str().unwrap_or_default();
                let stored = s.taxii_object_versions(INDICATORS_COLLECTION, sco_id).map_err(backend)?;
                let same = stored.iter().max_by_key(|v| v.object.version).map(|v| labels_from(&v.object.labels_json));
                if same.as_ref() != Some(&labels) {
                    batch.push(NewObject { object: sco, labels: labels.clone() });
                }
                batch.push(NewObject { object: od, labels: labels.clone() });
                batch.push(NewObject { object: sighting, labels });
            }
        }
        added += objects
            .add(INDICATORS_COLLECTION, batch, now.as_micros())?
            .iter()
            .filter(|r| matches!(r, AddResult::Added { .. }))
            .count();
        s.set_poll_state(&cursor_key, Some(&after.to_string()), now).map_err(backend)?;
    }
}

/// Whether an indicator source is a partner organisation (`<partner>` or `<partner>/<feed>`, as
/// `ImportedIndicator::with_provenance` writes it).
fn partner_of<'a>(source: &str, partners: &'a [String]) -> Option<&'a String> {
    partners
        .iter()
        .find(|p| source == p.as_str() || source.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('/')))
}

/// The hub's own sighting of an indicator record: how many of the hub's own sources (feeds,
/// sensors, analysts: one provenance entry each) reported the value, from the earliest
/// `first_seen` to the latest `last_seen` among them, seen by the hub (`where_sighted_refs`
/// its identity; no source or member is named).
///
/// The audience is the indicator's own: the sighting has the record's TLP and sharing groups,
/// and counts only entries whose TLP is that wide (an entry a source gave a narrower TLP, e.g.
/// AMBER beside another source's GREEN, is left out, so a GREEN recipient learns nothing of
/// it). Entries from partners (data they sent) and imported sightings are not the hub's own
/// and are never counted. `None` when no entry is left.
pub fn own_sighting(rec: &IndicatorRecord, partners: &[String], now: Timestamp) -> Option<kizuna_stix::SightingItem> {
    let tlp = rec.indicator.tlp;
    let own: Vec<&kizuna_store::indicators::Provenance> = rec
        .provenance
        .iter()
        .filter(|p| p.tlp <= tlp && !p.source.contains("/sighting:") && partner_of(&p.source, partners).is_none())
        .collect();
    let first_seen = own.iter().map(|p| p.first_seen).min()?;
    let last_seen = own.iter().map(|p| p.last_seen).max()?;
    Some(kizuna_stix::SightingItem {
        kind: rec.indicator.kind,
        value: rec.indicator.value.clone(),
        count: own.len() as u64,
        first_seen,
        last_seen,
        tlp,
        sharing_groups: rec.indicator.sharing_groups.clone(),
        legal_basis: rec.indicator.legal_basis,
        where_sighted: None,
        created: rec.created,
        modified: rec.updated,
        revoked: !rec.is_publishable(now),
    })
}

/// The labels of an indicator record's objects (its indicator and its sighting): its TLP and
/// groups, and the partner it came from (never served back there).
fn record_labels(rec: &IndicatorRecord, partners: &[String]) -> OwnedLabels {
    OwnedLabels {
        tlp: rec.indicator.tlp,
        groups: rec.indicator.sharing_groups.clone(),
        recipients: vec![],
        origin: partner_of(&rec.indicator.source, partners).cloned(),
    }
}

/// The STIX indicator object kizuna publishes with this id in `kizuna-indicators` (its newest
/// version), for resolving partners' sightings of it.
pub fn own_indicator(store: &Arc<dyn HubStore>, id: &str) -> Option<Value> {
    if !id.starts_with("indicator--") {
        return None;
    }
    let rows = sharing(store).taxii_object_versions(INDICATORS_COLLECTION, id).ok()?;
    let newest = rows.into_iter().max_by_key(|r| r.object.version)?;
    serde_json::from_str(&newest.object.json).ok()
}

/// The TAXII routes for the hub's router.
pub fn routes(hub: &Arc<Hub>) -> Router<Arc<Hub>> {
    let server = Arc::new(TaxiiServer {
        config: TaxiiConfig::default(),
        store: Arc::new(HubObjects::new(hub.store().clone(), hub.config.sharing.export_options())),
        directory: Arc::new(HubDirectory(hub.store().clone())),
    });
    kizuna_taxii::router(server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis};
    use kizuna_store::indicators::{IndicatorState, merge_indicator};

    const TLPS: [Tlp; 5] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];
    const SOURCES: [&str; 4] = ["feed-a", "sensor-b", "cert-p/feed", "cert-p/sighting:ISP Q"];

    fn entry(source: &str, tlp: Tlp, n: i64) -> Indicator {
        Indicator {
            kind: IndicatorKind::Domain,
            value: "x.bad.example".into(),
            category: ClassificationType::C2Server,
            source: source.into(),
            confidence: 50,
            first_seen: Timestamp::from_secs(1_772_668_800 + n * 7_200),
            last_seen: Timestamp::from_secs(1_772_668_800 + n * 7_200 + 600 * (n % 3)),
            expires: Timestamp::from_secs(4_102_444_800),
            reason: source.into(),
            malware: None,
            tlp,
            sharing_groups: if tlp >= Tlp::Amber { vec![format!("g{}", n % 2)] } else { vec![] },
            legal_basis: LegalBasis::LegitimateBusiness,
        }
    }

    /// Every record of up to three entries (each of four sources, own or a partner's, at each
    /// TLP): the sighting counts exactly the own entries at the record's TLP, shows only their
    /// times, and reaches exactly the recipients the indicator reaches.
    #[test]
    fn a_sighting_never_widens_its_indicators_audience() {
        let partners = vec!["cert-p".to_owned()];
        let recipients = [
            Recipient::public(),
            Recipient::new("cert-p", RecipientKind::Partner),
            Recipient::new("other", RecipientKind::Partner).with_groups(["g0".to_owned()]),
            Recipient::new("isp", RecipientKind::Member).with_groups(["g1".to_owned()]),
        ];
        let choices: Vec<(usize, Tlp)> = (0..SOURCES.len()).flat_map(|s| TLPS.map(|t| (s, t))).collect();
        let mut checked = 0;
        for a in 0..choices.len() {
            for b in a..=choices.len() {
                for c in b..=choices.len() {
                    let picked: Vec<(usize, Tlp)> =
                        [Some(a), (b < choices.len()).then_some(b), (c < choices.len()).then_some(c)]
                            .into_iter()
                            .flatten()
                            .map(|i| choices[i])
                            .collect();
                    let entries: Vec<Indicator> =
                        picked.iter().enumerate().map(|(n, (s, t))| entry(SOURCES[*s], *t, n as i64)).collect();
                    let first = &entries[0];
                    let mut rec = IndicatorRecord {
                        key: first.key(),
                        indicator: first.clone(),
                        state: IndicatorState::Active,
                        conflict: None,
                        shared_host: None,
                        provenance: vec![kizuna_store::indicators::provenance_of(first)],
                        withdrawal: None,
                        created: first.first_seen,
                        updated: first.first_seen,
                        version: 1,
                        change_seq: 1,
                    };
                    for e in &entries[1..] {
                        merge_indicator(&mut rec, e);
                    }
                    let own: Vec<_> = rec
                        .provenance
                        .iter()
                        .filter(|p| (p.source == "feed-a" || p.source == "sensor-b") && p.tlp == rec.indicator.tlp)
                        .collect();
                    let got = own_sighting(&rec, &partners, Timestamp::from_secs(1_772_700_000));
                    let Some(s) = got else {
                        assert!(own.is_empty(), "{rec:?}");
                        continue;
                    };
                    assert_eq!(s.count, own.len() as u64, "{rec:?}");
                    assert_eq!(s.first_seen, own.iter().map(|p| p.first_seen).min().expect("own"));
                    assert_eq!(s.last_seen, own.iter().map(|p| p.last_seen).max().expect("own"));
                    assert_eq!(s.tlp, rec.indicator.tlp);
                    let ind = record_labels(&rec, &partners);
                    let sig = OwnedLabels {
                        tlp: s.tlp,
                        groups: s.sharing_groups.clone(),
                        recipients: vec![],
                        origin: ind.origin.clone(),
                    };
                    for r in &recipients {
                        assert_eq!(
                            kizuna_policy::should_send(&sig.as_labels(), r),
                            kizuna_policy::should_send(&ind.as_labels(), r),
                            "{r:?} {rec:?}"
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 500, "only {checked} records had a sighting");
    }
}
