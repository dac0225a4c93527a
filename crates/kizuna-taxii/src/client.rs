//! Polling partners: TAXII 2.1 collections (incrementally: `added_after` from the last poll's
//! `X-TAXII-Date-Added-Last`, then `next` through the pages) and MISP feeds over HTTP.
//!
//! [`http_client`] builds the client partners are reached with: rustls (ring), the web PKI
//! roots or, when the operator names one, only the CA certificates of a PEM file; host names
//! are always verified. A certificate the roots do not vouch for is a [`ClientError::Tls`].

use std::path::Path;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use crate::server::TAXII_MEDIA;

/// Errors talking to a partner.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Transport failure (connection refused, timeout, …); the message has the whole cause chain.
    #[error("{url}: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// The error and its causes.
        detail: String,
    },
    /// The TLS handshake failed: the partner's certificate is not trusted by the configured
    /// roots, names another host, or has expired.
    #[error("{url}: TLS: {reason} (check the partner's ca_file and the host name in its URL)")]
    Tls {
        /// The URL.
        url: String,
        /// What rustls said.
        reason: String,
    },
    /// The partner answered with an error status.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// Status code.
        status: u16,
        /// The start of the body (a TAXII error object, or whatever the server sent).
        body: String,
    },
    /// The answer is not what TAXII or the MISP feed layout says.
    #[error("{url}: {reason}")]
    Protocol {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The client could not be set up (CA file unreadable, no certificate in it, …).
    #[error("{0}")]
    Config(String),
}

/// The rustls error somewhere in a cause chain (io::Error's `source` skips the error it wraps,
/// so those are opened too).
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        cur = match c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    None
}

/// A transport error, classified: TLS failures (found anywhere in the cause chain) apart.
fn transport(url: &str, e: reqwest::Error) -> ClientError {
    if let Some(t) = rustls_cause(&e) {
        return ClientError::Tls { url: url.to_owned(), reason: t.to_string() };
    }
    let mut detail = e.to_string();
    let mut cur = std::error::Error::source(&e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !detail.contains(&s) {
            detail.push_str(": ");
            detail.push_str(&s);
        }
        cur = c.source();
    }
    ClientError::Http { url: url.to_owned(), detail }
}

/// An HTTP client for partners: rustls with the web PKI roots, or only the certificates in
/// `ca_file` (PEM) when given; `timeout` per request.
pub fn http_client(ca_file: Option<&Path>, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(p) => {
            use rustls_pki_types::pem::PemObject;
            let bad = |e: &dyn std::fmt::Display| ClientError::Config(format!("ca_file {}: {e}", p.display()));
            for c in rustls_pki_types::CertificateDer::pem_file_iter(p).map_err(|e| bad(&e))? {
                roots.add(c.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no certificate in the file"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .user_agent(concat!("kizuna-taxii/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))
}

/// How to authenticate to a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// No credentials.
    None,
    /// HTTP Basic.
    Basic {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Token <key>`.
    Token(String),
    /// `Authorization: Bearer <key>`.
    Bearer(String),
}

/// A partner's collection.
#[derive(Debug, Clone)]
pub struct RemoteCollection {
    /// The collection's URL (`…/collections/{id}/`); objects are read from `objects/` under it.
    pub url: String,
    /// Credentials.
    pub auth: ClientAuth,
    /// Page size to ask for (medallion caps it at 100).
    pub limit: usize,
}

/// Where the last poll of a collection stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollState {
    /// `added_after` for the next poll: the newest `date_added` seen (TAXII timestamp text).
    pub added_after: Option<String>,
}

/// What one poll brought.
#[derive(Debug, Clone, Default)]
pub struct PollResult {
    /// Objects, in the order served.
    pub objects: Vec<Value>,
    /// Pages fetched.
    pub pages: usize,
    /// The state for the next poll.
    pub state: PollState,
}

fn with_auth(r: reqwest::RequestBuilder, auth: &ClientAuth) -> reqwest::RequestBuilder {
    match auth {
        ClientAuth::None => r,
        ClientAuth::Basic { user, password } => r.basic_auth(user, Some(password)),
        ClientAuth::Token(t) => r.header(reqwest::header::AUTHORIZATION, format!("Token {t}")),
        ClientAuth::Bearer(t) => r.bearer_auth(t),
    }
}

async fn body_of(url: &str, resp: reqwest::Response) -> Result<(reqwest::header::HeaderMap, Vec<u8>), ClientError> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|e| transport(url, e))?;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
        return Err(ClientError::Status { url: url.to_owned(), status: status.as_u16(), body });
    }
    Ok((headers, bytes.to_vec()))
}

/// Reads a collection page by page from where `state` stopped: the first request asks for
/// `added_after`, the following ones follow `next`. [`Pager::state`] is the state to save once
/// every page is read.
pub struct Pager<'a> {
    http: &'a reqwest::Client,
    rc: &'a RemoteCollection,
    objects_url: String,
    start: PollState,
    state: PollState,
    next: Option<String>,
    done: bool,
    pages: usize,
}

impl<'a> Pager<'a> {
    /// A pager over `rc` from `state`.
    pub fn new(http: &'a reqwest::Client, rc: &'a RemoteCollection, state: &PollState) -> Self {
        Pager {
            http,
            rc,
            objects_url: format!("{}/objects/", rc.url.trim_end_matches('/')),
            start: state.clone(),
            state: state.clone(),
            next: None,
            done: false,
            pages: 0,
        }
    }

    /// Pages read so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Where the next poll should start (valid once [`Pager::next_page`] returned `None`).
    pub fn state(&self) -> &PollState {
        &self.state
    }

    /// The objects of the next page, `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let objects_url = self.objects_url.clone();
        let mut q: Vec<(&str, String)> = vec![("limit", self.rc.limit.max(1).to_string())];
        if let Some(a) = &self.start.added_after {
            q.push(("added_after", a.clone()));
        }
        if let Some(n) = &self.next {
            q.push(("next", n.clone()));
        }
        let req = with_auth(self.http.get(&objects_url).query(&q).header(ACCEPT, TAXII_MEDIA), &self.rc.auth);
        let resp = req.send().await.map_err(|e| transport(&objects_url, e))?;
        let (headers, body) = body_of(&objects_url, resp).await?;
        let ct = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.starts_with("application/taxii+json") {
            return Err(ClientError::Protocol {
                url: objects_url,
                reason: format!("Content-Type {ct:?} is not TAXII"),
            });
        }
        let env: Value = serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
            url: objects_url.clone(),
            reason: format!("envelope is not JSON: {e}"),
        })?;
        self.pages += 1;
        let objects = env.get("objects").and_then(Value::as_array).cloned().unwrap_or_default();
        if let Some(last) = headers.get("x-taxii-date-added-last").and_then(|v| v.to_str().ok()) {
            let newer = match (&self.state.added_after, kizuna_stix::parse_time(last)) {
                (Some(cur), Some(t)) => kizuna_stix::parse_time(cur).is_none_or(|c| t > c),
                (None, Some(_)) => true,
                _ => false,
            };
            if newer {
                self.state.added_after = Some(last.to_owned());
            }
        }
        let more = env.get("more").and_then(Value::as_bool).unwrap_or(false);
        match env.get("next").and_then(Value::as_str) {
            Some(n) if more => self.next = Some(n.to_owned()),
            _ if more => {
                return Err(ClientError::Protocol {
                    url: objects_url,
                    reason: "\"more\" is true but there is no \"next\"".into(),
                });
            }
            _ => self.done = true,
        }
        Ok(Some(objects))
    }
}

