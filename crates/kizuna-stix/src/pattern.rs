//! STIX patterns for kizuna's indicator kinds: writing them, and reading the subset that maps
//! to indicators (equality comparisons, joined by `OR`, within or across observation
//! expressions; `ISSUBSET` for address ranges).

use kizuna_model::{IndicatorKind, canonical_value};

/// Quotes a value as a STIX pattern string literal (`\` and `'` escaped).
pub fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('\'');
    for c in v.chars() {
        if c == '\\' || c == '\'' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('\'');
    s
}

/// The STIX object path a kind is written with.
pub fn object_path(kind: IndicatorKind, value: &str) -> &'static str {
    match kind {
        IndicatorKind::Url => "url:value",
        IndicatorKind::Domain => "domain-name:value",
        IndicatorKind::Ip if value.contains(':') => "ipv6-addr:value",
        IndicatorKind::Ip => "ipv4-addr:value",
        IndicatorKind::Sha256 => "file:hashes.'SHA-256'",
        IndicatorKind::Md5 => "file:hashes.MD5",
        IndicatorKind::Sha1 => "file:hashes.'SHA-1'",
    }
}

/// The pattern of one indicator: `[url:value = 'http://…']`. Single addresses are written
/// without their `/32` or `/128`.
pub fn write(kind: IndicatorKind, value: &str) -> String {
    let v = if kind == IndicatorKind::Ip { strip_host_prefix(value) } else { value };
    format!("[{} = {}]", object_path(kind, value), quote(v))
}

fn strip_host_prefix(v: &str) -> &str {
    v.strip_suffix("/32").filter(|s| !s.contains(':')).or_else(|| v.strip_suffix("/128")).unwrap_or(v)
}

