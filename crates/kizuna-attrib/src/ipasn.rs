//! The pyasn "ipasn" text format: one `prefix<TAB>asn` line per route.
//!
//! pyasn's converter writes a comment header (`; IP-ASN32-DAT file`, original file, date, count)
//! followed by lines such as `1.0.128.0/17\t9737`. pyasn itself also skips lines starting with
//! `#`. We read tab- or whitespace-separated lines, skip `;`/`#` comments and blank lines, and
//! report every other bad line as [`Rejected`] without stopping.

use std::io::{BufRead, Write};

use ipnet::IpNet;
use kizuna_model::Rejected;

/// Parses an ipasn file. Returns the routes (host bits masked, in file order) and the lines that
/// could not be read. Read errors end the input and are reported as one [`Rejected`] entry.
pub fn parse_ipasn<R: BufRead>(source_name: &str, mut input: R) -> (Vec<(IpNet, u32)>, Vec<Rejected>) {
    let mut routes = Vec::new();
    let mut rejected = Vec::new();
    let mut buf = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                rejected.push(Rejected {
                    source_name: source_name.to_string(),
                    line: line_no + 1,
                    reason: format!("read error: {e}"),
                    raw: String::new(),
                });
                break;
            }
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end_matches(['\n', '\r']);
        match parse_line(line) {
            Ok(Some(route)) => routes.push(route),
            Ok(None) => {}
            Err(reason) => rejected.push(Rejected {
                source_name: source_name.to_string(),
                line: line_no,
                reason,
                raw: line.to_string(),
            }),
        }
    }
    (routes, rejected)
}

/// One line: `Ok(None)` for comments and blank lines.
fn parse_line(line: &str) -> Result<Option<(IpNet, u32)>, String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
        return Ok(None);
    }
    let mut fields = t.split_whitespace();
    let (Some(prefix), Some(asn)) = (fields.next(), fields.next()) else {
        return Err("expected two fields: prefix and ASN".to_string());
    };
    if fields.next().is_some() {
        return Err("more than two fields".to_string());
    }
    if !prefix.contains('/') {
        return Err(format!("prefix {prefix:?} has no /length"));
    }
    let net: IpNet = prefix.parse().map_err(|_| format!("bad prefix {prefix:?}"))?;
    let digits = asn.strip_prefix("AS").or_else(|| asn.strip_prefix("as")).unwrap_or(asn);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad ASN {asn:?}"));
    }
    let asn: u32 = digits.parse().map_err(|_| format!("ASN {asn:?} out of range"))?;
    Ok(Some((net.trunc(), asn)))
}

/// Writes routes in the ipasn format pyasn reads: a `; IP-ASN32-DAT file` header, then one
/// `prefix<TAB>asn` line per route, in the given order.
pub fn write_ipasn(routes: &[(IpNet, u32)], out: &mut impl Write) -> std::io::Result<()> {
    let v4 = routes.iter().filter(|(n, _)| matches!(n, IpNet::V4(_))).count();
    writeln!(out, "; IP-ASN32-DAT file")?;
    writeln!(out, "; Written by kizuna-attrib")?;
    writeln!(out, "; Prefixes-v4   : {v4}")?;
    writeln!(out, "; Prefixes-v6   : {}", routes.len() - v4)?;
    writeln!(out, ";")?;
    for (net, asn) in routes {
        writeln!(out, "{net}\t{asn}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pyasn_file_with_bad_lines() {
        let text: &[u8] = b"; IP-ASN32-DAT file\n; Original file : rib.bz2\n;\n1.0.0.0/24\t15169\n\n\
                    1.0.128.0/17\t9737\r\n2001:db8::/32 64496\n# pyasn skips these too\n\
                    1.2.3.4/33\t1\nnot-a-prefix\t1\n10.0.0.0/8\nAS1\t10.0.0.0/8\n10.1.2.3/8\tAS65536\n\
                    10.0.0.0/8\t99999999999\n\xff\xfe\t1\n1.1.1.1\t13335\n";
        let (routes, rejected) = parse_ipasn("t.dat", text);
        let want: Vec<(IpNet, u32)> = vec![
            ("1.0.0.0/24".parse().expect("net"), 15169),
            ("1.0.128.0/17".parse().expect("net"), 9737),
            ("2001:db8::/32".parse().expect("net"), 64496),
            ("10.0.0.0/8".parse().expect("net"), 65536),
        ];
        assert_eq!(routes, want);
        let lines: Vec<u64> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![9, 10, 11, 12, 14, 15, 16]);
        assert_eq!(rejected[0].raw, "1.2.3.4/33\t1");
        assert!(rejected.iter().all(|r| r.source_name == "t.dat" && !r.reason.is_empty()));
    }

    #[test]
    fn write_then_parse_round_trips() {
        let routes: Vec<(IpNet, u32)> = vec![
            ("1.0.0.0/24".parse().expect("net"), 15169),
            ("0.0.0.0/0".parse().expect("net"), 1),
            ("2001:db8::/32".parse().expect("net"), 4_200_000_000),
            ("::/0".parse().expect("net"), 2),
        ];
        let mut out = Vec::new();
        write_ipasn(&routes, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("; IP-ASN32-DAT file\n"));
        assert!(text.contains("\n1.0.0.0/24\t15169\n"));
        let (back, rejected) = parse_ipasn("-", text.as_bytes());
        assert!(rejected.is_empty());
        assert_eq!(back, routes);
    }
}
