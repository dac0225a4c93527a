use kizuna_model::{ClassificationType as C, Taxonomy, Timestamp, Tlp};
use kizuna_parsers::{Format, Item, SetupError};
use serde_json::json;

use crate::common::*;

const AUTO: Format = Format::Shadowserver { report: None };

fn run_file(name: &str) -> Vec<Item> {
    run(&AUTO, &ctx(name), &fixture(&format!("shadowserver/{name}")))
}

#[test]
fn golden_outputs() {
    for name in [
        "2026-03-05-event4_sinkhole-jp-geo.csv",
        "2026-03-05-event4_sinkhole_http-jp-geo.csv",
        "2026-03-05-event4_honeypot_brute_force-jp-geo.csv",
        "2026-03-05-scan_http-jp-geo.csv",
        "2026-03-05-scan_telnet-jp-geo.csv",
        "2026-03-05-compromised_website-jp-geo.csv",
    ] {
        let items = run_file(name);
        let golden = fixture_path(&format!("shadowserver/{}.expected", name.trim_end_matches(".csv")));
        expect_test::expect_file![golden].assert_eq(&render(&items));
    }
}

#[test]
fn event4_sinkhole() {
    let items = run_file("2026-03-05-event4_sinkhole-jp-geo.csv");
    assert_eq!(counts(&items), (4, 0, 3));
    let obs = observations(&items);
    let o = obs[0];
    assert_eq!(o.feed.name, "Sinkhole-Events IPv4");
    assert_eq!(o.feed.provider.as_deref(), Some("Shadowserver"));
    assert_eq!(o.tlp, Tlp::Amber);
    assert_eq!(o.classification.kind, C::InfectedSystem);
    assert_eq!(o.classification.taxonomy, Taxonomy::MaliciousCode);
    assert_eq!(o.classification.identifier.as_deref(), Some("andromeda"));
    assert_eq!(o.malware.name.as_deref(), Some("andromeda"));
    assert_eq!(o.time_source, Some(Timestamp::from_secs(1_772_668_812)));
    assert_eq!(o.source.ip, Some("198.51.100.23".parse().unwrap()));
    assert_eq!(o.source.port, Some(49152));
    assert_eq!(o.source.asn, Some(64496));
    assert_eq!(o.source.geolocation_cc.as_deref(), Some("JP"));
    assert_eq!(o.source.reverse_dns.as_deref(), Some("p1234-ipoe.example.ne.jp"));
    assert_eq!(o.destination.ip, Some("192.0.2.80".parse().unwrap()));
    assert_eq!(o.destination.port, Some(80));
    assert_eq!(o.destination.asn, Some(64511));
    assert_eq!(o.protocol.transport.as_deref(), Some("tcp"));
    assert_eq!(extra(o, "intelmq.source.geolocation.city"), &json!("TOKYO"));
    assert_eq!(extra(o, "intelmq.severity"), &json!("high"));
    assert_eq!(extra(o, "source.naics"), &json!(517311));
    assert_eq!(extra(o, "family"), &json!("gamarue"));
    assert!(!o.extra.contains_key("destination.naics"), "invalidate_zero drops 0");

    // Vendor and product lower-cased; an invalid dst_ip is dropped, not the row.
    let o = obs[1];
    assert_eq!(extra(o, "intelmq.product.vendor"), &json!("mikrotik"));
    assert_eq!(extra(o, "intelmq.product.name"), &json!("routeros chr"));
    assert_eq!(extra(o, "device_type"), &json!("router"));
    assert_eq!(o.destination.ip, None);
    assert!(!o.extra.contains_key("dst_ip"));
    assert_eq!(o.destination.port, Some(23));

    let o = obs[2];
    assert_eq!(o.source.ip, Some("2001:db8:10::25".parse().unwrap()));
    assert_eq!(o.destination.ip, Some("2001:db8:ffff::53".parse().unwrap()));
    assert_eq!(o.destination.asn, None);
    assert_eq!(o.protocol.transport.as_deref(), Some("udp"));

    let o = obs[3];
    assert_eq!(o.source.asn, None, "src_asn 0");
    assert!(!o.extra.contains_key("source.sector"), "validate_to_none drops 'unknown'");
    assert!(!o.extra.contains_key("intelmq.severity"));

    let rej = rejects(&items);
    assert_eq!(rej.iter().map(|r| r.line).collect::<Vec<_>>(), [5, 6, 7]);
    assert_eq!(rej[0].reason, "time.source (column timestamp): invalid time \"2026-13-45 25:61:00\"");
    assert_eq!(rej[1].reason, "expected 33 columns as in the header, found 8");
    assert_eq!(rej[1].raw, "2026-03-05 00:09:00,tcp,198.51.100.25,49153,64496,JP,TOKYO,TOKYO");
    assert_eq!(rej[2].reason, "source.ip (column src_ip): invalid IP address \"198.51.100.300\"");
    assert_eq!(rej[2].source_name, "2026-03-05-event4_sinkhole-jp-geo.csv");
}

