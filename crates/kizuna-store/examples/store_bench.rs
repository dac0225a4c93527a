//! Ingest benchmark for the SQLite store: commits N observations in batches to a fresh
//! database file (durable commits, synchronous=FULL) and prints the rate.
//!
//! `cargo run --release -p kizuna-store --example store_bench -- [N] [BATCH] [DIR]`
//! (defaults: 1000000, 10000, a temporary directory).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use kizuna_model::{Classification, ClassificationType, MemberId, Observation, Routed, Timestamp};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{Batch, MemberSpec, Store};

/// A cowrie-like brute-force observation, distinct for each `i`.
fn observation(i: u64) -> Observation {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    let mut o = Observation::new(
        if i.is_multiple_of(3) { "cowrie" } else { "Sinkhole-Events-IPv4" },
        Classification::with_identifier(ClassificationType::BruteForce, "ssh"),
        Timestamp::from_secs(1_772_668_812),
    );
    o.time_source = Some(Timestamp::from_micros(1_772_600_000_000_000 + (i as i64) * 1_000));
    o.source.ip = Some(IpAddr::V4(Ipv4Addr::from((x as u32) | 0x0100_0000)));
    o.source.port = Some((x >> 32) as u16);
    o.source.asn = Some(64_512 + (i % 100) as u32);
    o.destination.ip = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 250) as u8)));
    o.destination.port = Some(22);
    o.protocol.transport = Some("tcp".into());
    o.protocol.application = Some("ssh".into());
    o.feed.provider = Some("Example ISAC honeypots".into());
    o.source.account = Some("root".into());
    o.extra.insert("session".into(), serde_json::json!(format!("{:012x}", x & 0xffff_ffff_ffff)));
    o
}

/// Bytes written by this process so far (Linux `wchar`).
fn written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("wchar: "))?.trim().parse().ok()
}

/// CPU time of the main thread so far (Linux), to see through noise from other processes.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let batch_size: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let tmp;
    let dir = match args.get(3) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let path = dir.join("bench.db");
    let store = SqliteStore::open(&path)?;
    let members: Vec<MemberId> = (0..100)
        .map(|m| {
            store
                .add_member(&MemberSpec { name: format!("isp-{m}"), ..MemberSpec::default() }, Timestamp::now())
                .map(|m| m.id)
        })
        .collect::<Result<_, _>>()?;

    // Build the input first: the benchmark measures the store, not the generator.
    let t0 = Instant::now();
    let batches: Vec<Batch> = (0..n)
        .collect::<Vec<_>>()
        .chunks(batch_size)
        .map(|chunk| Batch {
            observations: chunk
                .iter()
                .map(|&i| {
                    let observation = observation(i);
                    // 10% unattributed.
                    let member = if i % 10 == 9 { None } else { Some(members[(i % 100) as usize]) };
                    Routed { id: observation.id(), observation, member }
                })
                .collect(),
            rejected: Vec::new(),
        })
        .collect();
    eprintln!("generated {n} observations in {:.2?}", t0.elapsed());

    let cpu0 = cpu_ns();
    let w0 = written();
    let t0 = Instant::now();
    let mut stored = 0;
    let mut worst = std::time::Duration::ZERO;
    for b in &batches {
        let t = Instant::now();
        stored += store.commit_batch(b)?.stored;
        worst = worst.max(t.elapsed());
    }
    eprintln!("slowest batch {worst:.2?}");
    if let (Some(a), Some(b)) = (w0, written()) {
        println!(
            "ingest wrote {:.0} MiB ({:.0} bytes/observation)",
            (b - a) as f64 / 1048576.0,
            (b - a) as f64 / stored.max(1) as f64
        );
    }
    if let (Some(a), Some(b)) = (cpu0, cpu_ns()) {
        let cpu = (b - a) as f64 / 1e9;
        println!("ingest CPU time (main thread) {cpu:.2}s: {:.0} observations per CPU-second", stored as f64 / cpu);
    }
    let dt = t0.elapsed();
    println!(
        "ingest: {stored} observations in {dt:.2?} (batch {batch_size}): {:.0} observations/s",
        stored as f64 / dt.as_secs_f64()
    );

    let t0 = Instant::now();
    let mut dups = 0;
    for b in batches.iter().take(10) {
        dups += store.commit_batch(b)?.duplicates;
    }
    let dt = t0.elapsed();
    println!("re-ingest (all duplicates): {dups} in {dt:.2?}: {:.0}/s", dups as f64 / dt.as_secs_f64());

    let t0 = Instant::now();
    let mut cursor = kizuna_store::Cursor::START;
    let mut read = 0;
    loop {
        let page = store.page(members[0], cursor, 1000)?;
        if page.items.is_empty() {
            break;
        }
        read += page.items.len();
        cursor = page.next;
    }
    let dt = t0.elapsed();
    println!("page one member: {read} observations in {dt:.2?}: {:.0}/s", read as f64 / dt.as_secs_f64());

    let routes: Vec<(kizuna_model::IpNet, u32)> = (0..1_000_000u32)
        .map(|i| {
            (kizuna_model::IpNet::new(IpAddr::V4(Ipv4Addr::from((i << 8) | 0x0100_0000)), 24).expect("net"), i % 70_000)
        })
        .collect();
    let t0 = Instant::now();
    store.replace_routes(&routes)?;
    let dt = t0.elapsed();
    let t0 = Instant::now();
    let back = store.routes()?;
    println!("replace_routes 1M: {dt:.2?}, routes() read back {} in {:.2?}", back.len(), t0.elapsed());

    let size =
        std::fs::metadata(&path)?.len() + std::fs::metadata(dir.join("bench.db-wal")).map(|m| m.len()).unwrap_or(0);
    println!("database size {:.1} MiB ({:.0} bytes/observation)", size as f64 / 1048576.0, size as f64 / n as f64);
    // Skip freeing the input (seconds of allocator work that is not the store's).
    std::mem::forget(batches);
    Ok(())
}
