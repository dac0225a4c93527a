//! Sharing routes of the hub: the TAXII 2.1 server (`kizuna-taxii`) under `/taxii2/`, over the
//! hub's store: partners and credentials from [`SharingStore`], objects in its TAXII tables,
//! and the `kizuna-indicators` collection kept in step with the indicator store by
//! [`sync_indicators`] (a new object version for every indicator change; withdrawn or expired
//! indicators are published as `revoked`), which runs before every read of that collection.

use std::sync::Arc;

use axum::Router;
use kizuna_model::Timestamp;
use kizuna_policy::{OwnedLabels, Recipient, RecipientKind};
use kizuna_store::HubStore;
use kizuna_store::indicators::IndicatorStore;
use kizuna_store::sharing::{
    CredentialKind, NewTaxiiObject, PartyKind, SharingStore, TaxiiCollectionRecord, TaxiiObjectRow,
};
use kizuna_taxii::store::{
    AddResult, CollectionInfo, Entry, NewObject, ObjectStore, Sibling, StatusResource, StoreError,
};
use kizuna_taxii::{Credential, Directory, Partner, Presented, StaticDirectory, TaxiiConfig, TaxiiServer};
use serde_json::Value;

use crate::Hub;

/// The collection kizuna publishes its own indicators in.
pub const INDICATORS_COLLECTION: &str = "kizuna-indicators";

/// The producer identity of objects the hub publishes when syncing on read.
pub const PRODUCER: &str = "kizuna";

/// [`ObjectStore`] over the hub's [`SharingStore`].
pub struct HubObjects(pub Arc<dyn HubStore>);

fn sharing(s: &Arc<dyn HubStore>) -> &dyn SharingStore {
    &**s
}

fn backend(e: kizuna_store::StoreError) -> StoreError {
    match e {
        kizuna_store::StoreError::NotFound(what) => StoreError::NoCollection(what),
        other => StoreError::Backend(other.to_string()),
    }
}

fn labels_json(l: &OwnedLabels) -> String {
    serde_json::json!({"tlp": l.tlp.as_str(), "groups": l.groups, "recipients": l.recipients, "origin": l.origin})
        .to_string()
}

fn labels_from(s: &str) -> OwnedLabels {
    let v: Value = serde_json::from_str(s).unwrap_or(Value::Null);
    let list = |k: &str| -> Vec<String> {
        v[k].as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
    };
    OwnedLabels {
        // an unreadable label is treated as the narrowest audience, never a wider one
        tlp: v["tlp"].as_str().and_then(|t| t.parse().ok()).unwrap_or(kizuna_model::Tlp::Red),
        groups: list("groups"),
        recipients: list("recipients"),
        origin: v["origin"].as_str().map(str::to_owned),
    }
}

fn entry(r: TaxiiObjectRow) -> Entry {
    Entry {
        seq: r.seq,
        id: r.object.id.into(),
        stix_type: r.object.stix_type.into(),
        version: r.object.version,
        version_text: r.object.version_text.into(),
        spec_version: r.object.spec_version.into(),
        date_added: r.date_added,
        json: r.object.json.into(),
        labels: Arc::new(labels_from(&r.object.labels_json)),
    }
}

