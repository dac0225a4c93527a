//! The conversion functions Shadowserver's schema names, with IntelMQ's semantics
//! (`intelmq/bots/parsers/shadowserver/_config.py`).

use std::borrow::Cow;
use std::net::IpAddr;

use kizuna_model::{IpNet, Timestamp};

use crate::field::Scalar;

/// A conversion function named in the schema (third element of a field mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conversion {
    /// No function: the text as it is (empty text is no value).
    Identity,
    /// `add_UTC_to_timestamp`: a time without offset, in UTC.
    AddUtcToTimestamp,
    /// `convert_bool`: y/yes/true/enabled/1 and n/no/false/disabled/0, else no value.
    ConvertBool,
    /// `validate_to_none`: empty, `0` and `unknown` are no value.
    ValidateToNone,
    /// `convert_int`.
    ConvertInt,
    /// `convert_float`.
    ConvertFloat,
    /// `convert_http_host_and_url`: host (`cc_dns` or `http_host`) and path (`url` or
    /// `http_url`) joined into a URL with the row's `application` (http or https) as scheme.
    ConvertHttpHostAndUrl,
    /// `invalidate_zero`: an integer, 0 is no value.
    InvalidateZero,
    /// `set_tor_node`: any text is `true`.
    SetTorNode,
    /// `validate_ip`: an address; `0.0.0.0` and networks are no value.
    ValidateIp,
    /// `validate_network`: a CIDR network.
    ValidateNetwork,
    /// `validate_fqdn`: a host name, else no value.
    ValidateFqdn,
    /// `convert_date`: any common date format, to RFC 3339.
    ConvertDate,
    /// `convert_date_utc`: a date without offset, in UTC, to RFC 3339.
    ConvertDateUtc,
    /// `force_base64`: base64 text stays, other text is encoded.
    ForceBase64,
    /// `scan_exchange_taxonomy`.
    ScanExchangeTaxonomy,
    /// `scan_exchange_type`.
    ScanExchangeType,
    /// `scan_exchange_identifier`.
    ScanExchangeIdentifier,
    /// `extract_cve_from_tag`: the `cve-…` tags, sorted, `;`-separated.
    ExtractCveFromTag,
    /// `category_or_detail`: the value, else the row's `detail`.
    CategoryOrDetail,
    /// A function this version does not know: treated as [`Conversion::Identity`].
    Unknown(String),
}

impl Conversion {
    pub(crate) fn from_name(n: &str) -> Conversion {
        match n {
            "add_UTC_to_timestamp" => Conversion::AddUtcToTimestamp,
            "convert_bool" => Conversion::ConvertBool,
            "validate_to_none" => Conversion::ValidateToNone,
            "convert_int" => Conversion::ConvertInt,
            "convert_float" => Conversion::ConvertFloat,
            "convert_http_host_and_url" => Conversion::ConvertHttpHostAndUrl,
            "invalidate_zero" => Conversion::InvalidateZero,
            "set_tor_node" => Conversion::SetTorNode,
            "validate_ip" => Conversion::ValidateIp,
            "validate_network" => Conversion::ValidateNetwork,
            "validate_fqdn" => Conversion::ValidateFqdn,
            "convert_date" => Conversion::ConvertDate,
            "convert_date_utc" => Conversion::ConvertDateUtc,
            "force_base64" => Conversion::ForceBase64,
            "scan_exchange_taxonomy" => Conversion::ScanExchangeTaxonomy,
            "scan_exchange_type" => Conversion::ScanExchangeType,
            "scan_exchange_identifier" => Conversion::ScanExchangeIdentifier,
            "extract_cve_from_tag" => Conversion::ExtractCveFromTag,
            "category_or_detail" => Conversion::CategoryOrDetail,
            other => Conversion::Unknown(other.to_owned()),
        }
    }
}

/// The other columns some conversions look at.
#[derive(Default)]
pub(crate) struct RowCtx<'r> {
    pub(crate) host: Option<&'r str>,
    pub(crate) path: Option<&'r str>,
    pub(crate) application: Option<&'r str>,
    pub(crate) detail: Option<&'r str>,
}

fn some(v: &str) -> Option<Scalar<'_>> {
    if v.is_empty() { None } else { Some(Scalar::Str(Cow::Borrowed(v))) }
}

fn int(v: &str) -> Result<i64, String> {
    let t = v.trim();
    t.strip_prefix('+').unwrap_or(t).parse::<i64>().map_err(|_| format!("invalid integer {v:?}"))
}

