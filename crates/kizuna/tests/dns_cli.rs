//! `kizuna dns zone` and `kizuna dns provenance` on a real store: an analyst's indicator becomes
//! QNAME and wildcard triggers with the warning-page action, and its provenance is shown.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn kizuna(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("kizuna").expect("binary");
    c.arg("--data-dir").arg(dir).env_remove("KIZUNA_CONFIG").env_remove("KIZUNA_DNS_CONFIG").env("KIZUNA_LOG", "warn");
    c
}

#[test]
fn an_indicator_becomes_rpz_triggers_with_provenance() {
    let dir = tempfile::tempdir().expect("tempdir");
    kizuna(dir.path()).args(["member", "add", "isp-a", "--asn", "64500"]).assert().success();
    kizuna(dir.path())
        .args(["indicator", "add", "--kind", "domain", "--value", "Bad-Dist.Example.", "--category"])
        .args(["malware-distribution", "--reason", "serves a banking trojan", "--expires", "30d"])
        .assert()
        .success();
    let cfg = dir.path().join("dns.toml");
    std::fs::write(
        &cfg,
        r#"listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"

[[zones]]
member = "isp-a"
allow_transfer = ["127.0.0.1/32"]
[zones.policy]
zone_name = "rpz.isp-a.kizuna.example"
ttl = 5
wildcard = true
include_categories = ["malware-distribution"]
action = { type = "local-data", a = "192.0.2.80" }
"#,
    )
    .expect("write config");
    kizuna(dir.path())
        .args(["dns", "zone", "--dns-config"])
        .arg(&cfg)
        .arg("rpz.isp-a.kizuna.example")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("bad-dist.example")
                .and(predicate::str::contains("*.bad-dist.example"))
                .and(predicate::str::contains("192.0.2.80"))
                .and(predicate::str::contains("SOA")),
        );
    kizuna(dir.path())
        .args(["dns", "provenance", "--dns-config"])
        .arg(&cfg)
        .args(["rpz.isp-a.kizuna.example", "*.bad-dist.example"])
        .assert()
        .success()
        .stdout(predicate::str::contains("bad-dist.example"));
}
