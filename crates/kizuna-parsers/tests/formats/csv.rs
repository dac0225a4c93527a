use expect_test::expect_file;
use kizuna_model::{ClassificationType as C, Taxonomy, Timestamp, Tlp};
use kizuna_parsers::{Column, CsvMapping, Format, SetupError};
use serde_json::json;

use crate::common::*;

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
"feed.url" = "https://feodotracker.abuse.ch/downloads/ipblocklist.csv"
"classification.type" = "c2-server"
"classification.identifier" = "botnet-c2"
"tlp" = "WHITE"
"##;

fn feodo() -> CsvMapping {
    toml::from_str(FEODO).unwrap()
}

#[test]
fn mapping_from_toml() {
    let m = feodo();
    assert_eq!(m.name, "feodo-ipblocklist");
    assert_eq!(m.delimiter, ",");
    assert!(m.header);
    assert_eq!(m.columns["source.ip"], Column::Name("dst_ip".into()));
    assert_eq!(m.validate(), Ok(()));
    // Unknown keys are refused.
    let e = toml::from_str::<CsvMapping>("name = \"x\"\ndelimeter = \";\"\n").unwrap_err().to_string();
    assert!(e.contains("unknown field `delimeter`"), "{e}");
    // Only a name: parses (defaults), but is not usable.
    let m: CsvMapping = toml::from_str("name = \"partner-blocklist\"").unwrap();
    assert!(m.validate().unwrap_err().contains("classification.type"));
    // As `[[csv_mappings]]` in a config file, found by name.
    #[derive(serde::Deserialize)]
    struct Config {
        csv_mappings: Vec<CsvMapping>,
    }
    let cfg: Config = toml::from_str(&format!(
        "[[csv_mappings]]\n{}",
        FEODO.replace("[columns]", "[csv_mappings.columns]").replace("[constants]", "[csv_mappings.constants]")
    ))
    .unwrap();
    assert_eq!(Format::from_name("csv:feodo-ipblocklist", &cfg.csv_mappings).unwrap(), Format::Csv(feodo()));
}

#[test]
fn feodo_blocklist() {
    let f = Format::Csv(feodo());
    let items = run(&f, &ctx("ipblocklist.csv"), &fixture("csv/feodo-ipblocklist.csv"));
    expect_file!["../fixtures/csv/feodo-ipblocklist.expected"].assert_eq(&render(&items));
    assert_eq!(counts(&items), (4, 0, 4));
    let obs = observations(&items);
    let o = obs[0];
    assert_eq!(o.feed.name, "Feodo-Tracker-Blocklist");
    assert_eq!(o.feed.provider.as_deref(), Some("abuse.ch"));
    assert_eq!(o.classification.kind, C::C2Server);
    assert_eq!(o.classification.taxonomy, Taxonomy::MaliciousCode);
    assert_eq!(o.classification.identifier.as_deref(), Some("botnet-c2"));
    assert_eq!(o.tlp, Tlp::Clear);
    assert_eq!(o.source.ip, Some("198.51.100.10".parse().unwrap()));
    assert_eq!(o.source.port, Some(443));
    assert_eq!(o.malware.name.as_deref(), Some("qakbot"));
    assert_eq!(o.time_source, Some(Timestamp::from_secs(1_772_179_869)));
    assert_eq!(extra(o, "c2_status"), &json!("online"));
    assert_eq!(extra(o, "last_online"), &json!("2026-03-05"));
    assert_eq!(obs[2].source.ip, Some("2001:db8:90::c2".parse().unwrap()));
    assert_eq!(obs[3].source.port, None, "empty optional value");
    let rej = rejects(&items);
    // 11 comment lines and the header before the first record (line 13).
    assert_eq!(rej.iter().map(|r| r.line).collect::<Vec<_>>(), [16, 17, 18, 20]);
    assert_eq!(rej[0].reason, "source.ip (column dst_ip): invalid IP address \"198.51.100.300\"");
    assert_eq!(rej[0].raw, r#""2026-03-03 01:02:03","198.51.100.300","443","online","2026-03-05","QakBot""#);
    assert_eq!(rej[1].reason, "time.source (column first_seen_utc): invalid time \"2026-03-04\"");
    assert_eq!(rej[2].reason, "row has 2 columns, the mapping reads column 6");
    assert_eq!(rej[3].reason, "source.port (column dst_port): port 99999 out of range");
}

#[test]
fn headerless_semicolon_file_with_networks() {
    let m: CsvMapping = toml::from_str(
        r#"
name = "plain"
delimiter = ";"
header = false
time_format = "unix"
columns = { "source.network" = 1, "time.source" = 2, "event_description.text" = 3 }
constants = { "classification.type" = "blacklist", "source.geolocation.city" = "Nowhere" }
"#,
    )
    .unwrap();
    let items = run(&Format::Csv(m), &ctx("plain-networks.txt"), &fixture("csv/plain-networks.txt"));
    assert_eq!(counts(&items), (3, 0, 1));
    let obs = observations(&items);
    assert_eq!(obs[0].feed.name, "plain");
    assert_eq!(obs[0].source.network, Some("198.51.100.0/24".parse().unwrap()));
    assert_eq!(obs[0].time_source, Some(Timestamp::from_secs(1_772_668_812)));
    assert_eq!(obs[0].event_description.as_deref(), Some("spam source"));
    assert_eq!(extra(obs[0], "intelmq.source.geolocation.city"), &json!("Nowhere"));
    assert_eq!(obs[1].source.network, Some("203.0.113.7/32".parse().unwrap()));
    assert_eq!(obs[2].source.network, Some("2001:db8::/48".parse().unwrap()));
    assert_eq!(obs[2].event_description, None);
    let r = rejects(&items)[0];
    assert_eq!(r.line, 5);
    assert_eq!(r.reason, "source.network (column 1): invalid IP address \"not-a-net\"");
}

#[test]
fn setup_errors() {
    let mut m = feodo();
    m.columns.insert("source.asn".into(), Column::Name("asn".into()));
    let f = Format::Csv(m);
    let e = match kizuna_parsers::parse(&f, &ctx("ipblocklist.csv"), &fixture("csv/feodo-ipblocklist.csv")[..]) {
        Err(e) => e,
        Ok(_) => panic!("missing column accepted"),
    };
    assert!(matches!(e, SetupError::MissingColumn { .. }));
    assert_eq!(e.to_string(), "ipblocklist.csv: CSV header has no column \"asn\", required for source.asn");
    let f = Format::Csv(CsvMapping { name: "bad".into(), ..CsvMapping::default() });
    let e = match kizuna_parsers::parse(&f, &ctx("x.csv"), &b"a,b\n"[..]) {
        Err(e) => e,
        Ok(_) => panic!("invalid mapping accepted"),
    };
    assert!(e.to_string().starts_with("x.csv: CSV mapping \"bad\" is invalid: classification.type"), "{e}");
    let unix_unmapped: CsvMapping = toml::from_str(
        r#"
name = "u"
time_format = "unix_ms"
unmapped_to_extra = true
columns = { "source.ip" = "ip", "time.source" = "ts" }
constants = { "classification.type" = "scanner" }
"#,
    )
    .unwrap();
    let items = run(&Format::Csv(unix_unmapped), &ctx("u.csv"), b"ts,ip,note\n1772668812000,192.0.2.9,hello\n");
    let o = observations(&items)[0];
    assert_eq!(o.time_source, Some(Timestamp::from_secs(1_772_668_812)));
    assert_eq!(extra(o, "note"), &json!("hello"));
}
