//! `kizuna share …` as a process, against the real tools: the STIX bundle it exports passes
//! `stix2-validator` and names the configured organisation (identity with contact,
//! `created_by_ref` of every object it made); its MISP feed loads in PyMISP with that `Orgc`;
//! a bundle made with the `stix2` library (indicators, sightings, TLP markings) and the MISP
//! feed import into another hub's store; `share poll` reads medallion incrementally, by URL
//! and by configured partner name. `kizuna hub serve` with `[[hub.sharing.poll]]` polls
//! medallion on its schedule: each object once, objects added between polls at the next poll,
//! counters on `/metrics`; its TAXII collection carries the configured identity too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kizuna_testkit::medallion::{Medallion, domain_indicator, one_collection};
use kizuna_testkit::{free_port, venv};
use serde_json::{Value, json};

const ORG: &str = "Example ISAC";
const CONTACT: &str = "csirt@isac.example";
const COLLECTION: &str = "3e5d7c9b-1a2f-4e6d-8c0b-5a4f3e2d1c0b";

fn python(script: &str, args: &[&str]) -> String {
    let py = venv().join("bin/python");
    assert!(py.exists(), "{} missing: run scripts/setup-test-deps.sh", py.display());
    let out = Command::new(py).arg("-c").arg(script).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kizuna(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kizuna"));
    c.arg("--data-dir").arg(dir).env_remove("KIZUNA_CONFIG").env("KIZUNA_LOG", "warn").env_remove("KIZUNA_ANALYST");
    c.env_remove("KIZUNA_TAXII_PASSWORD").env_remove("KIZUNA_TAXII_TOKEN");
    c
}

/// Runs and returns (exit code, stdout, stderr).
fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(c: &mut Command) -> String {
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}\n{err}");
    out
}

fn write_config(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("kizuna.toml"),
        format!("[hub.sharing]\norganisation = \"{ORG}\"\ncontact = \"{CONTACT}\"\n{extra}"),
    )
    .unwrap();
}

fn add_indicator(dir: &Path, kind: &str, value: &str, tlp: &str, groups: &[&str]) {
    let mut c = kizuna(dir);
    c.args(["indicator", "add", "--kind", kind, "--value", value, "--category", "c2-server"]).args([
        "--reason",
        "C2 seen by the sinkhole",
        "--analyst",
        "alice",
        "--tlp",
        tlp,
        "--expires",
        "30d",
    ]);
    for g in groups {
        c.args(["--group", g]);
    }
    ok(&mut c);
}

fn identity_id(org: &str) -> String {
    kizuna_stix::ids::object_id("identity", org)
}

const VALIDATE_REAL: &str = r#"
import json, sys
from stix2validator import validate_string, ValidationOptions
r = validate_string(open(sys.argv[1]).read(), ValidationOptions(version="2.1"))
errors = [f"{o.object_id}: {e}" for o in getattr(r, "object_results", [r]) for e in o.errors]
print(json.dumps({"valid": r.is_valid, "errors": errors}))
"#;

const PYMISP_LOAD: &str = r#"
import json, sys, os
from pymisp import MISPEvent
d = sys.argv[1]
manifest = json.load(open(os.path.join(d, "manifest.json")))
out = []
for uuid in manifest:
    e = MISPEvent()
    e.load_file(os.path.join(d, uuid + ".json"))
    out.append({"uuid": e.uuid, "orgc": e.Orgc.name, "values": sorted(a.value for a in e.attributes)})
print(json.dumps(out))
"#;

const STIX2_BUNDLE: &str = r#"
import stix2
cert = stix2.Identity(name="CERT Y", identity_class="organization")
isp = stix2.Identity(name="ISP Y SOC", identity_class="organization")
i1 = stix2.Indicator(pattern="[domain-name:value = 'Partner-C2.example']", pattern_type="stix",
                     indicator_types=["malicious-activity"], created_by_ref=cert, object_marking_refs=[stix2.TLP_GREEN])
i2 = stix2.Indicator(pattern="[ipv4-addr:value = '203.0.113.50']", pattern_type="stix",
                     indicator_types=["malicious-activity"], created_by_ref=cert, object_marking_refs=[stix2.TLP_RED])
s = stix2.Sighting(sighting_of_ref=i1, count=4, first_seen="2026-03-05T01:00:00Z", last_seen="2026-03-05T02:00:00Z",
                   where_sighted_refs=[isp], created_by_ref=cert, object_marking_refs=[stix2.TLP_AMBER])
print(stix2.Bundle(objects=[cert, isp, i1, i2, s]).serialize())
"#;

