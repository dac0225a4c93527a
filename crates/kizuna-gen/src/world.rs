//! The routing world: a synthetic global BGP table and the hub's member ISPs.

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::rng::{Cdf, R};

/// What [`world`] builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingSpec {
    /// IPv4 routes (the real table: ~1M in 2026).
    pub v4_prefixes: usize,
    /// IPv6 routes.
    pub v6_prefixes: usize,
    /// Member ISPs of the hub.
    pub members: usize,
    /// Seed: the same spec always gives the same world.
    pub seed: u64,
}

impl Default for RoutingSpec {
    /// A full table: 900k IPv4 + 150k IPv6 routes, 100 members, seed 1.
    fn default() -> Self {
        RoutingSpec { v4_prefixes: 900_000, v6_prefixes: 150_000, members: 100, seed: 1 }
    }
}

impl RoutingSpec {
    /// A small world for unit tests: 20k IPv4 + 3k IPv6 routes, 20 members.
    pub fn small(seed: u64) -> Self {
        RoutingSpec { v4_prefixes: 20_000, v6_prefixes: 3_000, members: 20, seed }
    }
}

/// A member ISP as the hub's contact database would list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenMember {
    /// Short stable id: `isp-001`, `isp-002`, …
    pub name: String,
    /// Human name, e.g. `Sakura Hikari Co., Ltd.`
    pub display_name: String,
    /// Origin ASNs the member owns (the first is its main ASN).
    pub asns: Vec<u32>,
    /// Extra prefixes listed by hand (customer space announced by another ASN); usually empty.
    pub prefixes: Vec<IpNet>,
    /// Abuse contacts (`abuse@isp-001.example.ne.jp`; `example.ne.jp` is reserved by JPRS).
    pub contacts: Vec<String>,
}

/// A generated routing table plus members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// `(prefix, origin ASN)`, sorted: IPv4 before IPv6, then by address, then by length.
    pub routes: Vec<(IpNet, u32)>,
    /// Members, largest first (`isp-001` carries the most space and the most infections).
    pub members: Vec<GenMember>,
}

impl World {
    /// The member owning `asn`, if any.
    pub fn member_of_asn(&self, asn: u32) -> Option<&GenMember> {
        self.members.iter().find(|m| m.asns.contains(&asn))
    }
}

/// Special-purpose and non-unicast IPv4 space (RFC 6890 registry, multicast, class E).
pub(crate) const V4_RESERVED: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10.0.0.0/8
    (0x6440_0000, 10), // 100.64.0.0/10 shared address space
    (0x7f00_0000, 8),  // 127.0.0.0/8
    (0xa9fe_0000, 16), // 169.254.0.0/16
    (0xac10_0000, 12), // 172.16.0.0/12
    (0xc000_0000, 24), // 192.0.0.0/24
    (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xc01f_c400, 24), // 192.31.196.0/24 AS112-v4
    (0xc034_c100, 24), // 192.52.193.0/24 AMT
    (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay (deprecated)
    (0xc0a8_0000, 16), // 192.168.0.0/16
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved + broadcast
];

/// IPv6 blocks inside 2000::/3 that are never routed as ordinary unicast.
const V6_SPECIAL: &[(u128, u8)] = &[
    (0x2001_0000 << 96, 23), // 2001::/23 IETF protocol assignments (Teredo, ORCHID, …)
    (0x2001_0db8 << 96, 32), // 2001:db8::/32 documentation
    (0x2002 << 112, 16),     // 2002::/16 6to4
    (0x3fff << 112, 20),     // 3fff::/20 documentation (RFC 9637)
];

/// RIR blocks where IPv6 routes are placed, with weights (roughly the real table's shares).
const V6_REGIONS: &[((u128, u8), u32)] = &[
    ((0x2001 << 112, 16), 14),
    ((0x2400 << 112, 12), 24),
    ((0x2600 << 112, 12), 20),
    ((0x2800 << 112, 12), 9),
    ((0x2a00 << 112, 12), 28),
    ((0x2a10 << 112, 12), 3),
    ((0x2c00 << 112, 12), 2),
];

