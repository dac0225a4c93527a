//! Where TAXII collections keep their objects: the [`ObjectStore`] trait and [`MemoryStore`].
//!
//! Every object version gets a store-wide sequence number at insertion, and `date_added` never
//! decreases with it, so one number orders a collection both by insertion and by `date_added`:
//! a page cursor is just the last sequence number served (stateless, never expires, survives a
//! restart of a persistent store), and `added_after` is a binary search.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use kizuna_policy::OwnedLabels;
use serde_json::Value;

/// Errors of an object store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such collection.
    #[error("no collection {0:?}")]
    NoCollection(String),
    /// The backend failed.
    #[error("object store: {0}")]
    Backend(String),
}

/// A collection's description (TAXII collection resource) and kizuna's settings for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionInfo {
    /// Collection id (a UUID, or a readable name).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Labels given to objects posted without markings (TLP, groups).
    pub default_labels: OwnedLabels,
    /// When true, objects are never served back to the organisation they came from (kizuna's
    /// own export views, federation); when false (plain exchange collections) a partner reads
    /// what it wrote.
    pub no_echo: bool,
}

/// One stored object version.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Store-wide sequence number.
    pub seq: u64,
    /// STIX id.
    pub id: Arc<str>,
    /// STIX type.
    pub stix_type: Arc<str>,
    /// `modified`, else `created`, else `date_added` (microseconds).
    pub version: i64,
    /// The version as the object writes it (for manifests and `versions`).
    pub version_text: Arc<str>,
    /// `spec_version` ("2.0" when absent).
    pub spec_version: Arc<str>,
    /// When the collection received it (microseconds).
    pub date_added: i64,
    /// The object, serialised.
    pub json: Arc<str>,
    /// Its audience.
    pub labels: Arc<OwnedLabels>,
}

/// An object to add.
#[derive(Debug, Clone)]
pub struct NewObject {
    /// The object.
    pub object: Value,
    /// Its audience (computed by the caller from markings, extension and poster).
    pub labels: OwnedLabels,
}

/// What happened to one added object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddResult {
    /// Stored as a new version.
    Added {
        /// Id.
        id: String,
        /// Version text.
        version: String,
    },
    /// The same id and version was already stored: nothing changed.
    Duplicate {
        /// Id.
        id: String,
        /// Version text.
        version: String,
    },
    /// Refused.
    Failed {
        /// Id, if any.
        id: Option<String>,
        /// Version, if any.
        version: Option<String>,
        /// Why.
        message: String,
    },
}

/// Another version of the same object, as [`ObjectStore::scan`] passes them (the entry itself
/// included), for `match[version]` and the default `spec_version` selection.
#[derive(Debug, Clone)]
pub struct Sibling {
    /// Version (microseconds).
    pub version: i64,
    /// Its `spec_version`.
    pub spec_version: Arc<str>,
}

/// A TAXII status resource.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusResource {
    /// Status id (UUID).
    pub id: String,
    /// Request time (TAXII timestamp text).
    pub request_timestamp: String,
    /// Per-object outcomes.
    pub results: Vec<AddResult>,
}

impl StatusResource {
    /// The TAXII JSON of the status.
    pub fn to_json(&self) -> Value {
        let mut successes = Vec::new();
        let mut failures = Vec::new();
        for r in &self.results {
            match r {
                AddResult::Added { id, version } => successes.push(serde_json::json!({"id": id, "version": version})),
                AddResult::Duplicate { id, version } => successes
                    .push(serde_json::json!({"id": id, "version": version, "message": "already in the collection"})),
                AddResult::Failed { id, version, message } => failures.push(serde_json::json!({
                    "id": id.clone().unwrap_or_default(),
                    "version": version.clone().unwrap_or_default(),
                    "message": message,
                })),
            }
        }
        serde_json::json!({
            "id": self.id,
            "status": "complete",
            "request_timestamp": self.request_timestamp,
            "total_count": self.results.len(),
            "success_count": successes.len(),
            "successes": successes,
            "failure_count": failures.len(),
            "failures": failures,
            "pending_count": 0,
            "pendings": [],
        })
    }
}

