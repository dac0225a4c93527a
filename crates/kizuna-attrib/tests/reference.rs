//! Compares `PrefixTable` with a naive linear-scan longest-prefix match on random tables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kizuna_attrib::{IpNet, PrefixTable};

/// SplitMix64: small, seeded, good enough for test data.
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
        self.next() % n
    }
    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

fn mask(width: u32, len: u32) -> u128 {
    let ones = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    ones & !ones.checked_shr(len).unwrap_or(0)
}

/// A naive table: every entry in input order, host bits masked.
struct Naive {
    v4: Vec<(u128, u32, u16)>,
    v6: Vec<(u128, u32, u16)>,
}

impl Naive {
    fn new(entries: &[(IpNet, u16)]) -> Self {
        let mut n = Naive { v4: Vec::new(), v6: Vec::new() };
        for &(net, v) in entries {
            let len = u32::from(net.prefix_len());
            match net {
                IpNet::V4(a) => n.v4.push((u128::from(u32::from(a.addr())) & mask(32, len), len, v)),
                IpNet::V6(a) => n.v6.push((u128::from(a.addr()) & mask(128, len), len, v)),
            }
        }
        n
    }

    fn find(list: &[(u128, u32, u16)], width: u32, ip: u128) -> Option<u16> {
        let mut best: Option<(u32, u16)> = None;
        for &(start, len, v) in list {
            if ip & mask(width, len) == start && best.is_none_or(|(bl, _)| len >= bl) {
                best = Some((len, v));
            }
        }
        best.map(|b| b.1)
    }

    fn v4(&self, ip: u32) -> Option<u16> {
        Self::find(&self.v4, 32, u128::from(ip))
    }

    fn v6(&self, ip: u128) -> Option<u16> {
        Self::find(&self.v6, 128, ip)
    }

    fn lookup(&self, ip: IpAddr) -> Option<u16> {
        match ip {
            IpAddr::V4(a) => self.v4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) => self.v4(u32::from(m)).or_else(|| self.v6(u128::from(a))),
                None => self.v6(u128::from(a)),
            },
        }
    }
}

/// Random prefixes of a `width`-bit family: clustered under a few top bytes, often nested in an
/// earlier prefix, with a few values only (so neighbouring ranges merge), `/0` and full-length
/// prefixes included.
fn random_prefixes(rng: &mut Rng, width: u32, n: usize) -> Vec<(u128, u32, u16)> {
    let mut out: Vec<(u128, u32, u16)> = Vec::new();
    let clusters: Vec<u128> = (0..3).map(|_| rng.u128() & mask(width, 12)).collect();
    for _ in 0..n {
        let v = rng.below(6) as u16;
        let r = rng.below(100);
        let (start, len) = if r < 45 && !out.is_empty() {
            // Nested inside an earlier prefix.
            let (ps, pl, _) = out[rng.below(out.len() as u64) as usize];
            let len = pl + rng.below(u64::from(width - pl) + 1) as u32;
            (ps | (rng.u128() & !mask(width, pl)), len)
        } else if r < 85 {
            let c = clusters[rng.below(clusters.len() as u64) as usize];
            let len = 12 + rng.below(u64::from(width - 12) + 1) as u32;
            (c | (rng.u128() & !mask(width, 12)), len)
        } else if r < 88 {
            (0, 0)
        } else if r < 93 {
            (rng.u128(), width)
        } else {
            (rng.u128(), rng.below(u64::from(width) + 1) as u32)
        };
        let ones = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
        // Not masked on purpose: the table must mask host bits itself.
        out.push((start & ones, len, v));
    }
    out
}

fn to_net(width: u32, start: u128, len: u32) -> IpNet {
    if width == 32 {
        IpNet::new(IpAddr::V4(Ipv4Addr::from(start as u32)), len as u8).expect("v4 prefix")
    } else {
        IpNet::new(IpAddr::V6(Ipv6Addr::from(start)), len as u8).expect("v6 prefix")
    }
}

/// Addresses near every prefix's edges, inside it, and uniformly random.
fn probes(rng: &mut Rng, width: u32, prefixes: &[(u128, u32, u16)], extra: usize) -> Vec<u128> {
    let ones = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    let mut out = vec![0, ones, 1, ones - 1];
    for &(s, l, _) in prefixes {
        let start = s & mask(width, l);
        let end = start | (ones & !mask(width, l));
        out.extend([start, end, start.wrapping_sub(1) & ones, end.wrapping_add(1) & ones]);
        out.push(start | (rng.u128() & ones & !mask(width, l)));
    }
    for _ in 0..extra {
        out.push(rng.u128() & ones);
    }
    out
}

