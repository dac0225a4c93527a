//! The TAXII 2.1 server: an axum router over an [`ObjectStore`] and a partner [`Directory`].
//!
//! Routes (under `prefix`, `/taxii2` by default): `GET {prefix}/` (discovery),
//! `GET {prefix}/{root}/`, `…/collections/`, `…/collections/{id}/`, `GET|POST
//! …/collections/{id}/objects/`, `GET|DELETE …/objects/{object}/`, `GET
//! …/objects/{object}/versions/`, `GET …/collections/{id}/manifest/`, `GET
//! {prefix}/{root}/status/{id}/`; each also without the trailing slash.
//!
//! Every error is a TAXII error object (`application/taxii+json;version=2.1`), never HTML.
//! Every object served passes the audience rule (`kizuna-policy`) for the requesting partner,
//! and pages are filled with objects it may receive, so a client never sees short pages.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use kizuna_model::Timestamp;
use kizuna_policy::{OwnedLabels, Recipient, may_receive, should_send};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::labels_of;
use crate::store::{CollectionInfo, Entry, NewObject, ObjectStore, Sibling, StatusResource, StoreError};

/// The TAXII 2.1 media type, echoed exactly.
pub const TAXII_MEDIA: &str = "application/taxii+json;version=2.1";
/// The STIX 2.1 media type (manifests, collections).
pub const STIX_MEDIA: &str = "application/stix+json;version=2.1";

/// Server settings.
#[derive(Debug, Clone)]
pub struct TaxiiConfig {
    /// Path prefix of discovery and API roots.
    pub prefix: String,
    /// Discovery title.
    pub title: String,
    /// Discovery description.
    pub description: String,
    /// Contact.
    pub contact: String,
    /// The one API root's path segment.
    pub api_root: String,
    /// Its title.
    pub api_root_title: String,
    /// Largest accepted POST body, bytes.
    pub max_content_length: usize,
    /// Page size when the client asks for none.
    pub default_limit: usize,
    /// Largest page.
    pub max_limit: usize,
    /// Base URL as clients reach it (`https://hub.example`); when `None`, from the Host header.
    pub public_url: Option<String>,
}

impl Default for TaxiiConfig {
    fn default() -> Self {
        TaxiiConfig {
            prefix: "/taxii2".into(),
            title: "kizuna TAXII 2.1".into(),
            description: "Indicators shared by this kizuna hub".into(),
            contact: String::new(),
            api_root: "kizuna".into(),
            api_root_title: "kizuna sharing".into(),
            max_content_length: 10 << 20,
            default_limit: 100,
            max_limit: 1000,
            public_url: None,
        }
    }
}

/// A partner as the server knows it: its audience and its rights per collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// Its audience identity (organisation, kind, groups, TLP cap).
    pub recipient: Recipient,
    /// Collections it may read (`*`: all).
    pub can_read: BTreeSet<String>,
    /// Collections it may write (`*`: all).
    pub can_write: BTreeSet<String>,
}

impl Partner {
    /// May read the collection.
    pub fn reads(&self, c: &str) -> bool {
        self.can_read.contains(c) || self.can_read.contains("*")
    }
    /// May write the collection.
    pub fn writes(&self, c: &str) -> bool {
        self.can_write.contains(c) || self.can_write.contains("*")
    }
}

/// Credentials as presented by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// HTTP Basic user and password.
    Basic(String, String),
    /// `Authorization: Token …` or `Bearer …`.
    Key(String),
}

/// Who a credential belongs to.
pub trait Directory: Send + Sync {
    /// The partner whose credential this is.
    fn authenticate(&self, p: &Presented) -> Option<Partner>;
}

