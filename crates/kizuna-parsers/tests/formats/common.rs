use std::path::PathBuf;

use kizuna_model::{Observation, Rejected, Timestamp};
use kizuna_parsers::{Context, Format, Item, parse};

/// 2026-03-05T06:00:00Z.
pub const OBSERVED: Timestamp = Timestamp::from_secs(1_772_690_400);

pub fn ctx(source_name: &str) -> Context {
    Context::new(source_name, OBSERVED)
}

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).unwrap()
}

pub fn run(format: &Format, ctx: &Context, input: &[u8]) -> Vec<Item> {
    parse(format, ctx, input).unwrap().collect()
}

/// (observations, skipped, rejected).
pub fn counts(items: &[Item]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for i in items {
        match i {
            Item::Observation(_) => c.0 += 1,
            Item::Skipped { .. } => c.1 += 1,
            Item::Rejected(_) => c.2 += 1,
        }
    }
    c
}

pub fn observations(items: &[Item]) -> Vec<&Observation> {
    items.iter().filter_map(|i| if let Item::Observation(o) = i { Some(o) } else { None }).collect()
}

pub fn rejects(items: &[Item]) -> Vec<&Rejected> {
    items.iter().filter_map(|i| if let Item::Rejected(r) = i { Some(r) } else { None }).collect()
}

pub fn skips(items: &[Item]) -> Vec<&str> {
    items.iter().filter_map(|i| if let Item::Skipped { what } = i { Some(what.as_str()) } else { None }).collect()
}

/// One block per item: observations as their IntelMQ JSON (keys sorted, pretty), rejects with
/// line, reason and raw text.
pub fn render(items: &[Item]) -> String {
    let mut s = String::new();
    for i in items {
        match i {
            Item::Observation(o) => {
                let mut buf = Vec::new();
                kizuna_parsers::intelmq::write_json(o, &mut buf);
                let v = sorted(serde_json::from_slice(&buf).unwrap());
                s.push_str("OBSERVATION ");
                s.push_str(&serde_json::to_string_pretty(&v).unwrap());
                s.push('\n');
            }
            Item::Skipped { what } => {
                s.push_str("SKIPPED ");
                s.push_str(what);
                s.push('\n');
            }
            Item::Rejected(r) => {
                s.push_str(&format!("REJECTED {}:{}: {}\n  raw: {:?}\n", r.source_name, r.line, r.reason, r.raw));
            }
        }
    }
    s
}

/// Keys sorted at every level, whether or not serde_json's `preserve_order` feature is on (a
/// workspace build unifies it on: yara-x enables it).
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(String, serde_json::Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

pub fn extra<'o>(o: &'o Observation, k: &str) -> &'o serde_json::Value {
    o.extra.get(k).unwrap_or_else(|| panic!("extra.{k} missing in {:?}", o.extra))
}
