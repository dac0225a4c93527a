//! The hub's HTTP service (axum): sensors push batches in, member ISPs pull their own
//! observations out.
//!
//! Routes:
//! - `POST /api/v1/ingest?format=…&name=…` (sensor token): parse, attribute, commit; answers
//!   after the commit with the run's summary.
//! - `GET /api/v1/observations?cursor=…&limit=…` (member token): one page of the member's
//!   observations in commit order and the cursor for the next page. Every page read is written to
//!   the audit log.
//! - `GET /api/v1/me` (member token): the member's own record.
//! - `GET /healthz`, `GET /metrics` (Prometheus text).
//!
//! **Architecture invariant:** a member's token selects the member; the member id never comes
//! from the request. There is no route by which one member can name another.

pub mod console;
pub mod indicators;
pub mod metrics;
pub mod sharing;
pub mod stats;
pub mod tokens;

use std::io::Cursor as IoCursor;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use kizuna_attrib::Attributor;
use kizuna_model::{LegalBasis, Timestamp, Tlp};
use kizuna_parsers::{Context, CsvMapping, Format};
use kizuna_pipeline::{Options, Summary};
use kizuna_store::{AuditRecord, Cursor, HubStore, Member, StoreError};

pub use metrics::Metrics;

/// `[hub]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest accepted upload, bytes.
    pub max_upload_bytes: usize,
    /// Page size when the member does not ask for one.
    pub page_limit_default: usize,
    /// Largest page a member may ask for.
    pub page_limit_max: usize,
    /// How often to check the store for changed members or routes, seconds.
    pub reload_interval_secs: u64,
    /// Sensors allowed to push data, each with the SHA-256 of its token (`kizuna sensor token`).
    pub sensors: Vec<SensorConfig>,
    /// Analysts allowed to add and withdraw indicators (`[[hub.analysts]]`).
    pub analysts: Vec<indicators::AnalystConfig>,
    /// `[hub.indicators]`: derivation, allow-list and publication policy.
    pub indicators: kizuna_indicators::PolicyConfig,
    /// `[hub.sharing]`: this hub's organisation identity and the partner collections it polls.
    pub sharing: sharing::SharingConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8640)),
            max_upload_bytes: 256 << 20,
            page_limit_default: 1000,
            page_limit_max: 10_000,
            reload_interval_secs: 5,
            sensors: Vec::new(),
            analysts: Vec::new(),
            indicators: kizuna_indicators::PolicyConfig::default(),
            sharing: sharing::SharingConfig::default(),
        }
    }
}

/// A sensor allowed to push data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    /// Sensor name, used in logs and as the default `feed.provider`.
    pub name: String,
    /// Hex SHA-256 of the sensor's token.
    pub token_sha256: String,
}

/// Ingest defaults shared by the CLI and the HTTP endpoint.
#[derive(Debug, Clone, Default)]
pub struct IngestSettings {
    /// TLP given to observations whose source does not set one.
    pub default_tlp: Option<Tlp>,
    /// Legal basis recorded with observations.
    pub legal_basis: LegalBasis,
    /// Batch sizes.
    pub options: Options,
    /// Generic CSV mappings (`csv:<name>` formats).
    pub csv_mappings: Vec<CsvMapping>,
    /// Retention periods, applied hourly by the running hub (and by `kizuna expire`).
    pub retention: kizuna_store::Retention,
}

/// The running hub.
pub struct Hub {
    store: Arc<dyn HubStore>,
    config: HubConfig,
    ingest: IngestSettings,
    attribution: RwLock<(u64, Arc<Attributor>)>,
    metrics: Metrics,
    started: Instant,
    indicators: indicators::HubIndicators,
    sharing: sharing::PollMetrics,
    pollers: sharing::Pollers,
}

/// Errors starting the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Listening or serving failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
    /// The indicator policy (`[hub.indicators]`) is invalid.
    #[error("{0}")]
    Indicators(String),
}

impl Hub {
    /// A hub over a store; loads the attribution tables from it.
    pub fn new(store: Arc<dyn HubStore>, config: HubConfig, ingest: IngestSettings) -> Result<Arc<Hub>, HubError> {
        Self::with_metrics(store, config, ingest, Metrics::new())
    }