/// IPv4 prefix lengths of the global table (per million routes; /24 about 62%).
const V4_LEN: &[(u8, u32)] = &[
    (8, 15),
    (9, 12),
    (10, 35),
    (11, 100),
    (12, 280),
    (13, 550),
    (14, 1_100),
    (15, 1_900),
    (16, 14_000),
    (17, 8_500),
    (18, 14_000),
    (19, 26_000),
    (20, 42_000),
    (21, 50_000),
    (22, 120_000),
    (23, 100_000),
    (24, 621_508),
];

/// Length of an ASN's first (covering) IPv6 route.
const V6_TOP_LEN: &[(u8, u32)] = &[
    (20, 2),
    (24, 3),
    (28, 10),
    (29, 80),
    (32, 520),
    (33, 10),
    (34, 10),
    (35, 10),
    (36, 50),
    (40, 80),
    (44, 55),
    (48, 170),
];

/// Length of an ASN's further IPv6 routes (mostly /48 deaggregates).
const V6_MORE_LEN: &[(u8, u32)] = &[(36, 30), (40, 70), (42, 30), (44, 80), (46, 40), (47, 30), (48, 720)];

/// Build a world. Deterministic in `spec`; ~1–2 s in release for the default full table.
pub fn world(spec: &RoutingSpec) -> World {
    let mut r = R::derive(spec.seed, 0x0077_6f72_6c64);
    let total = spec.v4_prefixes + spec.v6_prefixes;
    let mut n_asn = (total / 15).max(1);
    if n_asn < spec.members * 3 {
        n_asn = (spec.members * 3).min(spec.v4_prefixes.max(spec.members)).max(1);
    }
    let asns = gen_asns(&mut r, n_asn);
    let weights: Vec<f64> = (0..n_asn).map(|_| r.pareto(0.9).min(8000.0)).collect();

    let v4_counts = distribute(&mut r, spec.v4_prefixes, &weights, &vec![true; n_asn]);
    let mut v6_eligible: Vec<bool> = weights.iter().map(|w| r.chance(if *w > 3.0 { 0.8 } else { 0.4 })).collect();
    if !v6_eligible.iter().any(|e| *e) {
        v6_eligible.iter_mut().for_each(|e| *e = true);
    }
    let v6_weights: Vec<f64> = weights.iter().map(|w| w.powf(0.9)).collect();
    let v6_counts = distribute(&mut r, spec.v6_prefixes, &v6_weights, &v6_eligible);

    let v4 = alloc_v4(&mut r, &v4_counts);
    let v6 = alloc_v6(&mut r, &v6_counts);

    let members = gen_members(&mut r, spec, &asns, &weights, &v4, &v6);

    let mut routes: Vec<(IpNet, u32)> = Vec::with_capacity(v4.len() + v6.len());
    routes
        .extend(v4.iter().filter_map(|&(a, l, i)| {
            Ipv4Net::new(Ipv4Addr::from(a), l).ok().map(|n| (IpNet::V4(n), asns[i as usize]))
        }));
    routes
        .extend(v6.iter().filter_map(|&(a, l, i)| {
            Ipv6Net::new(Ipv6Addr::from(a), l).ok().map(|n| (IpNet::V6(n), asns[i as usize]))
        }));
    routes.sort_unstable_by_key(|(n, _)| route_key(n));
    World { routes, members }
}

/// Sort key: family, network address, length.
pub(crate) fn route_key(n: &IpNet) -> (u8, u128, u8) {
    match n {
        IpNet::V4(n) => (4, u128::from(u32::from(n.network())), n.prefix_len()),
        IpNet::V6(n) => (6, u128::from(n.network()), n.prefix_len()),
    }
}

