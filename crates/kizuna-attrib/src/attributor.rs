//! [`Attributor`]: maps an address to the member ISP that holds it and to its origin ASN.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kizuna_model::MemberId;

use crate::PrefixTable;

/// One member's address space: its ASNs (every routed prefix originated by one of them is the
/// member's) and its explicit prefixes (space it holds whatever the routing table says).
#[derive(Debug, Clone, Copy)]
pub struct MemberSpace<'a> {
    /// The member.
    pub member: MemberId,
    /// Origin ASNs the member operates.
    pub asns: &'a [u32],
    /// Prefixes the member declared explicitly.
    pub prefixes: &'a [IpNet],
}

/// The result of attributing one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attribution {
    /// The member whose space holds the address, if any.
    pub member: Option<MemberId>,
    /// The origin ASN of the longest routed prefix holding the address, if any.
    pub asn: Option<u32>,
}

/// Two immutable tables: members (explicit prefixes and routes of members' ASNs) and origin
/// ASNs (all routes). Cheap to share between threads; build a new one to change it.
#[derive(Debug, Clone)]
pub struct Attributor {
    members: PrefixTable<MemberId>,
    asns: PrefixTable<u32>,
}

impl Attributor {
    /// Builds the tables.
    ///
    /// The member table holds each member's explicit prefixes and every route whose origin ASN
    /// a member has; the longest prefix wins across both, so a member's explicit more-specific
    /// prefix inside another member's routed prefix belongs to the explicit member (and a
    /// routed more-specific inside an explicit prefix belongs to the route's member). When the
    /// same prefix comes from a route and from an explicit declaration, the explicit one wins.
    /// When two members claim the same ASN, or declare the same prefix, the one given later
    /// wins. The ASN table holds all routes (duplicates: last wins).
    pub fn new<'a>(routes: &[(IpNet, u32)], members: impl IntoIterator<Item = MemberSpace<'a>>) -> Self {
        let members: Vec<MemberSpace<'a>> = members.into_iter().collect();
        let mut by_asn: HashMap<u32, MemberId> = HashMap::new();
        for m in &members {
            for &asn in m.asns {
                by_asn.insert(asn, m.member);
            }
        }
        let routed = routes.iter().filter_map(|&(net, asn)| by_asn.get(&asn).map(|&m| (net, m)));
        let explicit = members.iter().flat_map(|m| m.prefixes.iter().map(move |&net| (net, m.member)));
        Attributor {
            members: PrefixTable::build(routed.chain(explicit)),
            asns: PrefixTable::build(routes.iter().copied()),
        }
    }

    /// The member holding `ip` and the origin ASN routing it (longest prefix match in each
    /// table; IPv4-mapped IPv6 addresses as in [`PrefixTable::lookup`]).
    #[inline]
    pub fn attribute(&self, ip: IpAddr) -> Attribution {
        Attribution { member: self.members.lookup(ip), asn: self.asns.lookup(ip) }
    }

    /// The member table.
    pub fn members_table(&self) -> &PrefixTable<MemberId> {
        &self.members
    }

    /// The origin-ASN table.
    pub fn asn_table(&self) -> &PrefixTable<u32> {
        &self.asns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test prefix")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    #[test]
    fn explicit_more_specific_beats_asn_route() {
        let routes = vec![
            (net("192.0.2.0/24"), 64500),
            (net("198.51.100.0/22"), 64501),
            (net("198.51.101.0/24"), 64502), // routed more-specific of member 1's explicit space
            (net("2001:db8::/32"), 64500),
            (net("203.0.113.0/24"), 64999), // nobody's
        ];
        let a1 = [64500];
        let p1 = [net("198.51.100.0/22"), net("192.0.2.128/25")];
        let a2 = [64502];
        let p2 = [net("192.0.2.64/26")];
        let at = Attributor::new(
            &routes,
            [
                MemberSpace { member: MemberId(1), asns: &a1, prefixes: &p1 },
                MemberSpace { member: MemberId(2), asns: &a2, prefixes: &p2 },
            ],
        );
        let m = |s| at.attribute(ip(s));
        assert_eq!(m("192.0.2.1"), Attribution { member: Some(MemberId(1)), asn: Some(64500) });
        assert_eq!(m("192.0.2.65"), Attribution { member: Some(MemberId(2)), asn: Some(64500) });
        assert_eq!(m("192.0.2.200"), Attribution { member: Some(MemberId(1)), asn: Some(64500) });
        assert_eq!(m("198.51.100.1"), Attribution { member: Some(MemberId(1)), asn: Some(64501) });
        assert_eq!(m("198.51.101.1"), Attribution { member: Some(MemberId(2)), asn: Some(64502) });
        assert_eq!(m("2001:db8::1"), Attribution { member: Some(MemberId(1)), asn: Some(64500) });
        assert_eq!(m("203.0.113.9"), Attribution { member: None, asn: Some(64999) });
        assert_eq!(m("10.0.0.1"), Attribution::default());
        assert_eq!(m("::ffff:192.0.2.65"), Attribution { member: Some(MemberId(2)), asn: Some(64500) });
        assert_eq!(at.asn_table().len(), 5);
        assert_eq!(at.members_table().len(), 6);
    }

    #[test]
    fn explicit_same_prefix_beats_route_and_later_member_wins() {
        let routes = vec![(net("192.0.2.0/24"), 64500)];
        let a1 = [64500];
        let a3 = [64500];
        let p2 = [net("192.0.2.0/24")];
        let at = Attributor::new(
            &routes,
            [
                MemberSpace { member: MemberId(1), asns: &a1, prefixes: &[] },
                MemberSpace { member: MemberId(2), asns: &[], prefixes: &p2 },
                MemberSpace { member: MemberId(3), asns: &a3, prefixes: &[] },
            ],
        );
        // Member 3 claims the ASN later than member 1, but member 2's explicit prefix wins.
        assert_eq!(at.attribute(ip("192.0.2.1")).member, Some(MemberId(2)));
    }

    #[test]
    fn shared_between_threads() {
        let routes: Vec<(IpNet, u32)> = (0..256u32).map(|i| (net(&format!("10.{i}.0.0/16")), 64_512 + i)).collect();
        let asns: Vec<u32> = (64_512..64_640).collect();
        let at = std::sync::Arc::new(Attributor::new(
            &routes,
            [MemberSpace { member: MemberId(7), asns: &asns, prefixes: &[] }],
        ));
        let handles: Vec<_> = (0..2u32)
            .map(|t| {
                let at = std::sync::Arc::clone(&at);
                std::thread::spawn(move || {
                    (0..256u32)
                        .filter(|i| i % 2 == t)
                        .map(|i| {
                            let a = at.attribute(ip(&format!("10.{i}.1.2")));
                            let member_ok = a.member == (i < 128).then_some(MemberId(7));
                            usize::from(member_ok && a.asn == Some(64_512 + i))
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        let ok: usize = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        assert_eq!(ok, 256);
    }
}
