//! Indicators over HTTP, derivation after each ingest commit, expiry and metrics.
//!
//! Routes (analyst tokens come from `[[hub.analysts]]`, member tokens from the store):
//! - `POST /api/v1/indicators` (analyst): add one indicator (`AnalystInput` JSON) or a list of
//!   them. Each add is written to the audit log with the analyst's name. An allow-listed value
//!   is stored as `allow-listed` and its conflict returned.
//! - `GET /api/v1/indicators?kind=&category=&state=&source=&search=&limit=&after=`: analysts see
//!   every record; members see only publishable ones they may see (see [`member_may_see`]).
//! - `GET /api/v1/indicators/{key}` (key: 32 hex digits, or `kind:value`).
//! - `POST /api/v1/indicators/{key}/withdraw` (analyst) `{"reason": "..."}`: audited.
//! - `GET /api/v1/indicators/conflicts` (analyst): allow-listed records and the entry each hit.
//! - `GET /api/v1/indicators/changes?since=N&limit=` (analyst, member): records changed after
//!   change number N, in order; `next` is the number to ask with next time. Members get records
//!   they may not see or that are not publishable as tombstones (`published: false`).
//! - `GET /api/v1/indicators/granularity` (analyst): what is published at which granularity.
//! - `GET|POST /api/v1/indicators/allowlist` (analyst): the allow-list; POST
//!   `{"add": [...], "remove": [...], "scope": "host"|"all", "note": "..."}` edits the analysts'
//!   entries (origin `analyst`), audited.
//!
//! Metrics: `kizuna_indicators{category,state}` (gauge, read from the store at scrape).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use kizuna_indicators::{AnalystInput, Policy, PolicyConfig, granularity_report, granularity_with_reason};
use kizuna_model::{Timestamp, Tlp};
use kizuna_store::indicators::{
    AllowEntry, AllowPattern, AllowScope, AllowlistOutcome, IndicatorFilter, IndicatorRecord, IndicatorState,
    IndicatorStore, UpsertOutcome,
};
use kizuna_store::{AuditRecord, Batch, HubStore, Member, Store, StoreError};

use crate::{ApiError, Hub, bearer, tokens, unauthorized};

/// An analyst allowed to add and withdraw indicators (`[[hub.analysts]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalystConfig {
    /// Name recorded in the audit log and as `analyst:<name>` source.
    pub name: String,
    /// Hex SHA-256 of the analyst's token (`kizuna sensor token` makes one).
    pub token_sha256: String,
}

/// The allow-list origin of entries analysts add.
pub const ANALYST_ORIGIN: &str = "analyst";

/// The hub's indicator state: the policy built from `[hub.indicators]`.
#[derive(Debug, Clone)]
pub struct HubIndicators {
    policy: Arc<Policy>,
    /// Notified after every change to the indicator set this hub makes (derivation after an
    /// ingest commit, analyst add/withdraw/allow-list, expiry), so an in-process consumer such
    /// as the RPZ primary republishes at once instead of at its next poll.
    changed: Arc<tokio::sync::Notify>,
}

impl HubIndicators {
    /// Builds the policy and brings the store's allow-list (origins `default`, `config`,
    /// `portal`) in line with it.
    pub fn new(config: &PolicyConfig, store: &dyn HubStore) -> Result<Self, crate::HubError> {
        let policy = Policy::from_config(config).map_err(|e| crate::HubError::Indicators(e.to_string()))?;
        let out = sync_allowlist(store, &policy, Timestamp::now())?;
        if out.newly_allowlisted + out.released + out.updated > 0 {
            tracing::info!(
                newly_allowlisted = out.newly_allowlisted,
                released = out.released,
                "allow-list changed: indicators re-evaluated"
            );
        }
        Ok(HubIndicators { policy: Arc::new(policy), changed: Arc::new(tokio::sync::Notify::new()) })
    }

    /// The notifier woken after each change to the indicator set (see the field).
    pub fn change_notifier(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }

