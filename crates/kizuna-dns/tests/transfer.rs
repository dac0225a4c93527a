//! Transfers checked with dig (BIND's client verifies TSIG on every message): multi-message
//! AXFR, IXFR over TCP and UDP, AXFR fallback for an unknown serial, and refusals (wrong MAC,
//! unknown key, unsigned from outside the ACL).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use kizuna_model::IndicatorKind;

const ZONE: &str = "rpz.isp-a.example";

fn dig(k: &Kizuna, args: &[&str]) -> String {
    require("/usr/bin/dig");
    let out = Command::new("/usr/bin/dig")
        .args(["@127.0.0.1", "-p", &k.addr.port().to_string(), "+tries=1", "+time=3"])
        .args(args)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // one space between fields, lines kept
    text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")
}

fn key_arg(secret: &str) -> String {
    format!("hmac-sha256:{KEY_NAME}:{secret}")
}

#[test]
fn axfr_ixfr_and_refusals_checked_by_dig() {
    let k = Kizuna::start(free_port(), &kizuna_config(ZONE, &[], ""));
    let inds: Vec<_> = (0..3000).map(|i| indicator(IndicatorKind::Domain, &format!("bad{i}.example"))).collect();
    k.add(&inds);
    assert!(
        wait_until(Duration::from_secs(5), || k.metric("kizuna_dns_zone_records", &[]) >= 6001.0),
        "{}",
        k.metrics()
    );
    let s1 = k.serial(ZONE);

    // multi-message AXFR, every message TSIG-signed (dig checks each)
    let out = dig(&k, &["-y", &key_arg(KEY_SECRET), "AXFR", ZONE]);
    assert!(!out.contains("failed") && !out.contains("verify failure"), "{out}");
    let size = out.lines().find(|l| l.starts_with(";; XFR size:")).unwrap_or_else(|| panic!("{out}"));
    eprintln!("{size}");
    // 6000 triggers + NS + SOA twice
    assert!(size.contains("6003 records"), "{size}");
    let msgs: u32 = size.split("messages ").nth(1).unwrap().split(',').next().unwrap().trim().parse().unwrap();
    assert!(msgs > 1, "{size}");
    assert!(out.contains("bad2999.example.rpz.isp-a.example. 5 IN A 192.0.2.80"), "{out}");

    // one change → IXFR from the previous serial is the difference only
    k.add(&[indicator(IndicatorKind::Domain, "new.example")]);
    assert!(wait_until(Duration::from_secs(5), || k.serial(ZONE) != s1));
    let s2 = k.serial(ZONE);
    let out = dig(&k, &["-y", &key_arg(KEY_SECRET), &format!("IXFR={s1}"), ZONE]);
    let size = out.lines().find(|l| l.starts_with(";; XFR size:")).unwrap_or_else(|| panic!("{out}"));
    // SOA(new) SOA(old) SOA(new) + 2 added + SOA(new)
    assert!(size.contains("6 records"), "{size}\n{out}");
    assert!(out.contains("*.new.example.rpz.isp-a.example."), "{out}");
    assert!(out.contains(&format!("{s1} 60 10 86400 30")), "{out}");
    assert!(k.metric("kizuna_dns_transfers_total", &["kind=\"ixfr\""]) >= 1.0);

    // IXFR over UDP fits: answered there; a client that is current gets one SOA
    let out = dig(&k, &["+notcp", "-y", &key_arg(KEY_SECRET), &format!("IXFR={s1}"), ZONE]);
    assert!(out.contains("new.example.rpz.isp-a.example.") && !out.contains("failed"), "{out}");
    let out = dig(&k, &["-y", &key_arg(KEY_SECRET), &format!("IXFR={s2}"), ZONE]);
    assert!(out.contains(";; XFR size: 1 records"), "{out}");

    // a serial no longer (or never) in the history: the whole zone, in AXFR form
    let out = dig(&k, &["-y", &key_arg(KEY_SECRET), "IXFR=12345", ZONE]);
    assert!(out.contains("6005 records"), "{out}");
    assert!(k.metric("kizuna_dns_transfers_total", &["kind=\"ixfr-axfr\""]) >= 1.0);
    // the same transfers per member
    assert!(k.metric("kizuna_dns_member_transfers_total", &["member=\"isp-a\"", "kind=\"ixfr-axfr\""]) >= 1.0);
    assert!(k.metric("kizuna_dns_member_transfers_total", &["member=\"isp-a\"", "kind=\"ixfr-uptodate\""]) >= 1.0);

    // refusals
    let out = dig(&k, &["-y", &key_arg(WRONG_SECRET), "AXFR", ZONE]);
    assert!(out.contains("failed") || out.contains("NOTAUTH") || out.contains("BADSIG"), "{out}");
    assert!(!out.contains("bad1.example"), "{out}");
    assert_eq!(k.metric("kizuna_dns_refused_total", &["tsig-badsig"]), 1.0, "{}", k.metrics());
    let out = dig(&k, &["-y", &format!("hmac-sha256:other-key:{KEY_SECRET}"), "AXFR", ZONE]);
    assert!(!out.contains("bad1.example"), "{out}");
    assert_eq!(k.metric("kizuna_dns_refused_total", &["tsig-badkey"]), 1.0, "{}", k.metrics());
    assert_eq!(k.metric("kizuna_dns_tsig_failures_total", &["error=\"badsig\""]), 1.0, "{}", k.metrics());
    assert_eq!(k.metric("kizuna_dns_tsig_failures_total", &["error=\"badkey\""]), 1.0, "{}", k.metrics());
    let out = dig(&k, &["AXFR", ZONE]);
    assert!(!out.contains("bad1.example") && out.contains("failed"), "{out}");
    assert!(k.metric("kizuna_dns_refused_total", &["transfer-acl"]) >= 1.0, "{}", k.metrics());
    // the serial is public, the content is not
    let out = dig(&k, &["+short", "SOA", ZONE]);
    assert!(out.contains(&s2.to_string()), "{out}");
    let out = dig(&k, &["A", &format!("bad1.example.{ZONE}")]);
    assert!(out.contains("REFUSED"), "{out}");
    let out = dig(&k, &["-y", &key_arg(KEY_SECRET), "+norec", "A", &format!("bad1.example.{ZONE}")]);
    assert!(out.contains("192.0.2.80") && out.contains("status: NOERROR"), "{out}");
    let out = dig(&k, &["-y", &key_arg(KEY_SECRET), "A", &format!("absent.{ZONE}")]);
    assert!(out.contains("NXDOMAIN"), "{out}");

    // the provenance API names the indicator behind a trigger
    let body = http_get(k.http, &format!("/api/v1/dns/provenance?zone={ZONE}&name=*.bad7.example"));
    let key = hex_key(&inds[7]);
    assert!(body.contains(&key), "{body}");
    let body = http_get(k.http, "/api/v1/dns/zones");
    assert!(body.contains(&format!("\"serial\":{s2}")), "{body}");
    assert!(http_get(k.http, "/metrics").contains("kizuna_dns_zone_serial"));
    assert!(http_get(k.http, "/healthz").contains("ok"));
}

fn hex_key(i: &kizuna_model::Indicator) -> String {
    i.key().iter().map(|b| format!("{b:02x}")).collect()
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
