//! IntelMQ harmonization keys the model covers, and setting them from text or JSON scalars.
//!
//! Shared by every format: the Shadowserver and generic CSV parsers set fields by IntelMQ key
//! from CSV text, the IntelMQ reader sets them from JSON values.

use std::borrow::Cow;
use std::net::IpAddr;

use kizuna_model::{ClassificationType, Endpoint, IpNet, Observation, Taxonomy, Timestamp, Tlp};

/// The prefix under which [`Observation::extra`] keeps IntelMQ harmonization keys the model has
/// no field for (`source.geolocation.city` is kept as `extra["intelmq.source.geolocation.city"]`).
pub const INTELMQ_PREFIX: &str = "intelmq.";

/// `source` or `destination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Source,
    Destination,
}

/// A field of [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ep {
    Account,
    AsName,
    Asn,
    Fqdn,
    GeolocationCc,
    Ip,
    Network,
    Port,
    ReverseDns,
    Url,
}

/// A harmonization key the model has a field for (every entry of `FIELD_NAMES` but `extra`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Ep(Side, Ep),
    ClassIdentifier,
    ClassTaxonomy,
    ClassType,
    EventDescription,
    FeedAccuracy,
    FeedCode,
    FeedDocumentation,
    FeedName,
    FeedProvider,
    FeedUrl,
    MalwareMd5,
    MalwareSha1,
    MalwareSha256,
    MalwareName,
    ProtoApplication,
    ProtoTransport,
    TimeObservation,
    TimeSource,
    Tlp,
}

impl Field {
    /// The field for an IntelMQ key, if the model has one.
    pub(crate) fn from_key(k: &str) -> Option<Field> {
        if let Some(r) = k.strip_prefix("source.") {
            return ep_from(r).map(|e| Field::Ep(Side::Source, e));
        }
        if let Some(r) = k.strip_prefix("destination.") {
            return ep_from(r).map(|e| Field::Ep(Side::Destination, e));
        }
        Some(match k {
            "classification.identifier" => Field::ClassIdentifier,
            "classification.taxonomy" => Field::ClassTaxonomy,
            "classification.type" => Field::ClassType,
            "event_description.text" => Field::EventDescription,
            "feed.accuracy" => Field::FeedAccuracy,
            "feed.code" => Field::FeedCode,
            "feed.documentation" => Field::FeedDocumentation,
            "feed.name" => Field::FeedName,
            "feed.provider" => Field::FeedProvider,
            "feed.url" => Field::FeedUrl,
            "malware.hash.md5" => Field::MalwareMd5,
            "malware.hash.sha1" => Field::MalwareSha1,
            "malware.hash.sha256" => Field::MalwareSha256,
            "malware.name" => Field::MalwareName,
            "protocol.application" => Field::ProtoApplication,
            "protocol.transport" => Field::ProtoTransport,
            "time.observation" => Field::TimeObservation,
            "time.source" => Field::TimeSource,
            "tlp" => Field::Tlp,
            _ => return None,
        })
    }
}

fn ep_from(r: &str) -> Option<Ep> {
    Some(match r {
        "account" => Ep::Account,
        "as_name" => Ep::AsName,
        "asn" => Ep::Asn,
        "fqdn" => Ep::Fqdn,
        "geolocation.cc" => Ep::GeolocationCc,
        "ip" => Ep::Ip,
        "network" => Ep::Network,
        "port" => Ep::Port,
        "reverse_dns" => Ep::ReverseDns,
        "url" => Ep::Url,
        _ => return None,
    })
}

