//! Indicators: malicious URLs, domains, addresses and file hashes that kizuna publishes
//! (RPZ zones, STIX/TAXII, MISP feeds) and matches against (crawler, imports).
//!
//! An indicator differs from an observation: an observation says "this was seen", an indicator
//! says "treat this as bad, for this reason, until this time". Every indicator carries its
//! reason, expiry, TLP, sharing groups and legal basis (design invariant 5: nothing is blocked
//! without a listed reason, an expiry and an allow-list check).

use crate::{ClassificationType, IpNet, LegalBasis, Timestamp, Tlp};

/// What kind of value an indicator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndicatorKind {
    /// A canonical URL (see [`canonical_url`]).
    Url,
    /// A lower-case domain name without trailing dot.
    Domain,
    /// An IPv4/IPv6 address or network, in CIDR form (`198.51.100.7/32`).
    Ip,
    /// SHA-256 of a file, lower-case hex.
    Sha256,
    /// MD5 of a file, lower-case hex.
    Md5,
    /// SHA-1 of a file, lower-case hex.
    Sha1,
}

impl IndicatorKind {
    /// Every kind.
    pub const ALL: &'static [IndicatorKind] = &[
        IndicatorKind::Url,
        IndicatorKind::Domain,
        IndicatorKind::Ip,
        IndicatorKind::Sha256,
        IndicatorKind::Md5,
        IndicatorKind::Sha1,
    ];

    /// Stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Url => "url",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Ip => "ip",
            IndicatorKind::Sha256 => "sha256",
            IndicatorKind::Md5 => "md5",
            IndicatorKind::Sha1 => "sha1",
        }
    }
}

impl std::str::FromStr for IndicatorKind {
    type Err = crate::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IndicatorKind::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| crate::UnknownValue {
            kind: "indicator kind",
            value: s.to_owned(),
            known: "url, domain, ip, sha256, md5, sha1",
        })
    }
}

impl std::fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a value could not be made into an indicator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} indicator {value:?}: {reason}")]
pub struct InvalidIndicator {
    /// The kind asked for.
    pub kind: IndicatorKind,
    /// The value given.
    pub value: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Brings a value into its canonical form for its kind, so that the same thing always has the
/// same indicator value.
pub fn canonical_value(kind: IndicatorKind, value: &str) -> Result<String, InvalidIndicator> {
    let bad = |reason| InvalidIndicator { kind, value: value.to_owned(), reason };
    let v = value.trim();
    match kind {
        IndicatorKind::Url => canonical_url(v).ok_or_else(|| bad("not an http(s) URL with a host")),
        IndicatorKind::Domain => canonical_domain(v).ok_or_else(|| bad("not a domain name")),
        IndicatorKind::Ip => {
            let net = match v.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => IpNet::from(v.parse::<std::net::IpAddr>().map_err(|_| bad("not an address or CIDR"))?),
            };
            Ok(net.to_string())
        }
        IndicatorKind::Sha256 | IndicatorKind::Md5 | IndicatorKind::Sha1 => {
            let len = match kind {
                IndicatorKind::Sha256 => 64,
                IndicatorKind::Md5 => 32,
                _ => 40,
            };
            if v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(v.to_ascii_lowercase())
            } else {
                Err(bad("wrong length or not hex"))
            }
        }
    }
}

/// Lower-cases a host name, strips one trailing dot, and checks it is made of DNS labels
/// (letters, digits, hyphens, underscores; 1–63 octets each; 253 in all). IDNs must already be
/// in their `xn--` form.
pub fn canonical_domain(s: &str) -> Option<String> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || d.len() > 253 || !d.contains('.') {
        return None;
    }
    let ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    (ok && d.parse::<std::net::IpAddr>().is_err()).then_some(d)
}

/// Canonical URL: scheme and host lower-cased, default port dropped, empty path made `/`,
/// fragment dropped, path and query kept as given (they are case-sensitive).
pub fn canonical_url(s: &str) -> Option<String> {
    let s = s.trim();
    let (scheme, rest) = s.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or("");
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let authority = authority.rsplit('@').next().unwrap_or(authority); // userinfo is never part of the indicator
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') && h.ends_with(']') => {
            if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() { (h, Some(p)) } else { (authority, None) }
        }
        _ => (authority, None),
    };
    let host_l = host.to_ascii_lowercase();
    let host_ok = canonical_domain(&host_l).is_some()
        || host_l.parse::<std::net::Ipv4Addr>().is_ok()
        || (host_l.starts_with('[')
            && host_l.ends_with(']')
            && host_l[1..host_l.len() - 1].parse::<std::net::Ipv6Addr>().is_ok());
    if !host_ok {
        return None;
    }
    let host_l = host_l.trim_end_matches('.').to_owned();
    let port = port
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| !matches!((scheme.as_str(), p), ("http", 80) | ("https", 443)));
    let path = if tail.is_empty() || tail.starts_with('?') { format!("/{tail}") } else { tail.to_owned() };
    Some(match port {
        Some(p) => format!("{scheme}://{host_l}:{p}{path}"),
        None => format!("{scheme}://{host_l}{path}"),
    })
}

