//! [`SharingStore`]: partners (with sharing groups, TLP cap, per-collection rights and hashed
//! credentials), TAXII collections, the TAXII object store (every object version with its
//! `date_added` and audience labels), status resources, poll state per remote collection, and
//! the malware family alias table.
//!
//! TAXII object versions get a store-wide sequence number in commit order, and a collection's
//! `date_added` never decreases along it, so one number is both the page cursor and the
//! `added_after` order (see `kizuna-taxii`).

use kizuna_model::{Timestamp, Tlp};

use crate::Result;

/// Member ISP (also reachable as a sharing recipient) or partner centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyKind {
    /// A partner centre: another ISAC, a CSIRT, another kizuna hub.
    Partner,
    /// A member ISP of this hub.
    Member,
}

impl PartyKind {
    /// Stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            PartyKind::Partner => "partner",
            PartyKind::Member => "member",
        }
    }
}

/// A partner to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerSpec {
    /// Organisation name (what items name as recipients; the origin of what it sends).
    pub name: String,
    /// Partner or member.
    pub kind: PartyKind,
    /// Sharing groups it belongs to.
    pub groups: Vec<String>,
    /// Narrowest TLP it is cleared for.
    pub tlp_max: Option<Tlp>,
    /// TAXII collections it may read (`*`: all).
    pub can_read: Vec<String>,
    /// TAXII collections it may write (`*`: all).
    pub can_write: Vec<String>,
}

/// A stored partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRecord {
    /// Store id.
    pub id: u64,
    /// The fields.
    pub spec: PartnerSpec,
    /// When added.
    pub created: Timestamp,
}

/// How a credential is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// HTTP Basic user + password.
    Basic,
    /// API key (`Authorization: Token …` / `Bearer …`).
    Key,
}

/// A stored credential (hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// Partner name.
    pub partner: String,
    /// Kind.
    pub kind: CredentialKind,
    /// User name (Basic) or the key's first characters (Key), for recognising it.
    pub user: String,
    /// SHA-256 hex of the password or key.
    pub secret_sha256: String,
    /// When added.
    pub created: Timestamp,
}

/// A TAXII collection's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiiCollectionRecord {
    /// Collection id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// TLP of objects posted without a TLP marking.
    pub default_tlp: Tlp,
    /// Sharing groups of objects posted without kizuna labels.
    pub default_groups: Vec<String>,
    /// Never serve objects back to their origin (kizuna's export views).
    pub no_echo: bool,
}

/// An object version to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTaxiiObject {
    /// STIX id.
    pub id: String,
    /// STIX type.
    pub stix_type: String,
    /// Version, microseconds.
    pub version: i64,
    /// Version as written.
    pub version_text: String,
    /// `spec_version`.
    pub spec_version: String,
    /// The object JSON.
    pub json: String,
    /// Audience labels as JSON (`{"tlp","groups","recipients","origin"}`).
    pub labels_json: String,
}

/// A stored object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiiObjectRow {
    /// Store-wide sequence number.
    pub seq: u64,
    /// When the collection received it, microseconds.
    pub date_added: i64,
    /// How many versions of this id the collection holds.
    pub n_versions: u64,
    /// The object and its labels.
    pub object: NewTaxiiObject,
}

/// Durable sharing state.
pub trait SharingStore: Send + Sync {
    /// Adds a partner; the name must be new.
    fn add_partner(&self, spec: &PartnerSpec, now: Timestamp) -> Result<PartnerRecord>;
    /// Every partner, by id.
    fn partners(&self) -> Result<Vec<PartnerRecord>>;
    /// Adds a credential to a partner (by name).
    fn add_partner_credential(&self, cred: &CredentialRecord) -> Result<()>;
    /// Every credential.
    fn partner_credentials(&self) -> Result<Vec<CredentialRecord>>;
    /// Creates or replaces a collection's settings.
    fn put_taxii_collection(&self, c: &TaxiiCollectionRecord) -> Result<()>;
    /// Every collection.
    fn taxii_collections(&self) -> Result<Vec<TaxiiCollectionRecord>>;
    /// Adds object versions in one transaction; `true` for each stored, `false` for a version
    /// already present. `date_added` is raised to the collection's newest if the clock went back.
    fn add_taxii_objects(&self, collection: &str, objects: &[NewTaxiiObject], date_added: i64) -> Result<Vec<bool>>;
    /// Up to `limit` versions with `seq > after_seq` (and `date_added > added_after`), in order.
    fn taxii_objects_after(
        &self,
        collection: &str,
        after_seq: u64,
        added_after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<TaxiiObjectRow>>;
    /// Every version of one object, oldest version first.
    fn taxii_object_versions(&self, collection: &str, id: &str) -> Result<Vec<TaxiiObjectRow>>;
    /// Deletes versions of an object (all when `None`); returns how many.
    fn delete_taxii_object(&self, collection: &str, id: &str, versions: Option<&[i64]>) -> Result<usize>;
    /// Saves a status resource (JSON).
    fn put_taxii_status(&self, id: &str, json: &str, now: Timestamp) -> Result<()>;
    /// A status resource.
    fn taxii_status(&self, id: &str) -> Result<Option<String>>;
    /// Records where polling a remote collection stopped.
    fn set_poll_state(&self, remote: &str, added_after: Option<&str>, now: Timestamp) -> Result<()>;
    /// Where polling a remote collection stopped.
    fn poll_state(&self, remote: &str) -> Result<Option<String>>;
    /// Replaces the malware alias table (kizuna's `{name: [aliases]}` JSON).
    fn set_aliases(&self, json: &str) -> Result<()>;
    /// The alias table, if one was set.
    fn aliases(&self) -> Result<Option<String>>;
}

/// Conformance checks every backend must pass.
pub mod conformance {
    use super::*;

