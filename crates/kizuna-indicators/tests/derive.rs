//! Derivation from real-format fixtures (parsed by kizuna-parsers), the shipped allow-list,
//! conflicts and the publication granularity.

use std::path::PathBuf;

use kizuna_indicators::store::{
    AllowPattern, AllowScope, IndicatorRecord, IndicatorState, evaluate_allowlist, parse_key,
};
use kizuna_indicators::{
    AnalystInput, DnsTarget, Granularity, Policy, PolicyConfig, UrlGranularity, analyst_indicator, dns_target,
    from_observation, granularity_report, parse_allowlist, parse_expiry, parse_reference, publish_granularity,
};
use kizuna_model::{ClassificationType as C, Indicator, IndicatorKind, LegalBasis, Observation, Timestamp, Tlp};
use kizuna_parsers::{Context, CsvMapping, Format, Item};

/// 2026-03-05T06:00:00Z, the fixtures' time.observation.
const OBSERVED: Timestamp = Timestamp::from_secs(1_772_690_400);
const DAY: i64 = 86_400_000_000;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kizuna-parsers/tests/fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(format: &Format, name: &str, input: &[u8]) -> Vec<Observation> {
    kizuna_parsers::parse(format, &Context::new(name, OBSERVED), input)
        .expect("set up")
        .filter_map(|i| if let Item::Observation(o) = i { Some(o) } else { None })
        .collect()
}

fn derive_all(obs: &[Observation], policy: &Policy) -> Vec<Indicator> {
    obs.iter().flat_map(|o| from_observation(o, policy)).collect()
}

fn record(i: &Indicator, policy: &Policy) -> IndicatorRecord {
    let v = policy.check(i.kind, &i.value);
    IndicatorRecord {
        key: i.key(),
        indicator: i.clone(),
        state: if v.conflict.is_some() { IndicatorState::AllowListed } else { IndicatorState::Active },
        conflict: v.conflict,
        shared_host: v.shared_host,
        provenance: vec![],
        withdrawal: None,
        created: OBSERVED,
        updated: OBSERVED,
        version: 1,
        change_seq: 1,
    }
}

#[test]
fn cowrie_downloads_become_url_and_hash_indicators() {
    let obs = parse(&Format::Cowrie, "cowrie.json", &fixture("cowrie/cowrie.json"));
    assert!(obs.len() > 5);
    let got = derive_all(&obs, &Policy::default());
    let values: Vec<(IndicatorKind, &str)> = got.iter().map(|i| (i.kind, i.value.as_str())).collect();
    assert_eq!(
        values,
        vec![
            (IndicatorKind::Url, "http://198.51.100.23/bins.sh"),
            (IndicatorKind::Sha256, "a8f5c1e4d2b3a4958677e6f1c2d3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f"),
            // The second download's payload is the empty file (a failed download): no hash.
            (IndicatorKind::Url, "http://dl.bad.example:8080/x86"),
        ]
    );
    let url = &got[0];
    assert_eq!(url.category, C::MalwareDistribution);
    assert_eq!(url.source, "cowrie");
    assert_eq!(url.tlp, Tlp::Amber);
    assert_eq!(url.legal_basis, LegalBasis::LegitimateBusiness);
    assert_eq!(url.reason, "Cowrie honeypot hp-tokyo-01 saw a download of a8f5c1e4… from this URL on 2026-03-05");
    assert_eq!(got[1].reason, "Cowrie honeypot hp-tokyo-01 saw an attacker download this file on 2026-03-05");
    assert_eq!(url.first_seen, Timestamp::parse("2026-03-05T00:00:13.950112Z").expect("time"));
    // Expiry: 30 days for malware distribution, from when kizuna read it.
    assert_eq!(url.expires.as_micros(), OBSERVED.as_micros() + 30 * DAY);
    assert_eq!(url.confidence, 60);
    // Logins, commands and file writes of the attacking bot yield nothing.
    let none: Vec<&Observation> = obs.iter().filter(|o| o.classification.kind != C::MalwareDistribution).collect();
    assert!(none.iter().all(|o| from_observation(o, &Policy::default()).is_empty()));
}