/// Write routes in pyasn's "IPASN" text format (what `pyasn.pyasn(file)` and IntelMQ's ASN
/// lookup expert read): a comment header line, then `prefix<TAB>asn` per line.
pub fn write_ipasn(routes: &[(IpNet, u32)], out: &mut impl Write) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, out);
    w.write_all(b"; IP-ASN32-DAT file\n")?;
    writeln!(w, "; Original source:\tkizuna-gen (synthetic table, {} prefixes)", routes.len())?;
    for (net, asn) in routes {
        writeln!(w, "{net}\t{asn}")?;
    }
    w.flush()
}

/// Distinct, realistic ASNs: ~60% 16-bit public, the rest 32-bit as assigned so far.
fn gen_asns(r: &mut R, n: usize) -> Vec<u32> {
    let mut seen = HashSet::with_capacity(n * 2);
    let mut out = Vec::with_capacity(n);
    let mut tries = 0u64;
    while out.len() < n {
        tries += 1;
        let asn = if tries > 50 * n as u64 {
            r.range(401_309, 4_199_999_999) as u32
        } else if r.chance(0.6) {
            r.range(1, 64_495) as u32
        } else {
            r.range(131_072, 401_308) as u32
        };
        if asn == 23_456 {
            continue;
        }
        if seen.insert(asn) {
            out.push(asn);
        }
    }
    out
}

/// Split `total` routes over the eligible ASNs: one each, the rest in proportion to the weight.
fn distribute(r: &mut R, total: usize, weights: &[f64], eligible: &[bool]) -> Vec<u32> {
    let mut counts = vec![0u32; weights.len()];
    let mut el: Vec<usize> = (0..weights.len()).filter(|i| eligible[*i]).collect();
    if el.is_empty() || total == 0 {
        return counts;
    }
    if total <= el.len() {
        r.shuffle(&mut el);
        for &i in &el[..total] {
            counts[i] = 1;
        }
        return counts;
    }
    let rest = (total - el.len()) as f64;
    let wsum: f64 = el.iter().map(|i| weights[*i]).sum();
    let mut given = el.len();
    for &i in &el {
        let extra = (rest * weights[i] / wsum).floor() as u32;
        counts[i] = 1 + extra;
        given += extra as usize;
    }
    let cdf = Cdf::new(el.iter().map(|i| weights[*i]));
    while given < total {
        if let Some(k) = cdf.sample(r) {
            counts[el[k]] += 1;
        }
        given += 1;
    }
    counts
}

/// Free aligned IPv4 blocks by prefix length (a buddy allocator with random choice).
struct Buddy {
    free: Vec<Vec<u32>>,
}

impl Buddy {
    /// All public unicast space, in blocks of at most /8, minus a few withheld /8-sized blocks
    /// that stay unrouted (the real table leaves ~15% of unicast space unannounced).
    fn public_v4(r: &mut R) -> Self {
        let mut b = Buddy { free: vec![Vec::new(); 33] };
        b.add_free(0, 0);
        let slash8 = b.free[8].len();
        let withhold = (slash8 as f64 * 0.06).round().max(1.0) as usize;
        for _ in 0..withhold.min(slash8) {
            let i = r.index(b.free[8].len());
            b.free[8].swap_remove(i);
        }
        // Keep the allocation order independent of the decomposition order.
        for l in &mut b.free {
            l.sort_unstable();
        }
        b
    }

    fn add_free(&mut self, addr: u32, len: u8) {
        let size = block_size(len);
        let end = u64::from(addr) + size - 1;
        let mut partial = false;
        for &(ra, rl) in V4_RESERVED {
            let rend = u64::from(ra) + block_size(rl) - 1;
            if u64::from(ra) <= u64::from(addr) && end <= rend {
                return; // entirely reserved
            }
            if u64::from(ra) <= end && u64::from(addr) <= rend {
                partial = true;
            }
        }
        if partial || len < 8 {
            let half = (size / 2) as u32;
            self.add_free(addr, len + 1);
            self.add_free(addr + half, len + 1);
        } else {
            self.free[len as usize].push(addr);
        }
    }

