//! FreeRADIUS accounting `detail` files.
//!
//! What FreeRADIUS 3.2 writes (seen running it; see `tests/freeradius.rs`):
//! ```text
//! Thu Mar  5 09:00:12 2026
//!     Acct-Status-Type = Start
//!     User-Name = "alice@isp.example"
//!     Acct-Session-Id = "00000001"
//!     NAS-IP-Address = 192.0.2.1
//!     Framed-IP-Address = 198.51.100.7
//!     Delegated-IPv6-Prefix = 2001:db8:1200::/56
//!     Event-Timestamp = "Mar  5 2026 09:00:12 JST"
//!     Acct-Unique-Session-Id = "35d0b02f33800aa588caf093b37e7dcc"
//!     Timestamp = 1772668812
//!
//! ```
//! (attribute lines start with a tab.) Records are separated by a blank line. The header is the receipt time in the server's local
//! time without a zone; `Timestamp` is the receipt time in Unix seconds; `Event-Timestamp` is
//! the NAS's event time, written as text in the server's zone (or a number, in other writers).
//!
//! **Which time:** the event time is `Event-Timestamp`; without it, `Timestamp` minus
//! `Acct-Delay-Time`; without that, the header minus `Acct-Delay-Time`. Event times make a
//! retransmission (logged twice, with different receipt times) the same event. Text times take
//! their zone from [`crate::ParseOptions::radius_utc_offset`] when configured, else from the
//! zone abbreviation when it is unambiguous (`JST`, `UTC`, `CET`, …), else from the offset
//! between the header and `Timestamp` (the same instant in local and in Unix time).

use chrono::NaiveDateTime;
use ipnet::Ipv6Net;
use kizuna_model::Timestamp;

use crate::{AcctStatus, Item, ParseOptions, RadiusEvent, RecordParser, SessionEvent, rejected};

/// Push parser for `detail` files.
pub struct DetailParser {
    source_name: String,
    opts: ParseOptions,
    learned_offset: Option<i64>,
    /// The open record's lines, back to back in `bytes` (reused: no allocation per line).
    record: RecordBuf,
}

/// Lines of one record: `(line number, start, end)` into one byte buffer.
#[derive(Default)]
struct RecordBuf {
    bytes: Vec<u8>,
    lines: Vec<(u64, usize, usize)>,
}

impl RecordBuf {
    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn push(&mut self, line_no: u64, line: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(line);
        self.lines.push((line_no, start, self.bytes.len()));
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.lines.clear();
    }

    fn line(&self, i: usize) -> (u64, &[u8]) {
        let (n, a, b) = self.lines[i];
        (n, &self.bytes[a..b])
    }

    /// The record as it was written (lines joined by newlines), for rejections.
    fn raw(&self) -> Vec<u8> {
        let mut s = Vec::with_capacity(self.bytes.len() + self.lines.len());
        for i in 0..self.lines.len() {
            if i > 0 {
                s.push(b'\n');
            }
            s.extend_from_slice(self.line(i).1);
        }
        s
    }
}

impl DetailParser {
    /// A parser for records from `source_name` (used in rejections).
    pub fn new(source_name: &str, opts: &ParseOptions) -> Self {
        DetailParser {
            source_name: source_name.to_string(),
            opts: opts.clone(),
            learned_offset: None,
            record: RecordBuf::default(),
        }
    }

    fn flush(&mut self, out: &mut Vec<Item>) {
        if self.record.is_empty() {
            return;
        }
        let record = std::mem::take(&mut self.record);
        let item = self.parse_record(&record);
        out.push(item);
        self.record = record;
        self.record.clear();
    }

