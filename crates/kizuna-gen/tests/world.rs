//! The routing world: shape of the table, members, and the ipasn file.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use kizuna_gen::{IpNet, RoutingSpec, world, write_ipasn};

fn spec() -> RoutingSpec {
    RoutingSpec { v4_prefixes: 120_000, v6_prefixes: 20_000, members: 100, seed: 5 }
}

#[test]
fn same_seed_same_world_other_seed_other_world() {
    let s = RoutingSpec::small(9);
    let a = world(&s);
    assert_eq!(a, world(&s));
    let b = world(&RoutingSpec { seed: 10, ..s });
    assert_ne!(a.routes, b.routes);
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    write_ipasn(&a.routes, &mut fa).expect("vec");
    write_ipasn(&world(&RoutingSpec::small(9)).routes, &mut fb).expect("vec");
    assert_eq!(fa, fb);
}

#[test]
fn counts_and_prefix_length_distribution_look_like_the_bgp_table() {
    let w = world(&spec());
    let v4: Vec<_> = w.routes.iter().filter(|(n, _)| common::is_v4(n)).collect();
    let v6: Vec<_> = w.routes.iter().filter(|(n, _)| !common::is_v4(n)).collect();
    assert_eq!(v4.len(), 120_000);
    assert!(v6.len() >= 19_000 && v6.len() <= 20_000, "{}", v6.len());
    let mut by_len = [0usize; 33];
    for (n, _) in &v4 {
        by_len[n.prefix_len() as usize] += 1;
    }
    let share = |l: usize| by_len[l] as f64 / v4.len() as f64;
    assert!((0.58..0.66).contains(&share(24)), "/24 share {}", share(24));
    let mid: f64 = (16..=23).map(share).sum();
    assert!((0.30..0.40).contains(&mid), "/16-/23 share {mid}");
    let short: usize = by_len[..16].iter().sum();
    assert!(short > 50 && (short as f64) < 0.01 * v4.len() as f64, "/8-/15: {short}");
    assert_eq!(by_len[..8].iter().sum::<usize>() + by_len[25..].iter().sum::<usize>(), 0);
    let v6_mid = v6.iter().filter(|(n, _)| (32..=48).contains(&n.prefix_len())).count();
    assert!(v6_mid as f64 > 0.85 * v6.len() as f64, "v6 /32-/48: {v6_mid} of {}", v6.len());
}

#[test]
fn all_space_is_public_unicast() {
    let w = world(&spec());
    let bad4: [IpNet; 12] = [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    ]
    .map(|s| s.parse().expect("cidr"));
    let global6: IpNet = "2000::/3".parse().expect("cidr");
    let bad6: [IpNet; 3] = ["2001:db8::/32", "2002::/16", "2001::/23"].map(|s| s.parse().expect("cidr"));
    for (n, asn) in &w.routes {
        assert!(*asn != 0 && *asn != 23_456 && !(64_496..=131_071).contains(asn), "{n} AS{asn}");
        if common::is_v4(n) {
            assert!(bad4.iter().all(|b| !b.contains(n) && !n.contains(b)), "{n}");
        } else {
            assert!(global6.contains(n), "{n}");
            assert!(bad6.iter().all(|b| !b.contains(n) && !n.contains(b)), "{n}");
        }
    }
    let set: HashSet<_> = w.routes.iter().map(|r| r.0).collect();
    assert_eq!(set.len(), w.routes.len(), "duplicate prefixes");
    assert!(w.routes.windows(2).all(|p| key(&p[0].0) < key(&p[1].0)), "routes are sorted");
}

fn key(n: &IpNet) -> (u8, u128, u8) {
    match n {
        IpNet::V4(n) => (4, u128::from(u32::from(n.network())), n.prefix_len()),
        IpNet::V6(n) => (6, u128::from(n.network()), n.prefix_len()),
    }
}