impl ObjectStore for HubObjects {
    fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        Ok(sharing(&self.0)
            .taxii_collections()
            .map_err(backend)?
            .into_iter()
            .map(|c| CollectionInfo {
                id: c.id,
                title: c.title,
                description: c.description,
                default_labels: OwnedLabels { tlp: c.default_tlp, groups: c.default_groups, ..OwnedLabels::default() },
                no_echo: c.no_echo,
            })
            .collect())
    }

    fn put_collection(&self, info: &CollectionInfo) -> Result<(), StoreError> {
        sharing(&self.0)
            .put_taxii_collection(&TaxiiCollectionRecord {
                id: info.id.clone(),
                title: info.title.clone(),
                description: info.description.clone(),
                default_tlp: info.default_labels.tlp,
                default_groups: info.default_labels.groups.clone(),
                no_echo: info.no_echo,
            })
            .map_err(backend)
    }

    fn scan(
        &self,
        collection: &str,
        after_seq: u64,
        added_after: Option<i64>,
        visit: &mut dyn FnMut(&Entry, &[Sibling]) -> bool,
    ) -> Result<(), StoreError> {
        if collection == INDICATORS_COLLECTION {
            // the view is brought up to date before every read: one query when nothing changed
            sync_indicators(&self.0, PRODUCER, Timestamp::now())?;
        }
        let s = sharing(&self.0);
        let mut after = after_seq;
        loop {
            let rows = s.taxii_objects_after(collection, after, added_after, 512).map_err(backend)?;
            if rows.is_empty() {
                if s.taxii_collections().map_err(backend)?.iter().all(|c| c.id != collection) {
                    return Err(StoreError::NoCollection(collection.into()));
                }
                return Ok(());
            }
            for r in rows {
                after = r.seq;
                let sib: Vec<Sibling> = if r.n_versions > 1 {
                    s.taxii_object_versions(collection, &r.object.id)
                        .map_err(backend)?
                        .into_iter()
                        .map(|v| Sibling { version: v.object.version, spec_version: v.object.spec_version.into() })
                        .collect()
                } else {
                    vec![Sibling { version: r.object.version, spec_version: r.object.spec_version.clone().into() }]
                };
                if !visit(&entry(r), &sib) {
                    return Ok(());
                }
            }
        }
    }

    fn versions(&self, collection: &str, id: &str) -> Result<Vec<Entry>, StoreError> {
        Ok(sharing(&self.0).taxii_object_versions(collection, id).map_err(backend)?.into_iter().map(entry).collect())
    }

    fn add(&self, collection: &str, objects: Vec<NewObject>, now: i64) -> Result<Vec<AddResult>, StoreError> {
        let mut rows = Vec::with_capacity(objects.len());
        let mut out: Vec<Option<AddResult>> = Vec::with_capacity(objects.len());
        for n in &objects {
            match kizuna_taxii::store::object_meta(&n.object, now) {
                Ok((id, ty, version, vtext, spec)) => {
                    rows.push(NewTaxiiObject {
                        id,
                        stix_type: ty,
                        version,
                        version_text: vtext,
                        spec_version: spec,
                        json: n.object.to_string(),
                        labels_json: labels_json(&n.labels),
                    });
                    out.push(None);
                }
                Err(message) => out.push(Some(AddResult::Failed {
                    id: n.object.get("id").and_then(Value::as_str).map(str::to_owned),
                    version: None,
                    message,
                })),
            }
        }
        let stored = sharing(&self.0).add_taxii_objects(collection, &rows, now).map_err(backend)?;
        let mut it = rows.into_iter().zip(stored);
        Ok(out
            .into_iter()
            .map(|o| match o {
                Some(failed) => failed,
                None => match it.next() {
                    Some((r, true)) => AddResult::Added { id: r.id, version: r.version_text },
                    Some((r, false)) => AddResult::Duplicate { id: r.id, version: r.version_text },
                    None => AddResult::Failed { id: None, version: None, message: "lost in the store".into() },
                },
            })
            .collect())
    }

    fn delete(&self, collection: &str, id: &str, versions: Option<&[i64]>) -> Result<usize, StoreError> {
        sharing(&self.0).delete_taxii_object(collection, id, versions).map_err(backend)
    }

    fn put_status(&self, status: &StatusResource) -> Result<(), StoreError> {
        let json = serde_json::json!({"request_timestamp": status.request_timestamp, "body": status.to_json()});
        sharing(&self.0).put_taxii_status(&status.id, &json.to_string(), Timestamp::now()).map_err(backend)
    }

    fn status(&self, id: &str) -> Result<Option<StatusResource>, StoreError> {
        let Some(text) = sharing(&self.0).taxii_status(id).map_err(backend)? else { return Ok(None) };
        let v: Value = serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))?;
        let b = &v["body"];
        let item =
            |x: &Value| (x["id"].as_str().unwrap_or("").to_owned(), x["version"].as_str().unwrap_or("").to_owned());
        let mut results = Vec::new();
        for s in b["successes"].as_array().into_iter().flatten() {
            let (id, version) = item(s);
            results.push(if s.get("message").is_some() {
                AddResult::Duplicate { id, version }
            } else {
                AddResult::Added { id, version }
            });
        }
        for f in b["failures"].as_array().into_iter().flatten() {
            let (id, version) = item(f);
            results.push(AddResult::Failed {
                id: Some(id),
                version: Some(version),
                message: f["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        Ok(Some(StatusResource {
            id: id.to_owned(),
            request_timestamp: v["request_timestamp"].as_str().unwrap_or("").to_owned(),
            results,
        }))
    }
}

/// Partners and credentials read from the store on every request (changes by `kizuna share
/// partner add` take effect at once).
pub struct HubDirectory(pub Arc<dyn HubStore>);

