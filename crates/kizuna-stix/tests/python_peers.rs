//! kizuna's STIX and MISP output checked by the real tools, and their output imported by kizuna:
//! `stix2-validator` (no errors on exported bundles), the `stix2` library (parses our bundles,
//! computes the same SCO ids, produces bundles we import), PyMISP (loads every event file of
//! our MISP feed; its own feed output imports into kizuna).
//!
//! Python comes from the test venv (`scripts/setup-test-deps.sh`; `KIZUNA_TEST_VENV` overrides
//! the path). A missing venv fails the test with that instruction: these checks are the point.

use std::path::{Path, PathBuf};
use std::process::Command;

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value};
use kizuna_stix::export::SightingItem;
use kizuna_stix::{AliasTable, BundleBuilder, ExportItem, ExportOptions, ImportOptions, Provenance, TlpStyle, misp};
use serde_json::Value;

fn python() -> PathBuf {
    let venv = std::env::var_os("KIZUNA_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test"));
    let py = venv.join("bin/python");
    assert!(py.exists(), "{} missing: run scripts/setup-test-deps.sh", py.display());
    py
}

fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn ind(kind: IndicatorKind, value: &str, tlp: Tlp, malware: Option<&str>) -> Indicator {
    Indicator {
        kind,
        value: canonical_value(kind, value).expect("valid"),
        category: ClassificationType::MalwareDistribution,
        source: "crawler-1".into(),
        confidence: 80,
        first_seen: Timestamp::from_secs(1_772_668_800),
        last_seen: Timestamp::from_secs(1_772_672_400),
        expires: Timestamp::from_secs(1_775_260_800),
        reason: "served a dropper to the crawler".into(),
        malware: malware.map(str::to_owned),
        tlp,
        sharing_groups: if tlp >= Tlp::Amber { vec!["jp-isps".into()] } else { vec![] },
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

fn sample() -> Vec<Indicator> {
    vec![
        ind(IndicatorKind::Url, "http://bad.example/dl/it's.exe", Tlp::Clear, Some("Heodo")),
        ind(IndicatorKind::Domain, "c2.bad.example", Tlp::Green, Some("emotet")),
        ind(IndicatorKind::Ip, "198.51.100.7", Tlp::Amber, None),
        ind(IndicatorKind::Ip, "2001:db8::/32", Tlp::AmberStrict, None),
        ind(IndicatorKind::Sha256, &"ab".repeat(32), Tlp::Red, Some("Mirai")),
        ind(IndicatorKind::Md5, &"cd".repeat(16), Tlp::Green, None),
        ind(IndicatorKind::Sha1, &"ef".repeat(20), Tlp::Green, None),
    ]
}

fn aliases() -> AliasTable {
    let mut t = AliasTable::new();
    t.load_json(include_str!("fixtures/misp-galaxy-malpedia-sample.json")).expect("galaxy fixture");
    t
}

fn bundle(style: TlpStyle) -> Value {
    let inds = sample();
    let mut opts = ExportOptions::new("kizuna-hub-a");
    opts.tlp_style = style;
    opts.aliases = aliases();
    let mut b = BundleBuilder::new(opts);
    let recipients = vec!["isp-b".to_owned()];
    let prov = Provenance {
        origin: "partner:cert-x".into(),
        original_id: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into(),
        created_by: Some("CERT X".into()),
    };
    for (n, i) in inds.iter().enumerate() {
        b.add_indicator(&ExportItem {
            indicator: i,
            created: Timestamp::from_secs(1_772_668_800),
            modified: Timestamp::from_secs(1_772_668_800 + n as i64),
            recipients: if i.tlp == Tlp::Red { &recipients } else { &[] },
            provenance: if n == 1 { Some(&prov) } else { None },
            purpose: None,
        });
    }
    b.add_sighting(&SightingItem {
        kind: IndicatorKind::Ip,
        value: "198.51.100.7/32".into(),
        count: 42,
        first_seen: Timestamp::from_secs(1_772_668_800),
        last_seen: Timestamp::from_secs(1_772_755_200),
        tlp: Tlp::Amber,
        sharing_groups: vec!["jp-isps".into()],
        legal_basis: LegalBasis::LegitimateBusiness,
        where_sighted: Some("honeypot-operator".into()),
        created: Timestamp::from_secs(1_772_668_800),
        modified: Timestamp::from_secs(1_772_755_200),
        revoked: false,
    });
    // the hub's own aggregate (where_sighted: the producer), withdrawn
    b.add_sighting(&SightingItem {
        kind: IndicatorKind::Domain,
        value: "c2.bad.example".into(),
        count: 3,
        first_seen: Timestamp::from_secs(1_772_668_800),
        last_seen: Timestamp::from_secs(1_772_672_400),
        tlp: Tlp::Green,
        sharing_groups: vec![],
        legal_basis: LegalBasis::LegitimateBusiness,
        where_sighted: None,
        created: Timestamp::from_secs(1_772_668_800),
        modified: Timestamp::from_secs(1_772_672_400),
        revoked: true,
    });
    b.finish()
}

const VALIDATE: &str = r#"
import json, sys
from stix2validator import validate_string, ValidationOptions
import stix2
text = open(sys.argv[1]).read()
r = validate_string(text, ValidationOptions(version="2.1"))
errors = []
warnings = []
for o in getattr(r, "object_results", [r]):
    errors += [f"{o.object_id}: {e}" for e in o.errors]
    warnings += [f"{o.object_id}: {w}" for w in o.warnings]
parsed = stix2.parse(text, allow_custom=False)
ipv4 = stix2.IPv4Address(value="198.51.100.7").id
print(json.dumps({"valid": r.is_valid, "errors": errors, "warnings": warnings,
                  "parsed": len(parsed.objects), "ipv4_id": ipv4}))
"#;

#[test]
fn exported_bundles_pass_stix2_validator_and_parse_in_stix2() {
    for style in [TlpStyle::V1WhereAvailable, TlpStyle::V2] {
        let b = bundle(style);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bundle.json");
        std::fs::write(&path, serde_json::to_string_pretty(&b).expect("json")).expect("write");
        let out: Value = serde_json::from_str(&run_python(VALIDATE, &[path.to_str().expect("path")])).expect("json");
        assert_eq!(out["errors"], serde_json::json!([]), "{style:?}: {out}");
        assert_eq!(out["valid"], true, "{out}");
        // The only warning allowed: {103} "not a valid UUIDv4" — kizuna's ids are UUIDv5 on
        // purpose (deterministic: a re-export updates the same object).
        let other: Vec<&Value> = out["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .filter(|w| !w.as_str().unwrap_or("").contains("{103}"))
            .collect();
        assert!(other.is_empty(), "{style:?}: stix2-validator warnings: {other:?}");
        let objects = b["objects"].as_array().expect("objects");
        assert_eq!(out["parsed"].as_u64(), Some(objects.len() as u64));
        // the SCO in our observed-data has the id stix2 computes for the same address
        assert!(objects.iter().any(|o| o["id"] == out["ipv4_id"]), "no SCO with stix2's id {}", out["ipv4_id"]);
        let types: std::collections::BTreeSet<&str> = objects.iter().filter_map(|o| o["type"].as_str()).collect();
        for t in ["indicator", "malware", "relationship", "identity", "marking-definition", "extension-definition"] {
            assert!(types.contains(t), "{t} missing");
        }
        for t in ["sighting", "observed-data", "ipv4-addr", "domain-name"] {
            assert!(types.contains(t), "{t} missing");
        }
        // each sighting refers to the exported indicator of its value, seen by the named
        // organisation or the producer
        let sightings: Vec<&Value> = objects.iter().filter(|o| o["type"] == "sighting").collect();
        assert_eq!(sightings.len(), 2);
        for s in &sightings {
            let of = s["sighting_of_ref"].as_str().expect("ref");
            assert!(objects.iter().any(|o| o["type"] == "indicator" && o["id"] == of), "{of} not exported");
            let seer = s["where_sighted_refs"][0].as_str().expect("seer");
            assert!(objects.iter().any(|o| o["type"] == "identity" && o["id"] == seer), "{seer} not defined");
        }
        let hub = kizuna_stix::ids::object_id("identity", "kizuna-hub-a");
        assert!(sightings.iter().any(|s| s["where_sighted_refs"] == serde_json::json!([hub]) && s["count"] == 3));
        // family names are canonical with the aliases kept
        let emotet = objects.iter().find(|o| o["type"] == "malware" && o["name"] == "emotet").expect("emotet");
        let al: Vec<&str> = emotet["aliases"].as_array().expect("aliases").iter().filter_map(|a| a.as_str()).collect();
        assert!(al.contains(&"geodo") && al.contains(&"heodo"), "{al:?}");
        assert_eq!(objects.iter().filter(|o| o["type"] == "malware").count(), 2, "Heodo and emotet are one family");
    }
}

#[test]
fn export_then_import_keeps_every_label() {
    let b = bundle(TlpStyle::V1WhereAvailable);
    let mut opts = ImportOptions::new("kizuna-hub-a", Timestamp::from_secs(1_772_700_000));
    opts.aliases = aliases();
    let r = kizuna_stix::import::import_document(&b, &opts).expect("bundle");
    // the withdrawn aggregate is not acted on; the other keeps count, TLP and groups
    assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
    assert_eq!(r.rejected[0].reason, "revoked");
    assert_eq!(r.sightings.len(), 1);
    let s = &r.sightings[0];
    assert_eq!((s.value.as_str(), s.count, s.tlp), ("198.51.100.7/32", 42, Tlp::Amber));
    assert_eq!(s.sharing_groups, vec!["jp-isps".to_owned()]);
    assert_eq!(s.where_sighted, vec!["honeypot-operator".to_owned()]);
    let orig = sample();
    assert_eq!(r.indicators.len(), orig.len());
    for (got, want) in r.indicators.iter().zip(&orig) {
        let g = &got.indicator;
        assert_eq!((g.kind, &g.value, g.tlp), (want.kind, &want.value, want.tlp));
        assert_eq!(g.sharing_groups, want.sharing_groups);
        assert_eq!(g.legal_basis, want.legal_basis);
        assert_eq!(g.category, want.category);
        assert_eq!(g.expires, want.expires);
        assert_eq!(g.first_seen, want.first_seen);
        assert_eq!(g.reason, want.reason);
        assert_eq!(g.source, want.source);
        assert_eq!(g.malware, want.malware.as_ref().map(|m| aliases().canonical(m)));
        if want.tlp == Tlp::Red {
            assert_eq!(got.recipients, vec!["isp-b".to_owned()]);
        }
    }
    // provenance of a relayed item survives
    assert_eq!(r.indicators[1].origin, "partner:cert-x");
    assert_eq!(r.indicators[1].original_id, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
    assert_eq!(r.indicators[1].created_by.as_deref(), Some("CERT X"));
    assert_eq!(r.indicators[0].created_by.as_deref(), Some("kizuna-hub-a"));
}

const PRODUCE: &str = r#"
import json
import stix2
org = stix2.Identity(name="Partner CERT", identity_class="organization")
strict = stix2.parse({
  "type": "marking-definition", "spec_version": "2.1",
  "id": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
  "created": "2022-10-01T00:00:00.000Z", "name": "TLP:AMBER+STRICT",
  "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":
                 {"extension_type": "property-extension", "tlp_2_0": "amber+strict"}}})
mal = stix2.Malware(name="Geodo", is_family=True, malware_types=["trojan"])
objs = [org, mal]
specs = [
  ("[url:value = 'http://Evil.example/x?a=1']", stix2.TLP_GREEN),
  ("[domain-name:value = 'evil.example'] OR [ipv4-addr:value = '203.0.113.9']", stix2.TLP_RED),
  ("[file:hashes.'SHA-256' = '" + "0f" * 32 + "']", strict),
  ("[ipv6-addr:value = '2001:db8::7']", stix2.TLP_WHITE),
  ("[email-addr:value = 'spam@evil.example']", stix2.TLP_GREEN),
  ("[domain-name:value = 'unmarked.example']", None),
]
for p, m in specs:
  kw = {"object_marking_refs": [m]} if m is not None else {}
  i = stix2.Indicator(pattern=p, pattern_type="stix", indicator_types=["malicious-activity"],
                      valid_from="2026-03-01T00:00:00Z", valid_until="2026-04-01T00:00:00Z",
                      created_by_ref=org, confidence=70, **kw)
  objs.append(i)
objs.append(stix2.Relationship(objs[2], "indicates", mal))
objs.append(strict)
print(stix2.Bundle(objects=objs, allow_custom=True).serialize())
"#;

#[test]
fn bundles_made_by_stix2_import_with_markings() {
    let text = run_python(PRODUCE, &[]);
    let doc: Value = serde_json::from_str(&text).expect("bundle json");
    let mut opts = ImportOptions::new("partner:cert", Timestamp::from_secs(1_772_700_000));
    opts.aliases = aliases();
    let r = kizuna_stix::import::import_document(&doc, &opts).expect("bundle");
    assert_eq!(r.rejected.len(), 1, "the email-addr pattern: {:?}", r.rejected);
    assert!(r.rejected[0].reason.contains("email-addr"), "{}", r.rejected[0]);
    let got: Vec<(IndicatorKind, &str, Tlp)> =
        r.indicators.iter().map(|i| (i.indicator.kind, i.indicator.value.as_str(), i.indicator.tlp)).collect();
    let sha = "0f".repeat(32);
    assert_eq!(
        got,
        vec![
            (IndicatorKind::Url, "http://evil.example/x?a=1", Tlp::Green),
            (IndicatorKind::Domain, "evil.example", Tlp::Red),
            (IndicatorKind::Ip, "203.0.113.9/32", Tlp::Red),
            (IndicatorKind::Sha256, sha.as_str(), Tlp::AmberStrict),
            (IndicatorKind::Ip, "2001:db8::7/128", Tlp::Clear),
            (IndicatorKind::Domain, "unmarked.example", Tlp::Amber),
        ]
    );
    for i in &r.indicators {
        assert_eq!(i.created_by.as_deref(), Some("Partner CERT"));
        assert_eq!(i.indicator.source, "Partner CERT");
        assert_eq!(i.origin, "partner:cert");
        assert_eq!(i.indicator.confidence, 70);
        assert_eq!(i.indicator.expires, Timestamp::parse("2026-04-01T00:00:00Z").expect("t"));
    }
    assert_eq!(r.indicators[0].indicator.malware.as_deref(), Some("emotet"), "Geodo is an alias of Emotet");
    assert_eq!(r.indicators[1].indicator.malware, None);
}

const LOAD_MISP: &str = r#"
import json, sys, os, hashlib, csv
from pymisp import MISPEvent
d = sys.argv[1]
manifest = json.load(open(os.path.join(d, "manifest.json")))
out = {"events": {}, "hash_errors": []}
for uuid in manifest:
    e = MISPEvent()
    e.load_file(os.path.join(d, uuid + ".json"))
    assert e.uuid == uuid, (e.uuid, uuid)
    out["events"][uuid] = {
        "info": e.info, "distribution": int(e.distribution), "tags": [t.name for t in e.tags],
        "attributes": [{"type": a.type, "value": a.value, "to_ids": a.to_ids, "tags": [t.name for t in a.tags]}
                       for a in e.attributes],
    }
    feed = e.to_feed(with_meta=True)  # PyMISP's own feed writer accepts the loaded event
    assert feed["Event"]["uuid"] == uuid
values = {a["value"]: u for u, e in out["events"].items() for a in e["attributes"]}
for row in csv.reader(open(os.path.join(d, "hashes.csv"))):
    h, u = row
    match = [v for v, eu in values.items() if hashlib.md5(v.encode()).hexdigest() == h and eu == u]
    if not match:
        out["hash_errors"].append(row)
print(json.dumps(out))
"#;

fn write_feed(dir: &Path, feed: &misp::MispFeed) {
    std::fs::write(dir.join("manifest.json"), feed.manifest.to_string()).expect("manifest");
    std::fs::write(dir.join("hashes.csv"), &feed.hashes_csv).expect("hashes");
    for (uuid, ev) in &feed.events {
        std::fs::write(dir.join(format!("{uuid}.json")), ev.to_string()).expect("event");
    }
}

#[test]
fn misp_feed_loads_in_pymisp_and_reimports() {
    let inds = sample();
    let items: Vec<ExportItem<'_>> = inds
        .iter()
        .map(|i| ExportItem {
            indicator: i,
            created: Timestamp::from_secs(1_772_668_800),
            modified: Timestamp::from_secs(1_772_668_900),
            recipients: &[],
            provenance: None,
            purpose: None,
        })
        .collect();
    let feed = misp::export_feed(&items, "kizuna-hub-a");
    let dir = tempfile::tempdir().expect("tempdir");
    write_feed(dir.path(), &feed);
    let out: Value = serde_json::from_str(&run_python(LOAD_MISP, &[dir.path().to_str().expect("path")])).expect("json");
    assert_eq!(out["hash_errors"], serde_json::json!([]), "{out}");
    let events = out["events"].as_object().expect("events");
    assert_eq!(events.len(), feed.events.len());
    let attrs: usize = events.values().map(|e| e["attributes"].as_array().map_or(0, |a| a.len())).sum();
    assert_eq!(attrs, inds.len());
    for e in events.values() {
        let tags: Vec<&str> = e["tags"].as_array().expect("tags").iter().filter_map(|t| t.as_str()).collect();
        assert!(tags.iter().any(|t| t.starts_with("tlp:")), "{tags:?}");
        for a in e["attributes"].as_array().expect("attrs") {
            assert_eq!(a["to_ids"], true);
        }
    }
    let red = events.values().find(|e| e["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == "tlp:red")));
    assert_eq!(red.expect("a red event")["distribution"], 0);
    // and back into kizuna
    let mut opts = ImportOptions::new("kizuna-hub-a", Timestamp::from_secs(1_772_700_000));
    opts.aliases = aliases();
    let mut back = Vec::new();
    for (_, ev) in &feed.events {
        let r = misp::import_event(ev, &opts).expect("event");
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        back.extend(r.indicators);
    }
    back.sort_by(|a, b| a.indicator.value.cmp(&b.indicator.value));
    let mut want = inds.clone();
    want.sort_by(|a, b| a.value.cmp(&b.value));
    for (g, w) in back.iter().zip(&want) {
        assert_eq!(
            (&g.indicator.value, g.indicator.tlp, &g.indicator.sharing_groups),
            (&w.value, w.tlp, &w.sharing_groups)
        );
        assert_eq!(g.indicator.category, w.category);
        assert_eq!(g.indicator.malware, w.malware.as_ref().map(|m| aliases().canonical(m)));
    }
}

const PYMISP_FEED: &str = r#"
import json
from pymisp import MISPEvent, MISPOrganisation
e = MISPEvent()
e.info = "Phishing wave"
e.uuid = "5f7a8f1e-0d7b-4f0e-9c55-2b1e4a9f0c11"
org = MISPOrganisation(); org.name = "CIRCL"; org.uuid = "55f6ea5e-2c60-40e5-964f-47a8950d210f"
e.Orgc = org
e.add_tag("tlp:amber")
e.add_attribute("url", "https://login.evil.example/acct", to_ids=True, comment="phishing kit")
e.add_attribute("domain", "evil.example", to_ids=True)
a = e.add_attribute("ip-dst", "203.0.113.50", to_ids=True); a.add_tag("tlp:red")
e.add_attribute("ip-src|port", "203.0.113.51|8080", to_ids=True)
e.add_attribute("filename|sha256", "x.exe|" + "aa" * 32, to_ids=True)
e.add_attribute("domain", "benign-context.example", to_ids=False)
e.add_attribute("email-src", "phish@evil.example", to_ids=True)
e.add_tag('misp-galaxy:malpedia="Loki Bot"')
print(json.dumps(e.to_feed(with_meta=True)))
"#;

#[test]
fn misp_events_written_by_pymisp_import() {
    let feed: Value = serde_json::from_str(&run_python(PYMISP_FEED, &[])).expect("json");
    let mut opts = ImportOptions::new("misp:circl", Timestamp::from_secs(1_772_700_000));
    opts.aliases = aliases();
    let r = misp::import_event(&feed, &opts).expect("event");
    assert_eq!(r.other_objects, 1, "to_ids false skipped");
    assert_eq!(r.rejected.len(), 1, "email-src: {:?}", r.rejected);
    let got: Vec<(&str, Tlp)> = r.indicators.iter().map(|i| (i.indicator.value.as_str(), i.indicator.tlp)).collect();
    let sha = "aa".repeat(32);
    assert_eq!(
        got,
        vec![
            ("https://login.evil.example/acct", Tlp::Amber),
            ("evil.example", Tlp::Amber),
            ("203.0.113.50/32", Tlp::Red),
            ("203.0.113.51/32", Tlp::Amber),
            (sha.as_str(), Tlp::Amber),
        ]
    );
    assert!(r.indicators.iter().all(|i| i.indicator.source == "CIRCL"));
    assert!(r.indicators.iter().all(|i| i.indicator.malware.as_deref() == Some("lokibot")));
    assert_eq!(r.indicators[0].indicator.reason, "phishing kit");
}

const SIGHTINGS: &str = r#"
import stix2
isp = stix2.Identity(name="ISP Y SOC", identity_class="organization")
cert = stix2.Identity(name="CERT Y", identity_class="organization")
ind = stix2.Indicator(pattern="[domain-name:value = 'C2.Sighted.example']", pattern_type="stix",
                      indicator_types=["malicious-activity"], labels=["c2-server"], created_by_ref=cert,
                      object_marking_refs=[stix2.TLP_GREEN])
s1 = stix2.Sighting(sighting_of_ref=ind, count=12, first_seen="2026-03-05T01:00:00Z",
                    last_seen="2026-03-05T03:00:00Z", where_sighted_refs=[isp], created_by_ref=cert,
                    object_marking_refs=[stix2.TLP_AMBER])
# a sighting of an indicator the bundle does not carry: the value comes from its observed-data
ip = stix2.IPv4Address(value="203.0.113.77")
od = stix2.ObservedData(first_observed="2026-03-05T02:00:00Z", last_observed="2026-03-05T02:30:00Z",
                        number_observed=3, object_refs=[ip], created_by_ref=cert)
s2 = stix2.Sighting(sighting_of_ref="indicator--0d7c7f52-5c3e-4b8f-9f3e-0a2b1c3d4e5f", count=3,
                    observed_data_refs=[od], created_by_ref=cert, object_marking_refs=[stix2.TLP_RED])
# and one that names nothing usable
s3 = stix2.Sighting(sighting_of_ref="indicator--1d7c7f52-5c3e-4b8f-9f3e-0a2b1c3d4e5f")
print(stix2.Bundle(objects=[isp, cert, ind, s1, ip, od, s2, s3]).serialize())
"#;

#[test]
fn sightings_made_by_stix2_import_as_indicator_sightings() {
    let out = run_python(SIGHTINGS, &[]);
    let doc: Value = serde_json::from_str(&out).expect("bundle");
    let r =
        kizuna_stix::import::import_document(&doc, &ImportOptions::new("cert-y", Timestamp::from_secs(1_772_700_000)))
            .expect("bundle");
    assert_eq!(r.indicators.len(), 1);
    assert_eq!(r.sightings.len(), 2, "{:?}", r.sightings);
    assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
    assert!(r.rejected[0].reason.contains("not among the objects"), "{}", r.rejected[0]);

    let s = &r.sightings[0];
    assert_eq!((s.kind, s.value.as_str()), (IndicatorKind::Domain, "c2.sighted.example"));
    assert_eq!(s.count, 12);
    assert_eq!(s.tlp, Tlp::Amber, "the sighting's own marking, not the indicator's GREEN");
    assert_eq!(s.category, ClassificationType::C2Server, "the sighted indicator's category");
    assert_eq!(s.where_sighted, vec!["ISP Y SOC".to_owned()]);
    assert_eq!(s.created_by.as_deref(), Some("CERT Y"));
    assert_eq!(s.first_seen, Timestamp::parse("2026-03-05T01:00:00Z").expect("t"));
    assert_eq!(s.last_seen, Timestamp::parse("2026-03-05T03:00:00Z").expect("t"));
    let i = s.as_indicator();
    assert_eq!(i.source, "cert-y/sighting:ISP Y SOC");
    assert_eq!(i.tlp, Tlp::Amber);
    assert!(i.reason.starts_with("sighted 12 times by ISP Y SOC"), "{}", i.reason);
    assert!(i.reason.contains(&s.original_id));
    // same key as the indicator: the store merges the sighting into its record
    assert_eq!(i.key(), r.indicators[0].indicator.key());

    let s = &r.sightings[1];
    assert_eq!((s.kind, s.value.as_str()), (IndicatorKind::Ip, "203.0.113.77/32"));
    assert_eq!((s.count, s.tlp), (3, Tlp::Red));
    assert_eq!(s.as_indicator().source, "cert-y/sighting:CERT Y", "no where_sighted: the reporter");
}

const OWN_SIGHTING: &str = r#"
import sys
import stix2
cert = stix2.Identity(name="CERT Z", identity_class="organization")
s = stix2.Sighting(sighting_of_ref=sys.argv[1], count=5, first_seen="2026-03-06T01:00:00Z",
                   last_seen="2026-03-06T02:00:00Z", where_sighted_refs=[cert], created_by_ref=cert,
                   object_marking_refs=[stix2.TLP_GREEN])
print(stix2.Bundle(objects=[cert, s]).serialize())
"#;

#[test]
fn a_sighting_of_one_of_our_indicators_by_id_imports() {
    // kizuna exported this indicator earlier; a partner's stix2 sighting names only its id
    let mine = ind(IndicatorKind::Domain, "c2.bad.example", Tlp::Green, None);
    let exported = kizuna_stix::export::indicator_object(
        &ExportItem {
            indicator: &mine,
            created: mine.first_seen,
            modified: mine.last_seen,
            recipients: &[],
            provenance: None,
            purpose: None,
        },
        &ExportOptions::new("kizuna-hub-a"),
    );
    let id = kizuna_stix::ids::indicator_id(&mine.key());
    assert_eq!(exported["id"], id.as_str());
    let doc: Value = serde_json::from_str(&run_python(OWN_SIGHTING, &[&id])).expect("bundle");
    let opts = ImportOptions::new("cert-z", Timestamp::from_secs(1_772_800_000));

    // without a look-up among our own indicators: rejected, as before
    let r = kizuna_stix::import::import_document(&doc, &opts).expect("bundle");
    assert_eq!((r.sightings.len(), r.rejected.len()), (0, 1), "{r:?}");

    let asked = std::cell::RefCell::new(Vec::new());
    let own = |q: &str| {
        asked.borrow_mut().push(q.to_owned());
        (q == id).then(|| exported.clone())
    };
    let r = kizuna_stix::import::import_document_with_lookup(&doc, &opts, &own).expect("bundle");
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(*asked.borrow(), vec![id.clone()]);
    assert_eq!(r.sightings.len(), 1);
    let s = &r.sightings[0];
    assert_eq!((s.kind, s.value.as_str(), s.count, s.tlp), (IndicatorKind::Domain, "c2.bad.example", 5, Tlp::Green));
    assert_eq!(s.category, ClassificationType::MalwareDistribution, "our indicator's category");
    assert_eq!(s.as_indicator().key(), mine.key(), "merges into our record");
    assert_eq!(s.as_indicator().source, "cert-z/sighting:CERT Z");

    // a look-up answering with another object than the one asked for is not believed
    let wrong = |_: &str| {
        Some(kizuna_stix::export::indicator_object(
            &ExportItem {
                indicator: &ind(IndicatorKind::Domain, "other.bad.example", Tlp::Green, None),
                created: mine.first_seen,
                modified: mine.last_seen,
                recipients: &[],
                provenance: None,
                purpose: None,
            },
            &ExportOptions::new("kizuna-hub-a"),
        ))
    };
    let r = kizuna_stix::import::import_document_with_lookup(&doc, &opts, &wrong).expect("bundle");
    assert_eq!((r.sightings.len(), r.rejected.len()), (0, 1), "{r:?}");
}
