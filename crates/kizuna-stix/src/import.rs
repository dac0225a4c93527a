//! STIX 2.0/2.1 objects → kizuna indicators.

use std::collections::HashMap;

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value};
use serde_json::Value;

use crate::aliases::AliasTable;
use crate::tlp::{tlp_of_marking_id, tlp_of_marking_object};
use crate::{KIZUNA_EXTENSION, parse_time, pattern};

/// Import settings.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// TLP of objects with no TLP marking. AMBER by default: unmarked data is not public.
    pub default_tlp: Tlp,
    /// Legal basis of objects that state none.
    pub default_legal_basis: LegalBasis,
    /// Lifetime of indicators with no `valid_until`, from their `valid_from`.
    pub default_lifetime_secs: i64,
    /// Category of indicators whose type gives none.
    pub default_category: ClassificationType,
    /// Who the data comes from (the partner or feed): used as `source` when the producer is
    /// unknown, and as the provenance origin.
    pub origin: String,
    /// Malware family names.
    pub aliases: AliasTable,
    /// Time of the import (for indicators with no `valid_from`).
    pub now: Timestamp,
}

impl ImportOptions {
    /// Defaults for data from `origin`.
    pub fn new(origin: impl Into<String>, now: Timestamp) -> Self {
        ImportOptions {
            default_tlp: Tlp::Amber,
            default_legal_basis: LegalBasis::LegitimateBusiness,
            default_lifetime_secs: 30 * 86_400,
            default_category: ClassificationType::Blacklist,
            origin: origin.into(),
            aliases: AliasTable::new(),
            now,
        }
    }
}

/// One imported indicator with what kizuna keeps beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedIndicator {
    /// The indicator (canonical value, TLP, groups, legal basis, malware by canonical name).
    pub indicator: Indicator,
    /// The id of the STIX object (or MISP attribute uuid) it came from.
    pub original_id: String,
    /// Its `modified` (its version).
    pub modified: Timestamp,
    /// Name of the `created_by_ref` identity (or its id when the bundle does not define it).
    pub created_by: Option<String>,
    /// Named recipients (kizuna extension).
    pub recipients: Vec<String>,
    /// The organisation it first came from: the kizuna extension's `origin` when present
    /// (data relayed by another hub), else the import's origin.
    pub origin: String,
    /// Purpose (kizuna extension), if stated.
    pub purpose: Option<String>,
}

impl ImportedIndicator {
    /// The indicator as a hub stores it when it came from another party: its `source` becomes
    /// `<origin>/<source>` (just `<origin>` when they are the same), so the hub knows whose it
    /// is and never serves it back there (see `kizuna-hub`'s sharing sync).
    pub fn with_provenance(&self) -> Indicator {
        let mut i = self.indicator.clone();
        if i.source != self.origin && !i.source.starts_with(&format!("{}/", self.origin)) {
            i.source = format!("{}/{}", self.origin, i.source);
        }
        i
    }
}

/// A STIX `sighting` of an indicator: someone saw the indicator's value `count` times between
/// `first_seen` and `last_seen`. Kept in kizuna as one more source of the indicator (its
/// provenance lists who saw it, when and how often), with the sighting's TLP.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedSighting {
    /// The value's kind.
    pub kind: IndicatorKind,
    /// The canonical value seen.
    pub value: String,
    /// What the sighted indicator says it is (its category), else the import default.
    pub category: ClassificationType,
    /// The sighted indicator's STIX id (`sighting_of_ref`).
    pub sighting_of: String,
    /// How many times (`count`; 1 when absent).
    pub count: u64,
    /// First seen (`first_seen`, else `created`).
    pub first_seen: Timestamp,
    /// Last seen (`last_seen`, else `first_seen`).
    pub last_seen: Timestamp,
    /// TLP from the sighting's markings (else the import default).
    pub tlp: Tlp,
    /// Sharing groups (kizuna extension).
    pub sharing_groups: Vec<String>,
    /// Legal basis (kizuna extension, else the import default).
    pub legal_basis: LegalBasis,
    /// Who saw it: names of the `where_sighted_refs` identities (their ids when undefined).
    pub where_sighted: Vec<String>,
    /// Who reported it (`created_by_ref`'s name).
    pub created_by: Option<String>,
    /// The organisation it came from (the import's origin).
    pub origin: String,
    /// The sighting's STIX id.
    pub original_id: String,
    /// Lifetime of the resulting record after `last_seen`, seconds.
    pub lifetime_secs: i64,
}

