//! Member statistics over HTTP: ISP agents post their daily counts; a member reads its own.
//!
//! - `POST /api/v1/stats` (member token): `{"days":[{"day":"2026-03-05","subscribers":1000,
//!   "threats":[{"threat":"infected-system/mirai","observed":3,"resolved":2,"infected":1,
//!   "unresolved":{"no-session":1},"notified":1,"remediated":1,"escalated":0,
//!   "remediation_days":{"9":1}}]}]}`. Re-posting a day replaces its counts. Unknown fields are
//!   refused (the payload has no place for anything but counts), as are threat keys and reasons
//!   outside `[a-z0-9._/-]`. `remediation_days` is time to remediation as a histogram: whole days
//!   from first notice to remediation → cases remediated that day (keys 0–3650, counts > 0, at
//!   most `remediated` cases in all); anything else is a 400 saying which value is wrong.
//! - `GET /api/v1/stats?from=YYYY-MM-DD&to=YYYY-MM-DD` (member token): the member's own days,
//!   with the infection rate per 1,000 subscribers per day and totals per threat with the
//!   remediation rate (remediated / notified) over the range, and the time to remediation over
//!   the range: the merged histogram with its median and 90th percentile in days (nearest rank).
//!
//! The member always comes from the token.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};

use kizuna_model::Timestamp;
use kizuna_store::AuditRecord;
use kizuna_store::stats::{DayStats, Days, NaiveDate, RemediationDays, ThreatCounts};

use crate::{ApiError, Hub, authenticate_member, blocking};

/// The routes of this module.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new().route("/api/v1/stats", post(post_stats).get(get_stats))
}

/// One threat's counts on the wire.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireThreat {
    /// `classification.type/family`.
    pub threat: String,
    /// Observations pulled.
    #[serde(default)]
    pub observed: u64,
    /// Resolved to a subscriber.
    #[serde(default)]
    pub resolved: u64,
    /// Distinct subscribers seen.
    #[serde(default)]
    pub infected: u64,
    /// Unresolved by reason.
    #[serde(default)]
    pub unresolved: BTreeMap<String, u64>,
    /// First notices.
    #[serde(default)]
    pub notified: u64,
    /// Remediated.
    #[serde(default)]
    pub remediated: u64,
    /// Escalated.
    #[serde(default)]
    pub escalated: u64,
    /// Time to remediation: days from first notice → cases remediated.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remediation_days: BTreeMap<u32, u64>,
}

/// One day on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Subscriber base size.
    pub subscribers: u64,
    /// Per threat.
    #[serde(default)]
    pub threats: Vec<WireThreat>,
}

/// The body of `POST /api/v1/stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WirePost {
    /// Days.
    pub days: Vec<WireDay>,
}

/// Largest number of days per post.
pub const MAX_DAYS: usize = 400;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn parse_day(s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad(format!("day {s:?}: use YYYY-MM-DD")))
}

async fn post_stats(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let post: WirePost = serde_json::from_slice(&body).map_err(|e| bad(format!("stats body: {e}")))?;
    if post.days.len() > MAX_DAYS {
        return Err(bad(format!("at most {MAX_DAYS} days per post")));
    }
    let mut days = Vec::with_capacity(post.days.len());
    let mut remediation = Vec::new();
    for d in post.days {
        let day = parse_day(&d.day)?;
        let mut threats: Vec<ThreatCounts> = d
            .threats
            .into_iter()
            .map(|t| {
                if !t.remediation_days.is_empty() {
                    remediation.push(RemediationDays { day, threat: t.threat.clone(), days: t.remediation_days });
                }
                ThreatCounts {
                    threat: t.threat,
                    observed: t.observed,
                    resolved: t.resolved,
                    infected: t.infected,
                    unresolved: t.unresolved,
                    notified: t.notified,
                    remediated: t.remediated,
                    escalated: t.escalated,
                }
            })
            .collect();
        threats.sort_by(|a, b| a.threat.cmp(&b.threat));
        days.push(DayStats { day, subscribers: d.subscribers, threats });
    }
    kizuna_store::stats::validate(&days).map_err(|e| bad(e.to_string()))?;
    kizuna_store::stats::validate_remediation(&days, &remediation).map_err(|e| bad(e.to_string()))?;
    let h = hub.clone();
    let out = blocking(move || {
        let member = authenticate_member(&h, &headers)?;
        let now = Timestamp::now();
        let out = h.store().put_stats_with_remediation(member.id, &days, &remediation, now).map_err(|e| match e {
            kizuna_store::StoreError::Conflict(m) => bad(m),
            other => ApiError::from(other),
        })?;
        h.store().append_audit(&AuditRecord {
            at: now,
            actor: format!("member:{}", member.name),
            action: "stats.post".into(),
            subject: format!("member:{}", member.id),
            detail: serde_json::json!({
                "days": out.days,
                "threats": out.threats,
                "first": days.first().map(|d| d.day.to_string()),
                "last": days.last().map(|d| d.day.to_string()),
            })
            .to_string(),
        })?;
        Ok(out)
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "stored_days": out.days, "stored_threats": out.threats })).into_response())
}

