//! Indicator store throughput on SQLite (on disk, WAL, synchronous=FULL): upsert of N new
//! indicators in batches, re-sighting (merge) of all of them, active_indicators (a full zone
//! build's read), the change feed paged through, and an allow-list change re-evaluating all.
//!
//! `cargo run --release -p kizuna-indicators --example indicator_bench -- 1000000`

use std::time::Instant;

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
use kizuna_store::indicators::{AllowEntry, AllowPattern, AllowScope, IndicatorStore};
use kizuna_store::sqlite::SqliteStore;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let batch = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("bench.sqlite")).expect("open");
    let now = Timestamp::now();
    let mk = |i: usize, seen: i64| Indicator {
        kind: IndicatorKind::Domain,
        value: format!("h{i}.d{}.bad.example", i % 997),
        category: ClassificationType::MalwareDistribution,
        source: "bench".into(),
        confidence: 50,
        first_seen: Timestamp::from_micros(now.as_micros() - seen),
        last_seen: Timestamp::from_micros(now.as_micros() - seen),
        expires: Timestamp::from_micros(now.as_micros() + 30 * 86_400_000_000),
        reason: "bench".into(),
        malware: None,
        tlp: Tlp::Green,
        sharing_groups: vec![],
        legal_basis: LegalBasis::LegitimateBusiness,
    };
    let t = Instant::now();
    for start in (0..n).step_by(batch) {
        let b: Vec<Indicator> = (start..(start + batch).min(n)).map(|i| mk(i, 1_000_000)).collect();
        store.upsert_indicators(&b, now).expect("upsert");
    }
    let insert = t.elapsed();
    let t = Instant::now();
    for start in (0..n).step_by(batch) {
        let b: Vec<Indicator> = (start..(start + batch).min(n)).map(|i| mk(i, 0)).collect();
        store.upsert_indicators(&b, now).expect("merge");
    }
    let merge = t.elapsed();
    let t = Instant::now();
    let active = store.active_indicators(now).expect("active").len();
    let read_active = t.elapsed();
    let t = Instant::now();
    let (mut after, mut seen) = (0, 0);
    loop {
        let page = store.indicator_changes_since(after, 10_000).expect("changes");
        let Some(last) = page.last() else { break };
        after = last.change_seq;
        seen += page.len();
    }
    let feed = t.elapsed();
    let t = Instant::now();
    let entry = AllowEntry {
        pattern: AllowPattern::Domain("d7.bad.example".into()),
        scope: AllowScope::Host,
        origin: "config".into(),
        note: "bench".into(),
    };
    let o = store.set_allowlist("config", &[entry], now).expect("allowlist");
    let allow = t.elapsed();
    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!("| operation ({n} indicators) | time | per second |");
    println!("|---|---|---|");
    println!("| insert, batches of {batch} | {:.2} s | {:.0} |", insert.as_secs_f64(), rate(insert));
    println!("| re-sighting (merge, last_seen moves) | {:.2} s | {:.0} |", merge.as_secs_f64(), rate(merge));
    println!("| active_indicators ({active}) | {:.2} s | {:.0} |", read_active.as_secs_f64(), rate(read_active));
    println!("| change feed, pages of 10000 ({seen}) | {:.2} s | {:.0} |", feed.as_secs_f64(), rate(feed));
    println!(
        "| allow-list change re-evaluating all ({} newly allow-listed) | {:.2} s | {:.0} |",
        o.newly_allowlisted,
        allow.as_secs_f64(),
        rate(allow)
    );
}
