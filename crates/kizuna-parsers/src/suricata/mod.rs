//! Suricata EVE JSON lines (`eve.json`).
//!
//! Only `event_type: alert` becomes an observation. Every other event type (`anomaly`, `dns`,
//! `http`, `tls`, `flow`, `stats`, `fileinfo`, …) is [`Item::Skipped`](crate::Item::Skipped)
//! with `what` = `suricata.<event_type>`. Unknown keys are ignored, as the EVE documentation asks
//! of consumers.
//!
//! An alert maps to:
//! - `time.source` from `timestamp` (`2026-03-05T01:00:12.123456+0100`);
//! - `source.ip|port` from `src_ip|src_port`, `destination.ip|port` from `dest_ip|dest_port`
//!   (as Suricata reports the packet that matched);
//! - `protocol.transport` from `proto` (lower case), `protocol.application` from `app_proto`;
//! - `destination.fqdn` from `http.hostname` (else `tls.sni`), `destination.url` from
//!   `http.hostname` + `http.url`;
//! - `event_description.text` from `alert.signature`; `classification.identifier`
//!   `sid-<alert.signature_id>`;
//! - `classification.type` from `alert.category` where the category says more than "an IDS
//!   fired" (Suricata's `classification.config` and Emerging Threats' categories):
//!
//! | alert.category | classification.type |
//! | --- | --- |
//! | A Network Trojan was detected; Malware Command and Control Activity Detected; Domain Observed Used for C2 Detected; Crypto Currency Mining Activity Detected | `infected-system` |
//! | Detection of a Network Scan (or a signature named `ET SCAN …` / `GPL SCAN …`, which Emerging Threats files under "Attempted Information Leak") | `scanner` |
//! | Attempted Denial of Service; Denial of Service; Detection of a Denial of Service Attack | `dos` |
//! | Web Application Attack; Attempted User Privilege Gain; Unsuccessful User Privilege Gain; Attempted Administrator Privilege Gain; Exploit Kit Activity Detected | `exploit` |
//! | Successful Administrator Privilege Gain | `privileged-account-compromise` |
//! | Successful User Privilege Gain | `unprivileged-account-compromise` |
//! | An attempted login using a suspicious username was detected; Attempt to login by a default username and password | `brute-force` |
//! | anything else | `ids-alert` |
//!
//! - `extra.suricata.*`: `signature`, `signature_id`, `gid`, `rev`, `category`, `severity`
//!   (1 = most severe), `action`, `flow_id`, `in_iface`, `host` (the sensor name), `direction`.
//!
//! A line that is not JSON, lacks `event_type`, or is an alert without a valid `timestamp` or
//! `src_ip` (or with an invalid `dest_ip` or port) is rejected.

use std::borrow::Cow;
use std::io::BufRead;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

use kizuna_model::{Classification, ClassificationType as C, Observation};

use crate::Context;
use crate::driver::{JsonLines, Outcome};

#[derive(Deserialize)]
struct Eve<'a> {
    #[serde(borrow, default)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default)]
    flow_id: Option<Value>,
    #[serde(borrow, default)]
    in_iface: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    src_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    src_port: Option<Value>,
    #[serde(borrow, default)]
    dest_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    dest_port: Option<Value>,
    #[serde(borrow, default)]
    proto: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    app_proto: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    alert: Option<Alert<'a>>,
    #[serde(borrow, default)]
    http: Option<Http<'a>>,
    #[serde(borrow, default)]
    tls: Option<Tls<'a>>,
}

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(default)]
    gid: Option<Value>,
    #[serde(default)]
    signature_id: Option<Value>,
    #[serde(default)]
    rev: Option<Value>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
    #[serde(default)]
    severity: Option<Value>,
}

#[derive(Deserialize)]
struct Http<'a> {
    #[serde(borrow, default)]
    hostname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Tls<'a> {
    #[serde(borrow, default)]
    sni: Option<Cow<'a, str>>,
}

/// Suricata EVE JSON lines; see the module docs.
pub(crate) fn parse<'a, R: BufRead + 'a>(ctx: &'a Context, input: R) -> JsonLines<'a, R, impl FnMut(&[u8]) -> Outcome> {
    JsonLines::new(input, ctx, move |line| record(line, ctx))
}

/// A port from a JSON number or numeric string; the error names the field.
pub(crate) fn port(v: Option<&Value>, field: &str) -> Result<Option<u16>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(p) => Ok(Some(p)),
            None => Err(format!("{field}: invalid port {n}")),
        },
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| format!("{field}: invalid port {s:?}")),
        Some(other) => Err(format!("{field}: invalid port {other}")),
    }
}

fn category_type(cat: &str) -> C {
    const TABLE: &[(&str, C)] = &[
        ("a network trojan was detected", C::InfectedSystem),
        ("malware command and control activity detected", C::InfectedSystem),
        ("domain observed used for c2 detected", C::InfectedSystem),
        ("crypto currency mining activity detected", C::InfectedSystem),
        ("detection of a network scan", C::Scanner),
        ("attempted denial of service", C::Dos),
        ("denial of service", C::Dos),
        ("detection of a denial of service attack", C::Dos),
        ("web application attack", C::Exploit),
        ("attempted user privilege gain", C::Exploit),
        ("unsuccessful user privilege gain", C::Exploit),
        ("attempted administrator privilege gain", C::Exploit),
        ("exploit kit activity detected", C::Exploit),
        ("successful administrator privilege gain", C::PrivilegedAccountCompromise),
        ("successful user privilege gain", C::UnprivilegedAccountCompromise),
        ("an attempted login using a suspicious username was detected", C::BruteForce),
        ("attempt to login by a default username and password", C::BruteForce),
    ];
    let cat = cat.trim();
    TABLE.iter().find(|(c, _)| c.eq_ignore_ascii_case(cat)).map(|(_, t)| *t).unwrap_or(C::IdsAlert)
}

