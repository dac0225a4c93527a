//! What event generators share: who the infected or attacking hosts are, drawn from the world
//! with a heavy skew, plus the time line.
//!
//! Hosts are virtual: host `k` is computed from `(seed, k)` on demand, so a day of 10M lines
//! costs no memory beyond the indexes built from the world.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::EventSpec;
use crate::rng::{Cdf, R, mix};
use crate::world::{V4_RESERVED, World, route_key};

/// Address family policy of a generator.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Fam {
    V4,
    V6,
    /// IPv6 with the spec's `ipv6_share`.
    Mixed,
}

/// A region and city as Shadowserver writes them (upper case).
pub(crate) type Geo = (&'static str, &'static str, &'static str);

pub(crate) const JP_GEO: &[((&str, &str), u32)] = &[
    (("TOKYO", "TOKYO"), 22),
    (("TOKYO", "SHINJUKU"), 3),
    (("OSAKA", "OSAKA"), 12),
    (("KANAGAWA", "YOKOHAMA"), 9),
    (("AICHI", "NAGOYA"), 7),
    (("SAITAMA", "SAITAMA"), 5),
    (("CHIBA", "CHIBA"), 5),
    (("HYOGO", "KOBE"), 4),
    (("HOKKAIDO", "SAPPORO"), 4),
    (("FUKUOKA", "FUKUOKA"), 4),
    (("KYOTO", "KYOTO"), 3),
    (("SHIZUOKA", "HAMAMATSU"), 2),
    (("MIYAGI", "SENDAI"), 2),
    (("HIROSHIMA", "HIROSHIMA"), 2),
    (("IBARAKI", "MITO"), 1),
    (("NIIGATA", "NIIGATA"), 1),
    (("OKAYAMA", "OKAYAMA"), 1),
    (("KUMAMOTO", "KUMAMOTO"), 1),
    (("KAGOSHIMA", "KAGOSHIMA"), 1),
    (("OKINAWA", "NAHA"), 1),
    (("NAGANO", "NAGANO"), 1),
    (("ISHIKAWA", "KANAZAWA"), 1),
    (("EHIME", "MATSUYAMA"), 1),
];

pub(crate) const WORLD_GEO: &[(Geo, u32)] = &[
    (("US", "CALIFORNIA", "LOS ANGELES"), 8),
    (("US", "VIRGINIA", "ASHBURN"), 6),
    (("CN", "GUANGDONG", "SHENZHEN"), 8),
    (("CN", "BEIJING", "BEIJING"), 5),
    (("KR", "SEOUL", "SEOUL"), 5),
    (("TW", "TAIPEI", "TAIPEI"), 4),
    (("VN", "HO CHI MINH", "HO CHI MINH CITY"), 4),
    (("IN", "MAHARASHTRA", "MUMBAI"), 4),
    (("BR", "SAO PAULO", "SAO PAULO"), 4),
    (("RU", "MOSCOW", "MOSCOW"), 3),
    (("DE", "HESSEN", "FRANKFURT AM MAIN"), 3),
    (("NL", "NOORD-HOLLAND", "AMSTERDAM"), 3),
    (("SG", "SINGAPORE", "SINGAPORE"), 2),
    (("ID", "JAKARTA", "JAKARTA"), 2),
    (("TH", "BANGKOK", "BANGKOK"), 2),
];

/// NAICS code and Shadowserver sector name.
pub(crate) const ISP_NAICS: (u32, &str) = (517_311, "Communications, Service Provider, and Hosting Service");
const OTHER_NAICS: &[((u32, &str), u32)] = &[
    ((517_311, "Communications, Service Provider, and Hosting Service"), 40),
    ((518_210, "Communications, Service Provider, and Hosting Service"), 25),
    ((611_310, "Education"), 8),
    ((541_512, "Information Technology"), 7),
    ((0, ""), 20),
];

/// One source host.
#[derive(Clone, Copy)]
pub(crate) struct Host {
    pub ip: IpAddr,
    /// Origin ASN of the covering route; `None` when the address is unrouted.
    pub asn: Option<u32>,
    /// Index into `World::members`.
    pub member: Option<usize>,
    pub geo: Geo,
    /// `(naics, sector)`; naics 0 = unknown.
    pub naics: (u32, &'static str),
    /// Has a reverse DNS name.
    pub rdns: bool,
    /// Stable random bits for per-host choices (malware family, device, …).
    pub bits: u64,
}

pub(crate) struct Ctx<'w> {
    pub world: &'w World,
    /// The world's routes sorted by (family, network, length) (borrowed when already sorted).
    routes: Cow<'w, [(IpNet, u32)]>,
    /// Index of the closest covering route of each route (`u32::MAX`: none).
    parent: Vec<u32>,
    asn_member: HashMap<u32, usize>,
    seed: u64,
    fam: Fam,
    ipv6_share: f64,
    unrouted_share: f64,
    member_cdf: Cdf,
    member_v4: Vec<Vec<(IpNet, u32)>>,
    member_v6: Vec<Vec<(IpNet, u32)>>,
    all_v4: Vec<u32>,
    all_v6: Vec<u32>,
    gaps4: Vec<(u32, u64)>,
    gaps4_cdf: Cdf,
    /// Number of distinct hosts the stream draws from.
    pub pool: u64,
}

impl<'w> Ctx<'w> {
    pub(crate) fn new(world: &'w World, spec: &EventSpec, stream: u64, fam: Fam) -> Self {
        let seed = mix(spec.seed ^ mix(stream));
        let mut asn_member: HashMap<u32, usize> = HashMap::new();
        for (i, m) in world.members.iter().enumerate() {
            for a in &m.asns {
                asn_member.entry(*a).or_insert(i);
            }
        }
        let n = world.members.len();
        let mut member_v4 = vec![Vec::new(); n];
        let mut member_v6 = vec![Vec::new(); n];
        let mut all_v4 = Vec::new();
        let mut all_v6 = Vec::new();
        // Hand-listed member prefixes: their origin is the longest route covering them.
        let mut want: HashMap<(u8, u128, u8), Vec<(usize, usize)>> = HashMap::new();
        for (mi, m) in world.members.iter().enumerate() {
            for (pi, p) in m.prefixes.iter().enumerate() {
                for l in 0..=p.prefix_len() {
                    if let Ok(sup) = IpNet::new(p.network(), l).map(|n| n.trunc()) {
                        want.entry(route_key(&sup)).or_default().push((mi, pi));
                    }
                }
            }
        }
        let routes: Cow<'w, [(IpNet, u32)]> =
            if world.routes.windows(2).all(|p| route_key(&p[0].0) <= route_key(&p[1].0)) {
                Cow::Borrowed(&world.routes)
            } else {
                let mut v = world.routes.clone();
                v.sort_unstable_by_key(|(n, _)| route_key(n));
                Cow::Owned(v)
            };
        let mut parent = vec![u32::MAX; routes.len()];
        let mut stack: Vec<u32> = Vec::new();
        for (i, (net, _)) in routes.iter().enumerate() {
            while let Some(&top) = stack.last() {
                if routes[top as usize].0.contains(net) {
                    break;
                }
                stack.pop();
            }
            if let Some(&top) = stack.last() {
                parent[i] = top;
            }
            stack.push(i as u32);
        }
        let mut explicit_origin: HashMap<(usize, usize), (u8, u32)> = HashMap::new();
        for (i, (net, asn)) in routes.iter().enumerate() {
            let v6 = matches!(net, IpNet::V6(_));
            if v6 { &mut all_v6 } else { &mut all_v4 }.push(i as u32);
            if let Some(&m) = asn_member.get(asn) {
                if v6 { &mut member_v6[m] } else { &mut member_v4[m] }.push((*net, *asn));
            }
            if !want.is_empty()
                && let Some(hits) = want.get(&route_key(net))
            {
                for h in hits {
                    let e = explicit_origin.entry(*h).or_insert((0, *asn));
                    if net.prefix_len() >= e.0 {
                        *e = (net.prefix_len(), *asn);
                    }
                }
            }
        }
        for (mi, m) in world.members.iter().enumerate() {
            for (pi, p) in m.prefixes.iter().enumerate() {
                let asn = explicit_origin.get(&(mi, pi)).map(|e| e.1).unwrap_or(0);
                match p {
                    IpNet::V4(_) => member_v4[mi].push((p.trunc(), asn)),
                    IpNet::V6(_) => member_v6[mi].push((p.trunc(), asn)),
                }
            }
        }
        let member_cdf = Cdf::new((0..n).map(|i| {
            if member_v4[i].is_empty() && member_v6[i].is_empty() { 0.0 } else { ((i + 1) as f64).powf(-1.2) }
        }));
        let gaps4 = v4_gaps(world);
        let gaps4_cdf = Cdf::new(gaps4.iter().map(|g| g.1 as f64));
        let pool = (spec.lines / 3).clamp(16, 4_000_000);
        Ctx {
            world,
            routes,
            parent,
            asn_member,
            seed,
            fam,
            ipv6_share: spec.ipv6_share.clamp(0.0, 1.0),
            unrouted_share: spec.unrouted_share.clamp(0.0, 1.0),
            member_cdf,
            member_v4,
            member_v6,
            all_v4,
            all_v6,
            gaps4,
            gaps4_cdf,
            pool,
        }
    }

    /// A host index, skewed: low indices recur often (a few hosts beacon all day).
    pub(crate) fn pick_host(&self, r: &mut R) -> u64 {
        let u = r.f64();
        ((self.pool as f64) * u * u * u) as u64
    }

    /// Host `k` of this stream (the same `k` always gives the same host).
    pub(crate) fn host(&self, k: u64) -> Host {
        let mut r = R::derive(self.seed, k);
        let bits = r.u64();
        let v6 = match self.fam {
            Fam::V4 => false,
            Fam::V6 => true,
            Fam::Mixed => r.chance(self.ipv6_share),
        };
        let rdns = r.chance(0.55);
        if r.chance(self.unrouted_share) {
            let ip = if v6 { self.unrouted_v6(&mut r) } else { self.unrouted_v4(&mut r) };
            return Host { ip, asn: None, member: None, geo: jp_geo(&mut r), naics: (0, ""), rdns: false, bits };
        }
        if r.chance(0.9)
            && let Some(m) = self.member_cdf.sample(&mut r)
        {
            let list = match (self.fam, v6) {
                (Fam::Mixed, true) if self.member_v6[m].is_empty() => &self.member_v4[m],
                (Fam::Mixed, false) if self.member_v4[m].is_empty() => &self.member_v6[m],
                (_, true) => &self.member_v6[m],
                (_, false) => &self.member_v4[m],
            };
            if !list.is_empty() {
                let (net, picked) = list[r.index(list.len())];
                let geo = if m >= 15 && r.chance(0.7) {
                    let g = JP_GEO[(mix(self.seed ^ m as u64) % JP_GEO.len() as u64) as usize].0;
                    ("JP", g.0, g.1)
                } else {
                    jp_geo(&mut r)
                };
                let naics = if r.chance(0.15) { (517_312, ISP_NAICS.1) } else { ISP_NAICS };
                let naics = if r.chance(0.1) { (0, "") } else { naics };
                let ip = host_in(&mut r, &net);
                // The address may sit in a more-specific route of another network.
                let asn = self.lpm(ip);
                let owned = picked == 0 || asn == Some(picked);
                let member = if owned { Some(m) } else { asn.and_then(|a| self.asn_member.get(&a).copied()) };
                return Host { ip, asn, member, geo, naics, rdns, bits };
            }
        }
        let list = match (self.fam, v6) {
            (Fam::Mixed, true) if self.all_v6.is_empty() => &self.all_v4,
            (_, true) => &self.all_v6,
            (_, false) => &self.all_v4,
        };
        if list.is_empty() {
            let ip = if v6 { self.unrouted_v6(&mut r) } else { self.unrouted_v4(&mut r) };
            return Host { ip, asn: None, member: None, geo: jp_geo(&mut r), naics: (0, ""), rdns: false, bits };
        }
        let (net, _) = self.routes[list[r.index(list.len())] as usize];
        let ip = host_in(&mut r, &net);
        let asn = self.lpm(ip);
        let member = asn.and_then(|a| self.asn_member.get(&a).copied());
        let geo = if r.chance(0.5) { jp_geo(&mut r) } else { *r.weighted(WORLD_GEO) };
        let naics = *r.weighted(OTHER_NAICS);
        Host { ip, asn, member, geo, naics, rdns, bits }
    }

    /// A routed address outside every member's space (sinkholes, honeypots, C2 servers).
    pub(crate) fn infrastructure(&self, r: &mut R, v6: bool) -> (IpAddr, Option<u32>) {
        let list = if v6 && !self.all_v6.is_empty() || self.all_v4.is_empty() { &self.all_v6 } else { &self.all_v4 };
        for _ in 0..64 {
            if list.is_empty() {
                break;
            }
            let (net, asn) = self.routes[list[r.index(list.len())] as usize];
            if !self.asn_member.contains_key(&asn) {
                let ip = host_in(r, &net);
                return (ip, self.lpm(ip));
            }
        }
        (if v6 { self.unrouted_v6(r) } else { self.unrouted_v4(r) }, None)
    }

    /// Origin ASN of the longest route covering `ip`.
    pub(crate) fn lpm(&self, ip: IpAddr) -> Option<u32> {
        let key = match ip {
            IpAddr::V4(v) => (4u8, u128::from(u32::from(v)), 32u8),
            IpAddr::V6(v) => (6u8, u128::from(v), 128u8),
        };
        // The last route at or before the address in sort order; the longest match is it or one
        // of its ancestors (aligned blocks nest or are disjoint).
        let p = self.routes.partition_point(|(n, _)| route_key(n) <= key);
        let mut i = p.checked_sub(1)? as u32;
        loop {
            let (n, asn) = &self.routes[i as usize];
            if n.contains(&ip) {
                return Some(*asn);
            }
            i = self.parent[i as usize];
            if i == u32::MAX {
                return None;
            }
        }
    }

    fn unrouted_v4(&self, r: &mut R) -> IpAddr {
        match self.gaps4_cdf.sample(r) {
            Some(i) => {
                let (start, len) = self.gaps4[i];
                IpAddr::V4(Ipv4Addr::from(start.wrapping_add(r.below(len) as u32)))
            }
            None => IpAddr::V4(Ipv4Addr::new(192, 0, 2, r.range(1, 254) as u8)),
        }
    }

    fn unrouted_v6(&self, r: &mut R) -> IpAddr {
        // 2e00::/7 is not yet allocated by IANA: nothing there is routed.
        let a = (0x2e00u128 << 112) | (u128::from(r.u64()) << 48 & ((1u128 << 112) - 1)) | u128::from(r.u64() >> 16);
        IpAddr::V6(Ipv6Addr::from(a))
    }
}

fn jp_geo(r: &mut R) -> Geo {
    let g = r.weighted(JP_GEO);
    ("JP", g.0, g.1)
}

/// A usable host address inside `net`.
pub(crate) fn host_in(r: &mut R, net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let base = u32::from(n.network());
            let size = 1u64 << (32 - u32::from(n.prefix_len()));
            let off = if size > 4 { 1 + r.below(size - 2) } else { r.below(size) };
            IpAddr::V4(Ipv4Addr::from(base.wrapping_add(off as u32)))
        }
        IpNet::V6(n) => {
            let base = u128::from(n.network());
            let hl = 128 - u32::from(n.prefix_len());
            let mask = if hl >= 128 { u128::MAX } else { (1u128 << hl) - 1 };
            let rand = (u128::from(r.u64()) << 64) | u128::from(r.u64());
            let mut a = base | (rand & mask);
            if hl > 64 && r.chance(0.3) {
                // A CPE or server with a small interface id (::1, ::2, …).
                a = (a & !((1u128 << 64) - 1)) | u128::from(r.range(1, 16));
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
    }
}

/// Public IPv4 space not covered by any route: `(start, size)`.
fn v4_gaps(world: &World) -> Vec<(u32, u64)> {
    let mut iv: Vec<(u64, u64)> = world
        .routes
        .iter()
        .filter_map(|(n, _)| match n {
            IpNet::V4(n) => {
                let s = u64::from(u32::from(n.network()));
                Some((s, s + (1u64 << (32 - u32::from(n.prefix_len())))))
            }
            IpNet::V6(_) => None,
        })
        .collect();
    iv.extend(V4_RESERVED.iter().map(|&(a, l)| (u64::from(a), u64::from(a) + (1u64 << (32 - u32::from(l))))));
    iv.sort_unstable();
    let mut gaps = Vec::new();
    let mut cursor = 0u64;
    for (s, e) in iv {
        if s > cursor {
            gaps.push((cursor as u32, s - cursor));
        }
        cursor = cursor.max(e);
    }
    if cursor < 1u64 << 32 {
        gaps.push((cursor as u32, (1u64 << 32) - cursor));
    }
    gaps
}