#[test]
fn shadowserver_compromised_websites_become_url_indicators() {
    let name = "2026-03-05-compromised_website-jp-geo.csv";
    let obs = parse(&Format::Shadowserver { report: None }, name, &fixture(&format!("shadowserver/{name}")));
    let got = derive_all(&obs, &Policy::default());
    assert!(!got.is_empty());
    assert!(got.iter().all(|i| i.kind == IndicatorKind::Url && i.category == C::SystemCompromise));
    let shop = got.iter().find(|i| i.value.starts_with("https://shop.example.jp/")).expect("shop.example.jp");
    assert_eq!(shop.value, "https://shop.example.jp/wp-content/plugins/wp-file-manager/lib/php/connector.minimal.php");
    assert_eq!(
        shop.reason,
        "Shadowserver (Compromised-Website) reports this site as compromised (webshell) on 2026-03-05, detected since 2026-03-01 00:00:00"
    );
    assert_eq!(shop.expires.as_micros(), OBSERVED.as_micros() + 14 * DAY);
    // Per-feed confidence and the opt-out.
    let mut cfg = PolicyConfig::default();
    cfg.feeds
        .insert("Compromised-Website".into(), kizuna_indicators::FeedPolicy { confidence: Some(85), derive: None });
    let p = Policy::from_config(&cfg).expect("policy");
    assert!(derive_all(&obs, &p).iter().all(|i| i.confidence == 85));
    cfg.feeds
        .insert("Compromised-Website".into(), kizuna_indicators::FeedPolicy { confidence: None, derive: Some(false) });
    assert!(derive_all(&obs, &Policy::from_config(&cfg).expect("policy")).is_empty());
    // Other Shadowserver reports (sinkhole, scans, honeypot brute force) are about hosts to
    // notify, not to block.
    for report in [
        "2026-03-05-event4_sinkhole-jp-geo.csv",
        "2026-03-05-scan_http-jp-geo.csv",
        "2026-03-05-event4_honeypot_brute_force-jp-geo.csv",
    ] {
        let obs = parse(&Format::Shadowserver { report: None }, report, &fixture(&format!("shadowserver/{report}")));
        assert!(!obs.is_empty(), "{report}");
        assert!(derive_all(&obs, &Policy::default()).is_empty(), "{report}");
    }
}

const FEODO: &str = r##"
name = "feodo-ipblocklist"
comment = "#"
time_format = "%Y-%m-%d %H:%M:%S"
required = ["source.ip"]

[columns]
"time.source" = "first_seen_utc"
"source.ip" = "dst_ip"
"source.port" = "dst_port"
"malware.name" = "malware"
"extra.c2_status" = "c2_status"
"extra.last_online" = "last_online"

[constants]
"feed.name" = "Feodo-Tracker-Blocklist"
"feed.provider" = "abuse.ch"
"classification.type" = "c2-server"
"classification.identifier" = "botnet-c2"
"tlp" = "WHITE"
"##;

#[test]
fn feodo_c2_servers_become_address_indicators() {
    let m: CsvMapping = toml::from_str(FEODO).expect("mapping");
    let obs = parse(&Format::Csv(m), "ipblocklist.csv", &fixture("csv/feodo-ipblocklist.csv"));
    let got = derive_all(&obs, &Policy::default());
    assert_eq!(got.len(), obs.len());
    let first = &got[0];
    assert_eq!((first.kind, first.value.as_str()), (IndicatorKind::Ip, "198.51.100.10/32"));
    assert_eq!(first.category, C::C2Server);
    assert_eq!(first.tlp, Tlp::Clear);
    assert_eq!(first.malware.as_deref(), Some("qakbot"));
    assert_eq!(
        first.reason,
        "abuse.ch (Feodo-Tracker-Blocklist) reports this address as a botnet command-and-control server on 2026-02-27 (malware: qakbot)"
    );
    // Seen on 2026-02-27, read on 2026-03-05: 30 days from the reading.
    assert_eq!(first.expires.as_micros(), OBSERVED.as_micros() + 30 * DAY);
}