impl ImportedSighting {
    /// The sighting as the indicator record update a hub stores: source
    /// `<origin>/sighting:<who saw it>`, first/last seen and count in the reason.
    pub fn as_indicator(&self) -> Indicator {
        let who = if self.where_sighted.is_empty() {
            self.created_by.clone().unwrap_or_else(|| self.origin.clone())
        } else {
            self.where_sighted.join(",")
        };
        Indicator {
            kind: self.kind,
            value: self.value.clone(),
            category: self.category,
            source: format!("{}/sighting:{who}", self.origin),
            confidence: 50,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            expires: Timestamp::from_micros(self.last_seen.as_micros() + self.lifetime_secs * 1_000_000),
            reason: format!(
                "sighted {} time{} by {who} from {} to {} (STIX {}, of {})",
                self.count,
                if self.count == 1 { "" } else { "s" },
                crate::stix_time(self.first_seen),
                crate::stix_time(self.last_seen),
                self.original_id,
                self.sighting_of
            ),
            malware: None,
            tlp: self.tlp,
            sharing_groups: self.sharing_groups.clone(),
            legal_basis: self.legal_basis,
        }
    }
}

/// An object that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position in the input (object index).
    pub index: usize,
    /// The object's id, if it had one.
    pub id: Option<String>,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "object {} ({}): {}", self.index, self.id.as_deref().unwrap_or("no id"), self.reason)
    }
}

/// What an import found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Indicators, in input order (a pattern with several values gives several).
    pub indicators: Vec<ImportedIndicator>,
    /// Sightings, one per value of the sighted indicator.
    pub sightings: Vec<ImportedSighting>,
    /// Objects that could not be used, with reasons.
    pub rejected: Vec<Rejection>,
    /// Objects of other types (identities, markings, reports, …), counted.
    pub other_objects: u64,
}

/// Why a document is not a STIX bundle at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a STIX bundle: {0}")]
pub struct NotABundle(pub String);

/// Imports a bundle (`{"type":"bundle","objects":[…]}`), a TAXII envelope
/// (`{"objects":[…]}`), or a bare list of objects.
pub fn import_document(doc: &Value, opts: &ImportOptions) -> Result<ImportReport, NotABundle> {
    import_document_with_lookup(doc, opts, &|_| None)
}

/// [`import_document`] with sightings of kizuna's own indicators resolved by `own`
/// ([`import_objects_with_lookup`]).
pub fn import_document_with_lookup(
    doc: &Value,
    opts: &ImportOptions,
    own: IndicatorLookup<'_>,
) -> Result<ImportReport, NotABundle> {
    let objects = match doc {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => match o.get("objects") {
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return Err(NotABundle("\"objects\" is not an array".into())),
            None if o.get("type").and_then(Value::as_str).is_some() => std::slice::from_ref(doc),
            None => return Err(NotABundle("no \"objects\"".into())),
        },
        _ => return Err(NotABundle("expected a JSON object or array".into())),
    };
    Ok(import_objects_with_lookup(objects, &[], opts, own))
}

/// Imports a list of STIX objects; relationships, identities and markings among them are used
/// to fill in malware names, producers and TLP.
pub fn import_objects(objects: &[Value], opts: &ImportOptions) -> ImportReport {
    import_objects_with_context(objects, &[], opts)
}

/// [`import_objects`], where `context` holds objects received earlier (e.g. on previous TAXII
/// pages) that `objects` may reference: marking-definitions, identities, malware,
/// relationships, indicators. Context objects are looked up, never imported.
pub fn import_objects_with_context(objects: &[Value], context: &[Value], opts: &ImportOptions) -> ImportReport {
    import_objects_with_lookup(objects, context, opts, &|_| None)
}

/// Finds one of kizuna's own indicator objects by its STIX id (`indicator--` UUIDv5 of the
/// indicator key, [`crate::ids::indicator_id`]): the object as kizuna exports it, or `None`.
pub type IndicatorLookup<'a> = &'a dyn Fn(&str) -> Option<Value>;