    /// Like [`Hub::new`] with a metrics set that may hold more registered metrics (served on
    /// the hub's `/metrics`).
    pub fn with_metrics(
        store: Arc<dyn HubStore>,
        config: HubConfig,
        ingest: IngestSettings,
        metrics: Metrics,
    ) -> Result<Arc<Hub>, HubError> {
        let generation = store.routing_generation()?;
        let attributor = kizuna_pipeline::attributor_from_store(store.as_ref())?;
        let indicators = indicators::HubIndicators::new(&config.indicators, store.as_ref())?;
        Ok(Arc::new(Hub {
            store,
            config,
            ingest,
            attribution: RwLock::new((generation, Arc::new(attributor))),
            metrics,
            started: Instant::now(),
            indicators,
            sharing: sharing::PollMetrics::new(),
            pollers: sharing::Pollers::default(),
        }))
    }

    /// The axum router of every route.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics_text))
            .route("/api/v1/ingest", post(ingest).layer(DefaultBodyLimit::max(self.config.max_upload_bytes)))
            .route("/api/v1/observations", get(observations))
            .route("/api/v1/me", get(me))
            .merge(sharing::routes(self))
            .merge(stats::routes())
            .merge(console::routes(self))
            .merge(indicators::routes())
            .layer(middleware::from_fn_with_state(self.clone(), track_latency))
            .with_state(self.clone())
    }

    /// Reloads the attribution tables when members or routes changed in the store (possibly
    /// from another process, e.g. `kizuna member add`).
    pub fn reload_if_changed(&self) -> Result<bool, StoreError> {
        let generation = self.store.routing_generation()?;
        if self.attribution.read().map(|a| a.0 == generation).unwrap_or(false) {
            return Ok(false);
        }
        let attributor = kizuna_pipeline::attributor_from_store(self.store.as_ref())?;
        if let Ok(mut a) = self.attribution.write() {
            *a = (generation, Arc::new(attributor));
        }
        Ok(true)
    }

    fn attributor(&self) -> Arc<Attributor> {
        match self.attribution.read() {
            Ok(a) => a.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// Deletes observations past their feed's retention period and records it in the audit log.
    pub fn apply_retention(&self) -> Result<u64, StoreError> {
        let n = self.store.expire(Timestamp::now(), &self.ingest.retention)?;
        if n > 0 {
            self.store.append_audit(&AuditRecord {
                at: Timestamp::now(),
                actor: "hub".into(),
                action: "retention.expire".into(),
                subject: "observations".into(),
                detail: serde_json::json!({ "deleted": n }).to_string(),
            })?;
        }
        Ok(n)
    }

    /// Woken after every change this hub makes to the indicator set (pass to
    /// `kizuna_dns::Service::wake_on` so the in-process RPZ primary publishes at once).
    pub fn indicator_change_notifier(&self) -> Arc<tokio::sync::Notify> {
        self.indicators.change_notifier()
    }

    /// The store, for route modules of other areas.
    pub fn store(&self) -> &Arc<dyn HubStore> {
        &self.store
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves until `shutdown` completes. Also reloads attribution tables in the background.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), HubError> {
        let hub = self.clone();
        let interval = Duration::from_secs(self.config.reload_interval_secs.max(1));
        let reloader = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let h = hub.clone();
                match tokio::task::spawn_blocking(move || h.reload_if_changed()).await {
                    Ok(Ok(true)) => tracing::info!("members or routes changed: attribution tables reloaded"),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::warn!("reloading attribution tables: {e}"),
                    Err(e) => tracing::warn!("reload task: {e}"),
                }
            }
        });
        let hub = self.clone();
        let expirer = tokio::spawn(async move {
            loop {
                let h = hub.clone();
                match tokio::task::spawn_blocking(move || h.apply_retention()).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!("retention: deleted {n} observations"),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!("applying retention: {e}"),
                    Err(e) => tracing::warn!("retention task: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
        let indicator_expiry = indicators::spawn_expiry(self.clone(), Duration::from_secs(30));
        if let Err(e) = self.set_poll_partners(&self.config.sharing.poll) {
            tracing::error!("{e}: no partner is polled");
        }
        let result = axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await;
        indicator_expiry.abort();
        self.stop_pollers();
        reloader.abort();
        expirer.abort();
        result.map_err(HubError::Io)
    }
}

/// A JSON error body `{"error": "..."}` with a status.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 }).to_string();
        (self.0, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("store: {e}");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable".into())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("worker failed: {e}")))?
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")).then(|| token.trim())
}

fn unauthorized(what: &str) -> ApiError {
    ApiError(StatusCode::UNAUTHORIZED, format!("a valid {what} token is required (Authorization: Bearer <token>)"))
}

/// The member whose live token the request carries.
fn authenticate_member(hub: &Hub, headers: &HeaderMap) -> Result<Member, ApiError> {
    let token = bearer(headers).ok_or_else(|| unauthorized("member"))?;
    let hash = tokens::hash(token);
    let id = hub.store.member_for_token(&hash)?.ok_or_else(|| unauthorized("member"))?;
    hub.store.member(id)?.ok_or_else(|| unauthorized("member"))
}

async fn track_latency(State(hub): State<Arc<Hub>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "other".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    hub.metrics
        .http_latency
        .get_or_create(&metrics::RouteLabel { route, status: resp.status().as_u16() })
        .observe(start.elapsed().as_secs_f64());
    resp
}

async fn healthz(State(hub): State<Arc<Hub>>) -> Response {
    let h = hub.clone();
    match blocking(move || h.store.totals().map_err(ApiError::from)).await {
        Ok(t) => {
            let body = serde_json::json!({
                "status": "ok",
                "uptime_seconds": hub.started.elapsed().as_secs(),
                "observations": t.observations,
            });
            ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn metrics_text(State(hub): State<Arc<Hub>>) -> Response {
    let h = hub.clone();
    let snapshot = blocking(move || Ok((h.store.totals()?, h.store.members()?))).await;
    if let Ok((totals, members)) = snapshot {
        let m = &hub.metrics;
        m.store_observations.set(totals.observations as i64);
        m.store_unattributed.set(totals.unattributed as i64);
        m.store_quarantined.set(totals.quarantined as i64);
        for (id, n) in totals.per_member {
            let name = member_name(&members, id);
            m.store_member_observations.get_or_create(&metrics::MemberLabel { member: name }).set(n as i64);
        }
    }
    indicators::refresh_metrics(&hub).await;
    let mut text = hub.metrics.encode();
    hub.sharing.append_to(&mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[derive(Deserialize)]
struct IngestQuery {
    format: String,
    name: Option<String>,
    feed_name: Option<String>,
    tlp: Option<String>,
    legal_basis: Option<String>,
}

async fn ingest(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<IngestQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = bearer(&headers).ok_or_else(|| unauthorized("sensor"))?;
    let sensor = hub
        .config
        .sensors
        .iter()
        .find(|s| tokens::matches_hex(token, &s.token_sha256))
        .ok_or_else(|| unauthorized("sensor"))?
        .name
        .clone();
    let format = Format::from_name(&q.format, &hub.ingest.csv_mappings)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let tlp = match q.tlp.as_deref() {
        Some(t) => Some(t.parse::<Tlp>().map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?),
        None => hub.ingest.default_tlp,
    };
    let legal_basis = match q.legal_basis.as_deref() {
        Some(b) => b.parse::<LegalBasis>().map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?,
        None => hub.ingest.legal_basis,
    };
    let ctx = Context {
        source_name: q.name.unwrap_or_else(|| format!("upload-from-{sensor}")),
        time_observation: Timestamp::now(),
        tlp,
        legal_basis,
        feed_name: q.feed_name,
        feed_provider: Some(sensor),
    };
    let h = hub.clone();
    let started = Instant::now();
    let summary: Summary = blocking(move || {
        let attributor = h.attributor();
        let step = indicators::ingest_step(&h);
        let opts = &h.ingest.options;
        kizuna_pipeline::ingest_with(h.store.as_ref(), &attributor, &format, &ctx, IoCursor::new(body), opts, &step)
            .map_err(|e| match e {
                kizuna_pipeline::IngestError::Setup(e) => ApiError(StatusCode::BAD_REQUEST, e.to_string()),
                other => {
                    tracing::error!("ingest: {other}");
                    ApiError(StatusCode::SERVICE_UNAVAILABLE, other.to_string())
                }
            })
    })
    .await?;
    hub.metrics.ingest_duration.observe(started.elapsed().as_secs_f64());
    let members = {
        let h = hub.clone();
        blocking(move || Ok(h.store.members()?)).await?
    };
    let name_of = |id| member_name(&members, id);
    hub.metrics.record_ingest(&summary, name_of);
    Ok(axum::Json(summary_json(&summary, &members)).into_response())
}

/// A member's name for labels and summaries; the id when the member is unknown.
fn member_name(members: &[Member], id: kizuna_model::MemberId) -> String {
    members.iter().find(|m| m.id == id).map(|m| m.name.clone()).unwrap_or_else(|| id.to_string())
}

/// The JSON form of an ingest summary (also printed by `kizuna ingest --json`).
pub fn summary_json(s: &Summary, members: &[Member]) -> serde_json::Value {
    let per_member: serde_json::Map<String, serde_json::Value> = s
        .per_member
        .iter()
        .map(|(id, n)| {
            let name = member_name(members, *id);
            (name, serde_json::Value::from(*n))
        })
        .collect();
    serde_json::json!({
        "read": s.read,
        "stored": s.stored,
        "duplicates": s.duplicates,
        "quarantined": s.quarantined,
        "skipped": s.skipped,
        "attributed": s.attributed,
        "unattributed": s.unattributed,
        "per_member": per_member,
        "rejections": s.first_rejections.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn observations(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let after = match q.cursor.as_deref() {
        None | Some("") => Cursor::START,
        Some(c) => c.parse::<u64>().map(Cursor).map_err(|_| {
            ApiError(StatusCode::BAD_REQUEST, format!("bad cursor {c:?}: use the next_cursor of the previous page"))
        })?,
    };
    let limit = q.limit.unwrap_or(hub.config.page_limit_default).clamp(1, hub.config.page_limit_max);
    let h = hub.clone();
    let (member, body, returned) = blocking(move || {
        let member = authenticate_member(&h, &headers)?;
        let mut page = h.store.page(member.id, after, limit)?;
        let more = page.items.len() >= limit;
        // The one audience rule (kizuna-policy): an observation the member may not receive (e.g.
        // TLP:RED naming another recipient) is withheld; the cursor still moves past it.
        let recipient = kizuna_policy::Recipient::new(member.name.clone(), kizuna_policy::RecipientKind::Member);
        let fetched = page.items.len();
        page.items.retain(|s| {
            let labels = kizuna_policy::observation_labels(&s.routed.observation, Some(&member.name));
            kizuna_policy::may_receive(&labels.as_labels(), &recipient)
        });
        let withheld = fetched - page.items.len();
        let body = page_json(&member, after, &page, more);
        h.store.append_audit(&AuditRecord {
            at: Timestamp::now(),
            actor: format!("member:{}", member.name),
            action: "report.read".into(),
            subject: format!("member:{}", member.id),
            detail: serde_json::json!({"cursor": after.0, "next_cursor": page.next.0, "returned": page.items.len(), "withheld": withheld})
                .to_string(),
        })?;
        Ok((member, body, page.items.len()))
    })
    .await?;
    hub.metrics.report_reads.get_or_create(&metrics::MemberLabel { member: member.name }).inc();
    tracing::debug!(returned, "report page served");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `{"member": …, "cursor": …, "next_cursor": …, "more": …, "observations": [{"id", "seq", "event"}]}`
/// where `event` is the observation in IntelMQ's event JSON.
fn page_json(member: &Member, after: Cursor, page: &kizuna_store::Page, more: bool) -> String {
    let mut out = Vec::with_capacity(256 + page.items.len() * 600);
    out.extend_from_slice(b"{\"member\":");
    out.extend_from_slice(serde_json::Value::from(member.name.as_str()).to_string().as_bytes());
    out.extend_from_slice(
        format!(",\"cursor\":\"{}\",\"next_cursor\":\"{}\",\"more\":{},\"observations\":[", after.0, page.next.0, more)
            .as_bytes(),
    );
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("{{\"id\":\"{}\",\"seq\":{},\"event\":", item.routed.id, item.seq).as_bytes());
        kizuna_parsers::intelmq::write_json(&item.routed.observation, &mut out);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    String::from_utf8(out).unwrap_or_default()
}

async fn me(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let h = hub.clone();
    let member = blocking(move || authenticate_member(&h, &headers)).await?;
    Ok(axum::Json(serde_json::json!({
        "id": member.id.0,
        "name": member.name,
        "display_name": member.display_name,
        "asns": member.asns,
        "prefixes": member.prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "contacts": member.contacts,
    }))
    .into_response())
}
