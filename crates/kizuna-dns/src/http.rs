//! HTTP endpoint of the primary: `/healthz`, `/metrics` (Prometheus text),
//! `GET /api/v1/dns/zones` (zones with serial, size, IXFR history, secondaries) and
//! `GET /api/v1/dns/provenance?zone=Z&name=N` (which indicators produced a trigger).
//! Meant for the operator's loopback or management network: it names indicator keys.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::server::Primary;

/// One zone in `/api/v1/dns/zones`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ZoneInfo {
    /// Zone name.
    pub zone: String,
    /// Member.
    pub member: String,
    /// Current serial.
    pub serial: u32,
    /// Records (without SOA).
    pub records: usize,
    /// Trigger owner names.
    pub triggers: usize,
    /// Serials an IXFR can start from.
    pub ixfr_from: Vec<u32>,
    /// Secondaries notified.
    pub notify: Vec<String>,
}

/// `/api/v1/dns/provenance` answer.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProvenanceInfo {
    /// Zone.
    pub zone: String,
    /// Trigger owner (relative).
    pub trigger: String,
    /// Indicator keys (hex).
    pub indicators: Vec<String>,
}

#[derive(Deserialize)]
struct ProvQuery {
    zone: String,
    name: String,
}

/// The router.
pub fn router(primary: Primary) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/v1/dns/zones", get(zones))
        .route("/api/v1/dns/provenance", get(provenance))
        .with_state(primary)
}

async fn metrics(State(p): State<Primary>) -> Response {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &p.metrics().registry()) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Zone summaries (also used by the CLI).
pub fn zone_infos(p: &Primary) -> Vec<ZoneInfo> {
    p.zones()
        .iter()
        .map(|z| {
            let s = z.zone.current();
            ZoneInfo {
                zone: z.label.clone(),
                member: z.access.member.clone(),
                serial: s.serial,
                records: s.records.len(),
                triggers: z.index.lock().map(|i| i.by_owner.len()).unwrap_or(0),
                ixfr_from: z.zone.history_serials(),
                notify: z.access.notify.iter().chain(&z.access.notify_unsigned).map(|a| a.to_string()).collect(),
            }
        })
        .collect()
}

async fn zones(State(p): State<Primary>) -> Json<Vec<ZoneInfo>> {
    Json(zone_infos(&p))
}

async fn provenance(State(p): State<Primary>, Query(q): Query<ProvQuery>) -> Response {
    let Some(z) = p.zone(&q.zone) else {
        return (StatusCode::NOT_FOUND, format!("no zone {}\n", q.zone)).into_response();
    };
    let origin = z.zone.origin().to_ascii();
    let name = q.name.trim_end_matches('.').to_ascii_lowercase();
    let rel =
        name.strip_suffix(origin.trim_end_matches('.')).map(|r| r.trim_end_matches('.').to_owned()).unwrap_or(name);
    let found = z.index.lock().ok().and_then(|i| i.by_owner.get(&rel).cloned());
    match found {
        Some(keys) => Json(ProvenanceInfo {
            zone: z.label.clone(),
            trigger: rel,
            indicators: keys.iter().map(hex::encode).collect(),
        })
        .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no trigger {rel} in {}\n", z.label)).into_response(),
    }
}