/// [`import_objects_with_context`], where a sighting whose `sighting_of_ref` is neither among
/// the objects or the context nor described by its observed-data is looked up with `own`
/// among kizuna's own indicators (a partner's sighting of an indicator kizuna shared earlier)
/// before it is rejected.
pub fn import_objects_with_lookup(
    objects: &[Value],
    context: &[Value],
    opts: &ImportOptions,
    own: IndicatorLookup<'_>,
) -> ImportReport {
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    for o in context.iter().chain(objects) {
        if let Some(id) = o.get("id").and_then(Value::as_str) {
            by_id.insert(id, o);
        }
    }
    // indicator id → malware names, through `indicates` relationships
    let mut malware_of: HashMap<&str, String> = HashMap::new();
    for o in context.iter().chain(objects) {
        if o.get("type").and_then(Value::as_str) == Some("relationship")
            && o.get("relationship_type").and_then(Value::as_str) == Some("indicates")
            && let (Some(src), Some(dst)) =
                (o.get("source_ref").and_then(Value::as_str), o.get("target_ref").and_then(Value::as_str))
            && let Some(m) = by_id.get(dst)
            && m.get("type").and_then(Value::as_str) == Some("malware")
            && let Some(name) = m.get("name").and_then(Value::as_str)
        {
            malware_of.insert(src, name.to_owned());
        }
    }
    let mut report = ImportReport::default();
    for (index, o) in objects.iter().enumerate() {
        let ty = o.get("type").and_then(Value::as_str);
        let id = o.get("id").and_then(Value::as_str);
        let reject = |reason: String| Rejection { index, id: id.map(str::to_owned), reason };
        match ty {
            Some("indicator") => match indicator(o, &by_id, &malware_of, opts) {
                Ok(mut v) => report.indicators.append(&mut v),
                Err(r) => report.rejected.push(reject(r)),
            },
            Some("sighting") => match sighting(o, &by_id, opts, own) {
                Ok(mut v) => report.sightings.append(&mut v),
                Err(r) => report.rejected.push(reject(r)),
            },
            Some(_) => report.other_objects += 1,
            None => report.rejected.push(reject("no \"type\"".into())),
        }
    }
    report
}