    /// A random free block of exactly `len`, splitting a larger one if needed (best fit).
    fn alloc(&mut self, r: &mut R, len: u8) -> Option<u32> {
        let mut l = len as usize;
        while self.free[l].is_empty() {
            if l == 0 {
                return None;
            }
            l -= 1;
        }
        let i = r.index(self.free[l].len());
        let mut addr = self.free[l].swap_remove(i);
        while l < len as usize {
            let half = (block_size(l as u8) / 2) as u32;
            let (keep, give) = if r.chance(0.5) { (addr, addr + half) } else { (addr + half, addr) };
            self.free[l + 1].push(give);
            addr = keep;
            l += 1;
        }
        Some(addr)
    }
}

fn block_size(len: u8) -> u64 {
    1u64 << (32 - u32::from(len))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Top,
    SameOrigin,
    OtherOrigin,
}

/// Place every ASN's IPv4 routes. Returns `(network, length, asn index)`.
fn alloc_v4(r: &mut R, counts: &[u32]) -> Vec<(u32, u8, u32)> {
    let mut buddy = Buddy::public_v4(r);
    let mut reqs: Vec<(u32, u8, Kind)> = Vec::with_capacity(counts.iter().map(|c| *c as usize).sum());
    let mut lens = Vec::new();
    for (ai, &c) in counts.iter().enumerate() {
        lens.clear();
        lens.extend((0..c).map(|_| *r.weighted(V4_LEN)));
        lens.sort_unstable();
        for (j, &l) in lens.iter().enumerate() {
            let kind = if j == 0 {
                Kind::Top
            } else if l > lens[0] && r.chance(0.4) {
                Kind::SameOrigin
            } else if r.chance(0.08) {
                Kind::OtherOrigin
            } else {
                Kind::Top
            };
            reqs.push((ai as u32, l, kind));
        }
    }
    let mut tops: Vec<(u32, u8)> = reqs.iter().filter(|q| q.2 == Kind::Top).map(|q| (q.0, q.1)).collect();
    r.shuffle(&mut tops);
    tops.sort_by_key(|t| t.1); // stable: random order within a length

    let mut out: Vec<(u32, u8, u32)> = Vec::with_capacity(reqs.len());
    let mut seen: HashSet<u64> = HashSet::with_capacity(reqs.len() * 2);
    let mut homeless: Vec<(u32, u8)> = Vec::new();
    for &(ai, l) in &tops {
        match buddy.alloc(r, l) {
            Some(a) => {
                seen.insert(key4(a, l));
                out.push((a, l, ai));
            }
            None => homeless.push((ai, l)),
        }
    }
    let n_top = out.len();
    // Own covering routes per ASN (indices into `out`).
    let mut own: Vec<Vec<u32>> = vec![Vec::new(); counts.len()];
    for (i, t) in out.iter().enumerate() {
        own[t.2 as usize].push(i as u32);
    }
    let mut cands = Vec::new();
    for &(ai, l, kind) in &reqs {
        if kind == Kind::Top {
            continue;
        }
        let mut placed = false;
        if kind == Kind::SameOrigin {
            cands.clear();
            cands.extend(own[ai as usize].iter().copied().filter(|&i| out[i as usize].1 < l));
            if !cands.is_empty() {
                for _ in 0..8 {
                    let p = out[cands[r.index(cands.len())] as usize];
                    let a = sub_block(r, p.0, p.1, l);
                    if seen.insert(key4(a, l)) {
                        out.push((a, l, ai));
                        placed = true;
                        break;
                    }
                }
            }
        }
        if !placed {
            homeless.push((ai, l));
        }
    }
    // Routes inside another ASN's space (customer more-specifics), or fresh space.
    for (ai, l) in homeless {
        let mut placed = false;
        for _ in 0..32 {
            if n_top == 0 {
                break;
            }
            let p = out[r.index(n_top)];
            if p.1 >= l || p.2 == ai {
                continue;
            }
            let a = sub_block(r, p.0, p.1, l);
            if seen.insert(key4(a, l)) {
                out.push((a, l, ai));
                placed = true;
                break;
            }
        }
        if !placed && let Some(a) = buddy.alloc(r, l) {
            seen.insert(key4(a, l));
            out.push((a, l, ai));
        }
    }
    out
}

