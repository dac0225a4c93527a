//! Fetching safely: one HTTP client (rustls, HTTP/1.1 and HTTP/2, decompression) playing a
//! browser, redirects left to the crawler, bodies read up to a cap, per-host politeness.
//!
//! Nothing fetched is ever executed or written executable: bodies stay in memory, are hashed and
//! scanned, and are optionally copied to a quarantine file with mode 0600.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderValue};
use rustls_pki_types::pem::PemObject as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::CrawlError;
use crate::config::CrawlConfig;

/// Why a fetch produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// Connect, read or total timeout.
    Timeout,
    /// TLS handshake or certificate failure.
    Tls(String),
    /// Connection refused, reset, name not resolved.
    Connect(String),
    /// Anything else (protocol error, bad URL).
    Other(String),
}

impl FetchFailure {
    /// A short label for metrics: `timeout`, `tls`, `connect`, `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchFailure::Timeout => "timeout",
            FetchFailure::Tls(_) => "tls",
            FetchFailure::Connect(_) => "connect",
            FetchFailure::Other(_) => "other",
        }
    }
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchFailure::Timeout => f.write_str("timeout"),
            FetchFailure::Tls(m) => write!(f, "tls: {m}"),
            FetchFailure::Connect(m) => write!(f, "connect: {m}"),
            FetchFailure::Other(m) => write!(f, "error: {m}"),
        }
    }
}