/// SHA-256 hex of a secret (what directories store).
pub fn secret_hash(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A credential as a directory keeps it (hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Basic auth: user and SHA-256 hex of the password (kizuna issues random passwords, so a
    /// fast hash is enough).
    Basic {
        /// User name.
        user: String,
        /// SHA-256 hex of the password.
        password_sha256: String,
    },
    /// API key: SHA-256 hex.
    Key {
        /// SHA-256 hex of the key.
        sha256: String,
    },
}

/// A fixed list of credentials and partners (from the sharing store or config).
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory {
    /// (credential, partner).
    pub entries: Vec<(Credential, Partner)>,
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Directory for StaticDirectory {
    fn authenticate(&self, p: &Presented) -> Option<Partner> {
        self.entries.iter().find_map(|(c, partner)| {
            let ok = match (c, p) {
                (Credential::Basic { user, password_sha256 }, Presented::Basic(u, pw)) => {
                    ct_eq(user, u) & ct_eq(password_sha256, &secret_hash(pw))
                }
                (Credential::Key { sha256 }, Presented::Key(k)) => ct_eq(sha256, &secret_hash(k)),
                _ => false,
            };
            ok.then(|| partner.clone())
        })
    }
}

/// The server state.
pub struct TaxiiServer {
    /// Settings.
    pub config: TaxiiConfig,
    /// Objects.
    pub store: Arc<dyn ObjectStore>,
    /// Partners.
    pub directory: Arc<dyn Directory>,
}

/// A TAXII error.
#[derive(Debug)]
pub struct TaxiiError {
    status: StatusCode,
    title: String,
    description: String,
}

impl TaxiiError {
    fn new(status: StatusCode, title: &str, description: impl Into<String>) -> Self {
        TaxiiError { status, title: title.into(), description: description.into() }
    }
}

impl From<StoreError> for TaxiiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoCollection(c) => TaxiiError::new(StatusCode::NOT_FOUND, "Collection not found", c),
            StoreError::Backend(b) => {
                tracing::error!("TAXII store: {b}");
                TaxiiError::new(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", "try again later")
            }
        }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_str(),
        });
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_MEDIA));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"kizuna TAXII\""));
        }
        r
    }
}

type Res = Result<Response, TaxiiError>;

fn taxii(status: StatusCode, body: String, first_last: Option<(i64, i64)>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_MEDIA));
    if let Some((f, l)) = first_last {
        for (k, v) in [("x-taxii-date-added-first", f), ("x-taxii-date-added-last", l)] {
            if let Ok(v) = HeaderValue::from_str(&kizuna_stix::stix_time_micros(Timestamp::from_micros(v))) {
                h.insert(k, v);
            }
        }
    }
    r
}

fn accept_ok(headers: &HeaderMap) -> Result<(), TaxiiError> {
    let Some(a) = headers.get(header::ACCEPT) else { return Ok(()) };
    let a = a.to_str().unwrap_or("");
    let ok = a.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let mt = parts.next().unwrap_or("").to_ascii_lowercase();
        let version = parts.find_map(|p| p.strip_prefix("version=")).map(|v| v.trim_matches('"'));
        match mt.as_str() {
            "application/taxii+json" => version.is_none_or(|v| v == "2.1"),
            "*/*" | "application/*" | "application/json" => true,
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(TaxiiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Not acceptable",
            format!("this server answers {TAXII_MEDIA}; Accept was {a:?}"),
        ))
    }
}

fn presented(headers: &HeaderMap) -> Option<Presented> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        Some(Presented::Basic(u.to_owned(), p.to_owned()))
    } else if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
        Some(Presented::Key(rest.to_owned()))
    } else {
        None
    }
}

/// The access a collection route needs.
#[derive(Debug, Clone, Copy)]
enum Need {
    Read,
    Write,
    ReadWrite,
}

