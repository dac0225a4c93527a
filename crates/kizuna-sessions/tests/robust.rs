//! Bad input never panics: every parser is fed truncated, overflowing and shuffled records, and
//! everything it makes goes into an index and is resolved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kizuna_sessions::{Item, LogKind, ParseOptions, ResolverConfig, SessionIndex, Timestamp, parse_reader};

const SAMPLES: [(LogKind, &str); 4] = [
    (
        LogKind::RadiusDetail,
        "Thu Mar  5 09:00:12 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"a\\\"b\\101\"\n\tAcct-Session-Id = \"1\"\n\tNAS-IP-Address = 192.0.2.1\n\tFramed-IP-Address = 198.51.100.7\n\tDelegated-IPv6-Prefix = 2001:db8::/56\n\tEvent-Timestamp = \"Mar  5 2026 09:00:12 JST\"\n\tAcct-Session-Time = 5\n\tAcct-Delay-Time = 2\n\tTimestamp = 1772668812\n\nThu Mar  5 09:10:00 2026\n\tAcct-Status-Type = Accounting-On\n\tNAS-IP-Address = 192.0.2.1\n\n",
    ),
    (
        LogKind::KeaLeases4,
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n192.0.2.10,00:11:22:33:44:55,01:02,4000,1772672812,1,0,0,h,0,\n192.0.2.10,00:11:22:33:44:55,,0,1772670812,1,0,0,h,0,\n",
    ),
    (
        LogKind::DhcpdLeases,
        "lease 192.0.2.10 {\n  starts 4 2026/03/05 00:00:12;\n  ends epoch 1772670000; # c\n  binding state active;\n  hardware ethernet 00:11:22:33:44:55;\n  uid \"\\001\\002\";\n}\n",
    ),
    (
        LogKind::Cgnat,
        "2026-03-05T09:00:12+09:00 cgn1 {s}[jservices-nat]: JSERVICES_NAT_PORT_BLOCK_ALLOC: 100.64.1.2 -> 203.0.113.10:2048-2111 0x1\n1772668812,release,100.64.1.2,203.0.113.10,2048-2111\n",
    ),
];

fn mutations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for cut in (0..bytes.len()).step_by(3) {
        out.push(String::from_utf8_lossy(&bytes[..cut]).into_owned());
        let mut b = bytes.to_vec();
        b[cut] = match b[cut] {
            b'0'..=b'9' => b'9',
            b' ' => b'\t',
            b'\n' => b' ',
            _ => b'\xff',
        };
        out.push(String::from_utf8_lossy(&b).into_owned());
    }
    for big in ["99999999999999999999", "-9223372036854775808", "4294967295", "0", "65535-0"] {
        let mut s = String::new();
        let mut digits = false;
        for c in text.chars() {
            if c.is_ascii_digit() {
                if !digits {
                    s.push_str(big);
                }
                digits = true;
            } else {
                digits = false;
                s.push(c);
            }
        }
        out.push(s);
    }
    out.push(text.lines().rev().collect::<Vec<_>>().join("\n"));
    out
}

#[test]
fn mutated_records_are_accounted_for_and_never_panic() {
    let opts = ParseOptions { syslog_year: Some(2026), ..Default::default() };
    for (kind, sample) in SAMPLES {
        let mut idx = SessionIndex::new(ResolverConfig { parse: opts.clone(), ..Default::default() });
        let mut events = 0;
        for text in mutations(sample) {
            let mut items = Vec::new();
            let (lines, _) = parse_reader(kind, text.as_bytes(), "mutated", &opts, |i| items.push(i)).unwrap();
            assert_eq!(lines as usize, text.split_inclusive('\n').count());
            for item in items {
                match item {
                    Item::Event(e) => {
                        events += 1;
                        idx.add_events([e]);
                    }
                    Item::Rejected(r) => {
                        assert!(r.line >= 1 && r.line <= lines, "{r:?}");
                        assert!(!r.reason.is_empty());
                    }
                    Item::Skipped(_) => {}
                }
            }
            for ip in ["198.51.100.7", "192.0.2.10", "203.0.113.10", "2001:db8::1", "100.64.1.2"] {
                for port in [None, Some(2050)] {
                    let _ = idx.resolve(ip.parse().unwrap(), port, Timestamp::from_secs(1_772_668_900));
                }
            }
        }
        assert!(events > 0, "{kind:?}: the clean sample parses");
        idx.compact();
    }
}

#[test]
fn a_huge_line_without_end_is_cut_and_rejected() {
    let mut text = "x".repeat(3 << 20);
    text.push_str("\n1772668812,allocate,100.64.1.2,203.0.113.10,2048-2111\n");
    let mut idx = SessionIndex::new(ResolverConfig::default());
    let s = idx.load_reader(text.as_bytes(), "junk.log", LogKind::Cgnat).unwrap();
    assert_eq!(s.events, 1, "{:?}", (s.lines, s.skipped, s.rejected));
    assert_eq!(s.lines, 5, "three 1 MiB pieces, the rest of the junk line, the good line");
}