fn key4(a: u32, l: u8) -> u64 {
    (u64::from(a) << 8) | u64::from(l)
}

/// A random aligned `/l` inside `parent/pl` (`l > pl`).
fn sub_block(r: &mut R, parent: u32, pl: u8, l: u8) -> u32 {
    let n = 1u64 << (l - pl);
    parent | ((r.below(n) as u32) << (32 - u32::from(l)))
}

/// Place every ASN's IPv6 routes: a covering allocation, then mostly /48s inside it.
fn alloc_v6(r: &mut R, counts: &[u32]) -> Vec<(u128, u8, u32)> {
    let mut out = Vec::with_capacity(counts.iter().map(|c| *c as usize).sum());
    let mut seen: HashSet<(u128, u8)> = HashSet::with_capacity(out.capacity() * 2);
    for (ai, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        // Networks with many routes hold a large allocation to carve them from.
        let mut first_len = *r.weighted(V6_TOP_LEN);
        if c > 16 {
            first_len = first_len.min(32);
        }
        let Some(first) = place_v6_top(r, first_len, &mut seen) else { continue };
        out.push((first, first_len, ai as u32));
        for _ in 1..c {
            let l = *r.weighted(V6_MORE_LEN);
            let mut placed = None;
            if l > first_len && r.chance(0.75) {
                let n = 1u128 << (l - first_len).min(127);
                for _ in 0..4 {
                    let off = (u128::from(r.u64()) << 64 | u128::from(r.u64())) % n;
                    let a = first | (off << (128 - u32::from(l)));
                    if seen.insert((a, l)) {
                        placed = Some(a);
                        break;
                    }
                }
            }
            if placed.is_none() {
                placed = place_v6_top(r, l, &mut seen);
            }
            if let Some(a) = placed {
                out.push((a, l, ai as u32));
            }
        }
    }
    out
}

fn place_v6_top(r: &mut R, l: u8, seen: &mut HashSet<(u128, u8)>) -> Option<u128> {
    for _ in 0..16 {
        let &(base, bl) = r.weighted(V6_REGIONS);
        if l <= bl {
            continue;
        }
        let n = 1u128 << (l - bl);
        let off = (u128::from(r.u64()) << 64 | u128::from(r.u64())) % n;
        let a = base | (off << (128 - u32::from(l)));
        let special = V6_SPECIAL.iter().any(|&(sa, sl)| overlaps6(a, l, sa, sl));
        if !special && seen.insert((a, l)) {
            return Some(a);
        }
    }
    None
}

fn overlaps6(a: u128, al: u8, b: u128, bl: u8) -> bool {
    let l = al.min(bl);
    let mask = if l == 0 { 0 } else { u128::MAX << (128 - u32::from(l)) };
    a & mask == b & mask
}

const NAME_A: &[&str] = &[
    "Sakura",
    "Fuji",
    "Aozora",
    "Midori",
    "Tsubasa",
    "Yamato",
    "Asahi",
    "Hoshizora",
    "Kansai",
    "Kyushu",
    "Tohoku",
    "Hokuriku",
    "Chubu",
    "Shikoku",
    "Setouchi",
    "Mirai",
    "Umikaze",
    "Hikarinomichi",
    "Musashi",
    "Biwako",
];
const NAME_B: &[&str] =
    &["Net", "Telecom", "Communications", "Broadband", "Networks", "Cable", "Hikari", "Online", "Internet", "Data"];
const NAME_C: &[&str] = &["Co., Ltd.", "K.K.", "Corporation", "Inc."];