#[test]
fn event4_sinkhole_http() {
    let items = run_file("2026-03-05-event4_sinkhole_http-jp-geo.csv");
    assert_eq!(counts(&items), (3, 0, 2));
    let obs = observations(&items);
    assert_eq!(obs[0].feed.name, "Sinkhole-Events-HTTP IPv4");
    assert_eq!(obs[0].protocol.application.as_deref(), Some("http"));
    assert_eq!(obs[0].destination.url.as_deref(), Some("http://c2.bad.example/gate.php"));
    assert_eq!(obs[0].destination.fqdn.as_deref(), Some("c2.bad.example"));
    // A full request line in http_url: method and protocol removed, host lower-cased in fqdn.
    assert_eq!(obs[1].destination.url.as_deref(), Some("http://Panel.Bad.Example/index.php?id=5&v=2"));
    assert_eq!(obs[1].destination.fqdn.as_deref(), Some("panel.bad.example"));
    assert_eq!(obs[1].source.ip, Some("2001:db8:20::1:7".parse().unwrap()));
    assert_eq!(extra(obs[1], "forwarded_by"), &json!("203.0.113.250"));
    // No host: the bare path is no URL and stays as text.
    assert_eq!(obs[2].destination.url, None);
    assert_eq!(extra(obs[2], "http_url"), &json!("/gate.php"));
    assert_eq!(obs[2].classification.identifier, None);
    let rej = rejects(&items);
    assert_eq!(rej[0].line, 5);
    assert_eq!(rej[0].reason, "source.ip (column src_ip): empty");
    assert_eq!(rej[1].reason, "expected 39 columns as in the header, found 40");
}

#[test]
fn event4_honeypot_brute_force() {
    let items = run_file("2026-03-05-event4_honeypot_brute_force-jp-geo.csv");
    assert_eq!(counts(&items), (3, 0, 2));
    let obs = observations(&items);
    let o = obs[0];
    assert_eq!(o.feed.name, "Honeypot-Brute-Force-Events");
    assert_eq!(o.classification.kind, C::BruteForce);
    assert_eq!(o.classification.taxonomy, Taxonomy::IntrusionAttempts);
    assert_eq!(o.classification.identifier.as_deref(), Some("ssh"));
    assert_eq!(o.destination.account.as_deref(), Some("root"));
    assert_eq!(extra(o, "password"), &json!("admin123"));
    assert_eq!(extra(o, "start_time"), &json!("2026-03-05T02:00:01+00:00"));
    assert_eq!(extra(o, "end_time"), &json!("2026-03-05T02:00:09+00:00"));
    let o = obs[1];
    assert_eq!(o.source.ip, Some("2001:db8:30::dead:beef".parse().unwrap()));
    assert_eq!(o.malware.name.as_deref(), Some("mirai"));
    assert_eq!(extra(o, "intelmq.product.vendor"), &json!("zyxel"));
    assert_eq!(extra(o, "payload_url"), &json!("http://198.51.100.200/bins/mirai.arm7"));
    // Optional values failing their conversion are kept as text; the row stays.
    let o = obs[2];
    assert_eq!(extra(o, "start_time"), &json!("yesterday"));
    assert_eq!(extra(o, "vulnerability_score"), &json!("not-a-number"));
    let rej = rejects(&items);
    assert_eq!(rej[0].line, 5);
    assert_eq!(rej[0].reason, "source.port (column src_port): invalid integer \"ssh\"");
    assert_eq!(rej[1].reason, "time.source (column timestamp): empty");
}

