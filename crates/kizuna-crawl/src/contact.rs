//! Finding who to tell: a site's `security.txt` (RFC 9116), else the abuse contact of the
//! network hosting it, from RDAP (RFC 9083) or CSV data the operator loads.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use kizuna_model::Timestamp;

use crate::CrawlError;

/// A parsed `security.txt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityTxt {
    /// `Contact:` values in file order (`mailto:`, `https:`, `tel:` URIs).
    pub contacts: Vec<String>,
    /// `Expires:`.
    pub expires: Option<Timestamp>,
    /// `Preferred-Languages:` (lower case tags).
    pub preferred_languages: Vec<String>,
    /// `Policy:`.
    pub policy: Vec<String>,
    /// `Canonical:`.
    pub canonical: Vec<String>,
    /// `Encryption:`.
    pub encryption: Vec<String>,
    /// The file was an OpenPGP cleartext-signed message (the signature is not checked).
    pub signed: bool,
}

impl SecurityTxt {
    /// Parses the text. Unknown fields and comments are ignored; a signed file's armour is
    /// stripped and dash-escaping undone.
    pub fn parse(text: &str) -> SecurityTxt {
        let mut s = SecurityTxt::default();
        let mut body: Vec<&str> = Vec::new();
        let mut lines = text.lines().peekable();
        if text.trim_start().starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
            s.signed = true;
            // Skip the armour header lines up to the blank line.
            for l in lines.by_ref() {
                if l.trim().is_empty() {
                    break;
                }
            }
        }
        for l in lines {
            if s.signed && l.starts_with("-----BEGIN PGP SIGNATURE-----") {
                break;
            }
            body.push(if s.signed { l.strip_prefix("- ").unwrap_or(l) } else { l });
        }
        for l in body {
            let l = l.trim();
            if l.starts_with('#') || l.is_empty() {
                continue;
            }
            let Some((k, v)) = l.split_once(':') else { continue };
            let v = v.trim().to_owned();
            if v.is_empty() {
                continue;
            }
            match k.trim().to_ascii_lowercase().as_str() {
                "contact" => s.contacts.push(v),
                "expires" => s.expires = s.expires.or_else(|| Timestamp::parse(&v)),
                "preferred-languages" => {
                    s.preferred_languages =
                        v.split(',').map(|x| x.trim().to_ascii_lowercase()).filter(|x| !x.is_empty()).collect()
                }
                "policy" => s.policy.push(v),
                "canonical" => s.canonical.push(v),
                "encryption" => s.encryption.push(v),
                _ => {}
            }
        }
        s
    }

    /// The e-mail addresses among the contacts, in order.
    pub fn emails(&self) -> Vec<String> {
        self.contacts
            .iter()
            .filter_map(|c| {
                let lc = c.to_ascii_lowercase();
                let addr = if lc.starts_with("mailto:") {
                    &c[7..]
                } else if !c.contains(':') && c.contains('@') {
                    c
                } else {
                    return None;
                };
                let addr = addr.split('?').next().unwrap_or("").trim();
                valid_email(addr).then(|| addr.to_owned())
            })
            .collect()
    }

    /// Whether the file has expired at `now` (RFC 9116: expired files should not be used).
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|e| e < now)
    }

    /// Whether the owner prefers Japanese.
    pub fn prefers_japanese(&self) -> bool {
        self.preferred_languages.first().is_some_and(|l| l == "ja" || l.starts_with("ja-"))
    }
}

/// A plausible `local@domain` address.
pub fn valid_email(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !a.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',' || c == ';')
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Abuse contacts of networks: the most specific prefix wins.
#[derive(Debug, Default, Clone)]
pub struct AbuseTable {
    entries: Vec<(IpNet, String, String)>,
}