impl Directory for HubDirectory {
    fn authenticate(&self, p: &Presented) -> Option<Partner> {
        let s = sharing(&self.0);
        let partners = s.partners().ok()?;
        let creds = s.partner_credentials().ok()?;
        let mut d = StaticDirectory::default();
        for c in creds {
            let Some(rec) = partners.iter().find(|x| x.spec.name == c.partner) else { continue };
            let kind = match rec.spec.kind {
                PartyKind::Member => RecipientKind::Member,
                PartyKind::Partner => RecipientKind::Partner,
            };
            let mut recipient =
                Recipient::new(rec.spec.name.clone(), kind).with_groups(rec.spec.groups.iter().cloned());
            recipient.tlp_max = rec.spec.tlp_max;
            let cred = match c.kind {
                CredentialKind::Basic => Credential::Basic { user: c.user, password_sha256: c.secret_sha256 },
                CredentialKind::Key => Credential::Key { sha256: c.secret_sha256 },
            };
            d.entries.push((
                cred,
                Partner {
                    recipient,
                    can_read: rec.spec.can_read.iter().cloned().collect(),
                    can_write: rec.spec.can_write.iter().cloned().collect(),
                },
            ));
        }
        d.authenticate(p)
    }
}

/// Creates the `kizuna-indicators` collection if missing and publishes every indicator change
/// since the last sync; returns how many object versions were added.
pub fn sync_indicators(store: &Arc<dyn HubStore>, producer: &str, now: Timestamp) -> Result<usize, StoreError> {
    let objects = HubObjects(store.clone());
    if objects.collections()?.iter().all(|c| c.id != INDICATORS_COLLECTION) {
        objects.put_collection(&CollectionInfo {
            id: INDICATORS_COLLECTION.into(),
            title: "kizuna indicators".into(),
            description: "Indicators of this hub, each served only to partners its TLP and sharing groups allow".into(),
            default_labels: OwnedLabels { tlp: kizuna_model::Tlp::Amber, ..OwnedLabels::default() },
            no_echo: true,
        })?;
    }
    let cursor_key = format!("local:{INDICATORS_COLLECTION}");
    let s = sharing(store);
    let mut after: u64 = s.poll_state(&cursor_key).map_err(backend)?.and_then(|v| v.parse().ok()).unwrap_or(0);
    let opts = kizuna_stix::ExportOptions::new(producer);
    // An indicator whose source is a partner organisation (`<partner>` or `<partner>/<feed>`, as
    // `ImportedIndicator::with_provenance` writes it) came from that partner: it keeps that
    // origin, so it is never served back there.
    let partners: Vec<String> = s.partners().map_err(backend)?.into_iter().map(|p| p.spec.name).collect();
    let mut added = 0;
    loop {
        let recs = IndicatorStore::indicator_changes_since(&**store, after, 1000).map_err(backend)?;
        if recs.is_empty() {
            return Ok(added);
        }
        let mut batch = Vec::with_capacity(recs.len());
        for r in &recs {
            after = r.change_seq;
            let item = kizuna_stix::ExportItem {
                indicator: &r.indicator,
                created: r.created,
                modified: r.updated,
                recipients: &[],
                provenance: None,
                purpose: None,
            };
            let mut o = kizuna_stix::export::indicator_object(&item, &opts);
            if !r.is_publishable(now) {
                o["revoked"] = true.into();
            }
            batch.push(NewObject {
                object: o,
                labels: OwnedLabels {
                    tlp: r.indicator.tlp,
                    groups: r.indicator.sharing_groups.clone(),
                    recipients: vec![],
                    origin: partners
                        .iter()
                        .find(|p| r.indicator.source == **p || r.indicator.source.starts_with(&format!("{p}/")))
                        .cloned(),
                },
            });
        }
        added += objects
            .add(INDICATORS_COLLECTION, batch, now.as_micros())?
            .iter()
            .filter(|r| matches!(r, AddResult::Added { .. }))
            .count();
        s.set_poll_state(&cursor_key, Some(&after.to_string()), now).map_err(backend)?;
    }
}

/// The TAXII routes for the hub's router.
pub fn routes(hub: &Arc<Hub>) -> Router<Arc<Hub>> {
    let server = Arc::new(TaxiiServer {
        config: TaxiiConfig::default(),
        store: Arc::new(HubObjects(hub.store().clone())),
        directory: Arc::new(HubDirectory(hub.store().clone())),
    });
    kizuna_taxii::router(server)
}
