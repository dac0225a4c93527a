use std::net::IpAddr;

use expect_test::expect_file;
use kizuna_model::{Classification, ClassificationType as C, IpNet, LegalBasis, Observation, Taxonomy, Timestamp, Tlp};
use kizuna_parsers::Format;
use kizuna_parsers::intelmq::{from_json, write_json};
use serde_json::{Value, json};

use crate::common::*;

#[test]
fn intelmq_fixture() {
    let items = run(&Format::IntelMq, &ctx("events.jsonl"), &fixture("intelmq/events.jsonl"));
    expect_file!["../fixtures/intelmq/events.expected"].assert_eq(&render(&items));
    assert_eq!(counts(&items), (4, 0, 7));
    let obs = observations(&items);

    let o = obs[0];
    assert_eq!(o.feed.name, "Sinkhole-Events IPv4");
    assert_eq!(o.feed.accuracy, Some(100));
    assert_eq!(o.classification.identifier.as_deref(), Some("mirai"));
    assert_eq!(o.time_observation, Timestamp::from_secs(1_772_690_400), "its own time.observation");
    assert_eq!(o.time_source, Some(Timestamp::from_secs(1_772_669_021)));
    assert_eq!(extra(o, "intelmq.source.geolocation.city"), &json!("TOKYO"));
    assert_eq!(extra(o, "intelmq.severity"), &json!("critical"));
    assert_eq!(extra(o, "source.naics"), &json!(517311));
    assert!(!o.extra.keys().any(|k| k.contains("raw")), "raw is dropped");
    // Written back, the harmonization keys return under their own names.
    let mut out = Vec::new();
    write_json(o, &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["source.geolocation.city"], json!("TOKYO"));
    assert_eq!(v["product.vendor"], json!("mikrotik"));
    assert_eq!(v["severity"], json!("critical"));
    assert_eq!(v["extra.source.naics"], json!(517311));
    assert_eq!(v["tlp"], json!("AMBER"));
    assert!(v.get("raw").is_none());
    assert!(v.as_object().unwrap().keys().all(|k| !k.starts_with("intelmq.")));

    let o = obs[1];
    assert_eq!(o.tlp, Tlp::Clear);
    assert_eq!(o.legal_basis, LegalBasis::Consent);
    assert_eq!(o.source.ip, Some("2001:db8:30::dead:beef".parse().unwrap()));
    assert_eq!(o.time_observation, Timestamp::from_micros(1_772_690_460_500_000));
    assert_eq!(extra(o, "intelmq.source.registry"), &json!("APNIC"));
    assert_eq!(extra(o, "attempts"), &json!({"count": 12, "users": ["root", "admin"]}));
    assert!(!o.extra.contains_key("intelmq.__type"));

    // IntelMQ 1.x: extra as a JSON string; no time.observation: the context's.
    let o = obs[2];
    assert_eq!(extra(o, "banner"), &json!("login: "));
    assert_eq!(o.time_observation, OBSERVED);
    assert_eq!(o.tlp, Tlp::Amber);
    assert_eq!(o.legal_basis, LegalBasis::LegitimateBusiness);

    let o = obs[3];
    assert_eq!(o.classification.kind, C::Undetermined);
    assert_eq!(o.classification.taxonomy, Taxonomy::Other);
    assert_eq!(o.tlp, Tlp::Red);
    assert_eq!(o.source.fqdn.as_deref(), Some("phish.example"));

    let rej = rejects(&items);
    assert_eq!(rej.iter().map(|r| r.line).collect::<Vec<_>>(), [6, 7, 8, 9, 10, 11, 12]);
    assert!(
        rej[0].reason.starts_with("classification.type: unknown classification type \"infected system\""),
        "{}",
        rej[0].reason
    );
    assert!(rej[1].reason.starts_with("source.ip: invalid IP address"), "{}", rej[1].reason);
    assert!(rej[2].reason.starts_with("source.port: port 65536 out of range"), "{}", rej[2].reason);
    assert!(rej[3].reason.starts_with("tlp: unknown TLP \"PURPLE\""), "{}", rej[3].reason);
    assert_eq!(rej[4].reason, "no source.ip, source.network, source.fqdn, source.url or source.account");
}

