//! Longest-prefix-match benchmark, run by `bench/lpm/run.sh` next to pyasn.
//!
//! Generates (deterministically, from a seed) a ~1.1M-prefix routing table in pyasn's ipasn
//! format with a realistic prefix-length mix, and addresses drawn from inside it; loads the file
//! with `parse_ipasn`, builds a `PrefixTable`, times single-threaded lookups, and writes the
//! answers for the first addresses so that the pyasn side can check it gets the same ones.
//!
//! ```text
//! cargo run --release -p kizuna-attrib --example lpm_bench -- OUT_DIR [--v4 N] [--v6 N]
//!     [--lookups N] [--py-lookups N] [--seed N]
//! ```
//! Writes `OUT_DIR/table.dat`, `OUT_DIR/addrs.txt` (the first `--py-lookups` addresses),
//! `OUT_DIR/answers.txt` (their ASNs, `-` for none) and `OUT_DIR/kizuna.json` (the results).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Instant;

use kizuna_attrib::{IpNet, PrefixTable, parse_ipasn, write_ipasn};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
    /// Picks from `(weight, item)` pairs.
    fn weighted<T: Copy>(&mut self, table: &[(u32, T)]) -> Option<T> {
        let total: u64 = table.iter().map(|&(w, _)| u64::from(w)).sum();
        let mut r = self.below(total);
        for &(w, t) in table {
            if r < u64::from(w) {
                return Some(t);
            }
            r -= u64::from(w);
        }
        table.last().map(|&(_, t)| t)
    }
}

/// IPv4 prefix lengths, roughly as in today's global table (per mille).
const V4_LENS: &[(u32, u8)] = &[
    (1, 8),
    (1, 10),
    (2, 11),
    (3, 12),
    (4, 13),
    (6, 14),
    (8, 15),
    (15, 16),
    (10, 17),
    (15, 18),
    (30, 19),
    (45, 20),
    (60, 21),
    (110, 22),
    (110, 23),
    (580, 24),
];

/// IPv6 prefix lengths (per mille): mostly /32 to /48.
const V6_LENS: &[(u32, u8)] =
    &[(10, 28), (30, 29), (5, 30), (5, 31), (160, 32), (30, 33), (40, 36), (50, 40), (60, 44), (20, 46), (590, 48)];

/// Where IPv6 space is routed: the top 12 bits of the RIR blocks.
const V6_BLOCKS: &[u128] = &[0x200, 0x240, 0x260, 0x280, 0x2a0, 0x2c0];

fn v4_mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn v6_mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// A routing table of `n4` + `n6` distinct prefixes; about a third are more-specifics of an
/// earlier prefix (often from the same origin), as in real tables.
fn generate(rng: &mut Rng, n4: usize, n6: usize) -> Vec<(IpNet, u32)> {
    let asns: Vec<u32> = (0..80_000).map(|_| 1 + rng.below(400_000) as u32).collect();
    let mut seen: HashSet<(u128, u8)> = HashSet::new();
    let mut routes: Vec<(IpNet, u32)> = Vec::with_capacity(n4 + n6);
    let mut v4: Vec<(u32, u8, u32)> = Vec::with_capacity(n4);
    while v4.len() < n4 {
        let len = rng.weighted(V4_LENS).unwrap_or(24);
        let asn_new = asns[rng.below(asns.len() as u64) as usize];
        let (addr, asn) = if !v4.is_empty() && rng.below(100) < 30 {
            let (pa, pl, pasn) = v4[rng.below(v4.len() as u64) as usize];
            if pl >= len {
                continue;
            }
            let asn = if rng.below(2) == 0 { pasn } else { asn_new };
            (pa | (rng.next() as u32 & !v4_mask(pl)), asn)
        } else {
            // Unicast space: 1.0.0.0 to 223.255.255.255, without 10/8 and 127/8.
            let first = 1 + rng.below(223) as u32;
            if first == 10 || first == 127 {
                continue;
            }
            ((first << 24) | (rng.next() as u32 & 0x00ff_ffff), asn_new)
        };
        let addr = addr & v4_mask(len);
        if !seen.insert((u128::from(addr), len)) {
            continue;
        }
        v4.push((addr, len, asn));
    }
    seen.clear();
    let mut v6: Vec<(u128, u8, u32)> = Vec::with_capacity(n6);
    while v6.len() < n6 {
        let len = rng.weighted(V6_LENS).unwrap_or(48);
        let asn_new = asns[rng.below(asns.len() as u64) as usize];
        let (addr, asn) = if !v6.is_empty() && rng.below(100) < 40 {
            let (pa, pl, pasn) = v6[rng.below(v6.len() as u64) as usize];
            if pl >= len {
                continue;
            }
            let asn = if rng.below(2) == 0 { pasn } else { asn_new };
            (pa | (rng.u128() & !v6_mask(pl)), asn)
        } else {
            let block = V6_BLOCKS[rng.below(V6_BLOCKS.len() as u64) as usize];
            // Allocations cluster in the first quarter of each /12.
            let spread = rng.u128() >> (12 + 2);
            ((block << 116) | spread, asn_new)
        };
        let addr = addr & v6_mask(len);
        if !seen.insert((addr, len)) {
            continue;
        }
        v6.push((addr, len, asn));
    }
    for (a, l, asn) in v4 {
        if let Ok(n) = IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), l) {
            routes.push((n, asn));
        }
    }
    for (a, l, asn) in v6 {
        if let Ok(n) = IpNet::new(IpAddr::V6(Ipv6Addr::from(a)), l) {
            routes.push((n, asn));
        }
    }
    // Shuffle: pyasn and our builder must not depend on order.
    for i in (1..routes.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        routes.swap(i, j);
    }
    routes
}