/// IntelMQ 3 event harmonization keys the model has no field for (kept in `extra` as
/// `intelmq.<key>`).
pub(crate) const INTELMQ_OTHER_KEYS: &[&str] = &[
    "comment",
    "destination.abuse_contact",
    "destination.allocated",
    "destination.domain_suffix",
    "destination.geolocation.city",
    "destination.geolocation.country",
    "destination.geolocation.latitude",
    "destination.geolocation.longitude",
    "destination.geolocation.region",
    "destination.geolocation.state",
    "destination.local_hostname",
    "destination.local_ip",
    "destination.registry",
    "destination.tor_node",
    "destination.urlpath",
    "event_description.target",
    "event_description.url",
    "event_hash",
    "malware.version",
    "misp.attribute_uuid",
    "misp.event_uuid",
    "output",
    "product.full_name",
    "product.name",
    "product.vendor",
    "product.version",
    "product.vulnerabilities",
    "rtir_id",
    "screenshot_url",
    "severity",
    "source.abuse_contact",
    "source.allocated",
    "source.domain_suffix",
    "source.geolocation.city",
    "source.geolocation.country",
    "source.geolocation.cymru_cc",
    "source.geolocation.geoip_cc",
    "source.geolocation.latitude",
    "source.geolocation.longitude",
    "source.geolocation.region",
    "source.geolocation.state",
    "source.local_hostname",
    "source.local_ip",
    "source.registry",
    "source.tor_node",
    "source.urlpath",
    "status",
];

/// True when `k` is an IntelMQ-style key (`^[a-z_][a-z_0-9]+(\.[a-z_0-9]+)*$`) that the
/// IntelMQ writer may emit at top level for `extra["intelmq.<k>"]`, i.e. one the reader would
/// not take for something else.
pub(crate) fn is_restorable_key(k: &str) -> bool {
    if !is_harmonization_key(k) {
        return false;
    }
    !(k == "extra"
        || k.starts_with("extra.")
        || k == "raw"
        || k == "__type"
        || k == "legal_basis"
        || Field::from_key(k).is_some())
}

/// IntelMQ's key syntax: `^[a-z_][a-z_0-9]+(\.[a-z_0-9]+)*$`.
pub(crate) fn is_harmonization_key(k: &str) -> bool {
    let b = k.as_bytes();
    let word = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
    if b.len() < 2 || !(b[0].is_ascii_lowercase() || b[0] == b'_') || !word(b[1]) {
        return false;
    }
    let mut prev_dot = false;
    for &c in &b[2..] {
        if c == b'.' {
            if prev_dot {
                return false;
            }
            prev_dot = true;
        } else if word(c) {
            prev_dot = false;
        } else {
            return false;
        }
    }
    !prev_dot
}

/// A value to set: text from CSV, or a JSON scalar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
}

impl Scalar<'_> {
    fn into_string(self) -> String {
        match self {
            Scalar::Str(s) => s.into_owned(),
            Scalar::U64(n) => n.to_string(),
            Scalar::I64(n) => n.to_string(),
            Scalar::F64(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }

    /// An integer in range, from a number or decimal text.
    fn int<T: TryFrom<i128>>(&self, what: &str) -> Result<T, String> {
        let v: i128 = match self {
            Scalar::U64(n) => i128::from(*n),
            Scalar::I64(n) => i128::from(*n),
            Scalar::F64(f) if f.fract() == 0.0 && f.abs() < 1e20 => *f as i128,
            Scalar::Str(s) => {
                let t = s.trim();
                t.strip_prefix('+').unwrap_or(t).parse::<i128>().map_err(|_| format!("invalid {what} {s:?}"))?
            }
            other => return Err(format!("invalid {what} {other:?}")),
        };
        T::try_from(v).map_err(|_| format!("{what} {v} out of range"))
    }
}

/// How text is taken: exactly (the IntelMQ reader, so that a round trip is lossless) or
/// normalised as IntelMQ's harmonization does on input (host names and hashes lower-cased,
/// country codes upper-cased, trailing dots removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Exact,
    Normalize,
}

/// An observation under construction: remembers whether the taxonomy was given explicitly, so
/// that it can otherwise follow the type.
pub(crate) struct Builder {
    pub(crate) o: Observation,
    pub(crate) taxonomy: Option<Taxonomy>,
}

impl Builder {
    pub(crate) fn new(feed_name: impl Into<String>, time_observation: Timestamp) -> Self {
        Builder {
            o: Observation::new(
                feed_name,
                kizuna_model::Classification::new(ClassificationType::Undetermined),
                time_observation,
            ),
            taxonomy: None,
        }
    }

    pub(crate) fn finish(mut self) -> Observation {
        self.o.classification.taxonomy = self.taxonomy.unwrap_or(self.o.classification.kind.taxonomy());
        self.o
    }

