//! `kizuna indicator …` end to end on a real store: add (canonicalised, audited with the
//! analyst's name), list/show, allow-list conflicts (shipped default, config portal domains,
//! analysts' entries), withdraw, expire, granularity, and derivation during `kizuna ingest`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kizuna-parsers/tests/fixtures")
}

fn kizuna(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("kizuna").expect("binary");
    c.arg("--data-dir").arg(dir).env_remove("KIZUNA_CONFIG").env("KIZUNA_LOG", "warn").env_remove("KIZUNA_ANALYST");
    c
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("kizuna.toml"),
        "[hub.indicators]\nportal_domains = [\"portal.isp-a.example\"]\nshared_hosting_suffixes = [\"sites.hoster.example\"]\n",
    )
    .expect("config");
    dir
}

fn stdout(c: &mut Command) -> String {
    let out = c.assert().success();
    String::from_utf8(out.get_output().stdout.clone()).expect("utf-8")
}

fn add(dir: &Path, kind: &str, value: &str, category: &str) -> Command {
    let mut c = kizuna(dir);
    c.args(["indicator", "add", "--kind", kind, "--value", value, "--category", category]).args([
        "--reason",
        "seen by the analyst team",
        "--analyst",
        "alice",
    ]);
    c
}

#[test]
fn add_list_show_withdraw_with_audit() {
    let dir = setup();
    let d = dir.path();
    let out = stdout(add(d, "url", "HTTP://Bad.Example/x.sh#frag", "malware-distribution").args([
        "--expires",
        "30d",
        "--tlp",
        "green",
        "--confidence",
        "90",
    ]));
    assert!(out.contains("\tactive\turl\tmalware-distribution\t90\t"), "{out}");
    assert!(out.trim_end().ends_with("analyst:alice\thttp://bad.example/x.sh"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(kizuna(d).args(["indicator", "show", "url:http://BAD.example/x.sh", "--json"])))
            .expect("json");
    assert_eq!(v["state"], "active");
    assert_eq!(v["tlp"], "GREEN");
    assert_eq!(v["granularity"], "host");
    assert_eq!(v["provenance"][0]["source"], "analyst:alice");
    let key = v["key"].as_str().expect("key").to_owned();
    let list = stdout(kizuna(d).args(["indicator", "list", "--state", "active"]));
    assert_eq!(list.lines().count(), 1);
    assert!(list.starts_with(&key));

    // Bad input: a clear message, non-zero exit, nothing stored.
    kizuna(d)
        .args(["indicator", "add", "--kind", "url", "--value", "ftp://x.example/", "--category", "phishing"])
        .args(["--reason", "r"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not an http(s) URL"));
    kizuna(d)
        .args(["indicator", "add", "--kind", "domain", "--value", "x.example", "--category", "phishing"])
        .args(["--reason", "r", "--expires", "soon"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad expiry"));

    let out = stdout(kizuna(d).args(["indicator", "withdraw", &key, "--reason", "site cleaned", "--analyst", "bob"]));
    assert!(out.contains("\twithdrawn\t"), "{out}");
    kizuna(d)
        .args(["indicator", "show", "domain:nothing.example"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no indicator"));
    assert!(stdout(kizuna(d).args(["indicator", "list", "--state", "active"])).is_empty());

    let audit = stdout(kizuna(d).args(["audit", "list"]));
    assert!(audit.contains("analyst:alice") && audit.contains("indicator.add"), "{audit}");
    assert!(audit.contains("analyst:bob") && audit.contains("indicator.withdraw"), "{audit}");
    kizuna(d).args(["audit", "verify"]).assert().success();
}

#[test]
fn allowlist_conflicts_and_granularity() {
    let dir = setup();
    let d = dir.path();
    // The shipped default list protects GitHub; the config's portal domain protects everything under it.
    add(d, "domain", "evil.github.com", "malware-distribution")
        .assert()
        .success()
        .stderr(predicate::str::contains("is allow-listed by github.com (default)"));
    add(d, "url", "https://pay.portal.isp-a.example/login", "phishing")
        .assert()
        .success()
        .stderr(predicate::str::contains("portal.isp-a.example (portal, all)"));
    // URLs on shared hosts are kept, published URL-only.
    add(d, "url", "https://raw.githubusercontent.com/evil/x/main/p.sh", "malware-distribution").assert().success();
    add(d, "url", "http://u1.sites.hoster.example/a.php", "phishing").assert().success();
    add(d, "url", "http://dl.bad.example:8080/x86", "malware-distribution").assert().success();
    let conflicts = stdout(kizuna(d).args(["indicator", "conflicts"]));
    assert_eq!(conflicts.lines().count(), 2, "{conflicts}");
    assert!(conflicts.contains("evil.github.com\tanalyst:alice\tallow-list: github.com (default)"), "{conflicts}");
    let g = stdout(kizuna(d).args(["indicator", "granularity"]));
    assert!(g.contains("url     host             1"), "{g}");
    assert!(g.contains("url     url-only         2"), "{g}");
    assert!(g.contains("shared host on the allow-list: githubusercontent.com (default)"), "{g}");
    assert!(g.contains("shared hosting suffix sites.hoster.example"), "{g}");
    assert!(g.contains("not published (allow-listed): 2"), "{g}");

    // An analyst's entry turns an active indicator into a conflict, and removing it releases it.
    add(d, "domain", "cdn.partner.example", "malware-distribution").assert().success();
    let out = stdout(kizuna(d).args(["indicator", "allowlist", "add", "partner.example", "--analyst", "carol"]));
    assert!(out.contains("1 indicators newly allow-listed"), "{out}");
    assert_eq!(stdout(kizuna(d).args(["indicator", "conflicts"])).lines().count(), 3);
    let show = stdout(kizuna(d).args(["indicator", "allowlist", "show"]));
    assert!(show.lines().any(|l| l.starts_with("partner.example\thost\tanalyst\t")), "{show}");
    assert!(show.lines().any(|l| l.starts_with("google.com\thost\tdefault\t")));
    assert!(show.lines().any(|l| l.starts_with("portal.isp-a.example\tall\tportal\t")));
    kizuna(d).args(["indicator", "allowlist", "add", "not a domain!"]).assert().failure();
    let out = stdout(kizuna(d).args(["indicator", "allowlist", "remove", "partner.example", "--analyst", "carol"]));
    assert!(out.contains("1 indicators released"), "{out}");
    let audit = stdout(kizuna(d).args(["audit", "list"]));
    assert_eq!(audit.matches("indicator.allowlist").count(), 2, "{audit}");
    assert!(audit.contains("analyst:carol"));
}

#[test]
fn expire_marks_past_indicators() {
    let dir = setup();
    let d = dir.path();
    add(d, "domain", "short.bad.example", "phishing").args(["--expires", "1s"]).assert().success();
    add(d, "domain", "long.bad.example", "phishing").assert().success();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(stdout(kizuna(d).args(["indicator", "expire"])).trim(), "1 indicators expired");
    let expired = stdout(kizuna(d).args(["indicator", "list", "--state", "expired"]));
    assert!(expired.contains("short.bad.example") && !expired.contains("long.bad.example"), "{expired}");
}

#[test]
fn ingest_derives_indicators() {
    let dir = setup();
    let d = dir.path();
    kizuna(d).arg("ingest").arg(fixtures().join("cowrie/cowrie.json")).assert().success();
    let name = "2026-03-05-compromised_website-jp-geo.csv";
    kizuna(d).arg("ingest").arg(fixtures().join(format!("shadowserver/{name}"))).assert().success();
    let cowrie = stdout(kizuna(d).args(["indicator", "list", "--source", "cowrie"]));
    let mut values: Vec<&str> = cowrie.lines().filter_map(|l| l.rsplit('\t').next()).collect();
    values.sort();
    assert_eq!(
        values,
        [
            "a8f5c1e4d2b3a4958677e6f1c2d3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f",
            "http://198.51.100.23/bins.sh",
            "http://dl.bad.example:8080/x86"
        ]
    );
    let compromised = stdout(kizuna(d).args(["indicator", "list", "--category", "system-compromise"]));
    assert!(
        compromised
            .contains("https://shop.example.jp/wp-content/plugins/wp-file-manager/lib/php/connector.minimal.php")
    );
    // Ingesting the same file again changes no indicator.
    let before = stdout(kizuna(d).args(["indicator", "list", "--json"]));
    kizuna(d).arg("ingest").arg(fixtures().join("cowrie/cowrie.json")).assert().success();
    assert_eq!(stdout(kizuna(d).args(["indicator", "list", "--json"])), before);
}

#[test]
fn example_config_indicator_policy_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kizuna.example.toml");
    let mut c = Command::cargo_bin("kizuna").expect("binary");
    c.arg("--config").arg(&example).arg("--data-dir").arg(dir.path()).env("KIZUNA_LOG", "warn");
    let show = stdout(c.args(["indicator", "allowlist", "show"]));
    assert!(show.lines().any(|l| l.starts_with("cdn.example-isp.jp\thost\tconfig\t")), "{show}");
    assert!(show.lines().any(|l| l.starts_with("example-isp.jp\tall\tportal\t")), "{show}");
    assert!(show.lines().any(|l| l.starts_with("github.com\thost\tdefault\t")), "{show}");
}