#[test]
fn context_tlp_overrides_but_feed_name_only_fills_in() {
    let c = kizuna_parsers::Context { tlp: Some(Tlp::AmberStrict), ..ctx("x") };
    let items = run(&Format::IntelMq, &c, &fixture("intelmq/events.jsonl"));
    assert!(observations(&items).iter().all(|o| o.tlp == Tlp::AmberStrict));
    let line = br#"{"classification.type": "scanner", "source.ip": "192.0.2.1"}"#;
    let items = run(&Format::IntelMq, &ctx("x"), line);
    assert_eq!(rejects(&items)[0].reason, "feed.name: missing");
    let c = kizuna_parsers::Context { feed_name: Some("Upstream".into()), ..ctx("x") };
    assert_eq!(observations(&run(&Format::IntelMq, &c, line))[0].feed.name, "Upstream");
}

#[test]
fn from_json_requires_time_observation_and_feed_name() {
    assert_eq!(from_json(br#"{"feed.name": "f", "source.ip": "192.0.2.1"}"#).unwrap_err(), "time.observation: missing");
    assert_eq!(from_json(br#"{"time.observation": "2026-03-05T00:00:00+00:00"}"#).unwrap_err(), "feed.name: missing");
    assert!(from_json(b"{} trailing").is_err());
    assert!(from_json(b"").is_err());
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn text(&mut self) -> String {
        const PARTS: &[&str] = &[
            "a", "Z", "0", " ", "\"", "\\", "\n", "\t", "\u{1}", "\u{7f}", "é", "日本", "😀", "/", ".", "-", "{", "}",
        ];
        (0..self.below(12)).map(|_| *self.pick(PARTS)).collect()
    }
    fn opt_text(&mut self) -> Option<String> {
        match self.below(4) {
            0 => None,
            1 => Some(String::new()),
            _ => Some(self.text()),
        }
    }
    fn ip(&mut self) -> IpAddr {
        if self.coin() {
            IpAddr::from((self.next() as u32).to_be_bytes())
        } else {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&self.next().to_be_bytes());
            if self.coin() {
                b[8..].copy_from_slice(&self.next().to_be_bytes());
            }
            IpAddr::from(b)
        }
    }
    fn json(&mut self, depth: u32) -> Value {
        match self.below(if depth > 2 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(self.coin()),
            2 => json!(self.next()),
            3 => json!((self.next() as i64) >> 3),
            4 => json!(self.text()),
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth + 1)).collect()),
            _ => Value::Object((0..self.below(4)).map(|_| (self.text(), self.json(depth + 1))).collect()),
        }
    }
    fn endpoint(&mut self, e: &mut kizuna_model::Endpoint) {
        if self.coin() {
            return;
        }
        e.ip = self.coin().then(|| self.ip());
        e.port = self.coin().then(|| self.next() as u16);
        e.asn = self.coin().then(|| self.next() as u32);
        e.as_name = self.opt_text();
        e.network = self.coin().then(|| {
            let ip = self.ip();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            IpNet::new(ip, self.below(max + 1) as u8).unwrap()
        });
        e.fqdn = self.opt_text();
        e.url = self.opt_text();
        e.reverse_dns = self.opt_text();
        e.geolocation_cc = self.opt_text();
        e.account = self.opt_text();
    }
    fn time(&mut self) -> Timestamp {
        // 1970 … 2100, microseconds; some whole seconds and milliseconds.
        let us = (self.below(4_102_444_800_000_000)) as i64;
        match self.below(3) {
            0 => Timestamp::from_micros(us - us % 1_000_000),
            1 => Timestamp::from_micros(us - us % 1000),
            _ => Timestamp::from_micros(us),
        }
    }
    fn observation(&mut self) -> Observation {
        let kind = *self.pick(C::ALL);
        let mut class = Classification::new(kind);
        if self.below(4) == 0 {
            class.taxonomy = *self.pick(Taxonomy::ALL); // need not match the type
        }
        class.identifier = self.opt_text();
        let mut o = Observation::new(self.text(), class, self.time());
        o.time_source = self.coin().then(|| self.time());
        self.endpoint(&mut o.source);
        self.endpoint(&mut o.destination);
        o.malware.name = self.opt_text();
        o.malware.md5 = self.opt_text();
        o.malware.sha1 = self.opt_text();
        o.malware.sha256 = self.opt_text();
        o.protocol.transport = self.opt_text();
        o.protocol.application = self.opt_text();
        o.feed.provider = self.opt_text();
        o.feed.code = self.opt_text();
        o.feed.url = self.opt_text();
        o.feed.documentation = self.opt_text();
        o.feed.accuracy = self.coin().then(|| self.next() as u8);
        o.event_description = self.opt_text();
        o.tlp = *self.pick(Tlp::ALL);
        o.legal_basis = *self.pick(LegalBasis::ALL);
        const KEYS: &[&str] = &[
            "cowrie.session",
            "intelmq.source.geolocation.city",
            "intelmq.source.registry",
            "intelmq.severity",
            "intelmq.extra.odd",
            "intelmq.source.ip",
            "intelmq.raw",
            "intelmq.Not A Key",
            "intelmq.",
            "legal_basis",
            "kizuna.escaped.legal_basis",
            "kizuna.escaped.",
            "",
            "extra",
            "tag",
            "source.naics",
        ];
        for _ in 0..self.below(6) {
            let k = if self.coin() { (*self.pick(KEYS)).to_owned() } else { self.text() };
            let v = self.json(0);
            o.extra.insert(k, v);
        }
        o
    }
}

