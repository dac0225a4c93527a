//! CGNAT port-block allocation logs.
//!
//! With port-block allocation (PBA) a CGNAT logs only when it gives a subscriber's inside
//! address a block of ports on an outside address, and when it takes the block back. Two shapes
//! are read, line by line, mixed freely:
//!
//! 1. **Juniper syslog**, as forwarded by rsyslog/syslog-ng. The MS-MPC / MX form
//!    ```text
//!    2026-03-05T09:00:12+09:00 cgn1 {sset1}[jservices-nat]: JSERVICES_NAT_PORT_BLOCK_ALLOC: 100.64.1.2 -> 203.0.113.10:2048-2111 0x69a8c34c
//!    2026-03-05T10:00:00+09:00 cgn1 {sset1}[jservices-nat]: JSERVICES_NAT_PORT_BLOCK_RELEASE: 100.64.1.2 -> 203.0.113.10:2048-2111 0x69a8d0a0
//!    ```
//!    (`_ACTIVE` is the interim "still allocated" message), and the SRX form
//!    ```text
//!    Mar  5 09:00:12 srx1 RT_NAT: RT_SRC_NAT_PBA_ALLOC: Subscriber 100.64.1.2 used/maximum [1/8] blocks, allocates port block [2048-2111] from 203.0.113.10 in source pool p1 lsys_id: 0
//!    Mar  5 10:00:00 srx1 RT_NAT: RT_SRC_NAT_PBA_RELEASE: Subscriber 100.64.1.2 used/maximum [0/8] blocks, releases port block [2048-2111] from 203.0.113.10 in source pool p1 lsys_id: 0
//!    ```
//!    (`RT_SRC_NAT_PBA_INTERIM` likewise). The time is the syslog time stamp at the start of the
//!    line: RFC 3339 (rsyslog's file format), or BSD `Mmm dd hh:mm:ss`, which has no year and no
//!    zone: [`crate::ParseOptions::syslog_year`] and `syslog_utc_offset` supply them. Other
//!    syslog messages in the same file are skipped (counted), not rejected.
//! 2. **CSV** with five fields: `time,event,inside,outside,ports`, e.g.
//!    `2026-03-05T00:00:12Z,allocate,100.64.1.2,203.0.113.10,2048-2111`. `time` is RFC 3339 or
//!    Unix seconds; `event` is `allocate`, `release` or `active` (interim); a header line starting
//!    `time,` is skipped.
//!
//! Outside addresses are IPv4 (NAT44, NAT64, DS-Lite); inside addresses may be IPv6 (DS-Lite B4).

use std::net::{IpAddr, Ipv4Addr};

use chrono::NaiveDateTime;
use kizuna_model::Timestamp;

use crate::{Item, ParseOptions, PortBlockAction, PortBlockEvent, RecordParser, SessionEvent, canonical_ip, rejected};

/// Push parser for port-block logs.
pub struct CgnatParser {
    source_name: String,
    opts: ParseOptions,
}

impl CgnatParser {
    /// A parser for lines from `source_name`.
    pub fn new(source_name: &str, opts: &ParseOptions) -> Self {
        CgnatParser { source_name: source_name.to_string(), opts: opts.clone() }
    }

    fn syslog_time(&self, text: &str) -> Result<Timestamp, String> {
        let first = text.split_whitespace().next().unwrap_or("");
        if first.len() >= 19 && first.as_bytes().get(4) == Some(&b'-') {
            return Timestamp::parse(first).ok_or_else(|| format!("bad syslog time stamp {first:?}"));
        }
        let bsd = text.get(..15).ok_or("line too short for a syslog time stamp")?;
        let Some(year) = self.opts.syslog_year else {
            return Err("BSD syslog time stamp has no year (set syslog_year, or log RFC 3339 time stamps)".into());
        };
        let t = NaiveDateTime::parse_from_str(&format!("{year} {bsd}"), "%Y %b %e %H:%M:%S")
            .map_err(|_| format!("bad syslog time stamp {bsd:?}"))?;
        Ok(Timestamp::from_secs(t.and_utc().timestamp() - i64::from(self.opts.syslog_utc_offset)))
    }

