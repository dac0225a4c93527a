//! No input makes a parser panic, and every record is accounted for.

use kizuna_parsers::{CsvMapping, Format, Item, parse};

use crate::common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn formats() -> Vec<(Format, &'static str, Vec<u8>)> {
    let mapping: CsvMapping = toml::from_str(
        r##"
name = "fuzz"
comment = "#"
required = ["source.ip"]
columns = { "source.ip" = "dst_ip", "source.port" = "dst_port", "time.source" = "first_seen_utc", "malware.name" = "malware" }
constants = { "classification.type" = "c2-server" }
"##,
    )
    .unwrap();
    let ss = |name: &str| fixture(&format!("shadowserver/{name}"));
    vec![
        (Format::Cowrie, "cowrie.json", fixture("cowrie/cowrie.json")),
        (Format::Suricata, "eve.json", fixture("suricata/eve.json")),
        (Format::IntelMq, "events.jsonl", fixture("intelmq/events.jsonl")),
        (Format::Csv(mapping), "feodo.csv", fixture("csv/feodo-ipblocklist.csv")),
        (
            Format::Shadowserver { report: Some("event4_sinkhole".into()) },
            "-",
            ss("2026-03-05-event4_sinkhole-jp-geo.csv"),
        ),
        (
            Format::Shadowserver { report: Some("event4_sinkhole_http".into()) },
            "-",
            ss("2026-03-05-event4_sinkhole_http-jp-geo.csv"),
        ),
        (Format::Shadowserver { report: Some("scan_telnet".into()) }, "-", ss("2026-03-05-scan_telnet-jp-geo.csv")),
        (
            Format::Shadowserver { report: Some("compromised_website".into()) },
            "-",
            ss("2026-03-05-compromised_website-jp-geo.csv"),
        ),
    ]
}

/// Records in `input` as the format counts them: non-blank lines for JSON lines; CSV records
/// after the header (counted by an independent reader) for CSV.
fn records(format: &Format, input: &[u8]) -> usize {
    match format {
        Format::Cowrie | Format::Suricata | Format::IntelMq => {
            input.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count()
        }
        Format::Shadowserver { .. } | Format::Csv(_) => {
            let comment = if let Format::Csv(m) = format { m.comment.as_ref().map(|c| c.as_bytes()[0]) } else { None };
            let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).comment(comment).from_reader(input);
            r.byte_records().count().saturating_sub(1)
        }
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    match rng.below(5) {
        // random bytes
        0 => v = (0..rng.below(2000)).map(|_| rng.next() as u8).collect(),
        // truncate anywhere
        1 => v.truncate(rng.below(v.len() + 1)),
        // flip bytes
        2 => {
            for _ in 0..rng.below(40) + 1 {
                if v.is_empty() {
                    break;
                }
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
        }
        // splice punctuation that matters to JSON and CSV
        3 => {
            const P: &[u8] = b"\"\\,{}[]:\n\r\x00\xff";
            for _ in 0..rng.below(20) + 1 {
                let i = rng.below(v.len() + 1);
                v.insert(i, P[rng.below(P.len())]);
            }
        }
        // drop or duplicate a chunk
        _ => {
            if !v.is_empty() {
                let a = rng.below(v.len());
                let b = (a + rng.below(200)).min(v.len());
                if rng.next() & 1 == 0 {
                    v.drain(a..b);
                } else {
                    let chunk = v[a..b].to_vec();
                    v.splice(a..a, chunk);
                }
            }
        }
    }
    v
}

#[test]
fn no_panic_and_every_record_accounted_for() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for (format, name, base) in formats() {
        let c = ctx(name);
        for round in 0..400 {
            let input = if round == 0 { base.clone() } else { mutate(&mut rng, &base) };
            let items: Vec<Item> = match parse(&format, &c, &input[..]) {
                Ok(it) => it.collect(),
                // A mangled header may be refused as a whole; that is no panic either.
                Err(_) => continue,
            };
            let (o, s, r) = counts(&items);
            assert_eq!(
                o + s + r,
                records(&format, &input),
                "{name} round {round}: {:?}",
                String::from_utf8_lossy(&input)
            );
            for rej in rejects(&items) {
                assert!(rej.line >= 1, "{name} round {round}: line {}", rej.line);
                assert!(!rej.reason.is_empty());
                assert_eq!(rej.source_name, name);
            }
        }
    }
}

#[test]
fn every_shadowserver_report_parses_a_row_of_its_own_columns() {
    // Being schema-driven, every report type reads its published column list.
    let reports: serde_json::Map<String, serde_json::Value> = {
        // Shadowserver's published column list per report type (report_schema, reports.json).
        let gz = fixture("shadowserver/reports.json.gz");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut s).unwrap();
        serde_json::from_str(&s).unwrap()
    };
    let mut checked = 0;
    for (report, entry) in &reports {
        let fields: Vec<&str> = entry["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        let row: Vec<String> = fields
            .iter()
            .map(|f| match *f {
                "timestamp" => "2026-03-05 00:00:12".to_owned(),
                "ip" | "src_ip" => "192.0.2.1".to_owned(),
                "port" | "src_port" => "443".to_owned(),
                _ => String::new(),
            })
            .collect();
        let csv = format!("{}\n{}\n", fields.join(","), row.join(","));
        let f = Format::Shadowserver { report: Some(report.clone()) };
        let items: Vec<Item> =
            parse(&f, &ctx("-"), csv.as_bytes()).unwrap_or_else(|e| panic!("{report}: {e}")).collect();
        assert_eq!(items.len(), 1, "{report}");
        if let Item::Rejected(r) = &items[0] {
            // Reports about accounts or domains have no address column.
            assert!(!fields.contains(&"ip") && !fields.contains(&"src_ip"), "{report}: {}", r.reason);
        }
        checked += 1;
    }
    assert_eq!(checked, 170);
}