/// The host part of a canonical URL.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next();
    }
    Some(authority.split(':').next().unwrap_or(authority))
}

/// A malicious value to act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// What kind of value.
    pub kind: IndicatorKind,
    /// The canonical value ([`canonical_value`]).
    pub value: String,
    /// What it is: malware-distribution, exploit, phishing, c2-server, …
    pub category: ClassificationType,
    /// Who said so: a feed name, a sensor, or `analyst:<name>`.
    pub source: String,
    /// 0–100.
    pub confidence: u8,
    /// First time it was seen.
    pub first_seen: Timestamp,
    /// Last time it was seen.
    pub last_seen: Timestamp,
    /// After this it is no longer published.
    pub expires: Timestamp,
    /// Human-readable reason, shown to analysts and on warning pages.
    pub reason: String,
    /// Malware family, canonical name.
    pub malware: Option<String>,
    /// Who may see it.
    pub tlp: Tlp,
    /// Named sharing groups that may see it (in addition to what TLP allows).
    pub sharing_groups: Vec<String>,
    /// Legal basis of acting on it.
    pub legal_basis: LegalBasis,
}

impl Indicator {
    /// A stable 128-bit key of (kind, value): the same value always has the same key, whatever
    /// its other fields, so repeated sightings update one indicator.
    pub fn key(&self) -> [u8; 16] {
        indicator_key(self.kind, &self.value)
    }
}

/// See [`Indicator::key`].
pub fn indicator_key(kind: IndicatorKind, value: &str) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"kizuna.indicator.v1\0");
    h.update(kind.as_str().as_bytes());
    h.update(b"\0");
    h.update(value.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_canonicalised() {
        for (i, want) in [
            ("HTTP://Example.COM", Some("http://example.com/")),
            ("http://example.com:80/a/B?x=1#frag", Some("http://example.com/a/B?x=1")),
            ("https://example.com:8443/x", Some("https://example.com:8443/x")),
            ("https://user:pw@Bad.Example./dl.exe", Some("https://bad.example/dl.exe")),
            ("http://198.51.100.7/a", Some("http://198.51.100.7/a")),
            ("http://[2001:db8::1]:8080/a", Some("http://[2001:db8::1]:8080/a")),
            ("http://example.com?q", Some("http://example.com/?q")),
            ("ftp://example.com/", None),
            ("http:///nohost", None),
            ("not a url", None),
        ] {
            assert_eq!(canonical_url(i).as_deref(), want, "{i}");
        }
        assert_eq!(url_host("http://[2001:db8::1]:8080/a"), Some("[2001:db8::1]"));
        assert_eq!(url_host("https://bad.example:8443/x"), Some("bad.example"));
    }

    #[test]
    fn values_are_canonicalised_per_kind() {
        assert_eq!(canonical_value(IndicatorKind::Domain, "Bad.Example."), Ok("bad.example".into()));
        assert!(canonical_value(IndicatorKind::Domain, "192.0.2.1").is_err());
        assert!(canonical_value(IndicatorKind::Domain, "-bad.example").is_err());
        assert_eq!(canonical_value(IndicatorKind::Ip, "198.51.100.7"), Ok("198.51.100.7/32".into()));
        assert_eq!(canonical_value(IndicatorKind::Ip, "198.51.100.7/24"), Ok("198.51.100.0/24".into()));
        assert_eq!(canonical_value(IndicatorKind::Ip, "2001:DB8::1"), Ok("2001:db8::1/128".into()));
        assert_eq!(
            canonical_value(IndicatorKind::Md5, "D41D8CD98F00B204E9800998ECF8427E"),
            Ok("d41d8cd98f00b204e9800998ecf8427e".into())
        );
        assert!(canonical_value(IndicatorKind::Sha256, "abc").is_err());
        assert_eq!(
            indicator_key(IndicatorKind::Url, "http://a.example/"),
            indicator_key(IndicatorKind::Url, "http://a.example/")
        );
        assert_ne!(indicator_key(IndicatorKind::Url, "a.example"), indicator_key(IndicatorKind::Domain, "a.example"));
    }
}