    fn juniper(&self, text: &str, marker_at: usize, marker: &str) -> Result<PortBlockEvent, String> {
        let at = self.syslog_time(text)?;
        let rest = text[marker_at + marker.len()..].trim_start_matches(':').trim();
        if marker.starts_with("JSERVICES") {
            // "100.64.1.2 -> 203.0.113.10:2048-2111 0x…"
            let action = match marker {
                "JSERVICES_NAT_PORT_BLOCK_ALLOC" => PortBlockAction::Allocate,
                "JSERVICES_NAT_PORT_BLOCK_RELEASE" => PortBlockAction::Release,
                _ => PortBlockAction::Active,
            };
            let mut it = rest.split_whitespace();
            let inside = it.next().ok_or("no inside address")?;
            if it.next() != Some("->") {
                return Err("expected `inside -> outside:lo-hi`".into());
            }
            let out = it.next().ok_or("no outside address")?;
            let (outside, ports) = out.rsplit_once(':').ok_or("outside address without :ports")?;
            return build(at, action, inside, outside, ports);
        }
        // "Subscriber 100.64.1.2 used/maximum [1/8] blocks, allocates port block [2048-2111] from 203.0.113.10 in source pool p1 …"
        let action = match marker {
            "RT_SRC_NAT_PBA_ALLOC" => PortBlockAction::Allocate,
            "RT_SRC_NAT_PBA_RELEASE" => PortBlockAction::Release,
            _ => PortBlockAction::Active,
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let inside = words
            .iter()
            .position(|w| w.eq_ignore_ascii_case("subscriber"))
            .and_then(|i| words.get(i + 1))
            .ok_or("no `Subscriber <inside address>`")?;
        let block =
            words.iter().position(|w| *w == "block").and_then(|i| words.get(i + 1)).ok_or("no `port block [lo-hi]`")?;
        let outside =
            words.iter().position(|w| *w == "from").and_then(|i| words.get(i + 1)).ok_or("no `from <outside>`")?;
        build(at, action, inside.trim_end_matches(','), outside, block.trim_start_matches('[').trim_end_matches(']'))
    }

    fn csv(&self, text: &str) -> Result<PortBlockEvent, String> {
        let f: Vec<&str> = text.split(',').map(str::trim).collect();
        if f.len() != 5 {
            return Err(format!("{} fields, expected 5 (time,event,inside,outside,ports)", f.len()));
        }
        let at = match f[0].parse::<i64>() {
            Ok(n) => Timestamp::from_secs(n),
            Err(_) => Timestamp::parse(f[0]).ok_or_else(|| format!("bad time {:?}", f[0]))?,
        };
        let action = match f[1].to_ascii_lowercase().as_str() {
            "allocate" | "alloc" | "allocated" => PortBlockAction::Allocate,
            "release" | "released" => PortBlockAction::Release,
            "active" | "interim" => PortBlockAction::Active,
            other => return Err(format!("unknown event {other:?} (allocate, release or active)")),
        };
        build(at, action, f[2], f[3], f[4])
    }
}

fn build(
    at: Timestamp,
    action: PortBlockAction,
    inside: &str,
    outside: &str,
    ports: &str,
) -> Result<PortBlockEvent, String> {
    let inside: IpAddr = inside.parse().map_err(|_| format!("bad inside address {inside:?}"))?;
    let outside_ip: IpAddr = outside.parse().map_err(|_| format!("bad outside address {outside:?}"))?;
    let IpAddr::V4(outside) = canonical_ip(outside_ip) else {
        return Err(format!("outside address {outside} is not IPv4"));
    };
    let outside: Ipv4Addr = outside;
    let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
    let lo: u16 = lo.trim().parse().map_err(|_| format!("bad port range {ports:?}"))?;
    let hi: u16 = hi.trim().parse().map_err(|_| format!("bad port range {ports:?}"))?;
    if lo > hi {
        return Err(format!("port range {ports:?} runs backwards"));
    }
    Ok(PortBlockEvent { at, action, inside: canonical_ip(inside), outside, port_lo: lo, port_hi: hi })
}

const MARKERS: [&str; 6] = [
    "JSERVICES_NAT_PORT_BLOCK_ALLOC",
    "JSERVICES_NAT_PORT_BLOCK_RELEASE",
    "JSERVICES_NAT_PORT_BLOCK_ACTIVE",
    "RT_SRC_NAT_PBA_ALLOC",
    "RT_SRC_NAT_PBA_RELEASE",
    "RT_SRC_NAT_PBA_INTERIM",
];

impl RecordParser for CgnatParser {
    fn line(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Item>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(text) = std::str::from_utf8(line) else {
            out.push(rejected(&self.source_name, line_no, "line is not UTF-8", line));
            return;
        };
        let t = text.trim();
        if t.is_empty() || t.starts_with('#') {
            return;
        }
        let found = MARKERS.iter().find_map(|m| t.find(m).map(|at| (at, *m)));
        let res = match found {
            Some((at, marker)) => self.juniper(t, at, marker),
            None if t.starts_with("time,") => {
                out.push(Item::Skipped("header"));
                return;
            }
            None if t.matches(',').count() == 4 => self.csv(t),
            None => {
                out.push(Item::Skipped("not a port-block message"));
                return;
            }
        };
        match res {
            Ok(ev) => out.push(Item::Event(SessionEvent::PortBlock(ev))),
            Err(reason) => out.push(rejected(&self.source_name, line_no, reason, line)),
        }
    }