#[test]
fn round_trip_over_generated_observations() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    for i in 0..20_000 {
        let o = rng.observation();
        buf.clear();
        write_json(&o, &mut buf);
        let back = from_json(&buf).unwrap_or_else(|e| panic!("#{i}: {e}\n{}", String::from_utf8_lossy(&buf)));
        assert_eq!(back, o, "#{i}: {}", String::from_utf8_lossy(&buf));
        assert_eq!(back.id(), o.id());
        // Valid JSON, keys unique.
        let v: serde_json::Map<String, Value> = serde_json::from_slice(&buf).unwrap();
        assert!(v.len() > 3);
    }
}

#[test]
fn written_json_looks_like_intelmq() {
    let mut o = Observation::new(
        "Sinkhole-Events IPv4",
        Classification::with_identifier(C::InfectedSystem, "mirai"),
        Timestamp::from_secs(1_772_690_400),
    );
    o.time_source = Some(Timestamp::from_micros(1_772_668_812_123_456));
    o.source.ip = Some("2001:db8::1".parse().unwrap());
    o.source.network = Some("2001:db8::/32".parse().unwrap());
    o.source.port = Some(23);
    o.tlp = Tlp::Clear;
    o.extra.insert("intelmq.source.geolocation.city".into(), json!("TOKYO"));
    o.extra.insert("nested".into(), json!({"a": [1, "x\"y"]}));
    let mut out = Vec::new();
    write_json(&o, &mut out);
    expect_test::expect![[r#"{"classification.identifier":"mirai","classification.taxonomy":"malicious-code","classification.type":"infected-system","extra.legal_basis":"legitimate-business","extra.nested":{"a":[1,"x\"y"]},"feed.name":"Sinkhole-Events IPv4","source.ip":"2001:db8::1","source.network":"2001:db8::/32","source.port":23,"time.observation":"2026-03-05T06:00:00+00:00","time.source":"2026-03-05T00:00:12.123456+00:00","tlp":"WHITE","source.geolocation.city":"TOKYO"}"#]]
    .assert_eq(std::str::from_utf8(&out).unwrap());
}