/// Applies a conversion. `Ok(None)`: no value. `strict`: an invalid address is an error
/// rather than no value (for required fields).
pub(crate) fn convert<'r>(
    c: &Conversion,
    v: &'r str,
    row: &RowCtx<'r>,
    strict: bool,
) -> Result<Option<Scalar<'r>>, String> {
    Ok(match c {
        Conversion::Identity | Conversion::Unknown(_) | Conversion::AddUtcToTimestamp => some(v),
        Conversion::ValidateToNone => {
            if v == "0" || v == "unknown" {
                None
            } else {
                some(v)
            }
        }
        Conversion::ConvertBool => match v.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "enabled" | "1" => Some(Scalar::Bool(true)),
            "n" | "no" | "false" | "disabled" | "0" => Some(Scalar::Bool(false)),
            _ => None,
        },
        Conversion::ConvertInt => {
            if v.is_empty() {
                None
            } else {
                Some(Scalar::I64(int(v)?))
            }
        }
        Conversion::InvalidateZero => {
            if v.is_empty() {
                None
            } else {
                match int(v)? {
                    0 => None,
                    n => Some(Scalar::I64(n)),
                }
            }
        }
        Conversion::ConvertFloat => {
            if v.is_empty() {
                None
            } else {
                match v.trim().parse::<f64>() {
                    Ok(f) if f.is_finite() => Some(Scalar::F64(f)),
                    _ => return Err(format!("invalid number {v:?}")),
                }
            }
        }
        Conversion::ConvertHttpHostAndUrl => {
            let host = row.host.unwrap_or("");
            let path = row.path.unwrap_or("");
            if !host.is_empty() && !path.is_empty() {
                let p = &path[path.find('/').unwrap_or(path.len())..];
                let p = &p[..p.find(char::is_whitespace).unwrap_or(p.len())];
                let scheme = row.application.filter(|a| *a == "http" || *a == "https").unwrap_or("http");
                Some(Scalar::Str(Cow::Owned(format!("{scheme}://{host}{p}"))))
            } else {
                some(v)
            }
        }
        Conversion::SetTorNode => {
            if v.is_empty() {
                None
            } else {
                Some(Scalar::Bool(true))
            }
        }
        Conversion::ValidateIp => {
            let t = v.trim();
            if t.is_empty() || t == "0.0.0.0" || t.contains('/') {
                None
            } else {
                match t.parse::<IpAddr>() {
                    Ok(_) => Some(Scalar::Str(Cow::Borrowed(t))),
                    Err(_) if strict => return Err(format!("invalid IP address {v:?}")),
                    Err(_) => None,
                }
            }
        }
        Conversion::ValidateNetwork => {
            let t = v.trim();
            match t.parse::<IpNet>() {
                Ok(n) if t.contains('/') => Some(Scalar::Str(Cow::Owned(n.trunc().to_string()))),
                _ => None,
            }
        }
        Conversion::ValidateFqdn => {
            if v.is_empty() {
                None
            } else {
                crate::field::normalize_host(v).ok().map(|h| Scalar::Str(Cow::Owned(h)))
            }
        }
        Conversion::ConvertDate => {
            if v.is_empty() {
                None
            } else {
                let t = crate::time::parse(v)
                    .or_else(|| chrono::DateTime::parse_from_rfc2822(v.trim()).ok().map(Timestamp::from))
                    .ok_or_else(|| format!("invalid date {v:?}"))?;
                Some(Scalar::Str(Cow::Owned(crate::time::rfc3339(t))))
            }
        }
        Conversion::ConvertDateUtc => {
            if v.is_empty() {
                None
            } else {
                let t = crate::time::parse(v).ok_or_else(|| format!("invalid date {v:?}"))?;
                Some(Scalar::Str(Cow::Owned(crate::time::rfc3339(t))))
            }
        }
        Conversion::ForceBase64 => {
            if v.is_empty() {
                None
            } else if is_base64(v) {
                some(v)
            } else {
                Some(Scalar::Str(Cow::Owned(base64(v.as_bytes()))))
            }
        }
        Conversion::ScanExchangeTaxonomy => {
            Some(Scalar::Str(Cow::Borrowed(if v == "exchange;webshell" { "intrusions" } else { "vulnerable" })))
        }
        Conversion::ScanExchangeType => Some(Scalar::Str(Cow::Borrowed(if v == "exchange;webshell" {
            "system-compromise"
        } else {
            "infected-system"
        }))),
        Conversion::ScanExchangeIdentifier => Some(Scalar::Str(Cow::Borrowed(if v == "exchange;webshell" {
            "exchange-server-webshell"
        } else {
            "vulnerable-exchange-server"
        }))),
        Conversion::ExtractCveFromTag => {
            let mut cves: Vec<String> = v
                .split(';')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| {
                    let mut p = t.splitn(3, '-');
                    p.next() == Some("cve")
                        && p.next().is_some_and(|y| !y.is_empty() && y.bytes().all(|c| c.is_ascii_digit()))
                        && p.next().is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
                })
                .collect();
            cves.sort();
            cves.dedup();
            if cves.is_empty() { None } else { Some(Scalar::Str(Cow::Owned(cves.join(";")))) }
        }
        Conversion::CategoryOrDetail => {
            if v.is_empty() {
                row.detail.and_then(some)
            } else {
                some(v)
            }
        }
    })
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Python's `base64.b64decode(value, validate=True)` succeeds: alphabet only, padded to a
/// multiple of four.
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let body = b.strip_suffix(b"==").or_else(|| b.strip_suffix(b"=")).unwrap_or(b);
    body.iter().all(|c| B64.contains(c))
}

