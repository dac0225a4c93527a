//! The `kizuna` binary end to end: routes, members, tokens, ingest with summaries and exit
//! codes, idempotent re-ingest, quarantine, reports, and audit verification catching tampering.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kizuna-parsers/tests/fixtures")
}

fn kizuna(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("kizuna").expect("binary");
    c.arg("--data-dir").arg(dir).env_remove("KIZUNA_CONFIG").env("KIZUNA_LOG", "warn");
    c
}

/// A data dir with a routing table and two members.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = dir.path().join("routes.ipasn");
    std::fs::write(
        &routes,
        "; IP-ASN32-DAT file\n203.0.113.0/24\t64500\n198.51.100.0/24\t64496\n2001:db8::/32\t64511\nnot-a-prefix\t1\n",
    )
    .expect("write routes");
    kizuna(dir.path())
        .args(["routes", "import"])
        .arg(&routes)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 3 routes (1 lines rejected)"));
    kizuna(dir.path())
        .args(["member", "add", "isp-a", "--display-name", "ISP A", "--asn", "64500", "--asn", "64496"])
        .args(["--contact", "abuse@isp-a.example"])
        .assert()
        .success();
    kizuna(dir.path()).args(["member", "add", "isp-b", "--prefix", "2001:db8:70::/48"]).assert().success();
    dir
}

#[test]
fn ingest_summarises_attributes_and_is_idempotent() {
    let dir = setup();
    let cowrie = fixtures().join("cowrie/cowrie.json");
    let sinkhole = fixtures().join("shadowserver/2026-03-05-event4_sinkhole-jp-geo.csv");
    let out = kizuna(dir.path()).args(["ingest", "--json"]).arg(&cowrie).arg(&sinkhole).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json summary");
    let stored = v["stored"].as_u64().expect("stored");
    assert!(stored > 10, "{v}");
    assert_eq!(v["duplicates"], 0, "{v}");
    assert!(v["quarantined"].as_u64().expect("q") >= 2, "fixtures hold malformed lines: {v}");
    assert!(v["per_member"]["isp-a"].as_u64().expect("isp-a") > 0, "{v}");
    assert!(v["per_member"]["isp-b"].as_u64().expect("isp-b") > 0, "IPv6 by explicit prefix: {v}");
    assert_eq!(
        v["read"].as_u64().expect("read"),
        stored
            + v["quarantined"].as_u64().expect("q")
            + v["skipped"].as_object().expect("s").values().map(|x| x.as_u64().unwrap_or(0)).sum::<u64>(),
        "every record is accounted for: {v}"
    );

    // The same input again adds nothing.
    let again = kizuna(dir.path()).args(["ingest", "--json"]).arg(&cowrie).arg(&sinkhole).assert().success();
    let w: serde_json::Value = serde_json::from_slice(&again.get_output().stdout).expect("json");
    assert_eq!(w["stored"], 0, "{w}");
    assert_eq!(w["duplicates"].as_u64(), Some(stored), "{w}");

    // Human summary on stderr names each file.
    kizuna(dir.path())
        .arg("ingest")
        .arg(&cowrie)
        .assert()
        .success()
        .stderr(predicate::str::contains("cowrie.json: read").and(predicate::str::contains("duplicates")));

    // Quarantine keeps file, line, reason and raw text.
    kizuna(dir.path())
        .args(["quarantine", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("cowrie.json:").and(predicate::str::contains("203.0.113.300")));

    // A member's report holds only its own observations, as IntelMQ events.
    let r = kizuna(dir.path()).args(["report", "--member", "isp-b", "--limit", "1000"]).assert().success();
    let text = String::from_utf8(r.get_output().stdout.clone()).expect("utf8");
    assert!(!text.is_empty());
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("IntelMQ event JSON");
        assert!(e["source.ip"].as_str().expect("source.ip").starts_with("2001:db8:70:"), "{line}");
        assert!(e["feed.name"].is_string() && e["classification.type"].is_string(), "{line}");
    }
    kizuna(dir.path())
        .args(["report", "--member", "isp-a", "--summary"])
        .assert()
        .success()
        .stdout(predicate::str::contains("member isp-a (ISP A)"));
}

