//! Talking to the hub: pull the member's observations page by page, push daily counts.
//!
//! - `GET /api/v1/observations?cursor=&limit=` with `Authorization: Bearer <member token>`:
//!   `{"member","cursor","next_cursor","more","observations":[{"id","seq","event"}]}`.
//! - `POST /api/v1/stats` with the same token: see [`StatsPayload`]. The member is the token's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::HubSection;
use crate::{Error, Result};

/// One observation of a page.
#[derive(Debug, Clone)]
pub struct PulledObservation {
    /// The hub's content id.
    pub id: String,
    /// The hub's sequence number.
    pub seq: u64,
    /// The IntelMQ event JSON.
    pub event: Vec<u8>,
}

/// A page from the hub.
#[derive(Debug, Clone)]
pub struct PulledPage {
    /// The cursor to ask for the next page with.
    pub next_cursor: String,
    /// Whether more is waiting.
    pub more: bool,
    /// The observations.
    pub observations: Vec<PulledObservation>,
}

/// Counts of one threat on one day. Only counts and the hub's own vocabulary: never an identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreatDay {
    /// `classification.type/family` as the hub named it.
    pub threat: String,
    /// Observations pulled.
    pub observed: u64,
    /// Resolved to a subscriber.
    pub resolved: u64,
    /// Distinct subscribers with a resolved observation.
    pub infected: u64,
    /// Unresolved, by reason (`no-session`, `ambiguous`, …).
    pub unresolved: std::collections::BTreeMap<String, u64>,
    /// First notices issued.
    pub notified: u64,
    /// Cases remediated.
    pub remediated: u64,
    /// Cases escalated.
    pub escalated: u64,
    /// Time to remediation of the cases remediated this day: whole days from the case's first
    /// notice to its remediation → number of cases. Counts only: no case id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub remediation_days: std::collections::BTreeMap<u32, u64>,
}

/// One day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The subscriber base size.
    pub subscribers: u64,
    /// Per threat.
    pub threats: Vec<ThreatDay>,
}

/// The body of `POST /api/v1/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsPayload {
    /// Days; re-posting a day replaces what the hub had for that day and threat.
    pub days: Vec<StatsDay>,
}

/// An HTTP client for the hub.
#[derive(Debug, Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: String,
    token: String,
    limit: usize,
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(p) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(p)
            .map_err(|e| Error::Config(format!("hub.ca_file {}: {e}", p.display())))?;
        for c in certs {
            let c = c.map_err(|e| Error::Config(format!("hub.ca_file {}: {e}", p.display())))?;
            roots.add(c).map_err(|e| Error::Config(format!("hub.ca_file {}: {e}", p.display())))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl HubClient {
    /// A client for the `[hub]` section.
    pub fn new(cfg: &HubSection) -> Result<HubClient> {
        let tls = tls_config(cfg.ca_file.as_deref())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("kizuna-isp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("hub client: {e}")))?;
        Ok(HubClient {
            http,
            base: cfg.url.trim_end_matches('/').to_owned(),
            token: cfg.token()?,
            limit: cfg.page_limit.clamp(1, 10_000),
        })
    }

    /// `GET url` with the member token: the body of a 2xx answer, else the status and the hub's
    /// message as the error.
    async fn get_ok(&self, url: &str) -> Result<Vec<u8>> {
        let resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| Error::Hub(format!("GET {url}: {e}")))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| Error::Hub(format!("GET {url}: {e}")))?;
        if !status.is_success() {
            return Err(Error::Hub(format!("GET {url}: {status}: {}", String::from_utf8_lossy(&body).trim())));
        }
        Ok(body.to_vec())
    }

    /// Fetches the page after `cursor`.
    pub async fn page(&self, cursor: &str) -> Result<PulledPage> {
        if !cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(Error::Hub(format!("stored cursor {cursor:?} is not a hub cursor")));
        }
        let url = format!("{}/api/v1/observations?cursor={cursor}&limit={}", self.base, self.limit);
        let body = self.get_ok(&url).await?;
        #[derive(Deserialize)]
        struct Page {
            next_cursor: String,
            more: bool,
            observations: Vec<Item>,
        }
        #[derive(Deserialize)]
        struct Item {
            id: String,
            seq: u64,
            event: serde_json::Value,
        }
        let p: Page = serde_json::from_slice(&body).map_err(|e| Error::Hub(format!("GET {url}: bad page: {e}")))?;
        let mut observations = Vec::with_capacity(p.observations.len());
        for it in p.observations {
            let event = serde_json::to_vec(&it.event).map_err(|e| Error::Hub(format!("event {}: {e}", it.id)))?;
            observations.push(PulledObservation { id: it.id, seq: it.seq, event });
        }
        Ok(PulledPage { next_cursor: p.next_cursor, more: p.more, observations })
    }

    /// `GET /api/v1/indicators/changes?since=N`: the member's indicators changed after change
    /// sequence `since` (published ones in full, the rest as tombstones). Only the sequence
    /// number goes out: nothing about subscribers or what they visited.
    pub async fn indicator_changes(&self, since: u64) -> Result<serde_json::Value> {
        let url = format!("{}/api/v1/indicators/changes?since={since}&limit=1000", self.base);
        let body = self.get_ok(&url).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Hub(format!("GET {url}: bad answer: {e}")))
    }

    /// Posts daily counts.
    pub async fn post_stats(&self, payload: &StatsPayload) -> Result<serde_json::Value> {
        let url = format!("{}/api/v1/stats", self.base);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(payload)
            .send()
            .await
            .map_err(|e| Error::Hub(format!("POST {url}: {e}")))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| Error::Hub(format!("POST {url}: {e}")))?;
        if !status.is_success() {
            return Err(Error::Hub(format!("POST {url}: {status}: {}", body.trim())));
        }
        serde_json::from_str(&body).map_err(|e| Error::Hub(format!("POST {url}: bad answer: {e}")))
    }
}