#[test]
fn scan_http() {
    let items = run_file("2026-03-05-scan_http-jp-geo.csv");
    assert_eq!(counts(&items), (3, 0, 2));
    let obs = observations(&items);
    let o = obs[0];
    assert_eq!(o.feed.name, "Accessible-HTTP");
    assert_eq!(o.classification.identifier.as_deref(), Some("accessible-http"));
    assert_eq!(o.classification.kind, C::Other);
    assert_eq!(o.protocol.application.as_deref(), Some("http"));
    assert_eq!(o.source.port, Some(8080));
    assert_eq!(extra(o, "intelmq.product.vulnerabilities"), &json!("cve-2021-41773"));
    assert_eq!(extra(o, "tag"), &json!("cve-2021-41773;apache"));
    assert_eq!(extra(o, "http_code"), &json!(200));
    assert_eq!(extra(o, "content_length"), &json!(45));
    assert_eq!(extra(o, "http_date"), &json!("2026-03-05T03:11:42+00:00"));
    let o = obs[1];
    assert_eq!(o.source.ip, Some("2001:db8:40::8080".parse().unwrap()));
    assert_eq!(o.source.reverse_dns.as_deref(), Some("www.example-shop.jp"));
    assert_eq!(extra(o, "www_authenticate"), &json!("Basic realm=\"RT-N12\""));
    assert_eq!(extra(obs[2], "content_length"), &json!("n/a"));
    let rej = rejects(&items);
    assert_eq!(rej[0].reason, "source.ip (column ip): no usable value in \"0.0.0.0\"");
    assert_eq!(rej[1].reason, "time.source (column timestamp): invalid time \"05/03/2026 03:15\"");
}

#[test]
fn scan_telnet_multiline_banner() {
    let items = run_file("2026-03-05-scan_telnet-jp-geo.csv");
    assert_eq!(counts(&items), (3, 0, 2));
    let obs = observations(&items);
    assert_eq!(obs[0].feed.name, "Accessible-Telnet");
    assert_eq!(obs[0].classification.kind, C::VulnerableSystem);
    assert_eq!(obs[0].classification.identifier.as_deref(), Some("open-telnet"));
    assert_eq!(
        extra(obs[0], "banner"),
        &json!("\r\nBusyBox v1.19.4 (2015-04-08 13:41:30 CST) built-in shell (ash)\r\nlogin: ")
    );
    assert_eq!(obs[1].source.ip, Some("2001:db8:50::23".parse().unwrap()));
    assert_eq!(obs[1].source.port, Some(2323));
    // An invalid country code is kept as text.
    assert_eq!(obs[2].source.geolocation_cc, None);
    assert_eq!(extra(obs[2], "geo"), &json!("J"));
    let rej = rejects(&items);
    // Line numbers count the banner's embedded line breaks; raw keeps them.
    assert_eq!(rej.iter().map(|r| r.line).collect::<Vec<_>>(), [6, 7]);
    assert_eq!(rej[1].reason, "source.port (column port): port 70000 out of range");
    assert!(rej[1].raw.ends_with("\r\nlogin: \""), "{:?}", rej[1].raw);
}

#[test]
fn compromised_website() {
    let items = run_file("2026-03-05-compromised_website-jp-geo.csv");
    assert_eq!(counts(&items), (3, 0, 1));
    let obs = observations(&items);
    let o = obs[0];
    assert_eq!(o.feed.name, "Compromised-Website");
    assert_eq!(o.classification.kind, C::SystemCompromise);
    assert_eq!(o.classification.taxonomy, Taxonomy::Intrusions);
    assert_eq!(
        o.source.url.as_deref(),
        Some("https://shop.example.jp/wp-content/plugins/wp-file-manager/lib/php/connector.minimal.php")
    );
    assert_eq!(o.source.fqdn.as_deref(), Some("shop.example.jp"));
    assert_eq!(o.event_description.as_deref(), Some("webshell"));
    assert_eq!(o.protocol.application.as_deref(), Some("https"));
    // category empty: category_or_detail takes detail.
    assert_eq!(obs[1].event_description.as_deref(), Some("defacement"));
    assert_eq!(obs[1].source.url.as_deref(), Some("http://blog.example.org/index.php"));
    assert_eq!(extra(obs[1], "intelmq.product.vulnerabilities"), &json!("cve-2023-23752"));
    assert_eq!(obs[2].source.url, None);
    assert_eq!(obs[2].malware.name.as_deref(), Some("coinhive"));
    assert_eq!(obs[2].source.port, None, "empty port: no port");
    assert_eq!(rejects(&items)[0].reason, "source.ip (column ip): invalid IP address \"shop.example.jp\"");
}

#[test]
fn blocklist_cidr_becomes_network_and_unknown_columns_go_to_extra() {
    let csv = "\u{feff}timestamp,severity,ip,hostname,source,reason,asn,geo,region,city,naics,sector,tag,brand_new\n\
               2026-03-05 00:00:00,high,198.51.100.7/24,,spamhaus,spam,64496,JP,TOKYO,TOKYO,0,,,surprise\n\
               2026-03-05 00:00:00,high,203.0.113.9,,spamhaus,spam,64496,JP,TOKYO,TOKYO,0,,,\n";
    let items = run(&AUTO, &ctx("2026-03-05-blocklist-jp.csv"), csv.as_bytes());
    assert_eq!(counts(&items), (2, 0, 0));
    let obs = observations(&items);
    assert_eq!(obs[0].source.network, Some("198.51.100.0/24".parse().unwrap()));
    assert_eq!(obs[0].source.ip, None);
    assert_eq!(obs[0].classification.kind, C::Blacklist);
    assert_eq!(extra(obs[0], "brand_new"), &json!("surprise"));
    assert_eq!(extra(obs[0], "source_name"), &json!("spamhaus"));
    assert!(!obs[0].extra.contains_key("ip"));
    assert_eq!(obs[1].source.ip, Some("203.0.113.9".parse().unwrap()));
    assert_eq!(obs[1].source.network, None);
    assert!(!obs[1].extra.contains_key("brand_new"), "empty unknown columns are not kept");
}