#[test]
fn export_validates_and_names_the_hub_import_takes_stix2_and_misp() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_config(d, "");
    add_indicator(d, "domain", "clear.bad.example", "clear", &[]);
    add_indicator(d, "url", "http://green.bad.example/x.sh", "green", &[]);
    add_indicator(d, "ip", "198.51.100.9", "amber", &["apac"]);
    add_indicator(d, "domain", "amber.bad.example", "amber", &[]);
    add_indicator(d, "domain", "red.bad.example", "red", &[]);
    let out = ok(kizuna(d).args(["share", "partner", "add", "cert-x", "--group", "apac", "--tlp-max", "amber"]));
    assert!(out.contains("TAXII password:"), "{out}");

    // STIX for cert-x: CLEAR, GREEN and the AMBER item of its group; valid; made by ORG
    let stix_dir = d.join("stix");
    let out = ok(kizuna(d).args(["share", "export", "stix", "--for", "cert-x", "--out"]).arg(&stix_dir));
    assert!(out.contains("exported 3 indicators and 3 sightings (2 withheld"), "{out}");
    let bundle_path = stix_dir.join("bundle.json");
    let v: Value = serde_json::from_str(&python(VALIDATE_REAL, &[bundle_path.to_str().unwrap()])).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["errors"], json!([]), "{v}");
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&bundle_path).unwrap()).unwrap();
    let objects = bundle["objects"].as_array().unwrap();
    let me = objects.iter().find(|o| o["type"] == "identity" && o["name"] == ORG).expect("the hub's identity");
    assert_eq!(me["id"], identity_id(ORG), "identity id derives from the organisation name");
    assert_eq!(me["contact_information"], CONTACT);
    let inds: Vec<&Value> = objects.iter().filter(|o| o["type"] == "indicator").collect();
    assert_eq!(inds.len(), 3);
    assert!(inds.iter().all(|o| o["created_by_ref"] == identity_id(ORG)), "{inds:?}");
    let patterns: String = inds.iter().filter_map(|o| o["pattern"].as_str()).collect::<Vec<_>>().join(" ");
    assert!(!patterns.contains("red.bad.example") && !patterns.contains("amber.bad.example"), "{patterns}");
    // the hub's sighting of each exported indicator, and of nothing withheld (not even its SCO)
    let text = bundle.to_string();
    assert!(!text.contains("red.bad.example") && !text.contains("amber.bad.example"), "{text}");
    let sightings: Vec<&Value> = objects.iter().filter(|o| o["type"] == "sighting").collect();
    let mut of: Vec<&str> = sightings.iter().filter_map(|s| s["sighting_of_ref"].as_str()).collect();
    let mut exported: Vec<&str> = inds.iter().filter_map(|o| o["id"].as_str()).collect();
    of.sort();
    exported.sort();
    assert_eq!(of, exported);
    for s in &sightings {
        assert_eq!(s["where_sighted_refs"], json!([identity_id(ORG)]), "{s}");
        assert_eq!(s["count"], 1, "one source (the analyst): {s}");
        assert!(!s.to_string().contains("alice"), "no source named: {s}");
        let od = s["observed_data_refs"][0].as_str().unwrap();
        assert!(objects.iter().any(|o| o["id"] == od && o["type"] == "observed-data"), "{od}");
    }
    // the id is stable: a second export names the same identity and indicator ids
    let again = d.join("stix2");
    ok(kizuna(d).args(["share", "export", "stix", "--for", "cert-x", "--out"]).arg(&again));
    let b2: Value = serde_json::from_str(&std::fs::read_to_string(again.join("bundle.json")).unwrap()).unwrap();
    let ids = |b: &Value| -> Vec<String> {
        b["objects"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&bundle), ids(&b2));

    // without --for only TLP:CLEAR leaves
    let public = d.join("public");
    let out = ok(kizuna(d).args(["share", "export", "stix", "--out"]).arg(&public));
    assert!(out.contains("exported 1 indicators and 1 sightings"), "{out}");

    // MISP feed for cert-x: PyMISP loads every event; Orgc is the hub
    let misp_dir = d.join("misp");
    ok(kizuna(d).args(["share", "export", "misp", "--for", "cert-x", "--out"]).arg(&misp_dir));
    let events: Value = serde_json::from_str(&python(PYMISP_LOAD, &[misp_dir.to_str().unwrap()])).unwrap();
    let events = events.as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["orgc"] == ORG), "{events:?}");
    let values: Vec<&str> =
        events.iter().flat_map(|e| e["values"].as_array().unwrap().iter().filter_map(Value::as_str)).collect();
    assert_eq!(values.len(), 3, "{values:?}");
    assert!(values.contains(&"198.51.100.9") && !values.contains(&"red.bad.example"), "{values:?}");

    // another hub imports the stix2-made bundle: indicators with their TLP, the sighting merged
    // into its indicator's record as a source of its own, with the sighting's TLP
    let other = tempfile::tempdir().unwrap();
    let o = other.path();
    let partner_bundle = o.join("partner.json");
    std::fs::write(&partner_bundle, python(STIX2_BUNDLE, &[])).unwrap();
    let out = ok(kizuna(o).args(["share", "import", "--origin", "cert-y"]).arg(&partner_bundle));
    assert!(out.contains("imported 2 indicators, 1 sightings, 0 objects rejected"), "{out}");
    let rec: Value =
        serde_json::from_str(&ok(kizuna(o).args(["indicator", "show", "domain:partner-c2.example", "--json"])))
            .unwrap();
    assert_eq!(rec["tlp"], "GREEN", "the indicator's own TLP; the sighting's entry keeps its AMBER: {rec}");
    let sources: Vec<&str> =
        rec["provenance"].as_array().unwrap().iter().filter_map(|p| p["source"].as_str()).collect();
    assert!(sources.contains(&"cert-y/CERT Y") && sources.contains(&"cert-y/sighting:ISP Y SOC"), "{sources:?}");
    let sighting =
        rec["provenance"].as_array().unwrap().iter().find(|p| p["source"] == "cert-y/sighting:ISP Y SOC").unwrap();
    assert_eq!(sighting["tlp"], "AMBER", "{sighting}");
    assert!(sighting["reason"].as_str().unwrap().starts_with("sighted 4 times by ISP Y SOC"), "{sighting}");
    let red: Value =
        serde_json::from_str(&ok(kizuna(o).args(["indicator", "show", "ip:203.0.113.50", "--json"]))).unwrap();
    assert_eq!(red["tlp"], "RED");

    // and the MISP feed directory
    let out = ok(kizuna(o).args(["share", "import", "--origin", "example-isac"]).arg(&misp_dir));
    assert!(out.contains("imported 3 indicators"), "{out}");
    let rec: Value =
        serde_json::from_str(&ok(kizuna(o).args(["indicator", "show", "ip:198.51.100.9", "--json"]))).unwrap();
    assert_eq!(rec["tlp"], "AMBER");

    // unusable input: reported with the reason, exit code 2, nothing else lost
    let bad = o.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[{"type":"indicator","id":"indicator--a","pattern":"[nonsense"}]}"#,
    )
    .unwrap();
    let (code, out, err) = run(kizuna(o).args(["share", "import"]).arg(&bad));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("indicator--a"), "{err}");
}

