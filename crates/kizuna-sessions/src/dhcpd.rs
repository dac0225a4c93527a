//! ISC dhcpd `dhcpd.leases`.
//!
//! dhcpd appends a `lease` block on every change; the newest block for an address wins, and it
//! rewrites the whole file now and then (same leases, new inode). A block:
//! ```text
//! lease 192.0.2.10 {
//!   starts 4 2026/03/05 00:00:12;
//!   ends 4 2026/03/05 02:00:12;
//!   cltt 4 2026/03/05 00:00:12;
//!   binding state active;
//!   next binding state free;
//!   hardware ethernet 00:11:22:33:44:55;
//!   uid "\001\000\021\"3DU";
//!   client-hostname "pc1";
//! }
//! ```
//! Times are UTC (`W YYYY/MM/DD HH:MM:SS`), or `epoch N;` with `db-time-format local`;
//! `ends never;` is an infinite lease. `binding state active` → held from `starts` to `ends`;
//! `free`, `expired`, `released` → the lease ended at `ends`; `abandoned` → declined;
//! `backup` (failover pool) carries no client. Other blocks (`host`, `failover peer`,
//! `server-duid`, `lease6`/`ia-na`) and statements are skipped.
//!
//! Subscriber key: `hardware ethernet` (lower case), else `id:` + the `uid` in hex.

use std::net::Ipv4Addr;

use chrono::NaiveDateTime;
use kizuna_model::Timestamp;

use crate::{Item, LeaseAction, LeaseEvent, RecordParser, SessionEvent, Source, rejected};

/// Push parser for `dhcpd.leases`.
pub struct DhcpdParser {
    source_name: String,
    block: Option<Block>,
    other_depth: u32,
}

struct Block {
    line: u64,
    addr: Result<Ipv4Addr, String>,
    raw: Vec<u8>,
    starts: Option<Option<i64>>,
    ends: Option<Option<i64>>,
    state: Option<String>,
    hw: Option<String>,
    uid: Option<String>,
    error: Option<(u64, String)>,
}

impl DhcpdParser {
    /// A parser for lines from `source_name`.
    pub fn new(source_name: &str) -> Self {
        DhcpdParser { source_name: source_name.to_string(), block: None, other_depth: 0 }
    }

    fn finish_block(&self, b: Block) -> Item {
        if let Some((line, reason)) = b.error {
            return rejected(&self.source_name, line, reason, &b.raw);
        }
        let addr = match b.addr {
            Ok(a) => a,
            Err(reason) => return rejected(&self.source_name, b.line, reason, &b.raw),
        };
        let client = match (b.hw, b.uid) {
            (Some(hw), _) => hw,
            (None, Some(uid)) => format!("id:{uid}"),
            (None, None) => String::new(),
        };
        let state = b.state.as_deref().unwrap_or("active");
        let Some(Some(start)) = b.starts else {
            if state == "backup" || state == "free" {
                return Item::Skipped("lease without starts (free or backup pool entry)");
            }
            return rejected(&self.source_name, b.line, "lease without a starts time", &b.raw);
        };
        let ends = b.ends.unwrap_or(None);
        let action = match state {
            "active" => {
                if client.is_empty() {
                    return rejected(&self.source_name, b.line, "active lease without hardware or uid", &b.raw);
                }
                LeaseAction::Held { start: Timestamp::from_secs(start), end: ends.map(Timestamp::from_secs) }
            }
            "free" | "expired" | "released" => LeaseAction::Ended { at: Timestamp::from_secs(ends.unwrap_or(start)) },
            "abandoned" => LeaseAction::Declined { at: Timestamp::from_secs(ends.unwrap_or(start)) },
            "backup" | "reset" | "bootp" => return Item::Skipped("lease in a non-client binding state"),
            other => {
                return rejected(&self.source_name, b.line, format!("unknown binding state {other:?}"), &b.raw);
            }
        };
        Item::Event(SessionEvent::Lease(LeaseEvent { source: Source::Dhcpd, addr: addr.into(), client, action }))
    }
}

fn parse_time(rest: &str) -> Result<Option<i64>, String> {
    let rest = rest.trim();
    if rest == "never" {
        return Ok(None);
    }
    if let Some(n) = rest.strip_prefix("epoch ") {
        let n = n.split_whitespace().next().unwrap_or("");
        return n.parse::<i64>().map(Some).map_err(|_| format!("bad epoch time {rest:?}"));
    }
    // "4 2026/03/05 00:00:12" (weekday first).
    let mut parts = rest.splitn(2, ' ');
    let _weekday = parts.next();
    let dt = parts.next().unwrap_or("");
    NaiveDateTime::parse_from_str(dt.trim(), "%Y/%m/%d %H:%M:%S")
        .map(|t| Some(t.and_utc().timestamp()))
        .map_err(|_| format!("bad time {rest:?}"))
}

/// Cuts a `# comment` that is not inside a quoted string.
fn strip_comment(t: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in t.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '#' if !quoted => return t[..i].trim_end(),
            _ => {}
        }
    }
    t
}

fn uid_hex(v: &str) -> String {
    // Either a quoted string with octal escapes, or colon-separated hex.
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return v.to_ascii_lowercase();
    };
    let b = inner.as_bytes();
    let mut bytes = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let oct = &b[i + 1..(i + 4).min(b.len())];
            if oct.len() == 3 && oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                bytes.push(((oct[0] - b'0') << 6) | ((oct[1] - b'0') << 3) | (oct[2] - b'0'));
                i += 4;
            } else {
                bytes.push(b[i + 1]);
                i += 2;
            }
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    bytes.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

