//! kizuna indicators and aggregated observations → STIX 2.1 objects and bundles.

use std::collections::BTreeSet;

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
use serde_json::{Map, Value, json};

use crate::aliases::AliasTable;
use crate::tlp::{TlpStyle, marking_id, marking_object};
use crate::{KIZUNA_EXTENSION, ids, pattern, stix_time};

/// The fixed `created`/`modified` of objects kizuna defines once (extension-definition, the
/// kizuna identity, malware families).
const DEFINED: &str = "2026-01-01T00:00:00.000Z";

/// Where an imported indicator came from, carried on when it is exported again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The organisation (partner, other hub) it was imported from.
    pub origin: String,
    /// Its id there (STIX id or MISP attribute uuid).
    pub original_id: String,
    /// The identity that created it there (`created_by_ref`'s name), if known.
    pub created_by: Option<String>,
}

/// Export settings.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// This hub's organisation name: the identity of objects it produces.
    pub producer: String,
    /// Which TLP marking ids to reference.
    pub tlp_style: TlpStyle,
    /// Purpose the data is shared for, when the item names none ("prevention", …).
    pub purpose: String,
    /// Malware family names.
    pub aliases: AliasTable,
    /// Contact of the producer (its identity's `contact_information`).
    pub contact: Option<String>,
}

impl ExportOptions {
    /// Options for a producer with defaults (TLP 1.0 ids where available, purpose
    /// "prevention", no alias table).
    pub fn new(producer: impl Into<String>) -> Self {
        ExportOptions {
            producer: producer.into(),
            tlp_style: TlpStyle::default(),
            purpose: "prevention".into(),
            aliases: AliasTable::new(),
            contact: None,
        }
    }
}

/// One indicator to export.
#[derive(Debug, Clone, Copy)]
pub struct ExportItem<'a> {
    /// The indicator.
    pub indicator: &'a Indicator,
    /// When kizuna first stored it (the STIX `created`).
    pub created: Timestamp,
    /// When it last changed (the STIX `modified`: bumps with every new version).
    pub modified: Timestamp,
    /// Organisations named as its recipients (TLP:RED / AMBER+STRICT addressees).
    pub recipients: &'a [String],
    /// Where it came from, when imported.
    pub provenance: Option<&'a Provenance>,
    /// Purpose, when it differs from [`ExportOptions::purpose`].
    pub purpose: Option<&'a str>,
}

/// An aggregate of observations of one value, exported as observed-data and a sighting of the
/// value's indicator (`sighting_of_ref` is the indicator's id, UUIDv5 of its key, so the
/// sighting refers to the same object an export of the indicator carries).
///
/// The object ids derive from the indicator and the sighting organisation, so a new aggregate
/// of the same indicator (a new count, a wider TLP) is a new version (`modified`) of the same
/// objects.
#[derive(Debug, Clone)]
pub struct SightingItem {
    /// Kind of the value.
    pub kind: IndicatorKind,
    /// Canonical value.
    pub value: String,
    /// How many observations.
    pub count: u64,
    /// First observation.
    pub first_seen: Timestamp,
    /// Last observation.
    pub last_seen: Timestamp,
    /// TLP of the aggregate (the narrowest of the observations it counts).
    pub tlp: Tlp,
    /// Sharing groups that may receive it (kizuna extension).
    pub sharing_groups: Vec<String>,
    /// Legal basis of acting on it (kizuna extension).
    pub legal_basis: LegalBasis,
    /// Organisation that saw it (`None`: the producer).
    pub where_sighted: Option<String>,
    /// The STIX `created` of the objects (fixed across versions).
    pub created: Timestamp,
    /// The STIX `modified` (bumps with every new aggregate).
    pub modified: Timestamp,
    /// Published as withdrawn (`revoked`): the indicator is no longer active.
    pub revoked: bool,
}

/// The kizuna extension-definition object (STIX 2.1 section 7.3).
pub fn extension_definition() -> Value {
    json!({
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": KIZUNA_EXTENSION,
        "created_by_ref": ids::object_id("identity", "kizuna"),
        "created": DEFINED,
        "modified": DEFINED,
        "name": "kizuna sharing properties",
        "description": "Audience, legal ground and provenance that kizuna keeps with every indicator.",
        "schema": "Property extension. legal_basis (string: consent | legitimate-business | emergency-evacuation): the legal ground of acting on the data. purpose (string): what it is shared for. category (string): the ENISA RSIT / IntelMQ classification.type. source (string): the feed or sensor it came from. sharing_groups (list of string): named sharing groups that may receive it. recipients (list of string): organisations named as its recipients. origin (string), original_id (string), original_created_by (string): provenance of data imported from another party.",
        "version": "1.0.0",
        "extension_types": ["property-extension"]
    })
}