const OWN_SIGHTING: &str = r#"
import sys
import stix2
cert = stix2.Identity(name="CERT Z", identity_class="organization")
objs = [cert]
for ref in sys.argv[1:]:
    objs.append(stix2.Sighting(sighting_of_ref=ref, count=7, first_seen="2026-03-06T01:00:00Z",
                               last_seen="2026-03-06T02:00:00Z", where_sighted_refs=[cert],
                               created_by_ref=cert, object_marking_refs=[stix2.TLP_GREEN]))
print(stix2.Bundle(objects=objs).serialize())
"#;

#[test]
fn a_partners_sighting_of_our_indicator_by_id_imports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_config(d, "");
    add_indicator(d, "domain", "ours.bad.example", "green", &[]);
    let id = |host: &str| {
        kizuna_stix::ids::indicator_id(&kizuna_model::indicator_key(kizuna_model::IndicatorKind::Domain, host))
    };
    // the partner's bundle names our indicator by id only (no indicator, no observed-data)
    let bundle = d.join("sighting.json");
    std::fs::write(&bundle, python(OWN_SIGHTING, &[&id("ours.bad.example")])).unwrap();
    let out = ok(kizuna(d).args(["share", "import", "--origin", "cert-z"]).arg(&bundle));
    assert!(out.contains("imported 0 indicators, 1 sightings, 0 objects rejected"), "{out}");
    let rec: Value =
        serde_json::from_str(&ok(kizuna(d).args(["indicator", "show", "domain:ours.bad.example", "--json"]))).unwrap();
    let seen = rec["provenance"].as_array().unwrap().iter().find(|p| p["source"] == "cert-z/sighting:CERT Z");
    let seen = seen.unwrap_or_else(|| panic!("sighting not merged: {rec}"));
    assert!(seen["reason"].as_str().unwrap().starts_with("sighted 7 times by CERT Z"), "{seen}");

    // an id that is not ours (nor in the bundle) is still rejected, with the reason
    std::fs::write(&bundle, python(OWN_SIGHTING, &[&id("not-ours.bad.example")])).unwrap();
    let (code, out, err) = run(kizuna(d).args(["share", "import", "--origin", "cert-z"]).arg(&bundle));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not among the objects received nor one of ours"), "{err}");
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn basic(user: &str, pw: &str) -> String {
    format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}")))
}