#[test]
fn nothing_readable_exits_2_and_unknown_format_lists_known_ones() {
    let dir = setup();
    kizuna(dir.path())
        .args(["ingest", "/nonexistent/file.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot open").and(predicate::str::contains("nothing could be read")));
    kizuna(dir.path())
        .args(["ingest", "--format", "snort"])
        .arg(fixtures().join("cowrie/cowrie.json"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("cowrie")
                .and(predicate::str::contains("shadowserver"))
                .and(predicate::str::contains("intelmq")),
        );
    // One good file and one missing: the good one is stored, the exit code says something failed.
    kizuna(dir.path())
        .arg("ingest")
        .arg(fixtures().join("suricata/eve.json"))
        .arg("/nonexistent/other.json")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("eve.json: read"));
    // stdin works with an explicit format.
    kizuna(dir.path())
        .args(["ingest", "--format", "suricata", "-"])
        .write_stdin(std::fs::read(fixtures().join("suricata/eve.json")).expect("read"))
        .assert()
        .success()
        .stderr(predicate::str::contains("-: read"));
}

#[test]
fn tokens_are_shown_once_and_audit_catches_tampering() {
    let dir = setup();
    let issued = kizuna(dir.path()).args(["member", "token", "issue", "isp-a", "--label", "pull"]).assert().success();
    let secret = String::from_utf8(issued.get_output().stdout.clone()).expect("utf8").trim().to_owned();
    assert!(secret.starts_with("kz_") && secret.len() > 40, "{secret}");
    let list = kizuna(dir.path()).args(["member", "token", "list", "isp-a"]).assert().success();
    let listed = String::from_utf8(list.get_output().stdout.clone()).expect("utf8");
    assert!(listed.contains("pull") && listed.contains(&secret[..8]), "{listed}");
    assert!(!listed.contains(&secret), "the secret must never be listed");
    // The database file does not contain the secret either.
    let db = std::fs::read(dir.path().join("kizuna.sqlite")).expect("db");
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is stored");

    let id = listed.split('\t').next().expect("id").to_owned();
    kizuna(dir.path()).args(["member", "token", "revoke", &id]).assert().success();
    kizuna(dir.path()).args(["member", "token", "revoke", &id]).assert().failure();

    kizuna(dir.path()).args(["audit", "verify"]).assert().success().stdout(predicate::str::contains("intact"));
    let entries = kizuna(dir.path()).args(["audit", "list"]).assert().success();
    let log = String::from_utf8(entries.get_output().stdout.clone()).expect("utf8");
    for action in ["routes.import", "member.add", "token.issue", "token.revoke"] {
        assert!(log.contains(action), "{action} missing from\n{log}");
    }

    // Modify an entry behind the store's back: verify must fail with exit code 2.
    let conn = rusqlite::Connection::open(dir.path().join("kizuna.sqlite")).expect("open");
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; UPDATE audit SET detail = '{\"forged\":true}' WHERE seq = 2;",
    )
    .expect("tamper");
    drop(conn);
    kizuna(dir.path()).args(["audit", "verify"]).assert().code(2).stdout(predicate::str::contains("BROKEN at entry 2"));
}

#[test]
fn audit_catches_removal_of_the_newest_entry() {
    let dir = setup();
    let conn = rusqlite::Connection::open(dir.path().join("kizuna.sqlite")).expect("open");
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_delete; DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit);",
    )
    .expect("tamper");
    drop(conn);
    kizuna(dir.path()).args(["audit", "verify"]).assert().code(2).stdout(predicate::str::contains("BROKEN"));
}

#[test]
fn example_config_is_accepted_and_typos_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kizuna.example.toml");
    kizuna(dir.path()).arg("--config").arg(&example).args(["member", "list"]).assert().success();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[hub]\nlisten_addr = \"127.0.0.1:1\"\n").expect("write");
    kizuna(dir.path())
        .arg("--config")
        .arg(&bad)
        .args(["member", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown field").and(predicate::str::contains("bad.toml")));
}
