//! TAXII 2.1 for kizuna: the server ([`server`]: an axum router over an [`store::ObjectStore`],
//! mounted into the hub) and the polling client ([`client`]).
//!
//! Collections are either plain object collections partners write into, or views kizuna
//! publishes its indicators into ([`publish`]). Every object carries its audience labels
//! (TLP from its markings, sharing groups and named recipients from kizuna's STIX extension,
//! origin = the organisation that added it), and every read applies `kizuna-policy`.

#![warn(missing_docs)]

pub mod client;
pub mod server;
pub mod store;

use std::collections::HashMap;

use kizuna_policy::OwnedLabels;
use kizuna_stix::KIZUNA_EXTENSION;
use serde_json::Value;

pub use server::{Credential, Directory, Partner, Presented, StaticDirectory, TaxiiConfig, TaxiiServer, router};
pub use store::{CollectionInfo, MemoryStore, NewObject, ObjectStore};

/// The audience labels of a STIX object: TLP from its marking refs (well-known ids, or
/// marking-definitions among `context`), groups and recipients from kizuna's extension, else
/// the collection's defaults; origin is the organisation that adds it.
pub fn labels_of(o: &Value, context: &[Value], defaults: &OwnedLabels, origin: &str) -> OwnedLabels {
    let by_id: HashMap<&str, &Value> =
        context.iter().filter_map(|c| c.get("id").and_then(Value::as_str).map(|id| (id, c))).collect();
    let tlp = if o.get("type").and_then(Value::as_str) == Some("marking-definition") {
        Some(kizuna_model::Tlp::Clear)
    } else {
        kizuna_stix::import::object_tlp(o, &by_id)
    };
    let ext = o.get("extensions").and_then(|e| e.get(KIZUNA_EXTENSION));
    let list = |k: &str| -> Option<Vec<String>> {
        ext.and_then(|e| e.get(k))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
    };
    OwnedLabels {
        tlp: tlp.unwrap_or(defaults.tlp),
        groups: list("sharing_groups").unwrap_or_else(|| defaults.groups.clone()),
        recipients: list("recipients").unwrap_or_else(|| defaults.recipients.clone()),
        origin: Some(origin.to_owned()),
    }
}

/// Publishes kizuna indicators into a collection as STIX objects (a new version whenever an
/// indicator's `modified` changes), with their audience labels. `origin` is `None` for this
/// hub's own indicators and the source organisation for relayed ones (they are then never
/// served back to it).
pub fn publish(
    store: &dyn ObjectStore,
    collection: &str,
    items: &[(kizuna_stix::ExportItem<'_>, Option<String>)],
    opts: &kizuna_stix::ExportOptions,
    now: kizuna_model::Timestamp,
) -> Result<Vec<store::AddResult>, store::StoreError> {
    let objects = items
        .iter()
        .map(|(it, origin)| NewObject {
            object: kizuna_stix::export::indicator_object(it, opts),
            labels: OwnedLabels {
                tlp: it.indicator.tlp,
                groups: it.indicator.sharing_groups.clone(),
                recipients: it.recipients.to_vec(),
                origin: origin.clone(),
            },
        })
        .collect();
    store.add(collection, objects, now.as_micros())
}