/// `n` addresses, each drawn uniformly from inside a uniformly chosen prefix.
fn addresses(rng: &mut Rng, routes: &[(IpNet, u32)], n: usize) -> Vec<IpAddr> {
    (0..n)
        .map(|_| match routes[rng.below(routes.len() as u64) as usize].0 {
            IpNet::V4(p) => {
                let host = rng.next() as u32 & !v4_mask(p.prefix_len());
                IpAddr::V4(Ipv4Addr::from(u32::from(p.network()) | host))
            }
            IpNet::V6(p) => {
                let host = rng.u128() & !v6_mask(p.prefix_len());
                IpAddr::V6(Ipv6Addr::from(u128::from(p.network()) | host))
            }
        })
        .collect()
}

struct Args {
    out: PathBuf,
    v4: usize,
    v6: usize,
    lookups: usize,
    py_lookups: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        out: PathBuf::from("bench/out/lpm"),
        v4: 900_000,
        v6: 200_000,
        lookups: 10_000_000,
        py_lookups: 1_000_000,
        seed: 0x6b697a756e61,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next().and_then(|v| v.replace('_', "").parse().ok()).ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--v4" => a.v4 = num("--v4")? as usize,
            "--v6" => a.v6 = num("--v6")? as usize,
            "--lookups" => a.lookups = num("--lookups")? as usize,
            "--py-lookups" => a.py_lookups = num("--py-lookups")? as usize,
            "--seed" => a.seed = num("--seed")?,
            s if !s.starts_with("--") => a.out = PathBuf::from(s),
            s => return Err(format!("unknown option {s}")),
        }
    }
    a.py_lookups = a.py_lookups.min(a.lookups);
    Ok(a)
}

/// Nanoseconds this thread has run on a CPU (from /proc/thread-self/schedstat): on a machine
/// shared with other work, lookups per CPU second are what one core does, while wall-clock
/// rates also count the time the scheduler gave to others.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Best wall-clock and best CPU seconds of `rounds` runs of `f`, and the last run's result.
fn best_of(rounds: usize, mut f: impl FnMut() -> u64) -> (f64, f64, u64) {
    let (mut wall, mut cpu, mut out) = (f64::INFINITY, f64::INFINITY, 0);
    for _ in 0..rounds {
        let (t, c) = (Instant::now(), cpu_ns());
        out = std::hint::black_box(f());
        wall = wall.min(t.elapsed().as_secs_f64());
        cpu = cpu.min(cpu_ns().saturating_sub(c) as f64 / 1e9);
    }
    (wall, cpu, out)
}