#[test]
fn intelmq_phishing_and_exploit_events() {
    // IntelMQ events as a phishing-feed bot and an IDS would emit them.
    let events = concat!(
        r#"{"feed.name": "OpenPhish", "feed.provider": "OpenPhish", "feed.accuracy": 90, "classification.taxonomy": "fraud", "classification.type": "phishing", "source.url": "https://Login-Bank.Example.net/secure/index.php?acct=1", "source.fqdn": "login-bank.example.net", "time.source": "2026-03-05T03:10:00+00:00", "time.observation": "2026-03-05T06:00:00+00:00", "tlp": "GREEN"}"#,
        "\n",
        r#"{"feed.name": "Partner-IDS", "classification.taxonomy": "intrusion-attempts", "classification.type": "exploit", "source.ip": "192.0.2.99", "source.fqdn": "ek.bad.example", "event_description.text": "RIG exploit kit landing page", "time.source": "2026-03-05T04:00:00+00:00", "time.observation": "2026-03-05T06:00:00+00:00", "tlp": "AMBER", "extra.legal_basis": "consent"}"#,
        "\n",
        r#"{"feed.name": "Partner-IDS", "classification.taxonomy": "intrusion-attempts", "classification.type": "exploit", "source.ip": "192.0.2.98", "time.source": "2026-03-05T04:00:00+00:00", "time.observation": "2026-03-05T06:00:00+00:00"}"#,
        "\n",
        r#"{"feed.name": "Phish-DNS", "classification.taxonomy": "fraud", "classification.type": "phishing", "source.fqdn": "paypa1.example", "time.source": "2026-03-05T04:00:00+00:00", "time.observation": "2026-03-05T06:00:00+00:00"}"#,
        "\n",
    );
    let obs = parse(&Format::IntelMq, "events.jsonl", events.as_bytes());
    assert_eq!(obs.len(), 4);
    let got = derive_all(&obs, &Policy::default());
    let values: Vec<(IndicatorKind, &str)> = got.iter().map(|i| (i.kind, i.value.as_str())).collect();
    assert_eq!(
        values,
        vec![
            (IndicatorKind::Url, "https://login-bank.example.net/secure/index.php?acct=1"),
            (IndicatorKind::Domain, "ek.bad.example"),
            // An address that only sends exploits is a host to notify: nothing.
            (IndicatorKind::Domain, "paypa1.example"),
        ]
    );
    assert_eq!(got[0].category, C::Phishing);
    assert_eq!(got[0].confidence, 90, "feed.accuracy");
    assert_eq!(got[0].tlp, Tlp::Green);
    assert_eq!(got[0].expires.as_micros(), OBSERVED.as_micros() + 7 * DAY, "7 days for phishing");
    assert_eq!(got[0].reason, "OpenPhish reports this URL as a phishing site on 2026-03-05");
    assert_eq!(got[1].legal_basis, LegalBasis::Consent);
    assert_eq!(
        got[1].reason,
        "Partner-IDS reports this host as serving exploits on 2026-03-05: RIG exploit kit landing page"
    );
    let mut cfg = PolicyConfig::default();
    cfg.expiry_days.insert("phishing".into(), 3);
    let p = Policy::from_config(&cfg).expect("policy");
    assert_eq!(from_observation(&obs[0], &p)[0].expires.as_micros(), OBSERVED.as_micros() + 3 * DAY);
}

#[test]
fn shipped_allowlist_parses_and_protects_shared_platforms() {
    let (entries, errors) =
        parse_allowlist(kizuna_indicators::DEFAULT_ALLOWLIST, "allowlist-default.txt", "default", AllowScope::Host);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(entries.len() > 100);
    for must in [
        "google.com",
        "microsoft.com",
        "apple.com",
        "amazonaws.com",
        "cloudfront.net",
        "akamaihd.net",
        "github.com",
        "githubusercontent.com",
        "dropbox.com",
        "wordpress.com",
        "blogspot.com",
    ] {
        assert!(entries.iter().any(|e| e.pattern == AllowPattern::Domain(must.into())), "{must}");
    }
    let p = Policy::default();
    // Domains and their subdomains: conflicts.
    for d in ["google.com", "mail.google.com", "raw.githubusercontent.com", "d1234.cloudfront.net", "evil.blogspot.com"]
    {
        assert!(p.check(IndicatorKind::Domain, d).conflict.is_some(), "{d}");
    }
    assert!(p.check(IndicatorKind::Domain, "google.com.evil.example").conflict.is_none());
    assert!(p.check(IndicatorKind::Domain, "notgithub.com").conflict.is_none());
    assert!(p.check(IndicatorKind::Ip, "8.8.8.8/32").conflict.is_some());
    assert!(p.check(IndicatorKind::Ip, "8.8.0.0/16").conflict.is_some(), "a network covering a resolver");
    // URLs on them: not conflicts, but shared hosts.
    let v = p.check(IndicatorKind::Url, "https://raw.githubusercontent.com/x/y/main/payload.sh");
    assert!(v.conflict.is_none());
    assert_eq!(v.shared_host.as_deref(), Some("githubusercontent.com (default)"));
}