    fn finish(&mut self, _out: &mut Vec<Item>) {}

    fn in_record(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, opts: &ParseOptions) -> Vec<Item> {
        let mut p = CgnatParser::new("cgnat.log", opts);
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            p.line(i as u64 + 1, l.as_bytes(), &mut out);
        }
        out
    }

    fn ev(i: &Item) -> PortBlockEvent {
        match i {
            Item::Event(SessionEvent::PortBlock(e)) => *e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn juniper_csv_and_junk() {
        let text = "2026-03-05T09:00:12+09:00 cgn1 {sset1}[jservices-nat]: JSERVICES_NAT_PORT_BLOCK_ALLOC: 100.64.1.2 -> 203.0.113.10:2048-2111 0x69a8c34c\n\
Mar  5 10:00:00 srx1 RT_NAT: RT_SRC_NAT_PBA_RELEASE: Subscriber 100.64.1.2 used/maximum [0/8] blocks, releases port block [2048-2111] from 203.0.113.10 in source pool p1 lsys_id: 0\n\
2026-03-05T09:00:13+09:00 cgn1 sshd[1]: Accepted publickey for root\n\
time,event,inside,outside,ports\n\
1772668812,allocate,2001:db8::b4,203.0.113.11,1024-1087\n\
2026-03-05T00:00:12Z,allocate,100.64.1.3,203.0.113.11,1087-1024\n\
2026-03-05T00:00:12Z,grab,100.64.1.3,203.0.113.11,1024-1087\n";
        let opts = ParseOptions { syslog_year: Some(2026), syslog_utc_offset: 9 * 3600, ..Default::default() };
        let items = parse(text, &opts);
        let a = ev(&items[0]);
        assert_eq!(a.at, Timestamp::from_secs(1_772_668_812));
        assert_eq!((a.action, a.port_lo, a.port_hi), (PortBlockAction::Allocate, 2048, 2111));
        assert_eq!(a.inside, "100.64.1.2".parse::<IpAddr>().unwrap());
        assert_eq!(a.outside, "203.0.113.10".parse::<Ipv4Addr>().unwrap());
        let r = ev(&items[1]);
        assert_eq!((r.action, r.at), (PortBlockAction::Release, Timestamp::from_secs(1_772_672_400)));
        assert_eq!(items[2], Item::Skipped("not a port-block message"));
        assert_eq!(items[3], Item::Skipped("header"));
        assert_eq!(ev(&items[4]).inside, "2001:db8::b4".parse::<IpAddr>().unwrap());
        let Item::Rejected(bad) = &items[5] else { panic!() };
        assert_eq!(bad.line, 6);
        assert!(bad.reason.contains("backwards"));
        let Item::Rejected(bad) = &items[6] else { panic!() };
        assert_eq!(bad.line, 7);
        // Without a year, BSD time stamps are rejected, not guessed.
        let items = parse(text, &ParseOptions::default());
        assert!(matches!(&items[1], Item::Rejected(r) if r.reason.contains("no year")));
    }
}