    fn parse_record(&mut self, record: &RecordBuf) -> Item {
        let (first_line, header) = record.line(0);
        let raw = || record.raw();
        let header = String::from_utf8_lossy(header);
        let header_time = parse_header(header.trim());
        if header_time.is_none() {
            return rejected(&self.source_name, first_line, format!("bad record header {:?}", header.trim()), &raw());
        }
        let mut f = Fields::default();
        for i in 1..record.lines.len() {
            let (line_no, line) = record.line(i);
            let text = match std::str::from_utf8(line) {
                Ok(t) => t,
                Err(_) => return rejected(&self.source_name, line_no, "attribute line is not UTF-8", &raw()),
            };
            let Some((name, value)) = split_attribute(text.trim()) else {
                return rejected(
                    &self.source_name,
                    line_no,
                    format!("not an `Attribute = value` line: {:?}", text.trim()),
                    &raw(),
                );
            };
            if let Err(reason) = f.set(name.trim(), value.trim()) {
                return rejected(&self.source_name, line_no, reason, &raw());
            }
        }
        // Learn the server's UTC offset from this record (header is local, Timestamp is Unix).
        let record_offset = match (header_time, f.timestamp) {
            (Some(h), Some(ts)) => {
                let diff = h.and_utc().timestamp().saturating_sub(ts);
                // Receipt and logging may straddle a second; offsets are multiples of 15 minutes.
                let rounded = ((diff as f64) / 900.0).round() as i64 * 900;
                if (diff - rounded).abs() <= 120 && rounded.abs() <= 18 * 3600 {
                    self.learned_offset = Some(rounded);
                    Some(rounded)
                } else {
                    None
                }
            }
            _ => None,
        };
        let Some(status) = f.status.clone() else {
            return rejected(&self.source_name, first_line, "no Acct-Status-Type", &raw());
        };
        let delay = i64::from(f.delay.unwrap_or(0));
        let at = if let Some(et) = &f.event_timestamp {
            match self.event_time(et, record_offset) {
                Ok(t) => t,
                Err(reason) => return rejected(&self.source_name, first_line, reason, &raw()),
            }
        } else if let Some(ts) = f.timestamp {
            Timestamp::from_secs(ts.saturating_sub(delay))
        } else {
            let off = self.opts.radius_utc_offset.map(i64::from).or(self.learned_offset);
            match (header_time, off) {
                (Some(h), Some(off)) => {
                    Timestamp::from_secs(h.and_utc().timestamp().saturating_sub(off).saturating_sub(delay))
                }
                _ => {
                    return rejected(
                        &self.source_name,
                        first_line,
                        "no Event-Timestamp or Timestamp, and the server's time zone is unknown (set radius_utc_offset)",
                        &raw(),
                    );
                }
            }
        };
        let nas = f.nas_ip.or(f.nas_ipv6).or(f.nas_id).unwrap_or_default();
        let status = match status.as_str() {
            "Start" | "1" => AcctStatus::Start,
            "Interim-Update" | "Alive" | "3" => AcctStatus::Interim,
            "Stop" | "2" => AcctStatus::Stop,
            "Accounting-On" | "Accounting-Off" | "7" | "8" => {
                return Item::Event(SessionEvent::NasReset { nas, at });
            }
            _ => return Item::Skipped("Acct-Status-Type without a session (e.g. Failed)"),
        };
        let Some(user) = f.user else {
            return rejected(&self.source_name, first_line, "session record without User-Name", &raw());
        };
        let Some(session_id) = f.session_id else {
            return rejected(&self.source_name, first_line, "session record without Acct-Session-Id", &raw());
        };
        if status == AcctStatus::Start && f.framed_ip.is_none() && f.prefixes.is_empty() {
            return Item::Skipped("Start without Framed-IP-Address or IPv6 prefix");
        }
        Item::Event(SessionEvent::Radius(RadiusEvent {
            status,
            at,
            nas,
            session_id,
            user,
            unique_id: f.unique_id,
            framed_ip: f.framed_ip,
            prefixes: f.prefixes,
            session_time: f.session_time,
        }))
    }