/// Lookups per wall-clock second and per CPU second over `addrs`, best of `rounds`, and a
/// checksum of the answers.
fn time_lookups<T: Copy>(addrs: &[T], rounds: usize, f: impl Fn(T) -> Option<u32>) -> (f64, f64, u64) {
    let (wall, cpu, sum) = best_of(rounds, || {
        let mut s = 0u64;
        for &a in addrs {
            let v = f(std::hint::black_box(a)).map_or(0, |x| u64::from(x) + 1);
            s = s.wrapping_mul(0x100_0000_01b3).wrapping_add(v);
        }
        s
    });
    (addrs.len() as f64 / wall, addrs.len() as f64 / cpu, sum)
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out)?;
    let table_path = args.out.join("table.dat");
    let mut rng = Rng(args.seed);

    let t = Instant::now();
    let generated = generate(&mut rng, args.v4, args.v6);
    let mut w = BufWriter::new(File::create(&table_path)?);
    write_ipasn(&generated, &mut w)?;
    w.flush()?;
    drop(w);
    let addrs = addresses(&mut rng, &generated, args.lookups);
    eprintln!("generated {} prefixes and {} addresses in {:.1?}", generated.len(), addrs.len(), t.elapsed());
    drop(generated);

    let t = Instant::now();
    let (routes, rejected) = parse_ipasn("table.dat", BufReader::new(File::open(&table_path)?));
    let parse_s = t.elapsed().as_secs_f64();
    if !rejected.is_empty() {
        return Err(format!("{} lines of the generated table rejected, first: {}", rejected.len(), rejected[0]).into());
    }
    let rss_before = rss_bytes();
    let t = Instant::now();
    let table = PrefixTable::build(routes.iter().copied());
    let build_s = t.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    eprintln!(
        "parsed in {parse_s:.2}s, built {} prefixes ({} ranges) in {build_s:.2}s, {:.1} MiB",
        table.len(),
        table.range_count(),
        table.memory_bytes() as f64 / 1048576.0
    );

    let mut a = BufWriter::new(File::create(args.out.join("addrs.txt"))?);
    let mut ans = BufWriter::new(File::create(args.out.join("answers.txt"))?);
    for &ip in &addrs[..args.py_lookups] {
        writeln!(a, "{ip}")?;
        match table.lookup(ip) {
            Some(asn) => writeln!(ans, "{asn}")?,
            None => writeln!(ans, "-")?,
        }
    }
    a.flush()?;
    ans.flush()?;

    let (mixed, mixed_cpu, sum) = time_lookups(&addrs, 3, |ip| table.lookup(ip));
    let (mixed_py, mixed_py_cpu, _) = time_lookups(&addrs[..args.py_lookups], 3, |ip| table.lookup(ip));
    // lookup_many over groups of 1024 addresses, as a batch consumer would call it.
    let mut out: Vec<Option<u32>> = Vec::with_capacity(1024);
    let (many_wall, many_cpu_s, many_sum) = best_of(3, || {
        let mut s = 0u64;
        for chunk in addrs.chunks(1024) {
            out.clear();
            table.lookup_many(std::hint::black_box(chunk), &mut out);
            for v in &out {
                s = s.wrapping_mul(0x100_0000_01b3).wrapping_add(v.map_or(0, |x| u64::from(x) + 1));
            }
        }
        s
    });
    let many = addrs.len() as f64 / many_wall;
    let many_cpu = addrs.len() as f64 / many_cpu_s;
    if many_sum != sum {
        return Err("lookup_many answers differ from lookup".into());
    }
    let v4: Vec<u32> =
        addrs.iter().filter_map(|ip| if let IpAddr::V4(a) = ip { Some(u32::from(*a)) } else { None }).collect();
    let v6: Vec<u128> =
        addrs.iter().filter_map(|ip| if let IpAddr::V6(a) = ip { Some(u128::from(*a)) } else { None }).collect();
    let (v4_rate, v4_cpu, _) = time_lookups(&v4, 3, |ip| table.lookup_v4(ip));
    let (v6_rate, v6_cpu, _) = time_lookups(&v6, 3, |ip| table.lookup_v6(ip));
    let found = addrs.iter().filter(|&&ip| table.lookup(ip).is_some()).count();
    eprintln!(
        "lookups per CPU s: mixed {:.1}M, lookup_many {:.1}M, v4 {:.1}M, v6 {:.1}M",
        mixed_cpu / 1e6,
        many_cpu / 1e6,
        v4_cpu / 1e6,
        v6_cpu / 1e6
    );
    eprintln!(
        "lookups/s: mixed {:.1}M, lookup_many {:.1}M, first {} {:.1}M, v4 {:.1}M, v6 {:.1}M; {found} of {} found",
        mixed / 1e6,
        many / 1e6,
        args.py_lookups,
        mixed_py / 1e6,
        v4_rate / 1e6,
        v6_rate / 1e6,
        addrs.len()
    );

    let json = format!(
        "{{\"prefixes\": {}, \"prefixes_v4\": {}, \"prefixes_v6\": {}, \"ranges\": {}, \"lookups\": {}, \
         \"py_lookups\": {}, \"lookups_per_s\": {mixed:.0}, \"lookup_many_per_s\": {many:.0}, \"lookups_per_s_py_set\": {mixed_py:.0}, \
         \"lookups_per_s_v4\": {v4_rate:.0}, \"lookups_per_s_v6\": {v6_rate:.0}, \
         \"cpu_lookups_per_s\": {mixed_cpu:.0}, \"cpu_lookup_many_per_s\": {many_cpu:.0}, \
         \"cpu_lookups_per_s_py_set\": {mixed_py_cpu:.0}, \"cpu_lookups_per_s_v4\": {v4_cpu:.0}, \
         \"cpu_lookups_per_s_v6\": {v6_cpu:.0}, \"v4_addrs\": {}, \
         \"v6_addrs\": {}, \"found\": {found}, \"checksum\": {sum}, \"parse_s\": {parse_s:.3}, \
         \"build_s\": {build_s:.3}, \"memory_bytes\": {}, \"rss_growth_bytes\": {}}}\n",
        table.len(),
        routes.iter().filter(|(n, _)| matches!(n, IpNet::V4(_))).count(),
        routes.iter().filter(|(n, _)| matches!(n, IpNet::V6(_))).count(),
        table.range_count(),
        addrs.len(),
        args.py_lookups,
        v4.len(),
        v6.len(),
        table.memory_bytes(),
        match (rss_before, rss_after) {
            (Some(b), Some(a)) => a.saturating_sub(b).to_string(),
            _ => "null".to_string(),
        }
    );
    std::fs::write(args.out.join("kizuna.json"), &json)?;
    print!("{json}");
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("lpm_bench: {e}");
        std::process::exit(1);
    }
}