/// The identity object of an organisation.
pub fn identity(org: &str) -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": ids::object_id("identity", org),
        "created": DEFINED,
        "modified": DEFINED,
        "name": org,
        "identity_class": "organization"
    })
}

/// The identity object of an organisation with its contact (`contact_information`).
pub fn identity_with_contact(org: &str, contact: Option<&str>) -> Value {
    let mut o = identity(org);
    if let Some(c) = contact.filter(|c| !c.is_empty()) {
        o["contact_information"] = c.into();
    }
    o
}

/// STIX `indicator_types` for a kizuna category.
pub fn indicator_types(c: ClassificationType) -> &'static str {
    use ClassificationType as C;
    match c {
        C::Tor | C::Proxy => "anonymization",
        C::InfectedSystem | C::SystemCompromise | C::ApplicationCompromise => "compromised",
        C::Scanner | C::BruteForce | C::Sniffing | C::IdsAlert => "anomalous-activity",
        C::Other | C::Undetermined | C::Test => "unknown",
        _ => "malicious-activity",
    }
}

/// The STIX indicator object of one item.
pub fn indicator_object(item: &ExportItem<'_>, opts: &ExportOptions) -> Value {
    let i = item.indicator;
    let created = item.created;
    let modified = item.modified.max(created);
    let valid_from = i.first_seen;
    let valid_until =
        if i.expires > valid_from { i.expires } else { Timestamp::from_micros(valid_from.as_micros() + 1000) };
    let creator = item.provenance.and_then(|p| p.created_by.as_deref()).unwrap_or(&opts.producer);
    let mut ext = Map::new();
    ext.insert("extension_type".into(), "property-extension".into());
    ext.insert("legal_basis".into(), i.legal_basis.as_str().into());
    ext.insert("purpose".into(), item.purpose.unwrap_or(&opts.purpose).into());
    ext.insert("category".into(), i.category.as_str().into());
    ext.insert("source".into(), i.source.clone().into());
    if !i.sharing_groups.is_empty() {
        ext.insert("sharing_groups".into(), i.sharing_groups.clone().into());
    }
    if !item.recipients.is_empty() {
        ext.insert("recipients".into(), item.recipients.to_vec().into());
    }
    if let Some(p) = item.provenance {
        ext.insert("origin".into(), p.origin.clone().into());
        ext.insert("original_id".into(), p.original_id.clone().into());
        if let Some(c) = &p.created_by {
            ext.insert("original_created_by".into(), c.clone().into());
        }
    }
    let mut o = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": ids::indicator_id(&i.key()),
        "created_by_ref": ids::object_id("identity", creator),
        "created": stix_time(created),
        "modified": stix_time(modified),
        "name": format!("{} {}", i.kind, i.value),
        "indicator_types": [indicator_types(i.category)],
        "pattern": pattern::write(i.kind, &i.value),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": stix_time(valid_from),
        "valid_until": stix_time(valid_until),
        "confidence": i.confidence.min(100),
        "labels": [i.category.as_str()],
        "object_marking_refs": [marking_id(i.tlp, opts.tlp_style)],
        "extensions": { KIZUNA_EXTENSION: Value::Object(ext) }
    });
    if !i.reason.is_empty() {
        o["description"] = i.reason.clone().into();
    }
    o
}

/// The malware object of a family (canonical name, aliases from the table).
pub fn malware_object(name: &str, opts: &ExportOptions) -> Value {
    let canonical = opts.aliases.canonical(name);
    let fam = opts.aliases.family(&canonical);
    let mut o = json!({
        "type": "malware",
        "spec_version": "2.1",
        "id": ids::object_id("malware", &canonical),
        "created_by_ref": ids::object_id("identity", &opts.producer),
        "created": DEFINED,
        "modified": DEFINED,
        "name": canonical,
        "is_family": true,
        "malware_types": ["unknown"],
        "object_marking_refs": [marking_id(Tlp::Clear, opts.tlp_style)]
    });
    if let Some(f) = fam {
        let mut aliases: Vec<String> = f.aliases.iter().cloned().collect();
        if f.display != canonical {
            aliases.insert(0, f.display.clone());
        }
        if !aliases.is_empty() {
            o["aliases"] = aliases.into();
        }
    }
    o
}