#[derive(Deserialize)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

fn rate(n: u64, d: u64, per: f64) -> Option<f64> {
    (d > 0).then(|| (n as f64) * per / (d as f64))
}

async fn get_stats(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let today = Timestamp::now().to_datetime().date_naive();
    let to = match &q.to {
        Some(s) => parse_day(s)?,
        None => today,
    };
    let from = match &q.from {
        Some(s) => parse_day(s)?,
        None => to - Days::new(29),
    };
    if from > to {
        return Err(bad("from is after to"));
    }
    let h = hub.clone();
    let (member, days, ttr) = blocking(move || {
        let member = authenticate_member(&h, &headers)?;
        let days = h.store().member_stats(member.id, from, to)?;
        let ttr = h.store().member_remediation_days(member.id, from, to)?;
        Ok((member, days, ttr))
    })
    .await?;
    let ttr_of = |day: NaiveDate, threat: &str| {
        ttr.iter().find(|r| r.day == day && r.threat == threat).map(|r| r.days.clone()).unwrap_or_default()
    };
    let mut totals: BTreeMap<String, WireThreat> = BTreeMap::new();
    let mut out_days = Vec::with_capacity(days.len());
    for d in &days {
        let infected: u64 = d.threats.iter().map(|t| t.infected).sum();
        let mut threats = Vec::with_capacity(d.threats.len());
        for t in &d.threats {
            let e = totals
                .entry(t.threat.clone())
                .or_insert_with(|| WireThreat { threat: t.threat.clone(), ..Default::default() });
            e.observed += t.observed;
            e.resolved += t.resolved;
            e.infected += t.infected;
            e.notified += t.notified;
            e.remediated += t.remediated;
            e.escalated += t.escalated;
            for (r, n) in &t.unresolved {
                *e.unresolved.entry(r.clone()).or_default() += n;
            }
            let hist = ttr_of(d.day, &t.threat);
            kizuna_store::stats::merge_days(&mut e.remediation_days, &hist);
            threats.push(serde_json::json!({
                "threat": t.threat,
                "observed": t.observed,
                "resolved": t.resolved,
                "infected": t.infected,
                "unresolved": t.unresolved,
                "notified": t.notified,
                "remediated": t.remediated,
                "escalated": t.escalated,
                "remediation_days": hist,
                "infected_per_1000": rate(t.infected, d.subscribers, 1000.0),
            }));
        }
        out_days.push(serde_json::json!({
            "day": d.day.to_string(),
            "subscribers": d.subscribers,
            "infected": infected,
            "infected_per_1000": rate(infected, d.subscribers, 1000.0),
            "threats": threats,
        }));
    }
    let totals: Vec<serde_json::Value> = totals
        .into_values()
        .map(|t| {
            let remediation_rate = rate(t.remediated, t.notified, 1.0);
            let median = kizuna_store::stats::quantile_days(&t.remediation_days, 0.5);
            let p90 = kizuna_store::stats::quantile_days(&t.remediation_days, 0.9);
            let mut v = serde_json::to_value(&t).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("remediation_rate".into(), serde_json::json!(remediation_rate));
                o.insert("remediation_days_median".into(), serde_json::json!(median));
                o.insert("remediation_days_p90".into(), serde_json::json!(p90));
            }
            v
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        "member": member.name,
        "from": from.to_string(),
        "to": to.to_string(),
        "days": out_days,
        "totals": totals,
    }))
    .into_response())
}
