//! IntelMQ event JSON, in and out.
//!
//! One event is one JSON object with flat dotted keys, as IntelMQ's file output writes it
//! (`{"source.ip": "192.0.2.1", "classification.type": "brute-force", "extra.foo": 1, …}`).
//! [`write_json`] and [`from_json`] are exact inverses: `from_json(write_json(o)) == o` for every
//! observation whose times lie in years 0000–9999. This is also the store's encoding.
//!
//! Mapping to the model:
//! - keys the model has a field for ([`kizuna_model::FIELD_NAMES`]) go to that field;
//! - `tlp` is written with IntelMQ's TLP 1.0 spelling (`WHITE`, `GREEN`, `AMBER`,
//!   `AMBER+STRICT`, `RED`) and read in either generation;
//! - times are RFC 3339 with `+00:00`, fractional seconds only when present;
//! - the legal basis is written as `extra.legal_basis`;
//! - `extra.<k>` is `extra[k]`, any JSON value (nested objects stay nested); a top-level
//!   `extra` object (hierarchical output, or IntelMQ 1.x's JSON-in-a-string) is merged in;
//! - **harmonization keys the model lacks** (`source.geolocation.city`, `source.registry`,
//!   `severity`, `product.vendor`, …) are kept as `extra["intelmq.<key>"]` and written back
//!   under their original key, so a round trip through kizuna loses nothing;
//! - `raw` (base64 of the original line, 30–50 % of an IntelMQ message) is dropped, and so is
//!   `__type`;
//! - extra keys that would collide with the encoding itself (`legal_basis`, or anything starting
//!   with `kizuna.escaped.`) are written as `extra.kizuna.escaped.<k>`.
//!
//! As input format ([`crate::Format::IntelMq`]): each line is read as above; an event without
//! `time.observation` gets the context's; `tlp` and `extra.legal_basis` are kept when present
//! (the context's `tlp` still overrides); a missing `classification.type` becomes
//! `undetermined` (as IntelMQ's taxonomy expert does); a missing `feed.name` is an error unless
//! the context gives one.

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;
use std::io::Write as _;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use kizuna_model::{Endpoint, LegalBasis, Observation, Timestamp, Tlp};

use crate::Context;
use crate::driver::{JsonLines, Outcome};
use crate::field::{Builder, Field, INTELMQ_PREFIX, Mode, Scalar, is_restorable_key};

/// Prefix of extra keys escaped so that they cannot collide with the encoding.
const ESCAPED: &str = "kizuna.escaped.";

// ---------------------------------------------------------------------------------------------
// Writing

/// Appends one IntelMQ event JSON object (no newline) for `o` to `out`.
pub fn write_json(o: &Observation, out: &mut Vec<u8>) {
    out.push(b'{');
    let c = &o.classification;
    if let Some(id) = &c.identifier {
        key(out, "classification.identifier");
        string(out, id);
    }
    key(out, "classification.taxonomy");
    string(out, c.taxonomy.as_str());
    key(out, "classification.type");
    string(out, c.kind.as_str());
    endpoint(out, "destination.", &o.destination);
    opt(out, "event_description.text", &o.event_description);
    key(out, "extra.legal_basis");
    string(out, o.legal_basis.as_str());
    // Harmonization keys the model lacks go last, under their own names.
    let mut restored: Vec<(&str, &serde_json::Value)> = Vec::new();
    for (k, v) in &o.extra {
        if let Some(r) = k.strip_prefix(INTELMQ_PREFIX)
            && is_restorable_key(r)
        {
            restored.push((r, v));
            continue;
        }
        out.extend_from_slice(b"\"extra.");
        if k == "legal_basis" || k.starts_with(ESCAPED) {
            out.extend_from_slice(ESCAPED.as_bytes());
        }
        escaped(out, k);
        out.extend_from_slice(b"\":");
        json_value(out, v);
        out.push(b',');
    }
    let f = &o.feed;
    if let Some(a) = f.accuracy {
        key(out, "feed.accuracy");
        uint(out, u64::from(a));
    }
    opt(out, "feed.code", &f.code);
    opt(out, "feed.documentation", &f.documentation);
    key(out, "feed.name");
    string(out, &f.name);
    opt(out, "feed.provider", &f.provider);
    opt(out, "feed.url", &f.url);
    let m = &o.malware;
    opt(out, "malware.hash.md5", &m.md5);
    opt(out, "malware.hash.sha1", &m.sha1);
    opt(out, "malware.hash.sha256", &m.sha256);
    opt(out, "malware.name", &m.name);
    opt(out, "protocol.application", &o.protocol.application);
    opt(out, "protocol.transport", &o.protocol.transport);
    endpoint(out, "source.", &o.source);
    key(out, "time.observation");
    time(out, o.time_observation);
    if let Some(t) = o.time_source {
        key(out, "time.source");
        time(out, t);
    }
    key(out, "tlp");
    string(out, o.tlp.as_intelmq());
    for (r, v) in restored {
        key(out, r);
        json_value(out, v);
        out.push(b',');
    }
    // Every event has at least `tlp`, so the last byte is a comma.
    if out.last() == Some(&b',') {
        out.pop();
    }
    out.push(b'}');
}