    fn event_time(&self, value: &str, record_offset: Option<i64>) -> Result<Timestamp, String> {
        if let Ok(n) = value.parse::<i64>() {
            return Ok(Timestamp::from_secs(n));
        }
        // "Mar  5 2026 09:00:12 JST"
        let (time_part, zone) = match value.rsplit_once(' ') {
            Some((t, z)) if z.chars().all(|c| c.is_ascii_alphabetic()) => (t.trim(), Some(z)),
            _ => (value.trim(), None),
        };
        let naive = parse_event_time(time_part).ok_or_else(|| format!("bad Event-Timestamp {value:?}"))?;
        let offset = self
            .opts
            .radius_utc_offset
            .map(i64::from)
            .or_else(|| zone.and_then(zone_offset))
            .or(record_offset)
            .or(self.learned_offset)
            .ok_or_else(|| {
                format!("Event-Timestamp {value:?}: unknown time zone (set radius_utc_offset, or log Timestamp)")
            })?;
        Ok(Timestamp::from_secs(naive.and_utc().timestamp().saturating_sub(offset)))
    }
}

impl RecordParser for DetailParser {
    fn line(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Item>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            self.flush(out);
            return;
        }
        let starts_record = !matches!(line[0], b'\t' | b' ');
        if starts_record && !self.record.is_empty() {
            // A header without the blank line before it: close the previous record.
            self.flush(out);
        }
        if !starts_record && self.record.is_empty() {
            out.push(rejected(&self.source_name, line_no, "attribute line outside a record (no header)", line));
            return;
        }
        self.record.push(line_no, line);
    }

    fn finish(&mut self, out: &mut Vec<Item>) {
        self.flush(out);
    }

    fn in_record(&self) -> bool {
        !self.record.is_empty()
    }
}

#[derive(Default)]
struct Fields {
    status: Option<String>,
    user: Option<String>,
    session_id: Option<String>,
    unique_id: Option<String>,
    nas_ip: Option<String>,
    nas_ipv6: Option<String>,
    nas_id: Option<String>,
    framed_ip: Option<std::net::Ipv4Addr>,
    prefixes: Vec<Ipv6Net>,
    event_timestamp: Option<String>,
    timestamp: Option<i64>,
    delay: Option<u32>,
    session_time: Option<u32>,
}

impl Fields {
    /// Sets attribute `name` from its raw (still quoted) value; unknown attributes cost nothing.
    fn set(&mut self, name: &str, raw: &str) -> Result<(), String> {
        let text = || unquote(raw);
        match name {
            "Acct-Status-Type" => self.status = Some(text()),
            "User-Name" => self.user = Some(text()),
            "Acct-Session-Id" => self.session_id = Some(text()),
            "Acct-Unique-Session-Id" => self.unique_id = Some(text()),
            "NAS-IP-Address" => self.nas_ip = Some(text()),
            "NAS-IPv6-Address" => self.nas_ipv6 = Some(text()),
            "NAS-Identifier" => self.nas_id = Some(text()),
            "Framed-IP-Address"
            | "Delegated-IPv6-Prefix"
            | "Framed-IPv6-Prefix"
            | "Framed-IPv6-Address"
            | "Event-Timestamp"
            | "Timestamp"
            | "Acct-Delay-Time"
            | "Acct-Session-Time" => self.set_parsed(name, text())?,
            _ => {}
        }
        Ok(())
    }

    fn set_parsed(&mut self, name: &str, value: String) -> Result<(), String> {
        match name {
            "Framed-IP-Address" => {
                self.framed_ip = Some(value.parse().map_err(|_| format!("bad Framed-IP-Address {value:?}"))?)
            }
            "Delegated-IPv6-Prefix" | "Framed-IPv6-Prefix" => {
                let net: Ipv6Net = value.parse().map_err(|_| format!("bad {name} {value:?}"))?;
                self.prefixes.push(net.trunc());
            }
            "Framed-IPv6-Address" => {
                let a: std::net::Ipv6Addr = value.parse().map_err(|_| format!("bad {name} {value:?}"))?;
                self.prefixes.push(Ipv6Net::from(a));
            }
            "Event-Timestamp" => self.event_timestamp = Some(value),
            "Timestamp" => self.timestamp = Some(value.parse().map_err(|_| format!("bad Timestamp {value:?}"))?),
            "Acct-Delay-Time" => {
                self.delay = Some(value.parse().map_err(|_| format!("bad Acct-Delay-Time {value:?}"))?)
            }
            "Acct-Session-Time" => {
                self.session_time = Some(value.parse().map_err(|_| format!("bad Acct-Session-Time {value:?}"))?)
            }
            _ => {}
        }
        Ok(())
    }
}