#[test]
fn setup_errors_and_explicit_reports() {
    let csv = fixture("shadowserver/2026-03-05-scan_telnet-jp-geo.csv");
    let err = |f: &Format, name: &str, input: &[u8]| match kizuna_parsers::parse(f, &ctx(name), input) {
        Err(e) => e,
        Ok(_) => panic!("expected a setup error for {name}"),
    };
    let e = err(&AUTO, "-", &csv);
    assert!(matches!(e, SetupError::ReportNotInFileName { .. }), "{e}");
    assert!(e.to_string().contains("shadowserver:<report>"), "{e}");
    let e = err(&AUTO, "2026-03-05-no_such_report-jp.csv", &csv);
    assert!(e.to_string().contains("unknown Shadowserver report type \"no_such_report\""), "{e}");
    // A scan_telnet file read as event4_sinkhole lacks that report's required columns.
    let e = err(&Format::Shadowserver { report: Some("event4_sinkhole".into()) }, "telnet.csv", &csv);
    assert_eq!(e.to_string(), "telnet.csv: CSV header has no column \"src_ip\", required for source.ip");
    // Explicit report, by file name and by schema key.
    let items = run(&Format::Shadowserver { report: Some("scan_telnet".into()) }, &ctx("-"), &csv);
    assert_eq!(counts(&items), (3, 0, 2));
    let items = run(
        &Format::Shadowserver { report: Some("event_sinkhole".into()) },
        &ctx("-"),
        &fixture("shadowserver/2026-03-05-event4_sinkhole-jp-geo.csv"),
    );
    assert_eq!(counts(&items), (4, 0, 3));
    // An empty file is no error and no records.
    assert!(run(&AUTO, &ctx("2026-03-05-scan_telnet.csv"), b"").is_empty());
}

#[test]
fn schema_loaded_from_a_file() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/shadowserver-schema.json.gz"));
    let s = kizuna_parsers::shadowserver::load_schema_file(path).unwrap();
    assert_eq!(s, *kizuna_parsers::shadowserver::builtin_schema().unwrap());
    let e =
        kizuna_parsers::shadowserver::load_schema_file(std::path::Path::new("/nonexistent/schema.json")).unwrap_err();
    assert!(e.to_string().starts_with("reading the Shadowserver schema /nonexistent/schema.json"), "{e}");
    // A plain-JSON schema with one report of its own.
    let json = br#"{"_meta": {"date_created": "2030-01-01T00:00:00Z"},
        "my_report": {"feed_name": "My-Feed", "file_name": "my_report",
            "constant_fields": {"classification.taxonomy": "vulnerable", "classification.type": "vulnerable-system",
                                "classification.identifier": "open-thing"},
            "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"], ["source.ip", "ip", "validate_ip"]],
            "optional_fields": [["extra.", "thing", "convert_bool"], ["source.geolocation.city", "city"]]}}"#;
    let s = kizuna_parsers::shadowserver::load_schema(json).unwrap();
    assert_eq!(s.date_created(), Some("2030-01-01T00:00:00Z"));
    let c = ctx("2030-01-01-my_report.csv");
    let items: Vec<Item> = kizuna_parsers::shadowserver::parse_with_schema(
        &s,
        None,
        &c,
        &b"timestamp,ip,thing,city\n2030-01-01 00:00:00,192.0.2.1,yes,Osaka\n"[..],
    )
    .unwrap()
    .collect();
    let o = &observations(&items)[0];
    assert_eq!(o.feed.name, "My-Feed");
    assert_eq!(o.classification.identifier.as_deref(), Some("open-thing"));
    assert_eq!(extra(o, "thing"), &json!(true));
    assert_eq!(extra(o, "intelmq.source.geolocation.city"), &json!("Osaka"));
    assert!(kizuna_parsers::shadowserver::load_schema(b"{\"x\": {\"feed_name\": 1}}").is_err());
    assert!(kizuna_parsers::shadowserver::load_schema(b"not json").is_err());
}