/// Builds a bundle: adds objects once by id, plus every marking-definition and identity they
/// reference.
#[derive(Debug)]
pub struct BundleBuilder {
    opts: ExportOptions,
    objects: Vec<Value>,
    ids: BTreeSet<String>,
    tlps: BTreeSet<Tlp>,
    identities: BTreeSet<String>,
    uses_extension: bool,
}

impl BundleBuilder {
    /// An empty bundle.
    pub fn new(opts: ExportOptions) -> Self {
        BundleBuilder {
            opts,
            objects: Vec::new(),
            ids: BTreeSet::new(),
            tlps: BTreeSet::new(),
            identities: BTreeSet::new(),
            uses_extension: false,
        }
    }

    /// The options.
    pub fn options(&self) -> &ExportOptions {
        &self.opts
    }

    fn push(&mut self, o: Value) {
        if let Some(id) = o.get("id").and_then(Value::as_str)
            && self.ids.insert(id.to_owned())
        {
            self.objects.push(o);
        }
    }

    /// Adds an indicator, its malware family and the `indicates` relationship.
    pub fn add_indicator(&mut self, item: &ExportItem<'_>) {
        let o = indicator_object(item, &self.opts);
        let creator = item.provenance.and_then(|p| p.created_by.clone()).unwrap_or_else(|| self.opts.producer.clone());
        self.identities.insert(creator);
        self.tlps.insert(item.indicator.tlp);
        self.uses_extension = true;
        let ind_id = o["id"].as_str().unwrap_or_default().to_owned();
        let created = o["created"].clone();
        let modified = o["modified"].clone();
        self.push(o);
        if let Some(m) = &item.indicator.malware {
            let mo = malware_object(m, &self.opts);
            let mal_id = mo["id"].as_str().unwrap_or_default().to_owned();
            self.tlps.insert(Tlp::Clear);
            self.push(mo);
            self.push(json!({
                "type": "relationship",
                "spec_version": "2.1",
                "id": ids::object_id("relationship", &format!("indicates:{ind_id}:{mal_id}")),
                "created_by_ref": ids::object_id("identity", &self.opts.producer),
                "created": created,
                "modified": modified,
                "relationship_type": "indicates",
                "source_ref": ind_id,
                "target_ref": mal_id,
                "object_marking_refs": [marking_id(item.indicator.tlp, self.opts.tlp_style)]
            }));
            self.identities.insert(self.opts.producer.clone());
        }
    }

    /// Adds observed-data (with the observed SCO) and a sighting of the value's indicator
    /// ([`sighting_objects`]).
    pub fn add_sighting(&mut self, s: &SightingItem) {
        self.tlps.insert(s.tlp);
        self.identities.insert(s.where_sighted.clone().unwrap_or_else(|| self.opts.producer.clone()));
        self.uses_extension = true;
        for o in sighting_objects(s, &self.opts) {
            self.push(o);
        }
    }

    /// Adds any STIX object as is.
    pub fn add_object(&mut self, o: Value) {
        self.push(o);
    }

    /// The objects added so far, without the definitions they reference.
    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    /// The bundle: definitions (markings, identities, extension-definition) first, then the
    /// objects in the order added. Its id derives from the objects' ids and versions.
    pub fn finish(self) -> Value {
        let mut all = Vec::with_capacity(self.objects.len() + 8);
        for t in &self.tlps {
            all.push(marking_object(*t, self.opts.tlp_style));
        }
        let mut identities = self.identities.clone();
        if self.uses_extension {
            identities.insert("kizuna".into());
        }
        for org in &identities {
            let contact = if *org == self.opts.producer { self.opts.contact.as_deref() } else { None };
            all.push(identity_with_contact(org, contact));
        }
        if self.uses_extension {
            all.push(extension_definition());
        }
        all.extend(self.objects);
        let mut h = String::new();
        for o in &all {
            h.push_str(o.get("id").and_then(Value::as_str).unwrap_or(""));
            h.push('|');
            h.push_str(o.get("modified").and_then(Value::as_str).unwrap_or(""));
            h.push('\n');
        }
        json!({ "type": "bundle", "id": format!("bundle--{}", ids::uuid_for(&h)), "objects": all })
    }
}