impl RecordParser for DhcpdParser {
    fn line(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Item>) {
        let Ok(text) = std::str::from_utf8(line) else {
            out.push(rejected(&self.source_name, line_no, "line is not UTF-8", line));
            return;
        };
        let t = text.trim();
        if self.other_depth > 0 {
            self.other_depth += t.matches('{').count() as u32;
            self.other_depth = self.other_depth.saturating_sub(t.matches('}').count() as u32);
            return;
        }
        if let Some(b) = self.block.as_mut() {
            b.raw.push(b'\n');
            b.raw.extend_from_slice(line);
            if t == "}" {
                if let Some(b) = self.block.take() {
                    out.push(self.finish_block(b));
                }
                return;
            }
            let t = strip_comment(t);
            if t.is_empty() || b.error.is_some() {
                return;
            }
            let Some(stmt) = t.strip_suffix(';') else {
                b.error = Some((line_no, format!("statement without `;`: {t:?}")));
                return;
            };
            let (key, rest) = stmt.split_once(' ').unwrap_or((stmt, ""));
            let res = match key {
                "starts" => parse_time(rest).map(|v| b.starts = Some(v)),
                "ends" => parse_time(rest).map(|v| b.ends = Some(v)),
                "binding" => {
                    b.state = rest.strip_prefix("state ").map(|s| s.trim().to_string());
                    Ok(())
                }
                "hardware" => {
                    b.hw = rest.split_whitespace().nth(1).map(|s| s.to_ascii_lowercase());
                    Ok(())
                }
                "uid" => {
                    b.uid = Some(uid_hex(rest.trim()));
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(reason) = res {
                b.error = Some((line_no, reason));
            }
            return;
        }
        if t.is_empty() || t.starts_with('#') {
            return;
        }
        if let Some(rest) = t.strip_prefix("lease ") {
            let addr_text = rest.trim_end_matches('{').trim();
            let addr = addr_text.parse::<Ipv4Addr>().map_err(|_| format!("bad lease address {addr_text:?}"));
            self.block = Some(Block {
                line: line_no,
                addr,
                raw: line.to_vec(),
                starts: None,
                ends: None,
                state: None,
                hw: None,
                uid: None,
                error: None,
            });
            return;
        }
        if t.ends_with('{') {
            self.other_depth = 1;
            out.push(Item::Skipped("non-lease block"));
            return;
        }
        out.push(Item::Skipped("top-level statement"));
    }

    fn finish(&mut self, out: &mut Vec<Item>) {
        if let Some(b) = self.block.take() {
            out.push(rejected(&self.source_name, b.line, "lease block not closed at end of file", &b.raw));
        }
    }

    fn in_record(&self) -> bool {
        self.block.is_some() || self.other_depth > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let text = "# The format of this file is documented in the dhcpd.leases(5) manual page.\n\
authoring-byte-order little-endian;\n\
server-duid \"\\000\\001\";\n\
failover peer \"x\" state {\n  my state normal;\n}\n\
lease 192.0.2.10 {\n  starts 4 2026/03/05 00:00:12;\n  ends 4 2026/03/05 02:00:12;\n  binding state active;\n  hardware ethernet 00:11:22:33:44:AA;\n  uid \"\\001\\000\\021\";\n}\n\
lease 192.0.2.10 {\n  starts epoch 1772668812; # Thu Mar 05 00:00:12 2026\n  ends epoch 1772670000;\n  binding state released;\n  hardware ethernet 00:11:22:33:44:aa;\n}\n\
lease 192.0.2.11 {\n  starts 4 2026/03/05 00:00:12;\n  ends never;\n  uid \"\\001\\002\";\n}\n\
lease 192.0.2.12 {\n  starts 4 2026/13/05 00:00:12;\n}\n\
lease 192.0.2.13 {\n  starts 4 2026/03/05 00:00:12;\n";
        let mut p = DhcpdParser::new("dhcpd.leases");
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            p.line(i as u64 + 1, l.as_bytes(), &mut out);
        }
        p.finish(&mut out);
        let events: Vec<&LeaseEvent> = out
            .iter()
            .filter_map(|i| match i {
                Item::Event(SessionEvent::Lease(l)) => Some(l),
                _ => None,
            })
            .collect();
        assert_eq!(events.len(), 3, "{out:#?}");
        assert_eq!(events[0].client, "00:11:22:33:44:aa");
        assert_eq!(
            events[0].action,
            LeaseAction::Held {
                start: Timestamp::from_secs(1_772_668_812),
                end: Some(Timestamp::from_secs(1_772_676_012))
            }
        );
        assert_eq!(events[1].action, LeaseAction::Ended { at: Timestamp::from_secs(1_772_670_000) });
        assert_eq!(events[2].client, "id:01:02");
        assert_eq!(events[2].action, LeaseAction::Held { start: Timestamp::from_secs(1_772_668_812), end: None });
        let rejected: Vec<&kizuna_model::Rejected> = out
            .iter()
            .filter_map(|i| match i {
                Item::Rejected(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert_eq!(rejected[0].line, 26);
        assert!(rejected[0].reason.contains("bad time"));
        assert_eq!(rejected[1].line, 28);
    }
}
