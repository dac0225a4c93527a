//! Unbound as an RPZ secondary of kizuna's primary (no TSIG for transfers: Unbound cannot sign
//! them, so the zone allows its address), with normal answers from an authoritative BIND via a
//! stub zone.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use kizuna_model::IndicatorKind;

const ZONE: &str = "rpz.isp-a.example";
const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const NORMAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

fn unbound_conf(dir: &std::path::Path, port: u16, kizuna: u16, auth: u16) -> String {
    let d = dir.display();
    let server = kizuna_testkit::unbound_server_section(dir, port, 2, "respip validator iterator");
    format!(
        "{server}  cache-max-ttl: 60
rpz:
  name: \"{ZONE}.\"
  primary: 127.0.0.1@{kizuna}
  zonefile: \"{d}/{ZONE}.zone\"
  allow-notify: 127.0.0.1
  rpz-log: yes
  rpz-log-name: \"kizuna-isp-a\"
stub-zone:
  name: \"example.\"
  stub-addr: 127.0.0.1@{auth}
remote-control:
  control-enable: no
"
    )
}

#[test]
fn unbound_blocks_within_2s_and_unblocks() {
    require("/usr/sbin/unbound");
    let dir = tempfile::tempdir().unwrap();
    let kport = free_port();
    let uport = free_port();
    let aport = free_port();
    let extra = "";
    let cfg = kizuna_config(ZONE, &[], extra).replace(
        "[zones.policy]",
        &format!("allow_transfer = [\"127.0.0.1/32\"]\nnotify_unsigned = [\"127.0.0.1:{uport}\"]\n[zones.policy]"),
    );
    let k = Kizuna::start(kport, &cfg);
    // the authoritative server for normal answers (BIND, no RPZ)
    let adir = dir.path().join("auth");
    std::fs::create_dir(&adir).unwrap();
    let auth = Bind::start(&adir, aport, &[]);
    std::fs::write(dir.path().join("unbound.conf"), unbound_conf(dir.path(), uport, kport, aport)).unwrap();
    let check = Command::new("/usr/sbin/unbound-checkconf").arg(dir.path().join("unbound.conf")).output().unwrap();
    assert!(check.status.success(), "unbound-checkconf: {}", String::from_utf8_lossy(&check.stdout));
    let child = Command::new("/usr/sbin/unbound")
        .args(["-d", "-c"])
        .arg(dir.path().join("unbound.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let u = Proc { child, name: "unbound", log: dir.path().join("unbound.log") };
    let srv = SocketAddr::from(([127, 0, 0, 1], uport));
    assert!(
        wait_for_answer(srv, LO, "malware.example.", &[NORMAL], Duration::from_secs(20)).is_some(),
        "unbound did not answer: {}",
        u.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(10), || k.metric("kizuna_dns_transfers_total", &["127.0.0.1"]) >= 1.0),
        "unbound did not transfer the zone: {}\n{}",
        u.log_text(),
        k.metrics()
    );

    let dom = indicator(IndicatorKind::Domain, "malware.example");
    k.add(std::slice::from_ref(&dom));
    let took = wait_for_answer(srv, LO, "malware.example.", &[WARN_V4], Duration::from_secs(2))
        .unwrap_or_else(|| panic!("no block within 2 s: {}\n{}", u.log_text(), k.metrics()));
    eprintln!("unbound blocked after {took:?}");
    assert_eq!(resolve_a(srv, LO, "www.malware.example."), vec![WARN_V4], "wildcard trigger");

    k.withdraw(&dom);
    let took = wait_for_answer(srv, LO, "malware.example.", &[NORMAL], Duration::from_secs(2))
        .unwrap_or_else(|| panic!("not unblocked within 2 s: {}", u.log_text()));
    eprintln!("unbound unblocked after {took:?}");
    assert!(
        u.log_text().contains("rpz: applied") || u.log_text().contains("kizuna-isp-a"),
        "rpz-log: {}",
        u.log_text()
    );
    // an unsigned transfer from an address outside the ACL is refused (checked in tsig.rs);
    // here the address ACL let Unbound in without TSIG
    assert!(k.metric("kizuna_dns_notify_acked_total", &[]) >= 2.0, "{}", k.metrics());
    drop(auth);
}