#[test]
fn more_specifics_nest_inside_covering_routes_of_same_and_other_origins() {
    let w = world(&spec());
    // Covering routes by (network, length); walk up each route's supernets.
    let map: HashMap<IpNet, u32> = w.routes.iter().copied().collect();
    let (mut same, mut other, mut nested) = (0, 0, 0);
    for (n, asn) in w.routes.iter().filter(|(n, _)| common::is_v4(n)) {
        let cover = (8..n.prefix_len()).rev().find_map(|l| {
            let sup = IpNet::new(n.network(), l).expect("len").trunc();
            map.get(&sup).copied()
        });
        if let Some(c) = cover {
            nested += 1;
            if c == *asn { same += 1 } else { other += 1 }
        }
    }
    let total = 120_000.0;
    assert!(nested as f64 > 0.2 * total && (nested as f64) < 0.6 * total, "nested {nested}");
    assert!(other as f64 > 0.02 * total, "other-origin more-specifics {other}");
    assert!(same > other, "same {same} other {other}");
}

#[test]
fn asns_are_many_and_heavy_tailed() {
    let w = world(&spec());
    let mut per: HashMap<u32, usize> = HashMap::new();
    for (_, a) in &w.routes {
        *per.entry(*a).or_default() += 1;
    }
    let n = per.len();
    assert!((8_000..=10_000).contains(&n), "{n} ASNs");
    let mut counts: Vec<usize> = per.values().copied().collect();
    counts.sort_unstable();
    let median = counts[n / 2];
    let max = counts[n - 1];
    assert!(median <= 3, "median {median}");
    assert!(max >= 100 * median, "max {max} median {median}");
    let top1pct: usize = counts[n - n / 100..].iter().sum();
    assert!(top1pct as f64 > 0.15 * w.routes.len() as f64, "top 1% ASNs hold {top1pct}");
}

#[test]
fn members_own_asns_with_skewed_sizes() {
    let w = world(&spec());
    assert_eq!(w.members.len(), 100);
    let mut all = HashSet::new();
    let mut size = Vec::new();
    for (i, m) in w.members.iter().enumerate() {
        assert_eq!(m.name, format!("isp-{:03}", i + 1));
        assert!(!m.display_name.is_empty());
        assert!((1..=5).contains(&m.asns.len()), "{m:?}");
        assert!(m.contacts[0].starts_with("abuse@") && m.contacts[0].ends_with(".example.ne.jp"));
        for a in &m.asns {
            assert!(all.insert(*a), "ASN {a} owned twice");
        }
        size.push(w.routes.iter().filter(|(_, a)| m.asns.contains(a)).count());
        // Hand-listed prefixes lie inside some other ASN's route.
        for p in &m.prefixes {
            let ip = p.network();
            let o = common::origin(&w, ip).expect("explicit prefix is routed");
            assert!(!m.asns.contains(&o), "{p} is routed by the member itself");
        }
    }
    assert!(w.members.iter().filter(|m| !m.prefixes.is_empty()).count() >= 5);
    assert!(w.members[..3].iter().all(|m| m.asns.len() >= 3));
    let big: usize = size[..5].iter().sum();
    let small: usize = size[50..].iter().sum();
    assert!(big > small, "top-5 members {big} routes vs bottom-50 {small}");
    let names: HashSet<_> = w.members.iter().map(|m| &m.display_name).collect();
    assert_eq!(names.len(), 100);
}

#[test]
fn ipasn_file_is_what_pyasn_reads() {
    let w = world(&RoutingSpec::small(3));
    let mut out = Vec::new();
    write_ipasn(&w.routes, &mut out).expect("vec");
    let text = String::from_utf8(out).expect("utf8");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("; IP-ASN32-DAT file"));
    let mut n = 0;
    for l in lines.filter(|l| !l.starts_with(';')) {
        let (p, a) = l.split_once('\t').expect("tab");
        let net: IpNet = p.parse().expect("prefix");
        assert_eq!(net, net.trunc(), "host bits set in {p}");
        a.parse::<u32>().expect("asn");
        n += 1;
    }
    assert_eq!(n, w.routes.len());
    let _: IpAddr = w.routes[0].0.network();
}

#[test]
#[ignore = "timing: run with --release -- --ignored"]
fn full_table_in_a_couple_of_seconds() {
    let t = std::time::Instant::now();
    let w = world(&RoutingSpec::default());
    assert_eq!(w.routes.len(), 1_050_000);
    assert!(t.elapsed().as_secs_f64() < 4.0, "{:?}", t.elapsed());
}
