//! Kea DHCPv4 memfile lease file (`kea-leases4.csv`).
//!
//! Kea 2.2 writes the header
//! `address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context`
//! (Kea 2.5+ appends `pool_id`; columns are found by name, so both work) and appends one line per
//! lease change: `192.0.2.10,00:11:22:33:44:55,01:00:11:22:33:44:55,4000,1772672812,1,0,0,host,0,`.
//! - The lease is held from `expire - valid_lifetime` (the last client transaction) to `expire`;
//!   a renewal appends a new line, which extends it. `valid_lifetime` 4294967295 is infinite.
//! - A release, reclaim or deletion appends a line with `valid_lifetime` 0 whose `expire` is the
//!   old last-transaction time: the lease is taken as ending there. (The real release time is only
//!   in Kea's log, later than that; the gap resolves as "outside-session", never as a guess.)
//! - `state` 1 = declined (no client holds it), 2 = expired-reclaimed, 3 = released (newer Kea).
//! - Kea escapes commas inside `hostname` and `user_context` as `&#x2c`, so a plain split works.
//!
//! Subscriber key: `hwaddr` (lower case), else `id:` + `client_id`.

use std::net::Ipv4Addr;

use kizuna_model::Timestamp;

use crate::{Item, LeaseAction, LeaseEvent, RecordParser, SessionEvent, Source, rejected};

/// Kea 2.2's column order, used when a file has no header line.
pub const KEA_2_2_HEADER: &str =
    "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context";

const INFINITE: u64 = u32::MAX as u64;

/// Push parser for `kea-leases4.csv`.
pub struct KeaParser {
    source_name: String,
    cols: Columns,
}

#[derive(Clone, Copy)]
struct Columns {
    address: usize,
    hwaddr: usize,
    client_id: usize,
    valid_lifetime: usize,
    expire: usize,
    state: Option<usize>,
    count: usize,
}

impl Columns {
    fn from_header(h: &str) -> Option<Columns> {
        let names: Vec<&str> = h.split(',').map(str::trim).collect();
        let find = |n: &str| names.iter().position(|x| *x == n);
        Some(Columns {
            address: find("address")?,
            hwaddr: find("hwaddr")?,
            client_id: find("client_id")?,
            valid_lifetime: find("valid_lifetime")?,
            expire: find("expire")?,
            state: find("state"),
            count: names.len(),
        })
    }
}

impl KeaParser {
    /// A parser for lines from `source_name`.
    pub fn new(source_name: &str) -> Self {
        let cols = Columns::from_header(KEA_2_2_HEADER).unwrap_or(Columns {
            address: 0,
            hwaddr: 1,
            client_id: 2,
            valid_lifetime: 3,
            expire: 4,
            state: Some(9),
            count: 11,
        });
        KeaParser { source_name: source_name.to_string(), cols }
    }

    fn parse_line(&self, line_no: u64, text: &str, raw: &[u8]) -> Item {
        let fields: Vec<&str> = text.split(',').collect();
        let c = self.cols;
        let need = [c.address, c.hwaddr, c.client_id, c.valid_lifetime, c.expire].into_iter().max().unwrap_or(0);
        if fields.len() <= need {
            return rejected(
                &self.source_name,
                line_no,
                format!("{} fields, the header has {}", fields.len(), c.count),
                raw,
            );
        }
        let Ok(addr) = fields[c.address].trim().parse::<Ipv4Addr>() else {
            return rejected(&self.source_name, line_no, format!("bad address {:?}", fields[c.address]), raw);
        };
        let Ok(valid) = fields[c.valid_lifetime].trim().parse::<u32>().map(u64::from) else {
            return rejected(
                &self.source_name,
                line_no,
                format!("bad valid_lifetime {:?}", fields[c.valid_lifetime]),
                raw,
            );
        };
        let Ok(expire) = fields[c.expire].trim().parse::<i64>() else {
            return rejected(&self.source_name, line_no, format!("bad expire {:?}", fields[c.expire]), raw);
        };
        let state = match c.state.and_then(|i| fields.get(i)).map(|s| s.trim()) {
            None | Some("") => 0,
            Some(s) => match s.parse::<u32>() {
                Ok(v) => v,
                Err(_) => return rejected(&self.source_name, line_no, format!("bad state {s:?}"), raw),
            },
        };
        let hw = fields[c.hwaddr].trim().to_ascii_lowercase();
        let cid = fields[c.client_id].trim().to_ascii_lowercase();
        let client = if !hw.is_empty() {
            hw
        } else if !cid.is_empty() {
            format!("id:{cid}")
        } else {
            String::new()
        };
        let start = if valid == INFINITE { expire } else { expire.saturating_sub(valid as i64) };
        let action = match state {
            1 => LeaseAction::Declined { at: Timestamp::from_secs(start) },
            _ if valid == 0 => LeaseAction::Ended { at: Timestamp::from_secs(expire) },
            2 | 3 => LeaseAction::Ended { at: Timestamp::from_secs(expire) },
            0 => {
                if client.is_empty() {
                    return rejected(&self.source_name, line_no, "lease without hwaddr or client_id", raw);
                }
                LeaseAction::Held {
                    start: Timestamp::from_secs(start),
                    end: (valid != INFINITE).then(|| Timestamp::from_secs(expire)),
                }
            }
            other => return rejected(&self.source_name, line_no, format!("unknown lease state {other}"), raw),
        };
        Item::Event(SessionEvent::Lease(LeaseEvent { source: Source::Kea, addr: addr.into(), client, action }))
    }
}