impl TaxiiServer {
    fn partner(&self, headers: &HeaderMap) -> Result<Partner, TaxiiError> {
        accept_ok(headers)?;
        presented(headers).and_then(|p| self.directory.authenticate(&p)).ok_or_else(|| {
            TaxiiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "send HTTP Basic credentials or Authorization: Token <api key>",
            )
        })
    }

    fn root(&self, root: &str) -> Result<(), TaxiiError> {
        if root == self.config.api_root {
            Ok(())
        } else {
            Err(TaxiiError::new(StatusCode::NOT_FOUND, "API root not found", root.to_owned()))
        }
    }

    /// The partner of the request and the collection `cid` of API root `root`, if the partner
    /// has the access `need` asks for: the check every collection route begins with.
    fn access(
        &self,
        headers: &HeaderMap,
        root: &str,
        cid: &str,
        need: Need,
    ) -> Result<(Partner, CollectionInfo), TaxiiError> {
        let p = self.partner(headers)?;
        self.root(root)?;
        let c = self.collection(&p, cid)?;
        let (ok, why) = match need {
            Need::Read => (p.reads(&c.id), "no read access to this collection"),
            Need::Write => (p.writes(&c.id), "no write access to this collection"),
            Need::ReadWrite => (p.reads(&c.id) && p.writes(&c.id), "deleting needs read and write access"),
        };
        if !ok {
            return Err(TaxiiError::new(StatusCode::FORBIDDEN, "Forbidden", why));
        }
        Ok((p, c))
    }

    fn collection(&self, p: &Partner, id: &str) -> Result<CollectionInfo, TaxiiError> {
        let c = self.store.collections()?.into_iter().find(|c| c.id == id);
        match c {
            Some(c) if p.reads(&c.id) || p.writes(&c.id) => Ok(c),
            _ => Err(TaxiiError::new(StatusCode::NOT_FOUND, "Collection not found", id.to_owned())),
        }
    }

    fn base_url(&self, headers: &HeaderMap) -> String {
        match &self.config.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
                format!("http://{host}")
            }
        }
    }
}

/// The router, for any outer state (merge it into the hub's router).
pub fn router<S: Clone + Send + Sync + 'static>(server: Arc<TaxiiServer>) -> Router<S> {
    let p = server.config.prefix.trim_end_matches('/').to_owned();
    let mut r = Router::new();
    let routes: Vec<(String, axum::routing::MethodRouter<Arc<TaxiiServer>>)> = vec![
        (format!("{p}/"), get(discovery)),
        (format!("{p}/{{root}}/"), get(api_root)),
        (format!("{p}/{{root}}/collections/"), get(collections)),
        (format!("{p}/{{root}}/collections/{{cid}}/"), get(collection)),
        (format!("{p}/{{root}}/collections/{{cid}}/objects/"), get(get_objects).post(post_objects)),
        (format!("{p}/{{root}}/collections/{{cid}}/objects/{{oid}}/"), get(get_object).delete(delete_object)),
        (format!("{p}/{{root}}/collections/{{cid}}/objects/{{oid}}/versions/"), get(get_versions)),
        (format!("{p}/{{root}}/collections/{{cid}}/manifest/"), get(get_manifest)),
        (format!("{p}/{{root}}/status/{{sid}}/"), get(get_status)),
    ];
    for (path, m) in routes {
        let bare = path.trim_end_matches('/').to_owned();
        if !bare.is_empty() && bare != path {
            r = r.route(&bare, m.clone());
        }
        r = r.route(&path, m);
    }
    r.with_state(server)
}

async fn discovery(State(s): State<Arc<TaxiiServer>>, headers: HeaderMap) -> Res {
    s.partner(&headers)?;
    let base = s.base_url(&headers);
    let root = format!("{base}{}/{}/", s.config.prefix.trim_end_matches('/'), s.config.api_root);
    let mut body = serde_json::json!({
        "title": s.config.title,
        "description": s.config.description,
        "default": root,
        "api_roots": [root],
    });
    if !s.config.contact.is_empty() {
        body["contact"] = s.config.contact.clone().into();
    }
    Ok(taxii(StatusCode::OK, body.to_string(), None))
}