/// The STIX id of the sighting [`sighting_objects`] makes for `s` (stable across versions).
pub fn sighting_id(s: &SightingItem, opts: &ExportOptions) -> String {
    let (ind, seer) = sighting_names(s, opts);
    ids::object_id("sighting", &format!("{ind}:{seer}"))
}

fn sighting_names(s: &SightingItem, opts: &ExportOptions) -> (String, String) {
    let key = kizuna_model::indicator_key(s.kind, &s.value);
    (ids::indicator_id(&key), s.where_sighted.clone().unwrap_or_else(|| opts.producer.clone()))
}

/// The objects of one aggregate: the observed SCO, the observed-data naming it, and the
/// sighting of the value's indicator (`where_sighted_refs` the sighting organisation, by
/// default the producer; the kizuna extension carries sharing groups and legal basis). Every
/// object carries the aggregate's TLP marking. The SCO has no version of its own (STIX 2.1
/// SCOs have no `modified`); observed-data and sighting keep their ids across aggregates.
pub fn sighting_objects(s: &SightingItem, opts: &ExportOptions) -> [Value; 3] {
    let (sco_type, contributing, mut sco) = sco_of(s.kind, &s.value);
    let sco_id = ids::sco_id(sco_type, &contributing);
    let marking = marking_id(s.tlp, opts.tlp_style);
    sco["id"] = sco_id.clone().into();
    sco["object_marking_refs"] = json!([marking]);
    let first = stix_time(s.first_seen);
    let last = stix_time(s.last_seen.max(s.first_seen));
    let created = stix_time(s.created);
    let modified = stix_time(s.modified.max(s.created));
    let (ind_id, seer) = sighting_names(s, opts);
    let seer_id = ids::object_id("identity", &seer);
    let name = format!("{ind_id}:{seer}");
    let od_id = ids::object_id("observed-data", &name);
    let count = s.count.clamp(1, 999_999_999);
    let mut od = json!({
        "type": "observed-data",
        "spec_version": "2.1",
        "id": od_id,
        "created_by_ref": seer_id,
        "created": created,
        "modified": modified,
        "first_observed": first,
        "last_observed": last,
        "number_observed": count,
        "object_refs": [sco_id],
        "object_marking_refs": [marking]
    });
    let mut ext = Map::new();
    ext.insert("extension_type".into(), "property-extension".into());
    ext.insert("legal_basis".into(), s.legal_basis.as_str().into());
    ext.insert("purpose".into(), opts.purpose.clone().into());
    if !s.sharing_groups.is_empty() {
        ext.insert("sharing_groups".into(), s.sharing_groups.clone().into());
    }
    let mut sighting = json!({
        "type": "sighting",
        "spec_version": "2.1",
        "id": ids::object_id("sighting", &name),
        "created_by_ref": seer_id,
        "created": created,
        "modified": modified,
        "first_seen": first,
        "last_seen": last,
        "count": count,
        "sighting_of_ref": ind_id,
        "observed_data_refs": [od_id],
        "where_sighted_refs": [seer_id],
        "object_marking_refs": [marking],
        "extensions": { KIZUNA_EXTENSION: Value::Object(ext) }
    });
    if s.revoked {
        od["revoked"] = true.into();
        sighting["revoked"] = true.into();
    }
    [sco, od, sighting]
}

/// The SCO of a value: (type, canonical JSON of its id-contributing properties, object).
fn sco_of(kind: IndicatorKind, value: &str) -> (&'static str, String, Value) {
    let v = match kind {
        IndicatorKind::Ip => value.strip_suffix("/32").or_else(|| value.strip_suffix("/128")).unwrap_or(value),
        _ => value,
    };
    let (ty, body) = match kind {
        IndicatorKind::Url => ("url", json!({ "value": v })),
        IndicatorKind::Domain => ("domain-name", json!({ "value": v })),
        IndicatorKind::Ip if v.contains(':') => ("ipv6-addr", json!({ "value": v })),
        IndicatorKind::Ip => ("ipv4-addr", json!({ "value": v })),
        IndicatorKind::Sha256 => ("file", json!({ "hashes": { "SHA-256": v } })),
        IndicatorKind::Md5 => ("file", json!({ "hashes": { "MD5": v } })),
        IndicatorKind::Sha1 => ("file", json!({ "hashes": { "SHA-1": v } })),
    };
    let contributing = body.to_string(); // serde_json writes sorted keys (BTreeMap) with no spaces
    let mut o = body;
    o["type"] = ty.into();
    o["spec_version"] = "2.1".into();
    (ty, contributing, o)
}