impl RecordParser for KeaParser {
    fn line(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Item>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(text) = std::str::from_utf8(line) else {
            out.push(rejected(&self.source_name, line_no, "line is not UTF-8", line));
            return;
        };
        if text.trim().is_empty() {
            return;
        }
        if text.starts_with("address,") {
            match Columns::from_header(text) {
                Some(c) => {
                    self.cols = c;
                    out.push(Item::Skipped("header"));
                }
                None => out.push(rejected(&self.source_name, line_no, "header lacks a required column", line)),
            }
            return;
        }
        out.push(self.parse_line(line_no, text, line));
    }

    fn finish(&mut self, _out: &mut Vec<Item>) {}

    fn in_record(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Item> {
        let mut p = KeaParser::new("kea-leases4.csv");
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            p.line(i as u64 + 1, l.as_bytes(), &mut out);
        }
        out
    }

    #[test]
    fn lease_renewal_release_decline() {
        let text = format!(
            "{KEA_2_2_HEADER}\n\
             192.0.2.10,00:11:22:33:44:AA,01:00:11:22:33:44:aa,4000,1772672812,1,0,0,pc1,0,\n\
             192.0.2.10,00:11:22:33:44:aa,01:00:11:22:33:44:aa,0,1772670812,1,0,0,pc1,0,\n\
             192.0.2.11,,,3600,1772672400,1,0,0,,1,\n\
             192.0.2.12,,ff:01,3600,1772672400,1,0,0,,0,\n\
             192.0.2.300,,,3600,1772672400,1,0,0,,0,\n\
             192.0.2.13,aa:bb\n"
        );
        let items = parse(&text);
        assert_eq!(items[0], Item::Skipped("header"));
        let ev = |i: usize| match &items[i] {
            Item::Event(SessionEvent::Lease(l)) => l.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(ev(1).client, "00:11:22:33:44:aa");
        assert_eq!(
            ev(1).action,
            LeaseAction::Held {
                start: Timestamp::from_secs(1_772_668_812),
                end: Some(Timestamp::from_secs(1_772_672_812))
            }
        );
        assert_eq!(ev(2).action, LeaseAction::Ended { at: Timestamp::from_secs(1_772_670_812) });
        assert_eq!(ev(3).action, LeaseAction::Declined { at: Timestamp::from_secs(1_772_668_800) });
        assert_eq!(ev(4).client, "id:ff:01");
        let Item::Rejected(r) = &items[5] else { panic!("{items:?}") };
        assert_eq!((r.line, r.reason.as_str()), (6, "bad address \"192.0.2.300\""));
        let Item::Rejected(r) = &items[6] else { panic!("{items:?}") };
        assert_eq!(r.line, 7);
    }

    #[test]
    fn newer_header_with_pool_id() {
        let text = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id\n192.0.2.10,00:11:22:33:44:aa,,4000,1772672812,1,0,0,,0,,0\n";
        let items = parse(text);
        assert!(matches!(&items[1], Item::Event(SessionEvent::Lease(_))), "{items:?}");
    }
}