fn check_case(rng: &mut Rng, n4: usize, n6: usize) {
    let p4 = random_prefixes(rng, 32, n4);
    let mut p6 = random_prefixes(rng, 128, n6);
    // IPv4-mapped IPv6 prefixes, to check the fallback from the IPv4 table.
    if rng.below(2) == 0 {
        p6.push((0xffff_0000_0000, 96, 9));
        p6.push((0xffff_0a00_0000, 104, 10));
    }
    let mut entries: Vec<(IpNet, u16)> = p4.iter().map(|&(s, l, v)| (to_net(32, s, l), v)).collect();
    entries.extend(p6.iter().map(|&(s, l, v)| (to_net(128, s, l), v)));
    // Shuffle so that duplicates and nesting arrive in any order.
    for i in (1..entries.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        entries.swap(i, j);
    }
    let table = PrefixTable::build(entries.iter().copied());
    let naive = Naive::new(&entries);

    let distinct = |list: &[(u128, u32, u16)]| {
        let mut k: Vec<(u128, u32)> = list.iter().map(|&(s, l, _)| (s, l)).collect();
        k.sort_unstable();
        k.dedup();
        k.len()
    };
    assert_eq!(table.len(), distinct(&naive.v4) + distinct(&naive.v6));

    for ip in probes(rng, 32, &p4, 200) {
        let ip = ip as u32;
        let want = naive.v4(ip);
        assert_eq!(table.lookup_v4(ip), want, "v4 {}", Ipv4Addr::from(ip));
        assert_eq!(table.lookup(IpAddr::V4(Ipv4Addr::from(ip))), want);
        let mapped = IpAddr::V6(Ipv4Addr::from(ip).to_ipv6_mapped());
        assert_eq!(table.lookup(mapped), naive.lookup(mapped), "mapped {mapped}");
    }
    let mut all: Vec<IpAddr> = Vec::new();
    for ip in probes(rng, 32, &p4, 50) {
        all.push(IpAddr::V4(Ipv4Addr::from(ip as u32)));
        all.push(IpAddr::V6(Ipv4Addr::from(ip as u32).to_ipv6_mapped()));
    }
    all.extend(probes(rng, 128, &p6, 50).into_iter().map(|ip| IpAddr::V6(Ipv6Addr::from(ip))));
    // Families interleaved at random: lookup_many splits its blocks by family and must put
    // every answer back in place.
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut many = vec![Some(u16::MAX)];
    table.lookup_many(&all, &mut many);
    let one: Vec<Option<u16>> = std::iter::once(Some(u16::MAX)).chain(all.iter().map(|&ip| naive.lookup(ip))).collect();
    assert_eq!(many, one, "lookup_many appends the same answers");
    for ip in probes(rng, 128, &p6, 200) {
        let want = naive.v6(ip);
        assert_eq!(table.lookup_v6(ip), want, "v6 {}", Ipv6Addr::from(ip));
        let addr = IpAddr::V6(Ipv6Addr::from(ip));
        assert_eq!(table.lookup(addr), naive.lookup(addr), "v6 {addr}");
    }
}

#[test]
fn random_tables_match_naive() {
    let mut rng = Rng(0x6b69_7a75_6e61);
    for case in 0..80 {
        let n = 1 + (case % 7) * 60;
        check_case(&mut rng, n, n / 2 + 1);
    }
}

#[test]
fn tiny_tables_match_naive() {
    let mut rng = Rng(42);
    for _ in 0..150 {
        let n4 = rng.below(5) as usize;
        let n6 = rng.below(5) as usize;
        check_case(&mut rng, n4, n6);
    }
}

#[test]
fn dense_bucket_matches_naive() {
    // Thousands of prefixes inside one /16 (v4) and one /16 (v6): long in-bucket searches.
    let mut rng = Rng(7);
    let mut entries: Vec<(IpNet, u16)> = Vec::new();
    for _ in 0..5000 {
        let len = 17 + rng.below(16) as u8;
        let a = 0x0a0b_0000 | (rng.next() as u32 & 0xffff);
        entries.push((IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), len).expect("v4"), rng.below(1000) as u16));
        let len6 = 17 + rng.below(112) as u8;
        let a6 = (0x2001u128 << 112) | (rng.u128() >> 16);
        entries.push((IpNet::new(IpAddr::V6(Ipv6Addr::from(a6)), len6).expect("v6"), rng.below(1000) as u16));
    }
    let table = PrefixTable::build(entries.iter().copied());
    let naive = Naive::new(&entries);
    for _ in 0..20_000 {
        let ip = 0x0a0b_0000 | (rng.next() as u32 & 0xffff);
        assert_eq!(table.lookup_v4(ip), naive.v4(ip));
        let ip6 = (0x2001u128 << 112) | (rng.u128() >> 16);
        assert_eq!(table.lookup_v6(ip6), naive.v6(ip6));
    }
    for &(net, _) in entries.iter().take(2000) {
        let ip = net.network();
        assert_eq!(table.lookup(ip), naive.lookup(ip));
        let ip = net.broadcast();
        assert_eq!(table.lookup(ip), naive.lookup(ip));
    }
}
