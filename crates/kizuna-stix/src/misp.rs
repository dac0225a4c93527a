//! MISP feeds: `manifest.json` (event uuid → event summary), `hashes.csv` (MD5 of each
//! attribute value, event uuid) and one `<uuid>.json` per event (`{"Event": {…, "Attribute":
//! […]}}`), as MISP's feed generator writes them and MISP's "fetch from feed" reads them.
//!
//! Export groups indicators into events by (source, TLP, category, sharing groups), so that an
//! event's tags and distribution hold for every attribute in it; ids are UUIDv5, so a
//! re-export updates the same events and attributes. Attributes carry `tlp:…` tags and kizuna's
//! labels as `kizuna:…` machine tags.

use std::collections::BTreeMap;

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value};
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::export::ExportItem;
use crate::ids;
use crate::import::{ImportOptions, ImportReport, ImportedIndicator, Rejection};
use crate::tlp::{misp_tag, misp_tag_colour};

/// A MISP feed in memory: write `manifest.json`, `hashes.csv` and `<uuid>.json` per event.
#[derive(Debug, Clone, PartialEq)]
pub struct MispFeed {
    /// `manifest.json`.
    pub manifest: Value,
    /// `hashes.csv`.
    pub hashes_csv: String,
    /// (event uuid, `{"Event": …}`), by uuid.
    pub events: Vec<(String, Value)>,
}

/// MISP distribution level for a TLP: CLEAR → 3 (all communities), GREEN → 1 (this
/// community), narrower → 0 (the receiving organisation only).
pub fn distribution(tlp: Tlp) -> u8 {
    match tlp {
        Tlp::Clear => 3,
        Tlp::Green => 1,
        _ => 0,
    }
}

/// MISP attribute (type, category) for a kind and value.
pub fn attribute_type(kind: IndicatorKind) -> (&'static str, &'static str) {
    match kind {
        IndicatorKind::Url => ("url", "Network activity"),
        IndicatorKind::Domain => ("domain", "Network activity"),
        IndicatorKind::Ip => ("ip-dst", "Network activity"),
        IndicatorKind::Sha256 => ("sha256", "Payload delivery"),
        IndicatorKind::Md5 => ("md5", "Payload delivery"),
        IndicatorKind::Sha1 => ("sha1", "Payload delivery"),
    }
}

fn tag(name: String, colour: &str) -> Value {
    json!({ "name": name, "colour": colour })
}

fn kizuna_tag(k: &str, v: &str) -> Value {
    tag(format!("kizuna:{k}=\"{}\"", v.replace('"', "'")), "#0088cc")
}

fn misp_value(i: &Indicator) -> String {
    match i.kind {
        IndicatorKind::Ip => {
            let v = &i.value;
            v.strip_suffix("/32")
                .filter(|s| !s.contains(':'))
                .or_else(|| v.strip_suffix("/128"))
                .unwrap_or(v)
                .to_owned()
        }
        _ => i.value.clone(),
    }
}