    fn obj(id: &str, version: i64, spec: &str) -> NewTaxiiObject {
        NewTaxiiObject {
            id: id.into(),
            stix_type: "indicator".into(),
            version,
            version_text: format!("v{version}"),
            spec_version: spec.into(),
            json: format!("{{\"id\":\"{id}\",\"v\":{version}}}"),
            labels_json: "{\"tlp\":\"GREEN\"}".into(),
        }
    }

    /// Runs every check on an empty store.
    pub fn run_all(s: &dyn SharingStore) {
        partners_and_credentials(s);
        objects_order_and_versions(s);
        status_poll_state_aliases(s);
    }

    /// Partners keep their fields; names are unique; credentials are kept hashed.
    pub fn partners_and_credentials(s: &dyn SharingStore) {
        let spec = PartnerSpec {
            name: "cert-x".into(),
            kind: PartyKind::Partner,
            groups: vec!["apac".into(), "jp-isps".into()],
            tlp_max: Some(Tlp::Amber),
            can_read: vec!["*".into()],
            can_write: vec!["exchange".into()],
        };
        let p = s.add_partner(&spec, Timestamp::from_secs(10)).expect("add partner");
        assert_eq!(p.spec, spec);
        assert!(s.add_partner(&spec, Timestamp::from_secs(11)).is_err(), "duplicate name refused");
        assert_eq!(s.partners().expect("partners"), vec![p]);
        let c = CredentialRecord {
            partner: "cert-x".into(),
            kind: CredentialKind::Basic,
            user: "cert-x".into(),
            secret_sha256: "ab".repeat(32),
            created: Timestamp::from_secs(12),
        };
        s.add_partner_credential(&c).expect("credential");
        let bad = CredentialRecord { partner: "nobody".into(), ..c.clone() };
        assert!(s.add_partner_credential(&bad).is_err(), "credential of an unknown partner refused");
        assert_eq!(s.partner_credentials().expect("creds"), vec![c]);
    }

    /// Sequence order, date_added never decreasing, duplicates, versions, added_after, delete.
    pub fn objects_order_and_versions(s: &dyn SharingStore) {
        let col = TaxiiCollectionRecord {
            id: "c1".into(),
            title: "t".into(),
            description: String::new(),
            default_tlp: Tlp::Amber,
            default_groups: vec!["g".into()],
            no_echo: true,
        };
        s.put_taxii_collection(&col).expect("collection");
        assert_eq!(s.taxii_collections().expect("collections"), vec![col]);
        let r = s
            .add_taxii_objects("c1", &[obj("indicator--a", 1, "2.1"), obj("indicator--b", 1, "2.1")], 1000)
            .expect("add");
        assert_eq!(r, vec![true, true]);
        // clock went back: date_added is raised, never lowered
        let r = s
            .add_taxii_objects("c1", &[obj("indicator--a", 2, "2.1"), obj("indicator--b", 1, "2.1")], 500)
            .expect("add");
        assert_eq!(r, vec![true, false], "same id+version is a duplicate");
        let all = s.taxii_objects_after("c1", 0, None, 100).expect("scan");
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq && w[0].date_added <= w[1].date_added));
        assert_eq!(all[2].date_added, 1000);
        assert_eq!(all[0].n_versions, 2);
        assert_eq!(all[1].n_versions, 1);
        let page = s.taxii_objects_after("c1", all[0].seq, None, 1).expect("page");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].seq, all[1].seq);
        assert!(s.taxii_objects_after("c1", 0, Some(1000), 10).expect("after").is_empty());
        let v = s.taxii_object_versions("c1", "indicator--a").expect("versions");
        assert_eq!(v.iter().map(|r| r.object.version).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(v[1].object, obj("indicator--a", 2, "2.1"));
        assert_eq!(s.delete_taxii_object("c1", "indicator--a", Some(&[1])).expect("delete"), 1);
        assert_eq!(s.taxii_object_versions("c1", "indicator--a").expect("versions").len(), 1);
        assert_eq!(s.delete_taxii_object("c1", "indicator--a", None).expect("delete"), 1);
        assert!(s.add_taxii_objects("nope", &[obj("indicator--z", 1, "2.1")], 1).is_err(), "unknown collection");
    }

    /// Status resources, poll state and the alias table round-trip.
    pub fn status_poll_state_aliases(s: &dyn SharingStore) {
        s.put_taxii_status("s1", "{\"id\":\"s1\"}", Timestamp::from_secs(1)).expect("status");
        assert_eq!(s.taxii_status("s1").expect("status").as_deref(), Some("{\"id\":\"s1\"}"));
        assert_eq!(s.taxii_status("s2").expect("status"), None);
        assert_eq!(s.poll_state("r").expect("poll"), None);
        s.set_poll_state("r", Some("2026-03-05T00:00:00.000000Z"), Timestamp::from_secs(2)).expect("poll");
        assert_eq!(s.poll_state("r").expect("poll").as_deref(), Some("2026-03-05T00:00:00.000000Z"));
        assert_eq!(s.aliases().expect("aliases"), None);
        s.set_aliases("{\"Emotet\":[\"geodo\"]}").expect("aliases");
        assert_eq!(s.aliases().expect("aliases").as_deref(), Some("{\"Emotet\":[\"geodo\"]}"));
    }
}
