//! Findings to the hub: one observation per malicious node of a chain, IntelMQ JSON lines.
//!
//! Classification follows IntelMQ's mappings: a compromised entry site as in IntelMQ's
//! Shadowserver `compromised_website` mapping (`intrusions` / `system-compromise`, identifier
//! `compromised-website`); distribution sites `malicious-code` / `malware-distribution`;
//! exploit pages `intrusion-attempts` / `exploit`; redirectors are part of the distribution
//! chain: `malicious-code` / `malware-distribution` with identifier `drive-by-redirector`.
//! The raw crawl log (every clean hop, bodies, headers) never leaves the crawler.

use kizuna_model::{Classification, ClassificationType, LegalBasis, Observation, Tlp};

use url::Url;

use crate::CrawlError;
use crate::config::Report;
use crate::crawler::{Chain, Verdict};

/// Labels applied to every observation.
#[derive(Debug, Clone)]
pub struct Labels {
    /// `feed.name`.
    pub feed_name: String,
    /// `feed.provider`.
    pub provider: Option<String>,
    /// TLP.
    pub tlp: Tlp,
    /// Legal basis.
    pub legal_basis: LegalBasis,
}

impl Labels {
    /// From the `[report]` section.
    pub fn from_config(r: &Report) -> Result<Labels, CrawlError> {
        Ok(Labels {
            feed_name: r.feed_name.clone(),
            provider: r.provider.clone(),
            tlp: r.tlp.parse().map_err(|e| CrawlError::Config(format!("report.tlp: {e}")))?,
            legal_basis: r.legal_basis.parse().map_err(|e| CrawlError::Config(format!("report.legal_basis: {e}")))?,
        })
    }
}

/// The classification of a verdict (None for clean and error).
pub fn classification(v: Verdict) -> Option<Classification> {
    Some(match v {
        Verdict::Entry => Classification::with_identifier(ClassificationType::SystemCompromise, "compromised-website"),
        Verdict::Redirector => {
            Classification::with_identifier(ClassificationType::MalwareDistribution, "drive-by-redirector")
        }
        Verdict::Exploit => Classification::with_identifier(ClassificationType::Exploit, "drive-by-exploit"),
        Verdict::Distribution => {
            Classification::with_identifier(ClassificationType::MalwareDistribution, "drive-by-download")
        }
        Verdict::Clean | Verdict::Error => return None,
    })
}

/// The observations for one chain: one per entry, redirector, exploit and distribution node.
pub fn observations(chain: &Chain, labels: &Labels) -> Vec<Observation> {
    let mut out = Vec::new();
    for n in &chain.nodes {
        let Some(mut class) = classification(n.verdict) else { continue };
        if let Some(f) = &n.family
            && n.verdict == Verdict::Distribution
        {
            class.identifier = Some(f.clone());
        }
        let mut o = Observation::new(labels.feed_name.clone(), class, n.fetched_at);
        o.time_source = Some(n.fetched_at);
        o.source.url = kizuna_model::canonical_url(&n.url).or_else(|| Some(n.url.clone()));
        o.source.fqdn = (!n.host.is_empty() && n.host.parse::<std::net::IpAddr>().is_err()).then(|| n.host.clone());
        o.source.ip = n.ip;
        o.protocol.transport = Some("tcp".into());
        o.protocol.application = Some(if n.url.starts_with("https:") { "https" } else { "http" }.into());
        o.feed.provider.clone_from(&labels.provider);
        o.tlp = labels.tlp;
        o.legal_basis = labels.legal_basis;
        o.malware.name.clone_from(&n.family);
        if n.download {
            o.malware.md5.clone_from(&n.md5);
            o.malware.sha1.clone_from(&n.sha1);
            o.malware.sha256.clone_from(&n.sha256);
        }
        let reason = chain.edges.iter().find(|e| e.to == n.id).map(|e| e.reason.clone());
        let led_to: Vec<String> = chain
            .edges
            .iter()
            .filter(|e| e.from == n.id && chain.nodes[e.to].verdict.malicious())
            .map(|e| chain.nodes[e.to].url.clone())
            .collect();
        o.event_description = Some(format!("drive-by chain {}: {} at depth {}", chain.id, n.verdict.as_str(), n.depth));
        let x = &mut o.extra;
        x.insert("crawl.chain_id".into(), chain.id.clone().into());
        x.insert("crawl.role".into(), n.verdict.as_str().into());
        x.insert("crawl.depth".into(), n.depth.into());
        x.insert("crawl.reason".into(), reason.unwrap_or_else(|| "seed".into()).into());
        x.insert("crawl.seed".into(), chain.seed.clone().into());
        x.insert("crawl.profile".into(), chain.profile.clone().into());
        x.insert("crawl.evidence".into(), n.evidence.clone().into());
        if !led_to.is_empty() {
            x.insert("crawl.leads_to".into(), led_to.into());
        }
        if let Some(s) = n.status {
            x.insert("crawl.http_status".into(), s.into());
        }
        if let Some(ct) = &n.content_type {
            x.insert("crawl.content_type".into(), ct.clone().into());
        }
        if !n.download
            && let Some(h) = &n.sha256
        {
            x.insert("crawl.page_sha256".into(), h.clone().into());
        }
        out.push(o);
    }
    out
}