async fn api_root(State(s): State<Arc<TaxiiServer>>, Path(root): Path<String>, headers: HeaderMap) -> Res {
    s.partner(&headers)?;
    s.root(&root)?;
    let body = serde_json::json!({
        "title": s.config.api_root_title,
        "versions": [TAXII_MEDIA],
        "max_content_length": s.config.max_content_length,
    });
    Ok(taxii(StatusCode::OK, body.to_string(), None))
}

fn collection_json(c: &CollectionInfo, p: &Partner) -> Value {
    let mut v = serde_json::json!({
        "id": c.id,
        "title": c.title,
        "can_read": p.reads(&c.id),
        "can_write": p.writes(&c.id),
        "media_types": [STIX_MEDIA],
    });
    if !c.description.is_empty() {
        v["description"] = c.description.clone().into();
    }
    v
}

async fn collections(State(s): State<Arc<TaxiiServer>>, Path(root): Path<String>, headers: HeaderMap) -> Res {
    let p = s.partner(&headers)?;
    s.root(&root)?;
    let list: Vec<Value> = s
        .store
        .collections()?
        .iter()
        .filter(|c| p.reads(&c.id) || p.writes(&c.id))
        .map(|c| collection_json(c, &p))
        .collect();
    let body = if list.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "collections": list }) };
    Ok(taxii(StatusCode::OK, body.to_string(), None))
}

