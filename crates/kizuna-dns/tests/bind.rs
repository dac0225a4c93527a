//! BIND 9 as an RPZ secondary of kizuna's primary: blocks within 2 s, unblocks, IXFR used,
//! NOTIFY acknowledged, TSIG mismatch refused (BIND keeps the old data), consent by
//! `rpz-client-ip` passthru (two clients, two answers).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use kizuna_model::IndicatorKind;

const ZONE: &str = "rpz.isp-a.example";
const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const NORMAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

fn setup(extra: &str, rpz_order: &[(&str, bool)]) -> (tempfile::TempDir, Kizuna, Bind) {
    let dir = tempfile::tempdir().unwrap();
    let kport = free_port();
    let bport = free_port();
    let k = Kizuna::start(kport, &kizuna_config(ZONE, &[SocketAddr::from(([127, 0, 0, 1], bport))], extra));
    let rpz: Vec<BindRpz<'_>> = rpz_order
        .iter()
        .map(|(z, keyed)| BindRpz { zone: z, primary_port: kport, key: keyed.then_some((KEY_NAME, KEY_SECRET)) })
        .collect();
    let b = Bind::start(dir.path(), bport, &rpz);
    for (z, _) in rpz_order {
        let want = k.serial(z);
        assert!(
            wait_until(Duration::from_secs(10), || b.serial(z) == Some(want)),
            "BIND did not load {z} serial {want}: {}",
            b.proc.log_text()
        );
    }
    (dir, k, b)
}

#[test]
fn bind_blocks_within_2s_unblocks_and_uses_ixfr() {
    let (_dir, k, b) = setup("", &[(ZONE, true)]);
    let srv = b.addr();
    assert_eq!(resolve_a(srv, LO, "malware.example."), vec![NORMAL]);

    // add: the domain (and its wildcard) and an address indicator
    let dom = indicator(IndicatorKind::Domain, "malware.example");
    let ip = indicator(IndicatorKind::Ip, "198.51.100.20");
    k.add(&[dom.clone(), ip.clone()]);
    let took = wait_for_answer(srv, LO, "malware.example.", &[WARN_V4], Duration::from_secs(2))
        .unwrap_or_else(|| panic!("no block within 2 s: {}", b.proc.log_text()));
    eprintln!("blocked after {took:?}");
    assert_eq!(resolve_a(srv, LO, "www.malware.example."), vec![WARN_V4], "wildcard trigger");
    assert!(
        wait_for_answer(srv, LO, "iphit.example.", &[WARN_V4], Duration::from_secs(2)).is_some(),
        "rpz-ip trigger: {:?}",
        resolve_a(srv, LO, "iphit.example.")
    );
    assert_eq!(resolve_a(srv, LO, "benign.example."), vec![Ipv4Addr::new(198, 51, 100, 30)]);

    // remove: normal answers again (max-policy-ttl 1 bounds what BIND cached)
    k.withdraw(&dom);
    let took = wait_for_answer(srv, LO, "malware.example.", &[NORMAL], Duration::from_secs(2))
        .unwrap_or_else(|| panic!("not unblocked within 2 s: {}", b.proc.log_text()));
    eprintln!("unblocked after {took:?}");
    assert_eq!(resolve_a(srv, LO, "iphit.example."), vec![WARN_V4], "the address indicator stays");

    // IXFR was used: kizuna served incremental transfers to the key, BIND logged them
    let ixfr = k.metric("kizuna_dns_transfers_total", &["kind=\"ixfr\"", KEY_NAME]);
    assert!(ixfr >= 2.0, "ixfr transfers {ixfr}\n{}", k.metrics());
    assert!(k.metric("kizuna_dns_transfers_total", &["kind=\"axfr\""]) >= 1.0, "first load is an AXFR");
    let log = b.proc.log_text();
    let ixfr_lines: Vec<&str> = log.lines().filter(|l| l.contains("IXFR")).collect();
    eprintln!("BIND IXFR log lines:\n{}", ixfr_lines.join("\n"));
    assert!(!ixfr_lines.is_empty(), "BIND log shows no IXFR:\n{log}");
    assert!(k.metric("kizuna_dns_notify_acked_total", &[]) >= 2.0, "{}", k.metrics());
    assert_eq!(b.serial(ZONE), Some(k.serial(ZONE)));
}