/// Polls a collection once: every object added since `state`, page by page, in memory.
pub async fn poll(http: &reqwest::Client, rc: &RemoteCollection, state: &PollState) -> Result<PollResult, ClientError> {
    let mut pager = Pager::new(http, rc, state);
    let mut objects = Vec::new();
    while let Some(mut page) = pager.next_page().await? {
        objects.append(&mut page);
    }
    Ok(PollResult { objects, pages: pager.pages(), state: pager.state().clone() })
}

/// Posts objects to a collection; returns the status resource.
pub async fn post(http: &reqwest::Client, rc: &RemoteCollection, objects: &[Value]) -> Result<Value, ClientError> {
    let url = format!("{}/objects/", rc.url.trim_end_matches('/'));
    let body = serde_json::json!({ "objects": objects }).to_string();
    let req =
        with_auth(http.post(&url).header(ACCEPT, TAXII_MEDIA).header(CONTENT_TYPE, TAXII_MEDIA).body(body), &rc.auth);
    let resp = req.send().await.map_err(|e| transport(&url, e))?;
    let (_, body) = body_of(&url, resp).await?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Protocol { url, reason: format!("status is not JSON: {e}") })
}

/// Fetches a MISP feed over HTTP: `manifest.json`, then each event's `<uuid>.json`. Returns
/// (uuid, event) pairs and (uuid, error) for events that could not be fetched (the rest goes
/// on).
pub async fn fetch_misp_feed(
    http: &reqwest::Client,
    base: &str,
    auth: &ClientAuth,
) -> Result<(Vec<(String, Value)>, Vec<(String, String)>), ClientError> {
    let base = base.trim_end_matches('/');
    let murl = format!("{base}/manifest.json");
    let resp = with_auth(http.get(&murl), auth).send().await.map_err(|e| transport(&murl, e))?;
    let (_, body) = body_of(&murl, resp).await?;
    let manifest: Value = serde_json::from_slice(&body)
        .map_err(|e| ClientError::Protocol { url: murl.clone(), reason: format!("not JSON: {e}") })?;
    let uuids =
        kizuna_stix::misp::manifest_events(&manifest).map_err(|reason| ClientError::Protocol { url: murl, reason })?;
    let mut events = Vec::with_capacity(uuids.len());
    let mut failed = Vec::new();
    for u in uuids {
        if !u.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            failed.push((u, "not a UUID".to_owned()));
            continue;
        }
        let url = format!("{base}/{u}.json");
        let got = match with_auth(http.get(&url), auth).send().await {
            Ok(r) => body_of(&url, r).await.and_then(|(_, b)| {
                serde_json::from_slice::<Value>(&b)
                    .map_err(|e| ClientError::Protocol { url: url.clone(), reason: format!("not JSON: {e}") })
            }),
            Err(e) => Err(transport(&url, e)),
        };
        match got {
            Ok(v) => events.push((u, v)),
            Err(e) => failed.push((u, e.to_string())),
        }
    }
    Ok((events, failed))
}