/// Durable or in-memory storage of collections, objects and status resources.
pub trait ObjectStore: Send + Sync {
    /// Every collection.
    fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError>;
    /// Creates or replaces a collection's description (objects are kept).
    fn put_collection(&self, info: &CollectionInfo) -> Result<(), StoreError>;
    /// Visits entries with `seq > after_seq` and `date_added > added_after` in sequence order,
    /// each with every stored version of its object, until `visit` returns false.
    fn scan(
        &self,
        collection: &str,
        after_seq: u64,
        added_after: Option<i64>,
        visit: &mut dyn FnMut(&Entry, &[Sibling]) -> bool,
    ) -> Result<(), StoreError>;
    /// Every stored version of one object, oldest version first.
    fn versions(&self, collection: &str, id: &str) -> Result<Vec<Entry>, StoreError>;
    /// Adds objects (each a new version unless the same id and version is stored); `now` is
    /// the `date_added` in microseconds (raised to the collection's last `date_added` if the
    /// clock went back).
    fn add(&self, collection: &str, objects: Vec<NewObject>, now: i64) -> Result<Vec<AddResult>, StoreError>;
    /// Deletes the given versions of an object (all when `versions` is `None`); returns how
    /// many were deleted.
    fn delete(&self, collection: &str, id: &str, versions: Option<&[i64]>) -> Result<usize, StoreError>;
    /// Saves a status resource.
    fn put_status(&self, status: &StatusResource) -> Result<(), StoreError>;
    /// A status resource.
    fn status(&self, id: &str) -> Result<Option<StatusResource>, StoreError>;
}

/// Reads the version fields of an object: (id, type, version micros, version text, spec_version).
pub fn object_meta(o: &Value, date_added: i64) -> Result<(String, String, i64, String, String), String> {
    let id = o.get("id").and_then(Value::as_str).ok_or("object has no \"id\"")?;
    if !kizuna_stix::ids::is_stix_id(id) {
        return Err(format!("{id:?} is not a STIX identifier (type--UUID)"));
    }
    let ty = o.get("type").and_then(Value::as_str).ok_or("object has no \"type\"")?;
    if !id.starts_with(ty) || id.as_bytes().get(ty.len()) != Some(&b'-') {
        return Err(format!("id {id:?} does not match type {ty:?}"));
    }
    let spec = o.get("spec_version").and_then(Value::as_str).unwrap_or("2.0");
    if spec != "2.0" && spec != "2.1" {
        return Err(format!("spec_version {spec:?} is not supported"));
    }
    let (vtext, v) = match o.get("modified").or_else(|| o.get("created")).and_then(Value::as_str) {
        Some(t) => {
            let ts = kizuna_stix::parse_time(t).ok_or_else(|| format!("version {t:?} is not a timestamp"))?;
            (t.to_owned(), ts.as_micros())
        }
        None => (kizuna_stix::stix_time_micros(kizuna_model::Timestamp::from_micros(date_added)), date_added),
    };
    Ok((id.to_owned(), ty.to_owned(), v, vtext, spec.to_owned()))
}

#[derive(Default)]
struct Collection {
    info: Option<CollectionInfo>,
    entries: BTreeMap<u64, Entry>,
    /// (date_added, seq) in seq order: date_added never decreases along it.
    added: Vec<(i64, u64)>,
    by_id: HashMap<Arc<str>, Vec<u64>>,
    last_added: i64,
}

#[derive(Default)]
struct Inner {
    collections: BTreeMap<String, Collection>,
    statuses: HashMap<String, StatusResource>,
    seq: u64,
}

/// Objects in memory (like medallion's memory backend, but indexed): for tests, benchmarks and
/// caches. Loses everything on restart; the hub uses the SQLite store.
#[derive(Default, Clone)]
pub struct MemoryStore {
    inner: Arc<RwLock<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl ObjectStore for MemoryStore {
    fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        Ok(self.read().collections.values().filter_map(|c| c.info.clone()).collect())
    }

    fn put_collection(&self, info: &CollectionInfo) -> Result<(), StoreError> {
        self.write().collections.entry(info.id.clone()).or_default().info = Some(info.clone());
        Ok(())
    }