fn base64(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(c: Conversion, v: &str) -> Option<Scalar<'_>> {
        convert(&c, v, &RowCtx::default(), false).unwrap()
    }

    #[test]
    fn like_intelmq() {
        assert_eq!(conv(Conversion::ValidateToNone, "unknown"), None);
        assert_eq!(conv(Conversion::ValidateToNone, "0"), None);
        assert_eq!(conv(Conversion::InvalidateZero, "0"), None);
        assert_eq!(conv(Conversion::InvalidateZero, "64496"), Some(Scalar::I64(64496)));
        assert!(convert(&Conversion::ConvertInt, "x", &RowCtx::default(), false).is_err());
        assert_eq!(conv(Conversion::ConvertBool, "Yes"), Some(Scalar::Bool(true)));
        assert_eq!(conv(Conversion::ConvertBool, "maybe"), None);
        assert_eq!(conv(Conversion::ValidateIp, "0.0.0.0"), None);
        assert_eq!(conv(Conversion::ValidateIp, "999.1.1.1"), None);
        assert!(convert(&Conversion::ValidateIp, "999.1.1.1", &RowCtx::default(), true).is_err());
        assert_eq!(conv(Conversion::ValidateNetwork, "192.0.2.7/24"), Some(Scalar::Str("192.0.2.0/24".into())));
        assert_eq!(conv(Conversion::ValidateNetwork, "192.0.2.7"), None);
        assert_eq!(
            conv(Conversion::ExtractCveFromTag, "cve-2021-26855;exchange;CVE-2021-26855;cve-2020-0688"),
            Some(Scalar::Str("cve-2020-0688;cve-2021-26855".into()))
        );
        assert_eq!(conv(Conversion::ExtractCveFromTag, "mirai;cve-x-1"), None);
        assert_eq!(
            conv(Conversion::ConvertDate, "Thu, 05 Mar 2026 00:00:12 GMT"),
            Some(Scalar::Str("2026-03-05T00:00:12+00:00".into()))
        );
        assert_eq!(
            conv(Conversion::ConvertDateUtc, "2026-03-05 00:00:12"),
            Some(Scalar::Str("2026-03-05T00:00:12+00:00".into()))
        );
        assert_eq!(conv(Conversion::ForceBase64, "aGVsbG8="), Some(Scalar::Str("aGVsbG8=".into())));
        assert_eq!(conv(Conversion::ForceBase64, "hello!"), Some(Scalar::Str("aGVsbG8h".into())));
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn http_host_and_url() {
        let row = RowCtx { host: Some("bad.example"), path: Some("GET /gate.php HTTP/1.1"), ..RowCtx::default() };
        assert_eq!(
            convert(&Conversion::ConvertHttpHostAndUrl, "GET /gate.php HTTP/1.1", &row, false).unwrap(),
            Some(Scalar::Str("http://bad.example/gate.php".into()))
        );
        let row = RowCtx { host: Some("shop.example"), path: Some("/wp/"), application: Some("https"), detail: None };
        assert_eq!(
            convert(&Conversion::ConvertHttpHostAndUrl, "/wp/", &row, false).unwrap(),
            Some(Scalar::Str("https://shop.example/wp/".into()))
        );
    }
}
