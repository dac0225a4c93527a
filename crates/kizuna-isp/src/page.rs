//! The countermeasure page (axum): `GET /c/{token}` shows the steps and cleaning tools in the
//! subscriber's language; `POST /c/{token}/report` records "I have cleaned my device". Tokens are
//! 256-bit random values, stored only as SHA-256 hashes, and expire. Also `/healthz` and
//! `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::agent::Agent;
use crate::metrics::Metrics;
use crate::notice::PageContext;
use crate::store::TokenRecord;

/// The router of the page server: the countermeasure page, the agent console (with
/// `[[console_users]]`), and for any foreign Host the blocked-site warning page
/// ([`crate::warning`]).
pub fn router(agent: Arc<Agent>) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/c/{token}", get(show))
        .route("/c/{token}/report", post(report))
        .with_state(agent.clone());
    match crate::console::routes(&agent) {
        Ok(Some(console)) => r = r.merge(console),
        Ok(None) => {}
        Err(e) => tracing::error!("agent console not mounted: {e}"),
    }
    r.layer(axum::middleware::from_fn_with_state(agent, crate::warning::dispatch))
}

/// Serves the page until `shutdown` resolves (with the peer address, which the warning
/// page's opt-out resolves to a subscriber).
pub async fn serve(
    agent: Arc<Agent>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(agent).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn plain_error(status: StatusCode) -> Response {
    let msg = match status {
        StatusCode::GONE => {
            "このリンクは有効期限が切れています。お手数ですがサポート窓口にお問い合わせください。\n\
             This link has expired. Please contact our support desk."
        }
        StatusCode::NOT_FOUND => "このページは存在しません。\nThis page does not exist.",
        _ => "ただいま表示できません。\nThis page cannot be shown right now.",
    };
    html(status, format!("<!DOCTYPE html><meta charset=\"utf-8\"><pre>{msg}</pre>"))
}

enum Looked {
    Ok(Box<TokenRecord>),
    Err(Response),
}

async fn lookup(agent: &Arc<Agent>, token: &str) -> Looked {
    let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        Metrics::inc(&agent.metrics.page, "unknown", 1);
        return Looked::Err(plain_error(StatusCode::NOT_FOUND));
    }
    let a = agent.clone();
    let hash = crate::token_hash(&token.to_ascii_lowercase());
    let rec = tokio::task::spawn_blocking(move || a.store.token(&hash)).await;
    match rec {
        Ok(Ok(Some(t))) => {
            if t.expires <= agent.clock.now() {
                Metrics::inc(&agent.metrics.page, "expired", 1);
                Looked::Err(plain_error(StatusCode::GONE))
            } else {
                Looked::Ok(Box::new(t))
            }
        }
        Ok(Ok(None)) => {
            Metrics::inc(&agent.metrics.page, "unknown", 1);
            Looked::Err(plain_error(StatusCode::NOT_FOUND))
        }
        Ok(Err(e)) => {
            tracing::error!("page token lookup: {e}");
            Looked::Err(plain_error(StatusCode::SERVICE_UNAVAILABLE))
        }
        Err(e) => {
            tracing::error!("page worker: {e}");
            Looked::Err(plain_error(StatusCode::SERVICE_UNAVAILABLE))
        }
    }
}

fn render(agent: &Agent, t: &TokenRecord, token: &str, reported: bool) -> crate::Result<String> {
    let case = agent.store.case(t.case_id)?.ok_or_else(|| crate::Error::NotFound(format!("case {}", t.case_id)))?;
    let explanation = agent.templates.explanation(&t.language, &case.threat.ctype, &case.threat.family)?;
    let tools = agent
        .config
        .cleaning_tools
        .iter()
        .filter(|x| x.language.as_deref().map(|l| l.eq_ignore_ascii_case(&t.language)).unwrap_or(true))
        .cloned()
        .collect();
    let off = agent.config.notices.utc_offset_minutes;
    let last_seen = chrono::FixedOffset::east_opt(off.saturating_mul(60))
        .map(|tz| case.last_seen.to_datetime().with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| case.last_seen.to_rfc3339());
    agent.templates.render_page(&PageContext {
        language: t.language.clone(),
        isp_name: agent.config.page.isp_name.clone(),
        support_contact: agent.config.page.support_contact.clone(),
        threat_type: case.threat.ctype.clone(),
        threat_family: case.threat.family.clone(),
        explanation,
        tools,
        report_action: format!("/c/{token}/report"),
        reported,
        last_seen,
    })
}

async fn show(State(agent): State<Arc<Agent>>, Path(token): Path<String>) -> Response {
    let t = match lookup(&agent, &token).await {
        Looked::Ok(t) => t,
        Looked::Err(r) => return r,
    };
    let a = agent.clone();
    let out = tokio::task::spawn_blocking(move || -> crate::Result<String> {
        let case = a.store.case(t.case_id)?.ok_or_else(|| crate::Error::NotFound(format!("case {}", t.case_id)))?;
        a.store.record_visit(&crate::token_hash(&token.to_ascii_lowercase()), &case.threat.key(), a.clock.now())?;
        render(&a, &t, &token, false)
    })
    .await;
    match out {
        Ok(Ok(body)) => {
            Metrics::inc(&agent.metrics.page, "page", 1);
            html(StatusCode::OK, body)
        }
        Ok(Err(e)) => {
            tracing::error!("rendering the countermeasure page: {e}");
            plain_error(StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(_) => plain_error(StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The form of the page.
#[derive(Debug, Deserialize)]
pub struct ReportForm {
    /// Free text from the subscriber (optional).
    #[serde(default)]
    pub note: String,
}

async fn report(State(agent): State<Arc<Agent>>, Path(token): Path<String>, Form(form): Form<ReportForm>) -> Response {
    let t = match lookup(&agent, &token).await {
        Looked::Ok(t) => t,
        Looked::Err(r) => return r,
    };
    let note: String = form.note.chars().filter(|c| !c.is_control() || *c == '\n').take(2000).collect();
    let a = agent.clone();
    let out = tokio::task::spawn_blocking(move || -> crate::Result<String> {
        let case = a.store.case(t.case_id)?.ok_or_else(|| crate::Error::NotFound(format!("case {}", t.case_id)))?;
        a.store.record_self_report(&t, &case.threat.key(), &note, a.clock.now())?;
        render(&a, &t, &token, true)
    })
    .await;
    match out {
        Ok(Ok(body)) => {
            Metrics::inc(&agent.metrics.page, "self-report", 1);
            html(StatusCode::OK, body)
        }
        Ok(Err(e)) => {
            tracing::error!("recording a self-report: {e}");
            plain_error(StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(_) => plain_error(StatusCode::SERVICE_UNAVAILABLE),
    }
}

async fn healthz(State(agent): State<Arc<Agent>>) -> Response {
    let a = agent.clone();
    match tokio::task::spawn_blocking(move || a.store.cursor()).await {
        Ok(Ok(cursor)) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "status": "ok", "hub_cursor": cursor }).to_string(),
        )
            .into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response(),
    }
}

async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], agent.metrics.encode()).into_response()
}