fn record(line: &[u8], ctx: &Context) -> Outcome {
    let ev: Eve<'_> = match serde_json::from_slice(line) {
        Ok(e) => e,
        Err(e) => return Outcome::Reject(format!("not a Suricata EVE event: {e}")),
    };
    let Some(et) = ev.event_type.as_deref() else {
        return Outcome::Reject("event_type: missing".into());
    };
    if et != "alert" {
        return Outcome::Skip(format!("suricata.{et}"));
    }
    match alert(ev, ctx) {
        Ok(o) => Outcome::obs(o),
        Err(e) => Outcome::Reject(e),
    }
}

fn ip(v: Option<&str>, field: &str) -> Result<Option<IpAddr>, String> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => s.trim().parse().map(Some).map_err(|_| format!("{field}: invalid IP address {s:?}")),
    }
}

fn alert(ev: Eve<'_>, ctx: &Context) -> Result<Observation, String> {
    let ts = ev.timestamp.as_deref().ok_or("timestamp: missing")?;
    let time = crate::time::parse(ts).ok_or_else(|| format!("timestamp: invalid time {ts:?}"))?;
    let src = ip(ev.src_ip.as_deref(), "src_ip")?.ok_or("src_ip: missing")?;
    let dst = ip(ev.dest_ip.as_deref(), "dest_ip")?;
    let src_port = port(ev.src_port.as_ref(), "src_port")?;
    let dst_port = port(ev.dest_port.as_ref(), "dest_port")?;
    let a = ev.alert.ok_or("alert: missing")?;
    let sig = a.signature.as_deref().unwrap_or_default();
    let kind = if sig.starts_with("ET SCAN ") || sig.starts_with("GPL SCAN ") {
        C::Scanner
    } else {
        a.category.as_deref().map(category_type).unwrap_or(C::IdsAlert)
    };
    let mut class = Classification::new(kind);
    if let Some(sid) = a.signature_id.as_ref().filter(|v| !v.is_null()) {
        class.identifier = Some(match sid {
            Value::String(s) => format!("sid-{s}"),
            other => format!("sid-{other}"),
        });
    }

    let mut o = Observation::new("suricata", class, ctx.time_observation);
    o.time_source = Some(time);
    o.legal_basis = ctx.legal_basis;
    o.source.ip = Some(src);
    o.source.port = src_port;
    o.destination.ip = dst;
    o.destination.port = dst_port;
    o.protocol.transport = ev.proto.as_deref().filter(|p| !p.is_empty()).map(str::to_ascii_lowercase);
    o.protocol.application =
        ev.app_proto.as_deref().filter(|p| !p.is_empty() && *p != "failed").map(str::to_ascii_lowercase);
    o.event_description = a.signature.as_deref().map(str::to_owned);
    let host = ev.http.as_ref().and_then(|h| h.hostname.as_deref());
    if let Some(h) = host.and_then(|h| crate::field::normalize_host(h).ok()) {
        if let Some(u) = ev.http.as_ref().and_then(|h| h.url.as_deref()).filter(|u| u.starts_with('/')) {
            o.destination.url = Some(format!("http://{h}{u}"));
        }
        o.destination.fqdn = Some(h);
    } else if let Some(sni) = ev.tls.as_ref().and_then(|t| t.sni.as_deref()) {
        o.destination.fqdn = crate::field::normalize_host(sni).ok();
    }

    let x = &mut o.extra;
    let mut s = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            x.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    };
    s("suricata.signature", a.signature.as_deref());
    s("suricata.category", a.category.as_deref());
    s("suricata.action", a.action.as_deref());
    s("suricata.in_iface", ev.in_iface.as_deref());
    s("suricata.host", ev.host.as_deref());
    s("suricata.direction", ev.direction.as_deref());
    for (k, v) in [
        ("suricata.signature_id", a.signature_id),
        ("suricata.gid", a.gid),
        ("suricata.rev", a.rev),
        ("suricata.severity", a.severity),
        ("suricata.flow_id", ev.flow_id),
    ] {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            x.insert(k.to_owned(), v);
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(category_type("A Network Trojan was detected"), C::InfectedSystem);
        assert_eq!(category_type("detection of a network scan"), C::Scanner);
        assert_eq!(category_type("Misc activity"), C::IdsAlert);
        assert_eq!(category_type("Attempted Information Leak"), C::IdsAlert);
        assert_eq!(category_type(""), C::IdsAlert);
    }

    #[test]
    fn ports() {
        assert_eq!(port(Some(&Value::from(443)), "p"), Ok(Some(443)));
        assert_eq!(port(Some(&Value::from("22")), "p"), Ok(Some(22)));
        assert!(port(Some(&Value::from(70000)), "p").unwrap_err().contains("p: invalid port"));
        assert_eq!(port(None, "p"), Ok(None));
    }
}
