//! Shadowserver CSVs: headers exactly as Shadowserver's schema, well-formed rows, realistic and
//! consistent values.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;

use kizuna_gen::{
    EventSpec, shadowserver_event4_sinkhole, shadowserver_fields, shadowserver_file_name, shadowserver_report,
    shadowserver_reports,
};

fn schema() -> HashMap<String, Vec<String>> {
    let text = include_str!("fixtures/shadowserver-report-fields.json");
    let v: serde_json::Value = serde_json::from_str(text).expect("fixture is JSON");
    v.as_object()
        .expect("object")
        .iter()
        .map(|(k, e)| {
            let fields = e["fields"].as_array().expect("fields").iter().map(|f| f.as_str().expect("str").to_string());
            (k.clone(), fields.collect())
        })
        .collect()
}

fn make(report: &str, spec: &EventSpec) -> Vec<u8> {
    let mut out = Vec::new();
    shadowserver_report(report, common::small_world(), spec, &mut out).expect("write to vec");
    out
}

fn spec(lines: u64) -> EventSpec {
    EventSpec { lines, ..EventSpec::default() }
}

#[test]
fn headers_match_the_published_schema_for_every_report() {
    let schema = schema();
    let reports: Vec<_> = shadowserver_reports().collect();
    assert_eq!(reports.len(), schema.len());
    for report in reports {
        let want = &schema[report];
        assert_eq!(shadowserver_fields(report).expect("known").to_vec(), *want, "{report}");
        let out = make(report, &spec(3));
        let mut rd = csv::Reader::from_reader(out.as_slice());
        let header: Vec<String> = rd.headers().expect("header").iter().map(String::from).collect();
        assert_eq!(&header, want, "{report}");
        let first_line = out.split(|b| *b == b'\n').next().expect("line");
        let quoted: Vec<String> = want.iter().map(|f| format!("\"{f}\"")).collect();
        assert_eq!(first_line, quoted.join(",").as_bytes(), "{report}: header quoted as Shadowserver does");
    }
}

#[test]
fn rows_are_well_formed_sorted_and_of_the_right_family() {
    for report in shadowserver_reports() {
        let n = 2_000;
        let out = make(report, &spec(n));
        let mut rd = csv::Reader::from_reader(out.as_slice());
        let header = rd.headers().expect("header").clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let ip_col = col("src_ip").or(col("ip")).expect("ip column");
        let ts_col = col("timestamp").expect("timestamp");
        let v6 = report.contains('6');
        let mut rows = 0;
        let mut last = String::new();
        for rec in rd.records() {
            let rec = rec.expect("row parses");
            assert_eq!(rec.len(), header.len(), "{report}");
            let ts = &rec[ts_col];
            assert_eq!(ts.len(), 19, "{report}: {ts}");
            assert!(ts.starts_with("2026-03-05 "), "{report}: {ts}");
            assert!(*ts >= *last, "{report}: sorted");
            last = ts.to_string();
            let ip: IpAddr = rec[ip_col].parse().expect("ip");
            assert_eq!(ip.is_ipv6(), v6, "{report}: {ip}");
            rows += 1;
        }
        assert_eq!(rows, n, "{report}");
    }
}

#[test]
fn sinkhole_values_are_realistic_and_consistent_with_the_world() {
    let w = common::small_world();
    let out = {
        let mut v = Vec::new();
        let s = EventSpec { lines: 5_000, unrouted_share: 0.02, ..EventSpec::default() };
        shadowserver_event4_sinkhole(w, &s, &mut v).expect("vec");
        v
    };
    let mut rd = csv::Reader::from_reader(out.as_slice());
    let h = rd.headers().expect("header").clone();
    let c = |name: &str| h.iter().position(|x| x == name).expect("column");
    let (ip, port, asn, geo, dport, inf) =
        (c("src_ip"), c("src_port"), c("src_asn"), c("src_geo"), c("dst_port"), c("infection"));
    let mut per_member: HashMap<String, usize> = HashMap::new();
    let (mut jp, mut unrouted, mut rows) = (0, 0, 0);
    let mut ips: HashMap<String, usize> = HashMap::new();
    let mut families: HashMap<String, usize> = HashMap::new();
    for rec in rd.records() {
        let rec = rec.expect("row");
        rows += 1;
        let addr: IpAddr = rec[ip].parse().expect("ip");
        let p: u16 = rec[port].parse().expect("port");
        assert!(p >= 1024, "ephemeral source port {p}");
        let d: u16 = rec[dport].parse().expect("dst port");
        assert!([80, 443, 8080, 16_464].contains(&d), "{d}");
        let expect = common::origin(w, addr);
        if rec[asn].is_empty() {
            assert_eq!(expect, None, "{addr}: empty asn only when unrouted");
            unrouted += 1;
        } else {
            let a: u32 = rec[asn].parse().expect("asn");
            // Shadowserver's ASN is the origin of the covering route (a hand-listed member
            // prefix inside another route keeps that route's origin).
            assert_eq!(Some(a), expect, "{addr}");
            if let Some(m) = w.member_of_asn(a) {
                *per_member.entry(m.name.clone()).or_default() += 1;
            }
        }
        if &rec[geo] == "JP" {
            jp += 1;
        }
        *ips.entry(rec[ip].to_string()).or_default() += 1;
        *families.entry(rec[inf].to_string()).or_default() += 1;
    }
    assert!(jp as f64 > 0.8 * rows as f64, "JP {jp}/{rows}");
    assert!(unrouted > 20 && unrouted < 300, "unrouted {unrouted}");
    // Few members carry most infections.
    let mut counts: Vec<usize> = per_member.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top3: usize = counts.iter().take(3).sum();
    let total: usize = counts.iter().sum();
    assert!(top3 as f64 > 0.4 * total as f64, "top-3 members {top3}/{total}");
    // Infected hosts beacon repeatedly.
    let max_repeat = ips.values().max().copied().unwrap_or(0);
    assert!(max_repeat >= 5 && ips.len() < rows, "max repeat {max_repeat}, {} distinct", ips.len());
    assert!(families.contains_key("mirai") && families.contains_key("andromeda") && families.len() >= 10);
}

#[test]
fn unknown_report_is_an_error_not_a_panic() {
    let mut v = Vec::new();
    let e = shadowserver_report("scan_nonsense", common::small_world(), &spec(1), &mut v).expect_err("unknown");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("scan_nonsense"));
    assert!(v.is_empty());
}

#[test]
fn file_names_follow_shadowserver_and_intelmq_detection() {
    let name = shadowserver_file_name("event4_sinkhole", kizuna_gen::DEFAULT_START + 3600);
    assert_eq!(name, "2026-03-05-event4_sinkhole-kizuna.csv");
    // IntelMQ: ^(?:\d{4}-\d{2}-\d{2}-)?(\w+)(-\w+)*\.csv$ ; group 1 is the report type.
    let rest = name.strip_prefix("2026-03-05-").expect("date prefix");
    let group1: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    assert_eq!(group1, "event4_sinkhole");
}

#[test]
fn quotes_inside_values_are_doubled() {
    let out = make("scan_http", &spec(3_000));
    let text = String::from_utf8(out.clone()).expect("utf8");
    assert!(text.contains("\"Basic realm=\"\"index.html\"\"\""), "www_authenticate quoting");
    let mut rd = csv::Reader::from_reader(out.as_slice());
    let h = rd.headers().expect("h").clone();
    let wa = h.iter().position(|x| x == "www_authenticate").expect("col");
    assert!(rd.records().any(|r| r.expect("row")[wa].contains("realm=\"")));
}
