//! Writers stream: millions of lines into a sink without memory growing with the line count.
//! (Its own test binary, so no other test's allocations share the process.)

use std::time::Instant;

use kizuna_gen::{EventSpec, RoutingSpec, cowrie, shadowserver_event4_sinkhole, suricata_eve, world};

/// Resident set size and its peak, in kB, from /proc (Linux).
fn rss_kb() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |k: &str| {
        s.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[test]
fn millions_of_lines_in_constant_memory() {
    let w = world(&RoutingSpec { v4_prefixes: 5_000, v6_prefixes: 800, members: 20, seed: 3 });
    let small = EventSpec { lines: 1_000, ..EventSpec::default() };
    // Warm up: the per-run indexes and buffers exist once.
    shadowserver_event4_sinkhole(&w, &small, &mut std::io::sink()).expect("sink");
    cowrie(&w, &small, &mut std::io::sink()).expect("sink");
    suricata_eve(&w, &small, &mut std::io::sink()).expect("sink");
    let Some((_, base_peak)) = rss_kb() else {
        eprintln!("no /proc/self/status: skipping the memory check");
        return;
    };
    // 2M lines in release; a quarter in debug builds (unoptimised code is ~10x slower).
    let n: u64 = if cfg!(debug_assertions) { 500_000 } else { 2_000_000 };
    let big = EventSpec { lines: n, ..EventSpec::default() };
    let t = Instant::now();
    shadowserver_event4_sinkhole(&w, &big, &mut std::io::sink()).expect("sink");
    cowrie(&w, &EventSpec { lines: n / 4, ..big.clone() }, &mut std::io::sink()).expect("sink");
    suricata_eve(&w, &EventSpec { lines: n / 4, ..big }, &mut std::io::sink()).expect("sink");
    let (_, peak) = rss_kb().expect("proc");
    eprintln!("{} lines in {:?}; peak RSS {base_peak} kB → {peak} kB", n * 3 / 2, t.elapsed());
    // A line is ~300 bytes: holding them would be ~900 MB. Allow a few MB of slack (open
    // Cowrie sessions, allocator noise).
    assert!(peak < base_peak + 16 * 1024, "peak RSS grew from {base_peak} kB to {peak} kB");
}