#[test]
fn config_entries_portal_domains_and_bad_lines() {
    let cfg = PolicyConfig {
        allowlist: vec!["partner.example".into(), "=www.only.example".into(), "203.0.113.0/24".into()],
        allowlist_strict: vec!["https://bank.example/login".into()],
        portal_domains: vec!["portal.isp.example".into()],
        default_allowlist: false,
        ..PolicyConfig::default()
    };
    let p = Policy::from_config(&cfg).expect("policy");
    assert_eq!(p.allowlist.len(), 5);
    assert!(p.check(IndicatorKind::Domain, "google.com").conflict.is_none(), "default list off");
    assert_eq!(
        p.check(IndicatorKind::Domain, "a.partner.example").conflict.as_deref(),
        Some("partner.example (config)")
    );
    assert!(p.check(IndicatorKind::Domain, "www.only.example").conflict.is_some());
    assert!(p.check(IndicatorKind::Domain, "x.www.only.example").conflict.is_none());
    assert!(p.check(IndicatorKind::Ip, "203.0.113.5/32").conflict.is_some());
    assert!(p.check(IndicatorKind::Url, "https://bank.example/login").conflict.is_some());
    assert!(p.check(IndicatorKind::Url, "https://bank.example/other").conflict.is_none());
    // Portal: nothing under it, URLs included.
    assert_eq!(
        p.check(IndicatorKind::Url, "https://my.portal.isp.example/pay").conflict.as_deref(),
        Some("portal.isp.example (portal, all)")
    );
    // Bad entries name their place.
    let bad = PolicyConfig { allowlist: vec!["ok.example".into(), "not a domain!".into()], ..PolicyConfig::default() };
    let e = Policy::from_config(&bad).expect_err("bad entry").to_string();
    assert!(e.contains("hub.indicators.allowlist:2"), "{e}");
    let (entries, errors) = parse_allowlist(
        "good.example # a note\n\n# comment\nbad..example\n=h.example\n",
        "f.txt",
        "x",
        AllowScope::All,
    );
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].note, "a note");
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].source_name.as_str(), errors[0].line), ("f.txt", 4));
    assert!(evaluate_allowlist(&entries, IndicatorKind::Url, "http://h.example/x").conflict.is_some(), "scope all");
}