/// IntelMQ JSON lines for observations.
pub fn to_json_lines(obs: &[Observation]) -> Vec<u8> {
    let mut out = Vec::with_capacity(obs.len() * 1024);
    for o in obs {
        kizuna_parsers::intelmq::write_json(o, &mut out);
        out.push(b'\n');
    }
    out
}

/// Sends IntelMQ JSON lines to the hub's ingest route with a sensor token; returns the hub's
/// JSON summary.
pub async fn send_to_hub(
    client: &reqwest::Client,
    hub: &str,
    token: &str,
    name: &str,
    lines: Vec<u8>,
) -> Result<serde_json::Value, CrawlError> {
    let mut url = Url::parse(&format!("{}/api/v1/ingest", hub.trim_end_matches('/')))
        .map_err(|e| CrawlError::Hub(format!("hub URL {hub:?}: {e}")))?;
    url.query_pairs_mut().append_pair("format", "intelmq").append_pair("name", name);
    let resp = client
        .post(url.clone())
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .map_err(|e| CrawlError::Hub(format!("POST {url}: {e}")))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| CrawlError::Hub(format!("POST {url}: {e}")))?;
    if !status.is_success() {
        return Err(CrawlError::Hub(format!("POST {url}: {status}: {}", body.trim())));
    }
    serde_json::from_str(&body).map_err(|e| CrawlError::Hub(format!("POST {url}: bad JSON answer: {e}")))
}

/// A plain HTTP client for talking to the hub (ring-backed rustls, web PKI roots plus the
/// configured extra roots).
pub fn hub_client(config: &crate::config::CrawlConfig) -> Result<reqwest::Client, CrawlError> {
    let tls = crate::fetch::tls_config(config)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| CrawlError::Config(format!("hub client: {e}")))
}

/// Reads the hub's active indicators (`GET /api/v1/indicators`, paged by `after`) and adds URL,
/// domain and hash indicators to the judge. Returns how many were added.
pub async fn load_hub_indicators(
    client: &reqwest::Client,
    hub: &str,
    token: &str,
    judge: &mut crate::Judge,
) -> Result<usize, CrawlError> {
    let mut after: Option<u64> = None;
    let mut added = 0;
    loop {
        let mut url = Url::parse(&format!("{}/api/v1/indicators", hub.trim_end_matches('/')))
            .map_err(|e| CrawlError::Hub(format!("hub URL {hub:?}: {e}")))?;
        url.query_pairs_mut().append_pair("state", "active").append_pair("limit", "10000");
        if let Some(a) = after {
            url.query_pairs_mut().append_pair("after", &a.to_string());
        }
        let resp = client
            .get(url.clone())
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| CrawlError::Hub(format!("GET {url}: {e}")))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| CrawlError::Hub(format!("GET {url}: {e}")))?;
        if !status.is_success() {
            return Err(CrawlError::Hub(format!("GET {url}: {status}: {}", body.trim())));
        }
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| CrawlError::Hub(format!("GET {url}: bad JSON: {e}")))?;
        let list = v.get("indicators").and_then(|l| l.as_array()).cloned().unwrap_or_default();
        if list.is_empty() {
            return Ok(added);
        }
        for i in &list {
            if let (Some(k), Some(val)) =
                (i.get("kind").and_then(|k| k.as_str()), i.get("value").and_then(|k| k.as_str()))
                && matches!(k, "url" | "domain" | "sha256" | "sha1" | "md5")
            {
                judge.add_indicator(k, val);
                added += 1;
            }
        }
        match v.get("next_after").and_then(|n| n.as_u64()) {
            Some(n) if Some(n) != after => after = Some(n),
            _ => return Ok(added),
        }
    }
}
