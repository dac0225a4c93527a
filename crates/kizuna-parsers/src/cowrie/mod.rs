//! Cowrie honeypot JSON lines (`cowrie.json`, Cowrie's `output_jsonlog`).
//!
//! Every Cowrie event has `eventid`, `timestamp` (ISO 8601 UTC), `src_ip`, `session` and
//! `sensor`; connection events add `protocol` (`ssh` | `telnet`), `src_port`, `dst_ip`,
//! `dst_port`. The source of every observation is the host that talked to the honeypot; the
//! destination is the honeypot (when the event names it).
//!
//! | eventid | classification.type | classification.identifier | also |
//! | --- | --- | --- | --- |
//! | `cowrie.session.connect` | `scanner` | `honeypot-connection` | ports, `protocol.application` |
//! | `cowrie.login.failed` | `brute-force` | `login-failed` | `destination.account` = username |
//! | `cowrie.login.success` | `brute-force` | `login-success` | `destination.account` = username |
//! | `cowrie.command.input` | `infected-system` | `honeypot-command` | `extra.cowrie.input` |
//! | `cowrie.session.file_download` with `url` | `malware-distribution` | `honeypot-download` | see below |
//! | `cowrie.session.file_download` without `url` | `infected-system` | `honeypot-file-write` | `malware.hash.sha256` |
//! | `cowrie.session.file_upload` | `infected-system` | `honeypot-file-upload` | `malware.hash.sha256` |
//!
//! Rationale: a honeypot sees no legitimate traffic, so a connection is a scan; logins are
//! password guessing whether the honeypot let them in or not (a "successful" login only means
//! the honeypot accepted a guessed password); commands typed after login and files written or
//! uploaded are the behaviour of an infected bot (the usual case: IoT botnets), which is what
//! the ISP notifies its subscriber about. A download URL is different: the observation is about
//! the host serving malware, so the URL, its host (`source.fqdn` or `source.ip`) and the
//! payload's SHA-256 describe the source, and the attacking address that ran `wget` is kept as
//! `extra.cowrie.src_ip` (its own connect, login and command events already report it).
//! Cowrie also logs an HTTP error page as a successful download: the hash is then that of the
//! page, not of malware; nothing in the event tells the two apart.
//!
//! Kept in `extra`: `cowrie.session`, `cowrie.sensor`, `cowrie.protocol` (also
//! `protocol.application`, with `protocol.transport` `tcp`), `cowrie.username`,
//! `cowrie.password`, `cowrie.input`, `cowrie.outfile`, `cowrie.destfile`, `cowrie.filename`.
//!
//! Cowrie logs user names and passwords escaped (`\xNN` for bytes, doubled backslashes). They
//! are unescaped when the result is valid UTF-8; otherwise the escaped text is kept as logged.
//!
//! Every other eventid (`cowrie.session.closed`, `cowrie.client.version`, `cowrie.client.kex`,
//! `cowrie.log.closed`, `cowrie.session.file_download.failed`, …, and ids not known yet) is
//! [`Item::Skipped`](crate::Item::Skipped) with `what` = the eventid. A line that is not JSON,
//! lacks `eventid`, or lacks a valid `timestamp` or `src_ip` on a mapped event is rejected.

use std::borrow::Cow;
use std::io::BufRead;
use std::net::IpAddr;

use serde::Deserialize;

use kizuna_model::{Classification, ClassificationType as C, Observation};

use crate::Context;
use crate::driver::{JsonLines, Outcome};

/// The fields kizuna reads; unknown keys are ignored.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    eventid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    src_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    src_port: Option<serde_json::Value>,
    #[serde(borrow, default)]
    dst_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    dst_port: Option<serde_json::Value>,
    #[serde(borrow, default)]
    session: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sensor: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    password: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    shasum: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    outfile: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    destfile: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    filename: Option<Cow<'a, str>>,
}

