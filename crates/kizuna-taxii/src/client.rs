//! Polling partners: TAXII 2.1 collections (incrementally: `added_after` from the last poll's
//! `X-TAXII-Date-Added-Last`, then `next` through the pages) and MISP feeds over HTTP.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use crate::server::TAXII_MEDIA;

/// Errors talking to a partner.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Transport failure.
    #[error("{url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The error.
        source: reqwest::Error,
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
    let bytes = resp.bytes().await.map_err(|source| ClientError::Http { url: url.to_owned(), source })?;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
        return Err(ClientError::Status { url: url.to_owned(), status: status.as_u16(), body });
    }
    Ok((headers, bytes.to_vec()))
}

/// Polls a collection once: every object added since `state`, page by page.
pub async fn poll(http: &reqwest::Client, rc: &RemoteCollection, state: &PollState) -> Result<PollResult, ClientError> {
    let objects_url = format!("{}/objects/", rc.url.trim_end_matches('/'));
    let mut out = PollResult { state: state.clone(), ..PollResult::default() };
    let mut next: Option<String> = None;
    loop {
        let mut q: Vec<(&str, String)> = vec![("limit", rc.limit.max(1).to_string())];
        if let Some(a) = &state.added_after {
            q.push(("added_after", a.clone()));
        }
        if let Some(n) = &next {
            q.push(("next", n.clone()));
        }
        let req = with_auth(http.get(&objects_url).query(&q).header(ACCEPT, TAXII_MEDIA), &rc.auth);
        let resp = req.send().await.map_err(|source| ClientError::Http { url: objects_url.clone(), source })?;
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
        out.pages += 1;
        if let Some(objs) = env.get("objects").and_then(Value::as_array) {
            out.objects.extend(objs.iter().cloned());
        }
        if let Some(last) = headers.get("x-taxii-date-added-last").and_then(|v| v.to_str().ok()) {
            let newer = match (&out.state.added_after, kizuna_stix::parse_time(last)) {
                (Some(cur), Some(t)) => kizuna_stix::parse_time(cur).is_none_or(|c| t > c),
                (None, Some(_)) => true,
                _ => false,
            };
            if newer {
                out.state.added_after = Some(last.to_owned());
            }
        }
        let more = env.get("more").and_then(Value::as_bool).unwrap_or(false);
        match env.get("next").and_then(Value::as_str) {
            Some(n) if more => next = Some(n.to_owned()),
            _ if more => {
                return Err(ClientError::Protocol {
                    url: objects_url,
                    reason: "\"more\" is true but there is no \"next\"".into(),
                });
            }
            _ => break,
        }
    }
    Ok(out)
}

/// Posts objects to a collection; returns the status resource.
pub async fn post(http: &reqwest::Client, rc: &RemoteCollection, objects: &[Value]) -> Result<Value, ClientError> {
    let url = format!("{}/objects/", rc.url.trim_end_matches('/'));
    let body = serde_json::json!({ "objects": objects }).to_string();
    let req =
        with_auth(http.post(&url).header(ACCEPT, TAXII_MEDIA).header(CONTENT_TYPE, TAXII_MEDIA).body(body), &rc.auth);
    let resp = req.send().await.map_err(|source| ClientError::Http { url: url.clone(), source })?;
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
    let resp = with_auth(http.get(&murl), auth)
        .send()
        .await
        .map_err(|source| ClientError::Http { url: murl.clone(), source })?;
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
            Err(source) => Err(ClientError::Http { url: url.clone(), source }),
        };
        match got {
            Ok(v) => events.push((u, v)),
            Err(e) => failed.push((u, e.to_string())),
        }
    }
    Ok((events, failed))
}