    fn changed(&self) {
        self.changed.notify_one();
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// Replaces the store's entries of the policy's origins with the policy's. Idempotent.
pub fn sync_allowlist(
    store: &dyn IndicatorStore,
    policy: &Policy,
    now: Timestamp,
) -> Result<AllowlistOutcome, StoreError> {
    let mut total = AllowlistOutcome::default();
    for origin in Policy::ORIGINS {
        let o = store.set_allowlist(origin, &policy.allowlist_of(origin), now)?;
        total.newly_allowlisted += o.newly_allowlisted;
        total.released += o.released;
        total.updated += o.updated;
        total.entries += o.entries;
        total.removed_entries += o.removed_entries;
    }
    Ok(total)
}

/// Derives indicators from a committed batch's observations and upserts them.
pub fn derive_batch(store: &dyn IndicatorStore, policy: &Policy, batch: &Batch) -> Result<UpsertOutcome, StoreError> {
    let derived = kizuna_indicators::from_observations(batch.observations.iter().map(|r| &r.observation), policy);
    if derived.is_empty() {
        return Ok(UpsertOutcome::default());
    }
    store.upsert_indicators(&derived, Timestamp::now())
}

/// Adds and removes analysts' allow-list entries (origin [`ANALYST_ORIGIN`]); returns what the
/// change did. Removing an entry that is not there is not an error.
pub fn edit_analyst_allowlist(
    store: &dyn IndicatorStore,
    add: &[AllowEntry],
    remove: &[AllowPattern],
    now: Timestamp,
) -> Result<AllowlistOutcome, StoreError> {
    let mut entries: Vec<AllowEntry> =
        store.allowlist()?.into_iter().filter(|e| e.origin == ANALYST_ORIGIN && !remove.contains(&e.pattern)).collect();
    for a in add {
        entries.retain(|e| e.pattern != a.pattern);
        entries.push(a.clone());
    }
    store.set_allowlist(ANALYST_ORIGIN, &entries, now)
}

/// The simple audience rule for members reading indicators: TLP CLEAR, GREEN and AMBER are
/// shared with every member; AMBER+STRICT and RED only with a member named in the indicator's
/// sharing groups. Allow-listed records are never shown.
pub fn member_may_see(r: &IndicatorRecord, member: &str) -> bool {
    r.state != IndicatorState::AllowListed
        && match r.indicator.tlp {
            Tlp::Clear | Tlp::Green | Tlp::Amber => true,
            Tlp::AmberStrict | Tlp::Red => r.indicator.sharing_groups.iter().any(|g| g == member),
        }
}

/// The JSON form of a record. `full` adds what only analysts see (provenance, withdrawal,
/// allow-list details).
pub fn record_json(r: &IndicatorRecord, policy: &Policy, full: bool) -> Value {
    let i = &r.indicator;
    let (granularity, why) = granularity_with_reason(r, policy);
    let mut v = json!({
        "key": r.key_hex(),
        "kind": i.kind.as_str(),
        "value": i.value,
        "category": i.category.as_str(),
        "source": i.source,
        "confidence": i.confidence,
        "first_seen": i.first_seen.to_rfc3339(),
        "last_seen": i.last_seen.to_rfc3339(),
        "expires": i.expires.to_rfc3339(),
        "reason": i.reason,
        "malware": i.malware,
        "tlp": i.tlp.as_str(),
        "sharing_groups": i.sharing_groups,
        "legal_basis": i.legal_basis.as_str(),
        "state": r.state.as_str(),
        "granularity": granularity.as_str(),
        "granularity_reason": why,
        "created": r.created.to_rfc3339(),
        "updated": r.updated.to_rfc3339(),
        "version": r.version,
        "change_seq": r.change_seq,
    });
    if full && let Some(m) = v.as_object_mut() {
        m.insert("conflict".into(), json!(r.conflict));
        m.insert("shared_host".into(), json!(r.shared_host));
        m.insert(
            "withdrawal".into(),
            json!(r.withdrawal.as_ref().map(|w| json!({"by": w.by, "reason": w.reason, "at": w.at.to_rfc3339()}))),
        );
        m.insert(
            "provenance".into(),
            r.provenance
                .iter()
                .map(|p| {
                    json!({
                        "source": p.source, "category": p.category.as_str(), "reason": p.reason,
                        "confidence": p.confidence, "tlp": p.tlp.as_str(), "legal_basis": p.legal_basis.as_str(),
                        "first_seen": p.first_seen.to_rfc3339(), "last_seen": p.last_seen.to_rfc3339(),
                    })
                })
                .collect::<Value>(),
        );
    }
    v
}

fn tombstone(r: &IndicatorRecord) -> Value {
    json!({"key": r.key_hex(), "change_seq": r.change_seq, "published": false})
}

/// The routes of this module.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/api/v1/indicators", post(add).get(list))
        .route("/api/v1/indicators/conflicts", get(conflicts))
        .route("/api/v1/indicators/changes", get(changes))
        .route("/api/v1/indicators/granularity", get(granularity))
        .route("/api/v1/indicators/allowlist", get(allowlist_get).post(allowlist_post))
        .route("/api/v1/indicators/{key}", get(show))
        .route("/api/v1/indicators/{key}/withdraw", post(withdraw))
}

/// Who is calling.
enum Caller {
    Analyst(String),
    Member(Member),
}

fn caller(hub: &Hub, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or_else(|| unauthorized("analyst or member"))?;
    if let Some(a) = hub.config.analysts.iter().find(|a| tokens::matches_hex(token, &a.token_sha256)) {
        return Ok(Caller::Analyst(a.name.clone()));
    }
    let id = hub.store.member_for_token(&tokens::hash(token))?.ok_or_else(|| unauthorized("analyst or member"))?;
    let m = hub.store.member(id)?.ok_or_else(|| unauthorized("analyst or member"))?;
    Ok(Caller::Member(m))
}

fn analyst(hub: &Hub, headers: &HeaderMap) -> Result<String, ApiError> {
    match caller(hub, headers)? {
        Caller::Analyst(a) => Ok(a),
        Caller::Member(_) => Err(ApiError(StatusCode::FORBIDDEN, "only analysts may do this".into())),
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

async fn run<T: Send + 'static>(
    hub: &Arc<Hub>,
    f: impl FnOnce(&Hub) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let h = hub.clone();
    crate::blocking(move || f(&h)).await
}

fn audit(store: &dyn Store, actor: &str, action: &str, subject: String, detail: Value) -> Result<(), ApiError> {
    store.append_audit(&AuditRecord {
        at: Timestamp::now(),
        actor: format!("analyst:{actor}"),
        action: action.into(),
        subject,
        detail: detail.to_string(),
    })?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AddBody {
    One(AnalystInput),
    Many(Vec<AnalystInput>),
}

async fn add(State(hub): State<Arc<Hub>>, headers: HeaderMap, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let body: AddBody = serde_json::from_slice(&body).map_err(|e| bad(format!("bad indicator JSON: {e}")))?;
    let (many, inputs) = match body {
        AddBody::One(i) => (false, vec![i]),
        AddBody::Many(v) => (true, v),
    };
    let results = run(&hub, move |h| {
        let name = analyst(h, &headers)?;
        let policy = h.indicators.policy();
        let now = Timestamp::now();
        let mut built = Vec::with_capacity(inputs.len());
        for (n, input) in inputs.iter().enumerate() {
            let i = kizuna_indicators::analyst_indicator(input, &name, policy, now)
                .map_err(|e| bad(if many { format!("indicator {}: {e}", n + 1) } else { e }))?;
            built.push(i);
        }
        let mut out = Vec::with_capacity(built.len());
        for i in &built {
            let existed = h.store.indicator(i.key())?.is_some();
            h.store.upsert_indicators(std::slice::from_ref(i), now)?;
            let r = h.store.indicator(i.key())?.ok_or_else(|| bad("indicator vanished after the add"))?;
            audit(
                h.store.as_ref(),
                &name,
                "indicator.add",
                format!("indicator:{}", r.key_hex()),
                json!({"kind": i.kind.as_str(), "value": i.value, "category": i.category.as_str(),
                       "expires": i.expires.to_rfc3339(), "tlp": i.tlp.as_str(), "reason": i.reason,
                       "state": r.state.as_str(), "conflict": r.conflict}),
            )?;
            out.push(json!({"created": !existed, "record": record_json(&r, policy, true)}));
        }
        h.indicators.changed();
        Ok(out)
    })
    .await?;
    let created = results.iter().any(|r| r["created"] == json!(true));
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let body = if many { json!({"results": results}) } else { results.into_iter().next().unwrap_or(Value::Null) };
    Ok(json_response(status, &body))
}

#[derive(Deserialize)]
struct ListQuery {
    kind: Option<String>,
    category: Option<String>,
    state: Option<String>,
    source: Option<String>,
    search: Option<String>,
    limit: Option<usize>,
    after: Option<u64>,
}

impl ListQuery {
    fn filter(&self) -> Result<IndicatorFilter, ApiError> {
        Ok(IndicatorFilter {
            kind: self.kind.as_deref().map(str::parse).transpose().map_err(|e| bad(format!("kind: {e}")))?,
            category: self
                .category
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: kizuna_model::UnknownClassification| bad(format!("category: {e}")))?,
            state: self.state.as_deref().map(str::parse).transpose().map_err(|e| bad(format!("state: {e}")))?,
            source: self.source.clone(),
            search: self.search.clone(),
            limit: self.limit.unwrap_or(100).clamp(1, 10_000),
            after: self.after,
        })
    }
}

async fn list(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let body = run(&hub, move |h| {
        let mut f = q.filter()?;
        let policy = h.indicators.policy();
        let now = Timestamp::now();
        let (records, full) = match caller(h, &headers)? {
            Caller::Analyst(_) => (h.store.list_indicators(&f)?, true),
            Caller::Member(m) => {
                if f.state.is_some_and(|s| s != IndicatorState::Active) {
                    return Err(ApiError(StatusCode::FORBIDDEN, "members see active indicators only".into()));
                }
                f.state = Some(IndicatorState::Active);
                let mut rs = h.store.list_indicators(&f)?;
                rs.retain(|r| r.is_publishable(now) && member_may_see(r, &m.name));
                (rs, false)
            }
        };
        let next = records.last().map(|r| r.change_seq);
        Ok(json!({
            "indicators": records.iter().map(|r| record_json(r, policy, full)).collect::<Vec<_>>(),
            "next_after": next,
        }))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn show(State(hub): State<Arc<Hub>>, headers: HeaderMap, Path(key): Path<String>) -> Result<Response, ApiError> {
    let body = run(&hub, move |h| {
        let k = kizuna_indicators::parse_reference(&key).map_err(bad)?;
        let who = caller(h, &headers)?;
        let r = h.store.indicator(k)?;
        let not_found = || ApiError(StatusCode::NOT_FOUND, format!("no indicator {key}"));
        match (who, r) {
            (Caller::Analyst(_), Some(r)) => Ok(record_json(&r, h.indicators.policy(), true)),
            (Caller::Member(m), Some(r)) if member_may_see(&r, &m.name) => {
                Ok(record_json(&r, h.indicators.policy(), false))
            }
            _ => Err(not_found()),
        }
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawBody {
    reason: String,
}

async fn withdraw(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body = run(&hub, move |h| {
        let name = analyst(h, &headers)?;
        let b: WithdrawBody =
            serde_json::from_slice(&body).map_err(|e| bad(format!("expected {{\"reason\": ...}}: {e}")))?;
        if b.reason.trim().is_empty() {
            return Err(bad("a reason is required"));
        }
        let k = kizuna_indicators::parse_reference(&key).map_err(bad)?;
        let r = match h.store.withdraw_indicator(k, &name, b.reason.trim(), Timestamp::now()) {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Err(ApiError(StatusCode::NOT_FOUND, format!("no indicator {key}"))),
            Err(e) => return Err(e.into()),
        };
        audit(
            h.store.as_ref(),
            &name,
            "indicator.withdraw",
            format!("indicator:{}", r.key_hex()),
            json!({"kind": r.indicator.kind.as_str(), "value": r.indicator.value, "reason": b.reason.trim()}),
        )?;
        h.indicators.changed();
        Ok(record_json(&r, h.indicators.policy(), true))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn conflicts(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let body = run(&hub, move |h| {
        analyst(h, &headers)?;
        let f = IndicatorFilter { state: Some(IndicatorState::AllowListed), ..q.filter()? };
        let rs = h.store.list_indicators(&f)?;
        Ok(json!({
            "conflicts": rs.iter().map(|r| json!({
                "key": r.key_hex(), "kind": r.indicator.kind.as_str(), "value": r.indicator.value,
                "category": r.indicator.category.as_str(), "source": r.indicator.source,
                "reason": r.indicator.reason, "allowlist_entry": r.conflict, "updated": r.updated.to_rfc3339(),
                "change_seq": r.change_seq,
            })).collect::<Vec<_>>(),
            "next_after": rs.last().map(|r| r.change_seq),
        }))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Deserialize)]
struct ChangesQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

async fn changes(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<ChangesQuery>,
) -> Result<Response, ApiError> {
    let body = run(&hub, move |h| {
        let who = caller(h, &headers)?;
        let since = q.since.unwrap_or(0);
        let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
        let rs = h.store.indicator_changes_since(since, limit)?;
        let policy = h.indicators.policy();
        let now = Timestamp::now();
        let items: Vec<Value> = rs
            .iter()
            .map(|r| match &who {
                Caller::Analyst(_) => record_json(r, policy, true),
                Caller::Member(m) if member_may_see(r, &m.name) && r.is_publishable(now) => {
                    let mut v = record_json(r, policy, false);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("published".into(), json!(true));
                    }
                    v
                }
                Caller::Member(_) => tombstone(r),
            })
            .collect();
        Ok(json!({
            "since": since,
            "next": rs.last().map(|r| r.change_seq).unwrap_or(since),
            "more": rs.len() >= limit,
            "changes": items,
        }))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn granularity(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let body = run(&hub, move |h| {
        analyst(h, &headers)?;
        let now = Timestamp::now();
        let rs = h.store.active_indicators(now)?;
        let rep = granularity_report(&rs, h.indicators.policy(), now);
        Ok(json!({
            "counts": rep.counts.iter().map(|((k, g), n)| json!({"kind": k.as_str(), "granularity": g.as_str(), "count": n})).collect::<Vec<_>>(),
            "dns_targets": rep.dns_targets,
            "url_only": rep.url_only.iter().map(|e| json!({"value": e.value, "why": e.why})).collect::<Vec<_>>(),
            "text": rep.render(),
        }))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

fn entry_json(e: &AllowEntry) -> Value {
    json!({"pattern": e.pattern.to_string(), "scope": e.scope.as_str(), "origin": e.origin, "note": e.note})
}

async fn allowlist_get(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let body = run(&hub, move |h| {
        analyst(h, &headers)?;
        Ok(json!({"entries": h.store.allowlist()?.iter().map(entry_json).collect::<Vec<_>>()}))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

async fn allowlist_post(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body = run(&hub, move |h| {
        let name = analyst(h, &headers)?;
        let b: AllowlistBody = serde_json::from_slice(&body).map_err(|e| bad(format!("bad allow-list JSON: {e}")))?;
        let scope = match b.scope.as_deref() {
            None | Some("host") => AllowScope::Host,
            Some("all") => AllowScope::All,
            Some(s) => return Err(bad(format!("scope {s:?}: use host or all"))),
        };
        let note = b.note.clone().unwrap_or_else(|| format!("added by {name}"));
        let add = b
            .add
            .iter()
            .map(|s| {
                AllowPattern::parse(s).map(|pattern| AllowEntry {
                    pattern,
                    scope,
                    origin: ANALYST_ORIGIN.into(),
                    note: note.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let remove = b.remove.iter().map(|s| AllowPattern::parse(s)).collect::<Result<Vec<_>, _>>().map_err(bad)?;
        let out = edit_analyst_allowlist(h.store.as_ref(), &add, &remove, Timestamp::now())?;
        h.indicators.changed();
        audit(
            h.store.as_ref(),
            &name,
            "indicator.allowlist",
            "allowlist:analyst".into(),
            json!({"add": b.add, "remove": b.remove, "scope": scope.as_str(), "newly_allowlisted": out.newly_allowlisted,
                   "released": out.released}),
        )?;
        Ok(json!({"entries": out.entries, "newly_allowlisted": out.newly_allowlisted, "released": out.released}))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// The post-commit step for the ingest route: derive and upsert.
pub(crate) fn ingest_step(hub: &Hub) -> impl Fn(&Batch) -> Result<(), String> + Sync + '_ {
    move |batch: &Batch| {
        let out = derive_batch(hub.store.as_ref(), hub.indicators.policy(), batch)
            .map_err(|e| format!("deriving indicators: {e}"))?;
        if out != UpsertOutcome::default() {
            hub.indicators.changed();
        }
        Ok(())
    }
}

/// Marks indicators past their expiry, every `every`, until aborted.
pub(crate) fn spawn_expiry(hub: Arc<Hub>, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let h = hub.clone();
            match tokio::task::spawn_blocking(move || h.store.expire_indicators(Timestamp::now())).await {
                Ok(Ok(n)) if n > 0 => {
                    tracing::info!("indicators: {n} expired");
                    hub.indicators.changed();
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("expiring indicators: {e}"),
                Err(e) => tracing::warn!("indicator expiry task: {e}"),
            }
        }
    })
}

/// Sets the `kizuna_indicators{category,state}` gauges from the store.
pub(crate) async fn refresh_metrics(hub: &Arc<Hub>) {
    let h = hub.clone();
    if let Ok(Ok(counts)) = tokio::task::spawn_blocking(move || h.store.indicator_counts()).await {
        let fam = &hub.metrics.indicators;
        fam.clear();
        for c in counts {
            fam.get_or_create(&crate::metrics::IndicatorLabel {
                category: c.category.as_str().to_owned(),
                state: c.state.as_str().to_owned(),
            })
            .set(i64::try_from(c.count).unwrap_or(i64::MAX));
        }
    }
}