/// Cowrie JSON lines; see the module docs.
pub(crate) fn parse<'a, R: BufRead + 'a>(ctx: &'a Context, input: R) -> JsonLines<'a, R, impl FnMut(&[u8]) -> Outcome> {
    JsonLines::new(input, ctx, move |line| record(line, ctx))
}

fn record(line: &[u8], ctx: &Context) -> Outcome {
    let ev: Event<'_> = match serde_json::from_slice(line) {
        Ok(e) => e,
        Err(e) => return Outcome::Reject(format!("not a Cowrie JSON event: {e}")),
    };
    let Some(id) = ev.eventid.as_deref() else {
        return Outcome::Reject("eventid: missing".into());
    };
    let (kind, ident) = match id {
        "cowrie.session.connect" => (C::Scanner, "honeypot-connection"),
        "cowrie.login.failed" => (C::BruteForce, "login-failed"),
        "cowrie.login.success" => (C::BruteForce, "login-success"),
        "cowrie.command.input" => (C::InfectedSystem, "honeypot-command"),
        "cowrie.session.file_download" if ev.url.as_deref().is_some_and(|u| !u.is_empty()) => {
            (C::MalwareDistribution, "honeypot-download")
        }
        "cowrie.session.file_download" => (C::InfectedSystem, "honeypot-file-write"),
        "cowrie.session.file_upload" => (C::InfectedSystem, "honeypot-file-upload"),
        other => return Outcome::Skip(other.to_owned()),
    };
    let Some(ts) = ev.timestamp.as_deref() else {
        return Outcome::Reject("timestamp: missing".into());
    };
    let Some(time) = crate::time::parse(ts) else {
        return Outcome::Reject(format!("timestamp: invalid time {ts:?}"));
    };
    let Some(src) = ev.src_ip.as_deref() else {
        return Outcome::Reject("src_ip: missing".into());
    };
    let Ok(src_ip) = src.trim().parse::<IpAddr>() else {
        return Outcome::Reject(format!("src_ip: invalid IP address {src:?}"));
    };

    let src_port = match crate::suricata::port(ev.src_port.as_ref(), "src_port") {
        Ok(p) => p,
        Err(e) => return Outcome::Reject(e),
    };
    let dst_port = match crate::suricata::port(ev.dst_port.as_ref(), "dst_port") {
        Ok(p) => p,
        Err(e) => return Outcome::Reject(e),
    };

    let mut o = Observation::new("cowrie", Classification::with_identifier(kind, ident), ctx.time_observation);
    o.time_source = Some(time);
    o.legal_basis = ctx.legal_basis;
    let x = &mut o.extra;
    let mut put = |k: &str, v: &str| {
        x.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
    };
    if let Some(v) = &ev.session {
        put("cowrie.session", v);
    }
    if let Some(v) = &ev.sensor {
        put("cowrie.sensor", v);
    }
    if let Some(v) = &ev.protocol {
        put("cowrie.protocol", v);
    }
    if let Some(v) = &ev.username {
        put("cowrie.username", &unescape(v));
    }
    if let Some(v) = &ev.password {
        put("cowrie.password", &unescape(v));
    }
    if let Some(v) = &ev.input {
        put("cowrie.input", v);
    }
    if let Some(v) = &ev.outfile {
        put("cowrie.outfile", v);
    }
    if let Some(v) = &ev.destfile {
        put("cowrie.destfile", v);
    }
    if let Some(v) = &ev.filename {
        put("cowrie.filename", v);
    }
    if let Some(p) = ev.protocol.as_deref().filter(|p| !p.is_empty()) {
        o.protocol.application = Some(p.to_ascii_lowercase());
        o.protocol.transport = Some("tcp".into());
    }
    if let Some(d) = ev.dst_ip.as_deref() {
        // The honeypot's own address; an unparsable one is not worth losing the event over.
        match d.trim().parse::<IpAddr>() {
            Ok(ip) => o.destination.ip = Some(ip),
            Err(_) => put_extra(&mut o, "cowrie.dst_ip", d),
        }
    }
    o.destination.port = dst_port;
    if kind == C::BruteForce {
        o.destination.account = ev.username.as_deref().map(|u| unescape(u).into_owned());
    }
    if let Some(h) = ev.shasum.as_deref().filter(|h| !h.is_empty()) {
        let h = h.trim().to_ascii_lowercase();
        if h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()) {
            o.malware.sha256 = Some(h);
        } else {
            put_extra(&mut o, "cowrie.shasum", &h);
        }
    }

    if kind == C::MalwareDistribution {
        let url = ev.url.as_deref().unwrap_or_default().trim();
        o.source.url = Some(url.to_owned());
        match url_host(url) {
            Some(Host::Ip(ip)) => o.source.ip = Some(ip),
            Some(Host::Name(n)) => o.source.fqdn = Some(n),
            None => {}
        }
        o.source.port = url_port(url);
        o.extra.insert("cowrie.src_ip".into(), serde_json::Value::String(src_ip.to_string()));
        if let Some(p) = src_port {
            o.extra.insert("cowrie.src_port".into(), p.into());
        }
    } else {
        o.source.ip = Some(src_ip);
        o.source.port = src_port;
    }
    Outcome::obs(o)
}

