//! Cowrie and Suricata EVE lines: valid JSON, the fields the tools write, sane sessions.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;

use kizuna_gen::{EventSpec, cowrie, suricata_eve};
use serde_json::Value;

fn lines(f: fn(&kizuna_gen::World, &EventSpec, &mut Vec<u8>) -> std::io::Result<()>, spec: &EventSpec) -> Vec<Value> {
    let mut out = Vec::new();
    f(common::small_world(), spec, &mut out).expect("vec");
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.ends_with('\n'));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn cowrie_vec(w: &kizuna_gen::World, s: &EventSpec, o: &mut Vec<u8>) -> std::io::Result<()> {
    cowrie(w, s, o)
}
fn eve_vec(w: &kizuna_gen::World, s: &EventSpec, o: &mut Vec<u8>) -> std::io::Result<()> {
    suricata_eve(w, s, o)
}

fn is_iso_z(s: &str) -> bool {
    // 2026-03-05T00:00:12.123456Z
    s.len() == 27 && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.' && s.ends_with('Z')
}

#[test]
fn cowrie_sessions_look_like_cowrie() {
    let spec = EventSpec { lines: 20_000, ipv6_share: 0.1, ..EventSpec::default() };
    let evs = lines(cowrie_vec, &spec);
    assert_eq!(evs.len(), 20_000);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut open: HashMap<String, (String, bool)> = HashMap::new();
    let mut last = String::new();
    let mut v6 = 0;
    for e in &evs {
        let id = e["eventid"].as_str().expect("eventid");
        *ids.entry(id).or_default() += 1;
        for k in ["message", "sensor", "timestamp", "src_ip", "session"] {
            assert!(e.get(k).is_some(), "{id} lacks {k}: {e}");
        }
        let ts = e["timestamp"].as_str().expect("ts");
        assert!(is_iso_z(ts), "{ts}");
        assert!(ts >= last.as_str(), "time order");
        last = ts.to_string();
        let sess = e["session"].as_str().expect("session");
        assert_eq!(sess.len(), 12);
        assert!(sess.bytes().all(|b| b.is_ascii_hexdigit()));
        let ip: IpAddr = e["src_ip"].as_str().expect("ip").parse().expect("ip parses");
        match id {
            "cowrie.session.connect" => {
                assert!(open.insert(sess.to_string(), (ip.to_string(), false)).is_none(), "session id reused");
                assert!(["ssh", "telnet"].contains(&e["protocol"].as_str().expect("protocol")));
                e["src_port"].as_u64().expect("src_port");
                e["dst_port"].as_u64().expect("dst_port");
                e["dst_ip"].as_str().expect("dst_ip").parse::<IpAddr>().expect("dst ip");
                if ip.is_ipv6() {
                    v6 += 1;
                }
            }
            other => {
                let s = open.get_mut(sess).unwrap_or_else(|| panic!("{other} before connect"));
                assert_eq!(s.0, ip.to_string(), "src_ip stable in a session");
                match other {
                    "cowrie.login.failed" | "cowrie.login.success" => {
                        e["username"].as_str().expect("username");
                        e["password"].as_str().expect("password");
                        if other == "cowrie.login.success" {
                            s.1 = true;
                        }
                    }
                    "cowrie.command.input" => {
                        assert!(s.1, "command before login");
                        let input = e["input"].as_str().expect("input");
                        assert_eq!(e["message"].as_str(), Some(format!("CMD: {input}").as_str()));
                    }
                    "cowrie.session.file_download" => {
                        let sha = e["shasum"].as_str().expect("shasum");
                        assert_eq!(sha.len(), 64);
                        assert!(e["outfile"].as_str().expect("outfile").ends_with(sha));
                        if let Some(u) = e.get("url") {
                            assert!(u.as_str().expect("url").starts_with("http://"));
                        } else {
                            e["destfile"].as_str().expect("redirection keeps destfile");
                        }
                    }
                    "cowrie.session.closed" => {
                        assert!(e["duration"].as_f64().expect("duration") >= 0.0);
                        open.remove(sess);
                    }
                    _ => {}
                }
            }
        }
    }
    for id in [
        "cowrie.session.connect",
        "cowrie.client.version",
        "cowrie.client.kex",
        "cowrie.login.failed",
        "cowrie.login.success",
        "cowrie.command.input",
        "cowrie.session.file_download",
        "cowrie.log.closed",
        "cowrie.session.closed",
    ] {
        assert!(ids.contains_key(id), "no {id}");
    }
    assert!(ids["cowrie.login.failed"] > ids["cowrie.login.success"]);
    let connects = ids["cowrie.session.connect"];
    assert!(v6 > connects / 25 && v6 < connects / 4, "v6 {v6} of {connects}");
    assert!(last.starts_with("2026-03-05T2"), "the day is used to its end: {last}");
}

#[test]
fn eve_lines_follow_the_eve_format() {
    let spec = EventSpec { lines: 20_000, ..EventSpec::default() };
    let evs = lines(eve_vec, &spec);
    assert_eq!(evs.len(), 20_000);
    let mut types: HashMap<String, usize> = HashMap::new();
    let mut last = String::new();
    let mut last_alerts = 0;
    for e in &evs {
        let t = e["event_type"].as_str().expect("event_type").to_string();
        let ts = e["timestamp"].as_str().expect("timestamp");
        // 2026-03-05T09:00:12.123456+0900
        assert_eq!(ts.len(), 31, "{ts}");
        assert!(ts.ends_with("+0900"), "{ts}");
        assert!(ts >= last.as_str());
        last = ts.to_string();
        if t == "stats" {
            let a = e["stats"]["detect"]["alert"].as_u64().expect("alert counter");
            assert!(a >= last_alerts, "counters are cumulative");
            last_alerts = a;
            e["stats"]["uptime"].as_u64().expect("uptime");
        } else {
            e["flow_id"].as_u64().expect("flow_id");
            e["src_ip"].as_str().expect("src_ip").parse::<IpAddr>().expect("src ip");
            e["dest_ip"].as_str().expect("dest_ip").parse::<IpAddr>().expect("dest ip");
            e["src_port"].as_u64().expect("src_port");
            e["proto"].as_str().expect("proto");
        }
        match t.as_str() {
            "alert" => {
                let a = &e["alert"];
                a["signature_id"].as_u64().expect("sid");
                a["signature"].as_str().expect("signature");
                a["category"].as_str().expect("category");
                let sev = a["severity"].as_u64().expect("severity");
                assert!((1..=4).contains(&sev));
                assert_eq!(a["gid"], 1);
            }
            "dns" => assert!(e["dns"]["rrname"].is_string()),
            "http" => assert!(e["http"]["hostname"].is_string() && e["http"]["status"].is_u64()),
            "tls" => assert!(e["tls"]["sni"].is_string()),
            "flow" => assert!(e["flow"]["pkts_toserver"].is_u64() && e["flow"]["end"].is_string()),
            "anomaly" => assert!(e["anomaly"]["type"].is_string()),
            _ => {}
        }
        *types.entry(t).or_default() += 1;
    }
    for t in ["alert", "flow", "dns", "http", "tls", "anomaly", "stats"] {
        assert!(types.get(t).copied().unwrap_or(0) > 0, "no {t}: {types:?}");
    }
    assert!(types["alert"] > types["stats"] * 5);
}