fn endpoint(out: &mut Vec<u8>, side: &str, e: &Endpoint) {
    if e.is_empty() {
        return;
    }
    let k = |out: &mut Vec<u8>, name: &str| {
        out.push(b'"');
        out.extend_from_slice(side.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    if let Some(v) = &e.account {
        k(out, "account");
        string(out, v);
    }
    if let Some(v) = &e.as_name {
        k(out, "as_name");
        string(out, v);
    }
    if let Some(v) = e.asn {
        k(out, "asn");
        uint(out, u64::from(v));
    }
    if let Some(v) = &e.fqdn {
        k(out, "fqdn");
        string(out, v);
    }
    if let Some(v) = &e.geolocation_cc {
        k(out, "geolocation.cc");
        string(out, v);
    }
    if let Some(v) = e.ip {
        k(out, "ip");
        out.push(b'"');
        match v {
            std::net::IpAddr::V4(a) => {
                for (i, o) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    digits(out, u64::from(o));
                }
            }
            std::net::IpAddr::V6(a) => {
                let _ = write!(out, "{a}");
            }
        }
        out.extend_from_slice(b"\",");
    }
    if let Some(v) = e.network {
        k(out, "network");
        let _ = write!(out, "\"{v}\",");
    }
    if let Some(v) = e.port {
        k(out, "port");
        uint(out, u64::from(v));
    }
    if let Some(v) = &e.reverse_dns {
        k(out, "reverse_dns");
        string(out, v);
    }
    if let Some(v) = &e.url {
        k(out, "url");
        string(out, v);
    }
}

/// Decimal digits of `v`.
fn digits(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A JSON number and a trailing comma.
fn uint(out: &mut Vec<u8>, v: u64) {
    digits(out, v);
    out.push(b',');
}

fn key(out: &mut Vec<u8>, k: &str) {
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn opt(out: &mut Vec<u8>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        key(out, k);
        string(out, v);
    }
}

/// A JSON string and a trailing comma.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escaped(out, s);
    out.extend_from_slice(b"\",");
}

fn time(out: &mut Vec<u8>, t: Timestamp) {
    out.push(b'"');
    crate::time::write_rfc3339(t, out);
    out.extend_from_slice(b"\",");
}

fn json_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    if let serde_json::Value::String(s) = v {
        out.push(b'"');
        escaped(out, s);
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, v).is_err() {
        // Not reachable: a Value always serialises into a Vec.
        out.extend_from_slice(b"null");
    }
}

/// The body of a JSON string: `"`, `\` and control characters escaped, the rest as UTF-8.
fn escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    if !b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\') {
        out.extend_from_slice(b);
        return;
    }
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Fallbacks for what an event may lack.
#[derive(Default)]
struct Defaults<'a> {
    time_observation: Option<Timestamp>,
    feed_name: Option<&'a str>,
    legal_basis: Option<LegalBasis>,
    tlp: Option<Tlp>,
}

/// Reads one IntelMQ event JSON object. Requires `time.observation` and `feed.name`; a missing
/// `classification.type` is `undetermined`, a missing `tlp` AMBER, a missing
/// `extra.legal_basis` the default legal basis.
pub fn from_json(bytes: &[u8]) -> Result<Observation, String> {
    decode(bytes, &Defaults::default())
}

fn decode(bytes: &[u8], d: &Defaults<'_>) -> Result<Observation, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let state = de.deserialize_map(EventVisitor).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    let Decoded { mut b, time_observation, feed_name, tlp, legal_basis } = state;
    b.o.time_observation =
        time_observation.or(d.time_observation).ok_or_else(|| "time.observation: missing".to_owned())?;
    if !feed_name {
        match d.feed_name {
            Some(n) => b.o.feed.name = n.to_owned(),
            None => return Err("feed.name: missing".to_owned()),
        }
    }
    b.o.tlp = tlp.or(d.tlp).unwrap_or_default();
    b.o.legal_basis = legal_basis.or(d.legal_basis).unwrap_or_default();
    Ok(b.finish())
}

struct Decoded {
    b: Builder,
    time_observation: Option<Timestamp>,
    feed_name: bool,
    tlp: Option<Tlp>,
    legal_basis: Option<LegalBasis>,
}

/// A JSON object key or string, borrowed from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A scalar value, or null (treated as absent).
struct Sc<'a>(Option<Scalar<'a>>);