/// The narrowest TLP among an object's marking refs, if any is a TLP marking.
pub fn object_tlp(o: &Value, by_id: &HashMap<&str, &Value>) -> Option<Tlp> {
    o.get("object_marking_refs")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|r| tlp_of_marking_id(r).or_else(|| by_id.get(r).and_then(|m| tlp_of_marking_object(m))))
        .max()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn indicator(
    o: &Value,
    by_id: &HashMap<&str, &Value>,
    malware_of: &HashMap<&str, String>,
    opts: &ImportOptions,
) -> Result<Vec<ImportedIndicator>, String> {
    let id = o.get("id").and_then(Value::as_str).ok_or("indicator without id")?;
    if o.get("revoked").and_then(Value::as_bool) == Some(true) {
        return Err("revoked".into());
    }
    if let Some(pt) = o.get("pattern_type").and_then(Value::as_str)
        && pt != "stix"
    {
        return Err(format!("pattern_type {pt:?} is not supported (only stix)"));
    }
    let types = strings(o.get("indicator_types"));
    if !types.is_empty() && types.iter().all(|t| t == "benign") {
        return Err("a benign indicator (indicator_types [\"benign\"]) is not something to act on".into());
    }
    let pattern = o.get("pattern").and_then(Value::as_str).ok_or("indicator without pattern")?;
    let values = pattern::read(pattern).map_err(|e| e.to_string())?;
    let time = |k: &str| -> Result<Option<Timestamp>, String> {
        match o.get(k).and_then(Value::as_str) {
            Some(s) => parse_time(s).map(Some).ok_or_else(|| format!("{k} {s:?} is not a timestamp")),
            None => Ok(None),
        }
    };
    let modified = time("modified")?.or(time("created")?).unwrap_or(opts.now);
    let valid_from = time("valid_from")?.unwrap_or(modified);
    let valid_until = time("valid_until")?
        .unwrap_or_else(|| Timestamp::from_micros(valid_from.as_micros() + opts.default_lifetime_secs * 1_000_000));
    let ext = o.get("extensions").and_then(|e| e.get(KIZUNA_EXTENSION));
    let ext_str = |k: &str| ext.and_then(|e| e.get(k)).and_then(Value::as_str);
    let tlp = object_tlp(o, by_id).unwrap_or(opts.default_tlp);
    let created_by = o.get("created_by_ref").and_then(Value::as_str).map(|r| {
        by_id
            .get(r)
            .and_then(|i| i.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| r.to_owned())
    });
    let category = match ext_str("category") {
        Some(c) => c.parse::<ClassificationType>().map_err(|e| e.to_string())?,
        None => category_of(o).unwrap_or(opts.default_category),
    };
    let legal_basis = match ext_str("legal_basis") {
        Some(b) => b.parse::<LegalBasis>().map_err(|e| e.to_string())?,
        None => opts.default_legal_basis,
    };
    let confidence = o.get("confidence").and_then(Value::as_u64).map(|c| c.min(100) as u8).unwrap_or(50);
    let malware = malware_of.get(id).map(|m| opts.aliases.canonical(m));
    let reason = o
        .get("description")
        .or_else(|| o.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("STIX indicator {id}"));
    let source =
        ext_str("source").map(str::to_owned).or_else(|| created_by.clone()).unwrap_or_else(|| opts.origin.clone());
    let origin = ext_str("origin").map(str::to_owned).unwrap_or_else(|| opts.origin.clone());
    let original_id = ext_str("original_id").map(str::to_owned).unwrap_or_else(|| id.to_owned());
    let created_by = ext_str("original_created_by").map(str::to_owned).or(created_by);
    Ok(values
        .into_iter()
        .map(|(kind, value)| ImportedIndicator {
            indicator: Indicator {
                kind,
                value,
                category,
                source: source.clone(),
                confidence,
                first_seen: valid_from,
                last_seen: modified.max(valid_from),
                expires: valid_until,
                reason: reason.clone(),
                malware: malware.clone(),
                tlp,
                sharing_groups: strings(ext.and_then(|e| e.get("sharing_groups"))),
                legal_basis,
            },
            original_id: original_id.clone(),
            modified,
            created_by: created_by.clone(),
            recipients: strings(ext.and_then(|e| e.get("recipients"))),
            origin: origin.clone(),
            purpose: ext_str("purpose").map(str::to_owned),
        })
        .collect())
}

/// The values an SCO stands for (ipv4/ipv6 addresses, domain names, URLs, file hashes).
fn sco_values(o: &Value) -> Vec<(IndicatorKind, String)> {
    let v = |k: &str| o.get(k).and_then(Value::as_str);
    let mut out = Vec::new();
    let mut push = |kind, value: Option<&str>| {
        if let Some(x) = value.and_then(|x| canonical_value(kind, x).ok()) {
            out.push((kind, x));
        }
    };
    match o.get("type").and_then(Value::as_str) {
        Some("ipv4-addr" | "ipv6-addr") => push(IndicatorKind::Ip, v("value")),
        Some("domain-name") => push(IndicatorKind::Domain, v("value")),
        Some("url") => push(IndicatorKind::Url, v("value")),
        Some("file") => {
            let h = o.get("hashes");
            let hv = |k: &str| h.and_then(|h| h.get(k)).and_then(Value::as_str);
            push(IndicatorKind::Sha256, hv("SHA-256"));
            push(IndicatorKind::Sha1, hv("SHA-1"));
            push(IndicatorKind::Md5, hv("MD5"));
        }
        _ => {}
    }
    out
}

fn name_of(by_id: &HashMap<&str, &Value>, r: &str) -> String {
    by_id.get(r).and_then(|i| i.get("name")).and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| r.to_owned())
}