fn put_extra(o: &mut Observation, k: &str, v: &str) {
    o.extra.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
}

/// Undoes Cowrie's escaping of credentials (`\xNN`, `\\`, `\t`, `\n`, `\r`, `\'`) when the
/// result is valid UTF-8; otherwise returns the text as logged.
pub(crate) fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            match b[i + 1] {
                b'\\' => {
                    out.push(b'\\');
                    i += 2;
                    continue;
                }
                b'\'' => {
                    out.push(b'\'');
                    i += 2;
                    continue;
                }
                b't' => {
                    out.push(b'\t');
                    i += 2;
                    continue;
                }
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                b'r' => {
                    out.push(b'\r');
                    i += 2;
                    continue;
                }
                b'x' if i + 3 < b.len() => {
                    if let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3])) {
                        out.push((h * 16 + l) as u8);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(s),
    }
}

pub(crate) enum Host {
    Ip(IpAddr),
    Name(String),
}

/// The authority part of `scheme://[user@]host[:port]/…`, or of `host/…` without a scheme.
fn authority(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    match auth.rfind('@') {
        Some(i) => &auth[i + 1..],
        None => auth,
    }
}

/// The host of a URL: an address (IPv6 in brackets) or a lower-case name.
pub(crate) fn url_host(url: &str) -> Option<Host> {
    let auth = authority(url);
    if let Some(r) = auth.strip_prefix('[') {
        let end = r.find(']')?;
        return r[..end].parse::<IpAddr>().ok().map(Host::Ip);
    }
    let host = match auth.rfind(':') {
        Some(i) => &auth[..i],
        None => auth,
    };
    if host.is_empty() {
        return None;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Host::Ip(ip));
    }
    crate::field::normalize_host(host).ok().map(Host::Name)
}

/// The explicit port of a URL, if any.
fn url_port(url: &str) -> Option<u16> {
    let auth = authority(url);
    let after = match auth.rfind(']') {
        Some(i) => &auth[i + 1..],
        None => auth,
    };
    after.rfind(':').and_then(|i| after[i + 1..].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_credentials() {
        assert_eq!(unescape("root"), "root");
        assert_eq!(unescape(r"a\\b"), r"a\b");
        assert_eq!(unescape(r"\xc3\xa9t\xc3\xa9"), "été");
        assert_eq!(unescape(r"\xff\xfe"), r"\xff\xfe"); // not UTF-8: kept as logged
        assert_eq!(unescape(r"\x0"), r"\x0");
        assert_eq!(unescape(r"tab\there"), "tab\there");
    }

    #[test]
    fn url_parts() {
        let h = |u| match url_host(u) {
            Some(Host::Ip(ip)) => ip.to_string(),
            Some(Host::Name(n)) => n,
            None => "-".into(),
        };
        assert_eq!(h("http://198.51.100.7:8080/bins/x86"), "198.51.100.7");
        assert_eq!(h("http://Evil.Example/a.sh"), "evil.example");
        assert_eq!(h("ftp://u:p@[2001:db8::5]:2121/f"), "2001:db8::5");
        assert_eq!(h("http:///x"), "-");
        assert_eq!(url_port("http://198.51.100.7:8080/bins/x86"), Some(8080));
        assert_eq!(url_port("http://[2001:db8::5]/f"), None);
    }
}