    /// Sets one field; the error names the problem with the value, not the field.
    pub(crate) fn set(&mut self, f: Field, v: Scalar<'_>, mode: Mode) -> Result<(), String> {
        let o = &mut self.o;
        let norm = mode == Mode::Normalize;
        match f {
            Field::Ep(side, ep) => {
                let e: &mut Endpoint = match side {
                    Side::Source => &mut o.source,
                    Side::Destination => &mut o.destination,
                };
                set_ep(e, ep, v, norm)?;
            }
            Field::ClassIdentifier => o.classification.identifier = Some(v.into_string()),
            Field::ClassTaxonomy => {
                let s = v.into_string();
                let t = if norm { s.trim().to_ascii_lowercase() } else { s };
                self.taxonomy = Some(t.parse::<Taxonomy>().map_err(|e| e.to_string())?);
            }
            Field::ClassType => {
                let s = v.into_string();
                let t = if norm { s.trim().to_ascii_lowercase() } else { s };
                o.classification.kind = t.parse::<ClassificationType>().map_err(|e| e.to_string())?;
            }
            Field::EventDescription => o.event_description = Some(v.into_string()),
            Field::FeedAccuracy => {
                o.feed.accuracy = Some(match v {
                    Scalar::F64(f) if (0.0..=255.0).contains(&f) => f.round() as u8,
                    Scalar::Str(ref s) if s.contains('.') => {
                        let f: f64 = s.trim().parse().map_err(|_| format!("invalid accuracy {s:?}"))?;
                        if !(0.0..=255.0).contains(&f) {
                            return Err(format!("accuracy {f} out of range"));
                        }
                        f.round() as u8
                    }
                    other => other.int::<u8>("accuracy")?,
                })
            }
            Field::FeedCode => o.feed.code = Some(v.into_string()),
            Field::FeedDocumentation => o.feed.documentation = Some(v.into_string()),
            Field::FeedName => o.feed.name = v.into_string(),
            Field::FeedProvider => o.feed.provider = Some(v.into_string()),
            Field::FeedUrl => o.feed.url = Some(v.into_string()),
            Field::MalwareMd5 => o.malware.md5 = Some(hash(v, norm)),
            Field::MalwareSha1 => o.malware.sha1 = Some(hash(v, norm)),
            Field::MalwareSha256 => o.malware.sha256 = Some(hash(v, norm)),
            Field::MalwareName => o.malware.name = Some(lower(v, norm)),
            Field::ProtoApplication => o.protocol.application = Some(lower(v, norm)),
            Field::ProtoTransport => o.protocol.transport = Some(lower(v, norm)),
            Field::TimeObservation => o.time_observation = time(v)?,
            Field::TimeSource => o.time_source = Some(time(v)?),
            Field::Tlp => o.tlp = v.into_string().parse::<Tlp>().map_err(|e| e.to_string())?,
        }
        Ok(())
    }
}

fn lower(v: Scalar<'_>, norm: bool) -> String {
    let s = v.into_string();
    if norm { s.trim().to_lowercase() } else { s }
}

fn hash(v: Scalar<'_>, norm: bool) -> String {
    let s = v.into_string();
    if norm { s.trim().to_ascii_lowercase() } else { s }
}

fn time(v: Scalar<'_>) -> Result<Timestamp, String> {
    match v {
        Scalar::Str(s) => crate::time::parse(&s).ok_or_else(|| format!("invalid time {s:?}")),
        other => Err(format!("invalid time {other:?} (expected text)")),
    }
}