impl<'de> Deserialize<'de> for Sc<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sc<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Sc(Some(Scalar::Str(Cow::Borrowed(v)))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Sc(Some(Scalar::Str(Cow::Owned(v.to_owned())))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Sc(Some(Scalar::Str(Cow::Owned(v)))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Sc(Some(Scalar::U64(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Sc(Some(Scalar::I64(v))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Sc(Some(Scalar::F64(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Sc(Some(Scalar::Bool(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Sc(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Sc(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Skips any value.
struct Ignore;

impl<'de> DeserializeSeed<'de> for Ignore {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        de::IgnoredAny::deserialize(d).map(|_| ())
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Decoded;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an IntelMQ event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decoded, A::Error> {
        let mut st = Decoded {
            b: Builder::new(String::new(), Timestamp::from_micros(0)),
            time_observation: None,
            feed_name: false,
            tlp: None,
            legal_basis: None,
        };
        while let Some(Str(k)) = map.next_key::<Str<'de>>()? {
            let k: &str = &k;
            if let Some(f) = Field::from_key(k) {
                let Sc(v) = map.next_value::<Sc<'de>>()?;
                let Some(v) = v else { continue };
                match f {
                    Field::TimeObservation => {
                        let t = match &v {
                            Scalar::Str(s) => crate::time::parse(s),
                            _ => None,
                        };
                        st.time_observation =
                            Some(t.ok_or_else(|| de::Error::custom(format!("time.observation: invalid time {v:?}")))?);
                    }
                    Field::Tlp => {
                        let s = match &v {
                            Scalar::Str(s) => s.as_ref(),
                            _ => "",
                        };
                        st.tlp = Some(s.parse::<Tlp>().map_err(|e| de::Error::custom(format!("tlp: {e}")))?);
                    }
                    _ => {
                        if f == Field::FeedName {
                            st.feed_name = true;
                        }
                        st.b.set(f, v, Mode::Exact).map_err(|e| de::Error::custom(format!("{k}: {e}")))?;
                    }
                }
            } else if let Some(x) = k.strip_prefix("extra.") {
                if x == "legal_basis" {
                    let Sc(v) = map.next_value::<Sc<'de>>()?;
                    let lb = match &v {
                        Some(Scalar::Str(s)) => s.parse::<LegalBasis>().ok(),
                        _ => None,
                    };
                    st.legal_basis =
                        Some(lb.ok_or_else(|| {
                            de::Error::custom(format!("extra.legal_basis: unknown legal basis {v:?}"))
                        })?);
                } else {
                    let v = map.next_value::<serde_json::Value>()?;
                    let x = x.strip_prefix(ESCAPED).unwrap_or(x);
                    st.b.o.extra.insert(x.to_owned(), v);
                }
            } else if k == "extra" {
                match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::Object(m) => st.b.o.extra.extend(m),
                    serde_json::Value::String(s) => match serde_json::from_str::<serde_json::Value>(&s) {
                        Ok(serde_json::Value::Object(m)) => st.b.o.extra.extend(m),
                        _ => return Err(de::Error::custom("extra: not a JSON object")),
                    },
                    serde_json::Value::Null => {}
                    _ => return Err(de::Error::custom("extra: not a JSON object")),
                }
            } else if k == "raw" || k == "__type" {
                map.next_value_seed(Ignore)?;
            } else {
                let v = map.next_value::<serde_json::Value>()?;
                let mut key = String::with_capacity(INTELMQ_PREFIX.len() + k.len());
                key.push_str(INTELMQ_PREFIX);
                key.push_str(k);
                st.b.o.extra.insert(key, v);
            }
        }
        Ok(st)
    }
}

/// IntelMQ event JSON lines as an input format; see the module docs.
pub(crate) fn parse<'a, R: BufRead + 'a>(ctx: &'a Context, input: R) -> JsonLines<'a, R, impl FnMut(&[u8]) -> Outcome> {
    let defaults = Defaults {
        time_observation: Some(ctx.time_observation),
        feed_name: ctx.feed_name.as_deref(),
        legal_basis: Some(ctx.legal_basis),
        tlp: None,
    };
    JsonLines::new(input, ctx, move |line| match decode(line, &defaults) {
        Ok(o) => Outcome::obs(o),
        Err(e) => Outcome::Reject(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings_like_json() {
        let mut out = Vec::new();
        escaped(&mut out, "a\"b\\c\nd\u{1}é\u{7f}");
        assert_eq!(String::from_utf8(out.clone()).unwrap(), r#"a\"b\\c\nd\u0001é"#.to_owned() + "\u{7f}");
        let back: String = serde_json::from_slice(&[b"\"".as_slice(), &out, b"\""].concat()).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é\u{7f}");
    }
}