async fn collection(
    State(s): State<Arc<TaxiiServer>>,
    Path((root, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Res {
    let p = s.partner(&headers)?;
    s.root(&root)?;
    let c = s.collection(&p, &cid)?;
    Ok(taxii(StatusCode::OK, collection_json(&c, &p).to_string(), None))
}

/// `match[version]`.
#[derive(Debug, Clone, PartialEq)]
enum VersionSel {
    Last,
    First,
    All,
    At(i64),
}

/// A parsed objects/manifest/versions query.
#[derive(Debug, Clone)]
struct Filter {
    limit: usize,
    after_seq: u64,
    added_after: Option<i64>,
    ids: Vec<String>,
    types: Vec<String>,
    versions: Vec<VersionSel>,
    spec: Vec<String>,
}

/// Page tokens: `k1.<seq>`, the last sequence number served. Stateless, never expire.
fn next_token(seq: u64) -> String {
    format!("k1.{seq}")
}

fn bad(d: impl Into<String>) -> TaxiiError {
    TaxiiError::new(StatusCode::BAD_REQUEST, "Bad request", d)
}

fn parse_filter(cfg: &TaxiiConfig, q: &[(String, String)], versions_default_all: bool) -> Result<Filter, TaxiiError> {
    let mut f = Filter {
        limit: cfg.default_limit,
        after_seq: 0,
        added_after: None,
        ids: vec![],
        types: vec![],
        versions: vec![],
        spec: vec![],
    };
    let list = |v: &str| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
    for (k, v) in q {
        match k.as_str() {
            "limit" => {
                let n: usize = v.parse().map_err(|_| bad(format!("limit {v:?} is not a positive integer")))?;
                if n == 0 {
                    return Err(bad("limit must be at least 1"));
                }
                f.limit = n.min(cfg.max_limit);
            }
            "next" if v.is_empty() => {}
            "next" => {
                f.after_seq = v
                    .strip_prefix("k1.")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| bad(format!("next {v:?} is not a token this server issued")))?;
            }
            "added_after" => {
                f.added_after = Some(
                    kizuna_stix::parse_time(v)
                        .ok_or_else(|| bad(format!("added_after {v:?} is not a timestamp")))?
                        .as_micros(),
                )
            }
            "match[id]" => f.ids.extend(list(v)),
            "match[type]" => f.types.extend(list(v)),
            "match[spec_version]" => f.spec.extend(list(v)),
            "match[version]" => {
                for x in list(v) {
                    f.versions.push(match x.as_str() {
                        "last" => VersionSel::Last,
                        "first" => VersionSel::First,
                        "all" => VersionSel::All,
                        t => VersionSel::At(
                            kizuna_stix::parse_time(t)
                                .ok_or_else(|| {
                                    bad(format!("match[version] {t:?} is not last, first, all or a timestamp"))
                                })?
                                .as_micros(),
                        ),
                    })
                }
            }
            _ => {}
        }
    }
    if f.versions.is_empty() {
        f.versions.push(if versions_default_all { VersionSel::All } else { VersionSel::Last });
    }
    Ok(f)
}

impl Filter {
    fn selects(&self, e: &Entry, siblings: &[Sibling]) -> bool {
        if !self.ids.is_empty() && !self.ids.iter().any(|i| **i == *e.id) {
            return false;
        }
        if !self.types.is_empty() && !self.types.iter().any(|t| **t == *e.stix_type) {
            return false;
        }
        let spec_ok = |sv: &str| -> bool {
            if self.spec.is_empty() {
                // default: the newest spec version this object has
                siblings.iter().all(|s| *s.spec_version <= *sv)
            } else {
                self.spec.iter().any(|x| x == sv)
            }
        };
        if !spec_ok(&e.spec_version) {
            return false;
        }
        let mut same_spec = siblings.iter().filter(|s| spec_ok(&s.spec_version)).map(|s| s.version);
        let (mut lo, mut hi) = (e.version, e.version);
        for v in &mut same_spec {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        self.versions.iter().any(|v| match v {
            VersionSel::All => true,
            VersionSel::Last => e.version == hi,
            VersionSel::First => e.version == lo,
            VersionSel::At(t) => e.version == *t,
        })
    }
}

fn allowed(c: &CollectionInfo, labels: &OwnedLabels, p: &Partner) -> bool {
    if c.no_echo {
        should_send(&labels.as_labels(), &p.recipient)
    } else {
        may_receive(&labels.as_labels(), &p.recipient)
    }
}

struct Page {
    items: Vec<Entry>,
    more: bool,
}

fn page(s: &TaxiiServer, c: &CollectionInfo, p: &Partner, f: &Filter) -> Result<Page, TaxiiError> {
    let mut items = Vec::with_capacity(f.limit.min(1024));
    let mut more = false;
    s.store.scan(&c.id, f.after_seq, f.added_after, &mut |e, sib| {
        if !f.selects(e, sib) || !allowed(c, &e.labels, p) {
            return true;
        }
        if items.len() == f.limit {
            more = true;
            return false;
        }
        items.push(e.clone());
        true
    })?;
    Ok(Page { items, more })
}

fn first_last(items: &[Entry]) -> Option<(i64, i64)> {
    Some((items.first()?.date_added, items.last()?.date_added))
}

fn envelope(pg: &Page) -> String {
    let mut out = String::with_capacity(64 + pg.items.iter().map(|e| e.json.len() + 1).sum::<usize>());
    out.push_str("{\"more\":");
    out.push_str(if pg.more { "true" } else { "false" });
    if pg.more
        && let Some(last) = pg.items.last()
    {
        out.push_str(",\"next\":\"");
        out.push_str(&next_token(last.seq));
        out.push('"');
    }
    if !pg.items.is_empty() {
        out.push_str(",\"objects\":[");
        for (i, e) in pg.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&e.json);
        }
        out.push(']');
    }
    out.push('}');
    out
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TaxiiError> + Send + 'static,
) -> Result<T, TaxiiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        TaxiiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", format!("worker failed: {e}"))
    })?
}