impl AbuseTable {
    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Loads a file: JSON (one RDAP ip network object, an array of them, or JSON lines) or CSV
    /// (`prefix,email[,name]`, `#` comments).
    pub fn load_file(&mut self, path: &Path) -> Result<(), CrawlError> {
        let text = std::fs::read_to_string(path).map_err(|e| CrawlError::io(path, e))?;
        let origin = path.display().to_string();
        if text.trim_start().starts_with(['{', '[']) {
            self.add_rdap_text(&text, &origin)
        } else {
            self.add_csv(&text, &origin)
        }
    }

    /// CSV `prefix,email[,name]`.
    pub fn add_csv(&mut self, text: &str, origin: &str) -> Result<(), CrawlError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.to_ascii_lowercase().starts_with("prefix,") {
                continue;
            }
            let mut f = line.split(',').map(str::trim);
            let (p, e) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
            let net = p
                .parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| CrawlError::Contacts(format!("{origin}:{}: not a prefix: {p:?}", i + 1)))?;
            if !valid_email(e) {
                return Err(CrawlError::Contacts(format!("{origin}:{}: not an e-mail address: {e:?}", i + 1)));
            }
            self.entries.push((net.trunc(), e.to_owned(), origin.to_owned()));
        }
        Ok(())
    }

    /// RDAP JSON text: an object, an array, `{"results"|"ipSearchResults": [...]}` or JSON lines.
    pub fn add_rdap_text(&mut self, text: &str, origin: &str) -> Result<(), CrawlError> {
        let values: Vec<serde_json::Value> = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(a)) => a,
            Ok(serde_json::Value::Object(mut o)) => match o.remove("ipSearchResults").or_else(|| o.remove("results")) {
                Some(serde_json::Value::Array(a)) => a,
                _ => vec![serde_json::Value::Object(o)],
            },
            Ok(_) => return Err(CrawlError::Contacts(format!("{origin}: not an RDAP object or array"))),
            Err(_) => {
                let mut v = Vec::new();
                for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    v.push(
                        serde_json::from_str(l)
                            .map_err(|e| CrawlError::Contacts(format!("{origin}:{}: bad JSON: {e}", i + 1)))?,
                    );
                }
                v
            }
        };
        for (i, v) in values.iter().enumerate() {
            self.add_rdap(v).map_err(|e| CrawlError::Contacts(format!("{origin}: object {}: {e}", i + 1)))?;
        }
        Ok(())
    }

    /// One RDAP `ip network` object: its prefixes (`cidr0_cidrs`, else start/end address) and the
    /// e-mail of the first entity with role `abuse` (searched in nested entities too).
    pub fn add_rdap(&mut self, v: &serde_json::Value) -> Result<(), String> {
        if let Some(c) = v.get("objectClassName").and_then(|c| c.as_str())
            && c != "ip network"
        {
            return Err(format!("objectClassName {c:?}, want \"ip network\""));
        }
        let Some(email) = abuse_email(v.get("entities")) else { return Ok(()) };
        let name = v.get("handle").and_then(|h| h.as_str()).unwrap_or("rdap").to_owned();
        let mut nets = Vec::new();
        if let Some(cs) = v.get("cidr0_cidrs").and_then(|c| c.as_array()) {
            for c in cs {
                let prefix = c.get("v4prefix").or_else(|| c.get("v6prefix")).and_then(|p| p.as_str());
                let len = c.get("length").and_then(|l| l.as_u64());
                if let (Some(p), Some(l)) = (prefix, len) {
                    nets.push(format!("{p}/{l}").parse::<IpNet>().map_err(|e| format!("cidr0_cidrs {p}/{l}: {e}"))?);
                }
            }
        }
        if nets.is_empty() {
            let start = v.get("startAddress").and_then(|s| s.as_str()).ok_or("no startAddress")?;
            let end = v.get("endAddress").and_then(|s| s.as_str()).ok_or("no endAddress")?;
            let s: IpAddr = start.parse().map_err(|_| format!("startAddress {start:?}"))?;
            let e: IpAddr = end.parse().map_err(|_| format!("endAddress {end:?}"))?;
            nets = range_to_nets(s, e).ok_or_else(|| format!("bad range {start} - {end}"))?;
        }
        for n in nets {
            self.entries.push((n.trunc(), email.clone(), name.clone()));
        }
        Ok(())
    }

    /// The abuse address for an IP (most specific prefix) and the record it came from.
    pub fn lookup(&self, ip: IpAddr) -> Option<(&str, &str)> {
        self.entries
            .iter()
            .filter(|(n, _, _)| n.contains(&ip))
            .max_by_key(|(n, _, _)| n.prefix_len())
            .map(|(_, e, o)| (e.as_str(), o.as_str()))
    }
}