fn kind_of_path(path: &str) -> Option<IndicatorKind> {
    let p: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    let (obj, prop) = p.split_once(':')?;
    Some(match (obj, prop) {
        ("url", "value") => IndicatorKind::Url,
        ("domain-name", "value") => IndicatorKind::Domain,
        ("ipv4-addr" | "ipv6-addr", "value") => IndicatorKind::Ip,
        ("file" | "artifact", h) => {
            let h = h.strip_prefix("hashes.")?.trim_matches(['\'', '"']).to_ascii_uppercase().replace('-', "");
            match h.as_str() {
                "SHA256" => IndicatorKind::Sha256,
                "MD5" => IndicatorKind::Md5,
                "SHA1" => IndicatorKind::Sha1,
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Why a pattern cannot become indicators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub reason: String,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Or,
    Other(String),
    Str(String),
    Op(String),
}

fn lex(p: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = p.char_indices().peekable();
    while let Some((_, c)) = it.next() {
        match c {
            c if c.is_whitespace() => {}
            '[' => out.push(Tok::Open),
            ']' => out.push(Tok::Close),
            '(' | ')' => return Err("parenthesised expressions are not supported".into()),
            '\'' => {
                let mut s = String::new();
                loop {
                    match it.next() {
                        Some((_, '\\')) => match it.next() {
                            Some((_, e)) => s.push(e),
                            None => return Err("unterminated string".into()),
                        },
                        Some((_, '\'')) => break,
                        Some((_, ch)) => s.push(ch),
                        None => return Err("unterminated string".into()),
                    }
                }
                out.push(Tok::Str(s));
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                if let Some((_, '=')) = it.peek() {
                    op.push('=');
                    it.next();
                }
                out.push(Tok::Op(op));
            }
            _ => {
                // an object path or a keyword: up to whitespace, a bracket or an operator;
                // quoted path segments (hashes.'SHA-256') are part of the path
                let mut w = c.to_string();
                while let Some(&(_, n)) = it.peek() {
                    if n.is_whitespace() || matches!(n, '[' | ']' | '=' | '!' | '<' | '>' | '(' | ')') {
                        break;
                    }
                    if n == '\'' && !w.ends_with('.') {
                        break;
                    }
                    it.next();
                    w.push(n);
                    if n == '\'' {
                        // quoted segment: read to the closing quote
                        for (_, q) in it.by_ref() {
                            w.push(q);
                            if q == '\'' {
                                break;
                            }
                        }
                    }
                }
                match w.to_ascii_uppercase().as_str() {
                    "OR" => out.push(Tok::Or),
                    "ISSUBSET" => out.push(Tok::Op("ISSUBSET".into())),
                    _ => out.push(Tok::Other(w)),
                }
            }
        }
    }
    Ok(out)
}

/// Reads a pattern into (kind, canonical value) pairs. Only equality comparisons (and
/// `ISSUBSET` on addresses) joined by `OR` are accepted: anything else (`AND`, `FOLLOWEDBY`,
/// qualifiers, other operators or object types) is refused with the reason, since an
/// indicator kizuna acts on must be one value.
pub fn read(pattern: &str) -> Result<Vec<(IndicatorKind, String)>, PatternError> {
    let err = |reason: String| PatternError { pattern: pattern.to_owned(), reason };
    let toks = lex(pattern).map_err(err)?;
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    let mut expect_term = true;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open if expect_term && depth == 0 => {
                depth = 1;
                i += 1;
            }
            Tok::Close if depth == 1 && !expect_term => {
                depth = 0;
                i += 1;
            }
            Tok::Or if !expect_term => {
                expect_term = true;
                i += 1;
            }
            Tok::Other(path) if expect_term && depth == 1 => {
                let kind = kind_of_path(path).ok_or_else(|| err(format!("object path {path} is not supported")))?;
                let (Some(Tok::Op(op)), Some(Tok::Str(v))) = (toks.get(i + 1), toks.get(i + 2)) else {
                    return Err(err(format!("expected {path} = '…'")));
                };
                let ok = op == "=" || (op == "ISSUBSET" && kind == IndicatorKind::Ip);
                if !ok {
                    return Err(err(format!("operator {op} is not supported (only =)")));
                }
                let value = canonical_value(kind, v).map_err(|e| err(e.to_string()))?;
                out.push((kind, value));
                expect_term = false;
                i += 3;
            }
            Tok::Other(w) => return Err(err(format!("{w} is not supported: only comparisons joined by OR"))),
            t => return Err(err(format!("unexpected {t:?}"))),
        }
    }
    if depth != 0 || expect_term || out.is_empty() {
        return Err(err("incomplete pattern".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorKind as K;

    #[test]
    fn writes_and_reads_every_kind() {
        for (k, v) in [
            (K::Url, "http://bad.example/a'b\\c?x=1"),
            (K::Domain, "bad.example"),
            (K::Ip, "198.51.100.7/32"),
            (K::Ip, "198.51.100.0/24"),
            (K::Ip, "2001:db8::1/128"),
            (K::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (K::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
            (K::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ] {
            let p = write(k, v);
            assert_eq!(read(&p), Ok(vec![(k, v.to_owned())]), "{p}");
        }
        assert_eq!(write(K::Ip, "198.51.100.7/32"), "[ipv4-addr:value = '198.51.100.7']");
        assert_eq!(write(K::Sha256, "ab"), "[file:hashes.'SHA-256' = 'ab']");
    }

    #[test]
    fn reads_or_lists_and_refuses_the_rest() {
        let r = read("[domain-name:value = 'A.example' OR url:value = 'http://b.example'] OR [file:hashes.SHA256 = 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855']").expect("or");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], (K::Domain, "a.example".into()));
        assert_eq!(read("[ipv4-addr:value ISSUBSET '198.51.100.0/24']").expect("subset")[0].1, "198.51.100.0/24");
        for bad in [
            "[domain-name:value = 'a.example' AND url:value = 'http://x.example/']",
            "[domain-name:value != 'a.example']",
            "[email-addr:value = 'x@example.com']",
            "[domain-name:value = 'a.example'] WITHIN 10 SECONDS",
            "[domain-name:value = 'a.example'",
            "[domain-name:value = 'not a domain']",
            "([domain-name:value = 'a.example'])",
            "",
            "[url:value = 'http://x.example/]",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