#[test]
fn tsig_mismatch_is_refused_and_bind_keeps_old_data() {
    let (dir, k, b) = setup("", &[(ZONE, true)]);
    let srv = b.addr();
    k.add(&[indicator(IndicatorKind::Domain, "malware.example")]);
    assert!(wait_for_answer(srv, LO, "malware.example.", &[WARN_V4], Duration::from_secs(2)).is_some());
    let good_serial = k.serial(ZONE);

    // the resolver's key changes (a misconfiguration): its transfers are refused
    let conf = std::fs::read_to_string(dir.path().join("named.conf")).unwrap();
    std::fs::write(
        dir.path().join("named.conf"),
        conf.replace(
            &format!("secret \"{KEY_SECRET}\"; }};\nlogging"),
            &format!("secret \"{WRONG_SECRET}\"; }};\nlogging"),
        ),
    )
    .unwrap();
    let out = b.rndc(&["reconfig"]);
    assert!(!out.contains("failed"), "rndc: {out}");
    std::thread::sleep(Duration::from_millis(300));
    let before = k.metric("kizuna_dns_refused_total", &["tsig-badsig"]);
    k.add(&[indicator(IndicatorKind::Domain, "benign.example")]);
    // its NOTIFY is now rejected too (BIND checks the TSIG); a refresh makes BIND ask
    std::thread::sleep(Duration::from_millis(200));
    let out = b.rndc(&["refresh", ZONE]);
    assert!(!out.contains("failed"), "rndc: {out}");
    assert!(
        wait_until(Duration::from_secs(5), || k.metric("kizuna_dns_refused_total", &["tsig-badsig"]) > before),
        "kizuna saw no bad MAC: {}\n{}",
        k.metrics(),
        b.proc.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    // BIND keeps the old version: old serial, old policy, the new indicator not applied
    assert_eq!(b.serial(ZONE), Some(good_serial));
    assert_ne!(k.serial(ZONE), good_serial);
    assert_eq!(resolve_a(srv, LO, "malware.example."), vec![WARN_V4]);
    assert_eq!(resolve_a(srv, LO, "benign.example."), vec![Ipv4Addr::new(198, 51, 100, 30)]);
    let log = b.proc.log_text();
    assert!(
        log.contains("tsig") || log.contains("TSIG") || log.contains("NOTAUTH") || log.contains("bad signature"),
        "BIND logged no TSIG failure:\n{log}"
    );
}

#[test]
fn consent_zone_exempts_a_non_consenting_client() {
    let consent = "[[zones]]
member = \"isp-a\"
key = \"isp-a-xfr\"
passthru_clients = [\"127.0.0.3/32\"]
[zones.policy]
zone_name = \"consent.isp-a.example\"
action = { type = \"passthru\" }
ttl = 5
";
    let (_dir, k, b) = setup(consent, &[("consent.isp-a.example", true), (ZONE, true)]);
    let srv = b.addr();
    k.add(&[indicator(IndicatorKind::Domain, "malware.example")]);
    let consenting = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let declined = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    assert!(
        wait_for_answer(srv, consenting, "malware.example.", &[WARN_V4], Duration::from_secs(2)).is_some(),
        "{}",
        b.proc.log_text()
    );
    assert_eq!(resolve_a(srv, declined, "malware.example."), vec![NORMAL], "non-consenting client is untouched");
    assert_eq!(resolve_a(srv, consenting, "malware.example."), vec![WARN_V4]);
}