fn abuse_email(entities: Option<&serde_json::Value>) -> Option<String> {
    let list = entities?.as_array()?;
    for e in list {
        let abuse =
            e.get("roles").and_then(|r| r.as_array()).is_some_and(|r| r.iter().any(|x| x.as_str() == Some("abuse")));
        if abuse && let Some(m) = vcard_email(e.get("vcardArray")) {
            return Some(m);
        }
    }
    list.iter().find_map(|e| abuse_email(e.get("entities")))
}

/// `["vcard", [["email", {}, "text", "abuse@…"], …]]`.
fn vcard_email(v: Option<&serde_json::Value>) -> Option<String> {
    let props = v?.as_array()?.get(1)?.as_array()?;
    props.iter().find_map(|p| {
        let p = p.as_array()?;
        (p.first()?.as_str()? == "email").then(|| p.get(3)?.as_str().map(str::to_owned)).flatten()
    })
}

fn range_to_nets(s: IpAddr, e: IpAddr) -> Option<Vec<IpNet>> {
    match (s, e) {
        (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => Some(ipnet::Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect()),
        (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => Some(ipnet::Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_txt_plain_and_signed() {
        let t = "# comment\nContact: mailto:security@blog.example.jp\nContact: https://blog.example.jp/report\n\
                 Expires: 2030-01-01T00:00:00Z\nPreferred-Languages: ja, en\nPolicy: https://x/p\n";
        let s = SecurityTxt::parse(t);
        assert_eq!(s.emails(), vec!["security@blog.example.jp".to_owned()]);
        assert!(s.prefers_japanese());
        assert!(!s.expired(Timestamp::now()));
        let signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nContact: mailto:sec@a.example\n\
                      - -----not a field\nExpires: 2001-01-01T00:00:00.000Z\n-----BEGIN PGP SIGNATURE-----\n\
                      Contact: mailto:attacker@evil.example\n-----END PGP SIGNATURE-----\n";
        let s = SecurityTxt::parse(signed);
        assert!(s.signed);
        assert_eq!(s.emails(), vec!["sec@a.example".to_owned()]);
        assert!(s.expired(Timestamp::now()));
    }

    #[test]
    fn rdap_shapes() {
        let rdap = r#"{"objectClassName":"ip network","handle":"NET-198-51-100-0-1","startAddress":"198.51.100.0",
          "endAddress":"198.51.100.255","ipVersion":"v4",
          "entities":[{"objectClassName":"entity","handle":"ORG-1","roles":["registrant"],
             "entities":[{"objectClassName":"entity","handle":"ABUSE-1","roles":["abuse"],
               "vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text","Abuse"],
               ["email",{},"text","abuse@hoster.example"]]]}]}]}"#;
        let mut t = AbuseTable::default();
        t.add_rdap_text(rdap, "x.json").expect("rdap");
        t.add_csv("prefix,email\n198.51.100.128/25,noc@reseller.example\n", "c.csv").expect("csv");
        assert_eq!(t.lookup("198.51.100.7".parse().expect("ip")).map(|x| x.0), Some("abuse@hoster.example"));
        assert_eq!(t.lookup("198.51.100.200".parse().expect("ip")).map(|x| x.0), Some("noc@reseller.example"));
        assert_eq!(t.lookup("203.0.113.1".parse().expect("ip")), None);
        assert!(t.add_csv("nonsense,abuse@x.example\n", "b.csv").is_err());
    }
}