/// One fetch: the response head and as much of the body as the cap allows.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL requested.
    pub url: Url,
    /// HTTP status (None when the fetch failed before a response).
    pub status: Option<u16>,
    /// `Content-Type` (lower-case media type without parameters).
    pub content_type: Option<String>,
    /// `Location`.
    pub location: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Refresh` header (`0;url=…`).
    pub refresh: Option<String>,
    /// The address actually connected to.
    pub remote_ip: Option<IpAddr>,
    /// The HTTP version spoken ("HTTP/1.1", "HTTP/2.0").
    pub version: Option<String>,
    /// Body bytes read (decompressed), at most the cap.
    pub body: Vec<u8>,
    /// The body was longer than the cap: reading stopped there.
    pub truncated: bool,
    /// Why the fetch failed, if it did (a failure while reading the body keeps the head).
    pub failure: Option<FetchFailure>,
    /// Wall time of the fetch.
    pub elapsed: Duration,
}

/// Whether a content type is a page the crawler parses (vs. a download it judges).
pub fn is_page_type(ct: Option<&str>) -> bool {
    match ct {
        None => true,
        Some(t) => {
            t.starts_with("text/html")
                || t == "application/xhtml+xml"
                || t.starts_with("text/plain")
                || t == "text/javascript"
                || t == "application/javascript"
                || t == "application/x-javascript"
        }
    }
}

struct HostGate {
    slots: Arc<Semaphore>,
    bucket: Mutex<(f64, Instant)>,
}

/// The crawler's HTTP client with per-host politeness.
pub struct Fetcher {
    client: reqwest::Client,
    gates: Mutex<HashMap<String, Arc<HostGate>>>,
    per_host_concurrency: usize,
    rps: f64,
    burst: f64,
    max_page: u64,
    max_download: u64,
    total_timeout: Duration,
}

/// Holds a host's concurrency slot while a fetch runs.
struct HostPermit {
    _permit: OwnedSemaphorePermit,
}

impl Fetcher {
    /// Builds the client from the configuration (identity, limits, TLS roots, overrides).
    pub fn new(config: &CrawlConfig) -> Result<Fetcher, CrawlError> {
        let tls = tls_config(config)?;
        let id = &config.identity;
        let mut headers = HeaderMap::new();
        let hv = |name: &str, v: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| CrawlError::Config(format!("identity.{name}: not a valid header value")))
        };
        headers.insert(header::ACCEPT, hv("accept", &id.accept)?);
        headers.insert(header::ACCEPT_LANGUAGE, hv("accept_language", &id.accept_language)?);
        let l = &config.limits;
        let mut b = reqwest::Client::builder()
            .user_agent(hv("user_agent", &id.user_agent)?)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(l.connect_timeout_ms))
            .read_timeout(Duration::from_millis(l.read_timeout_ms))
            // The total timeout is the fetch's own deadline (`Fetcher::fetch`): one timer, not two.
            .pool_max_idle_per_host(config.rate.per_host_concurrency)
            // Most hosts of a crawl are visited once: do not keep their connections for long.
            .pool_idle_timeout(Duration::from_millis(l.idle_connection_ms))
            .no_proxy()
            .tls_backend_preconfigured(tls);
        for (name, addr) in &config.resolve {
            b = b.resolve(name, *addr);
        }
        let client = b.build().map_err(|e| CrawlError::Config(format!("http client: {e}")))?;
        Ok(Fetcher {
            client,
            gates: Mutex::new(HashMap::new()),
            per_host_concurrency: config.rate.per_host_concurrency,
            rps: config.rate.per_host_rps,
            burst: f64::from(config.rate.per_host_burst),
            max_page: l.max_page_bytes,
            max_download: l.max_download_bytes,
            total_timeout: Duration::from_millis(l.total_timeout_ms),
        })
    }

    fn gate(&self, host: &str) -> Arc<HostGate> {
        let mut g = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(gate) = g.get(host) {
            return gate.clone();
        }
        g.entry(host.to_owned())
            .or_insert_with(|| {
                Arc::new(HostGate {
                    slots: Arc::new(Semaphore::new(self.per_host_concurrency)),
                    bucket: Mutex::new((self.burst, Instant::now())),
                })
            })
            .clone()
    }

    /// Waits for a concurrency slot and a rate token for `host`.
    async fn admit(&self, host: &str) -> Option<HostPermit> {
        let gate = self.gate(host);
        let permit = gate.slots.clone().acquire_owned().await.ok()?;
        loop {
            let wait = {
                let mut b = gate.bucket.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let refill = now.duration_since(b.1).as_secs_f64() * self.rps;
                b.0 = (b.0 + refill).min(self.burst);
                b.1 = now;
                if b.0 >= 1.0 {
                    b.0 -= 1.0;
                    None
                } else {
                    Some(Duration::from_secs_f64((1.0 - b.0) / self.rps))
                }
            };
            match wait {
                None => return Some(HostPermit { _permit: permit }),
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Fetches one URL with GET (no redirect following), reading at most the cap.
    pub async fn fetch(&self, url: &Url) -> Fetched {
        self.fetch_with_cap(url, None).await
    }

    /// [`Fetcher::fetch`] with another body cap than the page/download one (seed feeds).
    pub async fn fetch_with_cap(&self, url: &Url, cap: Option<u64>) -> Fetched {
        let started = Instant::now();
        let mut out = Fetched {
            url: url.clone(),
            status: None,
            content_type: None,
            location: None,
            content_disposition: None,
            refresh: None,
            remote_ip: None,
            version: None,
            body: Vec::new(),
            truncated: false,
            failure: None,
            elapsed: Duration::ZERO,
        };
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let _permit = self.admit(&host).await;
        let deadline = started + self.total_timeout;
        match tokio::time::timeout_at(deadline.into(), self.fetch_inner(url, &mut out, cap)).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => out.failure = Some(f),
            Err(_) => out.failure = Some(FetchFailure::Timeout),
        }
        out.elapsed = started.elapsed();
        out
    }

    async fn fetch_inner(&self, url: &Url, out: &mut Fetched, cap: Option<u64>) -> Result<(), FetchFailure> {
        let mut resp = self.client.get(url.clone()).send().await.map_err(classify)?;
        out.status = Some(resp.status().as_u16());
        out.remote_ip = resp.remote_addr().map(|a| a.ip());
        out.version = Some(format!("{:?}", resp.version()));
        let h = resp.headers();
        let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        out.content_type = get(header::CONTENT_TYPE)
            .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty());
        out.location = get(header::LOCATION);
        out.content_disposition = get(header::CONTENT_DISPOSITION);
        out.refresh = get(header::HeaderName::from_static("refresh"));
        let cap = cap.unwrap_or(if is_page_type(out.content_type.as_deref()) && out.content_disposition.is_none() {
            self.max_page
        } else {
            self.max_download
        });
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        // One allocation when the length is announced (bounded by the cap, and by 1 MiB so that
        // a lying Content-Length cannot make the crawler reserve much).
        if let Some(len) = resp.content_length() {
            out.body.reserve_exact(usize::try_from(len).unwrap_or(usize::MAX).min(cap).min(1 << 20));
        }
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = cap - out.body.len();
                    if chunk.len() > room {
                        out.body.extend_from_slice(&chunk[..room]);
                        out.truncated = true;
                        break;
                    }
                    out.body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(())
    }
}

fn classify(e: reqwest::Error) -> FetchFailure {
    if e.is_timeout() {
        return FetchFailure::Timeout;
    }
    let mut chain = String::new();
    let mut src: Option<&dyn std::error::Error> = Some(&e);
    let mut tls = false;
    while let Some(s) = src {
        let m = s.to_string();
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&m);
        if s.downcast_ref::<rustls::Error>().is_some() || m.contains("certificate") || m.contains("tls") {
            tls = true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return FetchFailure::Timeout;
        }
        src = s.source();
    }
    if tls {
        FetchFailure::Tls(chain)
    } else if e.is_connect() {
        FetchFailure::Connect(chain)
    } else {
        FetchFailure::Other(chain)
    }
}

/// The rustls client configuration: ring provider, web PKI roots (unless disabled) plus the
/// operator's extra roots, ALPN h2 and http/1.1.
pub(crate) fn tls_config(config: &CrawlConfig) -> Result<rustls::ClientConfig, CrawlError> {
    let mut roots = rustls::RootCertStore::empty();
    if !config.tls.no_builtin_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for path in &config.tls.extra_root_certs {
        let pem = std::fs::read(path).map_err(|e| CrawlError::io(path, e))?;
        let mut n = 0;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| CrawlError::Config(format!("{}: bad PEM: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| CrawlError::Config(format!("{}: bad root certificate: {e}", path.display())))?;
            n += 1;
        }
        if n == 0 {
            return Err(CrawlError::Config(format!("{}: no certificate found", path.display())));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CrawlError::Config(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}