fn gen_members(
    r: &mut R,
    spec: &RoutingSpec,
    asns: &[u32],
    weights: &[f64],
    v4: &[(u32, u8, u32)],
    v6: &[(u128, u8, u32)],
) -> Vec<GenMember> {
    let n_asn = asns.len();
    let mut order: Vec<usize> = (0..n_asn).collect();
    order.sort_by(|a, b| weights[*b].total_cmp(&weights[*a]).then(a.cmp(b)));
    let stride = (n_asn / (spec.members.max(1) * 3)).clamp(1, 7);
    let mut used = vec![false; n_asn];
    let mut member_asn_idx: Vec<bool> = vec![false; n_asn];
    let combos = NAME_A.len() * NAME_B.len();
    let name_off = r.index(combos);
    let mut members = Vec::with_capacity(spec.members);
    for i in 0..spec.members {
        let want = if i < 3 {
            r.range(3, 5)
        } else if i < 10 {
            r.range(2, 3)
        } else if i < 30 {
            r.range(1, 2)
        } else if r.chance(0.1) {
            2
        } else {
            1
        } as usize;
        let mut mine = Vec::with_capacity(want);
        // Main ASN: near the top of the size ranking, in member order.
        let start = (i * stride + r.index(stride)).min(n_asn - 1);
        if let Some(pos) = (0..n_asn).map(|k| (start + k) % n_asn).find(|p| !used[order[*p]]) {
            used[order[pos]] = true;
            mine.push(order[pos]);
        }
        // Further ASNs: subsidiaries and acquisitions, mostly small.
        let tail = (spec.members * stride).min(n_asn.saturating_sub(1));
        for _ in 1..want {
            for _ in 0..32 {
                let pos = tail + r.index(n_asn - tail);
                if !used[order[pos]] {
                    used[order[pos]] = true;
                    mine.push(order[pos]);
                    break;
                }
            }
        }
        for &m in &mine {
            member_asn_idx[m] = true;
        }
        let j = (name_off + i * 37) % combos;
        let mut display = format!("{} {} {}", NAME_A[j / NAME_B.len()], NAME_B[j % NAME_B.len()], r.pick(NAME_C));
        if i >= combos {
            display = format!("{display} ({})", i / combos + 1);
        }
        let name = format!("isp-{:03}", i + 1);
        let mut contacts = vec![format!("abuse@{name}.example.ne.jp")];
        if r.chance(0.3) {
            contacts.push(format!("{}@{name}.example.ne.jp", r.pick(&["soc", "cert", "noc", "security"])));
        }
        members.push((name, display, mine, contacts));
    }
    // Hand-listed customer prefixes inside other ASNs' routes, for about a quarter of the members.
    let mut out = Vec::with_capacity(members.len());
    for (name, display_name, mine, contacts) in members {
        let mut prefixes = Vec::new();
        if r.chance(0.25) && !v4.is_empty() {
            for _ in 0..r.range(1, 3) {
                for _ in 0..16 {
                    let p = v4[r.index(v4.len())];
                    if member_asn_idx[p.2 as usize] || p.1 > 24 {
                        continue;
                    }
                    let l = (p.1 + r.range(0, 4) as u8).min(28);
                    let a = if l > p.1 { sub_block(r, p.0, p.1, l) } else { p.0 };
                    if let Ok(n) = Ipv4Net::new(Ipv4Addr::from(a), l) {
                        prefixes.push(IpNet::V4(n));
                    }
                    break;
                }
            }
            if r.chance(0.3) && !v6.is_empty() {
                for _ in 0..16 {
                    let p = v6[r.index(v6.len())];
                    if member_asn_idx[p.2 as usize] || p.1 > 48 {
                        continue;
                    }
                    let off = u128::from(r.below(1u64 << (48 - p.1).min(63)));
                    let a = p.0 | (off << 80);
                    if let Ok(n) = Ipv6Net::new(Ipv6Addr::from(a), 48) {
                        prefixes.push(IpNet::V6(n));
                    }
                    break;
                }
            }
        }
        out.push(GenMember { name, display_name, asns: mine.iter().map(|i| asns[*i]).collect(), prefixes, contacts });
    }
    out
}