/// Removes FreeRADIUS's double quotes and undoes its escapes (`\"`, `\\`, `\n`, `\t`, `\ooo`).
/// Splits `Attribute = value` at the first ` = ` (without building a substring searcher).
fn split_attribute(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let mut i = 1;
    while i + 1 < b.len() {
        match b[i] {
            b'=' if b[i - 1] == b' ' && b[i + 1] == b' ' => return Some((&line[..i - 1], &line[i + 2..])),
            _ => i += 1,
        }
    }
    None
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `HH:MM:SS` with two digits each (anything else: `None`, and the caller asks chrono).
fn hms(s: &str) -> Option<(u32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let two = |i: usize| -> Option<u32> {
        let (x, y) = (b[i], b[i + 1]);
        (x.is_ascii_digit() && y.is_ascii_digit()).then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
    };
    Some((two(0)?, two(3)?, two(6)?))
}

fn small_num(s: &str, max_len: usize) -> Option<u32> {
    (!s.is_empty() && s.len() <= max_len && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
}

fn ymd_hms(y: u32, mon: &str, d: &str, time: &str) -> Option<NaiveDateTime> {
    let m = MONTHS.iter().position(|x| *x == mon)? as u32 + 1;
    let d = small_num(d, 2)?;
    let (h, mi, sec) = hms(time)?;
    if sec >= 60 {
        return None; // leap seconds: chrono's business
    }
    chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?.and_hms_opt(h, mi, sec)
}

/// The record header, `%a %b %e %H:%M:%S %Y` ("Thu Mar  5 09:00:12 2026"). The common form is
/// parsed by hand (chrono's format interpreter dominated loading); anything unusual goes to
/// chrono, so the answers are chrono's either way (weekday checked against the date as chrono
/// does).
fn parse_header(s: &str) -> Option<NaiveDateTime> {
    let fast = || {
        let mut it = s.split_ascii_whitespace();
        let (wd, mon, d, time, y) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || y.len() != 4 {
            return None;
        }
        let t = ymd_hms(small_num(y, 4)?, mon, d, time)?;
        use chrono::Datelike;
        (WEEKDAYS[t.weekday().num_days_from_monday() as usize] == wd).then_some(t)
    };
    fast().or_else(|| NaiveDateTime::parse_from_str(s, "%a %b %e %H:%M:%S %Y").ok())
}

/// The text of an `Event-Timestamp` without its zone, `%b %e %Y %H:%M:%S`
/// ("Mar  5 2026 09:00:12"); like [`parse_header`], chrono decides anything unusual.
fn parse_event_time(s: &str) -> Option<NaiveDateTime> {
    let fast = || {
        let mut it = s.split_ascii_whitespace();
        let (mon, d, y, time) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || y.len() != 4 {
            return None;
        }
        ymd_hms(small_num(y, 4)?, mon, d, time)
    };
    fast().or_else(|| NaiveDateTime::parse_from_str(s, "%b %e %Y %H:%M:%S").ok())
}

fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return v.to_string();
    };
    if !inner.contains('\\') {
        return inner.to_string();
    }
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let c = b[i + 1];
            if c.is_ascii_digit() && b.len() >= i + 4 {
                let oct = &b[i + 1..i + 4];
                if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let n = (oct[0] - b'0') as u32 * 64 + (oct[1] - b'0') as u32 * 8 + (oct[2] - b'0') as u32;
                    out.push((n & 0xff) as u8);
                    i += 4;
                    continue;
                }
            }
            out.push(match c {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                other => other,
            });
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// UTC offsets of unambiguous zone abbreviations (`CST`, `IST` are ambiguous: not here).
pub fn zone_offset(abbr: &str) -> Option<i64> {
    let h = |x: i64| Some(x * 3600);
    match abbr {
        "UTC" | "GMT" | "Z" | "UT" | "WET" => h(0),
        "JST" | "KST" => h(9),
        "HKT" | "SGT" | "AWST" | "PHT" => h(8),
        "ICT" | "WIB" => h(7),
        "BST" | "CET" | "WEST" | "WAT" => h(1),
        "CEST" | "EET" | "SAST" => h(2),
        "EEST" | "MSK" => h(3),
        "AEST" => h(10),
        "AEDT" => h(11),
        "NZST" => h(12),
        "NZDT" => h(13),
        "EST" => h(-5),
        "EDT" | "AST" => h(-4),
        "CDT" => h(-5),
        "MST" => h(-7),
        "MDT" => h(-6),
        "PST" => h(-8),
        "PDT" => h(-7),
        "HST" => h(-10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, opts: &ParseOptions) -> Vec<Item> {
        let mut p = DetailParser::new("detail-20260305", opts);
        let mut out = Vec::new();
        for (i, l) in text.split('\n').enumerate() {
            p.line(i as u64 + 1, l.as_bytes(), &mut out);
        }
        p.finish(&mut out);
        out
    }

    const START: &str = "Thu Mar  5 09:00:12 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"alice@isp.example\"\n\tAcct-Session-Id = \"00000001\"\n\tNAS-IP-Address = 192.0.2.1\n\tFramed-IP-Address = 198.51.100.7\n\tDelegated-IPv6-Prefix = 2001:db8:1200::/56\n\tEvent-Timestamp = \"Mar  5 2026 09:00:12 JST\"\n\tAcct-Unique-Session-Id = \"35d0b02f\"\n\tTimestamp = 1772668812\n\n";

    #[test]
    fn start_record() {
        let items = parse(START, &ParseOptions::default());
        assert_eq!(items.len(), 1, "{items:?}");
        let Item::Event(SessionEvent::Radius(e)) = &items[0] else { panic!("{items:?}") };
        assert_eq!(e.status, AcctStatus::Start);
        assert_eq!(e.at, Timestamp::from_secs(1_772_668_812));
        assert_eq!(e.user, "alice@isp.example");
        assert_eq!(e.nas, "192.0.2.1");
        assert_eq!(e.framed_ip, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(e.prefixes, vec!["2001:db8:1200::/56".parse::<Ipv6Net>().unwrap()]);
        assert_eq!(e.unique_id.as_deref(), Some("35d0b02f"));
    }

    #[test]
    fn zone_from_timestamp_when_abbreviation_is_unknown() {
        // "CST" is ambiguous; the header/Timestamp pair says +08:00.
        let text = START.replace("09:00:12 JST", "08:00:12 CST").replace("Thu Mar  5 09:00:12", "Thu Mar  5 08:00:12");
        let items = parse(&text, &ParseOptions::default());
        let Item::Event(SessionEvent::Radius(e)) = &items[0] else { panic!("{items:?}") };
        assert_eq!(e.at, Timestamp::from_secs(1_772_668_812));
        // Configured offset wins over everything.
        let items = parse(START, &ParseOptions { radius_utc_offset: Some(0), ..Default::default() });
        let Item::Event(SessionEvent::Radius(e)) = &items[0] else { panic!("{items:?}") };
        assert_eq!(e.at, Timestamp::from_secs(1_772_668_812 + 9 * 3600));
    }

    #[test]
    fn no_event_timestamp_uses_timestamp_minus_delay() {
        let text = "Thu Mar  5 09:01:55 2026\n\tAcct-Status-Type = Stop\n\tUser-Name = \"alice\"\n\tAcct-Session-Id = \"1\"\n\tAcct-Delay-Time = 3\n\tTimestamp = 1772668915\n\n";
        let items = parse(text, &ParseOptions::default());
        let Item::Event(SessionEvent::Radius(e)) = &items[0] else { panic!("{items:?}") };
        assert_eq!(e.at, Timestamp::from_secs(1_772_668_912));
        assert_eq!(e.status, AcctStatus::Stop);
    }

    #[test]
    fn accounting_on_and_rejections_with_lines() {
        let text = format!(
            "{START}Thu Mar  5 09:10:00 2026\n\tAcct-Status-Type = Accounting-On\n\tNAS-IP-Address = 192.0.2.2\n\tTimestamp = 1772669400\n\nThu Mar  5 09:11:00 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"bob\"\n\tAcct-Session-Id = \"2\"\n\tFramed-IP-Address = 198.51.100.300\n\tTimestamp = 1772669460\n\n\tstray = line\nnot a date\n\tAcct-Status-Type = Start\n\n"
        );
        let items = parse(&text, &ParseOptions::default());
        assert_eq!(items.len(), 5, "{items:#?}");
        assert_eq!(
            items[1],
            Item::Event(SessionEvent::NasReset { nas: "192.0.2.2".into(), at: Timestamp::from_secs(1_772_669_400) })
        );
        let Item::Rejected(r) = &items[2] else { panic!("{items:?}") };
        assert_eq!(r.line, 21);
        assert!(r.reason.contains("Framed-IP-Address"), "{r:?}");
        assert!(r.raw.contains("198.51.100.300"));
        let Item::Rejected(r) = &items[3] else { panic!("{items:?}") };
        assert_eq!(r.line, 24);
        let Item::Rejected(r) = &items[4] else { panic!("{items:?}") };
        assert_eq!(r.line, 25);
        assert!(r.reason.contains("header"), "{r:?}");
    }

    #[test]
    fn hand_parsed_times_agree_with_chrono() {
        let headers = [
            "Thu Mar  5 09:00:12 2026",
            "Thu Mar 5 09:00:12 2026",
            "Thu Mar 05 09:00:12 2026",
            "Fri Mar  5 09:00:12 2026",
            "Thu Mar  5 9:00:12 2026",
            "Thu Mar  5 09:00:60 2026",
            "Sun Feb 29 00:00:00 2026",
            "Sun Mar  1 23:59:59 2026",
            "Thu Mar  5 24:00:00 2026",
            "Thu mar  5 09:00:12 2026",
            "Thursday Mar  5 09:00:12 2026",
            "Thu Mar  5 09:00:12 2026 extra",
            "Thu Mar  5 09:00:12 26",
            "Thu Mar 32 09:00:12 2026",
            "Thu  Mar  5  09:00:12  2026",
            "",
        ];
        for h in headers {
            let chrono = NaiveDateTime::parse_from_str(h, "%a %b %e %H:%M:%S %Y").ok();
            assert_eq!(parse_header(h), chrono, "{h:?}");
        }
        for e in [
            "Mar  5 2026 09:00:12",
            "Mar 5 2026 09:00:12",
            "Dec 31 1999 23:59:59",
            "Feb 29 2024 12:00:00",
            "Feb 29 2026 12:00:00",
            "Mar  5 2026 9:00:12",
            "March 5 2026 09:00:12",
            "Mar  5 2026",
            "5 Mar 2026 09:00:12",
        ] {
            let chrono = NaiveDateTime::parse_from_str(e, "%b %e %Y %H:%M:%S").ok();
            assert_eq!(parse_event_time(e), chrono, "{e:?}");
        }
        assert_eq!(split_attribute("User-Name = \"a = b\""), Some(("User-Name", "\"a = b\"")));
        assert_eq!(split_attribute("Foo =bar"), None);
        assert_eq!(split_attribute("Foo = "), Some(("Foo", "")));
    }

    #[test]
    fn unquote_escapes() {
        assert_eq!(unquote(r#""a\"b\\c\101""#), "a\"b\\cA");
        assert_eq!(unquote("plain"), "plain");
    }
}