#[test]
fn url_granularity_policy() {
    let mk = |url: &str| Indicator {
        kind: IndicatorKind::Url,
        value: kizuna_model::canonical_url(url).expect("url"),
        category: C::MalwareDistribution,
        source: "t".into(),
        confidence: 50,
        first_seen: OBSERVED,
        last_seen: OBSERVED,
        expires: Timestamp::from_micros(OBSERVED.as_micros() + DAY),
        reason: "r".into(),
        malware: None,
        tlp: Tlp::Clear,
        sharing_groups: vec![],
        legal_basis: LegalBasis::LegitimateBusiness,
    };
    let cfg = PolicyConfig { shared_hosting_suffixes: vec!["sites.hoster.example".into()], ..PolicyConfig::default() };
    let p = Policy::from_config(&cfg).expect("policy");
    let dedicated = record(&mk("http://Dl.Bad.Example:8080/x86"), &p);
    assert_eq!(publish_granularity(&dedicated, &p), Granularity::Host);
    assert_eq!(dns_target(&dedicated, &p, OBSERVED), Some(DnsTarget::Name("dl.bad.example".into())));
    let on_ip = record(&mk("http://198.51.100.23/bins.sh"), &p);
    assert_eq!(dns_target(&on_ip, &p, OBSERVED), Some(DnsTarget::Net("198.51.100.23/32".parse().expect("net"))));
    let github = record(&mk("https://github.com/evil/repo/releases/download/v1/x.exe"), &p);
    assert_eq!(publish_granularity(&github, &p), Granularity::UrlOnly);
    assert_eq!(dns_target(&github, &p, OBSERVED), None);
    let hosted = record(&mk("http://u123.sites.hoster.example/a.php"), &p);
    assert_eq!(publish_granularity(&hosted, &p), Granularity::UrlOnly);
    // Not publishable after expiry.
    assert_eq!(dns_target(&dedicated, &p, Timestamp::from_micros(OBSERVED.as_micros() + 2 * DAY)), None);
    // Policy url-only: no URL ever blocks a host.
    let p2 = Policy::from_config(&PolicyConfig { url_granularity: UrlGranularity::UrlOnly, ..PolicyConfig::default() })
        .expect("policy");
    assert_eq!(publish_granularity(&dedicated, &p2), Granularity::UrlOnly);
    // Hashes never go to DNS; domains and addresses are host-level.
    let mut h = mk("http://x.example/");
    h.kind = IndicatorKind::Sha256;
    h.value = "a".repeat(64);
    assert_eq!(publish_granularity(&record(&h, &p), &p), Granularity::UrlOnly);
    let rep = granularity_report(&[dedicated.clone(), on_ip, github, hosted, record(&h, &p)], &p, OBSERVED);
    assert_eq!(rep.counts[&(IndicatorKind::Url, Granularity::Host)], 2);
    assert_eq!(rep.counts[&(IndicatorKind::Url, Granularity::UrlOnly)], 2);
    assert_eq!(rep.dns_targets, 2);
    assert_eq!(rep.url_only.len(), 2);
    let text = rep.render();
    assert!(text.contains("shared host on the allow-list: github.com (default)"), "{text}");
    assert!(text.contains("shared hosting suffix sites.hoster.example"), "{text}");
}

#[test]
fn analyst_input_and_references() {
    let p = Policy::default();
    let input = AnalystInput {
        kind: "url".into(),
        value: "HTTP://Bad.Example/x.sh#frag".into(),
        category: "malware-distribution".into(),
        reason: "seen in a spam run".into(),
        expires: Some("30d".into()),
        tlp: Some("green".into()),
        confidence: None,
        ..AnalystInput::default()
    };
    let i = analyst_indicator(&input, "alice", &p, OBSERVED).expect("indicator");
    assert_eq!(i.value, "http://bad.example/x.sh");
    assert_eq!(i.source, "analyst:alice");
    assert_eq!(i.tlp, Tlp::Green);
    assert_eq!(i.confidence, 80);
    assert_eq!(i.expires.as_micros(), OBSERVED.as_micros() + 30 * DAY);
    for (field, bad) in [
        ("kind", AnalystInput { kind: "email".into(), ..input.clone() }),
        ("value", AnalystInput { value: "ftp://x".into(), ..input.clone() }),
        ("category", AnalystInput { category: "evil".into(), ..input.clone() }),
        ("reason", AnalystInput { reason: "  ".into(), ..input.clone() }),
        ("expires", AnalystInput { expires: Some("soon".into()), ..input.clone() }),
        ("tlp", AnalystInput { tlp: Some("purple".into()), ..input.clone() }),
        ("confidence", AnalystInput { confidence: Some(101), ..input.clone() }),
    ] {
        assert!(analyst_indicator(&bad, "alice", &p, OBSERVED).is_err(), "{field}");
    }
    assert_eq!(parse_expiry("12h", OBSERVED).expect("12h").as_micros(), OBSERVED.as_micros() + DAY / 2);
    assert_eq!(
        parse_expiry("2026-04-01T00:00:00Z", OBSERVED).expect("time"),
        Timestamp::parse("2026-04-01T00:00:00Z").expect("t")
    );
    assert_eq!(parse_reference("url:HTTP://Bad.Example/x.sh").expect("ref"), i.key());
    assert_eq!(parse_reference(&hex(i.key())).expect("hex"), i.key());
    assert_eq!(parse_key(&hex(i.key())), Some(i.key()));
    assert!(parse_reference("nonsense").is_err());
}

fn hex(k: [u8; 16]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}