fn set_ep(e: &mut Endpoint, ep: Ep, v: Scalar<'_>, norm: bool) -> Result<(), String> {
    match ep {
        Ep::Account => e.account = Some(v.into_string()),
        Ep::AsName => e.as_name = Some(v.into_string()),
        Ep::Asn => {
            e.asn = Some(match v {
                Scalar::Str(ref s) if norm => {
                    let t = s.trim();
                    let t = t.strip_prefix("AS").or_else(|| t.strip_prefix("as")).unwrap_or(t);
                    Scalar::Str(Cow::Borrowed(t)).int::<u32>("ASN")?
                }
                other => other.int::<u32>("ASN")?,
            })
        }
        Ep::Fqdn => e.fqdn = Some(if norm { normalize_host(&v.into_string())? } else { v.into_string() }),
        Ep::ReverseDns => e.reverse_dns = Some(if norm { normalize_host(&v.into_string())? } else { v.into_string() }),
        Ep::GeolocationCc => {
            let s = v.into_string();
            e.geolocation_cc = Some(if norm {
                let t = s.trim().to_ascii_uppercase();
                if t.len() != 2 || !t.bytes().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!("invalid country code {s:?}"));
                }
                t
            } else {
                s
            });
        }
        Ep::Ip => e.ip = Some(ip(&v)?),
        Ep::Network => {
            e.network = Some(match &v {
                Scalar::Str(s) => {
                    let t = s.trim();
                    match t.parse::<IpNet>() {
                        Ok(n) if norm => n.trunc(),
                        Ok(n) => n,
                        Err(_) if norm => IpNet::from(ip(&v)?),
                        Err(_) => return Err(format!("invalid network {s:?}")),
                    }
                }
                other => return Err(format!("invalid network {other:?}")),
            })
        }
        Ep::Port => e.port = Some(v.int::<u16>("port")?),
        Ep::Url => e.url = Some(if norm { normalize_url(&v.into_string())? } else { v.into_string() }),
    }
    Ok(())
}

fn ip(v: &Scalar<'_>) -> Result<IpAddr, String> {
    match v {
        Scalar::Str(s) => s.trim().parse::<IpAddr>().map_err(|_| format!("invalid IP address {s:?}")),
        other => Err(format!("invalid IP address {other:?}")),
    }
}

/// A URL as IntelMQ's URL type takes it: `scheme://host…`, trimmed.
pub(crate) fn normalize_url(s: &str) -> Result<String, String> {
    let t = s.trim();
    let ok = match t.find("://") {
        Some(i) => {
            let scheme = &t[..i];
            let rest = &t[i + 3..];
            !scheme.is_empty()
                && scheme.bytes().all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
                && !rest.is_empty()
                && !rest.starts_with(['/', '?', '#'])
                && !t.contains(char::is_whitespace)
        }
        None => false,
    };
    if ok { Ok(t.to_owned()) } else { Err(format!("invalid URL {s:?}")) }
}

/// A host name as IntelMQ's FQDN type takes it: trimmed, without a trailing dot, lower case,
/// not an IP address, no whitespace or URL punctuation.
pub(crate) fn normalize_host(s: &str) -> Result<String, String> {
    let t = s.trim();
    let t = t.strip_suffix('.').unwrap_or(t);
    let bad_byte = |c: u8| c <= b' ' || c == 0x7f || b"/:@?#\\\"'<>[]{}|,;=".contains(&c);
    let bad = t.is_empty()
        || t.len() > 253
        || t.bytes().any(bad_byte)
        || t.split('.').any(|l| l.is_empty() || l.len() > 63)
        || (!t.is_ascii() && t.chars().any(|c| c.is_whitespace() || c.is_control()))
        || (t.bytes().all(|c| c.is_ascii_digit() || c == b'.') && t.parse::<IpAddr>().is_ok());
    if bad {
        return Err(format!("invalid host name {s:?}"));
    }
    Ok(if t.is_ascii() { t.to_ascii_lowercase() } else { t.to_lowercase() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_key_is_a_field() {
        for k in kizuna_model::FIELD_NAMES {
            if *k != "extra" {
                assert!(Field::from_key(k).is_some(), "{k}");
                assert!(!is_restorable_key(k), "{k}");
            }
        }
        assert!(Field::from_key("source.geolocation.city").is_none());
    }

    #[test]
    fn key_syntax() {
        assert!(is_harmonization_key("source.geolocation.city"));
        assert!(is_harmonization_key("__type"));
        assert!(!is_harmonization_key("Source.ip"));
        assert!(!is_harmonization_key("a"));
        assert!(!is_harmonization_key("a..b"));
        assert!(!is_harmonization_key("ab."));
        assert!(is_restorable_key("source.registry"));
        assert!(!is_restorable_key("extra.foo"));
        assert!(!is_restorable_key("raw"));
    }

    #[test]
    fn normalises_hosts() {
        assert_eq!(normalize_host("WWW.Example.COM.").as_deref(), Ok("www.example.com"));
        assert!(normalize_host("192.0.2.1").is_err());
        assert!(normalize_host("a b").is_err());
        assert!(normalize_host("example.com:80").is_err());
    }
}