/// Builds a feed from indicators (already filtered for the feed's audience).
pub fn export_feed(items: &[ExportItem<'_>], producer: &str) -> MispFeed {
    let org = json!({ "name": producer, "uuid": ids::uuid_for(&format!("misp-org:{producer}")) });
    let mut groups: BTreeMap<(String, Tlp, String, Vec<String>), Vec<&ExportItem<'_>>> = BTreeMap::new();
    for it in items {
        let i = it.indicator;
        let mut g = i.sharing_groups.clone();
        g.sort();
        groups.entry((i.source.clone(), i.tlp, i.category.as_str().to_owned(), g)).or_default().push(it);
    }
    let mut manifest = serde_json::Map::new();
    let mut hashes = String::new();
    let mut events = Vec::new();
    for ((source, tlp, category, sgroups), members) in groups {
        let key = format!("misp-event:{producer}:{source}:{}:{category}:{}", tlp.as_str(), sgroups.join(","));
        let uuid = ids::uuid_for(&key);
        let date = members.iter().map(|m| m.indicator.first_seen).min().unwrap_or(Timestamp::from_secs(0));
        let ts = members.iter().map(|m| m.modified.max(m.created)).max().unwrap_or(date).as_secs();
        let mut event_tags = vec![tag(misp_tag(tlp), misp_tag_colour(tlp)), kizuna_tag("category", &category)];
        for g in &sgroups {
            event_tags.push(kizuna_tag("sharing-group", g));
        }
        let info = format!("{producer}: {category} indicators from {source} (TLP:{})", tlp.as_str());
        let mut attrs = Vec::with_capacity(members.len());
        for m in &members {
            let i = m.indicator;
            let (ty, cat) = attribute_type(i.kind);
            let value = misp_value(i);
            let mut atags = vec![
                tag(misp_tag(i.tlp), misp_tag_colour(i.tlp)),
                kizuna_tag("legal-basis", i.legal_basis.as_str()),
                kizuna_tag("category", i.category.as_str()),
            ];
            if let Some(mw) = &i.malware {
                atags.push(kizuna_tag("malware", mw));
            }
            for r in m.recipients {
                atags.push(kizuna_tag("recipient", r));
            }
            if let Some(p) = m.provenance {
                atags.push(kizuna_tag("origin", &p.origin));
            }
            hashes.push_str(&format!("{},{uuid}\n", hex_md5(&value)));
            attrs.push(json!({
                "uuid": ids::uuid_for(&format!("misp-attribute:{}", hex_bytes(&i.key()))),
                "type": ty,
                "category": cat,
                "value": value,
                "to_ids": true,
                "timestamp": m.modified.max(m.created).as_secs().to_string(),
                "distribution": "5",
                "comment": i.reason,
                "first_seen": crate::stix_time_micros(i.first_seen),
                "last_seen": crate::stix_time_micros(i.last_seen.max(i.first_seen)),
                "disable_correlation": false,
                "deleted": false,
                "Tag": atags
            }));
        }
        let date_s = date.to_datetime().format("%Y-%m-%d").to_string();
        manifest.insert(
            uuid.clone(),
            json!({
                "Orgc": org,
                "Tag": event_tags,
                "info": info,
                "date": date_s,
                "analysis": 2,
                "threat_level_id": 3,
                "timestamp": ts,
            }),
        );
        events.push((
            uuid.clone(),
            json!({ "Event": {
                "uuid": uuid,
                "info": info,
                "date": date_s,
                "timestamp": ts.to_string(),
                "publish_timestamp": ts.to_string(),
                "published": true,
                "analysis": "2",
                "threat_level_id": "3",
                "distribution": distribution(tlp).to_string(),
                "Orgc": org,
                "Tag": event_tags,
                "Attribute": attrs
            }}),
        ));
    }
    MispFeed { manifest: Value::Object(manifest), hashes_csv: hashes, events }
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_md5(s: &str) -> String {
    hex_bytes(&Md5::digest(s.as_bytes()))
}

/// The event uuids a `manifest.json` lists.
pub fn manifest_events(manifest: &Value) -> Result<Vec<String>, String> {
    let m = manifest.as_object().ok_or("manifest.json is not a JSON object")?;
    Ok(m.keys().cloned().collect())
}

fn tag_names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn machine_tag<'a>(tags: &'a [String], ns: &str) -> impl Iterator<Item = &'a str> {
    let prefix = format!("{ns}=");
    tags.iter().filter_map(move |t| t.strip_prefix(prefix.as_str())).map(|v| v.trim_matches('"'))
}

fn tag_tlp(tags: &[String]) -> Option<Tlp> {
    tags.iter().filter_map(|t| t.strip_prefix("tlp:").and_then(|l| l.parse::<Tlp>().ok())).max()
}

/// The indicators of a MISP attribute (type, value), e.g. `ip-dst|port` → the address,
/// `domain|ip` → both.
fn attribute_values(ty: &str, value: &str) -> Result<Vec<(IndicatorKind, String)>, String> {
    let one = |k: IndicatorKind, v: &str| canonical_value(k, v).map(|c| vec![(k, c)]).map_err(|e| e.to_string());
    let first = |v: &str| v.split('|').next().unwrap_or(v).to_owned();
    let second = |v: &str| v.split('|').nth(1).unwrap_or("").to_owned();
    match ty {
        "url" | "uri" | "link" => one(IndicatorKind::Url, value),
        "domain" | "hostname" => one(IndicatorKind::Domain, value),
        "ip-dst" | "ip-src" => one(IndicatorKind::Ip, value),
        "ip-dst|port" | "ip-src|port" => one(IndicatorKind::Ip, &first(value)),
        "hostname|port" => one(IndicatorKind::Domain, &first(value)),
        "domain|ip" => {
            let mut v = one(IndicatorKind::Domain, &first(value))?;
            v.extend(one(IndicatorKind::Ip, &second(value))?);
            Ok(v)
        }
        "sha256" => one(IndicatorKind::Sha256, value),
        "md5" => one(IndicatorKind::Md5, value),
        "sha1" => one(IndicatorKind::Sha1, value),
        "filename|sha256" => one(IndicatorKind::Sha256, &second(value)),
        "filename|md5" => one(IndicatorKind::Md5, &second(value)),
        "filename|sha1" => one(IndicatorKind::Sha1, &second(value)),
        other => Err(format!("attribute type {other:?} is not an indicator kind kizuna keeps")),
    }
}