async fn get_objects(
    State(s): State<Arc<TaxiiServer>>,
    Path((root, cid)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Res {
    objects_common(s, root, cid, None, q, headers).await
}

async fn get_object(
    State(s): State<Arc<TaxiiServer>>,
    Path((root, cid, oid)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Res {
    objects_common(s, root, cid, Some(oid), q, headers).await
}

async fn objects_common(
    s: Arc<TaxiiServer>,
    root: String,
    cid: String,
    oid: Option<String>,
    q: Vec<(String, String)>,
    headers: HeaderMap,
) -> Res {
    let (p, c) = s.access(&headers, &root, &cid, Need::Read)?;
    let mut f = parse_filter(&s.config, &q, false)?;
    if let Some(o) = &oid {
        f.ids = vec![o.clone()];
    }
    blocking(move || {
        let pg = page(&s, &c, &p, &f)?;
        if oid.is_some() && pg.items.is_empty() && f.after_seq == 0 {
            return Err(TaxiiError::new(StatusCode::NOT_FOUND, "Object not found", oid.unwrap_or_default()));
        }
        Ok(taxii(StatusCode::OK, envelope(&pg), first_last(&pg.items)))
    })
    .await
}

async fn get_manifest(
    State(s): State<Arc<TaxiiServer>>,
    Path((root, cid)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Res {
    let (p, c) = s.access(&headers, &root, &cid, Need::Read)?;
    let f = parse_filter(&s.config, &q, false)?;
    blocking(move || {
        let pg = page(&s, &c, &p, &f)?;
        let objects: Vec<Value> = pg
            .items
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": &*e.id,
                    "date_added": kizuna_stix::stix_time_micros(Timestamp::from_micros(e.date_added)),
                    "version": &*e.version_text,
                    "media_type": format!("application/stix+json;version={}", e.spec_version),
                })
            })
            .collect();
        let mut body = serde_json::json!({ "more": pg.more });
        if pg.more
            && let Some(l) = pg.items.last()
        {
            body["next"] = next_token(l.seq).into();
        }
        if !objects.is_empty() {
            body["objects"] = objects.into();
        }
        Ok(taxii(StatusCode::OK, body.to_string(), first_last(&pg.items)))
    })
    .await
}

async fn get_versions(
    State(s): State<Arc<TaxiiServer>>,
    Path((root, cid, oid)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Res {
    let (p, c) = s.access(&headers, &root, &cid, Need::Read)?;
    let mut f = parse_filter(&s.config, &q, true)?;
    f.ids = vec![oid.clone()];
    f.versions = vec![VersionSel::All];
    blocking(move || {
        let all = s.store.versions(&c.id, &oid)?;
        let mut vs: Vec<&Entry> = all
            .iter()
            .filter(|e| e.seq > f.after_seq)
            .filter(|e| f.added_after.is_none_or(|t| e.date_added > t))
            .filter(|e| f.spec.is_empty() || f.spec.iter().any(|x| *x == *e.spec_version))
            .filter(|e| allowed(&c, &e.labels, &p))
            .collect();
        if vs.is_empty() && f.after_seq == 0 {
            return Err(TaxiiError::new(StatusCode::NOT_FOUND, "Object not found", oid));
        }
        vs.sort_by_key(|e| e.seq);
        let more = vs.len() > f.limit;
        vs.truncate(f.limit);
        let fl = Some((
            vs.iter().map(|e| e.date_added).min().unwrap_or(0),
            vs.iter().map(|e| e.date_added).max().unwrap_or(0),
        ));
        let mut body = serde_json::json!({
            "more": more,
            "versions": vs.iter().map(|e| e.version_text.to_string()).collect::<Vec<_>>(),
        });
        if more && let Some(l) = vs.last() {
            body["next"] = next_token(l.seq).into();
        }
        Ok(taxii(StatusCode::OK, body.to_string(), fl.filter(|_| !vs.is_empty())))
    })
    .await
}

async fn delete_object(
    State(s): State<Arc<TaxiiServer>>,
    Path((root, cid, oid)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Res {
    let (p, c) = s.access(&headers, &root, &cid, Need::ReadWrite)?;
    let f = parse_filter(&s.config, &q, true)?;
    blocking(move || {
        let all = s.store.versions(&c.id, &oid)?;
        let chosen: Vec<&Entry> = all.iter().filter(|e| allowed(&c, &e.labels, &p)).collect();
        if chosen.is_empty() {
            return Err(TaxiiError::new(StatusCode::NOT_FOUND, "Object not found", oid));
        }
        let sibs: Vec<Sibling> =
            all.iter().map(|e| Sibling { version: e.version, spec_version: e.spec_version.clone() }).collect();
        let mut f = f;
        f.ids = vec![oid.clone()];
        let targets: Vec<&Entry> = chosen.into_iter().filter(|e| f.selects(e, &sibs)).collect();
        if targets.iter().any(|e| e.labels.origin.as_deref() != Some(p.recipient.org.as_str())) {
            return Err(TaxiiError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "only the organisation that added an object may delete it",
            ));
        }
        let versions: Vec<i64> = targets.iter().map(|e| e.version).collect();
        s.store.delete(&c.id, &oid, Some(&versions))?;
        Ok(taxii(StatusCode::OK, String::new(), None))
    })
    .await
}

async fn post_objects(
    State(s): State<Arc<TaxiiServer>>,
    Path((root, cid)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Res {
    let (p, c) = s.access(&headers, &root, &cid, Need::Write)?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut parts = ct.split(';').map(str::trim);
    let mt = parts.next().unwrap_or("").to_ascii_lowercase();
    let version = parts.find_map(|p| p.strip_prefix("version=")).map(|v| v.trim_matches('"').to_owned());
    if mt != "application/taxii+json" || version.as_deref().is_some_and(|v| v != "2.1") {
        return Err(TaxiiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("POST an envelope as {TAXII_MEDIA}; Content-Type was {ct:?}"),
        ));
    }
    let too_large = || {
        TaxiiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request too large",
            format!("the body is larger than max_content_length ({} bytes)", s.config.max_content_length),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > s.config.max_content_length) {
        // A body up to twice the limit is read and dropped first, so the client, still writing
        // it, reads the 413 instead of a reset connection; a larger one is refused at once.
        if n <= s.config.max_content_length.saturating_mul(2) {
            let _ = axum::body::to_bytes(body, n).await;
        }
        return Err(too_large());
    }
    let body: Bytes = axum::body::to_bytes(body, s.config.max_content_length).await.map_err(|_| too_large())?;
    let doc: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("the envelope is not JSON: {e}")))?;
    let objects =
        doc.get("objects").and_then(Value::as_array).ok_or_else(|| bad("the envelope has no \"objects\" list"))?;
    let now = Timestamp::now();
    let new: Vec<NewObject> = objects
        .iter()
        .map(|o| NewObject { object: o.clone(), labels: labels_of(o, objects, &c.default_labels, &p.recipient.org) })
        .collect();
    blocking(move || {
        let results = s.store.add(&c.id, new, now.as_micros())?;
        let status = StatusResource {
            id: kizuna_stix::ids::uuid_for(&format!("status:{}:{}:{}", c.id, now.as_micros(), p.recipient.org)),
            request_timestamp: kizuna_stix::stix_time_micros(now),
            results,
        };
        s.store.put_status(&status)?;
        Ok(taxii(StatusCode::ACCEPTED, status.to_json().to_string(), None))
    })
    .await
}

async fn get_status(
    State(s): State<Arc<TaxiiServer>>,
    Path((root, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Res {
    s.partner(&headers)?;
    s.root(&root)?;
    match s.store.status(&sid)? {
        Some(st) => Ok(taxii(StatusCode::OK, st.to_json().to_string(), None)),
        None => Err(TaxiiError::new(StatusCode::NOT_FOUND, "Status not found", sid)),
    }
}

/// Serves the router alone on a listener (tests, benchmarks, `kizuna share serve`).
pub async fn serve(
    server: Arc<TaxiiServer>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router::<()>(server)).with_graceful_shutdown(shutdown).await
}