fn indicator(i: usize) -> Value {
    domain_indicator(i, "polled-bad.example")
}

/// medallion's memory backend on a loopback port with `n` indicators, pages of at most 40.
fn medallion(n: usize) -> (Medallion, SocketAddr) {
    let objects: Vec<Value> = (0..n).map(indicator).collect();
    let m = Medallion::start(&one_collection(COLLECTION, &objects), 40);
    let addr = SocketAddr::from(([127, 0, 0, 1], m.port));
    (m, addr)
}

fn post_to_medallion(addr: SocketAddr, objects: &[Value]) {
    let media = "application/taxii+json;version=2.1";
    let (code, body) = http(
        addr,
        "POST",
        &format!("/tg/collections/{COLLECTION}/objects/"),
        &format!("{}Accept: {media}\r\nContent-Type: {media}\r\n", basic("admin", "Password0")),
        &json!({ "objects": objects }).to_string(),
    );
    assert_eq!(code, 202, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["success_count"], objects.len(), "{v}");
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse().ok())).unwrap_or(0.0)
}

#[test]
fn poll_by_url_and_by_partner_and_hub_serve_polls_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_medallion, maddr) = medallion(90);
    let url = format!("http://{maddr}/tg/collections/{COLLECTION}/");

    // one-off polls by URL, into their own store: all, then nothing new
    let once = d.join("once");
    let poll_url = || {
        let mut c = kizuna(&once);
        c.args(["share", "poll", &url, "--user", "admin", "--password", "Password0", "--origin", "cert-m"]);
        c
    };
    let out = ok(&mut poll_url());
    assert!(out.starts_with("90 objects in 3 pages: 90 indicators"), "{out}");
    let out = ok(&mut poll_url());
    assert!(out.starts_with("0 objects in 1 pages"), "{out}");
    let (code, _, err) = run(kizuna(&once).args(["share", "poll", &url, "--user", "admin", "--password", "wrong"]));
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = run(kizuna(&once).args(["share", "poll", "nobody"]));
    assert_eq!(code, 1);
    assert!(err.contains("neither a [[hub.sharing.poll]] partner"), "{err}");

    // the hub: configured partner, polled every second
    let hubdir = d.join("hub");
    std::fs::create_dir_all(&hubdir).unwrap();
    std::fs::write(hubdir.join("cert-m.password"), "Password0\n").unwrap();
    let hport = free_port();
    write_config(
        &hubdir,
        &format!(
            "[[hub.sharing.poll]]\nname = \"cert-m\"\nurl = \"{url}\"\nuser = \"admin\"\npassword_file = \"{}\"\ninterval_secs = 1\npage_size = 40\n",
            hubdir.join("cert-m.password").display()
        ),
    );
    let out = ok(kizuna(&hubdir).args(["share", "partner", "add", "cert-x", "--tlp-max", "amber"]));
    let password = out.lines().find_map(|l| l.strip_prefix("TAXII password:")).unwrap().trim().to_owned();
    add_indicator(&hubdir, "domain", "own.bad.example", "green", &[]);
    let haddr = SocketAddr::from(([127, 0, 0, 1], hport));
    let log = hubdir.join("hub.log");
    let mut hub = Proc(
        kizuna(&hubdir)
            .args(["hub", "serve", "--listen", &haddr.to_string()])
            .env("KIZUNA_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );
    let logtext = || std::fs::read_to_string(&log).unwrap_or_default();
    let objects = r#"kizuna_taxii_poll_objects_total{partner="cert-m"}"#;
    let polls = r#"kizuna_taxii_polls_total{partner="cert-m"}"#;
    let scrape = || http(haddr, "GET", "/metrics", "", "").1;
    assert!(
        wait_until(Duration::from_secs(30), || TcpStream::connect(haddr).is_ok() && metric(&scrape(), objects) >= 90.0),
        "no first poll: {}",
        logtext()
    );
    assert_eq!(metric(&scrape(), objects), 90.0);
    post_to_medallion(maddr, &(500..504).map(indicator).collect::<Vec<_>>());
    assert!(wait_until(Duration::from_secs(30), || metric(&scrape(), objects) >= 94.0), "{}", logtext());
    let p = metric(&scrape(), polls);
    assert!(wait_until(Duration::from_secs(30), || metric(&scrape(), polls) >= p + 2.0), "{}", logtext());
    let m = scrape();
    assert_eq!(metric(&m, objects), 94.0, "each object once: {m}");
    assert_eq!(metric(&m, r#"kizuna_taxii_poll_indicators_total{partner="cert-m"}"#), 94.0);
    assert_eq!(metric(&m, r#"kizuna_taxii_poll_errors_total{partner="cert-m"}"#), 0.0);
    assert!(metric(&m, r#"kizuna_taxii_poll_last_success_timestamp_seconds{partner="cert-m"}"#) > 1.7e9);
    assert_eq!(m.matches("# EOF").count(), 1, "one exposition");

    // its TAXII collection: the hub's own indicator, created by the configured identity
    let (code, body) = http(
        haddr,
        "GET",
        "/taxii2/kizuna/collections/kizuna-indicators/objects/?limit=1000",
        &format!("{}Accept: application/taxii+json;version=2.1\r\n", basic("cert-x", &password)),
        "",
    );
    assert_eq!(code, 200, "{body}: {}", logtext());
    let env: Value = serde_json::from_str(&body).unwrap();
    let own = env["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["pattern"].as_str().is_some_and(|p| p.contains("own.bad.example")))
        .expect("own indicator");
    assert_eq!(own["created_by_ref"], identity_id(ORG));

    // SIGHUP: the partner list is re-read without a restart. cert-m goes, cert-n (the same
    // collection under another name: its own cursor) comes; a broken list changes nothing.
    let pid = hub.0.id().to_string();
    let partner = |name: &str| {
        format!(
            "[[hub.sharing.poll]]\nname = \"{name}\"\nurl = \"{url}\"\nuser = \"admin\"\npassword_file = \"{}\"\ninterval_secs = 1\npage_size = 40\n",
            hubdir.join("cert-m.password").display()
        )
    };
    write_config(&hubdir, &partner("cert-n"));
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let objects_n = r#"kizuna_taxii_poll_objects_total{partner="cert-n"}"#;
    assert!(
        wait_until(Duration::from_secs(30), || metric(&scrape(), objects_n) >= 94.0),
        "cert-n not polled after SIGHUP: {}",
        logtext()
    );
    assert!(logtext().contains("SIGHUP: [[hub.sharing.poll]] reloaded"), "{}", logtext());
    let m_polls = metric(&scrape(), polls);
    let n_polls = metric(&scrape(), r#"kizuna_taxii_polls_total{partner="cert-n"}"#);
    assert!(
        wait_until(Duration::from_secs(30), || metric(&scrape(), r#"kizuna_taxii_polls_total{partner="cert-n"}"#)
            >= n_polls + 2.0),
        "{}",
        logtext()
    );
    assert_eq!(metric(&scrape(), polls), m_polls, "cert-m is no longer polled");
    assert_eq!(metric(&scrape(), objects_n), 94.0, "each object once for cert-n too");
    write_config(&hubdir, &format!("{}{}", partner("cert-n"), partner("cert-n")));
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    assert!(wait_until(Duration::from_secs(10), || logtext().contains("SIGHUP: config not reloaded")), "{}", logtext());
    assert!(logtext().contains("\"cert-n\": the name is used twice"), "{}", logtext());
    let n_polls = metric(&scrape(), r#"kizuna_taxii_polls_total{partner="cert-n"}"#);
    assert!(
        wait_until(Duration::from_secs(30), || metric(&scrape(), r#"kizuna_taxii_polls_total{partner="cert-n"}"#)
            > n_polls),
        "cert-n keeps polling after a refused reload: {}",
        logtext()
    );
    // Back to cert-m for the checks after the hub (share poll by partner name).
    write_config(&hubdir, &partner("cert-m"));

    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert!(wait_until(Duration::from_secs(10), || hub.0.try_wait().unwrap().is_some()), "hub did not stop");

    // the state is the store's: a manual poll of the same partner after the hub finds nothing
    // new, then only what was added meanwhile
    let out = ok(kizuna(&hubdir).args(["share", "poll", "cert-m"]));
    assert!(out.starts_with("0 objects"), "{out}");
    post_to_medallion(maddr, &(600..602).map(indicator).collect::<Vec<_>>());
    let out = ok(kizuna(&hubdir).args(["share", "poll", "cert-m"]));
    assert!(out.starts_with("2 objects in 1 pages: 2 indicators"), "{out}");
    let list = ok(kizuna(&hubdir).args(["indicator", "list", "--state", "active"]));
    assert_eq!(list.lines().filter(|l| l.contains(".polled-bad.example")).count(), 96, "{list}");
}