/// Imports one event file (`{"Event": …}`, or the event object itself). Attributes with
/// `to_ids` false or `deleted` true are skipped (counted in `other_objects`); attributes of
/// MISP objects are read too.
pub fn import_event(doc: &Value, opts: &ImportOptions) -> Result<ImportReport, String> {
    let ev = doc.get("Event").unwrap_or(doc);
    let ev = ev.as_object().ok_or("not a MISP event: expected a JSON object")?;
    let event_tags = tag_names(ev.get("Tag"));
    let org = ev.get("Orgc").and_then(|o| o.get("name")).and_then(Value::as_str).map(str::to_owned);
    let ev_ts = ev
        .get("timestamp")
        .and_then(|t| t.as_str().and_then(|s| s.parse::<i64>().ok()).or_else(|| t.as_i64()))
        .map(Timestamp::from_secs)
        .unwrap_or(opts.now);
    let mut attrs: Vec<&Value> =
        ev.get("Attribute").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    if let Some(objs) = ev.get("Object").and_then(Value::as_array) {
        for o in objs {
            if let Some(a) = o.get("Attribute").and_then(Value::as_array) {
                attrs.extend(a.iter());
            }
        }
    }
    let mut report = ImportReport::default();
    for (index, a) in attrs.into_iter().enumerate() {
        let uuid = a.get("uuid").and_then(Value::as_str);
        let reject = |reason: String| Rejection { index, id: uuid.map(str::to_owned), reason };
        let truthy = |k: &str| match a.get(k) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => Some(s == "1" || s.eq_ignore_ascii_case("true")),
            Some(Value::Number(n)) => Some(n.as_u64() == Some(1)),
            _ => None,
        };
        if truthy("deleted") == Some(true) || truthy("to_ids") == Some(false) {
            report.other_objects += 1;
            continue;
        }
        let (Some(ty), Some(value)) = (a.get("type").and_then(Value::as_str), a.get("value").and_then(Value::as_str))
        else {
            report.rejected.push(reject("attribute without type or value".into()));
            continue;
        };
        let values = match attribute_values(ty, value) {
            Ok(v) => v,
            Err(e) => {
                report.rejected.push(reject(e));
                continue;
            }
        };
        let mut tags = tag_names(a.get("Tag"));
        let tlp = tag_tlp(&tags).or_else(|| tag_tlp(&event_tags)).unwrap_or(opts.default_tlp);
        tags.extend(event_tags.iter().cloned());
        let ts = a
            .get("timestamp")
            .and_then(|t| t.as_str().and_then(|s| s.parse::<i64>().ok()).or_else(|| t.as_i64()))
            .map(Timestamp::from_secs)
            .unwrap_or(ev_ts);
        let seen = |k: &str| a.get(k).and_then(Value::as_str).and_then(Timestamp::parse);
        let first_seen = seen("first_seen").unwrap_or(ts);
        let last_seen = seen("last_seen").unwrap_or(ts).max(first_seen);
        let category = machine_tag(&tags, "kizuna:category")
            .find_map(|c| c.parse::<ClassificationType>().ok())
            .unwrap_or(opts.default_category);
        let legal_basis = machine_tag(&tags, "kizuna:legal-basis")
            .find_map(|c| c.parse::<LegalBasis>().ok())
            .unwrap_or(opts.default_legal_basis);
        let malware = machine_tag(&tags, "kizuna:malware")
            .next()
            .map(str::to_owned)
            .or_else(|| {
                tags.iter()
                    .filter(|t| t.starts_with("misp-galaxy:"))
                    .find_map(|t| t.split_once('=').map(|(_, v)| v.trim_matches('"').to_owned()))
            })
            .map(|m| opts.aliases.canonical(&m));
        let mut groups: Vec<String> = machine_tag(&tags, "kizuna:sharing-group").map(str::to_owned).collect();
        groups.sort();
        groups.dedup();
        let mut recipients: Vec<String> = machine_tag(&tags, "kizuna:recipient").map(str::to_owned).collect();
        recipients.sort();
        recipients.dedup();
        let origin =
            machine_tag(&tags, "kizuna:origin").next().map(str::to_owned).unwrap_or_else(|| opts.origin.clone());
        let reason = a
            .get("comment")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .or_else(|| ev.get("info").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("MISP attribute {}", uuid.unwrap_or("")));
        for (kind, value) in values {
            report.indicators.push(ImportedIndicator {
                indicator: Indicator {
                    kind,
                    value,
                    category,
                    source: org.clone().unwrap_or_else(|| opts.origin.clone()),
                    confidence: 50,
                    first_seen,
                    last_seen,
                    expires: Timestamp::from_micros(last_seen.as_micros() + opts.default_lifetime_secs * 1_000_000),
                    reason: reason.clone(),
                    malware: malware.clone(),
                    tlp,
                    sharing_groups: groups.clone(),
                    legal_basis,
                },
                original_id: uuid.unwrap_or_default().to_owned(),
                modified: ts,
                created_by: org.clone(),
                recipients: recipients.clone(),
                origin: origin.clone(),
                purpose: None,
            });
        }
    }
    Ok(report)
}
