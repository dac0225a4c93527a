//! Resolution rules, one test per reason, through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use kizuna_sessions::{
    AcctStatus, LeaseAction, LeaseEvent, LogKind, PortBlockAction, PortBlockEvent, RadiusEvent, Resolution,
    ResolverConfig, SessionEvent, SessionIndex, Source, SubscriberKind, Timestamp, Unresolved,
};

const T0: i64 = 1_772_668_800; // 2026-03-05T00:00:00Z

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(T0 + s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn radius(
    status: AcctStatus,
    at: i64,
    nas: &str,
    sid: &str,
    user: &str,
    v4: Option<&str>,
    v6: &[&str],
) -> SessionEvent {
    SessionEvent::Radius(RadiusEvent {
        status,
        at: t(at),
        nas: nas.into(),
        session_id: sid.into(),
        user: user.into(),
        unique_id: None,
        framed_ip: v4.map(|a| a.parse().unwrap()),
        prefixes: v6.iter().map(|p| p.parse().unwrap()).collect(),
        session_time: None,
    })
}

fn key(r: &Resolution) -> Result<String, Unresolved> {
    match r {
        Resolution::Resolved { subscriber, .. } => Ok(subscriber.key.clone()),
        Resolution::Unresolved(u) => Err(*u),
    }
}

fn who(idx: &SessionIndex, addr: &str, port: Option<u16>, at: i64) -> Result<String, Unresolved> {
    let r = idx.resolve(ip(addr), port, t(at));
    // resolve_key agrees with resolve.
    assert_eq!(idx.resolve_key(ip(addr), port, t(at)).map(str::to_string), key(&r));
    key(&r)
}

fn index() -> SessionIndex {
    SessionIndex::new(ResolverConfig::default())
}

use AcctStatus::{Interim, Start, Stop};

#[test]
fn start_stop_and_every_reason_for_one_address() {
    let mut idx = index();
    idx.add_events([
        radius(Start, 0, "192.0.2.1", "a1", "alice", Some("198.51.100.7"), &[]),
        radius(Stop, 3600, "192.0.2.1", "a1", "alice", Some("198.51.100.7"), &[]),
        radius(Start, 3600, "192.0.2.1", "b1", "bob", Some("198.51.100.7"), &[]),
        radius(Stop, 7200, "192.0.2.1", "b1", "bob", Some("198.51.100.7"), &[]),
    ]);
    assert_eq!(idx.len(), 2);
    assert_eq!(who(&idx, "198.51.100.7", None, 100), Ok("alice".into()));
    assert_eq!(
        who(&idx, "198.51.100.7", Some(443), 5000),
        Ok("bob".into()),
        "a port on a non-CGNAT address is ignored"
    );
    // The hand-over at 3600 ± 30 s: clock skew, not a guess.
    assert_eq!(who(&idx, "198.51.100.7", None, 3600), Err(Unresolved::ClockSkew));
    assert_eq!(who(&idx, "198.51.100.7", None, 3590), Err(Unresolved::ClockSkew));
    assert_eq!(who(&idx, "198.51.100.7", None, 3629), Err(Unresolved::ClockSkew));
    assert_eq!(who(&idx, "198.51.100.7", None, 3631), Ok("bob".into()));
    assert_eq!(who(&idx, "198.51.100.7", None, 3569), Ok("alice".into()));
    // Just outside a session, alone: within the tolerance it is still that subscriber.
    assert_eq!(who(&idx, "198.51.100.7", None, 7220), Ok("bob".into()));
    assert_eq!(who(&idx, "198.51.100.7", None, -20), Ok("alice".into()));
    assert_eq!(who(&idx, "198.51.100.7", None, 7300), Err(Unresolved::OutsideSession));
    assert_eq!(who(&idx, "198.51.100.8", None, 100), Err(Unresolved::NoSession));
    assert_eq!(Unresolved::ClockSkew.as_str(), "clock-skew");
    let Resolution::Resolved { subscriber, session } = idx.resolve(ip("198.51.100.7"), None, t(100)) else { panic!() };
    assert_eq!(subscriber.kind, SubscriberKind::Radius);
    assert_eq!(session.source, Source::Radius);
    assert_eq!(session.session_id.as_deref(), Some("a1"));
    assert_eq!(session.nas.as_deref(), Some("192.0.2.1"));
    assert_eq!((session.start, session.end), (t(0), Some(t(3600))));
}

#[test]
fn clock_skew_tolerance_is_configurable() {
    let mut idx = SessionIndex::new(ResolverConfig { clock_skew: Duration::from_secs(0), ..Default::default() });
    idx.add_events([
        radius(Start, 0, "n", "a", "alice", Some("198.51.100.7"), &[]),
        radius(Stop, 3600, "n", "a", "alice", Some("198.51.100.7"), &[]),
        radius(Start, 3601, "n", "b", "bob", Some("198.51.100.7"), &[]),
    ]);
    assert_eq!(who(&idx, "198.51.100.7", None, 3599), Ok("alice".into()));
    assert_eq!(who(&idx, "198.51.100.7", None, 3601), Ok("bob".into()));
    assert_eq!(who(&idx, "198.51.100.7", None, 3605), Ok("bob".into()));
    let mut wide = SessionIndex::new(ResolverConfig { clock_skew: Duration::from_secs(300), ..Default::default() });
    wide.add_events([
        radius(Start, 0, "n", "a", "alice", Some("198.51.100.7"), &[]),
        radius(Stop, 3600, "n", "a", "alice", Some("198.51.100.7"), &[]),
        radius(Start, 3601, "n", "b", "bob", Some("198.51.100.7"), &[]),
    ]);
    assert_eq!(who(&wide, "198.51.100.7", None, 3800), Err(Unresolved::ClockSkew));
    assert_eq!(who(&wide, "198.51.100.7", None, 3950), Ok("bob".into()));
}

#[test]
fn overlapping_sessions_of_two_subscribers_are_ambiguous() {
    let mut idx = index();
    idx.add_events([
        radius(Start, 0, "n1", "a", "alice", Some("198.51.100.9"), &[]),
        radius(Stop, 3600, "n1", "a", "alice", Some("198.51.100.9"), &[]),
        radius(Start, 1800, "n2", "b", "bob", Some("198.51.100.9"), &[]),
        radius(Stop, 5400, "n2", "b", "bob", Some("198.51.100.9"), &[]),
        // The same subscriber twice (two NASes, e.g. a re-login) is not ambiguous.
        radius(Start, 10_000, "n1", "c", "carol", Some("198.51.100.10"), &[]),
        radius(Stop, 12_000, "n1", "c", "carol", Some("198.51.100.10"), &[]),
        radius(Start, 11_000, "n2", "d", "carol", Some("198.51.100.10"), &[]),
        radius(Stop, 13_000, "n2", "d", "carol", Some("198.51.100.10"), &[]),
    ]);
    assert_eq!(who(&idx, "198.51.100.9", None, 2000), Err(Unresolved::Ambiguous));
    assert_eq!(who(&idx, "198.51.100.9", None, 1000), Ok("alice".into()));
    assert_eq!(who(&idx, "198.51.100.9", None, 5000), Ok("bob".into()));
    assert_eq!(who(&idx, "198.51.100.10", None, 11_500), Ok("carol".into()));
    let Resolution::Resolved { session, .. } = idx.resolve(ip("198.51.100.10"), None, t(11_500)) else { panic!() };
    assert_eq!(session.session_id.as_deref(), Some("d"), "the session holding the time with the latest start");
}

#[test]
fn open_sessions_age_out_and_interim_refreshes() {
    let mut idx = index();
    idx.add_events([
        radius(Start, 0, "n", "a", "alice", Some("198.51.100.20"), &[]),
        radius(Start, 0, "n", "b", "bob", Some("198.51.100.21"), &[]),
        radius(Interim, 6 * 86_400, "n", "b", "bob", Some("198.51.100.21"), &[]),
    ]);
    assert_eq!(who(&idx, "198.51.100.20", None, 86_400), Ok("alice".into()));
    assert_eq!(who(&idx, "198.51.100.20", None, 8 * 86_400), Err(Unresolved::OpenSessionTooOld));
    assert_eq!(who(&idx, "198.51.100.21", None, 8 * 86_400), Ok("bob".into()), "Interim-Update refreshed it");
    assert_eq!(who(&idx, "198.51.100.21", None, 14 * 86_400), Err(Unresolved::OpenSessionTooOld));
    // A Stop that was lost: the next session on the address ends the open one.
    idx.add_events([radius(Start, 86_400 * 2, "n", "c", "carol", Some("198.51.100.20"), &[])]);
    assert_eq!(who(&idx, "198.51.100.20", None, 86_400 * 2 + 100), Ok("carol".into()));
    assert_eq!(who(&idx, "198.51.100.20", None, 86_400), Ok("alice".into()));
    assert_eq!(who(&idx, "198.51.100.20", None, 86_400 * 2), Err(Unresolved::ClockSkew));
}

#[test]
fn retransmissions_are_idempotent_and_accounting_on_closes_a_nas() {
    let mut idx = index();
    let evs = [
        radius(Start, 0, "192.0.2.1", "s1", "alice", Some("198.51.100.30"), &[]),
        radius(Start, 0, "192.0.2.2", "s1", "bob", Some("198.51.100.31"), &[]),
        radius(Start, 10, "192.0.2.2", "s2", "dave", Some("198.51.100.32"), &[]),
    ];
    idx.add_events(evs.clone());
    idx.add_events(evs.clone());
    assert_eq!(idx.len(), 3);
    idx.add_events([SessionEvent::NasReset { nas: "192.0.2.2".into(), at: t(1000) }]);
    assert_eq!(who(&idx, "198.51.100.31", None, 500), Ok("bob".into()));
    assert_eq!(who(&idx, "198.51.100.31", None, 2000), Err(Unresolved::OutsideSession));
    assert_eq!(who(&idx, "198.51.100.32", None, 2000), Err(Unresolved::OutsideSession));
    assert_eq!(who(&idx, "198.51.100.30", None, 2000), Ok("alice".into()), "another NAS is untouched");
    // Session ids are only unique per (NAS, id, user): the same id on two NASes is two sessions.
    let Resolution::Resolved { session, .. } = idx.resolve(ip("198.51.100.30"), None, t(5)) else { panic!() };
    assert_eq!(session.nas.as_deref(), Some("192.0.2.1"));
    // A Stop whose Start was lost still gives the session through Acct-Session-Time.
    let mut stop = radius(Stop, 5000, "192.0.2.3", "x", "erin", Some("198.51.100.33"), &[]);
    if let SessionEvent::Radius(r) = &mut stop {
        r.session_time = Some(1000);
    }
    idx.add_events([stop.clone(), stop]);
    assert_eq!(who(&idx, "198.51.100.33", None, 4500), Ok("erin".into()));
    assert_eq!(who(&idx, "198.51.100.33", None, 3000), Err(Unresolved::OutsideSession));
    assert_eq!(idx.len(), 4);
}

#[test]
fn ipv6_delegated_prefixes_by_longest_match() {
    let mut idx = index();
    idx.add_events([
        radius(Start, 0, "n", "a", "alice", None, &["2001:db8:1200::/56", "2001:db8:ff00:1::/64"]),
        radius(Start, 0, "n", "b", "bob", None, &["2001:db8:1200:10::/64"]),
        radius(Start, 0, "n", "c", "carol", None, &["2001:db8:a000::/48"]),
        radius(Start, 0, "n", "d", "dave", None, &["2001:db8:b::1/128"]),
    ]);
    assert_eq!(who(&idx, "2001:db8:1200:ab::1", None, 10), Ok("alice".into()));
    assert_eq!(who(&idx, "2001:db8:ff00:1::99", None, 10), Ok("alice".into()));
    assert_eq!(who(&idx, "2001:db8:1200:10::5", None, 10), Ok("bob".into()), "longest prefix wins");
    assert_eq!(who(&idx, "2001:db8:a000:ffff::1", None, 10), Ok("carol".into()));
    assert_eq!(who(&idx, "2001:db8:b::1", None, 10), Ok("dave".into()));
    assert_eq!(who(&idx, "2001:db8:b::2", None, 10), Err(Unresolved::NoSession));
    assert_eq!(who(&idx, "2001:db8:1300::1", None, 10), Err(Unresolved::NoSession));
    assert_eq!(who(&idx, "2001:db8:1200:ab::1", None, -100), Err(Unresolved::OutsideSession));
    // IPv4-mapped IPv6 is the IPv4 address.
    idx.add_events([radius(Start, 0, "n", "e", "erin", Some("198.51.100.40"), &[])]);
    assert_eq!(who(&idx, "::ffff:198.51.100.40", None, 10), Ok("erin".into()));
}

fn block(action: PortBlockAction, at: i64, inside: &str, outside: &str, lo: u16, hi: u16) -> SessionEvent {
    SessionEvent::PortBlock(PortBlockEvent {
        at: t(at),
        action,
        inside: ip(inside),
        outside: outside.parse().unwrap(),
        port_lo: lo,
        port_hi: hi,
    })
}

#[test]
fn cgnat_by_port_through_the_inside_session() {
    let mut idx = index();
    idx.add_events([
        radius(Start, 0, "bng1", "a", "alice", Some("100.64.1.2"), &[]),
        radius(Start, 0, "bng1", "b", "bob", Some("100.64.1.3"), &[]),
        block(PortBlockAction::Allocate, 10, "100.64.1.2", "203.0.113.10", 2048, 2111),
        block(PortBlockAction::Allocate, 10, "100.64.1.3", "203.0.113.10", 2112, 2175),
        block(PortBlockAction::Release, 3600, "100.64.1.2", "203.0.113.10", 2048, 2111),
        block(PortBlockAction::Allocate, 4000, "100.64.1.3", "203.0.113.10", 2048, 2111),
        block(PortBlockAction::Allocate, 10, "100.64.9.9", "203.0.113.10", 4000, 4063),
    ]);
    assert_eq!(who(&idx, "203.0.113.10", Some(2050), 100), Ok("alice".into()));
    assert_eq!(who(&idx, "203.0.113.10", Some(2111), 100), Ok("alice".into()));
    assert_eq!(who(&idx, "203.0.113.10", Some(2112), 100), Ok("bob".into()));
    assert_eq!(who(&idx, "203.0.113.10", Some(2050), 5000), Ok("bob".into()), "the block changed hands");
    assert_eq!(who(&idx, "203.0.113.10", Some(2050), 3800), Err(Unresolved::NoPortBlock));
    assert_eq!(who(&idx, "203.0.113.10", Some(2050), 3610), Err(Unresolved::OutsideSession).or(Ok("alice".into())));
    assert_eq!(who(&idx, "203.0.113.10", None, 100), Err(Unresolved::PortRequired));
    assert_eq!(who(&idx, "203.0.113.10", Some(9000), 100), Err(Unresolved::NoPortBlock));
    assert_eq!(who(&idx, "203.0.113.10", Some(4000), 100), Err(Unresolved::NoSession), "inside address unknown");
    let Resolution::Resolved { session, .. } = idx.resolve(ip("203.0.113.10"), Some(2050), t(100)) else { panic!() };
    let pb = session.port_block.expect("port block");
    assert_eq!((pb.port_lo, pb.port_hi, pb.inside), (2048, 2111, ip("100.64.1.2")));
    assert_eq!((pb.start, pb.end), (t(10), Some(t(3600))));
    assert_eq!(session.session_id.as_deref(), Some("a"));
}

#[test]
fn dhcp_leases_renew_release_and_take_over() {
    let mut idx = index();
    let lease = |at: i64, client: &str, action: LeaseAction| {
        let _ = at;
        SessionEvent::Lease(LeaseEvent { source: Source::Kea, addr: ip("192.0.2.50"), client: client.into(), action })
    };
    idx.add_events([
        lease(0, "00:11:22:33:44:55", LeaseAction::Held { start: t(0), end: Some(t(4000)) }),
        lease(0, "00:11:22:33:44:55", LeaseAction::Held { start: t(2000), end: Some(t(6000)) }),
        lease(0, "00:11:22:33:44:55", LeaseAction::Held { start: t(2000), end: Some(t(6000)) }),
        lease(0, "00:11:22:33:44:55", LeaseAction::Ended { at: t(2000) }),
        lease(0, "66:77:88:99:aa:bb", LeaseAction::Held { start: t(3000), end: Some(t(7000)) }),
        lease(0, "66:77:88:99:aa:bb", LeaseAction::Held { start: t(9000), end: Some(t(13000)) }),
        lease(0, "cc:cc:cc:cc:cc:cc", LeaseAction::Held { start: t(10_000), end: Some(t(14000)) }),
    ]);
    assert_eq!(idx.len(), 4);
    assert_eq!(who(&idx, "192.0.2.50", None, 1000), Ok("00:11:22:33:44:55".into()));
    assert_eq!(who(&idx, "192.0.2.50", None, 2500), Err(Unresolved::OutsideSession), "released at the last renewal");
    assert_eq!(who(&idx, "192.0.2.50", None, 5000), Ok("66:77:88:99:aa:bb".into()));
    assert_eq!(who(&idx, "192.0.2.50", None, 9500), Ok("66:77:88:99:aa:bb".into()));
    assert_eq!(who(&idx, "192.0.2.50", None, 10_000), Err(Unresolved::ClockSkew), "taken over at 10000");
    assert_eq!(who(&idx, "192.0.2.50", None, 12_000), Ok("cc:cc:cc:cc:cc:cc".into()));
    let Resolution::Resolved { subscriber, session } = idx.resolve(ip("192.0.2.50"), None, t(5000)) else { panic!() };
    assert_eq!((subscriber.kind, session.source, session.session_id), (SubscriberKind::Dhcp, Source::Kea, None));
}

#[test]
fn malformed_records_are_quarantined_with_line_numbers() {
    let dir = std::env::temp_dir().join(format!("kizuna-sessions-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("detail-20260305");
    std::fs::write(
        &path,
        "Thu Mar  5 09:00:00 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"alice\"\n\tAcct-Session-Id = \"1\"\n\tFramed-IP-Address = 198.51.100.77\n\tTimestamp = 1772668800\n\n\
Thu Mar  5 09:00:01 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"bob\"\n\tAcct-Session-Id = \"2\"\n\tFramed-IP-Address = not-an-ip\n\tTimestamp = 1772668801\n\n\
garbage header\n\tAcct-Status-Type = Start\n\n",
    )
    .unwrap();
    let mut idx = index();
    let s = idx.load_file(&path, LogKind::RadiusDetail).unwrap();
    assert_eq!((s.events, s.rejected, s.lines), (1, 2, 17));
    assert_eq!(s.rejections[0].line, 12);
    assert!(s.rejections[0].reason.contains("Framed-IP-Address"));
    assert!(s.rejections[0].source_name.ends_with("detail-20260305"));
    assert_eq!(s.rejections[1].line, 15);
    assert_eq!(who(&idx, "198.51.100.77", None, 60), Ok("alice".into()));
    let many: Vec<_> = idx.resolve_many(&[(ip("198.51.100.77"), None, t(60)), (ip("198.51.100.78"), None, t(60))]);
    assert_eq!(many.iter().map(Resolution::as_str).collect::<Vec<_>>(), ["resolved", "no-session"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_reason_has_a_distinct_name() {
    let names: std::collections::HashSet<&str> = Unresolved::ALL.iter().map(|u| u.as_str()).collect();
    assert_eq!(names.len(), Unresolved::ALL.len());
    assert!(names.contains("no-session") && names.contains("open-session-too-old"));
}

#[test]
fn compaction_and_its_lookup_table_change_no_answer() {
    let mut idx = index();
    let mut evs = Vec::new();
    for a in 0..5000u32 {
        let addr = std::net::Ipv4Addr::from(0x0a00_0000 + a * 13);
        for k in 0..3i64 {
            let s = i64::from(a % 97) + k * 10_000;
            let user = format!("user{}", (a * 3 + k as u32) % 4000);
            let sid = format!("{a}-{k}");
            evs.push(radius(Start, s, "n", &sid, &user, Some(&addr.to_string()), &[]));
            if k < 2 {
                evs.push(radius(Stop, s + 5000, "n", &sid, &user, Some(&addr.to_string()), &[]));
            }
        }
    }
    for chunk in evs.chunks(1000) {
        idx.add_events(chunk.iter().cloned());
    }
    let queries: Vec<(IpAddr, Option<u16>, Timestamp)> = (0..20_000u32)
        .map(|i| {
            (IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + (i * 7) % 70_000)), None, t(i64::from(i * 37 % 40_000)))
        })
        .collect();
    let before = idx.resolve_many(&queries);
    assert!(idx.stats().runs > 1);
    idx.compact();
    assert_eq!(idx.stats().runs, 1);
    assert_eq!(idx.resolve_many(&queries), before);
    let resolved = before.iter().filter(|r| r.subscriber().is_some()).count();
    assert!(resolved > 1000 && resolved < 20_000, "{resolved}");
    // Events after compaction still find their sessions (ids were renumbered).
    let addr = std::net::Ipv4Addr::from(0x0a00_0000 + 42 * 13).to_string();
    let s = 42 + 2 * 10_000; // address 42's third session
    let user = format!("user{}", 42 * 3 + 2);
    assert_eq!(who(&idx, &addr, None, s + 100_000), Ok(user.clone()));
    idx.add_events([radius(Stop, s + 50, "n", "42-2", &user, Some(&addr), &[])]);
    assert_eq!(who(&idx, &addr, None, s + 100_000), Err(Unresolved::OutsideSession));
    assert_eq!(who(&idx, &addr, None, s + 10), Ok(user.clone()));
    let len = idx.len();
    idx.add_events([radius(Start, s, "n", "42-2", &user.clone(), Some(&addr), &[])]);
    assert_eq!(idx.len(), len, "a retransmitted Start after compaction is not a new session");
}

#[test]
fn pruning_forgets_old_sessions_and_keeps_the_rest_working() {
    let mut idx = index();
    idx.add_events([
        radius(Start, 0, "n", "old", "alice", Some("198.51.100.50"), &["2001:db8:50::/56"]),
        radius(Stop, 1000, "n", "old", "alice", Some("198.51.100.50"), &[]),
        radius(Start, 5000, "n", "new", "bob", Some("198.51.100.50"), &[]),
        radius(Start, 0, "n", "open", "carol", Some("198.51.100.51"), &[]),
        radius(Start, 0, "n", "gone", "dave", Some("198.51.100.52"), &[]),
        radius(Stop, 100, "n", "gone", "dave", Some("198.51.100.52"), &[]),
        block(PortBlockAction::Allocate, 0, "198.51.100.51", "203.0.113.50", 1024, 1087),
        block(PortBlockAction::Release, 100, "198.51.100.51", "203.0.113.50", 1024, 1087),
        block(PortBlockAction::Allocate, 200, "198.51.100.51", "203.0.113.50", 1088, 1151),
    ]);
    let before = idx.memory_bytes();
    assert_eq!(idx.prune_before(t(2000)), 3);
    assert_eq!(idx.len(), 2);
    assert!(idx.memory_bytes() <= before);
    assert_eq!(who(&idx, "198.51.100.50", None, 500), Err(Unresolved::OutsideSession));
    assert_eq!(who(&idx, "198.51.100.50", None, 6000), Ok("bob".into()));
    assert_eq!(who(&idx, "2001:db8:50::1", None, 500), Err(Unresolved::NoSession));
    assert_eq!(who(&idx, "198.51.100.52", None, 50), Err(Unresolved::NoSession));
    assert_eq!(who(&idx, "198.51.100.51", None, 3000), Ok("carol".into()));
    assert_eq!(who(&idx, "203.0.113.50", Some(1100), 3000), Ok("carol".into()));
    assert_eq!(who(&idx, "203.0.113.50", Some(1030), 50), Err(Unresolved::NoPortBlock));
    // Keys still work after the rebuild: a Stop closes the kept open session.
    idx.add_events([radius(Stop, 7000, "n", "new", "bob", Some("198.51.100.50"), &[])]);
    assert_eq!(who(&idx, "198.51.100.50", None, 8000), Err(Unresolved::OutsideSession));
    let Resolution::Resolved { session, .. } = idx.resolve(ip("198.51.100.50"), None, t(6000)) else { panic!() };
    assert_eq!((session.session_id.as_deref(), session.end), (Some("new"), Some(t(7000))));
    idx.add_events([radius(Start, 0, "n", "open", "carol", Some("198.51.100.51"), &[])]);
    assert_eq!(idx.len(), 2, "a retransmitted Start of a kept session is not a new one");
}

/// The compacted index answers from entries that carry each IPv4 session's times and
/// subscriber; they must follow every later change (Stop, Interim, NAS reset, lease end, a
/// Start seen late) and agree with an index that was never compacted, on every reason.
#[test]
fn compacted_entries_follow_later_changes_and_give_the_same_answers() {
    let addr = |a: u32| std::net::Ipv4Addr::from(0x0a01_0000 + a * 3).to_string();
    let lease = |a: u32, client: &str, action: LeaseAction| {
        SessionEvent::Lease(LeaseEvent { source: Source::Kea, addr: ip(&addr(a)), client: client.into(), action })
    };
    let mut first = Vec::new();
    let mut later = Vec::new();
    let mut added = Vec::new();
    for a in 0..1500u32 {
        let ad = addr(a);
        let x = Some(ad.as_str());
        let b = i64::from(a % 50) * 7;
        let (u1, u2) = (format!("user{}", a % 400), format!("user{}", (a + 1) % 400));
        let nas = format!("n{}", a % 5);
        let sid = |k: u32| format!("{a}-{k}");
        match a % 6 {
            0 => {
                for k in 0..3u32 {
                    let s = b + i64::from(k) * 20_000;
                    first.push(radius(Start, s, &nas, &sid(k), &u1, x, &[]));
                    first.push(radius(Stop, s + 15_000, &nas, &sid(k), &u1, x, &[]));
                }
                // A second session of the same subscriber from the same second (a tie).
                first.push(radius(Start, b, &nas, &sid(5), &u1, x, &[]));
                first.push(radius(Stop, b + 12_000, &nas, &sid(5), &u1, x, &[]));
                added.push(radius(Start, b + 70_000, &nas, &sid(9), &u2, x, &[]));
                added.push(radius(Stop, b + 75_000, &nas, &sid(9), &u2, x, &[]));
            }
            1 => {
                // Two subscribers meeting at a boundary (clock skew around it).
                first.push(radius(Start, b, &nas, &sid(0), &u1, x, &[]));
                first.push(radius(Stop, b + 10_000, &nas, &sid(0), &u1, x, &[]));
                first.push(radius(Start, b + 10_000, &nas, &sid(1), &u2, x, &[]));
                first.push(radius(Stop, b + 30_000, &nas, &sid(1), &u2, x, &[]));
                // A copy of the second Start, earlier, seen after compaction.
                later.push(radius(Start, b + 9_000, &nas, &sid(1), &u2, x, &[]));
            }
            2 => {
                // Overlapping subscribers (ambiguous).
                first.push(radius(Start, b, &nas, &sid(0), &u1, x, &[]));
                first.push(radius(Stop, b + 20_000, &nas, &sid(0), &u1, x, &[]));
                first.push(radius(Start, b + 5_000, &nas, &sid(1), &u2, x, &[]));
                first.push(radius(Stop, b + 25_000, &nas, &sid(1), &u2, x, &[]));
            }
            3 => {
                // Closed then open; later refreshed, or closed, or closed by a NAS reset.
                first.push(radius(Start, b, &nas, &sid(0), &u1, x, &[]));
                first.push(radius(Stop, b + 8_000, &nas, &sid(0), &u1, x, &[]));
                first.push(radius(Start, b + 9_000, &nas, &sid(1), &u1, x, &[]));
                match a % 4 {
                    0 => later.push(radius(Interim, b + 40_000, &nas, &sid(1), &u1, x, &[])),
                    1 => later.push(radius(Stop, b + 30_000, &nas, &sid(1), &u1, x, &[])),
                    _ => {}
                }
            }
            4 => {
                let (c1, c2) = (format!("02:00:00:00:{:02x}:01", a % 256), format!("02:00:00:00:{:02x}:02", a % 256));
                first.push(lease(a, &c1, LeaseAction::Held { start: t(b), end: Some(t(b + 20_000)) }));
                first.push(lease(a, &c2, LeaseAction::Held { start: t(b + 25_000), end: Some(t(b + 45_000)) }));
                later.push(lease(a, &c2, LeaseAction::Ended { at: t(b + 30_000) }));
            }
            _ => {
                // The same string as a RADIUS user and as a DHCP client: two subscribers.
                let c = format!("02:00:00:01:{:02x}:01", a % 256);
                first.push(radius(Start, b, &nas, &sid(0), &c, x, &[]));
                first.push(radius(Stop, b + 20_000, &nas, &sid(0), &c, x, &[]));
                first.push(lease(a, &c, LeaseAction::Held { start: t(b + 19_990), end: Some(t(b + 40_000)) }));
            }
        }
    }
    later.push(SessionEvent::NasReset { nas: "n2".into(), at: t(35_000) });
    // Every 1.5 ks over the period, and around the boundary of the address kind 1.
    let queries: Vec<(IpAddr, Option<u16>, Timestamp)> = (0..1510u32)
        .flat_map(|a| (0..60i64).map(move |k| (a, k * 1_499 - 2_000 + i64::from(a % 13))))
        .chain((0..1510u32).flat_map(|a| [-40, -20, 0, 20, 40].map(|d| (a, i64::from(a % 50) * 7 + 10_000 + d))))
        .map(|(a, at)| (ip(&addr(a)), None, t(at)))
        .collect();
    let same = |a: &SessionIndex, b: &SessionIndex, stage: &str| {
        let (ra, rb) = (a.resolve_many(&queries), b.resolve_many(&queries));
        for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
            assert_eq!(x, y, "{stage}: query {:?}", queries[i]);
        }
        let keys = a.resolve_keys(&queries);
        assert!(keys.iter().zip(&rb).all(|(k, r)| k.map(str::to_string) == key(r)), "{stage}: resolve_keys");
        for q in queries.iter().step_by(7) {
            assert_eq!(a.resolve_key(q.0, q.1, q.2).map(str::to_string), key(&b.resolve(q.0, q.1, q.2)), "{stage}");
        }
        ra
    };
    let cfg = ResolverConfig { max_open_session_age: Duration::from_secs(20_000), ..Default::default() };
    let (mut compacted, mut plain) = (SessionIndex::new(cfg.clone()), SessionIndex::new(cfg));
    for idx in [&mut compacted, &mut plain] {
        idx.add_events(first.iter().cloned());
    }
    compacted.compact();
    let r0 = same(&compacted, &plain, "compacted");
    let count = |r: &[Resolution], name: &str| r.iter().filter(|x| x.as_str() == name).count();
    for name in ["resolved", "no-session", "outside-session", "ambiguous", "clock-skew", "open-session-too-old"] {
        assert!(count(&r0, name) > 100, "{name}: {}", count(&r0, name));
    }
    for idx in [&mut compacted, &mut plain] {
        assert_eq!(idx.add_events(later.iter().cloned()), later.len() as u64);
    }
    assert_eq!(compacted.stats().runs, 1, "changes only, no new address entries");
    let r1 = same(&compacted, &plain, "changed after compaction");
    assert!(r0 != r1, "the later events changed answers");
    for idx in [&mut compacted, &mut plain] {
        idx.add_events(added.iter().cloned());
    }
    assert!(compacted.stats().runs > 1);
    let r2 = same(&compacted, &plain, "new sessions after compaction");
    assert!(r1 != r2);
    compacted.compact();
    same(&compacted, &plain, "compacted again");
}

/// The client-zone scans: `live_nets_marked` gives what `live_nets_where` gives (and what
/// `holders_at` implies), also after new subscribers arrive, and marks made on one index are
/// not trusted on another.
#[test]
fn live_nets_with_and_without_marks_agree() {
    let mut idx = index();
    idx.add_events([
        radius(Start, 0, "192.0.2.1", "a1", "alice", Some("198.51.100.7"), &["2001:db8:a::/56"]),
        radius(Start, 0, "192.0.2.1", "b1", "bob", Some("198.51.100.8"), &[]),
        radius(Start, 0, "192.0.2.1", "c1", "carol", Some("198.51.100.9"), &[]),
        radius(Stop, 600, "192.0.2.1", "c1", "carol", Some("198.51.100.9"), &[]),
    ]);
    let keep = |k: &str| k != "bob";
    let at = 100;
    let from_holders = |idx: &SessionIndex, at: i64| {
        let mut v: Vec<ipnet::IpNet> =
            idx.holders_at(t(at)).into_iter().filter(|(k, _)| keep(k)).map(|(_, n)| n).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut marks = kizuna_sessions::SubscriberMarks::default();
    let want = from_holders(&idx, at);
    assert_eq!(want.len(), 3, "alice's address and prefix, carol's address: {want:?}");
    assert_eq!(idx.live_nets_where(t(at), keep), want);
    assert_eq!(idx.live_nets_marked(t(at), &mut marks, keep), want);
    assert_eq!(idx.live_nets_marked(t(at), &mut marks, keep), want, "second scan, from the marks");
    // Later: carol's session ended, dave arrived (a subscriber id the marks never saw).
    idx.add_events([radius(Start, 700, "192.0.2.1", "d1", "dave", Some("198.51.100.10"), &[])]);
    let want = from_holders(&idx, 800);
    assert!(want.contains(&"198.51.100.10/32".parse().unwrap()) && !want.contains(&"198.51.100.9/32".parse().unwrap()));
    assert_eq!(idx.live_nets_marked(t(800), &mut marks, keep), want);
    // Another index where the same ids may be other subscribers: the marks start over.
    let mut other = index();
    other.add_events([radius(Start, 0, "192.0.2.9", "z1", "bob", Some("203.0.113.5"), &[])]);
    assert_eq!(other.live_nets_marked(t(at), &mut marks, keep), Vec::<ipnet::IpNet>::new());
    // The caller's rule changed: after clear() the new rule applies.
    marks.clear();
    assert_eq!(
        other.live_nets_marked(t(at), &mut marks, |_| true),
        vec!["203.0.113.5/32".parse::<ipnet::IpNet>().unwrap()]
    );
}