    fn scan(
        &self,
        collection: &str,
        after_seq: u64,
        added_after: Option<i64>,
        visit: &mut dyn FnMut(&Entry, &[Sibling]) -> bool,
    ) -> Result<(), StoreError> {
        let g = self.read();
        let c = g.collections.get(collection).ok_or_else(|| StoreError::NoCollection(collection.into()))?;
        let start = match added_after {
            Some(t) => {
                let i = c.added.partition_point(|(d, _)| *d <= t);
                c.added.get(i).map(|(_, s)| (*s).max(after_seq + 1)).unwrap_or(u64::MAX)
            }
            None => after_seq.saturating_add(1),
        };
        let mut sib = Vec::new();
        for e in c.entries.range(start..).map(|(_, e)| e) {
            sib.clear();
            match c.by_id.get(&e.id) {
                Some(seqs) if seqs.len() > 1 => sib.extend(
                    seqs.iter()
                        .filter_map(|s| c.entries.get(s))
                        .map(|x| Sibling { version: x.version, spec_version: x.spec_version.clone() }),
                ),
                _ => sib.push(Sibling { version: e.version, spec_version: e.spec_version.clone() }),
            }
            if !visit(e, &sib) {
                break;
            }
        }
        Ok(())
    }

    fn versions(&self, collection: &str, id: &str) -> Result<Vec<Entry>, StoreError> {
        let g = self.read();
        let c = g.collections.get(collection).ok_or_else(|| StoreError::NoCollection(collection.into()))?;
        let mut v: Vec<Entry> =
            c.by_id.get(id).into_iter().flatten().filter_map(|s| c.entries.get(s)).cloned().collect();
        v.sort_by_key(|e| (e.version, e.seq));
        Ok(v)
    }

    fn add(&self, collection: &str, objects: Vec<NewObject>, now: i64) -> Result<Vec<AddResult>, StoreError> {
        let mut g = self.write();
        let Inner { collections, seq, .. } = &mut *g;
        let c = collections.get_mut(collection).ok_or_else(|| StoreError::NoCollection(collection.into()))?;
        let date_added = now.max(c.last_added);
        c.last_added = date_added;
        let mut out = Vec::with_capacity(objects.len());
        for n in objects {
            let (id, ty, version, vtext, spec) = match object_meta(&n.object, date_added) {
                Ok(m) => m,
                Err(message) => {
                    out.push(AddResult::Failed {
                        id: n.object.get("id").and_then(Value::as_str).map(str::to_owned),
                        version: None,
                        message,
                    });
                    continue;
                }
            };
            let dup = c
                .by_id
                .get(id.as_str())
                .is_some_and(|v| v.iter().any(|s| c.entries.get(s).is_some_and(|e| e.version == version)));
            if dup {
                out.push(AddResult::Duplicate { id, version: vtext });
                continue;
            }
            *seq += 1;
            let id: Arc<str> = id.into();
            let e = Entry {
                seq: *seq,
                id: id.clone(),
                stix_type: ty.into(),
                version,
                version_text: vtext.clone().into(),
                spec_version: spec.into(),
                date_added,
                json: n.object.to_string().into(),
                labels: Arc::new(n.labels),
            };
            c.entries.insert(*seq, e);
            c.added.push((date_added, *seq));
            c.by_id.entry(id.clone()).or_default().push(*seq);
            out.push(AddResult::Added { id: id.to_string(), version: vtext });
        }
        Ok(out)
    }

    fn delete(&self, collection: &str, id: &str, versions: Option<&[i64]>) -> Result<usize, StoreError> {
        let mut g = self.write();
        let c = g.collections.get_mut(collection).ok_or_else(|| StoreError::NoCollection(collection.into()))?;
        let Some(seqs) = c.by_id.get_mut(id) else { return Ok(0) };
        let mut gone = Vec::new();
        seqs.retain(|s| {
            let hit = versions.is_none_or(|v| c.entries.get(s).is_some_and(|e| v.contains(&e.version)));
            if hit {
                gone.push(*s);
            }
            !hit
        });
        for s in &gone {
            c.entries.remove(s);
        }
        c.added.retain(|(_, s)| !gone.contains(s));
        Ok(gone.len())
    }

    fn put_status(&self, status: &StatusResource) -> Result<(), StoreError> {
        self.write().statuses.insert(status.id.clone(), status.clone());
        Ok(())
    }

    fn status(&self, id: &str) -> Result<Option<StatusResource>, StoreError> {
        Ok(self.read().statuses.get(id).cloned())
    }
}