/// A sighting: the values come from the sighted indicator's pattern when the indicator is
/// among the objects (or the context), else from the SCOs of its observed-data.
fn sighting(
    o: &Value,
    by_id: &HashMap<&str, &Value>,
    opts: &ImportOptions,
    own: IndicatorLookup<'_>,
) -> Result<Vec<ImportedSighting>, String> {
    let id = o.get("id").and_then(Value::as_str).ok_or("sighting without id")?;
    if o.get("revoked").and_then(Value::as_bool) == Some(true) {
        return Err("revoked".into());
    }
    let of = o.get("sighting_of_ref").and_then(Value::as_str).ok_or("sighting without sighting_of_ref")?;
    let time = |k: &str| -> Result<Option<Timestamp>, String> {
        match o.get(k).and_then(Value::as_str) {
            Some(s) => parse_time(s).map(Some).ok_or_else(|| format!("{k} {s:?} is not a timestamp")),
            None => Ok(None),
        }
    };
    let first_seen = time("first_seen")?.or(time("created")?).unwrap_or(opts.now);
    let last_seen = time("last_seen")?.unwrap_or(first_seen).max(first_seen);
    let count = o.get("count").and_then(Value::as_u64).unwrap_or(1);
    let is_indicator = |t: &Value| t.get("type").and_then(Value::as_str) == Some("indicator");
    let target = by_id.get(of).copied().filter(|t| is_indicator(t));
    let mut category = opts.default_category;
    let mut values = Vec::new();
    let mut own_target = None;
    if target.is_none() && of.starts_with("indicator--") {
        // not received: perhaps one of kizuna's own indicators (its id is UUIDv5 of the key)
        own_target = own(of).filter(|t| is_indicator(t) && t.get("id").and_then(Value::as_str) == Some(of));
    }
    if let Some(t) = target.or(own_target.as_ref()) {
        let text_ext = t.get("extensions").and_then(|e| e.get(KIZUNA_EXTENSION));
        category = text_ext
            .and_then(|e| e.get("category"))
            .and_then(Value::as_str)
            .and_then(|c| c.parse().ok())
            .or_else(|| category_of(t))
            .unwrap_or(opts.default_category);
        if let Some(p) = t.get("pattern").and_then(Value::as_str) {
            values = pattern::read(p).map_err(|e| format!("the sighted indicator {of}: {e}"))?;
        }
    }
    if values.is_empty() {
        for od in strings(o.get("observed_data_refs")) {
            let Some(od) = by_id.get(od.as_str()) else { continue };
            for r in strings(od.get("object_refs")) {
                if let Some(sco) = by_id.get(r.as_str()) {
                    values.extend(sco_values(sco));
                }
            }
        }
    }
    if values.is_empty() {
        return Err(format!(
            "the sighted indicator {of} is not among the objects received nor one of ours, and no observed-data names the value"
        ));
    }
    let ext = o.get("extensions").and_then(|e| e.get(KIZUNA_EXTENSION));
    let legal_basis = match ext.and_then(|e| e.get("legal_basis")).and_then(Value::as_str) {
        Some(b) => b.parse::<LegalBasis>().map_err(|e| e.to_string())?,
        None => opts.default_legal_basis,
    };
    let tlp = object_tlp(o, by_id).unwrap_or(opts.default_tlp);
    let where_sighted: Vec<String> = strings(o.get("where_sighted_refs")).iter().map(|r| name_of(by_id, r)).collect();
    let created_by = o.get("created_by_ref").and_then(Value::as_str).map(|r| name_of(by_id, r));
    values.sort();
    values.dedup();
    Ok(values
        .into_iter()
        .map(|(kind, value)| ImportedSighting {
            kind,
            value,
            category,
            sighting_of: of.to_owned(),
            count,
            first_seen,
            last_seen,
            tlp,
            sharing_groups: strings(ext.and_then(|e| e.get("sharing_groups"))),
            legal_basis,
            where_sighted: where_sighted.clone(),
            created_by: created_by.clone(),
            origin: opts.origin.clone(),
            original_id: id.to_owned(),
            lifetime_secs: opts.default_lifetime_secs,
        })
        .collect())
}

/// A category from `indicator_types` (2.1) or `labels` (2.0).
fn category_of(o: &Value) -> Option<ClassificationType> {
    let mut types = strings(o.get("indicator_types"));
    types.extend(strings(o.get("labels")));
    for t in &types {
        if let Ok(c) = t.parse::<ClassificationType>() {
            return Some(c);
        }
    }
    types.iter().find_map(|t| match t.as_str() {
        "anonymization" => Some(ClassificationType::Proxy),
        "compromised" => Some(ClassificationType::SystemCompromise),
        "anomalous-activity" => Some(ClassificationType::Scanner),
        "malicious-activity" => Some(ClassificationType::Blacklist),
        "attribution" | "benign" | "unknown" => Some(ClassificationType::Undetermined),
        _ => None,
    })
}
